//! Events of the `Assessment` aggregate. Past tense, versioned, carrying what readers need.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Assessment, AssessmentSpec};
use crate::upcast;

/// Everything that can happen to an assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub enum AssessmentEvent {
    /// The assessment exists, with a first draft.
    AssessmentDrafted {
        assessment_id: Uuid,
        /// `null` for the built-in library, visible to every organization.
        org_id: Option<Uuid>,
        spec: AssessmentSpec,
        at: DateTime<Utc>,
    },
    /// The working draft was replaced.
    DraftRevised {
        spec: AssessmentSpec,
        at: DateTime<Utc>,
    },
    /// The working draft became an immutable, numbered version.
    AssessmentVersionPublished {
        version: u32,
        spec: AssessmentSpec,
        /// SHA-256 of the canonical JSON of `spec`.
        spec_digest: String,
        at: DateTime<Utc>,
    },
    /// No new invitations may use this assessment.
    AssessmentRetired { at: DateTime<Utc> },
}

impl DomainEvent for AssessmentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AssessmentDrafted { .. } => "AssessmentDrafted",
            Self::DraftRevised { .. } => "DraftRevised",
            Self::AssessmentVersionPublished { .. } => "AssessmentVersionPublished",
            Self::AssessmentRetired { .. } => "AssessmentRetired",
        }
        .to_string()
    }

    /// The version this build writes: the newest one the upcaster registry knows.
    fn event_version(&self) -> String {
        let name = self.event_type();
        upcast::current_version(Assessment::TYPE, &name).to_string()
    }
}
