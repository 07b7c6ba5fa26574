//! Commands accepted by the `CandidateSession` aggregate.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AssessmentRef, Candidate, ConsentScopes};

/// A request to move a session forward. Each carries the time it was issued at.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    /// Invite a candidate to a published assessment version.
    Invite {
        session_id: Uuid,
        org_id: Uuid,
        candidate: Candidate,
        assessment: AssessmentRef,
        invite_expires_at: DateTime<Utc>,
        invited_by: Uuid,
        at: DateTime<Utc>,
    },
    /// The candidate accepted the monitoring notice.
    RecordConsent {
        notice_version: String,
        scopes: ConsentScopes,
        at: DateTime<Utc>,
    },
    /// The candidate starts the clock.
    Start { at: DateTime<Utc> },
    /// The candidate hands in their work.
    Submit {
        /// Hex SHA-256 digest of the submitted files (see `session::files_digest`).
        files_digest: String,
        file_count: u32,
        at: DateTime<Utc>,
    },
    /// The deadline passed without a submission; issued by the deadline scheduler.
    Expire { at: DateTime<Utc> },
    /// Record the integrity analysis of a finished session; issued by the analysis worker.
    RecordIntegrityAnalysis {
        analysis: Box<crate::integrity::IntegrityAnalysis>,
        at: DateTime<Utc>,
    },
}
