//! The hash chain over a session's stream.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::canonical::{entry_bytes, ChainEntry};
use crate::wire::StreamKind;

/// Domain-separation prefix of the genesis hash; names the chain format version.
pub const CHAIN_DOMAIN: &str = "clarity-audit-chain/1";

/// The chain's state after `count` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub count: u64,
    /// Lowercase hex of the 32-byte hash.
    pub hash: String,
}

/// `SHA-256("clarity-audit-chain/1" || session id as 36 lowercase hyphenated ASCII bytes)`.
pub fn genesis(session_id: Uuid) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN.as_bytes());
    h.update(session_id.hyphenated().to_string().as_bytes());
    h.finalize().into()
}

/// `SHA-256(prev || u64be(n) || entry_bytes(entry))`.
pub(crate) fn link(prev: &[u8; 32], n: u64, entry: &ChainEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(n.to_be_bytes());
    h.update(entry_bytes(entry));
    h.finalize().into()
}

/// The hex hash of every entry, in order (no sequence checks: see [`Chain`] for those).
pub fn chain_hashes(session_id: Uuid, entries: &[ChainEntry]) -> Vec<String> {
    let mut prev = genesis(session_id);
    entries
        .iter()
        .zip(1u64..)
        .map(|(entry, n)| {
            prev = link(&prev, n, entry);
            hex::encode(prev)
        })
        .collect()
}

/// Why an entry was not appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the entry belongs to session {found}, not {expected}")]
    ForeignSession { expected: Uuid, found: Uuid },
    /// The sequence was already chained: a duplicate the caller did not drop (or a regression).
    /// Skipping it keeps the chain what a de-duplicating reader sees.
    #[error("{} sequence {sequence} is already chained (next is {next})", .kind.as_str())]
    AlreadyChained {
        kind: StreamKind,
        sequence: u64,
        next: u64,
    },
    /// Sequences are missing before this one; a verifier would reject the chain.
    #[error("{} sequence {sequence} arrives before {expected}", .kind.as_str())]
    Gap {
        kind: StreamKind,
        sequence: u64,
        expected: u64,
    },
    #[error("the head hash {0:?} is not 64 hex characters")]
    MalformedHead(String),
}

/// A session's chain as the consumer keeps it: the head and the next sequence of each stream
/// kind. Persist [`Chain::head`], [`Chain::next_lifecycle`] and [`Chain::next_telemetry`] and
/// rebuild it with [`Chain::resume`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    session_id: Uuid,
    count: u64,
    hash: [u8; 32],
    next_lifecycle: u64,
    next_telemetry: u64,
}

impl Chain {
    /// The empty chain of a session (head = genesis, count 0).
    pub fn new(session_id: Uuid) -> Self {
        Self {
            session_id,
            count: 0,
            hash: genesis(session_id),
            next_lifecycle: 1,
            next_telemetry: 1,
        }
    }

    /// A chain continued from a persisted state.
    pub fn resume(
        session_id: Uuid,
        head: &ChainHead,
        next_lifecycle: u64,
        next_telemetry: u64,
    ) -> Result<Self, ChainError> {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&head.hash, &mut hash)
            .map_err(|_| ChainError::MalformedHead(head.hash.clone()))?;
        Ok(Self {
            session_id,
            count: head.count,
            hash,
            next_lifecycle,
            next_telemetry,
        })
    }

    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// The current head.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            count: self.count,
            hash: hex::encode(self.hash),
        }
    }

    /// The lifecycle sequence the next lifecycle entry must carry.
    pub fn next_lifecycle(&self) -> u64 {
        self.next_lifecycle
    }

    /// The telemetry sequence the next telemetry entry must carry.
    pub fn next_telemetry(&self) -> u64 {
        self.next_telemetry
    }

    /// Appends the next entry of the stream and returns the new head. Refuses (and leaves the
    /// chain unchanged) an entry of another session, a sequence already chained
    /// ([`ChainError::AlreadyChained`]: a duplicate, skip it) or one that leaves a gap.
    pub fn append(&mut self, entry: &ChainEntry) -> Result<ChainHead, ChainError> {
        if entry.session_id != self.session_id {
            return Err(ChainError::ForeignSession {
                expected: self.session_id,
                found: entry.session_id,
            });
        }
        let next = match entry.stream_kind {
            StreamKind::Lifecycle => &mut self.next_lifecycle,
            StreamKind::Telemetry => &mut self.next_telemetry,
        };
        if entry.sequence < *next {
            return Err(ChainError::AlreadyChained {
                kind: entry.stream_kind,
                sequence: entry.sequence,
                next: *next,
            });
        }
        if entry.sequence > *next {
            return Err(ChainError::Gap {
                kind: entry.stream_kind,
                sequence: entry.sequence,
                expected: *next,
            });
        }
        *next += 1;
        self.count += 1;
        self.hash = link(&self.hash, self.count, entry);
        Ok(self.head())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn entry(kind: StreamKind, sequence: u64) -> ChainEntry {
        let at: DateTime<Utc> = "2026-03-01T09:30:00Z".parse().unwrap();
        ChainEntry::new(
            Uuid::from_u128(1),
            kind,
            sequence,
            "clarity.Telemetry.cursor.v1",
            at,
            json!({"position": sequence}),
        )
    }

    #[test]
    fn the_incremental_chain_and_the_batch_hashes_agree() {
        // Arrange
        let entries = [
            entry(StreamKind::Lifecycle, 1),
            entry(StreamKind::Telemetry, 1),
            entry(StreamKind::Telemetry, 2),
            entry(StreamKind::Lifecycle, 2),
        ];
        let mut chain = Chain::new(Uuid::from_u128(1));

        // Act
        let heads: Vec<ChainHead> = entries.iter().map(|e| chain.append(e).unwrap()).collect();

        // Assert
        let hashes = chain_hashes(Uuid::from_u128(1), &entries);
        assert_eq!(
            heads.iter().map(|h| h.hash.clone()).collect::<Vec<_>>(),
            hashes
        );
        assert_eq!(
            heads.iter().map(|h| h.count).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(chain.next_lifecycle(), 3);
        assert_eq!(chain.next_telemetry(), 3);
    }

    #[test]
    fn a_resumed_chain_continues_where_the_persisted_one_stopped() {
        // Arrange
        let mut original = Chain::new(Uuid::from_u128(1));
        original.append(&entry(StreamKind::Lifecycle, 1)).unwrap();
        let mut resumed = Chain::resume(
            Uuid::from_u128(1),
            &original.head(),
            original.next_lifecycle(),
            original.next_telemetry(),
        )
        .unwrap();

        // Act
        let a = original.append(&entry(StreamKind::Telemetry, 1)).unwrap();
        let b = resumed.append(&entry(StreamKind::Telemetry, 1)).unwrap();

        // Assert
        assert_eq!(a, b);
        assert_eq!(resumed, original);
    }

    #[test]
    fn the_chain_refuses_duplicates_gaps_and_foreign_entries_without_moving() {
        // Arrange
        let mut chain = Chain::new(Uuid::from_u128(1));
        chain.append(&entry(StreamKind::Telemetry, 1)).unwrap();
        let before = chain.clone();
        let mut foreign = entry(StreamKind::Telemetry, 2);
        foreign.session_id = Uuid::from_u128(2);

        // Act / Assert
        assert!(matches!(
            chain.append(&entry(StreamKind::Telemetry, 1)),
            Err(ChainError::AlreadyChained {
                sequence: 1,
                next: 2,
                ..
            })
        ));
        assert!(matches!(
            chain.append(&entry(StreamKind::Telemetry, 3)),
            Err(ChainError::Gap {
                sequence: 3,
                expected: 2,
                ..
            })
        ));
        assert!(matches!(
            chain.append(&entry(StreamKind::Lifecycle, 2)),
            Err(ChainError::Gap { expected: 1, .. })
        ));
        assert!(matches!(
            chain.append(&foreign),
            Err(ChainError::ForeignSession { .. })
        ));
        assert_eq!(chain, before);
    }

    #[test]
    fn the_genesis_depends_on_the_session() {
        // Arrange / Act
        let a = genesis(Uuid::from_u128(1));
        let b = genesis(Uuid::from_u128(2));

        // Assert
        assert_ne!(a, b);
        assert_eq!(Chain::new(Uuid::from_u128(1)).head().hash, hex::encode(a));
        assert_eq!(Chain::new(Uuid::from_u128(1)).head().count, 0);
    }
}
