//! What the candidate does, authenticated by the session token: read the workspace, consent,
//! start, submit. (Telemetry is in `telemetry.rs`.)

use clarity_app::Actor;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clarity_domain::assessment::AssessmentSpec;
use clarity_domain::session::{files_digest, ConsentScopes, SessionCommand, SubmittedFile};
use clarity_domain::CandidateSession;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::CandidateToken;
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/workspace", get(workspace))
        .route("/v1/sessions/{session_id}/consent", post(consent))
        .route("/v1/sessions/{session_id}/start", post(start))
        .route("/v1/sessions/{session_id}/submit", post(submit))
}

/// The candidate's view of their session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    pub session_id: Uuid,
    pub status: String,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    /// The assessment version (tasks, starter files, rubric).
    pub assessment: Option<AssessmentSpec>,
}

fn view(session_id: Uuid, s: &CandidateSession, assessment: Option<AssessmentSpec>) -> Workspace {
    Workspace {
        session_id,
        status: s.status.as_str().to_string(),
        invite_expires_at: s.invite_expires_at,
        started_at: s.started_at,
        deadline: s.deadline,
        assessment,
    }
}

async fn load(state: &AppState, token: &CandidateToken, id: Uuid) -> Result<CandidateSession> {
    token.for_session(id)?;
    let session = state.load_session(id).await?;
    if session.id.is_none() {
        return Err(ApiError::not_found("session"));
    }
    Ok(session)
}

async fn execute(
    state: &AppState,
    token: &CandidateToken,
    id: Uuid,
    command: SessionCommand,
    at: DateTime<Utc>,
) -> Result<CandidateSession> {
    state
        .execute(Actor::Candidate, token.org_id, id, command, at)
        .await?;
    state.load_session(id).await
}

/// The session, its deadline and the assessment content.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/workspace", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), responses(
        (status = 200, body = Workspace)))]
pub async fn workspace(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Workspace>> {
    let session = load(&state, &token, id).await?;
    let assessment = match &session.assessment {
        Some(a) => state
            .load_assessment(a.assessment_id)
            .await?
            .version(a.version)
            .cloned(),
        None => None,
    };
    Ok(Json(view(id, &session, assessment)))
}

/// Consent to the monitoring notice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub notice_version: String,
    pub scopes: ConsentScopes,
}

/// Records the candidate's consent.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/consent", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), request_body = Consent,
    responses(
        (status = 200, body = Workspace),
        (status = 409, description = "`consent_already_recorded`, `session_already_started`, `session_finished`, `invite_expired`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn consent(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Consent>,
) -> Result<Json<Workspace>> {
    load(&state, &token, id).await?;
    let at = state.now();
    let command = SessionCommand::RecordConsent {
        notice_version: body.notice_version,
        scopes: body.scopes,
        at,
    };
    let session = execute(&state, &token, id, command, at).await?;
    Ok(Json(view(id, &session, None)))
}

/// Starts the clock. Answers once the `SessionStarted` event is on the broker (or after 2 s if
/// the relay lags), so that the candidate's telemetry follows it in the session's partition.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/start", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 200, body = Workspace),
        (status = 409, description = "`consent_required`, `session_already_started`, `session_finished`, `invite_expired`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Workspace>> {
    load(&state, &token, id).await?;
    let at = state.now();
    let session = execute(&state, &token, id, SessionCommand::Start { at }, at).await?;
    wait_until_relayed(&state, id, Duration::from_secs(2)).await?;
    Ok(Json(view(id, &session, None)))
}

/// Waits until the relay's checkpoint has passed every stored event of the session.
async fn wait_until_relayed(state: &AppState, id: Uuid, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'CandidateSession' AND e.aggregate_id = $1
               AND NOT EXISTS (SELECT 1 FROM relay_checkpoints c WHERE (e.tx_id, e.position) <= (c.tx_id, c.position)))",
        )
        .bind(id.to_string())
        .fetch_one(&state.pool)
        .await?;
        if !pending || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The submitted work.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    #[schema(min_items = 1)]
    pub files: Vec<SubmittedFile>,
}

/// Submits the work: the files are stored by digest and the digest is recorded in the event.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/submit", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), request_body = Submission,
    responses(
        (status = 200, body = Workspace),
        (status = 409, description = "`session_not_started`, `session_finished`, `deadline_passed`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Submission>,
) -> Result<Json<Workspace>> {
    let session = load(&state, &token, id).await?;
    if body.files.is_empty() || body.files.iter().any(|f| f.path.trim().is_empty()) {
        return Err(ApiError::invalid(
            "invalid_submission",
            "submit at least one file, each with a path",
        ));
    }
    let at = state.now();
    // Check the rules before storing anything, so a refused submission changes nothing.
    if !session.accepts_telemetry(at) {
        return Err(ApiError::from(match session.status {
            clarity_domain::session::SessionStatus::InProgress => {
                clarity_domain::session::SessionError::DeadlinePassed(
                    session.deadline.unwrap_or(at),
                )
            }
            clarity_domain::session::SessionStatus::Submitted
            | clarity_domain::session::SessionStatus::Expired => {
                clarity_domain::session::SessionError::AlreadyFinished(session.status.as_str())
            }
            _ => clarity_domain::session::SessionError::NotStarted,
        }));
    }
    let digest = files_digest(&body.files);
    sqlx::query(
        "INSERT INTO submission_blobs (files_digest, files) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&digest)
    .bind(sqlx::types::Json(&body.files))
    .execute(&state.pool)
    .await?;
    let command = SessionCommand::Submit {
        files_digest: digest,
        file_count: body.files.len() as u32,
        at,
    };
    let session = execute(&state, &token, id, command, at).await?;
    Ok(Json(view(id, &session, None)))
}

impl crate::extract::BodyText for Consent {}
impl crate::extract::BodyText for Submission {
    // submitted files are code.
    const LONG_TEXT: &'static [&'static str] = &["files"];
}
