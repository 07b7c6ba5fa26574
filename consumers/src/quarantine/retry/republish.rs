//! The relay's half of `clarity quarantine retry`: events the broker refused (and those held
//! behind them) are published again from `events`, one aggregate at a time in sequence order,
//! each acknowledged before the next.

use std::collections::BTreeMap;

use sqlx::{Connection, PgConnection, PgPool, Row};

use super::{Outcome, RetryLine, RetryOptions, Scope};
use crate::kafka::KafkaSettings;
use crate::outbox_relay::{publish_one, to_wire};
use crate::quarantine::{Selector, Stage};

/// A `relay_rejects` row.
#[derive(Debug, Clone)]
struct Unpublished {
    id: i64,
    relay: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    kind: String,
    resolved: bool,
}

impl Unpublished {
    fn line(&self, outcome: Outcome) -> RetryLine {
        RetryLine {
            id: self.id,
            stage: Stage::Relay(self.relay.clone()),
            coordinates: format!(
                "{}/{}#{}",
                self.aggregate_type, self.aggregate_id, self.sequence
            ),
            outcome,
        }
    }
}

type UnpublishedRow = (i64, String, String, String, i64, String, bool);

const RELAY_COLUMNS: &str =
    "id, relay, aggregate_type, aggregate_id, sequence, kind, resolved_at IS NOT NULL";

fn unpublished(row: UnpublishedRow) -> Unpublished {
    let (id, relay, aggregate_type, aggregate_id, sequence, kind, resolved) = row;
    Unpublished {
        id,
        relay,
        aggregate_type,
        aggregate_id,
        sequence,
        kind,
        resolved,
    }
}

pub(super) async fn retry_relay(
    pool: &PgPool,
    kafka: &KafkaSettings,
    scope: &Scope,
    options: &RetryOptions,
) -> anyhow::Result<Vec<RetryLine>> {
    let chosen: Vec<Unpublished> = match scope {
        Scope::Records(selectors) => {
            let ids: Vec<i64> = selectors
                .iter()
                .filter_map(|s| match s {
                    Selector::Id(id) => Some(*id),
                    Selector::Coordinates { .. } => None,
                })
                .collect();
            sqlx::query_as::<_, UnpublishedRow>(&format!(
                "SELECT {RELAY_COLUMNS} FROM relay_rejects WHERE id = ANY($1)"
            ))
            .bind(&ids)
            .fetch_all(pool)
            .await?
        }
        Scope::Session(session) => {
            sqlx::query_as(&format!(
                "SELECT {RELAY_COLUMNS} FROM relay_rejects WHERE aggregate_id = $1::text AND resolved_at IS NULL"
            ))
            .bind(session)
            .fetch_all(pool)
            .await?
        }
        Scope::Relay => {
            sqlx::query_as(&format!(
                "SELECT {RELAY_COLUMNS} FROM relay_rejects WHERE resolved_at IS NULL"
            ))
            .fetch_all(pool)
            .await?
        }
        Scope::Projection(_) => Vec::new(),
    }
    .into_iter()
    .map(unpublished)
    .collect();
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let whole_streams = !matches!(scope, Scope::Records(_));
    let mut units: BTreeMap<(String, String, String), Vec<Unpublished>> = BTreeMap::new();
    let mut lines = Vec::new();
    for row in chosen {
        if row.resolved {
            lines.push(row.line(Outcome::AlreadyResolved));
            continue;
        }
        units
            .entry((
                row.relay.clone(),
                row.aggregate_type.clone(),
                row.aggregate_id.clone(),
            ))
            .or_default()
            .push(row);
    }
    let producer = kafka.producer(0)?;
    for (unit, chosen) in units {
        let mut conn = pool.acquire().await?;
        lines.extend(
            republish_unit(
                &mut conn,
                kafka,
                &producer,
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

/// Publishes the chosen events of one aggregate (with the events held behind them), in sequence
/// order, each acknowledged before the next.
async fn republish_unit(
    conn: &mut PgConnection,
    kafka: &KafkaSettings,
    producer: &rdkafka::producer::FutureProducer,
    (relay, aggregate_type, aggregate_id): &(String, String, String),
    chosen: &[Unpublished],
    whole_stream: bool,
    options: &RetryOptions,
) -> anyhow::Result<Vec<RetryLine>> {
    let mut tx = conn.begin().await?;
    // First lock the unresolved rows, then read them afresh: the relay records an event as held
    // only while it can lock an unresolved row of its aggregate, so an event it holds while we
    // publish is either visible here or published by the relay itself after we commit.
    sqlx::query(
        "SELECT id FROM relay_rejects WHERE relay = $1 AND aggregate_type = $2 AND aggregate_id = $3
            AND resolved_at IS NULL FOR UPDATE",
    )
    .bind(relay)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(&mut *tx)
    .await?;
    let current = sqlx::query(
        "SELECT r.id, r.relay, r.kind, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                e.payload::text AS payload, e.metadata::text AS metadata, e.tx_id::text AS tx_id, e.position
           FROM relay_rejects r
           JOIN events e ON e.aggregate_type = r.aggregate_type AND e.aggregate_id = r.aggregate_id
                        AND e.sequence = r.sequence
          WHERE r.relay = $1 AND r.aggregate_type = $2 AND r.aggregate_id = $3 AND r.resolved_at IS NULL
          ORDER BY r.sequence",
    )
    .bind(relay)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut lines = Vec::new();
    for row in chosen {
        if !current.iter().any(|c| c.get::<i64, _>("id") == row.id) {
            lines.push(row.line(Outcome::AlreadyResolved));
        }
    }
    let mut following = false;
    let mut blocked_by: Option<String> = None;
    for event in &current {
        let row = Unpublished {
            id: event.get("id"),
            relay: event.get("relay"),
            aggregate_type: event.get("aggregate_type"),
            aggregate_id: event.get("aggregate_id"),
            sequence: event.get("sequence"),
            kind: event.get("kind"),
            resolved: false,
        };
        let is_chosen = chosen.iter().any(|c| c.id == row.id);
        let in_run = whole_stream || is_chosen || (following && row.kind == "held");
        following = in_run;
        let coordinates = row.line(Outcome::Published).coordinates;
        if !in_run {
            blocked_by.get_or_insert(coordinates);
            continue;
        }
        if let (Some(behind), "held") = (&blocked_by, row.kind.as_str()) {
            lines.push(row.line(Outcome::Waiting {
                behind: behind.clone(),
            }));
            continue;
        }
        if options.dry_run {
            let outcome = match to_wire(event).and_then(|w| serde_json::to_vec(&w)) {
                Ok(_) => Outcome::WouldPublish,
                Err(error) => Outcome::StillRefused {
                    reason: format!("cannot be encoded: {error}"),
                    sqlstate: None,
                },
            };
            lines.push(row.line(outcome));
            continue;
        }
        match publish_one(kafka, producer, event).await {
            Ok(Ok(())) => {
                sqlx::query(
                    "UPDATE relay_rejects SET resolved_at = now(), resolved_by = $2,
                            resolution = 'published by clarity quarantine retry'
                      WHERE id = $1",
                )
                .bind(row.id)
                .bind(&options.by)
                .execute(&mut *tx)
                .await?;
                lines.push(row.line(Outcome::Published));
            }
            Ok(Err(reason)) => {
                sqlx::query(
                    "UPDATE relay_rejects SET kind = 'unpublishable', reason = $2, retries = retries + 1,
                            refused_at = now()
                      WHERE id = $1",
                )
                .bind(row.id)
                .bind(&reason)
                .execute(&mut *tx)
                .await?;
                blocked_by.get_or_insert(coordinates);
                lines.push(row.line(Outcome::StillRefused {
                    reason,
                    sqlstate: None,
                }));
            }
            Err(error) => {
                // What was published stays marked; the rest waits for another run.
                let why = format!("{error}; retry later");
                blocked_by.get_or_insert(coordinates);
                lines.push(row.line(Outcome::Skipped { why }));
            }
        }
    }
    if options.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(lines)
}
