//! Replay: the state at any position equals a from-scratch replay, seeking by time and by
//! sequence agree, markers land where the events are, playback streams, rebuilds are identical,
//! and only the session organization's admins, reviewers and auditors can replay.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use clarity_consumers::projection_runner::rebuild;
use clarity_domain::telemetry::TelemetryData;
use clarity_projections::replay_engine::Workspace;
use clarity_projections::Projection;
use clarity_tests::{new_org, TestEnv};
use rand::SeedableRng;
use serde_json::{json, Value};

const STEP_MS: i64 = 23;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewers_replay_a_session_exactly_and_seek_by_time_or_sequence() -> anyhow::Result<()> {
    // Arrange: a simulated candidate (typing with typos, a tab-away, a paste, runs) with event
    // times one STEP_MS apart, so that every event has its own instant.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (session, token) = client.started_session(&admin, "Ada Lovelace").await?;
    let started: DateTime<Utc> = sqlx::query_scalar("SELECT (payload->'SessionStarted'->>'at')::timestamptz FROM events WHERE aggregate_id = $1 AND event_type = 'SessionStarted'")
        .bind(&session)
        .fetch_one(&env.pool)
        .await?;
    let (script, content) =
        clarity_cli::simulate::script(&mut rand::rngs::StdRng::seed_from_u64(11));
    let script: Vec<Value> = script.into_iter().chain([json!({"type": "face_check", "similarity": 0.2, "model_id": "m", "model_version": "1", "face_count": 0, "quality": 0.9})]).collect();
    let last = script.len() as i64;
    let events: Vec<Value> = script.iter().enumerate().map(|(i, data)| json!({"seq": i + 1, "ts": started + Duration::milliseconds(STEP_MS * (i as i64 + 1)), "data": data})).collect();
    for chunk in events.chunks(200) {
        let r = client
            .post(
                &format!("/v1/sessions/{session}/telemetry"),
                &token,
                &json!({ "events": chunk }),
            )
            .await?;
        assert_eq!(r.status, 200, "{r:?}");
    }
    client
        .submit(&session, &token, &[("app.py", &content)])
        .await?;
    env.wait_for::<i64>("the replay projection", &format!("SELECT count(*) FROM replay_markers WHERE session_id = '{session}' AND kind = 'submission'"), |n| *n == 1).await?;
    let base = format!("/v1/sessions/{session}/replay");

    // Act + Assert: the reference is a from-scratch replay of the same script.
    let typed: Vec<TelemetryData> = script
        .iter()
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .collect();
    let mut reference = vec![Workspace::default()];
    for data in &typed {
        let mut next = reference.last().unwrap().clone();
        let _ = next.apply(data);
        reference.push(next);
    }
    let summary = client.get(&base, &admin).await?;
    assert_eq!(summary.body["last_seq"], last);
    assert_eq!(summary.body["duration_ms"], STEP_MS * last);
    let keyframes: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM replay_keyframes WHERE session_id = $1::uuid ORDER BY seq",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    assert!(
        keyframes.len() > 1,
        "keyframes every 500 events: {keyframes:?}"
    );
    let mut positions: Vec<i64> = keyframes
        .iter()
        .flat_map(|k| [*k, (k + 1).min(last), (k - 1).max(0)])
        .collect();
    positions.extend([0, 1, last / 3, last / 2, last - 1, last]);
    for seq in positions {
        let state = client
            .get(&format!("{base}/state?seq={seq}"), &admin)
            .await?;
        assert_eq!(state.status, 200, "{state:?}");
        let files: BTreeMap<String, String> = serde_json::from_value(state.body["files"].clone())?;
        assert_eq!(files, reference[seq as usize].files, "state at seq {seq}");
        if seq > 0 {
            // Seeking by the time of that event lands on the same event.
            let at = STEP_MS * seq;
            assert_eq!(state.body["at_ms"], at);
            let by_time = client
                .get(&format!("{base}/state?at_ms={at}"), &admin)
                .await?;
            assert_eq!(by_time.body["seq"], seq, "at_ms {at}");
            assert_eq!(by_time.body["files"], state.body["files"]);
            // Between two events, time resolves to the earlier one.
            if seq < last {
                let between = client
                    .get(&format!("{base}/state?at_ms={}", at + STEP_MS / 2), &admin)
                    .await?;
                assert_eq!(between.body["seq"], seq);
            }
        }
    }
    let end = client
        .get(&format!("{base}/state?seq={last}"), &admin)
        .await?;
    assert_eq!(
        end.body["files"]["app.py"],
        content.as_str(),
        "the end state is what was submitted"
    );

    // Out-of-range and malformed positions are 4xx with codes: past the end is a conflict with
    // the session's state (409), a negative position breaks the documented minimum (422).
    for (q, status) in [
        (format!("seq={}", last + 1), 409),
        ("seq=-1".into(), 422),
        (format!("at_ms={}", STEP_MS * last + 1), 409),
    ] {
        let r = client.get(&format!("{base}/state?{q}"), &admin).await?;
        assert_eq!(
            (r.status, r.code()),
            (status, "position_out_of_range"),
            "{q}"
        );
    }
    let r = client
        .get(&format!("{base}/state?seq=1&at_ms=5"), &admin)
        .await?;
    assert_eq!((r.status, r.code()), (422, "invalid_position"));

    // Markers: the paste, the tab-away before it, both runs, the face anomaly, the submission.
    let markers = summary.body["markers"].as_array().unwrap();
    assert_eq!(
        summary.body["markers_truncated"], false,
        "a few markers are all listed"
    );
    let paste_seq = typed
        .iter()
        .position(|d| {
            matches!(
                d,
                TelemetryData::Edit {
                    origin: clarity_domain::telemetry::EditOrigin::Paste,
                    ..
                }
            )
        })
        .unwrap() as i64
        + 1;
    let kinds: Vec<(&str, i64)> = markers
        .iter()
        .map(|m| (m["kind"].as_str().unwrap(), m["seq"].as_i64().unwrap()))
        .collect();
    assert!(kinds.contains(&("paste", paste_seq)), "{kinds:?}");
    let away = markers
        .iter()
        .find(|m| m["kind"] == "focus_away")
        .expect("a tab-away marker");
    assert_eq!(
        away["duration_ms"],
        STEP_MS * (away["end_seq"].as_i64().unwrap() - away["seq"].as_i64().unwrap())
    );
    assert_eq!(kinds.iter().filter(|(k, _)| *k == "code_run").count(), 2);
    assert!(kinds.contains(&("face_anomaly", last)));
    assert!(kinds.iter().any(|(k, _)| *k == "submission"));

    // Events in a range, and a diff between two positions.
    let page = client
        .get(
            &format!("{base}/events?from_seq={paste_seq}&limit=2"),
            &admin,
        )
        .await?;
    assert_eq!(page.body["events"][0]["seq"], paste_seq);
    assert_eq!(page.body["events"][0]["data"]["origin"], "paste");
    assert_eq!(page.body["next_from_seq"], paste_seq + 2);
    let diff = client
        .get(
            &format!("{base}/diff?from_seq={}&to_seq={paste_seq}", paste_seq - 1),
            &admin,
        )
        .await?;
    let files = diff.body["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["path"], "app.py");
    assert!(files[0]["hunks"][0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["op"] == "+" && l["text"].as_str().unwrap().contains("create_order")));

    // Playback as server-sent events at 32x from near the end, opened the way a browser's
    // EventSource does it: with a single-use ticket, never with the API key in the URL.
    let stream_url = |query: &str| {
        format!(
            "{}{base}/stream?from_seq={}&speed=32&{query}",
            client.base,
            last - 5
        )
    };
    let ticket = client
        .post(&format!("{base}/stream-tickets"), &admin, &json!({}))
        .await?;
    assert_eq!(ticket.status, 201, "{ticket:?}");
    let ticket = ticket.body["ticket"].as_str().unwrap().to_string();
    let res = client
        .http
        .get(stream_url(&format!("ticket={ticket}")))
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let body = res.text().await?;
    assert_eq!(body.matches("event: replay").count(), 5, "{body}");
    assert!(
        body.trim_end().ends_with("data: {}"),
        "ends with the end event: {body}"
    );
    // A ticket works once; an API key in the URL does not work at all; nor does a ticket for
    // another session, or one whose key was revoked since.
    let refused = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        (
            status,
            body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let again = client
        .http
        .get(stream_url(&format!("ticket={ticket}")))
        .send()
        .await?;
    assert_eq!(refused(again).await, (401, "unauthenticated".into()));
    let keyed = client
        .http
        .get(stream_url(&format!("access_token={admin}")))
        .send()
        .await?;
    assert_eq!(
        refused(keyed).await,
        (422, "invalid_query".into()),
        "an API key in the URL is not even a known parameter"
    );
    let (other_session, other_token) = client.started_session(&admin, "Grace Hopper").await?;
    client
        .send_events(&other_session, &other_token, 1, 1)
        .await?;
    env.wait_for::<bool>(
        "the other session's replay",
        &format!(
            "SELECT EXISTS (SELECT 1 FROM replay_sessions WHERE session_id = '{other_session}')"
        ),
        |d| *d,
    )
    .await?;
    let foreign = client
        .post(
            &format!("/v1/sessions/{other_session}/replay/stream-tickets"),
            &admin,
            &json!({}),
        )
        .await?;
    assert_eq!(foreign.status, 201, "{foreign:?}");
    let foreign = foreign.body["ticket"].as_str().unwrap().to_string();
    let res = client
        .http
        .get(stream_url(&format!("ticket={foreign}")))
        .send()
        .await?;
    assert_eq!(refused(res).await, (401, "unauthenticated".into()));
    let (rita, rita_key) = client.member(&admin, "Rita", "reviewer").await?;
    let t = client
        .post(&format!("{base}/stream-tickets"), &rita_key, &json!({}))
        .await?;
    assert_eq!(t.status, 201, "{t:?}");
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE member_id = $1::uuid")
        .bind(&rita)
        .execute(&env.pool)
        .await?;
    let res = client
        .http
        .get(stream_url(&format!(
            "ticket={}",
            t.body["ticket"].as_str().unwrap()
        )))
        .send()
        .await?;
    assert_eq!(refused(res).await, (401, "unauthenticated".into()));
    // Tickets are only for those who may replay, and only within the organization.
    let (_, hm_key) = client.member(&admin, "Hal", "hiring_manager").await?;
    let r = client
        .post(&format!("{base}/stream-tickets"), &hm_key, &json!({}))
        .await?;
    assert_eq!(r.status, 403, "{r:?}");
    let globex = new_org(&env, "Initrode").await?;
    let r = client
        .post(&format!("{base}/stream-tickets"), &globex, &json!({}))
        .await?;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT ticket_hash FROM stream_tickets")
        .fetch_all(&env.pool)
        .await?;
    assert!(stored.len() >= 3);
    assert!(
        stored.iter().all(|h| h.len() == 32),
        "tickets are stored as SHA-256, not as the 68-character ticket"
    );

    // Access: reviewers and auditors of the organization yes; hiring managers no; others 404.
    for (role, expected) in [
        ("reviewer", 200),
        ("auditor", 200),
        ("hiring_manager", 403),
        ("analyst", 403),
    ] {
        let m = client
            .post(
                "/v1/members",
                &admin,
                &json!({"name": role, "email": format!("{role}@acme.test"), "role": role}),
            )
            .await?;
        let key = m.body["api_key"].as_str().unwrap();
        assert_eq!(
            client
                .get(&format!("{base}/state?seq=1"), key)
                .await?
                .status,
            expected,
            "{role}"
        );
    }
    let other = new_org(&env, "Globex").await?;
    let r = client.get(&format!("{base}/state?seq=1"), &other).await?;
    assert_eq!((r.status, r.code()), (404, "not_found"));

    // Rebuilding the replay projection from offset 0 gives identical keyframes and markers —
    // once the session's integrity analysis (which adds flags) has reached the replay projection.
    env.wait_for_analysis(&session).await?;
    env.wait_for::<bool>("the replay projection to catch up", "SELECT (SELECT sum(next_offset) FROM projection_offsets WHERE projection = 'replay') = (SELECT sum(next_offset) FROM projection_offsets WHERE projection = 'sessions')", |d| *d).await?;
    let dump = |t: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(&format!(
                "SELECT row_to_json(x)::text FROM {t} x ORDER BY 1"
            ))
            .fetch_all(&pool)
            .await
        }
    };
    let before = (
        dump("replay_keyframes").await?,
        dump("replay_markers").await?,
        dump("replay_sessions").await?,
    );
    rebuild(
        &env.config.database_url,
        &env.config.kafka(),
        Projection::Replay,
        &env.config.projections(),
        false,
    )
    .await?;
    let after = (
        dump("replay_keyframes").await?,
        dump("replay_markers").await?,
        dump("replay_sessions").await?,
    );
    assert_eq!(before, after);

    product.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_summary_lists_five_thousand_markers_says_there_are_more_and_the_event_pages_carry_them(
) -> anyhow::Result<()> {
    // Arrange: a candidate who left the tab 5,001 times (10,002 events, one marker each time).
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (session, token) = client.started_session(&admin, "Restless").await?;
    let now = Utc::now();
    let events: Vec<Value> = (1..=10_002i64)
        .map(|seq| {
            let kind = if seq % 2 == 1 {
                "focus_lost"
            } else {
                "focus_regained"
            };
            json!({"seq": seq, "ts": now + Duration::milliseconds(seq), "data": {"type": kind}})
        })
        .collect();
    for chunk in events.chunks(1000) {
        let r = client
            .post(
                &format!("/v1/sessions/{session}/telemetry"),
                &token,
                &json!({ "events": chunk }),
            )
            .await?;
        assert_eq!(r.status, 200, "{r:?}");
    }
    env.wait_for::<i64>(
        "every tab-away in the replay",
        &format!("SELECT count(*) FROM replay_markers WHERE session_id = '{session}'"),
        |n| *n == 5001,
    )
    .await?;

    // Act
    let base = format!("/v1/sessions/{session}/replay");
    let summary = client.get(&base, &admin).await?;
    let tail = client
        .get(&format!("{base}/events?from_seq=9001&limit=1002"), &admin)
        .await?;

    // Assert: the first 5,000 in order, flagged as cut; the page past them has the last one.
    assert_eq!(summary.status, 200, "{summary:?}");
    let markers = summary.body["markers"].as_array().expect("markers");
    assert_eq!(markers.len(), 5000);
    assert_eq!(summary.body["markers_truncated"], true);
    assert_eq!(
        (markers[0]["seq"].as_i64(), markers[4999]["seq"].as_i64()),
        (Some(1), Some(9999))
    );
    assert_eq!(tail.status, 200, "{tail:?}");
    let last: Vec<i64> = tail.body["markers"]
        .as_array()
        .expect("markers")
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .collect();
    assert_eq!(last.last(), Some(&10_001), "the 5,001st tab-away: {last:?}");
    product.stop().await
}
