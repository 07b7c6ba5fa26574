//! Kafka record payloads as every reader decodes them (`clarity_domain::wire::decode_record`, and
//! each step on its own): never a panic, the same answer every time, and a record re-encoded by
//! this build decodes to the same value.
#![no_main]

use clarity_domain::assessment::AssessmentEvent;
use clarity_domain::audit::{canonical_json, entry_bytes, ChainEntry};
use clarity_domain::session::SessionEvent;
use clarity_domain::telemetry::TelemetryEvent;
use clarity_domain::upcast;
use clarity_domain::wire::{decode_record, Payload, WireEvent};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|payload: &[u8]| {
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
        reencoded_decodes_the_same(&wire, &payload);
    }
});

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
