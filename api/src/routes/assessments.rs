//! Assessments: the built-in library and the organization's own tests. Reads are the `catalogue`
//! projection's queries (`clarity_projections::catalogue`); changes go through the `Assessment`
//! aggregate.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clarity_app::Actor;
use clarity_domain::assessment::{AssessmentCommand, AssessmentSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use clarity_projections::catalogue::{self, AssessmentSummary, VersionView};

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

const AUTHORS: &[Role] = &[Role::Admin, Role::HiringManager];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/assessments", get(list).post(create))
        .route("/v1/assessments/{assessment_id}", get(show))
        .route("/v1/assessments/{assessment_id}/draft", put(revise))
        .route("/v1/assessments/{assessment_id}/publish", post(publish))
        .route("/v1/assessments/{assessment_id}/retire", post(retire))
        .route(
            "/v1/assessments/{assessment_id}/versions/{version}",
            get(show_version),
        )
}

/// Lists the built-in library and the organization's own assessments.
#[utoipa::path(get, path = "/v1/assessments", tag = "assessments", security(("api_key" = [])),
    responses(
        (status = 200, body = [AssessmentSummary])))]
pub async fn list(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<Vec<AssessmentSummary>>> {
    Ok(Json(catalogue::list(&state.pool, member.org_id).await?))
}

/// An assessment with its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentDetail {
    #[serde(flatten)]
    pub summary: AssessmentSummary,
    #[schema(value_type = Option<AssessmentSpec>)]
    pub draft: Option<serde_json::Value>,
    pub versions: Vec<VersionView>,
}

async fn visible_summary(
    state: &AppState,
    member: &Member,
    id: Uuid,
) -> Result<(AssessmentSummary, Option<serde_json::Value>)> {
    catalogue::visible(&state.pool, member.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("assessment"))
}

/// One assessment with its draft and every published version.
#[utoipa::path(get, path = "/v1/assessments/{assessment_id}", tag = "assessments", security(("api_key" = [])),
    params(("assessment_id" = Uuid, Path)), responses(
        (status = 200, body = AssessmentDetail)))]
pub async fn show(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AssessmentDetail>> {
    let (summary, draft) = visible_summary(&state, &member, id).await?;
    let versions = catalogue::versions(&state.pool, id).await?;
    Ok(Json(AssessmentDetail {
        summary,
        draft,
        versions,
    }))
}

/// One published version.
#[utoipa::path(get, path = "/v1/assessments/{assessment_id}/versions/{version}", tag = "assessments", security(("api_key" = [])),
    params(("assessment_id" = Uuid, Path), ("version" = i32, Path)), responses(
        (status = 200, body = VersionView)))]
pub async fn show_version(
    State(state): State<AppState>,
    member: Member,
    ApiPath((id, version)): ApiPath<(Uuid, i32)>,
) -> Result<Json<VersionView>> {
    visible_summary(&state, &member, id).await?;
    let row = catalogue::version(&state.pool, id, version).await?;
    Ok(Json(row.ok_or_else(|| {
        ApiError::not_found("assessment version")
    })?))
}

/// A new assessment draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssessment {
    pub spec: AssessmentSpec,
}

/// The result of an assessment command.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentAccepted {
    pub assessment_id: Uuid,
    pub status: String,
    pub latest_version: Option<u32>,
    pub has_draft: bool,
}

async fn execute(
    state: &AppState,
    member: &Member,
    id: Uuid,
    command: AssessmentCommand,
    at: DateTime<Utc>,
) -> Result<AssessmentAccepted> {
    state
        .execute(
            Actor::Member(member.member_id),
            member.org_id,
            id,
            command,
            at,
        )
        .await?;
    // The client reads the assessment next from the catalogue (GET /v1/assessments/{id}): answer
    // once the catalogue has the event just stored.
    state
        .wait_until_projected(
            "SELECT COALESCE((SELECT c.last_sequence >= (SELECT max(sequence) FROM events
                 WHERE aggregate_type = 'Assessment' AND aggregate_id = $1::text)
               FROM catalogue_assessments c WHERE c.assessment_id = $1), false)",
            id,
        )
        .await?;
    let a = state.load_assessment(id).await?;
    Ok(AssessmentAccepted {
        assessment_id: id,
        status: format!("{:?}", a.status).to_lowercase(),
        latest_version: a.latest_version(),
        has_draft: a.draft.is_some(),
    })
}

/// Only the owning organization may change an assessment; the built-in library is read-only.
async fn owned(state: &AppState, member: &Member, id: Uuid) -> Result<()> {
    member.require(AUTHORS)?;
    let a = state.load_assessment(id).await?;
    match (a.id, a.org_id) {
        (Some(_), Some(org)) if org == member.org_id => Ok(()),
        (Some(_), None) => Err(ApiError::forbidden(
            "the built-in library is read-only; create your own assessment",
        )),
        _ => Err(ApiError::not_found("assessment")),
    }
}

/// Creates an assessment with its first draft (admin, hiring manager).
#[utoipa::path(post, path = "/v1/assessments", tag = "assessments", security(("api_key" = [])), request_body = NewAssessment,
    responses(
        (status = 201, body = AssessmentAccepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_assessment`: the spec breaks a rule its schema states, or one it cannot: criterion keys and starter file paths unique, level scores increasing. Also the request body errors below.", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    member: Member,
    ApiJson(new): ApiJson<NewAssessment>,
) -> Result<(StatusCode, Json<AssessmentAccepted>)> {
    member.require(AUTHORS)?;
    let id = Uuid::now_v7();
    let at = state.now();
    let command = AssessmentCommand::CreateDraft {
        assessment_id: id,
        org_id: Some(member.org_id),
        spec: new.spec,
        at,
    };
    Ok((
        StatusCode::CREATED,
        Json(execute(&state, &member, id, command, at).await?),
    ))
}

/// Replaces the working draft (admin, hiring manager).
#[utoipa::path(put, path = "/v1/assessments/{assessment_id}/draft", tag = "assessments", security(("api_key" = [])),
    params(("assessment_id" = Uuid, Path)), request_body = NewAssessment,
    responses(
        (status = 200, body = AssessmentAccepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this, or the assessment is in the read-only built-in library.", body = crate::error::ErrorBody),
        (status = 409, description = "`assessment_retired`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_assessment`: the spec breaks a rule its schema states, or one it cannot: criterion keys and starter file paths unique, level scores increasing. Also the request body errors below.", body = crate::error::ErrorBody)))]
pub async fn revise(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(new): ApiJson<NewAssessment>,
) -> Result<Json<AssessmentAccepted>> {
    owned(&state, &member, id).await?;
    let at = state.now();
    Ok(Json(
        execute(
            &state,
            &member,
            id,
            AssessmentCommand::ReviseDraft { spec: new.spec, at },
            at,
        )
        .await?,
    ))
}

/// Publishes the draft as the next immutable version (admin, hiring manager).
#[utoipa::path(post, path = "/v1/assessments/{assessment_id}/publish", tag = "assessments", security(("api_key" = [])),
    params(("assessment_id" = Uuid, Path)),
    responses(
        (status = 200, body = AssessmentAccepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this, or the assessment is in the read-only built-in library.", body = crate::error::ErrorBody),
        (status = 409, description = "`nothing_to_publish`, `assessment_retired`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AssessmentAccepted>> {
    owned(&state, &member, id).await?;
    let at = state.now();
    Ok(Json(
        execute(&state, &member, id, AssessmentCommand::Publish { at }, at).await?,
    ))
}

/// Retires the assessment: no new invitations (admin, hiring manager).
#[utoipa::path(post, path = "/v1/assessments/{assessment_id}/retire", tag = "assessments", security(("api_key" = [])),
    params(("assessment_id" = Uuid, Path)),
    responses(
        (status = 200, body = AssessmentAccepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this, or the assessment is in the read-only built-in library.", body = crate::error::ErrorBody),
        (status = 409, description = "`assessment_retired`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn retire(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<AssessmentAccepted>> {
    owned(&state, &member, id).await?;
    let at = state.now();
    Ok(Json(
        execute(&state, &member, id, AssessmentCommand::Retire { at }, at).await?,
    ))
}

impl crate::extract::BodyText for NewAssessment {
    // the prompt, starter files and rubric are long by nature.
    const LONG_TEXT: &'static [&'static str] = &["spec"];
}
