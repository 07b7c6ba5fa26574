//! The runner's side of the quarantine (decision 0017): which records of a batch wait behind a
//! set-aside record of their stream, and the `projection_rejects` rows, with the record itself.

use std::collections::HashMap;

use clarity_domain::wire::{StreamKind, WireEvent};
use clarity_projections::Projection;
use sqlx::PgConnection;

use super::RawRecord;

/// The stream (session or assessment id) a record belongs to, when it decoded.
fn stream_of(raw: &RawRecord) -> Option<uuid::Uuid> {
    raw.decoded
        .as_ref()
        .ok()
        .and_then(|e| e.subject.parse::<uuid::Uuid>().ok())
}

/// Where a set-aside record was: topic, partition, offset, and its stream kind and sequence when
/// known.
type SetAsideAt = (String, i32, i64, Option<(StreamKind, Option<u64>)>);

/// Unresolved quarantined records of a batch's partitions, by stream, as the batch passes them.
pub(super) struct Unresolved {
    /// Per stream: each set-aside record, in order.
    by_stream: HashMap<uuid::Uuid, Vec<SetAsideAt>>,
}

impl Unresolved {
    pub(super) async fn load(
        tx: &mut PgConnection,
        projection: Projection,
        topics: &[String],
        partitions: &[i32],
    ) -> Result<Self, sqlx::Error> {
        let rows: Vec<(uuid::Uuid, String, i32, i64, Option<String>, Option<i64>)> =
            sqlx::query_as(
                "SELECT r.session_id, r.topic, r.partition, r.\"offset\", r.stream_kind, r.sequence
               FROM projection_rejects r
               JOIN unnest($2::text[], $3::int[]) AS u(t, p) ON r.topic = u.t AND r.partition = u.p
              WHERE r.projection = $1 AND r.resolved_at IS NULL AND r.session_id IS NOT NULL
              ORDER BY r.topic, r.partition, r.\"offset\"",
            )
            .bind(projection.name())
            .bind(topics)
            .bind(partitions)
            .fetch_all(&mut *tx)
            .await?;
        let mut by_stream: HashMap<uuid::Uuid, Vec<_>> = HashMap::new();
        for (stream, topic, partition, offset, kind, sequence) in rows {
            by_stream.entry(stream).or_default().push((
                topic,
                partition,
                offset,
                kind.as_deref()
                    .map(|k| (kind_named(k), sequence.and_then(|s| u64::try_from(s).ok()))),
            ));
        }
        Ok(Self { by_stream })
    }

    /// Notes a record set aside in this batch.
    pub(super) fn add(&mut self, raw: &RawRecord) {
        if let Some(stream) = stream_of(raw) {
            let kind = raw
                .decoded
                .as_ref()
                .ok()
                .map(|e| (e.streamkind, Some(e.sequence)));
            self.by_stream.entry(stream).or_default().push((
                raw.topic.clone(),
                raw.partition,
                raw.offset,
                kind,
            ));
        }
    }

    /// The earlier set-aside record of its stream that `raw` must wait behind, if any.
    pub(super) fn blocker(
        &self,
        projection: Projection,
        raw: &RawRecord,
        event: &WireEvent,
    ) -> Option<String> {
        let stream = stream_of(raw)?;
        self.by_stream
            .get(&stream)?
            .iter()
            .find_map(|(t, p, o, kind)| {
                (*t == raw.topic
                    && *p == raw.partition
                    && *o < raw.offset
                    && projection.holds_behind(*kind, (event.streamkind, event.sequence)))
                .then(|| format!("{t}/{p}@{o}"))
            })
    }

    /// Whether `raw` itself was set aside before (a rebuild re-reading it); it no longer waits.
    pub(super) fn take(&mut self, raw: &RawRecord) -> bool {
        let Some(stream) = stream_of(raw) else {
            return false;
        };
        let Some(list) = self.by_stream.get_mut(&stream) else {
            return false;
        };
        let before = list.len();
        list.retain(|(t, p, o, _)| !(*t == raw.topic && *p == raw.partition && *o == raw.offset));
        list.len() != before
    }
}

fn kind_named(name: &str) -> StreamKind {
    if name == "lifecycle" {
        StreamKind::Lifecycle
    } else {
        StreamKind::Telemetry
    }
}

/// Records one set-aside record in `projection_rejects`, with the record itself; `true` when it
/// is newly quarantined (a rebuild meeting it again updates the row and reopens it).
pub(super) async fn set_aside(
    tx: &mut PgConnection,
    projection: Projection,
    raw: &RawRecord,
    kind: &str,
    reason: &str,
    sqlstate: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let event = raw.decoded.as_ref().ok();
    let inserted: bool = sqlx::query_scalar(
        "INSERT INTO projection_rejects (projection, topic, partition, \"offset\", reason, first_reason, kind,
                                         sqlstate, session_id, payload, record_key, headers, record_time,
                                         stream_kind, sequence)
         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (projection, topic, partition, \"offset\") DO UPDATE
             SET kind = EXCLUDED.kind, reason = EXCLUDED.reason, sqlstate = EXCLUDED.sqlstate,
                 refused_at = now(), resolved_at = NULL, resolved_by = NULL, resolution = NULL,
                 payload = coalesce(projection_rejects.payload, EXCLUDED.payload),
                 record_key = coalesce(projection_rejects.record_key, EXCLUDED.record_key),
                 headers = coalesce(projection_rejects.headers, EXCLUDED.headers),
                 record_time = coalesce(projection_rejects.record_time, EXCLUDED.record_time),
                 stream_kind = coalesce(projection_rejects.stream_kind, EXCLUDED.stream_kind),
                 sequence = coalesce(projection_rejects.sequence, EXCLUDED.sequence)
         RETURNING (xmax = 0)",
    )
    .bind(projection.name())
    .bind(&raw.topic)
    .bind(raw.partition)
    .bind(raw.offset)
    .bind(reason)
    .bind(kind)
    .bind(sqlstate)
    // The session (stream) it belongs to, when it decoded: the session's pages say data is
    // held back, and later records of the stream can wait behind it.
    .bind(stream_of(raw))
    .bind(&raw.bytes.payload)
    .bind(raw.bytes.key.as_deref())
    .bind(headers_json(&raw.bytes.headers))
    .bind(
        raw.timestamp_ms
            .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis),
    )
    .bind(event.map(|e| e.streamkind.as_str()))
    // A sequence past bigint (a hostile record) is stored as unknown, never wrapped.
    .bind(event.and_then(|e| i64::try_from(e.sequence).ok()))
    .fetch_one(&mut *tx)
    .await?;
    Ok(inserted)
}

/// Marks the quarantined row of `raw` resolved.
pub(super) async fn resolve(
    tx: &mut PgConnection,
    projection: Projection,
    raw: &RawRecord,
    resolution: &str,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_rejects SET resolved_at = now(), resolved_by = $6, resolution = $5
          WHERE projection = $1 AND topic = $2 AND partition = $3 AND \"offset\" = $4 AND resolved_at IS NULL",
    )
    .bind(projection.name())
    .bind(&raw.topic)
    .bind(raw.partition)
    .bind(raw.offset)
    .bind(resolution)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Record headers as JSON: `[{"key": …, "value": text}]`, or `"value_hex"` when the value is not
/// UTF-8 (`null` without headers).
fn headers_json(headers: &[(String, Option<Vec<u8>>)]) -> Option<serde_json::Value> {
    if headers.is_empty() {
        return None;
    }
    Some(serde_json::Value::Array(
        headers
            .iter()
            .map(|(key, value)| match value {
                None => serde_json::json!({"key": key, "value": null}),
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => serde_json::json!({"key": key, "value": text}),
                    Err(_) => serde_json::json!({"key": key, "value_hex": hex(bytes)}),
                },
            })
            .collect(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
