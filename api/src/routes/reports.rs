//! Candidate reports and leaderboards, for hiring managers, admins and auditors.
//!
//! A report is computed from the read models when asked for; each distinct content is stored once
//! in `report_versions` under its content hash (SHA-256 of the canonical JSON, as in the audit
//! trail), and a decision must name the hash of a version that was served, so what the decider saw
//! can be shown again exactly (`?version=<hash>`).

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, FixedOffset, Utc};
use clarity_domain::assessment::AssessmentSpec;
use clarity_domain::audit::canonical_json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::types::Json as SqlJson;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::leaderboard::{self, Board, Cohort};
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
    let bundle = crate::audit::export(&state.pool, id)
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
        if ranks_withheld(&state, member.org_id, id, &withheld).await? {
            return Err(complete_your_review_first(
                "a stored report version ranks this session among sessions you review: it opens once your reviews are completed".into(),
            ));
        }
        let row: Option<(SqlJson<Value>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT content, first_served_at FROM report_versions WHERE session_id = $1 AND org_id = $2 AND content_hash = $3",
        )
        .bind(id)
        .bind(member.org_id)
        .bind(&hash)
        .fetch_optional(&state.pool)
        .await?;
        let (SqlJson(content), first_served_at) =
            row.ok_or_else(|| ApiError::not_found("report version"))?;
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
    let content = build(&state, &member, id, &withheld).await?;
    let content_hash = hex::encode(Sha256::digest(canonical_json(&content)));
    sqlx::query(
        "INSERT INTO report_versions (session_id, content_hash, org_id, content, first_served_to)
         VALUES ($1, $2, $3, $4::json, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&content_hash)
    .bind(member.org_id)
    .bind(content.to_string())
    .bind(member.member_id)
    .execute(&state.pool)
    .await?;
    let first_served_at: DateTime<Utc> = sqlx::query_scalar(
        "SELECT first_served_at FROM report_versions WHERE session_id = $1 AND content_hash = $2",
    )
    .bind(id)
    .bind(&content_hash)
    .fetch_one(&state.pool)
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

type SessionFacts = (
    Option<String>,
    Option<String>,
    Option<Uuid>,
    Option<i32>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// Whether one of `withheld` (sessions the caller must not see scored) is scored in the cohort
/// of session `id` (its assessment version in the organization).
async fn ranks_withheld(
    state: &AppState,
    org_id: Uuid,
    id: Uuid,
    withheld: &[Uuid],
) -> Result<bool> {
    if withheld.is_empty() {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM session_scores w JOIN sessions s
             ON s.org_id = w.org_id AND s.assessment_id = w.assessment_id AND s.assessment_version = w.assessment_version
           WHERE s.session_id = $1 AND s.org_id = $2 AND w.session_id = ANY($3))",
    )
    .bind(id)
    .bind(org_id)
    .bind(withheld)
    .fetch_one(&state.pool)
    .await?)
}

async fn build(state: &AppState, member: &Member, id: Uuid, withheld: &[Uuid]) -> Result<Value> {
    let facts: Option<SessionFacts> = sqlx::query_as(
        "SELECT status, candidate_name, assessment_id, assessment_version, assessment_title, started_at,
                coalesce(submitted_at, expired_at), time_used_seconds, integrity_tier, integrity_suite_version
         FROM sessions WHERE session_id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(member.org_id)
    .fetch_optional(&state.pool)
    .await?;
    let (
        status,
        candidate,
        assessment_id,
        version,
        title,
        started_at,
        finished_at,
        time_used,
        tier,
        suite,
    ) = facts.ok_or_else(|| ApiError::not_found("session"))?;
    let spec: Option<SqlJson<AssessmentSpec>> = match (assessment_id, version) {
        (Some(a), Some(v)) => {
            sqlx::query_scalar(
                "SELECT spec FROM catalogue_versions WHERE assessment_id = $1 AND version = $2",
            )
            .bind(a)
            .bind(v)
            .fetch_optional(&state.pool)
            .await?
        }
        _ => None,
    };
    let scores: Vec<(Uuid, String, i16, String, bool)> = sqlx::query_as(
        "SELECT sc.reviewer, sc.criterion, sc.score, sc.justification, r.completed_at IS NOT NULL
         FROM review_scores sc JOIN review_reviewers r ON r.session_id = sc.session_id AND r.reviewer = sc.reviewer
         WHERE sc.session_id = $1 AND sc.current ORDER BY sc.criterion, sc.reviewer",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let criteria: Vec<Value> = spec
        .as_ref()
        .map(|s| {
            s.0.rubric
                .criteria
                .iter()
                .map(|c| {
                    let by: Vec<Value> = scores
                        .iter()
                        .filter(|(_, k, _, _, done)| k == &c.key && *done)
                        .map(|(r, _, s, j, _)| json!({"reviewer": r, "score": s, "justification": j}))
                        .collect();
                    let mean = (!by.is_empty()).then(|| {
                        by.iter().map(|b| b["score"].as_f64().unwrap_or(0.0)).sum::<f64>() / by.len() as f64
                    });
                    json!({"criterion": c.key, "name": c.name, "weight": c.weight, "completed_reviews": by, "mean": mean})
                })
                .collect()
        })
        .unwrap_or_default();
    let runs: (i64, Option<SqlJson<Value>>) = sqlx::query_as(
        "SELECT count(*), (array_agg(data ORDER BY seq DESC))[1] FROM session_events
         WHERE session_id = $1 AND stream_kind = 'telemetry' AND event_type = 'code_run'",
    )
    .bind(id)
    .fetch_one(&state.pool)
    .await?;
    let findings: Vec<(String, String, String, String, Option<i64>)> = match &suite {
        Some(v) => {
            sqlx::query_as(
                "SELECT detector, rule, level, summary, replay_seq FROM integrity_findings
             WHERE session_id = $1 AND suite_version = $2 ORDER BY ordinal",
            )
            .bind(id)
            .bind(v)
            .fetch_all(&state.pool)
            .await?
        }
        None => Vec::new(),
    };
    let standing = match (assessment_id, version) {
        (Some(a), Some(v)) => {
            let cohort = Cohort {
                org_id: member.org_id,
                assessment_id: Some(a),
                version: v,
                cleared_only: false,
                finished_from: None,
                finished_to: None,
            };
            leaderboard::standing_of(&state.pool, &cohort, id, withheld).await?
        }
        _ => None,
    };
    let decision: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT outcome, rationale, decided_at FROM decisions WHERE session_id = $1 AND current",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let held_back = crate::held_back::for_session(&state.pool, id).await?;
    let mut content = json!({
        "session_id": id,
        "candidate": candidate,
        "assessment": {"id": assessment_id, "version": version, "title": title,
                       "time_limit_minutes": spec.as_ref().map(|s| s.0.time_limit_minutes)},
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "time_used_seconds": time_used,
        "scores": {
            "aggregate": standing.map(|s| s.0),
            "criteria": criteria,
        },
        "code_runs": {"total": runs.0, "last": runs.1.map(|j| j.0)},
        "integrity": {
            "tier": tier,
            "suite_version": suite,
            "findings": findings.iter().map(|(d, r, l, s, seq)| json!({
                "detector": d, "rule": r, "level": l, "summary": s, "replay_seq": seq,
                "replay": seq.map(|q| format!("/review/sessions/{id}?seq={q}")),
            })).collect::<Vec<_>>(),
        },
        "cohort": standing.map(|(_, percentile, rank, n)| json!({"size": n, "percentile": percentile, "rank": rank})),
        "decision": decision.map(|(o, r, at)| json!({"outcome": o, "rationale": r, "decided_at": at})),
    });
    // Part of the hashed content: a report made while data was held back is a different report
    // (a decision names the version its maker saw, notice included). Absent otherwise, so the
    // reports of sessions with nothing held back keep their hashes.
    if let Some(held_back) = held_back {
        content["held_back"] = serde_json::to_value(held_back).map_err(ApiError::internal)?;
    }
    Ok(content)
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
    Ok(Json(
        leaderboard::top(&state.pool, &cohort, limit, &withheld).await?,
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
