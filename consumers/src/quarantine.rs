//! The operator's side of the quarantine (decision 0017): what is held back, each record with its
//! payload, and retrying records once their cause is fixed.
//!
//! Two tables hold quarantined records, numbered from one sequence (`id`):
//! - `projection_rejects`: records a projection could not decode or apply (or held behind one of
//!   those to keep a stream in order), each with a copy of the record as it was on the topic;
//! - `relay_rejects`: stored events the broker refused (or held behind one), which never reached
//!   the topic; the event itself is in `events`.
//!
//! Rows are never deleted: a retry that applies (or publishes) a record marks its row resolved
//! with when, by whom and how, so the evidence stays.

mod retry;

use chrono::{DateTime, Utc};
use clarity_projections::Projection;
use prometheus::IntGaugeVec;
use sqlx::PgPool;
use uuid::Uuid;

pub use retry::{retry, Outcome, RetryLine, RetryOptions, Scope};

/// Which quarantined records an operator means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One record by its `id`.
    Id(i64),
    /// A projection's record(s) at these coordinates (one per projection that set it aside).
    Coordinates {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl std::str::FromStr for Selector {
    type Err = String;

    /// `17` or `topic/partition@offset`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(id) = text.parse::<i64>() {
            return Ok(Self::Id(id));
        }
        let bad = || format!("`{text}` is neither an id nor topic/partition@offset");
        let (left, offset) = text.rsplit_once('@').ok_or_else(bad)?;
        let (topic, partition) = left.rsplit_once('/').ok_or_else(bad)?;
        Ok(Self::Coordinates {
            topic: topic.to_string(),
            partition: partition.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
        })
    }
}

/// Where a quarantined record was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// A projection (by name) could not apply it.
    Projection(String),
    /// The relay (by checkpoint name) could not publish it.
    Relay(String),
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Projection(name) => write!(f, "projection {name}"),
            Self::Relay(name) => write!(f, "relay {name}"),
        }
    }
}

/// How a record left the quarantine.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub at: DateTime<Utc>,
    pub by: String,
    pub how: String,
}

/// One quarantined record, as `clarity quarantine list` shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub stage: Stage,
    /// `topic/partition@offset` (projection) or `Aggregate/id#sequence` (relay).
    pub coordinates: String,
    /// `undecodable`, `unappliable`, `held` (projection); `unpublishable`, `held` (relay).
    pub kind: String,
    pub sqlstate: Option<String>,
    /// The session (or assessment) the record belongs to, when known.
    pub stream: Option<String>,
    pub rejected_at: DateTime<Utc>,
    /// The current error (after the last retry).
    pub reason: String,
    pub retries: i32,
    pub resolved: Option<Resolution>,
}

/// A quarantined record in full, as `clarity quarantine show` shows it.
#[derive(Debug, Clone)]
pub struct Detail {
    pub entry: Entry,
    /// The error when it was first set aside (differs from `reason` after a failed retry).
    pub first_reason: String,
    /// When it was last refused (set aside, or a retry failed).
    pub refused_at: DateTime<Utc>,
    /// The record's key, payload and headers; `None` for a record set aside before copies were
    /// kept (read it from Kafka while it has it).
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Option<serde_json::Value>,
    /// The record's create time on the topic (projection), or the event's stream position
    /// (relay: event type, version, size).
    pub record_time: Option<DateTime<Utc>>,
    pub notes: Vec<String>,
}

type EntryRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    String,
    i32,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
);

/// The quarantined records (unresolved only unless `include_resolved`), optionally of one
/// session, newest first, both tables.
pub async fn list(
    pool: &PgPool,
    session: Option<Uuid>,
    include_resolved: bool,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT id, 'projection ' || projection, topic || '/' || partition || '@' || \"offset\", kind, sqlstate,
                session_id::text, rejected_at, reason, retries, resolved_at, resolved_by, resolution
           FROM projection_rejects
          WHERE ($1::uuid IS NULL OR session_id = $1) AND ($2 OR resolved_at IS NULL)
         UNION ALL
         SELECT id, 'relay ' || relay, aggregate_type || '/' || aggregate_id || '#' || sequence, kind, NULL,
                aggregate_id, rejected_at, reason, retries, resolved_at, resolved_by, resolution
           FROM relay_rejects
          WHERE ($1::uuid IS NULL OR aggregate_id = $1::text) AND ($2 OR resolved_at IS NULL)
          ORDER BY 7 DESC, 1 DESC",
    )
    .bind(session)
    .bind(include_resolved)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(entry).collect())
}

fn entry(row: EntryRow) -> Entry {
    let (id, stage, coordinates, kind, sqlstate, stream, rejected_at, reason, retries, at, by, how) =
        row;
    let stage = match stage.split_once(' ') {
        Some(("relay", name)) => Stage::Relay(name.to_string()),
        Some((_, name)) => Stage::Projection(name.to_string()),
        None => Stage::Projection(stage),
    };
    Entry {
        id,
        stage,
        coordinates,
        kind,
        sqlstate,
        stream,
        rejected_at,
        reason,
        retries,
        resolved: at.map(|at| Resolution {
            at,
            by: by.unwrap_or_default(),
            how: how.unwrap_or_default(),
        }),
    }
}

type ProjectionDetailRow = (
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);

/// The records `selector` names, in full (resolved ones too).
pub async fn show(pool: &PgPool, selector: &Selector) -> Result<Vec<Detail>, sqlx::Error> {
    let (id, topic, partition, offset) = match selector {
        Selector::Id(id) => (Some(*id), None, None, None),
        Selector::Coordinates {
            topic,
            partition,
            offset,
        } => (None, Some(topic.clone()), Some(*partition), Some(*offset)),
    };
    let mut details = Vec::new();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM projection_rejects
          WHERE id = $1 OR (topic = $2 AND partition = $3 AND \"offset\" = $4)
         UNION ALL SELECT id FROM relay_rejects WHERE id = $1
         ORDER BY 1",
    )
    .bind(id)
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    for id in ids {
        let all = list_by_id(pool, id).await?;
        let Some(entry) = all else { continue };
        details.push(match entry.stage {
            Stage::Projection(_) => {
                let (first_reason, payload, key, headers, record_time, refused_at): ProjectionDetailRow =
                    sqlx::query_as(
                        "SELECT first_reason, payload, record_key, headers, record_time, refused_at
                           FROM projection_rejects WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_one(pool)
                    .await?;
                let mut notes = Vec::new();
                if payload.is_none() {
                    notes.push("no stored copy (set aside before copies were kept): the record is in Kafka at these coordinates until retention deletes it".to_string());
                }
                Detail {
                    entry,
                    first_reason,
                    refused_at,
                    key,
                    payload,
                    headers,
                    record_time,
                    notes,
                }
            }
            Stage::Relay(_) => {
                type RelayRow = (
                    String,
                    DateTime<Utc>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<i64>,
                );
                let (first_reason, refused_at, payload, metadata, event_type, version, bytes): RelayRow =
                    sqlx::query_as(
                        "SELECT r.first_reason, r.refused_at, e.payload::text, e.metadata::text, e.event_type,
                                e.event_version, r.bytes
                           FROM relay_rejects r
                           LEFT JOIN events e ON e.aggregate_type = r.aggregate_type
                                AND e.aggregate_id = r.aggregate_id AND e.sequence = r.sequence
                          WHERE r.id = $1",
                    )
                    .bind(id)
                    .fetch_one(pool)
                    .await?;
                let mut notes = vec![format!(
                    "stored event {} v{} ({} bytes as stored); it never reached the topic",
                    event_type.as_deref().unwrap_or("?"),
                    version.as_deref().unwrap_or("?"),
                    bytes.map_or("?".to_string(), |b| b.to_string()),
                )];
                if let Some(metadata) = metadata {
                    notes.push(format!("metadata {metadata}"));
                }
                Detail {
                    entry,
                    first_reason,
                    refused_at,
                    key: None,
                    payload: payload.map(String::into_bytes),
                    headers: None,
                    record_time: None,
                    notes,
                }
            }
        });
    }
    Ok(details)
}

async fn list_by_id(pool: &PgPool, id: i64) -> Result<Option<Entry>, sqlx::Error> {
    let row: Option<EntryRow> = sqlx::query_as(
        "SELECT id, 'projection ' || projection, topic || '/' || partition || '@' || \"offset\", kind, sqlstate,
                session_id::text, rejected_at, reason, retries, resolved_at, resolved_by, resolution
           FROM projection_rejects WHERE id = $1
         UNION ALL
         SELECT id, 'relay ' || relay, aggregate_type || '/' || aggregate_id || '#' || sequence, kind, NULL,
                aggregate_id, rejected_at, reason, retries, resolved_at, resolved_by, resolution
           FROM relay_rejects WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(entry))
}

/// A payload for an operator's terminal: pretty JSON when it is JSON (strings escaped by JSON's
/// rules, so control characters and NULs show as `\u0000`), otherwise the bytes with everything
/// but printable ASCII escaped (`\x00`, `\n`, `\u{…}` are never interpreted by the terminal).
pub fn render_payload(payload: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) {
        if let Ok(pretty) = serde_json::to_string_pretty(&value) {
            return pretty;
        }
    }
    let mut out = String::with_capacity(payload.len());
    for &byte in payload {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

/// Sets `clarity_quarantine_unresolved` from the tables (the truth for every process), keeping a
/// zero for every label set seen before or expected, so that an alert on `> 0` clears.
pub async fn refresh_gauge(pool: &PgPool) -> Result<(), sqlx::Error> {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<[String; 3]>> = Mutex::new(Vec::new());
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT 'projection', projection, kind, count(*) FROM projection_rejects WHERE resolved_at IS NULL GROUP BY 2, 3
         UNION ALL
         SELECT 'relay', relay, kind, count(*) FROM relay_rejects WHERE resolved_at IS NULL GROUP BY 2, 3",
    )
    .fetch_all(pool)
    .await?;
    let mut values: BTreeMap<[String; 3], i64> = BTreeMap::new();
    for projection in Projection::ALL {
        for kind in ["undecodable", "unappliable", "held"] {
            values.insert(
                ["projection".into(), projection.name().into(), kind.into()],
                0,
            );
        }
    }
    for kind in ["unpublishable", "held"] {
        values.insert(["relay".into(), "main".into(), kind.into()], 0);
    }
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    for labels in seen.iter() {
        values.insert(labels.clone(), 0);
    }
    for (stage, name, kind, count) in rows {
        values.insert([stage, name, kind], count);
    }
    let gauge: &IntGaugeVec = &crate::metrics::QUARANTINE_UNRESOLVED;
    for (labels, value) in &values {
        gauge
            .with_label_values(&[&labels[0], &labels[1], &labels[2]])
            .set(*value);
    }
    *seen = values.into_keys().collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selector_is_an_id_or_coordinates() {
        assert_eq!("17".parse::<Selector>(), Ok(Selector::Id(17)));
        assert_eq!(
            "clarity.sessions.v1/4@1200".parse::<Selector>(),
            Ok(Selector::Coordinates {
                topic: "clarity.sessions.v1".into(),
                partition: 4,
                offset: 1200
            })
        );
        assert!("clarity.sessions.v1@1200".parse::<Selector>().is_err());
        assert!("x/y@z".parse::<Selector>().is_err());
    }

    #[test]
    fn payloads_are_shown_as_json_or_escaped_never_raw() {
        // Arrange
        let json = br#"{"data":{"inserted":"nul\u0000byte \u001b[31mred"}}"#;
        let binary = b"\x1b[2J\x00ok\n\xff";

        // Act
        let shown_json = render_payload(json);
        let shown_binary = render_payload(binary);

        // Assert
        assert!(shown_json.contains("\\u0000") && shown_json.contains("\\u001b"));
        assert!(!shown_json.contains('\u{1b}') && !shown_json.contains('\0'));
        assert_eq!(shown_binary, "\\x1b[2J\\x00ok\\n\\xff");
    }
}
