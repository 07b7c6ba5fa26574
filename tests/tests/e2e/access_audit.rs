//! Access audit end to end: successful reads of a candidate's replay, event log, integrity view,
//! copied-code matches and review leave one row each; auditors and admins list them by session
//! and by member, newest first and paged; another organization neither leaves rows nor sees any;
//! the log is append-only; a read that cannot be audited is refused.

use clarity_tests::{new_org, Client, TestEnv};
use serde_json::Value;

/// The entries of a listing (asserting 200).
async fn listing(client: &Client, key: &str, query: &str) -> anyhow::Result<(Vec<Value>, Value)> {
    let r = client
        .get(&format!("/v1/audit/access?{query}"), key)
        .await?;
    anyhow::ensure!(r.status == 200, "listing {query} failed: {r:?}");
    Ok((
        r.body["entries"].as_array().unwrap().clone(),
        r.body["next_before"].clone(),
    ))
}

fn actions(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["detail"]["view"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

async fn rows_for(env: &TestEnv, session: &str) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM access_log WHERE session_id = $1::uuid")
            .bind(session)
            .fetch_one(&env.pool)
            .await?,
    )
}

const CODE: &str = "def rate_limit(requests, window):\n    buckets = {}\n    for r in requests:\n        key = r['client']\n        buckets.setdefault(key, []).append(r['at'])\n        buckets[key] = [t for t in buckets[key] if t > r['at'] - window]\n        if len(buckets[key]) > 10:\n            yield key\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn successful_reads_are_logged_per_session_and_member_and_only_auditors_list_them(
) -> anyhow::Result<()> {
    // Arrange: a submitted session with telemetry, a second one with the same code, and members.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (rita, rita_key) = client.member(&admin, "Rita", "reviewer").await?;
    let (audrey, audrey_key) = client.member(&admin, "Audrey", "auditor").await?;
    let (_, hana_key) = client.member(&admin, "Hana", "hiring_manager").await?;
    let (_, anil_key) = client.member(&admin, "Anil", "analyst").await?;
    let (session, token) = client.started_session(&admin, "Ada Lovelace").await?;
    assert_eq!(
        client.send_events(&session, &token, 1, 20).await?.status,
        200
    );
    client
        .submit(&session, &token, &[("main.py", CODE)])
        .await?;
    let (other, _) = client
        .finished_session(&admin, "Grace Hopper", 0, &[("main.py", CODE)])
        .await?;
    env.wait_for::<i64>(
        "the replay",
        &format!("SELECT last_seq FROM replay_sessions WHERE session_id = '{session}'"),
        |n| *n == 20,
    )
    .await?;
    env.wait_for::<i64>(
        "both sessions' prints",
        &format!(
            "SELECT count(*) FROM integrity_prints WHERE session_id IN ('{session}', '{other}')"
        ),
        |n| *n == 2,
    )
    .await?;
    env.wait_for_analysis(&session).await?;
    assert_eq!(rows_for(&env, &session).await?, 0, "nothing read yet");

    // Act: the reviewer reads the replay (state, events), the integrity view and a match.
    let base = format!("/v1/sessions/{session}");
    let r = client
        .get(&format!("{base}/replay/state?seq=5"), &rita_key)
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .get(
            &format!("{base}/replay/events?from_seq=3&limit=10"),
            &rita_key,
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client.get(&format!("{base}/integrity"), &rita_key).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client
        .get(&format!("{base}/integrity/matches/{other}"), &rita_key)
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    // Refused requests disclose nothing and leave no row.
    let r = client
        .get(&format!("{base}/replay/state?seq=999"), &rita_key)
        .await?;
    assert_eq!((r.status, r.code()), (409, "position_out_of_range"));
    let r = client
        .get(&format!("{base}/replay/state?seq=1"), &anil_key)
        .await?;
    assert_eq!(r.status, 403, "analysts do not replay: {r:?}");

    // Assert: by session, newest first, exactly those reads with who, what and the parameters.
    let (entries, next) = listing(&client, &audrey_key, &format!("session_id={session}")).await?;
    assert_eq!(
        actions(&entries),
        vec![
            ("integrity.matches.read".into(), "".into()),
            ("integrity.read".into(), "".into()),
            ("replay.read".into(), "events".into()),
            ("replay.read".into(), "state".into()),
        ],
        "{entries:#?}"
    );
    assert_eq!(next, Value::Null);
    for e in &entries {
        assert_eq!(e["member_id"], rita.as_str());
        assert_eq!(e["member_name"], "Rita");
        assert_eq!(e["role"], "reviewer");
        assert_eq!(e["session_id"], session.as_str());
    }
    let at = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).expect("an RFC 3339 time")
    };
    assert!(
        entries
            .windows(2)
            .all(|w| at(&w[0]) >= at(&w[1]) && w[0]["id"].as_i64() > w[1]["id"].as_i64()),
        "newest first: {entries:#?}"
    );
    assert_eq!(entries[0]["detail"]["other_session_id"], other.as_str());
    assert!(
        entries[1]["detail"]["suite_version"].is_string(),
        "{}",
        entries[1]
    );
    assert_eq!(entries[2]["detail"]["from_seq"], 3);
    assert_eq!(entries[2]["detail"]["to_seq"], 12);
    assert_eq!(entries[2]["detail"]["limit"], 10);
    assert_eq!(entries[3]["detail"]["seq"], 5);
    assert_eq!(entries[3]["detail"]["at_ms"], Value::Null);

    // The other side of the comparison sees it too.
    let (entries, _) = listing(&client, &audrey_key, &format!("session_id={other}")).await?;
    assert_eq!(
        actions(&entries),
        vec![("integrity.matches.read".into(), "".into())]
    );

    // By member: the same four reads; paged with `before`.
    let (by_member, _) = listing(&client, &admin, &format!("member_id={rita}")).await?;
    assert_eq!(by_member.len(), 4, "{by_member:#?}");
    let (page1, next) = listing(&client, &audrey_key, &format!("member_id={rita}&limit=3")).await?;
    assert_eq!(page1.len(), 3);
    let next = next.as_i64().expect("a cursor after a full page");
    let (page2, end) = listing(
        &client,
        &audrey_key,
        &format!("member_id={rita}&limit=3&before={next}"),
    )
    .await?;
    assert_eq!(page2.len(), 1);
    assert_eq!(end, Value::Null);
    let ids: Vec<&Value> = page1.iter().chain(&page2).map(|e| &e["id"]).collect();
    let all: Vec<&Value> = by_member.iter().map(|e| &e["id"]).collect();
    assert_eq!(ids, all);
    // Both filters: the member's reads of that session.
    let (both, _) = listing(
        &client,
        &audrey_key,
        &format!("session_id={session}&member_id={audrey}"),
    )
    .await?;
    assert!(both.is_empty(), "{both:#?}");
    // Listing is logged too, under the auditor, without a session.
    let (own, _) = listing(&client, &audrey_key, &format!("member_id={audrey}")).await?;
    assert!(!own.is_empty());
    assert!(own
        .iter()
        .all(|e| e["action"] == "access_log.read" && e["session_id"].is_null()));

    // The other reads are logged with their parameters.
    let r = client
        .get(&format!("{base}/events?limit=7"), &admin)
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    let r = client.get(&format!("{base}/review"), &hana_key).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let (entries, _) = listing(
        &client,
        &audrey_key,
        &format!("session_id={session}&limit=2"),
    )
    .await?;
    assert_eq!(entries[0]["action"], "review.read");
    assert_eq!(entries[0]["role"], "hiring_manager");
    assert_eq!(entries[1]["action"], "session_events.read");
    assert_eq!(entries[1]["role"], "admin");
    assert_eq!(entries[1]["detail"]["limit"], 7);

    // Another organization: 404, no row under the session, and nothing of Acme in its listings.
    let before = rows_for(&env, &session).await?;
    let globex = new_org(&env, "Globex").await?;
    for path in [
        format!("{base}/replay"),
        format!("{base}/replay/state?seq=1"),
        format!("{base}/replay/events"),
        format!("{base}/events"),
        format!("{base}/integrity"),
        format!("{base}/integrity/matches/{other}"),
        format!("{base}/review"),
    ] {
        let r = client.get(&path, &globex).await?;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}: {r:?}");
    }
    assert_eq!(rows_for(&env, &session).await?, before);
    let (entries, _) = listing(&client, &globex, &format!("session_id={session}")).await?;
    assert!(entries.is_empty(), "{entries:#?}");
    let (entries, _) = listing(&client, &globex, &format!("member_id={rita}")).await?;
    assert!(entries.is_empty(), "{entries:#?}");
    let cursor = by_member[0]["id"].as_i64().unwrap() + 1;
    let (entries, _) = listing(
        &client,
        &globex,
        &format!("member_id={rita}&before={cursor}"),
    )
    .await?;
    assert!(entries.is_empty(), "{entries:#?}");
    let me = client.get("/v1/me", &globex).await?;
    let globex_admin = me.body["member_id"].as_str().unwrap().to_string();
    let (entries, _) = listing(&client, &globex, &format!("member_id={globex_admin}")).await?;
    assert!(
        entries
            .iter()
            .all(|e| e["action"] == "access_log.read" && e["member_id"] == globex_admin.as_str()),
        "{entries:#?}"
    );

    // Roles and parameters.
    for key in [&rita_key, &hana_key, &anil_key] {
        let r = client
            .get(&format!("/v1/audit/access?session_id={session}"), key)
            .await?;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "{r:?}");
    }
    let r = client.get("/v1/audit/access", &audrey_key).await?;
    assert_eq!((r.status, r.code()), (422, "filter_required"), "{r:?}");
    let r = client
        .get(
            &format!("/v1/audit/access?session_id={session}&limit=1001"),
            &audrey_key,
        )
        .await?;
    assert_eq!((r.status, r.code()), (422, "invalid_limit"), "{r:?}");
    let r = client
        .get("/v1/audit/access?session_id=nope", &audrey_key)
        .await?;
    assert_eq!((r.status, r.code()), (422, "invalid_query"), "{r:?}");

    // The database refuses to rewrite or erase the log.
    for sql in [
        "UPDATE access_log SET action = 'nothing'",
        "DELETE FROM access_log",
        "TRUNCATE access_log",
    ] {
        let refused = sqlx::query(sql).execute(&env.pool).await;
        assert!(refused.is_err(), "{sql} was allowed");
        assert!(
            refused.unwrap_err().to_string().contains("append-only"),
            "{sql}"
        );
    }
    assert_eq!(rows_for(&env, &session).await?, before);

    // A read that cannot be audited is not served.
    sqlx::query("ALTER TABLE access_log RENAME TO access_log_away")
        .execute(&env.pool)
        .await?;
    let r = client
        .get(&format!("{base}/replay/state?seq=5"), &rita_key)
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (503, "access_log_unavailable"),
        "{r:?}"
    );
    assert!(r.body.get("files").is_none());
    sqlx::query("ALTER TABLE access_log_away RENAME TO access_log")
        .execute(&env.pool)
        .await?;
    let r = client
        .get(&format!("{base}/replay/state?seq=5"), &rita_key)
        .await?;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rows_for(&env, &session).await?, before + 1);

    product.stop().await
}
