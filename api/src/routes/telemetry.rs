//! Telemetry ingestion: validated batches produced to Kafka keyed by session id.
//!
//! A batch is all-or-nothing: any invalid event rejects the batch with a reason per event, and
//! nothing is produced. Client `seq` numbers are contiguous per session; the session's cursor
//! (`telemetry_cursors.last_seq`, the highest acknowledged `seq`) advances only after the broker
//! acknowledged every record of a batch, and only forward.
//!
//! Order without holding a lock across the broker round trip: a batch is produced only if it
//! starts at `last_seq + 1` as read before producing, and the cursor moves only after the ack. So
//! batch N+1 can only be produced after batch N was acknowledged, and lands after it in the
//! partition, whichever API process handles it. Two copies of the *same* batch racing (a client
//! retry while the first attempt is still in flight) may both be produced: readers drop the
//! second copy by (session, seq), as they do for a crash between the ack and the cursor update.
//! Events at or below the cursor are answered as duplicates without producing anything.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use clarity_domain::telemetry::{BatchError, BatchLimits, TelemetryEvent};
pub use clarity_domain::telemetry::{EventRejection, TelemetryBatch, MAX_RECORD_BYTES};
use clarity_domain::wire::WireEvent;
use prometheus::{register_histogram, register_int_counter_vec, Histogram, IntCounterVec};
use rdkafka::producer::FutureRecord;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub mod gate;

use crate::auth::CandidateToken;
use crate::config::Config;
use crate::error::{ApiError, Result};
use crate::extract::ApiPath;
use crate::state::AppState;

static INGESTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "clarity_ingested_events_total",
        "Telemetry events by outcome",
        &["outcome"]
    )
    .expect("metric registers")
});
static PRODUCE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "clarity_telemetry_produce_seconds",
        "Time from producing a batch to the broker's acknowledgement",
        vec![0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]
    )
    .expect("metric registers")
});

pub fn router(_state: &AppState) -> Router<AppState> {
    Router::new().route("/v1/sessions/{session_id}/telemetry", post(ingest))
}

/// What happened to a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    /// Events produced to the broker and acknowledged.
    pub accepted: usize,
    /// Events skipped because they were already acknowledged (a retried batch).
    pub duplicates: usize,
    /// The highest acknowledged `seq` of the session.
    pub last_seq: i64,
}

/// Ingests a telemetry batch for the caller's session.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/telemetry", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), request_body = TelemetryBatch,
    responses(
        (status = 200, body = IngestResult),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`session_not_in_progress`: the session is not started, finished, or past its deadline; `sequence_gap`: the batch does not start at the next `seq` (`details.expected_seq`).", body = crate::error::ErrorBody),
        (status = 413, description = "`batch_too_large`: more events or bytes than the server takes; `event_too_large`: one event is over 900,000 bytes as a record.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_events`: `details` lists each refused event with its code (e.g. `invalid_event`, `invalid_seq`, `invalid_text`, `invalid_file`, `timestamp_too_early`, `timestamp_in_future`, `timestamp_before_session`, `sequence_not_increasing`, `scope_not_consented`: a key timing or face check without consent to its scope, or dated after its withdrawal); nothing of the batch was accepted. `empty_batch`: no events.", body = crate::error::ErrorBody),
        (status = 503, description = "`broker_unavailable`: retry the batch.", body = crate::error::ErrorBody)))]
pub async fn ingest(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(session_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IngestResult>> {
    token.for_session(session_id)?;
    let events = parse_batch(&state, &headers, body).await?;

    // The session's life came with the token (from the event store, no aggregate replay).
    let now = state.now();
    if !token.accepts_telemetry(now) {
        INGESTED
            .with_label_values(&["rejected"])
            .inc_by(events.len() as u64);
        let why = if token.ended_at.is_some() {
            "has ended"
        } else if token.started_at.is_none() {
            "has not started"
        } else {
            "is past its deadline"
        };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_not_in_progress",
            format!("the session {why}; telemetry is accepted only while it is in progress"),
        ));
    }
    let org_id = token.org_id;
    // Per-event rules that need the session: a client cannot date its process trace before the
    // session started (beyond the clock skew allowed: a backdated trace would misplace every
    // event on the replay and in the analyses), and key timings and face checks need the
    // candidate's consent to that scope, none dated after it was withdrawn.
    let earliest = token.started_at.map(|s| {
        (
            s,
            s - chrono::Duration::seconds(state.config.max_clock_skew_seconds),
        )
    });
    let refused: Vec<EventRejection> = events
        .iter()
        .enumerate()
        .filter_map(|(index, e)| {
            let (code, message) = match (earliest, token.consent_refuses(&e.data, e.ts)) {
                (Some((started_at, earliest)), _) if e.ts < earliest => (
                    "timestamp_before_session",
                    format!("`ts` {} is before the session started ({started_at})", e.ts),
                ),
                (_, Some(scope)) => (
                    "scope_not_consented",
                    format!(
                        "the candidate has not consented to `{scope}` (or withdrew it before `ts`)"
                    ),
                ),
                _ => return None,
            };
            Some(EventRejection {
                index,
                seq: Some(e.seq),
                code: code.to_string(),
                message,
            })
        })
        .collect();
    if !refused.is_empty() {
        INGESTED
            .with_label_values(&["rejected"])
            .inc_by(events.len() as u64);
        return Err(ApiError::invalid(
            "invalid_events",
            format!(
                "{} event(s) rejected; nothing in the batch was accepted",
                refused.len()
            ),
        )
        .with_details(refused));
    }

    // The gate came with the token (a plain read, no transaction held while the broker
    // acknowledges; see the module comment for why order still holds). The session's first
    // batch creates the row.
    let (last_seq, gate) = match token.gate.clone() {
        Some(gate) => gate,
        None => {
            type Row = (
                i64,
                i64,
                i64,
                Option<sqlx::types::Json<std::collections::BTreeMap<String, i64>>>,
            );
            // Created empty, or as a racing request just left it.
            let (last_seq, events, bytes, files): Row = sqlx::query_as(
                "INSERT INTO telemetry_cursors (session_id, files) VALUES ($1, '{}')
                 ON CONFLICT (session_id) DO UPDATE SET session_id = EXCLUDED.session_id
                 RETURNING last_seq, events, bytes, files",
            )
            .bind(session_id)
            .fetch_one(&state.pool)
            .await?;
            (
                last_seq,
                gate::Gate::from_row(last_seq, events, bytes, files.map(|f| f.0)),
            )
        }
    };
    let fresh: Vec<&TelemetryEvent> = events.iter().filter(|e| e.seq as i64 > last_seq).collect();
    let duplicates = events.len() - fresh.len();
    if let Some(first) = fresh.first() {
        if first.seq as i64 != last_seq + 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "sequence_gap",
                format!("expected seq {} next, got {}", last_seq + 1, first.seq),
            )
            .with_details(serde_json::json!({ "expected_seq": last_seq + 1 })));
        }
    } else {
        INGESTED
            .with_label_values(&["duplicate"])
            .inc_by(duplicates as u64);
        return Ok(Json(IngestResult {
            accepted: 0,
            duplicates,
            last_seq,
        }));
    }

    let key = session_id.to_string();
    let topic = &state.config.topic_sessions;
    let payloads: Vec<Vec<u8>> = fresh
        .iter()
        .map(|e| {
            serde_json::to_vec(&WireEvent::telemetry(session_id, org_id, e))
                .map_err(ApiError::internal)
        })
        .collect::<Result<_>>()?;
    // A record larger than the producer's limit (librdkafka's `message.max.bytes`, 1,000,000 by
    // default) is refused locally by librdkafka: answer what it is (413, the client must split
    // or shrink the event), not 503 (which a client retries forever). Checked before anything
    // is produced, so nothing of the batch is accepted.
    if let Some(index) = payloads.iter().position(|p| p.len() > MAX_RECORD_BYTES) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "event_too_large",
            format!(
                "event seq {} is {} bytes as a record; at most {MAX_RECORD_BYTES} bytes per event",
                fresh[index].seq,
                payloads[index].len()
            ),
        ));
    }
    // The session's caps and its workspace's rules, against the gate as read above.
    let mut next = gate.clone();
    let sized: Vec<(&TelemetryEvent, usize)> = fresh
        .iter()
        .copied()
        .zip(payloads.iter().map(Vec::len))
        .collect();
    let limits = gate::Limits {
        max_events: state.config.max_session_events,
        max_bytes: state.config.max_session_bytes,
        max_workspace_units: state.config.max_workspace_units,
        max_files: state.config.max_workspace_files,
    };
    if let Err(refusal) = next.admit(&sized, &limits) {
        INGESTED
            .with_label_values(&["rejected"])
            .inc_by(events.len() as u64);
        return Err(match refusal {
            gate::Refusal::Event {
                index,
                code,
                message,
            } => ApiError::invalid(
                "invalid_events",
                "1 event(s) rejected; nothing in the batch was accepted",
            )
            .with_details(vec![EventRejection {
                // Duplicates are a prefix of the batch (seq increases within it).
                index: duplicates + index,
                seq: Some(fresh[index].seq),
                code: code.to_string(),
                message,
            }]),
            gate::Refusal::Cap { code, message } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
            }
        });
    }
    let started = Instant::now();
    let deliveries: Vec<_> = payloads
        .iter()
        .map(|p| {
            state.producer.send(
                FutureRecord::to(topic).key(&key).payload(p),
                Duration::from_secs(10),
            )
        })
        .collect();
    for delivery in futures::future::join_all(deliveries).await {
        if let Err((error, _)) = delivery {
            // The cursor stays put; the client retries the batch.
            INGESTED
                .with_label_values(&["broker_error"])
                .inc_by(fresh.len() as u64);
            return Err(ApiError::unavailable("broker_unavailable", error));
        }
    }
    PRODUCE_SECONDS.observe(started.elapsed().as_secs_f64());
    let new_last = fresh.last().map_or(last_seq, |e| e.seq as i64);
    // Only ever moves forward, and only once per batch: a slower copy of this batch (checked
    // against the same gate) finds the cursor already there and changes nothing.
    sqlx::query(
        "UPDATE telemetry_cursors SET last_seq = $2, events = $3, bytes = $4, files = $5, updated_at = now()
         WHERE session_id = $1 AND last_seq < $2",
    )
    .bind(session_id)
    .bind(new_last)
    .bind(next.events)
    .bind(next.bytes)
    .bind((!next.legacy).then(|| sqlx::types::Json(&next.files)))
    .execute(&state.pool)
    .await?;
    INGESTED
        .with_label_values(&["accepted"])
        .inc_by(fresh.len() as u64);
    INGESTED
        .with_label_values(&["duplicate"])
        .inc_by(duplicates as u64);
    Ok(Json(IngestResult {
        accepted: fresh.len(),
        duplicates,
        last_seq: new_last,
    }))
}

/// Reads, bounds and validates a batch (`clarity_domain::telemetry::parse_batch`); every problem
/// is reported per event.
async fn parse_batch(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<TelemetryEvent>> {
    let config = &state.config;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ));
    }
    let bytes = read_at_most(body, config.max_batch_bytes)
        .await
        .ok_or_else(|| batch_too_large(config))?;
    let limits = BatchLimits {
        max_events: config.max_batch_events,
        max_clock_skew: chrono::Duration::seconds(config.max_clock_skew_seconds),
    };
    clarity_domain::telemetry::parse_batch(&bytes, &limits, state.now())
        .map_err(|error| batch_error(error, config))
}

/// 413 `batch_too_large`: too many bytes or events.
fn batch_too_large(config: &Config) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
        format!(
            "a batch holds at most {} bytes and {} events",
            config.max_batch_bytes, config.max_batch_events
        ),
    )
}

/// The answer to a refused batch: its status, code and message, and the rejection of each
/// invalid event in `details`.
fn batch_error(error: BatchError, config: &Config) -> ApiError {
    let (code, message) = (error.code(), error.to_string());
    match error {
        BatchError::MalformedJson(_) => ApiError::new(StatusCode::BAD_REQUEST, code, message),
        BatchError::InvalidBody(_) | BatchError::Empty => ApiError::invalid(code, message),
        BatchError::TooManyEvents { .. } => batch_too_large(config),
        BatchError::InvalidEvents { events, rejections } => {
            INGESTED
                .with_label_values(&["rejected"])
                .inc_by(events as u64);
            ApiError::invalid(code, message).with_details(rejections)
        }
    }
}

/// How much of an oversize body is read, and thrown away, before answering 413. Most clients do
/// not read a response before they finish sending: cut off after the limit, they see a broken
/// pipe instead of `batch_too_large`. Past this much the connection is closed unread.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// The body if it holds at most `limit` bytes; `None` if it is larger (or breaks off), after
/// draining up to [`DRAIN_BYTES`] more of it.
async fn read_at_most(body: Body, limit: usize) -> Option<axum::body::Bytes> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        seen += chunk.len();
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        } else if seen > limit.saturating_add(DRAIN_BYTES) {
            return None;
        }
    }
    (seen <= limit).then(|| kept.into())
}

impl crate::extract::BodyText for TelemetryBatch {
    // Inserted text, file contents and commands are code; a batch is bounded by
    // `max_batch_bytes` and each event by `MAX_RECORD_BYTES` instead.
    const LONG_TEXT: &'static [&'static str] = &["events"];
}
