//! The outbox relay reads below the commit horizon (no skipped events when transactions commit out
//! of order), publishes in order, and fails over between processes.

use std::time::Duration;

use clarity_consumers::outbox_relay::{publish_batch, RelayConfig};
use clarity_tests::TestEnv;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection};

async fn insert_event(
    conn: &mut PgConnection,
    aggregate_id: &str,
    sequence: i64,
) -> anyhow::Result<()> {
    let payload = serde_json::json!({"AssessmentRetired": {"at": "2026-01-01T00:00:00Z"}});
    sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Assessment', $1, $2, 'AssessmentRetired', '1', $3, '{}')")
        .bind(aggregate_id)
        .bind(sequence)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// A relay ("test") driven by hand, one batch at a time.
struct Relay {
    kafka: clarity_consumers::kafka::KafkaSettings,
    producer: rdkafka::producer::FutureProducer,
    config: RelayConfig,
    conn: PgConnection,
}

/// A relay with its checkpoint at the start, run until it has published everything stored so
/// far (the seeded catalogue), so the topic's state is known.
async fn relay_caught_up(env: &TestEnv) -> anyhow::Result<Relay> {
    let kafka = env.config.kafka();
    let producer = kafka.producer(0)?;
    let config = RelayConfig {
        name: "test".into(),
        ..RelayConfig::default()
    };
    let mut conn = PgConnection::connect(&env.config.database_url).await?;
    sqlx::query("INSERT INTO relay_checkpoints (relay, tx_id, position) VALUES ('test', '0', 0)")
        .execute(&mut conn)
        .await?;
    while publish_batch(&mut conn, &kafka, &producer, &config).await? > 0 {}
    Ok(Relay {
        kafka,
        producer,
        config,
        conn,
    })
}

/// Reads every record key of the assessments topic.
async fn published_keys(env: &TestEnv) -> anyhow::Result<Vec<String>> {
    let consumer: StreamConsumer = env
        .config
        .kafka()
        .client_config()
        .set("group.id", format!("{}.reader", env.id))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut end = 0;
    for p in 0..3 {
        let (_, high) =
            consumer.fetch_watermarks(&env.config.topic_assessments, p, Duration::from_secs(10))?;
        end += high;
        tpl.add_partition_offset(&env.config.topic_assessments, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut keys = Vec::new();
    while (keys.len() as i64) < end {
        let m = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await??;
        keys.push(String::from_utf8_lossy(m.key().unwrap_or_default()).to_string());
    }
    Ok(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_transaction_commits_late_is_not_skipped() -> anyhow::Result<()> {
    // Arrange: publish the seeded catalogue first so the topic state is known.
    let env = TestEnv::new().await?;
    let Relay {
        kafka,
        producer,
        config,
        conn: mut relay_conn,
    } = relay_caught_up(&env).await?;
    let before = published_keys(&env).await?.len();

    // Act: `early` takes a position first but commits after `late`.
    let mut early = PgConnection::connect(&env.config.database_url).await?;
    let mut late = PgConnection::connect(&env.config.database_url).await?;
    let mut early_tx = early.begin().await?;
    insert_event(&mut early_tx, "early", 1).await?;
    let mut late_tx = late.begin().await?;
    insert_event(&mut late_tx, "late", 1).await?;
    late_tx.commit().await?;
    let while_open = publish_batch(&mut relay_conn, &kafka, &producer, &config).await?;
    early_tx.commit().await?;
    // The horizon is server-wide: transactions of other tests (other databases) may hold it
    // back for a moment, so poll until both arrive (or give up after 30 s).
    let mut after_commit = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while after_commit < 2 && tokio::time::Instant::now() < deadline {
        after_commit += publish_batch(&mut relay_conn, &kafka, &producer, &config).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more than the two.
    after_commit += publish_batch(&mut relay_conn, &kafka, &producer, &config).await?;

    // Assert: nothing passed the open transaction; both published afterwards, early first.
    assert_eq!(
        while_open, 0,
        "the relay must not read past an open transaction"
    );
    assert_eq!(after_commit, 2);
    let keys = published_keys(&env).await?;
    assert_eq!(keys.len(), before + 2);
    let (e, l) = (
        keys.iter().position(|k| k == "early"),
        keys.iter().position(|k| k == "late"),
    );
    assert!(e.is_some() && l.is_some(), "{keys:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_relay_takes_over_when_the_leader_dies() -> anyhow::Result<()> {
    // Arrange: two relay processes; the first becomes leader.
    let env = TestEnv::new().await?;
    let mut leader = env.spawn_process(&["relay"], &[])?;
    env.wait_for::<i64>(
        "the catalogue to be published",
        "SELECT COALESCE(max(published), 0) FROM relay_checkpoints",
        |n| *n >= 14,
    )
    .await?;
    let mut standby = env.spawn_process(&["relay"], &[])?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act: the leader dies; new events are written.
    leader.kill().await?;
    let mut conn = PgConnection::connect(&env.config.database_url).await?;
    for i in 0..5 {
        insert_event(&mut conn, &format!("after-failover-{i}"), 1).await?;
    }

    // Assert: the standby publishes them.
    env.wait_for::<i64>(
        "the standby to publish",
        "SELECT max(published) FROM relay_checkpoints",
        |n| *n >= 19,
    )
    .await?;
    let keys = published_keys(&env).await?;
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("after-failover-"))
            .count(),
        5
    );
    standby.kill().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_the_broker_is_set_aside_and_the_relay_moves_on(
) -> anyhow::Result<()> {
    // Arrange: the catalogue published, then three events, the middle one 1.1 MB (an older API
    // accepted free text of any length: issue 11).
    let env = TestEnv::new().await?;
    let Relay {
        kafka,
        producer,
        config,
        mut conn,
    } = relay_caught_up(&env).await?;
    let before = published_keys(&env).await?;
    insert_event(&mut conn, "before-huge", 1).await?;
    let huge = serde_json::json!({"AssessmentRetired": {"at": "2026-01-01T00:00:00Z", "note": "x".repeat(1_100_000)}});
    sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Assessment', 'huge', 1, 'AssessmentRetired', '1', $1, '{}')")
        .bind(huge)
        .execute(&mut conn)
        .await?;
    insert_event(&mut conn, "after-huge", 1).await?;

    // Act: publish until the relay has passed all three (a stuck relay never gets there).
    let mut published = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while published < 3 && tokio::time::Instant::now() < deadline {
        published += publish_batch(&mut conn, &kafka, &producer, &config).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert: the two others are on the topic once each; the huge one is set aside
    // with its reason, and nothing is published again.
    assert_eq!(published, 3, "the relay passed the oversized event");
    assert_eq!(
        publish_batch(&mut conn, &kafka, &producer, &config).await?,
        0
    );
    let mut new_keys = published_keys(&env).await?;
    for key in &before {
        let at = new_keys
            .iter()
            .position(|k| k == key)
            .expect("earlier records stay");
        new_keys.remove(at);
    }
    new_keys.sort();
    assert_eq!(
        new_keys,
        vec!["after-huge".to_string(), "before-huge".to_string()],
        "published once each, without the oversized one"
    );
    let rejects: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT aggregate_id, bytes, reason FROM relay_rejects WHERE relay = 'test'",
    )
    .fetch_all(&mut conn)
    .await?;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0].0, "huge");
    assert!(rejects[0].1 > 1_000_000);
    assert!(rejects[0].2.contains("cannot take it"), "{rejects:?}");
    Ok(())
}

/// Every record of the assessments topic: (key, the CloudEvent's `sequence`), in offset order
/// per partition.
async fn published_events(env: &TestEnv) -> anyhow::Result<Vec<(String, u64)>> {
    let consumer: StreamConsumer = env
        .config
        .kafka()
        .client_config()
        .set("group.id", format!("{}.events", env.id))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    let mut end = 0;
    for p in 0..3 {
        let (_, high) =
            consumer.fetch_watermarks(&env.config.topic_assessments, p, Duration::from_secs(10))?;
        end += high;
        tpl.add_partition_offset(&env.config.topic_assessments, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut events = Vec::new();
    while (events.len() as i64) < end {
        let m = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await??;
        let wire: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default())?;
        events.push((
            String::from_utf8_lossy(m.key().unwrap_or_default()).to_string(),
            wire["sequence"].as_u64().unwrap_or_default(),
        ));
    }
    Ok(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_broker_refused_is_published_in_order_once_its_limit_is_raised(
) -> anyhow::Result<()> {
    // Arrange: an aggregate whose first event is too large for the broker (1.1 MB) and whose
    // second comes after it, and another aggregate; the relay passes all three.
    let env = TestEnv::new().await?;
    let Relay {
        kafka,
        producer,
        config,
        mut conn,
    } = relay_caught_up(&env).await?;
    let (caught_up_tx, caught_up_at): (String, i64) =
        sqlx::query_as("SELECT tx_id::text, position FROM relay_checkpoints WHERE relay = 'test'")
            .fetch_one(&mut conn)
            .await?;
    let huge = serde_json::json!({"AssessmentRetired": {"at": "2026-01-01T00:00:00Z", "note": "x".repeat(1_100_000)}});
    sqlx::query("INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ('Assessment', 'huge', 1, 'AssessmentRetired', '1', $1, '{}')")
        .bind(huge)
        .execute(&mut conn)
        .await?;
    insert_event(&mut conn, "huge", 2).await?;
    insert_event(&mut conn, "other", 1).await?;
    let mut passed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while passed < 3 && tokio::time::Instant::now() < deadline {
        passed += publish_batch(&mut conn, &kafka, &producer, &config).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(passed, 3);
    let rejects: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, kind FROM relay_rejects WHERE resolved_at IS NULL ORDER BY sequence",
    )
    .fetch_all(&mut conn)
    .await?;
    assert_eq!(
        rejects,
        vec![
            ("huge".into(), 1, "unpublishable".into()),
            ("huge".into(), 2, "held".into()),
        ],
        "the second waits behind the first instead of going out before it"
    );
    let of = |events: &[(String, u64)], key: &str| -> Vec<u64> {
        events
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, s)| *s)
            .collect()
    };
    let events = published_events(&env).await?;
    assert_eq!(of(&events, "huge"), Vec::<u64>::new());
    assert_eq!(of(&events, "other"), vec![1]);

    // Act 1: a retry before the limits are raised.
    let early = env
        .run_cli(&["quarantine", "retry", "--relay"], &[])
        .await?;

    // Assert: still refused, kept with the error; the held one not tried.
    assert!(!early.success, "{early:?}");
    assert!(early.stdout.contains("still refused"), "{}", early.stdout);
    assert!(
        early.stdout.contains("held behind Assessment/huge#1"),
        "{}",
        early.stdout
    );
    let retries: i32 = sqlx::query_scalar(
        "SELECT retries FROM relay_rejects WHERE sequence = 1 AND resolved_at IS NULL",
    )
    .fetch_one(&mut conn)
    .await?;
    assert_eq!(retries, 1);

    // Act 2: the operator raises the topic's and the producer's limits, shows and retries.
    let admin: AdminClient<DefaultClientContext> = env.config.kafka().client_config().create()?;
    let raised = AlterConfig::new(ResourceSpecifier::Topic(&env.config.topic_assessments))
        .set("max.message.bytes", "3000000");
    for result in admin.alter_configs([&raised], &AdminOptions::new()).await? {
        result.map_err(|(resource, code)| anyhow::anyhow!("{resource:?}: {code}"))?;
    }
    let id: i64 = sqlx::query_scalar("SELECT id FROM relay_rejects WHERE sequence = 1")
        .fetch_one(&mut conn)
        .await?;
    let show = env
        .run_cli(&["quarantine", "show", &id.to_string()], &[])
        .await?;
    assert!(show.success, "{show:?}");
    assert!(
        show.stdout
            .contains("relay        test (never reached the topic)"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("more bytes (--full shows everything)"),
        "{}",
        show.stdout
    );
    // A relay that reads the batch again (it crashed before its checkpoint), now able to send
    // the event, leaves it to the quarantine rather than publishing it around its row.
    sqlx::query(
        "UPDATE relay_checkpoints SET tx_id = $1::xid8, position = $2 WHERE relay = 'test'",
    )
    .bind(&caught_up_tx)
    .bind(caught_up_at)
    .execute(&mut conn)
    .await?;
    let mut raised_kafka = kafka.clone();
    raised_kafka
        .properties
        .push(("message.max.bytes".into(), "3000000".into()));
    let raised_producer = raised_kafka.producer(0)?;
    assert_eq!(
        publish_batch(&mut conn, &raised_kafka, &raised_producer, &config).await?,
        3
    );
    assert_eq!(
        of(&published_events(&env).await?, "huge"),
        Vec::<u64>::new()
    );
    let limit = [(
        "CLARITY_KAFKA_PROPERTIES",
        "message.max.bytes=3000000".to_string(),
    )];
    let retry = env
        .run_cli(&["quarantine", "retry", "--relay", "--by", "ops"], &limit)
        .await?;

    // Assert: both published, in their order, once; resolved (kept) with who did it.
    assert!(retry.success, "{retry:?}");
    assert_eq!(
        retry.stdout.matches("published; resolved").count(),
        2,
        "{}",
        retry.stdout
    );
    let events = published_events(&env).await?;
    assert_eq!(of(&events, "huge"), vec![1, 2]);
    let resolved: Vec<(bool, Option<String>)> = sqlx::query_as(
        "SELECT resolved_at IS NOT NULL, resolved_by FROM relay_rejects ORDER BY sequence",
    )
    .fetch_all(&mut conn)
    .await?;
    assert_eq!(
        resolved,
        vec![(true, Some("ops".into())), (true, Some("ops".into()))]
    );
    // Retrying again publishes nothing twice; the relay publishes the aggregate's next event.
    let again = env
        .run_cli(&["quarantine", "retry", "--relay"], &limit)
        .await?;
    assert!(
        again.success && again.stdout.contains("nothing to retry"),
        "{again:?}"
    );
    insert_event(&mut conn, "huge", 3).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut passed = 0;
    while passed < 1 && tokio::time::Instant::now() < deadline {
        passed += publish_batch(&mut conn, &kafka, &producer, &config).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events = published_events(&env).await?;
    assert_eq!(of(&events, "huge"), vec![1, 2, 3]);
    Ok(())
}
