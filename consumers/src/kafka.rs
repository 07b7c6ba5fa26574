//! Broker connection settings, producers and topic administration.

use std::time::Duration;

use clarity_projections::Feed;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
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
    /// Extra librdkafka properties applied to every client after Clarity's own (security
    /// settings of a production cluster, tuning). Later entries win.
    pub properties: Vec<(String, String)>,
}

/// Applies the operator's extra librdkafka properties last, so they win over Clarity's own.
pub trait Overrides {
    fn overridden(&mut self, kafka: &KafkaSettings) -> &mut Self;
}

impl Overrides for ClientConfig {
    fn overridden(&mut self, kafka: &KafkaSettings) -> &mut Self {
        for (key, value) in &kafka.properties {
            self.set(key, value);
        }
        self
    }
}

/// Parses `key=value` pairs separated by commas or newlines (`CLARITY_KAFKA_PROPERTIES`).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("`{pair}` is not a `key=value` librdkafka property")),
        })
        .collect()
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

    /// A consumer that reads without a group's commits (`<group prefix>.<purpose>.<random>`,
    /// from the earliest offset, 50 ms fetch wait): for rebuilds, verification and baselines
    /// that assign partitions themselves.
    pub fn reader(&self, purpose: &str) -> rdkafka::error::KafkaResult<StreamConsumer> {
        self.client_config()
            .set(
                "group.id",
                format!(
                    "{}.{purpose}.{}",
                    self.group_prefix,
                    uuid::Uuid::new_v4().simple()
                ),
            )
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            .overridden(self)
            .create()
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
            .overridden(self)
            .create()
    }

    /// Creates the topics if they are missing (brokers like Tansu do not auto-create).
    pub async fn ensure_topics(&self) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().overridden(self).create()?;
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

/// Every record with `key` on `topic`, in partition order, from the beginning to the end the
/// topic had when called (used by `clarity verify session` to compare the store with the log).
/// Scans all partitions: a verification tool, not a hot path.
pub async fn read_key(
    kafka: &KafkaSettings,
    topic: &str,
    key: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    use rdkafka::Message;
    let consumer = kafka.reader("verify")?;
    let (mut ends, _) = crate::projection_runner::assign_from_beginning(&consumer, topic)?;
    let mut out = Vec::new();
    while !ends.is_empty() {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| anyhow::anyhow!("timed out reading {topic}"))??;
        let (partition, offset) = (message.partition(), message.offset());
        if message.key() == Some(key.as_bytes()) {
            if let Some(payload) = message.payload() {
                out.push(payload.to_vec());
            }
        }
        if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&partition);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_properties;

    #[test]
    fn properties_are_key_value_pairs_separated_by_commas_or_lines() {
        let parsed = parse_properties(
            "security.protocol=SASL_SSL, sasl.password = a=b\nfetch.wait.max.ms=200,",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                ("security.protocol".to_string(), "SASL_SSL".to_string()),
                ("sasl.password".to_string(), "a=b".to_string()),
                ("fetch.wait.max.ms".to_string(), "200".to_string()),
            ]
        );
        assert!(parse_properties("acks").is_err());
        assert!(parse_properties("=1").is_err());
        assert_eq!(parse_properties("  ").unwrap(), vec![]);
    }
}
