//! Chaos (issue 11, "No single input can stop Clarity"): candidates of two organizations post a
//! mixed stream of valid and hostile telemetry batches and lifecycle requests, all at once, while
//! hostile records are produced straight to the sessions topic (the API refuses most hostile input
//! at the edge; a foreign producer or an older API would not).
//!
//! Asserted: no request answers 5xx; every hostile request answers its 4xx with its stable code;
//! every acknowledged event is in every read model that holds telemetry — the session log and
//! counters, the replay (workspace, markers), the audit chain, the integrity analysis of submitted
//! sessions — exactly once; lifecycle state matches the event store; every projection reaches the
//! end of every partition (nothing stalls behind the injected records), and each injected record
//! is in `projection_rejects`, which holds nothing else.
//!
//! Every choice comes from a seeded generator (printed; rerun with `CHAOS_SEED=<seed> cargo test
//! -p clarity-tests --test e2e chaos::`). The interleaving between sessions is the scheduler's;
//! each session's own script is reproducible.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use clarity_api::config::Config;
use clarity_domain::telemetry::{TelemetryData, TelemetryEvent};
use clarity_tests::{new_org, Client, Reply, TestEnv};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

mod hostile;
mod model;
mod poison;
mod verify;

use hostile::{answered, hostile_telemetry, judge, send, Body};
use model::Model;
use poison::{high_watermarks, inject, offsets};
use verify::verify;

/// Sessions per organization, all typing at once.
const SESSIONS_PER_ORG: usize = 20;
/// Valid batches each session sends (retries and hostile requests come on top).
const VALID_BATCHES: usize = 10;
/// Records produced straight to the topic.
const INJECTED: usize = 27;
/// The replay's keyframe interval for this test (`CLARITY_REPLAY_KEYFRAME_EVENTS`), small enough
/// that every session has several keyframes to check.
const KEYFRAME_EVENTS: i64 = 50;
/// Seqs of injected telemetry start here: far beyond anything a candidate reaches, so that no
/// injected record takes the place of a valid one.
const INJECTED_SEQ: u64 = 1_000_000;

/// One candidate session.
#[derive(Clone)]
struct Candidate {
    index: usize,
    org: Uuid,
    session: String,
    token: String,
}

/// What a session's script did.
struct Outcome {
    candidate: Candidate,
    model: Model,
    /// Every problem seen (5xx, a refusal with the wrong code, a valid batch refused).
    problems: Vec<String>,
    hostile_sent: usize,
    submitted: bool,
}

/// One action of a script.
#[derive(Debug, Clone, Copy)]
enum Step {
    Valid,
    Hostile(usize),
    Retry,
    OverlappingRetry,
    RacingCopies,
}

/// A session's script: its valid batches, every hostile request once, retries, all shuffled;
/// then (for every other session) hostile submissions and the submission.
async fn run_session(
    client: Client,
    me: Candidate,
    peer: Candidate,
    stranger: Candidate,
    seed: u64,
    submit: bool,
) -> anyhow::Result<Outcome> {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (me.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let kinds = hostile_telemetry(&me, &peer, &stranger, 1).len();
    let mut steps: Vec<Step> = (0..VALID_BATCHES).map(|_| Step::Valid).collect();
    steps.extend((0..kinds).map(Step::Hostile));
    steps.extend([
        Step::Retry,
        Step::OverlappingRetry,
        Step::RacingCopies,
        Step::Retry,
    ]);
    // The first batch is valid (it creates main.py); the rest in any order.
    steps[1..].shuffle(&mut rng);
    let mut model = Model::default();
    let mut problems = Vec::new();
    let mut hostile_sent = 0;
    let path = format!("/v1/sessions/{}/telemetry", me.session);
    let post = |events: &[TelemetryEvent]| {
        let (client, path, token) = (client.clone(), path.clone(), me.token.clone());
        let body = json!({ "events": events });
        async move {
            send(
                &client,
                Method::POST,
                &path,
                Some(&token),
                &Body::Json(body),
            )
            .await
        }
    };
    for step in steps {
        match step {
            Step::Valid | Step::RacingCopies => {
                let size = rng.random_range(1..=40);
                let first = model.next_seq();
                let batch: Vec<TelemetryEvent> = (0..size)
                    .map(|i| model.event(first + i, &mut rng))
                    .collect();
                let replies = if matches!(step, Step::RacingCopies) {
                    // A client retrying while its first attempt is still in flight: both copies
                    // may be produced; the read models keep one.
                    let (a, b) = tokio::join!(post(&batch), post(&batch));
                    vec![a, b]
                } else {
                    vec![post(&batch).await]
                };
                let replies: Vec<Reply> = replies
                    .into_iter()
                    .filter_map(|r| answered(r, "a valid batch", &mut problems))
                    .collect();
                if replies.is_empty() {
                    // Acknowledged or not, nobody knows: the model cannot follow any more.
                    break;
                }
                for r in &replies {
                    if r.status != 200 {
                        problems.push(format!(
                            "a valid batch of {size} from seq {first} answered {} {}",
                            r.status, r.body
                        ));
                    }
                }
                if replies.iter().all(|r| r.status != 200) {
                    // The model is now ahead of the session: nothing more is meaningful.
                    break;
                }
                let accepted: u64 = replies
                    .iter()
                    .filter_map(|r| r.body["accepted"].as_u64())
                    .sum();
                if accepted < size || accepted > size * replies.len() as u64 {
                    problems.push(format!(
                        "a valid batch of {size} was accepted {accepted} times in all: {replies:?}"
                    ));
                }
                model.acked.extend(batch.iter().cloned());
                model.batches.push(batch);
            }
            Step::Retry => {
                let Some(batch) = model.batches.last().cloned() else {
                    continue;
                };
                let Some(r) = answered(post(&batch).await, "a retried batch", &mut problems) else {
                    break;
                };
                if r.status != 200 || r.body["accepted"] != 0 || r.body["duplicates"] != batch.len()
                {
                    problems.push(format!(
                        "retrying an acknowledged batch of {}: {} {}",
                        batch.len(),
                        r.status,
                        r.body
                    ));
                }
            }
            Step::OverlappingRetry => {
                let old: Vec<TelemetryEvent> =
                    model.acked.iter().rev().take(3).rev().cloned().collect();
                let first = model.next_seq();
                let fresh: Vec<TelemetryEvent> =
                    (0..3).map(|i| model.event(first + i, &mut rng)).collect();
                let batch: Vec<TelemetryEvent> = old.iter().chain(&fresh).cloned().collect();
                let Some(r) = answered(post(&batch).await, "a retried batch", &mut problems) else {
                    break;
                };
                if r.status != 200 || r.body["accepted"] != 3 || r.body["duplicates"] != old.len() {
                    problems.push(format!(
                        "a retry overlapping {} acknowledged events: {} {}",
                        old.len(),
                        r.status,
                        r.body
                    ));
                }
                if r.status != 200 {
                    break;
                }
                model.acked.extend(fresh.iter().cloned());
                model.batches.push(fresh);
            }
            Step::Hostile(k) => {
                let hostile =
                    hostile_telemetry(&me, &peer, &stranger, model.next_seq()).swap_remove(k);
                let sent = send(
                    &client,
                    Method::POST,
                    &hostile.path,
                    hostile.token.as_deref(),
                    &hostile.body,
                )
                .await;
                hostile_sent += 1;
                if let Some(r) = answered(sent, hostile.name, &mut problems) {
                    problems.extend(judge(
                        hostile.name,
                        &r,
                        hostile.status,
                        hostile.code,
                        hostile.details,
                    ));
                }
            }
        }
    }

    // Lifecycle: hostile submissions change nothing; then every other session submits, and a
    // finished session refuses telemetry and a second submission.
    let base = format!("/v1/sessions/{}", me.session);
    let files: Vec<Value> = model
        .files
        .iter()
        .map(|(path, content)| json!({"path": path, "content": content}))
        .collect();
    for (name, body, status, code) in [
        (
            "a submission with a NUL in a path",
            json!({"files": [{"path": "a\u{0}.py", "content": "x"}]}),
            422,
            "invalid_text",
        ),
        (
            "an empty submission",
            json!({"files": []}),
            422,
            "invalid_submission",
        ),
        (
            "a submission with an unknown field",
            json!({"files": files, "grade": "A+"}),
            422,
            "invalid_body",
        ),
    ] {
        let sent = send(
            &client,
            Method::POST,
            &format!("{base}/submit"),
            Some(&me.token),
            &Body::Json(body),
        )
        .await;
        hostile_sent += 1;
        if let Some(r) = answered(sent, name, &mut problems) {
            problems.extend(judge(name, &r, status, code, &[]));
        }
    }
    if submit {
        let submission = Body::Json(json!({ "files": files }));
        let path = format!("{base}/submit");
        let sent = send(&client, Method::POST, &path, Some(&me.token), &submission).await;
        match answered(sent, "the submission", &mut problems) {
            Some(r) if r.status == 200 => {
                let late = TelemetryEvent {
                    seq: model.next_seq(),
                    ts: Utc::now(),
                    data: TelemetryData::FocusLost {},
                };
                let name = "telemetry after the submission";
                hostile_sent += 1;
                if let Some(r) = answered(post(&[late]).await, name, &mut problems) {
                    problems.extend(judge(name, &r, 409, "session_not_in_progress", &[]));
                }
                let name = "a second submission";
                let sent = send(&client, Method::POST, &path, Some(&me.token), &submission).await;
                hostile_sent += 1;
                if let Some(r) = answered(sent, name, &mut problems) {
                    problems.extend(judge(name, &r, 409, "session_finished", &[]));
                }
            }
            Some(r) => problems.push(format!("the submission answered {} {}", r.status, r.body)),
            None => {}
        }
    }
    Ok(Outcome {
        candidate: me,
        model,
        problems,
        hostile_sent,
        submitted: submit,
    })
}

/// Invites, and walks one candidate through consent and start, with hostile lifecycle requests
/// on the way (each must be refused and change nothing).
async fn prepare(
    client: &Client,
    admin: &str,
    org: Uuid,
    index: usize,
) -> anyhow::Result<(Candidate, Vec<String>, usize)> {
    let mut problems = Vec::new();
    let (session, token) = client.invite(admin, &format!("Candidate {index}")).await?;
    let base = format!("/v1/sessions/{session}");
    let consent = |notice: &str| json!({"notice_id": notice, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": true}});
    let megabyte = "n".repeat(1_100_000);
    let steps: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "a 1.1 MB notice version",
            "consent",
            consent(&megabyte),
            422,
            "text_too_long",
        ),
        (
            "a NUL in the notice version",
            "consent",
            consent("2026-11\u{0}"),
            422,
            "invalid_text",
        ),
        (
            "an unknown consent field",
            "consent",
            json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": true}, "age": 99}),
            422,
            "invalid_body",
        ),
        (
            "starting before consenting",
            "start",
            json!({}),
            409,
            "consent_required",
        ),
        (
            "consent",
            "consent",
            consent(clarity_tests::NOTICE_ID),
            200,
            "",
        ),
        (
            "consenting twice",
            "consent",
            consent(clarity_tests::NOTICE_ID),
            409,
            "consent_already_recorded",
        ),
        ("start", "start", json!({}), 200, ""),
        (
            "starting twice",
            "start",
            json!({}),
            409,
            "session_already_started",
        ),
    ];
    let mut hostile = 0;
    for (name, action, body, status, code) in steps {
        let r = client
            .post(&format!("{base}/{action}"), &token, &body)
            .await?;
        if status == 200 {
            if r.status != 200 {
                anyhow::bail!("{name} refused: {r:?}");
            }
        } else {
            hostile += 1;
            problems.extend(judge(name, &r, status, code, &[]));
        }
    }
    Ok((
        Candidate {
            index,
            org,
            session,
            token,
        },
        problems,
        hostile,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn valid_telemetry_survives_hostile_batches_and_poisoned_records_from_two_organizations(
) -> anyhow::Result<()> {
    let seed: u64 = match std::env::var("CHAOS_SEED") {
        Ok(s) => s.parse()?,
        Err(_) => rand::random(),
    };
    println!("chaos seed: {seed} (rerun with CHAOS_SEED={seed})");

    // Arrange: the whole product, two organizations, candidates consented and started (with
    // hostile lifecycle requests on the way).
    let env = TestEnv::new().await?;
    // Production limits, but for the refused credentials per client address: here the forty
    // candidates, each sending a forged token and no token at all, share 127.0.0.1.
    let api = env
        .spawn_api_with(Config {
            rate_failures_burst: 10_000,
            ..env.config.clone()
        })
        .await?;
    let relay = env.spawn_relay();
    // The projections with a small keyframe interval, so every session has several to check.
    let consumers = env.spawn_consumers_with(Config {
        replay_keyframe_events: KEYFRAME_EVENTS as u32,
        ..env.config.clone()
    });
    let client = Client::new(&api.base);
    let acme = new_org(&env, "Acme").await?;
    let globex = new_org(&env, "Globex").await?;
    let mut problems: Vec<String> = Vec::new();
    let mut hostile_sent = 0;
    let mut prepared = Vec::new();
    for (o, admin) in [acme.clone(), globex.clone()].iter().enumerate() {
        let me = client.get("/v1/me", admin).await?;
        let org: Uuid = me.body["org_id"].as_str().unwrap_or_default().parse()?;
        for (name, body, status, code) in [
            (
                "a NUL in a candidate's name",
                json!({"assessment_id": clarity_tests::REST_API, "candidate": {"name": "A\u{0}da", "email": "a@example.com"}}),
                422,
                "invalid_text",
            ),
            (
                "a 1.1 MB candidate name",
                json!({"assessment_id": clarity_tests::REST_API, "candidate": {"name": "n".repeat(1_100_000), "email": "a@example.com"}}),
                422,
                "text_too_long",
            ),
            (
                "a candidate name that is a number",
                json!({"assessment_id": clarity_tests::REST_API, "candidate": {"name": 7, "email": "a@example.com"}}),
                422,
                "invalid_body",
            ),
        ] {
            let r = client.post("/v1/sessions", admin, &body).await?;
            hostile_sent += 1;
            problems.extend(judge(name, &r, status, code, &[]));
        }
        let started = futures::future::join_all(
            (0..SESSIONS_PER_ORG).map(|i| prepare(&client, admin, org, o * SESSIONS_PER_ORG + i)),
        )
        .await;
        for p in started {
            let (candidate, found, sent) = p?;
            problems.extend(found);
            hostile_sent += sent;
            prepared.push(candidate);
        }
    }
    let everyone = prepared;
    let total = everyone.len();

    // Act: every session's script at once, and hostile records straight to the topic meanwhile.
    let scripts = everyone.iter().map(|me| {
        // The next session of the same organization, and the same one of the other.
        let first_of_org = me.index / SESSIONS_PER_ORG * SESSIONS_PER_ORG;
        let peer = everyone[first_of_org + (me.index + 1) % SESSIONS_PER_ORG].clone();
        let stranger = everyone[(me.index + SESSIONS_PER_ORG) % total].clone();
        tokio::spawn(run_session(
            client.clone(),
            me.clone(),
            peer,
            stranger,
            seed,
            me.index % 2 == 0,
        ))
    });
    let (outcomes, injected) = tokio::join!(
        futures::future::join_all(scripts),
        inject(&env, everyone.clone(), seed)
    );
    let injected = injected?;
    let mut done = Vec::new();
    for o in outcomes {
        let o = o??;
        hostile_sent += o.hostile_sent;
        problems.extend(
            o.problems
                .iter()
                .map(|p| format!("{}: {p}", o.candidate.session)),
        );
        done.push(o);
    }
    let acked: usize = done.iter().map(|o| o.model.acked.len()).sum();
    println!(
        "chaos: {total} sessions, {acked} acknowledged events, {hostile_sent} hostile requests, {} injected records",
        injected.len()
    );

    // Assert: the read models catch up with every acknowledged event ...
    let expected_total: i64 = acked as i64;
    let ids: Vec<String> = done
        .iter()
        .map(|o| format!("'{}'", o.candidate.session))
        .collect();
    let ids = ids.join(",");
    env.wait_for::<i64>(
        "the sessions projection to hold every acknowledged event",
        &format!("SELECT coalesce(sum(telemetry_events), 0)::bigint FROM sessions WHERE session_id IN ({ids})"),
        |n| *n >= expected_total,
    )
    .await?;
    env.wait_for::<i64>(
        "the replay projection to reach every session's last event",
        &format!("SELECT coalesce(sum(last_seq), 0)::bigint FROM replay_sessions WHERE session_id IN ({ids})"),
        |n| *n >= expected_total,
    )
    .await?;
    let submitted: Vec<String> = done
        .iter()
        .filter(|o| o.submitted)
        .map(|o| format!("'{}'", o.candidate.session))
        .collect();
    env.wait_for::<i64>(
        "every submitted session's integrity analysis",
        &format!(
            "SELECT count(*) FROM integrity_analyses WHERE session_id IN ({})",
            submitted.join(",")
        ),
        |n| *n == submitted.len() as i64,
    )
    .await?;
    // ... and every projection reaches the end of every partition: nothing stalls behind the
    // injected records.
    let ends = high_watermarks(&env).await?;
    for projection in ["sessions", "replay"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let at = offsets(&env, projection).await?;
            if ends
                .iter()
                .all(|(p, end)| at.get(p).copied().unwrap_or(0) >= *end)
            {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "seed {seed}: projection {projection} stalled at {at:?}; the partitions end at {ends:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Every session's read models, one by one.
    for o in &done {
        let admin = if o.candidate.index < SESSIONS_PER_ORG {
            &acme
        } else {
            &globex
        };
        problems.extend(verify(&env, &client, admin, o).await?);
    }

    // Every injected record is quarantined where it was read, and nothing else is.
    let rejects: BTreeSet<(String, i32, i64)> = sqlx::query_as::<_, (String, i32, i64)>(
        "SELECT projection, partition, \"offset\" FROM projection_rejects WHERE topic = $1",
    )
    .bind(&env.config.topic_sessions)
    .fetch_all(&env.pool)
    .await?
    .into_iter()
    .collect();
    let mut expected = BTreeSet::new();
    for i in &injected {
        expected.insert(("sessions".to_string(), i.partition, i.offset));
        if i.envelope {
            expected.insert(("replay".to_string(), i.partition, i.offset));
        }
        if !rejects.contains(&("sessions".to_string(), i.partition, i.offset)) {
            problems.push(format!(
                "injected {} at {}@{} is not in projection_rejects: {:?}",
                i.kind, i.partition, i.offset, i
            ));
        }
    }
    let injected_at: BTreeSet<(i32, i64)> =
        injected.iter().map(|i| (i.partition, i.offset)).collect();
    for extra in rejects.difference(&expected) {
        // An injected record the replay could read (its poison is in the data, for the sessions
        // projection) but that follows another injected record of the same session which the
        // replay set aside is held behind it, to keep the session's stream in order: right, and
        // still an injected record. A valid record set aside is a failure.
        let kind: Option<String> = sqlx::query_scalar(
            "SELECT kind FROM projection_rejects WHERE topic = $1 AND projection = $2 AND partition = $3 AND \"offset\" = $4",
        )
        .bind(&env.config.topic_sessions)
        .bind(&extra.0)
        .bind(extra.1)
        .bind(extra.2)
        .fetch_optional(&env.pool)
        .await?;
        if extra.0 == "replay"
            && kind.as_deref() == Some("held")
            && injected_at.contains(&(extra.1, extra.2))
        {
            continue;
        }
        problems.push(format!("projection_rejects holds {extra:?}, which was not injected (a valid record set aside?)"));
    }
    for missing in expected.difference(&rejects) {
        if missing.0 == "replay" {
            problems.push(format!(
                "the replay projection did not set aside the injected record at {}@{}",
                missing.1, missing.2
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "seed {seed}: {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    consumers.stop().await?;
    relay.stop().await?;
    api.stop().await
}
