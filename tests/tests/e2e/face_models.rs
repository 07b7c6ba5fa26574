//! Face models are calibrated, not listed (issue 15): an admin registers a model's labelled
//! genuine and impostor scores, Clarity derives its threshold and error rates, and the integrity
//! worker interprets that model's face checks from then on; a model without a calibration is
//! shown as uncalibrated on the analysis, never silently skipped. Bad registrations are refused
//! with a stable code and change nothing; other organizations do not see the calibration.

use chrono::Duration;
use clarity_tests::{new_org, TestEnv};
use serde_json::{json, Value};

/// Evenly spread labelled scores: genuine 0.70–0.95, impostor 0.10–0.55.
fn scores() -> (Vec<f64>, Vec<f64>) {
    let genuine = (0..400).map(|i| 0.70 + 0.25 * i as f64 / 400.0).collect();
    let impostor = (0..400).map(|i| 0.10 + 0.45 * i as f64 / 400.0).collect();
    (genuine, impostor)
}

/// Thirty face checks from `model`: the candidate's own face, then from the eleventh check on
/// another person's (scores an impostor gets).
fn face_checks(model: &str) -> Vec<Value> {
    (0..30)
        .map(|i| {
            let similarity = if i < 10 { 0.88 } else { 0.30 };
            json!({"type": "face_check", "similarity": similarity, "model_id": model, "model_version": "3", "face_count": 1, "quality": 0.9})
        })
        .collect()
}

/// The organization's own copy of the first built-in assessment, with face continuity on (the
/// built-in assessments leave it off); returns its id.
async fn face_checked_assessment(
    client: &clarity_tests::Client,
    admin: &str,
) -> anyhow::Result<String> {
    let mut spec = serde_json::to_value(&clarity_domain::catalogue::builtin()[0].spec)?;
    spec["title"] = json!("API task with face checks");
    spec["integrity_policy"]["face_continuity"] = json!(true);
    let r = client
        .post("/v1/assessments", admin, &json!({ "spec": spec }))
        .await?;
    anyhow::ensure!(r.status == 201, "{r:?}");
    let id = r.body["assessment_id"].as_str().unwrap().to_string();
    let r = client
        .post(&format!("/v1/assessments/{id}/publish"), admin, &json!({}))
        .await?;
    anyhow::ensure!(r.status == 200, "{r:?}");
    Ok(id)
}

/// Invite to `assessment` → consent to face checks → start; (session id, candidate token).
async fn started(
    client: &clarity_tests::Client,
    admin: &str,
    assessment: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let r = client
        .post(
            "/v1/sessions",
            admin,
            &json!({"assessment_id": assessment, "candidate": {"name": name, "email": format!("{}@example.com", name.to_lowercase().replace(' ', "."))}}),
        )
        .await?;
    anyhow::ensure!(r.status == 201, "invite refused: {r:?}");
    let session = r.body["session_id"].as_str().unwrap().to_string();
    let token = r.body["candidate_token"].as_str().unwrap().to_string();
    let consent = json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": false, "face_continuity": true}});
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

async fn send_and_submit(
    env: &TestEnv,
    client: &clarity_tests::Client,
    session: &str,
    token: &str,
    data: Vec<Value>,
) -> anyhow::Result<()> {
    let started: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT (payload->'SessionStarted'->>'at')::timestamptz FROM events
         WHERE aggregate_id = $1 AND event_type = 'SessionStarted'",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    let events: Vec<Value> = data
        .into_iter()
        .enumerate()
        .map(|(i, d)| json!({"seq": i + 1, "ts": started + Duration::milliseconds(50 * (i as i64 + 1)), "data": d}))
        .collect();
    let r = client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            token,
            &json!({ "events": events }),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
    let r = client
        .post(&format!("/v1/sessions/{session}/submit"), token, &json!({}))
        .await?;
    anyhow::ensure!(r.status == 200, "submit refused: {r:?}");
    Ok(())
}

fn face_report(view: &Value) -> Value {
    view["analysis"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["detector"] == "face_continuity")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_face_model_is_calibrated_and_interpreted_and_an_unknown_one_is_shown_uncalibrated(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (genuine, impostor) = scores();

    // Act: register the model.
    let r = client
        .post(
            "/v1/face-models",
            &admin,
            &json!({"model_id": "acme-face", "model_version": "3", "genuine": genuine, "impostor": impostor}),
        )
        .await?;

    // Assert: the threshold keeps 1% of genuine pairs below it; the impostor pairs passing it are
    // measured (0.696 and up: none of 0.10–0.55).
    assert_eq!(r.status, 201, "{r:?}");
    assert!(
        (r.body["threshold"].as_f64().unwrap() - 0.7025).abs() < 1e-3,
        "{}",
        r.body
    );
    assert!((r.body["false_non_match_rate"].as_f64().unwrap() - 0.01).abs() < 1e-9);
    assert_eq!(r.body["false_match_rate"], 0.0);
    assert_eq!(r.body["source"], "registered");
    assert_eq!(r.body["scores_sha256"].as_str().unwrap().len(), 64);
    let listed = client.get("/v1/face-models", &admin).await?;
    let models: Vec<(&str, &str)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model_id"].as_str().unwrap(),
                m["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        models,
        [
            ("acme-face", "registered"),
            ("face-api.js/faceRecognitionNet", "built-in"),
            ("clarity-face", "built-in"),
            ("clarity-face", "built-in")
        ]
    );

    // Act: bad registrations.
    let (reviewer_id, reviewer) = client.member(&admin, "Rita Reviewer", "reviewer").await?;
    let _ = reviewer_id;
    let few: Vec<f64> = genuine[..99].to_vec();
    let mut out_of_range = genuine.clone();
    out_of_range[3] = 1.5;
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "a reviewer",
            &reviewer,
            json!({"model_id": "x", "model_version": "1", "genuine": genuine, "impostor": impostor}),
            403,
            "forbidden",
        ),
        (
            "the same version again",
            &admin,
            json!({"model_id": "acme-face", "model_version": "3", "genuine": genuine, "impostor": impostor}),
            409,
            "face_model_registered",
        ),
        (
            "a built-in model",
            &admin,
            json!({"model_id": "clarity-face", "model_version": "1", "genuine": genuine, "impostor": impostor}),
            409,
            "face_model_built_in",
        ),
        (
            "too few scores",
            &admin,
            json!({"model_id": "x", "model_version": "1", "genuine": few, "impostor": impostor}),
            422,
            "calibration_refused",
        ),
        (
            "a score above 1",
            &admin,
            json!({"model_id": "x", "model_version": "1", "genuine": out_of_range, "impostor": impostor}),
            422,
            "calibration_refused",
        ),
        (
            "a model that cannot tell people apart",
            &admin,
            json!({"model_id": "x", "model_version": "1", "genuine": genuine, "impostor": genuine}),
            422,
            "calibration_refused",
        ),
        (
            "a blank model id",
            &admin,
            json!({"model_id": " ", "model_version": "1", "genuine": genuine, "impostor": impostor}),
            422,
            "invalid_model",
        ),
        (
            "an unknown field",
            &admin,
            json!({"model_id": "x", "model_version": "1", "genuine": genuine, "impostor": impostor, "threshold": 0.1}),
            422,
            "invalid_body",
        ),
    ];
    for (what, key, body, status, code) in cases {
        let r = client.post("/v1/face-models", key, &body).await?;
        // Assert: a clear refusal with a stable code.
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert_eq!(r.body["error"]["code"], code, "{what}: {r:?}");
    }
    // ...and nothing changed.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM face_models")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(rows, 1);
    let other_org = new_org(&env, "Globex").await?;
    let theirs = client.get("/v1/face-models", &other_org).await?;
    assert!(theirs
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["model_id"] != "acme-face"));

    // Act: a swap seen by the registered model, and the same checks from an unknown model.
    let assessment = face_checked_assessment(&client, &admin).await?;
    let (swapped, swapped_token) = started(&client, &admin, &assessment, "Swap Person").await?;
    send_and_submit(
        &env,
        &client,
        &swapped,
        &swapped_token,
        face_checks("acme-face"),
    )
    .await?;
    let (unknown, unknown_token) = started(&client, &admin, &assessment, "Other Model").await?;
    send_and_submit(
        &env,
        &client,
        &unknown,
        &unknown_token,
        face_checks("zeta-face"),
    )
    .await?;
    for s in [&swapped, &unknown] {
        env.wait_for_analysis(s).await?;
    }

    // Assert: the registered model's mismatch is found, with the calibration it used.
    let view = client
        .get(&format!("/v1/sessions/{swapped}/integrity"), &admin)
        .await?;
    assert_eq!(view.body["tier"], "major_concerns", "{}", view.body);
    let face = face_report(&view.body);
    let mismatch = face["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "below_threshold_m_of_n")
        .unwrap_or_else(|| panic!("no mismatch in {face}"));
    assert_eq!(mismatch["evidence"][0]["replay_seq"], 11);
    assert_eq!(face["metrics"]["calibration"]["source"], "registered");
    // ...and the unknown model is said to be uncalibrated (a hint: it raises no tier).
    let view = client
        .get(&format!("/v1/sessions/{unknown}/integrity"), &admin)
        .await?;
    assert_eq!(view.body["tier"], "none", "{}", view.body);
    let face = face_report(&view.body);
    assert!(face["skipped"].is_null(), "{face}");
    let hint = face["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "face_model_uncalibrated")
        .unwrap_or_else(|| panic!("no uncalibrated notice in {face}"));
    assert_eq!(hint["level"], "hint");
    assert!(hint["summary"].as_str().unwrap().contains("zeta-face v3"));
    assert!(face["metrics"]["calibration"].is_null());
    Ok(())
}
