//! The product run the way an operator scales it: every role a separate `clarity` process (two
//! `serve`, two `relay`, three `consume` in one consumer group) over topics with 12 partitions.
//! Telemetry for many sessions goes through both API processes while one consumer is killed with
//! SIGKILL and restarted, a third joins midway, and the relay that publishes is killed: every
//! read model ends with every acknowledged event exactly once, in partition order.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clarity_domain::wire::WireEvent;
use clarity_tests::{free_port, new_org, Client, TestEnv};
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use serde_json::json;
use tokio::process::Child;
use uuid::Uuid;

const PARTITIONS: i32 = 12;
const SESSIONS: usize = 36;
const BATCH: u64 = 20;
const BATCHES: u64 = 24;

/// Sends batches `batches` of every session, session `i`'s batch `b` through API `(i + b) % 2`,
/// and every fourth batch a second time through the other API (a client retrying after a lost
/// response, landing on another instance behind the load balancer).
async fn send_batches(
    apis: &[Client; 2],
    sessions: &[(String, String)],
    batches: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (i, (id, token)) in sessions.iter().cloned().enumerate() {
        let apis = apis.clone();
        let batches = batches.clone();
        tasks.push(tokio::spawn(async move {
            for b in batches {
                let (from, to) = (b * BATCH + 1, (b + 1) * BATCH);
                let first = (i + b as usize) % 2;
                let r = apis[first].send_events(&id, &token, from, to).await?;
                anyhow::ensure!(
                    r.status == 200 && r.body["accepted"] == BATCH,
                    "batch {from}..={to}: {r:?}"
                );
                if b % 4 == 0 {
                    let r = apis[1 - first].send_events(&id, &token, from, to).await?;
                    anyhow::ensure!(
                        r.status == 200 && r.body["accepted"] == 0,
                        "retry of {from}..={to}: {r:?}"
                    );
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

struct Roles {
    env: TestEnv,
    logs: PathBuf,
}

impl Roles {
    fn spawn(&self, name: &str, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Child> {
        self.env
            .spawn_process_logged(args, env, &self.logs.join(format!("{name}.log")))
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Telemetry rows projected so far.
    async fn telemetry_rows(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'",
        )
        .fetch_one(&self.env.pool)
        .await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_processes_scale_out_and_lose_nothing_when_a_consumer_is_killed_and_another_joins(
) -> anyhow::Result<()> {
    // Arrange: 2 × serve, 2 × relay, 2 × consume (dynamic membership), 12 partitions.
    let env = TestEnv::with_partitions(PARTITIONS).await?;
    let logs = std::env::temp_dir().join(format!("clarity-scale-out-{}", env.id));
    std::fs::create_dir_all(&logs)?;
    let roles = Roles { env, logs };
    let env = &roles.env;
    let admin = new_org(env, "Acme").await?;
    let ports = [free_port()?, free_port()?];
    let mut servers = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        servers.push(roles.spawn(
            &format!("serve-{i}"),
            &["serve"],
            &[("CLARITY_LISTEN", format!("127.0.0.1:{port}"))],
        )?);
    }
    let apis = ports.map(|p| Client::new(&format!("http://127.0.0.1:{p}")));
    let mut relays = vec![
        roles.spawn("relay-0", &["relay"], &[])?,
        roles.spawn("relay-1", &["relay"], &[])?,
    ];
    let mut consumer_a = roles.spawn("consume-a", &["consume"], &[])?;
    let consumer_b = roles.spawn("consume-b", &["consume"], &[])?;
    for api in &apis {
        api.wait_ready().await?;
    }
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        sessions.push(
            apis[i % 2]
                .started_session(&admin, &format!("Candidate {i}"))
                .await?,
        );
    }

    // Act 1: a quarter of the telemetry.
    send_batches(&apis, &sessions, 0..BATCHES / 4).await?;
    env.wait_for::<i64>(
        "progress before the kill",
        "SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'",
        |n| *n > 0,
    )
    .await?;

    // Act 2: SIGKILL a consumer while telemetry keeps coming, then restart it (a new member:
    // dynamic membership, as a plain Deployment gives).
    consumer_a.kill().await?;
    send_batches(&apis, &sessions, BATCHES / 4..BATCHES / 2).await?;
    consumer_a = roles.spawn("consume-a", &["consume"], &[])?;

    // Act 3: a third consumer joins the group midway.
    send_batches(&apis, &sessions, BATCHES / 2..3 * BATCHES / 4).await?;
    let consumer_c = roles.spawn("consume-c", &["consume"], &[])?;
    send_batches(&apis, &sessions, 3 * BATCHES / 4..BATCHES).await?;

    // Act 4: kill one relay (whichever holds the lock, the other takes over), then submit every
    // session through alternating APIs.
    relays.remove(0).kill().await?;
    for (i, (id, token)) in sessions.iter().enumerate() {
        let r = apis[i % 2]
            .post(
                &format!("/v1/sessions/{id}/submit"),
                token,
                &json!({"files": [{"path": "main.py", "content": "x"}]}),
            )
            .await?;
        assert_eq!(r.status, 200, "{r:?}");
    }

    // Assert: every session submitted and analysed, every event projected.
    env.wait_for::<i64>(
        "every submission",
        "SELECT count(*) FROM sessions WHERE status = 'submitted'",
        |n| *n == SESSIONS as i64,
    )
    .await?;
    env.wait_for::<i64>(
        "every integrity analysis",
        "SELECT count(*) FROM integrity_analyses",
        |n| *n == SESSIONS as i64,
    )
    .await?;
    let total = SESSIONS as i64 * (BATCHES * BATCH) as i64;
    env.wait_for::<i64>(
        "every telemetry event",
        "SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'",
        |n| *n >= total,
    )
    .await?;
    assert_eq!(roles.telemetry_rows().await?, total);
    assert_read_models_equal_the_partitions(env, &sessions).await?;
    let counted: i64 = sqlx::query_scalar("SELECT sum(telemetry_events)::bigint FROM sessions")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(counted, total, "session counters counted every event once");
    let rejects: i64 = sqlx::query_scalar("SELECT count(*) FROM projection_rejects")
        .fetch_one(&env.pool)
        .await?;
    assert_eq!(rejects, 0, "no record was set aside");

    // The work really was spread: the consumer that joined midway was given partitions, and the
    // restarted one came back to some.
    for name in ["consume-a", "consume-c"] {
        let log = roles.log(name);
        assert!(
            log.lines().any(|l| l.contains("partitions assigned")
                && l.contains("consumer=\"sessions\"")
                && l.split("partitions=")
                    .nth(1)
                    .is_some_and(|p| p.starts_with(|c: char| c.is_ascii_digit()))),
            "{name} never got a partition of the sessions topic:\n{log}"
        );
    }

    for mut child in servers.into_iter().chain(relays) {
        child.kill().await?;
    }
    for mut child in [consumer_a, consumer_b, consumer_c] {
        child.kill().await?;
    }
    let _ = std::fs::remove_dir_all(&roles.logs);
    Ok(())
}

/// Every session's rows in `session_events`, in projection order, are exactly the first copy of
/// each of its records in its partition, in partition order (duplicates dropped, nothing else).
async fn assert_read_models_equal_the_partitions(
    env: &TestEnv,
    sessions: &[(String, String)],
) -> anyhow::Result<()> {
    let log = read_sessions_topic(env).await?;
    let rows: Vec<(Uuid, String, i64, i32, i64)> = sqlx::query_as(
        "SELECT session_id, stream_kind, seq, kafka_partition, kafka_offset
           FROM session_events ORDER BY session_id, kafka_offset",
    )
    .fetch_all(&env.pool)
    .await?;
    let mut projected: HashMap<Uuid, Vec<(String, i64, i32, i64)>> = HashMap::new();
    for (s, k, q, p, o) in rows {
        projected.entry(s).or_default().push((k, q, p, o));
    }
    assert_eq!(projected.len(), sessions.len());
    for (id, _) in sessions {
        let id: Uuid = id.parse()?;
        let expected = &log[&id];
        let got = &projected[&id];
        assert_eq!(
            got, expected,
            "session {id}: the read model is the partition's first copies, in order"
        );
        let telemetry: Vec<i64> = got
            .iter()
            .filter(|(k, ..)| k == "telemetry")
            .map(|(_, q, ..)| *q)
            .collect();
        assert_eq!(
            telemetry,
            (1..=(BATCHES * BATCH) as i64).collect::<Vec<_>>(),
            "session {id}: every acknowledged event once, in client order"
        );
        let partitions: std::collections::HashSet<i32> = got.iter().map(|r| r.2).collect();
        assert_eq!(partitions.len(), 1, "session {id}: one partition");
    }
    Ok(())
}

/// The sessions topic, every partition from the start to its current end: per session, the
/// first copy of each (stream kind, sequence) with its partition and offset, in offset order.
async fn read_sessions_topic(
    env: &TestEnv,
) -> anyhow::Result<HashMap<Uuid, Vec<(String, i64, i32, i64)>>> {
    let consumer: StreamConsumer = env.config.kafka().reader("scale-out-check")?;
    let (mut ends, _) = clarity_consumers::projection_runner::assign_from_beginning(
        &consumer,
        &env.config.topic_sessions,
    )?;
    let mut seen = std::collections::HashSet::new();
    let mut out: HashMap<Uuid, Vec<(String, i64, i32, i64)>> = HashMap::new();
    while !ends.is_empty() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        let (partition, offset) = (m.partition(), m.offset());
        let event: WireEvent = serde_json::from_slice(m.payload().unwrap_or_default())?;
        let session: Uuid = event.subject.parse()?;
        let kind = event.streamkind.as_str().to_string();
        if seen.insert((session, kind.clone(), event.sequence)) {
            out.entry(session)
                .or_default()
                .push((kind, event.sequence as i64, partition, offset));
        }
        if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&partition);
        }
    }
    Ok(out)
}
