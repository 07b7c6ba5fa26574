//! Event versions and upcasting: how a reader turns an older version of an event's payload into
//! the version its types describe.
//!
//! An additive change (a new optional field) keeps an event's version; readers ignore fields they
//! do not know. A breaking change (a field renamed, restructured or given a new meaning) is a
//! new version — record `type` `…v<N>`, `dataschema` `…:<N>`, cqrs-es `event_version` `"<N>"` —
//! registered in [`STEPS`] with a pure function from the previous version's `data` to the new
//! one's. Readers apply the steps in order up to the current version and only then decode the
//! typed event. Both read paths share the same steps:
//!
//! * the topics: [`WireEvent::decode`](crate::wire::WireEvent::decode) (the projections);
//! * the event store: [`StoreUpcaster`], a cqrs-es `EventUpcaster` the API installs, so an
//!   aggregate whose events were stored as v1 still loads.
//!
//! Records are never rewritten: Kafka and the `events` table are immutable, and the audit chain
//! hashes records exactly as they were published. Upcasting happens in memory, every time.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

use crate::session;

/// One upcasting step: the `data` of `<aggregate_type>.<event_type>` version `from` becomes
/// version `from + 1`. Pure: no I/O, no clock, only the one payload.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub aggregate_type: &'static str,
    pub event_type: &'static str,
    pub from: u32,
    /// Fails with a reason when the payload is not a valid `from` payload.
    pub upcast: fn(Value) -> Result<Value, String>,
}

/// Every step this build knows, for every event type that ever had a breaking change. The
/// current version of an event type is one past its last step (1 when it has none).
pub static STEPS: &[Step] = &[Step {
    aggregate_type: "CandidateSession",
    event_type: "SessionStarted",
    from: 1,
    upcast: session::session_started_v1_to_v2,
}];

/// Why a payload could not be brought to the current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    /// Written by a newer producer than this reader: the reader must be upgraded first (see
    /// docs/events.md, "Versions and evolution").
    #[error("{aggregate_type}.{event_type} v{version} is newer than this reader, which knows up to v{current}")]
    NewerThanReader {
        aggregate_type: String,
        event_type: String,
        version: u32,
        current: u32,
    },
    /// Versions start at 1.
    #[error("{aggregate_type}.{event_type} has no version {version}")]
    NoSuchVersion {
        aggregate_type: String,
        event_type: String,
        version: u32,
    },
    /// The payload does not have the shape its version promises.
    #[error("{aggregate_type}.{event_type} v{from} → v{to}: {reason}")]
    Malformed {
        aggregate_type: String,
        event_type: String,
        from: u32,
        to: u32,
        reason: String,
    },
}

/// The version this build writes for an event type: one past its last upcasting step.
pub fn current_version(aggregate_type: &str, event_type: &str) -> u32 {
    steps_of(aggregate_type, event_type)
        .map(|s| s.from + 1)
        .max()
        .unwrap_or(1)
}

fn steps_of<'a>(
    aggregate_type: &'a str,
    event_type: &'a str,
) -> impl Iterator<Item = &'static Step> + 'a {
    STEPS
        .iter()
        .filter(move |s| s.aggregate_type == aggregate_type && s.event_type == event_type)
}

/// Brings `data` of `<aggregate_type>.<event_type>` from `version` to the current version.
/// Returns the payload unchanged when it already is current.
pub fn upcast(
    aggregate_type: &str,
    event_type: &str,
    version: u32,
    mut data: Value,
) -> Result<Value, UpcastError> {
    let current = current_version(aggregate_type, event_type);
    if version == 0 {
        return Err(UpcastError::NoSuchVersion {
            aggregate_type: aggregate_type.into(),
            event_type: event_type.into(),
            version,
        });
    }
    if version > current {
        return Err(UpcastError::NewerThanReader {
            aggregate_type: aggregate_type.into(),
            event_type: event_type.into(),
            version,
            current,
        });
    }
    for from in version..current {
        let malformed = |reason: String| UpcastError::Malformed {
            aggregate_type: aggregate_type.into(),
            event_type: event_type.into(),
            from,
            to: from + 1,
            reason,
        };
        let step = steps_of(aggregate_type, event_type)
            .find(|s| s.from == from)
            .ok_or_else(|| malformed("no upcasting step is registered".into()))?;
        data = (step.upcast)(data).map_err(malformed)?;
    }
    Ok(data)
}

/// The store side of upcasting: a cqrs-es [`EventUpcaster`] for one aggregate type's events,
/// using the same [`STEPS`] as the topics' readers. Install one per aggregate store:
/// `PersistedEventStore::new_event_store(repo).with_upcasters(StoreUpcaster::for_aggregate::<A>())`.
#[derive(Debug, Clone)]
pub struct StoreUpcaster {
    aggregate_type: &'static str,
}

impl StoreUpcaster {
    /// The upcasters for aggregate `A`'s store (one that knows every step of `A`'s events).
    pub fn for_aggregate<A: cqrs_es::Aggregate>() -> Vec<Box<dyn EventUpcaster>> {
        vec![Box::new(Self {
            aggregate_type: A::TYPE,
        })]
    }
}

impl EventUpcaster for StoreUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_version
            .parse::<u32>()
            .is_ok_and(|v| v < current_version(self.aggregate_type, event_type))
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        let Ok(version) = event.event_version.parse::<u32>() else {
            return event;
        };
        // cqrs-es stores the externally tagged form, `{"<EventType>": data}`.
        let Some(data) = event.payload.get_mut(&event.event_type) else {
            return event;
        };
        // A payload that cannot be upcast is left as it is: decoding it then fails on the field
        // serde cannot find, which names the problem in the load error. (Only events that need
        // a step get here, so the clone is rare.)
        if let Ok(upcast) = upcast(
            self.aggregate_type,
            &event.event_type,
            version,
            data.clone(),
        ) {
            *data = upcast;
            event.event_version =
                current_version(self.aggregate_type, &event.event_type).to_string();
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_types_steps_run_from_version_one_without_gaps() {
        for step in STEPS {
            let mut froms: Vec<u32> = steps_of(step.aggregate_type, step.event_type)
                .map(|s| s.from)
                .collect();
            froms.sort_unstable();
            let expected: Vec<u32> = (1..=froms.len() as u32).collect();
            assert_eq!(
                froms, expected,
                "{}.{}",
                step.aggregate_type, step.event_type
            );
        }
    }

    #[test]
    fn an_event_without_steps_is_at_version_one_and_passes_through() {
        let data = json!({"at": "2026-01-01T00:00:00Z"});
        assert_eq!(current_version("CandidateSession", "ReviewCompleted"), 1);
        assert_eq!(
            upcast("CandidateSession", "ReviewCompleted", 1, data.clone()),
            Ok(data)
        );
    }

    #[test]
    fn a_version_newer_than_the_reader_is_refused_with_both_versions_named() {
        let err = upcast("CandidateSession", "SessionStarted", 3, json!({})).unwrap_err();
        assert_eq!(
            err,
            UpcastError::NewerThanReader {
                aggregate_type: "CandidateSession".into(),
                event_type: "SessionStarted".into(),
                version: 3,
                current: 2,
            }
        );
        assert!(upcast("CandidateSession", "SessionStarted", 0, json!({})).is_err());
    }

    #[test]
    fn a_malformed_v1_payload_is_reported_with_the_step_that_failed() {
        let err = upcast(
            "CandidateSession",
            "SessionStarted",
            1,
            json!({"deadline": "x"}),
        )
        .unwrap_err();
        assert!(
            matches!(&err, UpcastError::Malformed { from: 1, to: 2, reason, .. } if reason.contains("started_at")),
            "{err}"
        );
    }
}
