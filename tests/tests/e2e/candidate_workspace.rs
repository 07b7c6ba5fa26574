//! The candidate's side of a session, end to end against the real API, broker and projections:
//! what the candidate can read (never grader content), the monitoring notice and consent (by id
//! and content hash, enforced at ingest, withdrawable), extra time, resume from the server's own
//! reconstruction, and the submission as the log reconstructs it (a differing client copy is a
//! finding with its diff; staff download the reconstruction).

use clarity_tests::{Client, TestEnv};
use serde_json::{json, Value};

/// Every piece of grader-only text of the built-in REST API assessment: criterion keys and
/// names, and each level's descriptor.
fn grader_texts() -> Vec<String> {
    let spec = &clarity_domain::catalogue::builtin()[0].spec;
    let mut texts = Vec::new();
    for c in &spec.rubric.criteria {
        texts.push(c.key.clone());
        texts.push(c.name.clone());
        texts.extend(c.levels.iter().map(|l| l.descriptor.clone()));
    }
    // A criterion name that also names part of the task (it is in the prompt) is not a secret;
    // the descriptors are the answer key.
    let candidate_text: String = spec
        .tasks
        .iter()
        .flat_map(|t| {
            std::iter::once(t.prompt.clone())
                .chain(std::iter::once(t.title.clone()))
                .chain(t.starter_files.iter().map(|f| f.content.clone()))
        })
        .collect();
    texts.retain(|t| t.len() >= 12 && !candidate_text.contains(t.as_str()));
    texts
}

fn consent(keystroke: bool, face: bool) -> Value {
    json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(),
           "scopes": {"keystroke_dynamics": keystroke, "face_continuity": face}})
}

fn event(seq: u64, data: Value) -> Value {
    json!({"seq": seq, "ts": chrono::Utc::now(), "data": data})
}

fn key(seq: u64) -> Value {
    event(
        seq,
        json!({"type": "keystroke", "key_class": "letter", "down_ms": seq * 100, "up_ms": seq * 100 + 40}),
    )
}

fn face(seq: u64) -> Value {
    event(
        seq,
        json!({"type": "face_check", "similarity": 0.93, "model_id": "m", "model_version": "1", "face_count": 1, "quality": 0.9}),
    )
}

async fn telemetry(
    client: &Client,
    session: &str,
    token: &str,
    events: Vec<Value>,
) -> anyhow::Result<clarity_tests::Reply> {
    client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            token,
            &json!({ "events": events }),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn candidates_never_see_grader_content_and_consent_is_enforced_at_ingest(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let secrets = grader_texts();
    assert!(
        secrets.len() >= 8,
        "the rubric has descriptors to look for: {secrets:?}"
    );
    let mut seen: Vec<(String, String)> = Vec::new();
    let invite = client
        .post("/v1/sessions", &admin, &json!({"assessment_id": clarity_tests::REST_API, "candidate": {"name": "Cleo", "email": "cleo@example.com"}}))
        .await?;
    assert_eq!(invite.status, 201, "{invite:?}");
    let session = invite.body["session_id"].as_str().unwrap().to_string();
    let token = invite.body["candidate_token"].as_str().unwrap().to_string();
    assert_eq!(
        invite.body["candidate_link"],
        format!("/take/{session}#token={token}"),
        "the token travels in the fragment only"
    );
    let base = format!("/v1/sessions/{session}");

    // Act + Assert: the workspace and the notice.
    let workspace = client.get(&format!("{base}/workspace"), &token).await?;
    assert_eq!(workspace.status, 200, "{workspace:?}");
    assert!(workspace.body["assessment"]["rubric"].is_null());
    assert!(!workspace.body["assessment"]["tasks"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        workspace.body["assessment"]["monitoring"]["paste_tracking"],
        true
    );
    assert!(workspace.body["consent"].is_null());
    seen.push(("workspace".into(), workspace.body.to_string()));
    let notice = client.get(&format!("{base}/notice"), &token).await?;
    assert_eq!(notice.status, 200, "{notice:?}");
    assert_eq!(notice.body["notice_id"], clarity_tests::NOTICE_ID);
    assert_eq!(
        notice.body["content_sha256"],
        clarity_tests::notice_sha256()
    );
    assert_eq!(
        notice.body["optional_scopes"],
        json!(["keystroke_dynamics"])
    );
    seen.push(("notice".into(), notice.body.to_string()));

    // A consent naming another text of the notice is refused and records nothing.
    let mut stale = consent(false, false);
    stale["notice_sha256"] = json!("0".repeat(64));
    let r = client
        .post(&format!("{base}/consent"), &token, &stale)
        .await?;
    assert_eq!((r.status, r.code()), (409, "notice_outdated"), "{r:?}");
    let r = client
        .post(&format!("{base}/start"), &token, &json!({}))
        .await?;
    assert_eq!((r.status, r.code()), (409, "consent_required"), "{r:?}");
    // Keystroke dynamics declined.
    let r = client
        .post(&format!("{base}/consent"), &token, &consent(false, false))
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    seen.push(("consent".into(), r.body.to_string()));
    let r = client
        .post(&format!("{base}/start"), &token, &json!({}))
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["consent"]["scopes"]["keystroke_dynamics"], false);
    seen.push(("start".into(), r.body.to_string()));
    let created = event(
        1,
        json!({"type": "file_created", "file": "app.py", "content": ""}),
    );
    let r = telemetry(&client, &session, &token, vec![created.clone(), key(2)]).await?;
    assert_eq!((r.status, r.code()), (422, "invalid_events"), "{r:?}");
    assert_eq!(r.body["error"]["details"][0]["code"], "scope_not_consented");
    assert_eq!(r.body["error"]["details"][0]["seq"], 2);
    // Nothing of the refused batch was taken: the same numbers go through without the key.
    let edit = event(
        2,
        json!({"type": "edit", "file": "app.py", "position": 0, "deleted": 0, "inserted": "print(1)", "origin": "typed"}),
    );
    let r = telemetry(&client, &session, &token, vec![created, edit]).await?;
    assert_eq!(
        (r.status, r.body["last_seq"].clone()),
        (200, json!(2)),
        "{r:?}"
    );
    seen.push(("telemetry".into(), r.body.to_string()));
    let r = client
        .post(
            &format!("{base}/consent/withdraw"),
            &token,
            &json!({"scopes": ["keystroke_dynamics"]}),
        )
        .await?;
    assert_eq!((r.status, r.code()), (409, "nothing_to_withdraw"), "{r:?}");
    seen.push(("withdraw".into(), r.body.to_string()));

    // A second candidate consents to both scopes, then withdraws face continuity mid-session.
    let (other, other_token) = client.invite(&admin, "Finn").await?;
    let other_base = format!("/v1/sessions/{other}");
    assert_eq!(
        client
            .post(
                &format!("{other_base}/consent"),
                &other_token,
                &consent(true, true)
            )
            .await?
            .status,
        200
    );
    assert_eq!(
        client
            .post(&format!("{other_base}/start"), &other_token, &json!({}))
            .await?
            .status,
        200
    );
    let r = telemetry(&client, &other, &other_token, vec![key(1), face(2)]).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .post(
            &format!("{other_base}/consent/withdraw"),
            &other_token,
            &json!({"scopes": ["face_continuity"]}),
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["consent"]["scopes"],
        json!({"keystroke_dynamics": true, "face_continuity": false})
    );
    let r = telemetry(&client, &other, &other_token, vec![key(3), face(4)]).await?;
    assert_eq!((r.status, r.code()), (422, "invalid_events"), "{r:?}");
    assert_eq!(r.body["error"]["details"][0]["seq"], 4);
    assert_eq!(r.body["error"]["details"][0]["code"], "scope_not_consented");
    assert_eq!(
        telemetry(&client, &other, &other_token, vec![key(3)])
            .await?
            .status,
        200
    );
    let withdrawn: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'ConsentWithdrawn'",
    )
    .bind(&other)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(withdrawn, 1, "the withdrawal is an event");
    env.wait_for::<bool>(
        "the withdrawal in the read model",
        &format!("SELECT COALESCE((consent_scopes ->> 'face_continuity')::boolean, true) = false AND jsonb_array_length(consent_withdrawals) = 1 FROM sessions WHERE session_id = '{other}'"),
        |done| *done,
    )
    .await?;
    let analysts_see: Vec<(String, bool)> = sqlx::query_as(
        "SELECT session_id::text, consent_withdrawn FROM analytics.session_facts WHERE session_id IN ($1::uuid, $2::uuid) ORDER BY session_id = $2::uuid",
    )
    .bind(&session)
    .bind(&other)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        analysts_see,
        vec![(session.clone(), false), (other.clone(), true)]
    );

    // Everything else a candidate can reach: resume, submit, the page and its assets.
    let r = client.get(&format!("{base}/resume"), &token).await?;
    assert_eq!(r.status, 200, "{r:?}");
    seen.push(("resume".into(), r.body.to_string()));
    let r = client
        .post(&format!("{base}/submit"), &token, &json!({}))
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    seen.push(("submit".into(), r.body.to_string()));
    for path in [
        format!("/take/{session}"),
        "/take/assets/take.js".to_string(),
        "/take/assets/take.css".to_string(),
    ] {
        let res = client
            .http
            .get(format!("{}{path}", client.base))
            .send()
            .await?;
        assert_eq!(res.status().as_u16(), 200, "{path}");
        seen.push((path, res.text().await?));
    }
    for (what, body) in &seen {
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "{what} carries grader-only text: {secret:?}"
            );
        }
    }

    product.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_submission_is_what_the_log_reconstructs_and_a_differing_copy_is_a_finding(
) -> anyhow::Result<()> {
    // Arrange: a candidate writes app.py through telemetry.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (session, token) = client.started_session(&admin, "Sol").await?;
    let base = format!("/v1/sessions/{session}");
    let events = vec![
        event(
            1,
            json!({"type": "file_created", "file": "app.py", "content": ""}),
        ),
        event(
            2,
            json!({"type": "edit", "file": "app.py", "position": 0, "deleted": 0, "inserted": "def total(xs):\n", "origin": "typed"}),
        ),
        event(
            3,
            json!({"type": "edit", "file": "app.py", "position": 15, "deleted": 0, "inserted": "    return sum(xs)\n", "origin": "typed"}),
        ),
    ];
    assert_eq!(
        telemetry(&client, &session, &token, events).await?.status,
        200
    );
    let written = "def total(xs):\n    return sum(xs)\n";

    // Act: resume (a reload), then submit a copy that is not what was written.
    let resume = client.get(&format!("{base}/resume"), &token).await?;
    let submitted = client
        .post(
            &format!("{base}/submit"),
            &token,
            &json!({"files": [{"path": "app.py", "content": "def total(xs):\n    return 42\n"}]}),
        )
        .await?;

    // Assert
    assert_eq!(resume.status, 200, "{resume:?}");
    assert_eq!(resume.body["acked_seq"], 3);
    assert_eq!(
        resume.body["files"],
        json!([{"path": "app.py", "content": written}])
    );
    assert_eq!(submitted.status, 200, "{submitted:?}");
    let through: Option<i64> = sqlx::query_scalar("SELECT (payload -> 'SessionSubmitted' ->> 'through_seq')::bigint FROM events WHERE aggregate_id = $1 AND event_type = 'SessionSubmitted'")
        .bind(&session)
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(through, Some(3));
    env.wait_for_analysis(&session).await?;
    let integrity = client.get(&format!("{base}/integrity"), &admin).await?;
    assert_eq!(integrity.status, 200, "{integrity:?}");
    let reports = integrity.body["analysis"]["reports"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| {
            integrity.body["analyses"][0]["reports"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        });
    let report = reports
        .iter()
        .find(|r| r["detector"] == "submission")
        .unwrap_or_else(|| panic!("no submission report: {}", integrity.body));
    let finding = &report["findings"][0];
    assert_eq!(finding["rule"], "submission_differs_from_trace", "{report}");
    assert_eq!(finding["level"], "review");
    let note = finding["evidence"][0]["note"].as_str().unwrap();
    assert!(
        note.contains("-    return sum(xs)\n+    return 42\n"),
        "{note}"
    );
    assert_eq!(finding["evidence"][0]["replay_seq"], 3);
    // Staff get the reconstruction, not the client's copy: as a zip and in the report.
    let zip = client
        .http
        .get(format!("{}{base}/submission.zip", client.base))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(zip.status().as_u16(), 200);
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let bytes = zip.bytes().await?;
    let dir = tempfile_dir(&session)?;
    std::fs::write(dir.join("s.zip"), &bytes)?;
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys,zipfile,json; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({i.filename: z.read(i).decode() for i in z.infolist()}))"])
        .arg(dir.join("s.zip"))
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unzipped: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(unzipped, json!({"app.py": written}));
    let report = client.get(&format!("{base}/report"), &admin).await?;
    assert_eq!(
        report.body["content"]["submission"]["through_seq"], 3,
        "{report:?}"
    );
    assert_eq!(
        report.body["content"]["submission"]["files"][0]["path"],
        "app.py"
    );
    assert_eq!(
        report.body["content"]["submission"]["files"][0]["bytes"],
        written.len()
    );
    // The candidate cannot download it.
    let r = client
        .http
        .get(format!("{}{base}/submission.zip", client.base))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401);
    std::fs::remove_dir_all(dir).ok();

    product.stop().await?;
    Ok(())
}

fn tempfile_dir(tag: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("clarity-e2e-{tag}"));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn extra_time_lengthens_the_limit_before_the_start_and_moves_the_deadline_during_it(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (_, reviewer_key) = client.member(&admin, "Rita", "reviewer").await?;
    let (session, token) = client.invite(&admin, "Ivy").await?;
    let base = format!("/v1/sessions/{session}");
    let grant = |minutes: u32| json!({"minutes": minutes, "reason": "documented accommodation"});

    // Act + Assert: refusals change nothing.
    let r = client
        .post(&format!("{base}/extra-time"), &reviewer_key, &grant(30))
        .await?;
    assert_eq!(r.status, 403, "{r:?}");
    let r = client
        .post(&format!("{base}/extra-time"), &admin, &grant(0))
        .await?;
    assert_eq!((r.status, r.code()), (422, "invalid_extra_time"), "{r:?}");
    let r = client
        .post(
            &format!("{base}/extra-time"),
            &admin,
            &json!({"minutes": 5, "reason": " "}),
        )
        .await?;
    assert_eq!(r.status, 422, "{r:?}");
    // Before the start: the limit grows.
    let r = client
        .post(&format!("{base}/extra-time"), &admin, &grant(30))
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["extra_time_minutes"], 30);
    assert!(r.body["deadline"].is_null());
    assert_eq!(
        client
            .post(&format!("{base}/consent"), &token, &consent(true, false))
            .await?
            .status,
        200
    );
    let started = client
        .post(&format!("{base}/start"), &token, &json!({}))
        .await?;
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let limit = (at(&started.body["deadline"]) - at(&started.body["started_at"])).num_minutes();
    let spec_limit = i64::from(
        clarity_domain::catalogue::builtin()[0]
            .spec
            .time_limit_minutes,
    );
    assert_eq!(limit, spec_limit + 30);
    // During: the deadline moves, and the candidate's workspace shows it.
    let r = client
        .post(&format!("{base}/extra-time"), &admin, &grant(15))
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (at(&r.body["deadline"]) - at(&started.body["deadline"])).num_minutes(),
        15
    );
    let workspace = client.get(&format!("{base}/workspace"), &token).await?;
    assert_eq!(workspace.body["deadline"], r.body["deadline"]);
    assert_eq!(workspace.body["extra_time_minutes"], 45);
    let r = client
        .post(&format!("{base}/extra-time"), &admin, &grant(450))
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (409, "extra_time_limit_reached"),
        "{r:?}"
    );
    env.wait_for::<i32>(
        "extra time in the read model",
        &format!("SELECT extra_time_minutes FROM sessions WHERE session_id = '{session}'"),
        |m| *m == 45,
    )
    .await?;
    let deadline_row: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT deadline FROM sessions WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(&env.pool)
            .await?;
    // (PostgreSQL keeps microseconds.)
    assert_eq!(
        deadline_row.timestamp_micros(),
        at(&workspace.body["deadline"]).timestamp_micros()
    );
    let extra: i32 = sqlx::query_scalar(
        "SELECT extra_time_minutes FROM analytics.session_facts WHERE session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(extra, 45, "analysts see the accommodation");
    // A finished session cannot be given time.
    assert_eq!(
        client
            .post(&format!("{base}/submit"), &token, &json!({}))
            .await?
            .status,
        200
    );
    let r = client
        .post(&format!("{base}/extra-time"), &admin, &grant(5))
        .await?;
    assert_eq!((r.status, r.code()), (409, "session_finished"), "{r:?}");

    product.stop().await?;
    Ok(())
}
