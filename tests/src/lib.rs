//! Test harness for end-to-end tests against real PostgreSQL and a real Kafka-protocol broker.
//!
//! Each [`TestEnv`] gets its own database (`clarity_test_<uuid>`) and its own topics and consumer
//! groups (suffixed with the same uuid), so tests run in parallel against one broker without
//! seeing each other. Roles run either in-process (fast) or as `clarity` subprocesses that can be
//! killed with SIGKILL (crash tests). The broker and PostgreSQL come from `scripts/test`.
//!
//! Every end-to-end test is in one test binary (`tests/tests/e2e/`), so the tests share a process:
//! nothing here changes process-wide state a test could observe; settings reach the roles in
//! [`Config`] values (`spawn_api_with`, `spawn_consumers_with`, `spawn_product_with`).
//!
//! - this file: [`TestEnv`] (database, topics, roles in-process and as subprocesses);
//! - [`client`]: [`Client`], a small HTTP client for the API;
//! - [`scenario`]: the steps tests are written in — an organization, a member, a started,
//!   finished or analysed session, a completed review, the whole [`Product`].

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clarity_api::config::{AuditKeySeed, Config};
use clarity_api::state::AppState;
use clarity_projections::Projection;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub mod client;
pub mod scenario;

pub use client::{Client, Reply};
pub use scenario::{edit_event, new_org, Product};

/// The id of the built-in "REST API Design & Implementation" assessment.
pub const REST_API: &str = "c1a71700-0000-4000-8000-000000000001";

/// The monitoring notice candidates consent to now.
pub const NOTICE_ID: &str = clarity_domain::notice::CURRENT;

/// The content hash of [`NOTICE_ID`], as `GET /notice` gives it.
pub fn notice_sha256() -> String {
    clarity_domain::notice::current().sha256()
}

/// The audit signing key seed the tests configure (never use it anywhere else).
pub const TEST_AUDIT_KEY: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// An isolated database + topics + groups.
pub struct TestEnv {
    pub config: Config,
    pub pool: PgPool,
    pub id: String,
}

fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

impl TestEnv {
    /// Creates the database, applies migrations, creates the topics and seeds the catalogue.
    pub async fn new() -> anyhow::Result<Self> {
        Self::with_partitions(3).await
    }

    /// Like [`TestEnv::new`], with topics of `partitions` partitions.
    pub async fn with_partitions(partitions: i32) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string()[..12].to_string();
        let config = Config {
            database_url: format!("{}/clarity_test_{id}", server_url()),
            kafka_brokers: std::env::var("KAFKA_BROKERS")
                .unwrap_or_else(|_| "127.0.0.1:9092".into()),
            topic_assessments: format!("test.{id}.assessments"),
            topic_sessions: format!("test.{id}.sessions"),
            topic_partitions: partitions,
            topic_replication: 1,
            group_prefix: format!("test.{id}"),
            consumer_instance_id: None,
            metrics_token: None,
            listen: "127.0.0.1:0".into(),
            max_batch_bytes: 256 * 1024,
            db_pool_size: 10,
            scheduler_interval_ms: 200,
            kafka_properties: None,
            clock_offset_seconds: 0,
            integrity_similarity_threshold: None,
            // Every role the tests start signs audit checkpoints with this key (subprocesses get
            // it in their environment, see `process_command`).
            audit_signing_key: Some(AuditKeySeed(TEST_AUDIT_KEY.into())),
            // Everything else as in production (rate limits, caps, timeouts included).
            ..Config::defaults()
        };
        clarity_cli::migrate(&config)
            .await
            .context("migrating the test database")?;
        config
            .kafka()
            .ensure_topics()
            .await
            .context("creating topics (is the broker running? use scripts/test)")?;
        let pool = clarity_cli::connect(&config).await?;
        let state = AppState::new(pool.clone(), config.clone())?;
        clarity_cli::seed::seed(&state.app).await?;
        Ok(Self { config, pool, id })
    }

    /// Starts the API in-process on a free port.
    pub async fn spawn_api(&self) -> anyhow::Result<Running> {
        self.spawn_api_with(self.config.clone()).await
    }

    /// Starts the API in-process with a modified configuration.
    pub async fn spawn_api_with(&self, config: Config) -> anyhow::Result<Running> {
        self.spawn_api_at("127.0.0.1:0", config).await
    }

    /// Starts the API in-process listening on `address` (e.g. `0.0.0.0:0` to be reached on
    /// another interface than loopback); `base` names 127.0.0.1 and the port.
    pub async fn spawn_api_at(&self, address: &str, config: Config) -> anyhow::Result<Running> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let state = AppState::new(self.pool.clone(), config)?;
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        let handle = tokio::spawn(async move { clarity_cli::serve_on(listener, state, s).await });
        Ok(Running {
            base,
            shutdown,
            handle,
        })
    }

    /// Starts the relay in-process.
    pub fn spawn_relay(&self) -> Running {
        let (config, shutdown) = (self.config.clone(), CancellationToken::new());
        let s = shutdown.clone();
        let handle = tokio::spawn(async move { clarity_cli::relay(&config, s).await });
        Running {
            base: String::new(),
            shutdown,
            handle,
        }
    }

    /// Starts every projection consumer in-process.
    pub fn spawn_consumers(&self) -> Running {
        self.spawn_consumers_with(self.config.clone())
    }

    /// Starts every projection consumer in-process with a modified configuration (e.g. another
    /// keyframe interval).
    pub fn spawn_consumers_with(&self, config: Config) -> Running {
        let (config, pool, shutdown) = (config, self.pool.clone(), CancellationToken::new());
        let s = shutdown.clone();
        let handle =
            tokio::spawn(
                async move { clarity_cli::consume(&config, pool, &Projection::ALL, s).await },
            );
        Running {
            base: String::new(),
            shutdown,
            handle,
        }
    }

    /// Starts `clarity <args>` as a subprocess with this environment's configuration.
    pub fn spawn_process(
        &self,
        args: &[&str],
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<tokio::process::Child> {
        Ok(self.process_command(args, extra_env)?.spawn()?)
    }

    /// Like [`TestEnv::spawn_process`], with the process's log (`RUST_LOG=info` unless
    /// `extra_env` says otherwise) appended to `log`.
    pub fn spawn_process_logged(
        &self,
        args: &[&str],
        extra_env: &[(&str, String)],
        log: &std::path::Path,
    ) -> anyhow::Result<tokio::process::Child> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut cmd = self.process_command(args, &[])?;
        cmd.env("RUST_LOG", "info,sqlx=warn,rdkafka=warn")
            .env("NO_COLOR", "1")
            .stderr(file.try_clone()?)
            .stdout(file);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Ok(cmd.spawn()?)
    }

    /// Starts `clarity runner` over the repository's catalogue and prepared toolchains, its runs
    /// under uids `uid_base..uid_base+1`, its jobs leased for `lease_seconds`, its log in `log`.
    pub fn spawn_runner(
        &self,
        uid_base: u32,
        lease_seconds: u64,
        log: &std::path::Path,
    ) -> anyhow::Result<tokio::process::Child> {
        let root = workspace_root();
        let runs = std::env::temp_dir().join(format!("clarity-test-runs-{uid_base}"));
        let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
        self.spawn_process_logged(
            &[
                "runner",
                "--catalogue",
                &path(root.join("catalogue")),
                "--toolchains",
                &path(root.join(".clarity/toolchains")),
                "--harness",
                &path(root.join("runner/harness")),
                "--runs-dir",
                &path(runs),
                "--uid-base",
                &uid_base.to_string(),
                "--concurrency",
                "1",
                "--lease-seconds",
                &lease_seconds.to_string(),
            ],
            &[],
            log,
        )
    }

    /// Runs `clarity <args>` to completion with this environment's configuration (plus
    /// `extra_env`) and returns its exit status and output, as an operator would see them.
    pub async fn run_cli(
        &self,
        args: &[&str],
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<CliRun> {
        let mut cmd = self.process_command(args, extra_env)?;
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = cmd.output().await?;
        Ok(CliRun {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    fn process_command(
        &self,
        args: &[&str],
        extra_env: &[(&str, String)],
    ) -> anyhow::Result<tokio::process::Command> {
        let c = &self.config;
        let mut cmd = tokio::process::Command::new(clarity_binary()?);
        cmd.args(args)
            .env("DATABASE_URL", &c.database_url)
            .env("KAFKA_BROKERS", &c.kafka_brokers)
            .env("CLARITY_TOPIC_ASSESSMENTS", &c.topic_assessments)
            .env("CLARITY_TOPIC_SESSIONS", &c.topic_sessions)
            .env("CLARITY_GROUP_PREFIX", &c.group_prefix)
            .env("CLARITY_TOPIC_PARTITIONS", c.topic_partitions.to_string())
            .env(
                "CLARITY_SCHEDULER_INTERVAL_MS",
                c.scheduler_interval_ms.to_string(),
            )
            .env(
                "CLARITY_EXPIRY_GRACE_SECONDS",
                c.expiry_grace_seconds.to_string(),
            )
            .env(
                clarity_projections::audit_chain::SIGNING_KEY_ENV,
                TEST_AUDIT_KEY,
            )
            .env(
                "RUST_LOG",
                std::env::var("CLARITY_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Ok(cmd)
    }

    /// Polls `sql` (a single bigint/bool-returning query) until `done` says so, or fails after
    /// 120 s (generous: CI machines have two cores and run tests in parallel).
    pub async fn wait_for<T>(
        &self,
        what: &str,
        sql: &str,
        done: impl Fn(&T) -> bool,
    ) -> anyhow::Result<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + Send
            + Unpin
            + std::fmt::Debug,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            // A row that does not exist yet (a projection has not created it) is "not yet".
            let value: Option<T> = sqlx::query_scalar(sql).fetch_optional(&self.pool).await?;
            let value = match value {
                Some(v) if done(&v) => return Ok(v),
                other => other,
            };
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("timed out waiting for {what}; last value {value:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A finished `clarity` command.
#[derive(Debug)]
pub struct CliRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Path of the `clarity` binary built by `cargo build -p clarity-cli` (scripts/test builds it).
pub fn clarity_binary() -> anyhow::Result<std::path::PathBuf> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/clarity");
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: run `cargo build -p clarity-cli` (scripts/test does)",
        bin.display()
    );
    Ok(bin)
}

/// A role running in-process.
pub struct Running {
    pub base: String,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Graceful stop.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.handle.await?
    }

    /// Abrupt stop: the task is dropped wherever it is.
    pub fn abort(self) {
        self.handle.abort();
    }
}

/// The workspace root (the repository checkout the tests run from).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The interpreter of the foreign clients' virtualenv (`tests/foreign/requirements.txt`:
/// the topic validator, schemathesis): `CLARITY_TEST_PYTHON`, default `.clarity/venv/bin/python`,
/// or a failure saying how to make it. Tests that need it fail without it; they never skip.
pub fn foreign_python() -> anyhow::Result<std::path::PathBuf> {
    let python = std::env::var_os("CLARITY_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".clarity/venv/bin/python"));
    anyhow::ensure!(
        python.exists(),
        "{} is missing: create the foreign-client venv with \
         `source scripts/python.sh && ensure_python_deps`, \
         or point CLARITY_TEST_PYTHON at a Python with tests/foreign/requirements.txt installed",
        python.display()
    );
    Ok(python)
}

/// A TCP port that was free a moment ago (for a `clarity serve` subprocess to listen on).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs a headless-browser spec (`tests/browser/<name>`, a plain Node script using Debian's
/// chromium and playwright-core, which scripts/test installs) with the given environment, and
/// fails unless every check passed. Returns its output.
pub async fn run_browser_spec(name: &str, vars: &[(&str, &str)]) -> anyhow::Result<String> {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser")
        .join(name);
    let mut command = tokio::process::Command::new("node");
    command.arg(&spec);
    for (k, v) in vars {
        command.env(k, v);
    }
    let output = command.output().await.map_err(|e| {
        anyhow::anyhow!(
            "running node {} (scripts/test installs Node deps and chromium): {e}",
            spec.display()
        )
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success() && stdout.contains(" passed, 0 failed"),
        "browser spec {name} failed:\n{stdout}\n{stderr}"
    );
    Ok(stdout)
}
