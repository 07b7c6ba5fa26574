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
use rdkafka::consumer::Consumer;
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

use clarity_api::config::Config;
use clarity_api::state::AppState;

/// The built-in "REST API Design & Implementation" assessment (120 minutes).
const REST_API: &str = "c1a71700-0000-4000-8000-000000000001";

mod candidates;
mod failover;
mod ingest;
mod leaderboard;
mod rebuild;
mod replay;

/// `clarity bench …`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Telemetry ingestion through the HTTP API, end-to-end lag, and a raw producer baseline.
    Ingest(IngestArgs),
    /// Realistic load: N candidates typing at human pace at once; the largest N that holds.
    Candidates(candidates::CandidatesArgs),
    /// Partition reassignment after a consumer process is killed, as end-to-end lag.
    Failover(failover::FailoverArgs),
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
    /// Events per second to send at (0: as fast as the API answers). A rate the whole pipeline
    /// sustains is where the lag goal applies; flat out, the projections fall behind by design.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench database and topics.
    #[arg(long)]
    pub keep: bool,
    /// Run the product inside the bench process (its CPU and memory then include the load
    /// generator's) instead of as a separate `clarity all` process.
    #[arg(long)]
    pub in_process: bool,
    /// Run the roles as separate processes: `clarity serve`, `clarity relay` and this many
    /// `clarity consume` in one group (0: one `clarity all`).
    #[arg(long, default_value_t = 0)]
    pub consumers: usize,
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
        BenchCommand::Ingest(args) => ingest::run(config, args).await,
        BenchCommand::Candidates(args) => candidates::run(config, args).await,
        BenchCommand::Failover(args) => failover::run(config, args).await,
        BenchCommand::Rebuild(args) => rebuild::run(config, args).await,
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

    /// Drops the database and deletes the topics.
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
        let mut topics = vec![
            self.config.topic_assessments.clone(),
            self.config.topic_sessions.clone(),
        ];
        topics.extend(self.extra_topics.iter().cloned());
        if let Err(error) = delete_topics(&self.config, &topics).await {
            note(format!(
                "could not delete topics bench.{}.*: {error}",
                self.id
            ));
        }
    }
}

/// Deletes bench topics (Apache Kafka deletes exactly the named topics).
async fn delete_topics(config: &Config, topics: &[String]) -> anyhow::Result<()> {
    let kafka = config.kafka();
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config().overridden(&kafka).create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.delete_topics(&names, &options).await? {
        if let Err((topic, code)) = result {
            if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                anyhow::bail!("deleting {topic}: {code}");
            }
        }
    }
    Ok(())
}

/// The product running against a bench environment: the API (on a free port), the relay and the
/// given projections, with the catalogue seeded and one organization; either in this process or
/// (`separate`) as a `clarity all` child process, so that its CPU and memory are its own and not
/// the load generator's.
struct Product {
    pool: sqlx::PgPool,
    target: Target,
    org: crate::NewOrganization,
    shutdown: CancellationToken,
    roles: JoinSet<anyhow::Result<()>>,
}

/// Where the product under test runs and how to read its resource use.
#[derive(Clone)]
struct Target {
    base_url: String,
    /// The product's child processes when it runs separately: `clarity all`, or `clarity serve`
    /// first, then the relay and the consumers.
    pids: Vec<u32>,
    metrics_token: Option<String>,
}

impl Target {
    /// CPU seconds the product's processes have used so far (this process when it runs
    /// in-process).
    fn cpu_seconds(&self) -> f64 {
        if self.pids.is_empty() {
            return cpu_seconds();
        }
        self.pids
            .iter()
            .filter_map(|pid| proc_cpu_seconds(&format!("/proc/{pid}/stat")))
            .sum()
    }

    /// Peak and current RSS, KiB, of the process that serves the API.
    fn memory_kib(&self) -> (u64, u64) {
        match self.pids.first() {
            Some(pid) => status_memory_kib(&format!("/proc/{pid}/status")),
            None => memory_kib(),
        }
    }

    /// Whose CPU and memory the numbers above are.
    fn label(&self) -> String {
        match self.pids.len() {
            0 => "bench process (product + load generator)".into(),
            1 => "clarity all (separate process)".into(),
            n => format!(
                "{n} separate processes (serve, relay, {} x consume); RSS of serve",
                n - 2
            ),
        }
    }

    /// The product's Prometheus samples, scraped from its `/metrics`.
    async fn metrics(&self) -> HashMap<String, f64> {
        let client = reqwest::Client::new();
        let mut request = client.get(format!("{}/metrics", self.base_url));
        if let Some(token) = &self.metrics_token {
            request = request.bearer_auth(token);
        }
        let text = match request.send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(error) => {
                note(format!("could not read the product's metrics: {error}"));
                String::new()
            }
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect()
    }
}

impl BenchEnv {
    /// The pool, the API state, the seeded catalogue and the bench organization.
    async fn prepare(&self) -> anyhow::Result<(PgPool, AppState, crate::NewOrganization)> {
        let pool = crate::connect(&self.config).await?;
        // The benches measure capacity: the per-caller rate limits are off.
        let config = Config {
            rate_staff_per_second: 0.0,
            rate_candidate_per_second: 0.0,
            ..self.config.clone()
        };
        let state = AppState::new(pool.clone(), config)?;
        crate::seed::seed(&state.app).await.context("seeding")?;
        let org =
            crate::create_organization(&pool, "Bench", "Bench Admin", "admin@bench.test").await?;
        Ok((pool, state, org))
    }

    async fn start(&self, projections: &[Projection]) -> anyhow::Result<Product> {
        let config = self.config.clone();
        let (pool, state, org) = self.prepare().await?;
        let shutdown = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let mut roles: JoinSet<anyhow::Result<()>> = JoinSet::new();
        let s = shutdown.clone();
        roles.spawn(async move { crate::serve_on(listener, state, s).await });
        let (c, s) = (config.clone(), shutdown.clone());
        roles.spawn(async move { crate::relay(&c, s).await });
        let (c, p, s, projections) = (
            config.clone(),
            pool.clone(),
            shutdown.clone(),
            projections.to_vec(),
        );
        roles.spawn(async move { crate::consume(&c, p, &projections, s).await });
        Ok(Product {
            pool,
            target: Target {
                base_url,
                pids: Vec::new(),
                metrics_token: config.metrics_token.clone(),
            },
            org,
            shutdown,
            roles,
        })
    }

    /// Like [`BenchEnv::start`] with every projection, but the roles run in child processes
    /// (this binary, inheriting this process's environment): `clarity all`, or with
    /// `consumers > 0` one `clarity serve`, one `clarity relay` and `consumers` × `clarity consume`
    /// (one consumer group), as an operator scales them.
    async fn start_separate(&self, consumers: usize) -> anyhow::Result<Product> {
        let config = self.config.clone();
        let (pool, _, org) = self.prepare().await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let roles: Vec<&str> = if consumers == 0 {
            vec!["all"]
        } else {
            let mut roles = vec!["serve", "relay"];
            roles.extend(std::iter::repeat_n("consume", consumers));
            roles
        };
        let mut children = Vec::new();
        for role in roles {
            let mut command = tokio::process::Command::new(std::env::current_exe()?);
            command
                .arg(role)
                .env("DATABASE_URL", &config.database_url)
                .env("KAFKA_BROKERS", &config.kafka_brokers)
                .env("CLARITY_TOPIC_ASSESSMENTS", &config.topic_assessments)
                .env("CLARITY_TOPIC_SESSIONS", &config.topic_sessions)
                .env(
                    "CLARITY_TOPIC_PARTITIONS",
                    config.topic_partitions.to_string(),
                )
                .env("CLARITY_GROUP_PREFIX", &config.group_prefix)
                .env("CLARITY_LISTEN", format!("127.0.0.1:{port}"))
                // The benches measure capacity: the per-caller rate limits are off.
                .env("CLARITY_RATE_STAFF_PER_SECOND", "0")
                .env("CLARITY_RATE_CANDIDATE_PER_SECOND", "0")
                .env(
                    "RUST_LOG",
                    std::env::var("CLARITY_BENCH_PRODUCT_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true);
            children.push(command.spawn()?);
        }
        let pids = children
            .iter()
            .map(|c| c.id().context("a child has no pid"))
            .collect::<anyhow::Result<Vec<u32>>>()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let up = Instant::now();
        loop {
            if http
                .get(format!("{base_url}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            for child in &mut children {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("a product process exited during start: {status}");
                }
            }
            anyhow::ensure!(
                up.elapsed() < Duration::from_secs(60),
                "the product did not become ready in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let shutdown = CancellationToken::new();
        let mut roles: JoinSet<anyhow::Result<()>> = JoinSet::new();
        for mut child in children {
            let s = shutdown.clone();
            roles.spawn(async move {
                let pid = child.id();
                tokio::select! {
                    status = child.wait() => anyhow::bail!("a product process exited: {}", status?),
                    _ = s.cancelled() => {
                        // SIGTERM for a graceful stop (consumers leave their group), then wait.
                        if let Some(pid) = pid {
                            let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
                        }
                        if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
                            child.kill().await?;
                        }
                        Ok(())
                    }
                }
            });
        }
        Ok(Product {
            pool,
            target: Target {
                base_url,
                pids,
                metrics_token: config.metrics_token.clone(),
            },
            org,
            shutdown,
            roles,
        })
    }
}

impl BenchEnv {
    /// The product with every projection: in this process, or as separate processes
    /// (`clarity all`, or serve + relay + `consumers` × consume).
    async fn start_product(&self, in_process: bool, consumers: usize) -> anyhow::Result<Product> {
        if in_process {
            self.start(&Projection::ALL).await
        } else {
            self.start_separate(consumers).await
        }
    }
}

impl Product {
    /// Runs `measurement` while watching the roles: a role that stops or fails during it fails
    /// the benchmark instead of leaving it to time out.
    async fn measure<T>(
        &mut self,
        measurement: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::select! {
            result = measurement => result,
            Some(result) = self.roles.join_next() => Err(match result.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(()) => anyhow::anyhow!("a role stopped during the benchmark"),
                Err(e) => e.context("a role failed during the benchmark"),
            }),
        }
    }

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

/// Tears the environment down (unless `keep`), then prints the report as JSON or as the
/// benchmark's table: the common end of every `clarity bench …`.
async fn finish(
    env: BenchEnv,
    result: anyhow::Result<Value>,
    keep: bool,
    json: bool,
    print: impl FnOnce(&Value),
) -> anyhow::Result<()> {
    env.teardown(keep).await;
    let report = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
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

impl Work {
    /// `events` events for each session, each session's typist seeded by its index (so every
    /// run, and every baseline in a run, sends the same records).
    fn for_sessions(sessions: &[Arc<SessionMeta>], events: u64) -> Vec<Work> {
        sessions
            .iter()
            .map(|meta| Work {
                meta: meta.clone(),
                typist: Typist::new(meta.index as u64),
                remaining: events,
            })
            .collect()
    }
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
/// Peak and current RSS of this process, KiB.
fn memory_kib() -> (u64, u64) {
    status_memory_kib("/proc/self/status")
}

fn status_memory_kib(path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
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

/// CPU seconds used so far by the broker (a JVM running `kafka.Kafka`) and by PostgreSQL (all
/// `postgres` processes) on this machine, where they run locally: where the cores go during a
/// phase.
fn neighbour_cpu_seconds() -> HashMap<&'static str, f64> {
    let mut totals = HashMap::from([("broker", 0.0), ("postgres", 0.0)]);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let who = match comm.trim() {
            "java" if is_kafka_broker(&path) => "broker",
            c if c.starts_with("postgres") => "postgres",
            _ => continue,
        };
        if let Some(cpu) = proc_cpu_seconds(&path.join("stat").to_string_lossy()) {
            *totals.entry(who).or_default() += cpu;
        }
    }
    totals
}

fn is_kafka_broker(proc_dir: &std::path::Path) -> bool {
    std::fs::read(proc_dir.join("cmdline"))
        .map(|c| c.split(|&b| b == 0).any(|arg| arg == b"kafka.Kafka"))
        .unwrap_or(false)
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

fn env_id(config: &Config) -> String {
    config
        .group_prefix
        .strip_prefix("bench.")
        .unwrap_or(&config.group_prefix)
        .to_string()
}

/// Starts sessions `0..n` through the API (invite → consent → start), `parallel` at a time;
/// returns them in index order.
async fn start_sessions(
    client: &reqwest::Client,
    base_url: &str,
    admin_key: &str,
    n: usize,
    parallel: usize,
) -> anyhow::Result<Vec<Arc<SessionMeta>>> {
    let mut sessions: Vec<Arc<SessionMeta>> = futures::stream::iter(0..n)
        .map(|index| async move { started_session(client, base_url, admin_key, index).await })
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    sessions.sort_by_key(|s| s.index);
    Ok(sessions)
}

/// A small pool for the bench's own polling, once `n` sessions are projected as in progress
/// (or `limit` passed): measurements start when the lifecycle events are in the read model.
async fn wait_until_in_progress(
    config: &Config,
    n: usize,
    limit: Duration,
) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&config.database_url)
        .await?;
    let settle = Instant::now();
    while settle.elapsed() < limit {
        let projected: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sessions WHERE status = 'in_progress'")
                .fetch_one(&pool)
                .await?;
        if projected as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(pool)
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
        json!({"notice_id": clarity_domain::notice::CURRENT, "notice_sha256": clarity_domain::notice::current().sha256(),
               "scopes": {"keystroke_dynamics": true, "face_continuity": true}}),
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

struct Consumed {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    /// Age of each record (now - its create time) when it was received, in microseconds.
    age: Option<Histogram<u64>>,
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
