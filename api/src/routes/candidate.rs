//! What the candidate does, authenticated by the session token: read the workspace, consent,
//! start, submit. (Telemetry is in `telemetry.rs`.)

use clarity_app::Actor;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clarity_domain::assessment::{
    AssessmentKind, AssessmentSpec, Difficulty, Format, IntegrityPolicy, Task,
};
use clarity_domain::session::{files_digest, ConsentScopes, SessionCommand, SubmittedFile};
use clarity_domain::CandidateSession;
use clarity_projections::replay::seek;
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
        .route("/v1/sessions/{session_id}/notice", get(notice))
        .route("/v1/sessions/{session_id}/consent", post(consent))
        .route("/v1/sessions/{session_id}/consent/withdraw", post(withdraw))
        .route("/v1/sessions/{session_id}/start", post(start))
        .route("/v1/sessions/{session_id}/resume", get(resume))
        .route("/v1/sessions/{session_id}/submit", post(submit))
}

/// What a candidate may see of the assessment: the tasks, their prompts and starter files, the
/// time limit, and what is monitored. Never the rubric, reviewer notes or hidden tests: this type
/// has no field for them, so no candidate answer can carry them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateAssessment {
    pub title: String,
    pub kind: AssessmentKind,
    pub difficulty: Difficulty,
    pub format: Format,
    pub time_limit_minutes: u32,
    pub tasks: Vec<Task>,
    /// What the workspace monitors (the assessment's integrity policy); the optional scopes
    /// among these need the candidate's consent.
    pub monitoring: IntegrityPolicy,
}

impl From<&AssessmentSpec> for CandidateAssessment {
    fn from(spec: &AssessmentSpec) -> Self {
        Self {
            title: spec.title.clone(),
            kind: spec.kind,
            difficulty: spec.difficulty,
            format: spec.format,
            time_limit_minutes: spec.time_limit_minutes,
            tasks: spec.tasks.clone(),
            monitoring: spec.integrity_policy,
        }
    }
}

/// What the candidate consented to.
#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateConsent {
    /// The optional monitoring consented to and not withdrawn.
    pub scopes: ConsentScopes,
}

/// The candidate's view of their session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    pub session_id: Uuid,
    pub status: String,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    /// When the session ends (extra time included).
    pub deadline: Option<DateTime<Utc>>,
    /// Extra minutes granted by the organization, in all.
    pub extra_time_minutes: u32,
    /// The candidate's consent (`null` before they consented).
    pub consent: Option<CandidateConsent>,
    /// The assessment as candidates see it (`GET /workspace` only).
    pub assessment: Option<CandidateAssessment>,
}

fn view(
    session_id: Uuid,
    s: &CandidateSession,
    assessment: Option<CandidateAssessment>,
) -> Workspace {
    let consented = !matches!(
        s.status,
        clarity_domain::session::SessionStatus::New
            | clarity_domain::session::SessionStatus::Invited
    );
    Workspace {
        session_id,
        status: s.status.as_str().to_string(),
        invite_expires_at: s.invite_expires_at,
        started_at: s.started_at,
        deadline: s.deadline,
        extra_time_minutes: s.extra_minutes,
        consent: consented.then_some(CandidateConsent { scopes: s.consent }),
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

/// The session's assessment version.
async fn spec(state: &AppState, session: &CandidateSession) -> Result<AssessmentSpec> {
    let a = session
        .assessment
        .as_ref()
        .ok_or_else(|| ApiError::not_found("session"))?;
    state
        .load_assessment(a.assessment_id)
        .await?
        .version(a.version)
        .cloned()
        .ok_or_else(|| ApiError::not_found("assessment version"))
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

/// The session, its deadline and the assessment as candidates see it.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/workspace", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), responses(
        (status = 200, body = Workspace)))]
pub async fn workspace(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Workspace>> {
    let session = load(&state, &token, id).await?;
    let assessment = CandidateAssessment::from(&spec(&state, &session).await?);
    Ok(Json(view(id, &session, Some(assessment))))
}

/// The monitoring notice the candidate consents to.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitoringNotice {
    /// Send it back with the consent.
    pub notice_id: String,
    /// Lowercase hex SHA-256 of the notice's text; send it back with the consent.
    pub content_sha256: String,
    pub title: String,
    /// Plain text, paragraphs separated by blank lines.
    pub body: String,
    /// The optional scopes this assessment uses, each off unless the candidate turns it on.
    pub optional_scopes: Vec<String>,
}

/// The scopes the assessment's policy uses.
fn offered(policy: &IntegrityPolicy) -> ConsentScopes {
    ConsentScopes {
        keystroke_dynamics: policy.keystroke_dynamics,
        face_continuity: policy.face_continuity,
    }
}

fn scope_names(scopes: ConsentScopes) -> Vec<String> {
    let mut names = Vec::new();
    if scopes.keystroke_dynamics {
        names.push("keystroke_dynamics".to_string());
    }
    if scopes.face_continuity {
        names.push("face_continuity".to_string());
    }
    names
}

/// The current monitoring notice, with the optional scopes this assessment uses.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/notice", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), responses(
        (status = 200, body = MonitoringNotice)))]
pub async fn notice(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<MonitoringNotice>> {
    let session = load(&state, &token, id).await?;
    let policy = spec(&state, &session).await?.integrity_policy;
    let current = clarity_domain::notice::current();
    Ok(Json(MonitoringNotice {
        notice_id: current.id.to_string(),
        content_sha256: current.sha256(),
        title: current.title().to_string(),
        body: current.body().to_string(),
        optional_scopes: scope_names(offered(&policy)),
    }))
}

/// Consent to the monitoring notice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// `notice_id` of `GET /notice`.
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub notice_id: String,
    /// `content_sha256` of `GET /notice`: the text the candidate read.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub notice_sha256: String,
    pub scopes: ConsentScopes,
}

/// Records the candidate's consent to the current notice, with the optional scopes they chose.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/consent", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), request_body = Consent,
    responses(
        (status = 200, body = Workspace),
        (status = 409, description = "`notice_outdated`: not the current notice or not its text (read `GET /notice` again); `consent_already_recorded`, `session_already_started`, `session_finished`, `invite_expired`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn consent(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Consent>,
) -> Result<Json<Workspace>> {
    load(&state, &token, id).await?;
    let current = clarity_domain::notice::current();
    if body.notice_id != current.id || body.notice_sha256 != current.sha256() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "notice_outdated",
            "consent must name the current monitoring notice and its content hash; read it again",
        )
        .with_details(serde_json::json!({
            "notice_id": current.id,
            "content_sha256": current.sha256(),
        })));
    }
    let at = state.now();
    let command = SessionCommand::RecordConsent {
        notice_version: body.notice_id,
        notice_sha256: Some(body.notice_sha256),
        scopes: body.scopes,
        at,
    };
    let session = execute(&state, &token, id, command, at).await?;
    Ok(Json(view(id, &session, None)))
}

/// Scopes to withdraw consent to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    #[schema(min_items = 1)]
    pub scopes: Vec<ConsentScope>,
}

/// An optional monitoring scope.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentScope {
    KeystrokeDynamics,
    FaceContinuity,
}

/// Withdraws consent to scopes: from now on their telemetry is refused at ingest, and the
/// analyses that need them do not run. The session goes on.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/consent/withdraw", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), request_body = Withdrawal,
    responses(
        (status = 200, body = Workspace),
        (status = 409, description = "`nothing_to_withdraw`: none of the scopes is consented to; `session_finished`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn withdraw(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Withdrawal>,
) -> Result<Json<Workspace>> {
    load(&state, &token, id).await?;
    if body.scopes.is_empty() {
        return Err(ApiError::invalid(
            "invalid_withdrawal",
            "name at least one scope to withdraw",
        ));
    }
    let mut scopes = ConsentScopes::default();
    for scope in body.scopes {
        match scope {
            ConsentScope::KeystrokeDynamics => scopes.keystroke_dynamics = true,
            ConsentScope::FaceContinuity => scopes.face_continuity = true,
        }
    }
    let at = state.now();
    let command = SessionCommand::WithdrawConsent { scopes, at };
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

/// Where a page continues from: the server's acknowledged `seq` and the files its replay
/// reconstructs through it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resume {
    pub status: String,
    pub deadline: Option<DateTime<Utc>>,
    /// The highest telemetry `seq` the server acknowledged; the page numbers on from it.
    pub acked_seq: i64,
    /// The workspace the telemetry log reconstructs through `acked_seq`, by path.
    pub files: Vec<SubmittedFile>,
}

/// How long `resume` waits for the replay to reach the acknowledged `seq`.
const RESUME_WAIT: Duration = Duration::from_secs(3);

/// The files as the server reconstructs them from the telemetry it acknowledged, and that
/// `seq`: what a reloaded page (or another device) continues from.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/resume", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 200, body = Resume),
        (status = 503, description = "`resume_not_ready`: the server's replay has not yet caught up with what it acknowledged; retry after `Retry-After` seconds.", body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::response::Response> {
    let session = load(&state, &token, id).await?;
    let acked: i64 =
        sqlx::query_scalar("SELECT last_seq FROM telemetry_cursors WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .unwrap_or(0);
    let files = match reconstruct(&state, token.org_id, id, acked, RESUME_WAIT).await? {
        Some(files) => files,
        None => {
            let mut answer = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "resume_not_ready",
                "the server is still catching up with your last changes; retry in a moment",
            )
            .into_response();
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            return Ok(answer);
        }
    };
    Ok(Json(Resume {
        status: session.status.as_str().to_string(),
        deadline: session.deadline,
        acked_seq: acked,
        files,
    })
    .into_response())
}

/// The workspace the session's telemetry reconstructs through `through` (empty at 0), once the
/// replay projection has applied it; `None` if it has not within `wait`.
pub async fn reconstruct(
    state: &AppState,
    org_id: Uuid,
    id: Uuid,
    through: i64,
    wait: Duration,
) -> Result<Option<Vec<SubmittedFile>>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(files) = seek::files_through(&state.pool, org_id, id, through).await? {
            return Ok(Some(
                files
                    .into_iter()
                    .map(|(path, content)| SubmittedFile { path, content })
                    .collect(),
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    /// The files as the page holds them (optional). The submission itself is what the
    /// telemetry log reconstructs; files sent here that differ from it become an integrity
    /// finding with the difference as evidence.
    #[serde(default)]
    #[schema(min_items = 1)]
    pub files: Option<Vec<SubmittedFile>>,
}

/// Submits the work. The submission is the workspace the telemetry log reconstructs through the
/// last acknowledged `seq` (recorded in the event); the client's files, if sent, are stored by
/// digest for the integrity analysis to compare.
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
    // Leave `files` out to send none; an empty list or a file without a path is malformed.
    if body
        .files
        .as_ref()
        .is_some_and(|f| f.is_empty() || f.iter().any(|f| f.path.trim().is_empty()))
    {
        return Err(ApiError::invalid(
            "invalid_submission",
            "send at least one file, each with a path, or leave `files` out",
        ));
    }
    let files = body.files.unwrap_or_default();
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
    let digest = files_digest(&files);
    sqlx::query(
        "INSERT INTO submission_blobs (files_digest, files) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&digest)
    .bind(sqlx::types::Json(&files))
    .execute(&state.pool)
    .await?;
    let through_seq: i64 =
        sqlx::query_scalar("SELECT last_seq FROM telemetry_cursors WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .unwrap_or(0);
    let command = SessionCommand::Submit {
        files_digest: digest,
        file_count: files.len() as u32,
        through_seq: Some(through_seq.max(0) as u64),
        at,
    };
    let session = execute(&state, &token, id, command, at).await?;
    Ok(Json(view(id, &session, None)))
}

impl crate::extract::BodyText for Consent {}
impl crate::extract::BodyText for Withdrawal {}
impl crate::extract::BodyText for Submission {
    // submitted files are code.
    const LONG_TEXT: &'static [&'static str] = &["files"];
}
