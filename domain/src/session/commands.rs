//! Commands accepted by the `CandidateSession` aggregate.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::review::{DecisionOutcome, FindingResolution};
use super::{AssessmentRef, Candidate, ConsentScopes};
use crate::assessment::Rubric;

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
        notice_sha256: Option<String>,
        scopes: ConsentScopes,
        at: DateTime<Utc>,
    },
    /// The candidate withdraws consent to the scopes set in `scopes`.
    WithdrawConsent {
        scopes: ConsentScopes,
        at: DateTime<Utc>,
    },
    /// Staff grant extra time (before or during the session).
    GrantExtraTime {
        minutes: u32,
        reason: String,
        granted_by: Uuid,
        at: DateTime<Utc>,
    },
    /// The candidate starts the clock.
    Start { at: DateTime<Utc> },
    /// The candidate hands in their work.
    Submit {
        /// Hex SHA-256 digest of the submitted files (see `session::files_digest`).
        files_digest: String,
        file_count: u32,
        /// The highest telemetry `seq` acknowledged at submission.
        through_seq: Option<u64>,
        at: DateTime<Utc>,
    },
    /// The candidate asks for a run of the visible tests (through the acknowledged `seq`).
    RequestRun {
        run_id: Uuid,
        through_seq: u64,
        at: DateTime<Utc>,
    },
    /// A runner reports a requested run; issued by the runner.
    CompleteRun {
        run_id: Uuid,
        result: Box<super::RunResult>,
        at: DateTime<Utc>,
    },
    /// A runner reports the grading of the finished session; issued by the runner.
    RecordGrade {
        run_id: Uuid,
        grader_version: String,
        through_seq: Option<u64>,
        score: f64,
        max_score: f64,
        result: Box<super::RunResult>,
        at: DateTime<Utc>,
    },
    /// Staff revoke the candidate's session token.
    RevokeAccess {
        reason: String,
        revoked_by: Uuid,
        at: DateTime<Utc>,
    },
    /// The deadline passed without a submission; issued by the deadline scheduler.
    Expire {
        /// The highest telemetry `seq` acknowledged at expiry.
        through_seq: Option<u64>,
        at: DateTime<Utc>,
    },
    /// Record the integrity analysis of a finished session; issued by the analysis worker.
    RecordIntegrityAnalysis {
        analysis: Box<crate::integrity::IntegrityAnalysis>,
        at: DateTime<Utc>,
        chain_seal: Option<super::ChainSeal>,
    },
    /// Make members reviewers of the session.
    AssignReviewers {
        reviewers: Vec<Uuid>,
        assigned_by: Uuid,
        at: DateTime<Utc>,
    },
    /// A reviewer scores a criterion (or amends their score with `supersedes`). `rubric` is the
    /// session's assessment version's rubric, looked up by the caller.
    ScoreCriterion {
        score_id: Uuid,
        reviewer: Uuid,
        criterion: String,
        score: u8,
        justification: String,
        supersedes: Option<Uuid>,
        rubric: Rubric,
        at: DateTime<Utc>,
    },
    /// A reviewer submits their review.
    CompleteReview {
        reviewer: Uuid,
        rubric: Rubric,
        at: DateTime<Utc>,
    },
    /// A comment at a replay position.
    AddComment {
        comment_id: Uuid,
        author: Uuid,
        replay_seq: u64,
        text: String,
        at: DateTime<Utc>,
    },
    /// Confirm or dismiss an integrity finding.
    ResolveFinding {
        suite_version: String,
        ordinal: u32,
        resolution: FindingResolution,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    /// Record (or amend) the hiring decision. `reviewers_may_decide` is the organization's setting.
    RecordDecision {
        decision_id: Uuid,
        outcome: DecisionOutcome,
        rationale: String,
        decided_by: Uuid,
        report_hash: String,
        supersedes: Option<Uuid>,
        reviewers_may_decide: bool,
        at: DateTime<Utc>,
        chain_seal: Option<super::ChainSeal>,
    },
}

impl SessionCommand {
    /// Whether the command belongs to the review part of the session (reviewers, scores,
    /// comments, finding resolutions, decisions).
    pub fn is_review(&self) -> bool {
        matches!(
            self,
            Self::AssignReviewers { .. }
                | Self::ScoreCriterion { .. }
                | Self::CompleteReview { .. }
                | Self::AddComment { .. }
                | Self::ResolveFinding { .. }
                | Self::RecordDecision { .. }
        )
    }
}
