//! The happy path end to end: invite → consent → start → telemetry → submit, through the relay
//! and the consumers into the read models.

use clarity_tests::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_flows_from_invite_to_submission_into_the_read_models() -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());

    // Act
    let (session, token) = client.started_session(&admin, "Ada Lovelace").await?;
    let r = client.send_events(&session, &token, 1, 100).await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["accepted"], 100);
    client.submit(&session, &token, &[("main.py", "x")]).await?;

    // Assert
    env.wait_for::<bool>("the submission in the read model", &format!("SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = '{session}' AND status = 'submitted' AND telemetry_events = 100)"), |d| *d).await?;
    // The finished session is analysed once; the analysis is the fifth lifecycle event.
    env.wait_for::<bool>("the integrity analysis in the read model", &format!("SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = '{session}' AND integrity_tier IS NOT NULL AND lifecycle_events = 5)"), |d| *d).await?;
    let view = client
        .get(&format!("/v1/sessions/{session}"), &admin)
        .await?;
    assert_eq!(view.body["lifecycle_events"], 5);
    // Seq 1 created main.py; 2..=100 edited it.
    assert_eq!(view.body["edits"], 99);
    assert_eq!(view.body["candidate_name"], "Ada Lovelace");
    let log = client
        .get(&format!("/v1/sessions/{session}/events?limit=5000"), &admin)
        .await?;
    let kinds: Vec<(String, i64)> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stream_kind"].as_str().unwrap().to_string(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 105);
    let telemetry: Vec<i64> = kinds
        .iter()
        .filter(|(k, _)| k == "telemetry")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(telemetry, (1..=100).collect::<Vec<_>>());
    assert_eq!(
        kinds.first().unwrap(),
        &("lifecycle".to_string(), 1),
        "the invitation comes first"
    );
    assert_eq!(
        kinds.last().unwrap(),
        &("lifecycle".to_string(), 5),
        "the integrity analysis comes last"
    );
    // Catalogue projection has the seven built-in assessments.
    let list = client.get("/v1/assessments", &admin).await?;
    assert_eq!(list.body.as_array().unwrap().len(), 7);

    // Metrics: the ingestion counter moved; with a metrics token configured, scraping needs it.
    let metrics = client
        .http
        .get(format!("{}/metrics", client.base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("clarity_ingested_events_total{outcome=\"accepted\"}")),
        "{metrics}"
    );
    // End-to-end lag: every record of the sessions topic had its age observed when both of the
    // topic's projections had committed it (105 lifecycle + telemetry records, at least).
    let aged = |name: &str| -> f64 {
        let prefix = format!("{name}_count{{topic=\"{}\"}} ", env.config.topic_sessions);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        aged("clarity_projection_record_age_seconds") >= 105.0,
        "{metrics}"
    );
    assert!(
        aged("clarity_consumer_record_age_at_fetch_seconds") >= 105.0,
        "{metrics}"
    );
    let guarded = env
        .spawn_api_with(clarity_api::config::Config {
            metrics_token: Some("s3cret".into()),
            ..env.config.clone()
        })
        .await?;
    let url = format!("{}/metrics", guarded.base);
    assert_eq!(client.http.get(&url).send().await?.status(), 401);
    assert_eq!(
        client
            .http
            .get(&url)
            .bearer_auth("wrong!")
            .send()
            .await?
            .status(),
        401
    );
    assert_eq!(
        client
            .http
            .get(&url)
            .bearer_auth("s3cret")
            .send()
            .await?
            .status(),
        200
    );
    guarded.stop().await?;

    product.stop().await?;
    Ok(())
}
