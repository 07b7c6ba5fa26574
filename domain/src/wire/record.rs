//! A record's payload decoded the whole way a reader decodes it: the CloudEvent envelope from the
//! raw bytes, the stream id, then the `data` upcast and decoded into this build's types.
//!
//! Every record on a topic is untrusted input to every reader: a foreign producer, an older or
//! newer build, a corrupted write. The projection runtime decodes the envelope once per record
//! ([`WireEvent::from_payload`]) and each projection decodes the `data` it needs
//! ([`WireEvent::decode`], [`WireEvent::decode_telemetry`]); [`decode_record`] is the same steps
//! in one function, which the fuzz target (`fuzz/fuzz_targets/wire_record.rs`) drives.

use uuid::Uuid;

use super::{StreamKind, WireEvent};
use crate::assessment::AssessmentEvent;
use crate::session::SessionEvent;
use crate::telemetry::TelemetryData;

/// The `data` of a record in this build's types.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A lifecycle event of a candidate session (`clarity.CandidateSession.…`).
    Session(SessionEvent),
    /// A lifecycle event of an assessment (`clarity.Assessment.…`).
    Assessment(AssessmentEvent),
    /// A telemetry event of a session (`clarity.Telemetry.…`).
    Telemetry(TelemetryData),
}

/// Why a record cannot be read; the message is what a reader records when it sets the record
/// aside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or not an object with the envelope's members and types.
    #[error("not a Clarity CloudEvent: {0}")]
    NotACloudEvent(String),
    /// A `sequence` the read models cannot store (they keep it as a signed 64-bit integer, so it
    /// would wrap to a negative position).
    #[error("sequence {0} is beyond {max}, the largest the read models store", max = i64::MAX)]
    SequenceOutOfRange(u64),
    /// The `subject` (the stream id) is not a UUID.
    #[error("subject is not a uuid")]
    SubjectNotUuid,
    /// A session's record without the owning organization.
    #[error("orgid is missing")]
    OrgMissing,
    /// A lifecycle record of an aggregate this build does not know.
    #[error("unknown aggregate in type `{0}`")]
    UnknownAggregate(String),
    /// The `data` does not decode into its event type (after upcasting).
    #[error("{0}")]
    Undecodable(String),
}

impl WireEvent {
    /// The envelope of a record from its payload bytes (the `data` is not decoded yet), with a
    /// `sequence` the read models can store.
    pub fn from_payload(payload: &[u8]) -> Result<Self, RecordError> {
        let wire: Self = serde_json::from_slice(payload)
            .map_err(|e| RecordError::NotACloudEvent(e.to_string()))?;
        if i64::try_from(wire.sequence).is_err() {
            return Err(RecordError::SequenceOutOfRange(wire.sequence));
        }
        Ok(wire)
    }

    /// The stream id: the session id or assessment id in `subject`.
    pub fn stream_id(&self) -> Result<Uuid, RecordError> {
        self.subject
            .parse()
            .map_err(|_| RecordError::SubjectNotUuid)
    }

    /// The record's `data` decoded by its stream kind and aggregate type, upcast first.
    pub fn payload(&self) -> Result<Payload, RecordError> {
        let undecodable = |e: serde_json::Error| RecordError::Undecodable(e.to_string());
        match self.streamkind {
            StreamKind::Telemetry => self
                .decode_telemetry()
                .map(Payload::Telemetry)
                .map_err(undecodable),
            StreamKind::Lifecycle => match self.type_parts() {
                Some(("CandidateSession", _)) => self
                    .decode::<SessionEvent>()
                    .map(Payload::Session)
                    .map_err(undecodable),
                Some(("Assessment", _)) => self
                    .decode::<AssessmentEvent>()
                    .map(Payload::Assessment)
                    .map_err(undecodable),
                _ => Err(RecordError::UnknownAggregate(self.event_type.clone())),
            },
        }
    }
}

/// Decodes a record's payload the whole way a reader does: the envelope, the stream id, the
/// organization of a session's record, and the `data`.
pub fn decode_record(payload: &[u8]) -> Result<(WireEvent, Payload), RecordError> {
    let wire = WireEvent::from_payload(payload)?;
    wire.stream_id()?;
    let decoded = wire.payload()?;
    if !matches!(decoded, Payload::Assessment(_)) && wire.orgid.is_none() {
        return Err(RecordError::OrgMissing);
    }
    Ok((wire, decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::TelemetryEvent;

    #[test]
    fn a_telemetry_record_decodes_into_its_payload() {
        let event = TelemetryEvent {
            seq: 7,
            ts: "2026-01-01T00:00:00Z".parse().unwrap(),
            data: TelemetryData::FocusLost {},
        };
        let bytes =
            serde_json::to_vec(&WireEvent::telemetry(Uuid::nil(), Uuid::nil(), &event)).unwrap();

        let (wire, payload) = decode_record(&bytes).unwrap();

        assert_eq!(wire.sequence, 7);
        assert_eq!(payload, Payload::Telemetry(TelemetryData::FocusLost {}));
    }

    #[test]
    fn a_record_that_is_not_a_clarity_event_is_refused_with_why() {
        let err = decode_record(b"\x00not json").unwrap_err();
        assert!(
            err.to_string().starts_with("not a Clarity CloudEvent: "),
            "{err}"
        );
        let event = TelemetryEvent {
            seq: 1,
            ts: "2026-01-01T00:00:00Z".parse().unwrap(),
            data: TelemetryData::FocusLost {},
        };
        let mut wire = WireEvent::telemetry(Uuid::nil(), Uuid::nil(), &event);
        wire.orgid = None;
        assert_eq!(
            decode_record(&serde_json::to_vec(&wire).unwrap()),
            Err(RecordError::OrgMissing)
        );
        wire.subject = "s1".into();
        assert_eq!(
            decode_record(&serde_json::to_vec(&wire).unwrap()),
            Err(RecordError::SubjectNotUuid)
        );
    }

    #[test]
    fn a_record_numbered_beyond_a_bigint_is_refused_not_wrapped() {
        // The read models store `sequence` as bigint (`as i64`): 2^63 read as -2^63 and landed
        // as a negative position (the API refuses such a `seq`; a foreign producer need not).
        let event = TelemetryEvent {
            seq: 1,
            ts: "2026-01-01T00:00:00Z".parse().unwrap(),
            data: TelemetryData::FocusLost {},
        };
        let mut wire = WireEvent::telemetry(Uuid::nil(), Uuid::nil(), &event);
        wire.sequence = i64::MAX as u64;
        assert!(decode_record(&serde_json::to_vec(&wire).unwrap()).is_ok());

        wire.sequence = 1 << 63;
        let err = WireEvent::from_payload(&serde_json::to_vec(&wire).unwrap()).unwrap_err();

        assert_eq!(err, RecordError::SequenceOutOfRange(1 << 63));
    }

    #[test]
    fn every_committed_fuzz_seed_record_of_a_current_type_decodes() {
        // The fuzz target starts from these (fuzz/corpus, written by `--example fuzz_seeds`).
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/wire_record");
        let mut decoded = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let current = [
                "seed-CandidateSession-",
                "seed-Assessment-",
                "seed-telemetry-",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix));
            if current {
                let bytes = std::fs::read(&path).unwrap();
                decode_record(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                decoded += 1;
            }
        }
        assert!(decoded >= 28, "{decoded} seed records");
    }
}
