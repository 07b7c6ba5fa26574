//! Tolerant readers and upcasting: what an older or newer producer may put on the topics (or in
//! the event store), and what this build's readers make of it.

use chrono::{DateTime, Utc};
use clarity_domain::assessment::AssessmentEvent;
use clarity_domain::session::{CandidateSession, SessionEvent};
use clarity_domain::telemetry::{EditOrigin, TelemetryData};
use clarity_domain::upcast::StoreUpcaster;
use clarity_domain::wire::WireEvent;
use cqrs_es::persist::SerializedEvent;
use serde_json::{json, Value};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A lifecycle record the way the relay writes it, as JSON (so tests can add fields anywhere).
fn lifecycle_record(name: &str, version: u32, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": format!("CandidateSession/7d7c1a2e-0d7e-4a53-9b0e-3f1c9a6f2b10/{version}"),
        "source": "clarity",
        "type": format!("clarity.CandidateSession.{name}.v{version}"),
        "subject": "7d7c1a2e-0d7e-4a53-9b0e-3f1c9a6f2b10",
        "time": "2026-03-01T09:00:00Z",
        "datacontenttype": "application/json",
        "dataschema": format!("urn:clarity:schema:CandidateSession.{name}:{version}"),
        "orgid": "0f9a3b4c-1d2e-4f50-8a6b-7c8d9e0f1a2b",
        "streamkind": "lifecycle",
        "sequence": 3,
        "data": data,
    })
}

fn wire(record: Value) -> WireEvent {
    serde_json::from_value(record).expect("a structured CloudEvents record")
}

fn invited_data() -> Value {
    json!({
        "session_id": "7d7c1a2e-0d7e-4a53-9b0e-3f1c9a6f2b10",
        "org_id": "0f9a3b4c-1d2e-4f50-8a6b-7c8d9e0f1a2b",
        "candidate": {"name": "Ada", "email": "ada@example.com", "external_ref": null},
        "assessment": {
            "assessment_id": "c1a71700-0000-4000-8000-000000000001", "version": 1,
            "title": "REST API", "format": "take_home", "time_limit_minutes": 90,
            "spec_digest": "ab"
        },
        "invite_expires_at": "2026-03-08T09:00:00Z",
        "invited_by": "5b0c8e1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b",
        "at": "2026-03-01T09:00:00Z"
    })
}

#[test]
fn a_record_with_unknown_fields_in_the_envelope_and_the_data_decodes_like_one_without() {
    // Arrange
    let plain = wire(lifecycle_record("CandidateInvited", 1, invited_data()));
    let mut newer = lifecycle_record("CandidateInvited", 1, invited_data());
    newer["traceparent"] = json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    newer["data"]["referral_source"] = json!("job board");
    newer["data"]["candidate"]["pronouns"] = json!("she/her");
    newer["data"]["assessment"]["language"] = json!({"code": "en", "fallback": null});

    // Act
    let decoded: SessionEvent = wire(newer).decode().unwrap();

    // Assert
    assert_eq!(decoded, plain.decode::<SessionEvent>().unwrap());
    assert!(
        matches!(decoded, SessionEvent::CandidateInvited { ref candidate, .. } if candidate.name == "Ada")
    );
}

#[test]
fn an_assessment_spec_with_unknown_fields_nested_deep_inside_decodes() {
    // Arrange
    let spec = serde_json::to_value(&clarity_domain::catalogue::builtin()[0].spec).unwrap();
    let mut newer = spec.clone();
    newer["estimated_effort"] = json!("3h");
    newer["tasks"][0]["hints"] = json!(["start with the schema"]);
    newer["rubric"]["criteria"][0]["levels"][0]["examples"] = json!([]);
    newer["integrity_policy"]["screen_recording"] = json!(false);
    let record = |spec: Value| {
        let mut r = lifecycle_record(
            "DraftRevised",
            1,
            json!({"spec": spec, "at": "2026-03-01T09:00:00Z"}),
        );
        r["type"] = json!("clarity.Assessment.DraftRevised.v1");
        r["dataschema"] = json!("urn:clarity:schema:Assessment.DraftRevised:1");
        wire(r)
    };

    // Act
    let decoded: AssessmentEvent = record(newer).decode().unwrap();

    // Assert
    assert_eq!(decoded, record(spec).decode::<AssessmentEvent>().unwrap());
}

#[test]
fn a_telemetry_record_with_unknown_fields_decodes_to_its_payload() {
    // Arrange
    let mut record = lifecycle_record(
        "ignored",
        1,
        json!({"type": "edit", "file": "a.rs", "position": 0, "deleted": 0, "inserted": "x",
               "origin": "typed", "ime_composition": true, "selection": {"anchor": 0}}),
    );
    record["type"] = json!("clarity.Telemetry.edit.v1");
    record["dataschema"] = json!("urn:clarity:schema:Telemetry.edit:1");
    record["streamkind"] = json!("telemetry");
    record["client"] = json!({"name": "editor", "version": "9.0"});

    // Act
    let data = wire(record).decode_telemetry().unwrap();

    // Assert
    assert_eq!(
        data,
        TelemetryData::Edit {
            file: "a.rs".into(),
            position: 0,
            deleted: 0,
            inserted: "x".into(),
            origin: EditOrigin::Typed,
        }
    );
}

#[test]
fn a_v1_session_started_record_upcasts_to_the_same_event_as_the_v2_record() {
    // Arrange
    let v1 = lifecycle_record(
        "SessionStarted",
        1,
        json!({"started_at": "2026-03-01T09:02:00Z", "deadline": "2026-03-01T10:32:00Z"}),
    );
    let v2 = lifecycle_record(
        "SessionStarted",
        2,
        json!({"at": "2026-03-01T09:02:00Z", "deadline": "2026-03-01T10:32:00Z"}),
    );

    // Act
    let from_v1: SessionEvent = wire(v1).decode().unwrap();
    let from_v2: SessionEvent = wire(v2).decode().unwrap();

    // Assert
    assert_eq!(from_v1, from_v2);
    assert_eq!(
        from_v2,
        SessionEvent::SessionStarted {
            at: at("2026-03-01T09:02:00Z"),
            deadline: at("2026-03-01T10:32:00Z"),
        }
    );
}

#[test]
fn a_v1_record_with_fields_a_newer_v1_producer_added_still_upcasts() {
    let mut v1 = lifecycle_record(
        "SessionStarted",
        1,
        json!({"started_at": "2026-03-01T09:02:00Z", "deadline": "2026-03-01T10:32:00Z", "timezone": "Europe/Berlin"}),
    );
    v1["partitionkey"] = json!("x");

    let decoded: SessionEvent = wire(v1).decode().unwrap();

    assert!(
        matches!(decoded, SessionEvent::SessionStarted { at: a, .. } if a == at("2026-03-01T09:02:00Z"))
    );
}

#[test]
fn a_version_newer_than_this_build_or_a_type_that_contradicts_its_dataschema_is_refused() {
    let v3 = lifecycle_record("SessionStarted", 3, json!({"at": "2026-03-01T09:02:00Z"}));
    let err = wire(v3).decode::<SessionEvent>().unwrap_err().to_string();
    assert!(err.contains("v3 is newer than this reader"), "{err}");

    let mut mixed = lifecycle_record(
        "SessionStarted",
        2,
        json!({"at": "2026-03-01T09:02:00Z", "deadline": "2026-03-01T10:32:00Z"}),
    );
    mixed["dataschema"] = json!("urn:clarity:schema:CandidateSession.SessionStarted:1");
    let err = wire(mixed)
        .decode::<SessionEvent>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("name different versions"), "{err}");
}

#[test]
fn the_event_store_upcasts_a_stored_v1_event_with_the_same_step() {
    // Arrange: the row cqrs-es stored before v2 existed.
    let stored = SerializedEvent::new(
        "7d7c1a2e-0d7e-4a53-9b0e-3f1c9a6f2b10".into(),
        3,
        "CandidateSession".into(),
        "SessionStarted".into(),
        "1".into(),
        json!({"SessionStarted": {"started_at": "2026-03-01T09:02:00Z", "deadline": "2026-03-01T10:32:00Z"}}),
        json!({}),
    );
    let upcasters = StoreUpcaster::for_aggregate::<CandidateSession>();
    let upcaster = &upcasters[0];

    // Act
    assert!(upcaster.can_upcast("SessionStarted", "1"));
    let loaded = upcaster.upcast(stored);

    // Assert
    assert_eq!(loaded.event_version, "2");
    let event: SessionEvent = serde_json::from_value(loaded.payload).unwrap();
    assert_eq!(
        event,
        SessionEvent::SessionStarted {
            at: at("2026-03-01T09:02:00Z"),
            deadline: at("2026-03-01T10:32:00Z"),
        }
    );
    assert!(!upcaster.can_upcast("SessionStarted", "2"));
    assert!(!upcaster.can_upcast("SessionSubmitted", "1"));
}

#[test]
fn new_events_are_written_at_their_current_version() {
    use cqrs_es::DomainEvent;
    let started = SessionEvent::SessionStarted {
        at: at("2026-03-01T09:02:00Z"),
        deadline: at("2026-03-01T10:32:00Z"),
    };
    let retired = AssessmentEvent::AssessmentRetired {
        at: at("2026-03-01T09:02:00Z"),
    };
    assert_eq!(started.event_version(), "2");
    assert_eq!(retired.event_version(), "1");
}
