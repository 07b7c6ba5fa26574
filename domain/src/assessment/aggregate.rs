//! State and rules of the `Assessment` aggregate.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AssessmentCommand, AssessmentEvent, AssessmentSpec, SpecError};

/// Where an assessment is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssessmentStatus {
    #[default]
    New,
    Active,
    Retired,
}

/// Why an assessment command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessmentError {
    #[error("the assessment already exists")]
    AlreadyExists,
    #[error("the assessment does not exist")]
    NotFound,
    #[error("the assessment is retired")]
    Retired,
    #[error("there is no unpublished draft to publish")]
    NothingToPublish,
    #[error("invalid assessment: {0}")]
    InvalidSpec(#[from] SpecError),
}

/// The aggregate state: the working draft and every published version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub status: AssessmentStatus,
    /// The working draft, if it differs from the latest published version.
    pub draft: Option<AssessmentSpec>,
    /// Published versions, by number (1, 2, ...). Never changed once inserted.
    pub versions: BTreeMap<u32, AssessmentSpec>,
}

impl Assessment {
    /// The latest published version number, if any.
    pub fn latest_version(&self) -> Option<u32> {
        self.versions.keys().next_back().copied()
    }

    /// A published version, if it exists.
    pub fn version(&self, version: u32) -> Option<&AssessmentSpec> {
        self.versions.get(&version)
    }

    fn decide(&self, command: AssessmentCommand) -> Result<Vec<AssessmentEvent>, AssessmentError> {
        use AssessmentCommand as C;
        use AssessmentEvent as E;
        match (self.status, command) {
            (
                AssessmentStatus::New,
                C::CreateDraft {
                    assessment_id,
                    org_id,
                    spec,
                    at,
                },
            ) => {
                spec.validate()?;
                Ok(vec![E::AssessmentDrafted {
                    assessment_id,
                    org_id,
                    spec,
                    at,
                }])
            }
            (AssessmentStatus::New, _) => Err(AssessmentError::NotFound),
            (_, C::CreateDraft { .. }) => Err(AssessmentError::AlreadyExists),
            (AssessmentStatus::Retired, _) => Err(AssessmentError::Retired),
            (AssessmentStatus::Active, C::ReviseDraft { spec, at }) => {
                spec.validate()?;
                Ok(vec![E::DraftRevised { spec, at }])
            }
            (AssessmentStatus::Active, C::Publish { at }) => {
                let spec = self
                    .draft
                    .clone()
                    .ok_or(AssessmentError::NothingToPublish)?;
                let version = self.latest_version().unwrap_or(0) + 1;
                let spec_digest = spec.digest();
                Ok(vec![E::AssessmentVersionPublished {
                    version,
                    spec,
                    spec_digest,
                    at,
                }])
            }
            (AssessmentStatus::Active, C::Retire { at }) => Ok(vec![E::AssessmentRetired { at }]),
        }
    }
}

impl Aggregate for Assessment {
    const TYPE: &'static str = "Assessment";
    type Command = AssessmentCommand;
    type Event = AssessmentEvent;
    type Error = AssessmentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AssessmentEvent::AssessmentDrafted {
                assessment_id,
                org_id,
                spec,
                ..
            } => {
                self.id = Some(assessment_id);
                self.org_id = org_id;
                self.status = AssessmentStatus::Active;
                self.draft = Some(spec);
            }
            AssessmentEvent::DraftRevised { spec, .. } => {
                // A revision identical to the latest version leaves nothing to publish.
                let same = self.latest_version().and_then(|v| self.versions.get(&v)) == Some(&spec);
                self.draft = if same { None } else { Some(spec) };
            }
            AssessmentEvent::AssessmentVersionPublished { version, spec, .. } => {
                self.versions.insert(version, spec);
                self.draft = None;
            }
            AssessmentEvent::AssessmentRetired { .. } => self.status = AssessmentStatus::Retired,
        }
    }
}
