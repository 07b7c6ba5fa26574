//! Broker connection settings, producers and topic administration.

use std::time::Duration;

use clarity_projections::Feed;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

/// Where the broker is and what the topics are called.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap servers.
    pub brokers: String,
    /// Assessment lifecycle events, keyed by assessment id.
    pub assessments_topic: String,
    /// Candidate session lifecycle events and telemetry, keyed by session id.
    pub sessions_topic: String,
    /// Partitions created for each topic when it does not exist.
    pub partitions: i32,
    /// Replication factor for created topics.
    pub replication: i32,
    /// Prefix of consumer group ids (`<prefix>.<projection>`).
    pub group_prefix: String,
    /// Static group membership id of this consumer process (stable across restarts, unique
    /// among live processes), if any.
    pub instance_id: Option<String>,
}

impl KafkaSettings {
    /// The topic that carries a feed.
    pub fn topic(&self, feed: Feed) -> &str {
        match feed {
            Feed::Assessments => &self.assessments_topic,
            Feed::Sessions => &self.sessions_topic,
        }
    }

    /// The topic an aggregate type's events are published to.
    pub fn topic_for_aggregate(&self, aggregate_type: &str) -> &str {
        match aggregate_type {
            "Assessment" => &self.assessments_topic,
            _ => &self.sessions_topic,
        }
    }

    /// Base client configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("broker.address.family", "v4")
            .set("socket.keepalive.enable", "true");
        config
    }

    /// An idempotent producer (`acks=all`, per-partition order preserved across retries).
    pub fn producer(&self, linger_ms: u32) -> rdkafka::error::KafkaResult<FutureProducer> {
        self.client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", linger_ms.to_string())
            .set("message.timeout.ms", "30000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .create()
    }

    /// Creates the topics if they are missing (brokers like Tansu do not auto-create).
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let topics: Vec<NewTopic<'_>> = [&self.assessments_topic, &self.sessions_topic]
            .into_iter()
            .map(|t| {
                NewTopic::new(
                    t,
                    self.partitions,
                    TopicReplication::Fixed(self.replication),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&topics, &options).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
            }
        }
        Ok(())
    }
}
