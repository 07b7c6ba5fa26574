//! The access audit, read side: who read a candidate's replay, event log, integrity analysis,
//! copied-code matches or review, and when — by session or by member, newest first.
//!
//! Access: auditors and admins of the organization. Only the caller's organization's rows are
//! ever returned: another organization's session or member id yields an empty page. Listing is
//! itself logged (`access_log.read`, without a session).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::access_log;
use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::state::AppState;

const AUDITORS: &[Role] = &[Role::Admin, Role::Auditor];
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit/access", get(list))
}

/// Filters and paging. At least one of `session_id` and `member_id` is required; both together
/// narrow to that member's reads of that session.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    /// Reads of this session (including copied-code comparisons that showed its code as the
    /// other side).
    pub session_id: Option<Uuid>,
    /// Reads by this member.
    pub member_id: Option<Uuid>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Cursor: the `next_before` of the previous page; returns entries older than that entry.
    pub before: Option<i64>,
}

/// One read of a candidate's data.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AccessEntry {
    /// Position in the log (increases with every entry; use as the `before` cursor).
    pub id: i64,
    /// The member who read.
    pub member_id: Uuid,
    /// The member's name (absent if the member no longer exists).
    pub member_name: Option<String>,
    /// The member's role at the time of the read.
    pub role: Role,
    /// What was read: `replay.read` (summary, state, events or diff; see `detail.view`),
    /// `replay.stream`, `session_events.read`, `integrity.read`, `integrity.matches.read`,
    /// `review.read`, `access_log.read`.
    pub action: String,
    /// The session read (absent for `access_log.read`).
    pub session_id: Option<Uuid>,
    /// The request's parameters: e.g. `view`, `seq`, `at_ms`, `from_seq`, `to_seq`, `limit`,
    /// `after_offset`, `suite_version`, `other_session_id`, `blinded`; for `access_log.read` the
    /// filters used.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// When the read happened (server time).
    pub at: DateTime<Utc>,
}

/// A page of the access log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessPage {
    pub entries: Vec<AccessEntry>,
    /// Pass as `before` for the next (older) page; absent when this page is the last.
    pub next_before: Option<i64>,
}

/// Who read what, by session and/or member, newest first (auditor, admin). Another
/// organization's session or member answers an empty page.
#[utoipa::path(get, path = "/v1/audit/access", tag = "access", security(("api_key" = [])),
    params(AccessQuery),
    responses(
        (status = 200, body = AccessPage),
        (status = 403, body = crate::error::ErrorBody),
        (status = 422, description = "`filter_required` (neither `session_id` nor `member_id`), `invalid_limit`, `invalid_query`", body = crate::error::ErrorBody),
        (status = 503, description = "`access_log_unavailable`: the listing could not be audited", body = crate::error::ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    query: std::result::Result<Query<AccessQuery>, QueryRejection>,
) -> Result<Json<AccessPage>> {
    member.require(AUDITORS)?;
    let Query(q) = query.map_err(|e| ApiError::invalid("invalid_query", e.body_text()))?;
    if q.session_id.is_none() && q.member_id.is_none() {
        return Err(ApiError::invalid(
            "filter_required",
            "give `session_id`, `member_id` or both",
        ));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }

    // Static SQL per filter; only values are bound. The cursor compares (at, id) with the entry
    // it names, looked up within the caller's organization (another organization's id matches
    // nothing, so the page is empty).
    let mut sql = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "SELECT l.id, l.member_id, m.name AS member_name, l.role, l.action, l.session_id, l.detail, l.at
         FROM access_log l LEFT JOIN members m ON m.id = l.member_id
         WHERE l.org_id = ",
    );
    sql.push_bind(member.org_id);
    if let Some(session_id) = q.session_id {
        sql.push(" AND (l.session_id = ")
            .push_bind(session_id)
            .push(" OR (l.detail ? 'other_session_id' AND l.detail ->> 'other_session_id' = ")
            .push_bind(session_id.to_string())
            .push("))");
    }
    if let Some(member_id) = q.member_id {
        sql.push(" AND l.member_id = ").push_bind(member_id);
    }
    if let Some(before) = q.before {
        sql.push(" AND (l.at, l.id) < (SELECT c.at, c.id FROM access_log c WHERE c.id = ")
            .push_bind(before)
            .push(" AND c.org_id = ")
            .push_bind(member.org_id)
            .push(")");
    }
    sql.push(" ORDER BY l.at DESC, l.id DESC LIMIT ")
        .push_bind(limit);
    let entries: Vec<AccessEntry> = sql.build_query_as().fetch_all(&state.pool).await?;

    access_log::record(
        &state.pool,
        &member,
        access_log::ACCESS_LOG_READ,
        None,
        serde_json::json!({"session_id": q.session_id, "member_id": q.member_id, "before": q.before, "limit": limit}),
    )
    .await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(AccessPage {
        entries,
        next_before,
    }))
}
