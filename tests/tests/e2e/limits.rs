//! Issue 11: rate limits per API key, per candidate token and per client address (429 with
//! `Retry-After` and the IETF `RateLimit` headers), a timeout on every request (503 `timeout`)
//! and a cap on concurrent replay streams per member. Against real PostgreSQL and Kafka.

use clarity_api::config::Config;
use clarity_tests::{Client, TestEnv};
use serde_json::json;

/// A GET with the response headers.
async fn get(
    client: &Client,
    path: &str,
    token: &str,
) -> anyhow::Result<(u16, reqwest::header::HeaderMap, serde_json::Value)> {
    let res = client
        .http
        .get(format!("{}{path}", client.base))
        .bearer_auth(token)
        .send()
        .await?;
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    Ok((status, headers, res.json().await.unwrap_or_default()))
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn wrong_keys_from_one_address_are_slowed_down_with_429() -> anyhow::Result<()> {
    // Arrange: production defaults (20 refused credentials in a burst).
    let env = TestEnv::new().await?;
    let api = env.spawn_api().await?;
    let client = Client::new(&api.base);
    let admin = clarity_tests::new_org(&env, "Guessed").await?;

    // Act: 40 guesses.
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..40 {
        let forged = format!("clk_{}_{i:064x}", uuid::Uuid::new_v4().simple());
        let (status, headers, body) = get(&client, "/v1/me", &forged).await?;
        statuses.push(status);
        last = Some((headers, body));
    }

    // Assert
    assert_eq!(statuses[..20], [401; 20], "{statuses:?}");
    assert_eq!(statuses[20..], [429; 20], "{statuses:?}");
    let (headers, body) = last.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(header(&headers, "retry-after").parse::<u64>()? >= 1);
    assert_eq!(
        header(&headers, "ratelimit-policy"),
        "\"failed_authentication\";q=20;w=40"
    );
    assert!(header(&headers, "ratelimit").starts_with("\"failed_authentication\";r=0;t="));
    // While it lasts, that address is refused even with a good key.
    let (status, _, _) = get(&client, "/v1/me", &admin).await?;
    assert_eq!(status, 429);

    api.stop().await?;
    Ok(())
}

/// An unauthenticated GET from a client behind a proxy that says who it forwards.
async fn forwarded(client: &Client, path: &str, for_address: &str) -> anyhow::Result<u16> {
    let res = client
        .http
        .get(format!("{}{path}", client.base))
        .header("x-forwarded-for", format!("198.51.100.66, {for_address}"))
        .send()
        .await?;
    Ok(res.status().as_u16())
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_budget(
) -> anyhow::Result<()> {
    // Arrange: a per-address budget of 2; one API trusts the proxy (this host), one does not.
    let env = TestEnv::new().await?;
    let tight = Config {
        rate_address_per_second: 0.001,
        rate_address_burst: 2,
        ..env.config.clone()
    };
    let trusting = env
        .spawn_api_with(Config {
            trusted_proxies: "127.0.0.1/32, ::1".parse().map_err(anyhow::Error::msg)?,
            ..tight.clone()
        })
        .await?;
    let untrusting = env.spawn_api_with(tight).await?;
    let (behind, direct) = (Client::new(&trusting.base), Client::new(&untrusting.base));

    // Act: three requests each from two clients the proxy forwards (the left-most entry is what
    // a client could forge itself, and is the same for both).
    let mut trusted = Vec::new();
    let mut ignored = Vec::new();
    for client_address in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..3 {
            trusted.push(forwarded(&behind, "/healthz", client_address).await?);
            ignored.push(forwarded(&direct, "/healthz", client_address).await?);
        }
    }

    // Assert: trusted, each forwarded client gets its own two; untrusted, the header is
    // ignored and every request counts against the one peer address.
    assert_eq!(trusted, [200, 200, 429, 200, 200, 429], "{trusted:?}");
    assert_eq!(ignored, [200, 200, 429, 429, 429, 429], "{ignored:?}");
    // The metrics' "same host only" rule looks at the forwarded client, not the local proxy.
    assert_eq!(forwarded(&behind, "/metrics", "203.0.113.9").await?, 403);

    trusting.stop().await?;
    untrusting.stop().await?;
    Ok(())
}

#[tokio::test]
async fn each_key_and_each_candidate_token_has_its_own_budget() -> anyhow::Result<()> {
    // Arrange: tiny budgets that do not refill during the test.
    let env = TestEnv::new().await?;
    let generous = env.spawn_api().await?;
    let admin = clarity_tests::new_org(&env, "Budgets").await?;
    let setup = Client::new(&generous.base);
    let (_, other_key) = setup.member(&admin, "Other Member", "reviewer").await?;
    let (session, token) = setup.started_session(&admin, "Busy Candidate").await?;
    let (other_session, other_token) = setup.started_session(&admin, "Calm Candidate").await?;
    let api = env
        .spawn_api_with(Config {
            rate_staff_per_second: 0.001,
            rate_staff_burst: 3,
            rate_candidate_per_second: 0.001,
            rate_candidate_burst: 2,
            ..env.config.clone()
        })
        .await?;
    let client = Client::new(&api.base);

    // Act + Assert: the admin's key.
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = get(&client, "/v1/me", &admin).await?;
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "ratelimit-policy"),
            "\"api_key\";q=3;w=3000"
        );
        remaining.push(header(&headers, "ratelimit").to_string());
    }
    assert!(
        remaining[0].starts_with("\"api_key\";r=2;"),
        "{remaining:?}"
    );
    assert!(
        remaining[2].starts_with("\"api_key\";r=0;"),
        "{remaining:?}"
    );
    let (status, headers, body) = get(&client, "/v1/me", &admin).await?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(header(&headers, "retry-after").parse::<u64>()? >= 1);
    let (status, _, _) = get(&client, "/v1/me", &other_key).await?;
    assert_eq!(status, 200, "another key has its own budget");

    // A candidate: two batches, the third refused and not accepted.
    for range in [(1, 2), (3, 4)] {
        let r = client
            .send_events(&session, &token, range.0, range.1)
            .await?;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = client.send_events(&session, &token, 5, 6).await?;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{r:?}");
    let last_seq: i64 =
        sqlx::query_scalar("SELECT last_seq FROM telemetry_cursors WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(last_seq, 4, "the refused batch changed nothing");
    let r = client
        .send_events(&other_session, &other_token, 1, 2)
        .await?;
    assert_eq!(
        r.status, 200,
        "another candidate has their own budget: {r:?}"
    );

    api.stop().await?;
    generous.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_request_that_runs_too_long_answers_503_timeout() -> anyhow::Result<()> {
    // Arrange: a 1-second limit, and the members table locked so that authentication waits.
    let env = TestEnv::new().await?;
    let admin = clarity_tests::new_org(&env, "Slow").await?;
    let api = env
        .spawn_api_with(Config {
            request_timeout_seconds: 1,
            ..env.config.clone()
        })
        .await?;
    let client = Client::new(&api.base);
    let mut lock = env.pool.begin().await?;
    sqlx::query("LOCK TABLE members IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await?;

    // Act
    let r = client.get("/v1/me", &admin).await?;

    // Assert
    assert_eq!((r.status, r.code()), (503, "timeout"), "{r:?}");
    lock.rollback().await?;
    let r = client.get("/v1/me", &admin).await?;
    assert_eq!(r.status, 200, "{r:?}");
    api.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_member_may_hold_only_so_many_replay_streams_open() -> anyhow::Result<()> {
    // Arrange: a session whose two events are 25 s apart, so a stream of it stays open.
    let env = TestEnv::new().await?;
    let product = env
        .spawn_product_with(Config {
            max_streams_per_member: 1,
            ..env.config.clone()
        })
        .await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (session, token) = client.started_session(&admin, "Slow Typist").await?;
    let now = chrono::Utc::now();
    let events = json!({"events": [
        {"seq": 1, "ts": now, "data": {"type": "focus_lost"}},
        {"seq": 2, "ts": now + chrono::Duration::seconds(25), "data": {"type": "focus_regained"}},
    ]});
    let r = client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            &token,
            &events,
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    env.wait_for::<bool>(
        "both events in the replay",
        &format!("SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = '{session}' AND last_seq = 2)"),
        |d| *d,
    )
    .await?;
    let stream = format!("/v1/sessions/{session}/replay/stream?skip_idle_ms=600000");
    let open = |client: &Client| {
        client
            .http
            .get(format!("{}{stream}", client.base))
            .bearer_auth(&admin)
            .send()
    };

    // Act + Assert
    let first = open(&client).await?;
    assert_eq!(first.status(), 200);
    let second = open(&client).await?;
    assert_eq!(second.status(), 429);
    let body: serde_json::Value = second.json().await?;
    assert_eq!(body["error"]["code"], "too_many_streams");
    // Closing the first frees the slot (as soon as the server notices the client went away).
    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        let r = open(&client).await?;
        if r.status() == 200 {
            reopened = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(reopened.is_some(), "the slot was never freed");

    drop(reopened);
    product.stop().await?;
    Ok(())
}
