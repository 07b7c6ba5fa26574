//! Configuration: command-line flags, each with an environment variable, optionally preloaded
//! from a `KEY=VALUE` file named by `CLARITY_CONFIG` (variables already set win over the file).

use std::time::Duration;

use clarity_consumers::projection_runner::ConsumerConfig;
use clarity_consumers::KafkaSettings;
use clarity_projections::audit_chain::AuditConfig;
use clarity_projections::replay::ReplayConfig;
use clarity_projections::replay_engine::KeyframePolicy;
use clarity_projections::ProjectionConfig;

/// Parsed `CLARITY_KAFKA_PROPERTIES`.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaProperties(pub Vec<(String, String)>);

impl std::fmt::Debug for KafkaProperties {
    // Values may be credentials: only the keys are ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}=<redacted>")))
            .finish()
    }
}

fn parse_kafka_properties(text: &str) -> Result<KafkaProperties, String> {
    clarity_consumers::kafka::parse_properties(text).map(KafkaProperties)
}

/// The audit signing key's hex seed (`CLARITY_AUDIT_SIGNING_KEY`), as configured: checked when a
/// role builds its [`AuditConfig`] (an invalid one is logged and signs nothing, as it always did).
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKeySeed(pub String);

impl std::fmt::Debug for AuditKeySeed {
    // A private key: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn parse_audit_key_seed(text: &str) -> Result<AuditKeySeed, String> {
    Ok(AuditKeySeed(text.to_string()))
}

/// Settings shared by every role.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// PostgreSQL connection string.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/clarity"
    )]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic for assessment events.
    #[arg(
        long,
        env = "CLARITY_TOPIC_ASSESSMENTS",
        default_value = "clarity.assessments.v1"
    )]
    pub topic_assessments: String,
    /// Topic for session lifecycle events and telemetry.
    #[arg(
        long,
        env = "CLARITY_TOPIC_SESSIONS",
        default_value = "clarity.sessions.v1"
    )]
    pub topic_sessions: String,
    /// Partitions per topic when Clarity creates them.
    #[arg(long, env = "CLARITY_TOPIC_PARTITIONS", default_value_t = 6)]
    pub topic_partitions: i32,
    /// Replication factor when Clarity creates topics.
    #[arg(long, env = "CLARITY_TOPIC_REPLICATION", default_value_t = 1)]
    pub topic_replication: i32,
    /// Prefix of consumer group ids.
    #[arg(long, env = "CLARITY_GROUP_PREFIX", default_value = "clarity")]
    pub group_prefix: String,
    /// Static consumer-group membership id of this process (e.g. the pod name of a StatefulSet):
    /// stable across restarts and unique among live processes. A restarted consumer then gets its
    /// partitions back immediately instead of after a rebalance.
    #[arg(long, env = "CLARITY_CONSUMER_INSTANCE_ID")]
    pub consumer_instance_id: Option<String>,
    /// If set, `/metrics` requires `Authorization: Bearer <token>`.
    #[arg(long, env = "CLARITY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Reverse proxies / load balancers in front of the API whose `X-Forwarded-For` is believed
    /// (addresses or CIDR ranges, comma-separated). The client is then the right-most address
    /// of that header that is not a trusted proxy; used by the per-address rate limits and the
    /// `/metrics` loopback rule. Empty (the default): the connection's peer is the client.
    #[arg(long, env = "CLARITY_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::client_address::TrustedProxies,
    /// HTTP listen address.
    #[arg(long, env = "CLARITY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Most events in one telemetry batch.
    #[arg(long, env = "CLARITY_MAX_BATCH_EVENTS", default_value_t = 1000)]
    pub max_batch_events: usize,
    /// Largest telemetry batch body, in bytes.
    #[arg(long, env = "CLARITY_MAX_BATCH_BYTES", default_value_t = 1_048_576)]
    pub max_batch_bytes: usize,
    /// How far in the future a client timestamp may be, in seconds.
    #[arg(long, env = "CLARITY_MAX_CLOCK_SKEW_SECONDS", default_value_t = 30)]
    pub max_clock_skew_seconds: i64,
    /// Database pool size per process.
    #[arg(long, env = "CLARITY_DB_POOL_SIZE", default_value_t = 20)]
    pub db_pool_size: u32,
    /// How often the deadline scheduler looks for overdue sessions, in milliseconds.
    #[arg(long, env = "CLARITY_SCHEDULER_INTERVAL_MS", default_value_t = 1000)]
    pub scheduler_interval_ms: u64,
    /// How long after a session's deadline the scheduler expires it, in seconds. Telemetry is
    /// refused from the deadline on, but a batch accepted just before it may still be on its way
    /// to the broker; waiting longer than the producer's message timeout (30 s) guarantees every
    /// accepted event is in the log before `SessionExpired`, so the integrity analysis and the
    /// replay see the candidate's last keystrokes. Raise it with the producer's
    /// `message.timeout.ms`.
    #[arg(long, env = "CLARITY_EXPIRY_GRACE_SECONDS", default_value_t = 35)]
    pub expiry_grace_seconds: u64,
    /// Integrity analysis workers in each `serve` process (0: this process analyses nothing).
    #[arg(long, env = "CLARITY_INTEGRITY_WORKERS", default_value_t = 1)]
    pub integrity_workers: usize,
    /// Similarity threshold for every task, overriding the per-task calibration. Changes the
    /// integrity suite version (so a re-run stores its findings beside the old ones).
    #[arg(long, env = "CLARITY_INTEGRITY_SIMILARITY_THRESHOLD")]
    pub integrity_similarity_threshold: Option<f64>,
    /// Extra librdkafka properties for every Kafka client, `key=value` separated by commas
    /// (e.g. `security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512,...`). Applied after
    /// Clarity's own settings, so they win.
    #[arg(long, env = "CLARITY_KAFKA_PROPERTIES", hide_env_values = true, value_parser = parse_kafka_properties)]
    pub kafka_properties: Option<KafkaProperties>,
    /// Most records a projection applies in one transaction.
    #[arg(long, env = "CLARITY_CONSUMER_BATCH_MAX", default_value_t = 2000)]
    pub consumer_batch_max: usize,
    /// Longest wait for a projection batch to fill once its first record arrived, in milliseconds.
    #[arg(long, env = "CLARITY_CONSUMER_BATCH_WAIT_MS", default_value_t = 20)]
    pub consumer_batch_wait_ms: u64,
    /// Longest time the broker may hold a projection consumer's fetch open, in milliseconds
    /// (bounds how long a new event waits at the broker when traffic is light).
    #[arg(long, env = "CLARITY_CONSUMER_FETCH_WAIT_MS", default_value_t = 50)]
    pub consumer_fetch_wait_ms: u64,
    /// Hex seed (32 bytes) of the Ed25519 key the consumers sign audit checkpoints with (and
    /// `GET /v1/audit/public-key` shows the public half of). Without it the audit chains are still
    /// kept, but no checkpoint is signed and no bundle can be exported.
    #[arg(long, env = "CLARITY_AUDIT_SIGNING_KEY", hide_env_values = true, value_parser = parse_audit_key_seed)]
    pub audit_signing_key: Option<AuditKeySeed>,
    /// The replay stores a keyframe after this many telemetry events (0: never by count); a seek
    /// replays at most this many events past a keyframe.
    #[arg(long, env = "CLARITY_REPLAY_KEYFRAME_EVENTS", default_value_t = 500)]
    pub replay_keyframe_events: u32,
    /// The replay stores a keyframe after this much session time, in milliseconds (0: never by
    /// time), whichever of the two comes first.
    #[arg(long, env = "CLARITY_REPLAY_KEYFRAME_MS", default_value_t = 60_000)]
    pub replay_keyframe_ms: i64,
    /// Producer linger for telemetry, in milliseconds (batches concurrent requests).
    #[arg(long, env = "CLARITY_PRODUCER_LINGER_MS", default_value_t = 2)]
    pub producer_linger_ms: u32,
    /// How long a candidate's session token keeps working after the session ended (submitted or
    /// expired), in seconds: long enough to see the confirmation, short enough that a link found
    /// later opens nothing. Before the start it works until the invitation lapses, while the
    /// session runs until the deadline plus this grace.
    #[arg(
        long,
        env = "CLARITY_CANDIDATE_TOKEN_GRACE_SECONDS",
        default_value_t = 900
    )]
    pub candidate_token_grace_seconds: i64,
    /// Most telemetry events one session may record (the client hears 413
    /// `session_event_limit` beyond it). A 3-hour session of fast typing is about 100,000.
    #[arg(long, env = "CLARITY_MAX_SESSION_EVENTS", default_value_t = 1_000_000)]
    pub max_session_events: i64,
    /// Most telemetry bytes (events as records) one session may record.
    #[arg(long, env = "CLARITY_MAX_SESSION_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_session_bytes: i64,
    /// Largest workspace a session may build (the sum of its files' lengths, in UTF-16 units as
    /// editors count them).
    #[arg(long, env = "CLARITY_MAX_WORKSPACE_UNITS", default_value_t = 4 * 1024 * 1024)]
    pub max_workspace_units: i64,
    /// Most files in one session's workspace.
    #[arg(long, env = "CLARITY_MAX_WORKSPACE_FILES", default_value_t = 500)]
    pub max_workspace_files: usize,
    /// Requests per second each API key may make (sustained); 0 turns the limit off.
    #[arg(long, env = "CLARITY_RATE_STAFF_PER_SECOND", default_value_t = 50.0)]
    pub rate_staff_per_second: f64,
    /// Requests each API key may make in a burst above the sustained rate.
    #[arg(long, env = "CLARITY_RATE_STAFF_BURST", default_value_t = 1000)]
    pub rate_staff_burst: u32,
    /// Requests per second each candidate token may make (sustained); 0 turns the limit off.
    /// An editor sends a telemetry batch every second or so; 20/s leaves room for catching up
    /// after a network outage.
    #[arg(
        long,
        env = "CLARITY_RATE_CANDIDATE_PER_SECOND",
        default_value_t = 20.0
    )]
    pub rate_candidate_per_second: f64,
    /// Requests each candidate token may make in a burst.
    #[arg(long, env = "CLARITY_RATE_CANDIDATE_BURST", default_value_t = 600)]
    pub rate_candidate_burst: u32,
    /// Requests per second one client address may make to the unauthenticated routes (health,
    /// readiness, schemas); 0 turns the limit off.
    #[arg(long, env = "CLARITY_RATE_ADDRESS_PER_SECOND", default_value_t = 10.0)]
    pub rate_address_per_second: f64,
    /// Burst of the per-address limit.
    #[arg(long, env = "CLARITY_RATE_ADDRESS_BURST", default_value_t = 100)]
    pub rate_address_burst: u32,
    /// Refused credentials (401) per second one client address may cause before every request
    /// from it answers 429 for a while; 0 turns the limit off.
    #[arg(long, env = "CLARITY_RATE_FAILURES_PER_SECOND", default_value_t = 0.5)]
    pub rate_failures_per_second: f64,
    /// Refused credentials one client address may cause in a burst.
    #[arg(long, env = "CLARITY_RATE_FAILURES_BURST", default_value_t = 20)]
    pub rate_failures_burst: u32,
    /// Longest a request may take to produce its response, in seconds (503 `timeout` after).
    #[arg(long, env = "CLARITY_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Most replay streams one member may have open at once.
    #[arg(long, env = "CLARITY_MAX_STREAMS_PER_MEMBER", default_value_t = 4)]
    pub max_streams_per_member: usize,
    /// Shifts the application clock by this many seconds. For drills and tests of time-based
    /// behaviour (deadlines) only; never set it in production.
    #[arg(
        long,
        env = "CLARITY_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        hide = true
    )]
    pub clock_offset_seconds: i64,
}

impl Config {
    /// Every setting at its default, as `clarity` would run with no flags (environment variables
    /// still apply): what tests start from before overriding the settings they care about.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        <Defaults as clap::Parser>::parse_from(["clarity"]).config
    }

    /// The broker settings derived from this configuration.
    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.kafka_brokers.clone(),
            assessments_topic: self.topic_assessments.clone(),
            sessions_topic: self.topic_sessions.clone(),
            partitions: self.topic_partitions,
            replication: self.topic_replication,
            group_prefix: self.group_prefix.clone(),
            instance_id: self.consumer_instance_id.clone(),
            properties: self
                .kafka_properties
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_default(),
        }
    }

    /// Batch sizing and fetch settings of the projection consumers, and their projections'
    /// configuration.
    pub fn consumer(&self) -> ConsumerConfig {
        ConsumerConfig {
            batch_max: self.consumer_batch_max.max(1),
            batch_wait: Duration::from_millis(self.consumer_batch_wait_ms),
            fetch_wait: Duration::from_millis(self.consumer_fetch_wait_ms),
            projection: self.projections(),
        }
    }

    /// What the projections are configured with (for consumers, rebuilds and retries). Logs once
    /// per call when no valid signing key is configured.
    pub fn projections(&self) -> ProjectionConfig {
        ProjectionConfig {
            audit: AuditConfig::from_seed_hex(
                self.audit_signing_key.as_ref().map(|s| s.0.as_str()),
            ),
            replay: self.replay_config(),
        }
    }

    /// The replay's keyframe interval (the projection stores by it; seeks are bounded by it).
    pub fn replay_config(&self) -> ReplayConfig {
        ReplayConfig {
            keyframes: KeyframePolicy {
                every_events: self.replay_keyframe_events,
                every_ms: self.replay_keyframe_ms,
            },
        }
    }

    /// The audit checkpoint signing key, if a valid one is configured (without logging: for
    /// the routes that show its public half).
    pub fn audit_signing_key(&self) -> Option<clarity_domain::audit::SigningKey> {
        let seed = self.audit_signing_key.as_ref()?;
        clarity_domain::audit::key_from_seed_hex(seed.0.trim()).ok()
    }

    /// The integrity suite's settings.
    pub fn integrity_settings(&self) -> clarity_integrity::suite::SuiteSettings {
        clarity_integrity::suite::SuiteSettings {
            similarity_threshold: self.integrity_similarity_threshold,
        }
    }

    /// How long after a deadline a session is expired.
    pub fn expiry_grace(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.expiry_grace_seconds.min(86_400) as i64)
    }

    /// The scheduler's polling interval.
    pub fn scheduler_interval(&self) -> Duration {
        Duration::from_millis(self.scheduler_interval_ms)
    }
}

/// Loads `KEY=VALUE` lines from the file named by `CLARITY_CONFIG` into the environment, without
/// overriding variables that are already set. Blank lines and `#` comments are ignored.
pub fn load_config_file() -> std::io::Result<()> {
    let Ok(path) = std::env::var("CLARITY_CONFIG") else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)?;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if std::env::var_os(key).is_none() {
                // SAFETY: called once at start-up, before any thread is spawned.
                unsafe { std::env::set_var(key, value.trim().trim_matches('"')) };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_properties_parse_and_never_print_their_values() {
        let parsed = parse_kafka_properties("sasl.username=clarity,sasl.password=hunter2").unwrap();
        assert_eq!(parsed.0[1], ("sasl.password".into(), "hunter2".into()));
        let shown = format!("{parsed:?}");
        assert!(shown.contains("sasl.password=<redacted>"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("clarity\""),
            "{shown}"
        );
        assert!(parse_kafka_properties("no-equals-sign").is_err());
    }
}
