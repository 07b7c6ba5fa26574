//! A record that PostgreSQL refuses never stops a projection: it is quarantined in
//! `projection_rejects` (with the error and SQLSTATE) and its partition moves on. Before this,
//! one telemetry event dated in the year -5000, or with a NUL in edited text, stopped the read
//! models of every organization whose sessions shared its partition (issue 11).

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clarity_consumers::projection_runner::rebuild;
use clarity_domain::telemetry::{EditOrigin, TelemetryData, TelemetryEvent};
use clarity_domain::wire::WireEvent;
use clarity_projections::Projection;
use clarity_tests::TestEnv;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;
use serde_json::json;
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

/// Rows of a session in the tables `sql` lists, as JSON text in a stable order: what the
/// session's read models hold, to compare with a rebuild from the log.
async fn snapshot(env: &TestEnv, session: Uuid) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT row_to_json(t)::text FROM sessions t WHERE session_id = $1",
        "SELECT row_to_json(t)::text FROM session_events t WHERE session_id = $1 ORDER BY stream_kind, seq",
        "SELECT row_to_json(t)::text FROM audit_chain_heads t WHERE session_id = $1",
        "SELECT row_to_json(t)::text FROM replay_sessions t WHERE session_id = $1",
        "SELECT row_to_json(t)::text FROM replay_keyframes t WHERE session_id = $1 ORDER BY seq",
        "SELECT row_to_json(t)::text FROM replay_markers t WHERE session_id = $1 ORDER BY seq, kind",
    ] {
        let table: Vec<String> = sqlx::query_scalar(sql)
            .bind(session)
            .fetch_all(&env.pool)
            .await?;
        rows.extend(table);
    }
    Ok(rows)
}

/// The value of one series of `/metrics` (0 when absent).
async fn metric(client: &clarity_tests::Client, series: &str) -> anyhow::Result<f64> {
    let body = client
        .http
        .get(format!("{}/metrics", client.base))
        .send()
        .await?
        .text()
        .await?;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0))
}

/// Telemetry event `seq` of the session the retry test types: `main.py` created at 1, then one
/// edit per event at position `seq - 2` — an `x`, or `big` pasted at 11.
fn typing(seq: u64, big: &str) -> serde_json::Value {
    let data = match seq {
        1 => json!({"type": "file_created", "file": "main.py", "content": ""}),
        11 => {
            json!({"type": "edit", "file": "main.py", "position": 9, "deleted": 0, "inserted": big, "origin": "paste"})
        }
        _ => {
            json!({"type": "edit", "file": "main.py", "position": seq - 2, "deleted": 0, "inserted": "x", "origin": "typed"})
        }
    };
    json!({"seq": seq, "ts": Utc::now(), "data": data})
}

/// `main.py` after events 1..=20 of [`typing`], applied in order.
fn expected_main_py(big: &str) -> String {
    let mut text = String::new();
    for seq in 2..=20usize {
        text.insert_str(seq - 2, if seq == 11 { big } else { "x" });
    }
    text
}

/// Sends events `from..=to` of [`typing`]; each must be acknowledged.
async fn type_events(
    client: &clarity_tests::Client,
    session: &str,
    token: &str,
    seqs: std::ops::RangeInclusive<u64>,
    big: &str,
) -> anyhow::Result<()> {
    let events: Vec<serde_json::Value> = seqs.map(|seq| typing(seq, big)).collect();
    let sent = client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            token,
            &json!({ "events": events }),
        )
        .await?;
    anyhow::ensure!(sent.status == 200, "not acknowledged: {sent:?}");
    Ok(())
}

/// The retry tests' arrangement: a session of `product` whose eleventh event — accepted and
/// acknowledged by the API — exceeds a limit nobody thought of (added the way a migration would
/// add it) in both session projections, followed by nine more; returns (session, token, the
/// pasted text) once the projections have set it aside and moved on.
async fn poisoned_session(
    env: &TestEnv,
    product: &clarity_tests::Product,
) -> anyhow::Result<(String, String, String)> {
    let client = &product.client;
    let (s, token) = client.started_session(&product.admin, "Ada").await?;
    let big = "y".repeat(2000);
    type_events(client, &s, &token, 1..=10, &big).await?;
    env.wait_for::<i64>(
        "the first ten events in the replay",
        &format!("SELECT last_seq FROM replay_sessions WHERE session_id = '{s}'"),
        |n| *n == 10,
    )
    .await?;
    sqlx::query("ALTER TABLE session_events ADD CONSTRAINT test_small_events CHECK (length(data::text) < 1000)")
        .execute(&env.pool)
        .await?;
    sqlx::query("ALTER TABLE replay_sessions ADD CONSTRAINT test_small_workspace CHECK (length(workspace::text) < 1500)")
        .execute(&env.pool)
        .await?;
    type_events(client, &s, &token, 11..=11, &big).await?;
    type_events(client, &s, &token, 12..=20, &big).await?;
    env.wait_for::<i64>(
        "the record and what is held behind it",
        &format!("SELECT count(*) FROM projection_rejects WHERE session_id = '{s}'"),
        |n| *n == 11,
    )
    .await?;
    env.wait_for::<i64>(
        "the sessions projection past it",
        &format!("SELECT count(*) FROM session_events WHERE session_id = '{s}' AND stream_kind = 'telemetry'"),
        |n| *n == 19,
    )
    .await?;
    Ok((s, token, big))
}

/// The fix: the limit goes, as a migration would drop it.
async fn fix(env: &TestEnv) -> anyhow::Result<()> {
    sqlx::query("ALTER TABLE session_events DROP CONSTRAINT test_small_events")
        .execute(&env.pool)
        .await?;
    sqlx::query("ALTER TABLE replay_sessions DROP CONSTRAINT test_small_workspace")
        .execute(&env.pool)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quarantined_record_is_held_back_visibly_until_a_retry_after_the_fix_applies_it_once_in_order(
) -> anyhow::Result<()> {
    // Arrange / Act: the product; a session's eleventh event refused by both session
    // projections, then nine more.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let client = &product.client;
    let (s, _token, big) = poisoned_session(&env, &product).await?;
    let session: Uuid = s.parse()?;

    // Assert: the sessions projection set it aside and moved on (telemetry does not wait); the
    // replay set it aside and holds the nine after it (its workspace is a fold in order).
    let kinds: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT projection, kind, count(*) FROM projection_rejects WHERE session_id = $1 AND resolved_at IS NULL
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        kinds,
        vec![
            ("replay".into(), "held".into(), 9),
            ("replay".into(), "unappliable".into(), 1),
            ("sessions".into(), "unappliable".into(), 1),
        ]
    );
    let (sqlstate, stored): (String, Vec<u8>) = sqlx::query_as(
        "SELECT sqlstate, payload FROM projection_rejects WHERE session_id = $1 AND projection = 'sessions'",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(sqlstate, "23514", "a check violation");
    let wire: WireEvent = serde_json::from_slice(&stored)?;
    assert_eq!(
        (wire.sequence, wire.data["inserted"].as_str()),
        (11, Some(big.as_str())),
        "the record itself is kept, whatever Kafka's retention"
    );
    let last_seq: i64 =
        sqlx::query_scalar("SELECT last_seq FROM replay_sessions WHERE session_id = $1")
            .bind(session)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(last_seq, 10, "the replay waits at the record");
    let chained: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_events WHERE session_id = $1 AND chain_position IS NOT NULL",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(
        chained,
        3 + 10,
        "the audit chain waits at the hole (3 lifecycle, 10 telemetry)"
    );

    // ... and the session's pages say so, without the payload.
    let view = client
        .get(&format!("/v1/sessions/{s}"), &product.admin)
        .await?;
    let held = &view.body["held_back"];
    assert_eq!(held["records"], 11, "{view:?}");
    assert_eq!(held["operator_alerted"], true);
    assert_eq!(held["by_part"].as_array().map(Vec::len), Some(3));
    assert!(!view.body.to_string().contains("yyyy"), "never the payload");
    let replay = client
        .get(&format!("/v1/sessions/{s}/replay"), &product.admin)
        .await?;
    assert_eq!(replay.body["held_back"]["records"], 11, "{replay:?}");
    let report = client
        .get(&format!("/v1/sessions/{s}/report"), &product.admin)
        .await?;
    assert_eq!(report.status, 200, "{report:?}");
    assert_eq!(report.body["content"]["held_back"]["records"], 11);
    let held_report_hash = report.body["content_hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // ... and so do the pages people read (replay, report), in a real browser.
    let expect = json!({"records": 11, "parts": 3, "absent": "yyyy"});
    clarity_tests::run_browser_spec(
        "held_back.spec.mjs",
        &[
            ("BASE_URL", &client.base),
            ("SESSION_ID", &s),
            ("API_KEY", &product.admin),
            ("EXPECT_JSON", &expect.to_string()),
        ],
    )
    .await?;
    let alert =
        "clarity_quarantine_unresolved{kind=\"unappliable\",name=\"replay\",stage=\"projection\"}";
    assert_eq!(metric(client, alert).await?, 1.0);

    // The operator: list, show (by coordinates: one row per projection).
    let list = env
        .run_cli(&["quarantine", "list", "--session", &s], &[])
        .await?;
    assert!(list.success, "{list:?}");
    assert_eq!(
        list.stdout.matches("unappliable").count(),
        2,
        "{}",
        list.stdout
    );
    assert_eq!(
        list.stdout.matches("  held  sqlstate").count(),
        9,
        "{}",
        list.stdout
    );
    let (topic, partition, offset): (String, i32, i64) = sqlx::query_as(
        "SELECT topic, partition, \"offset\" FROM projection_rejects WHERE session_id = $1 AND projection = 'sessions'",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    let coordinates = format!("{topic}/{partition}@{offset}");
    let show = env
        .run_cli(&["quarantine", "show", &coordinates], &[])
        .await?;
    assert!(show.success, "{show:?}");
    assert!(
        show.stdout.contains("projection   sessions")
            && show.stdout.contains("projection   replay"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("sqlstate     23514"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("test_small_events"),
        "the error names the constraint: {}",
        show.stdout
    );
    assert!(
        show.stdout.contains(&format!("\"inserted\": \"{big}\"")),
        "pretty JSON: {}",
        show.stdout
    );

    // A retry before the fix: still refused, kept with the error; nothing held is tried.
    let early = env
        .run_cli(
            &["quarantine", "retry", "--session", &s, "--by", "ops"],
            &[],
        )
        .await?;
    assert!(!early.success, "{early:?}");
    assert_eq!(
        early.stdout.matches("still refused").count(),
        2,
        "{}",
        early.stdout
    );
    assert_eq!(
        early.stdout.matches("held behind").count(),
        9,
        "{}",
        early.stdout
    );
    let retried: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT kind, retries, resolved_at IS NULL FROM projection_rejects WHERE session_id = $1 AND kind <> 'held'",
    )
    .bind(session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        retried,
        vec![
            ("unappliable".into(), 1, true),
            ("unappliable".into(), 1, true)
        ]
    );

    // The fix, a dry run, then the retry.
    fix(&env).await?;
    let dry = env
        .run_cli(&["quarantine", "retry", "--session", &s, "--dry-run"], &[])
        .await?;
    assert!(dry.success, "{dry:?}");
    assert_eq!(
        dry.stdout.matches("would apply").count(),
        11,
        "{}",
        dry.stdout
    );
    let still: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM projection_rejects WHERE session_id = $1 AND resolved_at IS NULL",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(still, 11, "a dry run changes nothing");
    let retry = env
        .run_cli(
            &["quarantine", "retry", "--session", &s, "--by", "ops"],
            &[],
        )
        .await?;
    assert!(retry.success, "{retry:?}");
    assert_eq!(
        retry.stdout.matches("applied; resolved").count(),
        11,
        "{}",
        retry.stdout
    );

    // Assert: every event is in the read models once, as if applied in order.
    let counted: (i64, i64, i64) = sqlx::query_as(
        "SELECT telemetry_events, pastes, (SELECT count(*) FROM session_events e WHERE e.session_id = s.session_id
                                           AND e.stream_kind = 'telemetry')
           FROM sessions s WHERE session_id = $1",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(counted, (20, 1, 20));
    let (last_seq, main_py): (i64, String) = sqlx::query_as(
        "SELECT last_seq, workspace->'files'->>'main.py' FROM replay_sessions WHERE session_id = $1",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(last_seq, 20);
    assert_eq!(
        main_py,
        expected_main_py(&big),
        "the workspace as if in order"
    );
    let chained: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM session_events WHERE session_id = $1 AND chain_position IS NOT NULL",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(
        chained,
        3 + 20,
        "the chain took the record and what waited behind it"
    );
    let verified = env.run_cli(&["verify", "session", &s], &[]).await?;
    assert!(
        verified.success,
        "the chain matches the topic, in its order: {verified:?}"
    );
    // The pages no longer say anything is held back; the report is a new version.
    let view = client
        .get(&format!("/v1/sessions/{s}"), &product.admin)
        .await?;
    assert!(view.body.get("held_back").is_none(), "{view:?}");
    assert_eq!(view.body["telemetry_events"], 20);
    let replay = client
        .get(&format!("/v1/sessions/{s}/replay"), &product.admin)
        .await?;
    assert!(replay.body.get("held_back").is_none(), "{replay:?}");
    let report = client
        .get(&format!("/v1/sessions/{s}/report"), &product.admin)
        .await?;
    assert!(
        report.body["content"].get("held_back").is_none(),
        "{report:?}"
    );
    assert_ne!(report.body["content_hash"], held_report_hash.as_str());
    assert_eq!(metric(client, alert).await?, 0.0, "the alert clears");
    // The evidence stays, resolved, with who did it.
    let resolved: Vec<(bool, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT resolved_at IS NOT NULL, resolved_by, resolution FROM projection_rejects WHERE session_id = $1",
    )
    .bind(session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(resolved.len(), 11);
    assert!(
        resolved.iter().all(|r| r.0
            && r.1.as_deref() == Some("ops")
            && r.2.as_deref() == Some("applied by clarity quarantine retry")),
        "{resolved:?}"
    );

    // Retrying again does nothing: the quarantine knows, and the projections drop duplicates even
    // when handed the record directly.
    let before = snapshot(&env, session).await?;
    let again = env
        .run_cli(&["quarantine", "retry", "--session", &s], &[])
        .await?;
    assert!(
        again.success && again.stdout.contains("nothing to retry"),
        "{again:?}"
    );
    let id: i64 = sqlx::query_scalar(
        "SELECT id FROM projection_rejects WHERE session_id = $1 AND projection = 'sessions'",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    let by_id = env
        .run_cli(&["quarantine", "retry", &id.to_string()], &[])
        .await?;
    assert!(
        by_id.success && by_id.stdout.contains("already resolved"),
        "{by_id:?}"
    );
    let record = clarity_projections::Record {
        topic: topic.clone(),
        partition,
        offset,
        event: std::sync::Arc::new(wire),
    };
    let mut tx = env.pool.begin().await?;
    for projection in [Projection::Sessions, Projection::Replay] {
        projection
            .apply(
                &env.config.projections(),
                &mut tx,
                std::slice::from_ref(&record),
            )
            .await?;
    }
    tx.commit().await?;
    assert_eq!(snapshot(&env, session).await?, before, "nothing doubled");

    // ... and the read models are what a rebuild from the log makes (the record in its place).
    for projection in [Projection::Sessions, Projection::Replay] {
        rebuild(
            &env.config.database_url,
            &env.config.kafka(),
            projection,
            &env.config.projections(),
            false,
        )
        .await?;
    }
    assert_eq!(
        snapshot(&env, session).await?,
        before,
        "as if applied in order"
    );

    product.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_keeps_the_quarantine_and_resolves_the_records_that_now_apply(
) -> anyhow::Result<()> {
    // Arrange: a session's eleventh event refused by both session projections.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (s, _token, big) = poisoned_session(&env, &product).await?;
    let session: Uuid = s.parse()?;
    let unresolved = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM projection_rejects WHERE session_id = $1 AND resolved_at IS NULL",
        )
        .bind(session)
        .fetch_one(&env.pool)
        .await
    };

    // Act 1: rebuild before the fix.
    for projection in [Projection::Sessions, Projection::Replay] {
        rebuild(
            &env.config.database_url,
            &env.config.kafka(),
            projection,
            &env.config.projections(),
            false,
        )
        .await?;
    }

    // Assert: nothing of the quarantine is lost, nothing applied out of order.
    assert_eq!(unresolved().await?, 11);
    let last_seq: i64 =
        sqlx::query_scalar("SELECT last_seq FROM replay_sessions WHERE session_id = $1")
            .bind(session)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(last_seq, 10);

    // Act 2: the fix, then a rebuild.
    fix(&env).await?;
    for projection in [Projection::Sessions, Projection::Replay] {
        rebuild(
            &env.config.database_url,
            &env.config.kafka(),
            projection,
            &env.config.projections(),
            false,
        )
        .await?;
    }

    // Assert: the rebuild applied them in order and resolved (kept) their rows.
    assert_eq!(unresolved().await?, 0);
    let how: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT resolved_by, resolution FROM projection_rejects WHERE session_id = $1",
    )
    .bind(session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        how,
        vec![(
            Some("clarity rebuild".into()),
            Some("applied by a rebuild".into())
        )]
    );
    let (telemetry, last_seq, main_py): (i64, i64, String) = sqlx::query_as(
        "SELECT s.telemetry_events, r.last_seq, r.workspace->'files'->>'main.py'
           FROM sessions s JOIN replay_sessions r USING (session_id) WHERE session_id = $1",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!((telemetry, last_seq), (20, 20));
    assert_eq!(main_py, expected_main_py(&big));
    let view = product
        .client
        .get(&format!("/v1/sessions/{s}"), &product.admin)
        .await?;
    assert!(view.body.get("held_back").is_none(), "{view:?}");

    product.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_event_the_broker_refused_holds_the_session_back_until_it_is_published_in_order(
) -> anyhow::Result<()> {
    // Arrange: a session with a comment stored by an older API that accepted text of any length
    // (1.1 MB: more than the broker takes), then the candidate submits.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let client = &product.client;
    let (s, token) = client.started_session(&product.admin, "Ada").await?;
    let session: Uuid = s.parse()?;
    assert_eq!(client.send_events(&s, &token, 1, 5).await?.status, 200);
    let (org, next): (Uuid, i64) = sqlx::query_as(
        "SELECT (SELECT org_id FROM session_tokens WHERE session_id = $1),
                (SELECT max(sequence) + 1 FROM events WHERE aggregate_type = 'CandidateSession' AND aggregate_id = $1::text)",
    )
    .bind(session)
    .fetch_one(&env.pool)
    .await?;
    let comment = json!({"CommentAdded": {"comment_id": Uuid::new_v4(), "author": Uuid::new_v4(), "replay_seq": 1,
                                          "text": "z".repeat(1_100_000), "at": Utc::now()}});
    let metadata = json!({"org_id": org, "actor": "an older API", "time": Utc::now()});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('CandidateSession', $1, $2, 'CommentAdded', '1', $3, $4)",
    )
    .bind(&s)
    .bind(next)
    .bind(comment)
    .bind(metadata)
    .execute(&env.pool)
    .await?;
    let submitted = client
        .post(
            &format!("/v1/sessions/{s}/submit"),
            &token,
            &json!({"files": [{"path": "main.py", "content": "x"}]}),
        )
        .await?;
    assert_eq!(submitted.status, 200, "{submitted:?}");

    // Act 1: the relay meets both.
    env.wait_for::<i64>(
        "the relay to set the comment aside and hold the submission behind it",
        &format!("SELECT count(*) FROM relay_rejects WHERE aggregate_id = '{s}'"),
        |n| *n == 2,
    )
    .await?;

    // Assert: the submission is not published past the comment; the session says it is held
    // back, by the relay. (The events before the comment reach the read model first.)
    env.wait_for::<bool>(
        "the events published before the comment in the read model",
        &format!("SELECT EXISTS (SELECT 1 FROM sessions WHERE session_id = '{s}' AND status = 'in_progress')"),
        |d| *d,
    )
    .await?;
    let view = client
        .get(&format!("/v1/sessions/{s}"), &product.admin)
        .await?;
    assert_eq!(view.body["status"], "in_progress", "{view:?}");
    let parts: Vec<(String, String, i64)> = view.body["held_back"]["by_part"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["part"].as_str().unwrap_or_default().to_string(),
                p["kind"].as_str().unwrap_or_default().to_string(),
                p["records"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        vec![
            ("relay".into(), "held".into(), 1),
            ("relay".into(), "unpublishable".into(), 1),
        ],
        "{view:?}"
    );

    // Act 2: the operator raises the sessions topic's and the producer's limits and retries.
    let admin: AdminClient<DefaultClientContext> = env.config.kafka().client_config().create()?;
    let raised = AlterConfig::new(ResourceSpecifier::Topic(&env.config.topic_sessions))
        .set("max.message.bytes", "3000000");
    for result in admin.alter_configs([&raised], &AdminOptions::new()).await? {
        result.map_err(|(resource, code)| anyhow::anyhow!("{resource:?}: {code}"))?;
    }
    let limit = [(
        "CLARITY_KAFKA_PROPERTIES",
        "message.max.bytes=3000000".to_string(),
    )];
    let retry = env
        .run_cli(&["quarantine", "retry", "--session", &s], &limit)
        .await?;

    // Assert: both published, the comment first; the read models have them in that order.
    assert!(retry.success, "{retry:?}");
    assert_eq!(
        retry.stdout.matches("published; resolved").count(),
        2,
        "{}",
        retry.stdout
    );
    env.wait_for::<bool>(
        "the submission in the read model",
        &format!("SELECT status = 'submitted' FROM sessions WHERE session_id = '{s}'"),
        |done| *done,
    )
    .await?;
    let order: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, kafka_offset FROM session_events
          WHERE session_id = $1 AND event_type IN ('CommentAdded', 'SessionSubmitted') ORDER BY kafka_offset",
    )
    .bind(session)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        order.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["CommentAdded", "SessionSubmitted"]
    );
    let comment_length: i32 =
        sqlx::query_scalar("SELECT length(text) FROM review_comments WHERE session_id = $1")
            .bind(session)
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(comment_length, 1_100_000);
    let view = client
        .get(&format!("/v1/sessions/{s}"), &product.admin)
        .await?;
    assert!(view.body.get("held_back").is_none(), "{view:?}");

    product.stop().await?;
    Ok(())
}
