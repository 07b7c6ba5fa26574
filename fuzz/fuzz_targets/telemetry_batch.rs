//! The telemetry batch parser (`clarity_domain::telemetry::parse_batch`) on arbitrary request
//! bodies: it must never panic, and what it accepts must be what the rest of Clarity relies on.
//!
//! The input is parsed as a body; input that is not JSON also drives a generator of well-formed
//! batches (the events' own fields with arbitrary values: any text, boundary numbers and times),
//! which reach the per-event checks far more often than mutated bytes do.
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, Duration, Utc};
use clarity_domain::telemetry::{
    earliest_timestamp, parse_batch, BatchError, BatchLimits, TelemetryData, TelemetryEvent,
    MAX_PATH_CHARS, MAX_RECORD_BYTES,
};
use clarity_domain::wire::{decode_record, Payload, WireEvent};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The API's defaults (`CLARITY_MAX_BATCH_EVENTS`, `CLARITY_MAX_CLOCK_SKEW_SECONDS`).
const LIMITS: BatchLimits = BatchLimits {
    max_events: 1000,
    max_clock_skew: Duration::seconds(30),
};

/// The longest `command` of a `code_run` event, in characters (`TelemetryEvent::validate`).
const MAX_COMMAND_CHARS: usize = 4096;

/// How much larger than the batch body one event's record may be: the CloudEvent envelope and
/// numbers printed longer than the client wrote them (`1e15` is `1000000000000000.0`).
const RECORD_OVERHEAD: usize = 1024;

/// Every code a refused event may carry.
const CODES: [&str; 14] = [
    "invalid_event",
    "sequence_not_increasing",
    "invalid_seq",
    "timestamp_in_future",
    "timestamp_too_early",
    "invalid_timing",
    "missing_file",
    "invalid_file",
    "invalid_text",
    "negative_position",
    "negative_length",
    "too_long",
    "out_of_range",
    "missing_model",
];

fn now() -> DateTime<Utc> {
    "2026-03-01T12:00:00Z".parse().expect("a valid time")
}

fuzz_target!(|input: &[u8]| {
    check(input);
    if serde_json::from_slice::<Value>(input).is_err() {
        if let Ok(batch) = generated(&mut Unstructured::new(input)) {
            check(&serde_json::to_vec(&batch).expect("a batch serializes"));
        }
    }
});

fn check(body: &[u8]) {
    let now = now();
    let result = parse_batch(body, &LIMITS, now);
    assert_eq!(result, parse_batch(body, &LIMITS, now), "not deterministic");
    match result {
        Ok(events) => accepted(body, &events, now),
        Err(BatchError::TooManyEvents { events, max }) => {
            assert_eq!(max, LIMITS.max_events);
            assert!(events > max);
        }
        Err(BatchError::InvalidEvents { events, rejections }) => {
            assert!(!rejections.is_empty());
            assert!(events <= LIMITS.max_events);
            assert!(rejections.windows(2).all(|w| w[0].index < w[1].index));
            assert!(rejections.iter().all(|r| r.index < events));
            for r in &rejections {
                assert!(CODES.contains(&r.code.as_str()), "unknown code {}", r.code);
            }
        }
        Err(BatchError::MalformedJson(_) | BatchError::InvalidBody(_) | BatchError::Empty) => {}
    }
}

/// Everything an accepted batch promises to the API, the topic and the readers.
fn accepted(body: &[u8], events: &[TelemetryEvent], now: DateTime<Utc>) {
    assert!(!events.is_empty() && events.len() <= LIMITS.max_events);
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq must increase within a batch"
    );
    for event in events {
        assert!(event.seq >= 1 && i64::try_from(event.seq).is_ok());
        assert!(event.ts >= earliest_timestamp() && event.ts <= now + LIMITS.max_clock_skew);
        assert_eq!(event.validate(now, LIMITS.max_clock_skew), Ok(()));
        data_is_storable(&event.data);

        // Its record fits on the topic, and readers decode it back to the same event.
        let (session, org) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let record = serde_json::to_vec(&WireEvent::telemetry(session, org, event))
            .expect("an accepted event serializes");
        assert!(record.len() <= body.len() + RECORD_OVERHEAD, "record grew");
        if body.len() + RECORD_OVERHEAD <= MAX_RECORD_BYTES {
            assert!(record.len() <= MAX_RECORD_BYTES);
        }
        let (wire, payload) = decode_record(&record).expect("a reader decodes the record");
        assert_eq!(payload, Payload::Telemetry(event.data.clone()));
        assert_eq!((wire.sequence, wire.time), (event.seq, event.ts));
    }

    // The strict request types read what the tolerant domain type reads (which, unlike them,
    // takes integers only without a fraction: `4.0` is the strict types' alone).
    let batch: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let raw = batch["events"]
        .as_array()
        .expect("an accepted body has events");
    assert_eq!(raw.len(), events.len());
    for (value, event) in raw.iter().zip(events) {
        if let Ok(tolerant) = serde_json::from_value::<TelemetryEvent>(value.clone()) {
            assert_eq!(&tolerant, event);
        }
    }

    // The events as a client would send them again are accepted as the same events.
    let again = serde_json::to_vec(&serde_json::json!({ "events": events })).expect("serializes");
    assert_eq!(parse_batch(&again, &LIMITS, now).as_deref(), Ok(events));
}

/// Text PostgreSQL can store (no NUL anywhere), paths as documented, strings within their limit.
fn data_is_storable(data: &TelemetryData) {
    let value = serde_json::to_value(data).expect("telemetry serializes");
    assert!(!has_nul(&value), "NUL in {value}");
    let path = |file: &str| {
        assert!(!file.trim().is_empty(), "empty path");
        assert!(file.chars().count() <= MAX_PATH_CHARS, "path too long");
        assert!(!file.starts_with('/'), "absolute path {file:?}");
        assert!(!file.split('/').any(|s| s == ".."), "`..` in {file:?}");
        assert!(!file.chars().any(char::is_control), "control in {file:?}");
    };
    match data {
        TelemetryData::Edit {
            file,
            position,
            deleted,
            ..
        } => {
            path(file);
            assert!(*position >= 0 && *deleted >= 0);
        }
        TelemetryData::FileCreated { file, .. } | TelemetryData::FileDeleted { file } => path(file),
        TelemetryData::FileRenamed { file, new_file } => {
            path(file);
            path(new_file);
        }
        TelemetryData::Cursor {
            file,
            position,
            selection_end,
        } => {
            path(file);
            assert!(*position >= 0 && selection_end.is_none_or(|s| s >= 0));
        }
        TelemetryData::CodeRun { command, .. } => {
            assert!(command.chars().count() <= MAX_COMMAND_CHARS)
        }
        TelemetryData::Keystroke { down_ms, up_ms, .. } => {
            assert!(down_ms.is_finite() && *down_ms >= 0.0);
            assert!(up_ms.is_none_or(|up| up.is_finite() && up >= *down_ms));
        }
        TelemetryData::FaceCheck {
            similarity,
            quality,
            model_id,
            model_version,
            ..
        } => {
            assert!((0.0..=1.0).contains(similarity) && (0.0..=1.0).contains(quality));
            assert!(!model_id.trim().is_empty() && !model_version.trim().is_empty());
        }
        TelemetryData::FocusLost {} | TelemetryData::FocusRegained {} => {}
    }
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// A batch of up to 8 events of known types whose fields hold arbitrary values.
fn generated(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut seq: u64 = u.int_in_range(0..=3)?;
    let n = u.int_in_range(0..=8)?;
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        seq = match u.int_in_range(0..=9)? {
            0 => u.arbitrary()?,
            1 => seq,
            _ => seq.saturating_add(1),
        };
        let kind = *u.choose(&TelemetryData::KINDS)?;
        let mut data = Map::new();
        data.insert("type".into(), json!(kind));
        for field in fields(kind) {
            if u.ratio(15, 16)? {
                data.insert(field.to_string(), value(u, field)?);
            }
        }
        if u.ratio(1, 32)? {
            data.insert(u.arbitrary()?, value(u, "text")?);
        }
        events.push(json!({"seq": seq, "ts": timestamp(u)?, "data": data}));
    }
    Ok(json!({ "events": events }))
}

fn fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "keystroke" => &["down_ms", "up_ms", "key_class"],
        "edit" => &["file", "position", "deleted", "inserted", "origin"],
        "file_created" => &["file", "content"],
        "file_renamed" => &["file", "new_file"],
        "file_deleted" => &["file"],
        "cursor" => &["file", "position", "selection_end"],
        "code_run" => &[
            "command",
            "exit_code",
            "tests_passed",
            "tests_failed",
            "duration_ms",
        ],
        "face_check" => &[
            "similarity",
            "model_id",
            "model_version",
            "face_count",
            "quality",
        ],
        _ => &[],
    }
}

/// A value of the field's type, at its edges, or now and then of another type.
fn value(u: &mut Unstructured<'_>, field: &str) -> Result<Value> {
    if u.ratio(1, 32)? {
        return Ok(json!(null));
    }
    Ok(match field {
        "down_ms" | "up_ms" | "similarity" | "quality" => {
            let edges = [
                0.0,
                -0.0,
                1.0,
                1e-300,
                1e300,
                f64::MAX,
                f64::MIN_POSITIVE,
                -1.0,
            ];
            if u.arbitrary()? {
                json!(*u.choose(&edges)?)
            } else {
                serde_json::Number::from_f64(u.arbitrary()?).map_or(json!(0.5), Value::Number)
            }
        }
        "position" | "deleted" | "selection_end" => {
            let any = u.arbitrary::<i64>()?;
            json!(*u.choose(&[0, 1, -1, i64::MAX, i64::MIN, any])?)
        }
        "exit_code" => json!(u.arbitrary::<i32>()?),
        "tests_passed" | "tests_failed" | "face_count" => json!(u.arbitrary::<u32>()?),
        "duration_ms" => json!(u.arbitrary::<u64>()?),
        "key_class" => json!(*u.choose(&["letter", "digit", "enter", "modifier", "Letter"])?),
        "origin" => json!(*u.choose(&["typed", "paste", "autocomplete", "undo", "other", "x"])?),
        "file" | "new_file" => {
            let paths = [
                "src/a.rs",
                "a/../b",
                "/etc/passwd",
                " ",
                "a\u{7f}",
                "..",
                "a/./b",
            ];
            if u.arbitrary()? {
                json!(*u.choose(&paths)?)
            } else {
                json!(text(u, MAX_PATH_CHARS + 2)?)
            }
        }
        "command" => json!(text(u, MAX_COMMAND_CHARS + 2)?),
        _ => json!(text(u, 64)?),
    })
}

/// Arbitrary text, sometimes repeated to about `long` characters (the limits count characters).
fn text(u: &mut Unstructured<'_>, long: usize) -> Result<String> {
    let s: String = u.arbitrary()?;
    if u.ratio(1, 8)? && !s.is_empty() {
        let chars = long - u.int_in_range(0..=3)?;
        return Ok(s.chars().cycle().take(chars).collect());
    }
    Ok(s)
}

/// A time near the edges of the accepted window, or anywhere RFC 3339 reaches.
fn timestamp(u: &mut Unstructured<'_>) -> Result<String> {
    let now = now();
    let edge = *u.choose(&[
        now,
        now + LIMITS.max_clock_skew,
        earliest_timestamp(),
        now - Duration::days(365),
    ])?;
    let t = edge + Duration::nanoseconds(u.int_in_range(-2_000_000_000..=2_000_000_000)?);
    Ok(if u.ratio(1, 8)? {
        let offset =
            chrono::FixedOffset::east_opt(u.int_in_range(-86_399..=86_399)?).expect("within a day");
        t.with_timezone(&offset).to_rfc3339()
    } else {
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    })
}
