//! JSON Schemas of the events on the Kafka topics, one per event type and version, generated
//! from the Rust types so that a consumer in any language can read the topics.
//!
//! The current version of each type comes from the domain's types; a superseded version (one
//! that still exists on the topics and in the event store, see `clarity_domain::upcast`) keeps
//! its schema, generated from the frozen type of its shape listed in [`SUPERSEDED`].

use std::collections::BTreeMap;

use clarity_domain::assessment::AssessmentEvent;
use clarity_domain::session::{SessionEvent, SessionStartedV1};
use clarity_domain::telemetry::TelemetryData;
use clarity_domain::upcast::current_version;
use clarity_domain::wire::{event_type, WireEvent, TELEMETRY};
use serde_json::{json, Value};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(components(schemas(
    SessionEvent,
    AssessmentEvent,
    TelemetryData,
    WireEvent,
    SessionStartedV1
)))]
struct EventComponents;

/// Superseded versions still published: (aggregate, event, version, the component schema of
/// that version's `data`).
pub const SUPERSEDED: &[(&str, &str, u32, &str)] =
    &[("CandidateSession", "SessionStarted", 1, "SessionStartedV1")];

/// Every event schema, keyed by CloudEvents `type` (e.g. `clarity.CandidateSession.SessionStarted.v1`).
pub fn event_schemas() -> BTreeMap<String, Value> {
    let doc = serde_json::to_value(EventComponents::openapi()).expect("openapi serializes");
    let text = doc["components"]["schemas"]
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    let defs: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("valid json");
    let mut out = BTreeMap::new();
    for (aggregate, enum_name) in [
        ("CandidateSession", "SessionEvent"),
        ("Assessment", "AssessmentEvent"),
    ] {
        for variant in defs[enum_name]["oneOf"].as_array().into_iter().flatten() {
            if let Some((name, data)) = variant["properties"]
                .as_object()
                .and_then(|p| p.iter().next())
            {
                let version = current_version(aggregate, name);
                out.insert(
                    event_type(aggregate, name, &version.to_string()),
                    document(aggregate, name, version, data.clone(), &defs),
                );
            }
        }
    }
    for variant in defs["TelemetryData"]["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(kind) = variant["properties"]["type"]["enum"][0].as_str() {
            let version = current_version(TELEMETRY, kind);
            out.insert(
                event_type(TELEMETRY, kind, &version.to_string()),
                document(TELEMETRY, kind, version, variant.clone(), &defs),
            );
        }
    }
    for &(aggregate, name, version, component) in SUPERSEDED {
        let current = current_version(aggregate, name);
        let mut doc = document(aggregate, name, version, defs[component].clone(), &defs);
        doc["description"] = json!(format!(
            "{} Superseded by v{current}: records written before v{current} keep this shape; readers upcast them (docs/events.md, \"Versions and evolution\").",
            doc["description"].as_str().unwrap_or_default()
        ));
        out.insert(event_type(aggregate, name, &version.to_string()), doc);
    }
    out
}

/// The AsyncAPI 3.0 document of the topics (default topic names); message payloads refer to the
/// per-type JSON Schemas next to it (`events/<type>.json`).
pub fn asyncapi() -> Value {
    let types: Vec<String> = event_schemas().into_keys().collect();
    let key = |t: &str| t.replace('.', "_");
    let messages: serde_json::Map<String, Value> = types
        .iter()
        .map(|t| (key(t), json!({"name": t, "title": t, "contentType": "application/json", "payload": {"$ref": format!("events/{t}.json")}})))
        .collect();
    let refs = |prefixes: &[&str]| -> Value {
        types
            .iter()
            .filter(|t| prefixes.iter().any(|p| t.starts_with(p)))
            .map(|t| {
                (
                    key(t),
                    json!({"$ref": format!("#/components/messages/{}", key(t))}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Clarity event topics",
            "version": "1",
            "description": "CloudEvents 1.0 records (structured JSON). Keys are stream ids; see docs/events.md for delivery semantics (at least once, per-key order, de-duplicate by subject + streamkind + sequence)."
        },
        "defaultContentType": "application/json",
        "channels": {
            "assessments": {"address": "clarity.assessments.v1", "description": "Assessment lifecycle events, keyed by assessment id.", "messages": refs(&["clarity.Assessment."])},
            "sessions": {"address": "clarity.sessions.v1", "description": "Candidate session lifecycle events and telemetry, keyed by session id.", "messages": refs(&["clarity.CandidateSession.", "clarity.Telemetry."])}
        },
        "operations": {
            "readAssessments": {"action": "receive", "channel": {"$ref": "#/channels/assessments"}},
            "readSessions": {"action": "receive", "channel": {"$ref": "#/channels/sessions"}}
        },
        "components": {"messages": messages}
    })
}

fn document(
    aggregate: &str,
    name: &str,
    version: u32,
    data: Value,
    defs: &serde_json::Map<String, Value>,
) -> Value {
    let ce_type = event_type(aggregate, name, &version.to_string());
    let streamkind = if aggregate == TELEMETRY {
        "telemetry"
    } else {
        "lifecycle"
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:clarity:schema:{aggregate}.{name}:{version}"),
        "title": ce_type,
        "description": format!("A `{ce_type}` record (CloudEvents 1.0, structured JSON mode). The Kafka key is `subject`."),
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "streamkind", "sequence", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "Deterministic: `<Aggregate>/<subject>/<sequence>`; a duplicate has the same id."},
            "source": {"const": "clarity"},
            "type": {"const": ce_type},
            "subject": {"type": "string", "description": "Stream id (session or assessment id); the Kafka key."},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"const": format!("urn:clarity:schema:{aggregate}.{name}:{version}")},
            "orgid": {"type": "string", "format": "uuid"},
            "streamkind": {"const": streamkind},
            "sequence": {"type": "integer", "minimum": 1},
            "data": data,
        },
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_schema() {
        let schemas = event_schemas();
        for name in [
            "CandidateInvited",
            "ConsentRecorded",
            "SessionSubmitted",
            "SessionExpired",
            "IntegrityAnalysed",
        ] {
            assert!(
                schemas.contains_key(&event_type("CandidateSession", name, "1")),
                "{name}"
            );
        }
        for version in ["1", "2"] {
            let started = &schemas[&event_type("CandidateSession", "SessionStarted", version)];
            assert_eq!(
                started["$id"],
                format!("urn:clarity:schema:CandidateSession.SessionStarted:{version}")
            );
        }
        let v1 = &schemas["clarity.CandidateSession.SessionStarted.v1"]["properties"]["data"];
        assert!(v1["properties"]["started_at"].is_object(), "{v1}");
        let v2 = &schemas["clarity.CandidateSession.SessionStarted.v2"]["properties"]["data"];
        assert!(v2["properties"]["at"].is_object(), "{v2}");
        for name in [
            "AssessmentDrafted",
            "DraftRevised",
            "AssessmentVersionPublished",
            "AssessmentRetired",
        ] {
            assert!(
                schemas.contains_key(&event_type("Assessment", name, "1")),
                "{name}"
            );
        }
        for kind in TelemetryData::KINDS {
            assert!(
                schemas.contains_key(&event_type(TELEMETRY, kind, "1")),
                "{kind}"
            );
        }
        let edit = &schemas["clarity.Telemetry.edit.v1"]["properties"]["data"];
        assert!(edit["properties"]["position"].is_object(), "{edit}");
    }

    #[test]
    fn every_version_an_upcaster_reads_has_a_published_schema() {
        let schemas = event_schemas();
        for step in clarity_domain::upcast::STEPS {
            let ce_type = event_type(step.aggregate_type, step.event_type, &step.from.to_string());
            assert!(schemas.contains_key(&ce_type), "{ce_type} has no schema");
        }
    }
}

#[cfg(test)]
mod drift {
    use std::path::Path;

    use utoipa::OpenApi;

    /// The committed `docs/schemas` must match the code; regenerate with `clarity docs`.
    #[test]
    fn the_committed_schemas_and_openapi_document_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas");
        for (name, schema) in super::event_schemas() {
            let path = dir.join("events").join(format!("{name}.json"));
            let committed = std::fs::read_to_string(&path)
                .unwrap_or_else(|_| panic!("{} is missing; run `clarity docs`", path.display()));
            assert_eq!(
                committed,
                serde_json::to_string_pretty(&schema).unwrap() + "\n",
                "{name} is stale; run `clarity docs`"
            );
        }
        let committed =
            std::fs::read_to_string(dir.join("openapi.json")).expect("docs/schemas/openapi.json");
        assert_eq!(
            committed,
            crate::openapi::ApiDoc::openapi().to_pretty_json().unwrap() + "\n",
            "openapi.json is stale; run `clarity docs`"
        );
        let committed =
            std::fs::read_to_string(dir.join("asyncapi.json")).expect("docs/schemas/asyncapi.json");
        assert_eq!(
            committed,
            serde_json::to_string_pretty(&super::asyncapi()).unwrap() + "\n",
            "asyncapi.json is stale; run `clarity docs`"
        );
    }
}
