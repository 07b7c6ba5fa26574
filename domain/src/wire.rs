//! The public wire format of the Kafka topics: CloudEvents 1.0 in structured JSON mode.
//!
//! Every record's key is its stream id (the session id for sessions, the assessment id for
//! assessments) so one stream keeps one order in one partition. The value is a JSON object:
//!
//! ```json
//! {"specversion":"1.0","id":"CandidateSession/3f…/2","source":"clarity","type":"clarity.CandidateSession.SessionStarted.v1",
//!  "subject":"3f…","time":"2026-…Z","datacontenttype":"application/json",
//!  "dataschema":"urn:clarity:schema:CandidateSession.SessionStarted:1",
//!  "orgid":"…","streamkind":"lifecycle","sequence":2,"data":{…}}
//! ```
//!
//! `id` is deterministic (stream kind, stream id, sequence): a record published twice (a relay
//! retry, a client retrying a batch) carries the same id, and readers drop the second copy by
//! (`subject`, `streamkind`, `sequence`).
//!
//! The format only grows by adding within a version, so the envelope and the payload types ignore
//! fields they do not know. A breaking change to a payload is a new version of its event type;
//! [`WireEvent::decode`] and [`WireEvent::decode_telemetry`] upcast older versions (see
//! [`crate::upcast`]) before decoding, and refuse versions newer than this build.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::telemetry::{TelemetryData, TelemetryEvent};
use crate::upcast;

mod record;

pub use record::{decode_record, Payload, RecordError};

/// The CloudEvents spec version we emit.
pub const SPEC_VERSION: &str = "1.0";
/// The CloudEvents `source` of every event Clarity emits.
pub const SOURCE: &str = "clarity";
/// Aggregate-type name used for telemetry streams.
pub const TELEMETRY: &str = "Telemetry";

/// Which numbering a record's `sequence` belongs to. A session stream carries both: lifecycle
/// events numbered by the aggregate, telemetry numbered by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    Lifecycle,
    Telemetry,
}

impl StreamKind {
    /// The name stored in read models.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lifecycle => "lifecycle",
            Self::Telemetry => "telemetry",
        }
    }
}

/// One record on a Clarity topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WireEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The stream id (session id or assessment id); also the Kafka key.
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    pub dataschema: String,
    /// The owning organization; absent for the built-in assessment library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orgid: Option<Uuid>,
    pub streamkind: StreamKind,
    /// Position in the stream's numbering (see `streamkind`), from 1.
    pub sequence: u64,
    /// The event body; its schema is named by `dataschema`.
    pub data: serde_json::Value,
}

/// The `type` of a record: `clarity.<Aggregate>.<EventType>.v<version>`.
pub fn event_type(aggregate_type: &str, name: &str, version: &str) -> String {
    format!("clarity.{aggregate_type}.{name}.v{version}")
}

impl WireEvent {
    /// A lifecycle event read from the event store.
    #[allow(clippy::too_many_arguments)]
    pub fn lifecycle(
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: u64,
        name: &str,
        version: &str,
        orgid: Option<Uuid>,
        time: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            specversion: SPEC_VERSION.into(),
            id: format!("{aggregate_type}/{aggregate_id}/{sequence}"),
            source: SOURCE.into(),
            event_type: event_type(aggregate_type, name, version),
            subject: aggregate_id.into(),
            time,
            datacontenttype: "application/json".into(),
            dataschema: format!("urn:clarity:schema:{aggregate_type}.{name}:{version}"),
            orgid,
            streamkind: StreamKind::Lifecycle,
            sequence,
            data,
        }
    }

    /// A telemetry event accepted by the API for `session_id`.
    pub fn telemetry(session_id: Uuid, orgid: Uuid, event: &TelemetryEvent) -> Self {
        let kind = event.data.kind();
        let version = upcast::current_version(TELEMETRY, kind);
        Self {
            specversion: SPEC_VERSION.into(),
            id: format!("{TELEMETRY}/{session_id}/{}", event.seq),
            source: SOURCE.into(),
            event_type: event_type(TELEMETRY, kind, &version.to_string()),
            subject: session_id.to_string(),
            time: event.ts,
            datacontenttype: "application/json".into(),
            dataschema: format!("urn:clarity:schema:{TELEMETRY}.{kind}:{version}"),
            orgid: Some(orgid),
            streamkind: StreamKind::Telemetry,
            sequence: event.seq,
            data: serde_json::to_value(&event.data).expect("telemetry serializes"),
        }
    }

    /// The aggregate type and event name from `type` (`clarity.<A>.<E>.v<n>`).
    pub fn type_parts(&self) -> Option<(&str, &str)> {
        self.versioned_type().map(|(agg, name, _)| (agg, name))
    }

    /// The aggregate type, event name and version from `type` (`clarity.<A>.<E>.v<n>`).
    pub fn versioned_type(&self) -> Option<(&str, &str, &str)> {
        let rest = self.event_type.strip_prefix("clarity.")?;
        let (agg, rest) = rest.split_once('.')?;
        let (name, version) = rest.rsplit_once('.')?;
        Some((agg, name, version.strip_prefix('v')?))
    }

    /// The record's `data` brought to the version this build's types describe: the version
    /// comes from `type` (and must agree with `dataschema`'s `:<N>`), older versions are upcast,
    /// newer ones refused.
    pub fn current_data(&self) -> Result<(&str, Value), serde_json::Error> {
        let (aggregate, name, version) = self
            .versioned_type()
            .ok_or_else(|| invalid(format!("malformed type `{}`", self.event_type)))?;
        let version: u32 = version
            .parse()
            .map_err(|_| invalid(format!("malformed version in type `{}`", self.event_type)))?;
        let schema_version = self.dataschema.rsplit_once(':').map(|(_, v)| v);
        if schema_version.is_some_and(|v| v != version.to_string()) {
            return Err(invalid(format!(
                "type `{}` and dataschema `{}` name different versions",
                self.event_type, self.dataschema
            )));
        }
        let data = upcast::upcast(aggregate, name, version, self.data.clone())
            .map_err(|e| invalid(e.to_string()))?;
        Ok((name, data))
    }

    /// Rebuilds a typed domain event from a lifecycle record (cqrs-es's externally tagged
    /// encoding: `{"<EventType>": data}`), upcasting an older version first. Fields the types do
    /// not know are ignored.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        let (name, data) = self.current_data()?;
        let mut tagged = serde_json::Map::new();
        tagged.insert(name.to_string(), data);
        serde_json::from_value(Value::Object(tagged))
    }

    /// The payload of a telemetry record, upcast to the current version of its kind. Fields the
    /// types do not know are ignored.
    pub fn decode_telemetry(&self) -> Result<TelemetryData, serde_json::Error> {
        let (_, data) = self.current_data()?;
        serde_json::from_value(data)
    }
}

fn invalid(reason: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionEvent;

    #[test]
    fn a_lifecycle_record_decodes_back_into_its_domain_event() {
        let at: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let event = SessionEvent::SessionStarted { at, deadline: at };
        let tagged = serde_json::to_value(&event).unwrap();
        let data = tagged["SessionStarted"].clone();
        let wire = WireEvent::lifecycle(
            "CandidateSession",
            "s1",
            3,
            "SessionStarted",
            "2",
            None,
            at,
            data,
        );
        assert_eq!(wire.id, "CandidateSession/s1/3");
        assert_eq!(
            wire.event_type,
            "clarity.CandidateSession.SessionStarted.v2"
        );
        assert_eq!(
            wire.dataschema,
            "urn:clarity:schema:CandidateSession.SessionStarted:2"
        );
        assert_eq!(wire.decode::<SessionEvent>().unwrap(), event);
    }
}
