//! Comparison across organizations (issue 15): organizations that opted in have their
//! submissions to a built-in assessment compared with each other's; a match names the other
//! session only by an opaque reference, and an organization that did not opt in is neither
//! compared nor compared with.

use chrono::Duration;
use clarity_tests::{new_org, Client, TestEnv};
use serde_json::{json, Value};

/// A solution long enough to fingerprint: rate-limited routes with their own logic.
fn solution() -> String {
    let mut s = String::new();
    for i in 0..12 {
        s.push_str(&format!(
            "export function handler{i}(req: Request, store: Map<string, number>): Response {{\n  \
             const key = req.headers.get('x-client') ?? 'anonymous';\n  \
             const seen = (store.get(key) ?? 0) + {i};\n  \
             if (seen > {limit}) {{\n    return new Response('slow down', {{ status: 429 }});\n  }}\n  \
             store.set(key, seen);\n  \
             for (let attempt = 0; attempt < {i} % 3 + 1; attempt++) {{\n    \
             if (attempt * {i} > seen) break;\n  }}\n  \
             return new Response(JSON.stringify({{ id: key, count: seen, page: {i} }}), {{ status: 200 }});\n}}\n\n",
            limit = 10 + i * 7
        ));
    }
    s
}

/// A started session of `admin`'s organization submits `solution()` in one new file.
async fn submit_solution(
    env: &TestEnv,
    client: &Client,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    let (session, token) = client.started_session(admin, name).await?;
    let started: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT (payload->'SessionStarted'->>'at')::timestamptz FROM events
         WHERE aggregate_id = $1 AND event_type = 'SessionStarted'",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    let events = json!([{"seq": 1, "ts": started + Duration::milliseconds(100), "data": {"type": "file_created", "file": "src/handlers.ts", "content": solution()}}]);
    let r = client
        .post(
            &format!("/v1/sessions/{session}/telemetry"),
            &token,
            &json!({ "events": events }),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "telemetry refused: {r:?}");
    let r = client
        .post(
            &format!("/v1/sessions/{session}/submit"),
            &token,
            &json!({}),
        )
        .await?;
    anyhow::ensure!(r.status == 200, "submit refused: {r:?}");
    env.wait_for_analysis(&session).await?;
    Ok(session)
}

fn similarity_findings(view: &Value) -> Vec<Value> {
    view["analysis"]["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["detector"] == "similarity")
        .flat_map(|r| r["findings"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opted_in_organizations_are_compared_without_seeing_each_other_and_others_are_not(
) -> anyhow::Result<()> {
    // Arrange: Acme and Globex opt in, Initech does not.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, acme) = (product.client.clone(), product.admin.clone());
    let globex = new_org(&env, "Globex").await?;
    let initech = new_org(&env, "Initech").await?;
    let off = client.get("/v1/integrity/settings", &acme).await?;
    assert_eq!(off.body["cross_org_comparison"], false, "{off:?}");
    let (_, reviewer) = client.member(&acme, "Rev Iewer", "reviewer").await?;
    let refused = client
        .put(
            "/v1/integrity/settings",
            &reviewer,
            &json!({"cross_org_comparison": true}),
        )
        .await?;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    for admin in [&acme, &globex] {
        let r = client
            .put(
                "/v1/integrity/settings",
                admin,
                &json!({"cross_org_comparison": true}),
            )
            .await?;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["cross_org_comparison"], true);
        assert!(r.body["changed_by"].is_string() && r.body["changed_at"].is_string());
    }

    // Act: the same solution is submitted in Acme first, then in Globex and in Initech.
    let original = submit_solution(&env, &client, &acme, "First Writer").await?;
    let globex_copy = submit_solution(&env, &client, &globex, "Second Writer").await?;
    let initech_copy = submit_solution(&env, &client, &initech, "Third Writer").await?;

    // Assert: Globex's analysis finds the copy under an opaque reference, and nothing of Acme's
    // session, organization or candidate shows.
    let view = client
        .get(&format!("/v1/sessions/{globex_copy}/integrity"), &globex)
        .await?;
    let found = similarity_findings(&view.body);
    assert_eq!(found.len(), 1, "{}", view.body);
    let related = found[0]["related_session"].as_str().unwrap();
    assert!(related.starts_with("other-org:"), "{related}");
    assert_eq!(found[0]["level"], "major");
    let text = view.body.to_string();
    for secret in [original.as_str(), "First Writer", "Acme"] {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
    // Initech did not opt in: not compared (and Globex's copy, analysed before, did not see it).
    let view = client
        .get(&format!("/v1/sessions/{initech_copy}/integrity"), &initech)
        .await?;
    assert!(similarity_findings(&view.body).is_empty(), "{}", view.body);
    // Acme's own session was analysed first, with nobody to match yet.
    let view = client
        .get(&format!("/v1/sessions/{original}/integrity"), &acme)
        .await?;
    assert!(similarity_findings(&view.body).is_empty(), "{}", view.body);
    // The reference is not a way into the other organization's data.
    let r = client
        .get(
            &format!("/v1/sessions/{globex_copy}/integrity/matches/{original}"),
            &globex,
        )
        .await?;
    assert_eq!(r.status, 404, "{r:?}");
    Ok(())
}
