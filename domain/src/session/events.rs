//! Events of the `CandidateSession` aggregate.
//!
//! These types are the payloads on the topics and in the event store, so they are *tolerant
//! readers*: none denies unknown fields, because a newer producer may add optional fields
//! (docs/events.md, "Versions and evolution") and an older reader must still load the event.
//! The HTTP API checks request bodies strictly on its own side (`api::extract::ApiJson`).

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::assessment::Format;
use crate::integrity::IntegrityAnalysis;
use crate::session::review::{DecisionOutcome, FindingResolution};
use crate::session::runs::RunResult;
use crate::session::CandidateSession;
use crate::upcast;

/// Who is being assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Candidate {
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub name: String,
    /// `local@domain.tld`: one `@`, a dotted domain, no whitespace.
    #[schema(
        pattern = "^[^@\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+@[^@.\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+(\\.[^@.\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+)+$",
        max_length = 254
    )]
    pub email: String,
    /// The candidate's id in the customer's ATS, if any.
    #[serde(default)]
    pub external_ref: Option<String>,
}

/// The facts about the assessment version a session uses, copied at invite time so that the
/// session never depends on a later read of the assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssessmentRef {
    pub assessment_id: Uuid,
    pub version: u32,
    pub title: String,
    pub format: Format,
    pub time_limit_minutes: u32,
    pub spec_digest: String,
}

/// What the candidate agreed to be monitored with. Analyses outside the scopes never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ConsentScopes {
    /// Keystroke timing used as a behavioural signal (never the characters typed).
    pub keystroke_dynamics: bool,
    /// Face-continuity checks computed on the candidate's device (scores only, no images).
    pub face_continuity: bool,
}

impl ConsentScopes {
    /// Whether any scope is set.
    pub fn any(self) -> bool {
        self.keystroke_dynamics || self.face_continuity
    }

    /// The scopes set here and not in `other`.
    pub fn without(self, other: ConsentScopes) -> ConsentScopes {
        ConsentScopes {
            keystroke_dynamics: self.keystroke_dynamics && !other.keystroke_dynamics,
            face_continuity: self.face_continuity && !other.face_continuity,
        }
    }

    /// The scopes set both here and in `other`.
    pub fn and(self, other: ConsentScopes) -> ConsentScopes {
        ConsentScopes {
            keystroke_dynamics: self.keystroke_dynamics && other.keystroke_dynamics,
            face_continuity: self.face_continuity && other.face_continuity,
        }
    }
}

/// A chain head sealed into one of the session's own events: "when this was written, the
/// session's audit chain had `count` entries ending in `hash`" (see `audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainSeal {
    pub count: u64,
    /// Lowercase hex SHA-256.
    pub hash: String,
}

/// Everything that can happen to a candidate session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub enum SessionEvent {
    /// A candidate was invited; a session token was issued to them out of band.
    CandidateInvited {
        session_id: Uuid,
        org_id: Uuid,
        candidate: Candidate,
        assessment: AssessmentRef,
        invite_expires_at: DateTime<Utc>,
        invited_by: Uuid,
        at: DateTime<Utc>,
    },
    /// The candidate accepted a version of the monitoring notice.
    ConsentRecorded {
        /// The notice's id (e.g. `monitoring-notice-v1`; free text before notices were stored).
        notice_version: String,
        scopes: ConsentScopes,
        at: DateTime<Utc>,
        /// Lowercase hex SHA-256 of the notice text the candidate was shown (from 2026-12 on;
        /// absent in earlier events).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice_sha256: Option<String>,
    },
    /// The candidate withdrew consent to some scopes: their capture stops from here on, the
    /// server refuses their telemetry, and the analyses that need them do not run.
    ConsentWithdrawn {
        /// The scopes withdrawn (`true` = withdrawn now).
        scopes: ConsentScopes,
        at: DateTime<Utc>,
    },
    /// Staff granted the candidate extra time (an accommodation). Before the start it lengthens
    /// the time limit; during the session it moves the deadline.
    ExtraTimeGranted {
        minutes: u32,
        /// Why, for the audit trail (shown to staff, never to the candidate).
        reason: String,
        granted_by: Uuid,
        /// The new deadline, when the session was already running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    /// The clock started (v2; v1 called `at` `started_at`, see [`SessionStartedV1`]).
    SessionStarted {
        /// When the clock started.
        at: DateTime<Utc>,
        deadline: DateTime<Utc>,
    },
    /// The candidate submitted. The submission is the workspace the telemetry log reconstructs
    /// through `through_seq`; `files_digest` names the files the client sent with it (stored in
    /// `submission_blobs`), which the integrity analysis compares with that reconstruction.
    SessionSubmitted {
        files_digest: String,
        file_count: u32,
        time_used_seconds: i64,
        at: DateTime<Utc>,
        /// The highest telemetry `seq` acknowledged when the session was submitted (absent in
        /// events from before 2026-12, whose submission is the client's files).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through_seq: Option<u64>,
    },
    /// The candidate asked the server to run their visible tests on the workspace the log
    /// reconstructs through `through_seq`; a runner picks it up (docs/runner.md).
    RunRequested {
        run_id: Uuid,
        through_seq: u64,
        at: DateTime<Utc>,
    },
    /// A runner ran the visible tests of a `RunRequested` in its sandbox.
    RunCompleted {
        run_id: Uuid,
        result: Box<RunResult>,
        at: DateTime<Utc>,
    },
    /// A runner ran the assessment's hidden checks on the submitted files (the workspace the
    /// log reconstructs through the finish's `through_seq`). A later grader version adds another
    /// event beside this one; none replaces an earlier grade.
    SubmissionGraded {
        run_id: Uuid,
        grader_version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through_seq: Option<u64>,
        /// The weight of the checks passed, and of all checks.
        score: f64,
        max_score: f64,
        result: Box<RunResult>,
        at: DateTime<Utc>,
    },
    /// Staff revoked the candidate's access (a leaked link, a withdrawn application): the
    /// session token stops working at once, whatever the session's state. The session itself
    /// is not ended by this: an unfinished one still expires at its deadline.
    CandidateAccessRevoked {
        /// Why, for the audit trail (shown to staff, never to the candidate).
        reason: String,
        revoked_by: Uuid,
        at: DateTime<Utc>,
    },
    /// The deadline passed; the work as of the deadline stands as the submission.
    SessionExpired {
        deadline: DateTime<Utc>,
        time_used_seconds: i64,
        at: DateTime<Utc>,
        /// The highest telemetry `seq` acknowledged when the session expired: the submission is
        /// the workspace the log reconstructs through it (absent in events from before 2026-12).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through_seq: Option<u64>,
    },
    /// The integrity detectors ran over the finished session. Evidence for a human reviewer,
    /// never a verdict; a later suite version adds another event beside this one.
    IntegrityAnalysed {
        analysis: Box<IntegrityAnalysis>,
        at: DateTime<Utc>,
        /// The audit chain head when the analysis was recorded: it covers the submission (or
        /// expiry) and every telemetry event the analysis read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain_seal: Option<ChainSeal>,
    },
    /// Members were made reviewers of the session.
    ReviewersAssigned {
        reviewers: Vec<Uuid>,
        assigned_by: Uuid,
        at: DateTime<Utc>,
    },
    /// A reviewer scored one rubric criterion at one of its levels. With `supersedes`, this score
    /// amends the reviewer's earlier one, which no longer counts.
    CriterionScored {
        score_id: Uuid,
        reviewer: Uuid,
        criterion: String,
        score: u8,
        justification: String,
        #[serde(default)]
        supersedes: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// A reviewer scored every criterion and submitted their review.
    ReviewCompleted { reviewer: Uuid, at: DateTime<Utc> },
    /// A comment anchored to a replay position (telemetry `seq`).
    CommentAdded {
        comment_id: Uuid,
        author: Uuid,
        replay_seq: u64,
        text: String,
        at: DateTime<Utc>,
    },
    /// A human confirmed or dismissed an integrity finding, with the reason.
    FindingResolved {
        suite_version: String,
        ordinal: u32,
        resolution: FindingResolution,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    /// A hiring decision, with the hash of the report version the decider was looking at. With
    /// `supersedes`, it amends the earlier decision, which no longer counts.
    DecisionRecorded {
        decision_id: Uuid,
        outcome: DecisionOutcome,
        rationale: String,
        decided_by: Uuid,
        report_hash: String,
        #[serde(default)]
        supersedes: Option<Uuid>,
        at: DateTime<Utc>,
        /// The audit chain head the decision rested on (all telemetry, the submission, the
        /// analyses and reviews recorded before it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain_seal: Option<ChainSeal>,
    },
}

impl SessionEvent {
    /// The stable type name (also the cqrs-es `event_type`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::CandidateInvited { .. } => "CandidateInvited",
            Self::ConsentRecorded { .. } => "ConsentRecorded",
            Self::ConsentWithdrawn { .. } => "ConsentWithdrawn",
            Self::ExtraTimeGranted { .. } => "ExtraTimeGranted",
            Self::SessionStarted { .. } => "SessionStarted",
            Self::SessionSubmitted { .. } => "SessionSubmitted",
            Self::SessionExpired { .. } => "SessionExpired",
            Self::CandidateAccessRevoked { .. } => "CandidateAccessRevoked",
            Self::RunRequested { .. } => "RunRequested",
            Self::RunCompleted { .. } => "RunCompleted",
            Self::SubmissionGraded { .. } => "SubmissionGraded",
            Self::IntegrityAnalysed { .. } => "IntegrityAnalysed",
            Self::ReviewersAssigned { .. } => "ReviewersAssigned",
            Self::CriterionScored { .. } => "CriterionScored",
            Self::ReviewCompleted { .. } => "ReviewCompleted",
            Self::CommentAdded { .. } => "CommentAdded",
            Self::FindingResolved { .. } => "FindingResolved",
            Self::DecisionRecorded { .. } => "DecisionRecorded",
        }
    }
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        self.name().to_string()
    }

    /// The version this build writes: the newest one the upcaster registry knows.
    fn event_version(&self) -> String {
        upcast::current_version(CandidateSession::TYPE, self.name()).to_string()
    }
}

/// `SessionStarted` as version 1 wrote it. Kept for the published v1 schema; records of this
/// shape are upcast by [`session_started_v1_to_v2`] before they are decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionStartedV1 {
    /// When the clock started (`at` from v2 on).
    pub started_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

/// `SessionStarted` v1 → v2: `started_at` becomes `at`, the name every other lifecycle event
/// uses for "when it happened". Every other field, known or not, is kept as it is.
pub(crate) fn session_started_v1_to_v2(mut data: Value) -> Result<Value, String> {
    let fields = data
        .as_object_mut()
        .ok_or_else(|| "`data` is not an object".to_string())?;
    let started_at = fields
        .remove("started_at")
        .ok_or_else(|| "`started_at` is missing".to_string())?;
    fields.insert("at".to_string(), started_at);
    Ok(data)
}
