//! The audit trail from the operator's side: `clarity verify session` (the live store against
//! Kafka and the signed checkpoints). The queries over the audit read model — chain seals for new
//! events, the stored entries, `clarity audit export`'s bundle — live with the projection that
//! writes it (`clarity_projections::audit_trail`) and are re-exported here for the callers that
//! knew them by this path.

use chrono::{DateTime, Utc};
use clarity_domain::audit::{self, Bundle, ChainEntry, ChainHead, Checkpoint};
use sqlx::PgPool;
use uuid::Uuid;

pub use clarity_projections::audit_trail::{
    current_seal, decision_seal, export, stored_entries, ExportError,
};

/// The outcome of checking a session's live store.
#[derive(Debug, serde::Serialize)]
pub struct SessionCheck {
    pub session_id: Uuid,
    /// Records of the session found on the topic (after de-duplication).
    pub kafka_records: u64,
    /// Entries chained in the store.
    pub stored_entries: u64,
    pub head: Option<ChainHead>,
    pub checkpoints_verified: u64,
    /// Every problem found, first first; empty when the record is intact.
    pub problems: Vec<String>,
}

/// Checks a session's stored chain against the records on Kafka and its signed checkpoints.
pub async fn check_session(
    pool: &PgPool,
    kafka: &clarity_consumers::kafka::KafkaSettings,
    session_id: Uuid,
) -> anyhow::Result<SessionCheck> {
    let stored = stored_entries(pool, session_id).await?;
    let from_kafka =
        clarity_consumers::kafka::read_key(kafka, &kafka.sessions_topic, &session_id.to_string())
            .await?;
    let mut problems = Vec::new();
    // The chain as a de-duplicating reader of the topic sees it.
    let mut chain = audit::Chain::new(session_id);
    let mut kafka_hashes = Vec::new();
    for payload in &from_kafka {
        let wire: clarity_domain::wire::WireEvent = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                problems.push(format!("a record on the topic is not a Clarity event: {e}"));
                continue;
            }
        };
        let entry = ChainEntry::from_wire(&wire)?;
        match chain.append(&entry) {
            Ok(head) => kafka_hashes.push((entry, head.hash)),
            Err(audit::ChainError::AlreadyChained { .. }) => {}
            Err(e) => problems.push(format!("topic: {e}")),
        }
    }
    // The store's own entries, re-hashed once: a stored hash that its entry does not produce is
    // an edit of the store even where the topic is out of reach.
    let stored_entries: Vec<ChainEntry> = stored.iter().map(|(e, _)| e.clone()).collect();
    let recomputed = audit::chain_hashes(session_id, &stored_entries);
    for (i, ((entry, stored_hash), mine)) in stored.iter().zip(&recomputed).enumerate() {
        let describe = |what: &str| {
            format!(
                "entry {} ({} #{}, {}) {what}",
                i + 1,
                entry.stream_kind.as_str(),
                entry.sequence,
                entry.event_type
            )
        };
        match kafka_hashes.get(i) {
            None => {
                problems.push(describe("is in the store but not on the topic"));
                break;
            }
            Some((kafka_entry, kafka_hash)) => {
                if kafka_entry != entry || kafka_hash != stored_hash || mine != stored_hash {
                    problems.push(describe("differs between the store and the topic"));
                    break;
                }
            }
        }
    }
    if problems.is_empty() && kafka_hashes.len() > stored.len() {
        problems.push(format!(
            "the topic has {} entries the store has not chained yet (the consumer may be behind)",
            kafka_hashes.len() - stored.len()
        ));
    }
    let checkpoints: Vec<(i64, String, DateTime<Utc>, String, String, String)> = sqlx::query_as(
        "SELECT count, head_hash, signed_at, key_id, public_key, signature FROM audit_checkpoints
         WHERE session_id = $1 ORDER BY count",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    let mut verified = 0;
    for (count, head_hash, signed_at, key_id, public_key, signature) in checkpoints {
        let checkpoint = Checkpoint {
            session_id,
            count: count as u64,
            head_hash: head_hash.clone(),
            signed_at,
            key_id,
        };
        let entries: Vec<ChainEntry> = kafka_hashes
            .iter()
            .take(count as usize)
            .map(|(e, _)| e.clone())
            .collect();
        match Bundle::assemble(entries, checkpoint, signature, public_key)
            .map(|b| audit::verify(&b))
        {
            Ok(Ok(_)) => verified += 1,
            Ok(Err(e)) => problems.push(format!("checkpoint at {count}: {e}")),
            Err(e) => problems.push(format!("checkpoint at {count}: {e}")),
        }
    }
    Ok(SessionCheck {
        session_id,
        kafka_records: kafka_hashes.len() as u64,
        stored_entries: stored.len() as u64,
        head: (!kafka_hashes.is_empty()).then(|| chain.head()),
        checkpoints_verified: verified,
        problems,
    })
}
