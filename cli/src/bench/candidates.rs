//! `clarity bench candidates`: realistic load. N candidates type at human pace at the same time,
//! each sending a small batch (~15 events) about once a second, one request in flight per
//! candidate, as the workspace's capture library does. Every projection and the integrity
//! pipeline run; a share of the candidates submits during the run. A size *holds* when no request
//! failed, the end-to-end lag (acknowledged → in the read model) stayed under 1 s at p99, and
//! the candidates kept their pace (at least 95% of the batches they meant to send were sent).
//!
//! `--n 500,1000,2000` runs each size in a fresh environment and reports the largest that held.

use super::ingest::{
    diagnostics as ingest_diagnostics, follow_lag, lag_samples, LagSample, Pending,
};
use super::*;

/// `clarity bench candidates`
#[derive(Debug, clap::Args)]
pub struct CandidatesArgs {
    /// Concurrent candidates; a comma-separated list runs each size in its own environment.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub n: Vec<usize>,
    /// Seconds of typing measured per size, after every candidate has started.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Events per batch (about one second of typing).
    #[arg(long, default_value_t = 15)]
    pub events_per_batch: usize,
    /// Milliseconds between a candidate's batches.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Share of the candidates that submit during the run (their sessions are then analysed).
    #[arg(long, default_value_t = 0.05)]
    pub submit_fraction: f64,
    /// Candidates whose batches are followed into `session_events` for the lag measurement.
    #[arg(long, default_value_t = 64)]
    pub lag_sample_sessions: usize,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench databases and topics.
    #[arg(long)]
    pub keep: bool,
    /// Run the product inside the bench process instead of as a separate `clarity all`.
    #[arg(long)]
    pub in_process: bool,
    /// Run the roles as separate processes with this many `clarity consume` (0: `clarity all`).
    #[arg(long, default_value_t = 0)]
    pub consumers: usize,
}

/// What one candidate did.
#[derive(Default)]
struct Tally {
    batches: AtomicU64,
    events: AtomicU64,
    errors: AtomicU64,
    submitted: AtomicU64,
}

pub(super) async fn run(base: Config, args: CandidatesArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.n.is_empty() && args.n.iter().all(|&n| n > 0),
        "--n must list sizes above 0"
    );
    anyhow::ensure!(
        args.events_per_batch > 0 && args.events_per_batch <= base.max_batch_events,
        "--events-per-batch must be between 1 and the server's max batch ({})",
        base.max_batch_events
    );
    let mut runs = Vec::new();
    for &n in &args.n {
        let mut env = BenchEnv::create(&base).await?;
        let result = one_size(&mut env, &args, n).await;
        env.teardown(args.keep).await;
        let report = result?;
        if !args.json {
            print_size(&report);
        }
        runs.push(report);
    }
    let largest = runs
        .iter()
        .filter(|r| r["holds"].as_bool() == Some(true))
        .filter_map(|r| r["params"]["candidates"].as_u64())
        .max();
    let summary = json!({
        "bench": "candidates",
        "runs": runs,
        "largest_n_that_holds": largest,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "largest N that held (no errors, lag p99 < 1 s, pace kept): {}",
            largest.map_or("none".to_string(), |n| n.to_string())
        );
    }
    Ok(())
}

async fn one_size(env: &mut BenchEnv, args: &CandidatesArgs, n: usize) -> anyhow::Result<Value> {
    let config = env.config.clone();
    let mut product = env.start_product(args.in_process, args.consumers).await?;
    let org = product.org.clone();
    let target = product.target.clone();
    let measured = product
        .measure(load(&config, &target, &org.admin_api_key, args, n))
        .await;
    product.stop().await;
    measured
}

async fn load(
    config: &Config,
    target: &Target,
    admin_key: &str,
    args: &CandidatesArgs,
    n: usize,
) -> anyhow::Result<Value> {
    let base_url = target.base_url.as_str();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(n + 16)
        .timeout(Duration::from_secs(30))
        .build()?;
    note(format!("{n} candidates: starting sessions through the API"));
    let setup_started = Instant::now();
    let sessions = start_sessions(&client, base_url, admin_key, n, 32).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let lag_pool = wait_until_in_progress(config, n, Duration::from_secs(120)).await?;
    note(format!(
        "{n} sessions started in {setup_seconds:.1}s; typing for {} s",
        args.duration
    ));
    let (samples, sample_of) = lag_samples(&sessions, args.lag_sample_sessions);
    let typing_done = CancellationToken::new();
    let follower = tokio::spawn(follow_lag(
        lag_pool.clone(),
        samples.clone(),
        typing_done.clone(),
        Duration::from_secs(60),
    ));

    let tally = Arc::new(Tally::default());
    let latency = Arc::new(Mutex::new(histogram()));
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let duration = Duration::from_secs(args.duration);
    let metrics_before = target.metrics().await;
    let cpu_before = target.cpu_seconds();
    let bench_cpu_before = cpu_seconds();
    let neighbours_before = neighbour_cpu_seconds();
    let started = Instant::now();
    let mut candidates = JoinSet::new();
    let mut rng = StdRng::seed_from_u64(n as u64);
    for meta in sessions.iter().cloned() {
        // Each candidate starts at a random moment of the first interval (so the batches of
        // all candidates spread over the second), and some submit at a random moment.
        let phase = interval.mul_f64(rng.random::<f64>());
        let submit_at = (rng.random::<f64>() < args.submit_fraction)
            .then(|| duration.mul_f64(rng.random_range(0.2..0.9)));
        let candidate = Candidate {
            client: client.clone(),
            url: format!("{base_url}/v1/sessions/{}", meta.id),
            sample: sample_of[meta.index].clone(),
            typist: Typist::new(meta.index as u64),
            meta,
            tally: tally.clone(),
            latency: latency.clone(),
        };
        candidates.spawn(candidate.type_until(
            started + phase,
            started + duration,
            submit_at.map(|d| started + d),
            interval,
            args.events_per_batch,
        ));
    }
    while let Some(result) = candidates.join_next().await {
        result?;
    }
    let elapsed = started.elapsed();
    typing_done.cancel();
    let process_cpu = target.cpu_seconds() - cpu_before;
    let bench_cpu = cpu_seconds() - bench_cpu_before;
    let neighbours = neighbour_cores(&neighbours_before, &neighbour_cpu_seconds(), elapsed);
    let (hwm, rss) = target.memory_kib();
    let lag = follower.await??;
    let diagnostics = ingest_diagnostics(&metrics_before, &target.metrics().await);

    // The submitted sessions' integrity analyses (the pipeline ran during the load).
    let submitted = tally.submitted.load(Ordering::Relaxed) as i64;
    let analysis_wait = Instant::now();
    let mut analysed: i64 = 0;
    while analysis_wait.elapsed() < Duration::from_secs(120) {
        analysed = sqlx::query_scalar("SELECT count(*) FROM integrity_analyses")
            .fetch_one(&lag_pool)
            .await?;
        if analysed >= submitted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lag_pool.close().await;

    let batches = tally.batches.load(Ordering::Relaxed);
    let events = tally.events.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    let intended = (n as f64 * duration.as_secs_f64() / interval.as_secs_f64()).max(1.0);
    let pace = batches as f64 / intended;
    let lag_p99_ms = lag
        .from_ack
        .as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0);
    let holds = errors == 0
        && lag.unobserved == 0
        && lag_p99_ms.is_some_and(|p| p < 1000.0)
        && pace >= 0.95;
    let latency = latency.lock().expect("lock").clone();
    Ok(json!({
        "params": {
            "candidates": n,
            "duration_s": args.duration,
            "interval_ms": args.interval_ms,
            "events_per_batch": args.events_per_batch,
            "submit_fraction": args.submit_fraction,
            "partitions": config.topic_partitions,
            "lag_sample_sessions": samples.len(),
        },
        "setup_seconds": setup_seconds,
        "load": {
            "seconds": elapsed.as_secs_f64(),
            "batches": batches,
            "batches_per_s": rate(batches, elapsed),
            "events": events,
            "events_per_s": rate(events, elapsed),
            "pace": pace,
            "errors": errors,
            "request_latency_ms": percentiles(&latency),
            "process_cpu": cpu_use(process_cpu, elapsed, events),
            "process": target.label(),
            "bench_process_cpu": cpu_use(bench_cpu, elapsed, events),
            "neighbour_cpu": neighbours,
        },
        "end_to_end": {
            "lag_from_ack_ms": lag.from_ack.as_ref().map_or(Value::Null, percentiles),
            "lag_from_send_ms": lag.from_send.as_ref().map_or(Value::Null, percentiles),
            "unobserved_batches": lag.unobserved,
        },
        "integrity": { "submitted": submitted, "analysed": analysed },
        "diagnostics": diagnostics,
        "memory": { "vm_hwm_kib": hwm, "vm_rss_kib": rss, "process": target.label() },
        "holds": holds,
    }))
}

/// One candidate's client: a capture library sending a batch per interval, one at a time.
struct Candidate {
    client: reqwest::Client,
    url: String,
    meta: Arc<SessionMeta>,
    sample: Option<Arc<LagSample>>,
    typist: Typist,
    tally: Arc<Tally>,
    latency: Arc<Mutex<Histogram<u64>>>,
}

impl Candidate {
    /// Types from `start` until `end` (or `submit_at`, then submits), a batch every `interval`.
    /// A batch that fails is retried (as the capture library does) and counted as an error.
    async fn type_until(
        mut self,
        start: Instant,
        end: Instant,
        submit_at: Option<Instant>,
        interval: Duration,
        events_per_batch: usize,
    ) {
        let stop = submit_at.unwrap_or(end).min(end);
        let mut ticks = tokio::time::interval_at(start.into(), interval);
        // A slow answer delays the next batch (one request in flight), it does not burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if Instant::now() >= stop {
                break;
            }
            let events = self.typist.batch(events_per_batch, Utc::now());
            self.send(&events).await;
        }
        if submit_at.is_some_and(|at| at < end) {
            let response = self
                .client
                .post(format!("{}/submit", self.url))
                .bearer_auth(&self.meta.token)
                .json(&json!({"files": [{"path": "main.py", "content": "def handler():\n    pass\n"}]}))
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => {
                    self.tally.submitted.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.tally.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn send(&mut self, events: &[TelemetryEvent]) {
        let Ok(body) = serde_json::to_vec(&json!({ "events": events })) else {
            self.tally.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let last_seq = events.last().map_or(0, |e| e.seq);
        if let Some(sample) = &self.sample {
            sample.pending.lock().expect("lock").push_back(Pending {
                last_seq,
                sent: Instant::now(),
                acked: None,
            });
        }
        for attempt in 1..=10u32 {
            let t0 = Instant::now();
            let result = self
                .client
                .post(format!("{}/telemetry", self.url))
                .bearer_auth(&self.meta.token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let ok = match result {
                Ok(response) if response.status().is_success() => response.bytes().await.is_ok(),
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if attempt == 1 {
                        note(format!("session {}: {status} {text}", self.meta.id));
                    }
                    false
                }
                Err(error) => {
                    if attempt == 1 {
                        note(format!("session {}: {error}", self.meta.id));
                    }
                    false
                }
            };
            if ok {
                let acked = Instant::now();
                let _ = self
                    .latency
                    .lock()
                    .expect("lock")
                    .record(acked.duration_since(t0).as_micros().max(1) as u64);
                self.tally.batches.fetch_add(1, Ordering::Relaxed);
                self.tally
                    .events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                if let Some(sample) = &self.sample {
                    let mut pending = sample.pending.lock().expect("lock");
                    if let Some(p) = pending.iter_mut().find(|p| p.last_seq == last_seq) {
                        p.acked = Some(acked);
                    }
                }
                return;
            }
            self.tally.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
    }
}

fn print_size(r: &Value) {
    let p = &r["params"];
    let l = &r["load"];
    let e = &r["end_to_end"];
    println!(
        "clarity bench candidates  n={}  ({} s, a batch of {} every {} ms, {} partitions)",
        p["candidates"], p["duration_s"], p["events_per_batch"], p["interval_ms"], p["partitions"]
    );
    println!(
        "  sent            {:.0} batches/s = {:.0} events/s (pace {:.1}% of intended), {} errors",
        l["batches_per_s"].as_f64().unwrap_or(0.0),
        l["events_per_s"].as_f64().unwrap_or(0.0),
        l["pace"].as_f64().unwrap_or(0.0) * 100.0,
        l["errors"]
    );
    println!("  request latency {}", pct_text(&l["request_latency_ms"]));
    println!("  lag ack→model   {}", pct_text(&e["lag_from_ack_ms"]));
    println!(
        "  CPU             {} {:.2} cores ({:.1} µs/event); load generator {:.2}; broker {:.2}, PostgreSQL {:.2} cores",
        l["process"].as_str().unwrap_or(""),
        l["process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
        l["process_cpu"]["us_per_event"].as_f64().unwrap_or(0.0),
        l["bench_process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
        l["neighbour_cpu"]["broker_avg_cores"].as_f64().unwrap_or(0.0),
        l["neighbour_cpu"]["postgres_avg_cores"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  integrity       {} submitted, {} analysed",
        r["integrity"]["submitted"], r["integrity"]["analysed"]
    );
    println!(
        "  memory          peak RSS {:.0} MiB ({})",
        mib(r["memory"]["vm_hwm_kib"].as_u64().unwrap_or(0)),
        r["memory"]["process"].as_str().unwrap_or("")
    );
    println!("  holds           {}", r["holds"]);
    println!();
}
