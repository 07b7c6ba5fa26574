//! The audit part of projection `sessions`: every session's hash chain over its stream as this
//! consumer sees it (partition order, duplicates dropped), and signed checkpoints.
//!
//! The signing key comes in with [`AuditConfig`] (the roles read it from
//! `CLARITY_AUDIT_SIGNING_KEY`, a 32-byte Ed25519 seed in hex); without one, chains are still
//! computed but no checkpoint is signed.
//!
//! **Holes.** When this projection quarantines a record that its session's chain needed next (a
//! *hole*: its sequence is the one the chain expects), the chain waits: later records of the
//! session still go into the log and its counters, but are not chained until the hole is filled
//! (by `clarity quarantine retry`, which then chains them with [`extend`], in partition order).
//! Chaining them past the hole would put the late record after them for good; waiting keeps the
//! chain append-only *and* in partition order, so heads sealed and checkpoints signed meanwhile
//! stay true prefixes of the final chain. A quarantined record that the chain would never have
//! taken anyway (a sequence far ahead, or already chained) is not a hole.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use clarity_domain::audit::{
    self, Chain, ChainEntry, ChainError, ChainHead, Checkpoint, SigningKey,
};
use clarity_domain::wire::StreamKind;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Record;

/// The environment variable the roles read the checkpoint signing key's hex seed from (this crate
/// never reads it: the key comes in with [`AuditConfig`]).
pub const SIGNING_KEY_ENV: &str = "CLARITY_AUDIT_SIGNING_KEY";

/// How the audit chain signs its checkpoints.
#[derive(Clone, Default)]
pub struct AuditConfig {
    /// The key that signs checkpoints; `None` signs nothing (chains are still kept).
    pub signing_key: Option<SigningKey>,
}

impl std::fmt::Debug for AuditConfig {
    // Never print the key; its public half identifies it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field(
                "signing_key",
                &self
                    .signing_key
                    .as_ref()
                    .map(|k| audit::key_id(&k.verifying_key())),
            )
            .finish()
    }
}

impl AuditConfig {
    /// From the configured hex seed, if any. A missing or invalid seed is logged (an error for an
    /// invalid one) and signs nothing, so a role still starts and keeps its chains.
    pub fn from_seed_hex(seed: Option<&str>) -> Self {
        let signing_key = match seed {
            Some(hex) => match audit::key_from_seed_hex(hex.trim()) {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::error!(%error, "{SIGNING_KEY_ENV} is not a valid key; checkpoints are not signed");
                    None
                }
            },
            None => {
                tracing::warn!("{SIGNING_KEY_ENV} is not set; audit checkpoints are not signed");
                None
            }
        };
        Self { signing_key }
    }
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
    /// Unresolved quarantined records of each session (offset, kind, sequence), in offset order:
    /// the candidates for holes, looked at as the batch passes their offsets.
    quarantined: HashMap<Uuid, VecDeque<(i64, StreamKind, u64)>>,
    /// Sessions whose chain waits for a hole.
    waiting: HashSet<Uuid>,
}

/// The unresolved quarantined records of projection `sessions` for `ids`, by session, in offset
/// order.
async fn quarantined(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, VecDeque<(i64, StreamKind, u64)>>, sqlx::Error> {
    let rows: Vec<(Uuid, i64, String, i64)> = sqlx::query_as(
        "SELECT session_id, \"offset\", stream_kind, sequence FROM projection_rejects
          WHERE projection = 'sessions' AND resolved_at IS NULL AND session_id = ANY($1)
            AND stream_kind IS NOT NULL AND sequence IS NOT NULL
          ORDER BY session_id, \"offset\"",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_session: HashMap<Uuid, VecDeque<(i64, StreamKind, u64)>> = HashMap::new();
    for (session_id, offset, kind, sequence) in rows {
        by_session.entry(session_id).or_default().push_back((
            offset,
            stream_kind(&kind),
            sequence as u64,
        ));
    }
    Ok(by_session)
}

fn stream_kind(name: &str) -> StreamKind {
    if name == "lifecycle" {
        StreamKind::Lifecycle
    } else {
        StreamKind::Telemetry
    }
}

/// Whether `chain` must wait at `offset`: looks at the quarantined records before it (consuming
/// them); one whose sequence is the chain's next of its kind is a hole.
fn passes_hole(
    chain: &Chain,
    quarantined: Option<&mut VecDeque<(i64, StreamKind, u64)>>,
    offset: i64,
) -> bool {
    let Some(pending) = quarantined else {
        return false;
    };
    let mut hole = false;
    while let Some(&(at, kind, sequence)) = pending.front() {
        if at >= offset {
            break;
        }
        pending.pop_front();
        let next = match kind {
            StreamKind::Lifecycle => chain.next_lifecycle(),
            StreamKind::Telemetry => chain.next_telemetry(),
        };
        hole |= sequence == next;
    }
    hole
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
        let quarantined = quarantined(conn, &ids).await?;
        let chains = ids
            .into_iter()
            .map(|id| {
                let chain = stored.remove(&id).unwrap_or_else(|| Chain::new(id));
                (id, (orgs[&id], chain))
            })
            .collect();
        Ok(Self {
            chains,
            quarantined,
            waiting: HashSet::new(),
        })
    }

    /// Appends a record to its session's chain. `None` for a duplicate (already chained), a
    /// record the chain cannot take (a sequence gap, which the API's contiguity check rules out;
    /// logged, and `clarity verify session` reports the session), or one behind a hole (the
    /// chain waits for the quarantined record: see the module documentation).
    pub fn append(&mut self, session_id: Uuid, org_id: Uuid, record: &Record) -> Option<Link> {
        let (_, chain) = self
            .chains
            .entry(session_id)
            .or_insert_with(|| (org_id, Chain::new(session_id)));
        if passes_hole(chain, self.quarantined.get_mut(&session_id), record.offset) {
            tracing::warn!(%session_id, offset = record.offset, "the audit chain waits for a quarantined record");
            self.waiting.insert(session_id);
        }
        if self.waiting.contains(&session_id) {
            return None;
        }
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
    config: &AuditConfig,
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    head: &ChainHead,
    signed_at: DateTime<Utc>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let Some(key) = &config.signing_key else {
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

/// Chains the log rows of `session_id` that its chain left out while it waited for a hole (see
/// the module documentation), in partition order, up to `before_offset` (exclusive; all when
/// `None`) or the next hole, signing the checkpoints they call for as the live consumer would
/// have. Rows the chain cannot take (a duplicate, a gap) are left unchained, as live. Returns how
/// many rows it chained. Runs in the caller's transaction, after the late record was applied.
pub async fn extend(
    config: &AuditConfig,
    conn: &mut PgConnection,
    session_id: Uuid,
    before_offset: Option<i64>,
) -> Result<u64, sqlx::Error> {
    type Row = (
        String,
        i64,
        String,
        Option<String>,
        DateTime<Utc>,
        String,
        i64,
        Uuid,
    );
    let head: Option<(Uuid, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT org_id, count, head_hash, next_lifecycle, next_telemetry
           FROM audit_chain_heads WHERE session_id = $1 FOR UPDATE",
    )
    .bind(session_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (mut chain, mut org) = match head {
        Some((org, count, hash, lifecycle, telemetry)) => (
            resume(session_id, count, hash, lifecycle, telemetry),
            Some(org),
        ),
        None => (Chain::new(session_id), None),
    };
    // Everything after the last chained row is what waited (rows before it that are unchained
    // were refused by the chain itself: duplicates, gaps).
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT stream_kind, seq, event_type, ce_type, occurred_at, data::text, kafka_offset, org_id
           FROM session_events
          WHERE session_id = $1 AND chain_position IS NULL
            AND kafka_offset > coalesce((SELECT max(kafka_offset) FROM session_events
                                          WHERE session_id = $1 AND chain_position IS NOT NULL), -1)
            AND ($2::bigint IS NULL OR kafka_offset < $2)
          ORDER BY kafka_offset, stream_kind, seq",
    )
    .bind(session_id)
    .bind(before_offset)
    .fetch_all(&mut *conn)
    .await?;
    let mut pending = quarantined(conn, &[session_id])
        .await?
        .remove(&session_id)
        .unwrap_or_default();
    let mut chained = 0;
    for (kind, seq, short_type, ce_type, time, data, offset, row_org) in rows {
        if passes_hole(&chain, Some(&mut pending), offset) {
            break;
        }
        let Some(ce_type) = ce_type else {
            // Stored before the log kept every record's type; `clarity rebuild sessions` chains it.
            tracing::warn!(%session_id, offset, "an unchained log row has no CloudEvents type; the chain stops here");
            break;
        };
        let data: serde_json::Value =
            serde_json::from_str(&data).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let kind = stream_kind(&kind);
        let entry = ChainEntry::new(session_id, kind, seq as u64, ce_type, time, data);
        let head = match chain.append(&entry) {
            Ok(head) => head,
            Err(_) => continue,
        };
        sqlx::query(
            "UPDATE session_events SET chain_position = $4, chain_hash = $5
              WHERE session_id = $1 AND stream_kind = $2 AND seq = $3",
        )
        .bind(session_id)
        .bind(kind.as_str())
        .bind(seq)
        .bind(head.count as i64)
        .bind(&head.hash)
        .execute(&mut *conn)
        .await?;
        if let Some(reason) = checkpoint_reason(kind, &short_type) {
            checkpoint(config, conn, session_id, row_org, &head, time, reason).await?;
        }
        org.get_or_insert(row_org);
        chained += 1;
    }
    if let (Some(org), true) = (org, chained > 0) {
        let head = chain.head();
        sqlx::query(
            "INSERT INTO audit_chain_heads (session_id, org_id, count, head_hash, next_lifecycle, next_telemetry)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (session_id) DO UPDATE SET count = EXCLUDED.count, head_hash = EXCLUDED.head_hash,
                 next_lifecycle = EXCLUDED.next_lifecycle, next_telemetry = EXCLUDED.next_telemetry",
        )
        .bind(session_id)
        .bind(org)
        .bind(head.count as i64)
        .bind(&head.hash)
        .bind(chain.next_lifecycle() as i64)
        .bind(chain.next_telemetry() as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(chained)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_expecting(telemetry: u64) -> Chain {
        let session = Uuid::from_u128(1);
        Chain::resume(session, &Chain::new(session).head(), 1, telemetry).expect("a valid head")
    }

    #[test]
    fn a_quarantined_record_the_chain_needed_next_is_a_hole_once_passed() {
        // Arrange: the chain expects telemetry 11; record 11 was quarantined at offset 13.
        let chain = chain_expecting(11);
        let mut quarantined = VecDeque::from([(13, StreamKind::Telemetry, 11)]);

        // Act / Assert: not before its offset, a hole after it.
        assert!(!passes_hole(&chain, Some(&mut quarantined), 12));
        assert_eq!(quarantined.len(), 1, "not looked at yet");
        assert!(passes_hole(&chain, Some(&mut quarantined), 14));
        assert!(quarantined.is_empty());
    }

    #[test]
    fn a_quarantined_record_the_chain_would_never_take_is_no_hole() {
        // Arrange: a sequence far ahead (a foreign producer's) and one already chained.
        let chain = chain_expecting(11);
        let mut quarantined = VecDeque::from([
            (13, StreamKind::Telemetry, 1_000_000),
            (14, StreamKind::Telemetry, 5),
            (15, StreamKind::Lifecycle, 7),
        ]);

        // Act / Assert
        assert!(!passes_hole(&chain, Some(&mut quarantined), 100));
        assert!(!passes_hole(&chain, None, 100));
    }

    #[test]
    fn a_record_applied_in_its_place_fills_its_hole() {
        // Arrange: a rebuild (or retry) applies record 11 itself: the chain moved past it.
        let chain = chain_expecting(12);
        let mut quarantined = VecDeque::from([(13, StreamKind::Telemetry, 11)]);

        // Act / Assert
        assert!(!passes_hole(&chain, Some(&mut quarantined), 14));
    }
}
