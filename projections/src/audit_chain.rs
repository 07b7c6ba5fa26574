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
    /// Loads the chains of the sessions `records` touch, in one query.
    pub async fn load(conn: &mut PgConnection, records: &[Record]) -> Result<Self, sqlx::Error> {
        let mut ids: Vec<Uuid> = Vec::new();
        let mut orgs: HashMap<Uuid, Uuid> = HashMap::new();
        for record in records {
            if let Ok((session_id, org_id)) = record.session_and_org() {
                if orgs.insert(session_id, org_id).is_none() {
                    ids.push(session_id);
                }
            }
        }
        let rows: Vec<(Uuid, i64, String, i64, i64)> = sqlx::query_as(
            "SELECT session_id, count, head_hash, next_lifecycle, next_telemetry
             FROM audit_chain_heads WHERE session_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut stored: HashMap<Uuid, Chain> = rows
            .into_iter()
            .map(|(session_id, count, hash, lifecycle, telemetry)| {
                (
                    session_id,
                    resume(session_id, count, hash, lifecycle, telemetry),
                )
            })
            .collect();
        let chains = ids
            .into_iter()
            .map(|id| {
                let chain = stored.remove(&id).unwrap_or_else(|| Chain::new(id));
                (id, (orgs[&id], chain))
            })
            .collect();
        Ok(Self { chains })
    }

    /// Appends a record to its session's chain. `None` for a duplicate (already chained) or a
    /// record the chain cannot take (a sequence gap, which the API's contiguity check rules out;
    /// logged, and `clarity verify session` reports the session).
    pub fn append(&mut self, session_id: Uuid, org_id: Uuid, record: &Record) -> Option<Link> {
        let (_, chain) = self
            .chains
            .entry(session_id)
            .or_insert_with(|| (org_id, Chain::new(session_id)));
        let entry = match ChainEntry::from_wire(&record.event) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%session_id, %error, "record not chained");
                return None;
            }
        };
        match chain.append(&entry) {
            Ok(head) => Some(Link {
                position: head.count as i64,
                hash: head.hash,
                ce_type: record.event.event_type.clone(),
            }),
            Err(ChainError::AlreadyChained { .. }) => None,
            Err(error) => {
                tracing::error!(%session_id, %error, "record not chained: the session's chain is broken");
                None
            }
        }
    }

    /// The current head of a session's chain in this batch.
    pub fn head(&self, session_id: Uuid) -> Option<ChainHead> {
        self.chains.get(&session_id).map(|(_, c)| c.head())
    }

    /// Stores every touched chain's head, in one statement (in session order, so concurrent
    /// writers of the same heads lock them in the same order).
    pub async fn save(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.chains.is_empty() {
            return Ok(());
        }
        let mut heads: Vec<(&Uuid, &(Uuid, Chain))> = self.chains.iter().collect();
        heads.sort_by_key(|(id, _)| **id);
        let mut columns = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for (session_id, (org_id, chain)) in heads {
            let head = chain.head();
            columns.0.push(*session_id);
            columns.1.push(*org_id);
            columns.2.push(head.count as i64);
            columns.3.push(head.hash);
            columns.4.push(chain.next_lifecycle() as i64);
            columns.5.push(chain.next_telemetry() as i64);
        }
        sqlx::query(
            "INSERT INTO audit_chain_heads (session_id, org_id, count, head_hash, next_lifecycle, next_telemetry)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])
             ON CONFLICT (session_id) DO UPDATE SET count = EXCLUDED.count, head_hash = EXCLUDED.head_hash,
                 next_lifecycle = EXCLUDED.next_lifecycle, next_telemetry = EXCLUDED.next_telemetry",
        )
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(columns.3)
        .bind(columns.4)
        .bind(columns.5)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

fn resume(session_id: Uuid, count: i64, hash: String, lifecycle: i64, telemetry: i64) -> Chain {
    Chain::resume(
        session_id,
        &ChainHead {
            count: count as u64,
            hash,
        },
        lifecycle as u64,
        telemetry as u64,
    )
    .unwrap_or_else(|_| Chain::new(session_id))
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
