//! State and rules of the `CandidateSession` aggregate.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::review::{ReviewError, ReviewState};
use super::{AssessmentRef, ConsentScopes, SessionCommand, SessionEvent};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    #[default]
    New,
    Invited,
    Consented,
    InProgress,
    Submitted,
    Expired,
}

impl SessionStatus {
    /// The name used in the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Invited => "invited",
            Self::Consented => "consented",
            Self::InProgress => "in_progress",
            Self::Submitted => "submitted",
            Self::Expired => "expired",
        }
    }
}

/// Why a session command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session already exists")]
    AlreadyInvited,
    #[error("the session does not exist")]
    NotFound,
    #[error("the invitation expired at {0}")]
    InviteExpired(DateTime<Utc>),
    #[error("the invitation must expire in the future")]
    InviteExpiryInPast,
    #[error("consent was already recorded")]
    ConsentAlreadyRecorded,
    #[error("the notice version must be non-empty")]
    InvalidNotice,
    #[error("the candidate must consent before starting")]
    ConsentRequired,
    #[error("the session has already started")]
    AlreadyStarted,
    #[error("the session has not started")]
    NotStarted,
    #[error("the session is already {0}")]
    AlreadyFinished(&'static str),
    #[error("the deadline {0} has passed")]
    DeadlinePassed(DateTime<Utc>),
    #[error("the deadline {0} has not been reached")]
    DeadlineNotReached(DateTime<Utc>),
    #[error("the files digest must be 64 lowercase hex characters")]
    InvalidDigest,
    #[error("candidate name and a valid email are required")]
    InvalidCandidate,
    #[error("the session is still {0}; it is analysed once it is finished")]
    NotFinished(&'static str),
    #[error("the session was already analysed with suite version {0}")]
    AnalysisAlreadyRecorded(String),
    #[error("the candidate's access was already revoked")]
    AccessAlreadyRevoked,
    #[error("the candidate's access was revoked")]
    AccessRevoked,
    #[error("a reason of 1 to 1,000 characters is required")]
    InvalidReason,
    #[error("none of these scopes is currently consented to")]
    NothingToWithdraw,
    #[error("extra time must be 1 to {max} minutes in all; {granted} already granted")]
    InvalidExtraTime { granted: u32, max: u32 },
    #[error("run {0} is still running; wait for its result")]
    RunInProgress(Uuid),
    #[error("no run {0} was requested")]
    UnknownRun(Uuid),
    #[error("run {0} already has its result")]
    RunAlreadyCompleted(Uuid),
    #[error("this session has used its {0} runs")]
    TooManyRuns(u32),
    #[error("the session was already graded with {0}")]
    GradeAlreadyRecorded(String),
    #[error("a grade needs a grader version and a score between 0 and a positive maximum")]
    InvalidGrade,
    #[error(transparent)]
    Review(#[from] ReviewError),
}

/// The aggregate state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidateSession {
    pub id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub status: SessionStatus,
    pub assessment: Option<AssessmentRef>,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// Suite versions the session has been analysed with.
    #[serde(default)]
    pub analysed_with: Vec<String>,
    /// Reviewers, scores, reviews and the decision.
    #[serde(default)]
    pub review: ReviewState,
    /// Staff revoked the candidate's access (`CandidateAccessRevoked`).
    #[serde(default)]
    pub access_revoked: bool,
    /// The scopes the candidate consented to and has not withdrawn.
    #[serde(default)]
    pub consent: ConsentScopes,
    /// Extra minutes granted (`ExtraTimeGranted`), in all.
    #[serde(default)]
    pub extra_minutes: u32,
    /// Runs of the visible tests: requested, the one without a result, those with one.
    #[serde(default)]
    pub runs: RunState,
    /// Grader versions the session has been graded with.
    #[serde(default)]
    pub graded_with: Vec<String>,
}

/// The candidate's runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub requested: u32,
    pub open: Option<Uuid>,
    pub completed: Vec<Uuid>,
}

/// The most extra time a session can be granted, in all (8 hours).
pub const MAX_EXTRA_MINUTES: u32 = 480;

impl CandidateSession {
    /// Whether telemetry may be accepted at `now`: started, not finished, deadline not passed.
    pub fn accepts_telemetry(&self, now: DateTime<Utc>) -> bool {
        self.status == SessionStatus::InProgress && self.deadline.is_some_and(|d| now <= d)
    }

    fn finished(&self) -> Option<SessionError> {
        match self.status {
            SessionStatus::Submitted | SessionStatus::Expired => {
                Some(SessionError::AlreadyFinished(self.status.as_str()))
            }
            _ => None,
        }
    }

    fn decide(&self, command: SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand as C;
        use SessionEvent as E;
        if self.status == SessionStatus::New {
            let C::Invite {
                session_id,
                org_id,
                candidate,
                assessment,
                invite_expires_at,
                invited_by,
                at,
            } = command
            else {
                return Err(SessionError::NotFound);
            };
            if candidate.name.trim().is_empty() || !looks_like_email(&candidate.email) {
                return Err(SessionError::InvalidCandidate);
            }
            if invite_expires_at <= at {
                return Err(SessionError::InviteExpiryInPast);
            }
            return Ok(vec![E::CandidateInvited {
                session_id,
                org_id,
                candidate,
                assessment,
                invite_expires_at,
                invited_by,
                at,
            }]);
        }
        if command.is_review() {
            return self.decide_review(command);
        }
        // Revocation is possible in any state after the invitation (also after the end, to cut
        // the grace period short).
        if let C::RevokeAccess {
            reason,
            revoked_by,
            at,
        } = command
        {
            return self.revoke(reason, revoked_by, at);
        }
        // What the candidate does: refused once their access is revoked (the API refuses the
        // token first; this keeps the rule in the aggregate, whoever issues the command).
        if self.access_revoked
            && matches!(
                command,
                C::RecordConsent { .. }
                    | C::WithdrawConsent { .. }
                    | C::Start { .. }
                    | C::Submit { .. }
            )
        {
            return Err(SessionError::AccessRevoked);
        }
        if let C::RecordIntegrityAnalysis {
            analysis,
            at,
            chain_seal,
        } = command
        {
            if self.finished().is_none() {
                return Err(SessionError::NotFinished(self.status.as_str()));
            }
            if self.analysed_with.contains(&analysis.suite_version) {
                return Err(SessionError::AnalysisAlreadyRecorded(
                    analysis.suite_version,
                ));
            }
            return Ok(vec![E::IntegrityAnalysed {
                analysis,
                at,
                chain_seal,
            }]);
        }
        // A runner's results come whatever the session's state: a run asked for just before
        // the submission finishes after it, and grading needs the session finished.
        if matches!(command, C::CompleteRun { .. } | C::RecordGrade { .. }) {
            return self.decide_run_result(command);
        }
        if let Some(err) = self.finished() {
            return Err(if matches!(command, C::Invite { .. }) {
                SessionError::AlreadyInvited
            } else {
                err
            });
        }
        match command {
            C::Invite { .. } => Err(SessionError::AlreadyInvited),
            C::RecordConsent {
                notice_version,
                notice_sha256,
                scopes,
                at,
            } => {
                match self.status {
                    SessionStatus::Invited => {}
                    SessionStatus::Consented => return Err(SessionError::ConsentAlreadyRecorded),
                    _ => return Err(SessionError::AlreadyStarted),
                }
                if notice_version.trim().is_empty() {
                    return Err(SessionError::InvalidNotice);
                }
                self.check_invite_open(at)?;
                Ok(vec![E::ConsentRecorded {
                    notice_version,
                    scopes,
                    at,
                    notice_sha256,
                }])
            }
            C::WithdrawConsent { scopes, at } => {
                if self.status == SessionStatus::Invited {
                    return Err(SessionError::NothingToWithdraw);
                }
                let withdrawn = self.consent.and(scopes);
                if !withdrawn.any() {
                    return Err(SessionError::NothingToWithdraw);
                }
                Ok(vec![E::ConsentWithdrawn {
                    scopes: withdrawn,
                    at,
                }])
            }
            C::GrantExtraTime {
                minutes,
                reason,
                granted_by,
                at,
            } => {
                let total = self.extra_minutes.saturating_add(minutes);
                if minutes == 0 || total > MAX_EXTRA_MINUTES {
                    return Err(SessionError::InvalidExtraTime {
                        granted: self.extra_minutes,
                        max: MAX_EXTRA_MINUTES,
                    });
                }
                if reason.trim().is_empty() || reason.chars().count() > 1_000 {
                    return Err(SessionError::InvalidReason);
                }
                let deadline = match self.status {
                    SessionStatus::InProgress => {
                        let (_, deadline) = self.running()?;
                        // A deadline already passed cannot be reopened: the work as of the
                        // deadline stands (the scheduler expires it).
                        if at > deadline {
                            return Err(SessionError::DeadlinePassed(deadline));
                        }
                        Some(deadline + Duration::minutes(i64::from(minutes)))
                    }
                    _ => None,
                };
                Ok(vec![E::ExtraTimeGranted {
                    minutes,
                    reason,
                    granted_by,
                    deadline,
                    at,
                }])
            }
            C::RequestRun {
                run_id,
                through_seq,
                at,
            } => {
                if self.access_revoked {
                    return Err(SessionError::AccessRevoked);
                }
                if let Some(e) = self.finished() {
                    return Err(e);
                }
                let (_, deadline) = self.running()?;
                if at > deadline {
                    return Err(SessionError::DeadlinePassed(deadline));
                }
                if let Some(open) = self.runs.open {
                    return Err(SessionError::RunInProgress(open));
                }
                if self.runs.requested >= super::MAX_RUNS_PER_SESSION {
                    return Err(SessionError::TooManyRuns(super::MAX_RUNS_PER_SESSION));
                }
                Ok(vec![E::RunRequested {
                    run_id,
                    through_seq,
                    at,
                }])
            }
            command @ (C::CompleteRun { .. } | C::RecordGrade { .. }) => {
                self.decide_run_result(command)
            }
            C::Start { at } => {
                match self.status {
                    SessionStatus::Invited => return Err(SessionError::ConsentRequired),
                    SessionStatus::Consented => {}
                    _ => return Err(SessionError::AlreadyStarted),
                }
                self.check_invite_open(at)?;
                let minutes = self.assessment.as_ref().map_or(0, |a| a.time_limit_minutes)
                    + self.extra_minutes;
                let deadline = at + Duration::minutes(i64::from(minutes));
                Ok(vec![E::SessionStarted { at, deadline }])
            }
            C::Submit {
                files_digest,
                file_count,
                through_seq,
                at,
            } => {
                let (started_at, deadline) = self.running()?;
                if at > deadline {
                    return Err(SessionError::DeadlinePassed(deadline));
                }
                if files_digest.len() != 64
                    || !files_digest
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(SessionError::InvalidDigest);
                }
                let time_used_seconds = (at - started_at).num_seconds().max(0);
                Ok(vec![E::SessionSubmitted {
                    files_digest,
                    file_count,
                    time_used_seconds,
                    at,
                    through_seq,
                }])
            }
            C::RecordIntegrityAnalysis { .. } => {
                Err(SessionError::NotFinished(self.status.as_str()))
            }
            // Decided by `decide_review` before this match.
            C::AssignReviewers { .. }
            | C::ScoreCriterion { .. }
            | C::CompleteReview { .. }
            | C::AddComment { .. }
            | C::ResolveFinding { .. }
            | C::RecordDecision { .. } => self.decide_review(command),
            C::RevokeAccess {
                reason,
                revoked_by,
                at,
            } => self.revoke(reason, revoked_by, at),
            C::Expire { through_seq, at } => {
                let (started_at, deadline) = self.running()?;
                if at < deadline {
                    return Err(SessionError::DeadlineNotReached(deadline));
                }
                let time_used_seconds = (deadline - started_at).num_seconds();
                Ok(vec![E::SessionExpired {
                    deadline,
                    time_used_seconds,
                    at,
                    through_seq,
                }])
            }
        }
    }

    fn decide_review(&self, command: SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand as C;
        use SessionEvent as E;
        let finished = self.finished().is_some();
        let event = match command {
            C::AssignReviewers {
                reviewers,
                assigned_by,
                at,
            } => {
                let new: Vec<Uuid> = reviewers
                    .into_iter()
                    .filter(|r| !self.review.reviewers.contains(r))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if new.is_empty() {
                    return Err(ReviewError::NoReviewers.into());
                }
                E::ReviewersAssigned {
                    reviewers: new,
                    assigned_by,
                    at,
                }
            }
            _ if !finished => return Err(ReviewError::NotFinished.into()),
            C::ScoreCriterion {
                score_id,
                reviewer,
                criterion,
                score,
                justification,
                supersedes,
                rubric,
                at,
            } => {
                self.review.check_score(
                    &rubric,
                    reviewer,
                    &criterion,
                    score,
                    &justification,
                    supersedes,
                )?;
                E::CriterionScored {
                    score_id,
                    reviewer,
                    criterion,
                    score,
                    justification,
                    supersedes,
                    at,
                }
            }
            C::CompleteReview {
                reviewer,
                rubric,
                at,
            } => {
                self.review.check_complete(&rubric, reviewer)?;
                E::ReviewCompleted { reviewer, at }
            }
            C::AddComment {
                comment_id,
                author,
                replay_seq,
                text,
                at,
            } => {
                if text.trim().is_empty() || text.chars().count() > 10_000 {
                    return Err(ReviewError::InvalidComment.into());
                }
                E::CommentAdded {
                    comment_id,
                    author,
                    replay_seq,
                    text,
                    at,
                }
            }
            C::ResolveFinding {
                suite_version,
                ordinal,
                resolution,
                reason,
                by,
                at,
            } => {
                let known = self.review.findings.get(&suite_version).copied();
                if known.is_none_or(|n| ordinal >= n) {
                    return Err(ReviewError::UnknownFinding {
                        suite_version,
                        ordinal,
                    }
                    .into());
                }
                if reason.trim().is_empty() {
                    return Err(ReviewError::ReasonRequired.into());
                }
                E::FindingResolved {
                    suite_version,
                    ordinal,
                    resolution,
                    reason,
                    by,
                    at,
                }
            }
            C::RecordDecision {
                decision_id,
                outcome,
                rationale,
                decided_by,
                report_hash,
                supersedes,
                reviewers_may_decide,
                at,
                chain_seal,
            } => {
                self.review.check_decision(
                    decided_by,
                    reviewers_may_decide,
                    &rationale,
                    &report_hash,
                    supersedes,
                )?;
                E::DecisionRecorded {
                    decision_id,
                    outcome,
                    rationale,
                    decided_by,
                    report_hash,
                    supersedes,
                    at,
                    chain_seal,
                }
            }
            other => {
                // Not a review command: the caller routes only review commands here.
                return self.decide(other);
            }
        };
        Ok(vec![event])
    }

    fn revoke(
        &self,
        reason: String,
        revoked_by: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        if self.access_revoked {
            return Err(SessionError::AccessAlreadyRevoked);
        }
        if reason.trim().is_empty() || reason.chars().count() > 1_000 {
            return Err(SessionError::InvalidReason);
        }
        Ok(vec![SessionEvent::CandidateAccessRevoked {
            reason,
            revoked_by,
            at,
        }])
    }

    fn check_invite_open(&self, at: DateTime<Utc>) -> Result<(), SessionError> {
        match self.invite_expires_at {
            Some(expiry) if at > expiry => Err(SessionError::InviteExpired(expiry)),
            _ => Ok(()),
        }
    }

    /// A runner's result: a run's (`CompleteRun`) or the grading's (`RecordGrade`).
    fn decide_run_result(
        &self,
        command: SessionCommand,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand as C;
        use SessionEvent as E;
        match command {
            C::CompleteRun { run_id, result, at } => {
                if self.runs.completed.contains(&run_id) {
                    return Err(SessionError::RunAlreadyCompleted(run_id));
                }
                if self.runs.open != Some(run_id) {
                    return Err(SessionError::UnknownRun(run_id));
                }
                Ok(vec![E::RunCompleted { run_id, result, at }])
            }
            C::RecordGrade {
                run_id,
                grader_version,
                through_seq,
                score,
                max_score,
                result,
                at,
            } => {
                if self.finished().is_none() {
                    return Err(SessionError::NotFinished(self.status.as_str()));
                }
                if grader_version.trim().is_empty()
                    || !(max_score.is_finite() && max_score > 0.0)
                    || !(score.is_finite() && (0.0..=max_score).contains(&score))
                {
                    return Err(SessionError::InvalidGrade);
                }
                if self.graded_with.contains(&grader_version) {
                    return Err(SessionError::GradeAlreadyRecorded(grader_version));
                }
                Ok(vec![E::SubmissionGraded {
                    run_id,
                    grader_version,
                    through_seq,
                    score,
                    max_score,
                    result,
                    at,
                }])
            }
            _ => Err(SessionError::NotFound),
        }
    }

    fn running(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), SessionError> {
        match (self.status, self.started_at, self.deadline) {
            (SessionStatus::InProgress, Some(s), Some(d)) => Ok((s, d)),
            _ => Err(SessionError::NotStarted),
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.contains("..") && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && s.chars().count() <= 254 && !s.contains(char::is_whitespace))
}

impl Aggregate for CandidateSession {
    const TYPE: &'static str = "CandidateSession";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SessionEvent::CandidateInvited {
                session_id,
                org_id,
                assessment,
                invite_expires_at,
                ..
            } => {
                self.id = Some(session_id);
                self.org_id = Some(org_id);
                self.assessment = Some(assessment);
                self.invite_expires_at = Some(invite_expires_at);
                self.status = SessionStatus::Invited;
            }
            SessionEvent::ConsentRecorded { scopes, .. } => {
                self.consent = scopes;
                self.status = SessionStatus::Consented
            }
            SessionEvent::ConsentWithdrawn { scopes, .. } => {
                self.consent = self.consent.without(scopes)
            }
            SessionEvent::ExtraTimeGranted {
                minutes, deadline, ..
            } => {
                self.extra_minutes = self.extra_minutes.saturating_add(minutes);
                if deadline.is_some() {
                    self.deadline = deadline;
                }
            }
            SessionEvent::SessionStarted { at, deadline } => {
                self.started_at = Some(at);
                self.deadline = Some(deadline);
                self.status = SessionStatus::InProgress;
            }
            SessionEvent::SessionSubmitted { .. } => self.status = SessionStatus::Submitted,
            SessionEvent::SessionExpired { .. } => self.status = SessionStatus::Expired,
            SessionEvent::CandidateAccessRevoked { .. } => self.access_revoked = true,
            SessionEvent::RunRequested { run_id, .. } => {
                self.runs.requested += 1;
                self.runs.open = Some(run_id);
            }
            SessionEvent::RunCompleted { run_id, .. } => {
                if self.runs.open == Some(run_id) {
                    self.runs.open = None;
                }
                self.runs.completed.push(run_id);
            }
            SessionEvent::SubmissionGraded { grader_version, .. } => {
                self.graded_with.push(grader_version)
            }
            SessionEvent::IntegrityAnalysed { analysis, .. } => {
                let findings = analysis.findings().count() as u32;
                self.review
                    .findings
                    .insert(analysis.suite_version.clone(), findings);
                self.analysed_with.push(analysis.suite_version)
            }
            SessionEvent::ReviewersAssigned { reviewers, .. } => {
                self.review.reviewers.extend(reviewers)
            }
            SessionEvent::CriterionScored {
                score_id,
                reviewer,
                criterion,
                ..
            } => self.review.apply_score(score_id, reviewer, &criterion),
            SessionEvent::ReviewCompleted { reviewer, .. } => {
                self.review.completed.insert(reviewer);
            }
            SessionEvent::DecisionRecorded { decision_id, .. } => {
                self.review.current_decision = Some(decision_id)
            }
            SessionEvent::CommentAdded { .. } | SessionEvent::FindingResolved { .. } => {}
        }
    }
}
