//! `clarity seed`: loads the built-in catalogue, idempotently. An entry that is missing is
//! created and published; one whose content changed in this release is revised and published as
//! a new version; an unchanged one is left alone.

use clarity_app::{Actor, App, CommandError, Origin, SystemRole};
use clarity_domain::assessment::AssessmentCommand;
use clarity_domain::catalogue::builtin;

/// What seeding did to each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOutcome {
    Created,
    Updated(u32),
    Unchanged,
}

/// Seeds the catalogue; returns each entry's title and outcome.
pub async fn seed(app: &App) -> Result<Vec<(String, SeedOutcome)>, CommandError> {
    let mut report = Vec::new();
    for entry in builtin() {
        let id = entry.id;
        let current = app.load_assessment(id).await?;
        let at = app.now();
        // The built-in library belongs to no organization.
        let origin = Origin::new(Actor::System(SystemRole::Seed), None, at);
        let outcome = if current.id.is_none() {
            let create = AssessmentCommand::CreateDraft {
                assessment_id: entry.id,
                org_id: None,
                spec: entry.spec.clone(),
                at,
            };
            app.execute(&origin, id, create).await?;
            app.execute(&origin, id, AssessmentCommand::Publish { at })
                .await?;
            SeedOutcome::Created
        } else if current.latest_version().and_then(|v| current.version(v)) == Some(&entry.spec) {
            SeedOutcome::Unchanged
        } else {
            let revise = AssessmentCommand::ReviseDraft {
                spec: entry.spec.clone(),
                at,
            };
            app.execute(&origin, id, revise).await?;
            app.execute(&origin, id, AssessmentCommand::Publish { at })
                .await?;
            SeedOutcome::Updated(current.latest_version().unwrap_or(0) + 1)
        };
        report.push((entry.spec.title, outcome));
    }
    Ok(report)
}
