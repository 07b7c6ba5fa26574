//! `clarity seed`: loads the built-in catalogue, idempotently. An entry that is missing is
//! created and published; one whose content changed in this release is revised and published as
//! a new version; an unchanged one is left alone.

use clarity_domain::assessment::AssessmentCommand;
use clarity_domain::catalogue::builtin;

use crate::error::ApiError;
use crate::state::{metadata, AppState};

/// What seeding did to each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    Created,
    Updated(u32),
    Unchanged,
}

/// Seeds the catalogue; returns each entry's title and outcome.
pub async fn seed(state: &AppState) -> Result<Vec<(String, SeedOutcome)>, ApiError> {
    let mut report = Vec::new();
    for entry in builtin() {
        let id = entry.id.to_string();
        let current = state.load_assessment(entry.id).await?;
        let at = state.now();
        let meta = || metadata(None, "seed", at);
        let outcome = if current.id.is_none() {
            let create = AssessmentCommand::CreateDraft {
                assessment_id: entry.id,
                org_id: None,
                spec: entry.spec.clone(),
                at,
            };
            state
                .assessments
                .execute_with_metadata(&id, create, meta())
                .await?;
            state
                .assessments
                .execute_with_metadata(&id, AssessmentCommand::Publish { at }, meta())
                .await?;
            SeedOutcome::Created
        } else if current.latest_version().and_then(|v| current.version(v)) == Some(&entry.spec) {
            SeedOutcome::Unchanged
        } else {
            state
                .assessments
                .execute_with_metadata(
                    &id,
                    AssessmentCommand::ReviseDraft {
                        spec: entry.spec.clone(),
                        at,
                    },
                    meta(),
                )
                .await?;
            state
                .assessments
                .execute_with_metadata(&id, AssessmentCommand::Publish { at }, meta())
                .await?;
            SeedOutcome::Updated(current.latest_version().unwrap_or(0) + 1)
        };
        report.push((entry.spec.title, outcome));
    }
    Ok(report)
}
