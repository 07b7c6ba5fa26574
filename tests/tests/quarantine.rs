//! A record that PostgreSQL refuses never stops a projection: it is quarantined in
//! `projection_rejects` (with the error and SQLSTATE) and its partition moves on. Before this,
//! one telemetry event dated in the year -5000, or with a NUL in edited text, stopped the read
//! models of every organization whose sessions shared its partition (issue 11).

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clarity_domain::telemetry::{EditOrigin, TelemetryData, TelemetryEvent};
use clarity_domain::wire::WireEvent;
use clarity_tests::TestEnv;
use rdkafka::producer::FutureRecord;
use uuid::Uuid;

/// Produces `event` for `session` straight to the sessions topic, as a client that slipped past
/// the API's validation (or an older API, or a foreign producer) would have.
async fn produce(
    env: &TestEnv,
    session: &str,
    org: Uuid,
    event: TelemetryEvent,
) -> anyhow::Result<()> {
    let producer = env.config.kafka().producer(0)?;
    let payload = serde_json::to_vec(&WireEvent::telemetry(session.parse()?, org, &event))?;
    producer
        .send(
            FutureRecord::to(&env.config.topic_sessions)
                .key(session)
                .payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_postgresql_refuses_are_quarantined_and_their_partitions_move_on(
) -> anyhow::Result<()> {
    // Arrange: the product, two organizations' sessions with some telemetry.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let client = &product.client;
    let other_admin = clarity_tests::new_org(&env, "Globex").await?;
    let (a, a_token) = client.started_session(&product.admin, "Ada").await?;
    let (b, b_token) = client.started_session(&other_admin, "Bo").await?;
    for (s, t) in [(&a, &a_token), (&b, &b_token)] {
        assert_eq!(client.send_events(s, t, 1, 10).await?.status, 200);
    }
    let org_of = |s: &str| {
        let s = s.to_string();
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT org_id FROM session_tokens WHERE session_id = $1::uuid",
            )
            .bind(s)
            .fetch_one(&pool)
            .await
        }
    };

    // Act: two poisoned records, far ahead of the clients' own numbering, then more telemetry.
    let ancient = NaiveDate::from_ymd_opt(-5000, 1, 1)
        .expect("a valid proleptic date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    produce(
        &env,
        &a,
        org_of(&a).await?,
        TelemetryEvent {
            seq: 1_000_000,
            ts: ancient,
            data: TelemetryData::FocusLost {},
        },
    )
    .await?;
    produce(
        &env,
        &b,
        org_of(&b).await?,
        TelemetryEvent {
            seq: 1_000_000,
            ts: Utc::now(),
            data: TelemetryData::Edit {
                file: "main.py".into(),
                position: 0,
                deleted: 0,
                inserted: "nul\u{0}byte".into(),
                origin: EditOrigin::Typed,
            },
        },
    )
    .await?;
    for (s, t) in [(&a, &a_token), (&b, &b_token)] {
        assert_eq!(client.send_events(s, t, 11, 20).await?.status, 200);
    }

    // Assert: every acknowledged event of both sessions is projected (nothing stalled) ...
    for s in [&a, &b] {
        env.wait_for::<i64>(
            "the events after the poisoned record",
            &format!("SELECT count(*) FROM session_events WHERE session_id = '{s}' AND stream_kind = 'telemetry' AND seq <= 20"),
            |n| *n == 20,
        )
        .await?;
        env.wait_for::<i64>(
            "the replay after the poisoned record",
            &format!("SELECT last_seq FROM replay_sessions WHERE session_id = '{s}'"),
            |n| *n >= 20,
        )
        .await?;
    }
    // ... and each poisoned record is quarantined, with PostgreSQL's reason, for its session.
    let quarantined: Vec<(String, Uuid, String, String, String)> = sqlx::query_as(
        "SELECT projection, session_id, kind, sqlstate, reason FROM projection_rejects ORDER BY session_id, projection",
    )
    .fetch_all(&env.pool)
    .await?;
    let for_session = |s: &str| -> Vec<&(String, Uuid, String, String, String)> {
        quarantined
            .iter()
            .filter(|q| q.1.to_string() == s)
            .collect()
    };
    let a_rows = for_session(&a);
    assert!(
        !a_rows.is_empty(),
        "the year -5000 record is quarantined: {quarantined:?}"
    );
    assert!(
        a_rows
            .iter()
            .all(|q| q.2 == "unappliable" && q.3.starts_with("22")),
        "a data exception, set aside as unappliable: {a_rows:?}"
    );
    let b_rows = for_session(&b);
    assert!(
        !b_rows.is_empty(),
        "the NUL record is quarantined: {quarantined:?}"
    );
    assert!(
        b_rows
            .iter()
            .all(|q| q.2 == "unappliable" && q.3.starts_with("22")),
        "{b_rows:?}"
    );
    // Where the sessions projection set a record aside, none of it reached its tables, and the
    // session's counter agrees with its rows.
    for (projection, session, ..) in &quarantined {
        if projection == "sessions" {
            let rows: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM session_events WHERE session_id = $1 AND seq = 1000000",
            )
            .bind(session)
            .fetch_one(&env.pool)
            .await?;
            assert_eq!(rows, 0, "a refused record is not half-applied");
        }
    }
    for s in [&a, &b] {
        let (counted, rows): (i64, i64) = sqlx::query_as(
            "SELECT s.telemetry_events::bigint,
                    (SELECT count(*) FROM session_events e WHERE e.session_id = s.session_id AND e.stream_kind = 'telemetry')
               FROM sessions s WHERE s.session_id = $1::uuid",
        )
        .bind(s)
        .fetch_one(&env.pool)
        .await?;
        assert_eq!(
            counted, rows,
            "session {s}: counters count what was applied"
        );
    }

    product.stop().await?;
    Ok(())
}
