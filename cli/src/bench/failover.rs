//! `clarity bench failover`: how long a consumer group takes to move a killed consumer's
//! partitions, seen where it matters: the end-to-end lag of the sessions those partitions carry.
//!
//! The API and the relay run in this process; `--consumers` `clarity consume` processes (this
//! binary) form the group. Sessions type steadily (a small batch every `--interval-ms`); after a
//! warm-up one consumer is killed with SIGKILL and, with `--restart`, started again at once
//! (with the same `CLARITY_CONSUMER_INSTANCE_ID` under `--membership static`). The report gives
//! the lag before the kill and the worst lag after it: the latter is the reassignment time as a
//! user of the read models experiences it.

use super::ingest::{follow_lag, LagSample, Pending};
use super::*;

/// Group membership of the consumer processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Membership {
    /// Each process is a new member (a plain Deployment); a dead member's partitions move after
    /// the session timeout.
    Dynamic,
    /// Each process has a stable `CLARITY_CONSUMER_INSTANCE_ID` (a StatefulSet's pod name).
    Static,
}

/// `clarity bench failover`
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Group membership of the consumer processes.
    #[arg(long, value_enum, default_value = "dynamic")]
    pub membership: Membership,
    /// Start the killed consumer again right after the kill.
    #[arg(long)]
    pub restart: bool,
    /// Consumer processes in the group.
    #[arg(long, default_value_t = 3)]
    pub consumers: usize,
    /// Sessions typing (spread over the partitions by their ids).
    #[arg(long, default_value_t = 48)]
    pub sessions: usize,
    /// Milliseconds between a session's batches.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Seconds of typing before the kill.
    #[arg(long, default_value_t = 15)]
    pub warmup: u64,
    /// Seconds of typing after the kill.
    #[arg(long, default_value_t = 45)]
    pub after: u64,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench database and topics.
    #[arg(long)]
    pub keep: bool,
}

pub(super) async fn run(base: Config, args: FailoverArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.consumers >= 2, "--consumers must be at least 2");
    let env = BenchEnv::create(&base).await?;
    let result = failover_in(&env, &args).await.map(|mut r| {
        r["id"] = json!(env_id(&env.config));
        r
    });
    finish(env, result, args.keep, args.json, print_failover).await
}

/// Starts `clarity consume` as a child process of this bench's environment.
fn spawn_consumer(
    config: &Config,
    instance: Option<String>,
) -> anyhow::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
    cmd.arg("consume")
        .env("DATABASE_URL", &config.database_url)
        .env("KAFKA_BROKERS", &config.kafka_brokers)
        .env("CLARITY_TOPIC_ASSESSMENTS", &config.topic_assessments)
        .env("CLARITY_TOPIC_SESSIONS", &config.topic_sessions)
        .env("CLARITY_GROUP_PREFIX", &config.group_prefix)
        .env("CLARITY_DB_POOL_SIZE", "8")
        .env("RUST_LOG", "warn")
        .env_remove("CLARITY_CONSUMER_INSTANCE_ID")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(instance) = instance {
        cmd.env("CLARITY_CONSUMER_INSTANCE_ID", instance);
    }
    Ok(cmd.spawn()?)
}

async fn failover_in(env: &BenchEnv, args: &FailoverArgs) -> anyhow::Result<Value> {
    let config = env.config.clone();
    let product = env.start(&[]).await?;
    let instance =
        |i: usize| (args.membership == Membership::Static).then(|| format!("bench-consumer-{i}"));
    let mut consumers = (0..args.consumers)
        .map(|i| spawn_consumer(&config, instance(i)))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base_url = product.target.base_url.clone();
    let admin_key = product.org.admin_api_key.clone();
    let sessions = start_sessions(&client, &base_url, &admin_key, args.sessions, 16).await?;
    // Every process has joined and every session is projected before the clock starts.
    let pool = wait_until_in_progress(&config, sessions.len(), Duration::from_secs(120)).await?;

    // Two lag followers: before the kill and after it.
    let phase = |samples: &Arc<Vec<Arc<LagSample>>>, done: &CancellationToken| {
        tokio::spawn(follow_lag(
            pool.clone(),
            samples.clone(),
            done.clone(),
            Duration::from_secs(180),
        ))
    };
    let new_samples = || -> Arc<Vec<Arc<LagSample>>> {
        Arc::new(
            sessions
                .iter()
                .map(|s| {
                    Arc::new(LagSample {
                        id: s.id,
                        pending: Mutex::new(VecDeque::new()),
                    })
                })
                .collect(),
        )
    };
    let (before, after) = (new_samples(), new_samples());
    let (before_done, after_done) = (CancellationToken::new(), CancellationToken::new());
    let before_follower = phase(&before, &before_done);
    let after_follower = phase(&after, &after_done);
    let killed_at = Arc::new(Mutex::new(None::<Instant>));
    let stop = CancellationToken::new();
    let mut typists = JoinSet::new();
    for (i, meta) in sessions.iter().cloned().enumerate() {
        let (client, base_url, before, after, killed_at, stop) = (
            client.clone(),
            base_url.clone(),
            before[i].clone(),
            after[i].clone(),
            killed_at.clone(),
            stop.clone(),
        );
        let interval = Duration::from_millis(args.interval_ms);
        typists.spawn(async move {
            let mut typist = Typist::new(meta.index as u64);
            let url = format!("{base_url}/v1/sessions/{}/telemetry", meta.id);
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.is_cancelled() {
                ticks.tick().await;
                let events = typist.batch(3, Utc::now());
                let last_seq = events.last().map_or(0, |e| e.seq);
                let sample = if killed_at.lock().expect("lock").is_some() {
                    &after
                } else {
                    &before
                };
                sample.pending.lock().expect("lock").push_back(Pending {
                    last_seq,
                    sent: Instant::now(),
                    acked: None,
                });
                let response = client
                    .post(&url)
                    .bearer_auth(&meta.token)
                    .json(&json!({ "events": events }))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "telemetry answered {}",
                    response.status()
                );
                let acked = Instant::now();
                if let Some(p) = sample
                    .pending
                    .lock()
                    .expect("lock")
                    .iter_mut()
                    .find(|p| p.last_seq == last_seq)
                {
                    p.acked = Some(acked);
                }
            }
            anyhow::Ok(())
        });
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    note(format!(
        "killing consumer 0 (SIGKILL){}",
        if args.restart {
            " and starting it again"
        } else {
            ""
        }
    ));
    consumers[0].start_kill()?;
    *killed_at.lock().expect("lock") = Some(Instant::now());
    consumers[0].wait().await?;
    before_done.cancel();
    if args.restart {
        consumers[0] = spawn_consumer(&config, instance(0))?;
    }
    tokio::time::sleep(Duration::from_secs(args.after)).await;
    stop.cancel();
    while let Some(result) = typists.join_next().await {
        result??;
    }
    after_done.cancel();
    let before_lag = before_follower.await??;
    let after_lag = after_follower.await??;
    for mut c in consumers {
        let _ = c.kill().await;
    }
    pool.close().await;
    product.stop().await;
    Ok(json!({
        "bench": "failover",
        "params": {
            "membership": format!("{:?}", args.membership).to_lowercase(),
            "restart": args.restart,
            "consumers": args.consumers,
            "partitions": config.topic_partitions,
            "sessions": args.sessions,
            "interval_ms": args.interval_ms,
            "session_timeout_ms": 10_000,
        },
        "lag_before_kill_ms": before_lag.from_ack.as_ref().map_or(Value::Null, percentiles),
        "lag_after_kill_ms": after_lag.from_ack.as_ref().map_or(Value::Null, percentiles),
        "unobserved_batches": before_lag.unobserved + after_lag.unobserved,
    }))
}

fn print_failover(r: &Value) {
    let p = &r["params"];
    println!(
        "clarity bench failover  {} membership, {} after the kill; {} consumers, {} partitions, {} sessions",
        p["membership"].as_str().unwrap_or(""),
        if p["restart"].as_bool() == Some(true) { "restarted" } else { "not restarted" },
        p["consumers"],
        p["partitions"],
        p["sessions"]
    );
    println!(
        "  lag before the kill  {}",
        pct_text(&r["lag_before_kill_ms"])
    );
    println!(
        "  lag after the kill   {}",
        pct_text(&r["lag_after_kill_ms"])
    );
    println!(
        "  reassignment, as seen by readers: the worst lag after the kill ({:.1} s); batches never seen: {}",
        r["lag_after_kill_ms"]["max"].as_f64().unwrap_or(0.0) / 1000.0,
        r["unobserved_batches"]
    );
}
