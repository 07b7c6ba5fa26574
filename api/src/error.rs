//! The API's one error type: a stable machine-readable `code`, a human `message`, optional
//! `details`; 5xx causes are logged, never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clarity_app::members::MemberError;
use clarity_app::CommandError;
use clarity_domain::assessment::AssessmentError;
use clarity_domain::session::{ReviewError, SessionError};
use serde::Serialize;
use utoipa::ToSchema;

/// `Result` with the API error as default.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable error code (snake_case).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Structured context, e.g. per-event rejections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// 404 with code `not_found`. Also what another organization's resources answer.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 401 with code `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 with code `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 422 with the given code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500; the cause is logged with its chain and hidden from the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// A failed audit export: 409 `no_signed_checkpoint` when the session has no signed
    /// checkpoint yet (the client may wait for one); anything else — a database error — is a
    /// 500 whose cause is logged, not shown.
    pub fn export_failure(error: crate::audit::ExportError) -> Self {
        match error {
            crate::audit::ExportError::NoSignedCheckpoint(_) => Self::new(
                StatusCode::CONFLICT,
                "no_signed_checkpoint",
                error.to_string(),
            ),
            other => Self::internal(other),
        }
    }

    /// 503 with the given code (a dependency is down; retry later).
    pub fn unavailable(code: &'static str, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, code, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            "a dependency is unavailable; retry later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Every refusal is logged with its reason (the request's method and path are on the
        // enclosing trace span); 5xx causes were logged where they happened, with their chain.
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, reason = %self.message, "request refused");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::internal(error)
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        use SessionError as E;
        let (status, code) = match &error {
            E::AlreadyInvited => (StatusCode::CONFLICT, "session_exists"),
            E::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            E::InviteExpired(_) => (StatusCode::CONFLICT, "invite_expired"),
            E::InviteExpiryInPast => (StatusCode::UNPROCESSABLE_ENTITY, "invite_expiry_in_past"),
            E::ConsentAlreadyRecorded => (StatusCode::CONFLICT, "consent_already_recorded"),
            E::InvalidNotice => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_notice"),
            E::ConsentRequired => (StatusCode::CONFLICT, "consent_required"),
            E::AlreadyStarted => (StatusCode::CONFLICT, "session_already_started"),
            E::NotStarted => (StatusCode::CONFLICT, "session_not_started"),
            E::AlreadyFinished(_) => (StatusCode::CONFLICT, "session_finished"),
            E::DeadlinePassed(_) => (StatusCode::CONFLICT, "deadline_passed"),
            E::DeadlineNotReached(_) => (StatusCode::CONFLICT, "deadline_not_reached"),
            E::InvalidDigest => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_digest"),
            E::InvalidCandidate => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_candidate"),
            E::NotFinished(_) => (StatusCode::CONFLICT, "session_not_finished"),
            E::AnalysisAlreadyRecorded(_) => (StatusCode::CONFLICT, "analysis_already_recorded"),
            E::AccessAlreadyRevoked => (StatusCode::CONFLICT, "access_already_revoked"),
            E::AccessRevoked => (StatusCode::UNAUTHORIZED, "session_token_revoked"),
            E::InvalidReason => (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"),
            E::NothingToWithdraw => (StatusCode::CONFLICT, "nothing_to_withdraw"),
            E::InvalidExtraTime { .. } => (StatusCode::CONFLICT, "extra_time_limit_reached"),
            E::RunInProgress(_) => (StatusCode::CONFLICT, "run_in_progress"),
            E::UnknownRun(_) => (StatusCode::NOT_FOUND, "unknown_run"),
            E::RunAlreadyCompleted(_) => (StatusCode::CONFLICT, "run_already_completed"),
            E::TooManyRuns(_) => (StatusCode::CONFLICT, "run_limit_reached"),
            E::GradeAlreadyRecorded(_) => (StatusCode::CONFLICT, "grade_already_recorded"),
            E::InvalidGrade => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_grade"),
            E::Review(review) => review_status(review),
        };
        Self::new(status, code, error.to_string())
    }
}

/// Status and stable code of a refused review command.
fn review_status(error: &ReviewError) -> (StatusCode, &'static str) {
    use ReviewError as R;
    use StatusCode as S;
    match error {
        R::NotFinished => (S::CONFLICT, "session_not_finished"),
        // Refusals that depend on the session's state, not on the request alone, are 409 (or
        // 404 for a reference to something the session does not have): 422 is kept for
        // requests that break a rule the OpenAPI document states (docs/decisions/0019).
        R::NoReviewers => (S::CONFLICT, "no_new_reviewers"),
        R::NotAReviewer(_) => (S::FORBIDDEN, "not_a_reviewer"),
        R::UnknownCriterion(_) => (S::NOT_FOUND, "unknown_criterion"),
        R::UnknownLevel { .. } => (S::NOT_FOUND, "unknown_level"),
        R::JustificationRequired => (S::UNPROCESSABLE_ENTITY, "justification_required"),
        R::AlreadyScored(_) => (S::CONFLICT, "already_scored"),
        R::NotCurrentScore(_) => (S::CONFLICT, "not_current_score"),
        R::IncompleteReview(_) => (S::CONFLICT, "review_incomplete"),
        R::ReviewAlreadyCompleted => (S::CONFLICT, "review_already_completed"),
        R::InvalidComment => (S::UNPROCESSABLE_ENTITY, "invalid_comment"),
        R::UnknownFinding { .. } => (S::NOT_FOUND, "unknown_finding"),
        R::ReasonRequired => (S::UNPROCESSABLE_ENTITY, "reason_required"),
        R::NoCompletedReview => (S::CONFLICT, "no_completed_review"),
        R::ReviewerMayNotDecide => (S::FORBIDDEN, "reviewer_may_not_decide"),
        R::RationaleRequired => (S::UNPROCESSABLE_ENTITY, "rationale_required"),
        R::InvalidReportHash => (S::UNPROCESSABLE_ENTITY, "invalid_report_hash"),
        R::DecisionAlreadyRecorded => (S::CONFLICT, "decision_already_recorded"),
        R::NotCurrentDecision(_) => (S::CONFLICT, "not_current_decision"),
    }
}

impl From<AssessmentError> for ApiError {
    fn from(error: AssessmentError) -> Self {
        use AssessmentError as E;
        let (status, code) = match &error {
            E::AlreadyExists => (StatusCode::CONFLICT, "assessment_exists"),
            E::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            E::Retired => (StatusCode::CONFLICT, "assessment_retired"),
            E::NothingToPublish => (StatusCode::CONFLICT, "nothing_to_publish"),
            E::InvalidSpec(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_assessment"),
        };
        Self::new(status, code, error.to_string())
    }
}

/// The one mapping of a failed command to an answer: the aggregate's refusal keeps its own
/// status and code (the tables above), a concurrent change is 409 `concurrent_modification`, an
/// unreachable event store 503 `database_unavailable`, any other store failure 500 (its cause
/// logged, not shown).
impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Session(e) => e.into(),
            CommandError::Assessment(e) => e.into(),
            CommandError::Conflict => Self::new(
                StatusCode::CONFLICT,
                "concurrent_modification",
                "the resource changed concurrently; retry",
            ),
            CommandError::NotFound(what) => Self::not_found(what),
            CommandError::Unavailable(e) => Self::unavailable("database_unavailable", e),
            CommandError::Store(e) => Self::internal(e),
        }
    }
}

/// A member that could not be created: 422 `invalid_member`, 409 `member_exists`, or 500.
impl From<MemberError> for ApiError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::Invalid => Self::invalid("invalid_member", error.to_string()),
            MemberError::Exists => {
                Self::new(StatusCode::CONFLICT, "member_exists", error.to_string())
            }
            MemberError::Store(e) => Self::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: CommandError) -> (StatusCode, &'static str) {
        let api = ApiError::from(error);
        (api.status, api.code)
    }

    #[test]
    fn a_failed_command_maps_to_one_status_and_code_per_cause() {
        assert_eq!(
            answer(CommandError::Session(SessionError::AlreadyStarted)),
            (StatusCode::CONFLICT, "session_already_started")
        );
        assert_eq!(
            answer(CommandError::Assessment(AssessmentError::NothingToPublish)),
            (StatusCode::CONFLICT, "nothing_to_publish")
        );
        assert_eq!(
            answer(CommandError::Conflict),
            (StatusCode::CONFLICT, "concurrent_modification")
        );
        assert_eq!(
            answer(CommandError::NotFound("session")),
            (StatusCode::NOT_FOUND, "not_found")
        );
        assert_eq!(
            answer(CommandError::Unavailable("connection refused".into())),
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
        );
        assert_eq!(
            answer(CommandError::Store("row did not decode".into())),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
    }

    #[test]
    fn only_a_missing_checkpoint_is_a_conflict_of_the_audit_export() {
        let session = uuid::Uuid::now_v7();
        let none = ApiError::export_failure(crate::audit::ExportError::NoSignedCheckpoint(session));
        assert_eq!(
            (none.status, none.code),
            (StatusCode::CONFLICT, "no_signed_checkpoint")
        );
        assert!(none.message.contains(&session.to_string()));
        let database = ApiError::export_failure(crate::audit::ExportError::Database(
            sqlx::Error::PoolTimedOut,
        ));
        assert_eq!(
            (database.status, database.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert!(!database.message.contains("pool"), "{}", database.message);
    }

    #[test]
    fn a_store_failure_is_not_shown_to_the_client() {
        let api = ApiError::from(CommandError::Store("password=hunter2".into()));
        assert!(!api.message.contains("hunter2"), "{}", api.message);
    }
}
