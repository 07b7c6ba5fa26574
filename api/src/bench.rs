//! `clarity bench …`: throughput benchmarks against real PostgreSQL and a real broker, each in an
//! isolated environment (its own database `clarity_bench_<uuid>`, topics `bench.<uuid>.*` and
//! consumer groups), torn down at the end unless `--keep` is given.
//!
//! - `bench ingest` runs the API, the relay and the projection consumers in this process, creates
//!   candidate sessions through the HTTP API and drives `POST /v1/sessions/{id}/telemetry` from
//!   concurrent clients; it reports events/s, request latency, end-to-end lag (until the event is
//!   in `session_events`) and memory, then a raw rdkafka produce baseline of the same records.
//! - `bench rebuild` writes telemetry records straight to the sessions topic, times a rebuild of
//!   the `sessions` projection, and a raw consumer reading the same topic.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clarity_consumers::kafka::Overrides;
use clarity_domain::telemetry::{EditOrigin, KeyClass, TelemetryData, TelemetryEvent};
use clarity_domain::wire::WireEvent;
use clarity_projections::Projection;
use futures::future::BoxFuture;
use futures::StreamExt;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::state::AppState;

/// The built-in "REST API Design & Implementation" assessment (120 minutes).
const REST_API: &str = "c1a71700-0000-4000-8000-000000000001";

mod leaderboard;
mod replay;

/// `clarity bench …`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Telemetry ingestion through the HTTP API, end-to-end lag, and a raw producer baseline.
    Ingest(IngestArgs),
    /// Rebuild of the `sessions` projection, and a raw consumer baseline.
    Rebuild(RebuildArgs),
    /// Seek latency in a long session against replaying from the start.
    Replay(replay::ReplayArgs),
    /// Leaderboard top-k and single-candidate percentile latency over a million scored sessions.
    Leaderboard(leaderboard::LeaderboardArgs),
}

/// `clarity bench ingest`
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Candidate sessions created through the API.
    #[arg(long, default_value_t = 200)]
    pub sessions: usize,
    /// Telemetry events sent per session.
    #[arg(long, default_value_t = 2000)]
    pub events_per_session: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent client tasks (requests in flight). 32 is where throughput stops growing on
    /// the development machine; more only queues at the broker (see docs/benchmarks.md).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Sessions whose events are followed into `session_events` for the lag measurement.
    #[arg(long, default_value_t = 16)]
    pub lag_sample_sessions: usize,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench database and topics.
    #[arg(long)]
    pub keep: bool,
}

/// `clarity bench rebuild`
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// Telemetry records written to the sessions topic.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Sessions the records belong to.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench database and topics.
    #[arg(long)]
    pub keep: bool,
}

/// Runs a benchmark.
pub async fn run(config: Config, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(config, args).await,
        BenchCommand::Rebuild(args) => rebuild(config, args).await,
        BenchCommand::Replay(args) => replay::run(config, args).await,
        BenchCommand::Leaderboard(args) => leaderboard::run(config, args).await,
    }
}

// ---------------------------------------------------------------------------------------------
// The isolated environment
// ---------------------------------------------------------------------------------------------

struct BenchEnv {
    id: String,
    config: Config,
    /// Extra topics created by the bench (deleted with the environment).
    extra_topics: Vec<String>,
}

/// `postgres://user@host:port/db?params` → the same URL naming `database`.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let scheme_end = url
        .find("://")
        .map(|i| i + 3)
        .context("database_url has no scheme")?;
    let (without_query, query) = match url.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (url, None),
    };
    let server = match without_query[scheme_end..].find('/') {
        Some(i) => &without_query[..scheme_end + i],
        None => without_query,
    };
    Ok(match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    })
}

impl BenchEnv {
    async fn create(base: &Config) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        let mut config = base.clone();
        config.database_url = with_database(&base.database_url, &format!("clarity_bench_{id}"))?;
        config.topic_assessments = format!("bench.{id}.assessments");
        config.topic_sessions = format!("bench.{id}.sessions");
        config.group_prefix = format!("bench.{id}");
        config.listen = "127.0.0.1:0".into();
        note(format!(
            "bench {id}: database clarity_bench_{id}, topics bench.{id}.*"
        ));
        crate::migrate(&config)
            .await
            .context("creating the bench database")?;
        config
            .kafka()
            .ensure_topics()
            .await
            .context("creating the bench topics (is the broker running?)")?;
        Ok(Self {
            id,
            config,
            extra_topics: Vec::new(),
        })
    }

    /// Creates another topic with the same partition count as the sessions topic.
    async fn create_topic(&mut self, suffix: &str) -> anyhow::Result<String> {
        let name = format!("bench.{}.{suffix}", self.id);
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .kafka()
            .client_config()
            .overridden(&self.config.kafka())
            .create()?;
        let topic = NewTopic::new(
            &name,
            self.config.topic_partitions,
            TopicReplication::Fixed(self.config.topic_replication),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics([&topic], &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
            }
        }
        self.extra_topics.push(name.clone());
        Ok(name)
    }

    /// Drops the database; keeps the topics (see the note inside).
    async fn teardown(self, keep: bool) {
        if keep {
            note(format!(
                "kept database {} and topics bench.{}.*",
                self.config.database_url, self.id
            ));
            return;
        }
        let url = &self.config.database_url;
        if let Err(error) = Postgres::drop_database(url).await {
            note(format!(
                "dropping the bench database failed ({error}); forcing"
            ));
            if let Err(error) = Postgres::force_drop_database(url).await {
                note(format!("could not drop {url}: {error}"));
            }
        }
        // Topics are left in place on purpose: Tansu 0.6.0 (SQLite storage) deletes *every*
        // topic when asked to delete one, which would wipe the product's own topics and any
        // other run's. Bench topics are small and uniquely named (`bench.<id>.*`).
        note(format!(
            "left topics bench.{}.* on the broker (see docs/benchmarks.md)",
            self.id
        ));
    }
}

/// The product running in-process against a bench environment: the API (on a free port), the
/// relay and the given projections, with the catalogue seeded and one organization.
struct Product {
    pool: sqlx::PgPool,
    base_url: String,
    org: crate::NewOrganization,
    shutdown: CancellationToken,
    roles: JoinSet<anyhow::Result<()>>,
}

impl BenchEnv {
    async fn start(&self, projections: &[Projection]) -> anyhow::Result<Product> {
        let config = self.config.clone();
        let pool = crate::connect(&config).await?;
        let state = AppState::new(pool.clone(), config.clone())?;
        crate::seed::seed(&state)
            .await
            .map_err(|e| anyhow::anyhow!("seeding: {}: {}", e.code, e.message))?;
        let org =
            crate::create_organization(&pool, "Bench", "Bench Admin", "admin@bench.test").await?;
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let mut roles: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let s = shutdown.clone();
        roles.spawn(async move { crate::serve_on(listener, state, s).await });
        let (c, s) = (config.clone(), shutdown.clone());
        roles.spawn(async move { crate::relay(&c, s).await });
        let (c, p, s, projections) = (config, pool.clone(), shutdown.clone(), projections.to_vec());
        roles.spawn(async move { crate::consume(&c, p, &projections, s).await });
        Ok(Product {
            pool,
            base_url,
            org,
            shutdown,
            roles,
        })
    }
}

impl Product {
    /// Stops every role (aborting them after 30 s) and closes the pool.
    async fn stop(mut self) {
        self.shutdown.cancel();
        let roles = &mut self.roles;
        let stopping = async {
            while let Some(result) = roles.join_next().await {
                if let Err(error) = result.map_err(anyhow::Error::from).and_then(|r| r) {
                    note(format!("role stopped with an error: {error:#}"));
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), stopping)
            .await
            .is_err()
        {
            note("roles did not stop within 30 s; aborting them");
            self.roles.abort_all();
        }
        self.pool.close().await;
    }
}

fn note(message: impl AsRef<str>) {
    eprintln!("[bench] {}", message.as_ref());
}

// ---------------------------------------------------------------------------------------------
// Realistic telemetry
// ---------------------------------------------------------------------------------------------

/// Generates a plausible editing session: keystrokes (~50%), edits (~35%: typing, backspaces, the
/// odd paste) and cursor moves (~15%), with positions consistent with the file being typed.
struct Typist {
    rng: StdRng,
    seq: u64,
    file_len: i64,
    clock_ms: f64,
}

const PASTES: &[&str] = &[
    "def handler(request):\n    return {\"status\": 200}\n",
    "for item in items:\n    total += item.price * item.quantity\n",
    "@app.get(\"/v1/orders/{order_id}\")\n",
];
const TYPED: &[u8] = b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz     ()[]{}:;.,=_\n";

impl Typist {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            file_len: 0,
            clock_ms: 0.0,
        }
    }

    fn next(&mut self, ts: DateTime<Utc>) -> TelemetryEvent {
        self.seq += 1;
        if self.seq == 1 {
            // An editor announces the file before editing it.
            return TelemetryEvent {
                seq: 1,
                ts,
                data: TelemetryData::FileCreated {
                    file: "main.py".into(),
                    content: String::new(),
                },
            };
        }
        self.clock_ms += self.rng.random_range(35.0..240.0);
        let file = "main.py".to_string();
        let r: f64 = self.rng.random();
        let data = if r < 0.5 {
            let k: f64 = self.rng.random();
            let key_class = if k < 0.68 {
                KeyClass::Letter
            } else if k < 0.83 {
                KeyClass::Whitespace
            } else if k < 0.91 {
                KeyClass::Punctuation
            } else if k < 0.96 {
                KeyClass::Backspace
            } else if k < 0.98 {
                KeyClass::Enter
            } else {
                KeyClass::Digit
            };
            TelemetryData::Keystroke {
                down_ms: self.clock_ms,
                up_ms: Some(self.clock_ms + self.rng.random_range(45.0..140.0)),
                key_class,
            }
        } else if r < 0.85 {
            let e: f64 = self.rng.random();
            if e < 0.85 || self.file_len == 0 {
                let c = TYPED[self.rng.random_range(0..TYPED.len())] as char;
                let position = self.file_len;
                self.file_len += 1;
                TelemetryData::Edit {
                    file,
                    position,
                    deleted: 0,
                    inserted: c.to_string(),
                    origin: EditOrigin::Typed,
                }
            } else if e < 0.97 {
                self.file_len -= 1;
                TelemetryData::Edit {
                    file,
                    position: self.file_len,
                    deleted: 1,
                    inserted: String::new(),
                    origin: EditOrigin::Typed,
                }
            } else {
                let text = PASTES[self.rng.random_range(0..PASTES.len())];
                let position = self.rng.random_range(0..=self.file_len);
                self.file_len += text.len() as i64;
                TelemetryData::Edit {
                    file,
                    position,
                    deleted: 0,
                    inserted: text.to_string(),
                    origin: EditOrigin::Paste,
                }
            }
        } else {
            let position = self.rng.random_range(0..=self.file_len);
            let selection_end = if self.rng.random::<f64>() < 0.2 {
                Some(self.rng.random_range(position..=self.file_len))
            } else {
                None
            };
            TelemetryData::Cursor {
                file,
                position,
                selection_end,
            }
        };
        TelemetryEvent {
            seq: self.seq,
            ts,
            data,
        }
    }

    /// The next `n` events, spread over the last moments before `now`.
    fn batch(&mut self, n: usize, now: DateTime<Utc>) -> Vec<TelemetryEvent> {
        (0..n)
            .map(|i| self.next(now - chrono::Duration::milliseconds(30 * (n - i) as i64)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The load driver: every session's batches in order, `concurrency` batches in flight
// ---------------------------------------------------------------------------------------------

struct SessionMeta {
    index: usize,
    id: Uuid,
    token: String,
}

struct Work {
    meta: Arc<SessionMeta>,
    typist: Typist,
    remaining: u64,
}

type SendFn = Arc<
    dyn Fn(Arc<SessionMeta>, Vec<TelemetryEvent>) -> BoxFuture<'static, anyhow::Result<()>>
        + Send
        + Sync,
>;

/// Sends every session's events in batches of `batch` from `concurrency` tasks. A session is in
/// the queue only while none of its batches is in flight, so each session's batches go in order;
/// sessions are served round-robin so that all of them finish at about the same time. Returns
/// the wall time.
async fn drive(
    works: Vec<Work>,
    batch: usize,
    concurrency: usize,
    send: SendFn,
) -> anyhow::Result<Duration> {
    let sessions = works.iter().filter(|w| w.remaining > 0).count();
    if sessions == 0 {
        return Ok(Duration::ZERO);
    }
    let (tx, rx) = mpsc::unbounded_channel::<Work>();
    for work in works.into_iter().filter(|w| w.remaining > 0) {
        let _ = tx.send(work);
    }
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let remaining = Arc::new(AtomicUsize::new(sessions));
    let done = CancellationToken::new();
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, sessions) {
        let (tx, rx, remaining, done, send) = (
            tx.clone(),
            rx.clone(),
            remaining.clone(),
            done.clone(),
            send.clone(),
        );
        workers.spawn(async move {
            loop {
                let next = {
                    let mut rx = rx.lock().await;
                    tokio::select! {
                        biased;
                        work = rx.recv() => work,
                        _ = done.cancelled() => None,
                    }
                };
                let Some(mut work) = next else {
                    return anyhow::Ok(());
                };
                let n = (batch as u64).min(work.remaining) as usize;
                let events = work.typist.batch(n, Utc::now());
                work.remaining -= n as u64;
                send(work.meta.clone(), events).await?;
                if work.remaining > 0 {
                    let _ = tx.send(work);
                } else if remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                    done.cancel();
                }
            }
        });
    }
    drop(tx);
    while let Some(result) = workers.join_next().await {
        if let Err(error) = result.map_err(anyhow::Error::from).and_then(|r| r) {
            workers.abort_all();
            return Err(error);
        }
    }
    Ok(started.elapsed())
}

/// A send function producing each event as its `WireEvent` JSON, keyed by session id, awaiting
/// every delivery of the batch (what the API does per request).
fn raw_producer_send(
    producer: FutureProducer,
    topic: String,
    org_id: Uuid,
    bytes: Arc<AtomicU64>,
) -> SendFn {
    let topic: Arc<str> = topic.into();
    Arc::new(move |meta, events| {
        let (producer, topic, bytes) = (producer.clone(), topic.clone(), bytes.clone());
        Box::pin(async move {
            let key = meta.id.to_string();
            let payloads: Vec<Vec<u8>> = events
                .iter()
                .map(|e| serde_json::to_vec(&WireEvent::telemetry(meta.id, org_id, e)))
                .collect::<Result<_, _>>()?;
            bytes.fetch_add(
                payloads.iter().map(|p| p.len() as u64).sum(),
                Ordering::Relaxed,
            );
            let deliveries: Vec<_> = payloads
                .iter()
                .map(|p| {
                    producer.send(
                        FutureRecord::to(&topic).key(&key).payload(p),
                        Duration::from_secs(10),
                    )
                })
                .collect();
            for delivery in futures::future::join_all(deliveries).await {
                delivery.map_err(|(error, _)| anyhow::anyhow!("produce failed: {error}"))?;
            }
            Ok(())
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// p50/p95/p99/max of a histogram of microseconds, in milliseconds (`null` when empty).
fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |us: u64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
    json!({
        "samples": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p95": ms(h.value_at_quantile(0.95)),
        "p99": ms(h.value_at_quantile(0.99)),
        "max": ms(h.max()),
    })
}

fn pct_text(v: &Value) -> String {
    if v.is_null() {
        return "no samples".into();
    }
    format!(
        "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
        v["p50"].as_f64().unwrap_or(0.0),
        v["p95"].as_f64().unwrap_or(0.0),
        v["p99"].as_f64().unwrap_or(0.0),
        v["max"].as_f64().unwrap_or(0.0),
        v["samples"]
    )
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time (user + system) this process used so far, from `/proc/self/stat` (USER_HZ = 100).
fn cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/self/stat").unwrap_or(0.0)
}

fn proc_cpu_seconds(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// CPU seconds used so far by the broker (`tansu`) and by PostgreSQL (all `postgres`
/// processes) on this machine, where they run locally: where the cores go during a phase.
fn neighbour_cpu_seconds() -> HashMap<&'static str, f64> {
    let mut totals = HashMap::from([("broker", 0.0), ("postgres", 0.0)]);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let who = match comm.trim() {
            "tansu" => "broker",
            c if c.starts_with("postgres") => "postgres",
            _ => continue,
        };
        if let Some(cpu) = proc_cpu_seconds(&path.join("stat").to_string_lossy()) {
            *totals.entry(who).or_default() += cpu;
        }
    }
    totals
}

/// Average cores the broker and PostgreSQL used between two `neighbour_cpu_seconds` readings.
fn neighbour_cores(
    before: &HashMap<&'static str, f64>,
    after: &HashMap<&'static str, f64>,
    wall: Duration,
) -> Value {
    let cores = |k: &str| {
        (after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0))
            / wall.as_secs_f64().max(1e-9)
    };
    json!({ "broker_avg_cores": cores("broker"), "postgres_avg_cores": cores("postgres") })
}

/// CPU used by this process over a phase: average cores and microseconds per event.
fn cpu_use(cpu: f64, wall: Duration, events: u64) -> Value {
    json!({
        "cpu_seconds": cpu,
        "avg_cores": cpu / wall.as_secs_f64().max(1e-9),
        "us_per_event": cpu * 1e6 / events.max(1) as f64,
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// The product's own Prometheus samples (default registry; the roles run in this process).
fn metric_snapshot() -> HashMap<String, f64> {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&prometheus::gather())
        .unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// What the product's metrics say about the load phase (`after` − `before`).
fn diagnostics(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> Value {
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
struct Pending {
    last_seq: u64,
    sent: Instant,
    acked: Option<Instant>,
}

struct LagSample {
    id: Uuid,
    pending: Mutex<VecDeque<Pending>>,
}

#[derive(Default)]
struct LagResult {
    from_send: Option<Histogram<u64>>,
    from_ack: Option<Histogram<u64>>,
    unobserved: usize,
}

/// Polls `max(seq)` of the sampled sessions every ~5 ms and records, per batch, the time from
/// sending it (and from its acknowledgement) until its last event is in `session_events`.
async fn follow_lag(
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

// ---------------------------------------------------------------------------------------------
// bench ingest
// ---------------------------------------------------------------------------------------------

async fn ingest(base: Config, args: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
    anyhow::ensure!(
        args.batch > 0 && args.batch <= base.max_batch_events,
        "--batch must be between 1 and the server's max batch ({})",
        base.max_batch_events
    );
    let mut env = BenchEnv::create(&base).await?;
    let result = ingest_in(&mut env, &args).await;
    env.teardown(args.keep).await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_ingest(&report);
    }
    Ok(())
}

async fn ingest_in(env: &mut BenchEnv, args: &IngestArgs) -> anyhow::Result<Value> {
    let config = env.config.clone();
    let mut product = env.start(&Projection::ALL).await?;
    let org = product.org.clone();
    let measured = tokio::select! {
        result = load(&config, &product.base_url, &org.admin_api_key, args) => result,
        Some(result) = product.roles.join_next() => Err(match result.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(()) => anyhow::anyhow!("a role stopped during the benchmark"),
            Err(e) => e.context("a role failed during the benchmark"),
        }),
    };
    product.stop().await;
    let (mut report, sessions) = measured?;

    // The raw baseline, with the roles stopped: same records, same keys, same in-flight shape.
    note("raw rdkafka produce baseline");
    let topic = env.create_topic("raw").await?;
    let producer = config.kafka().producer(config.producer_linger_ms)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let works = sessions
        .iter()
        .map(|meta| Work {
            meta: meta.clone(),
            typist: Typist::new(meta.index as u64),
            remaining: args.events_per_session,
        })
        .collect();
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
    let works = sessions
        .iter()
        .map(|meta| Work {
            meta: meta.clone(),
            typist: Typist::new(meta.index as u64),
            remaining: args.events_per_session,
        })
        .collect();
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
    report["memory"]["end_vm_hwm_kib"] = json!(hwm);
    report["memory"]["end_vm_rss_kib"] = json!(rss);
    Ok(report)
}

#[derive(Serialize)]
struct BatchBody<'a> {
    events: &'a [TelemetryEvent],
}

/// Creates the sessions, drives the telemetry, follows the lag and waits for the projection.
async fn load(
    config: &Config,
    base_url: &str,
    admin_key: &str,
    args: &IngestArgs,
) -> anyhow::Result<(Value, Vec<Arc<SessionMeta>>)> {
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
    let mut sessions: Vec<Arc<SessionMeta>> = futures::stream::iter(0..args.sessions)
        .map(|index| {
            let client = client.clone();
            async move { started_session(&client, base_url, admin_key, index).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    sessions.sort_by_key(|s| s.index);
    let setup_elapsed = setup_started.elapsed();
    note(format!(
        "{} sessions started in {:.1}s",
        sessions.len(),
        setup_elapsed.as_secs_f64()
    ));

    // Wait until the lifecycle events are projected, so the lag measures telemetry only.
    let lag_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&config.database_url)
        .await?;
    let settle = Instant::now();
    loop {
        let projected: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE status = 'in_progress'")
                .fetch_one(&lag_pool)
                .await?;
        if projected as usize >= sessions.len() || settle.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, rss_before_load) = memory_kib();

    // Lag samples: evenly spread sessions.
    let sample_count = args.lag_sample_sessions.min(sessions.len());
    let step = (sessions.len() / sample_count.max(1)).max(1);
    let mut sample_of: Vec<Option<Arc<LagSample>>> = vec![None; sessions.len()];
    let mut samples = Vec::new();
    for i in (0..sessions.len()).step_by(step).take(sample_count) {
        let sample = Arc::new(LagSample {
            id: sessions[i].id,
            pending: Mutex::new(VecDeque::new()),
        });
        sample_of[i] = Some(sample.clone());
        samples.push(sample);
    }
    let samples = Arc::new(samples);
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
    let send: SendFn = {
        let (latency, requests, retries) = (latency.clone(), requests.clone(), retries.clone());
        let base_url = base_url.to_string();
        Arc::new(move |meta, events| {
            let (client, latency, requests, retries, sample_of) = (
                client.clone(),
                latency.clone(),
                requests.clone(),
                retries.clone(),
                sample_of.clone(),
            );
            let url = format!("{base_url}/v1/sessions/{}/telemetry", meta.id);
            Box::pin(async move {
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
    let works = sessions
        .iter()
        .map(|meta| Work {
            meta: meta.clone(),
            typist: Typist::new(meta.index as u64),
            remaining: args.events_per_session,
        })
        .collect();
    let metrics_before = metric_snapshot();
    let cpu_before = cpu_seconds();
    let neighbours_before = neighbour_cpu_seconds();
    let load_started = Instant::now();
    let sent = drive(works, args.batch, args.concurrency, send).await;
    sending_done.cancel();
    let elapsed = sent?;
    let neighbours = neighbour_cores(&neighbours_before, &neighbour_cpu_seconds(), elapsed);
    let load_cpu = cpu_use(
        cpu_seconds() - cpu_before,
        elapsed,
        args.sessions as u64 * args.events_per_session,
    );
    let (hwm_after_load, rss_after_load) = memory_kib();

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
    let all_projected = load_started.elapsed();
    let lag = follower.await??;
    let diagnostics = diagnostics(&metrics_before, &metric_snapshot());
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
            "note": "whole bench process (API + relay + consumers + load generator), not the API alone",
            "rss_before_load_kib": rss_before_load,
            "vm_hwm_after_load_kib": hwm_after_load,
            "vm_rss_after_load_kib": rss_after_load,
        },
    });
    Ok((report, sessions))
}

fn env_id(config: &Config) -> String {
    config
        .group_prefix
        .strip_prefix("bench.")
        .unwrap_or(&config.group_prefix)
        .to_string()
}

/// Invite → consent → start.
async fn started_session(
    client: &reqwest::Client,
    base_url: &str,
    admin_key: &str,
    index: usize,
) -> anyhow::Result<Arc<SessionMeta>> {
    async fn post(
        client: &reqwest::Client,
        url: String,
        token: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = client
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "POST {url} answered {status}: {text}");
        Ok(serde_json::from_str(&text)?)
    }
    let invited = post(
        client,
        format!("{base_url}/v1/sessions"),
        admin_key,
        json!({"assessment_id": REST_API,
               "candidate": {"name": format!("Bench Candidate {index}"),
                             "email": format!("candidate{index}@bench.test")}}),
    )
    .await?;
    let id: Uuid = invited["session_id"]
        .as_str()
        .context("invite answer without session_id")?
        .parse()?;
    let token = invited["candidate_token"]
        .as_str()
        .context("invite answer without candidate_token")?
        .to_string();
    post(
        client,
        format!("{base_url}/v1/sessions/{id}/consent"),
        &token,
        json!({"notice_version": "2026-11",
               "scopes": {"keystroke_dynamics": true, "face_continuity": false}}),
    )
    .await?;
    post(
        client,
        format!("{base_url}/v1/sessions/{id}/start"),
        &token,
        json!({}),
    )
    .await?;
    Ok(Arc::new(SessionMeta { index, id, token }))
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
        "  {:<38} {:.2} cores avg, {:.1} us CPU per event (API + relay + consumers + load generator)",
        "bench process CPU during ingest",
        i["process_cpu"]["avg_cores"].as_f64().unwrap_or(0.0),
        i["process_cpu"]["us_per_event"].as_f64().unwrap_or(0.0)
    );
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

// ---------------------------------------------------------------------------------------------
// bench rebuild
// ---------------------------------------------------------------------------------------------

async fn rebuild(base: Config, args: RebuildArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let mut env = BenchEnv::create(&base).await?;
    let result = rebuild_in(&mut env, &args).await;
    env.teardown(args.keep).await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_rebuild(&report);
    }
    Ok(())
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

struct Consumed {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    /// Age of each record (now - its create time) when it was received, in microseconds.
    age: Option<Histogram<u64>>,
}

/// Follows `topic` from the beginning until `expected` records were read (all partitions
/// assigned, no group), decoding each as a `WireEvent`: the broker load a projection adds.
async fn raw_tail(config: Config, topic: String, expected: u64) -> anyhow::Result<Consumed> {
    let started = Instant::now();
    let consumer: StreamConsumer = config
        .kafka()
        .client_config()
        .set(
            "group.id",
            format!("{}.tail.{}", config.group_prefix, Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .overridden(&config.kafka())
        .create()?;
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

/// Reads `topic` from the beginning to its current end: no group commits, all partitions
/// assigned from `Beginning`, the same fetch settings as the rebuild. With `decode`, every
/// payload is also parsed as a `WireEvent`.
async fn raw_consume(config: &Config, topic: &str, decode: bool) -> anyhow::Result<Consumed> {
    let started = Instant::now();
    let consumer: StreamConsumer = config
        .kafka()
        .client_config()
        .set(
            "group.id",
            format!("{}.raw.{}", config.group_prefix, Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .overridden(&config.kafka())
        .create()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_parameters_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/clarity", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/clarity?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").unwrap(),
            "postgres://h:5432/x"
        );
    }

    #[test]
    fn generated_events_are_valid_and_contiguous() {
        let mut typist = Typist::new(7);
        let now = Utc::now();
        let events: Vec<_> = (0..20).flat_map(|_| typist.batch(100, now)).collect();
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            e.validate(now, chrono::Duration::seconds(30)).unwrap();
        }
        let kinds: std::collections::BTreeSet<_> = events.iter().map(|e| e.data.kind()).collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["cursor", "edit", "file_created", "keystroke"]
        );
        // The edits are consistent with the document they build (replay shows no anomaly).
        let mut workspace = clarity_projections::replay_engine::Workspace::default();
        for e in &events {
            workspace
                .apply(&e.data)
                .unwrap_or_else(|a| panic!("seq {}: {a:?}", e.seq));
        }
    }
}
