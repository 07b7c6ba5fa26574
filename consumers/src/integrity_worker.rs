//! The integrity analysis worker: takes jobs from `integrity_jobs` (enqueued by the `sessions`
//! projection when a session finishes, or by `clarity integrity rerun`), runs the detector suite
//! over the session's telemetry, and records the result as an `IntegrityAnalysed` event on the
//! session.
//!
//! Exactly once per (session, suite version): the job row is locked (`FOR UPDATE SKIP LOCKED`, so
//! several workers share the queue) while the analysis runs, and the aggregate refuses a second
//! analysis with the same suite version. A worker that dies after the event committed but before
//! the job was marked done leaves the job to another worker, whose command is refused as already
//! recorded — and the job is then marked done. A re-run job (`rerun:<suite version>`) is taken
//! only by workers running that suite version.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clarity_app::{Actor, App, CommandError, Origin, SystemRole};
use clarity_domain::assessment::AssessmentSpec;
use clarity_domain::session::{ConsentScopes, SessionCommand, SessionError, SubmittedFile};
use clarity_domain::telemetry::{TelemetryData, TelemetryEvent};
use clarity_integrity::submission::SubmissionClaim;
use clarity_integrity::suite::SuiteSettings;
use clarity_integrity::{similarity, suite, SessionTrace};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// Jobs failing this many times are set aside as `failed` (with the last error) for an operator.
pub const MAX_ATTEMPTS: i32 = 5;
/// How many sessions of the cohort the cross-session detectors compare with (most recent first).
pub const COHORT_LIMIT: i64 = 2000;

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No job was ready.
    Idle,
    /// A job finished: the analysis was recorded, or had been already.
    Done { session_id: Uuid, outcome: String },
    /// A job failed and will be retried (or was set aside).
    Failed { session_id: Uuid, error: String },
}

/// Runs until `shutdown`, with the detector suite configured by `settings`.
pub async fn run(app: App, settings: SuiteSettings, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let outcome = match work_one(&app, &settings).await {
            Ok(o) => o,
            Err(error) => {
                warn!(error = %error, "integrity worker round failed");
                Outcome::Idle
            }
        };
        match &outcome {
            Outcome::Done {
                session_id,
                outcome,
            } => info!(%session_id, outcome, "integrity analysis"),
            Outcome::Failed { session_id, error } => {
                warn!(%session_id, error, "integrity analysis failed")
            }
            Outcome::Idle => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

struct SessionRow {
    org_id: Uuid,
    status: Option<String>,
    assessment_id: Option<Uuid>,
    assessment_version: Option<i32>,
    consent_scopes: Option<Json<ConsentScopes>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// Takes one ready job and works it.
pub async fn work_one(app: &App, settings: &SuiteSettings) -> anyhow::Result<Outcome> {
    let mut tx = app.pool().begin().await?;
    // A re-run is for one suite version: during a rolling upgrade, a worker of another version
    // leaves it to the workers that run that version.
    let version = suite::suite_version(settings);
    let job: Option<(Uuid, String, i32)> = sqlx::query_as(
        "SELECT session_id, trigger, attempts FROM integrity_jobs
         WHERE status = 'pending' AND available_at <= now()
           AND (trigger NOT LIKE 'rerun:%' OR trigger = 'rerun:' || $1)
         ORDER BY available_at, enqueued_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(&version)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((session_id, trigger, attempts)) = job else {
        return Ok(Outcome::Idle);
    };
    match analyse(app, settings, &mut tx, session_id, &trigger).await {
        Ok(outcome) => {
            sqlx::query(
                "UPDATE integrity_jobs SET status = 'done', outcome = $3, done_at = now(), attempts = attempts + 1
                 WHERE session_id = $1 AND trigger = $2",
            )
            .bind(session_id)
            .bind(&trigger)
            .bind(&outcome)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Outcome::Done {
                session_id,
                outcome,
            })
        }
        Err(error) => {
            let error = format!("{error:#}");
            let attempts = attempts + 1;
            sqlx::query(
                "UPDATE integrity_jobs SET attempts = $3, last_error = $4,
                     status = CASE WHEN $3 >= $5 THEN 'failed' ELSE 'pending' END,
                     available_at = now() + make_interval(secs => 2 ^ $3)
                 WHERE session_id = $1 AND trigger = $2",
            )
            .bind(session_id)
            .bind(&trigger)
            .bind(attempts)
            .bind(&error)
            .bind(MAX_ATTEMPTS)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Outcome::Failed { session_id, error })
        }
    }
}

/// Loads the session's trace, runs the suite, records the event. Returns the job's outcome.
async fn analyse(
    app: &App,
    settings: &SuiteSettings,
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    trigger: &str,
) -> anyhow::Result<String> {
    let row: Option<(
        Uuid,
        Option<String>,
        Option<Uuid>,
        Option<i32>,
        Option<Json<ConsentScopes>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
    )> = sqlx::query_as(
        "SELECT org_id, status, assessment_id, assessment_version, consent_scopes, started_at,
                    coalesce(submitted_at, expired_at)
             FROM sessions WHERE session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((
        org_id,
        status,
        assessment_id,
        assessment_version,
        consent_scopes,
        started_at,
        finished_at,
    )) = row
    else {
        anyhow::bail!("the session is not in the read model");
    };
    let s = SessionRow {
        org_id,
        status,
        assessment_id,
        assessment_version,
        consent_scopes,
        started_at,
        finished_at,
    };
    let (Some(assessment_id), Some(version)) = (s.assessment_id, s.assessment_version) else {
        anyhow::bail!("the session has no assessment yet");
    };
    let settings = settings.clone();
    let suite_version = suite::suite_version(&settings);
    let already: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'CandidateSession'
             AND aggregate_id = $1 AND event_type = 'IntegrityAnalysed'
             AND payload -> 'IntegrityAnalysed' -> 'analysis' ->> 'suite_version' = $2)",
    )
    .bind(session_id.to_string())
    .bind(&suite_version)
    .fetch_one(&mut **tx)
    .await?;
    if already {
        return Ok(format!("already analysed with {suite_version}"));
    }
    let spec: Option<Json<AssessmentSpec>> = sqlx::query_scalar(
        "SELECT spec FROM catalogue_versions WHERE assessment_id = $1 AND version = $2",
    )
    .bind(assessment_id)
    .bind(version)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(Json(spec)) = spec else {
        anyhow::bail!(
            "assessment {assessment_id} v{version} is not in the catalogue read model yet"
        );
    };
    let events = load_telemetry(app.pool(), session_id).await?;
    let submission = load_submission(&mut **tx, session_id, &events).await?;
    let trace = SessionTrace {
        submission,
        started_at: s.started_at,
        events,
        consent: s.consent_scopes.map(|j| j.0).unwrap_or_default(),
        starter_files: spec
            .tasks
            .iter()
            .flat_map(|t| &t.starter_files)
            .map(|f| SubmittedFile {
                path: f.path.clone(),
                content: f.content.clone(),
            })
            .collect(),
    };
    let trace = std::sync::Arc::new(trace);
    let own = {
        let trace = trace.clone();
        tokio::task::spawn_blocking(move || suite::prints(&trace)).await?
    };
    store_prints(tx, session_id, &s, assessment_id, version, &own).await?;
    let cohort = load_cohort(tx, session_id, s.org_id, assessment_id, version).await?;
    let task_threshold = similarity_threshold_for(assessment_id);
    let policy = spec.integrity_policy;
    let analysis_trigger = if trigger.starts_with("rerun") {
        "rerun".to_string()
    } else {
        s.status.clone().unwrap_or_else(|| "finished".into())
    };
    let tuned = suite::Tuned {
        face_calibrations: face_calibrations(tx, s.org_id).await?,
        ..suite::Tuned::default()
    };
    let analysis = {
        let trace = trace.clone();
        tokio::task::spawn_blocking(move || {
            suite::analyse_tuned(
                &trace,
                &policy,
                &settings,
                task_threshold,
                &own,
                &cohort,
                &analysis_trigger,
                &tuned,
            )
        })
        .await?
    };
    let tier = analysis.tier;
    let at = app.now();
    let origin = Origin::new(
        Actor::System(SystemRole::IntegrityWorker),
        Some(s.org_id),
        at,
    );
    let command = SessionCommand::RecordIntegrityAnalysis {
        analysis: Box::new(analysis),
        at,
        // The job exists because the submission was projected, and the chain head was saved in
        // that same transaction: the seal covers every telemetry event read.
        chain_seal: clarity_projections::audit_trail::current_seal(app.pool(), session_id).await?,
    };
    match app.execute(&origin, session_id, command).await {
        Ok(()) => Ok(format!("recorded {suite_version}: {}", tier.as_str())),
        Err(CommandError::Session(SessionError::AnalysisAlreadyRecorded(v))) => {
            Ok(format!("already analysed with {v}"))
        }
        Err(error) => Err(anyhow::anyhow!("recording the analysis failed: {error}")),
    }
}

/// The session's telemetry in `seq` order, without duplicates.
/// What was submitted: the workspace the telemetry reconstructs through the submission's `seq`
/// (the replay engine's fold, the same the replay and the candidate's resume show) and the files
/// the client sent. `None` for a session whose finish recorded no `seq` (from before 2026-12).
async fn load_submission(
    conn: &mut sqlx::PgConnection,
    session_id: Uuid,
    events: &[TelemetryEvent],
) -> anyhow::Result<Option<SubmissionClaim>> {
    let row: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT through_seq, files_digest FROM sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((Some(through_seq), digest)) = row else {
        return Ok(None);
    };
    let through_seq = through_seq.max(0) as u64;
    let sent: Vec<SubmittedFile> = match digest {
        Some(digest) => sqlx::query_scalar::<_, Json<Vec<SubmittedFile>>>(
            "SELECT files FROM submission_blobs WHERE files_digest = $1",
        )
        .bind(digest)
        .fetch_optional(&mut *conn)
        .await?
        .map(|j| j.0)
        .unwrap_or_default(),
        None => Vec::new(),
    };
    let folded: Vec<(u64, TelemetryData)> = events
        .iter()
        .filter(|e| e.seq <= through_seq)
        .map(|e| (e.seq, e.data.clone()))
        .collect();
    let (workspace, _) = clarity_projections::replay_engine::state_at(
        &clarity_projections::replay_engine::Keyframe {
            seq: 0,
            workspace: Default::default(),
        },
        &folded,
        through_seq,
    );
    Ok(Some(SubmissionClaim {
        through_seq,
        authored: workspace
            .files
            .into_iter()
            .map(|(path, content)| SubmittedFile { path, content })
            .collect(),
        sent,
    }))
}

async fn load_telemetry(pool: &PgPool, session_id: Uuid) -> anyhow::Result<Vec<TelemetryEvent>> {
    let rows: Vec<(i64, DateTime<Utc>, Json<TelemetryData>)> = sqlx::query_as(
        "SELECT seq, occurred_at, data FROM session_events
         WHERE session_id = $1 AND stream_kind = 'telemetry' ORDER BY seq",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(seq, ts, Json(data))| TelemetryEvent {
            seq: seq as u64,
            ts,
            data,
        })
        .collect())
}

async fn store_prints(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    s: &SessionRow,
    assessment_id: Uuid,
    version: i32,
    own: &suite::Prints,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO integrity_prints (session_id, org_id, assessment_id, assessment_version, finished_at,
             code_version, code_prints, timing_version, timing_prints, files)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (session_id) DO UPDATE SET code_version = EXCLUDED.code_version,
             code_prints = EXCLUDED.code_prints, timing_version = EXCLUDED.timing_version,
             timing_prints = EXCLUDED.timing_prints, files = EXCLUDED.files",
    )
    .bind(session_id)
    .bind(s.org_id)
    .bind(assessment_id)
    .bind(version)
    .bind(s.finished_at.unwrap_or_else(Utc::now))
    .bind(similarity::VERSION)
    .bind(Json(&own.code))
    .bind(clarity_integrity::keystroke::VERSION)
    .bind(Json(&own.timing))
    .bind(Json(&own.files))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn load_cohort(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    org_id: Uuid,
    assessment_id: Uuid,
    version: i32,
) -> anyhow::Result<suite::Cohort> {
    let code: Vec<(Uuid, Json<similarity::Fingerprints>)> = sqlx::query_as(
        "SELECT session_id, code_prints FROM integrity_prints
         WHERE org_id = $1 AND assessment_id = $2 AND assessment_version = $3 AND session_id <> $4
           AND code_version = $5
         ORDER BY finished_at DESC LIMIT $6",
    )
    .bind(org_id)
    .bind(assessment_id)
    .bind(version)
    .bind(session_id)
    .bind(similarity::VERSION)
    .bind(COHORT_LIMIT)
    .fetch_all(&mut **tx)
    .await?;
    let timing: Vec<(Uuid, Json<Vec<clarity_integrity::keystroke::TimingGram>>)> = sqlx::query_as(
        "SELECT session_id, timing_prints FROM integrity_prints
         WHERE org_id = $1 AND session_id <> $2 AND timing_version = $3
           AND jsonb_array_length(timing_prints) > 0
         ORDER BY finished_at DESC LIMIT $4",
    )
    .bind(org_id)
    .bind(session_id)
    .bind(clarity_integrity::keystroke::VERSION)
    .bind(COHORT_LIMIT)
    .fetch_all(&mut **tx)
    .await?;
    let mut cohort = suite::Cohort {
        code: code
            .into_iter()
            .map(|(id, Json(f))| (id.to_string(), f))
            .collect(),
        timing: timing
            .into_iter()
            .map(|(id, Json(t))| (id.to_string(), t))
            .collect(),
    };
    extend_across_organizations(tx, &mut cohort, session_id, org_id, assessment_id, version)
        .await?;
    Ok(cohort)
}

/// How a session of another organization is named in a finding: an opaque, stable reference
/// (neither its id, nor its organization, nor its candidate).
pub fn other_org_reference(session_id: Uuid) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("clarity cross-org reference {session_id}").as_bytes());
    format!("other-org:{}", &hex::encode(digest)[..12])
}

/// When the organization opted in to comparison across organizations and the assessment is a
/// built-in one (the same task everywhere), the prints of other opted-in organizations' sessions
/// of the same assessment version join the cohort under [`other_org_reference`]s.
async fn extend_across_organizations(
    tx: &mut Transaction<'_, Postgres>,
    cohort: &mut suite::Cohort,
    session_id: Uuid,
    org_id: Uuid,
    assessment_id: Uuid,
    version: i32,
) -> anyhow::Result<()> {
    let opted_in: bool =
        sqlx::query_scalar("SELECT cross_org_comparison FROM organizations WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or(false);
    let builtin = clarity_domain::catalogue::builtin()
        .iter()
        .any(|e| e.id == assessment_id);
    if !opted_in || !builtin {
        return Ok(());
    }
    type Row = (
        Uuid,
        Json<similarity::Fingerprints>,
        String,
        Json<Vec<clarity_integrity::keystroke::TimingGram>>,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.session_id, p.code_prints, p.code_version, p.timing_prints, p.timing_version
         FROM integrity_prints p JOIN organizations o ON o.id = p.org_id
         WHERE o.cross_org_comparison AND p.org_id <> $1 AND p.session_id <> $2
           AND p.assessment_id = $3 AND p.assessment_version = $4
         ORDER BY p.finished_at DESC LIMIT $5",
    )
    .bind(org_id)
    .bind(session_id)
    .bind(assessment_id)
    .bind(version)
    .bind(COHORT_LIMIT)
    .fetch_all(&mut **tx)
    .await?;
    for (id, Json(code), code_version, Json(timing), timing_version) in rows {
        let reference = other_org_reference(id);
        if code_version == similarity::VERSION {
            cohort.code.push((reference.clone(), code));
        }
        if timing_version == clarity_integrity::keystroke::VERSION && !timing.is_empty() {
            cohort.timing.push((reference, timing));
        }
    }
    Ok(())
}

/// The face-model calibrations the organization registered (`POST /v1/face-models`); the
/// built-in ones are added by the detector.
async fn face_calibrations(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org_id: Uuid,
) -> anyhow::Result<Vec<clarity_integrity::face::Calibration>> {
    type Row = (String, String, f64, f64, f64, i32, i32);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT model_id, model_version, threshold, false_non_match_rate, false_match_rate,
                genuine_pairs, impostor_pairs
         FROM face_models WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| clarity_integrity::face::Calibration {
            model_id: r.0,
            model_version: r.1,
            threshold: r.2,
            false_non_match_rate: r.3,
            false_match_rate: r.4,
            genuine_pairs: r.5 as usize,
            impostor_pairs: r.6 as usize,
            source: "registered".into(),
        })
        .collect())
}

/// The calibrated similarity threshold of a built-in task (see `docs/integrity-eval.md`); custom
/// assessments use the most conservative built-in value.
pub fn similarity_threshold_for(assessment_id: Uuid) -> f64 {
    clarity_integrity::similarity::task_threshold(assessment_id)
}

/// Enqueues a re-run of the current suite for every finished session of an organization
/// (optionally one assessment) not yet analysed with it. Returns how many were enqueued.
pub async fn enqueue_rerun(
    pool: &PgPool,
    org_id: Option<Uuid>,
    assessment_id: Option<Uuid>,
    suite_version: &str,
) -> anyhow::Result<u64> {
    let n = sqlx::query(
        "INSERT INTO integrity_jobs (session_id, trigger, org_id)
         SELECT s.session_id, 'rerun:' || $3, s.org_id FROM sessions s
         WHERE s.status IN ('submitted', 'expired')
           AND ($1::uuid IS NULL OR s.org_id = $1) AND ($2::uuid IS NULL OR s.assessment_id = $2)
           AND NOT EXISTS (SELECT 1 FROM integrity_analyses a
                           WHERE a.session_id = s.session_id AND a.suite_version = $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(org_id)
    .bind(assessment_id)
    .bind(suite_version)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n)
}
