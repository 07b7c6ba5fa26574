//! Session replay for reviewers: state at any position (by telemetry `seq` or by time since the
//! start), events in a range, a paced server-sent-events playback, diffs between positions, and
//! the timeline markers. The queries are the replay projection's own
//! (`clarity_projections::replay::seek`): one keyframe + at most one keyframe interval of events
//! per seek, never a replay from the start. This module checks access and positions and maps
//! errors.
//!
//! Access: admins, reviewers and auditors of the session's organization.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clarity_projections::held_back::{self, HeldBack};
use clarity_projections::replay::seek::{self, Head, Marker, TimelineEvent};
use clarity_projections::replay_engine::{self, FileDiff, Workspace};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Member, Role};
use crate::error::{ApiError, Result};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

const REPLAYERS: &[Role] = &[Role::Admin, Role::Reviewer, Role::Auditor];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/replay", get(summary))
        .route("/v1/sessions/{session_id}/replay/state", get(state_at))
        .route("/v1/sessions/{session_id}/replay/events", get(events))
        .route("/v1/sessions/{session_id}/replay/diff", get(diff))
        .route("/v1/sessions/{session_id}/replay/stream", get(stream))
        .route(
            "/v1/sessions/{session_id}/replay/stream-tickets",
            axum::routing::post(stream_ticket),
        )
}

/// What the replay page needs to draw the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplaySummary {
    pub session_id: Uuid,
    pub status: Option<String>,
    pub candidate_name: Option<String>,
    pub assessment_title: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub last_seq: i64,
    pub keyframe_every_events: u32,
    pub anomalies: i64,
    /// The first `MAX_SUMMARY_MARKERS` (5,000) markers in position order; the events pages
    /// (`/replay/events`) carry the markers of every range.
    pub markers: Vec<Marker>,
    /// More markers exist than the summary lists.
    pub markers_truncated: bool,
    /// Present while records of this session are held back (quarantined): the timeline may end
    /// early or miss events until they are applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<HeldBack>,
}

/// Checks role and organization and loads the replay head; another organization's session is 404.
async fn head(state: &AppState, member: &Member, id: Uuid) -> Result<Head> {
    member.require(REPLAYERS)?;
    seek::head(&state.pool, member.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("session replay"))
}

/// The replay timeline of a session: duration, last position and markers.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/replay", tag = "replay", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)), responses(
        (status = 200, body = ReplaySummary),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ReplaySummary>> {
    let h = head(&state, &member, id).await?;
    let (status, candidate_name, assessment_title) =
        seek::labels(&state.pool, member.org_id, id).await?;
    let mut markers = seek::first_markers(&state.pool, id, MAX_SUMMARY_MARKERS + 1).await?;
    let markers_truncated = markers.len() as i64 > MAX_SUMMARY_MARKERS;
    markers.truncate(MAX_SUMMARY_MARKERS as usize);
    let held_back = held_back::for_session(&state.pool, id).await?;
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REPLAY_READ,
        Some(id),
        serde_json::json!({"view": "summary"}),
    )
    .await?;
    Ok(Json(ReplaySummary {
        session_id: id,
        status,
        candidate_name,
        assessment_title,
        started_at: h.started_at,
        duration_ms: h.last_at_ms,
        last_seq: h.last_seq,
        keyframe_every_events: state.config.replay_config().keyframes.every_events,
        anomalies: h.anomalies,
        markers,
        markers_truncated,
        held_back,
    }))
}

/// The most markers a replay summary lists (a session's markers are bounded only by its events).
const MAX_SUMMARY_MARKERS: i64 = 5_000;

/// A position: exactly one of `seq` (0 = before the first event) or `at_ms` (time since start).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// The position as a telemetry `seq` (0 = before the first event).
    #[param(minimum = 0)]
    pub seq: Option<i64>,
    /// The position as milliseconds since the session started.
    #[param(minimum = 0)]
    pub at_ms: Option<i64>,
}

/// The workspace at a position.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayState {
    pub seq: i64,
    pub at_ms: i64,
    #[schema(value_type = Object)]
    pub files: std::collections::BTreeMap<String, String>,
    #[schema(value_type = Option<Object>)]
    pub cursor: Option<replay_engine::Cursor>,
    /// The event at this position (none at seq 0).
    pub event: Option<TimelineEvent>,
}

/// A position outside the session: 422 when negative (the documented minimum is 0), 409 when
/// past its end (an in-progress session may still get there).
fn out_of_range(value: i64, message: String) -> ApiError {
    if value < 0 {
        ApiError::invalid("position_out_of_range", message)
    } else {
        ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "position_out_of_range",
            message,
        )
    }
}

/// Resolves a position to a `seq`, bounded by the session.
async fn resolve(state: &AppState, id: Uuid, h: &Head, pos: &Position) -> Result<i64> {
    match (pos.seq, pos.at_ms) {
        (Some(seq), None) => {
            if !(0..=h.last_seq).contains(&seq) {
                return Err(out_of_range(
                    seq,
                    format!("seq must be between 0 and {}", h.last_seq),
                ));
            }
            Ok(seq)
        }
        (None, Some(t)) => {
            if !(0..=h.last_at_ms).contains(&t) {
                return Err(out_of_range(
                    t,
                    format!("at_ms must be between 0 and {}", h.last_at_ms),
                ));
            }
            let keyframes = state.config.replay_config().keyframes;
            Ok(seek::seq_at_ms(&state.pool, id, h, t, &keyframes).await?)
        }
        _ => Err(ApiError::invalid(
            "invalid_position",
            "give exactly one of `seq` or `at_ms`",
        )),
    }
}

/// The workspace right after `target`: nearest keyframe + the events after it.
async fn workspace_at(
    state: &AppState,
    id: Uuid,
    started_at: Option<DateTime<Utc>>,
    target: i64,
) -> Result<(Workspace, Option<TimelineEvent>)> {
    seek::workspace_at(&state.pool, id, started_at, target)
        .await?
        .ok_or_else(|| ApiError::not_found("session replay"))
}

/// The files, cursor and event at a position (by `seq` or `at_ms`).
#[utoipa::path(get, path = "/v1/sessions/{session_id}/replay/state", tag = "replay", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), Position),
    responses(
        (status = 200, body = ReplayState),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`position_out_of_range`: past the session's last event (it may get there while in progress).", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_position`: give exactly one of `seq` and `at_ms`; `position_out_of_range`: negative. Also the query errors below.", body = crate::error::ErrorBody)))]
pub async fn state_at(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(pos): ApiQuery<Position>,
) -> Result<Json<ReplayState>> {
    let h = head(&state, &member, id).await?;
    let seq = resolve(&state, id, &h, &pos).await?;
    let (workspace, event) = workspace_at(&state, id, h.started_at, seq).await?;
    let at = event.as_ref().map_or(0, |e| e.at_ms);
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REPLAY_READ,
        Some(id),
        serde_json::json!({"view": "state", "seq": seq, "at_ms": pos.at_ms}),
    )
    .await?;
    Ok(Json(ReplayState {
        seq,
        at_ms: at,
        files: workspace.files,
        cursor: workspace.cursor,
        event,
    }))
}

/// A page of events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// First `seq` to return (default 1).
    #[param(minimum = 1)]
    pub from_seq: Option<i64>,
    /// At most 5000 (default 1000).
    #[param(minimum = 1, maximum = 5000)]
    pub limit: Option<i64>,
}

/// A page of the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    pub events: Vec<TimelineEvent>,
    /// Markers that start within the page's range.
    pub markers: Vec<Marker>,
    pub next_from_seq: Option<i64>,
}

/// Telemetry events from a position on, paged.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/replay/events", tag = "replay", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), EventsQuery),
    responses(
        (status = 200, body = EventsPage),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`position_out_of_range`: `from_seq` past the session's last event + 1.", body = crate::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<EventsPage>> {
    let h = head(&state, &member, id).await?;
    let (from, limit) = (q.from_seq.unwrap_or(1), q.limit.unwrap_or(1000));
    if !(1..=5000).contains(&limit) || from < 1 {
        return Err(ApiError::invalid(
            "invalid_range",
            "from_seq must be >= 1 and limit between 1 and 5000",
        ));
    }
    if from > h.last_seq + 1 {
        return Err(out_of_range(
            from,
            format!("from_seq must be at most {}", h.last_seq + 1),
        ));
    }
    let events = seek::events(&state.pool, id, h.started_at, from, limit).await?;
    let to = events.last().map_or(from - 1, |e| e.seq);
    let markers = seek::markers_between(&state.pool, id, from, to).await?;
    let next_from_seq = events
        .last()
        .map(|e| e.seq + 1)
        .filter(|n| *n <= h.last_seq);
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REPLAY_READ,
        Some(id),
        serde_json::json!({"view": "events", "from_seq": from, "to_seq": to, "limit": limit}),
    )
    .await?;
    Ok(Json(EventsPage {
        events,
        markers,
        next_from_seq,
    }))
}

/// Two positions to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    #[param(minimum = 0)]
    pub from_seq: i64,
    #[param(minimum = 0)]
    pub to_seq: i64,
}

/// The changes between two positions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiffResult {
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<FileDiff>,
}

/// A line diff of the workspace between two positions.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/replay/diff", tag = "replay", security(("api_key" = [])),
    params(("session_id" = Uuid, Path), DiffQuery),
    responses(
        (status = 200, body = DiffResult),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`position_out_of_range`: past the session's last event.", body = crate::error::ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<DiffResult>> {
    let h = head(&state, &member, id).await?;
    for s in [q.from_seq, q.to_seq] {
        if !(0..=h.last_seq).contains(&s) {
            return Err(out_of_range(
                s,
                format!("positions must be between 0 and {}", h.last_seq),
            ));
        }
    }
    let (before, _) = workspace_at(&state, id, h.started_at, q.from_seq).await?;
    let (after, _) = workspace_at(&state, id, h.started_at, q.to_seq).await?;
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REPLAY_READ,
        Some(id),
        serde_json::json!({"view": "diff", "from_seq": q.from_seq, "to_seq": q.to_seq}),
    )
    .await?;
    Ok(Json(DiffResult {
        files: replay_engine::diff(&before, &after),
    }))
}

/// Playback parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this position (default 0).
    #[param(minimum = 0)]
    pub from_seq: Option<i64>,
    /// 1 to 32 (default 1).
    #[param(minimum = 1, maximum = 32)]
    pub speed: Option<u32>,
    /// Idle gaps longer than this (ms of session time) are shortened to it; 0 to 600,000
    /// (`MAX_SKIP_IDLE_MS`), default 2000.
    #[param(minimum = 0, maximum = 600_000)]
    pub skip_idle_ms: Option<i64>,
    /// A stream ticket (`POST …/replay/stream-tickets`), for clients that cannot send an
    /// `Authorization` header (`EventSource`). Never put an API key in a URL. Documented as the
    /// operation's second security scheme (`stream_ticket`), not as a parameter.
    #[param(ignore)]
    pub ticket: Option<String>,
}

/// A single-use ticket that opens this session's replay stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTicket {
    /// Pass as `?ticket=` to `GET …/replay/stream`; works once, for this session only.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
}

/// How long a stream ticket can be redeemed.
const TICKET_SECONDS: i64 = 60;

/// Issues a single-use ticket (valid 60 s) that opens this session's replay stream without an
/// `Authorization` header, for browsers' `EventSource`. The stream then runs as the member who
/// asked for the ticket, with the same checks (admin, reviewer, auditor).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/replay/stream-tickets", tag = "replay", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 201, body = StreamTicket),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody)))]
pub async fn stream_ticket(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(axum::http::StatusCode, Json<StreamTicket>)> {
    head(&state, &member, id).await?;
    let (ticket, hashed) = crate::auth::issue_stream_ticket();
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "WITH gone AS (DELETE FROM stream_tickets WHERE expires_at < now() - interval '1 hour')
         INSERT INTO stream_tickets (ticket_hash, api_key_id, session_id, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at",
    )
    .bind(hashed)
    .bind(member.key_id)
    .bind(id)
    .bind(TICKET_SECONDS as f64)
    .fetch_one(&state.pool)
    .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(StreamTicket { ticket, expires_at }),
    ))
}

/// Plays the session back as server-sent events (`event: replay`, then `event: end`), paced at
/// `speed`× session time with idle gaps shortened to `skip_idle_ms`. If reading fails midway the
/// stream ends with `event: error` carrying a code and `next_seq` to resume from.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/replay/stream", tag = "replay", security(("api_key" = []), ("stream_ticket" = [])),
    params(("session_id" = Uuid, Path), StreamQuery),
    responses(
        (status = 200, description = "`text/event-stream` of the session's events at the chosen speed."),
        (status = 403, description = "`forbidden`: the caller's role may not do this.", body = crate::error::ErrorBody),
        (status = 409, description = "`position_out_of_range`: `from_seq` past the session's last event.", body = crate::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let member = match (
        &q.ticket,
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok()),
    ) {
        (_, Some(h)) => {
            Member::from_api_key(&state, h.strip_prefix("Bearer ").unwrap_or(h).trim()).await?
        }
        (Some(ticket), None) => Member::from_stream_ticket(&state, ticket, id).await?,
        (None, None) => {
            return Err(ApiError::unauthenticated(
                "missing Authorization header or stream ticket",
            ))
        }
    };
    state.spend(crate::limits::Caller::Staff(member.key_id))?;
    let h = head(&state, &member, id).await?;
    let speed = q.speed.unwrap_or(1);
    if !(1..=32).contains(&speed) {
        return Err(ApiError::invalid(
            "invalid_speed",
            "speed must be between 1 and 32",
        ));
    }
    let from = q.from_seq.unwrap_or(0);
    if !(0..=h.last_seq).contains(&from) {
        return Err(out_of_range(
            from,
            format!("from_seq must be between 0 and {}", h.last_seq),
        ));
    }
    let skip_idle = q.skip_idle_ms.unwrap_or(2000);
    if !(0..=MAX_SKIP_IDLE_MS).contains(&skip_idle) {
        return Err(ApiError::invalid(
            "invalid_skip_idle",
            format!("skip_idle_ms must be between 0 and {MAX_SKIP_IDLE_MS}"),
        ));
    }
    // Held until the stream ends or the client goes away.
    let permit = state
        .streams
        .open(member.member_id, state.config.max_streams_per_member)?;
    crate::access_log::record(
        &state.pool,
        &member,
        crate::access_log::REPLAY_STREAM,
        Some(id),
        serde_json::json!({"from_seq": from, "speed": speed, "skip_idle_ms": skip_idle}),
    )
    .await?;
    let stream = async_stream(state, id, h, from, speed, skip_idle).map(move |event| {
        let _open = &permit;
        event
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The longest idle gap a stream may keep (a minute of silence is already a long pause).
const MAX_SKIP_IDLE_MS: i64 = 600_000;

fn async_stream(
    state: AppState,
    id: Uuid,
    h: Head,
    from: i64,
    speed: u32,
    skip_idle: i64,
) -> impl Stream<Item = std::result::Result<Event, Infallible>> {
    futures::stream::unfold(
        (from + 1, None::<i64>, Vec::<TimelineEvent>::new(), false),
        move |(next, last_at, mut buffer, done)| {
            let state = state.clone();
            async move {
                if done {
                    return None;
                }
                if buffer.is_empty() && next <= h.last_seq {
                    match seek::events(&state.pool, id, h.started_at, next, 500)
                        .await
                        .map_err(ApiError::from)
                    {
                        Ok(events) => buffer = events.into_iter().rev().collect(),
                        Err(error) => {
                            // Tell the client the stream ended early, and why in general terms;
                            // the cause was logged by `ApiError`.
                            let body = serde_json::json!({"code": error.code, "message": error.message, "next_seq": next});
                            return Some((
                                Ok(Event::default().event("error").data(body.to_string())),
                                (next, last_at, buffer, true),
                            ));
                        }
                    }
                }
                let Some(event) = buffer.pop() else {
                    return Some((
                        Ok(Event::default().event("end").data("{}")),
                        (next, last_at, buffer, true),
                    ));
                };
                if let Some(prev) = last_at {
                    let gap = (event.at_ms - prev).clamp(0, skip_idle.max(1));
                    tokio::time::sleep(Duration::from_millis((gap / i64::from(speed)) as u64))
                        .await;
                }
                let data = serde_json::to_string(&event).unwrap_or_default();
                let (seq, at) = (event.seq, event.at_ms);
                Some((
                    Ok(Event::default()
                        .event("replay")
                        .id(seq.to_string())
                        .data(data)),
                    (seq + 1, Some(at), buffer, false),
                ))
            }
        },
    )
}
