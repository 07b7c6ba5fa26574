//! Projection `catalogue`: what assessments exist, their status, and every published version.

use clarity_domain::assessment::{AssessmentEvent, AssessmentSpec};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{ProjectionError, Record};

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Applies assessment events; a record whose sequence is not above the row's `last_sequence`
/// was already applied and is skipped.
pub async fn apply(conn: &mut PgConnection, records: &[Record]) -> Result<(), ProjectionError> {
    for record in records {
        let wire = &record.event;
        let Ok(assessment_id) = wire.subject.parse::<Uuid>() else {
            return Err(record.undecodable("subject is not a uuid"));
        };
        let event: AssessmentEvent = wire
            .decode()
            .map_err(|e| record.undecodable(&e.to_string()))?;
        let sequence = wire.sequence as i64;
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT last_sequence FROM catalogue_assessments WHERE assessment_id = $1 FOR UPDATE",
        )
        .bind(assessment_id)
        .fetch_optional(&mut *conn)
        .await?;
        if last.is_some_and(|last| sequence <= last) {
            continue;
        }
        apply_one(conn, assessment_id, sequence, event).await?;
    }
    Ok(())
}

async fn apply_one(
    conn: &mut PgConnection,
    id: Uuid,
    sequence: i64,
    event: AssessmentEvent,
) -> Result<(), sqlx::Error> {
    match event {
        AssessmentEvent::AssessmentDrafted {
            org_id, spec, at, ..
        } => {
            sqlx::query(
                "INSERT INTO catalogue_assessments (assessment_id, org_id, title, kind, difficulty, status,
                     latest_version, has_draft, draft, last_sequence, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'active', NULL, true, $6, $7, $8, $8)",
            )
            .bind(id)
            .bind(org_id)
            .bind(&spec.title)
            .bind(snake(&spec.kind))
            .bind(snake(&spec.difficulty))
            .bind(sqlx::types::Json(&spec))
            .bind(sequence)
            .bind(at)
            .execute(conn)
            .await?;
        }
        AssessmentEvent::DraftRevised { spec, at } => {
            sqlx::query(
                "UPDATE catalogue_assessments SET has_draft = true, draft = $2, title = $3, kind = $4,
                     difficulty = $5, last_sequence = $6, updated_at = $7 WHERE assessment_id = $1",
            )
            .bind(id)
            .bind(sqlx::types::Json(&spec))
            .bind(&spec.title)
            .bind(snake(&spec.kind))
            .bind(snake(&spec.difficulty))
            .bind(sequence)
            .bind(at)
            .execute(conn)
            .await?;
        }
        AssessmentEvent::AssessmentVersionPublished {
            version,
            spec,
            spec_digest,
            at,
        } => {
            insert_version(conn, id, version, &spec, &spec_digest, at).await?;
            sqlx::query(
                "UPDATE catalogue_assessments SET has_draft = false, draft = NULL, latest_version = $2,
                     title = $3, last_sequence = $4, updated_at = $5 WHERE assessment_id = $1",
            )
            .bind(id)
            .bind(version as i32)
            .bind(&spec.title)
            .bind(sequence)
            .bind(at)
            .execute(conn)
            .await?;
        }
        AssessmentEvent::AssessmentRetired { at } => {
            sqlx::query(
                "UPDATE catalogue_assessments SET status = 'retired', last_sequence = $2, updated_at = $3
                 WHERE assessment_id = $1",
            )
            .bind(id)
            .bind(sequence)
            .bind(at)
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

async fn insert_version(
    conn: &mut PgConnection,
    id: Uuid,
    version: u32,
    spec: &AssessmentSpec,
    digest: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catalogue_versions (assessment_id, version, org_id, title, kind, difficulty, best_for,
             format, time_limit_minutes, spec, spec_digest, published_at)
         SELECT $1, $2, org_id, $3, $4, $5, $6, $7, $8, $9, $10, $11
         FROM catalogue_assessments WHERE assessment_id = $1",
    )
    .bind(id)
    .bind(version as i32)
    .bind(&spec.title)
    .bind(snake(&spec.kind))
    .bind(snake(&spec.difficulty))
    .bind(&spec.best_for)
    .bind(snake(&spec.format))
    .bind(spec.time_limit_minutes as i32)
    .bind(sqlx::types::Json(spec))
    .bind(digest)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
