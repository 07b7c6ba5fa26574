//! A foreign client validates the topics: after a realistic workload through the public API,
//! a Python program (confluent-kafka + jsonschema, `tests/foreign/validate_topics.py`) reads both
//! topics from the beginning and checks every record against the published CloudEvents envelope
//! and JSON Schemas (`docs/schemas/events/`), and every stream for duplicates, disorder and gaps.
//!
//! The Python comes from the virtualenv `scripts/python.sh` (`ensure_python_deps`) creates:
//! `CLARITY_TEST_PYTHON`, default `.clarity/venv/bin/python`. Without it the test fails; it
//! never skips, since a contract nobody checks from outside Rust is how the schemas drifted.

use chrono::{Duration, Utc};
use clarity_tests::{foreign_python as python, workspace_root, Client, TestEnv};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Runs the validator over `topics`; returns its exit status, JSON summary and stderr.
async fn validate(env: &TestEnv, topics: &[&str]) -> anyhow::Result<(i32, Value, String)> {
    let output = tokio::process::Command::new(python()?)
        .arg(workspace_root().join("tests/foreign/validate_topics.py"))
        .arg("--bootstrap-servers")
        .arg(&env.config.kafka_brokers)
        .args(topics)
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let summary = serde_json::from_slice(&output.stdout).map_err(|e| {
        anyhow::anyhow!(
            "the validator printed no JSON summary ({e}); stderr:\n{stderr}\nstdout:\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    Ok((output.status.code().unwrap_or(-1), summary, stderr))
}

/// One of every telemetry kind, including a large paste after a tab-away (so the analysis has a
/// finding to resolve) and face checks (the candidate consented to them).
fn every_kind_of_telemetry() -> Vec<Value> {
    let pasted: String = (0..40)
        .map(|i| {
            format!("export function bucket{i}(rate: number): number {{ return rate * {i}; }}\n")
        })
        .collect();
    let mut script = vec![
        json!({"type": "file_created", "file": "src/limiter.ts", "content": ""}),
        json!({"type": "file_created", "file": "notes.txt", "content": "todo"}),
        json!({"type": "file_renamed", "file": "notes.txt", "new_file": "NOTES.md"}),
        json!({"type": "face_check", "similarity": 0.93, "model_id": "clarity-face", "model_version": "1", "face_count": 1, "quality": 0.9}),
    ];
    for (i, c) in "// limiter\n".chars().enumerate() {
        let class = if c == '\n' { "enter" } else { "punctuation" };
        script.push(json!({"type": "keystroke", "down_ms": (i * 170) as f64, "up_ms": (i * 170 + 80) as f64, "key_class": class}));
        script.push(json!({"type": "edit", "file": "src/limiter.ts", "position": i, "deleted": 0, "inserted": c.to_string(), "origin": "typed"}));
    }
    script.extend([
        json!({"type": "cursor", "file": "src/limiter.ts", "position": 3, "selection_end": 7}),
        json!({"type": "focus_lost"}),
        json!({"type": "focus_regained"}),
        json!({"type": "edit", "file": "src/limiter.ts", "position": 11, "deleted": 0, "inserted": pasted, "origin": "paste"}),
        json!({"type": "code_run", "command": "npm test", "exit_code": 1, "tests_passed": 10, "tests_failed": 2, "duration_ms": 2100}),
        json!({"type": "file_deleted", "file": "NOTES.md"}),
        json!({"type": "face_check", "similarity": 0.91, "model_id": "clarity-face", "model_version": "1", "face_count": 1, "quality": 0.85}),
        json!({"type": "keystroke", "down_ms": 9000.0, "key_class": "modifier"}),
    ]);
    script
}

async fn send_script(
    client: &Client,
    session: &str,
    token: &str,
    script: &[Value],
) -> anyhow::Result<()> {
    let start = Utc::now() - Duration::seconds(5);
    let events: Vec<Value> = script
        .iter()
        .enumerate()
        .map(|(i, data)| json!({"seq": i + 1, "ts": start + Duration::milliseconds(40 * i as i64), "data": data}))
        .collect();
    let r = client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            token,
            &json!({ "events": events }),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
    Ok(())
}

async fn submit(client: &Client, session: &str, token: &str) -> anyhow::Result<()> {
    let files = json!({"files": [{"path": "src/limiter.ts", "content": "export {}"}]});
    let r = client
        .post(&format!("/v1/sessions/{session}/submit"), token, &files)
        .await?;
    anyhow::ensure!(r.status == 200, "submit refused: {r:?}");
    Ok(())
}

/// A custom assessment drafted, revised, published and retired: every assessment event type.
async fn assessment_lifecycle(client: &Client, admin: &str) -> anyhow::Result<()> {
    let mut spec = serde_json::to_value(&clarity_domain::catalogue::builtin()[0].spec)?;
    spec["title"] = json!("Rate limiter (custom)");
    let r = client
        .post("/v1/assessments", admin, &json!({ "spec": spec }))
        .await?;
    anyhow::ensure!(r.status == 201, "create refused: {r:?}");
    let id = r.body["assessment_id"].as_str().unwrap().to_string();
    spec["time_limit_minutes"] = json!(60);
    let r = client
        .call(
            reqwest::Method::PUT,
            &format!("/v1/assessments/{id}/draft"),
            Some(admin),
            Some(&json!({ "spec": spec })),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "revise refused: {r:?}");
    for action in ["publish", "retire"] {
        let r = client
            .post(&format!("/v1/assessments/{id}/{action}"), admin, &json!({}))
            .await?;
        anyhow::ensure!(r.status == 200, "{action} refused: {r:?}");
    }
    Ok(())
}

/// Waits until the relay has published every stored event.
async fn everything_relayed(env: &TestEnv) -> anyhow::Result<()> {
    env.wait_for::<bool>(
        "the relay to publish every stored event",
        "SELECT NOT EXISTS (SELECT 1 FROM events e WHERE NOT EXISTS (
             SELECT 1 FROM relay_checkpoints c WHERE (e.tx_id, e.position) <= (c.tx_id, c.position)))",
        |done| *done,
    )
    .await?;
    Ok(())
}

fn expected_types() -> BTreeSet<String> {
    let lifecycle = [
        "Assessment.AssessmentDrafted.v1",
        "Assessment.DraftRevised.v1",
        "Assessment.AssessmentVersionPublished.v1",
        "Assessment.AssessmentRetired.v1",
        "CandidateSession.CandidateInvited.v1",
        "CandidateSession.ConsentRecorded.v1",
        "CandidateSession.SessionStarted.v2",
        "CandidateSession.SessionSubmitted.v1",
        "CandidateSession.IntegrityAnalysed.v1",
        "CandidateSession.ReviewersAssigned.v1",
        "CandidateSession.CriterionScored.v1",
        "CandidateSession.ReviewCompleted.v1",
        "CandidateSession.CommentAdded.v1",
        "CandidateSession.FindingResolved.v1",
        "CandidateSession.DecisionRecorded.v1",
    ];
    lifecycle
        .iter()
        .map(|t| format!("clarity.{t}"))
        .chain(
            clarity_domain::telemetry::TelemetryData::KINDS
                .iter()
                .map(|k| format!("clarity.Telemetry.{k}.v1")),
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_client_finds_every_record_on_both_topics_valid_against_the_published_schemas(
) -> anyhow::Result<()> {
    // Arrange: fail early, before the workload, when the foreign client is not installed.
    python()?;
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (alice, alice_key) = client.member(&admin, "Alice", "reviewer").await?;
    let (_, hana_key) = client.member(&admin, "Hana", "hiring_manager").await?;

    // Act: the workload, through the public API only.
    assessment_lifecycle(&client, &admin).await?;
    let (watched, watched_token) = client.invite(&admin, "Ada Lovelace").await?;
    let r = client.post(&format!("/v1/sessions/{watched}/consent"), &watched_token, &json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": true}})).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .post(
            &format!("/v1/sessions/{watched}/start"),
            &watched_token,
            &json!({}),
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    let script = every_kind_of_telemetry();
    send_script(&client, &watched, &watched_token, &script).await?;
    submit(&client, &watched, &watched_token).await?;
    let (typist, typist_token) = client.started_session(&admin, "Grace Hopper").await?;
    assert_eq!(
        client
            .send_events(&typist, &typist_token, 1, 40)
            .await?
            .status,
        200
    );
    submit(&client, &typist, &typist_token).await?;
    let (live, live_token) = client.started_session(&admin, "Still Typing").await?;
    assert_eq!(
        client.send_events(&live, &live_token, 1, 25).await?.status,
        200
    );
    client.invite(&admin, "Not Started").await?;

    env.wait_for::<bool>(
        "the integrity analysis of the watched session",
        &format!("SELECT integrity_suite_version IS NOT NULL FROM sessions WHERE session_id = '{watched}'"),
        |done| *done,
    )
    .await?;
    let base = format!("/v1/sessions/{watched}");
    client
        .complete_review(&admin, &watched, (&alice, &alice_key), |c| {
            c.levels.last().unwrap().score
        })
        .await?;
    let r = client
        .post(
            &format!("{base}/comments"),
            &alice_key,
            &json!({"replay_seq": 3, "text": "Renames the notes early."}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    let (suite, ordinal): (String, i32) = sqlx::query_as(
        "SELECT suite_version, ordinal FROM integrity_findings WHERE session_id = $1::uuid ORDER BY ordinal LIMIT 1",
    )
    .bind(&watched)
    .fetch_one(&env.pool)
    .await?;
    let r = client.post(&format!("{base}/integrity/resolutions"), &alice_key, &json!({"suite_version": suite, "ordinal": ordinal, "resolution": "dismissed", "reason": "Pasted from their own earlier file."})).await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<i64>(
        "the session's score",
        &format!("SELECT count(*) FROM session_scores WHERE session_id = '{watched}'"),
        |n| *n == 1,
    )
    .await?;
    let report = client.get(&format!("{base}/report"), &hana_key).await?;
    assert_eq!(report.status, 200, "{report:?}");
    let decision = json!({"outcome": "advance", "rationale": "Clear design, honest process.", "report_hash": report.body["content_hash"]});
    let r = client
        .post(&format!("{base}/decisions"), &hana_key, &decision)
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    everything_relayed(&env).await?;
    let (status, summary, stderr) = validate(
        &env,
        &[&env.config.topic_sessions, &env.config.topic_assessments],
    )
    .await?;

    // Assert
    assert_eq!(summary["invalid_records"], 0, "{stderr}\n{summary:#}");
    assert_eq!(status, 0, "{stderr}\n{summary:#}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&env.pool)
        .await?;
    let telemetry = (script.len() + 40 + 25) as i64;
    assert_eq!(
        summary["records"].as_i64(),
        Some(stored + telemetry),
        "every stored event and every telemetry event is on a topic exactly once: {summary:#}"
    );
    let seen: BTreeSet<String> = summary["records_by_type"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(seen, expected_types(), "{summary:#}");

    product.stop().await?;
    Ok(())
}
