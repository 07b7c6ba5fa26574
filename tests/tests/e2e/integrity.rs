//! Integrity analysis end to end: a finished session is analysed exactly once by the worker, the
//! findings carry evidence that points into the replay, the timeline shows them, follow-up
//! questions name the moment, re-runs with a new suite version are stored beside the old
//! analysis and listed as differences, and only the session organization's staff can read any
//! of it.

use chrono::{DateTime, Duration, Utc};
use clarity_tests::{new_org, TestEnv};
use serde_json::{json, Value};

const STEP_MS: i64 = 40;

/// A short session: a file is created, a few characters typed (each with its keystroke), the
/// candidate tabs away, comes back, pastes `paste_chars` characters, and runs the tests.
fn pasting_script(paste_chars: usize) -> Vec<Value> {
    let mut script = vec![json!({"type": "file_created", "file": "src/limiter.ts", "content": ""})];
    let typed = "// limiter\n";
    for (i, c) in typed.chars().enumerate() {
        let class = if c == '\n' {
            "enter"
        } else if c == ' ' {
            "whitespace"
        } else {
            "punctuation"
        };
        script.push(json!({"type": "keystroke", "down_ms": (i * 180) as f64, "up_ms": (i * 180 + 90) as f64, "key_class": class}));
        script.push(json!({"type": "edit", "file": "src/limiter.ts", "position": i, "deleted": 0, "inserted": c.to_string(), "origin": "typed"}));
    }
    script.push(json!({"type": "focus_lost"}));
    script.push(json!({"type": "focus_regained"}));
    let body: String = (0..)
        .map(|i| {
            format!("export function bucket{i}(rate: number): number {{ return rate * {i}; }}\n")
        })
        .flat_map(|line| line.chars().collect::<Vec<_>>())
        .take(paste_chars)
        .collect();
    script.push(json!({"type": "edit", "file": "src/limiter.ts", "position": typed.len(), "deleted": 0, "inserted": body, "origin": "paste"}));
    script.push(json!({"type": "code_run", "command": "npm test", "exit_code": 0, "tests_passed": 12, "tests_failed": 0, "duration_ms": 2100}));
    script
}

async fn started_at(env: &TestEnv, session: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(sqlx::query_scalar("SELECT (payload->'SessionStarted'->>'at')::timestamptz FROM events WHERE aggregate_id = $1 AND event_type = 'SessionStarted'")
        .bind(session)
        .fetch_one(&env.pool)
        .await?)
}

async fn run_script(
    env: &TestEnv,
    client: &clarity_tests::Client,
    session: &str,
    token: &str,
    script: &[Value],
) -> anyhow::Result<()> {
    let started = started_at(env, session).await?;
    let events: Vec<Value> = script
        .iter()
        .enumerate()
        .map(|(i, data)| json!({"seq": i + 1, "ts": started + Duration::milliseconds(STEP_MS * (i as i64 + 1)), "data": data}))
        .collect();
    for chunk in events.chunks(500) {
        let r = client
            .post(
                &format!("/v1/sessions/{session}/telemetry"),
                token,
                &json!({ "events": chunk }),
            )
            .await?;
        anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
    }
    // No copy of the files: the submission is what the log reconstructs (a copy that differed
    // would add a finding of its own, tested in candidate_workspace).
    let r = client
        .post(&format!("/v1/sessions/{session}/submit"), token, &json!({}))
        .await?;
    anyhow::ensure!(r.status == 200, "submit refused: {r:?}");
    Ok(())
}

async fn analyses(env: &TestEnv, session: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'IntegrityAnalysed'",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finished_session_is_analysed_once_with_evidence_reviewers_can_follow(
) -> anyhow::Result<()> {
    // Arrange: one candidate pastes 1,500 characters after a tab-away, another types a little.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (paster, paster_token) = client.started_session(&admin, "Paste Person").await?;
    let script = pasting_script(1500);
    run_script(&env, &client, &paster, &paster_token, &script).await?;
    let (typist, typist_token) = client.started_session(&admin, "Type Person").await?;
    run_script(&env, &client, &typist, &typist_token, &pasting_script(20)).await?;
    let paste_seq = script.iter().position(|d| d["origin"] == "paste").unwrap() as i64 + 1;

    // Act: the worker analyses both once they are finished.
    for s in [&paster, &typist] {
        env.wait_for_analysis(s).await?;
    }

    // Assert: the paste is a finding with the numbers and the place to look.
    let view = client
        .get(&format!("/v1/sessions/{paster}/integrity"), &admin)
        .await?;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.body["state"], "analysed");
    assert_ne!(view.body["tier"], "none", "{}", view.body);
    let findings: Vec<&Value> = view.body["analysis"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["findings"].as_array().unwrap())
        .collect();
    let paste = findings
        .iter()
        .find(|f| f["detector"] == "provenance" && f["rule"] == "large_paste_after_focus_loss")
        .unwrap_or_else(|| panic!("no paste finding in {findings:?}"));
    assert_eq!(paste["detector_version"], "1");
    assert_eq!(paste["measured"], 1500.0);
    assert_eq!(paste["evidence"][0]["replay_seq"], paste_seq);
    assert!(paste["threshold"].as_f64().unwrap() < 1500.0);
    let questions = view.body["analysis"]["followups"].as_array().unwrap();
    assert!(
        questions.iter().any(|q| q["replay_seq"] == paste_seq
            && q["question"]
                .as_str()
                .unwrap()
                .contains("pasted 1,500 characters into limiter.ts")),
        "{questions:?}"
    );
    // Keystroke dynamics had too little to measure, and face checks were not consented to: both
    // say so rather than staying silent.
    let reports = view.body["analysis"]["reports"].as_array().unwrap();
    let skipped = |d: &str| reports.iter().find(|r| r["detector"] == d).unwrap()["skipped"].clone();
    assert!(
        skipped("face_continuity")
            .as_str()
            .unwrap()
            .contains("switched off")
            || skipped("face_continuity")
                .as_str()
                .unwrap()
                .contains("consent")
    );
    assert!(!skipped("keystroke_timing").is_null());
    // The small paste alone raises nothing.
    let quiet = client
        .get(&format!("/v1/sessions/{typist}/integrity"), &admin)
        .await?;
    assert_eq!(quiet.body["tier"], "none", "{}", quiet.body);
    // The replay timeline carries the flag at the paste.
    env.wait_for::<i64>("the integrity flag on the replay timeline", &format!("SELECT count(*) FROM replay_markers WHERE session_id = '{paster}' AND kind = 'integrity_flag' AND seq = {paste_seq}"), |n| *n == 1).await?;
    // Exactly one analysis each, also when the job is queued again (a worker crash between the
    // event and the job's completion looks like this).
    let version = view.body["analysis"]["suite_version"]
        .as_str()
        .unwrap()
        .to_string();
    sqlx::query("INSERT INTO integrity_jobs (session_id, trigger, org_id) SELECT session_id, 'rerun:' || $2, org_id FROM sessions WHERE session_id = $1::uuid")
        .bind(&paster)
        .bind(&version)
        .execute(&env.pool)
        .await?;
    env.wait_for::<i64>(
        "the repeated job to finish",
        &format!(
            "SELECT count(*) FROM integrity_jobs WHERE session_id = '{paster}' AND status = 'done'"
        ),
        |n| *n == 2,
    )
    .await?;
    let outcome: String = sqlx::query_scalar(
        "SELECT outcome FROM integrity_jobs WHERE session_id = $1::uuid AND trigger LIKE 'rerun:%'",
    )
    .bind(&paster)
    .fetch_one(&env.pool)
    .await?;
    assert!(outcome.starts_with("already analysed"), "{outcome}");
    assert_eq!(analyses(&env, &paster).await?, 1);
    assert_eq!(analyses(&env, &typist).await?, 1);

    // Re-run with a new suite version (an operator changed the similarity threshold): stored
    // beside the old one, differences listed.
    let mut config = env.config.clone();
    config.integrity_similarity_threshold = Some(0.99);
    let second = env.spawn_api_with(config).await?;
    let second_client = clarity_tests::Client::new(&second.base);
    let r = second_client
        .post("/v1/integrity/reruns", &admin, &json!({}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["enqueued"], 2);
    let new_version = r.body["suite_version"].as_str().unwrap().to_string();
    assert_ne!(new_version, version);
    for s in [&paster, &typist] {
        env.wait_for::<i64>(
            "the re-run analysis",
            &format!("SELECT count(*) FROM integrity_analyses WHERE session_id = '{s}'"),
            |n| *n == 2,
        )
        .await?;
    }
    let view = client
        .get(&format!("/v1/sessions/{paster}/integrity"), &admin)
        .await?;
    assert_eq!(view.body["versions"].as_array().unwrap().len(), 2);
    assert_eq!(view.body["analysis"]["suite_version"], new_version.as_str());
    let old = client
        .get(
            &format!(
                "/v1/sessions/{paster}/integrity?suite_version={}",
                urlencode(&version)
            ),
            &admin,
        )
        .await?;
    assert_eq!(old.body["analysis"]["suite_version"], version.as_str());
    let diff = client
        .get(
            &format!(
                "/v1/integrity/diff?from={}&to={}",
                urlencode(&version),
                urlencode(&new_version)
            ),
            &admin,
        )
        .await?;
    assert_eq!(diff.status, 200, "{diff:?}");
    assert_eq!(diff.body["compared"], 2);
    assert_eq!(diff.body["next_after"], serde_json::Value::Null);
    // Paged: one session a page, the second page after the first, then nothing more.
    let page = |after: Option<&str>| {
        format!(
            "/v1/integrity/diff?from={}&to={}&limit=1{}",
            urlencode(&version),
            urlencode(&new_version),
            after.map(|a| format!("&after={a}")).unwrap_or_default()
        )
    };
    let first = client.get(&page(None), &admin).await?;
    assert_eq!(first.body["compared"], 1, "{first:?}");
    let next = first.body["next_after"].as_str().unwrap().to_string();
    let second_page = client.get(&page(Some(&next)), &admin).await?;
    assert_eq!(second_page.body["compared"], 1, "{second_page:?}");
    let last = second_page.body["next_after"].as_str().unwrap().to_string();
    assert_ne!(last, next);
    let empty = client.get(&page(Some(&last)), &admin).await?;
    assert_eq!(
        (
            empty.body["compared"].as_u64(),
            empty.body["next_after"].is_null()
        ),
        (Some(0), true),
        "{empty:?}"
    );
    let r = client
        .get(
            &format!("/v1/integrity/diff?from=a&to=b&limit={}", 5_001),
            &admin,
        )
        .await?;
    assert_eq!((r.status, r.code()), (422, "invalid_limit"));
    let same = client
        .get(
            &format!(
                "/v1/integrity/diff?from={}&to={}",
                urlencode(&version),
                urlencode(&version)
            ),
            &admin,
        )
        .await?;
    assert_eq!((same.status, same.code()), (422, "same_suite_version"));
    second.stop().await?;

    // Access: another organization sees nothing; analysts and candidates read no findings;
    // only admins start re-runs.
    let other_admin = new_org(&env, "Globex").await?;
    let r = client
        .get(&format!("/v1/sessions/{paster}/integrity"), &other_admin)
        .await?;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{r:?}");
    let r = client
        .get(
            &format!("/v1/sessions/{paster}/integrity/matches/{typist}"),
            &other_admin,
        )
        .await?;
    assert_eq!(r.status, 404, "{r:?}");
    let r = client
        .get(&format!("/v1/sessions/{paster}/integrity"), &paster_token)
        .await?;
    assert_eq!(r.status, 401, "{r:?}");
    for (role, status) in [
        ("analyst", 403),
        ("reviewer", 200),
        ("auditor", 200),
        ("hiring_manager", 200),
    ] {
        let (_, key) = client.member(&admin, &format!("A {role}"), role).await?;
        let r = client
            .get(&format!("/v1/sessions/{paster}/integrity"), &key)
            .await?;
        assert_eq!(r.status, status, "{role}: {r:?}");
        let r = client
            .post("/v1/integrity/reruns", &key, &json!({}))
            .await?;
        assert_eq!(r.status, 403, "{role} may not re-run: {r:?}");
    }
    let r = client
        .get(
            &format!("/v1/sessions/{paster}/integrity/matches/{typist}"),
            &admin,
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["score"].as_f64().is_some());

    product.stop().await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
