//! The candidate's code, run by the server (issue 14): a candidate asks for a run of the visible
//! tests, `clarity runner` (a separate process, the real sandbox) runs them on the workspace the
//! log reconstructs and records `RunCompleted`; at submission the hidden checks grade the
//! submitted files (`SubmissionGraded`), which staff read and candidates cannot. A runner killed
//! mid-run loses nothing and doubles nothing: another one takes the job when its lease ends, and
//! the session holds one result.

use std::time::Duration;

use clarity_tests::{workspace_root, Client, TestEnv};
use serde_json::{json, Value};

const BUG_HUNT: &str = "c1a71700-0000-4000-8000-000000000005";

fn event(seq: u64, data: Value) -> Value {
    json!({"seq": seq, "ts": chrono::Utc::now(), "data": data})
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The events that make `files` the workspace: each file replaced (deleted when it existed,
/// created with its first part, the rest appended in parts under the text limit).
fn write_files(seq: &mut u64, existing: &[String], files: &[(String, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (path, content) in files {
        if existing.contains(path) {
            *seq += 1;
            out.push(event(*seq, json!({"type": "file_deleted", "file": path})));
        }
        let chars: Vec<char> = content.chars().collect();
        let mut parts = chars.chunks(4000).map(|c| c.iter().collect::<String>());
        *seq += 1;
        out.push(event(*seq, json!({"type": "file_created", "file": path, "content": parts.next().unwrap_or_default()})));
        let mut at = utf16(&chars.iter().take(4000).collect::<String>());
        for part in parts {
            *seq += 1;
            out.push(event(*seq, json!({"type": "edit", "file": path, "position": at, "deleted": 0, "inserted": part, "origin": "typed"})));
            at += utf16(&part);
        }
    }
    out
}

async fn send(
    client: &Client,
    session: &str,
    token: &str,
    events: Vec<Value>,
) -> anyhow::Result<()> {
    for batch in events.chunks(20) {
        let r = client
            .post(
                &format!("/v1/sessions/{session}/telemetry"),
                token,
                &json!({"events": batch}),
            )
            .await?;
        anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
    }
    Ok(())
}

fn starter() -> Vec<(String, String)> {
    clarity_runner::suite::read_tree(&workspace_root().join("catalogue/bug-hunt/starter")).unwrap()
}

fn reference() -> Vec<(String, String)> {
    clarity_runner::suite::read_tree(&workspace_root().join("catalogue/bug-hunt/grader/reference"))
        .unwrap()
}

fn runner(
    env: &TestEnv,
    uid_base: u32,
    lease: u64,
    log: &std::path::Path,
) -> anyhow::Result<tokio::process::Child> {
    env.spawn_runner(uid_base, lease, log)
}

/// Invites a candidate to `assessment`, records their consent (typing rhythm as given, no face
/// checks) and starts the clock; returns (session id, candidate token).
async fn started(
    client: &Client,
    admin: &str,
    assessment: impl serde::Serialize,
    name: impl serde::Serialize,
    email: impl serde::Serialize,
    keystrokes: bool,
) -> anyhow::Result<(String, String)> {
    let r = client
        .post(
            "/v1/sessions",
            admin,
            &json!({"assessment_id": assessment, "candidate": {"name": name, "email": email}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "invite refused: {r:?}");
    let session = r.body["session_id"].as_str().unwrap().to_string();
    let token = r.body["candidate_token"].as_str().unwrap().to_string();
    let consent = json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": keystrokes, "face_continuity": false}});
    let r = client
        .post(&format!("/v1/sessions/{session}/consent"), &token, &consent)
        .await?;
    anyhow::ensure!(r.status == 200, "consent refused: {r:?}");
    let r = client
        .post(&format!("/v1/sessions/{session}/start"), &token, &json!({}))
        .await?;
    anyhow::ensure!(r.status == 200, "start refused: {r:?}");
    Ok((session, token))
}

async fn wait_done(
    client: &Client,
    session: &str,
    token: &str,
    run: &str,
) -> anyhow::Result<Value> {
    for _ in 0..600 {
        let r = client
            .get(&format!("/v1/sessions/{session}/runs/{run}"), token)
            .await?;
        anyhow::ensure!(r.status == 200, "reading the run: {r:?}");
        if r.body["status"] == "done" {
            return Ok(r.body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("run {run} did not finish in 120 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_runs_the_visible_tests_and_the_submission_is_graded_by_the_hidden_checks(
) -> anyhow::Result<()> {
    // Arrange: the product, a runner process, a Bug Hunt candidate with the starter files.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let log = std::env::temp_dir().join(format!("clarity-e2e-runner-{}.log", std::process::id()));
    let mut runner = runner(&env, 330_000, 300, &log)?;
    let r = client
        .post("/v1/sessions", &admin, &json!({"assessment_id": BUG_HUNT, "candidate": {"name": "Ada Runner", "email": "ada.runner@example.com"}}))
        .await?;
    anyhow::ensure!(r.status == 201, "{r:?}");
    let session = r.body["session_id"].as_str().unwrap().to_string();
    let token = r.body["candidate_token"].as_str().unwrap().to_string();
    let consent = json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": false}});
    assert_eq!(
        client
            .post(&format!("/v1/sessions/{session}/consent"), &token, &consent)
            .await?
            .status,
        200
    );
    // Before the start there is nothing to run.
    let early = client
        .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
        .await?;
    assert_eq!(
        (early.status, early.body["error"]["code"].as_str()),
        (409, Some("session_not_started"))
    );
    assert_eq!(
        client
            .post(&format!("/v1/sessions/{session}/start"), &token, &json!({}))
            .await?
            .status,
        200
    );
    let mut seq = 0;
    let files = starter();
    send(
        &client,
        &session,
        &token,
        write_files(&mut seq, &[], &files),
    )
    .await?;

    // Act 1: run the starter's visible tests; a second request while it runs is refused.
    let r = client
        .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["through_seq"], seq);
    let first = r.body["run_id"].as_str().unwrap().to_string();
    let again = client
        .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
        .await?;
    assert_eq!(
        (again.status, again.body["error"]["code"].as_str()),
        (409, Some("run_in_progress"))
    );
    let done = wait_done(&client, &session, &token, &first).await?;

    // Assert 1: the starter fails some of its visible tests, in the sandbox, with its output.
    let result = &done["result"];
    let (passed, total) = (
        done["passed"].as_i64().unwrap(),
        done["total"].as_i64().unwrap(),
    );
    assert!(total >= 4 && passed < total, "{done:#}");
    assert_eq!(
        result["ending"],
        json!({"kind": "exited", "code": 1}),
        "{done:#}"
    );
    assert!(
        result["output"].as_str().unwrap().contains("FAIL"),
        "{done:#}"
    );
    assert!(
        result["toolchains"]["bubblewrap"]
            .as_str()
            .unwrap()
            .contains("bubblewrap"),
        "{done:#}"
    );
    assert_eq!(result["toolchains"]["grader"], "bug-hunt@1");
    assert_eq!(result["output_sha256"].as_str().unwrap().len(), 64);
    // Nothing of the hidden suite reaches the candidate.
    let text = done.to_string();
    assert!(
        !text.contains("/grader") && !text.contains("hidden"),
        "{text}"
    );

    // Act 2: the reference fix, run again, then submit.
    let existing: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    send(
        &client,
        &session,
        &token,
        write_files(&mut seq, &existing, &reference()),
    )
    .await?;
    let r = client
        .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    let second = r.body["run_id"].as_str().unwrap().to_string();
    let done = wait_done(&client, &session, &token, &second).await?;
    assert_eq!(
        done["passed"], done["total"],
        "the reference passes every visible test: {done:#}"
    );
    let r = client
        .post(
            &format!("/v1/sessions/{session}/submit"),
            &token,
            &json!({}),
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");

    // Assert 2: the hidden checks graded the submission; staff read it, the candidate cannot.
    env.wait_for::<i64>(
        "the grade",
        &format!("SELECT count(*) FROM session_grades WHERE session_id = '{session}'"),
        |n| *n == 1,
    )
    .await?;
    let grades = client
        .get(&format!("/v1/sessions/{session}/grades"), &admin)
        .await?;
    assert_eq!(grades.status, 200, "{grades:?}");
    let grade = &grades.body["grades"][0];
    assert_eq!(grade["grader_version"], "bug-hunt@1");
    assert!(grade["fraction"].as_f64().unwrap() >= 0.9, "{grade:#}");
    let checks = grade["result"]["tests"].as_array().unwrap();
    assert!(
        checks.len() >= 10
            && checks
                .iter()
                .all(|c| c["key"].is_string() && c["weight"].as_f64().unwrap() > 0.0)
    );
    assert_eq!(grades.body["runs"].as_array().unwrap().len(), 2);
    // The replay marks the server's runs as verified, beside the client's own reports.
    let replay = env
        .wait_for::<i64>(
            "the runs on the replay",
            &format!("SELECT count(*) FROM replay_markers WHERE session_id = '{session}' AND kind = 'test_run'"),
            |n| *n >= 1,
        )
        .await;
    replay?;
    let summary = client
        .get(&format!("/v1/sessions/{session}/replay"), &admin)
        .await?;
    let runs_marked: Vec<&Value> = summary.body["markers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "test_run")
        .collect();
    assert!(
        !runs_marked.is_empty() && runs_marked.iter().all(|m| m["data"]["verified"] == true),
        "{runs_marked:#?}"
    );
    // The leaderboard ranks by the automated score on request; combined needs a rubric score too.
    let version: i32 =
        sqlx::query_scalar("SELECT assessment_version FROM sessions WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(&env.pool)
            .await?;
    let board = |by: &str| {
        format!("/v1/assessments/{BUG_HUNT}/versions/{version}/leaderboard?rank_by={by}")
    };
    let automated = client.get(&board("automated"), &admin).await?;
    assert_eq!(automated.status, 200, "{automated:?}");
    assert_eq!(automated.body["rows"][0]["session_id"], session.as_str());
    let percent = (grade["fraction"].as_f64().unwrap() * 1000.0).round() / 10.0;
    assert_eq!(
        automated.body["rows"][0]["score"].as_f64().unwrap(),
        percent
    );
    assert_eq!(automated.body["rows"][0]["rank"], 1);
    let combined = client.get(&board("combined"), &admin).await?;
    assert_eq!(
        combined.body["rows"],
        json!([]),
        "no rubric score yet: {:#}",
        combined.body
    );
    let rubric = client.get(&board("rubric"), &admin).await?;
    assert_eq!(rubric.body["rows"], json!([]));
    let bad = client.get(&board("vibes"), &admin).await?;
    assert!(bad.status == 400 || bad.status == 422, "{bad:?}");
    let denied = client
        .get(&format!("/v1/sessions/{session}/grades"), &token)
        .await?;
    assert!(denied.status == 401 || denied.status == 403, "{denied:?}");
    // One result per run, one grade, on the session's own log.
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events WHERE aggregate_id = $1
           AND event_type IN ('RunRequested', 'RunCompleted', 'SubmissionGraded') GROUP BY 1 ORDER BY 1",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        counts,
        vec![
            ("RunCompleted".into(), 2),
            ("RunRequested".into(), 2),
            ("SubmissionGraded".into(), 1)
        ]
    );
    runner.kill().await?;

    // Act 3: a new grader version is deployed (a copy of the catalogue whose Bug Hunt suite says
    // `bug-hunt@2`), and history is re-graded with it.
    let catalogue =
        std::env::temp_dir().join(format!("clarity-e2e-catalogue-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&catalogue);
    copy_dir(&workspace_root().join("catalogue"), &catalogue)?;
    let manifest = catalogue.join("bug-hunt/grader/suite.json");
    let text = std::fs::read_to_string(&manifest)?.replace("bug-hunt@1", "bug-hunt@2");
    std::fs::write(&manifest, text)?;
    let regrade = env
        .run_cli(&["regrade", "--assessment", BUG_HUNT], &[])
        .await?;
    assert!(
        regrade.success && regrade.stdout.contains("queued 1 "),
        "{regrade:?}"
    );
    let mut newer = env.spawn_process_logged(
        &[
            "runner",
            "--catalogue",
            catalogue.to_str().unwrap(),
            "--toolchains",
            workspace_root()
                .join(".clarity/toolchains")
                .to_str()
                .unwrap(),
            "--harness",
            workspace_root().join("runner/harness").to_str().unwrap(),
            "--runs-dir",
            std::env::temp_dir()
                .join("clarity-e2e-runs-regrade")
                .to_str()
                .unwrap(),
            "--uid-base",
            "330030",
            "--concurrency",
            "1",
        ],
        &[],
        &log,
    )?;
    env.wait_for::<i64>(
        "the re-grade",
        &format!("SELECT count(*) FROM session_grades WHERE session_id = '{session}'"),
        |n| *n == 2,
    )
    .await?;
    newer.kill().await?;

    // Assert 3: both grades, side by side, and what changed between them (nothing: same checks).
    let grades = client
        .get(&format!("/v1/sessions/{session}/grades"), &admin)
        .await?;
    let versions: Vec<&str> = grades.body["grades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grader_version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["bug-hunt@1", "bug-hunt@2"]);
    assert_eq!(grades.body["changes"], json!([]), "{:#}", grades.body);
    let report = client
        .get(&format!("/v1/sessions/{session}/report"), &admin)
        .await?;
    assert_eq!(report.status, 200, "{report:?}");
    let automated = &report.body["content"]["automated"];
    assert_eq!(
        automated["grade"]["grader_version"], "bug-hunt@2",
        "{automated:#}"
    );
    assert_eq!(automated["earlier"][0]["grader_version"], "bug-hunt@1");
    assert_eq!(automated["runs"], 2);
    let _ = std::fs::remove_dir_all(&catalogue);
    product.stop().await
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_killed_mid_run_loses_nothing_and_the_run_is_recorded_once() -> anyhow::Result<()>
{
    // Arrange: a runner with a short lease, and a candidate whose tests take a while (a visible
    // test that sleeps), so the runner can be killed while it runs.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let log = std::env::temp_dir().join(format!(
        "clarity-e2e-runner-kill-{}.log",
        std::process::id()
    ));
    let mut first = runner(&env, 330_010, 8, &log)?;
    let (session, token) = started(
        &client,
        &admin,
        BUG_HUNT,
        "Kill Runner",
        "kill.runner@example.com",
        true,
    )
    .await?;
    let mut files = starter();
    files.push((
        "tests/test_slow.py".into(),
        "import time, unittest\n\nclass Slow(unittest.TestCase):\n    def test_takes_a_while(self):\n        time.sleep(4)\n".into(),
    ));
    let mut seq = 0;
    send(
        &client,
        &session,
        &token,
        write_files(&mut seq, &[], &files),
    )
    .await?;
    let r = client
        .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
        .await?;
    let run = r.body["run_id"].as_str().unwrap().to_string();

    // Act: kill the runner (SIGKILL) while the run is in its sandbox, then start another.
    env.wait_for::<i64>(
        "the run to start",
        &format!("SELECT count(*) FROM run_jobs WHERE run_id = '{run}' AND status = 'running'"),
        |n| *n == 1,
    )
    .await?;
    // While it runs, the page can show what it has printed so far.
    let mut live = String::new();
    for _ in 0..40 {
        let r = client
            .get(&format!("/v1/sessions/{session}/runs/{run}"), &token)
            .await?;
        if r.body["status"] == "running" {
            live = r.body["live_output"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if live.contains("test_takes_a_while") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        live.contains("test_takes_a_while"),
        "the output so far names the running test: {live:?}"
    );
    first.start_kill()?;
    first.wait().await?;
    let mut second = runner(&env, 330_020, 8, &log)?;
    let done = wait_done(&client, &session, &token, &run).await?;

    // Assert: the run finished on the second runner, once; the killed run left no process.
    assert!(done["total"].as_i64().unwrap() > 0, "{done:#}");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM run_jobs WHERE run_id = $1::uuid")
        .bind(&run)
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(
        attempts, 2,
        "taken by the killed runner, then by the second"
    );
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'RunCompleted'",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(completed, 1);
    let leftovers = std::process::Command::new("pgrep")
        .args(["-u", "330010"])
        .output()?;
    assert!(
        leftovers.stdout.is_empty(),
        "processes of the killed runner's run remain: {}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
    second.kill().await?;
    product.stop().await
}

/// Every built-in assessment, through the product: a candidate writes the reference solution,
/// runs the visible tests (all pass), submits, and the hidden checks grade it (≥ 90 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_built_in_assessment_runs_and_grades_end_to_end() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let log =
        std::env::temp_dir().join(format!("clarity-e2e-runner-all-{}.log", std::process::id()));
    let mut runner = runner(&env, 330_040, 300, &log)?;
    let mut sessions = Vec::new();
    for entry in clarity_domain::catalogue::builtin() {
        let slug = clarity_domain::catalogue::slug_of(entry.id).unwrap();
        let root = workspace_root().join("catalogue").join(&slug);
        let mut files: std::collections::BTreeMap<String, String> =
            clarity_runner::suite::read_tree(&root.join("starter"))?
                .into_iter()
                .collect();
        files.extend(clarity_runner::suite::read_tree(
            &root.join("grader/reference"),
        )?);
        let files: Vec<(String, String)> = files.into_iter().collect();
        let (session, token) = started(
            &client,
            &admin,
            entry.id,
            format!("Ref {slug}"),
            format!("{slug}@example.com"),
            false,
        )
        .await?;
        let mut seq = 0;
        send(
            &client,
            &session,
            &token,
            write_files(&mut seq, &[], &files),
        )
        .await?;
        let r = client
            .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
            .await?;
        anyhow::ensure!(r.status == 202, "{slug}: {r:?}");
        sessions.push((
            slug,
            session,
            token,
            r.body["run_id"].as_str().unwrap().to_string(),
        ));
    }
    for (slug, session, token, run) in &sessions {
        let done = wait_done(&client, session, token, run).await?;
        assert!(
            done["total"].as_i64().unwrap() > 0 && done["passed"] == done["total"],
            "{slug}: the reference passes every visible test: {done:#}"
        );
        let r = client
            .post(&format!("/v1/sessions/{session}/submit"), token, &json!({}))
            .await?;
        assert_eq!(r.status, 200, "{slug}: {r:?}");
    }
    for (slug, session, _, _) in &sessions {
        env.wait_for::<i64>(
            &format!("the grade of {slug}"),
            &format!("SELECT count(*) FROM session_grades WHERE session_id = '{session}'"),
            |n| *n == 1,
        )
        .await?;
        let grades = client
            .get(&format!("/v1/sessions/{session}/grades"), &admin)
            .await?;
        let grade = &grades.body["grades"][0];
        assert!(
            grade["fraction"].as_f64().unwrap() >= 0.9,
            "{slug}: {grade:#}"
        );
        assert_eq!(
            grade["grader_version"].as_str().unwrap().split('@').next(),
            Some(slug.as_str())
        );
        println!(
            "{slug}: visible all passed, graded {:.1} %",
            grade["fraction"].as_f64().unwrap() * 100.0
        );
    }
    runner.kill().await?;
    product.stop().await
}

/// An organization's own assessment has no grader suite: the candidate is told there is nothing
/// to run (409 `runs_unavailable`), and its submission's grading job ends as "not graded" at once
/// instead of failing and being retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organization_s_own_assessment_is_not_run_and_not_graded() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let log =
        std::env::temp_dir().join(format!("clarity-e2e-runner-own-{}.log", std::process::id()));
    let mut runner = runner(&env, 330_050, 300, &log)?;
    let mut spec = serde_json::to_value(&clarity_domain::catalogue::builtin()[0].spec)?;
    spec["title"] = json!("Our own API task");
    let r = client
        .post("/v1/assessments", &admin, &json!({ "spec": spec }))
        .await?;
    anyhow::ensure!(r.status == 201, "{r:?}");
    let assessment = r.body["assessment_id"].as_str().unwrap().to_string();
    let r = client
        .post(
            &format!("/v1/assessments/{assessment}/publish"),
            &admin,
            &json!({}),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "{r:?}");
    let (session, token) = started(
        &client,
        &admin,
        assessment,
        "Own Task",
        "own.task@example.com",
        false,
    )
    .await?;
    let mut seq = 0;
    send(
        &client,
        &session,
        &token,
        write_files(&mut seq, &[], &[("main.py".into(), "print(1)\n".into())]),
    )
    .await?;

    let refused = client
        .post(&format!("/v1/sessions/{session}/runs"), &token, &json!({}))
        .await?;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (409, Some("runs_unavailable"))
    );
    assert_eq!(
        client
            .post(
                &format!("/v1/sessions/{session}/submit"),
                &token,
                &json!({})
            )
            .await?
            .status,
        200
    );
    env.wait_for::<i64>(
        "the grading job to end",
        &format!("SELECT count(*) FROM run_jobs WHERE session_id = '{session}' AND status = 'done' AND outcome LIKE 'not graded%' AND attempts = 1"),
        |n| *n == 1,
    )
    .await?;
    let grades = client
        .get(&format!("/v1/sessions/{session}/grades"), &admin)
        .await?;
    assert_eq!(grades.body["grades"], json!([]));
    runner.kill().await?;
    product.stop().await
}
