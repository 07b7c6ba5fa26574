//! Projection `catalogue`: what assessments exist, their status, and every published version;
//! and the queries that read them ([`list`], [`visible`], [`versions`], [`version`]).

use chrono::{DateTime, Utc};
use clarity_domain::assessment::{AssessmentEvent, AssessmentSpec};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
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

/// An assessment as listed.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AssessmentSummary {
    pub assessment_id: Uuid,
    /// `null` for the built-in library.
    pub org_id: Option<Uuid>,
    pub title: String,
    pub kind: String,
    pub difficulty: String,
    pub status: String,
    pub latest_version: Option<i32>,
    pub has_draft: bool,
    pub updated_at: DateTime<Utc>,
}

/// A published version.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct VersionView {
    pub assessment_id: Uuid,
    pub version: i32,
    pub title: String,
    pub best_for: String,
    pub format: String,
    pub time_limit_minutes: i32,
    pub spec_digest: String,
    pub published_at: DateTime<Utc>,
    #[schema(value_type = AssessmentSpec)]
    pub spec: sqlx::types::Json<AssessmentSpec>,
}

/// The built-in library and organization `org_id`'s own assessments, library first, by title.
pub async fn list(pool: &PgPool, org_id: Uuid) -> Result<Vec<AssessmentSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT assessment_id, org_id, title, kind, difficulty, status, latest_version, has_draft, updated_at
         FROM catalogue_assessments WHERE org_id IS NULL OR org_id = $1 ORDER BY org_id NULLS FIRST, title",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
}

/// An assessment organization `org_id` may see (the library's or its own) and its working draft;
/// `None` otherwise.
pub async fn visible(
    pool: &PgPool,
    org_id: Uuid,
    assessment_id: Uuid,
) -> Result<Option<(AssessmentSummary, Option<serde_json::Value>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        summary: AssessmentSummary,
        draft: Option<serde_json::Value>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT assessment_id, org_id, title, kind, difficulty, status, latest_version, has_draft, updated_at, draft
         FROM catalogue_assessments WHERE assessment_id = $1 AND (org_id IS NULL OR org_id = $2)",
    )
    .bind(assessment_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| (row.summary, row.draft)))
}

/// Every published version of an assessment, oldest first.
pub async fn versions(pool: &PgPool, assessment_id: Uuid) -> Result<Vec<VersionView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT assessment_id, version, title, best_for, format, time_limit_minutes, spec_digest, published_at, spec
         FROM catalogue_versions WHERE assessment_id = $1 ORDER BY version",
    )
    .bind(assessment_id)
    .fetch_all(pool)
    .await
}

/// One published version of an assessment.
pub async fn version(
    pool: &PgPool,
    assessment_id: Uuid,
    version: i32,
) -> Result<Option<VersionView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT assessment_id, version, title, best_for, format, time_limit_minutes, spec_digest, published_at, spec
         FROM catalogue_versions WHERE assessment_id = $1 AND version = $2",
    )
    .bind(assessment_id)
    .bind(version)
    .fetch_optional(pool)
    .await
}
