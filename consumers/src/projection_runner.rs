//! The projection runtime: consumes a topic in a consumer group and applies batches to a read
//! model, with the partition offsets stored in the same PostgreSQL transaction as the rows.
//!
//! PostgreSQL's offsets are the truth. Kafka's committed group offsets are only a hint kept up to
//! date for lag monitoring: after every (re)assignment the runner compares the first record it
//! gets from a partition with the stored offset and seeks when they differ.
//!
//! Rebuilds hold an exclusive advisory lock per projection for their whole run; live batches take
//! the same lock shared (and back off while a rebuild runs), so the two never interleave.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarity_domain::wire::WireEvent;
use clarity_projections::{Projection, ProjectionConfig, ProjectionError, Record};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::kafka::{KafkaSettings, Overrides};

mod set_aside;
use crate::metrics::{
    BATCH_SECONDS, CONSUMER_LAG, PROJECTION_QUARANTINED, PROJECTION_RECORDS, RECORD_AGE_AT_COMMIT,
    RECORD_AGE_AT_FETCH,
};
use set_aside::{resolve, set_aside, Unresolved};

/// Batch sizing for a projection consumer, and what its projections are configured with.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Most records applied in one transaction.
    pub batch_max: usize,
    /// Longest wait for a batch to fill once its first record arrived.
    pub batch_wait: Duration,
    /// Longest time the broker may hold a fetch request open (`fetch.wait.max.ms`).
    pub fetch_wait: Duration,
    /// Passed to every projection the consumer feeds.
    pub projection: ProjectionConfig,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            batch_max: 2000,
            batch_wait: Duration::from_millis(20),
            fetch_wait: Duration::from_millis(50),
            projection: ProjectionConfig::default(),
        }
    }
}

/// A raw record copied out of librdkafka's buffer.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's create time (ms since the epoch), when the broker reports one.
    pub timestamp_ms: Option<i64>,
    /// The record as it was on the topic, kept with it if it is quarantined (Kafka keeps it only
    /// until retention deletes it).
    pub bytes: Arc<RecordBytes>,
    /// The payload decoded, once for all projections of the topic (or why it is not a Clarity
    /// CloudEvent).
    pub decoded: Result<Arc<WireEvent>, String>,
}

/// A record's bytes: payload, key and headers.
#[derive(Debug, Clone, Default)]
pub struct RecordBytes {
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Decodes a record's payload as the runner does (a Clarity CloudEvent, or why not:
/// [`WireEvent::from_payload`]).
pub fn decode(payload: &[u8]) -> Result<Arc<WireEvent>, String> {
    WireEvent::from_payload(payload)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// What happened to a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Committed; this many records were new to the projection (the rest were below the stored offset).
    Applied(usize),
    /// A rebuild holds the projection; try again later.
    RebuildInProgress,
}

struct RunnerContext {
    projection: &'static str,
    reassigned: Arc<AtomicBool>,
}

impl ClientContext for RunnerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    CONSUMER_LAG
                        .with_label_values(&[self.projection, &topic, &partition.to_string()])
                        .set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for RunnerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| e.partition().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                info!(consumer = self.projection, partitions = %partitions(list), "partitions assigned");
                self.reassigned.store(true, Ordering::SeqCst);
            }
            Rebalance::Revoke(list) => {
                info!(consumer = self.projection, partitions = %partitions(list), "partitions revoked");
            }
            Rebalance::Error(error) => {
                warn!(consumer = self.projection, %error, "rebalance failed")
            }
        }
    }
}

pub(crate) fn lock_key(projection: Projection) -> String {
    format!("clarity.projection.{}", projection.name())
}

/// Runs the live consumer of one topic until `shutdown`, feeding every given projection of that
/// topic (one consumer group per topic: the broker serves each record once, not once per
/// projection). Each projection commits its rows and offsets in its own transaction and skips
/// what it already has, so a batch is retried until every projection has it.
pub async fn run(
    pool: PgPool,
    kafka: &KafkaSettings,
    projections: Vec<Projection>,
    config: ConsumerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(feed) = projections.first().map(|p| p.feed()) else {
        return Ok(());
    };
    anyhow::ensure!(
        projections.iter().all(|p| p.feed() == feed),
        "one consumer reads one topic"
    );
    let topic = kafka.topic(feed).to_string();
    let names = projections
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join("+");
    let reassigned = Arc::new(AtomicBool::new(true));
    let context = RunnerContext {
        projection: feed.name(),
        reassigned: reassigned.clone(),
    };
    let mut client_config = kafka.client_config();
    client_config
        .set(
            "group.id",
            format!("{}.{}", kafka.group_prefix, feed.name()),
        )
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "5000")
        .set(
            "fetch.wait.max.ms",
            config.fetch_wait.as_millis().to_string(),
        )
        // Bound librdkafka's read-ahead (default 64 MiB per consumer) so memory stays flat
        // when a projection falls behind.
        .set("queued.max.messages.kbytes", "16384")
        // A crashed member's partitions move to the others after this long.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Also the rebalance timeout: how long a rebalance waits for members to rejoin.
        .set("max.poll.interval.ms", "30000")
        // Partitions added to a live topic (or a topic created after the consumer subscribed)
        // are noticed at the next metadata refresh; the default waits five minutes.
        .set("topic.metadata.refresh.interval.ms", "5000");
    if let Some(instance) = &kafka.instance_id {
        // Static membership: a restarted process with the same instance id gets its partitions
        // back at once, without a rebalance waiting for the old member to be declared dead.
        client_config.set("group.instance.id", format!("{instance}.{}", feed.name()));
    }
    let consumer: StreamConsumer<RunnerContext> = client_config
        .overridden(kafka)
        .create_with_context(context)?;
    consumer.subscribe(&[&topic])?;
    info!(projections = %names, %topic, "projection consumer started");
    let mut synced: HashSet<i32> = HashSet::new();
    while !shutdown.is_cancelled() {
        let Some(mut batch) = next_batch(&consumer, &config, &shutdown).await? else {
            break;
        };
        if reassigned.swap(false, Ordering::SeqCst) {
            synced.clear();
        }
        // First record of a partition since (re)assignment: read from the lowest stored offset
        // of the projections (the others skip what they already have).
        let unsynced: Vec<i32> = batch
            .iter()
            .map(|r| r.partition)
            .filter(|p| !synced.contains(p))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for partition in unsynced {
            let mut stored = i64::MAX;
            for &projection in &projections {
                stored = stored.min(stored_offset(&pool, projection, &topic, partition).await?);
            }
            let first = batch
                .iter()
                .find(|r| r.partition == partition)
                .map(|r| r.offset)
                .unwrap_or(stored);
            if first != stored {
                info!(projections = %names, partition, from = first, to = stored, "seeking to the stored offset");
                consumer.seek(
                    &topic,
                    partition,
                    Offset::Offset(stored),
                    Duration::from_secs(10),
                )?;
                batch.retain(|r| r.partition != partition);
            }
            synced.insert(partition);
        }
        if batch.is_empty() {
            continue;
        }
        observe_ages(&RECORD_AGE_AT_FETCH, &topic, &batch);
        let mut pending = projections.clone();
        let mut backoff = Duration::from_millis(50);
        loop {
            // The projections of a topic apply the batch side by side, each on its own connection.
            let outcomes = futures::future::join_all(
                pending
                    .iter()
                    .map(|&p| apply_batch_pooled(&pool, p, &config.projection, &batch)),
            )
            .await;
            let mut still = Vec::new();
            for (projection, outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Ok(BatchOutcome::Applied(_)) => {}
                    // A rebuild holds this projection: the batch waits for it (the rebuild
                    // covers the topic up to where it started; this consumer resumes after it).
                    Ok(BatchOutcome::RebuildInProgress) => still.push(projection),
                    Err(error) => {
                        warn!(projection = projection.name(), error = %error, "batch failed; retrying");
                        still.push(projection);
                    }
                }
            }
            if still.is_empty() {
                break;
            }
            pending = still;
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        observe_ages(&RECORD_AGE_AT_COMMIT, &topic, &batch);
        let mut next: HashMap<i32, i64> = HashMap::new();
        for r in &batch {
            next.insert(r.partition, r.offset + 1);
        }
        for (partition, offset) in next {
            // Only a hint for lag monitoring; the truth is in PostgreSQL.
            let _ = consumer.store_offset(&topic, partition, offset);
        }
    }
    info!(projections = %names, "projection consumer stopped");
    Ok(())
}

/// Waits for a first record, then gathers more for up to `batch_wait`. `None` on shutdown.
async fn next_batch<C: ConsumerContext + 'static>(
    consumer: &StreamConsumer<C>,
    config: &ConsumerConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Vec<RawRecord>>> {
    let mut batch = Vec::with_capacity(config.batch_max);
    // Consumption errors reported by librdkafka (a partition leader moving, metadata not yet
    // propagated, a broker restarting) are transient: log, back off, keep consuming.
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            m = consumer.recv() => m,
        };
        match first {
            Ok(message) => {
                batch.push(raw(&message));
                break;
            }
            Err(error) => {
                warn!(error = %error, "consumer error; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now() + config.batch_wait;
    while batch.len() < config.batch_max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => batch.push(raw(&message)),
            Ok(Err(error)) => {
                warn!(error = %error, "consumer error; applying what was read so far");
                break;
            }
            Err(_) => break,
        }
    }
    Ok(Some(batch))
}

pub(crate) fn raw<M: Message>(message: &M) -> RawRecord {
    let payload = message.payload().unwrap_or_default();
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    RawRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        decoded: decode(payload),
        bytes: Arc::new(RecordBytes {
            payload: payload.to_vec(),
            key: message.key().map(<[u8]>::to_vec),
            headers,
        }),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Observes each record's age (now minus its create time) in `histogram`.
fn observe_ages(histogram: &prometheus::HistogramVec, topic: &str, batch: &[RawRecord]) {
    let now = now_ms();
    let histogram = histogram.with_label_values(&[topic]);
    for ts in batch.iter().filter_map(|r| r.timestamp_ms) {
        histogram.observe((now - ts).max(0) as f64 / 1000.0);
    }
}

async fn stored_offset(
    pool: &PgPool,
    projection: Projection,
    topic: &str,
    partition: i32,
) -> Result<i64, sqlx::Error> {
    let offset: Option<i64> = sqlx::query_scalar("SELECT next_offset FROM projection_offsets WHERE projection = $1 AND topic = $2 AND partition = $3")
        .bind(projection.name())
        .bind(topic)
        .bind(partition)
        .fetch_optional(pool)
        .await?;
    Ok(offset.unwrap_or(0))
}

async fn apply_batch_pooled(
    pool: &PgPool,
    projection: Projection,
    settings: &ProjectionConfig,
    batch: &[RawRecord],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    apply_batch(&mut conn, projection, settings, batch).await
}

/// Whether PostgreSQL refused the *data* (so retrying the same records can never succeed):
/// SQLSTATE class 22 (data exception: a timestamp out of range, a NUL in text, an invalid
/// escape), 23 (integrity constraint violation) or 54 (program limit exceeded: a value too
/// large). Everything else — a lost connection, a serialization failure, a deadlock, a server
/// shutting down, even an error in our own SQL — is retried: quarantining on those would divert
/// good records during an outage or a bad deploy.
pub fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["22", "23", "54"]
                .iter()
                .any(|class| code.starts_with(class))
        }),
        _ => false,
    }
}

/// A record PostgreSQL refused, as set aside.
type Quarantine = BTreeMap<(String, i32, i64), (String, Option<String>)>;

/// Applies a batch (see [`apply_batch_isolating`]); records PostgreSQL refuses are set aside
/// and the rest applied.
pub async fn apply_batch(
    conn: &mut PgConnection,
    projection: Projection,
    settings: &ProjectionConfig,
    batch: &[RawRecord],
) -> Result<BatchOutcome, sqlx::Error> {
    apply_batch_isolating(conn, projection, settings, batch).await
}

/// Applies a batch; when PostgreSQL refuses its data ([`is_permanent`]), finds the record(s) it
/// refuses by bisection — each half in its own transaction, in order, so what commits is always
/// a prefix of the partition — quarantines them in `projection_rejects` (kind `unappliable`,
/// with the error and SQLSTATE) and applies everything else. One poisoned record costs about
/// log2(batch) extra transactions, and its partition moves on.
async fn apply_batch_isolating(
    conn: &mut PgConnection,
    projection: Projection,
    settings: &ProjectionConfig,
    batch: &[RawRecord],
) -> Result<BatchOutcome, sqlx::Error> {
    let mut quarantine = Quarantine::new();
    let mut applied = 0;
    let mut pending: Vec<&[RawRecord]> = vec![batch];
    while let Some(part) = pending.pop() {
        match apply_once(conn, projection, settings, part, &quarantine).await {
            Ok(BatchOutcome::Applied(n)) => applied += n,
            Ok(BatchOutcome::RebuildInProgress) => return Ok(BatchOutcome::RebuildInProgress),
            Err(error) if is_permanent(&error) => {
                if let [record] = part {
                    let id = (record.topic.clone(), record.partition, record.offset);
                    if quarantine.contains_key(&id) {
                        // Refused even with the record set aside: not the record's data but the
                        // projection's own state. Nothing to isolate; the runner retries with
                        // backoff (and the log says why) rather than looping here.
                        return Err(error);
                    }
                    let sqlstate = match &error {
                        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
                        _ => None,
                    };
                    warn!(projection = projection.name(), topic = %record.topic, partition = record.partition,
                          offset = record.offset, %error, "record refused by PostgreSQL; quarantined");
                    quarantine.insert(
                        (record.topic.clone(), record.partition, record.offset),
                        (format!("cannot be applied: {error}"), sqlstate),
                    );
                    // Apply it again, now set aside: its offset moves on with the rest.
                    pending.push(part);
                } else {
                    let (first, second) = part.split_at(part.len() / 2);
                    pending.push(second);
                    pending.push(first);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(BatchOutcome::Applied(applied))
}

/// Applies a batch in one transaction: skips records below the stored offsets, sets aside (in
/// `projection_rejects`, with the record itself) those that cannot be decoded, those in
/// `quarantine`, and those the projection must hold behind an earlier set-aside record of their
/// stream ([`Projection::holds_behind`]), projects the rest, and stores the new offsets.
async fn apply_once(
    conn: &mut PgConnection,
    projection: Projection,
    settings: &ProjectionConfig,
    batch: &[RawRecord],
    quarantine: &Quarantine,
) -> Result<BatchOutcome, sqlx::Error> {
    let started = Instant::now();
    let mut rejected: BTreeMap<(String, i32, i64), String> = BTreeMap::new();
    loop {
        let mut tx = conn.begin().await?;
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock_shared(hashtext($1))")
                .bind(lock_key(projection))
                .fetch_one(&mut *tx)
                .await?;
        if !locked {
            return Ok(BatchOutcome::RebuildInProgress);
        }
        // Lock the offsets of this batch's partitions only (created at 0 when new, so that even
        // a partition's first batch is serialized): consumers of other partitions commit side by
        // side, while two consumers that briefly both hold a partition during a rebalance apply
        // its records one after the other, and the second skips what the first committed.
        let partitions: Vec<(String, i32)> = batch
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (topics, numbers): (Vec<String>, Vec<i32>) = partitions.into_iter().unzip();
        sqlx::query(
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset)
             SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS u(t, p)
             ON CONFLICT DO NOTHING",
        )
        .bind(projection.name())
        .bind(&topics)
        .bind(&numbers)
        .execute(&mut *tx)
        .await?;
        let stored: HashMap<(String, i32), i64> = sqlx::query_as::<_, (String, i32, i64)>(
            "SELECT o.topic, o.partition, o.next_offset
               FROM projection_offsets o
               JOIN unnest($2::text[], $3::int[]) AS u(t, p) ON o.topic = u.t AND o.partition = u.p
              WHERE o.projection = $1
              ORDER BY o.topic, o.partition
                FOR UPDATE OF o",
        )
        .bind(projection.name())
        .bind(&topics)
        .bind(&numbers)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(t, p, o)| ((t, p), o))
        .collect();
        // What is still quarantined on these partitions (usually nothing): the streams that must
        // wait, and — in a rebuild — records set aside before that now apply.
        let mut waiting = Unresolved::load(&mut tx, projection, &topics, &numbers).await?;
        let mut records = Vec::with_capacity(batch.len());
        let mut set_aside_now: Vec<(&RawRecord, &'static str, String, Option<String>)> = Vec::new();
        let mut resolved_now: Vec<&RawRecord> = Vec::new();
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for raw in batch {
            let key = (raw.topic.clone(), raw.partition);
            if raw.offset < stored.get(&key).copied().unwrap_or(0) {
                continue;
            }
            next.insert(key, raw.offset + 1);
            let id = (raw.topic.clone(), raw.partition, raw.offset);
            if let Some(reason) = rejected.get(&id) {
                waiting.add(raw);
                set_aside_now.push((raw, "undecodable", reason.clone(), None));
                continue;
            }
            if let Some((reason, sqlstate)) = quarantine.get(&id) {
                waiting.add(raw);
                set_aside_now.push((raw, "unappliable", reason.clone(), sqlstate.clone()));
                continue;
            }
            match &raw.decoded {
                Ok(event) => {
                    if let Some(blocker) = waiting.blocker(projection, raw, event) {
                        waiting.add(raw);
                        set_aside_now.push((
                            raw,
                            "held",
                            format!("held behind {blocker}, to keep its stream in order"),
                            None,
                        ));
                        continue;
                    }
                    if waiting.take(raw) {
                        resolved_now.push(raw);
                    }
                    records.push(Record {
                        topic: raw.topic.clone(),
                        partition: raw.partition,
                        offset: raw.offset,
                        event: event.clone(),
                    });
                }
                Err(reason) => {
                    set_aside_now.push((raw, "undecodable", reason.clone(), None));
                }
            }
        }
        // Set aside first, so that the projection sees what waits (the audit chain's holes).
        let mut quarantined: Vec<&'static str> = Vec::new();
        for (raw, kind, reason, sqlstate) in &set_aside_now {
            if *kind != "held" {
                warn!(projection = projection.name(), topic = %raw.topic, partition = raw.partition,
                      offset = raw.offset, kind, %reason, "record set aside");
            }
            if set_aside(&mut tx, projection, raw, kind, reason, sqlstate.as_deref()).await? {
                quarantined.push(kind);
            }
        }
        match projection.apply(settings, &mut tx, &records).await {
            Ok(()) => {}
            Err(ProjectionError::Undecodable {
                topic,
                partition,
                offset,
                reason,
            }) => {
                // Roll back and redo the batch without the record; it is kept for inspection.
                tx.rollback().await?;
                rejected.insert((topic, partition, offset), reason);
                continue;
            }
            Err(ProjectionError::Database(e)) => return Err(e),
        }
        for raw in &resolved_now {
            // Only in a rebuild: a record quarantined before now applies.
            resolve(
                &mut tx,
                projection,
                raw,
                "applied by a rebuild",
                "clarity rebuild",
            )
            .await?;
        }
        for ((topic, partition), offset) in &next {
            sqlx::query(
                "INSERT INTO projection_offsets (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
            )
            .bind(projection.name())
            .bind(topic)
            .bind(partition)
            .bind(offset)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        for kind in quarantined {
            PROJECTION_QUARANTINED
                .with_label_values(&[projection.name(), kind])
                .inc();
        }
        PROJECTION_RECORDS
            .with_label_values(&[projection.name()])
            .inc_by(records.len() as u64);
        BATCH_SECONDS
            .with_label_values(&[projection.name()])
            .observe(started.elapsed().as_secs_f64());
        return Ok(BatchOutcome::Applied(records.len()));
    }
}

/// Assigns every partition of `topic` that holds records to `consumer`, from the beginning (no
/// group offsets). Returns each such partition's end (high watermark) at this moment and the
/// number of records up to those ends: what a read "from offset 0 to now" covers.
pub fn assign_from_beginning<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
) -> rdkafka::error::KafkaResult<(HashMap<i32, i64>, u64)> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    let mut total = 0u64;
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        if high > low {
            ends.insert(partition, high);
            total += (high - low) as u64;
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
    }
    if !ends.is_empty() {
        consumer.assign(&assignment)?;
    }
    Ok((ends, total))
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub records: u64,
    pub elapsed: Duration,
}

/// The progress bar of a rebuild on the terminal, with the `progress` feature (the command
/// line has it); without it, e.g. in a library linked by the HTTP API, nothing is shown.
struct Progress {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    #[cfg(feature = "progress")]
    fn new(show: bool, total: u64, projection: Projection) -> Self {
        use indicatif::{ProgressBar, ProgressStyle};
        let bar = if show {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} records {per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("rebuild {}", projection.name()));
        Self { bar }
    }

    #[cfg(not(feature = "progress"))]
    fn new(_show: bool, _total: u64, _projection: Projection) -> Self {
        Self {}
    }

    fn inc(&self, _records: u64) {
        #[cfg(feature = "progress")]
        self.bar.inc(_records);
    }

    fn finish(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish();
    }
}

/// Rebuilds a projection from offset 0: clears its tables and offsets and re-applies the whole
/// topic up to the end it had when the rebuild started. Live consumers of the projection pause
/// meanwhile and resume from the rebuilt offsets.
pub async fn rebuild(
    database_url: &str,
    kafka: &KafkaSettings,
    projection: Projection,
    settings: &ProjectionConfig,
    show_progress: bool,
) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    let topic = kafka.topic(projection.feed()).to_string();
    let mut conn = PgConnection::connect(database_url).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(lock_key(projection))
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("TRUNCATE {}", projection.tables().join(", ")))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projection_offsets WHERE projection = $1")
        .bind(projection.name())
        .execute(&mut *tx)
        .await?;
    // The quarantine is kept: the rebuild meets each record again and resolves the rows of
    // those that now apply (and re-quarantines the others); a record Kafka no longer has stays
    // quarantined with its stored copy, for `clarity quarantine retry`.
    tx.commit().await?;

    let consumer = kafka.reader(&format!("rebuild.{}", projection.name()))?;
    let (mut ends, total) = assign_from_beginning(&consumer, &topic)?;
    let bar = Progress::new(show_progress, total, projection);
    let mut records = 0u64;
    if !ends.is_empty() {
        let config = ConsumerConfig {
            batch_max: 5000,
            batch_wait: Duration::from_millis(50),
            fetch_wait: Duration::from_millis(50),
            projection: settings.clone(),
        };
        let never = CancellationToken::new();
        while !ends.is_empty() {
            let Some(mut batch) = next_batch(&consumer, &config, &never).await? else {
                break;
            };
            batch.retain(|r| ends.get(&r.partition).is_some_and(|&end| r.offset < end));
            if batch.is_empty() {
                continue;
            }
            apply_batch(&mut conn, projection, settings, &batch).await?;
            records += batch.len() as u64;
            bar.inc(batch.len() as u64);
            for r in &batch {
                if ends
                    .get(&r.partition)
                    .is_some_and(|&end| r.offset + 1 >= end)
                {
                    ends.remove(&r.partition);
                }
            }
        }
    }
    bar.finish();
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(lock_key(projection))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(RebuildReport {
        records,
        elapsed: started.elapsed(),
    })
}
