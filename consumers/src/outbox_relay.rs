//! The outbox relay: publishes every event the event store commits to Kafka, keyed by stream id,
//! in commit order.
//!
//! PostgreSQL assigns identity values when rows are inserted, not when they commit, so a reader
//! polling `position > last` can pass over a row whose transaction commits later. The relay reads
//! only below the **commit horizon** `pg_snapshot_xmin(pg_current_snapshot())`: every transaction
//! with an id below it has finished, so no row can still appear there. Rows are ordered by
//! `(tx_id, position)`; a stream's events are in sequence order because a stream's next event is
//! written by a transaction that started after the previous one committed.
//!
//! Only one relay publishes at a time: the leader holds a session-level advisory lock on its own
//! connection and does every read and checkpoint write on it. If the leader dies, its connection
//! closes, the lock is released, and a standby takes over from the stored checkpoint. The
//! checkpoint advances only after the broker acknowledged every record of a batch; a crash
//! between the two republishes the batch (readers drop duplicates), it never skips.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clarity_domain::wire::WireEvent;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Row};
use tokio_util::sync::CancellationToken;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use crate::kafka::KafkaSettings;
use crate::metrics::{RELAY_PUBLISHED, RELAY_REJECTED};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Advisory lock key shared by every relay process.
const LEADER_LOCK: i64 = 0x636c_6172_6974_7901; // "clarity" + 1

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Checkpoint name; one per relay deployment.
    pub name: String,
    /// Events read and published per round.
    pub batch_size: i64,
    /// Pause when there is nothing to publish.
    pub idle_wait: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "main".into(),
            batch_size: 1000,
            idle_wait: Duration::from_millis(20),
        }
    }
}

/// Errors of one relay round.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("broker refused a record: {0}")]
    Broker(#[from] rdkafka::error::KafkaError),
}

/// Runs the relay until `shutdown`: waits for leadership, then publishes. Connection and broker
/// errors are retried with backoff; the function only returns on shutdown.
pub async fn run(
    database_url: &str,
    kafka: &KafkaSettings,
    config: RelayConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let producer = kafka.producer(5)?;
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match lead(database_url, kafka, &producer, &config, &shutdown).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => {
                warn!(error = %error, "relay round failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    Ok(())
}

/// Acquires leadership (or waits as a standby) and publishes while leader.
async fn lead(
    database_url: &str,
    kafka: &KafkaSettings,
    producer: &FutureProducer,
    config: &RelayConfig,
    shutdown: &CancellationToken,
) -> Result<(), RelayError> {
    let mut conn = PgConnection::connect(database_url).await?;
    loop {
        let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if leader {
            break;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    info!(relay = %config.name, "relay is leader");
    sqlx::query("INSERT INTO relay_checkpoints (relay, tx_id, position) VALUES ($1, '0'::xid8, 0) ON CONFLICT DO NOTHING")
        .bind(&config.name)
        .execute(&mut conn)
        .await?;
    while !shutdown.is_cancelled() {
        let published = publish_batch(&mut conn, kafka, producer, config).await?;
        if published == 0 {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(config.idle_wait) => {}
            }
        }
    }
    // Closing the connection releases the lock for a standby.
    conn.close().await?;
    Ok(())
}

/// Publishes one batch below the commit horizon; returns how many events it passed (published,
/// set aside or held).
///
/// An aggregate with an unresolved reject is held: its later events are recorded in
/// `relay_rejects` as `held` instead of being published past it, so that `clarity quarantine
/// retry` publishes the refused event and then these, in the stream's order. Events are enqueued
/// one by one, so an event librdkafka refuses for its size holds the rest of its aggregate in
/// the same batch too.
#[instrument(skip_all, fields(relay = %config.name), err)]
pub async fn publish_batch(
    conn: &mut PgConnection,
    kafka: &KafkaSettings,
    producer: &FutureProducer,
    config: &RelayConfig,
) -> Result<usize, RelayError> {
    let rows = sqlx::query(
        "SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                e.payload::text AS payload, e.metadata::text AS metadata,
                e.tx_id::text AS tx_id, e.position
         FROM events e, relay_checkpoints c
         WHERE c.relay = $1
           AND (e.tx_id, e.position) > (c.tx_id, c.position)
           AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY e.tx_id, e.position
         LIMIT $2",
    )
    .bind(&config.name)
    .bind(config.batch_size)
    .fetch_all(&mut *conn)
    .await?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let (last_tx, last_position): (String, i64) = (last.get("tx_id"), last.get("position"));

    let mut blocked = blocked_aggregates(conn, &config.name, &rows).await?;
    let mut deliveries = Vec::with_capacity(rows.len());
    let mut rejected: Vec<(usize, String)> = Vec::new();
    let mut held: Vec<usize> = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let aggregate = aggregate_of(row);
        if blocked.contains(&aggregate) {
            held.push(index);
            continue;
        }
        let topic = kafka.topic_for_aggregate(&aggregate.0).to_string();
        let value = match to_wire(row).and_then(|wire| serde_json::to_vec(&wire)) {
            Ok(value) => value,
            // Retrying cannot make a stored event encodable.
            Err(error) => {
                rejected.push((index, format!("cannot be encoded: {error}")));
                blocked.insert(aggregate);
                continue;
            }
        };
        // Enqueue everything, then wait for every acknowledgement. The idempotent producer keeps
        // per-partition order across its internal retries.
        match enqueue(producer, &topic, &aggregate.1, &value).await {
            Ok(delivery) => deliveries.push((index, topic, value.len(), delivery)),
            Err(error) if never_publishable(&error) => {
                rejected.push((index, refusal(value.len(), &error)));
                blocked.insert(aggregate);
            }
            Err(error) => return Err(RelayError::Broker(error)),
        }
    }
    for (index, topic, bytes, delivery) in deliveries {
        match delivery.await {
            Ok(Ok(_)) => RELAY_PUBLISHED.with_label_values(&[&topic]).inc(),
            // The broker refused it after it was sent (its limit is below the producer's): the
            // aggregate's later events of this batch may already be on the topic. Keep the
            // producer's `message.max.bytes` at or below the topics' `max.message.bytes`.
            Ok(Err((error, _))) if never_publishable(&error) => {
                rejected.push((index, refusal(bytes, &error)))
            }
            // Anything else (the broker down, a timeout) is retried: the batch again, from the
            // checkpoint; the records already acknowledged come out twice, never missing.
            Ok(Err((error, _))) => return Err(RelayError::Broker(error)),
            Err(_) => return Err(RelayError::Broker(KafkaError::Canceled)),
        }
    }
    rejected.sort_by_key(|(index, _)| *index);
    for (index, reason) in &rejected {
        set_aside(conn, kafka, config, &rows[*index], reason).await?;
    }
    for index in held {
        let row = &rows[index];
        if hold(conn, config, row).await? {
            continue;
        }
        // What it waited for was published meanwhile (`clarity quarantine retry`, with
        // everything held behind it): it goes next.
        match publish_one(kafka, producer, row).await? {
            Ok(()) => {}
            Err(reason) => set_aside(conn, kafka, config, row, &reason).await?,
        }
    }
    sqlx::query(
        "UPDATE relay_checkpoints SET tx_id = $2::xid8, position = $3, published = published + $4, updated_at = now()
         WHERE relay = $1",
    )
    .bind(&config.name)
    .bind(&last_tx)
    .bind(last_position)
    .bind(rows.len() as i64)
    .execute(&mut *conn)
    .await?;
    Ok(rows.len())
}

/// (aggregate type, aggregate id) of an event row.
fn aggregate_of(row: &PgRow) -> (String, String) {
    (row.get("aggregate_type"), row.get("aggregate_id"))
}

/// The aggregates of `rows` that have an unresolved reject: their events wait behind it.
async fn blocked_aggregates(
    conn: &mut PgConnection,
    relay: &str,
    rows: &[PgRow],
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let (types, ids): (Vec<String>, Vec<String>) = rows.iter().map(aggregate_of).unzip();
    let blocked: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT r.aggregate_type, r.aggregate_id
           FROM relay_rejects r JOIN unnest($2::text[], $3::text[]) AS u(t, i)
             ON r.aggregate_type = u.t AND r.aggregate_id = u.i
          WHERE r.relay = $1 AND r.resolved_at IS NULL",
    )
    .bind(relay)
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(blocked.into_iter().collect())
}

/// Enqueues a record, waiting while librdkafka's queue is full; errors librdkafka raises before
/// sending (a record larger than `message.max.bytes`) come back here, not from the delivery.
async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
) -> Result<DeliveryFuture, KafkaError> {
    let mut record = FutureRecord::to(topic).key(key).payload(value);
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
}

fn refusal(bytes: usize, error: &KafkaError) -> String {
    format!("the broker cannot take it ({bytes} bytes): {error}")
}

/// Publishes one stored event and waits for the acknowledgement: `Ok(Err(reason))` when it can
/// never be published as it is (too large, not encodable); `Err` for anything to retry later.
pub(crate) async fn publish_one(
    kafka: &KafkaSettings,
    producer: &FutureProducer,
    row: &PgRow,
) -> Result<Result<(), String>, RelayError> {
    let aggregate = aggregate_of(row);
    let topic = kafka.topic_for_aggregate(&aggregate.0).to_string();
    let value = match to_wire(row).and_then(|wire| serde_json::to_vec(&wire)) {
        Ok(value) => value,
        Err(error) => return Ok(Err(format!("cannot be encoded: {error}"))),
    };
    let delivery = match enqueue(producer, &topic, &aggregate.1, &value).await {
        Ok(delivery) => delivery,
        Err(error) if never_publishable(&error) => return Ok(Err(refusal(value.len(), &error))),
        Err(error) => return Err(RelayError::Broker(error)),
    };
    match delivery.await {
        Ok(Ok(_)) => {
            RELAY_PUBLISHED.with_label_values(&[&topic]).inc();
            Ok(Ok(()))
        }
        Ok(Err((error, _))) if never_publishable(&error) => Ok(Err(refusal(value.len(), &error))),
        Ok(Err((error, _))) => Err(RelayError::Broker(error)),
        Err(_) => Err(RelayError::Broker(KafkaError::Canceled)),
    }
}

/// Records a stored event the broker can never take (once) and counts it.
async fn set_aside(
    conn: &mut PgConnection,
    kafka: &KafkaSettings,
    config: &RelayConfig,
    row: &PgRow,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let (aggregate_type, aggregate_id) = aggregate_of(row);
    warn!(%aggregate_type, %aggregate_id, sequence = row.get::<i64, _>("sequence"), %reason,
          "stored event set aside; the relay moves on");
    let inserted = sqlx::query(
        "INSERT INTO relay_rejects (relay, aggregate_type, aggregate_id, sequence, tx_id, position, bytes, reason, first_reason)
         VALUES ($1, $2, $3, $4, $5::xid8, $6, $7, $8, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&config.name)
    .bind(&aggregate_type)
    .bind(&aggregate_id)
    .bind(row.get::<i64, _>("sequence"))
    .bind(row.get::<String, _>("tx_id"))
    .bind(row.get::<i64, _>("position"))
    .bind(row.get::<&str, _>("payload").len() as i64)
    .bind(reason)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted > 0 {
        RELAY_REJECTED
            .with_label_values(&[kafka.topic_for_aggregate(&aggregate_type)])
            .inc();
    }
    Ok(())
}

/// Records an event as held behind its aggregate's unresolved reject — if there still is one.
/// The blockers are read with a lock, so a retry publishing them concurrently either finished
/// first (nothing held: the caller publishes the event) or sees this row and publishes it too.
/// `true` when the event is held, or is itself still quarantined (a batch read again after a
/// crash meets its own reject: it stays in the quarantine rather than being published past it).
async fn hold(
    conn: &mut PgConnection,
    config: &RelayConfig,
    row: &PgRow,
) -> Result<bool, sqlx::Error> {
    let (aggregate_type, aggregate_id) = aggregate_of(row);
    let held: Option<i32> = sqlx::query_scalar(
        "WITH blockers AS (
             SELECT sequence FROM relay_rejects
              WHERE relay = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND sequence <= $4
                AND resolved_at IS NULL
                FOR KEY SHARE
         )
         INSERT INTO relay_rejects AS r (relay, aggregate_type, aggregate_id, sequence, tx_id, position, bytes,
                                         reason, first_reason, kind)
         SELECT $1, $2, $3, $4, $5::xid8, $6, $7, m.reason, m.reason, 'held'
           FROM (SELECT format('held behind %s/%s#%s, to keep its stream in order', $2::text, $3::text, min(sequence))
                        AS reason
                   FROM blockers HAVING count(*) > 0) AS m
         ON CONFLICT (relay, aggregate_type, aggregate_id, sequence) DO UPDATE SET refused_at = r.refused_at
         RETURNING 1",
    )
    .bind(&config.name)
    .bind(&aggregate_type)
    .bind(&aggregate_id)
    .bind(row.get::<i64, _>("sequence"))
    .bind(row.get::<String, _>("tx_id"))
    .bind(row.get::<i64, _>("position"))
    .bind(row.get::<&str, _>("payload").len() as i64)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(held.is_some())
}

/// Whether the broker (or librdkafka, before sending) refuses this record for what it is, so that
/// no retry can ever publish it.
fn never_publishable(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::MessageBatchTooLarge
        )
    )
}

pub(crate) fn to_wire(row: &PgRow) -> Result<WireEvent, serde_json::Error> {
    let aggregate_type: String = row.get("aggregate_type");
    let aggregate_id: String = row.get("aggregate_id");
    let event_type: String = row.get("event_type");
    let payload: serde_json::Value = serde_json::from_str(row.get::<&str, _>("payload"))?;
    let metadata: std::collections::HashMap<String, String> =
        serde_json::from_str(row.get::<&str, _>("metadata"))?;
    // cqrs-es stores `{"<EventType>": {...}}`; the wire carries the inner object.
    let data = payload.get(&event_type).cloned().unwrap_or(payload);
    let orgid = metadata.get("org_id").and_then(|s| s.parse::<Uuid>().ok());
    let time = metadata
        .get("time")
        .and_then(|s| s.parse::<DateTime<Utc>>().ok())
        .unwrap_or(DateTime::UNIX_EPOCH);
    Ok(WireEvent::lifecycle(
        &aggregate_type,
        &aggregate_id,
        row.get::<i64, _>("sequence") as u64,
        &event_type,
        row.get::<&str, _>("event_version"),
        orgid,
        time,
        data,
    ))
}
