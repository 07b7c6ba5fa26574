//! Candidate sessions, staff side: invite, list, read, and the per-session event log. The reads
//! are the `sessions` projection's queries (`clarity_projections::sessions`); blind review is
//! decided here and passed in.

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

use clarity_projections::sessions::event_log::{self, LogPage};
use clarity_projections::sessions::lifecycle::{self, SessionView};

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
        .route(
            "/v1/sessions/{session_id}/extra-time",
            post(grant_extra_time),
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
    /// The candidate's link, relative to this server: `/take/{session_id}#token={token}`. The
    /// token travels in the fragment, which browsers never send to a server.
    pub candidate_link: String,
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
            candidate_link: format!("/take/{session_id}#token={}", token.token),
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
    require_own_session(&state, &member, id).await?;
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

/// Extra time for one candidate (an accommodation).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraTime {
    /// 1 to 480 minutes (at most 480 in all per session).
    #[schema(minimum = 1, maximum = 480)]
    pub minutes: u32,
    /// Why, 1 to 1,000 characters (kept in the audit trail; never shown to the candidate).
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub reason: String,
}

/// The session's time after the grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtraTimeGranted {
    pub session_id: Uuid,
    /// Extra minutes granted in all.
    pub extra_time_minutes: u32,
    /// The new deadline, when the session is running (`null` before the start: the time limit
    /// grows instead).
    pub deadline: Option<DateTime<Utc>>,
}

/// Grants one candidate extra time (admin, hiring manager), before or during the session:
/// recorded as `ExtraTimeGranted`. Before the start the time limit grows; during the session
/// the deadline moves, and the candidate's page shows it. A finished session, or one past its
/// deadline, cannot be reopened.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/extra-time", tag = "sessions", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = ExtraTime,
    responses(
        (status = 200, body = ExtraTimeGranted),
        (status = 403, description = "not an admin or hiring manager", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`extra_time_limit_reached` (480 minutes in all), `session_finished`, `deadline_passed`; `concurrent_modification`: retry.", body = crate::error::ErrorBody),
        (status = 422, description = "`reason_required`, `invalid_extra_time`, or an invalid body", body = crate::error::ErrorBody)))]
pub async fn grant_extra_time(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ExtraTime>,
) -> Result<Json<ExtraTimeGranted>> {
    member.require(INVITERS)?;
    if !(1..=clarity_domain::session::MAX_EXTRA_MINUTES).contains(&body.minutes) {
        return Err(ApiError::invalid(
            "invalid_extra_time",
            "extra time must be 1 to 480 minutes",
        ));
    }
    require_own_session(&state, &member, id).await?;
    let at = state.now();
    state
        .execute(
            Actor::Member(member.member_id),
            member.org_id,
            id,
            SessionCommand::GrantExtraTime {
                minutes: body.minutes,
                reason: body.reason,
                granted_by: member.member_id,
                at,
            },
            at,
        )
        .await?;
    let session = state.load_session(id).await?;
    Ok(Json(ExtraTimeGranted {
        session_id: id,
        extra_time_minutes: session.extra_minutes,
        deadline: session.deadline,
    }))
}

/// The session exists and belongs to the member's organization (404 otherwise, as for another
/// organization's). Read from the aggregate, not the read model: a session invited a moment
/// ago is there at once.
async fn require_own_session(state: &AppState, member: &Member, id: Uuid) -> Result<()> {
    let session = state.load_session(id).await?;
    if session.id.is_none() || session.org_id != Some(member.org_id) {
        return Err(ApiError::not_found("session"));
    }
    Ok(())
}

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
    let rows = lifecycle::list(
        &state.pool,
        member.org_id,
        q.status.as_deref(),
        q.assessment_id,
        limit,
    )
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
    let mut view = lifecycle::find(&state.pool, member.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?;
    view.held_back = clarity_projections::held_back::for_session(&state.pool, id).await?;
    Ok(Json(view))
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
    let blind_to_others_of = blinded.then_some(member.member_id);
    let LogPage {
        entries,
        next_after_offset,
    } = event_log::page(
        &state.pool,
        member.org_id,
        id,
        q.after_offset,
        limit,
        blind_to_others_of,
    )
    .await?;
    crate::access_log::record(&state.pool, &member, crate::access_log::SESSION_EVENTS_READ, Some(id), serde_json::json!({"after_offset": q.after_offset, "limit": limit, "returned": entries.len(), "blinded": blinded})).await?;
    Ok(Json(LogPage {
        entries,
        next_after_offset,
    }))
}

impl crate::extract::BodyText for NewInvite {}
impl crate::extract::BodyText for RevokeAccess {}
impl crate::extract::BodyText for ExtraTime {}
