//! The projections' SQL, fed directly: records built as the relay and the API put them on the
//! topics are applied to a projection inside a transaction against a fresh, migrated PostgreSQL
//! database (no Kafka), and the rows are checked — including that applying the same records again
//! changes nothing, which is what makes a re-delivered batch harmless.

#[path = "apply/support.rs"]
mod support;

use clarity_domain::assessment::{AssessmentEvent, Format};
use clarity_domain::audit::key_from_seed_hex;
use clarity_domain::session::{
    AssessmentRef, Candidate, ConsentScopes, DecisionOutcome, SessionEvent,
};
use clarity_domain::telemetry::{EditOrigin, TelemetryData};
use clarity_projections::audit_chain::AuditConfig;
use clarity_projections::replay::{seek, ReplayConfig};
use clarity_projections::replay_engine::KeyframePolicy;
use clarity_projections::{leaderboard, report, Projection, ProjectionConfig, Record};
use uuid::Uuid;

use support::{assessment_records, at, Db, SessionStream, TestResult};

/// An Ed25519 seed for these tests only.
const TEST_KEY: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

fn signing() -> ProjectionConfig {
    ProjectionConfig {
        audit: AuditConfig {
            signing_key: Some(key_from_seed_hex(TEST_KEY).expect("a valid seed")),
        },
        ..ProjectionConfig::default()
    }
}

/// The built-in REST API assessment as version 1 of a new assessment.
fn published() -> (
    Uuid,
    clarity_domain::assessment::AssessmentSpec,
    Vec<Record>,
) {
    let spec = clarity_domain::catalogue::builtin()
        .into_iter()
        .next()
        .expect("a built-in assessment")
        .spec;
    let id = Uuid::new_v4();
    let records = assessment_records(
        id,
        &[
            (
                AssessmentEvent::AssessmentDrafted {
                    assessment_id: id,
                    org_id: None,
                    spec: spec.clone(),
                    at: at(0),
                },
                at(0),
            ),
            (
                AssessmentEvent::AssessmentVersionPublished {
                    version: 1,
                    spec: spec.clone(),
                    spec_digest: "d1".into(),
                    at: at(1),
                },
                at(1),
            ),
        ],
    );
    (id, spec, records)
}

/// Invited, consented and started.
fn started(s: &mut SessionStream, assessment: Uuid) -> Vec<Record> {
    vec![
        s.event(
            SessionEvent::CandidateInvited {
                session_id: s.session,
                org_id: s.org,
                candidate: Candidate {
                    name: "Ada Lovelace".into(),
                    email: "ada@example.com".into(),
                    external_ref: None,
                },
                assessment: AssessmentRef {
                    assessment_id: assessment,
                    version: 1,
                    title: "REST API Design & Implementation".into(),
                    format: Format::TakeHome,
                    time_limit_minutes: 120,
                    spec_digest: "d1".into(),
                },
                invite_expires_at: at(86_400),
                invited_by: Uuid::from_u128(1),
                at: at(10),
            },
            at(10),
        ),
        s.event(
            SessionEvent::ConsentRecorded {
                notice_sha256: None,
                notice_version: "2026-01".into(),
                scopes: ConsentScopes::default(),
                at: at(20),
            },
            at(20),
        ),
        s.event(
            SessionEvent::SessionStarted {
                at: at(30),
                deadline: at(30 + 7200),
            },
            at(30),
        ),
    ]
}

/// Some work: a file, typing, a paste, a tab-away and a test run.
fn work(s: &mut SessionStream) -> Vec<Record> {
    let edit = |position, inserted: &str, origin| TelemetryData::Edit {
        file: "src/main.rs".into(),
        position,
        deleted: 0,
        inserted: inserted.into(),
        origin,
    };
    vec![
        s.telemetry(
            TelemetryData::FileCreated {
                file: "src/main.rs".into(),
                content: "fn main() {}\n".into(),
            },
            at(31),
        ),
        s.telemetry(edit(0, "// bookings\n", EditOrigin::Typed), at(40)),
        s.telemetry(edit(0, "use std::io;\n", EditOrigin::Paste), at(50)),
        s.telemetry(TelemetryData::FocusLost {}, at(60)),
        s.telemetry(TelemetryData::FocusRegained {}, at(75)),
        s.telemetry(
            TelemetryData::CodeRun {
                command: "cargo test".into(),
                exit_code: 0,
                tests_passed: 3,
                tests_failed: 0,
                duration_ms: 1200,
            },
            at(90),
        ),
    ]
}

fn submitted(s: &mut SessionStream) -> Record {
    s.event(
        SessionEvent::SessionSubmitted {
            through_seq: None,
            files_digest: "f1".into(),
            file_count: 1,
            time_used_seconds: 600,
            at: at(630),
        },
        at(630),
    )
}

#[tokio::test]
async fn a_session_s_lifecycle_and_log_are_projected_once_whatever_the_redeliveries() -> TestResult
{
    // Arrange
    let db = Db::fresh().await?;
    let mut s = SessionStream::new(Uuid::new_v4());
    let mut records = started(&mut s, Uuid::new_v4());
    records.extend(work(&mut s));
    records.push(submitted(&mut s));
    let config = signing();

    // Act: the whole stream, then a re-delivery of all of it in another batch.
    db.apply(Projection::Sessions, &config, &records).await?;
    let first: Vec<Vec<String>> = {
        let mut all = Vec::new();
        for table in Projection::Sessions.tables() {
            all.push(db.rows(table).await?);
        }
        all
    };
    db.apply(Projection::Sessions, &config, &records).await?;

    // Assert: the session's row, its log and counts, the queued analysis, the chain.
    let (status, telemetry, lifecycle, pastes, focus_losses, code_runs, last_seq): (
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT status, telemetry_events, lifecycle_events, pastes, focus_losses, code_runs, last_seq
         FROM sessions WHERE session_id = $1",
    )
    .bind(s.session)
    .fetch_one(&db.pool)
    .await?;
    assert_eq!(
        (
            status.as_str(),
            telemetry,
            lifecycle,
            pastes,
            focus_losses,
            code_runs,
            last_seq
        ),
        ("submitted", 6, 4, 1, 1, 1, 6)
    );
    let log: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT stream_kind, seq, event_type FROM session_events WHERE session_id = $1 ORDER BY kafka_offset",
    )
    .bind(s.session)
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(log.len(), 10, "{log:?}");
    assert_eq!(log[3], ("telemetry".into(), 1, "file_created".into()));
    assert_eq!(log[9], ("lifecycle".into(), 4, "SessionSubmitted".into()));
    let jobs: Vec<String> =
        sqlx::query_scalar("SELECT trigger FROM integrity_jobs WHERE session_id = $1")
            .bind(s.session)
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(jobs, ["finished"]);
    let chained: i64 =
        sqlx::query_scalar("SELECT count FROM audit_chain_heads WHERE session_id = $1")
            .bind(s.session)
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(chained, 10);
    let checkpoints: Vec<(i64, String)> =
        sqlx::query_as("SELECT count, reason FROM audit_checkpoints WHERE session_id = $1")
            .bind(s.session)
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(checkpoints, [(10, "submitted".to_string())]);
    for (table, before) in Projection::Sessions.tables().iter().zip(&first) {
        assert_eq!(
            &db.rows(table).await?,
            before,
            "{table} changed on re-delivery"
        );
    }
    db.drop().await
}

#[tokio::test]
async fn without_a_signing_key_the_chain_is_kept_and_nothing_is_signed() -> TestResult {
    // Arrange
    let db = Db::fresh().await?;
    let mut s = SessionStream::new(Uuid::new_v4());
    let mut records = started(&mut s, Uuid::new_v4());
    records.push(submitted(&mut s));

    // Act
    db.apply(Projection::Sessions, &ProjectionConfig::default(), &records)
        .await?;

    // Assert
    let chained: i64 =
        sqlx::query_scalar("SELECT count FROM audit_chain_heads WHERE session_id = $1")
            .bind(s.session)
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(chained, 4);
    assert!(db.rows("audit_checkpoints").await?.is_empty());
    assert!(matches!(
        clarity_projections::audit_trail::export(&db.pool, s.session).await,
        Err(clarity_projections::audit_trail::ExportError::NoSignedCheckpoint(id)) if id == s.session
    ));
    db.drop().await
}

#[tokio::test]
async fn the_replay_keeps_keyframes_and_markers_and_seeks_to_any_position() -> TestResult {
    // Arrange: a keyframe every two events.
    let db = Db::fresh().await?;
    let config = ProjectionConfig {
        replay: ReplayConfig {
            keyframes: KeyframePolicy {
                every_events: 2,
                every_ms: 0,
            },
        },
        ..ProjectionConfig::default()
    };
    let mut s = SessionStream::new(Uuid::new_v4());
    let mut records = started(&mut s, Uuid::new_v4());
    records.extend(work(&mut s));
    records.push(submitted(&mut s));

    // Act: both projections of the topic (a seek reads the replay's keyframes and the sessions
    // projection's log), the replay one record per batch, as a slow consumer would.
    db.apply(Projection::Sessions, &config, &records).await?;
    for record in &records {
        db.apply(Projection::Replay, &config, std::slice::from_ref(record))
            .await?;
    }

    // Assert: the head, the keyframes, the markers.
    let head = seek::head(&db.pool, s.org, s.session)
        .await?
        .expect("a replay");
    assert_eq!(
        (head.last_seq, head.last_at_ms, head.anomalies),
        (6, 60_000, 0)
    );
    assert!(
        seek::head(&db.pool, Uuid::new_v4(), s.session)
            .await?
            .is_none(),
        "another org"
    );
    let keyframes: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM replay_keyframes WHERE session_id = $1 ORDER BY seq")
            .bind(s.session)
            .fetch_all(&db.pool)
            .await?;
    assert_eq!(keyframes, [0, 2, 4, 6]);
    let markers = seek::first_markers(&db.pool, s.session, 100).await?;
    let kinds: Vec<(&str, i64)> = markers.iter().map(|m| (m.kind.as_str(), m.seq)).collect();
    assert_eq!(
        kinds,
        [
            ("paste", 3),
            ("focus_away", 4),
            ("code_run", 6),
            ("submission", 6)
        ]
    );
    assert_eq!(markers[1].duration_ms, Some(15_000));

    // ... and a seek by time lands on the last event at or before it, with the workspace then.
    let seq = seek::seq_at_ms(&db.pool, s.session, &head, 20_500, &config.replay.keyframes).await?;
    assert_eq!(seq, 3, "the paste happened 20 s after the start");
    let (workspace, event) = seek::workspace_at(&db.pool, s.session, head.started_at, seq)
        .await?
        .expect("a keyframe");
    assert_eq!(
        workspace.files["src/main.rs"],
        "use std::io;\n// bookings\nfn main() {}\n"
    );
    assert_eq!(event.map(|e| (e.seq, e.at_ms)), Some((3, 20_000)));
    let page = seek::events(&db.pool, s.session, head.started_at, 5, 10).await?;
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
    db.drop().await
}

#[tokio::test]
async fn reviews_scores_and_decisions_make_the_leaderboard_and_the_report() -> TestResult {
    // Arrange: a published assessment and a submitted session of it.
    let db = Db::fresh().await?;
    let config = ProjectionConfig::default();
    let (assessment, spec, catalogue) = published();
    db.apply(Projection::Catalogue, &config, &catalogue).await?;
    let mut s = SessionStream::new(Uuid::new_v4());
    let mut records = started(&mut s, assessment);
    records.push(submitted(&mut s));
    db.apply(Projection::Sessions, &config, &records).await?;
    let (reviewer, admin) = (Uuid::new_v4(), Uuid::new_v4());

    // Act: a reviewer scores every criterion at its lowest level, amends them all to the top
    // level, and completes the review; then a decision.
    let mut review = vec![s.event(
        SessionEvent::ReviewersAssigned {
            reviewers: vec![reviewer],
            assigned_by: admin,
            at: at(700),
        },
        at(700),
    )];
    for (i, criterion) in spec.rubric.criteria.iter().enumerate() {
        let first = Uuid::new_v4();
        let lowest = criterion.levels.first().expect("levels").score;
        let highest = criterion.levels.last().expect("levels").score;
        for (score_id, score, supersedes) in [
            (first, lowest, None),
            (Uuid::new_v4(), highest, Some(first)),
        ] {
            review.push(s.event(
                SessionEvent::CriterionScored {
                    score_id,
                    reviewer,
                    criterion: criterion.key.clone(),
                    score,
                    justification: format!("criterion {i}"),
                    supersedes,
                    at: at(710),
                },
                at(710),
            ));
        }
    }
    review.push(s.event(
        SessionEvent::ReviewCompleted {
            reviewer,
            at: at(800),
        },
        at(800),
    ));
    db.apply(Projection::Sessions, &config, &review).await?;
    let scored = db.rows("session_scores").await?;
    let decision = s.event(
        SessionEvent::DecisionRecorded {
            decision_id: Uuid::new_v4(),
            outcome: DecisionOutcome::Advance,
            rationale: "strong".into(),
            decided_by: admin,
            report_hash: "h".into(),
            supersedes: None,
            at: at(900),
            chain_seal: None,
        },
        at(900),
    );
    db.apply(Projection::Sessions, &config, &[decision]).await?;

    // Assert: the review's rows, only the amended scores current.
    let current: Vec<(i16, bool)> = sqlx::query_as(
        "SELECT score, current FROM review_scores WHERE session_id = $1 ORDER BY scored_at, event_sequence",
    )
    .bind(s.session)
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(current.len(), 2 * spec.rubric.criteria.len());
    assert_eq!(
        current.iter().filter(|(_, c)| *c).count(),
        spec.rubric.criteria.len()
    );
    let completed: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT completed_at FROM review_reviewers WHERE session_id = $1 AND reviewer = $2",
    )
    .bind(s.session)
    .bind(reviewer)
    .fetch_one(&db.pool)
    .await?;
    assert_eq!(completed, Some(at(800)));
    let (score, reviews): (f64, i32) =
        sqlx::query_as("SELECT score, reviews FROM session_scores WHERE session_id = $1")
            .bind(s.session)
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(
        (score, reviews),
        (100.0, 1),
        "every criterion at its top level"
    );
    assert_eq!(
        db.rows("session_scores").await?,
        scored,
        "a decision does not rescore"
    );
    let decided: (String, bool) =
        sqlx::query_as("SELECT outcome, current FROM decisions WHERE session_id = $1")
            .bind(s.session)
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(decided, ("advance".into(), true));

    // ... the leaderboard, with and without the session withheld (blind review) ...
    let cohort = leaderboard::Cohort {
        org_id: s.org,
        assessment_id: Some(assessment),
        version: 1,
        cleared_only: false,
        finished_from: None,
        finished_to: None,
    };
    let board = leaderboard::top(&db.pool, &cohort, 10, &[]).await?;
    assert_eq!(board.cohort_size, 1);
    assert_eq!(
        board
            .rows
            .iter()
            .map(|r| (r.session_id, r.rank, r.score))
            .collect::<Vec<_>>(),
        [(s.session, 1, 100.0)]
    );
    let blind = leaderboard::top(&db.pool, &cohort, 10, &[s.session]).await?;
    assert_eq!(
        (blind.cohort_size, blind.rows.len(), blind.withheld),
        (0, 0, 1)
    );

    // ... and the report.
    let built = report::build(&db.pool, s.org, s.session, &[])
        .await?
        .expect("the organization's session");
    assert_eq!(built.status.as_deref(), Some("submitted"));
    assert_eq!(built.scores.aggregate, Some(100.0));
    assert_eq!(built.scores.criteria.len(), spec.rubric.criteria.len());
    assert!(built
        .scores
        .criteria
        .iter()
        .all(|c| c.completed_reviews.len() == 1 && c.mean.is_some()));
    assert_eq!(
        built.cohort.as_ref().map(|c| (c.size, c.rank)),
        Some((1, 1))
    );
    assert_eq!(
        built.decision.as_ref().map(|d| d.outcome.as_str()),
        Some("advance")
    );
    assert!(report::build(&db.pool, Uuid::new_v4(), s.session, &[])
        .await?
        .is_none());
    db.drop().await
}

#[tokio::test]
async fn the_catalogue_keeps_each_assessment_and_its_versions_once() -> TestResult {
    // Arrange
    let db = Db::fresh().await?;
    let config = ProjectionConfig::default();
    let (assessment, spec, records) = published();

    // Act: applied, then re-delivered.
    db.apply(Projection::Catalogue, &config, &records).await?;
    let before = (
        db.rows("catalogue_assessments").await?,
        db.rows("catalogue_versions").await?,
    );
    db.apply(Projection::Catalogue, &config, &records).await?;

    // Assert
    let (title, latest, has_draft, last_sequence): (String, Option<i32>, bool, i64) =
        sqlx::query_as(
            "SELECT title, latest_version, has_draft, last_sequence FROM catalogue_assessments
             WHERE assessment_id = $1",
        )
        .bind(assessment)
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(
        (title, latest, has_draft, last_sequence),
        (spec.title.clone(), Some(1), false, 2)
    );
    let versions: Vec<(i32, String, i32)> = sqlx::query_as(
        "SELECT version, spec_digest, time_limit_minutes FROM catalogue_versions WHERE assessment_id = $1",
    )
    .bind(assessment)
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(
        versions,
        [(1, "d1".to_string(), spec.time_limit_minutes as i32)]
    );
    assert_eq!(
        (
            db.rows("catalogue_assessments").await?,
            db.rows("catalogue_versions").await?
        ),
        before,
        "nothing changed on re-delivery"
    );
    db.drop().await
}

#[tokio::test]
async fn runs_grades_and_the_runners_queue_are_projected_once_and_an_expiry_queues_grading(
) -> TestResult {
    use clarity_domain::session::{RunEnding, RunResult, RunTest};
    // Arrange: a run requested and completed, then the deadline passes, then the grade.
    let db = Db::fresh().await?;
    let mut s = SessionStream::new(Uuid::new_v4());
    let mut records = started(&mut s, Uuid::new_v4());
    records.extend(work(&mut s));
    let run_id = Uuid::new_v4();
    let result = |passed: bool| RunResult {
        ending: RunEnding::Exited {
            code: if passed { 0 } else { 1 },
        },
        tests: vec![RunTest {
            key: Some("k".into()),
            name: "a test".into(),
            passed,
            weight: Some(2.0),
            message: None,
            duration_ms: Some(5),
        }],
        results_error: None,
        duration_ms: 800,
        cpu_ms: Some(600),
        peak_memory_bytes: Some(1 << 20),
        memory_limit_hit: false,
        output: "ok".into(),
        output_bytes: 2,
        output_sha256: "0".repeat(64),
        output_truncated: false,
        toolchains: Default::default(),
        runner: "r".into(),
    };
    records.push(s.event(
        SessionEvent::RunRequested {
            run_id,
            through_seq: 6,
            at: at(100),
        },
        at(100),
    ));
    records.push(s.event(
        SessionEvent::RunCompleted {
            run_id,
            result: Box::new(result(false)),
            at: at(103),
        },
        at(103),
    ));
    records.push(s.event(
        SessionEvent::SessionExpired {
            deadline: at(7230),
            time_used_seconds: 7200,
            at: at(7231),
            through_seq: Some(6),
        },
        at(7231),
    ));
    let grade_run = clarity_projections::sessions::runs::grade_run_id(s.session);
    records.push(s.event(
        SessionEvent::SubmissionGraded {
            run_id: grade_run,
            grader_version: "suite@1".into(),
            through_seq: Some(6),
            score: 2.0,
            max_score: 2.0,
            result: Box::new(result(true)),
            at: at(7240),
        },
        at(7240),
    ));
    let config = signing();

    // Act: twice, as a re-delivery would.
    db.apply(Projection::Sessions, &config, &records).await?;
    db.apply(Projection::Sessions, &config, &records).await?;

    // Assert
    let runs: Vec<(i64, Option<i32>, Option<i32>, Option<String>)> = sqlx::query_as(
        "SELECT through_seq, passed, total, ending FROM session_runs WHERE session_id = $1",
    )
    .bind(s.session)
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(runs, [(6, Some(0), Some(1), Some("exited".into()))]);
    let jobs: Vec<(Uuid, String, Option<i64>)> = sqlx::query_as(
        "SELECT run_id, mode, through_seq FROM run_jobs WHERE session_id = $1 ORDER BY mode DESC",
    )
    .bind(s.session)
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(
        jobs,
        [
            (run_id, "visible".into(), Some(6)),
            (grade_run, "grade".into(), Some(6))
        ]
    );
    let grades: Vec<(String, f64, i32, i32)> = sqlx::query_as(
        "SELECT grader_version, fraction, checks_passed, checks_total FROM session_grades WHERE session_id = $1",
    )
    .bind(s.session)
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(grades, [("suite@1".into(), 1.0, 1, 1)]);
    Ok(())
}
