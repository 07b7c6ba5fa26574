//! The candidate's test-taking page in real Chromium (Debian's chromium driven by playwright-core)
//! against the real API, broker and projections: a candidate opens the invitation link, reads
//! the notice, consents, starts, types at a human pace, pastes from the clipboard, switches tabs,
//! reloads mid-session, goes offline and back, creates, deletes and renames files and submits
//! (`tests/browser/take.spec.mjs`). Then the server's side: the replay's final state equals the
//! editor's content byte for byte, every character's provenance is right, no `seq` is missing or
//! doubled, and the submission matches its trace. With a fake camera (`MODE=face`), face
//! continuity: the checks computed on the device reach the server as scores only.

use clarity_tests::TestEnv;
use serde_json::{json, Value};

const PASTE: &str = "\n# pasted block\nLIMIT = 10\n";

/// `tests/browser/take.spec.mjs` with `vars` as its environment.
fn take_spec(vars: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("node");
    command.arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/take.spec.mjs"));
    for (k, v) in vars {
        command.env(k, v);
    }
    command
}

/// The spec's result (its last JSON line), or an error with everything it printed unless every
/// step passed.
fn take_result(output: &std::process::Output) -> anyhow::Result<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    anyhow::ensure!(
        output.status.success() && result["ok"] == true,
        "take.spec.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_candidate_takes_the_test_in_a_real_browser_and_the_server_holds_exactly_what_they_wrote(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (session, token) = client.invite(&admin, "Grace Hopper").await?;
    let log = std::env::temp_dir().join(format!("clarity-take-runner-{}.log", std::process::id()));
    let mut runner = env.spawn_runner(330_100, 300, &log)?;

    // Act: the browser spec, pressing "Run tests" before submitting.
    let output = take_spec(&[
        ("BASE_URL", &client.base),
        ("SESSION_ID", &session),
        ("TOKEN", &token),
        ("PASTE_TEXT", PASTE),
        ("RUN_TESTS", "1"),
    ])
    .output()
    .await?;
    runner.kill().await?;
    let result = take_result(&output)?;
    // The run the page showed is the server's: one RunCompleted on the session's log.
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'RunCompleted'",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(completed, 1, "the page's run is recorded once");
    let editor = result["files"].as_object().cloned().unwrap_or_default();
    // A measurement, reported (docs/benchmarks.md), not asserted.
    println!(
        "capture overhead per event: {}; traffic: {}; accessibility: {}",
        result["overhead"], result["traffic"], result["accessibility"]
    );

    // Assert: the submission point, and the log up to it, gapless and single.
    let through: Option<i64> = sqlx::query_scalar("SELECT (payload -> 'SessionSubmitted' ->> 'through_seq')::bigint FROM events WHERE aggregate_id = $1 AND event_type = 'SessionSubmitted'")
        .bind(&session)
        .fetch_one(&env.pool)
        .await?;
    let through = through.expect("the submission names its seq");
    assert!(
        through > 100,
        "a real typing session has many events: {through}"
    );
    env.wait_for::<i64>(
        "the replay",
        &format!(
            "SELECT COALESCE(max(last_seq), 0) FROM replay_sessions WHERE session_id = '{session}'"
        ),
        |n| *n >= through,
    )
    .await?;
    let (count, distinct, max): (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT seq), max(seq) FROM session_events WHERE session_id = $1::uuid AND stream_kind = 'telemetry'",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(
        (count, distinct, max),
        (through, through, Some(through)),
        "no gap, nothing doubled"
    );

    // The replay's final state is the editor's content, byte for byte.
    let state = client
        .get(
            &format!("/v1/sessions/{session}/replay/state?seq={through}"),
            &admin,
        )
        .await?;
    assert_eq!(state.status, 200, "{state:?}");
    let replayed = state.body["files"].as_object().cloned().unwrap_or_default();
    assert_eq!(
        replayed, editor,
        "the replay's final state equals the editor's files"
    );
    assert!(
        editor.len() >= 2,
        "the starter file(s) and the new file: {editor:?}"
    );
    assert!(
        editor.contains_key("docs/notes.md") && !editor.contains_key("notes.md"),
        "the new file, renamed: {editor:?}"
    );
    assert!(
        !editor.contains_key("scratch.txt"),
        "the deleted file is gone"
    );
    let file_ops: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM session_events WHERE session_id = $1::uuid
           AND event_type IN ('file_renamed', 'file_deleted') ORDER BY seq",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(file_ops, ["file_deleted", "file_renamed"]);

    // Provenance: the pasted block arrived as one paste, typed text as typed edits, and key
    // timings were captured (keystroke dynamics consented by the spec).
    let edits: Vec<(String, String)> = sqlx::query_as(
        "SELECT data ->> 'origin', data ->> 'inserted' FROM session_events
         WHERE session_id = $1::uuid AND stream_kind = 'telemetry' AND event_type = 'edit' ORDER BY seq",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    let pasted: String = edits
        .iter()
        .filter(|(o, _)| o == "paste")
        .map(|(_, t)| t.as_str())
        .collect();
    let typed: String = edits
        .iter()
        .filter(|(o, _)| o == "typed")
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(pasted, PASTE, "exactly the clipboard's text is pasted");
    assert!(typed.contains("typed by the browser test"), "{typed:?}");
    assert!(typed.contains("written while offline"), "{typed:?}");
    assert!(
        typed.contains("typed just before a reload"),
        "what was typed in the moments before the reload is kept: {typed:?}"
    );
    assert!(
        !typed.contains("LIMIT = 10"),
        "pasted text is never counted as typed"
    );
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM session_events WHERE session_id = $1::uuid AND event_type = 'keystroke'")
        .bind(&session)
        .fetch_one(&env.pool)
        .await?;
    assert!(
        keys as usize >= typed.chars().count() / 2,
        "{keys} key timings for {} typed characters",
        typed.chars().count()
    );
    let focus: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM session_events WHERE session_id = $1::uuid
           AND event_type IN ('focus_lost', 'focus_regained') ORDER BY seq",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    assert!(
        focus
            .windows(2)
            .any(|w| w == ["focus_lost", "focus_regained"]),
        "the tab switch is on the record: {focus:?}"
    );

    // The page's copy matches its trace: no submission finding.
    env.wait_for_analysis(&session).await?;
    let integrity = client
        .get(&format!("/v1/sessions/{session}/integrity"), &admin)
        .await?;
    let submission = integrity.body["analysis"]["reports"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["detector"] == "submission").cloned())
        .unwrap_or(json!(null));
    assert!(submission["skipped"].is_null(), "{submission}");
    assert_eq!(submission["findings"], json!([]), "{submission}");

    product.stop().await?;
    Ok(())
}

/// The deadline passes with the page open: staff grant extra time while the candidate works, the
/// page shows it, and when the (moved) deadline comes the page submits by itself. To bring a
/// two-hour deadline within a minute, the API is restarted on the same port with its clock moved
/// on (`CLARITY_CLOCK_OFFSET_SECONDS`) while the page works; the page reloads and takes the
/// server's time from the `Date` header.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_page_open_the_deadline_submits_by_itself_and_extra_time_moves_it(
) -> anyhow::Result<()> {
    // Arrange: the product with an API on a known port.
    let env = TestEnv::new().await?;
    let limit = i64::from(
        clarity_domain::catalogue::builtin()[0]
            .spec
            .time_limit_minutes,
    );
    let address = format!("127.0.0.1:{}", clarity_tests::free_port()?);
    let api = env.spawn_api_at(&address, env.config.clone()).await?;
    let relay = env.spawn_relay();
    let consumers = env.spawn_consumers();
    let client = clarity_tests::Client::new(&api.base);
    client.wait_ready().await?;
    let admin = clarity_tests::new_org(&env, "Acme").await?;
    let (session, token) = client.invite(&admin, "Alan Turing").await?;
    let dir = std::env::temp_dir().join(format!("clarity-take-{session}"));
    std::fs::create_dir_all(&dir)?;
    let (ready, go) = (dir.join("ready"), dir.join("go"));

    // Act: the page works; the server's clock moves on to a minute and a quarter before the
    // deadline; the page carries on to the end.
    let (ready_path, go_path) = (ready.display().to_string(), go.display().to_string());
    let spec = take_spec(&[
        ("MODE", "deadline"),
        ("BASE_URL", &client.base),
        ("SESSION_ID", &session),
        ("TOKEN", &token),
        ("API_KEY", &admin),
        ("EXTRA_MINUTES", "1"),
        ("READY_FILE", &ready_path),
        ("GO_FILE", &go_path),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true)
    .spawn()?;
    let waiting = tokio::time::Instant::now();
    while !ready.exists() {
        anyhow::ensure!(
            waiting.elapsed() < std::time::Duration::from_secs(120),
            "the page never got to work: {:?}",
            spec.wait_with_output().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    api.stop().await?;
    let mut later = env.config.clone();
    later.clock_offset_seconds = limit * 60 - 75;
    let api = env.spawn_api_at(&address, later).await?;
    std::fs::write(&go, "go\n")?;
    let output = spec.wait_with_output().await?;
    let result = take_result(&output)?;

    // Assert: the extra time is on the record, and the session ended with the page's work.
    let granted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'ExtraTimeGranted'",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(granted, 1);
    // Submitted by the page a moment before the deadline, or — when its request arrived just
    // after — expired by the scheduler: either way the submission is the log's.
    env.wait_for::<i64>(
        "the end of the session",
        &format!("SELECT count(*) FROM events WHERE aggregate_id = '{session}' AND event_type IN ('SessionSubmitted', 'SessionExpired')"),
        |n| *n == 1,
    )
    .await?;
    let through: Option<i64> = sqlx::query_scalar(
        "SELECT COALESCE(payload -> 'SessionSubmitted' ->> 'through_seq', payload -> 'SessionExpired' ->> 'through_seq')::bigint
         FROM events WHERE aggregate_id = $1 AND event_type IN ('SessionSubmitted', 'SessionExpired')",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    let through = through.expect("the end names its seq");
    env.wait_for::<i64>(
        "the replay",
        &format!(
            "SELECT COALESCE(max(last_seq), 0) FROM replay_sessions WHERE session_id = '{session}'"
        ),
        |n| *n >= through,
    )
    .await?;
    let state = client
        .get(
            &format!("/v1/sessions/{session}/replay/state?seq={through}"),
            &admin,
        )
        .await?;
    assert_eq!(
        state.body["files"], result["files"],
        "what counts as submitted is what the page held"
    );
    std::fs::remove_dir_all(dir).ok();

    api.stop().await?;
    relay.stop().await?;
    consumers.stop().await?;
    Ok(())
}

/// Face continuity in real Chromium with a fake camera (a face cropped from face-api's sample
/// photo, `MODE=face` in the spec): the page computes descriptors on the device and the server
/// receives only scores — similarity, model id and version, face count and quality — never an
/// image or a descriptor. The built-in assessments leave face continuity off, so this one is a
/// custom copy with `face_continuity: true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consenting_candidate_s_face_checks_are_scores_only() -> anyhow::Result<()> {
    // Arrange: a published assessment that monitors face continuity, and an invitation to it.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let builtin = clarity_domain::catalogue::builtin()
        .into_iter()
        .find(|e| e.id == clarity_domain::catalogue::REST_API_DESIGN_ID)
        .expect("the REST API assessment is built in");
    let mut spec = serde_json::to_value(&builtin.spec)?;
    spec["title"] = json!("REST API Design (face continuity)");
    spec["integrity_policy"]["face_continuity"] = json!(true);
    let created = client
        .post("/v1/assessments", &admin, &json!({ "spec": spec }))
        .await?;
    anyhow::ensure!(created.status == 201, "create refused: {created:?}");
    let assessment = created.body["assessment_id"].as_str().unwrap().to_string();
    let published = client
        .post(
            &format!("/v1/assessments/{assessment}/publish"),
            &admin,
            &json!({}),
        )
        .await?;
    anyhow::ensure!(published.status == 200, "publish refused: {published:?}");
    env.wait_for::<bool>(
        "the published assessment in the catalogue",
        &format!("SELECT EXISTS (SELECT 1 FROM catalogue_versions WHERE assessment_id = '{assessment}' AND version = 1)"),
        |d| *d,
    )
    .await?;
    let invited = client
        .post(
            "/v1/sessions",
            &admin,
            &json!({"assessment_id": assessment, "candidate": {"name": "Iris Face", "email": "iris.face@example.com"}}),
        )
        .await?;
    anyhow::ensure!(invited.status == 201, "invite refused: {invited:?}");
    let session = invited.body["session_id"].as_str().unwrap().to_string();
    let token = invited.body["candidate_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Act: the browser spec with the fake camera.
    let output = take_spec(&[
        ("MODE", "face"),
        ("BASE_URL", &client.base),
        ("SESSION_ID", &session),
        ("TOKEN", &token),
    ])
    .output()
    .await?;
    let result = take_result(&output)?;
    let sent = result["face_checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(sent.len() >= 2, "at least two face checks: {sent:?}");

    // Assert: the server holds the checks the page sent, and nothing but scores.
    let through: Option<i64> = sqlx::query_scalar("SELECT (payload -> 'SessionSubmitted' ->> 'through_seq')::bigint FROM events WHERE aggregate_id = $1 AND event_type = 'SessionSubmitted'")
        .bind(&session)
        .fetch_one(&env.pool)
        .await?;
    let through = through.expect("the submission names its seq");
    env.wait_for::<i64>(
        "the telemetry in session_events",
        &format!("SELECT COALESCE(max(seq), 0) FROM session_events WHERE session_id = '{session}' AND stream_kind = 'telemetry'"),
        |n| *n >= through,
    )
    .await?;
    let rows: Vec<(i64, Value)> = sqlx::query_as(
        "SELECT seq, data::jsonb FROM session_events
         WHERE session_id = $1::uuid AND stream_kind = 'telemetry' AND event_type = 'face_check' ORDER BY seq",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        rows.len(),
        sent.len(),
        "every check the page sent is stored, once: {rows:?}"
    );
    let allowed = [
        "type",
        "similarity",
        "model_id",
        "model_version",
        "face_count",
        "quality",
    ];
    for (seq, data) in &rows {
        let fields = data.as_object().expect("a face check is an object");
        let extra: Vec<&String> = fields
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "seq {seq} carries more than scores: {extra:?} in {data}"
        );
        assert_eq!(data["model_id"], "face-api.js/faceRecognitionNet", "{data}");
        assert_eq!(data["model_version"], "1.7.15", "{data}");
        let similarity = data["similarity"].as_f64().expect("a similarity");
        let quality = data["quality"].as_f64().expect("a quality");
        assert!(
            (0.0..=1.0).contains(&similarity) && (0.0..=1.0).contains(&quality),
            "{data}"
        );
        assert!(data["face_count"].as_u64().is_some(), "{data}");
        // No image or descriptor hides in a field: every value is a short scalar.
        assert!(data.to_string().len() < 300, "{data}");
    }
    // The fake camera shows one face, the same in every frame: after the reference, each check
    // sees one face that matches it.
    assert!(
        rows.iter()
            .any(|(_, d)| d["face_count"] == 1 && d["similarity"].as_f64() > Some(0.9)),
        "{rows:?}"
    );

    product.stop().await?;
    Ok(())
}
