//! The offline verifier of an audit bundle.

use std::fmt;
use std::ops::Range;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use uuid::Uuid;

use super::bundle::{claimed_seal, Bundle, Seal, BUNDLE_FORMAT};
use super::canonical::{is_microsecond, ChainEntry};
use super::chain::{genesis, link, ChainHead};
use super::checkpoint::{key_id, signature_valid, verifying_key_from_hex};
use crate::wire::StreamKind;

/// What a verified bundle establishes (see the module doc for what it does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub session_id: Uuid,
    /// The recomputed head, equal to the signed checkpoint's.
    pub head: ChainHead,
    pub lifecycle_events: u64,
    pub telemetry_events: u64,
    /// How many seals were checked.
    pub seals: u64,
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    pub public_key: String,
    /// Whether the signing key was checked against a key the auditor trusts
    /// ([`verify_with_key`]); with [`verify`] the bundle's own key is only self-consistent.
    pub key_trusted: bool,
}

/// The event an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    pub stream_kind: StreamKind,
    pub sequence: u64,
    #[serde(rename = "type")]
    pub event_type: String,
}

impl EventRef {
    fn of(entry: &ChainEntry) -> Self {
        Self {
            stream_kind: entry.stream_kind,
            sequence: entry.sequence,
            event_type: entry.event_type.clone(),
        }
    }
}

/// What failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("unsupported bundle format {found:?}")]
    UnsupportedFormat { found: String },
    #[error("the public key is not a 32-byte Ed25519 key in hex")]
    MalformedPublicKey,
    #[error("the signature is not 64 bytes of hex")]
    MalformedSignature,
    #[error("signed by key {found_key_id}, not by the expected key {expected_key_id}")]
    UnexpectedKey {
        expected_key_id: String,
        found_key_id: String,
    },
    #[error("the checkpoint is of session {checkpoint}, the bundle of {bundle}")]
    CheckpointSessionMismatch { checkpoint: Uuid, bundle: Uuid },
    #[error("the event belongs to session {found}")]
    ForeignSession { found: Uuid },
    #[error("the event's time has sub-microsecond precision (not canonical)")]
    NonCanonicalTime,
    #[error("sequence gap: expected {expected}")]
    SequenceGap { expected: u64 },
    #[error("sequence regression (duplicate or reordered): expected {expected}")]
    SequenceRegression { expected: u64 },
    #[error("the bundle lists no hash for this event")]
    HashMissing,
    #[error("hash mismatch: listed {listed}, recomputed {recomputed}")]
    HashMismatch { listed: String, recomputed: String },
    #[error("{hashes} hashes are listed for {entries} events")]
    ExtraHashes { hashes: u64, entries: u64 },
    #[error("the event's seal is not {{\"count\": <u64>, \"hash\": <string>}}")]
    MalformedSeal,
    #[error("the event seals count {count}, which includes itself or later events")]
    SealFromFuture { count: u64 },
    #[error("the event's seal is missing from, or differs in, the bundle's sealed list")]
    SealNotListed,
    #[error("the sealed list claims a seal that the event does not carry")]
    SealNotClaimed,
    #[error("seal mismatch at count {count}: sealed {sealed}, recomputed {recomputed}")]
    SealMismatch {
        count: u64,
        sealed: String,
        recomputed: String,
    },
    #[error("checkpoint count mismatch: the checkpoint covers {checkpoint} events, the bundle has {entries}")]
    CheckpointCountMismatch { checkpoint: u64, entries: u64 },
    #[error("head mismatch: the checkpoint signs {checkpoint}, the events give {recomputed}")]
    HeadMismatch {
        checkpoint: String,
        recomputed: String,
    },
    #[error("the checkpoint names key {checkpoint}, the bundle's key is {public_key}")]
    KeyIdMismatch {
        checkpoint: String,
        public_key: String,
    },
    #[error("bad signature: the checkpoint was not signed by the bundle's key")]
    BadSignature,
}

/// Why a bundle does not verify, naming the first failing event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// 0-based position in `entries` of the event at which the failure shows (for a missing hash
    /// or a seal list entry: the position concerned, possibly past the last entry).
    pub index: Option<u64>,
    /// That event's stream kind, sequence and type, when it is in the bundle.
    pub event: Option<EventRef>,
    /// When the failure cannot pin one event (the hashes were recomputed after an edit): the
    /// altered, added or dropped events lie within `entries[within]`.
    pub within: Option<Range<u64>>,
    pub failure: Failure,
}

impl VerifyError {
    fn global(failure: Failure) -> Self {
        Self {
            index: None,
            event: None,
            within: None,
            failure,
        }
    }

    fn at(index: usize, entry: Option<&ChainEntry>, failure: Failure) -> Self {
        Self {
            index: Some(index as u64),
            event: entry.map(EventRef::of),
            within: None,
            failure,
        }
    }

    fn within(mut self, range: Range<u64>) -> Self {
        self.within = Some(range);
        self
    }

    /// Whether the error points at entry `index`: names it, or narrows the tampering to a range
    /// that contains it.
    pub fn points_at(&self, index: u64) -> bool {
        self.index == Some(index) || self.within.as_ref().is_some_and(|r| r.contains(&index))
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.index, &self.event) {
            (Some(i), Some(e)) => write!(
                f,
                "entry {i} ({} #{}, {}): ",
                e.stream_kind.as_str(),
                e.sequence,
                e.event_type
            )?,
            (Some(i), None) => write!(f, "entry {i}: ")?,
            _ => {}
        }
        write!(f, "{}", self.failure)?;
        if let Some(r) = &self.within {
            write!(
                f,
                " (the change lies within entries {}..{})",
                r.start, r.end
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a bundle from its entries alone, against the public key it carries (which proves
/// only self-consistency unless that key is checked: prefer [`verify_with_key`]).
// The error is large (it names the event and both sides of what differs) and built at most once
// per verification: not worth boxing.
#[allow(clippy::result_large_err)]
pub fn verify(bundle: &Bundle) -> Result<Verified, VerifyError> {
    check(bundle, None)
}

/// Verifies a bundle and that it was signed by `expected`, a key the auditor trusts.
#[allow(clippy::result_large_err)]
pub fn verify_with_key(bundle: &Bundle, expected: &VerifyingKey) -> Result<Verified, VerifyError> {
    check(bundle, Some(expected))
}

#[allow(clippy::result_large_err)]
fn check(bundle: &Bundle, expected: Option<&VerifyingKey>) -> Result<Verified, VerifyError> {
    use Failure::*;
    let global = |failure| Err(VerifyError::global(failure));

    if bundle.format != BUNDLE_FORMAT {
        return global(UnsupportedFormat {
            found: bundle.format.clone(),
        });
    }
    let Ok(key) = verifying_key_from_hex(&bundle.public_key) else {
        return global(MalformedPublicKey);
    };
    let mut signature = [0u8; 64];
    if hex::decode_to_slice(&bundle.signature, &mut signature).is_err() {
        return global(MalformedSignature);
    }
    if let Some(expected) = expected {
        if key != *expected {
            return global(UnexpectedKey {
                expected_key_id: key_id(expected),
                found_key_id: key_id(&key),
            });
        }
    }
    let checkpoint = &bundle.checkpoint;
    if checkpoint.session_id != bundle.session_id {
        return global(CheckpointSessionMismatch {
            checkpoint: checkpoint.session_id,
            bundle: bundle.session_id,
        });
    }

    let entries = &bundle.entries;
    // heads[n] = hash_n.
    let mut heads = Vec::with_capacity(entries.len() + 1);
    heads.push(genesis(bundle.session_id));
    let (mut next_lifecycle, mut next_telemetry) = (1u64, 1u64);
    let mut seal_pos = 0usize;

    for (i, entry) in entries.iter().enumerate() {
        let fail = |failure| Err(VerifyError::at(i, Some(entry), failure));
        if entry.session_id != bundle.session_id {
            return fail(ForeignSession {
                found: entry.session_id,
            });
        }
        if !is_microsecond(&entry.time) {
            return fail(NonCanonicalTime);
        }
        let next = match entry.stream_kind {
            StreamKind::Lifecycle => &mut next_lifecycle,
            StreamKind::Telemetry => &mut next_telemetry,
        };
        if entry.sequence != *next {
            let expected = *next;
            return fail(if entry.sequence > expected {
                SequenceGap { expected }
            } else {
                SequenceRegression { expected }
            });
        }
        *next += 1;

        let hash = link(&heads[i], i as u64 + 1, entry);
        heads.push(hash);
        let recomputed = hex::encode(hash);
        match bundle.hashes.get(i) {
            None => return fail(HashMissing),
            Some(listed) if *listed != recomputed => {
                return fail(HashMismatch {
                    listed: listed.clone(),
                    recomputed,
                })
            }
            Some(_) => {}
        }

        match claimed_seal(entry) {
            None => {}
            Some(None) => return fail(MalformedSeal),
            Some(Some((count, sealed))) => {
                let claimed = Seal {
                    at_index: i as u64,
                    count,
                    hash: sealed.clone(),
                };
                if bundle.sealed.get(seal_pos) != Some(&claimed) {
                    return fail(SealNotListed);
                }
                seal_pos += 1;
                if count > i as u64 {
                    // Events before the seal are missing, or the seal moved up.
                    return Err(
                        VerifyError::at(i, Some(entry), SealFromFuture { count }).within(0..count)
                    );
                }
                let recomputed = hex::encode(heads[count as usize]);
                if sealed != recomputed {
                    return Err(VerifyError::at(
                        i,
                        Some(entry),
                        SealMismatch {
                            count,
                            sealed,
                            recomputed,
                        },
                    )
                    .within(0..count));
                }
            }
        }
        if let Some(listed) = bundle.sealed.get(seal_pos) {
            if listed.at_index <= i as u64 {
                return Err(unclaimed(listed, entries));
            }
        }
    }
    if let Some(listed) = bundle.sealed.get(seal_pos) {
        return Err(unclaimed(listed, entries));
    }

    let n = entries.len();
    if bundle.hashes.len() > n {
        return Err(VerifyError::at(
            n,
            None,
            ExtraHashes {
                hashes: bundle.hashes.len() as u64,
                entries: n as u64,
            },
        ));
    }
    if checkpoint.count != n as u64 {
        let failure = CheckpointCountMismatch {
            checkpoint: checkpoint.count,
            entries: n as u64,
        };
        return Err(if checkpoint.count < n as u64 {
            // Events added after the signed prefix: the first one is named.
            let first = checkpoint.count as usize;
            VerifyError::at(first, entries.get(first), failure)
        } else {
            // Events missing; with recomputed hashes they may be anywhere.
            VerifyError::global(failure).within(0..checkpoint.count)
        });
    }
    let head = hex::encode(heads[n]);
    if checkpoint.head_hash != head {
        return Err(VerifyError::global(HeadMismatch {
            checkpoint: checkpoint.head_hash.clone(),
            recomputed: head,
        })
        .within(0..n as u64));
    }
    let bundle_key_id = key_id(&key);
    if checkpoint.key_id != bundle_key_id {
        return global(KeyIdMismatch {
            checkpoint: checkpoint.key_id.clone(),
            public_key: bundle_key_id,
        });
    }
    if signature_valid(checkpoint, &bundle.signature, &key) != Some(true) {
        return global(BadSignature);
    }

    Ok(Verified {
        session_id: bundle.session_id,
        head: ChainHead {
            count: n as u64,
            hash: head,
        },
        lifecycle_events: next_lifecycle - 1,
        telemetry_events: next_telemetry - 1,
        seals: seal_pos as u64,
        signed_at: checkpoint.signed_at,
        key_id: bundle_key_id,
        public_key: bundle.public_key.clone(),
        key_trusted: expected.is_some(),
    })
}

fn unclaimed(listed: &Seal, entries: &[ChainEntry]) -> VerifyError {
    let index = usize::try_from(listed.at_index).unwrap_or(usize::MAX);
    let mut error = VerifyError::at(index, entries.get(index), Failure::SealNotClaimed);
    error.index = Some(listed.at_index);
    error
}
