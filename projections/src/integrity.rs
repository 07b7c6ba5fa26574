//! The integrity part of projection `sessions`: analyses and findings as recorded in
//! `IntegrityAnalysed` events, and the analysis worker's queue.
//!
//! It lives in the `sessions` projection on purpose: the job for a finished session is inserted in
//! the same transaction that records the session as finished (and, the partition being ordered,
//! after every telemetry event the session had), so the worker never analyses a partial log.

use chrono::{DateTime, Utc};
use clarity_domain::integrity::IntegrityAnalysis;
use sqlx::types::Json;
use sqlx::PgConnection;
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
