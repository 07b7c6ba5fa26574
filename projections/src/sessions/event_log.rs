//! The log part of projection `sessions`: the ordered, de-duplicated per-session event log
//! (`session_events`) and the `sessions` row's counters.
//!
//! The log's order is the partition order (`kafka_offset`); duplicates are dropped by
//! (session, stream kind, sequence). Counters only move for rows actually inserted, so a record
//! seen twice counts once. Telemetry goes in in bulk (one `UNNEST` insert per run of telemetry),
//! lifecycle events one by one. Read with [`page`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit_chain;
use crate::Record;

/// Column-wise buffer for one bulk `UNNEST` insert.
#[derive(Default)]
pub(super) struct TelemetryColumns {
    session_id: Vec<Uuid>,
    org_id: Vec<Uuid>,
    seq: Vec<i64>,
    event_type: Vec<String>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    data: Vec<String>,
    ce_type: Vec<Option<String>>,
    chain_position: Vec<Option<i64>>,
    chain_hash: Vec<Option<String>>,
}

impl TelemetryColumns {
    pub(super) fn push(
        &mut self,
        session_id: Uuid,
        org_id: Uuid,
        record: &Record,
        link: Option<audit_chain::Link>,
    ) {
        let wire = &record.event;
        self.session_id.push(session_id);
        self.org_id.push(org_id);
        self.seq.push(wire.sequence as i64);
        self.event_type
            .push(wire.type_parts().map_or("unknown", |(_, n)| n).to_string());
        self.occurred_at.push(wire.time);
        self.partition.push(record.partition);
        self.offset.push(record.offset);
        self.data.push(wire.data.to_string());
        // The type is kept even when the record is not chained (yet): a chain that waited for a
        // quarantined record chains it later from this row (`audit_chain::extend`).
        self.ce_type.push(Some(wire.event_type.clone()));
        self.chain_position.push(link.as_ref().map(|l| l.position));
        self.chain_hash.push(link.map(|l| l.hash));
    }

    pub(super) async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.session_id.is_empty() {
            return Ok(());
        }
        let cols = std::mem::take(self);
        sqlx::query(
            "WITH input AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::timestamptz[],
                                      $6::int[], $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[])
                     AS t(session_id, org_id, seq, event_type, occurred_at, kafka_partition, kafka_offset, data,
                          ce_type, chain_position, chain_hash)
             ), ins AS (
                 INSERT INTO session_events (session_id, org_id, stream_kind, seq, event_type, occurred_at,
                                             kafka_partition, kafka_offset, data, ce_type, chain_position, chain_hash)
                 SELECT session_id, org_id, 'telemetry', seq, event_type, occurred_at, kafka_partition,
                        kafka_offset, data::json, ce_type, chain_position, chain_hash
                 FROM input ORDER BY kafka_offset
                 ON CONFLICT DO NOTHING
                 RETURNING session_id, org_id, seq, event_type, occurred_at, data
             )
             INSERT INTO sessions AS s (session_id, org_id, telemetry_events, keystrokes, edits, pastes,
                                        focus_losses, code_runs, face_checks, last_seq, first_event_at, last_event_at)
             SELECT session_id, min(org_id::text)::uuid, count(*),
                    count(*) FILTER (WHERE event_type = 'keystroke'),
                    count(*) FILTER (WHERE event_type = 'edit'),
                    count(*) FILTER (WHERE event_type = 'edit' AND data->>'origin' IN ('paste', 'drop')),
                    count(*) FILTER (WHERE event_type = 'focus_lost'),
                    count(*) FILTER (WHERE event_type = 'code_run'),
                    count(*) FILTER (WHERE event_type = 'face_check'),
                    max(seq), min(occurred_at), max(occurred_at)
             FROM ins GROUP BY session_id
             ON CONFLICT (session_id) DO UPDATE SET
                 telemetry_events = s.telemetry_events + EXCLUDED.telemetry_events,
                 keystrokes = s.keystrokes + EXCLUDED.keystrokes,
                 edits = s.edits + EXCLUDED.edits,
                 pastes = s.pastes + EXCLUDED.pastes,
                 focus_losses = s.focus_losses + EXCLUDED.focus_losses,
                 code_runs = s.code_runs + EXCLUDED.code_runs,
                 face_checks = s.face_checks + EXCLUDED.face_checks,
                 last_seq = GREATEST(s.last_seq, EXCLUDED.last_seq),
                 first_event_at = LEAST(s.first_event_at, EXCLUDED.first_event_at),
                 last_event_at = GREATEST(s.last_event_at, EXCLUDED.last_event_at)",
        )
        .bind(&cols.session_id)
        .bind(&cols.org_id)
        .bind(&cols.seq)
        .bind(&cols.event_type)
        .bind(&cols.occurred_at)
        .bind(&cols.partition)
        .bind(&cols.offset)
        .bind(&cols.data)
        .bind(&cols.ce_type)
        .bind(&cols.chain_position)
        .bind(&cols.chain_hash)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Appends a lifecycle event to the log; `false` if it was already there.
pub(super) async fn insert_lifecycle(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    record: &Record,
    link: Option<audit_chain::Link>,
) -> Result<bool, sqlx::Error> {
    let wire = &record.event;
    let inserted = sqlx::query(
        "INSERT INTO session_events (session_id, org_id, stream_kind, seq, event_type, occurred_at,
                                     kafka_partition, kafka_offset, data, ce_type, chain_position, chain_hash)
         VALUES ($1, $2, 'lifecycle', $3, $4, $5, $6, $7, $8::json, $9, $10, $11)
         ON CONFLICT DO NOTHING",
    )
    .bind(session_id)
    .bind(org_id)
    .bind(wire.sequence as i64)
    .bind(wire.type_parts().map_or("unknown", |(_, n)| n))
    .bind(wire.time)
    .bind(record.partition)
    .bind(record.offset)
    .bind(wire.data.to_string())
    .bind(&wire.event_type)
    .bind(link.as_ref().map(|l| l.position))
    .bind(link.map(|l| l.hash))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Counts one more lifecycle event on the session's row (creating it if needed).
pub(super) async fn lifecycle_counted(
    conn: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (session_id, org_id, lifecycle_events) VALUES ($1, $2, 1)
         ON CONFLICT (session_id) DO UPDATE SET lifecycle_events = sessions.lifecycle_events + 1",
    )
    .bind(id)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One entry of the per-session log.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct LogEntry {
    /// `lifecycle` or `telemetry`.
    pub stream_kind: String,
    pub seq: i64,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub data: serde_json::Value,
}

/// A page of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub entries: Vec<LogEntry>,
    /// Pass as `after_offset` to get the next page; absent at the end.
    pub next_after_offset: Option<i64>,
}

/// A page of session `session_id`'s log (of organization `org_id`), after Kafka offset
/// `after_offset` (from the start when `None`), at most `limit` entries. With
/// `blind_to_others_of: Some(member)` (the caller's blind review, decided by the caller) the other
/// reviewers' `CriterionScored` events and the decisions not made by `member` are left out.
pub async fn page(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
    after_offset: Option<i64>,
    limit: i64,
    blind_to_others_of: Option<Uuid>,
) -> Result<LogPage, sqlx::Error> {
    let entries: Vec<LogEntry> = sqlx::query_as(
        "SELECT stream_kind, seq, event_type, occurred_at, kafka_partition, kafka_offset, data FROM session_events
         WHERE session_id = $1 AND org_id = $2 AND kafka_offset > $3
           AND NOT ($5 AND stream_kind = 'lifecycle'
                    AND ((event_type = 'CriterionScored' AND data->>'reviewer' IS DISTINCT FROM $6::text)
                         OR (event_type = 'DecisionRecorded' AND data->>'decided_by' IS DISTINCT FROM $6::text)))
         ORDER BY kafka_offset LIMIT $4",
    )
    .bind(session_id)
    .bind(org_id)
    .bind(after_offset.unwrap_or(-1))
    .bind(limit)
    .bind(blind_to_others_of.is_some())
    .bind(blind_to_others_of.map(|m| m.to_string()).unwrap_or_default())
    .fetch_all(pool)
    .await?;
    let next_after_offset = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.kafka_offset))
        .flatten();
    Ok(LogPage {
        entries,
        next_after_offset,
    })
}
