//! The audit part of projection `sessions`: every session's hash chain over its stream as this
//! consumer sees it (partition order, duplicates dropped), and signed checkpoints.
//!
//! The signing key is a 32-byte Ed25519 seed in hex from `CLARITY_AUDIT_SIGNING_KEY`; without one,
//! chains are still computed but no checkpoint is signed (a warning is logged once).

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use clarity_domain::audit::{
    self, Chain, ChainEntry, ChainError, ChainHead, Checkpoint, SigningKey,
};
use clarity_domain::wire::StreamKind;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Record;

/// The environment variable holding the hex seed of the checkpoint signing key.
pub const SIGNING_KEY_ENV: &str = "CLARITY_AUDIT_SIGNING_KEY";

/// The configured signing key, if any (read once).
pub fn signing_key() -> Option<&'static SigningKey> {
    static KEY: OnceLock<Option<SigningKey>> = OnceLock::new();
    KEY.get_or_init(|| match std::env::var(SIGNING_KEY_ENV) {
        Ok(hex) => match audit::key_from_seed_hex(hex.trim()) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::error!(%error, "{SIGNING_KEY_ENV} is not a valid key; checkpoints are not signed");
                None
            }
        },
        Err(_) => {
            tracing::warn!("{SIGNING_KEY_ENV} is not set; audit checkpoints are not signed");
            None
        }
    })
    .as_ref()
}

/// Where a record landed in its session's chain.
#[derive(Debug, Clone)]
pub struct Link {
    pub position: i64,
    pub hash: String,
    pub ce_type: String,
}

/// The chains of the sessions a batch touches.
#[derive(Default)]
pub struct Chains {
    chains: HashMap<Uuid, (Uuid, Chain)>,
}

impl Chains {
    /// Appends a record to its session's chain. `None` for a duplicate (already chained) or a
    /// record the chain cannot take (a sequence gap, which the API's contiguity check rules out;
    /// logged, and `clarity verify session` reports the session).
    pub async fn append(
        &mut self,
        conn: &mut PgConnection,
        session_id: Uuid,
        org_id: Uuid,
        record: &Record,
    ) -> Result<Option<Link>, sqlx::Error> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.chains.entry(session_id) {
            slot.insert((org_id, load(conn, session_id).await?));
        }
        let (_, chain) = self.chains.get_mut(&session_id).expect("inserted above");
        let entry = match ChainEntry::from_wire(&record.event) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%session_id, %error, "record not chained");
                return Ok(None);
            }
        };
        match chain.append(&entry) {
            Ok(head) => Ok(Some(Link {
                position: head.count as i64,
                hash: head.hash,
                ce_type: record.event.event_type.clone(),
            })),
            Err(ChainError::AlreadyChained { .. }) => Ok(None),
            Err(error) => {
                tracing::error!(%session_id, %error, "record not chained: the session's chain is broken");
                Ok(None)
            }
        }
    }

    /// The current head of a session's chain in this batch.
    pub fn head(&self, session_id: Uuid) -> Option<ChainHead> {
        self.chains.get(&session_id).map(|(_, c)| c.head())
    }

    /// Stores every touched chain's head.
    pub async fn save(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        for (session_id, (org_id, chain)) in &self.chains {
            let head = chain.head();
            sqlx::query(
                "INSERT INTO audit_chain_heads (session_id, org_id, count, head_hash, next_lifecycle, next_telemetry)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (session_id) DO UPDATE SET count = EXCLUDED.count, head_hash = EXCLUDED.head_hash,
                     next_lifecycle = EXCLUDED.next_lifecycle, next_telemetry = EXCLUDED.next_telemetry",
            )
            .bind(session_id)
            .bind(org_id)
            .bind(head.count as i64)
            .bind(&head.hash)
            .bind(chain.next_lifecycle() as i64)
            .bind(chain.next_telemetry() as i64)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

async fn load(conn: &mut PgConnection, session_id: Uuid) -> Result<Chain, sqlx::Error> {
    let row: Option<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT count, head_hash, next_lifecycle, next_telemetry FROM audit_chain_heads WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some((count, hash, lifecycle, telemetry)) => Chain::resume(
            session_id,
            &ChainHead {
                count: count as u64,
                hash,
            },
            lifecycle as u64,
            telemetry as u64,
        )
        .unwrap_or_else(|_| Chain::new(session_id)),
        None => Chain::new(session_id),
    })
}

/// Signs and stores a checkpoint of `head` (no-op without a signing key).
pub async fn checkpoint(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    head: &ChainHead,
    signed_at: DateTime<Utc>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let Some(key) = signing_key() else {
        return Ok(());
    };
    let checkpoint = Checkpoint::new(session_id, head, signed_at, &key.verifying_key());
    let signature = audit::sign(&checkpoint, key);
    sqlx::query(
        "INSERT INTO audit_checkpoints (session_id, count, org_id, head_hash, signed_at, key_id, public_key, signature, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(head.count as i64)
    .bind(org_id)
    .bind(&head.hash)
    .bind(checkpoint.signed_at)
    .bind(&checkpoint.key_id)
    .bind(audit::public_key_hex(key))
    .bind(signature)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a record of this kind and type gets a checkpoint, and why.
pub fn checkpoint_reason(kind: StreamKind, short_type: &str) -> Option<&'static str> {
    if kind != StreamKind::Lifecycle {
        return None;
    }
    match short_type {
        "SessionSubmitted" => Some("submitted"),
        "SessionExpired" => Some("expired"),
        "IntegrityAnalysed" => Some("analysed"),
        "DecisionRecorded" => Some("decision"),
        _ => None,
    }
}
