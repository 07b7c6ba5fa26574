//! `clarity bench replay`: one long multi-file session (default 100,000 events of `clarity simulate`
//! candidate work) ingested through the API and
//! projected; then seek latency through the replay API at early, middle and late positions,
//! against replaying from the start to the same positions in the same run.

use std::time::{Duration, Instant};

use clarity_domain::telemetry::TelemetryData;
use clarity_projections::replay_engine::Workspace;
use clarity_projections::Projection;
use serde_json::{json, Value};

use super::{
    finish, histogram, memory_kib, mib, note, pct_text, percentiles, started_session, BenchEnv,
};
use clarity_api::config::Config;

/// `clarity bench replay`
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Telemetry events in the session.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Seeks measured per position.
    #[arg(long, default_value_t = 200)]
    pub seeks: usize,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench database.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the benchmark in its own environment.
pub async fn run(base: Config, args: ReplayArgs) -> anyhow::Result<()> {
    let env = BenchEnv::create(&base).await?;
    let result = measure(&env, &args).await;
    finish(env, result, args.keep, args.json, print).await
}

async fn measure(env: &BenchEnv, args: &ReplayArgs) -> anyhow::Result<Value> {
    let product = env
        .start(&[Projection::Sessions, Projection::Replay])
        .await?;
    let (pool, base_url, org) = (
        product.pool.clone(),
        product.target.base_url.clone(),
        product.org.clone(),
    );
    let client = reqwest::Client::new();
    let meta = started_session(&client, &base_url, &org.admin_api_key, 0).await?;
    note(format!("sending {} events for one session", args.events));
    // The simulated candidate's work (human-like typing, typos, a paste, runs), repeated over
    // as many files as it takes: a long multi-file session.
    let script = long_script(args.events);
    let mut sent = 0;
    for chunk in script.chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|data| {
                sent += 1;
                json!({"seq": sent, "ts": chrono::Utc::now(), "data": data})
            })
            .collect();
        let res = client
            .post(format!("{base_url}/v1/sessions/{}/telemetry", meta.id))
            .bearer_auth(&meta.token)
            .json(&json!({ "events": events }))
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "ingest answered {}",
            res.status()
        );
    }
    note("waiting for the replay projection");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM replay_sessions WHERE session_id = $1")
                .bind(meta.id)
                .fetch_optional(&pool)
                .await?;
        if last == Some(args.events as i64) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the replay projection did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let keyframes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM replay_keyframes WHERE session_id = $1")
            .bind(meta.id)
            .fetch_one(&pool)
            .await?;

    let mut positions = Vec::new();
    for target in [1_000u64, args.events / 2, args.events] {
        let target = target.min(args.events);
        // Seek through the API, as the page does.
        let mut seek = histogram();
        for _ in 0..args.seeks {
            let started = Instant::now();
            let res = client
                .get(format!(
                    "{base_url}/v1/sessions/{}/replay/state?seq={target}",
                    meta.id
                ))
                .bearer_auth(&org.admin_api_key)
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "seek answered {}", res.status());
            res.bytes().await?;
            seek.record(started.elapsed().as_micros() as u64)?;
        }
        // Replaying from the start: read every event up to the target and apply it.
        let mut scratch = histogram();
        for _ in 0..5 {
            let started = Instant::now();
            let rows: Vec<serde_json::Value> = sqlx::query_scalar(
                "SELECT data FROM session_events WHERE session_id = $1 AND stream_kind = 'telemetry' AND seq <= $2 ORDER BY seq",
            )
            .bind(meta.id)
            .bind(target as i64)
            .fetch_all(&pool)
            .await?;
            let mut workspace = Workspace::default();
            for data in rows {
                if let Ok(data) = serde_json::from_value::<TelemetryData>(data) {
                    let _ = workspace.apply(&data);
                }
            }
            scratch.record(started.elapsed().as_micros() as u64)?;
        }
        positions.push(json!({"seq": target, "seek": percentiles(&seek), "replay_from_start": percentiles(&scratch)}));
    }
    product.stop().await;
    let (hwm, rss) = memory_kib();
    Ok(json!({
        "events": args.events,
        "keyframes": keyframes,
        "keyframe_every_events": env.config.replay_config().keyframes.every_events,
        "positions": positions,
        "memory": {"vm_hwm_kib": hwm, "vm_rss_kib": rss, "note": "whole bench process (API + relay + consumers + client)"},
    }))
}

/// `events` telemetry events: `clarity simulate`'s candidate script, one copy per file
/// (`app_1.py`, `app_2.py`, …), cut at `events`.
fn long_script(events: u64) -> Vec<Value> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut out = Vec::with_capacity(events as usize);
    let mut copy = 0;
    while (out.len() as u64) < events {
        copy += 1;
        let (script, _) = crate::simulate::script(&mut rng);
        for mut event in script {
            if let Some(file) = event.get_mut("file") {
                *file = json!(format!("app_{copy}.py"));
            }
            out.push(event);
        }
    }
    out.truncate(events as usize);
    out
}

fn print(r: &Value) {
    println!("clarity bench replay");
    println!(
        "  one session, {} events, {} keyframes (every {} events)",
        r["events"], r["keyframes"], r["keyframe_every_events"]
    );
    println!();
    println!(
        "  {:<10} {:<64} replay from the start (DB read + apply)",
        "position", "seek through the API (GET /replay/state)"
    );
    for p in r["positions"].as_array().into_iter().flatten() {
        println!(
            "  {:<10} {:<64} {}",
            p["seq"],
            pct_text(&p["seek"]),
            pct_text(&p["replay_from_start"])
        );
    }
    let kib = |v: &Value| mib(v.as_u64().unwrap_or(0));
    println!();
    println!(
        "  peak RSS {:.0} MiB (whole bench process)",
        kib(&r["memory"]["vm_hwm_kib"])
    );
}
