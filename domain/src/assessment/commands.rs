//! Commands accepted by the `Assessment` aggregate.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::AssessmentSpec;

/// A request to change an assessment. Each carries the time it was issued at so that handling
/// stays a pure function.
#[derive(Debug, Clone, PartialEq)]
pub enum AssessmentCommand {
    /// Create the assessment with its first draft. `org_id` is `None` for the built-in library.
    CreateDraft {
        assessment_id: Uuid,
        org_id: Option<Uuid>,
        spec: AssessmentSpec,
        at: DateTime<Utc>,
    },
    /// Replace the working draft.
    ReviseDraft {
        spec: AssessmentSpec,
        at: DateTime<Utc>,
    },
    /// Freeze the working draft as the next numbered version.
    Publish { at: DateTime<Utc> },
    /// Stop offering the assessment. Existing sessions are unaffected.
    Retire { at: DateTime<Utc> },
}
