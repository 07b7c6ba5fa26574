//! The reviewer replay page in a real headless browser (Debian's chromium driven by
//! playwright-core; scripts/test installs both): it loads, draws the markers, seeks, jumps to the
//! next paste and tab-away, plays, and diffs — against the real API and projections.

use chrono::{DateTime, Duration, Utc};
use clarity_tests::TestEnv;
use rand::SeedableRng;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replay_page_plays_seeks_jumps_and_diffs_in_a_real_browser() -> anyhow::Result<()> {
    // Arrange: a simulated candidate session, events 40 ms apart.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let reviewer = client
        .post(
            "/v1/members",
            &admin,
            &json!({"name": "Rita Reviewer", "email": "rita@acme.test", "role": "reviewer"}),
        )
        .await?;
    let reviewer_key = reviewer.body["api_key"].as_str().unwrap().to_string();
    let (session, token) = client.started_session(&admin, "Ada Lovelace").await?;
    let started: DateTime<Utc> = sqlx::query_scalar("SELECT (payload->'SessionStarted'->>'at')::timestamptz FROM events WHERE aggregate_id = $1 AND event_type = 'SessionStarted'")
        .bind(&session)
        .fetch_one(&env.pool)
        .await?;
    let (script, content) =
        clarity_cli::simulate::script(&mut rand::rngs::StdRng::seed_from_u64(5));
    let events: Vec<Value> = script.iter().enumerate().map(|(i, data)| json!({"seq": i + 1, "ts": started + Duration::milliseconds(40 * (i as i64 + 1)), "data": data})).collect();
    for chunk in events.chunks(250) {
        assert_eq!(
            client
                .post(
                    &format!("/v1/sessions/{session}/telemetry"),
                    &token,
                    &json!({ "events": chunk })
                )
                .await?
                .status,
            200
        );
    }
    let last_seq = events.len() as i64;
    env.wait_for::<i64>(
        "the replay projection",
        &format!(
            "SELECT COALESCE(max(last_seq), 0) FROM replay_sessions WHERE session_id = '{session}'"
        ),
        |n| *n == last_seq,
    )
    .await?;
    let summary = client
        .get(&format!("/v1/sessions/{session}/replay"), &reviewer_key)
        .await?;
    let marker_seq = |kind: &str| {
        summary.body["markers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == kind)
            .and_then(|m| m["seq"].as_i64())
            .unwrap()
    };
    let expect = json!({
        "last_seq": last_seq,
        "paste_seq": marker_seq("paste"),
        "tab_away_seq": marker_seq("focus_away"),
        "files_at_last": {"app.py": content},
        "candidate_name": "Ada Lovelace",
    });

    // Act + Assert: run the browser spec against the live API.
    clarity_tests::run_browser_spec(
        "replay.spec.mjs",
        &[
            ("BASE_URL", &client.base),
            ("SESSION_ID", &session),
            ("API_KEY", &reviewer_key),
            ("EXPECT_JSON", &expect.to_string()),
        ],
    )
    .await?;

    product.stop().await?;
    Ok(())
}
