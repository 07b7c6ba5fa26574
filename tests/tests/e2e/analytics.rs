//! The analytics layer: the `analytics` views over a small hand-computed fixture, Krippendorff's
//! alpha against the published example, and the read-only roles.
//!
//! The fixture is inserted straight into the read-model tables: these tests check the views, not
//! the projections that fill the tables (those have their own tests).

use clarity_tests::TestEnv;
use serde_json::{json, Value};

const ACME: &str = "0a000000-0000-4000-8000-000000000001";
const GLOBEX: &str = "0b000000-0000-4000-8000-000000000001";
const QUEUE: &str = "aa000000-0000-4000-8000-000000000001";
const S1: &str = "51000000-0000-4000-8000-000000000001";
const S2: &str = "52000000-0000-4000-8000-000000000001";
const S3: &str = "53000000-0000-4000-8000-000000000001";
const S4: &str = "54000000-0000-4000-8000-000000000001";
const R1: &str = "e1000000-0000-4000-8000-000000000001";
const R2: &str = "e2000000-0000-4000-8000-000000000001";
const R3: &str = "e3000000-0000-4000-8000-000000000001";
const HANA: &str = "f1000000-0000-4000-8000-000000000001";
const GINA: &str = "f2000000-0000-4000-8000-000000000001";

fn score_id(n: u32) -> String {
    format!("c0000000-0000-4000-8000-{n:012}")
}

fn decision_id(n: u32) -> String {
    format!("d0000000-0000-4000-8000-{n:012}")
}

/// Two organizations; one assessment "Queue Design" v1 whose rubric has `design` (weight 3,
/// levels 1–4) and `tests` (weight 1, levels 0–2).
///
/// * S1 (Acme, submitted 2026-01-05 11:30): R1 and R2 completed. Current scores: R1 design 4,
///   tests 1; R2 design 3 (amending an earlier 2), tests 2. Decided `hold` 24 h after the
///   submission, amended to `advance` 42 h after it.
/// * S2 (Acme, submitted 2026-01-06 10:00): R1 completed (design 2, tests 0); R2 has scored design
///   1 and not completed. Decided `reject` 1.5 h after the submission. Analysed twice (suite@1,
///   then suite@2); suite@2 has two findings, the first dismissed and then confirmed.
/// * S3 (Acme): expired, nothing else.
/// * S4 (Globex, submitted 2026-01-08 10:00): R3 completed (design 4, tests 2); `advance` 24 h
///   later.
async fn fixture(env: &TestEnv) -> anyhow::Result<()> {
    let spec = json!({"rubric": {"criteria": [
        {"key": "design", "name": "Design", "weight": 3, "levels": [
            {"score": 1, "descriptor": "poor"}, {"score": 2, "descriptor": "fair"},
            {"score": 3, "descriptor": "good"}, {"score": 4, "descriptor": "excellent"}]},
        {"key": "tests", "name": "Tests", "weight": 1, "levels": [
            {"score": 0, "descriptor": "none"}, {"score": 1, "descriptor": "some"},
            {"score": 2, "descriptor": "thorough"}]}
    ]}});
    sqlx::query(
        "INSERT INTO catalogue_assessments (assessment_id, org_id, title, kind, difficulty, status,
             latest_version, has_draft, draft, last_sequence, created_at, updated_at)
         VALUES ($1, NULL, 'Queue Design', 'task_queue', 'medium', 'published', 1, false, NULL, 2,
                 '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
    )
    .bind(uuid(QUEUE))
    .execute(&env.pool)
    .await?;
    sqlx::query(
        "INSERT INTO catalogue_versions (assessment_id, version, org_id, title, kind, difficulty,
             best_for, format, time_limit_minutes, spec, spec_digest, published_at)
         VALUES ($1, 1, NULL, 'Queue Design', 'task_queue', 'medium', 'backend', 'take-home', 90,
                 $2, 'digest', '2026-01-01T00:00:00Z')",
    )
    .bind(uuid(QUEUE))
    .bind(&spec)
    .execute(&env.pool)
    .await?;
    let sql = format!(
        r#"
        INSERT INTO organizations (id, name) VALUES ('{ACME}', 'Acme'), ('{GLOBEX}', 'Globex');

        INSERT INTO sessions (session_id, org_id, status, assessment_id, assessment_version,
            assessment_title, candidate_name, candidate_email, candidate_ref, invited_at,
            started_at, deadline, submitted_at, expired_at, time_used_seconds, telemetry_events,
            keystrokes, edits, pastes, focus_losses, code_runs, integrity_tier,
            integrity_suite_version, decision, decided_at)
        VALUES
          ('{S1}', '{ACME}', 'submitted', '{QUEUE}', 1, 'Queue Design', 'Ada', 'ada@x.test', 'ats-1',
           '2026-01-05T09:00:00Z', '2026-01-05T10:00:00Z', '2026-01-05T11:30:00Z',
           '2026-01-05T11:30:00Z', NULL, 5400, 500, 300, 150, 2, 3, 4, 'none', 'suite@1',
           'advance', '2026-01-07T05:30:00Z'),
          ('{S2}', '{ACME}', 'submitted', '{QUEUE}', 1, 'Queue Design', 'Bob', 'bob@x.test', NULL,
           '2026-01-06T08:00:00Z', '2026-01-06T09:00:00Z', '2026-01-06T10:30:00Z',
           '2026-01-06T10:00:00Z', NULL, 3600, 200, 120, 60, 5, 7, 1, 'major_concerns', 'suite@2',
           'reject', '2026-01-06T11:30:00Z'),
          ('{S3}', '{ACME}', 'expired', '{QUEUE}', 1, 'Queue Design', 'Cy', 'cy@x.test', NULL,
           '2026-01-07T08:00:00Z', '2026-01-07T09:00:00Z', '2026-01-07T10:30:00Z',
           NULL, '2026-01-07T10:30:00Z', 5400, 10, 5, 5, 0, 0, 0, NULL, NULL, NULL, NULL),
          ('{S4}', '{GLOBEX}', 'submitted', '{QUEUE}', 1, 'Queue Design', 'Di', 'di@x.test', NULL,
           '2026-01-08T08:00:00Z', '2026-01-08T09:00:00Z', '2026-01-08T10:30:00Z',
           '2026-01-08T10:00:00Z', NULL, 3600, 50, 30, 20, 0, 1, 2, 'none', 'suite@2',
           'advance', '2026-01-09T10:00:00Z');

        INSERT INTO session_grades (session_id, grader_version, org_id, run_id, through_seq, score, max_score,
            fraction, checks_passed, checks_total, result, graded_at)
        VALUES ('{S1}', 'q@1', '{ACME}', gen_random_uuid(), 40, 30, 40, 0.75, 9, 12, '{{}}', '2026-01-05T11:31:00Z'),
               ('{S4}', 'q@1', '{GLOBEX}', gen_random_uuid(), 12, 10, 40, 0.25, 3, 12, '{{}}', '2026-01-08T10:01:00Z');

        INSERT INTO session_runs (run_id, session_id, org_id, through_seq, requested_at, completed_at, passed, total, ending, result)
        VALUES (gen_random_uuid(), '{S1}', '{ACME}', 20, '2026-01-05T10:40:00Z', '2026-01-05T10:40:03Z', 3, 5, 'exited', '{{"duration_ms": 2900}}'),
               (gen_random_uuid(), '{S4}', '{GLOBEX}', 8, '2026-01-08T09:30:00Z', '2026-01-08T09:30:02Z', 1, 5, 'exited', '{{"duration_ms": 1800}}');

        INSERT INTO review_reviewers (session_id, reviewer, org_id, assigned_by, assigned_at, completed_at)
        VALUES ('{S1}', '{R1}', '{ACME}', '{HANA}', '2026-01-05T12:00:00Z', '2026-01-05T15:00:00Z'),
               ('{S1}', '{R2}', '{ACME}', '{HANA}', '2026-01-05T12:00:00Z', '2026-01-05T16:00:00Z'),
               ('{S2}', '{R1}', '{ACME}', '{HANA}', '2026-01-06T11:00:00Z', '2026-01-06T11:20:00Z'),
               ('{S2}', '{R2}', '{ACME}', '{HANA}', '2026-01-06T11:00:00Z', NULL),
               ('{S4}', '{R3}', '{GLOBEX}', '{GINA}', '2026-01-08T10:30:00Z', '2026-01-08T11:00:00Z');

        INSERT INTO review_scores (score_id, session_id, org_id, reviewer, criterion, score,
            justification, supersedes, current, scored_at, event_sequence)
        VALUES ('{c1}', '{S1}', '{ACME}', '{R1}', 'design', 4, 'clean', NULL, true, '2026-01-05T13:00:00Z', 10),
               ('{c2}', '{S1}', '{ACME}', '{R1}', 'tests', 1, 'few', NULL, true, '2026-01-05T13:05:00Z', 11),
               ('{c3}', '{S1}', '{ACME}', '{R2}', 'design', 2, 'hasty', NULL, false, '2026-01-05T13:10:00Z', 12),
               ('{c4}', '{S1}', '{ACME}', '{R2}', 'tests', 2, 'thorough', NULL, true, '2026-01-05T13:15:00Z', 13),
               ('{c5}', '{S1}', '{ACME}', '{R2}', 'design', 3, 'on reflection', '{c3}', true, '2026-01-05T15:30:00Z', 14),
               ('{c6}', '{S2}', '{ACME}', '{R1}', 'design', 2, 'fair', NULL, true, '2026-01-06T11:10:00Z', 10),
               ('{c7}', '{S2}', '{ACME}', '{R1}', 'tests', 0, 'none', NULL, true, '2026-01-06T11:12:00Z', 11),
               ('{c8}', '{S2}', '{ACME}', '{R2}', 'design', 1, 'poor', NULL, true, '2026-01-06T11:15:00Z', 12),
               ('{c9}', '{S4}', '{GLOBEX}', '{R3}', 'design', 4, 'great', NULL, true, '2026-01-08T10:40:00Z', 10),
               ('{c10}', '{S4}', '{GLOBEX}', '{R3}', 'tests', 2, 'great', NULL, true, '2026-01-08T10:45:00Z', 11);

        INSERT INTO decisions (decision_id, session_id, org_id, outcome, rationale, decided_by,
            report_hash, supersedes, current, decided_at, event_sequence)
        VALUES ('{d1}', '{S1}', '{ACME}', 'hold', 'wait for the second round', '{HANA}', repeat('a', 64), NULL, false, '2026-01-06T11:30:00Z', 20),
               ('{d2}', '{S1}', '{ACME}', 'advance', 'second round went well', '{HANA}', repeat('b', 64), '{d1}', true, '2026-01-07T05:30:00Z', 21),
               ('{d3}', '{S2}', '{ACME}', 'reject', 'confirmed paste', '{HANA}', repeat('c', 64), NULL, true, '2026-01-06T11:30:00Z', 20),
               ('{d4}', '{S4}', '{GLOBEX}', 'advance', 'strong', '{GINA}', repeat('d', 64), NULL, true, '2026-01-09T10:00:00Z', 20);

        INSERT INTO integrity_analyses (session_id, org_id, suite_version, trigger, tier, reasons,
            analysis, finding_count, analysed_at, event_sequence)
        VALUES ('{S1}', '{ACME}', 'suite@1', 'finished', 'none', '[]', '{{}}', 0, '2026-01-05T11:35:00Z', 5),
               ('{S2}', '{ACME}', 'suite@1', 'finished', 'review_suggested', '[]', '{{}}', 1, '2026-01-06T10:05:00Z', 5),
               ('{S2}', '{ACME}', 'suite@2', 'rerun:suite@2', 'major_concerns', '[]', '{{}}', 2, '2026-01-06T10:30:00Z', 8);

        INSERT INTO integrity_findings (session_id, suite_version, ordinal, org_id, detector,
            detector_version, rule, level, measured, threshold, summary, replay_seq, at_ms,
            related_session, evidence)
        VALUES ('{S2}', 'suite@1', 0, '{ACME}', 'provenance', '1', 'large_paste', 'review', 400, 200, 'old suite', 42, 60000, NULL, '[]'),
               ('{S2}', 'suite@2', 0, '{ACME}', 'provenance', '1', 'large_paste', 'major', 900, 200, 'Pasted 900 characters', 42, 60000, NULL, '[]'),
               ('{S2}', 'suite@2', 1, '{ACME}', 'similarity', '1', 'code_overlap', 'review', 0.91, 0.8, 'Matches another session', NULL, NULL, '{S1}', '[]');

        INSERT INTO finding_resolutions (session_id, event_sequence, org_id, suite_version, ordinal,
            resolution, reason, resolved_by, resolved_at)
        VALUES ('{S2}', 6, '{ACME}', 'suite@1', 0, 'dismissed', 'superseded suite', '{R1}', '2026-01-06T10:20:00Z'),
               ('{S2}', 9, '{ACME}', 'suite@2', 0, 'dismissed', 'looked typed', '{R1}', '2026-01-06T11:00:00Z'),
               ('{S2}', 10, '{ACME}', 'suite@2', 0, 'confirmed', 'matches the replay', '{R2}', '2026-01-06T11:05:00Z');
        "#,
        c1 = score_id(1),
        c2 = score_id(2),
        c3 = score_id(3),
        c4 = score_id(4),
        c5 = score_id(5),
        c6 = score_id(6),
        c7 = score_id(7),
        c8 = score_id(8),
        c9 = score_id(9),
        c10 = score_id(10),
        d1 = decision_id(1),
        d2 = decision_id(2),
        d3 = decision_id(3),
        d4 = decision_id(4),
    );
    sqlx::raw_sql(&sql).execute(&env.pool).await?;
    Ok(())
}

fn uuid(s: &str) -> uuid::Uuid {
    s.parse().unwrap()
}

/// Every row of `relation` as JSON (all columns, so a renamed or missing column fails too).
async fn rows(env: &TestEnv, relation: &str, order_by: &str) -> anyhow::Result<Vec<Value>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t) FROM {relation} AS t ORDER BY {order_by}"
    ))
    .fetch_all(&env.pool)
    .await?)
}

fn assert_rows(actual: &[Value], expected: &[Value]) {
    assert_eq!(actual.len(), expected.len(), "rows: {actual:#?}");
    for (a, e) in actual.iter().zip(expected) {
        assert_eq!(a, e, "\nactual:   {a}\nexpected: {e}");
    }
}

/// Runs `setup` as the connecting superuser, then `SET LOCAL ROLE role` and `sql`, in one
/// transaction that is rolled back. Ok(rows as JSON) for a query, Err(SQLSTATE) when refused.
async fn as_role(
    env: &TestEnv,
    setup: &[String],
    role: &str,
    sql: &str,
    query: bool,
) -> anyhow::Result<Result<Vec<Value>, String>> {
    let mut tx = env.pool.begin().await?;
    for s in setup {
        sqlx::query(s).execute(&mut *tx).await?;
    }
    sqlx::query(&format!("SET LOCAL ROLE {role}"))
        .execute(&mut *tx)
        .await?;
    let result = if query {
        sqlx::query_scalar::<_, Value>(&format!("SELECT to_jsonb(t) FROM ({sql}) AS t"))
            .fetch_all(&mut *tx)
            .await
    } else {
        sqlx::query(sql).execute(&mut *tx).await.map(|_| Vec::new())
    };
    tx.rollback().await?;
    Ok(result.map_err(|e| {
        e.as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned()))
            .unwrap_or_else(|| e.to_string())
    }))
}

const DENIED: &str = "42501";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_facts_has_one_row_per_session_with_the_weighted_score_of_completed_reviews_and_the_current_decision(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    fixture(&env).await?;

    // Act
    let facts = rows(&env, "analytics.session_facts", "session_id").await?;

    // Assert
    // S1: design mean (4 + 3) / 2 = 3.5 → (3.5 − 1) / 3 = 0.8333…; tests (1 + 2) / 2 = 1.5 → 1.5 / 2
    //     = 0.75; weighted (3 × 0.8333… + 1 × 0.75) / 4 = 3.25 / 4 = 0.8125 → 81.25. The amended
    //     design 2 of R2 does not count.
    // S2: only R1 completed: design (2 − 1) / 3 = 1/3, tests 0 / 2 = 0; (3 × 1/3 + 0) / 4 = 0.25 → 25.
    //     R2's design 1 does not count: R2 has not completed.
    // S3: no completed review → NULL. S4: design 4 → 1, tests 2 → 1 → 100.
    assert_rows(
        &facts,
        &[
            json!({"session_id": S1, "org_id": ACME, "assessment_id": QUEUE, "assessment_version": 1,
                "assessment_title": "Queue Design", "status": "submitted", "candidate_ref": "ats-1",
                "invited_at": "2026-01-05T09:00:00+00:00", "started_at": "2026-01-05T10:00:00+00:00",
                "submitted_at": "2026-01-05T11:30:00+00:00", "expired_at": null,
                "finished_at": "2026-01-05T11:30:00+00:00", "deadline": "2026-01-05T11:30:00+00:00",
                "time_used_seconds": 5400, "telemetry_events": 500, "keystrokes": 300, "edits": 150,
                "pastes": 2, "focus_losses": 3, "code_runs": 4, "integrity_tier": "none",
                "integrity_suite_version": "suite@1", "reviewers_assigned": 2, "reviews_completed": 2,
                "aggregate_score": 81.25, "decision": "advance", "decided_at": "2026-01-07T05:30:00+00:00",
                "decision_id": decision_id(2), "decisions_recorded": 2, "extra_time_minutes": 0, "consent_withdrawn": false, "through_seq": null}),
            json!({"session_id": S2, "org_id": ACME, "assessment_id": QUEUE, "assessment_version": 1,
                "assessment_title": "Queue Design", "status": "submitted", "candidate_ref": null,
                "invited_at": "2026-01-06T08:00:00+00:00", "started_at": "2026-01-06T09:00:00+00:00",
                "submitted_at": "2026-01-06T10:00:00+00:00", "expired_at": null,
                "finished_at": "2026-01-06T10:00:00+00:00", "deadline": "2026-01-06T10:30:00+00:00",
                "time_used_seconds": 3600, "telemetry_events": 200, "keystrokes": 120, "edits": 60,
                "pastes": 5, "focus_losses": 7, "code_runs": 1, "integrity_tier": "major_concerns",
                "integrity_suite_version": "suite@2", "reviewers_assigned": 2, "reviews_completed": 1,
                "aggregate_score": 25.0, "decision": "reject", "decided_at": "2026-01-06T11:30:00+00:00",
                "decision_id": decision_id(3), "decisions_recorded": 1, "extra_time_minutes": 0, "consent_withdrawn": false, "through_seq": null}),
            json!({"session_id": S3, "org_id": ACME, "assessment_id": QUEUE, "assessment_version": 1,
                "assessment_title": "Queue Design", "status": "expired", "candidate_ref": null,
                "invited_at": "2026-01-07T08:00:00+00:00", "started_at": "2026-01-07T09:00:00+00:00",
                "submitted_at": null, "expired_at": "2026-01-07T10:30:00+00:00",
                "finished_at": "2026-01-07T10:30:00+00:00", "deadline": "2026-01-07T10:30:00+00:00",
                "time_used_seconds": 5400, "telemetry_events": 10, "keystrokes": 5, "edits": 5,
                "pastes": 0, "focus_losses": 0, "code_runs": 0, "integrity_tier": null,
                "integrity_suite_version": null, "reviewers_assigned": 0, "reviews_completed": 0,
                "aggregate_score": null, "decision": null, "decided_at": null,
                "decision_id": null, "decisions_recorded": 0, "extra_time_minutes": 0, "consent_withdrawn": false, "through_seq": null}),
            json!({"session_id": S4, "org_id": GLOBEX, "assessment_id": QUEUE, "assessment_version": 1,
                "assessment_title": "Queue Design", "status": "submitted", "candidate_ref": null,
                "invited_at": "2026-01-08T08:00:00+00:00", "started_at": "2026-01-08T09:00:00+00:00",
                "submitted_at": "2026-01-08T10:00:00+00:00", "expired_at": null,
                "finished_at": "2026-01-08T10:00:00+00:00", "deadline": "2026-01-08T10:30:00+00:00",
                "time_used_seconds": 3600, "telemetry_events": 50, "keystrokes": 30, "edits": 20,
                "pastes": 0, "focus_losses": 1, "code_runs": 2, "integrity_tier": "none",
                "integrity_suite_version": "suite@2", "reviewers_assigned": 1, "reviews_completed": 1,
                "aggregate_score": 100.0, "decision": "advance", "decided_at": "2026-01-09T10:00:00+00:00",
                "decision_id": decision_id(4), "decisions_recorded": 1, "extra_time_minutes": 0, "consent_withdrawn": false, "through_seq": null}),
        ],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn criterion_scores_has_the_current_scores_only_normalised_by_each_criterions_levels(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    fixture(&env).await?;

    // Act
    let scores = rows(&env, "analytics.criterion_scores", "score_id").await?;

    // Assert: score c3 (amended by c5) is absent; design normalises (s − 1) / 3, tests s / 2.
    let row = |n: u32,
               session: &str,
               org: &str,
               reviewer: &str,
               criterion: &str,
               score: u32,
               normalised: f64,
               at: &str,
               supersedes: Option<String>,
               completed_at: Option<&str>| {
        let (weight, min, max) = if criterion == "design" {
            (3, 1, 4)
        } else {
            (1, 0, 2)
        };
        json!({"score_id": score_id(n), "session_id": session, "org_id": org,
            "assessment_id": QUEUE, "assessment_version": 1, "reviewer": reviewer,
            "criterion": criterion, "criterion_weight": weight, "score": score,
            "min_score": min, "max_score": max, "score_normalised": normalised, "scored_at": at,
            "amended": supersedes.is_some(), "supersedes": supersedes,
            "reviewer_completed": completed_at.is_some(), "reviewer_completed_at": completed_at})
    };
    let s1_r1 = Some("2026-01-05T15:00:00+00:00");
    let s1_r2 = Some("2026-01-05T16:00:00+00:00");
    let s2_r1 = Some("2026-01-06T11:20:00+00:00");
    let s4_r3 = Some("2026-01-08T11:00:00+00:00");
    #[rustfmt::skip]
    let expected = [
        row(1, S1, ACME, R1, "design", 4, 1.0, "2026-01-05T13:00:00+00:00", None, s1_r1),
        row(2, S1, ACME, R1, "tests", 1, 0.5, "2026-01-05T13:05:00+00:00", None, s1_r1),
        row(4, S1, ACME, R2, "tests", 2, 1.0, "2026-01-05T13:15:00+00:00", None, s1_r2),
        row(5, S1, ACME, R2, "design", 3, 0.666667, "2026-01-05T15:30:00+00:00", Some(score_id(3)), s1_r2),
        row(6, S2, ACME, R1, "design", 2, 0.333333, "2026-01-06T11:10:00+00:00", None, s2_r1),
        row(7, S2, ACME, R1, "tests", 0, 0.0, "2026-01-06T11:12:00+00:00", None, s2_r1),
        row(8, S2, ACME, R2, "design", 1, 0.0, "2026-01-06T11:15:00+00:00", None, None),
        row(9, S4, GLOBEX, R3, "design", 4, 1.0, "2026-01-08T10:40:00+00:00", None, s4_r3),
        row(10, S4, GLOBEX, R3, "tests", 2, 1.0, "2026-01-08T10:45:00+00:00", None, s4_r3),
    ];
    assert_rows(&scores, &expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_come_from_the_latest_analysis_with_their_latest_resolution() -> anyhow::Result<()>
{
    // Arrange
    let env = TestEnv::new().await?;
    fixture(&env).await?;

    // Act
    let findings = rows(&env, "analytics.findings", "session_id, ordinal").await?;

    // Assert: suite@1's finding and its resolution are left out (suite@2 is S2's latest analysis);
    // finding 0 was dismissed, then confirmed: the confirmation counts. S1's analysis found nothing.
    let common = json!({"session_id": S2, "org_id": ACME, "assessment_id": QUEUE,
        "assessment_version": 1, "suite_version": "suite@2", "analysis_trigger": "rerun:suite@2",
        "analysis_tier": "major_concerns", "analysed_at": "2026-01-06T10:30:00+00:00",
        "detector_version": "1"});
    let with = |extra: Value| {
        let mut v = common.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    assert_rows(
        &findings,
        &[
            with(
                json!({"ordinal": 0, "detector": "provenance", "rule": "large_paste",
                "level": "major", "measured": 900, "threshold": 200,
                "summary": "Pasted 900 characters", "replay_seq": 42, "at_ms": 60000,
                "related_session": null, "resolution": "confirmed",
                "resolution_reason": "matches the replay", "resolved_by": R2,
                "resolved_at": "2026-01-06T11:05:00+00:00", "resolutions_recorded": 2}),
            ),
            with(
                json!({"ordinal": 1, "detector": "similarity", "rule": "code_overlap",
                "level": "review", "measured": 0.91, "threshold": 0.8,
                "summary": "Matches another session", "replay_seq": null, "at_ms": null,
                "related_session": S1, "resolution": null, "resolution_reason": null,
                "resolved_by": null, "resolved_at": null, "resolutions_recorded": 0}),
            ),
        ],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_keep_amendments_and_time_to_decision_runs_from_the_finish_to_the_first_and_the_current_decision(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    fixture(&env).await?;

    // Act
    let decisions = rows(&env, "analytics.decisions", "session_id, revision").await?;
    let times = rows(&env, "analytics.time_to_decision", "session_id").await?;

    // Assert
    let decision = |n: u32,
                    session: &str,
                    org: &str,
                    outcome: &str,
                    rationale: &str,
                    by: &str,
                    hash: char,
                    supersedes: Option<String>,
                    current: bool,
                    revision: u32,
                    at: &str| {
        json!({"decision_id": decision_id(n), "session_id": session, "org_id": org,
            "assessment_id": QUEUE, "assessment_version": 1, "outcome": outcome,
            "rationale": rationale, "decided_by": by, "report_hash": hash.to_string().repeat(64),
            "is_amendment": supersedes.is_some(), "supersedes": supersedes, "current": current,
            "revision": revision, "decided_at": at})
    };
    #[rustfmt::skip]
    assert_rows(&decisions, &[
        decision(1, S1, ACME, "hold", "wait for the second round", HANA, 'a', None, false, 1, "2026-01-06T11:30:00+00:00"),
        decision(2, S1, ACME, "advance", "second round went well", HANA, 'b', Some(decision_id(1)), true, 2, "2026-01-07T05:30:00+00:00"),
        decision(3, S2, ACME, "reject", "confirmed paste", HANA, 'c', None, true, 1, "2026-01-06T11:30:00+00:00"),
        decision(4, S4, GLOBEX, "advance", "strong", GINA, 'd', None, true, 1, "2026-01-09T10:00:00+00:00"),
    ]);
    // S1: submitted 01-05 11:30; hold 01-06 11:30 (24 h), amended to advance 01-07 05:30 (42 h).
    // S2: submitted 01-06 10:00; reject 11:30 (1.5 h). S3: no decision, no row.
    // S4: submitted 01-08 10:00; advance 01-09 10:00 (24 h).
    assert_rows(
        &times,
        &[
            json!({"session_id": S1, "org_id": ACME, "assessment_id": QUEUE, "assessment_version": 1,
                "finished_at": "2026-01-05T11:30:00+00:00",
                "first_decided_at": "2026-01-06T11:30:00+00:00", "first_outcome": "hold",
                "current_decided_at": "2026-01-07T05:30:00+00:00", "current_outcome": "advance",
                "time_to_first_decision": "1 day", "time_to_current_decision": "1 day 18:00:00",
                "hours_to_first_decision": 24.0, "hours_to_current_decision": 42.0}),
            json!({"session_id": S2, "org_id": ACME, "assessment_id": QUEUE, "assessment_version": 1,
                "finished_at": "2026-01-06T10:00:00+00:00",
                "first_decided_at": "2026-01-06T11:30:00+00:00", "first_outcome": "reject",
                "current_decided_at": "2026-01-06T11:30:00+00:00", "current_outcome": "reject",
                "time_to_first_decision": "01:30:00", "time_to_current_decision": "01:30:00",
                "hours_to_first_decision": 1.5, "hours_to_current_decision": 1.5}),
            json!({"session_id": S4, "org_id": GLOBEX, "assessment_id": QUEUE, "assessment_version": 1,
                "finished_at": "2026-01-08T10:00:00+00:00",
                "first_decided_at": "2026-01-09T10:00:00+00:00", "first_outcome": "advance",
                "current_decided_at": "2026-01-09T10:00:00+00:00", "current_outcome": "advance",
                "time_to_first_decision": "1 day", "time_to_current_decision": "1 day",
                "hours_to_first_decision": 24.0, "hours_to_current_decision": 24.0}),
        ],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewer_agreement_gives_alpha_per_criterion_and_overall_and_null_when_nothing_is_pairable(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    fixture(&env).await?;

    // Act
    let agreement = rows(
        &env,
        "analytics.reviewer_agreement",
        "org_id, scope DESC, criterion",
    )
    .await?;

    // Assert. Units (current scores; R2's amended design 2 is gone):
    //   S1·design {4, 3}, S2·design {2, 1}, S1·tests {1, 2}, S2·tests {0} (not pairable).
    // design: n = 4; observed Σ = (2·2·25 − 2·49)/1 + (2·2·5 − 2·9)/1 = 2 + 2 = 4;
    //   expected Σ = 2·4·30 − 2·10² = 40; α = 1 − 3·4/40 = 0.7.
    // tests: n = 2; observed 2; expected 2·2·5 − 2·3² = 2; α = 1 − 1·2/2 = 0.
    // overall: n = 6, Σv = 13, Σv² = 35; observed 6; expected 2·6·35 − 2·169 = 82;
    //   α = 1 − 5·6/82 = 26/41 = 0.634146…
    // Globex: one reviewer, nothing pairable → NULL.
    let row = |org: &str,
               scope: &str,
               criterion: Option<&str>,
               units: u32,
               pairable_units: u32,
               pairable_values: u32,
               alpha: Option<f64>| {
        json!({"org_id": org, "assessment_id": QUEUE, "assessment_version": 1, "scope": scope,
            "criterion": criterion, "sessions": if org == ACME { 2 } else { 1 }, "units": units,
            "pairable_units": pairable_units, "pairable_values": pairable_values, "alpha": alpha})
    };
    assert_rows(
        &agreement,
        &[
            row(ACME, "overall", None, 4, 3, 6, Some(0.634146)),
            row(ACME, "criterion", Some("design"), 2, 2, 4, Some(0.7)),
            row(ACME, "criterion", Some("tests"), 2, 1, 2, Some(0.0)),
            row(GLOBEX, "overall", None, 2, 0, 0, None),
            row(GLOBEX, "criterion", Some("design"), 1, 0, 0, None),
            row(GLOBEX, "criterion", Some("tests"), 1, 0, 0, None),
        ],
    );
    Ok(())
}

/// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with missing
/// values: 4 observers (rows) × 12 units (columns), values 1–5, '.' = missing. Interval α = 0.849.
const PUBLISHED: [&str; 4] = [
    "1 2 3 3 2 1 4 1 2 . . .",
    "1 2 3 3 2 2 4 1 2 5 . 3",
    ". 3 3 3 2 3 4 2 2 5 1 .",
    "1 2 3 3 2 4 4 1 2 5 1 .",
];

/// The published example as units: per unit, each observer's value or None.
fn published_units() -> Vec<Vec<Option<i16>>> {
    let observers: Vec<Vec<Option<i16>>> = PUBLISHED
        .iter()
        .map(|row| row.split(' ').map(|v| v.parse().ok()).collect())
        .collect();
    (0..12)
        .map(|u| observers.iter().map(|o| o[u]).collect())
        .collect()
}

/// Inserts one assessment version with a single criterion scored 1–5 and, per unit, a session of
/// `org` scored by the observers (rows go straight into the read models).
async fn score_units(
    env: &TestEnv,
    org: &str,
    assessment: &str,
    units: &[Vec<Option<i16>>],
) -> anyhow::Result<()> {
    let levels: Vec<Value> = (1..=5)
        .map(|s| json!({"score": s, "descriptor": s.to_string()}))
        .collect();
    let spec = json!({"rubric": {"criteria": [
        {"key": "quality", "name": "Quality", "weight": 1, "levels": levels}]}});
    sqlx::query("INSERT INTO organizations (id, name) VALUES ($1, 'Org') ON CONFLICT DO NOTHING")
        .bind(uuid(org))
        .execute(&env.pool)
        .await?;
    sqlx::query(
        "INSERT INTO catalogue_assessments (assessment_id, org_id, title, kind, difficulty, status,
             latest_version, has_draft, last_sequence, created_at, updated_at)
         VALUES ($1, $2, 'Reliability', 'bug_hunt', 'easy', 'published', 1, false, 2, now(), now())",
    )
    .bind(uuid(assessment))
    .bind(uuid(org))
    .execute(&env.pool)
    .await?;
    sqlx::query(
        "INSERT INTO catalogue_versions (assessment_id, version, org_id, title, kind, difficulty,
             best_for, format, time_limit_minutes, spec, spec_digest, published_at)
         VALUES ($1, 1, $2, 'Reliability', 'bug_hunt', 'easy', 'x', 'x', 60, $3, 'd', now())",
    )
    .bind(uuid(assessment))
    .bind(uuid(org))
    .bind(&spec)
    .execute(&env.pool)
    .await?;
    for unit in units {
        let session = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sessions (session_id, org_id, status, assessment_id, assessment_version,
                 submitted_at) VALUES ($1, $2, 'submitted', $3, 1, now())",
        )
        .bind(session)
        .bind(uuid(org))
        .bind(uuid(assessment))
        .execute(&env.pool)
        .await?;
        for (observer, value) in unit.iter().enumerate() {
            let Some(value) = value else { continue };
            sqlx::query(
                "INSERT INTO review_scores (score_id, session_id, org_id, reviewer, criterion,
                     score, justification, supersedes, current, scored_at, event_sequence)
                 VALUES ($1, $2, $3, $4, 'quality', $5, 'j', NULL, true, now(), $6)",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(session)
            .bind(uuid(org))
            .bind(uuid(&format!(
                "e{observer}000000-0000-4000-8000-000000000000"
            )))
            .bind(value)
            .bind(observer as i64)
            .execute(&env.pool)
            .await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn krippendorffs_alpha_matches_the_published_example_and_is_one_for_perfect_agreement(
) -> anyhow::Result<()> {
    // Arrange: the published example as 12 sessions × 1 criterion scored by 4 reviewers, and a
    // second assessment where 2 reviewers agree on 3 sessions with different scores.
    let env = TestEnv::new().await?;
    let published = published_units();
    let (org, reliability, perfect) = (
        "0c000000-0000-4000-8000-000000000001",
        "ab000000-0000-4000-8000-000000000001",
        "ac000000-0000-4000-8000-000000000001",
    );
    score_units(&env, org, reliability, &published).await?;
    let agreeing = [[1, 1], [3, 3], [5, 5]].map(|u| u.map(Some).to_vec());
    score_units(&env, org, perfect, &agreeing).await?;

    // Act
    let by_view: Vec<(String, String, i64, i64, i64, Option<f64>)> = sqlx::query_as(
        "SELECT assessment_id::text, scope, units, pairable_units, pairable_values, alpha::float8
         FROM analytics.reviewer_agreement ORDER BY assessment_id, scope",
    )
    .fetch_all(&env.pool)
    .await?;
    // The aggregate on its own, over the published matrix (one array per unit, NULL = missing).
    let units_literal = published
        .iter()
        .map(|u| {
            let values: Vec<String> = u
                .iter()
                .map(|v| v.map_or("NULL".into(), |v| v.to_string()))
                .collect();
            format!("(ARRAY[{}]::numeric[])", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let direct: Option<f64> = sqlx::query_scalar(&format!(
        "SELECT analytics.krippendorff_alpha_interval(u)::float8 FROM (VALUES {units_literal}) AS t(u)"
    ))
    .fetch_one(&env.pool)
    .await?;
    let undefined: Vec<Option<f64>> = sqlx::query_scalar(
        "SELECT (SELECT analytics.krippendorff_alpha_interval(u)::float8 FROM (VALUES (ARRAY[2, 2]), (ARRAY[2, 2, 2])) AS t(u))
         UNION ALL
         SELECT (SELECT analytics.krippendorff_alpha_interval(u)::float8 FROM (VALUES (ARRAY[1]), (ARRAY[4, NULL])) AS t(u))",
    )
    .fetch_all(&env.pool)
    .await?;

    // Assert: n = 40 pairable values (unit 12 has a single value); observed Σ = 52/3, expected
    // Σ = 4480; α = 1 − 39 · (52/3) / 4480 = 3804/4480 = 0.849107…
    let exact = 3804.0 / 4480.0;
    assert!((direct.unwrap() - exact).abs() < 1e-12, "{direct:?}");
    assert_eq!(
        by_view,
        vec![
            (
                reliability.into(),
                "criterion".into(),
                12,
                11,
                40,
                Some(0.849107)
            ),
            (
                reliability.into(),
                "overall".into(),
                12,
                11,
                40,
                Some(0.849107)
            ),
            (perfect.into(), "criterion".into(), 3, 3, 6, Some(1.0)),
            (perfect.into(), "overall".into(), 3, 3, 6, Some(1.0)),
        ]
    );
    assert_eq!(
        undefined,
        vec![None, None],
        "no variation, and nothing pairable, leave alpha undefined"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analyst_role_reads_the_analytics_views_and_nothing_else_and_writes_nothing(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    fixture(&env).await?;
    let public_tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name, (SELECT column_name FROM information_schema.columns AS k
                               WHERE k.table_schema = c.table_schema AND k.table_name = c.table_name
                                 -- An identity column refuses UPDATE before privileges are checked.
                                 AND k.is_identity = 'NO' AND k.is_generated = 'NEVER'
                               ORDER BY ordinal_position LIMIT 1)
         FROM information_schema.tables AS c
         WHERE c.table_schema = 'public' AND c.table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await?;
    assert!(public_tables.len() > 20, "{public_tables:?}");
    let analytics_relations: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables
         WHERE table_schema IN ('analytics', 'analytics_org') ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await?;
    let views = [
        "session_facts",
        "criterion_scores",
        "findings",
        "decisions",
        "time_to_decision",
        "reviewer_agreement",
        "rubric_criteria",
        "grades",
        "runs",
    ];
    let analyst = "clarity_analyst";

    // Act + Assert: every analytics view reads, across organizations.
    for view in views {
        let r = as_role(
            &env,
            &[],
            analyst,
            &format!("SELECT * FROM analytics.{view}"),
            true,
        )
        .await?;
        assert!(
            r.as_ref().is_ok_and(|rows| !rows.is_empty()),
            "{view}: {r:?}"
        );
    }
    let orgs = as_role(
        &env,
        &[],
        analyst,
        "SELECT DISTINCT org_id FROM analytics.session_facts ORDER BY 1",
        true,
    )
    .await?;
    assert_eq!(
        orgs,
        Ok(vec![json!({"org_id": ACME}), json!({"org_id": GLOBEX})])
    );
    let alpha = as_role(
        &env,
        &[],
        analyst,
        "SELECT analytics.krippendorff_alpha_interval(u) AS a FROM (VALUES (ARRAY[1, 2]), (ARRAY[2, 2])) AS t(u)",
        true,
    )
    .await?;
    assert!(alpha.is_ok(), "{alpha:?}");

    // Nothing in public: not even reading.
    for table in ["sessions", "events", "api_keys"] {
        let r = as_role(
            &env,
            &[],
            analyst,
            &format!("SELECT * FROM public.{table}"),
            true,
        )
        .await?;
        assert_eq!(r, Err(DENIED.to_string()), "SELECT public.{table}");
    }
    // No writes anywhere: every table in public, every relation in analytics / analytics_org.
    for (table, column) in &public_tables {
        for sql in [
            format!("SELECT * FROM public.{table}"),
            format!("INSERT INTO public.{table} DEFAULT VALUES"),
            format!("UPDATE public.{table} SET {column} = {column}"),
            format!("DELETE FROM public.{table}"),
        ] {
            let r = as_role(&env, &[], analyst, &sql, false).await?;
            assert_eq!(r, Err(DENIED.to_string()), "{sql}");
        }
    }
    for relation in &analytics_relations {
        for sql in [
            format!("INSERT INTO {relation} DEFAULT VALUES"),
            format!("DELETE FROM {relation}"),
            format!("UPDATE {relation} SET org_id = org_id"),
        ] {
            let r = as_role(&env, &[], analyst, &sql, false).await?;
            assert!(r.is_err(), "{sql} was allowed");
        }
    }
    for sql in [
        "CREATE TABLE public.mine (x int)",
        "CREATE TABLE analytics.mine (x int)",
        "CREATE VIEW analytics.mine AS SELECT 1 AS x",
        "CREATE SCHEMA mine",
        "SELECT * FROM analytics_org.session_facts",
    ] {
        let r = as_role(&env, &[], analyst, sql, false).await?;
        assert_eq!(r, Err(DENIED.to_string()), "{sql}");
    }
    // And nothing changed.
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM decisions),
                (SELECT count(*) FROM review_scores)",
    )
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(counts, (4, 4, 10));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_analyst_sees_only_the_organizations_mapped_to_its_roles(
) -> anyhow::Result<()> {
    // Arrange: as an operator would (inside a transaction that is rolled back, since roles are
    // cluster-wide): a group role for Acme's analysts, mapped to Acme, and a member of it.
    let env = TestEnv::new().await?;
    fixture(&env).await?;
    let (group, alice) = (
        format!("acme_analysts_{}", env.id),
        format!("alice_{}", env.id),
    );
    let setup = vec![
        format!("CREATE ROLE {group} NOLOGIN IN ROLE clarity_org_analyst"),
        format!("CREATE ROLE {alice} NOLOGIN IN ROLE {group}"),
        format!(
            "INSERT INTO analytics.org_access (role_name, org_id) VALUES ('{group}', '{ACME}')"
        ),
        // A mapping to a role that does not exist matches nothing (and breaks nothing).
        format!(
            "INSERT INTO analytics.org_access (role_name, org_id) VALUES ('gone_{}', '{GLOBEX}')",
            env.id
        ),
    ];

    // Act
    let mut seen = Vec::new();
    for view in [
        "session_facts",
        "criterion_scores",
        "findings",
        "decisions",
        "time_to_decision",
        "reviewer_agreement",
        "grades",
        "runs",
    ] {
        let r = as_role(
            &env,
            &setup,
            &alice,
            &format!("SELECT DISTINCT org_id FROM analytics_org.{view}"),
            true,
        )
        .await?;
        seen.push((view, r));
    }
    let sessions = as_role(
        &env,
        &setup,
        &alice,
        "SELECT session_id FROM analytics_org.session_facts ORDER BY 1",
        true,
    )
    .await?;
    let rubric = as_role(
        &env,
        &setup,
        &alice,
        &format!("SELECT criterion FROM analytics_org.rubric_criteria WHERE assessment_id = '{QUEUE}' ORDER BY position"),
        true,
    )
    .await?;
    let unscoped = as_role(
        &env,
        &setup,
        &alice,
        "SELECT * FROM analytics.session_facts",
        true,
    )
    .await?;
    let tables = as_role(&env, &setup, &alice, "SELECT * FROM public.sessions", true).await?;
    let write = as_role(
        &env,
        &setup,
        &alice,
        &format!(
            "INSERT INTO analytics.org_access (role_name, org_id) VALUES ('{alice}', '{GLOBEX}')"
        ),
        false,
    )
    .await?;

    // Assert
    for (view, r) in seen {
        assert_eq!(r, Ok(vec![json!({"org_id": ACME})]), "{view}");
    }
    assert_eq!(
        sessions,
        Ok(vec![
            json!({"session_id": S1}),
            json!({"session_id": S2}),
            json!({"session_id": S3})
        ])
    );
    assert_eq!(
        rubric,
        Ok(vec![
            json!({"criterion": "design"}),
            json!({"criterion": "tests"})
        ]),
        "the built-in library's rubrics are visible to every organization"
    );
    assert_eq!(unscoped, Err(DENIED.to_string()));
    assert_eq!(tables, Err(DENIED.to_string()));
    assert_eq!(write, Err(DENIED.to_string()));
    Ok(())
}
