//! Kafka record payloads as every reader decodes them (`clarity_domain::wire::decode_record`, and
//! each step on its own): never a panic, the same answer every time, and a record re-encoded by
//! this build decodes to the same value.
//!
//! The input is read as a payload; input that is not a CloudEvent also drives a generator of
//! well-formed envelopes around arbitrary `data` made of the events' own field names and values,
//! so that the payload decoders see far more than the envelope parser lets through.
#![no_main]

use arbitrary::{Result, Unstructured};
use chrono::DateTime;
use clarity_domain::assessment::AssessmentEvent;
use clarity_domain::audit::{canonical_json, entry_bytes, ChainEntry};
use clarity_domain::session::SessionEvent;
use clarity_domain::telemetry::TelemetryEvent;
use clarity_domain::upcast;
use clarity_domain::wire::{decode_record, Payload, WireEvent};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use uuid::Uuid;

fuzz_target!(|input: &[u8]| {
    check(input);
    if WireEvent::from_payload(input).is_err() {
        if let Ok(record) = generated(&mut Unstructured::new(input)) {
            check(&serde_json::to_vec(&record).expect("a record serializes"));
        }
    }
});

fn check(payload: &[u8]) {
    let decoded = decode_record(payload);
    let again = decode_record(payload);
    assert_eq!(
        decoded.as_ref().map(|(w, p)| (w, json_of(p))),
        again.as_ref().map(|(w, p)| (w, json_of(p))),
        "not deterministic"
    );

    let Ok(wire) = WireEvent::from_payload(payload) else {
        assert!(decoded.is_err());
        return;
    };
    // The envelope survives this build's encoding.
    let bytes = serde_json::to_vec(&wire).expect("an envelope serializes");
    assert_eq!(
        WireEvent::from_payload(&bytes).as_ref(),
        Ok(&wire),
        "the envelope changed on a round trip: {}",
        String::from_utf8_lossy(&bytes)
    );

    // Each reader's decoder on its own (a projection picks one by topic, not by `type`).
    let _ = wire.decode::<SessionEvent>();
    let _ = wire.decode::<AssessmentEvent>();
    let _ = wire.decode_telemetry();
    let _ = wire.type_parts();

    // The audit chain of the sessions projection: canonical bytes are a function of the value.
    if let Ok(entry) = ChainEntry::from_wire(&wire) {
        let bytes = entry_bytes(&entry);
        assert_eq!(bytes, entry_bytes(&entry));
        let canonical = canonical_json(&entry.data);
        let reparsed: Value = serde_json::from_slice(&canonical).expect("canonical JSON is JSON");
        assert_eq!(
            canonical_json(&reparsed),
            canonical,
            "canonical JSON is not a fixed point: {}",
            String::from_utf8_lossy(&canonical)
        );
    }

    if let Ok((wire, payload)) = decoded {
        // What a reader accepts fits the read models: a stream id, a bigint position.
        assert!(wire.stream_id().is_ok());
        assert!(i64::try_from(wire.sequence).is_ok_and(|s| s >= 0));
        reencoded_decodes_the_same(&wire, &payload);
    }
}

/// The payload written again as this build writes records (current version) decodes to itself.
fn reencoded_decodes_the_same(wire: &WireEvent, payload: &Payload) {
    let again = match payload {
        Payload::Telemetry(data) => {
            let event = TelemetryEvent {
                seq: wire.sequence,
                ts: wire.time,
                data: data.clone(),
            };
            WireEvent::telemetry(
                wire.stream_id().expect("decoded"),
                wire.orgid.expect("decoded"),
                &event,
            )
        }
        Payload::Session(event) => lifecycle(wire, serde_json::to_value(event)),
        Payload::Assessment(event) => lifecycle(wire, serde_json::to_value(event)),
    };
    let bytes = serde_json::to_vec(&again).expect("a record serializes");
    let (_, decoded) = decode_record(&bytes).unwrap_or_else(|e| {
        panic!(
            "a re-encoded record does not decode ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    // Compared as JSON: an unmeasured integrity value is NaN in memory and `null` on the wire.
    assert_eq!(json_of(&decoded), json_of(payload));
}

fn json_of(payload: &Payload) -> Value {
    match payload {
        Payload::Session(event) => serde_json::to_value(event),
        Payload::Assessment(event) => serde_json::to_value(event),
        Payload::Telemetry(data) => serde_json::to_value(data),
    }
    .expect("a payload serializes")
}

/// A lifecycle record of `tagged` (cqrs-es's `{"<EventType>": data}`) at the current version.
fn lifecycle(wire: &WireEvent, tagged: serde_json::Result<Value>) -> WireEvent {
    let tagged = tagged.expect("an event serializes");
    let (name, data) = tagged
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(name, data)| (name.clone(), data.clone()))
        .expect("externally tagged");
    let (aggregate, _) = wire.type_parts().expect("decoded");
    let version = upcast::current_version(aggregate, &name).to_string();
    WireEvent::lifecycle(
        aggregate,
        &wire.subject,
        wire.sequence,
        &name,
        &version,
        wire.orgid,
        wire.time,
        data,
    )
}

/// Lifecycle event type names of every aggregate, and one that exists nowhere; the telemetry
/// kinds come from `TelemetryData::KINDS` (see [`NAMES`]).
const LIFECYCLE_NAMES: &[&str] = &[
    "CandidateInvited",
    "ConsentRecorded",
    "SessionStarted",
    "SessionSubmitted",
    "SessionExpired",
    "CandidateAccessRevoked",
    "IntegrityAnalysed",
    "ReviewersAssigned",
    "CriterionScored",
    "ReviewCompleted",
    "CommentAdded",
    "FindingResolved",
    "DecisionRecorded",
    "AssessmentDrafted",
    "DraftRevised",
    "AssessmentVersionPublished",
    "AssessmentRetired",
    "Unknown",
];

/// Every event type name a generated envelope may carry.
static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    LIFECYCLE_NAMES
        .iter()
        .chain(clarity_domain::telemetry::TelemetryData::KINDS.iter())
        .copied()
        .collect()
});

/// Field names the payloads use, so that generated objects reach the decoders' fields.
const FIELDS: &[&str] = &[
    "at",
    "deadline",
    "started_at",
    "session_id",
    "org_id",
    "candidate",
    "name",
    "email",
    "external_ref",
    "assessment",
    "assessment_id",
    "version",
    "title",
    "format",
    "time_limit_minutes",
    "spec_digest",
    "invite_expires_at",
    "invited_by",
    "notice_version",
    "scopes",
    "keystroke_dynamics",
    "face_continuity",
    "files_digest",
    "file_count",
    "time_used_seconds",
    "analysis",
    "chain_seal",
    "count",
    "hash",
    "reviewers",
    "assigned_by",
    "score_id",
    "reviewer",
    "criterion",
    "score",
    "justification",
    "supersedes",
    "comment_id",
    "author",
    "replay_seq",
    "text",
    "suite_version",
    "ordinal",
    "resolution",
    "reason",
    "by",
    "decision_id",
    "outcome",
    "rationale",
    "decided_by",
    "report_hash",
    "spec",
    "type",
    "file",
    "position",
    "deleted",
    "inserted",
    "origin",
    "content",
    "new_file",
    "selection_end",
    "command",
    "exit_code",
    "tests_passed",
    "tests_failed",
    "duration_ms",
    "similarity",
    "model_id",
    "model_version",
    "face_count",
    "quality",
    "down_ms",
    "up_ms",
    "key_class",
    "trigger",
    "tier",
    "reasons",
    "reports",
    "followups",
    "events_analysed",
    "last_seq",
    "detector",
    "findings",
    "rule",
    "measured",
    "threshold",
    "comparison",
    "fired",
    "kind",
    "difficulty",
    "tasks",
    "prompt",
    "starter_files",
    "path",
    "rubric",
    "criteria",
    "levels",
    "integrity_policy",
    "best_for",
];

/// String values the payloads use (enum names, times, ids), besides arbitrary text.
const WORDS: &[&str] = &[
    "2026-03-01T10:00:00Z",
    "2026-03-01T10:00:00.123456789+05:30",
    "9999-12-31T23:59:59-23:59",
    "0000-01-01T00:00:00+23:59",
    "5e551000-0000-4000-8000-000000000001",
    "take_home",
    "live",
    "letter",
    "enter",
    "typed",
    "paste",
    "advance",
    "reject",
    "hold",
    "confirmed",
    "dismissed",
    "low",
    "medium",
    "high",
    "submitted",
    "expired",
    "rerun",
    "rest_api_design",
    "easy",
    "hard",
    "above",
    "below",
    "keystroke",
    "edit",
    "focus_lost",
    "code_run",
    "face_check",
    "src/a.rs",
];

/// A well-formed envelope of an arbitrary (often known) type around arbitrary data.
fn generated(u: &mut Unstructured<'_>) -> Result<WireEvent> {
    let telemetry = u.arbitrary()?;
    let aggregate = if telemetry {
        "Telemetry"
    } else {
        *u.choose(&["CandidateSession", "Assessment", "Telemetry", "Other"])?
    };
    let name = *u.choose(&NAMES)?;
    let version = u.int_in_range(0..=3u32)?.to_string();
    let subject = if u.ratio(7, 8)? {
        Uuid::from_u128(u.arbitrary()?).to_string()
    } else {
        u.arbitrary()?
    };
    let orgid = if u.ratio(7, 8)? {
        Some(Uuid::from_u128(u.arbitrary()?))
    } else {
        None
    };
    let time = DateTime::from_timestamp(u.int_in_range(-62_167_219_200..=253_402_300_799)?, 0)
        .expect("years 0000-9999");
    let mut record = WireEvent::lifecycle(
        aggregate,
        &subject,
        u.arbitrary()?,
        name,
        &version,
        orgid,
        time,
        json(u, 0)?,
    );
    if telemetry {
        record.streamkind = clarity_domain::wire::StreamKind::Telemetry;
    }
    Ok(record)
}

/// Arbitrary JSON of bounded depth, mostly made of the payloads' own field names and values.
fn json(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth >= 4 { 7 } else { 9 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => Value::from(u.int_in_range(0..=100u64)?),
        4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        5 => Value::String(u.arbitrary()?),
        6 => Value::String((*u.choose(WORDS)?).to_string()),
        7 => {
            let n = u.int_in_range(0..=3)?;
            Value::Array((0..n).map(|_| json(u, depth + 1)).collect::<Result<_>>()?)
        }
        _ => {
            let n = u.int_in_range(0..=8)?;
            let mut map = Map::new();
            for _ in 0..n {
                map.insert((*u.choose(FIELDS)?).to_string(), json(u, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}
