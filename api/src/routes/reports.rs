//! Candidate reports and leaderboards, for hiring managers, admins and auditors.
//!
//! A report is computed from the read models when asked for (`clarity_projections::report`);
//! each distinct content is stored once in `report_versions` under its content hash (SHA-256 of
//! the canonical JSON, as in the audit trail), and a decision must name the hash of a version that
//! was served, so what the decider saw can be shown again exactly (`?version=<hash>`). The
//! leaderboards are `clarity_projections::leaderboard`'s. This module checks roles and blind
//! review, validates parameters and maps errors.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, FixedOffset, Utc};
use clarity_projections::audit_trail;
use clarity_projections::leaderboard::{self, Board, Cohort};
use clarity_projections::report;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::{complete_your_review_first, AppState};

const READERS: &[Role] = &[Role::Admin, Role::HiringManager, Role::Auditor];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/report", get(report))
        .route(
            "/v1/assessments/{assessment_id}/versions/{version}/leaderboard",
            get(board),
        )
        .route("/v1/sessions/{session_id}/audit/bundle", get(bundle))
        .route(
            "/v1/sessions/{session_id}/submission.zip",
            get(submission_zip),
        )
        .route("/v1/leaderboard", get(org_board))
}

/// The session's self-contained audit bundle (auditor, admin): every event up to the latest
/// signed checkpoint, their hashes, the checkpoint, its signature and the public key. Check it
/// offline with `clarity verify bundle.json --public-key <GET /v1/audit/public-key>`.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/audit/bundle", tag = "reports", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 200, body = Object),
        (status = 403, description = "`forbidden`: the caller's role may not do this; `complete_your_review_first`: the caller reviews the session and has not completed their review.", body = crate::error::ErrorBody),
        (status = 409, description = "`no_signed_checkpoint`: the session has no signed audit checkpoint yet (it is not finished, or the consumers sign nothing).", body = crate::error::ErrorBody)))]
pub async fn bundle(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::response::Response> {
    member.require(&[Role::Admin, Role::Auditor])?;
    state.require_session_in_org(id, member.org_id).await?;
    // The bundle must hold every event to verify, so a pending reviewer (an admin can be one)
    // cannot have it with the scores left out: they get it after completing their review.
    state
        .require_not_pending_reviewer(id, member.member_id, "the audit bundle")
        .await?;
    let bundle = audit_trail::export(&state.pool, id)
        .await
        .map_err(ApiError::export_failure)?;
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::AUDIT_BUNDLE_EXPORT,
        Some(id),
        json!({"count": bundle.checkpoint.count}),
    )
    .await?;
    // Written once, straight from the bundle (the entries and this text are the only copies).
    let body = serde_json::to_vec(&bundle).map_err(ApiError::internal)?;
    drop(bundle);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// The submitted files as a zip (admin, hiring manager, auditor, reviewer): the workspace the
/// session's telemetry reconstructs through the submission's `seq` — never the client's own
/// copy. 409 `submission_not_ready` until the session is finished and its replay reached that
/// `seq` (or for sessions from before submissions were reconstructed).
#[utoipa::path(get, path = "/v1/sessions/{session_id}/submission.zip", tag = "reports", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 200, description = "`application/zip`", content_type = "application/zip", body = Vec<u8>),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`submission_not_ready`: not finished, or not yet reconstructed; retry later.", body = crate::error::ErrorBody)))]
pub async fn submission_zip(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::response::Response> {
    member.require(&[
        Role::Admin,
        Role::HiringManager,
        Role::Auditor,
        Role::Reviewer,
    ])?;
    state.require_session_in_org(id, member.org_id).await?;
    let Some((through_seq, files)) =
        report::submitted_files(&state.pool, member.org_id, id).await?
    else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "submission_not_ready",
            "the session is not finished, or its submission is not reconstructed yet",
        ));
    };
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::SUBMISSION_DOWNLOAD,
        Some(id),
        json!({"through_seq": through_seq, "files": files.len()}),
    )
    .await?;
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, content)| (path.as_str(), content.as_bytes()))
        .collect();
    let body = crate::zip::stored(&entries);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/zip"),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                axum::http::HeaderValue::from_str(&format!(
                    "attachment; filename=\"submission-{id}.zip\""
                ))
                .map_err(ApiError::internal)?,
            ),
        ],
        body,
    )
        .into_response())
}

/// A served report version.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub session_id: Uuid,
    /// SHA-256 (hex) of the canonical JSON of `content`; name it when recording a decision.
    pub content_hash: String,
    /// When this exact content was first served.
    pub first_served_at: DateTime<Utc>,
    /// Status, time used, per-criterion scores (each reviewer and the aggregate), code runs,
    /// integrity summary with replay links, cohort percentile and rank, the current decision;
    /// and `held_back` (a `HeldBack`) while records of the session are quarantined — part of the
    /// hashed content, so such a report is a version of its own.
    #[schema(value_type = Object)]
    pub content: Value,
}

/// Which version to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// A content hash served earlier (e.g. the one a decision names); the current report when
    /// omitted.
    pub version: Option<String>,
}

/// The candidate report (admin, hiring manager, auditor). A member who reviews the session sees
/// it only after completing their review (403 `complete_your_review_first`). The sessions a
/// member reviews and has not completed are left out of the cohort (as on the leaderboards), and
/// a stored version of a report whose cohort holds one of them answers 403 too.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/report", tag = "reports", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), ReportParams),
    responses(
        (status = 200, body = Report),
        (status = 403, description = "`forbidden`: the caller's role may not do this; `complete_your_review_first`: the caller reviews the session and has not completed their review.", body = crate::error::ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> Result<Json<Report>> {
    member.require(READERS)?;
    // Blind review: a member who reviews this session sees others' scores only after completing
    // their own review, whatever their role.
    state
        .require_not_pending_reviewer(id, member.member_id, "the report")
        .await?;
    // Blind review on the cohort: the caller's pending reviews are left out of it, as on the
    // leaderboards.
    let withheld = leaderboard::pending_reviews(&state.pool, member.member_id).await?;
    if let Some(hash) = params.version {
        // A stored version is frozen: it may rank this session among sessions the caller reviews
        // and has not completed. Shown once they have.
        if report::ranks_withheld(&state.pool, member.org_id, id, &withheld).await? {
            return Err(complete_your_review_first(
                "a stored report version ranks this session among sessions you review: it opens once your reviews are completed".into(),
            ));
        }
        let (content, first_served_at) =
            report::stored_version(&state.pool, member.org_id, id, &hash)
                .await?
                .ok_or_else(|| ApiError::not_found("report version"))?;
        crate::access_log::record(
            &state.pool,
            &member,
            crate::access_log::REPORT_READ,
            Some(id),
            json!({"version": hash}),
        )
        .await?;
        return Ok(Json(Report {
            session_id: id,
            content_hash: hash,
            first_served_at,
            content,
        }));
    }
    let content = report::build(&state.pool, member.org_id, id, &withheld)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?
        .to_json();
    let content_hash = report::content_hash(&content);
    let first_served_at = report::record_served(
        &state.pool,
        member.org_id,
        id,
        member.member_id,
        &content_hash,
        &content,
    )
    .await?;
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REPORT_READ,
        Some(id),
        json!({"version": content_hash}),
    )
    .await?;
    Ok(Json(Report {
        session_id: id,
        content_hash,
        first_served_at,
        content,
    }))
}

/// Leaderboard filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BoardParams {
    /// Rows to return (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Only sessions whose integrity analysis found nothing to review.
    #[serde(default)]
    pub cleared: bool,
    /// Finished at or after; a year from 2000 to 2999 as written (with its offset).
    #[param(pattern = "^2[0-9]{3}-")]
    pub from: Option<DateTime<FixedOffset>>,
    /// Finished before; a year from 2000 to 2999 as written (with its offset).
    #[param(pattern = "^2[0-9]{3}-")]
    pub to: Option<DateTime<FixedOffset>>,
    /// What to rank by: `rubric` (default: the weighted rubric score of completed reviews),
    /// `automated` (the newest grader version's score of the hidden checks, 0–100), or
    /// `combined` (the mean of the two; sessions lacking either are not ranked).
    pub rank_by: Option<RankByParam>,
}

/// What a leaderboard ranks by.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankByParam {
    Rubric,
    Automated,
    Combined,
}

/// The leaderboard of an assessment version in the caller's organization: rank, score,
/// percentile, time used (admin, hiring manager, auditor). Sessions the caller reviews and has
/// not completed are withheld (left out of the cohort; counted in `withheld`).
#[utoipa::path(get, path = "/v1/assessments/{assessment_id}/versions/{version}/leaderboard", tag = "reports", security(("api_key" = [])),
    params(("assessment_id" = Uuid, Path), ("version" = i32, Path), BoardParams),
    responses(
        (status = 200, body = Board),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn board(
    State(state): State<AppState>,
    member: Member,
    ApiPath((assessment_id, version)): ApiPath<(Uuid, i32)>,
    ApiQuery(params): ApiQuery<BoardParams>,
) -> Result<Json<Board>> {
    leaderboard_for(&state, &member, Some((assessment_id, version)), params).await
}

/// The leaderboard of one assessment version (`Some`) or of the whole organization (`None`), as
/// `member` may see it: their pending reviews are withheld.
async fn leaderboard_for(
    state: &AppState,
    member: &Member,
    version: Option<(Uuid, i32)>,
    params: BoardParams,
) -> Result<Json<Board>> {
    member.require(READERS)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit must be between 1 and 500",
        ));
    }
    // The year as written, which is what the documented pattern can state (an offset moves the
    // instant by hours, never out of what PostgreSQL stores).
    let plausible =
        |t: &Option<DateTime<FixedOffset>>| t.is_none_or(|t| (2000..3000).contains(&t.year()));
    if !plausible(&params.from) || !plausible(&params.to) {
        return Err(ApiError::invalid(
            "invalid_range",
            "`from` and `to` must lie between 2000-01-01 and 3000-01-01",
        ));
    }
    let cohort = Cohort {
        org_id: member.org_id,
        assessment_id: version.map(|(id, _)| id),
        version: version.map_or(0, |(_, v)| v),
        cleared_only: params.cleared,
        finished_from: params.from.map(|t| t.with_timezone(&Utc)),
        finished_to: params.to.map(|t| t.with_timezone(&Utc)),
    };
    let withheld = leaderboard::pending_reviews(&state.pool, member.member_id).await?;
    let by = match params.rank_by.unwrap_or(RankByParam::Rubric) {
        RankByParam::Rubric => {
            return Ok(Json(
                leaderboard::top(&state.pool, &cohort, limit, &withheld).await?,
            ))
        }
        RankByParam::Automated => leaderboard::RankBy::Automated,
        RankByParam::Combined => leaderboard::RankBy::Combined,
    };
    Ok(Json(
        leaderboard::top_by_grade(&state.pool, &cohort, limit, &withheld, by).await?,
    ))
}

/// The organization's leaderboard across all its assessments (admin, hiring manager, auditor):
/// rank and percentile among every scored session of the organization. Scores are 0–100 on every
/// rubric, but rubrics differ: compare within an assessment version where it matters.
#[utoipa::path(get, path = "/v1/leaderboard", tag = "reports", security(("api_key" = [])),
    params(BoardParams),
    responses(
        (status = 200, body = Board),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn org_board(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(params): ApiQuery<BoardParams>,
) -> Result<Json<Board>> {
    leaderboard_for(&state, &member, None, params).await
}
