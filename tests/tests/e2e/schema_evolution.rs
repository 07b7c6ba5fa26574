//! Schema evolution end to end: records the way a *newer* producer writes them (attributes and
//! fields this build does not know, in the envelope and deep inside `data`), and `SessionStarted`
//! v1 records (from before v2, on the topic and in the event store), reach the read models
//! correctly next to normal traffic; nothing is set aside in `projection_rejects`. And a rolling
//! upgrade: a consumer killed and restarted while such records arrive loses and doubles nothing.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use clarity_tests::{Client, TestEnv};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use uuid::Uuid;

/// Which event a record carries.
struct Event<'a> {
    kind: &'a str,
    aggregate: &'a str,
    name: &'a str,
    version: u32,
}

impl<'a> Event<'a> {
    fn lifecycle(name: &'a str, version: u32) -> Self {
        Self {
            kind: "lifecycle",
            aggregate: "CandidateSession",
            name,
            version,
        }
    }

    fn telemetry(kind: &'a str) -> Self {
        Self {
            kind: "telemetry",
            aggregate: "Telemetry",
            name: kind,
            version: 1,
        }
    }
}

/// Writes records straight to the sessions topic, shaped like a newer producer's.
struct NewerProducer {
    producer: FutureProducer,
    topic: String,
    org: Uuid,
}

impl NewerProducer {
    fn new(env: &TestEnv, org: Uuid) -> anyhow::Result<Self> {
        Ok(Self {
            producer: env.config.kafka().producer(2)?,
            topic: env.config.topic_sessions.clone(),
            org,
        })
    }

    /// The envelope, with extension attributes a newer producer adds.
    fn record(
        &self,
        session: Uuid,
        event: Event,
        seq: u64,
        time: DateTime<Utc>,
        data: Value,
    ) -> Value {
        let Event {
            kind,
            aggregate,
            name,
            version,
        } = event;
        json!({
            "specversion": "1.0",
            "id": format!("{aggregate}/{session}/{seq}"),
            "source": "clarity",
            "type": format!("clarity.{aggregate}.{name}.v{version}"),
            "subject": session.to_string(),
            "time": time,
            "datacontenttype": "application/json",
            "dataschema": format!("urn:clarity:schema:{aggregate}.{name}:{version}"),
            "orgid": self.org,
            "streamkind": kind,
            "sequence": seq,
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "clarityregion": "eu-west-1",
            "data": data,
        })
    }

    /// Invited, consented, started — `SessionStarted` as v1 (`started_at`), every payload with
    /// fields this build does not know, at the top of `data` and nested.
    fn lifecycle(&self, session: Uuid, started_at: DateTime<Utc>) -> Vec<Value> {
        let life = |seq, name, version, data| {
            self.record(
                session,
                Event::lifecycle(name, version),
                seq,
                started_at,
                data,
            )
        };
        vec![
            life(
                1,
                "CandidateInvited",
                1,
                json!({
                    "session_id": session, "org_id": self.org,
                    "candidate": {"name": "Newer Producer", "email": "np@example.com", "external_ref": null, "pronouns": "they/them"},
                    "assessment": {"assessment_id": clarity_tests::REST_API, "version": 1, "title": "REST API", "format": "take_home",
                                   "time_limit_minutes": 90, "spec_digest": "00", "language": {"code": "en"}},
                    "invite_expires_at": started_at + chrono::Duration::days(7),
                    "invited_by": Uuid::new_v4(), "at": started_at - chrono::Duration::minutes(5),
                    "referral_source": "job board"
                }),
            ),
            life(
                2,
                "ConsentRecorded",
                1,
                json!({
                    "notice_version": "2027-01",
                    "scopes": {"keystroke_dynamics": true, "face_continuity": true, "screen_recording": false},
                    "at": started_at - chrono::Duration::minutes(1),
                    "locale": "de-DE"
                }),
            ),
            life(
                3,
                "SessionStarted",
                1,
                json!({
                    "started_at": started_at,
                    "deadline": started_at + chrono::Duration::minutes(90),
                    "timezone": "Europe/Berlin"
                }),
            ),
        ]
    }

    /// Telemetry `seq` `first..` from `script`, each payload with an unknown field.
    fn telemetry(
        &self,
        session: Uuid,
        started_at: DateTime<Utc>,
        first: u64,
        script: &[Value],
    ) -> Vec<Value> {
        script
            .iter()
            .zip(first..)
            .map(|(data, seq)| {
                let mut data = data.clone();
                data["client_build"] = json!({"version": "9.1.0", "channel": "beta"});
                let kind = data["type"].as_str().unwrap().to_string();
                let time = started_at + chrono::Duration::milliseconds(250 * seq as i64);
                self.record(session, Event::telemetry(&kind), seq, time, data)
            })
            .collect()
    }

    async fn send(&self, records: &[Value]) -> anyhow::Result<()> {
        for record in records {
            let key = record["subject"].as_str().unwrap();
            let payload = serde_json::to_vec(record)?;
            self.producer
                .send(
                    FutureRecord::to(&self.topic).key(key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)?;
        }
        Ok(())
    }
}

/// Every telemetry kind, with fields a newer editor adds; the workspace ends as
/// `{"app.py": "def main():\n    return 42\n"}`.
fn every_kind_of_telemetry() -> Vec<Value> {
    vec![
        json!({"type": "file_created", "file": "app.py", "content": "", "encoding": "utf-8"}),
        json!({"type": "keystroke", "down_ms": 0.0, "up_ms": 80.0, "key_class": "letter", "layout": "de"}),
        json!({"type": "edit", "file": "app.py", "position": 0, "deleted": 0, "inserted": "d", "origin": "typed", "ime": {"composing": false}}),
        json!({"type": "edit", "file": "app.py", "position": 1, "deleted": 0, "inserted": "ef", "origin": "autocomplete"}),
        json!({"type": "cursor", "file": "app.py", "position": 3, "visible_range": {"from": 0, "to": 40}}),
        json!({"type": "focus_lost", "reason": "window_blur"}),
        json!({"type": "focus_regained", "away_ms": 4000}),
        json!({"type": "edit", "file": "app.py", "position": 3, "deleted": 0, "inserted": " main():\n    return 42\n", "origin": "paste", "clipboard_source": "external"}),
        json!({"type": "code_run", "command": "python app.py", "exit_code": 0, "duration_ms": 120, "runner": {"image": "python:3.13"}}),
        json!({"type": "file_created", "file": "notes.md", "content": "x"}),
        json!({"type": "file_renamed", "file": "notes.md", "new_file": "NOTES.md", "by": "drag"}),
        json!({"type": "file_deleted", "file": "NOTES.md", "trash": true}),
        json!({"type": "face_check", "similarity": 0.94, "model_id": "clarity-face", "model_version": "1", "face_count": 1, "quality": 0.9, "model_family": "arcface"}),
    ]
}

async fn scalar<T>(env: &TestEnv, sql: &str, session: Uuid) -> anyhow::Result<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    Ok(sqlx::query_scalar(sql)
        .bind(session)
        .fetch_one(&env.pool)
        .await?)
}

async fn rejects(env: &TestEnv) -> anyhow::Result<Vec<(String, String)>> {
    Ok(
        sqlx::query_as("SELECT projection, reason FROM projection_rejects")
            .fetch_all(&env.pool)
            .await?,
    )
}

/// Stores `SessionStarted` v1 for a consented session the way the build before v2 did (cqrs-es
/// row with `event_version` "1"), instead of starting it through the API.
async fn store_v1_start(
    env: &TestEnv,
    session: &str,
    org: Uuid,
    started_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let payload = json!({"SessionStarted": {"started_at": started_at, "deadline": started_at + chrono::Duration::minutes(90)}});
    let metadata = json!({"org_id": org, "actor": "candidate", "time": started_at});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('CandidateSession', $1, 3, 'SessionStarted', '1', $2, $3)",
    )
    .bind(session)
    .bind(payload)
    .bind(metadata)
    .execute(&env.pool)
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn newer_producer_records_and_v1_events_reach_the_read_models_next_to_normal_traffic(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let product = env.spawn_product().await?;
    let (client, admin): (Client, String) = (product.client.clone(), product.admin.clone());
    let org: Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE name = 'Acme'")
        .fetch_one(&env.pool)
        .await?;
    let newer = NewerProducer::new(&env, org)?;
    let forged = Uuid::new_v4();
    let forged_start = (Utc::now() - chrono::Duration::minutes(2)).trunc_subsecs(6);
    let script = every_kind_of_telemetry();

    // Act: normal traffic, a session written by a newer producer, and a session whose start
    // was stored as v1 by the previous build and then continues through this build's API.
    let (normal, normal_token) = client.started_session(&admin, "Normal Traffic").await?;
    assert_eq!(
        client
            .send_events(&normal, &normal_token, 1, 10)
            .await?
            .status,
        200
    );
    newer.send(&newer.lifecycle(forged, forged_start)).await?;
    newer
        .send(&newer.telemetry(forged, forged_start, 1, &script))
        .await?;
    assert_eq!(
        client
            .send_events(&normal, &normal_token, 11, 20)
            .await?
            .status,
        200
    );

    let (stored_v1, stored_token) = client.invite(&admin, "Stored Before V2").await?;
    let r = client.post(&format!("/v1/sessions/{stored_v1}/consent"), &stored_token, &json!({"notice_id": clarity_tests::NOTICE_ID, "notice_sha256": clarity_tests::notice_sha256(), "scopes": {"keystroke_dynamics": true, "face_continuity": false}})).await?;
    assert_eq!(r.status, 200, "{r:?}");
    let stored_start = (Utc::now() - chrono::Duration::minutes(10)).trunc_subsecs(6);
    store_v1_start(&env, &stored_v1, org, stored_start).await?;
    env.wait_for::<String>(
        "the v1 start to be projected",
        &format!("SELECT status FROM sessions WHERE session_id = '{stored_v1}'"),
        |s| s == "in_progress",
    )
    .await?;
    // Loading the aggregate upcasts the stored v1 event: in progress, with its deadline.
    assert_eq!(
        client
            .send_events(&stored_v1, &stored_token, 1, 5)
            .await?
            .status,
        200
    );
    let r = client
        .post(
            &format!("/v1/sessions/{stored_v1}/submit"),
            &stored_token,
            &json!({"files": [{"path": "main.py", "content": "x"}]}),
        )
        .await?;
    assert_eq!(r.status, 200, "{r:?}");

    env.wait_for::<i64>(
        "the newer producer's telemetry in the replay",
        &format!("SELECT last_seq FROM replay_sessions WHERE session_id = '{forged}'"),
        |n| *n == script.len() as i64,
    )
    .await?;
    env.wait_for::<bool>(
        "the analysis of the session started as v1",
        &format!("SELECT integrity_suite_version IS NOT NULL FROM sessions WHERE session_id = '{stored_v1}'"),
        |done| *done,
    )
    .await?;
    env.wait_for::<i64>(
        "the normal traffic",
        &format!("SELECT telemetry_events FROM sessions WHERE session_id = '{normal}'"),
        |n| *n == 20,
    )
    .await?;

    // Assert: nothing set aside.
    assert_eq!(rejects(&env).await?, vec![]);

    // The newer producer's session, field by field.
    let row: (String, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>, Value) = sqlx::query_as(
        "SELECT status, candidate_name, started_at, deadline, consent_scopes FROM sessions WHERE session_id = $1",
    )
    .bind(forged)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(row.0, "in_progress");
    assert_eq!(row.1, "Newer Producer");
    assert_eq!(
        row.2,
        Some(forged_start),
        "the v1 `started_at` is the start"
    );
    assert_eq!(row.3, Some(forged_start + chrono::Duration::minutes(90)));
    assert_eq!(
        row.4,
        json!({"keystroke_dynamics": true, "face_continuity": true})
    );
    let counts: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT lifecycle_events, telemetry_events, keystrokes, edits, pastes, focus_losses, code_runs, face_checks
         FROM sessions WHERE session_id = $1",
    )
    .bind(forged)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(counts, (3, 13, 1, 3, 1, 1, 1, 1));
    let files: Value = scalar(
        &env,
        "SELECT workspace->'files' FROM replay_sessions WHERE session_id = $1",
        forged,
    )
    .await?;
    assert_eq!(files, json!({"app.py": "def main():\n    return 42\n"}));
    let markers: Vec<String> = sqlx::query_scalar(
        "SELECT kind FROM replay_markers WHERE session_id = $1 ORDER BY seq, kind",
    )
    .bind(forged)
    .fetch_all(&env.pool)
    .await?;
    assert!(markers.iter().any(|k| k == "paste"), "{markers:?}");
    assert!(markers.iter().any(|k| k == "focus_away"), "{markers:?}");
    assert!(!markers.iter().any(|k| k == "edit_anomaly"), "{markers:?}");
    // The log keeps each record as it was published, unknown fields and version included.
    let kept: String = scalar(&env, "SELECT data->>'clipboard_source' FROM session_events WHERE session_id = $1 AND stream_kind = 'telemetry' AND seq = 8", forged).await?;
    assert_eq!(kept, "external");
    let ce_type: String = scalar(&env, "SELECT ce_type FROM session_events WHERE session_id = $1 AND stream_kind = 'lifecycle' AND seq = 3", forged).await?;
    assert_eq!(ce_type, "clarity.CandidateSession.SessionStarted.v1");

    // The session started as v1 in the store, finished through this build.
    let stored: (String, Option<DateTime<Utc>>, Option<i64>) = sqlx::query_as(
        "SELECT status, started_at, time_used_seconds FROM sessions WHERE session_id = $1::uuid",
    )
    .bind(&stored_v1)
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(
        (stored.0.as_str(), stored.1),
        ("submitted", Some(stored_start))
    );
    let used = stored.2.unwrap();
    assert!(
        (600..900).contains(&used),
        "time used counts from the v1 start: {used}"
    );
    let versions: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, event_version FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&stored_v1)
    .fetch_all(&env.pool)
    .await?;
    assert_eq!(
        versions[2],
        ("SessionStarted".to_string(), "1".to_string()),
        "stored events are never rewritten"
    );
    let normal_start: String = scalar(
        &env,
        "SELECT event_version FROM events WHERE aggregate_id = $1::text AND event_type = 'SessionStarted'",
        normal.parse::<Uuid>()?,
    )
    .await?;
    assert_eq!(normal_start, "2", "this build writes v2");

    product.stop().await?;
    Ok(())
}

/// The expected content of a rolling-upgrade session's file: one character per `seq`.
fn typed_text(len: u64) -> String {
    (0..len)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

fn typing(from: u64, to: u64) -> Vec<Value> {
    let text = typed_text(to);
    (from..=to)
        .map(|seq| {
            let c = &text[(seq - 1) as usize..seq as usize];
            json!({"type": "edit", "file": "main.py", "position": seq - 1, "deleted": 0, "inserted": c, "origin": "typed"})
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_restarted_while_a_newer_producer_writes_loses_and_doubles_nothing(
) -> anyhow::Result<()> {
    // Arrange: the consumer as a process that can be killed; a newer producer for three sessions.
    const SESSIONS: usize = 3;
    const EVENTS: u64 = 60;
    let env = TestEnv::new().await?;
    let org = clarity_cli::create_organization(&env.pool, "Acme", "Admin", "admin@acme.test")
        .await?
        .org_id;
    let newer = NewerProducer::new(&env, org)?;
    let instance = [("CLARITY_CONSUMER_INSTANCE_ID", "consumer-0".to_string())];
    let mut consumer = env.spawn_process(&["consume"], &instance)?;
    let start = (Utc::now() - chrono::Duration::minutes(1)).trunc_subsecs(6);
    let sessions: Vec<Uuid> = (0..SESSIONS).map(|_| Uuid::new_v4()).collect();
    let phase = |from: u64, to: u64| -> Vec<Value> {
        let mut records = Vec::new();
        for &s in &sessions {
            if from == 1 {
                records.extend(newer.lifecycle(s, start));
                records.push(newer.record(s, Event::telemetry("file_created"), 1, start, json!({"type": "file_created", "file": "main.py", "content": "", "encoding": "utf-8"})));
            }
            records.extend(newer.telemetry(s, start, from + 1, &typing(from, to)));
        }
        records
    };

    // Act: a third of the records, a crash mid-stream, a third while it is down, a restart, the rest.
    newer.send(&phase(1, EVENTS / 3)).await?;
    env.wait_for::<i64>(
        "some progress",
        "SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'",
        |n| *n > 0,
    )
    .await?;
    consumer.kill().await?;
    newer.send(&phase(EVENTS / 3 + 1, 2 * EVENTS / 3)).await?;
    consumer = env.spawn_process(&["consume"], &instance)?;
    newer.send(&phase(2 * EVENTS / 3 + 1, EVENTS)).await?;
    let per_session = EVENTS as i64 + 1;
    env.wait_for::<i64>(
        "every record in the replay",
        "SELECT COALESCE(sum(last_seq), 0)::bigint FROM replay_sessions",
        |n| *n == per_session * SESSIONS as i64,
    )
    .await?;
    env.wait_for::<i64>(
        "every record in the log",
        "SELECT COALESCE(sum(telemetry_events), 0)::bigint FROM sessions",
        |n| *n >= per_session * SESSIONS as i64,
    )
    .await?;
    consumer.kill().await?;

    // Assert: every session has every record once, in order, and the text typed exactly once.
    assert_eq!(rejects(&env).await?, vec![]);
    for &s in &sessions {
        let log: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stream_kind, seq FROM session_events WHERE session_id = $1 ORDER BY kafka_offset",
        )
        .bind(s)
        .fetch_all(&env.pool)
        .await?;
        let telemetry: Vec<i64> = log
            .iter()
            .filter(|(k, _)| k == "telemetry")
            .map(|(_, q)| *q)
            .collect();
        let lifecycle: Vec<i64> = log
            .iter()
            .filter(|(k, _)| k == "lifecycle")
            .map(|(_, q)| *q)
            .collect();
        assert_eq!(telemetry, (1..=per_session).collect::<Vec<_>>(), "{s}");
        assert_eq!(lifecycle, vec![1, 2, 3], "{s}");
        let counters: (i64, i64, i64) = sqlx::query_as(
            "SELECT lifecycle_events, telemetry_events, edits FROM sessions WHERE session_id = $1",
        )
        .bind(s)
        .fetch_one(&env.pool)
        .await?;
        assert_eq!(counters, (3, per_session, EVENTS as i64), "{s}");
        let files: Value = scalar(
            &env,
            "SELECT workspace->'files' FROM replay_sessions WHERE session_id = $1",
            s,
        )
        .await?;
        assert_eq!(files, json!({"main.py": typed_text(EVENTS)}), "{s}");
        let chained: i64 = scalar(
            &env,
            "SELECT count FROM audit_chain_heads WHERE session_id = $1",
            s,
        )
        .await?;
        assert_eq!(chained, per_session + 3, "{s}");
        let status: String =
            scalar(&env, "SELECT status FROM sessions WHERE session_id = $1", s).await?;
        assert_eq!(status, "in_progress", "the v1 start was applied: {s}");
    }
    Ok(())
}
