//! Integrity analysis, staff side: a session's latest analysis (tier, reasons, every detector's
//! checks and findings with the replay positions to jump to, follow-up questions), its history
//! across suite versions, copied-code matches side by side, organisation-wide differences between
//! two suite versions, and re-runs of the current suite over past sessions.
//!
//! Access: admins, hiring managers, reviewers and auditors of the session's organization read;
//! admins start re-runs. Another organization's session answers 404. The reads are the
//! `sessions` projection's integrity queries (`clarity_projections::integrity`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clarity_domain::integrity::IntegrityAnalysis;
use clarity_integrity::{similarity, suite};
use clarity_projections::integrity::{self, AnalysisVersion, MatchedBy, SuiteDiff};
use clarity_projections::sessions::lifecycle;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;
use clarity_consumers::integrity_worker;

const READERS: &[Role] = &[
    Role::Admin,
    Role::HiringManager,
    Role::Reviewer,
    Role::Auditor,
];
const RERUNNERS: &[Role] = &[Role::Admin];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/integrity", get(show))
        .route(
            "/v1/sessions/{session_id}/integrity/matches/{other_session_id}",
            get(matched),
        )
        .route("/v1/integrity/diff", get(diff))
        .route("/v1/integrity/reruns", post(rerun))
        .route("/v1/integrity/settings", get(settings).put(change_settings))
}

/// A session's integrity analysis.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrityView {
    pub session_id: Uuid,
    /// `not_finished` (analysis runs at submission or expiry), `pending` (queued or running),
    /// `analysed`, or `failed` (set aside after repeated errors; see `error`).
    pub state: String,
    /// The tier of the analysis shown: `none`, `review_suggested` or `major_concerns`. Never a
    /// verdict: it says where a human should look first.
    pub tier: Option<String>,
    pub analysed_at: Option<DateTime<Utc>>,
    /// The analysis shown: the latest, or the one asked for with `suite_version`.
    pub analysis: Option<IntegrityAnalysis>,
    /// Every suite version that analysed this session, oldest first.
    pub versions: Vec<AnalysisVersion>,
    /// Later sessions whose analyses point at this one.
    pub matched_by: Vec<MatchedBy>,
    /// The reviewer page; add `&seq=<replay_seq>` to open the replay at a finding.
    pub replay_page: String,
    pub error: Option<String>,
}

/// Which analysis to show.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ShowParams {
    /// A suite version from `versions`; the latest when omitted.
    pub suite_version: Option<String>,
}

/// The integrity analysis of a session (admin, hiring manager, reviewer, auditor).
#[utoipa::path(get, path = "/v1/sessions/{session_id}/integrity", tag = "integrity", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), ShowParams),
    responses(
        (status = 200, body = IntegrityView),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ShowParams>,
) -> Result<Json<IntegrityView>> {
    member.require(READERS)?;
    let status = lifecycle::status(&state.pool, member.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))?;
    let versions = integrity::versions(&state.pool, member.org_id, id).await?;
    let chosen = match &params.suite_version {
        Some(v) => Some(
            versions
                .iter()
                .find(|a| &a.suite_version == v)
                .ok_or_else(|| ApiError::not_found("analysis with that suite version"))?,
        ),
        None => versions.last(),
    };
    let (analysis, tier, analysed_at) = match chosen {
        Some(v) => {
            let a = integrity::analysis(&state.pool, id, &v.suite_version).await?;
            (Some(a), Some(v.tier.clone()), Some(v.analysed_at))
        }
        None => (None, None, None),
    };
    let job = integrity::open_job(&state.pool, id).await?;
    let finished = matches!(status.as_deref(), Some("submitted" | "expired"));
    let (job_state, error) = match job {
        Some((s, e)) if s == "failed" => ("failed", e),
        Some(_) => ("pending", None),
        None => ("", None),
    };
    let state_name = if !finished {
        "not_finished"
    } else if analysis.is_some() && params.suite_version.is_some() {
        "analysed"
    } else if !job_state.is_empty() {
        job_state
    } else if analysis.is_some() {
        "analysed"
    } else {
        "pending"
    };
    let matched_by = integrity::matched_by(&state.pool, member.org_id, id).await?;
    crate::access_log::record(&state.pool, &member, crate::access_log::INTEGRITY_READ, Some(id), serde_json::json!({"suite_version": chosen.map(|v| v.suite_version.clone()), "requested_suite_version": params.suite_version})).await?;
    Ok(Json(IntegrityView {
        session_id: id,
        state: state_name.to_string(),
        tier,
        analysed_at,
        analysis,
        versions,
        matched_by,
        replay_page: format!("/review/sessions/{id}"),
        error,
    }))
}

/// One matched region, both sides' text.
#[derive(Debug, Serialize, ToSchema)]
pub struct SideBySide {
    pub file_a: String,
    pub lines_a: (u32, u32),
    pub file_b: String,
    pub lines_b: (u32, u32),
    pub tokens: usize,
    pub text_a: String,
    pub text_b: String,
}

/// Two sessions' code compared.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchView {
    pub session_id: Uuid,
    pub other_session_id: Uuid,
    /// Share of fingerprints the two submissions have in common (starter code excluded).
    pub score: f64,
    pub regions: Vec<SideBySide>,
}

/// The code two sessions share, side by side (admin, hiring manager, reviewer, auditor; both
/// sessions must belong to the caller's organization).
#[utoipa::path(get, path = "/v1/sessions/{session_id}/integrity/matches/{other_session_id}", tag = "integrity", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), ("other_session_id" = Uuid, Path)),
    responses(
        (status = 200, body = MatchView),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn matched(
    State(state): State<AppState>,
    member: Member,
    ApiPath((id, other)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<MatchView>> {
    member.require(READERS)?;
    let load = |session: Uuid| {
        let pool = state.pool.clone();
        let org = member.org_id;
        async move {
            integrity::prints::<similarity::Fingerprints>(&pool, org, session)
                .await?
                .ok_or_else(|| ApiError::not_found("analysed session"))
        }
    };
    let (a_prints, a_files) = load(id).await?;
    let (b_prints, b_files) = load(other).await?;
    let m = similarity::compare(&a_prints, &b_prints);
    let regions = m
        .regions
        .iter()
        .map(|r| {
            let (text_a, text_b) = similarity::side_by_side(r, &a_files, &b_files);
            SideBySide {
                file_a: r.file_a.clone(),
                lines_a: r.lines_a,
                file_b: r.file_b.clone(),
                lines_b: r.lines_b,
                tokens: r.tokens,
                text_a,
                text_b,
            }
        })
        .collect();
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::INTEGRITY_MATCHES_READ,
        Some(id),
        serde_json::json!({"other_session_id": other}),
    )
    .await?;
    Ok(Json(MatchView {
        session_id: id,
        other_session_id: other,
        score: m.score,
        regions,
    }))
}

/// Two suite versions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    pub from: String,
    pub to: String,
    /// Continue after this session (the `next_after` of the previous page).
    pub after: Option<Uuid>,
    /// Sessions compared per page: 1 to 5,000 (default 1,000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<i64>,
}

/// The largest page of a suite diff.
pub const MAX_DIFF_PAGE: i64 = 5_000;

/// Differences between two suite versions over every session of the organization both analysed
/// (admin, hiring manager, auditor).
#[utoipa::path(get, path = "/v1/integrity/diff", tag = "integrity", security(("api_key" = [])),
    params(DiffParams), responses(
        (status = 200, body = SuiteDiff),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 422, description = "`same_suite_version`: `from` and `to` must differ. Also the query errors below.", body = crate::error::ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    member: Member,
    ApiQuery(params): ApiQuery<DiffParams>,
) -> Result<Json<SuiteDiff>> {
    member.require(&[Role::Admin, Role::HiringManager, Role::Auditor])?;
    let limit = params.limit.unwrap_or(1_000);
    if !(1..=MAX_DIFF_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_DIFF_PAGE}"),
        ));
    }
    Ok(Json(
        suite_diff(
            &state.pool,
            member.org_id,
            &params.from,
            &params.to,
            params.after,
            limit,
        )
        .await?,
    ))
}

/// Computes the difference between two suite versions for one page of an organization's
/// sessions (in session id order, after `after`, at most `limit`).
pub async fn suite_diff(
    pool: &sqlx::PgPool,
    org_id: Uuid,
    from: &str,
    to: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<SuiteDiff> {
    if from == to {
        return Err(ApiError::invalid(
            "same_suite_version",
            "`from` and `to` must be different suite versions",
        ));
    }
    Ok(integrity::suite_diff(pool, org_id, from, to, after, limit).await?)
}

/// Which sessions to re-analyse.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RerunRequest {
    /// Only sessions of this assessment.
    #[serde(default)]
    pub assessment_id: Option<Uuid>,
}

/// A re-run that was queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct RerunQueued {
    /// The suite version the sessions will be analysed with.
    pub suite_version: String,
    /// Finished sessions queued (those already analysed with this version are skipped).
    pub enqueued: u64,
}

/// Re-runs the current detector suite over the organization's finished sessions (admin). The new
/// findings are stored beside the old ones; compare them with `GET /v1/integrity/diff`.
#[utoipa::path(post, path = "/v1/integrity/reruns", tag = "integrity", security(("api_key" = [])),
    request_body = RerunRequest,
    responses(
        (status = 202, body = RerunQueued),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn rerun(
    State(state): State<AppState>,
    member: Member,
    ApiJson(req): ApiJson<RerunRequest>,
) -> Result<(StatusCode, Json<RerunQueued>)> {
    member.require(RERUNNERS)?;
    let suite_version = suite::suite_version(&state.config.integrity_settings());
    let enqueued = integrity_worker::enqueue_rerun(
        &state.pool,
        Some(member.org_id),
        req.assessment_id,
        &suite_version,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RerunQueued {
            suite_version,
            enqueued,
        }),
    ))
}

impl crate::extract::BodyText for RerunRequest {}

/// The organization's integrity settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegritySettings {
    /// Compare this organization's submissions to Clarity's built-in assessments with those of
    /// other organizations that opted in too (copied code, replayed keystroke timing). A match
    /// names the other session only by an opaque `other-org:…` reference: neither side sees the
    /// other's candidate, code or timing. Off unless an admin turns it on.
    pub cross_org_comparison: bool,
    /// Who last changed it, and when (`null` while never changed).
    pub changed_by: Option<Uuid>,
    pub changed_at: Option<DateTime<Utc>>,
}

/// A change of the integrity settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntegritySettings {
    pub cross_org_comparison: bool,
}

impl crate::extract::BodyText for NewIntegritySettings {}

async fn load_settings(pool: &sqlx::PgPool, org_id: Uuid) -> Result<IntegritySettings> {
    let (cross_org_comparison, changed_by, changed_at): (
        bool,
        Option<Uuid>,
        Option<DateTime<Utc>>,
    ) = sqlx::query_as(
        "SELECT cross_org_comparison, cross_org_comparison_changed_by,
                    cross_org_comparison_changed_at
             FROM organizations WHERE id = $1",
    )
    .bind(org_id)
    .fetch_one(pool)
    .await?;
    Ok(IntegritySettings {
        cross_org_comparison,
        changed_by,
        changed_at,
    })
}

/// The organization's integrity settings (staff).
#[utoipa::path(get, path = "/v1/integrity/settings", tag = "integrity", security(("api_key" = [])),
    responses(
        (status = 200, body = IntegritySettings)))]
pub async fn settings(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<IntegritySettings>> {
    Ok(Json(load_settings(&state.pool, member.org_id).await?))
}

/// Changes the organization's integrity settings (admin). Sessions analysed from then on are
/// compared accordingly; past analyses stay as they were (re-run them to compare them again).
#[utoipa::path(put, path = "/v1/integrity/settings", tag = "integrity", security(("api_key" = [])), request_body = NewIntegritySettings,
    responses(
        (status = 200, body = IntegritySettings),
        (status = 403, description = "`forbidden`: only admins change integrity settings.", body = crate::error::ErrorBody)))]
pub async fn change_settings(
    State(state): State<AppState>,
    member: Member,
    ApiJson(new): ApiJson<NewIntegritySettings>,
) -> Result<Json<IntegritySettings>> {
    member.require(&[Role::Admin])?;
    sqlx::query(
        "UPDATE organizations SET cross_org_comparison = $2,
             cross_org_comparison_changed_by = $3, cross_org_comparison_changed_at = $4
         WHERE id = $1",
    )
    .bind(member.org_id)
    .bind(new.cross_org_comparison)
    .bind(member.member_id)
    .bind(state.now())
    .execute(&state.pool)
    .await?;
    Ok(Json(load_settings(&state.pool, member.org_id).await?))
}
