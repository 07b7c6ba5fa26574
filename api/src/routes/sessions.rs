//! Candidate sessions, staff side: invite, list, read, and the per-session event log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use clarity_app::Actor;
use clarity_domain::assessment::AssessmentStatus;
use clarity_domain::session::{AssessmentRef, Candidate, SessionCommand};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{issue, Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

const INVITERS: &[Role] = &[Role::Admin, Role::HiringManager];
const READERS: &[Role] = &[
    Role::Admin,
    Role::HiringManager,
    Role::Reviewer,
    Role::Auditor,
];
const LOG_READERS: &[Role] = &[Role::Admin, Role::Reviewer, Role::Auditor];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(invite).get(list))
        .route("/v1/sessions/{session_id}", get(show))
        .route("/v1/sessions/{session_id}/events", get(events))
        .route(
            "/v1/sessions/{session_id}/revoke-access",
            post(revoke_access),
        )
}

/// An invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    pub assessment_id: Uuid,
    /// Published version to use; the latest when omitted.
    #[serde(default)]
    pub version: Option<u32>,
    pub candidate: Candidate,
    /// Hours until the invitation lapses if not started (1 to 2160, default 168).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160)]
    pub invite_expires_in_hours: Option<i64>,
}

/// A created session and the candidate's token (shown once; deliver it to the candidate).
#[derive(Debug, Serialize, ToSchema)]
pub struct Invited {
    pub session_id: Uuid,
    pub candidate_token: String,
    pub assessment_id: Uuid,
    pub assessment_version: u32,
    pub invite_expires_at: DateTime<Utc>,
}

/// Invites a candidate to a published assessment version (admin, hiring manager). Answers once
/// the session is readable (`GET /v1/sessions/{id}`, the list), or after at most 5 s when the
/// read models lag (the invitation is stored either way).
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", security(("api_key" = [])), request_body = NewInvite,
    responses(
        (status = 201, body = Invited),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such assessment (or version) visible to the organization.", body = crate::error::ErrorBody),
        (status = 409, description = "`assessment_retired`, `assessment_not_published`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    member: Member,
    ApiJson(new): ApiJson<NewInvite>,
) -> Result<(StatusCode, Json<Invited>)> {
    member.require(INVITERS)?;
    let hours = new.invite_expires_in_hours.unwrap_or(168);
    if !(1..=2160).contains(&hours) {
        return Err(ApiError::invalid(
            "invalid_invite_expiry",
            "invite_expires_in_hours must be between 1 and 2160",
        ));
    }
    let assessment = state.load_assessment(new.assessment_id).await?;
    let visible =
        assessment.id.is_some() && assessment.org_id.is_none_or(|org| org == member.org_id);
    if !visible {
        return Err(ApiError::not_found("assessment"));
    }
    if assessment.status == AssessmentStatus::Retired {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "assessment_retired",
            "the assessment is retired",
        ));
    }
    let version = new.version.or(assessment.latest_version()).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "assessment_not_published",
            "the assessment has no published version",
        )
    })?;
    let spec = assessment
        .version(version)
        .ok_or_else(|| ApiError::not_found("assessment version"))?;
    let at = state.now();
    let session_id = Uuid::now_v7();
    let token = issue("cst", session_id);
    sqlx::query("INSERT INTO session_tokens (session_id, org_id, secret_hash) VALUES ($1, $2, $3)")
        .bind(session_id)
        .bind(member.org_id)
        .bind(&token.secret_hash)
        .execute(&state.pool)
        .await?;
    let invite_expires_at = at + Duration::hours(hours);
    let command = SessionCommand::Invite {
        session_id,
        org_id: member.org_id,
        candidate: new.candidate,
        assessment: AssessmentRef {
            assessment_id: new.assessment_id,
            version,
            title: spec.title.clone(),
            format: spec.format,
            time_limit_minutes: spec.time_limit_minutes,
            spec_digest: spec.digest(),
        },
        invite_expires_at,
        invited_by: member.member_id,
        at,
    };
    let executed = state
        .execute(
            Actor::Member(member.member_id),
            member.org_id,
            session_id,
            command,
            at,
        )
        .await;
    if let Err(error) = executed {
        // Refused (e.g. invalid_candidate): withdraw the token issued for it, so nothing remains.
        sqlx::query("DELETE FROM session_tokens WHERE session_id = $1")
            .bind(session_id)
            .execute(&state.pool)
            .await?;
        return Err(error);
    }
    // The client reads the session next (GET /v1/sessions/{id}, the list): answer once the
    // sessions read model has it (read-your-writes, as for assessments; never fails the invite).
    state
        .wait_until_projected(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = $1)",
            session_id,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invited {
            session_id,
            candidate_token: token.token,
            assessment_id: new.assessment_id,
            assessment_version: version,
            invite_expires_at,
        }),
    ))
}

/// Why the candidate's access is revoked (kept in the audit trail; never shown to the candidate).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeAccess {
    /// 1 to 1,000 characters, not only whitespace.
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub reason: String,
}

/// The revocation, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessRevoked {
    pub session_id: Uuid,
    pub revoked_at: DateTime<Utc>,
}

/// Revokes the candidate's session token (admin, hiring manager): from now on it answers 401
/// `session_token_revoked`, whatever the session's state. Recorded as the event
/// `CandidateAccessRevoked`. An unfinished session still expires at its deadline; its telemetry
/// up to now is kept.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/revoke-access", tag = "sessions", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = RevokeAccess,
    responses(
        (status = 200, body = AccessRevoked),
        (status = 400, description = "malformed JSON", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "not an admin or hiring manager", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`access_already_revoked`", body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody),
        (status = 422, description = "`reason_required`, or an invalid body", body = crate::error::ErrorBody)))]
pub async fn revoke_access(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RevokeAccess>,
) -> Result<Json<AccessRevoked>> {
    member.require(INVITERS)?;
    // The aggregate, not the read model: a session invited a moment ago can be revoked at once.
    let session = state.load_session(id).await?;
    if session.id.is_none() || session.org_id != Some(member.org_id) {
        return Err(ApiError::not_found("session"));
    }
    let at = state.now();
    state
        .execute(
            Actor::Member(member.member_id),
            member.org_id,
            id,
            SessionCommand::RevokeAccess {
                reason: body.reason,
                revoked_by: member.member_id,
                at,
            },
            at,
        )
        .await?;
    Ok(Json(AccessRevoked {
        session_id: id,
        revoked_at: at,
    }))
}

/// A session as the `sessions` projection has it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct SessionView {
    pub session_id: Uuid,
    pub status: Option<String>,
    pub assessment_id: Option<Uuid>,
    pub assessment_version: Option<i32>,
    pub assessment_title: Option<String>,
    pub candidate_name: Option<String>,
    pub candidate_email: Option<String>,
    pub candidate_ref: Option<String>,
    pub invited_at: Option<DateTime<Utc>>,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub consented_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    /// When staff revoked the candidate's access (their link stopped working then), and why.
    pub access_revoked_at: Option<DateTime<Utc>>,
    pub access_revoked_reason: Option<String>,
    pub time_used_seconds: Option<i64>,
    pub files_digest: Option<String>,
    pub lifecycle_events: i64,
    pub telemetry_events: i64,
    pub keystrokes: i64,
    pub edits: i64,
    pub pastes: i64,
    pub focus_losses: i64,
    pub code_runs: i64,
    pub face_checks: i64,
    pub last_seq: i64,
    /// Present while records of this session are held back (quarantined): this view does not
    /// count them yet.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<crate::held_back::HeldBack>,
}

const SESSION_COLUMNS: &str = "session_id, status, assessment_id, assessment_version, assessment_title, candidate_name,
    candidate_email, candidate_ref, invited_at, invite_expires_at, consented_at, started_at, deadline, submitted_at,
    expired_at, access_revoked_at, access_revoked_reason, time_used_seconds, files_digest, lifecycle_events, telemetry_events, keystrokes, edits, pastes,
    focus_losses, code_runs, face_checks, last_seq";

/// Filters for listing sessions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub status: Option<String>,
    pub assessment_id: Option<Uuid>,
    /// At most 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Lists the organization's sessions, newest first.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("api_key" = [])), params(ListQuery),
    responses(
        (status = 200, body = [SessionView]),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<SessionView>>> {
    member.require(READERS)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    let rows = sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE org_id = $1 AND ($2::text IS NULL OR status = $2)
         AND ($3::uuid IS NULL OR assessment_id = $3) ORDER BY invited_at DESC NULLS LAST, session_id LIMIT $4"
    ))
    .bind(member.org_id)
    .bind(q.status)
    .bind(q.assessment_id)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// One session of the organization.
#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = "sessions", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), responses(
        (status = 200, body = SessionView),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<SessionView>> {
    member.require(READERS)?;
    let row = sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = $1 AND org_id = $2"
    ))
    .bind(id)
    .bind(member.org_id)
    .fetch_optional(&state.pool)
    .await?;
    let mut view: SessionView = row.ok_or_else(|| ApiError::not_found("session"))?;
    view.held_back = crate::held_back::for_session(&state.pool, id).await?;
    Ok(Json(view))
}

/// One entry of the per-session log.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct LogEntry {
    /// `lifecycle` or `telemetry`.
    pub stream_kind: String,
    pub seq: i64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub data: serde_json::Value,
}

/// Paging through the log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Return entries after this Kafka offset (exclusive); from the start when omitted.
    pub after_offset: Option<i64>,
    /// At most 5000; default 1000.
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<i64>,
}

/// A page of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// Pass as `after_offset` to get the next page; absent at the end.
    pub next_after_offset: Option<i64>,
}

/// The ordered, de-duplicated event log of a session (admin, reviewer, auditor). Blind for a
/// member who reviews the session and has not completed their review: the other reviewers'
/// `CriterionScored` events and others' `DecisionRecorded` events are left out.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/events", tag = "sessions", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), LogQuery), responses(
        (status = 200, body = LogPage),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<LogPage>> {
    member.require(LOG_READERS)?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit must be between 1 and 5000",
        ));
    }
    state.require_session_in_org(id, member.org_id).await?;
    // Blind review, as on `/review`: a member who reviews this session and has not completed
    // their review gets the log without the other reviewers' scores (their `CriterionScored`
    // events) and without the decisions resting on them (`DecisionRecorded`), whatever their
    // role.
    let blinded = state.is_pending_reviewer(id, member.member_id).await?;
    let entries: Vec<LogEntry> = sqlx::query_as(
        "SELECT stream_kind, seq, event_type, occurred_at, kafka_partition, kafka_offset, data FROM session_events
         WHERE session_id = $1 AND org_id = $2 AND kafka_offset > $3
           AND NOT ($5 AND stream_kind = 'lifecycle'
                    AND ((event_type = 'CriterionScored' AND data->>'reviewer' IS DISTINCT FROM $6::text)
                         OR (event_type = 'DecisionRecorded' AND data->>'decided_by' IS DISTINCT FROM $6::text)))
         ORDER BY kafka_offset LIMIT $4",
    )
    .bind(id)
    .bind(member.org_id)
    .bind(q.after_offset.unwrap_or(-1))
    .bind(limit)
    .bind(blinded)
    .bind(member.member_id.to_string())
    .fetch_all(&state.pool)
    .await?;
    let next_after_offset = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.kafka_offset))
        .flatten();
    crate::access_log::record(&state.pool, &member, crate::access_log::SESSION_EVENTS_READ, Some(id), serde_json::json!({"after_offset": q.after_offset, "limit": limit, "returned": entries.len(), "blinded": blinded})).await?;
    Ok(Json(LogPage {
        entries,
        next_after_offset,
    }))
}

impl crate::extract::BodyText for NewInvite {}
impl crate::extract::BodyText for RevokeAccess {}
