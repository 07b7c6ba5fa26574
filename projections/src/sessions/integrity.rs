//! The integrity part of projection `sessions`: analyses and findings as recorded in
//! `IntegrityAnalysed` events, and the analysis worker's queue.
//!
//! It lives in the `sessions` projection on purpose: the job for a finished session is inserted in
//! the same transaction that records the session as finished (and, the partition being ordered,
//! after every telemetry event the session had), so the worker never analyses a partial log.
//!
//! The queries below read these tables back, with the worker's own (`integrity_jobs`,
//! `integrity_prints`): an analysis and its history, who matched whom, suite differences.

use chrono::{DateTime, Utc};
use clarity_domain::integrity::IntegrityAnalysis;
use clarity_domain::session::SubmittedFile;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// The trigger of the analysis made when a session is submitted or expires.
pub const FINISHED: &str = "finished";

/// Enqueues an analysis job; a job already queued (or done) under the same trigger stays as is.
pub async fn enqueue(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    trigger: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO integrity_jobs (session_id, trigger, org_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(trigger)
    .bind(org_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Records one analysis: its row, one row per finding, and the session's current tier.
pub async fn record_analysis(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    event_sequence: i64,
    analysis: &IntegrityAnalysis,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let findings: Vec<_> = analysis.findings().collect();
    let inserted = sqlx::query(
        "INSERT INTO integrity_analyses (session_id, org_id, suite_version, trigger, tier, reasons,
                                         analysis, finding_count, analysed_at, event_sequence)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(org_id)
    .bind(&analysis.suite_version)
    .bind(&analysis.trigger)
    .bind(analysis.tier.as_str())
    .bind(Json(&analysis.reasons))
    .bind(Json(analysis))
    .bind(findings.len() as i32)
    .bind(at)
    .bind(event_sequence)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    for (ordinal, f) in findings.iter().enumerate() {
        let first = f.evidence.first();
        sqlx::query(
            "INSERT INTO integrity_findings (session_id, suite_version, ordinal, org_id, detector,
                 detector_version, rule, level, measured, threshold, summary, replay_seq, at_ms,
                 related_session, evidence)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(session_id)
        .bind(&analysis.suite_version)
        .bind(ordinal as i32)
        .bind(org_id)
        .bind(&f.detector)
        .bind(&f.detector_version)
        .bind(&f.rule)
        .bind(
            serde_json::to_value(f.level)
                .ok()
                .and_then(|v| v.as_str().map(String::from)),
        )
        .bind(finite(f.measured))
        .bind(finite(f.threshold))
        .bind(&f.summary)
        .bind(first.map(|e| e.replay_seq as i64))
        .bind(first.map(|e| e.at_ms))
        .bind(
            f.related_session
                .as_deref()
                .and_then(|s| s.parse::<Uuid>().ok()),
        )
        .bind(Json(&f.evidence))
        .execute(&mut *conn)
        .await?;
    }
    // The most recent analysis decides the session's tier.
    sqlx::query(
        "UPDATE sessions SET integrity_tier = $2, integrity_suite_version = $3 WHERE session_id = $1",
    )
    .bind(session_id)
    .bind(analysis.tier.as_str())
    .bind(&analysis.suite_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// PostgreSQL stores NaN and infinities, but SQL readers trip over them; store them as such only
/// when finite, else as the largest finite value with the sign kept.
fn finite(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(f64::MIN, f64::MAX)
    }
}

/// One suite version's analysis of the session, in brief.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AnalysisVersion {
    pub suite_version: String,
    pub trigger: String,
    pub tier: String,
    pub finding_count: i32,
    pub analysed_at: DateTime<Utc>,
}

/// A later session whose analysis found this one's code (or timing) in its own.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct MatchedBy {
    pub session_id: Uuid,
    pub suite_version: String,
    pub detector: String,
    pub rule: String,
    pub measured: f64,
    pub summary: String,
}

/// How one session's analysis changed between two suite versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDiff {
    pub session_id: Uuid,
    pub tier_from: String,
    pub tier_to: String,
    /// `detector/rule` that fire only in `to`.
    pub added: Vec<String>,
    /// `detector/rule` that fire only in `from`.
    pub removed: Vec<String>,
}

/// What changed between two suite versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuiteDiff {
    pub from: String,
    pub to: String,
    /// Sessions analysed by both versions.
    pub compared: usize,
    /// The ones whose tier or fired rules differ.
    pub changed: Vec<SessionDiff>,
    /// More sessions follow: ask again with `after` set to this.
    pub next_after: Option<Uuid>,
}

/// Every suite version that analysed session `session_id` of organization `org_id`, oldest first.
pub async fn versions(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Vec<AnalysisVersion>, sqlx::Error> {
    sqlx::query_as(
        "SELECT suite_version, trigger, tier, finding_count, analysed_at FROM integrity_analyses
         WHERE session_id = $1 AND org_id = $2 ORDER BY event_sequence",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_all(pool)
    .await
}

/// The analysis of the session by one suite version (which [`versions`] listed).
pub async fn analysis(
    pool: &PgPool,
    session_id: Uuid,
    suite_version: &str,
) -> Result<IntegrityAnalysis, sqlx::Error> {
    let Json(analysis) = sqlx::query_scalar(
        "SELECT analysis FROM integrity_analyses WHERE session_id = $1 AND suite_version = $2",
    )
    .bind(session_id)
    .bind(suite_version)
    .fetch_one(pool)
    .await?;
    Ok(analysis)
}

/// The session's latest analysis job that is not done: (status, last error).
pub async fn open_job(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, last_error FROM integrity_jobs WHERE session_id = $1 AND status <> 'done'
         ORDER BY enqueued_at DESC LIMIT 1",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await
}

/// The organization's later sessions whose findings point at this one.
pub async fn matched_by(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Vec<MatchedBy>, sqlx::Error> {
    sqlx::query_as(
        "SELECT session_id, suite_version, detector, rule, measured, summary FROM integrity_findings
         WHERE related_session = $1 AND org_id = $2 ORDER BY session_id, suite_version",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_all(pool)
    .await
}

/// An analysed session's code fingerprints (as the integrity worker stored them, typed by the
/// caller: the detectors are not this crate's) and submitted files, or `None` when the
/// organization has no analysed session of that id.
pub async fn prints<P>(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Option<(P, Vec<SubmittedFile>)>, sqlx::Error>
where
    P: serde::de::DeserializeOwned + Send + Unpin + 'static,
{
    let row: Option<(Json<P>, Json<Vec<SubmittedFile>>)> = sqlx::query_as(
        "SELECT code_prints, files FROM integrity_prints WHERE session_id = $1 AND org_id = $2",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(Json(p), Json(f))| (p, f)))
}

/// The difference between two (different) suite versions for one page of an organization's
/// sessions (in session id order, after `after`, at most `limit`).
pub async fn suite_diff(
    pool: &PgPool,
    org_id: Uuid,
    from: &str,
    to: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<SuiteDiff, sqlx::Error> {
    let rows: Vec<(Uuid, String, String, Vec<String>, Vec<String>)> = sqlx::query_as(
        "SELECT a.session_id, a.tier, b.tier,
                ARRAY(SELECT DISTINCT detector || '/' || rule FROM integrity_findings f
                      WHERE f.session_id = a.session_id AND f.suite_version = a.suite_version ORDER BY 1),
                ARRAY(SELECT DISTINCT detector || '/' || rule FROM integrity_findings f
                      WHERE f.session_id = b.session_id AND f.suite_version = b.suite_version ORDER BY 1)
         FROM integrity_analyses a JOIN integrity_analyses b USING (session_id)
         WHERE a.org_id = $1 AND a.suite_version = $2 AND b.suite_version = $3
           AND ($4::uuid IS NULL OR a.session_id > $4)
         ORDER BY a.session_id LIMIT $5",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let compared = rows.len();
    let next_after = (compared as i64 == limit)
        .then(|| rows.last().map(|r| r.0))
        .flatten();
    let changed = rows
        .into_iter()
        .filter_map(|(session_id, tier_from, tier_to, a, b)| {
            let added: Vec<String> = b.iter().filter(|r| !a.contains(r)).cloned().collect();
            let removed: Vec<String> = a.iter().filter(|r| !b.contains(r)).cloned().collect();
            (tier_from != tier_to || !added.is_empty() || !removed.is_empty()).then_some(
                SessionDiff {
                    session_id,
                    tier_from,
                    tier_to,
                    added,
                    removed,
                },
            )
        })
        .collect();
    Ok(SuiteDiff {
        from: from.to_string(),
        to: to.to_string(),
        compared,
        changed,
        next_after,
    })
}
