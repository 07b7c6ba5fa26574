//! `clarity bench ingest`: telemetry through the HTTP API with end-to-end lag, next to raw
//! rdkafka produce baselines (alone, and with a consumer tailing the topic).

use super::*;

/// What the product's metrics say about the load phase (`after` − `before`).
pub(super) fn diagnostics(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> Value {
    let delta = |key: &str| {
        after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
    };
    let per = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let produce_count = delta("clarity_telemetry_produce_seconds_count");
    let produce_sum = delta("clarity_telemetry_produce_seconds_sum");
    let batches = delta("clarity_projection_batch_seconds_count{projection=\"sessions\"}");
    let batch_sum = delta("clarity_projection_batch_seconds_sum{projection=\"sessions\"}");
    let records = delta("clarity_projection_records_total{projection=\"sessions\"}");
    // Record ages on the sessions topic (the bucket counts give an upper bound per quantile).
    let age = |metric: &str| {
        let matching = |suffix: &str| {
            after
                .keys()
                .filter(|k| k.starts_with(&format!("{metric}_{suffix}")) && k.contains("sessions"))
                .map(|k| delta(k))
                .sum::<f64>()
        };
        let (sum, count) = (matching("sum"), matching("count"));
        let mut buckets: Vec<(f64, f64)> = after
            .keys()
            .filter(|k| k.starts_with(&format!("{metric}_bucket")) && k.contains("sessions"))
            .filter_map(|k| {
                let le = k.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, delta(k)))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let quantile = |q: f64| {
            buckets
                .iter()
                .find(|(_, n)| *n >= q * count)
                .map_or(Value::Null, |(le, _)| json!(le * 1000.0))
        };
        json!({
            "mean_ms": per(sum, count) * 1000.0,
            "p50_at_most_ms": quantile(0.5),
            "p99_at_most_ms": quantile(0.99),
        })
    };
    let replay_batches = delta("clarity_projection_batch_seconds_count{projection=\"replay\"}");
    let replay_sum = delta("clarity_projection_batch_seconds_sum{projection=\"replay\"}");
    json!({
        "telemetry_produce_calls": produce_count,
        "mean_broker_ack_ms_per_request": per(produce_sum, produce_count) * 1000.0,
        "sessions_projection_batches": batches,
        "mean_sessions_projection_batch_ms": per(batch_sum, batches) * 1000.0,
        "mean_sessions_projection_batch_records": per(records, batches),
        "sessions_projection_busy_seconds": batch_sum,
        "mean_replay_projection_batch_ms": per(replay_sum, replay_batches) * 1000.0,
        "record_age_at_fetch": age("clarity_consumer_record_age_at_fetch_seconds"),
        "record_age_at_commit": age("clarity_projection_record_age_seconds"),
    })
}

/// A batch of a sampled session, waiting to show up in `session_events`.
pub(super) struct Pending {
    pub(super) last_seq: u64,
    pub(super) sent: Instant,
    pub(super) acked: Option<Instant>,
}

pub(super) struct LagSample {
    pub(super) id: Uuid,
    pub(super) pending: Mutex<VecDeque<Pending>>,
}

#[derive(Default)]
pub(super) struct LagResult {
    pub(super) from_send: Option<Histogram<u64>>,
    pub(super) from_ack: Option<Histogram<u64>>,
    pub(super) unobserved: usize,
}

/// `count` sessions evenly spread over `sessions`, followed for the lag: the samples, and for
/// each session its sample if it has one.
pub(super) fn lag_samples(
    sessions: &[Arc<SessionMeta>],
    count: usize,
) -> (Arc<Vec<Arc<LagSample>>>, Vec<Option<Arc<LagSample>>>) {
    let count = count.clamp(1, sessions.len().max(1));
    let step = (sessions.len() / count).max(1);
    let mut sample_of: Vec<Option<Arc<LagSample>>> = vec![None; sessions.len()];
    let mut samples = Vec::new();
    for i in (0..sessions.len()).step_by(step).take(count) {
        let sample = Arc::new(LagSample {
            id: sessions[i].id,
            pending: Mutex::new(VecDeque::new()),
        });
        sample_of[i] = Some(sample.clone());
        samples.push(sample);
    }
    (Arc::new(samples), sample_of)
}

/// Polls `max(seq)` of the sampled sessions every ~5 ms and records, per batch, the time from
/// sending it (and from its acknowledgement) until its last event is in `session_events`.
pub(super) async fn follow_lag(
    pool: PgPool,
    samples: Arc<Vec<Arc<LagSample>>>,
    sending_done: CancellationToken,
    give_up_after: Duration,
) -> anyhow::Result<LagResult> {
    let ids: Vec<Uuid> = samples.iter().map(|s| s.id).collect();
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut from_send = histogram();
    let mut from_ack = histogram();
    let mut interval = tokio::time::interval(Duration::from_millis(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut done_at: Option<Instant> = None;
    loop {
        interval.tick().await;
        let rows: Vec<(Uuid, Option<i64>)> = sqlx::query_as(
            "SELECT s.id, (SELECT max(e.seq) FROM session_events e
                            WHERE e.session_id = s.id AND e.stream_kind = 'telemetry')
             FROM UNNEST($1::uuid[]) AS s(id)",
        )
        .bind(&ids)
        .fetch_all(&pool)
        .await?;
        let now = Instant::now();
        for (id, seen) in rows {
            let Some(seen) = seen else { continue };
            let mut pending = samples[index[&id]].pending.lock().expect("lock");
            while pending.front().is_some_and(|p| p.last_seq as i64 <= seen) {
                let p = pending.pop_front().expect("front exists");
                let _ = from_send.record(now.duration_since(p.sent).as_micros().max(1) as u64);
                let acked = p.acked.unwrap_or(now);
                let _ =
                    from_ack.record(now.saturating_duration_since(acked).as_micros().max(1) as u64);
            }
        }
        if sending_done.is_cancelled() {
            let done_at = *done_at.get_or_insert(now);
            let unobserved: usize = samples
                .iter()
                .map(|s| s.pending.lock().expect("lock").len())
                .sum();
            if unobserved == 0 || now.duration_since(done_at) > give_up_after {
                return Ok(LagResult {
                    from_send: Some(from_send),
                    from_ack: Some(from_ack),
                    unobserved,
                });
            }
        }
    }
}

pub(super) async fn run(base: Config, args: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
    anyhow::ensure!(
        args.batch > 0 && args.batch <= base.max_batch_events,
        "--batch must be between 1 and the server's max batch ({})",
        base.max_batch_events
    );
    let mut env = BenchEnv::create(&base).await?;
    let result = ingest_in(&mut env, &args).await;
    finish(env, result, args.keep, args.json, print_ingest).await
}

async fn ingest_in(env: &mut BenchEnv, args: &IngestArgs) -> anyhow::Result<Value> {
    let config = env.config.clone();
    let mut product = env.start_product(args.in_process, args.consumers).await?;
    let org = product.org.clone();
    let target = product.target.clone();
    let measured = product
        .measure(load(&config, &target, &org.admin_api_key, args))
        .await;
    product.stop().await;
    let (mut report, sessions) = measured?;

    // The raw baseline, with the roles stopped: same records, same keys, same in-flight shape.
    note("raw rdkafka produce baseline");
    let topic = env.create_topic("raw").await?;
    let producer = config.kafka().producer(config.producer_linger_ms)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let works = Work::for_sessions(&sessions, args.events_per_session);
    let send = raw_producer_send(producer, topic.clone(), org.org_id, bytes.clone());
    let raw_cpu_before = cpu_seconds();
    let raw_neighbours_before = neighbour_cpu_seconds();
    let raw_elapsed = drive(works, args.batch, args.concurrency, send).await?;
    let raw_cpu = cpu_seconds() - raw_cpu_before;
    let raw_neighbours = neighbour_cores(
        &raw_neighbours_before,
        &neighbour_cpu_seconds(),
        raw_elapsed,
    );
    let total = args.sessions as u64 * args.events_per_session;
    let raw_rate = rate(total, raw_elapsed);
    let ingest_rate = report["ingest"]["events_per_s"].as_f64().unwrap_or(0.0);
    report["raw_produce"] = json!({
        "topic": topic,
        "events": total,
        "seconds": raw_elapsed.as_secs_f64(),
        "events_per_s": raw_rate,
        "avg_record_bytes": bytes.load(Ordering::Relaxed) as f64 / total.max(1) as f64,
        "process_cpu": cpu_use(raw_cpu, raw_elapsed, args.sessions as u64 * args.events_per_session),
        "neighbour_cpu": raw_neighbours,
        "in_flight": format!("{} tasks x {} records", args.concurrency.min(args.sessions), args.batch),
    });
    report["ratio_ingest_over_raw"] = json!(ingest_rate / raw_rate.max(1e-9));
    // The same produce while a consumer tails the topic, as the projection tails the sessions
    // topic during ingest: the broker does the same work in both runs.
    note("raw rdkafka produce baseline with a tailing consumer");
    let topic = env.create_topic("rawtail").await?;
    let producer = config.kafka().producer(config.producer_linger_ms)?;
    let works = Work::for_sessions(&sessions, args.events_per_session);
    let tailed_neighbours_before = neighbour_cpu_seconds();
    let tail = tokio::spawn(raw_tail(config.clone(), topic.clone(), total));
    let send = raw_producer_send(
        producer,
        topic.clone(),
        org.org_id,
        Arc::new(AtomicU64::new(0)),
    );
    let tailed_elapsed = drive(works, args.batch, args.concurrency, send).await?;
    let tailed_neighbours = neighbour_cores(
        &tailed_neighbours_before,
        &neighbour_cpu_seconds(),
        tailed_elapsed,
    );
    let tailed = tail.await??;
    let tailed_rate = rate(total, tailed_elapsed);
    report["raw_produce_with_consumer"] = json!({
        "topic": topic,
        "events_per_s": tailed_rate,
        "seconds": tailed_elapsed.as_secs_f64(),
        "consumer_caught_up_s": tailed.elapsed.as_secs_f64(),
        "record_age_at_receive_ms": tailed.age.as_ref().map_or(Value::Null, percentiles),
        "neighbour_cpu": tailed_neighbours,
    });
    report["ratio_ingest_over_raw_with_consumer"] = json!(ingest_rate / tailed_rate.max(1e-9));

    let (hwm, rss) = memory_kib();
    report["memory"]["bench_process_end_vm_hwm_kib"] = json!(hwm);
    report["memory"]["bench_process_end_vm_rss_kib"] = json!(rss);
    Ok(report)
}

#[derive(Serialize)]
struct BatchBody<'a> {
    events: &'a [TelemetryEvent],
}

/// Creates the sessions, drives the telemetry, follows the lag and waits for the projection.
async fn load(
    config: &Config,
    target: &Target,
    admin_key: &str,
    args: &IngestArgs,
) -> anyhow::Result<(Value, Vec<Arc<SessionMeta>>)> {
    let base_url = target.base_url.as_str();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(16))
        .timeout(Duration::from_secs(60))
        .build()?;

    // Sessions: invite (admin) → consent → start (candidate), 16 at a time.
    note(format!(
        "creating {} sessions through the API",
        args.sessions
    ));
    let setup_started = Instant::now();
    let sessions = start_sessions(&client, base_url, admin_key, args.sessions, 16).await?;
    let setup_elapsed = setup_started.elapsed();
    note(format!(
        "{} sessions started in {:.1}s",
        sessions.len(),
        setup_elapsed.as_secs_f64()
    ));

    // Wait until the lifecycle events are projected, so the lag measures telemetry only.
    let lag_pool = wait_until_in_progress(config, sessions.len(), Duration::from_secs(60)).await?;
    let (_, rss_before_load) = target.memory_kib();

    let (samples, sample_of) = lag_samples(&sessions, args.lag_sample_sessions);
    let sample_of = Arc::new(sample_of);
    let sending_done = CancellationToken::new();
    let follower = tokio::spawn(follow_lag(
        lag_pool.clone(),
        samples.clone(),
        sending_done.clone(),
        Duration::from_secs(120),
    ));

    let latency = Arc::new(Mutex::new(histogram()));
    let requests = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    // Pacing: batch n may leave at `start + n × batch / rate`.
    let pace = (args.rate > 0).then(|| {
        Arc::new((
            Instant::now(),
            Duration::from_secs_f64(args.batch as f64 / args.rate as f64),
            AtomicU64::new(0),
        ))
    });
    let send: SendFn = {
        let (latency, requests, retries) = (latency.clone(), requests.clone(), retries.clone());
        let base_url = base_url.to_string();
        Arc::new(move |meta, events| {
            let (client, latency, requests, retries, sample_of, pace) = (
                client.clone(),
                latency.clone(),
                requests.clone(),
                retries.clone(),
                sample_of.clone(),
                pace.clone(),
            );
            let url = format!("{base_url}/v1/sessions/{}/telemetry", meta.id);
            Box::pin(async move {
                if let Some(pace) = &pace {
                    let (start, per_batch, next) = &**pace;
                    let slot = next.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep_until((*start + per_batch.mul_f64(slot as f64)).into())
                        .await;
                }
                let body = serde_json::to_vec(&BatchBody { events: &events })?;
                let last_seq = events.last().map_or(0, |e| e.seq);
                let sample = sample_of[meta.index].clone();
                if let Some(sample) = &sample {
                    sample.pending.lock().expect("lock").push_back(Pending {
                        last_seq,
                        sent: Instant::now(),
                        acked: None,
                    });
                }
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let t0 = Instant::now();
                    let result = client
                        .post(&url)
                        .bearer_auth(&meta.token)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let retry_reason = match result {
                        Ok(response) if response.status().is_success() => {
                            response.bytes().await?;
                            let elapsed = t0.elapsed();
                            let acked = Instant::now();
                            let _ = latency
                                .lock()
                                .expect("lock")
                                .record(elapsed.as_micros().max(1) as u64);
                            requests.fetch_add(1, Ordering::Relaxed);
                            if let Some(sample) = &sample {
                                let mut pending = sample.pending.lock().expect("lock");
                                if let Some(p) = pending.iter_mut().find(|p| p.last_seq == last_seq)
                                {
                                    p.acked = Some(acked);
                                }
                            }
                            return Ok(());
                        }
                        Ok(response) if response.status().is_server_error() => {
                            let status = response.status();
                            format!("{status}: {}", response.text().await.unwrap_or_default())
                        }
                        Ok(response) => {
                            let status = response.status();
                            anyhow::bail!(
                                "telemetry for session {} (seq ..={last_seq}) answered {status}: {}",
                                meta.id,
                                response.text().await.unwrap_or_default()
                            );
                        }
                        Err(error) => error.to_string(),
                    };
                    anyhow::ensure!(
                        attempt < 10,
                        "telemetry for session {} failed 10 times: {retry_reason}",
                        meta.id
                    );
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
            })
        })
    };

    let total = args.sessions as u64 * args.events_per_session;
    note(format!(
        "sending {total} events: {} sessions x {}, batch {}, concurrency {}",
        args.sessions, args.events_per_session, args.batch, args.concurrency
    ));
    let works = Work::for_sessions(&sessions, args.events_per_session);
    let metrics_before = target.metrics().await;
    let cpu_before = target.cpu_seconds();
    let bench_cpu_before = cpu_seconds();
    let neighbours_before = neighbour_cpu_seconds();
    let load_started = Instant::now();
    let sent = drive(works, args.batch, args.concurrency, send).await;
    sending_done.cancel();
    let elapsed = sent?;
    let neighbours = neighbour_cores(&neighbours_before, &neighbour_cpu_seconds(), elapsed);
    let bench_cpu = cpu_use(
        cpu_seconds() - bench_cpu_before,
        elapsed,
        args.sessions as u64 * args.events_per_session,
    );
    let load_cpu = cpu_use(
        target.cpu_seconds() - cpu_before,
        elapsed,
        args.sessions as u64 * args.events_per_session,
    );
    let (hwm_after_load, rss_after_load) = target.memory_kib();

    // Until the projection holds every event.
    let drain_started = Instant::now();
    let mut projected: i64 = 0;
    while drain_started.elapsed() < Duration::from_secs(300) {
        projected =
            sqlx::query_scalar("SELECT coalesce(sum(telemetry_events), 0)::bigint FROM sessions")
                .fetch_one(&lag_pool)
                .await?;
        if projected as u64 >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let caught_up_after = drain_started.elapsed();
    // Everything the product did for these events, the projections' catch-up included.
    let through_projection_cpu = cpu_use(
        target.cpu_seconds() - cpu_before,
        load_started.elapsed(),
        args.sessions as u64 * args.events_per_session,
    );
    let all_projected = load_started.elapsed();
    let lag = follower.await??;
    let diagnostics = diagnostics(&metrics_before, &target.metrics().await);
    let in_log: i64 =
        sqlx::query_scalar("SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'")
            .fetch_one(&lag_pool)
            .await?;
    lag_pool.close().await;
    anyhow::ensure!(
        in_log as u64 == total,
        "session_events holds {in_log} telemetry events, expected {total}"
    );

    let latency = latency.lock().expect("lock").clone();
    let report = json!({
        "bench": "ingest",
        "id": &env_id(config),
        "params": {
            "sessions": args.sessions,
            "events_per_session": args.events_per_session,
            "batch": args.batch,
            "concurrency": args.concurrency,
            "partitions": config.topic_partitions,
            "db_pool_size": config.db_pool_size,
            "producer_linger_ms": config.producer_linger_ms,
            "lag_sample_sessions": samples.len(),
            "rate": args.rate,
        },
        "setup": { "sessions_started_seconds": setup_elapsed.as_secs_f64() },
        "ingest": {
            "events": total,
            "seconds": elapsed.as_secs_f64(),
            "events_per_s": rate(total, elapsed),
            "requests": requests.load(Ordering::Relaxed),
            "requests_per_s": rate(requests.load(Ordering::Relaxed), elapsed),
            "retries": retries.load(Ordering::Relaxed),
            "latency_ms": percentiles(&latency),
            "process_cpu": load_cpu,
            "process_cpu_through_projection": through_projection_cpu,
            "process": target.label(),
            "bench_process_cpu": bench_cpu,
            "neighbour_cpu": neighbours,
        },
        "end_to_end": {
            "lag_from_send_ms": lag.from_send.as_ref().map_or(Value::Null, percentiles),
            "lag_from_ack_ms": lag.from_ack.as_ref().map_or(Value::Null, percentiles),
            "unobserved_batches": lag.unobserved,
            "projected_events": projected,
            "caught_up_seconds_after_last_ack": caught_up_after.as_secs_f64(),
            "projected_events_per_s": rate(total, all_projected),
        },
        "diagnostics": diagnostics,
        "memory": {
            "process": target.label(),
            "rss_before_load_kib": rss_before_load,
            "vm_hwm_after_load_kib": hwm_after_load,
            "vm_rss_after_load_kib": rss_after_load,
        },
    });
    Ok((report, sessions))
}

fn print_ingest(r: &Value) {
    let p = &r["params"];
    let i = &r["ingest"];
    let e = &r["end_to_end"];
    let m = &r["memory"];
    let raw = &r["raw_produce"];
    let kib = |v: &Value| mib(v.as_u64().unwrap_or(0));
    println!(
        "clarity bench ingest  (bench id {})",
        r["id"].as_str().unwrap_or("")
    );
    println!(
        "  {} sessions x {} events = {} events; batch {}, concurrency {}, {} partitions, db pool {}, linger {} ms",
        p["sessions"], p["events_per_session"], i["events"], p["batch"], p["concurrency"],
        p["partitions"], p["db_pool_size"], p["producer_linger_ms"]
    );
    println!();
    println!("  {:<38} value", "metric");
    println!("  {:-<38} {:-<60}", "", "");
    println!(
        "  {:<38} {:.0} events/s  ({:.2} s, {} requests = {:.0} req/s, {} retries)",
        "HTTP ingest throughput",
        i["events_per_s"].as_f64().unwrap_or(0.0),
        i["seconds"].as_f64().unwrap_or(0.0),
        i["requests"],
        i["requests_per_s"].as_f64().unwrap_or(0.0),
        i["retries"]
    );
    println!("  {:<38} {}", "request latency", pct_text(&i["latency_ms"]));
    println!(
        "  {:<38} {:.2} cores avg, {:.1} us CPU per event ({})",
        "product CPU during ingest",
        i["process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
        i["process_cpu"]["us_per_event"].as_f64().unwrap_or(0.0),
        i["process"].as_str().unwrap_or("")
    );
    println!(
        "  {:<38} {:.1} us CPU per event, from the first send until every event was projected",
        "product CPU incl. projection catch-up",
        i["process_cpu_through_projection"]["us_per_event"]
            .as_f64()
            .unwrap_or(0.0),
    );
    if i["process"]
        .as_str()
        .is_some_and(|p| p.contains("separate"))
    {
        println!(
            "  {:<38} {:.2} cores avg, {:.1} us CPU per event",
            "load generator (bench process)",
            i["bench_process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
            i["bench_process_cpu"]["us_per_event"]
                .as_f64()
                .unwrap_or(0.0)
        );
    }
    println!(
        "  {:<38} {}",
        "lag send -> in session_events",
        pct_text(&e["lag_from_send_ms"])
    );
    println!(
        "  {:<38} {}",
        "lag ack -> in session_events",
        pct_text(&e["lag_from_ack_ms"])
    );
    if e["unobserved_batches"].as_u64().unwrap_or(0) > 0 {
        println!(
            "  {:<38} {}",
            "sampled batches never seen", e["unobserved_batches"]
        );
    }
    println!(
        "  {:<38} {:.2} s after the last ack ({:.0} events/s from first send to fully projected)",
        "projection caught up",
        e["caught_up_seconds_after_last_ack"]
            .as_f64()
            .unwrap_or(0.0),
        e["projected_events_per_s"].as_f64().unwrap_or(0.0)
    );
    let neighbours = |phase: &Value| {
        format!(
            "broker {:.2} cores, PostgreSQL {:.2} cores",
            phase["neighbour_cpu"]["broker_avg_cores"]
                .as_f64()
                .unwrap_or(0.0),
            phase["neighbour_cpu"]["postgres_avg_cores"]
                .as_f64()
                .unwrap_or(0.0)
        )
    };
    println!(
        "  {:<38} {}",
        "other processes during ingest",
        neighbours(i)
    );
    let d = &r["diagnostics"];
    println!(
        "  {:<38} broker ack {:.1} ms mean per request (of the request latency above)",
        "inside the API",
        d["mean_broker_ack_ms_per_request"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  {:<38} {} batches, mean {:.0} records, {:.1} ms each ({:.1} s busy)",
        "sessions projection during the run",
        d["sessions_projection_batches"],
        d["mean_sessions_projection_batch_records"]
            .as_f64()
            .unwrap_or(0.0),
        d["mean_sessions_projection_batch_ms"]
            .as_f64()
            .unwrap_or(0.0),
        d["sessions_projection_busy_seconds"]
            .as_f64()
            .unwrap_or(0.0)
    );
    let age = |v: &Value| {
        format!(
            "mean {:.0} ms, p50 <= {} ms, p99 <= {} ms",
            v["mean_ms"].as_f64().unwrap_or(0.0),
            v["p50_at_most_ms"],
            v["p99_at_most_ms"]
        )
    };
    println!(
        "  {:<38} {}",
        "record age when the consumer got it",
        age(&d["record_age_at_fetch"])
    );
    println!(
        "  {:<38} {}",
        "record age when both projections had it",
        age(&d["record_age_at_commit"])
    );
    println!(
        "  {:<38} {:.1} ms per batch (applied side by side with sessions)",
        "replay projection during the run",
        d["mean_replay_projection_batch_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  {:<38} peak (VmHWM) {:.0} MiB, RSS {:.0} MiB after load, {:.0} MiB before load",
        "process memory *",
        kib(&m["vm_hwm_after_load_kib"]),
        kib(&m["vm_rss_after_load_kib"]),
        kib(&m["rss_before_load_kib"])
    );
    println!(
        "  {:<38} {:.0} events/s  ({:.2} s, avg record {:.0} bytes, {} in flight)",
        "raw rdkafka produce (same records)",
        raw["events_per_s"].as_f64().unwrap_or(0.0),
        raw["seconds"].as_f64().unwrap_or(0.0),
        raw["avg_record_bytes"].as_f64().unwrap_or(0.0),
        raw["in_flight"].as_str().unwrap_or("")
    );
    println!(
        "  {:<38} {:.2} cores avg, {:.1} us CPU per event",
        "bench process CPU during raw produce",
        raw["process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
        raw["process_cpu"]["us_per_event"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  {:<38} {}",
        "other processes during raw produce",
        neighbours(raw)
    );
    println!(
        "  {:<38} {:.3}",
        "ratio ingest / raw",
        r["ratio_ingest_over_raw"].as_f64().unwrap_or(0.0)
    );
    let tailed = &r["raw_produce_with_consumer"];
    println!(
        "  {:<38} {:.0} events/s  ({:.2} s; the consumer finished {:.2} s after the start)",
        "raw produce + tailing raw consumer",
        tailed["events_per_s"].as_f64().unwrap_or(0.0),
        tailed["seconds"].as_f64().unwrap_or(0.0),
        tailed["consumer_caught_up_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  {:<38} {}",
        "other processes during that",
        neighbours(tailed)
    );
    println!(
        "  {:<38} {}",
        "record age when the raw consumer got it",
        pct_text(&tailed["record_age_at_receive_ms"])
    );
    println!(
        "  {:<38} {:.3}",
        "ratio ingest / raw with consumer",
        r["ratio_ingest_over_raw_with_consumer"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!();
    println!(
        "  * in-process: the whole bench process (API + relay + consumers + load generator), not the API alone"
    );
}

/// Follows `topic` from the beginning until `expected` records were read (all partitions
/// assigned, no group), decoding each as a `WireEvent`: the broker load a projection adds.
async fn raw_tail(config: Config, topic: String, expected: u64) -> anyhow::Result<Consumed> {
    let started = Instant::now();
    let consumer = config.kafka().reader("tail")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..config.topic_partitions {
        assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut age = histogram();
    while records < expected {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("the tailing consumer got nothing for 60 s")??;
        if let Some(created) = message.timestamp().to_millis() {
            let now = Utc::now().timestamp_millis();
            let _ = age.record(((now - created).max(0) as u64 * 1000).max(1));
        }
        let payload = message.payload().unwrap_or_default();
        let _: WireEvent = serde_json::from_slice(payload)?;
        records += 1;
        bytes += payload.len() as u64;
    }
    Ok(Consumed {
        records,
        bytes,
        elapsed: started.elapsed(),
        age: Some(age),
    })
}
