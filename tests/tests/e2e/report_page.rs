//! The candidate report page in a real headless browser (Debian's chromium driven by
//! playwright-core; scripts/test installs both), against the real API and projections.

use chrono::Duration;
use clarity_tests::TestEnv;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_page_shows_the_served_version_scores_and_links_into_the_replay(
) -> anyhow::Result<()> {
    // Arrange: a session with a large paste after a tab-away, reviewed by one reviewer.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (reviewer, reviewer_key) = client.member(&admin, "Rae", "reviewer").await?;
    let (_, manager_key) = client.member(&admin, "Max", "hiring_manager").await?;
    let (session, token) = client.started_session(&admin, "Grace Hopper").await?;
    let now = chrono::Utc::now();
    let paste: String = "fn handler() -> u32 { 42 }\n".repeat(25);
    let events = json!([
        {"seq": 1, "ts": now, "data": {"type": "file_created", "file": "main.rs", "content": ""}},
        {"seq": 2, "ts": now + Duration::milliseconds(100), "data": {"type": "focus_lost"}},
        {"seq": 3, "ts": now + Duration::milliseconds(900), "data": {"type": "focus_regained"}},
        {"seq": 4, "ts": now + Duration::milliseconds(1200), "data": {"type": "edit", "file": "main.rs", "position": 0, "deleted": 0, "inserted": paste, "origin": "paste"}},
    ]);
    let r = client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            &token,
            &json!({"events": events}),
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    client
        .submit(&session, &token, &[("main.rs", &paste)])
        .await?;
    env.wait_for_analysis(&session).await?;
    client
        .complete_review(&admin, &session, (&reviewer, &reviewer_key), |c| {
            c.levels.last().unwrap().score
        })
        .await?;
    let base = format!("/v1/sessions/{session}");
    let criteria = &clarity_domain::catalogue::builtin()[0].spec.rubric.criteria;
    env.wait_for::<i64>(
        "the session's score",
        &format!("SELECT count(*) FROM session_scores WHERE session_id = '{session}'"),
        |n| *n == 1,
    )
    .await?;
    let report = client.get(&format!("{base}/report"), &manager_key).await?;
    assert_eq!(report.status, 200, "{report:?}");
    let content = &report.body["content"];
    assert_eq!(
        content["scores"]["aggregate"], 100.0,
        "every criterion at its top level"
    );
    let findings = content["integrity"]["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "the paste is a finding: {content}");
    let expect = json!({
        "content_hash": report.body["content_hash"],
        "candidate": "Grace Hopper",
        "aggregate": "100.0 / 100",
        "tier": content["integrity"]["tier"],
        "finding_links": findings.iter().filter(|f| !f["replay_seq"].is_null()).count(),
        "criteria": criteria.len(),
    });

    // Act + Assert
    clarity_tests::run_browser_spec(
        "report.spec.mjs",
        &[
            ("BASE_URL", &client.base),
            ("SESSION_ID", &session),
            ("API_KEY", &manager_key),
            ("EXPECT_JSON", &expect.to_string()),
        ],
    )
    .await?;
    product.stop().await
}
