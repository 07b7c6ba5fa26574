//! Blind review everywhere (issue 11): a member who reviews a session and has not completed their
//! own review sees none of the other reviewers' scores or justifications, nor what was derived
//! from them (the decision, the session's place in a cohort), on any staff route — whatever their
//! role.
//!
//! The routes are not listed here by hand: they are every GET operation of the live
//! `/openapi.json` that takes a member API key, so a route added later is called too. Path and
//! required query parameters are filled from the arrangement by name; `extra_queries` adds the
//! variants a route needs to show more (a position, a stored report version). The test fails if a
//! route could not be exercised (no pending member got a 200 or `complete_your_review_first`
//! from it) unless `NOT_SESSION_RELATED` lists it with a reason.
//!
//! A control proves the scan can fail: members who may see the scores (a hiring manager and an
//! auditor who do not review the session, and the pending reviewer once they completed their
//! review) do find the markers, on every route known to carry them.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use clarity_domain::assessment::Criterion;
use clarity_tests::{Client, Reply, TestEnv, REST_API};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Staff GET routes that cannot show anything of a session's review, each with the reason; they
/// are not required to be exercised. Every other staff GET route must be.
const NOT_SESSION_RELATED: &[(&str, &str)] = &[];

/// Routes that show a completed reviewer's scores to a member allowed to see them: the control
/// must find the markers there, or the scan proves nothing.
const CARRY_SCORES: &[&str] = &[
    "/v1/sessions/{session_id}/review",
    "/v1/sessions/{session_id}/events",
    "/v1/sessions/{session_id}/report",
    "/v1/sessions/{session_id}/audit/bundle",
    "/v1/assessments/{assessment_id}/versions/{version}/leaderboard",
    "/v1/leaderboard",
];

/// Everything the arrangement made that the calls need.
struct Fixture {
    /// The session under review (Alice completed, the others have not).
    session: String,
    /// Another finished, scored session of the same assessment version, reviewed by Alice only.
    other: String,
    alice: String,
    suite_version: String,
    last_seq: i64,
    /// A report version of `session` served to Hana (with Alice's scores in it).
    report_hash: String,
    /// A report version of `other` served to Hana (its cohort counts `session`).
    other_report_hash: String,
}

/// What must never reach a pending reviewer of `session`.
struct Secrets {
    /// Alice's justifications on the session and the decision's rationale.
    markers: Vec<String>,
    /// The ids of Alice's scores on the session.
    score_ids: Vec<String>,
    session: String,
}

impl Secrets {
    /// The secrets found in a response body (JSON, or the raw text of an event stream).
    fn found_in(&self, body: &Value) -> Vec<String> {
        let text = match body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut found: Vec<String> = self
            .markers
            .iter()
            .chain(&self.score_ids)
            .filter(|m| text.contains(m.as_str()))
            .cloned()
            .collect();
        // Server-sent events: each `data:` line is JSON of its own.
        let mut values = vec![body.clone()];
        if let Value::String(s) = body {
            values.extend(
                s.lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok()),
            );
        }
        for v in &values {
            if ranked(v, &self.session) {
                found.push(format!("a ranked, scored row of session {}", self.session));
            }
        }
        found
    }
}

/// Whether `value` holds a leaderboard-like row for `session`: its score with a rank.
fn ranked(value: &Value, session: &str) -> bool {
    match value {
        Value::Object(map) => {
            (map.get("session_id").and_then(Value::as_str) == Some(session)
                && map.contains_key("score")
                && map.contains_key("rank"))
                || map.values().any(|v| ranked(v, session))
        }
        Value::Array(items) => items.iter().any(|v| ranked(v, session)),
        _ => false,
    }
}

/// A staff GET operation of the OpenAPI document.
struct Route {
    path: String,
    /// (name, location, required)
    params: Vec<(String, String, bool)>,
    /// Whether a stream ticket opens it instead of the key (`stream_ticket` security scheme).
    ticket: bool,
}

/// Every GET operation that takes a member API key (`api_key` security scheme).
fn staff_get_routes(doc: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(get) = item.get("get") else { continue };
        let staff = get["security"].as_array().is_some_and(|schemes| {
            schemes
                .iter()
                .any(|s| s.as_object().is_some_and(|o| o.contains_key("api_key")))
        });
        if !staff {
            continue;
        }
        let ticket = get["security"].as_array().is_some_and(|schemes| {
            schemes.iter().any(|s| {
                s.as_object()
                    .is_some_and(|o| o.contains_key("stream_ticket"))
            })
        });
        let params = get["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p["name"].as_str().unwrap_or_default().to_string(),
                            p["in"].as_str().unwrap_or_default().to_string(),
                            p["required"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        routes.push(Route {
            path: path.clone(),
            params,
            ticket,
        });
    }
    routes
}

/// The value of a path or required query parameter, by name; `main` is the session the path is
/// about, `second` the other one.
fn param_value(name: &str, f: &Fixture, main: &str, second: &str) -> Option<String> {
    Some(match name {
        "session_id" => main.to_string(),
        "other_session_id" => second.to_string(),
        "assessment_id" => REST_API.to_string(),
        "version" => "1".to_string(),
        "member_id" => f.alice.clone(),
        "from" | "suite_version" => f.suite_version.clone(),
        // The suite diff compares two different versions; this one has no analyses.
        "to" => "no-such-suite".to_string(),
        "from_seq" => "0".to_string(),
        "to_seq" => f.last_seq.to_string(),
        "seq" => "1".to_string(),
        _ => return None,
    })
}

/// Query variants beyond the required parameters: what a route needs to show more.
fn extra_queries(path: &str, f: &Fixture, main: &str) -> Vec<String> {
    let last = f.last_seq;
    match path {
        "/v1/sessions/{session_id}/replay/state" => {
            vec![format!("seq={last}"), "seq=1".into(), "at_ms=0".into()]
        }
        "/v1/sessions/{session_id}/replay/events" => vec!["limit=5000".into()],
        "/v1/sessions/{session_id}/replay/stream" => vec!["speed=32&skip_idle_ms=0".into()],
        "/v1/sessions/{session_id}/replay/diff" => vec![format!("from_seq=0&to_seq={last}")],
        "/v1/sessions/{session_id}/events" => vec!["limit=5000".into()],
        "/v1/sessions/{session_id}/integrity" => vec![format!("suite_version={}", f.suite_version)],
        "/v1/sessions/{session_id}/report" => {
            let hash = if main == f.session {
                &f.report_hash
            } else {
                &f.other_report_hash
            };
            vec![format!("version={hash}")]
        }
        "/v1/sessions" => vec!["limit=500".into()],
        "/v1/audit/access" => vec![
            format!("session_id={main}"),
            format!("member_id={}", f.alice),
        ],
        _ => Vec::new(),
    }
}

/// `a=1&b=2` from the non-empty parts.
fn join_query(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|q| !q.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("&")
}

/// One call's outcome.
struct Outcome {
    url: String,
    reply: Reply,
}

/// Calls `route` as `key` with every query variant, `main` as the session. A route a stream
/// ticket opens is also opened with a ticket from `POST <route>-tickets`, without the key (the
/// way a browser's `EventSource` does).
async fn call_route(
    client: &Client,
    route: &Route,
    key: &str,
    f: &Fixture,
    main: &str,
    second: &str,
) -> anyhow::Result<Result<Vec<Outcome>, String>> {
    let mut path = route.path.clone();
    let mut required = Vec::new();
    for (name, location, is_required) in &route.params {
        // A path parameter must be filled, as must a query parameter documented as required.
        let placeholder = format!("{{{name}}}");
        let in_path = route.path.contains(&placeholder);
        if !(in_path || location == "query" && *is_required) {
            continue;
        }
        let Some(value) = param_value(name, f, main, second) else {
            return Ok(Err(format!(
                "no value for the required parameter `{name}`: add it to param_value"
            )));
        };
        if in_path {
            path = path.replace(&placeholder, &value);
        } else {
            required.push(format!("{name}={value}"));
        }
    }
    let base_query = required.join("&");
    let mut queries = vec![base_query.clone()];
    for extra in extra_queries(&route.path, f, main) {
        queries.push(join_query(&[&base_query, &extra]));
    }
    let with_query = |q: &str| {
        if q.is_empty() {
            path.clone()
        } else {
            format!("{path}?{q}")
        }
    };
    let mut outcomes = Vec::new();
    for q in &queries {
        let url = with_query(q);
        let reply = client.get(&url, key).await?;
        outcomes.push(Outcome { url, reply });
    }
    if route.ticket {
        // A ticket opens the stream once: one per variant.
        for q in &queries {
            let issued = client
                .call(Method::POST, &format!("{path}-tickets"), Some(key), None)
                .await?;
            if issued.status != 201 {
                outcomes.push(Outcome {
                    url: format!("POST {path}-tickets"),
                    reply: issued,
                });
                continue;
            }
            let ticket = issued.body["ticket"].as_str().unwrap_or_default();
            let url = with_query(&join_query(&[q, &format!("ticket={ticket}")]));
            let reply = client.call(Method::GET, &url, None, None).await?;
            outcomes.push(Outcome {
                url: format!("{url} (ticket)"),
                reply,
            });
        }
    }
    Ok(Ok(outcomes))
}

/// What a sweep of every route found for one caller.
#[derive(Default)]
struct Sweep {
    /// Routes answered 200 or 403 `complete_your_review_first` at least once.
    exercised: BTreeSet<String>,
    /// Routes that could not be called, with why.
    unfillable: BTreeMap<String, String>,
    /// (route, url, what was found) for every secret in a 200 body.
    leaks: Vec<(String, String, Vec<String>)>,
    /// Every call answered 5xx.
    server_errors: Vec<String>,
    /// Streams opened with a ticket instead of the key.
    ticket_streams: usize,
}

async fn sweep(
    client: &Client,
    routes: &[Route],
    key: &str,
    f: &Fixture,
    secrets: &Secrets,
) -> anyhow::Result<Sweep> {
    let mut out = Sweep::default();
    for (main, second) in [(&f.session, &f.other), (&f.other, &f.session)] {
        for route in routes {
            let outcomes = match call_route(client, route, key, f, main, second).await? {
                Ok(o) => o,
                Err(why) => {
                    out.unfillable.insert(route.path.clone(), why);
                    continue;
                }
            };
            for Outcome { url, reply } in outcomes {
                if reply.status >= 500 {
                    out.server_errors.push(format!("{url}: {reply:?}"));
                }
                let blind = reply.status == 403 && reply.code() == "complete_your_review_first";
                if reply.status == 200 || blind {
                    out.exercised.insert(route.path.clone());
                }
                if reply.status == 200 && url.ends_with("(ticket)") {
                    out.ticket_streams += 1;
                }
                if reply.status == 200 {
                    let found = secrets.found_in(&reply.body);
                    if !found.is_empty() {
                        out.leaks.push((route.path.clone(), url, found));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Polls `check` until it says done, for at most 120 s (CI machines are slow and shared).
async fn eventually<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rubric() -> Vec<Criterion> {
    clarity_domain::catalogue::builtin()[0]
        .spec
        .rubric
        .criteria
        .clone()
}

/// A started session with 30 events, submitted and analysed: the integrity analysis is appended
/// to the session's stream, so reviewing before it lands can meet a concurrent modification (409,
/// "retry"), which is not what this test is about.
async fn analysed_session(
    env: &TestEnv,
    client: &Client,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    let typed = "x".repeat(30);
    let (session, _) = env
        .analysed_session(client, admin, name, 30, &[("main.py", &typed)])
        .await?;
    Ok(session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_staff_route_shows_other_reviewers_scores_to_a_pending_reviewer() -> anyhow::Result<()> {
    // Arrange: one organization; a session reviewed by Alice (completed, with marked
    // justifications), Bob (reviewer), Pat (admin) and Hugo (hiring manager), who have not
    // completed; a decision by Hana; and a second scored session of the same assessment.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (alice, alice_key) = client.member(&admin, "Alice", "reviewer").await?;
    let (bob, bob_key) = client.member(&admin, "Bob", "reviewer").await?;
    let (pat, pat_key) = client.member(&admin, "Pat", "admin").await?;
    let (hugo, hugo_key) = client.member(&admin, "Hugo", "hiring_manager").await?;
    let (_, hana_key) = client.member(&admin, "Hana", "hiring_manager").await?;
    let (_, audrey_key) = client.member(&admin, "Audrey", "auditor").await?;
    let session = analysed_session(&env, &client, &admin, "Ada Lovelace").await?;
    let other = analysed_session(&env, &client, &admin, "Grace Hopper").await?;
    let base = format!("/v1/sessions/{session}");
    let tag = Uuid::new_v4().simple().to_string();

    let r = client
        .post(
            &format!("{base}/reviewers"),
            &admin,
            &json!({"reviewers": [alice, bob, pat, hugo]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    let criteria = rubric();
    let mut markers = Vec::new();
    let mut score_ids = Vec::new();
    for c in &criteria {
        let marker = format!("alice-justifies-{}-{tag}", c.key);
        let top = c.levels.last().expect("levels").score;
        let r = client
            .post(
                &format!("{base}/scores"),
                &alice_key,
                &json!({"criterion": c.key, "score": top, "justification": marker}),
            )
            .await?;
        assert_eq!(r.status, 202, "{r:?}");
        markers.push(marker);
        score_ids.push(r.body["id"].as_str().expect("score id").to_string());
    }
    let r = client
        .post(&format!("{base}/review/complete"), &alice_key, &json!({}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    // Bob has scored one criterion of his own (he sees that one).
    let r = client
        .post(&format!("{base}/scores"), &bob_key, &json!({"criterion": criteria[0].key, "score": criteria[0].levels[0].score, "justification": "bob: first impression"}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    // The other session: Alice alone, every criterion at its lowest level (so `session` ranks
    // above it).
    client
        .complete_review(&admin, &other, (&alice, &alice_key), |c: &Criterion| {
            c.levels[0].score
        })
        .await?;

    for s in [&session, &other] {
        env.wait_for::<i64>(
            "the session's score",
            &format!("SELECT count(*) FROM session_scores WHERE session_id = '{s}'"),
            |n| *n == 1,
        )
        .await?;
    }
    env.wait_for::<i64>(
        "every reviewer's assignment",
        &format!("SELECT count(*) FROM review_reviewers WHERE session_id = '{session}'"),
        |n| *n == 4,
    )
    .await?;
    let last_seq = env
        .wait_for::<i64>(
            "the replay",
            &format!("SELECT last_seq FROM replay_sessions WHERE session_id = '{session}'"),
            |n| *n == 30,
        )
        .await?;

    // A comment (the blinded still see comments).
    let r = client
        .post(
            &format!("{base}/comments"),
            &alice_key,
            &json!({"replay_seq": 5, "text": "Starts with the handler."}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");

    // Hana (hiring manager, not a reviewer) reads both reports and decides on the session; her
    // rationale is derived from Alice's scores.
    let report = client.get(&format!("{base}/report"), &hana_key).await?;
    assert_eq!(report.status, 200, "{report:?}");
    let report_hash = report.body["content_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let other_report = client
        .get(&format!("/v1/sessions/{other}/report"), &hana_key)
        .await?;
    assert_eq!(other_report.status, 200, "{other_report:?}");
    assert_eq!(
        other_report.body["content"]["cohort"]["size"], 2,
        "Hana's cohort holds both sessions: {other_report:?}"
    );
    let other_report_hash = other_report.body["content_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    let rationale = format!("decision-rationale-{tag}: Alice rates it top on every criterion");
    markers.push(rationale.clone());
    let decision =
        json!({"outcome": "advance", "rationale": rationale, "report_hash": report_hash});
    eventually("the decision", || {
        let (client, hana_key, base, decision) = (&client, &hana_key, &base, &decision);
        async move {
            let r = client
                .post(&format!("{base}/decisions"), hana_key, decision)
                .await?;
            anyhow::ensure!(
                r.status == 202 || r.code() == "audit_chain_not_ready",
                "decision refused: {r:?}"
            );
            Ok(r.status == 202)
        }
    })
    .await?;
    env.wait_for::<i64>(
        "the decision's checkpoint",
        &format!("SELECT count(*) FROM audit_checkpoints WHERE session_id = '{session}' AND reason = 'decision'"),
        |n| *n == 1,
    )
    .await?;
    let suite_version: String = sqlx::query_scalar(
        "SELECT integrity_suite_version FROM sessions WHERE session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    let f = Fixture {
        session: session.clone(),
        other: other.clone(),
        alice: alice.clone(),
        suite_version,
        last_seq,
        report_hash,
        other_report_hash,
    };
    let secrets = Secrets {
        markers,
        score_ids,
        session: session.clone(),
    };
    let doc = client
        .call(Method::GET, "/openapi.json", None, None)
        .await?
        .body;
    let routes = staff_get_routes(&doc);
    assert!(
        routes.len() >= 20,
        "the OpenAPI document lists the staff routes: {}",
        routes.len()
    );
    let exempt: BTreeSet<&str> = NOT_SESSION_RELATED.iter().map(|(r, _)| *r).collect();
    for (route, reason) in NOT_SESSION_RELATED {
        assert!(
            routes.iter().any(|r| r.path == *route),
            "{route} is exempted ({reason}) but is not a staff GET route any more"
        );
    }

    // Act + Assert: every staff GET route, as each pending reviewer, shows none of it.
    let mut failures = Vec::new();
    for (who, key) in [
        ("Bob (reviewer)", &bob_key),
        ("Pat (admin)", &pat_key),
        ("Hugo (hiring manager)", &hugo_key),
    ] {
        let s = sweep(&client, &routes, key, &f, &secrets).await?;
        for (route, url, found) in &s.leaks {
            failures.push(format!("{who} sees {found:?} on {route} ({url})"));
        }
        failures.extend(s.server_errors.iter().map(|e| format!("{who}: 5xx {e}")));
        if who.starts_with("Pat") {
            if s.ticket_streams == 0 {
                failures.push("no replay stream was opened with a ticket".to_string());
            }
            // An admin reaches every staff route: each must have been exercised for real.
            for route in &routes {
                if !s.exercised.contains(&route.path) && !exempt.contains(route.path.as_str()) {
                    failures.push(format!(
                        "{} was not exercised (no 200 nor complete_your_review_first for an admin){}: give it a value in param_value / extra_queries, or list it in NOT_SESSION_RELATED with a reason",
                        route.path,
                        s.unfillable.get(&route.path).map(|w| format!(" — {w}")).unwrap_or_default()
                    ));
                }
            }
        }
    }
    // The session's place in a cohort is derived from Alice's scores too: a pending reviewer's
    // view of the other session ranks it as if `session` were not scored (as the leaderboards
    // do), and a stored report version that counted it is not shown to them.
    for (who, key) in [
        ("Pat (admin)", &pat_key),
        ("Hugo (hiring manager)", &hugo_key),
    ] {
        let board = client.get("/v1/leaderboard", key).await?;
        assert_eq!(board.status, 200, "{board:?}");
        if board.body["cohort_size"] != 1 {
            failures.push(format!(
                "{who}: the organization's leaderboard counts sessions {who} may not see scored: {}",
                board.body
            ));
        }
        let live = client
            .get(&format!("/v1/sessions/{other}/report"), key)
            .await?;
        assert_eq!(live.status, 200, "{who}: {live:?}");
        if live.body["content"]["cohort"] != json!({"size": 1, "percentile": 50.0, "rank": 1}) {
            failures.push(format!(
                "{who}: the other session's report ranks it among sessions {who} may not see scored: {}",
                live.body["content"]["cohort"]
            ));
        }
        let stored = client
            .get(
                &format!(
                    "/v1/sessions/{other}/report?version={}",
                    f.other_report_hash
                ),
                key,
            )
            .await?;
        if stored.status == 200 && stored.body["content"]["cohort"]["size"] != 1 {
            failures.push(format!(
                "{who}: a stored report version of the other session ranks it with `session` scored: {}",
                stored.body["content"]["cohort"]
            ));
        }
    }

    // Control: members who may see the scores find them, on every route that carries them.
    let mut seen_by_controls: BTreeSet<String> = BTreeSet::new();
    for (who, key) in [
        ("Hana (hiring manager)", &hana_key),
        ("Audrey (auditor)", &audrey_key),
    ] {
        let s = sweep(&client, &routes, key, &f, &secrets).await?;
        failures.extend(s.server_errors.iter().map(|e| format!("{who}: 5xx {e}")));
        seen_by_controls.extend(s.leaks.into_iter().map(|(route, ..)| route));
    }
    for route in CARRY_SCORES {
        if !seen_by_controls.contains(*route) {
            failures.push(format!(
                "control: no member allowed to see the scores found them on {route}; the scan cannot be trusted"
            ));
        }
    }
    // Bob completes his review: the same routes now show him Alice's scores and the decision.
    for c in &criteria[1..] {
        let r = client
            .post(&format!("{base}/scores"), &bob_key, &json!({"criterion": c.key, "score": c.levels[0].score, "justification": "bob: done"}))
            .await?;
        assert_eq!(r.status, 202, "{r:?}");
    }
    let r = client
        .post(&format!("{base}/review/complete"), &bob_key, &json!({}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<bool>(
        "Bob's completed review",
        &format!("SELECT completed_at IS NOT NULL FROM review_reviewers WHERE session_id = '{session}' AND reviewer = '{bob}'"),
        |d| *d,
    )
    .await?;
    let s = sweep(&client, &routes, &bob_key, &f, &secrets).await?;
    let bob_sees: BTreeSet<&str> = s.leaks.iter().map(|(route, ..)| route.as_str()).collect();
    for route in [
        "/v1/sessions/{session_id}/review",
        "/v1/sessions/{session_id}/events",
    ] {
        if !bob_sees.contains(route) {
            failures.push(format!(
                "control: Bob, done reviewing, does not see Alice's scores on {route}"
            ));
        }
    }
    let all: BTreeSet<&String> = s.leaks.iter().flat_map(|(_, _, found)| found).collect();
    for marker in &secrets.markers {
        if !all.contains(marker) {
            failures.push(format!("control: Bob, done reviewing, never sees {marker}"));
        }
    }

    assert!(
        failures.is_empty(),
        "blind review is broken:\n{}",
        failures.join("\n")
    );
    println!(
        "blind review holds on {} staff GET routes ({} exempt)",
        routes.len(),
        exempt.len()
    );
    product.stop().await
}
