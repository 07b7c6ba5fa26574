//! Nothing acknowledged is lost, nothing is doubled, order is kept — through retries and crashes
//! of the consumer, the relay and the API. Roles that crash run as `clarity` subprocesses and are
//! killed with SIGKILL.

use std::collections::HashMap;
use std::time::Duration;

use clarity_domain::telemetry::TelemetryEvent;
use clarity_domain::wire::WireEvent;
use clarity_tests::{edit_event, free_port, new_org, Client, TestEnv};
use rdkafka::producer::FutureRecord;
use serde_json::json;
use uuid::Uuid;

const SESSIONS: usize = 20;
const EVENTS_PER_SESSION: u64 = 500;
const BATCH: u64 = 50;

async fn send_batches(
    client: &Client,
    sessions: &[(String, String)],
    batches: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (id, token) in sessions.iter().cloned() {
        let client = client.clone();
        let batches = batches.clone();
        tasks.push(tokio::spawn(async move {
            for b in batches {
                let (from, to) = (b * BATCH + 1, (b + 1) * BATCH);
                // Every batch is sent twice, as a client retrying after a lost response would.
                for attempt in 0..2 {
                    let r = client.send_events(&id, &token, from, to).await?;
                    anyhow::ensure!(
                        r.status == 200,
                        "batch {from}..={to} attempt {attempt}: {r:?}"
                    );
                    let expected = if attempt == 0 { BATCH } else { 0 };
                    anyhow::ensure!(r.body["accepted"] == expected, "{r:?}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_reaches_the_log_exactly_once_in_client_order_through_retries_and_crashes(
) -> anyhow::Result<()> {
    // Arrange: API in-process; relay and consumers as killable processes.
    let env = TestEnv::new().await?;
    let api = env.spawn_api().await?;
    let client = Client::new(&api.base);
    let admin = new_org(&env, "Acme").await?;
    let mut relay = env.spawn_process(&["relay"], &[])?;
    // Static membership, as a StatefulSet would give: the restarted consumer is the same member.
    let instance = [("CLARITY_CONSUMER_INSTANCE_ID", "consumer-0".to_string())];
    let mut consumer = env.spawn_process(&["consume"], &instance)?;
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        sessions.push(
            client
                .started_session(&admin, &format!("Candidate {i}"))
                .await?,
        );
    }
    let half = EVENTS_PER_SESSION / BATCH / 2;

    // Act 1: first half of the telemetry, each batch twice.
    send_batches(&client, &sessions, 0..half).await?;

    // Act 2: kill the consumer mid-stream (SIGKILL) while more telemetry arrives, then restart it.
    env.wait_for::<i64>(
        "some progress",
        "SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'",
        |n| *n > 0,
    )
    .await?;
    consumer.kill().await?;
    send_batches(&client, &sessions, half..half + 2).await?;
    consumer = env.spawn_process(&["consume"], &instance)?;

    // Act 3: kill the relay, submit every session while it is down, restart it.
    send_batches(&client, &sessions, half + 2..EVENTS_PER_SESSION / BATCH).await?;
    relay.kill().await?;
    for (id, token) in &sessions {
        let r = client
            .post(
                &format!("/v1/sessions/{id}/submit"),
                token,
                &json!({"files": [{"path": "main.py", "content": "x"}]}),
            )
            .await?;
        assert_eq!(r.status, 200, "{r:?}");
    }
    relay = env.spawn_process(&["relay"], &[])?;

    // Assert: every session submitted with every event, once, in order.
    // Four lifecycle events per session and, once submitted, its integrity analysis.
    let expected_rows = (SESSIONS as i64) * (EVENTS_PER_SESSION as i64 + 5);
    env.wait_for::<i64>(
        "every submission",
        "SELECT count(*) FROM sessions WHERE status = 'submitted'",
        |n| *n == SESSIONS as i64,
    )
    .await?;
    env.wait_for::<i64>("every event", "SELECT count(*) FROM session_events", |n| {
        *n >= expected_rows
    })
    .await?;
    env.wait_for::<i64>(
        "every integrity analysis",
        "SELECT count(*) FROM integrity_analyses",
        |n| *n == SESSIONS as i64,
    )
    .await?;
    assert_log_is_exact(&env, &sessions).await?;

    // Act 4: re-publish records straight to the topic, as a relay crashing between the broker's
    // ack and its checkpoint (or an API crashing before its cursor update) would.
    let producer = env.config.kafka().producer(0)?;
    let org: Uuid = sqlx::query_scalar("SELECT org_id FROM sessions LIMIT 1")
        .fetch_one(&env.pool)
        .await?;
    for (id, _) in sessions.iter().take(5) {
        let session_id: Uuid = id.parse()?;
        for seq in [1u64, 250, 500] {
            let event: TelemetryEvent = serde_json::from_value(edit_event(seq))?;
            let payload = serde_json::to_vec(&WireEvent::telemetry(session_id, org, &event))?;
            producer
                .send(
                    FutureRecord::to(&env.config.topic_sessions)
                        .key(id)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)?;
        }
    }
    // Wait until the consumer has read past those records, then check nothing changed.
    let end = topic_end(&env).await?;
    env.wait_for::<i64>("the consumer to pass the duplicates", "SELECT COALESCE(sum(next_offset), 0)::bigint FROM projection_offsets WHERE projection = 'sessions'", |n| *n >= end).await?;
    assert_log_is_exact(&env, &sessions).await?;
    let telemetry: i64 = sqlx::query_scalar("SELECT sum(telemetry_events)::bigint FROM sessions")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(
        telemetry,
        SESSIONS as i64 * EVENTS_PER_SESSION as i64,
        "counters did not move for duplicates"
    );

    relay.kill().await?;
    consumer.kill().await?;
    api.stop().await?;
    Ok(())
}

/// Sum of the high watermarks of the sessions topic.
async fn topic_end(env: &TestEnv) -> anyhow::Result<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = env
        .config
        .kafka()
        .client_config()
        .set("group.id", "watermarks")
        .create()?;
    let topic = env.config.topic_sessions.clone();
    tokio::task::spawn_blocking(move || {
        let mut total = 0;
        for p in 0..3 {
            total += consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(10))?
                .1;
        }
        anyhow::Ok(total)
    })
    .await?
}

async fn assert_log_is_exact(env: &TestEnv, sessions: &[(String, String)]) -> anyhow::Result<()> {
    let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT session_id, stream_kind, seq FROM session_events ORDER BY session_id, kafka_offset",
    )
    .fetch_all(&env.pool)
    .await?;
    let mut by_session: HashMap<Uuid, Vec<(String, i64)>> = HashMap::new();
    for (s, k, q) in rows {
        by_session.entry(s).or_default().push((k, q));
    }
    assert_eq!(by_session.len(), sessions.len());
    for (id, _) in sessions {
        let log = &by_session[&id.parse::<Uuid>()?];
        let telemetry: Vec<i64> = log
            .iter()
            .filter(|(k, _)| k == "telemetry")
            .map(|(_, q)| *q)
            .collect();
        assert_eq!(
            telemetry,
            (1..=EVENTS_PER_SESSION as i64).collect::<Vec<_>>(),
            "session {id}: telemetry exactly once, in client order"
        );
        let lifecycle: Vec<i64> = log
            .iter()
            .filter(|(k, _)| k == "lifecycle")
            .map(|(_, q)| *q)
            .collect();
        assert_eq!(
            lifecycle,
            vec![1, 2, 3, 4, 5],
            "session {id}: lifecycle (invited, consent, started, submitted, analysed) exactly once, in order"
        );
        let submission = log.iter().position(|(k, q)| k == "lifecycle" && *q == 4);
        let last_telemetry = log.iter().rposition(|(k, _)| k == "telemetry");
        assert!(
            submission > last_telemetry,
            "session {id}: submission after the telemetry"
        );
        assert_eq!(
            log.last().map(|(k, q)| (k.as_str(), *q)),
            Some(("lifecycle", 5)),
            "session {id}: the integrity analysis comes last"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadline_that_passes_while_the_server_is_down_expires_the_session_exactly_once_on_restart(
) -> anyhow::Result<()> {
    // Arrange: relay and consumers in-process; the API (with its scheduler) as a process.
    let env = TestEnv::new().await?;
    let relay = env.spawn_relay();
    let consumers = env.spawn_consumers();
    let admin = new_org(&env, "Acme").await?;
    let port = free_port()?;
    let listen = ("CLARITY_LISTEN", format!("127.0.0.1:{port}"));
    let mut server = env.spawn_process(&["serve"], std::slice::from_ref(&listen))?;
    let client = Client::new(&format!("http://127.0.0.1:{port}"));
    client.wait_ready().await?;
    let (session, token) = client.started_session(&admin, "Grace Hopper").await?;
    assert_eq!(
        client.send_events(&session, &token, 1, 10).await?.status,
        200
    );

    // Act: the server dies; when two servers come back, the 2-hour deadline is in the past.
    server.kill().await?;
    let later = ("CLARITY_CLOCK_OFFSET_SECONDS", (3 * 3600).to_string());
    let mut first = env.spawn_process(&["serve"], &[listen, later.clone()])?;
    let port2 = free_port()?;
    let mut second = env.spawn_process(
        &["serve"],
        &[("CLARITY_LISTEN", format!("127.0.0.1:{port2}")), later],
    )?;

    // Assert
    env.wait_for::<bool>("the expiry in the read model", &format!("SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = '{session}' AND status = 'expired')"), |d| *d).await?;
    let expired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'SessionExpired'",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(expired, 1, "two schedulers, one expiry");
    let time_used: i64 =
        sqlx::query_scalar("SELECT time_used_seconds FROM sessions WHERE session_id = $1::uuid")
            .bind(&session)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(
        time_used,
        120 * 60,
        "time used is the full time limit, not the downtime"
    );
    client.wait_ready().await?;
    // Two hours on, the candidate's link has expired with the session (deadline plus the token
    // grace): nothing more is accepted, and nothing is readable either.
    let r = client.send_events(&session, &token, 11, 12).await?;
    assert_eq!((r.status, r.code()), (401, "session_token_expired"));
    let r = client
        .post(
            &format!("/v1/sessions/{session}/submit"),
            &token,
            &json!({"files": [{"path": "a", "content": ""}]}),
        )
        .await?;
    assert_eq!((r.status, r.code()), (401, "session_token_expired"));

    first.kill().await?;
    second.kill().await?;
    consumers.stop().await?;
    relay.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_is_expired_only_after_the_grace_that_lets_accepted_telemetry_reach_the_log_first(
) -> anyhow::Result<()> {
    // Arrange: a started session of the 2-hour REST API assessment.
    let env = TestEnv::new().await?;
    let api = env.spawn_api().await?;
    let client = Client::new(&api.base);
    let admin = new_org(&env, "Acme").await?;
    let (session, token) = client.started_session(&admin, "Grace Hopper").await?;
    api.stop().await?;
    let at = |offset: i64| {
        clarity_api::state::AppState::new(
            env.pool.clone(),
            clarity_api::config::Config {
                clock_offset_seconds: offset,
                ..env.config.clone()
            },
        )
    };
    let expired = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'SessionExpired'",
        )
        .bind(&session)
        .fetch_one(&env.pool)
        .await
    };

    // Act + Assert: ten seconds past the deadline, telemetry is refused but the session is not
    // expired yet (its scheduler runs inside this API, with the same clock)...
    let past_deadline = env
        .spawn_api_with(clarity_api::config::Config {
            clock_offset_seconds: 2 * 3600 + 10,
            ..env.config.clone()
        })
        .await?;
    let late = Client::new(&past_deadline.base);
    let r = late.send_events(&session, &token, 1, 1).await?;
    assert_eq!((r.status, r.code()), (409, "session_not_in_progress"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        clarity_consumers::scheduler::expire_overdue(
            &at(2 * 3600 + 10)?.app,
            env.config.expiry_grace()
        )
        .await?,
        0
    );
    assert_eq!(expired().await?, 0, "expired inside the grace");
    past_deadline.stop().await?;

    // ...and once the grace (35 s, longer than the producer's message timeout) has passed, it is.
    assert_eq!(
        clarity_consumers::scheduler::expire_overdue(
            &at(2 * 3600 + 40)?.app,
            env.config.expiry_grace()
        )
        .await?,
        1
    );
    assert_eq!(expired().await?, 1);
    Ok(())
}
