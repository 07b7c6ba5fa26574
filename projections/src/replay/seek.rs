//! Queries over the replay: a session's head, its timeline markers, the workspace at any position
//! and pages of its events. A seek reads one keyframe (`replay_keyframes`, this projection) and at
//! most one keyframe interval of events from the session's log (`session_events`, projection
//! `sessions`), never a replay from the start; positions are telemetry `seq`s or milliseconds
//! since the session started.
//!
//! Access is the caller's business: every function takes the session id the caller was allowed
//! to see, and [`head`] takes the organization so that another organization's session is simply
//! not found.

use chrono::{DateTime, Utc};
use clarity_domain::telemetry::TelemetryData;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::replay_engine::{self, Keyframe, KeyframePolicy, Workspace};

/// A point of interest on the timeline.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Marker {
    /// `paste`, `focus_away`, `code_run`, `face_anomaly`, `edit_anomaly`, `submission`.
    pub kind: String,
    pub seq: i64,
    pub at_ms: i64,
    pub end_seq: Option<i64>,
    pub duration_ms: Option<i64>,
    pub label: String,
    pub data: serde_json::Value,
}

/// One telemetry event on the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEvent {
    pub seq: i64,
    pub at_ms: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: serde_json::Value,
}

/// Where a session's replay stands.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub started_at: Option<DateTime<Utc>>,
    /// The last telemetry `seq` applied.
    pub last_seq: i64,
    /// Its time since the start.
    pub last_at_ms: i64,
    /// Edits that did not apply.
    pub anomalies: i64,
}

/// The replay head of session `session_id` of organization `org_id`; `None` if the organization
/// has no replay of that session.
pub async fn head(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Option<Head>, sqlx::Error> {
    let row: Option<(Option<DateTime<Utc>>, i64, i64, i64)> = sqlx::query_as(
        "SELECT started_at, last_seq, last_at_ms, anomalies FROM replay_sessions WHERE session_id = $1 AND org_id = $2",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(started_at, last_seq, last_at_ms, anomalies)| Head {
            started_at,
            last_seq,
            last_at_ms,
            anomalies,
        }),
    )
}

/// What the timeline's title shows, from projection `sessions`: (status, candidate name,
/// assessment title); all `None` when the session is not projected there (yet).
pub async fn labels(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<(Option<String>, Option<String>, Option<String>), sqlx::Error> {
    Ok(sqlx::query_as(
        "SELECT status, candidate_name, assessment_title FROM sessions WHERE session_id = $1 AND org_id = $2",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?
    .unwrap_or_default())
}

/// The first `limit` markers of the session, in position order.
pub async fn first_markers(
    pool: &PgPool,
    session_id: Uuid,
    limit: i64,
) -> Result<Vec<Marker>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, seq, at_ms, end_seq, duration_ms, label, data FROM replay_markers WHERE session_id = $1 ORDER BY seq, kind LIMIT $2",
    )
    .bind(session_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The markers that start within `from..=to`, in position order.
pub async fn markers_between(
    pool: &PgPool,
    session_id: Uuid,
    from: i64,
    to: i64,
) -> Result<Vec<Marker>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, seq, at_ms, end_seq, duration_ms, label, data FROM replay_markers
         WHERE session_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, kind",
    )
    .bind(session_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// An event's time since the session started (0 when the start is not known).
fn at_ms(started_at: Option<DateTime<Utc>>, occurred_at: DateTime<Utc>) -> i64 {
    started_at.map_or(0, |s| (occurred_at - s).num_milliseconds().max(0))
}

/// The `seq` of the last event at or before `at_ms` milliseconds since the start (0 before the
/// first). The caller has checked `0 <= at_ms <= head.last_at_ms`. `keyframes` is the replay's
/// keyframe interval, which bounds the scan.
pub async fn seq_at_ms(
    pool: &PgPool,
    session_id: Uuid,
    head: &Head,
    at_ms: i64,
    keyframes: &KeyframePolicy,
) -> Result<i64, sqlx::Error> {
    let Some(started_at) = head.started_at else {
        return Ok(0);
    };
    // The nearest keyframe at or before `at_ms` bounds the scan to one keyframe interval.
    let from: i64 = sqlx::query_scalar(
        "SELECT COALESCE(max(seq), 0) FROM replay_keyframes WHERE session_id = $1 AND at_ms <= $2",
    )
    .bind(session_id)
    .bind(at_ms)
    .fetch_one(pool)
    .await?;
    // An event's `at_ms` is the whole milliseconds since the start, so it is at or before
    // `at_ms` exactly when it happened before `at_ms + 1` ms.
    let until = started_at + chrono::Duration::milliseconds(at_ms + 1);
    let seq: Option<i64> = sqlx::query_scalar(
        "SELECT max(seq) FROM session_events WHERE session_id = $1 AND stream_kind = 'telemetry'
         AND seq > $2 AND seq <= $3 AND occurred_at < $4",
    )
    .bind(session_id)
    .bind(from)
    .bind(scan_limit(keyframes, from, head.last_seq))
    .bind(until)
    .fetch_one(pool)
    .await?;
    Ok(seq.unwrap_or(from))
}

/// How far past a keyframe an at-time scan may need to look: the next keyframe comes at most one
/// event interval later (twice that tolerates clients whose clocks step backwards).
fn scan_limit(keyframes: &KeyframePolicy, from: i64, last_seq: i64) -> i64 {
    match keyframes.every_events {
        0 => last_seq,
        n => last_seq.min(from + 2 * i64::from(n)),
    }
}

/// The workspace right after `target` (nearest keyframe + the events after it), and the event at
/// `target`; `None` when the session has no keyframe at or before it (no replay yet).
pub async fn workspace_at(
    pool: &PgPool,
    session_id: Uuid,
    started_at: Option<DateTime<Utc>>,
    target: i64,
) -> Result<Option<(Workspace, Option<TimelineEvent>)>, sqlx::Error> {
    let keyframe: Option<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT seq, workspace FROM replay_keyframes WHERE session_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(session_id)
    .bind(target)
    .fetch_optional(pool)
    .await?;
    let Some((kf_seq, kf_ws)) = keyframe else {
        return Ok(None);
    };
    let workspace: Workspace =
        serde_json::from_value(kf_ws).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let rows: Vec<(i64, String, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "SELECT seq, event_type, occurred_at, data FROM session_events
         WHERE session_id = $1 AND stream_kind = 'telemetry' AND seq >= $2 AND seq <= $3 ORDER BY seq",
    )
    .bind(session_id)
    // From the keyframe's own event (skipped by `state_at`), so the event at `target` is known
    // even when `target` is the keyframe.
    .bind(kf_seq.max(1))
    .bind(target)
    .fetch_all(pool)
    .await?;
    let events: Vec<(u64, TelemetryData)> = rows
        .iter()
        .filter_map(|(seq, _, _, data)| {
            serde_json::from_value(data.clone())
                .ok()
                .map(|d| (*seq as u64, d))
        })
        .collect();
    let keyframe = Keyframe {
        seq: kf_seq as u64,
        workspace,
    };
    let (workspace, _anomalies) = replay_engine::state_at(&keyframe, &events, target as u64);
    let event = rows
        .last()
        .filter(|r| r.0 == target)
        .map(|(seq, event_type, occurred, data)| TimelineEvent {
            seq: *seq,
            at_ms: at_ms(started_at, *occurred),
            event_type: event_type.clone(),
            data: data.clone(),
        });
    Ok(Some((workspace, event)))
}

/// The files the session's telemetry reconstructs through `through` (path → content; empty at
/// 0), once the replay of organization `org_id` has applied it; `None` while it has not (or the
/// organization has no replay of the session). What a resume, a submission download and a
/// report show.
pub async fn files_through(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
    through: i64,
) -> Result<Option<std::collections::BTreeMap<String, String>>, sqlx::Error> {
    if through <= 0 {
        return Ok(Some(Default::default()));
    }
    let Some(head) = head(pool, org_id, session_id).await? else {
        return Ok(None);
    };
    if head.last_seq < through {
        return Ok(None);
    }
    Ok(workspace_at(pool, session_id, head.started_at, through)
        .await?
        .map(|(workspace, _)| workspace.files))
}

/// Up to `limit` telemetry events from `from` on, in order.
pub async fn events(
    pool: &PgPool,
    session_id: Uuid,
    started_at: Option<DateTime<Utc>>,
    from: i64,
    limit: i64,
) -> Result<Vec<TimelineEvent>, sqlx::Error> {
    let rows: Vec<(i64, String, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "SELECT seq, event_type, occurred_at, data FROM session_events
         WHERE session_id = $1 AND stream_kind = 'telemetry' AND seq >= $2 ORDER BY seq LIMIT $3",
    )
    .bind(session_id)
    .bind(from)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, event_type, occurred, data)| TimelineEvent {
            seq,
            at_ms: at_ms(started_at, occurred),
            event_type,
            data,
        })
        .collect())
}
