//! `clarity bench rebuild`: a rebuild of the `sessions` projection next to a raw consumer
//! reading the same topic.

use super::*;

pub(super) async fn run(base: Config, args: RebuildArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let mut env = BenchEnv::create(&base).await?;
    let result = rebuild_in(&mut env, &args).await;
    finish(env, result, args.keep, args.json, print_rebuild).await
}

async fn rebuild_in(env: &mut BenchEnv, args: &RebuildArgs) -> anyhow::Result<Value> {
    let config = env.config.clone();
    let kafka = config.kafka();
    let pool = crate::connect(&config).await?;
    let org = crate::create_organization(&pool, "Bench", "Bench Admin", "admin@bench.test").await?;
    pool.close().await;

    // The records: valid telemetry of `sessions` sessions, seq contiguous per session.
    note(format!(
        "writing {} telemetry records for {} sessions to {}",
        args.events, args.sessions, kafka.sessions_topic
    ));
    let per_session = args.events / args.sessions as u64;
    let extra = args.events % args.sessions as u64;
    let works: Vec<Work> = (0..args.sessions)
        .map(|index| Work {
            meta: Arc::new(SessionMeta {
                index,
                id: Uuid::now_v7(),
                token: String::new(),
            }),
            typist: Typist::new(index as u64),
            remaining: per_session + u64::from((index as u64) < extra),
        })
        .collect();
    let producer = kafka.producer(config.producer_linger_ms)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let send = raw_producer_send(
        producer,
        kafka.sessions_topic.clone(),
        org.org_id,
        bytes.clone(),
    );
    let produce_elapsed = drive(works, 500, 32, send).await?;
    note(format!(
        "written in {:.1}s ({:.0} records/s)",
        produce_elapsed.as_secs_f64(),
        rate(args.events, produce_elapsed)
    ));

    // The rebuild.
    note("rebuilding the sessions projection");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let report = clarity_consumers::projection_runner::rebuild(
        &config.database_url,
        &kafka,
        Projection::Sessions,
        &config.projections(),
        false,
    )
    .await?;
    let rebuild_wall = started.elapsed();
    let rebuild_cpu = cpu_seconds() - cpu_before;
    let check = PgPoolOptions::new()
        .max_connections(1)
        .connect(&config.database_url)
        .await?;
    let in_log: i64 =
        sqlx::query_scalar("SELECT count(*) FROM session_events WHERE stream_kind = 'telemetry'")
            .fetch_one(&check)
            .await?;
    check.close().await;
    anyhow::ensure!(
        in_log as u64 == args.events,
        "after the rebuild session_events holds {in_log} telemetry events, expected {}",
        args.events
    );

    // The raw consumers.
    note("raw consumer baseline");
    let cpu_before = cpu_seconds();
    let raw = raw_consume(&config, &kafka.sessions_topic, false).await?;
    let raw_cpu = cpu_seconds() - cpu_before;
    let decode = raw_consume(&config, &kafka.sessions_topic, true).await?;
    anyhow::ensure!(
        raw.records == args.events,
        "the raw consumer read {} records, expected {}",
        raw.records,
        args.events
    );

    let rebuild_rate = rate(report.records, report.elapsed);
    let raw_rate = rate(raw.records, raw.elapsed);
    Ok(json!({
        "bench": "rebuild",
        "id": env.id,
        "params": {
            "events": args.events,
            "sessions": args.sessions,
            "partitions": config.topic_partitions,
            "avg_record_bytes": bytes.load(Ordering::Relaxed) as f64 / args.events as f64,
        },
        "write": {
            "seconds": produce_elapsed.as_secs_f64(),
            "records_per_s": rate(args.events, produce_elapsed),
        },
        "rebuild": {
            "records": report.records,
            "seconds": report.elapsed.as_secs_f64(),
            "wall_seconds": rebuild_wall.as_secs_f64(),
            "records_per_s": rebuild_rate,
            "process_cpu": cpu_use(rebuild_cpu, rebuild_wall, args.events),
        },
        "raw_consume": {
            "records": raw.records,
            "bytes": raw.bytes,
            "seconds": raw.elapsed.as_secs_f64(),
            "records_per_s": raw_rate,
            "process_cpu": cpu_use(raw_cpu, raw.elapsed, args.events),
        },
        "raw_consume_and_decode": {
            "records": decode.records,
            "seconds": decode.elapsed.as_secs_f64(),
            "records_per_s": rate(decode.records, decode.elapsed),
        },
        "ratio_rebuild_over_raw": rebuild_rate / raw_rate.max(1e-9),
    }))
}

/// Reads `topic` from the beginning to its current end: no group commits, all partitions
/// assigned from `Beginning`, the same fetch settings as the rebuild. With `decode`, every
/// payload is also parsed as a `WireEvent`.
async fn raw_consume(config: &Config, topic: &str, decode: bool) -> anyhow::Result<Consumed> {
    let started = Instant::now();
    let consumer = config.kafka().reader("raw")?;
    // Exactly the partitions and ends a rebuild reads.
    let (mut ends, _) =
        clarity_consumers::projection_runner::assign_from_beginning(&consumer, topic)?;
    let (mut records, mut bytes) = (0u64, 0u64);
    while !ends.is_empty() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .context("the raw consumer got nothing for 30 s")??;
        let partition = message.partition();
        let Some(&end) = ends.get(&partition) else {
            continue;
        };
        if message.offset() >= end {
            continue;
        }
        let payload = message.payload().unwrap_or_default();
        records += 1;
        bytes += payload.len() as u64;
        if decode {
            let _: WireEvent = serde_json::from_slice(payload)?;
        }
        if message.offset() + 1 >= end {
            ends.remove(&partition);
        }
    }
    Ok(Consumed {
        records,
        bytes,
        elapsed: started.elapsed(),
        age: None,
    })
}

fn print_rebuild(r: &Value) {
    let p = &r["params"];
    let b = &r["rebuild"];
    let raw = &r["raw_consume"];
    let dec = &r["raw_consume_and_decode"];
    println!(
        "clarity bench rebuild  (bench id {})",
        r["id"].as_str().unwrap_or("")
    );
    println!(
        "  {} telemetry records of {} sessions, {} partitions, avg record {:.0} bytes (written at {:.0} records/s)",
        p["events"],
        p["sessions"],
        p["partitions"],
        p["avg_record_bytes"].as_f64().unwrap_or(0.0),
        r["write"]["records_per_s"].as_f64().unwrap_or(0.0)
    );
    println!();
    println!("  {:<38} value", "metric");
    println!("  {:-<38} {:-<50}", "", "");
    let cpu = |v: &Value| {
        format!(
            "{:.2} cores, {:.1} us CPU/record in this process",
            v["process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
            v["process_cpu"]["us_per_event"].as_f64().unwrap_or(0.0)
        )
    };
    println!(
        "  {:<38} {:.0} records/s  ({} records in {:.2} s; {})",
        "rebuild sessions projection",
        b["records_per_s"].as_f64().unwrap_or(0.0),
        b["records"],
        b["seconds"].as_f64().unwrap_or(0.0),
        cpu(b)
    );
    println!(
        "  {:<38} {:.0} records/s  ({} records in {:.2} s; {})",
        "raw StreamConsumer",
        raw["records_per_s"].as_f64().unwrap_or(0.0),
        raw["records"],
        raw["seconds"].as_f64().unwrap_or(0.0),
        cpu(raw)
    );
    println!(
        "  {:<38} {:.0} records/s  ({:.2} s)",
        "raw StreamConsumer + WireEvent decode",
        dec["records_per_s"].as_f64().unwrap_or(0.0),
        dec["seconds"].as_f64().unwrap_or(0.0)
    );
    println!(
        "  {:<38} {:.3}",
        "ratio rebuild / raw",
        r["ratio_rebuild_over_raw"].as_f64().unwrap_or(0.0)
    );
}
