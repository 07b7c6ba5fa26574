//! Reviews and hiring decisions: assign reviewers, score rubric criteria (and amend scores),
//! complete a review, comment at a replay position, confirm or dismiss integrity findings, record
//! (and amend) the decision, and read it all back under the blind-review rule.
//!
//! Every action is an event on the session; nothing is edited in place. Access: admins and hiring
//! managers assign reviewers and decide; assigned reviewers score and complete their own review;
//! reviewers, hiring managers and admins comment and resolve findings; auditors read.
//!
//! **Blind review**: a reviewer sees other reviewers' scores, and the decisions resting on them,
//! only after completing their own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clarity_app::Actor;
use clarity_domain::assessment::Rubric;
use clarity_domain::session::{DecisionOutcome, FindingResolution, SessionCommand};
use clarity_domain::CandidateSession;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use clarity_projections::reviews::{
    self, CommentView, DecisionView, ResolutionView, ReviewerView, ScoreView,
};

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::ApiJson;
use crate::extract::ApiPath;
use crate::state::AppState;

const DECIDERS: &[Role] = &[Role::Admin, Role::HiringManager];
const REVIEW_WRITERS: &[Role] = &[Role::Admin, Role::HiringManager, Role::Reviewer];
const READERS: &[Role] = &[
    Role::Admin,
    Role::HiringManager,
    Role::Reviewer,
    Role::Auditor,
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/review", get(show))
        .route("/v1/sessions/{session_id}/reviewers", post(assign))
        .route("/v1/sessions/{session_id}/scores", post(score))
        .route("/v1/sessions/{session_id}/review/complete", post(complete))
        .route("/v1/sessions/{session_id}/comments", post(comment))
        .route(
            "/v1/sessions/{session_id}/integrity/resolutions",
            post(resolve),
        )
        .route("/v1/sessions/{session_id}/decisions", post(decide))
}

/// The session, if it belongs to the caller's organization (404 otherwise, also for an unknown
/// session).
async fn owned_session(state: &AppState, member: &Member, id: Uuid) -> Result<CandidateSession> {
    let session = state.load_session(id).await?;
    if session.org_id != Some(member.org_id) {
        return Err(ApiError::not_found("session"));
    }
    Ok(session)
}

/// The rubric of the session's assessment version (for scoring and completing a review).
async fn session_rubric(state: &AppState, member: &Member, id: Uuid) -> Result<Rubric> {
    let session = owned_session(state, member, id).await?;
    let a = session
        .assessment
        .as_ref()
        .ok_or_else(|| ApiError::not_found("session"))?;
    let assessment = state.load_assessment(a.assessment_id).await?;
    let spec = assessment
        .version(a.version)
        .ok_or_else(|| ApiError::internal("the session's assessment version is missing"))?;
    Ok(spec.rubric.clone())
}

/// Executes a review command as the member and answers 202 with the id of what it created.
async fn run(
    state: &AppState,
    member: &Member,
    id: Uuid,
    command: SessionCommand,
    created: Option<Uuid>,
) -> Result<(StatusCode, Json<Accepted>)> {
    let at = state.now();
    state
        .execute(
            Actor::Member(member.member_id),
            member.org_id,
            id,
            command,
            at,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            session_id: id,
            id: created,
        }),
    ))
}

/// Reviewers to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignReviewers {
    /// Member ids of the organization (role reviewer, hiring manager or admin).
    #[schema(min_items = 1)]
    pub reviewers: Vec<Uuid>,
}

/// An accepted review action.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub session_id: Uuid,
    /// The id of what was created (score, comment, decision), if any.
    pub id: Option<Uuid>,
}

/// Makes members reviewers of a session (admin, hiring manager).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/reviewers", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = AssignReviewers,
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such session; `unknown_reviewer`: a listed id is not a reviewer, hiring manager or admin of the organization.", body = crate::error::ErrorBody),
        (status = 409, description = "`no_new_reviewers`: every listed member already reviews the session; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<AssignReviewers>,
) -> Result<(StatusCode, Json<Accepted>)> {
    member.require(DECIDERS)?;
    if req.reviewers.is_empty() {
        return Err(ApiError::invalid(
            "no_reviewers",
            "list at least one reviewer",
        ));
    }
    owned_session(&state, &member, id).await?;
    let known: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM members WHERE org_id = $1 AND id = ANY($2)
           AND role IN ('reviewer', 'hiring_manager', 'admin')",
    )
    .bind(member.org_id)
    .bind(&req.reviewers)
    .fetch_all(&state.pool)
    .await?;
    if let Some(unknown) = req.reviewers.iter().find(|r| !known.contains(r)) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_reviewer",
            format!("{unknown} is not a reviewer, hiring manager or admin of this organization"),
        ));
    }
    run(
        &state,
        &member,
        id,
        SessionCommand::AssignReviewers {
            reviewers: req.reviewers,
            assigned_by: member.member_id,
            at: state.now(),
        },
        None,
    )
    .await
}

/// A score for one rubric criterion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScore {
    /// The criterion's `key` in the rubric.
    pub criterion: String,
    /// One of the criterion's level scores.
    #[schema(maximum = 255)]
    pub score: u8,
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub justification: String,
    /// To amend: the id of your current score for this criterion.
    #[serde(default)]
    pub supersedes: Option<Uuid>,
}

/// Scores a criterion as the calling reviewer, or amends their score (assigned reviewers).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/scores", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = NewScore,
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this; `not_a_reviewer`: the caller does not review the session.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such session; `unknown_criterion`, `unknown_level`: not in the session's rubric.", body = crate::error::ErrorBody),
        (status = 409, description = "`session_not_finished`, `already_scored`, `not_current_score`, `review_already_completed`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn score(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewScore>,
) -> Result<(StatusCode, Json<Accepted>)> {
    member.require(REVIEW_WRITERS)?;
    let rubric = session_rubric(&state, &member, id).await?;
    let score_id = Uuid::now_v7();
    run(
        &state,
        &member,
        id,
        SessionCommand::ScoreCriterion {
            score_id,
            reviewer: member.member_id,
            criterion: req.criterion,
            score: req.score,
            justification: req.justification,
            supersedes: req.supersedes,
            rubric,
            at: state.now(),
        },
        Some(score_id),
    )
    .await
}

/// Submits the calling reviewer's review (every criterion must be scored).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/review/complete", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this; `not_a_reviewer`: the caller does not review the session.", body = crate::error::ErrorBody),
        (status = 409, description = "`session_not_finished`, `review_incomplete`, `review_already_completed`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn complete(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<Accepted>)> {
    member.require(REVIEW_WRITERS)?;
    let rubric = session_rubric(&state, &member, id).await?;
    run(
        &state,
        &member,
        id,
        SessionCommand::CompleteReview {
            reviewer: member.member_id,
            rubric,
            at: state.now(),
        },
        None,
    )
    .await
}

/// A comment at a replay position.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The telemetry `seq` the comment is about (open the replay there).
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub replay_seq: u64,
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub text: String,
}

/// Comments at a replay position (reviewer, hiring manager, admin).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/comments", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = NewComment,
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`replay_seq_out_of_range`: past the session's last event; `session_not_finished`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn comment(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewComment>,
) -> Result<(StatusCode, Json<Accepted>)> {
    member.require(REVIEW_WRITERS)?;
    owned_session(&state, &member, id).await?;
    let last_seq: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    let last_seq = last_seq.unwrap_or(0);
    match i64::try_from(req.replay_seq) {
        Err(_) => {
            return Err(ApiError::invalid(
                "replay_seq_out_of_range",
                format!("replay_seq is at most {}", i64::MAX),
            ))
        }
        // The session may still get there (while in progress): a conflict with its state.
        Ok(seq) if seq > last_seq => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "replay_seq_out_of_range",
                format!("the session's last position is {last_seq}"),
            ))
        }
        Ok(_) => {}
    }
    let comment_id = Uuid::now_v7();
    run(
        &state,
        &member,
        id,
        SessionCommand::AddComment {
            comment_id,
            author: member.member_id,
            replay_seq: req.replay_seq,
            text: req.text,
            at: state.now(),
        },
        Some(comment_id),
    )
    .await
}

/// A human's verdict on one integrity finding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResolution {
    pub suite_version: String,
    /// The finding's position in the analysis (as in `integrity_findings.ordinal`).
    pub ordinal: u32,
    pub resolution: FindingResolution,
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub reason: String,
}

/// Confirms or dismisses an integrity finding with a reason (reviewer, hiring manager, admin).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/integrity/resolutions", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = NewResolution,
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such session; `unknown_finding`: no such finding in that suite version.", body = crate::error::ErrorBody),
        (status = 409, description = "`session_not_finished`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewResolution>,
) -> Result<(StatusCode, Json<Accepted>)> {
    member.require(REVIEW_WRITERS)?;
    owned_session(&state, &member, id).await?;
    run(
        &state,
        &member,
        id,
        SessionCommand::ResolveFinding {
            suite_version: req.suite_version,
            ordinal: req.ordinal,
            resolution: req.resolution,
            reason: req.reason,
            by: member.member_id,
            at: state.now(),
        },
        None,
    )
    .await
}

/// A hiring decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    pub outcome: DecisionOutcome,
    #[schema(
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$"
    )]
    pub rationale: String,
    /// The content hash of the report version the decider was looking at.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub report_hash: String,
    /// To amend: the id of the current decision.
    #[serde(default)]
    pub supersedes: Option<Uuid>,
}

/// Records or amends the hiring decision (hiring manager, admin). Needs a completed review; a
/// reviewer of the session may decide only if the organization allows it.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/decisions", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), request_body = NewDecision,
    responses(
        (status = 202, body = Accepted),
        (status = 403, description = "`forbidden`: the caller's role may not do this; `reviewer_may_not_decide`: the caller reviews the session and the organization does not let reviewers decide.", body = crate::error::ErrorBody),
        (status = 404, description = "`not_found`: no such session; `unknown_report_version`: no report with that hash was served for the session.", body = crate::error::ErrorBody),
        (status = 409, description = "`session_not_finished`, `no_completed_review`, `decision_already_recorded`, `not_current_decision`, `audit_chain_not_ready`; `concurrent_modification`: the resource changed concurrently; retry.", body = crate::error::ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewDecision>,
) -> Result<(StatusCode, Json<Accepted>)> {
    member.require(DECIDERS)?;
    let session = owned_session(&state, &member, id).await?;
    let reviewers_may_decide: bool =
        sqlx::query_scalar("SELECT reviewers_may_decide FROM organizations WHERE id = $1")
            .bind(member.org_id)
            .fetch_one(&state.pool)
            .await?;
    // The decision's own preconditions are answered first; only then whether the audit chain is
    // ready to be sealed into it.
    session
        .review
        .check_decision(
            member.member_id,
            reviewers_may_decide,
            &req.rationale,
            &req.report_hash,
            req.supersedes,
        )
        .map_err(clarity_domain::session::SessionError::from)?;
    if !clarity_projections::report::was_served(&state.pool, id, &req.report_hash).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_report_version",
            "report_hash must be the content hash of a report version served for this session (GET /v1/sessions/{id}/report)",
        ));
    }
    let chain_seal = crate::audit::decision_seal(&state.pool, id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "audit_chain_not_ready",
                "the session's audit chain does not cover its submission yet; retry in a few seconds",
            )
        })?;
    let decision_id = Uuid::now_v7();
    run(
        &state,
        &member,
        id,
        SessionCommand::RecordDecision {
            decision_id,
            outcome: req.outcome,
            rationale: req.rationale,
            decided_by: member.member_id,
            report_hash: req.report_hash,
            supersedes: req.supersedes,
            reviewers_may_decide,
            at: state.now(),
            chain_seal: Some(chain_seal),
        },
        Some(decision_id),
    )
    .await
}

/// The review of a session as the caller may see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub session_id: Uuid,
    pub reviewers: Vec<ReviewerView>,
    /// Scores the caller may see: a reviewer who has not completed their review sees only their
    /// own (blind review).
    pub scores: Vec<ScoreView>,
    /// True when other reviewers' scores, and the decisions that rest on them, are withheld from
    /// the caller.
    pub blinded: bool,
    pub comments: Vec<CommentView>,
    pub resolutions: Vec<ResolutionView>,
    /// Decisions the caller may see: none of others' while the caller's own review is pending.
    pub decisions: Vec<DecisionView>,
}

/// The session's review (admin, hiring manager, reviewer, auditor), blind for reviewers who have
/// not completed their own review.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/review", tag = "reviews", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 200, body = ReviewView),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ReviewView>> {
    member.require(READERS)?;
    state.require_session_in_org(id, member.org_id).await?;
    let reviewers = reviews::reviewers(&state.pool, id).await?;
    // Blind review: a member who is a reviewer of this session and has not completed their review
    // sees only their own scores, whatever their role.
    let blinded = reviewers
        .iter()
        .any(|r| r.reviewer == member.member_id && r.completed_at.is_none());
    let only_of = blinded.then_some(member.member_id);
    let scores = reviews::scores(&state.pool, id, only_of).await?;
    let comments = reviews::comments(&state.pool, id).await?;
    let resolutions = reviews::resolutions(&state.pool, id).await?;
    // A decision rests on the completed reviews (its rationale quotes them): blind too.
    let decisions = reviews::decisions(&state.pool, id, only_of).await?;
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REVIEW_READ,
        Some(id),
        serde_json::json!({"blinded": blinded}),
    )
    .await?;
    Ok(Json(ReviewView {
        session_id: id,
        reviewers,
        scores,
        blinded,
        comments,
        resolutions,
        decisions,
    }))
}

impl crate::extract::BodyText for AssignReviewers {}
impl crate::extract::BodyText for NewComment {}
impl crate::extract::BodyText for NewDecision {}
impl crate::extract::BodyText for NewResolution {}
impl crate::extract::BodyText for NewScore {}
