//! The self-contained audit bundle of one session.

use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::canonical::ChainEntry;
use super::chain::{chain_hashes, genesis, ChainHead};
use super::checkpoint::{public_key_hex, sign, Checkpoint};
use crate::wire::StreamKind;

/// The `format` of a version-1 bundle.
pub const BUNDLE_FORMAT: &str = "clarity-audit-bundle/1";

/// The top-level member of a lifecycle event's `data` that seals a chain head:
/// `{"count": <u64>, "hash": "<hex>"}`.
pub const SEAL_FIELD: &str = "chain_seal";

/// A chain head claimed by the lifecycle event at `at_index` (0-based, in `entries`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub at_index: u64,
    pub count: u64,
    pub hash: String,
}

/// Everything an auditor needs to check a session's record offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    pub session_id: Uuid,
    /// The checkpointed prefix of the session's stream, in chain order.
    pub entries: Vec<ChainEntry>,
    /// Hex `hash_n` of every entry (a convenience that pins the first altered entry; the
    /// verifier recomputes them).
    pub hashes: Vec<String>,
    pub checkpoint: Checkpoint,
    /// Hex Ed25519 signature of the checkpoint's bytes.
    pub signature: String,
    /// Hex Ed25519 public key that signed.
    pub public_key: String,
    /// Every seal claimed by the entries, in entry order.
    pub sealed: Vec<Seal>,
}

/// A bundle that cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the checkpoint covers {checkpoint} entries but only {available} were given")]
    TooFewEntries { checkpoint: u64, available: u64 },
}

/// The seal claimed by an entry: `None` when it claims none, `Some(None)` when the claim is
/// malformed.
pub(crate) fn claimed_seal(entry: &ChainEntry) -> Option<Option<(u64, String)>> {
    if entry.stream_kind != StreamKind::Lifecycle {
        return None;
    }
    let claim = entry.data.as_object()?.get(SEAL_FIELD)?;
    let parsed = (|| {
        let object = claim.as_object()?;
        if object.len() != 2 {
            return None;
        }
        let count = object.get("count").and_then(Value::as_u64)?;
        let hash = object.get("hash").and_then(Value::as_str)?;
        Some((count, hash.to_string()))
    })();
    Some(parsed)
}

/// Entry times as chained (the chain hashes them to the microsecond).
fn truncate_times(entries: &mut [ChainEntry]) {
    for entry in entries {
        entry.time = entry.time.trunc_subsecs(6);
    }
}

/// The well-formed seals claimed by `entries`.
pub(crate) fn seals_of(entries: &[ChainEntry]) -> Vec<Seal> {
    entries
        .iter()
        .zip(0u64..)
        .filter_map(|(entry, at_index)| match claimed_seal(entry) {
            Some(Some((count, hash))) => Some(Seal {
                at_index,
                count,
                hash,
            }),
            _ => None,
        })
        .collect()
}

impl Bundle {
    /// Assembles the bundle of a checkpoint signed earlier (by the consumer, as the stream
    /// went by): `entries` are the session's stream in chain order, of which the first
    /// `checkpoint.count` are included; hashes and seals are computed from them.
    pub fn assemble(
        entries: Vec<ChainEntry>,
        checkpoint: Checkpoint,
        signature: String,
        public_key: String,
    ) -> Result<Self, BundleError> {
        let mut entries = entries;
        let count = checkpoint.count;
        if (entries.len() as u64) < count {
            return Err(BundleError::TooFewEntries {
                checkpoint: count,
                available: entries.len() as u64,
            });
        }
        entries.truncate(count as usize);
        truncate_times(&mut entries);
        Ok(Self {
            format: BUNDLE_FORMAT.into(),
            session_id: checkpoint.session_id,
            hashes: chain_hashes(checkpoint.session_id, &entries),
            sealed: seals_of(&entries),
            entries,
            checkpoint,
            signature,
            public_key,
        })
    }

    /// A bundle of all `entries` with a checkpoint signed now, at `signed_at`. It proves the
    /// record is intact only since it was signed: prefer [`Bundle::assemble`] with the
    /// checkpoint the consumer signed when it saw the stream.
    pub fn sign_now(
        session_id: Uuid,
        entries: Vec<ChainEntry>,
        signed_at: DateTime<Utc>,
        key: &SigningKey,
    ) -> Self {
        let mut entries = entries;
        truncate_times(&mut entries);
        let hashes = chain_hashes(session_id, &entries);
        let head = ChainHead {
            count: entries.len() as u64,
            hash: hashes
                .last()
                .cloned()
                .unwrap_or_else(|| hex::encode(genesis(session_id))),
        };
        let checkpoint = Checkpoint::new(session_id, &head, signed_at, &key.verifying_key());
        Self {
            format: BUNDLE_FORMAT.into(),
            session_id,
            sealed: seals_of(&entries),
            signature: sign(&checkpoint, key),
            public_key: public_key_hex(key),
            entries,
            hashes,
            checkpoint,
        }
    }

    /// The bundle as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bundle serializes")
    }

    /// A bundle read from JSON (not verified: call [`super::verify`]).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}
