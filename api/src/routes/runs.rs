//! Runs of the candidate's code (docs/runner.md): the candidate asks the server to run the
//! visible tests on their workspace as the server reconstructs it, and reads the result; staff
//! read the runs and the automated grades. The runner (`clarity runner`) does the running.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use clarity_app::Actor;
use clarity_domain::session::{RunResult, SessionCommand};
use clarity_projections::sessions::runs::{self, GradeView, RunView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{CandidateToken, Member};
use crate::error::{ApiError, Result};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{session_id}/runs", post(request_run))
        .route("/v1/sessions/{session_id}/runs/{run_id}", get(run_status))
        .route("/v1/sessions/{session_id}/grades", get(grades))
}

/// A request to run the visible tests (no fields: what runs is the workspace the server has
/// acknowledged).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {}

/// Where a run stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunStatus {
    pub run_id: Uuid,
    /// `queued` (waiting for a runner), `running`, or `done`.
    pub status: String,
    /// The telemetry `seq` whose reconstruction runs.
    pub through_seq: i64,
    pub requested_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Tests passed and in all, once done.
    pub passed: Option<i32>,
    pub total: Option<i32>,
    /// The run's result, once done: the visible tests, the output (first 64 KiB), how it ended.
    pub result: Option<RunResult>,
    /// While it runs: what it has printed so far (first 64 KiB, refreshed about twice a second).
    pub live_output: Option<String>,
}

/// Runs the visible tests on the workspace as the server has it: everything the candidate's
/// page has had acknowledged (the page flushes its capture first). One run at a time per
/// session; the answer comes back at once and the result later (`GET .../runs/{run_id}`).
#[utoipa::path(post, path = "/v1/sessions/{session_id}/runs", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path)), request_body = RunRequest,
    responses(
        (status = 202, body = RunStatus),
        (status = 409, description = "`run_in_progress`: wait for the current run; `run_limit_reached`; `runs_unavailable`: this assessment has no runnable tests; `session_not_started`, `session_finished`, `deadline_passed`; `concurrent_modification`: retry.", body = crate::error::ErrorBody)))]
pub async fn request_run(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(_body): ApiJson<RunRequest>,
) -> Result<(StatusCode, Json<RunStatus>)> {
    token.for_session(id)?;
    let session = state.load_session(id).await?;
    let assessment = session
        .assessment
        .as_ref()
        .ok_or_else(|| ApiError::not_found("session"))?;
    if clarity_domain::catalogue::slug_of(assessment.assessment_id).is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "runs_unavailable",
            "this assessment has no tests the server can run",
        ));
    }
    let through_seq: i64 =
        sqlx::query_scalar("SELECT last_seq FROM telemetry_cursors WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?
            .unwrap_or(0);
    let run_id = Uuid::now_v7();
    let at = state.now();
    state
        .execute(
            Actor::Candidate,
            token.org_id,
            id,
            SessionCommand::RequestRun {
                run_id,
                through_seq: through_seq as u64,
                at,
            },
            at,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunStatus {
            run_id,
            status: "queued".into(),
            through_seq,
            requested_at: Some(at),
            completed_at: None,
            passed: None,
            total: None,
            result: None,
            live_output: None,
        }),
    ))
}

/// A run of the session's visible tests: queued, running, or done with its result.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/runs/{run_id}", tag = "candidate", security(("session_token" = [])),
    params(("session_id" = Uuid, Path), ("run_id" = Uuid, Path)),
    responses(
        (status = 200, body = RunStatus),
        (status = 404, description = "no such run of this session", body = crate::error::ErrorBody)))]
pub async fn run_status(
    State(state): State<AppState>,
    token: CandidateToken,
    ApiPath((id, run_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<RunStatus>> {
    token.for_session(id)?;
    if let Some(view) = runs::find_run(&state.pool, id, run_id).await? {
        let job: Option<(String, String)> =
            sqlx::query_as("SELECT status, live_output FROM run_jobs WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(&state.pool)
                .await?;
        let mut status = status_of(view, job.as_ref().map(|j| j.0.as_str()));
        if status.status == "running" {
            status.live_output = job.map(|j| j.1);
        }
        return Ok(Json(status));
    }
    // Requested a moment ago and not projected yet: the session's own log says whether it exists.
    let session = state.load_session(id).await?;
    if session.runs.open == Some(run_id) {
        return Ok(Json(RunStatus {
            run_id,
            status: "queued".into(),
            through_seq: 0,
            requested_at: None,
            completed_at: None,
            passed: None,
            total: None,
            result: None,
            live_output: None,
        }));
    }
    Err(ApiError::not_found("run"))
}

fn status_of(view: RunView, job: Option<&str>) -> RunStatus {
    let status = if view.completed_at.is_some() {
        "done"
    } else if job == Some("running") {
        "running"
    } else {
        "queued"
    };
    RunStatus {
        run_id: view.run_id,
        status: status.into(),
        through_seq: view.through_seq,
        requested_at: Some(view.requested_at),
        completed_at: view.completed_at,
        passed: view.passed,
        total: view.total,
        result: view.result.map(|r| r.0),
        live_output: None,
    }
}

/// The session's automated grades and its candidate's runs, for staff.
#[derive(Debug, Serialize, ToSchema)]
pub struct Grades {
    pub session_id: Uuid,
    /// One per grader version, oldest first; a re-grade with a newer version adds one.
    pub grades: Vec<GradeView>,
    /// Between the two newest grades (a re-grade with a new grader version): the checks whose
    /// outcome differs, or that only one of them has. Empty with fewer than two grades.
    pub changes: Vec<GradeChange>,
    /// The candidate's runs of the visible tests, newest first (at most 100).
    pub runs: Vec<RunView>,
}

/// A check whose outcome changed between two grader versions.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct GradeChange {
    pub key: String,
    pub name: String,
    /// Passed under the older version (`null`: it had no such check).
    pub before: Option<bool>,
    /// Passed under the newer version (`null`: it has no such check).
    pub after: Option<bool>,
}

/// The checks whose outcome differs between `older` and `newer` (by key).
pub fn changes(older: &RunResult, newer: &RunResult) -> Vec<GradeChange> {
    use std::collections::BTreeMap;
    let index = |r: &RunResult| -> BTreeMap<String, (String, bool)> {
        r.tests
            .iter()
            .filter_map(|t| t.key.clone().map(|k| (k, (t.name.clone(), t.passed))))
            .collect()
    };
    let (before, after) = (index(older), index(newer));
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (before.get(k), after.get(k));
            if b.map(|x| x.1) == a.map(|x| x.1) {
                return None;
            }
            Some(GradeChange {
                key: k.clone(),
                name: a.or(b).map(|x| x.0.clone()).unwrap_or_default(),
                before: b.map(|x| x.1),
                after: a.map(|x| x.1),
            })
        })
        .collect()
}

/// The hidden checks' results on the submission (per check: pass/fail, weight, what happened),
/// each grader version's score, and the candidate's own runs of the visible tests. Staff of the
/// session's organization.
#[utoipa::path(get, path = "/v1/sessions/{session_id}/grades", tag = "sessions", security(("api_key" = [])),
    params(("session_id" = Uuid, Path)),
    responses(
        (status = 200, body = Grades),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn grades(
    State(state): State<AppState>,
    member: Member,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Grades>> {
    let session = state.load_session(id).await?;
    if session.org_id != Some(member.org_id) {
        return Err(ApiError::not_found("session"));
    }
    let grades = runs::grades(&state.pool, id).await?;
    let changes = match grades.as_slice() {
        [.., older, newer] => changes(&older.result.0, &newer.result.0),
        _ => Vec::new(),
    };
    Ok(Json(Grades {
        session_id: id,
        grades,
        changes,
        runs: runs::list_runs(&state.pool, id, 100).await?,
    }))
}

impl crate::extract::BodyText for RunRequest {}

#[cfg(test)]
mod tests {
    use clarity_domain::session::{RunEnding, RunResult, RunTest};

    use super::{changes, GradeChange};

    fn result(checks: &[(&str, bool)]) -> RunResult {
        RunResult {
            ending: RunEnding::Exited { code: 0 },
            tests: checks
                .iter()
                .map(|(k, passed)| RunTest {
                    key: Some((*k).into()),
                    name: format!("check {k}"),
                    passed: *passed,
                    weight: Some(1.0),
                    message: None,
                    duration_ms: None,
                })
                .collect(),
            results_error: None,
            duration_ms: 1,
            cpu_ms: None,
            peak_memory_bytes: None,
            memory_limit_hit: false,
            output: String::new(),
            output_bytes: 0,
            output_sha256: String::new(),
            output_truncated: false,
            toolchains: Default::default(),
            runner: "r".into(),
        }
    }

    #[test]
    fn a_regrade_lists_the_checks_whose_outcome_changed() {
        let older = result(&[("a", true), ("b", false), ("gone", true)]);
        let newer = result(&[("a", true), ("b", true), ("new", false)]);
        let change = |key: &str, before, after| GradeChange {
            key: key.into(),
            name: format!("check {key}"),
            before,
            after,
        };
        assert_eq!(
            changes(&older, &newer),
            vec![
                change("b", Some(false), Some(true)),
                change("gone", Some(true), None),
                change("new", None, Some(false))
            ]
        );
    }
}
