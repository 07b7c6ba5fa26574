//! `clarity quarantine retry`: re-applies quarantined records once their cause is fixed (a
//! migration widening a column, a code fix deployed, a broker limit raised).
//!
//! A projection's records are applied with the projection's own `apply`, as the runner applies
//! them, one stream (session or assessment) of one partition at a time, in offset order, in one
//! transaction that
//! - takes the projection's rebuild lock shared (a running rebuild makes the retry wait for a
//!   later run) and locks the partition's offset row, so the live consumer of that partition
//!   waits rather than interleaving with the late records;
//! - locks the quarantine rows and re-reads them: a row another retry resolved meanwhile is not
//!   applied again (and the projections drop duplicates by stream sequence in any case);
//! - marks each applied row resolved in the same transaction as its rows (who, when, how), or
//!   keeps it with the new error; a refused row stops the rows held behind it, not the others;
//! - lets the projection catch up on what it applied past the late record
//!   ([`Projection::catch_up`]: the audit chain).
//!
//! A relay's events are published again from `events`, one aggregate at a time in sequence
//! order, each acknowledged before the next is sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clarity_projections::{Projection, ProjectionConfig, ProjectionError, Record};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

mod republish;

use super::{Selector, Stage};
use crate::kafka::KafkaSettings;
use crate::projection_runner::{decode, is_permanent, lock_key, RecordBytes};

/// Which records to retry.
#[derive(Debug, Clone)]
pub enum Scope {
    /// These records (and the records held behind each of them).
    Records(Vec<Selector>),
    /// Everything of a session: every projection's records and the relay's events.
    Session(Uuid),
    /// Everything a projection set aside.
    Projection(Projection),
    /// Everything the relay set aside.
    Relay,
}

/// How to retry.
#[derive(Debug, Clone)]
pub struct RetryOptions {
    /// Apply in a transaction and roll it back (projections); check without publishing (relay).
    pub dry_run: bool,
    /// Who retries, recorded on resolved rows.
    pub by: String,
    /// What the projections are configured with (as their live consumers are).
    pub projection: ProjectionConfig,
}

/// What happened to one quarantined record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied and resolved; `caught_up` rows of its stream followed it (the audit chain).
    Applied { caught_up: u64 },
    /// Published and resolved.
    Published,
    /// Dry run: it would apply (its transaction was rolled back).
    WouldApply,
    /// Dry run: it would be sent (nothing was published).
    WouldPublish,
    /// Refused again: still quarantined, with this error.
    StillRefused {
        reason: String,
        sqlstate: Option<String>,
    },
    /// Not tried: it is held behind a record that is still quarantined.
    Waiting { behind: String },
    /// Not tried now (a rebuild is running, the broker is down, …): try again later.
    Skipped { why: String },
    /// Resolved before (by another retry or a rebuild); nothing done.
    AlreadyResolved,
}

impl Outcome {
    /// Whether the record is out of the quarantine (or would be).
    pub fn succeeded(&self) -> bool {
        matches!(
            self,
            Self::Applied { .. }
                | Self::Published
                | Self::WouldApply
                | Self::WouldPublish
                | Self::AlreadyResolved
        )
    }
}

/// One line of a retry's report.
#[derive(Debug, Clone)]
pub struct RetryLine {
    pub id: i64,
    pub stage: Stage,
    pub coordinates: String,
    pub outcome: Outcome,
}

/// Retries the records in `scope`; returns one line per record considered.
pub async fn retry(
    pool: &PgPool,
    kafka: &KafkaSettings,
    scope: &Scope,
    options: &RetryOptions,
) -> anyhow::Result<Vec<RetryLine>> {
    let mut lines = retry_projections(pool, kafka, scope, options).await?;
    lines.extend(republish::retry_relay(pool, kafka, scope, options).await?);
    Ok(lines)
}

/// A `projection_rejects` row.
#[derive(Debug, Clone)]
struct Quarantined {
    id: i64,
    projection: String,
    topic: String,
    partition: i32,
    offset: i64,
    stream: Option<Uuid>,
    kind: String,
    resolved: bool,
}

impl Quarantined {
    fn coordinates(&self) -> String {
        format!("{}/{}@{}", self.topic, self.partition, self.offset)
    }

    fn line(&self, outcome: Outcome) -> RetryLine {
        RetryLine {
            id: self.id,
            stage: Stage::Projection(self.projection.clone()),
            coordinates: self.coordinates(),
            outcome,
        }
    }
}

type QuarantinedRow = (i64, String, String, i32, i64, Option<Uuid>, String, bool);

fn quarantined(row: QuarantinedRow) -> Quarantined {
    let (id, projection, topic, partition, offset, stream, kind, resolved) = row;
    Quarantined {
        id,
        projection,
        topic,
        partition,
        offset,
        stream,
        kind,
        resolved,
    }
}

const COLUMNS: &str =
    "id, projection, topic, partition, \"offset\", session_id, kind, resolved_at IS NOT NULL";

/// The projection rows `scope` selects (resolved ones only when named one by one).
async fn selected(pool: &PgPool, scope: &Scope) -> Result<Vec<Quarantined>, sqlx::Error> {
    let rows: Vec<QuarantinedRow> = match scope {
        Scope::Records(selectors) => {
            let mut rows = Vec::new();
            for selector in selectors {
                let (id, topic, partition, offset) = match selector {
                    Selector::Id(id) => (Some(*id), None, None, None),
                    Selector::Coordinates {
                        topic,
                        partition,
                        offset,
                    } => (None, Some(topic.clone()), Some(*partition), Some(*offset)),
                };
                rows.extend(
                    sqlx::query_as::<_, QuarantinedRow>(&format!(
                        "SELECT {COLUMNS} FROM projection_rejects
                          WHERE id = $1 OR (topic = $2 AND partition = $3 AND \"offset\" = $4)"
                    ))
                    .bind(id)
                    .bind(topic)
                    .bind(partition)
                    .bind(offset)
                    .fetch_all(pool)
                    .await?,
                );
            }
            rows
        }
        Scope::Session(session) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM projection_rejects WHERE session_id = $1 AND resolved_at IS NULL"
            ))
            .bind(session)
            .fetch_all(pool)
            .await?
        }
        Scope::Projection(projection) => {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM projection_rejects WHERE projection = $1 AND resolved_at IS NULL"
            ))
            .bind(projection.name())
            .fetch_all(pool)
            .await?
        }
        Scope::Relay => Vec::new(),
    };
    let mut rows: Vec<Quarantined> = rows.into_iter().map(quarantined).collect();
    rows.sort_by_key(|r| r.id);
    rows.dedup_by_key(|r| r.id);
    Ok(rows)
}

/// A stream of one partition in one projection: the unit a retry applies in order.
type Unit = (String, String, i32, Option<Uuid>, Option<i64>);

fn unit_of(row: &Quarantined) -> Unit {
    (
        row.projection.clone(),
        row.topic.clone(),
        row.partition,
        row.stream,
        // Records of no known stream stand alone.
        row.stream.is_none().then_some(row.id),
    )
}

async fn retry_projections(
    pool: &PgPool,
    kafka: &KafkaSettings,
    scope: &Scope,
    options: &RetryOptions,
) -> anyhow::Result<Vec<RetryLine>> {
    let chosen = selected(pool, scope).await?;
    let whole_streams = !matches!(scope, Scope::Records(_));
    let mut units: BTreeMap<Unit, Vec<Quarantined>> = BTreeMap::new();
    let mut lines = Vec::new();
    for row in chosen {
        if row.resolved {
            lines.push(row.line(Outcome::AlreadyResolved));
            continue;
        }
        units.entry(unit_of(&row)).or_default().push(row);
    }
    for (unit, chosen) in units {
        let Some(projection) = Projection::from_name(&unit.0) else {
            for row in chosen {
                let why = format!("no projection `{}` in this build", row.projection);
                lines.push(row.line(Outcome::Skipped { why }));
            }
            continue;
        };
        let mut conn = pool.acquire().await?;
        lines.extend(
            retry_unit(
                &mut conn,
                kafka,
                projection,
                &unit,
                &chosen,
                whole_streams,
                options,
            )
            .await?,
        );
    }
    Ok(lines)
}

/// Retries the chosen rows of one stream (with the rows held behind them) in one transaction.
async fn retry_unit(
    conn: &mut PgConnection,
    kafka: &KafkaSettings,
    projection: Projection,
    unit: &Unit,
    chosen: &[Quarantined],
    whole_stream: bool,
    options: &RetryOptions,
) -> anyhow::Result<Vec<RetryLine>> {
    let (_, topic, partition, stream, alone) = unit;
    let mut tx = conn.begin().await?;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock_shared(hashtext($1))")
        .bind(lock_key(projection))
        .fetch_one(&mut *tx)
        .await?;
    if !free {
        let why = format!(
            "a rebuild of {} is running; retry after it",
            projection.name()
        );
        return Ok(chosen
            .iter()
            .map(|r| r.line(Outcome::Skipped { why: why.clone() }))
            .collect());
    }
    // The live consumer of this partition waits for us (it locks the same row per batch).
    sqlx::query(
        "SELECT next_offset FROM projection_offsets WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE",
    )
    .bind(projection.name())
    .bind(topic)
    .bind(partition)
    .fetch_optional(&mut *tx)
    .await?;
    // The stream's quarantined rows as they are now, locked: a concurrent retry finished first
    // or waits for this one.
    let current: Vec<Quarantined> = sqlx::query_as::<_, QuarantinedRow>(&format!(
        "SELECT {COLUMNS} FROM projection_rejects
          WHERE projection = $1 AND topic = $2 AND partition = $3
            AND (session_id = $4 OR ($4 IS NULL AND id = $5)) AND resolved_at IS NULL
          ORDER BY \"offset\" FOR UPDATE"
    ))
    .bind(projection.name())
    .bind(topic)
    .bind(partition)
    .bind(stream)
    .bind(alone)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(quarantined)
    .collect();
    let mut lines = Vec::new();
    for row in chosen {
        if !current.iter().any(|c| c.id == row.id) {
            lines.push(row.line(Outcome::AlreadyResolved));
        }
    }
    // Which rows to try: the whole stream, or each chosen row with the rows held right behind it.
    let mut run: Vec<&Quarantined> = Vec::new();
    let mut following = false;
    for row in &current {
        let is_chosen = chosen.iter().any(|c| c.id == row.id);
        if whole_stream || is_chosen || (following && row.kind == "held") {
            run.push(row);
            following = true;
        } else {
            following = false;
        }
    }
    let mut blocked_by: Option<String> = None;
    let mut applied_any = false;
    let mut pending_lines: Vec<RetryLine> = Vec::new();
    for row in &current {
        let in_run = run.iter().any(|r| r.id == row.id);
        if !in_run {
            if row.kind != "held" {
                blocked_by.get_or_insert(row.coordinates());
            }
            continue;
        }
        if row.kind == "held" {
            if let Some(behind) = &blocked_by {
                pending_lines.push(row.line(Outcome::Waiting {
                    behind: behind.clone(),
                }));
                continue;
            }
        }
        let bytes = match stored_copy(&mut tx, kafka, row).await? {
            Ok(bytes) => bytes,
            Err(why) => {
                pending_lines.push(row.line(Outcome::Skipped { why }));
                blocked_by.get_or_insert(row.coordinates());
                continue;
            }
        };
        match apply_late(&mut tx, projection, options, row, &bytes).await {
            Ok(Ok(())) => {
                // `blocked_by` stays: what is held behind an earlier record that is still
                // quarantined keeps waiting for it, whatever applies in between.
                applied_any = true;
                pending_lines.push(row.line(if options.dry_run {
                    Outcome::WouldApply
                } else {
                    Outcome::Applied { caught_up: 0 }
                }));
            }
            Ok(Err((kind, reason, sqlstate))) => {
                sqlx::query(
                    "UPDATE projection_rejects SET kind = $2, reason = $3, sqlstate = $4, retries = retries + 1,
                            refused_at = now()
                      WHERE id = $1",
                )
                .bind(row.id)
                .bind(kind)
                .bind(&reason)
                .bind(&sqlstate)
                .execute(&mut *tx)
                .await?;
                blocked_by.get_or_insert(row.coordinates());
                pending_lines.push(row.line(Outcome::StillRefused { reason, sqlstate }));
            }
            Err(error) => {
                // Not the record's fault (a lost connection, our SQL): nothing is kept.
                drop(tx);
                let why = format!("{error}; nothing was changed, retry later");
                lines.extend(
                    run.iter()
                        .map(|r| r.line(Outcome::Skipped { why: why.clone() })),
                );
                return Ok(lines);
            }
        }
    }
    if applied_any && !options.dry_run {
        if let Some(stream) = stream {
            let caught_up = projection
                .catch_up(&options.projection, &mut tx, *stream, None)
                .await?;
            if let Some(last) = pending_lines
                .iter_mut()
                .rev()
                .find(|l| matches!(l.outcome, Outcome::Applied { .. }))
            {
                last.outcome = Outcome::Applied { caught_up };
            }
        }
    }
    if options.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    lines.extend(pending_lines);
    Ok(lines)
}

/// A refusal: the kind to keep the row as, the error and its SQLSTATE.
type Refusal = (&'static str, String, Option<String>);

/// Applies one quarantined record as the runner would, in a savepoint, after marking its row
/// resolved (so the projection no longer sees it as a hole) and letting the projection catch up
/// to just before it. `Ok(Err(_))` when the record is refused again (the savepoint is undone).
async fn apply_late(
    tx: &mut PgConnection,
    projection: Projection,
    options: &RetryOptions,
    row: &Quarantined,
    bytes: &RecordBytes,
) -> Result<Result<(), Refusal>, ProjectionError> {
    let mut savepoint = tx.begin().await?;
    sqlx::query(
        "UPDATE projection_rejects SET resolved_at = now(), resolved_by = $2,
                resolution = 'applied by clarity quarantine retry'
          WHERE id = $1",
    )
    .bind(row.id)
    .bind(&options.by)
    .execute(&mut *savepoint)
    .await?;
    if let Some(stream) = row.stream {
        projection
            .catch_up(
                &options.projection,
                &mut savepoint,
                stream,
                Some(row.offset),
            )
            .await?;
    }
    let event = match decode(&bytes.payload) {
        Ok(event) => event,
        Err(reason) => {
            savepoint.rollback().await?;
            return Ok(Err(("undecodable", reason, None)));
        }
    };
    let record = Record {
        topic: row.topic.clone(),
        partition: row.partition,
        offset: row.offset,
        event,
    };
    match projection
        .apply(
            &options.projection,
            &mut savepoint,
            std::slice::from_ref(&record),
        )
        .await
    {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(Ok(()))
        }
        Err(ProjectionError::Undecodable { reason, .. }) => {
            savepoint.rollback().await?;
            Ok(Err(("undecodable", reason, None)))
        }
        Err(ProjectionError::Database(error)) if is_permanent(&error) => {
            let sqlstate = match &error {
                sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
                _ => None,
            };
            savepoint.rollback().await?;
            Ok(Err((
                "unappliable",
                format!("cannot be applied: {error}"),
                sqlstate,
            )))
        }
        Err(error) => Err(error),
    }
}

/// The record's stored copy; for a row set aside before copies were kept, the record from Kafka
/// if it still has it (then stored, so the next retry does not need Kafka).
async fn stored_copy(
    tx: &mut PgConnection,
    kafka: &KafkaSettings,
    row: &Quarantined,
) -> anyhow::Result<Result<RecordBytes, String>> {
    let stored: (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT payload, record_key FROM projection_rejects WHERE id = $1")
            .bind(row.id)
            .fetch_one(&mut *tx)
            .await?;
    if let (Some(payload), key) = stored {
        return Ok(Ok(RecordBytes {
            payload,
            key,
            headers: Vec::new(),
        }));
    }
    let Some(bytes) = read_from_kafka(kafka, &row.topic, row.partition, row.offset).await? else {
        return Ok(Err(
            "no stored copy (set aside before copies were kept) and Kafka no longer has it"
                .to_string(),
        ));
    };
    sqlx::query("UPDATE projection_rejects SET payload = $2, record_key = $3 WHERE id = $1")
        .bind(row.id)
        .bind(&bytes.payload)
        .bind(bytes.key.as_deref())
        .execute(&mut *tx)
        .await?;
    Ok(Ok(bytes))
}

/// Reads one record from Kafka by its coordinates; `None` when retention deleted it.
async fn read_from_kafka(
    kafka: &KafkaSettings,
    topic: &str,
    partition: i32,
    offset: i64,
) -> anyhow::Result<Option<RecordBytes>> {
    let consumer = kafka.reader("quarantine")?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    if offset < low || offset >= high {
        return Ok(None);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    consumer.assign(&assignment)?;
    let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await??;
    if message.offset() != offset {
        return Ok(None);
    }
    let raw = crate::projection_runner::raw(&message);
    Ok(Some(Arc::unwrap_or_clone(raw.bytes)))
}
