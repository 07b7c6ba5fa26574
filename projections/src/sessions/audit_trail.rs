//! Queries over the audit part of projection `sessions` ([`super::audit_chain`]): chain seals
//! for new events (a decision pins the chain it rests on), the stored entries in chain order, and
//! the self-contained bundle `clarity audit export` and `GET /v1/sessions/{id}/audit/bundle` hand
//! out.

use chrono::{DateTime, Utc};
use clarity_domain::audit::{Bundle, BundleError, ChainEntry, Checkpoint};
use clarity_domain::session::ChainSeal;
use clarity_domain::wire::StreamKind;
use sqlx::PgPool;
use uuid::Uuid;

/// Why a session's audit bundle cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Nothing to export yet: the session has no signed checkpoint (it is not finished, or the
    /// consumers sign nothing). The caller's to fix by waiting or configuring a key.
    #[error("session {0} has no signed checkpoint (is CLARITY_AUDIT_SIGNING_KEY set for the consumers, and is the session finished?)")]
    NoSignedCheckpoint(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored entry's data is not JSON: the store was edited by hand.
    #[error("a stored entry of the session is not valid JSON: {0}")]
    CorruptEntry(#[from] serde_json::Error),
    /// The stored entries do not make the bundle the checkpoint signed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// The current head of a session's chain, as a seal for a new event. `None` if the session has
/// no chain yet.
pub async fn current_seal(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<ChainSeal>, sqlx::Error> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT count, head_hash FROM audit_chain_heads WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(count, hash)| ChainSeal {
        count: count as u64,
        hash,
    }))
}

/// The seal for a decision: the current head, which must already cover the submission (or
/// expiry) so that every telemetry event the decision rests on is pinned. `None` when the
/// consumer has not chained the submission yet (retry shortly).
pub async fn decision_seal(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<ChainSeal>, sqlx::Error> {
    let finished_at: Option<i64> = sqlx::query_scalar(
        "SELECT chain_position FROM session_events WHERE session_id = $1 AND stream_kind = 'lifecycle'
           AND event_type IN ('SessionSubmitted', 'SessionExpired') AND chain_position IS NOT NULL",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    let seal = current_seal(pool, session_id).await?;
    Ok(match (finished_at, seal) {
        (Some(position), Some(seal)) if seal.count as i64 >= position => Some(seal),
        _ => None,
    })
}

/// The session's chained entries in chain order, with their stored hashes.
pub async fn stored_entries(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Vec<(ChainEntry, String)>, ExportError> {
    let rows: Vec<(String, i64, String, DateTime<Utc>, String, String)> = sqlx::query_as(
        "SELECT stream_kind, seq, ce_type, occurred_at, data::text, chain_hash FROM session_events
         WHERE session_id = $1 AND chain_position IS NOT NULL ORDER BY chain_position",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(kind, seq, ce_type, time, data, hash)| {
            let kind = if kind == "lifecycle" {
                StreamKind::Lifecycle
            } else {
                StreamKind::Telemetry
            };
            let data: serde_json::Value = serde_json::from_str(&data)?;
            Ok((
                ChainEntry::new(session_id, kind, seq as u64, ce_type, time, data),
                hash,
            ))
        })
        .collect()
}

/// A self-contained bundle of a session as the store holds it, up to its latest signed
/// checkpoint (entries after it are not covered by a signature and are left out).
pub async fn export(pool: &PgPool, session_id: Uuid) -> Result<Bundle, ExportError> {
    let checkpoint: Option<(i64, String, DateTime<Utc>, String, String, String)> = sqlx::query_as(
        "SELECT count, head_hash, signed_at, key_id, public_key, signature FROM audit_checkpoints
         WHERE session_id = $1 ORDER BY count DESC LIMIT 1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    let Some((count, head_hash, signed_at, key_id, public_key, signature)) = checkpoint else {
        return Err(ExportError::NoSignedCheckpoint(session_id));
    };
    let entries: Vec<ChainEntry> = stored_entries(pool, session_id)
        .await?
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    let checkpoint = Checkpoint {
        session_id,
        count: count as u64,
        head_hash,
        signed_at,
        key_id,
    };
    Ok(Bundle::assemble(
        entries, checkpoint, signature, public_key,
    )?)
}
