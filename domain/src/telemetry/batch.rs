//! A telemetry batch as a client sends it: parsed, bounded and validated, with a reason for each
//! refused event.
//!
//! A batch is all-or-nothing: one invalid event refuses the whole batch, and the error lists
//! every invalid event (its index, its `seq` when it has one, a stable code and a message). This
//! is the part of ingestion that reads untrusted bytes, so it is pure — the clock is an argument,
//! nothing is produced — and lives here, where the API and the fuzz target
//! (`fuzz/fuzz_targets/telemetry_batch.rs`) run the same code. The API keeps the HTTP side (the
//! content type, the body size limit, the mapping to status codes) and the checks that need the
//! session (its status, its start, the cursor).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::EventBody;
use super::{Rejection, TelemetryEvent};

/// The largest telemetry record (one event as its CloudEvent JSON) the API produces: below
/// librdkafka's default `message.max.bytes` (1,000,000) with room for the record's overhead.
pub const MAX_RECORD_BYTES: usize = 900_000;

/// A batch of client-numbered events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBatch {
    /// 1 to `CLARITY_MAX_BATCH_EVENTS` events (1000 by default; more answers 413), with `seq`
    /// increasing.
    #[schema(value_type = Vec<TelemetryEvent>, min_items = 1, max_items = 1000)]
    pub events: Vec<serde_json::Value>,
}

/// The same batch, parsed straight into events (the fast path for well-formed batches). The
/// events are strict twins of `TelemetryEvent` ([`super::body`]): the domain type ignores
/// unknown fields, a request may not carry any.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedBatch {
    events: Vec<EventBody>,
}

/// Why one event was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EventRejection {
    pub index: usize,
    pub seq: Option<u64>,
    pub code: String,
    pub message: String,
}

/// What a batch is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events in one batch.
    pub max_events: usize,
    /// How far past the server's clock an event's `ts` may be.
    pub max_clock_skew: Duration,
}

/// Why a batch was refused as a whole. Each variant has a stable [`code`](BatchError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body is not JSON (`malformed_json`; the message is serde_json's).
    #[error("{0}")]
    MalformedJson(String),
    /// JSON, but not `{"events": [...]}` (`invalid_body`).
    #[error("{0}")]
    InvalidBody(String),
    /// More than [`BatchLimits::max_events`] events (`batch_too_large`).
    #[error("{events} events; a batch holds at most {max}")]
    TooManyEvents { events: usize, max: usize },
    /// No events (`empty_batch`).
    #[error("a batch needs at least one event")]
    Empty,
    /// Some events are invalid (`invalid_events`): `rejections` names each, in order; nothing of
    /// the batch's `events` events is accepted.
    #[error("{} event(s) rejected; nothing in the batch was accepted", .rejections.len())]
    InvalidEvents {
        events: usize,
        rejections: Vec<EventRejection>,
    },
}

impl BatchError {
    /// The stable machine-readable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidBody(_) => "invalid_body",
            Self::TooManyEvents { .. } => "batch_too_large",
            Self::Empty => "empty_batch",
            Self::InvalidEvents { .. } => "invalid_events",
        }
    }
}

/// Parses and validates a batch body received at `now`: every event on its own
/// ([`TelemetryEvent::validate`]) and `seq` strictly increasing within the batch. Returns the
/// events in order, or why the batch is refused, with every problem reported per event.
pub fn parse_batch(
    bytes: &[u8],
    limits: &BatchLimits,
    now: DateTime<Utc>,
) -> Result<Vec<TelemetryEvent>, BatchError> {
    // Fast path: a well-formed batch parses straight into events (one pass). Anything else is
    // parsed again as generic JSON so that each bad event gets its own reason.
    let events: Vec<Parsed> = match serde_json::from_slice::<TypedBatch>(bytes) {
        Ok(batch) => batch
            .events
            .into_iter()
            .map(|e| {
                let e = TelemetryEvent::from(e);
                (Some(e.seq), Ok(e))
            })
            .collect(),
        Err(_) => generic_events(bytes)?,
    };
    if events.len() > limits.max_events {
        return Err(BatchError::TooManyEvents {
            events: events.len(),
            max: limits.max_events,
        });
    }
    if events.is_empty() {
        return Err(BatchError::Empty);
    }
    let count = events.len();
    let mut valid = Vec::with_capacity(count);
    let mut rejections = Vec::new();
    let mut previous: Option<u64> = None;
    for (index, (seq_hint, parsed)) in events.into_iter().enumerate() {
        let checked = parsed
            .map_err(|e| Rejection {
                code: "invalid_event",
                message: e.to_string(),
            })
            .and_then(|event| event.validate(now, limits.max_clock_skew).map(|()| event))
            .and_then(|event| match previous {
                Some(p) if event.seq <= p => Err(Rejection {
                    code: "sequence_not_increasing",
                    message: format!(
                        "seq {} follows {p}; seq must increase within a batch",
                        event.seq
                    ),
                }),
                _ => Ok(event),
            });
        match checked {
            Ok(event) => {
                previous = Some(event.seq);
                valid.push(event);
            }
            Err(r) => rejections.push(EventRejection {
                index,
                seq: seq_hint,
                code: r.code.to_string(),
                message: r.message,
            }),
        }
    }
    if !rejections.is_empty() {
        return Err(BatchError::InvalidEvents {
            events: count,
            rejections,
        });
    }
    Ok(valid)
}

/// The events of a batch that did not parse as a whole: each parsed on its own (its `seq`
/// reported when it has one), or the whole body refused if it is not a batch at all.
type Parsed = (Option<u64>, serde_json::Result<TelemetryEvent>);

fn generic_events(bytes: &[u8]) -> Result<Vec<Parsed>, BatchError> {
    let batch: TelemetryBatch = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            BatchError::MalformedJson(e.to_string())
        } else {
            BatchError::InvalidBody(e.to_string())
        }
    })?;
    Ok(batch
        .events
        .into_iter()
        .map(|value| {
            let seq = value.get("seq").and_then(|s| s.as_u64());
            let event = serde_json::from_value::<EventBody>(value);
            (seq, event.map(TelemetryEvent::from))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TelemetryData;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn limits() -> BatchLimits {
        BatchLimits {
            max_events: 3,
            max_clock_skew: Duration::seconds(30),
        }
    }

    fn focus(seq: u64) -> serde_json::Value {
        json!({"seq": seq, "ts": "2026-01-01T00:00:00Z", "data": {"type": "focus_lost"}})
    }

    fn parse(body: serde_json::Value) -> Result<Vec<TelemetryEvent>, BatchError> {
        parse_batch(&serde_json::to_vec(&body).unwrap(), &limits(), now())
    }

    fn codes(result: Result<Vec<TelemetryEvent>, BatchError>) -> Vec<(usize, String)> {
        match result {
            Err(BatchError::InvalidEvents { rejections, .. }) => {
                rejections.into_iter().map(|r| (r.index, r.code)).collect()
            }
            other => panic!("expected invalid_events, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_batch_parses_into_its_events_in_order() {
        let events = parse(json!({"events": [focus(4), focus(5)]})).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn a_body_that_is_not_a_batch_is_refused_as_a_whole_with_its_code() {
        let code = |bytes: &[u8]| parse_batch(bytes, &limits(), now()).unwrap_err().code();
        assert_eq!(code(br#"{"events": [{"seq": 4,"#), "malformed_json");
        assert_eq!(code(b""), "malformed_json");
        assert_eq!(
            code(br#"{"events": [], "compressed": false}"#),
            "invalid_body"
        );
        assert_eq!(code(br#"[1, 2]"#), "invalid_body");
        assert_eq!(code(br#"{"events": []}"#), "empty_batch");
        let four = json!({"events": [focus(1), focus(2), focus(3), focus(4)]});
        assert_eq!(
            parse(four).unwrap_err(),
            BatchError::TooManyEvents { events: 4, max: 3 }
        );
    }

    #[test]
    fn every_invalid_event_is_named_with_its_index_seq_and_code() {
        let mut unknown = focus(4);
        unknown["source"] = json!("browser");
        let result = parse(json!({"events": [unknown, focus(6), focus(5)]}));
        assert_eq!(
            codes(result.clone()),
            [
                (0, "invalid_event".to_string()),
                (2, "sequence_not_increasing".to_string())
            ]
        );
        let Err(BatchError::InvalidEvents { events, rejections }) = result else {
            unreachable!()
        };
        assert_eq!(events, 3);
        assert_eq!(rejections[0].seq, Some(4));
        assert_eq!(
            BatchError::InvalidEvents { events, rejections }.to_string(),
            "2 event(s) rejected; nothing in the batch was accepted"
        );
    }

    #[test]
    fn an_event_is_checked_against_the_clock_it_is_given() {
        let mut late = focus(1);
        late["ts"] = json!("2026-01-01T00:00:31Z");
        assert_eq!(
            codes(parse(json!({"events": [late]}))),
            [(0, "timestamp_in_future".to_string())]
        );
    }

    #[test]
    fn the_committed_fuzz_seeds_of_every_kind_are_accepted() {
        // The fuzz target starts from these (fuzz/corpus, written by `--example fuzz_seeds`);
        // a seed that no longer parses would leave the valid paths unexplored.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/telemetry_batch");
        let now = "2026-03-01T12:00:00Z".parse().unwrap();
        let limits = BatchLimits {
            max_events: 1000,
            max_clock_skew: Duration::seconds(30),
        };
        for kind in TelemetryData::KINDS.iter().chain(&["all-kinds"]) {
            let bytes = std::fs::read(dir.join(format!("seed-{kind}.json"))).unwrap();
            let events = parse_batch(&bytes, &limits, now).unwrap();
            assert!(*kind == "all-kinds" || events[0].data.kind() == *kind);
        }
        let refused = std::fs::read(dir.join("seed-refused.json")).unwrap();
        assert_eq!(
            parse_batch(&refused, &limits, now).unwrap_err().code(),
            "invalid_events"
        );
    }
}
