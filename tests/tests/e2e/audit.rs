//! The tamper-evident audit trail end to end: the consumer chains every record of a session,
//! signs checkpoints at submission, analysis and decisions, seals the head into the analysis and
//! the decision; `clarity audit export` writes a bundle that `clarity verify` checks with no
//! database and no network; changing, dropping or reordering stored events is caught and named.

use clarity_domain::audit;
use clarity_tests::{Client, TestEnv};
use serde_json::json;
use uuid::Uuid;

/// A finished, analysed, reviewed and decided session; returns its id.
async fn decided_session(env: &TestEnv, client: &Client, admin: &str) -> anyhow::Result<String> {
    let (reviewer, reviewer_key) = client.member(admin, "Rae", "reviewer").await?;
    let (_, manager_key) = client.member(admin, "Max", "hiring_manager").await?;
    let (session, _) = env
        .analysed_session(client, admin, "Ada Lovelace", 120, &[("main.py", "x")])
        .await?;
    client
        .complete_review(admin, &session, (&reviewer, &reviewer_key), |c| {
            c.levels[0].score
        })
        .await?;
    let base = format!("/v1/sessions/{session}");
    env.wait_for::<i64>(
        "the session's score",
        &format!("SELECT count(*) FROM session_scores WHERE session_id = '{session}'"),
        |n| *n == 1,
    )
    .await?;
    let report = client.get(&format!("{base}/report"), &manager_key).await?;
    let served = report.body["content_hash"].as_str().unwrap().to_string();
    let r = client
        .post(&format!("{base}/decisions"), &manager_key, &json!({"outcome": "reject", "rationale": "Tests fail on the core path.", "report_hash": served}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<i64>("the decision's checkpoint", &format!("SELECT count(*) FROM audit_checkpoints WHERE session_id = '{session}' AND reason = 'decision'"), |n| *n == 1).await?;
    Ok(session)
}

fn run_verify(args: &[&str]) -> anyhow::Result<(bool, String)> {
    // No database and no network: the URL and the broker point nowhere.
    let output = std::process::Command::new(clarity_tests::clarity_binary()?)
        .args(args)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decided_session_exports_a_bundle_that_verifies_offline_and_tampering_is_named(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let session = decided_session(&env, &client, &admin).await?;
    let id: Uuid = session.parse()?;

    // Act: export, then verify with the published key.
    let bundle = clarity_api::audit::export(&env.pool, id).await?;
    let key = client.get("/v1/audit/public-key", "").await?;
    assert_eq!(key.status, 200, "{key:?}");
    assert_eq!(key.body["public_key"], bundle.public_key.as_str());
    let verified = audit::verify_with_key(
        &bundle,
        &audit::verifying_key_from_hex(key.body["public_key"].as_str().unwrap())?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Assert: the whole stream — every lifecycle event up to the decision and all 120 telemetry
    // events — with the analysis and decision seals.
    assert_eq!(verified.telemetry_events, 120);
    let criteria = clarity_domain::catalogue::builtin()[0]
        .spec
        .rubric
        .criteria
        .len() as u64;
    // Invited, consent, started, submitted, analysed, reviewers assigned, one score per
    // criterion, review completed, decision.
    assert_eq!(
        verified.lifecycle_events,
        4 + 1 + 1 + criteria + 1 + 1,
        "{verified:?}"
    );
    assert_eq!(
        verified.seals, 2,
        "the analysis and the decision each seal the head"
    );
    let decision_seal: (i64, String) =
        sqlx::query_as("SELECT chain_count, chain_hash FROM decisions WHERE session_id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await?;
    assert!(
        decision_seal.0 >= 125,
        "the decision pins the telemetry and the submission: {decision_seal:?}"
    );
    let live = clarity_api::audit::check_session(&env.pool, &env.config.kafka(), id).await?;
    assert!(live.problems.is_empty(), "{:?}", live.problems);
    assert!(
        live.checkpoints_verified >= 3,
        "submitted, analysed, decision: {live:?}"
    );

    // Auditors download the same bundle through the API; the download is in the access log.
    let (_, auditor_key) = client.member(&admin, "Audra", "auditor").await?;
    let downloaded = client
        .get(
            &format!("/v1/sessions/{session}/audit/bundle"),
            &auditor_key,
        )
        .await?;
    assert_eq!(downloaded.status, 200, "{downloaded:?}");
    let downloaded = audit::Bundle::from_json(&downloaded.body.to_string())?;
    assert!(audit::verify(&downloaded).is_ok());
    assert_eq!(downloaded.checkpoint, bundle.checkpoint);
    // Blind review holds for the bundle too: an admin who is a pending reviewer of the session
    // gets it only after completing their review (it cannot leave the scores out and verify).
    let (second_admin, second_admin_key) = client.member(&admin, "Adele", "admin").await?;
    let r = client
        .post(
            &format!("/v1/sessions/{session}/reviewers"),
            &admin,
            &serde_json::json!({"reviewers": [second_admin]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<i64>(
        "the new reviewer",
        &format!("SELECT count(*) FROM review_reviewers WHERE session_id = '{session}' AND reviewer = '{second_admin}'"),
        |n| *n == 1,
    )
    .await?;
    let r = client
        .get(
            &format!("/v1/sessions/{session}/audit/bundle"),
            &second_admin_key,
        )
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (403, "complete_your_review_first"),
        "{r:?}"
    );
    let log = client
        .get(
            &format!("/v1/audit/access?session_id={session}"),
            &auditor_key,
        )
        .await?;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"audit_bundle.export"), "{actions:?}");
    assert!(actions.contains(&"report.read"), "{actions:?}");

    // The CLI verifies the file alone.
    let dir = std::env::temp_dir().join(format!("clarity-audit-{}", env.id));
    std::fs::create_dir_all(&dir)?;
    let good = dir.join("bundle.json");
    std::fs::write(&good, bundle.to_json())?;
    let (ok, text) = run_verify(&["verify", good.to_str().unwrap()])?;
    assert!(ok, "{text}");
    assert!(text.contains("intact"), "{text}");

    // Tampering with the store: change one telemetry event's text.
    sqlx::query("UPDATE session_events SET data = json_build_object('type', 'edit', 'file', 'main.py', 'position', 0, 'deleted', 0, 'inserted', 'Y', 'origin', 'typed') WHERE session_id = $1 AND stream_kind = 'telemetry' AND seq = 40")
        .bind(id)
        .execute(&env.pool)
        .await?;
    let live = clarity_api::audit::check_session(&env.pool, &env.config.kafka(), id).await?;
    assert!(
        live.problems
            .first()
            .is_some_and(|p| p.contains("telemetry #40")),
        "{:?}",
        live.problems
    );
    let tampered = clarity_api::audit::export(&env.pool, id).await?;
    let error = audit::verify(&tampered).expect_err("a changed event fails verification");
    let message = error.to_string();
    assert!(
        message.contains("head") || message.contains("seal") || message.contains("signature"),
        "{message}"
    );
    let bad = dir.join("tampered.json");
    std::fs::write(&bad, tampered.to_json())?;
    let (ok, text) = run_verify(&["verify", bad.to_str().unwrap()])?;
    assert!(!ok, "{text}");
    assert!(text.contains("NOT intact"), "{text}");

    // Editing the bundle instead: change one byte of one event and keep the hashes — named.
    let mut edited = bundle.clone();
    edited.entries[57].data["inserted"] = json!("Z");
    let error = audit::verify(&edited).expect_err("an edited entry fails");
    assert_eq!(error.index, Some(57), "{error}");
    // Dropping an event from the bundle: the gap is named at the entry after it.
    let mut dropped = bundle.clone();
    dropped.entries.remove(30);
    dropped.hashes.remove(30);
    let error = audit::verify(&dropped).expect_err("a dropped entry fails");
    assert_eq!(error.index, Some(30), "{error}");
    // Reordering two telemetry events.
    let mut reordered = bundle.clone();
    reordered.entries.swap(20, 21);
    let error = audit::verify(&reordered).expect_err("reordered entries fail");
    assert_eq!(error.index, Some(20), "{error}");

    // Dropping a stored event: the live check names it.
    sqlx::query("DELETE FROM session_events WHERE session_id = $1 AND stream_kind = 'telemetry' AND seq = 90")
        .bind(id)
        .execute(&env.pool)
        .await?;
    let live = clarity_api::audit::check_session(&env.pool, &env.config.kafka(), id).await?;
    assert!(!live.problems.is_empty());

    std::fs::remove_dir_all(&dir).ok();
    product.stop().await
}
