//! Review rules of the `CandidateSession` aggregate: reviewers, rubric scores, comments anchored to
//! replay positions, integrity-finding resolutions and hiring decisions.
//!
//! Nothing is edited in place. An amended score or decision is a new event that names the one it
//! supersedes; only the newest of a chain counts. A review is *completed* when its reviewer has a
//! current score for every rubric criterion and says so; a decision needs at least one completed
//! review, and a reviewer of the session may not decide alone unless the organization allows it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::assessment::Rubric;

/// What happened to an integrity finding once a human looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingResolution {
    /// The reviewer checked the evidence and agrees it is a concern.
    Confirmed,
    /// The reviewer checked the evidence and it has an innocent explanation.
    Dismissed,
}

/// A hiring decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    Advance,
    Reject,
    Hold,
}

impl DecisionOutcome {
    /// The name used in the API and the read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Advance => "advance",
            Self::Reject => "reject",
            Self::Hold => "hold",
        }
    }
}

/// Why a review command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("reviewers can only be reviewed once the session is finished")]
    NotFinished,
    #[error("at least one reviewer is required")]
    NoReviewers,
    #[error("member {0} is not a reviewer of this session")]
    NotAReviewer(Uuid),
    #[error("the rubric has no criterion `{0}`")]
    UnknownCriterion(String),
    #[error("criterion `{criterion}` has no level scoring {score}")]
    UnknownLevel { criterion: String, score: u8 },
    #[error("a justification is required")]
    JustificationRequired,
    #[error("criterion `{0}` is already scored by this reviewer; amend it by naming the score it supersedes")]
    AlreadyScored(String),
    #[error("score {0} is not this reviewer's current score for the criterion")]
    NotCurrentScore(Uuid),
    #[error("the review cannot be completed: criteria {0:?} are not scored")]
    IncompleteReview(Vec<String>),
    #[error("this reviewer already completed their review")]
    ReviewAlreadyCompleted,
    #[error("a comment needs text (at most 10,000 characters)")]
    InvalidComment,
    #[error("there is no finding {ordinal} in the analysis with suite version {suite_version}")]
    UnknownFinding { suite_version: String, ordinal: u32 },
    #[error("a reason is required")]
    ReasonRequired,
    #[error("a decision needs at least one completed review")]
    NoCompletedReview,
    #[error("a reviewer of this session may not record the decision (the organization does not allow it)")]
    ReviewerMayNotDecide,
    #[error("a rationale is required")]
    RationaleRequired,
    #[error("the report hash must be 64 lowercase hex characters")]
    InvalidReportHash,
    #[error("a decision is already recorded; amend it by naming the decision it supersedes")]
    DecisionAlreadyRecorded,
    #[error("decision {0} is not the current decision")]
    NotCurrentDecision(Uuid),
}

/// The review part of a session's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewState {
    pub reviewers: BTreeSet<Uuid>,
    /// Current score id per `reviewer/criterion`.
    pub current_scores: BTreeMap<String, Uuid>,
    pub completed: BTreeSet<Uuid>,
    pub current_decision: Option<Uuid>,
    /// Findings per analysed suite version (for resolutions).
    pub findings: BTreeMap<String, u32>,
}

fn score_key(reviewer: Uuid, criterion: &str) -> String {
    format!("{reviewer}/{criterion}")
}

impl ReviewState {
    /// Checks a score against the rubric and the reviewer's current scores.
    pub fn check_score(
        &self,
        rubric: &Rubric,
        reviewer: Uuid,
        criterion: &str,
        score: u8,
        justification: &str,
        supersedes: Option<Uuid>,
    ) -> Result<(), ReviewError> {
        if !self.reviewers.contains(&reviewer) {
            return Err(ReviewError::NotAReviewer(reviewer));
        }
        let c = rubric
            .criteria
            .iter()
            .find(|c| c.key == criterion)
            .ok_or_else(|| ReviewError::UnknownCriterion(criterion.to_string()))?;
        if !c.levels.iter().any(|l| l.score == score) {
            return Err(ReviewError::UnknownLevel {
                criterion: criterion.to_string(),
                score,
            });
        }
        if justification.trim().is_empty() {
            return Err(ReviewError::JustificationRequired);
        }
        let current = self.current_scores.get(&score_key(reviewer, criterion));
        match (supersedes, current) {
            (None, Some(_)) => Err(ReviewError::AlreadyScored(criterion.to_string())),
            (Some(old), Some(cur)) if old == *cur => Ok(()),
            (Some(old), _) => Err(ReviewError::NotCurrentScore(old)),
            (None, None) => Ok(()),
        }
    }

    /// Checks that a reviewer can complete their review.
    pub fn check_complete(&self, rubric: &Rubric, reviewer: Uuid) -> Result<(), ReviewError> {
        if !self.reviewers.contains(&reviewer) {
            return Err(ReviewError::NotAReviewer(reviewer));
        }
        if self.completed.contains(&reviewer) {
            return Err(ReviewError::ReviewAlreadyCompleted);
        }
        let missing: Vec<String> = rubric
            .criteria
            .iter()
            .filter(|c| {
                !self
                    .current_scores
                    .contains_key(&score_key(reviewer, &c.key))
            })
            .map(|c| c.key.clone())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ReviewError::IncompleteReview(missing))
        }
    }

    /// Checks a decision's preconditions.
    pub fn check_decision(
        &self,
        decided_by: Uuid,
        reviewers_may_decide: bool,
        rationale: &str,
        report_hash: &str,
        supersedes: Option<Uuid>,
    ) -> Result<(), ReviewError> {
        if self.completed.is_empty() {
            return Err(ReviewError::NoCompletedReview);
        }
        if self.reviewers.contains(&decided_by) && !reviewers_may_decide {
            return Err(ReviewError::ReviewerMayNotDecide);
        }
        if rationale.trim().is_empty() {
            return Err(ReviewError::RationaleRequired);
        }
        if report_hash.len() != 64
            || !report_hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ReviewError::InvalidReportHash);
        }
        match (supersedes, self.current_decision) {
            (None, Some(_)) => Err(ReviewError::DecisionAlreadyRecorded),
            (Some(old), Some(cur)) if old == cur => Ok(()),
            (Some(old), _) => Err(ReviewError::NotCurrentDecision(old)),
            (None, None) => Ok(()),
        }
    }

    /// Records a score (the caller applies the event).
    pub fn apply_score(&mut self, score_id: Uuid, reviewer: Uuid, criterion: &str) {
        self.current_scores
            .insert(score_key(reviewer, criterion), score_id);
    }
}

/// The facts a review command needs from outside the aggregate, looked up by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewContext {
    /// The rubric of the session's assessment version.
    pub rubric: Rubric,
    /// Whether the organization lets a session's reviewer record its decision.
    pub reviewers_may_decide: bool,
}

/// Timestamps and ids are chosen by the caller; this just names the pair.
pub type At = DateTime<Utc>;
