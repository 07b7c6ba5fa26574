//! Rebuilding a projection from offset 0 gives the same rows as the live projection, while the
//! live consumers keep running, and the live consumers carry on afterwards.

use clarity_consumers::projection_runner::rebuild;
use clarity_projections::Projection;
use clarity_tests::TestEnv;

async fn dump(env: &TestEnv, table: &str, order: &str) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}"
    ))
    .fetch_all(&env.pool)
    .await?)
}

async fn dump_all(env: &TestEnv) -> anyhow::Result<Vec<Vec<String>>> {
    Ok(vec![
        dump(env, "sessions", "session_id").await?,
        dump(env, "session_events", "session_id, stream_kind, seq").await?,
        dump(env, "catalogue_assessments", "assessment_id").await?,
        dump(env, "catalogue_versions", "assessment_id, version").await?,
        dump(env, "integrity_analyses", "session_id, suite_version").await?,
        dump(
            env,
            "integrity_findings",
            "session_id, suite_version, ordinal",
        )
        .await?,
        // Only the projections this test rebuilds; the replay projection keeps running meanwhile.
        dump(
            env,
            "(SELECT * FROM projection_offsets WHERE projection IN ('sessions', 'catalogue'))",
            "projection, topic, partition",
        )
        .await?,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilding_from_offset_zero_reproduces_the_live_rows_exactly() -> anyhow::Result<()> {
    // Arrange: some sessions in various states, projected live.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let mut sessions = Vec::new();
    for i in 0..4 {
        let (id, token) = client
            .started_session(&admin, &format!("Candidate {i}"))
            .await?;
        assert_eq!(client.send_events(&id, &token, 1, 200).await?.status, 200);
        sessions.push((id, token));
    }
    let (id, token) = &sessions[0];
    client.submit(id, token, &[("main.py", "x")]).await?;
    client.invite(&admin, "Not Started").await?;
    // Every record, including the integrity analysis of the submitted session.
    env.wait_for::<i64>("projection", "SELECT count(*) FROM session_events", |n| {
        *n == 4 * 200 + 4 * 3 + 1 + 1 + 1
    })
    .await?;
    env.wait_for::<i64>(
        "the integrity analysis",
        "SELECT count(*) FROM integrity_analyses",
        |n| *n == 1,
    )
    .await?;
    let live = dump_all(&env).await?;

    // Act: rebuild both projections while the live consumers run.
    let kafka = env.config.kafka();
    let sessions_report = rebuild(
        &env.config.database_url,
        &kafka,
        Projection::Sessions,
        &env.config.projections(),
        false,
    )
    .await?;
    rebuild(
        &env.config.database_url,
        &kafka,
        Projection::Catalogue,
        &env.config.projections(),
        false,
    )
    .await?;

    // Assert: byte-identical rows and offsets.
    assert_eq!(sessions_report.records, 4 * 200 + 4 * 3 + 1 + 1 + 1);
    let rebuilt = dump_all(&env).await?;
    for (a, b) in live.iter().zip(&rebuilt) {
        assert_eq!(a, b);
    }
    assert!(!rebuilt[0].is_empty() && !rebuilt[2].is_empty());

    // And the live consumers continue from the rebuilt offsets.
    let (id, token) = &sessions[1];
    assert_eq!(client.send_events(id, token, 201, 210).await?.status, 200);
    env.wait_for::<i64>(
        "live projection after rebuild",
        &format!("SELECT telemetry_events FROM sessions WHERE session_id = '{id}'"),
        |n| *n == 210,
    )
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM session_events")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(total, 4 * 200 + 4 * 3 + 1 + 1 + 1 + 10);

    product.stop().await?;
    Ok(())
}
