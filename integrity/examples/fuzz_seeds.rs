//! Writes the seed inputs of the fuzz targets (`fuzz/corpus/<target>/seed-*`): a valid telemetry
//! batch of every event kind and batches refused for each reason, a record of every lifecycle and
//! telemetry event type as the producers write them, and audit bundles signed with the RFC 8032
//! test key. Deterministic: running it again rewrites the same files.
//!
//! `cargo run -p clarity-integrity --example fuzz_seeds -- fuzz/corpus`

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use clarity_domain::assessment::{AssessmentEvent, AssessmentSpec, Format};
use clarity_domain::audit::{key_from_seed_hex, Bundle, Chain, ChainEntry};
use clarity_domain::session::{
    AssessmentRef, Candidate, ChainSeal, ConsentScopes, DecisionOutcome, FindingResolution,
    SessionEvent,
};
use clarity_domain::telemetry::{EditOrigin, KeyClass, TelemetryData, TelemetryEvent};
use clarity_domain::upcast;
use clarity_domain::wire::WireEvent;
use clarity_integrity::{suite, SessionTrace};
use serde_json::{json, Value};
use uuid::Uuid;

/// RFC 8032 section 7.1, test 1 (also the audit tests' key).
const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const SESSION: Uuid = Uuid::from_u128(0x5e55_1000_0000_4000_8000_0000_0000_0001);
const ORG: Uuid = Uuid::from_u128(0x0a9b_0000_0000_4000_8000_0000_0000_0001);
const ASSESSMENT: Uuid = Uuid::from_u128(0xc1a7_1700_0000_4000_8000_0000_0000_0006);
const STAFF: Uuid = Uuid::from_u128(0x0e5e_0000_0000_4000_8000_0000_0000_0042);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("a fixed RFC 3339 time")
}

/// The session's start; the fuzz target's clock is 2026-03-01T12:00:00Z.
fn started() -> DateTime<Utc> {
    at("2026-03-01T10:00:00Z")
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let telemetry = telemetry();
    batches(&root.join("telemetry_batch"), &telemetry)?;
    let lifecycle = lifecycle(&telemetry);
    records(&root.join("wire_record"), &telemetry, &lifecycle)?;
    bundles(&root.join("audit_bundle"), &telemetry, &lifecycle)?;
    Ok(())
}

/// One event of every kind, as an editor session would send them.
fn telemetry() -> Vec<TelemetryEvent> {
    let data = [
        TelemetryData::FileCreated {
            file: "src/queue.rs".into(),
            content: "pub struct Queue;\n".into(),
        },
        TelemetryData::Keystroke {
            down_ms: 1520.25,
            up_ms: Some(1603.5),
            key_class: KeyClass::Letter,
        },
        TelemetryData::Edit {
            file: "src/queue.rs".into(),
            position: 17,
            deleted: 0,
            inserted: "\nimpl Queue { fn len(&self) -> usize { 0 } } // é 世界 🌍\t\"q\"".into(),
            origin: EditOrigin::Typed,
        },
        TelemetryData::Cursor {
            file: "src/queue.rs".into(),
            position: 42,
            selection_end: Some(48),
        },
        TelemetryData::FocusLost {},
        TelemetryData::FocusRegained {},
        TelemetryData::FileRenamed {
            file: "src/queue.rs".into(),
            new_file: "src/task_queue.rs".into(),
        },
        TelemetryData::CodeRun {
            command: "cargo test -- --nocapture".into(),
            exit_code: 101,
            tests_passed: 3,
            tests_failed: 1,
            duration_ms: 4210,
        },
        TelemetryData::FaceCheck {
            similarity: 0.93,
            model_id: "facenet-lite".into(),
            model_version: "2.1.0".into(),
            face_count: 1,
            quality: 0.81,
        },
        TelemetryData::FileDeleted {
            file: "src/task_queue.rs".into(),
        },
    ];
    data.into_iter()
        .zip(1u64..)
        .map(|(data, seq)| TelemetryEvent {
            seq,
            ts: started() + Duration::milliseconds(1500 * seq as i64 + 7),
            data,
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), bytes)
}

fn batch(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "events": events })).expect("serializes")
}

fn batches(dir: &Path, telemetry: &[TelemetryEvent]) -> std::io::Result<()> {
    let values: Vec<Value> = telemetry
        .iter()
        .map(|e| serde_json::to_value(e).expect("serializes"))
        .collect();
    for (event, value) in telemetry.iter().zip(&values) {
        write(
            dir,
            &format!("{}.json", event.data.kind()),
            &batch(std::slice::from_ref(value)),
        )?;
    }
    write(dir, "all-kinds.json", &batch(&values))?;

    // One batch with an event refused for each reason (and a valid one between them).
    let edit = &values[2];
    let with = |path: &str, value: Value| {
        let mut event = edit.clone();
        let (head, last) = path.rsplit_once('.').unwrap_or(("", path));
        let target = head
            .split('.')
            .filter(|s| !s.is_empty())
            .fold(&mut event, |v, key| &mut v[key]);
        target[last] = value;
        event
    };
    let mut unknown = edit.clone();
    unknown["source"] = json!("browser");
    let refused = vec![
        with("data.inserted", json!("nul\u{0}byte")),
        with("data.file", json!("a\u{7}.py")),
        with("data.file", json!("../etc/passwd")),
        with("data.file", json!("")),
        with("data.position", json!(-1)),
        with("data.deleted", json!(-2)),
        with("ts", json!("1999-12-31T23:59:59Z")),
        with("ts", json!("2026-03-01T12:05:00Z")),
        with("seq", json!(0)),
        with("seq", json!(1u64 << 63)),
        values[0].clone(),
        unknown,
        json!({"seq": 20, "ts": "2026-03-01T10:01:00Z", "data": {"type": "keystroke", "down_ms": 5.0, "up_ms": 4.0, "key_class": "digit"}}),
        json!({"seq": 21, "ts": "2026-03-01T10:01:00Z", "data": {"type": "face_check", "similarity": 1.5, "model_id": " ", "model_version": "1", "face_count": 2, "quality": 0.5}}),
        json!({"seq": 22, "ts": "2026-03-01T10:01:00+01:00", "data": {"type": "code_run", "command": "x".repeat(4097), "exit_code": 0, "duration_ms": 1}}),
        json!({"seq": 23, "ts": "2026-03-01T10:01:00.123456789Z", "data": {"type": "teleport"}}),
        json!({"seq": 2, "ts": "2026-03-01T10:01:00Z", "data": {"type": "focus_lost"}}),
    ];
    write(dir, "refused.json", &batch(&refused))?;
    write(dir, "empty.json", br#"{"events": []}"#)?;
    write(
        dir,
        "not-a-batch.json",
        br#"{"events": {"seq": 1}, "extra": [1e400]}"#,
    )?;
    write(dir, "truncated.json", br#"{"events": [{"seq": 4,"#)?;
    Ok(())
}

/// A small spec that decodes: the first built-in assessment with every list cut to one item and
/// every text to 40 characters (the fuzzer mutates small inputs much faster).
fn small_spec() -> AssessmentSpec {
    fn trim(v: &mut Value) {
        match v {
            Value::String(s) => *s = s.chars().take(40).collect(),
            Value::Array(items) => {
                items.truncate(1);
                items.iter_mut().for_each(trim);
            }
            Value::Object(map) => map.values_mut().for_each(trim),
            _ => {}
        }
    }
    let spec = clarity_domain::catalogue::builtin()[0].spec.clone();
    let mut value = serde_json::to_value(&spec).expect("serializes");
    trim(&mut value);
    serde_json::from_value(value).unwrap_or(spec)
}

/// A session's lifecycle from invitation to decision, and an assessment's.
fn lifecycle(telemetry: &[TelemetryEvent]) -> Vec<(&'static str, SessionEventOrAssessment)> {
    use SessionEventOrAssessment::{Assessment as A, Session as S};
    let t = |minutes: i64| started() + Duration::minutes(minutes);
    let trace = SessionTrace {
        started_at: Some(started()),
        events: telemetry.to_vec(),
        ..SessionTrace::default()
    };
    let prints = suite::prints(&trace);
    let analysis = suite::analyse(
        &trace,
        &Default::default(),
        &Default::default(),
        0.8,
        &prints,
        &Default::default(),
        "submitted",
    );
    let seal = ChainSeal {
        count: 3,
        hash: "0".repeat(64),
    };
    let spec = small_spec();
    vec![
        (
            "CandidateSession",
            S(SessionEvent::CandidateInvited {
                session_id: SESSION,
                org_id: ORG,
                candidate: Candidate {
                    name: "Amara Okafor".into(),
                    email: "amara.okafor@example.com".into(),
                    external_ref: Some("greenhouse:48213".into()),
                },
                assessment: AssessmentRef {
                    assessment_id: ASSESSMENT,
                    version: 3,
                    title: "Async Task Queue Implementation".into(),
                    format: Format::TakeHome,
                    time_limit_minutes: 90,
                    spec_digest: small_spec().digest(),
                },
                invite_expires_at: t(7 * 24 * 60),
                invited_by: STAFF,
                at: t(-24 * 60),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::ConsentRecorded {
                notice_sha256: None,
                notice_version: "2026-01".into(),
                scopes: ConsentScopes::default(),
                at: t(-5),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::SessionStarted {
                at: t(0),
                deadline: t(90),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::SessionSubmitted {
                through_seq: None,
                files_digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                    .into(),
                file_count: 1,
                time_used_seconds: 4350,
                at: t(72),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::CandidateAccessRevoked {
                reason: "Shared the link with a friend.".into(),
                revoked_by: STAFF,
                at: t(80),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::SessionExpired {
                through_seq: None,
                deadline: t(90),
                time_used_seconds: 5400,
                at: t(90),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::IntegrityAnalysed {
                analysis: Box::new(analysis),
                at: t(73),
                chain_seal: Some(seal.clone()),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::ReviewersAssigned {
                reviewers: vec![STAFF],
                assigned_by: STAFF,
                at: t(120),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::CriterionScored {
                score_id: Uuid::from_u128(11),
                reviewer: STAFF,
                criterion: "correctness".into(),
                score: 3,
                justification: "Handles retries; misses the poison-message case.".into(),
                supersedes: None,
                at: t(130),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::ReviewCompleted {
                reviewer: STAFF,
                at: t(140),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::CommentAdded {
                comment_id: Uuid::from_u128(12),
                author: STAFF,
                replay_seq: 3,
                text: "Pasted? Check the walk-through.".into(),
                at: t(135),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::FindingResolved {
                suite_version: "suite/1".into(),
                ordinal: 0,
                resolution: FindingResolution::Dismissed,
                reason: "Explained in the interview.".into(),
                by: STAFF,
                at: t(150),
            }),
        ),
        (
            "CandidateSession",
            S(SessionEvent::DecisionRecorded {
                decision_id: Uuid::from_u128(13),
                outcome: DecisionOutcome::Advance,
                rationale: "Solid design.".into(),
                decided_by: STAFF,
                report_hash: "ab".repeat(32),
                supersedes: None,
                at: t(160),
                chain_seal: Some(seal),
            }),
        ),
        (
            "Assessment",
            A(AssessmentEvent::AssessmentDrafted {
                assessment_id: ASSESSMENT,
                org_id: Some(ORG),
                spec: spec.clone(),
                at: t(-30 * 24 * 60),
            }),
        ),
        (
            "Assessment",
            A(AssessmentEvent::DraftRevised {
                spec: spec.clone(),
                at: t(-29 * 24 * 60),
            }),
        ),
        (
            "Assessment",
            A(AssessmentEvent::AssessmentVersionPublished {
                version: 3,
                spec_digest: spec.digest(),
                spec,
                at: t(-28 * 24 * 60),
            }),
        ),
        (
            "Assessment",
            A(AssessmentEvent::AssessmentRetired {
                at: t(60 * 24 * 60),
            }),
        ),
    ]
}

enum SessionEventOrAssessment {
    Session(SessionEvent),
    Assessment(AssessmentEvent),
}

/// The lifecycle record of `event`, numbered `sequence`, as the outbox relay publishes it.
fn lifecycle_record(
    aggregate: &str,
    event: &SessionEventOrAssessment,
    sequence: u64,
) -> (String, WireEvent) {
    let tagged = match event {
        SessionEventOrAssessment::Session(e) => serde_json::to_value(e),
        SessionEventOrAssessment::Assessment(e) => serde_json::to_value(e),
    }
    .expect("serializes");
    let (name, data) = tagged
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(name, data)| (name.clone(), data.clone()))
        .expect("externally tagged");
    let time = data["at"].as_str().map_or_else(started, at);
    let (id, org) = match aggregate {
        "Assessment" => (ASSESSMENT, Some(ORG)),
        _ => (SESSION, Some(ORG)),
    };
    let version = upcast::current_version(aggregate, &name).to_string();
    let wire = WireEvent::lifecycle(
        aggregate,
        &id.to_string(),
        sequence,
        &name,
        &version,
        org,
        time,
        data,
    );
    (name, wire)
}

fn records(
    dir: &Path,
    telemetry: &[TelemetryEvent],
    lifecycle: &[(&str, SessionEventOrAssessment)],
) -> std::io::Result<()> {
    for event in telemetry {
        let wire = WireEvent::telemetry(SESSION, ORG, event);
        let name = format!("telemetry-{}.json", event.data.kind());
        write(dir, &name, &serde_json::to_vec(&wire).expect("serializes"))?;
    }
    for ((aggregate, event), sequence) in lifecycle.iter().zip(1u64..) {
        let (name, wire) = lifecycle_record(aggregate, event, sequence);
        write(
            dir,
            &format!("{aggregate}-{name}.json"),
            &serde_json::to_vec(&wire).expect("serializes"),
        )?;
    }
    // A v1 `SessionStarted` (upcast by readers) and records readers must refuse.
    let v1 = WireEvent::lifecycle(
        "CandidateSession",
        &SESSION.to_string(),
        3,
        "SessionStarted",
        "1",
        Some(ORG),
        started(),
        json!({"started_at": started(), "deadline": started() + Duration::minutes(90)}),
    );
    write(
        dir,
        "CandidateSession-SessionStarted-v1.json",
        &serde_json::to_vec(&v1).expect("serializes"),
    )?;
    let mut newer = v1.clone();
    newer.event_type = "clarity.CandidateSession.SessionStarted.v9".into();
    newer.dataschema = "urn:clarity:schema:CandidateSession.SessionStarted:9".into();
    write(
        dir,
        "newer-version.json",
        &serde_json::to_vec(&newer).expect("serializes"),
    )?;
    write(dir, "not-json.bin", b"\x00\x01 not a CloudEvent")?;
    Ok(())
}

/// The session's stream as the sessions projection chains it: lifecycle and telemetry
/// interleaved, the decision sealing the head before it.
fn bundles(
    dir: &Path,
    telemetry: &[TelemetryEvent],
    lifecycle: &[(&str, SessionEventOrAssessment)],
) -> std::io::Result<()> {
    let key = key_from_seed_hex(SEED).expect("a valid seed");
    let mut session: Vec<WireEvent> = lifecycle
        .iter()
        .filter(|(aggregate, _)| *aggregate == "CandidateSession")
        .take(4)
        .zip(1u64..)
        .map(|((aggregate, event), sequence)| lifecycle_record(aggregate, event, sequence).1)
        .collect();
    let submitted = session.split_off(3);
    let mut stream = session;
    stream.extend(
        telemetry
            .iter()
            .map(|e| WireEvent::telemetry(SESSION, ORG, e)),
    );
    stream.extend(submitted);
    let mut entries: Vec<ChainEntry> = stream
        .iter()
        .map(|w| ChainEntry::from_wire(w).expect("a session record"))
        .collect();
    // The submission seals the head of everything before it.
    let mut chain = Chain::new(SESSION);
    for entry in &entries[..entries.len() - 1] {
        chain.append(entry).expect("in order");
    }
    let head = chain.head();
    if let Some(Value::Object(data)) = entries.last_mut().map(|e| &mut e.data) {
        data.insert(
            clarity_domain::audit::SEAL_FIELD.into(),
            json!({"count": head.count, "hash": head.hash}),
        );
    }
    let signed_at = at("2026-03-01T11:15:00.123456Z");
    let bundle = Bundle::sign_now(SESSION, entries, signed_at, &key);
    write(dir, "session.json", bundle.to_json().as_bytes())?;
    let empty = Bundle::sign_now(SESSION, Vec::new(), signed_at, &key);
    write(dir, "empty.json", empty.to_json().as_bytes())?;
    Ok(())
}
