//! Reviews and decisions end to end: blind review, amendments that never edit in place,
//! decision preconditions, role and organization checks.

use clarity_tests::{new_org, TestEnv};
use serde_json::{json, Value};

fn criteria() -> Vec<(String, u8)> {
    let rubric = &clarity_domain::catalogue::builtin()[0].spec.rubric;
    rubric
        .criteria
        .iter()
        .map(|c| (c.key.clone(), c.levels.last().unwrap().score))
        .collect()
}

const REPORT_HASH: &str = "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewers_score_blind_amend_by_new_events_and_a_hiring_manager_decides(
) -> anyhow::Result<()> {
    // Arrange: a submitted session, two reviewers, a hiring manager, an auditor, an analyst.
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin) = (product.client.clone(), product.admin.clone());
    let (alice, alice_key) = client.member(&admin, "Alice", "reviewer").await?;
    let (bob, bob_key) = client.member(&admin, "Bob", "reviewer").await?;
    let (_, hana_key) = client.member(&admin, "Hana", "hiring_manager").await?;
    let (_, auditor_key) = client.member(&admin, "Audrey", "auditor").await?;
    let (_, analyst_key) = client.member(&admin, "Anil", "analyst").await?;
    let (session, token) = client.started_session(&admin, "Ada Lovelace").await?;
    assert_eq!(
        client.send_events(&session, &token, 1, 30).await?.status,
        200
    );
    let (running, _) = client.started_session(&admin, "Still Typing").await?;
    client.submit(&session, &token, &[("main.py", "x")]).await?;
    let base = format!("/v1/sessions/{session}");
    let criteria = criteria();
    assert!(criteria.len() >= 2);

    // Assigning: only the organization's reviewers, hiring managers and admins.
    let r = client
        .post(
            &format!("{base}/reviewers"),
            &admin,
            &json!({"reviewers": [alice, uuid::Uuid::new_v4()]}),
        )
        .await?;
    assert_eq!((r.status, r.code()), (404, "unknown_reviewer"), "{r:?}");
    let r = client
        .post(
            &format!("{base}/reviewers"),
            &bob_key,
            &json!({"reviewers": [bob]}),
        )
        .await?;
    assert_eq!(r.status, 403, "a reviewer does not assign: {r:?}");
    let r = client
        .post(
            &format!("{base}/reviewers"),
            &admin,
            &json!({"reviewers": [alice, bob]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    let r = client
        .post(
            &format!("/v1/sessions/{running}/reviewers"),
            &admin,
            &json!({"reviewers": [alice]}),
        )
        .await?;
    assert_eq!(r.status, 202, "reviewers can be assigned early: {r:?}");
    let r = client
        .post(
            &format!("/v1/sessions/{running}/scores"),
            &alice_key,
            &json!({"criterion": criteria[0].0, "score": criteria[0].1, "justification": "early"}),
        )
        .await?;
    assert_eq!((r.status, r.code()), (409, "session_not_finished"), "{r:?}");

    // Scoring: Alice scores everything, Bob one criterion.
    let mut alice_scores = Vec::new();
    for (key, top) in &criteria {
        let r = client
            .post(
                &format!("{base}/scores"),
                &alice_key,
                &json!({"criterion": key, "score": top, "justification": format!("{key}: solid")}),
            )
            .await?;
        assert_eq!(r.status, 202, "{r:?}");
        alice_scores.push(r.body["id"].as_str().unwrap().to_string());
    }
    let r = client.post(&format!("{base}/scores"), &bob_key, &json!({"criterion": criteria[0].0, "score": 1, "justification": "misses the edge cases"})).await?;
    assert_eq!(r.status, 202, "{r:?}");
    // Bad scores change nothing.
    for (body, status, code) in [
        (
            json!({"criterion": "nope", "score": 1, "justification": "x"}),
            404,
            "unknown_criterion",
        ),
        (
            json!({"criterion": criteria[1].0, "score": 99, "justification": "x"}),
            404,
            "unknown_level",
        ),
        (
            json!({"criterion": criteria[1].0, "score": 1, "justification": " "}),
            422,
            "justification_required",
        ),
        (
            json!({"criterion": criteria[0].0, "score": 1, "justification": "again"}),
            409,
            "already_scored",
        ),
    ] {
        let r = client
            .post(&format!("{base}/scores"), &bob_key, &body)
            .await?;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {r:?}");
    }
    let (stranger, stranger_key) = client.member(&admin, "Sam", "reviewer").await?;
    let r = client
        .post(
            &format!("{base}/scores"),
            &stranger_key,
            &json!({"criterion": criteria[0].0, "score": 1, "justification": "x"}),
        )
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (403, "not_a_reviewer"),
        "{r:?} ({stranger})"
    );

    // No decision before a completed review.
    let decision = json!({"outcome": "advance", "rationale": "Strong on every criterion.", "report_hash": REPORT_HASH});
    let r = client
        .post(&format!("{base}/decisions"), &hana_key, &decision)
        .await?;
    assert_eq!((r.status, r.code()), (409, "no_completed_review"), "{r:?}");
    // Bob cannot complete with a criterion unscored.
    let r = client
        .post(&format!("{base}/review/complete"), &bob_key, &json!({}))
        .await?;
    assert_eq!((r.status, r.code()), (409, "review_incomplete"), "{r:?}");

    // Blind review: before completing, each reviewer sees only their own scores.
    let scored_rows = (criteria.len() + 1) as i64;
    env.wait_for::<i64>(
        "the scores",
        &format!("SELECT count(*) FROM review_scores WHERE session_id = '{session}'"),
        |n| *n == scored_rows,
    )
    .await?;
    let view = client.get(&format!("{base}/review"), &bob_key).await?;
    assert_eq!(view.status, 200, "{view:?}");
    assert_eq!(view.body["blinded"], true);
    let reviewers_seen: Vec<&str> = view.body["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reviewer"].as_str().unwrap())
        .collect();
    assert_eq!(reviewers_seen, vec![bob.as_str()]);
    // The same rule on the raw event log: Bob's log carries his own scores, not Alice's.
    let scorers_in_log = |log: &clarity_tests::Reply| -> Vec<String> {
        let mut scorers: Vec<String> = log.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_type"] == "CriterionScored")
            .map(|e| e["data"]["reviewer"].as_str().unwrap().to_string())
            .collect();
        scorers.dedup();
        scorers
    };
    let log = client
        .get(&format!("{base}/events?limit=5000"), &bob_key)
        .await?;
    assert_eq!(log.status, 200, "{log:?}");
    assert_eq!(
        scorers_in_log(&log),
        vec![bob.clone()],
        "blind on /events too"
    );
    let r = client
        .post(&format!("{base}/review/complete"), &alice_key, &json!({}))
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<bool>("Alice's completed review", &format!("SELECT completed_at IS NOT NULL FROM review_reviewers WHERE session_id = '{session}' AND reviewer = '{alice}'"), |d| *d).await?;
    let view = client.get(&format!("{base}/review"), &alice_key).await?;
    assert_eq!(view.body["blinded"], false);
    let log = client
        .get(&format!("{base}/events?limit=5000"), &alice_key)
        .await?;
    let mut scorers = scorers_in_log(&log);
    scorers.sort();
    scorers.dedup();
    assert_eq!(
        scorers.len(),
        2,
        "a completed reviewer's log has everyone's scores: {scorers:?}"
    );
    assert_eq!(
        view.body["scores"].as_array().unwrap().len() as i64,
        scored_rows
    );
    let view = client.get(&format!("{base}/review"), &bob_key).await?;
    assert_eq!(
        view.body["blinded"], true,
        "Bob has still not completed his"
    );

    // Amending a score is a new event; the old one stays, marked not current.
    let r = client.post(&format!("{base}/scores"), &alice_key, &json!({"criterion": criteria[0].0, "score": 1, "justification": "re-read the tests: they do not pass", "supersedes": alice_scores[0]})).await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<i64>(
        "the amendment",
        &format!(
            "SELECT count(*) FROM review_scores WHERE session_id = '{session}' AND NOT current"
        ),
        |n| *n == 1,
    )
    .await?;

    // Deciding: hiring managers and admins only, with the report hash.
    let r = client
        .post(&format!("{base}/decisions"), &alice_key, &decision)
        .await?;
    assert_eq!(r.status, 403, "a reviewer cannot decide: {r:?}");
    let r = client
        .post(
            &format!("{base}/decisions"),
            &hana_key,
            &json!({"outcome": "advance", "rationale": "x", "report_hash": "nothex"}),
        )
        .await?;
    assert_eq!((r.status, r.code()), (422, "invalid_report_hash"), "{r:?}");
    // A well-formed hash of a report nobody was served is refused: the decision must name the
    // report version its decider looked at.
    let r = client
        .post(&format!("{base}/decisions"), &hana_key, &decision)
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (404, "unknown_report_version"),
        "{r:?}"
    );
    env.wait_for::<i64>(
        "the session's score",
        &format!("SELECT count(*) FROM session_scores WHERE session_id = '{session}'"),
        |n| *n == 1,
    )
    .await?;
    // The integrity analysis also changes the report (a new version with a new hash is right
    // then), so both reads below must come after it.
    env.wait_for_analysis(&session).await?;
    let report = client.get(&format!("{base}/report"), &hana_key).await?;
    assert_eq!(report.status, 200, "{report:?}");
    let served = report.body["content_hash"].as_str().unwrap().to_string();
    // Only Alice completed: the aggregate is her (amended) scores, and the cohort is this session.
    assert_eq!(report.body["content"]["cohort"]["size"], 1);
    assert_eq!(report.body["content"]["cohort"]["percentile"], 50.0);
    assert_eq!(report.body["content"]["cohort"]["rank"], 1);
    let again = client.get(&format!("{base}/report"), &hana_key).await?;
    assert_eq!(
        again.body["content_hash"],
        served.as_str(),
        "same content, same hash"
    );
    let board = client
        .get(
            &format!(
                "/v1/assessments/{}/versions/1/leaderboard",
                clarity_tests::REST_API
            ),
            &hana_key,
        )
        .await?;
    assert_eq!(board.status, 200, "{board:?}");
    assert_eq!(board.body["cohort_size"], 1);
    assert_eq!(board.body["rows"][0]["session_id"], session.as_str());
    assert_eq!(
        board.body["rows"][0]["score"],
        report.body["content"]["scores"]["aggregate"]
    );
    let org_board = client.get("/v1/leaderboard", &hana_key).await?;
    assert_eq!(org_board.status, 200, "{org_board:?}");
    assert_eq!(org_board.body["cohort_size"], 1);
    assert_eq!(
        org_board.body["rows"][0]["assessment_id"],
        clarity_tests::REST_API
    );
    assert_eq!(org_board.body["rows"][0]["rank"], 1);
    let other_org = new_org(&env, "Initech").await?;
    let foreign = client.get("/v1/leaderboard", &other_org).await?;
    assert_eq!(
        foreign.body["cohort_size"], 0,
        "nothing crosses organizations"
    );
    let r = client
        .get(
            &format!(
                "/v1/assessments/{}/versions/1/leaderboard",
                clarity_tests::REST_API
            ),
            &alice_key,
        )
        .await?;
    assert_eq!(r.status, 403, "reviewers do not see leaderboards");
    let decision = json!({"outcome": "advance", "rationale": "Strong on every criterion.", "report_hash": served});
    let r = client
        .post(&format!("{base}/decisions"), &hana_key, &decision)
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    let first = r.body["id"].as_str().unwrap().to_string();
    let r = client
        .post(&format!("{base}/decisions"), &hana_key, &decision)
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (409, "decision_already_recorded"),
        "{r:?}"
    );
    let r = client.post(&format!("{base}/decisions"), &admin, &json!({"outcome": "hold", "rationale": "Waiting for the walk-through interview.", "report_hash": served, "supersedes": first})).await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<Option<String>>(
        "the amended decision",
        &format!("SELECT decision FROM sessions WHERE session_id = '{session}'"),
        |d| d.as_deref() == Some("hold"),
    )
    .await?;
    let view = client.get(&format!("{base}/review"), &auditor_key).await?;
    assert_eq!(view.status, 200);
    assert_eq!(view.body["blinded"], false, "auditors are not reviewers");
    let decisions = view.body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!(
        (
            decisions[0]["current"].clone(),
            decisions[1]["current"].clone()
        ),
        (json!(false), json!(true))
    );
    assert_eq!(decisions[1]["supersedes"], Value::String(first));
    assert_eq!(decisions[1]["report_hash"], served.as_str());
    // What the decider saw can be shown again exactly.
    let seen = client
        .get(&format!("{base}/report?version={served}"), &auditor_key)
        .await?;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert_eq!(seen.body["content"], report.body["content"]);

    // Comments sit at replay positions inside the session; findings must exist to be resolved.
    let r = client
        .post(
            &format!("{base}/comments"),
            &bob_key,
            &json!({"replay_seq": 31, "text": "past the end"}),
        )
        .await?;
    assert_eq!(
        (r.status, r.code()),
        (409, "replay_seq_out_of_range"),
        "{r:?}"
    );
    let r = client
        .post(
            &format!("{base}/comments"),
            &bob_key,
            &json!({"replay_seq": 12, "text": "Starts with the handler, good instinct."}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for_analysis(&session).await?;
    let suite: String = sqlx::query_scalar(
        "SELECT integrity_suite_version FROM sessions WHERE session_id = $1::uuid",
    )
    .bind(&session)
    .fetch_one(&env.pool)
    .await?;
    let r = client.post(&format!("{base}/integrity/resolutions"), &bob_key, &json!({"suite_version": suite, "ordinal": 99, "resolution": "dismissed", "reason": "no such finding"})).await?;
    assert_eq!((r.status, r.code()), (404, "unknown_finding"), "{r:?}");

    // Access: analysts read no reviews, other organizations see nothing.
    let r = client.get(&format!("{base}/review"), &analyst_key).await?;
    assert_eq!(r.status, 403);
    let globex = new_org(&env, "Globex").await?;
    let r = client.get(&format!("{base}/review"), &globex).await?;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = client
        .post(&format!("{base}/decisions"), &globex, &decision)
        .await?;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = client
        .post(
            &format!("{base}/reviewers"),
            &globex,
            &json!({"reviewers": [alice]}),
        )
        .await?;
    assert_eq!((r.status, r.code()), (404, "not_found"));

    // Blind review holds for the report too: a hiring manager who is also a pending reviewer
    // of the session does not see the others' scores there.
    let (hugo, hugo_key) = client.member(&admin, "Hugo", "hiring_manager").await?;
    let r = client
        .post(
            &format!("{base}/reviewers"),
            &admin,
            &json!({"reviewers": [hugo]}),
        )
        .await?;
    assert_eq!(r.status, 202, "{r:?}");
    env.wait_for::<i64>("Hugo's assignment", &format!("SELECT count(*) FROM review_reviewers WHERE session_id = '{session}' AND reviewer = '{hugo}'"), |n| *n == 1).await?;
    let r = client.get(&format!("{base}/report"), &hugo_key).await?;
    assert_eq!(
        (r.status, r.code()),
        (403, "complete_your_review_first"),
        "{r:?}"
    );
    // Nor on the leaderboards: the session is left out of his cohort (no row, no rank gap, no
    // share in anyone's percentile) while Hana, who does not review it, still sees it.
    let version_board = format!(
        "/v1/assessments/{}/versions/1/leaderboard",
        clarity_tests::REST_API
    );
    for path in [version_board.as_str(), "/v1/leaderboard"] {
        let hugos = client.get(path, &hugo_key).await?;
        assert_eq!(hugos.status, 200, "{hugos:?}");
        assert_eq!(hugos.body["cohort_size"], 0, "{path}: {hugos:?}");
        assert_eq!(hugos.body["withheld"], 1, "{path}: {hugos:?}");
        assert!(
            hugos.body["rows"].as_array().unwrap().is_empty(),
            "{path}: {hugos:?}"
        );
        let hanas = client.get(path, &hana_key).await?;
        assert_eq!(hanas.body["cohort_size"], 1, "{path}: {hanas:?}");
        assert_eq!(hanas.body["withheld"], 0, "{path}: {hanas:?}");
        assert_eq!(hanas.body["rows"][0]["session_id"], session.as_str());
    }

    // Everything is an event on the session; nothing was edited in place.
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM events WHERE aggregate_id = $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(&session)
    .fetch_all(&env.pool)
    .await?;
    let count = |k: &str| kinds.iter().find(|(n, _)| n == k).map_or(0, |(_, c)| *c);
    assert_eq!(count("CriterionScored"), criteria.len() as i64 + 2);
    assert_eq!(count("DecisionRecorded"), 2);
    assert_eq!(count("ReviewCompleted"), 1);
    assert_eq!(count("ReviewersAssigned"), 2);
    assert_eq!(count("CommentAdded"), 1);

    product.stop().await
}
