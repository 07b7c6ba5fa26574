//! Clarity's read side: every read model's projection (the SQL that maintains its tables from the
//! topics) and, beside it, the queries that read it — replay seek, leaderboards, the candidate
//! report, the audit export, what is held back. The HTTP handlers only authorize, extract and map
//! errors; what they read comes from here.
//!
//! | read model | projection | queries |
//! |---|---|---|
//! | catalogue | [`catalogue`] | (the assessment routes) |
//! | sessions | [`sessions`] (split by concern) | [`leaderboard`], [`audit_trail`], [`report`] |
//! | replay | [`replay`] | [`replay::seek`] |
//! | quarantine (written by the consumer runtime) | — | [`held_back`] |
//!
//! Configuration comes in as values ([`ProjectionConfig`]); nothing here reads the environment.
//!
//! A projection receives a batch of [`Record`]s (already decoded Kafka records) and applies them
//! inside a transaction owned by the consumer runtime, which writes the partition offsets in the
//! same transaction. Each projection de-duplicates by (stream, sequence) itself, so a record seen
//! twice (relay re-publish, retried batch) changes nothing the second time.

pub mod catalogue;
pub mod held_back;
pub mod replay;
pub mod replay_engine;
pub mod report;
pub mod sessions;

// The parts of `sessions` other crates name, at the paths they have always had.
pub use sessions::{audit_chain, audit_trail, integrity, leaderboard, reviews, scores};

/// What the projections need from the deployment, built by the caller (the roles build it from
/// their configuration) and passed to [`Projection::apply`] and [`Projection::catch_up`].
#[derive(Debug, Clone, Default)]
pub struct ProjectionConfig {
    /// How the audit chain signs checkpoints (part of `sessions`).
    pub audit: audit_chain::AuditConfig,
    /// The replay's keyframe interval.
    pub replay: replay::ReplayConfig,
}

use clarity_domain::wire::{StreamKind, WireEvent};
use sqlx::PgConnection;

/// A decoded record from a topic, with its position.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Decoded once per batch and shared by the topic's projections.
    pub event: std::sync::Arc<WireEvent>,
}

impl Record {
    /// The error that sets this record aside (`projection_rejects`) with a reason.
    pub fn undecodable(&self, reason: &str) -> ProjectionError {
        ProjectionError::Undecodable {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            reason: reason.to_string(),
        }
    }

    /// The session (stream id) and organization of a sessions-topic record. (A `sequence` past
    /// the tables' `bigint` never gets this far: `WireEvent::from_payload`, which every reader
    /// decodes with, refuses it.)
    pub fn session_and_org(&self) -> Result<(uuid::Uuid, uuid::Uuid), ProjectionError> {
        let session_id = self
            .event
            .subject
            .parse()
            .map_err(|_| self.undecodable("subject is not a uuid"))?;
        let org_id = self
            .event
            .orgid
            .ok_or_else(|| self.undecodable("orgid is missing"))?;
        Ok((session_id, org_id))
    }
}

/// Errors a projection can raise. Database errors roll the whole batch back.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("record {topic}/{partition}@{offset} cannot be projected: {reason}")]
    Undecodable {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
}

/// The projections this build knows, by the name used on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// `catalogue_assessments`, `catalogue_versions` from the assessments topic.
    Catalogue,
    /// `sessions`, `session_events` and the review, score, integrity and audit tables
    /// ([`sessions::TABLES`]) from the sessions topic; also enqueues `integrity_jobs` when a
    /// session finishes.
    Sessions,
    /// `replay_sessions`, `replay_keyframes`, `replay_markers` from the sessions topic.
    Replay,
}

/// Which topic feeds which projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    Assessments,
    Sessions,
}

impl Feed {
    /// The name used for consumer groups and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Assessments => "assessments",
            Self::Sessions => "sessions",
        }
    }
}

impl Projection {
    /// Every projection, in the order `clarity consume` starts them.
    pub const ALL: [Projection; 3] = [
        Projection::Catalogue,
        Projection::Sessions,
        Projection::Replay,
    ];

    /// The name used for offsets, locks and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Self::Catalogue => "catalogue",
            Self::Sessions => "sessions",
            Self::Replay => "replay",
        }
    }

    /// Looks a projection up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The topic this projection reads.
    pub fn feed(self) -> Feed {
        match self {
            Self::Catalogue => Feed::Assessments,
            Self::Sessions | Self::Replay => Feed::Sessions,
        }
    }

    /// The tables the projection owns, children first (the order a rebuild clears them in).
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Catalogue => &["catalogue_versions", "catalogue_assessments"],
            Self::Sessions => sessions::TABLES,
            Self::Replay => &["replay_markers", "replay_keyframes", "replay_sessions"],
        }
    }

    /// Whether a record (its stream kind and sequence) must wait behind an earlier unresolved
    /// quarantined record of the same stream (its kind and sequence, `None` when unknown), rather
    /// than be applied past it. A record only ever waits behind one of its own kind with a lower
    /// sequence — one it would have to follow in the stream's order; a quarantined record whose
    /// sequence is far ahead, unknown or of the other kind holds nothing (a hostile record
    /// cannot freeze a session). Within that: the catalogue (a fold over an assessment's events:
    /// `last_sequence`) and the replay (a fold over a session's telemetry in `seq` order, its time
    /// base from the lifecycle) wait; `sessions` holds lifecycle events (its status, decision and
    /// score columns are last-writer-wins), while telemetry, whose log rows and counters do not
    /// depend on order, moves on (its audit chain waits instead: see [`audit_chain`]).
    /// Decision 0017.
    pub fn holds_behind(
        self,
        blocker: Option<(StreamKind, Option<u64>)>,
        record: (StreamKind, u64),
    ) -> bool {
        let follows = matches!(
            blocker,
            Some((kind, Some(blocker_seq))) if kind == record.0 && blocker_seq < record.1
        );
        match self {
            Self::Catalogue | Self::Replay => follows,
            Self::Sessions => follows && record.0 == StreamKind::Lifecycle,
        }
    }

    /// After records of `stream` were applied late (a quarantine retry), brings the parts of the
    /// projection that follow the stream in order up to date with what was applied past them,
    /// for records before `before_offset` (all when `None`). For `sessions` this chains the log
    /// rows the audit chain had to leave out while it waited for the late record; the other
    /// projections hold their later records instead, so there is nothing to do. Returns how many
    /// rows it brought up to date.
    pub async fn catch_up(
        self,
        config: &ProjectionConfig,
        conn: &mut PgConnection,
        stream: uuid::Uuid,
        before_offset: Option<i64>,
    ) -> Result<u64, ProjectionError> {
        match self {
            Self::Sessions => {
                Ok(audit_chain::extend(&config.audit, conn, stream, before_offset).await?)
            }
            Self::Catalogue | Self::Replay => Ok(0),
        }
    }

    /// Applies a batch of records in order inside the caller's transaction.
    pub async fn apply(
        self,
        config: &ProjectionConfig,
        conn: &mut PgConnection,
        records: &[Record],
    ) -> Result<(), ProjectionError> {
        match self {
            Self::Catalogue => catalogue::apply(conn, records).await,
            Self::Sessions => sessions::apply(config, conn, records).await,
            Self::Replay => replay::apply(&config.replay, conn, records).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_depends_on_order_waits_behind_a_quarantined_record() {
        use StreamKind::{Lifecycle, Telemetry};
        for projection in [Projection::Catalogue, Projection::Replay] {
            // Behind a record of its kind that it follows in the stream's order.
            assert!(projection.holds_behind(Some((Lifecycle, Some(3))), (Lifecycle, 4)));
            // Not behind one far ahead (or unknown, or of the other kind, or undecodable).
            assert!(!projection.holds_behind(Some((Lifecycle, Some(9))), (Lifecycle, 4)));
            assert!(!projection.holds_behind(Some((Lifecycle, None)), (Lifecycle, 4)));
            assert!(!projection.holds_behind(None, (Lifecycle, 4)));
        }
        let replay = Projection::Replay;
        assert!(replay.holds_behind(Some((Telemetry, Some(7))), (Telemetry, 8)));
        assert!(!replay.holds_behind(Some((Telemetry, Some(1 << 63))), (Telemetry, 8)));
        assert!(!replay.holds_behind(Some((Lifecycle, Some(2))), (Telemetry, 8)));
        // `sessions`: lifecycle behind lifecycle; telemetry never (its rows and counts do not
        // depend on order; its audit chain waits instead).
        let sessions = Projection::Sessions;
        assert!(sessions.holds_behind(Some((Lifecycle, Some(2))), (Lifecycle, 3)));
        assert!(!sessions.holds_behind(Some((Lifecycle, Some(5))), (Lifecycle, 3)));
        assert!(!sessions.holds_behind(Some((Lifecycle, Some(2))), (Telemetry, 3)));
        assert!(!sessions.holds_behind(Some((Telemetry, Some(2))), (Lifecycle, 3)));
        assert!(!sessions.holds_behind(Some((Telemetry, Some(2))), (Telemetry, 3)));
        assert!(!sessions.holds_behind(None, (Lifecycle, 3)));
    }
}
