//! The candidate report: what a hiring manager reads before deciding, computed from the read
//! models when asked for (the session, its catalogue version, reviews, code runs, integrity
//! findings, cohort standing, decision and anything held back), and the versions served.
//!
//! A report is a content-addressed contract: each distinct content is stored once in
//! `report_versions` under its hash (SHA-256 of the canonical JSON, as in the audit trail), and a
//! decision names the hash of the version its maker saw. So [`Report`]'s JSON must never change
//! for the same facts — not a key, not a number's form — or every stored hash would stop matching
//! what the same facts produce. The JSON that is hashed, stored and served is [`Report::to_json`]
//! (a `serde_json::Value`, whose object keys are sorted); the tests below pin it byte for byte.

use chrono::{DateTime, Utc};
use clarity_domain::assessment::AssessmentSpec;
use clarity_domain::audit::canonical_json;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::types::Json as SqlJson;
use sqlx::PgPool;
use uuid::Uuid;

use crate::held_back::{self, HeldBack};
use crate::leaderboard::{self, Cohort};

/// A candidate report's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub session_id: Uuid,
    /// The candidate's name.
    pub candidate: Option<String>,
    pub assessment: ReportAssessment,
    /// The session's status (`invited` … `submitted`, `expired`).
    pub status: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// When it was submitted or expired.
    pub finished_at: Option<DateTime<Utc>>,
    pub time_used_seconds: Option<i64>,
    pub scores: ReportScores,
    pub code_runs: CodeRuns,
    pub integrity: ReportIntegrity,
    /// The session's standing in its cohort (its assessment version in the organization, the
    /// caller's pending reviews left out); `None` until it has a score.
    pub cohort: Option<CohortStanding>,
    /// The current decision.
    pub decision: Option<ReportDecision>,
    /// Present while records of the session are held back; part of the hashed content (a report
    /// made while data was held back is a different report), absent otherwise so that reports of
    /// sessions with nothing held back keep their hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<HeldBack>,
    /// What counts as submitted: the workspace the telemetry log reconstructs through the
    /// submission's `seq` (absent for sessions from before, or until the replay reached it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission: Option<ReportSubmission>,
    /// What the server's runs of the candidate's code found: the hidden checks' grade of the
    /// submission and the candidate's own runs of the visible tests (absent for sessions never
    /// run, so their reports keep their hashes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automated: Option<ReportAutomated>,
}

/// The automated grading, beside the rubric scores (docs/runner.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportAutomated {
    /// The newest grader version's grade of the submission (`None` until graded).
    pub grade: Option<ReportGrade>,
    /// Earlier grader versions' grades (a re-grade adds beside, never replaces).
    pub earlier: Vec<ReportGrade>,
    /// The candidate's runs of the visible tests on the server.
    pub runs: i64,
    /// The last run's tests passed and in all.
    pub last_run: Option<(i32, i32)>,
    /// Where the checks and runs are listed in full.
    pub details: String,
}

/// One grader version's grade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportGrade {
    pub grader_version: String,
    /// The weighted share of checks passed, 0–100, one decimal.
    pub percent: f64,
    pub checks_passed: i32,
    pub checks_total: i32,
    /// The checks that failed: key, name, weight, what happened.
    pub failed: Vec<ReportCheck>,
    pub graded_at: DateTime<Utc>,
}

/// A failed check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportCheck {
    pub key: Option<String>,
    pub name: String,
    pub weight: Option<f64>,
    pub message: Option<String>,
}

/// The submitted files as the log reconstructs them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSubmission {
    /// The telemetry `seq` the submission was recorded at.
    pub through_seq: i64,
    pub files: Vec<ReportFile>,
    /// Where staff download the files (a zip).
    pub download: String,
}

/// One submitted file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFile {
    pub path: String,
    /// Size in bytes (UTF-8).
    pub bytes: usize,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
}

/// The assessment version the session took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportAssessment {
    pub id: Option<Uuid>,
    pub version: Option<i32>,
    pub title: Option<String>,
    pub time_limit_minutes: Option<u32>,
}

/// Scores over the completed reviews.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportScores {
    /// The weighted rubric score 0–100 (as on the leaderboards).
    pub aggregate: Option<f64>,
    /// One per rubric criterion, in the rubric's order.
    pub criteria: Vec<CriterionScores>,
}

/// One rubric criterion's scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriterionScores {
    /// The criterion's key.
    pub criterion: String,
    pub name: String,
    pub weight: u32,
    /// Each reviewer who completed their review, by reviewer id.
    pub completed_reviews: Vec<ReviewerScore>,
    /// The mean of `completed_reviews`.
    pub mean: Option<f64>,
}

/// One reviewer's current score of a criterion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewerScore {
    pub reviewer: Uuid,
    pub score: i16,
    pub justification: String,
}

/// The candidate's code runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeRuns {
    pub total: i64,
    /// The last run's telemetry data.
    pub last: Option<Value>,
}

/// The integrity summary: the latest analysis's tier and findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportIntegrity {
    pub tier: Option<String>,
    pub suite_version: Option<String>,
    pub findings: Vec<ReportFinding>,
}

/// One finding, with the replay position to look at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFinding {
    pub detector: String,
    pub rule: String,
    pub level: String,
    pub summary: String,
    pub replay_seq: Option<i64>,
    /// The reviewer page opened at `replay_seq`.
    pub replay: Option<String>,
}

/// A session's place in its cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortStanding {
    pub size: i64,
    pub percentile: Option<f64>,
    pub rank: i64,
}

/// The current decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportDecision {
    pub outcome: String,
    pub rationale: String,
    pub decided_at: DateTime<Utc>,
}

impl Report {
    /// The content as it is hashed, stored and served.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a report has only string keys and finite numbers")
    }
}

/// SHA-256 (hex) of the canonical JSON of a report's content: the hash a decision names.
pub fn content_hash(content: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(content)))
}

/// What the report is made of, as read from the read models.
struct Facts {
    session_id: Uuid,
    session: SessionFacts,
    spec: Option<AssessmentSpec>,
    /// (reviewer, criterion, score, justification, review completed), current scores only.
    scores: Vec<(Uuid, String, i16, String, bool)>,
    /// (count, the last run's data).
    runs: (i64, Option<Value>),
    /// (detector, rule, level, summary, replay_seq) of the session's current suite version.
    findings: Vec<(String, String, String, String, Option<i64>)>,
    /// (score, percentile, rank, cohort size).
    standing: Option<(f64, Option<f64>, i64, i64)>,
    /// (outcome, rationale, decided_at).
    decision: Option<(String, String, DateTime<Utc>)>,
    held_back: Option<HeldBack>,
    submission: Option<ReportSubmission>,
    automated: Option<ReportAutomated>,
}

/// (status, candidate, assessment, version, title, started, finished, time used, tier, suite).
type SessionFacts = (
    Option<String>,
    Option<String>,
    Option<Uuid>,
    Option<i32>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The report of session `session_id` of organization `org_id` as of now, or `None` if the
/// organization has no such session. `withheld` are sessions the caller must not see scored
/// (their pending reviews): they are left out of the cohort, as on the leaderboards.
pub async fn build(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
    withheld: &[Uuid],
) -> Result<Option<Report>, sqlx::Error> {
    let session: Option<SessionFacts> = sqlx::query_as(
        "SELECT status, candidate_name, assessment_id, assessment_version, assessment_title, started_at,
                coalesce(submitted_at, expired_at), time_used_seconds, integrity_tier, integrity_suite_version
         FROM sessions WHERE session_id = $1 AND org_id = $2",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    let Some(session) = session else {
        return Ok(None);
    };
    let (assessment_id, version, suite) = (session.2, session.3, session.9.clone());
    let spec: Option<SqlJson<AssessmentSpec>> = match (assessment_id, version) {
        (Some(a), Some(v)) => {
            sqlx::query_scalar(
                "SELECT spec FROM catalogue_versions WHERE assessment_id = $1 AND version = $2",
            )
            .bind(a)
            .bind(v)
            .fetch_optional(pool)
            .await?
        }
        _ => None,
    };
    let scores = sqlx::query_as(
        "SELECT sc.reviewer, sc.criterion, sc.score, sc.justification, r.completed_at IS NOT NULL
         FROM review_scores sc JOIN review_reviewers r ON r.session_id = sc.session_id AND r.reviewer = sc.reviewer
         WHERE sc.session_id = $1 AND sc.current ORDER BY sc.criterion, sc.reviewer",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    let runs: (i64, Option<SqlJson<Value>>) = sqlx::query_as(
        "SELECT count(*), (array_agg(data ORDER BY seq DESC))[1] FROM session_events
         WHERE session_id = $1 AND stream_kind = 'telemetry' AND event_type = 'code_run'",
    )
    .bind(session_id)
    .fetch_one(pool)
    .await?;
    let findings = match &suite {
        Some(v) => {
            sqlx::query_as(
                "SELECT detector, rule, level, summary, replay_seq FROM integrity_findings
                 WHERE session_id = $1 AND suite_version = $2 ORDER BY ordinal",
            )
            .bind(session_id)
            .bind(v)
            .fetch_all(pool)
            .await?
        }
        None => Vec::new(),
    };
    let standing = match (assessment_id, version) {
        (Some(a), Some(v)) => {
            let cohort = Cohort {
                org_id,
                assessment_id: Some(a),
                version: v,
                cleared_only: false,
                finished_from: None,
                finished_to: None,
            };
            leaderboard::standing_of(pool, &cohort, session_id, withheld).await?
        }
        _ => None,
    };
    let decision = sqlx::query_as(
        "SELECT outcome, rationale, decided_at FROM decisions WHERE session_id = $1 AND current",
    )
    .bind(session_id)
    .fetch_optional(pool)
    .await?;
    let held_back = held_back::for_session(pool, session_id).await?;
    let automated = automated(pool, session_id).await?;
    let submission = match submitted_files(pool, org_id, session_id).await? {
        Some((through_seq, files)) => Some(ReportSubmission {
            through_seq,
            files: files
                .iter()
                .map(|(path, content)| ReportFile {
                    path: path.clone(),
                    bytes: content.len(),
                    sha256: hex::encode(Sha256::digest(content.as_bytes())),
                })
                .collect(),
            download: format!("/v1/sessions/{session_id}/submission.zip"),
        }),
        None => None,
    };
    Ok(Some(assemble(Facts {
        session_id,
        session,
        spec: spec.map(|s| s.0),
        scores,
        runs: (runs.0, runs.1.map(|j| j.0)),
        findings,
        standing,
        decision,
        held_back,
        submission,
        automated,
    })))
}

/// The submitted files (path → content) and the `seq` they are reconstructed through: the
/// replay's workspace at the submission's `seq`. `None` when the session recorded no `seq` at its
/// finish (from before) or the replay has not reached it yet.
pub async fn submitted_files(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Option<(i64, std::collections::BTreeMap<String, String>)>, sqlx::Error> {
    let through: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT through_seq FROM sessions WHERE session_id = $1 AND org_id = $2",
    )
    .bind(session_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await?;
    let Some(Some(through)) = through else {
        return Ok(None);
    };
    Ok(
        crate::replay::seek::files_through(pool, org_id, session_id, through)
            .await?
            .map(|files| (through, files)),
    )
}

/// The report the facts make (no I/O).
fn assemble(facts: Facts) -> Report {
    let Facts {
        session_id,
        session,
        spec,
        scores,
        runs,
        findings,
        standing,
        decision,
        held_back,
        submission,
        automated,
    } = facts;
    let (
        status,
        candidate,
        assessment_id,
        version,
        title,
        started_at,
        finished_at,
        time_used,
        tier,
        suite,
    ) = session;
    let criteria = spec
        .as_ref()
        .map(|s| {
            s.rubric
                .criteria
                .iter()
                .map(|c| {
                    let completed_reviews: Vec<ReviewerScore> = scores
                        .iter()
                        .filter(|(_, key, _, _, done)| key == &c.key && *done)
                        .map(|(reviewer, _, score, justification, _)| ReviewerScore {
                            reviewer: *reviewer,
                            score: *score,
                            justification: justification.clone(),
                        })
                        .collect();
                    let mean = (!completed_reviews.is_empty()).then(|| {
                        completed_reviews
                            .iter()
                            .map(|r| f64::from(r.score))
                            .sum::<f64>()
                            / completed_reviews.len() as f64
                    });
                    CriterionScores {
                        criterion: c.key.clone(),
                        name: c.name.clone(),
                        weight: c.weight,
                        completed_reviews,
                        mean,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        session_id,
        candidate,
        assessment: ReportAssessment {
            id: assessment_id,
            version,
            title,
            time_limit_minutes: spec.as_ref().map(|s| s.time_limit_minutes),
        },
        status,
        started_at,
        finished_at,
        time_used_seconds: time_used,
        scores: ReportScores {
            aggregate: standing.map(|s| s.0),
            criteria,
        },
        code_runs: CodeRuns {
            total: runs.0,
            last: runs.1,
        },
        integrity: ReportIntegrity {
            tier,
            suite_version: suite,
            findings: findings
                .into_iter()
                .map(
                    |(detector, rule, level, summary, replay_seq)| ReportFinding {
                        detector,
                        rule,
                        level,
                        summary,
                        replay_seq,
                        replay: replay_seq
                            .map(|q| format!("/review/sessions/{session_id}?seq={q}")),
                    },
                )
                .collect(),
        },
        cohort: standing.map(|(_, percentile, rank, size)| CohortStanding {
            size,
            percentile,
            rank,
        }),
        decision: decision.map(|(outcome, rationale, decided_at)| ReportDecision {
            outcome,
            rationale,
            decided_at,
        }),
        held_back,
        submission,
        automated,
    }
}

/// The grades and runs of a session, or `None` when it has neither.
async fn automated(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Option<ReportAutomated>, sqlx::Error> {
    let grades = crate::sessions::runs::grades(pool, session_id).await?;
    let (runs, last_passed, last_total): (i64, Option<i32>, Option<i32>) = sqlx::query_as(
        "SELECT count(*), (array_agg(passed ORDER BY requested_at DESC) FILTER (WHERE completed_at IS NOT NULL))[1],
                (array_agg(total ORDER BY requested_at DESC) FILTER (WHERE completed_at IS NOT NULL))[1]
         FROM session_runs WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_one(pool)
    .await?;
    if grades.is_empty() && runs == 0 {
        return Ok(None);
    }
    let mut all: Vec<ReportGrade> = grades
        .into_iter()
        .map(|g| ReportGrade {
            grader_version: g.grader_version,
            percent: (g.fraction * 1000.0).round() / 10.0,
            checks_passed: g.checks_passed,
            checks_total: g.checks_total,
            failed: g
                .result
                .0
                .tests
                .into_iter()
                .filter(|t| !t.passed)
                .map(|t| ReportCheck {
                    key: t.key,
                    name: t.name,
                    weight: t.weight,
                    message: t.message,
                })
                .collect(),
            graded_at: g.graded_at,
        })
        .collect();
    let grade = all.pop();
    Ok(Some(ReportAutomated {
        grade,
        earlier: all,
        runs,
        last_run: last_passed.zip(last_total),
        details: format!("/v1/sessions/{session_id}/grades"),
    }))
}

/// Whether one of `withheld` (sessions the caller must not see scored) is scored in the cohort
/// of session `session_id` (its assessment version in the organization): a stored report version
/// may rank the session among them.
pub async fn ranks_withheld(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
    withheld: &[Uuid],
) -> Result<bool, sqlx::Error> {
    if withheld.is_empty() {
        return Ok(false);
    }
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM session_scores w JOIN sessions s
             ON s.org_id = w.org_id AND s.assessment_id = w.assessment_id AND s.assessment_version = w.assessment_version
           WHERE s.session_id = $1 AND s.org_id = $2 AND w.session_id = ANY($3))",
    )
    .bind(session_id)
    .bind(org_id)
    .bind(withheld)
    .fetch_one(pool)
    .await
}

/// A version served earlier: its content and when it was first served; `None` if the
/// organization's session has no version with that hash.
pub async fn stored_version(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
    content_hash: &str,
) -> Result<Option<(Value, DateTime<Utc>)>, sqlx::Error> {
    let row: Option<(SqlJson<Value>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT content, first_served_at FROM report_versions WHERE session_id = $1 AND org_id = $2 AND content_hash = $3",
    )
    .bind(session_id)
    .bind(org_id)
    .bind(content_hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(SqlJson(content), at)| (content, at)))
}

/// Records that `content` (with hash `content_hash`) was served to `member`, once per distinct
/// content, and returns when it was first served.
pub async fn record_served(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
    member: Uuid,
    content_hash: &str,
    content: &Value,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO report_versions (session_id, content_hash, org_id, content, first_served_to)
         VALUES ($1, $2, $3, $4::json, $5) ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(content_hash)
    .bind(org_id)
    .bind(content.to_string())
    .bind(member)
    .execute(pool)
    .await?;
    sqlx::query_scalar(
        "SELECT first_served_at FROM report_versions WHERE session_id = $1 AND content_hash = $2",
    )
    .bind(session_id)
    .bind(content_hash)
    .fetch_one(pool)
    .await
}

/// Whether a decision may name `content_hash`: a version of the session's report was served
/// under it.
pub async fn was_served(
    pool: &PgPool,
    session_id: Uuid,
    content_hash: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM report_versions WHERE session_id = $1 AND content_hash = $2)",
    )
    .bind(session_id)
    .bind(content_hash)
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests;
