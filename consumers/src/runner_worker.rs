//! The runner role (`clarity runner`): takes jobs from `run_jobs` (enqueued by the `sessions`
//! projection when a candidate asks for a run, and when a session finishes), runs the
//! assessment's grader suite in the sandbox over the workspace the telemetry log reconstructs,
//! and records the result on the session: `RunCompleted` for the visible tests, `SubmissionGraded`
//! for the hidden checks (docs/runner.md).
//!
//! - **Leases, not locks**: a run can take minutes, so a job is claimed by setting a lease and
//!   committing; the run happens outside any transaction. A runner that dies leaves the job to
//!   another once the lease ends.
//! - **Exactly once**: the aggregate refuses a second result for a run id (and a second grade of
//!   one grader version), so a job run twice (a lease that ended while the first runner was
//!   still working, a crash after the event committed) records one result; the job is then
//!   marked done with "already recorded".
//! - **Never stuck**: a job lost `MAX_ATTEMPTS` times is completed with a sandbox error, so the
//!   candidate's page does not wait forever.
//! - The candidate's "Run tests" goes before grading: a person is waiting for it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clarity_app::{Actor, App, CommandError, Origin, SystemRole};
use clarity_domain::session::{RunEnding, RunResult, RunTest, SessionCommand, SessionError};
use clarity_projections::replay::seek;
use clarity_runner::sandbox::{Ending, Limits, Outcome as SandboxOutcome, Sandbox};
use clarity_runner::suite::{self, Mode, Suite};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// A job claimed this many times without a result is completed as a sandbox error.
pub const MAX_ATTEMPTS: i32 = 3;

/// Where the runner finds its suites and keeps its runs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The catalogue folder (with each assessment's `grader/`).
    pub catalogue: PathBuf,
    /// Prepared toolchains, one folder per suite (scripts/runner.sh).
    pub toolchains: PathBuf,
    /// Where runs' directories are made.
    pub runs_dir: PathBuf,
    /// `runner/harness`, mounted at /harness.
    pub harness: PathBuf,
    /// The runs' uids are `uid_base .. uid_base + concurrency`.
    pub uid_base: u32,
    /// Runs at once.
    pub concurrency: usize,
    /// This runner's name in job rows and results.
    pub runner_id: String,
    /// Limits of each run (the wall time comes from the suite).
    pub limits: Limits,
    /// How long a claimed job is this runner's before another may take it (default: the
    /// longest run plus a minute).
    pub lease: Option<Duration>,
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    Idle,
    Done { run_id: Uuid, outcome: String },
    Retry { run_id: Uuid, error: String },
}

/// A job as claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Job {
    run_id: Uuid,
    session_id: Uuid,
    org_id: Uuid,
    mode: String,
    through_seq: Option<i64>,
    attempts: i32,
}

/// The runner: its sandbox, suites and the versions it records.
pub struct Runner {
    app: App,
    config: RunnerConfig,
    sandbox: Sandbox,
    toolchains: BTreeMap<String, String>,
}

impl Runner {
    /// Checks the machine (the sandbox's essentials) and records the toolchains' versions.
    pub fn new(app: App, config: RunnerConfig) -> anyhow::Result<Runner> {
        let sandbox = Sandbox::new(
            config.runs_dir.clone(),
            config.harness.clone(),
            config.uid_base,
            config.concurrency,
        )?;
        let missing = sandbox.probe().essential_missing();
        anyhow::ensure!(
            missing.is_empty(),
            "the runner cannot sandbox code on this machine: missing {}",
            missing.join(", ")
        );
        info!(probe = ?sandbox.probe(), "runner sandbox");
        Ok(Runner {
            app,
            toolchains: host_toolchains(),
            config,
            sandbox,
        })
    }

    /// Works jobs, `concurrency` at a time, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut workers = Vec::new();
        for _ in 0..self.config.concurrency.max(1) {
            let me = Arc::clone(&self);
            let shutdown = shutdown.clone();
            workers.push(tokio::spawn(async move {
                while !shutdown.is_cancelled() {
                    let round = me.work_one().await.unwrap_or_else(|error| {
                        warn!(error = %format!("{error:#}"), "runner round failed");
                        Round::Idle
                    });
                    match &round {
                        Round::Done { run_id, outcome } => info!(%run_id, outcome, "run recorded"),
                        Round::Retry { run_id, error } => {
                            warn!(%run_id, error, "run will be retried")
                        }
                        Round::Idle => {
                            tokio::select! {
                                _ = shutdown.cancelled() => break,
                                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                            }
                        }
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
    }

    /// Claims one job and works it.
    pub async fn work_one(&self) -> anyhow::Result<Round> {
        let lease_seconds = self.config.lease.map_or(
            (self.config.limits.wall_ms / 1000).max(240) as f64 + 60.0,
            |l| l.as_secs_f64(),
        );
        let job: Option<Job> = sqlx::query_as(
            "UPDATE run_jobs SET status = 'running', runner = $1, attempts = attempts + 1, started_at = now(),
                 lease_until = now() + make_interval(secs => $2)
             WHERE run_id = (
                 SELECT run_id FROM run_jobs
                 WHERE (status = 'pending' AND available_at <= now()) OR (status = 'running' AND lease_until < now())
                 ORDER BY (mode = 'grade'), available_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING run_id, session_id, org_id, mode, through_seq, attempts",
        )
        .bind(&self.config.runner_id)
        .bind(lease_seconds)
        .fetch_optional(self.app.pool())
        .await?;
        let Some(job) = job else {
            return Ok(Round::Idle);
        };
        let result = if job.attempts > MAX_ATTEMPTS {
            if job.mode == "grade" {
                // Set aside for an operator (the last error says why); a grade is never made up.
                sqlx::query("UPDATE run_jobs SET status = 'failed', done_at = now(), lease_until = NULL WHERE run_id = $1")
                    .bind(job.run_id)
                    .execute(self.app.pool())
                    .await?;
                return Ok(Round::Retry {
                    run_id: job.run_id,
                    error: format!("grading failed {} times; set aside", job.attempts - 1),
                });
            }
            Ok(Some(self.lost(&job)))
        } else {
            self.execute(&job).await
        };
        match result {
            Ok(None) => {
                // Not ready (the replay has not reached the run's `seq` yet): try again soon,
                // without counting it as an attempt.
                sqlx::query(
                    "UPDATE run_jobs SET status = 'pending', attempts = attempts - 1, lease_until = NULL,
                         available_at = now() + interval '200 milliseconds'
                     WHERE run_id = $1",
                )
                .bind(job.run_id)
                .execute(self.app.pool())
                .await?;
                Ok(Round::Idle)
            }
            Ok(Some(result)) => {
                let outcome = match self.record(&job, result).await {
                    Ok(outcome) => outcome,
                    Err(error) => return self.retry_later(&job, format!("{error:#}")).await,
                };
                sqlx::query(
                    "UPDATE run_jobs SET status = 'done', outcome = $2, done_at = now(), lease_until = NULL WHERE run_id = $1",
                )
                .bind(job.run_id)
                .bind(&outcome)
                .execute(self.app.pool())
                .await?;
                Ok(Round::Done {
                    run_id: job.run_id,
                    outcome,
                })
            }
            Err(error) => self.retry_later(&job, format!("{error:#}")).await,
        }
    }

    /// Puts the job back with a backoff and the error.
    async fn retry_later(&self, job: &Job, error: String) -> anyhow::Result<Round> {
        {
            {
                sqlx::query(
                    "UPDATE run_jobs SET status = 'pending', last_error = $2, lease_until = NULL,
                         available_at = now() + make_interval(secs => $3)
                     WHERE run_id = $1",
                )
                .bind(job.run_id)
                .bind(&error)
                .bind(2f64.powi(job.attempts.min(6)))
                .execute(self.app.pool())
                .await?;
                Ok(Round::Retry {
                    run_id: job.run_id,
                    error,
                })
            }
        }
    }

    /// Runs the job's suite over its files; `None` if the files cannot be read yet.
    async fn execute(&self, job: &Job) -> anyhow::Result<Option<Graded>> {
        let assessment: Option<Option<Uuid>> =
            sqlx::query_scalar("SELECT assessment_id FROM sessions WHERE session_id = $1")
                .bind(job.session_id)
                .fetch_optional(self.app.pool())
                .await?;
        let Some(Some(assessment_id)) = assessment else {
            return Ok(None);
        };
        let Some(slug) = clarity_domain::catalogue::slug_of(assessment_id) else {
            return Ok(Some(Graded {
                no_suite: true,
                ..Graded::error(
                    job,
                    "this assessment has no grader suite (only the built-in catalogue's assessments are run)",
                    &self.config.runner_id,
                )
            }));
        };
        let suite = match Suite::load(&self.config.catalogue, &self.config.toolchains, &slug) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Some(Graded::error(
                    job,
                    &format!("the suite could not be loaded: {e:#}"),
                    &self.config.runner_id,
                )))
            }
        };
        let files = match job.through_seq {
            Some(seq) => {
                match seek::files_through(self.app.pool(), job.org_id, job.session_id, seq).await? {
                    Some(files) => files.into_iter().collect(),
                    None => return Ok(None),
                }
            }
            // A session finished before 2026-12 recorded no `seq`: its submission is its files.
            None => submitted_files(self.app.pool(), job.session_id).await?,
        };
        let mode = if job.mode == "grade" {
            Mode::Hidden
        } else {
            Mode::Visible
        };
        let mut sandbox_job = suite.job(mode, files, &self.config.limits);
        // The candidate's page shows a visible run's output while it runs.
        let flusher = (mode == Mode::Visible).then(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            sandbox_job.live = Some(tx);
            tokio::spawn(stream_output(self.app.pool().clone(), job.run_id, rx))
        });
        let outcome = self.sandbox.run(&sandbox_job).await;
        drop(sandbox_job);
        if let Some(f) = flusher {
            let _ = f.await;
        }
        let mut toolchains = self.toolchains.clone();
        toolchains.insert("grader".into(), suite.manifest.grader_version.clone());
        toolchains.insert("toolchain".into(), suite.manifest.toolchain.clone());
        Ok(Some(Graded::from_outcome(
            job,
            mode,
            &suite,
            outcome,
            toolchains,
            &self.config.runner_id,
        )))
    }

    fn lost(&self, job: &Job) -> Graded {
        Graded::error(
            job,
            &format!(
                "the run was started {} times and never finished (its runner stopped each time)",
                job.attempts - 1
            ),
            &self.config.runner_id,
        )
    }

    /// Records the result on the session; "already recorded" is a success.
    async fn record(&self, job: &Job, graded: Graded) -> anyhow::Result<String> {
        let at = self.app.now();
        let origin = Origin::new(Actor::System(SystemRole::Runner), Some(job.org_id), at);
        let through_seq = job.through_seq.map(|s| s as u64);
        let summary = graded.summary();
        if graded.no_suite && job.mode == "grade" {
            return Ok("not graded: the assessment has no grader suite".into());
        }
        let command = match graded.grade {
            Some((grader_version, score, max_score)) if job.mode == "grade" => {
                SessionCommand::RecordGrade {
                    run_id: job.run_id,
                    grader_version,
                    through_seq,
                    score,
                    max_score,
                    result: Box::new(graded.result),
                    at,
                }
            }
            // No usable grade (the sandbox or the grader failed, not the candidate: graders
            // report every check whatever the code does): retried, then set aside. A score is
            // never made up.
            _ if job.mode == "grade" => {
                anyhow::bail!(
                    "no grade: {} ({:?})",
                    graded
                        .result
                        .results_error
                        .as_deref()
                        .unwrap_or("no results"),
                    graded.result.ending
                )
            }
            _ => SessionCommand::CompleteRun {
                run_id: job.run_id,
                result: Box::new(graded.result),
                at,
            },
        };
        match self.app.execute(&origin, job.session_id, command).await {
            Ok(()) => Ok(summary),
            Err(CommandError::Session(
                SessionError::RunAlreadyCompleted(_) | SessionError::GradeAlreadyRecorded(_),
            )) => Ok("already recorded".into()),
            Err(CommandError::Session(SessionError::UnknownRun(_))) => {
                Ok("no such run on the session".into())
            }
            Err(error) => Err(anyhow::anyhow!("recording the run failed: {error}")),
        }
    }
}

/// Queues every finished session (optionally of one organization, one assessment) for grading
/// again: one `grade` job each, under a fresh run id. The runners grade with the suite they have;
/// a grader version the session was already graded with is refused by the aggregate and the job
/// ends as "already recorded". Returns how many were queued.
pub async fn enqueue_regrade(
    pool: &sqlx::PgPool,
    org: Option<Uuid>,
    assessment: Option<Uuid>,
) -> anyhow::Result<u64> {
    let queued = sqlx::query(
        "INSERT INTO run_jobs (run_id, session_id, org_id, mode, through_seq)
         SELECT gen_random_uuid(), session_id, org_id, 'grade', through_seq FROM sessions
         WHERE status IN ('submitted', 'expired')
           AND ($1::uuid IS NULL OR org_id = $1) AND ($2::uuid IS NULL OR assessment_id = $2)",
    )
    .bind(org)
    .bind(assessment)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(queued)
}

/// A run's result, and its grade when it graded.
struct Graded {
    result: RunResult,
    grade: Option<(String, f64, f64)>,
    /// The session's assessment has no grader suite (an organization's own assessment): there
    /// is nothing to grade, which is not a failure to retry.
    no_suite: bool,
}

impl Graded {
    fn error(job: &Job, message: &str, runner: &str) -> Graded {
        let _ = job;
        Graded {
            result: RunResult {
                ending: RunEnding::SandboxError {
                    message: message.into(),
                },
                tests: Vec::new(),
                results_error: Some(message.into()),
                duration_ms: 0,
                cpu_ms: None,
                peak_memory_bytes: None,
                memory_limit_hit: false,
                output: String::new(),
                output_bytes: 0,
                output_sha256: hex_sha256(b""),
                output_truncated: false,
                toolchains: BTreeMap::new(),
                runner: runner.into(),
            },
            grade: None,
            no_suite: false,
        }
    }

    fn from_outcome(
        job: &Job,
        mode: Mode,
        suite: &Suite,
        outcome: SandboxOutcome,
        toolchains: BTreeMap<String, String>,
        runner: &str,
    ) -> Graded {
        let _ = job;
        let (tests, results_error, grade) = match mode {
            Mode::Hidden => match suite::grade_of(&outcome) {
                Ok(g) => (
                    g.checks.clone(),
                    None,
                    Some((suite.manifest.grader_version.clone(), g.score, g.max_score)),
                ),
                Err(e) => (Vec::new(), Some(e), None),
            },
            Mode::Visible => match suite::tests_of(&outcome) {
                Ok(t) => (t, None, None),
                Err(e) => (Vec::new(), Some(e), None),
            },
        };
        let ending = match outcome.ending {
            Ending::Exited { code } => RunEnding::Exited { code },
            Ending::Signalled { signal } => RunEnding::Signalled { signal },
            Ending::TimedOut => RunEnding::TimedOut,
            Ending::OutputLimit => RunEnding::OutputLimit,
            Ending::SandboxError { message } => RunEnding::SandboxError { message },
        };
        Graded {
            result: RunResult {
                ending,
                tests: tests
                    .into_iter()
                    .map(|t| RunTest {
                        key: t.key,
                        name: t.name,
                        passed: t.passed,
                        weight: t.weight,
                        message: t.message,
                        duration_ms: t.duration_ms,
                    })
                    .collect(),
                results_error,
                duration_ms: outcome.duration_ms,
                cpu_ms: outcome.cpu_ms,
                peak_memory_bytes: outcome.peak_memory_bytes,
                memory_limit_hit: outcome.memory_limit_hit,
                output: outcome.output,
                output_bytes: outcome.output_bytes,
                output_sha256: outcome.output_sha256,
                output_truncated: outcome.output_truncated,
                toolchains,
                runner: runner.into(),
            },
            grade,
            no_suite: false,
        }
    }

    fn summary(&self) -> String {
        let (passed, total) = self.result.passed();
        match &self.grade {
            Some((v, score, max)) => {
                format!("graded with {v}: {score}/{max} ({passed}/{total} checks)")
            }
            None => format!("{passed}/{total} passed ({:?})", self.result.ending),
        }
    }
}

/// Writes a run's output to its job row as it comes, at most about twice a second, until the
/// run ends (the sender is dropped). Best effort: a failed write is skipped; the result's own
/// output is what counts.
async fn stream_output(
    pool: sqlx::PgPool,
    run_id: Uuid,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut text: Vec<u8> = Vec::new();
    let mut written = 0;
    loop {
        let deadline = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(deadline);
        let mut open = true;
        loop {
            tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(c) => text.extend_from_slice(&c),
                    None => { open = false; break; }
                },
                _ = &mut deadline => break,
            }
        }
        if text.len() > written {
            let shown = String::from_utf8_lossy(&text).into_owned();
            let _ = sqlx::query("UPDATE run_jobs SET live_output = $2 WHERE run_id = $1")
                .bind(run_id)
                .bind(shown)
                .execute(&pool)
                .await;
            written = text.len();
        }
        if !open {
            return;
        }
    }
}

/// The files a session submitted (sessions finished before the log was the submission).
async fn submitted_files(
    pool: &sqlx::PgPool,
    session_id: Uuid,
) -> anyhow::Result<Vec<(String, String)>> {
    let files: Option<sqlx::types::Json<Vec<clarity_domain::session::SubmittedFile>>> =
        sqlx::query_scalar("SELECT files FROM submission_blobs WHERE session_id = $1 ORDER BY submitted_at DESC LIMIT 1")
            .bind(session_id)
            .fetch_optional(pool)
            .await?;
    Ok(files
        .map(|f| f.0.into_iter().map(|f| (f.path, f.content)).collect())
        .unwrap_or_default())
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The versions of what runs candidate code on this machine (read once at start).
fn host_toolchains() -> BTreeMap<String, String> {
    let version = |program: &str, args: &[&str]| -> Option<String> {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .into_owned();
        text.lines()
            .next()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
    };
    let mut out = BTreeMap::new();
    for (name, program, args) in [
        ("bubblewrap", "bwrap", &["--version"][..]),
        ("python", "/usr/bin/python3", &["--version"][..]),
        ("go", "/usr/local/go/bin/go", &["version"][..]),
        ("node", "/usr/bin/node", &["--version"][..]),
        ("redis", "redis-server", &["--version"][..]),
    ] {
        if let Some(v) = version(program, args) {
            out.insert(name.to_owned(), v);
        }
    }
    if let Some(dir) = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
        d.flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .max()
    }) {
        out.insert("postgres".into(), dir);
    }
    out
}
