//! The runs part of projection `sessions`: the candidate's runs of the visible tests
//! (`session_runs`), the automated grades (`session_grades`), and the runners' queue
//! (`run_jobs`), filled in the same transaction as the events that ask for the work, so a runner
//! never sees a job before the events it must read (docs/runner.md).

use chrono::{DateTime, Utc};
use clarity_domain::session::{RunResult, SessionEvent};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// The run id of a session's grading at its finish (one per session, whatever the replays).
pub fn grade_run_id(session_id: Uuid) -> Uuid {
    Uuid::new_v5(&session_id, b"clarity:grade:finished")
}

/// Enqueues a runner job; one already queued (or done) with the same run id stays as is.
pub async fn enqueue(
    conn: &mut PgConnection,
    run_id: Uuid,
    session_id: Uuid,
    org_id: Uuid,
    mode: &str,
    through_seq: Option<u64>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO run_jobs (run_id, session_id, org_id, mode, through_seq) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(run_id)
    .bind(session_id)
    .bind(org_id)
    .bind(mode)
    .bind(through_seq.map(|s| s as i64))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Applies a run event newly appended to the session's log.
pub(super) async fn apply(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    event: SessionEvent,
) -> Result<(), sqlx::Error> {
    match event {
        SessionEvent::RunRequested {
            run_id,
            through_seq,
            at,
        } => {
            sqlx::query(
                "INSERT INTO session_runs (run_id, session_id, org_id, through_seq, requested_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(session_id)
            .bind(org_id)
            .bind(through_seq as i64)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            enqueue(
                conn,
                run_id,
                session_id,
                org_id,
                "visible",
                Some(through_seq),
            )
            .await?;
        }
        SessionEvent::RunCompleted { run_id, result, at } => {
            let (passed, total) = result.passed();
            sqlx::query(
                "UPDATE session_runs SET completed_at = $2, passed = $3, total = $4, ending = $5, result = $6
                 WHERE run_id = $1",
            )
            .bind(run_id)
            .bind(at)
            .bind(passed as i32)
            .bind(total as i32)
            .bind(ending_kind(&result))
            .bind(Json(&result))
            .execute(conn)
            .await?;
        }
        SessionEvent::SubmissionGraded {
            run_id,
            grader_version,
            through_seq,
            score,
            max_score,
            result,
            at,
        } => {
            let (passed, total) = result.passed();
            sqlx::query(
                "INSERT INTO session_grades (session_id, grader_version, org_id, run_id, through_seq, score, max_score,
                     fraction, checks_passed, checks_total, result, graded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            )
            .bind(session_id)
            .bind(&grader_version)
            .bind(org_id)
            .bind(run_id)
            .bind(through_seq.map(|s| s as i64))
            .bind(score)
            .bind(max_score)
            .bind(if max_score > 0.0 { score / max_score } else { 0.0 })
            .bind(passed as i32)
            .bind(total as i32)
            .bind(Json(&result))
            .bind(at)
            .execute(conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

fn ending_kind(result: &RunResult) -> &'static str {
    use clarity_domain::session::RunEnding as E;
    match result.ending {
        E::Exited { .. } => "exited",
        E::Signalled { .. } => "signalled",
        E::TimedOut => "timed_out",
        E::OutputLimit => "output_limit",
        E::SandboxError { .. } => "sandbox_error",
    }
}

/// A run of the visible tests, as the candidate and staff see it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct RunView {
    pub run_id: Uuid,
    pub session_id: Uuid,
    pub through_seq: i64,
    pub requested_at: DateTime<Utc>,
    /// `null` while the run is queued or running.
    pub completed_at: Option<DateTime<Utc>>,
    pub passed: Option<i32>,
    pub total: Option<i32>,
    pub ending: Option<String>,
    #[schema(value_type = Option<RunResult>)]
    pub result: Option<Json<RunResult>>,
}

/// One run of a session (`None` before `RunRequested` is projected).
pub async fn find_run(
    pool: &PgPool,
    session_id: Uuid,
    run_id: Uuid,
) -> Result<Option<RunView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT run_id, session_id, through_seq, requested_at, completed_at, passed, total, ending, result
         FROM session_runs WHERE session_id = $1 AND run_id = $2",
    )
    .bind(session_id)
    .bind(run_id)
    .fetch_optional(pool)
    .await
}

/// A session's runs, newest first.
pub async fn list_runs(
    pool: &PgPool,
    session_id: Uuid,
    limit: i64,
) -> Result<Vec<RunView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT run_id, session_id, through_seq, requested_at, completed_at, passed, total, ending, result
         FROM session_runs WHERE session_id = $1 ORDER BY requested_at DESC LIMIT $2",
    )
    .bind(session_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An automated grade, as staff see it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct GradeView {
    pub grader_version: String,
    pub run_id: Uuid,
    pub through_seq: Option<i64>,
    pub score: f64,
    pub max_score: f64,
    /// `score / max_score`, 0 to 1.
    pub fraction: f64,
    pub checks_passed: i32,
    pub checks_total: i32,
    #[schema(value_type = RunResult)]
    pub result: Json<RunResult>,
    pub graded_at: DateTime<Utc>,
}

/// A session's grades, oldest first (each grader version once).
pub async fn grades(pool: &PgPool, session_id: Uuid) -> Result<Vec<GradeView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT grader_version, run_id, through_seq, score, max_score, fraction, checks_passed, checks_total, result, graded_at
         FROM session_grades WHERE session_id = $1 ORDER BY graded_at, grader_version",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await
}
