//! "Data held back": what the session's pages say while records of the session are quarantined
//! (decision 0017). Counts, kinds and times only — never the records themselves, which only an
//! operator sees (`clarity quarantine show`).
//!
//! It reads the quarantine tables (`projection_rejects`, `relay_rejects`), which the consumer
//! runtime and the relay write, not a projection: they are the read side's own record of what it
//! does not have yet.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// Records of this session that were acknowledged but are not in the read models yet: a
/// projection could not apply them (or holds them behind one it could not apply, to keep the
/// session in order), or the relay could not publish them. Present only while there are any;
/// they are kept, an operator has been alerted, and they are applied when the cause is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HeldBack {
    /// How many of the session's records are held back.
    pub records: i64,
    /// When the first of them was set aside.
    pub since: DateTime<Utc>,
    /// Always `true`: a held-back record raises the `clarity_quarantine_unresolved` alert.
    pub operator_alerted: bool,
    /// By where they were stopped and why.
    pub by_part: Vec<HeldBackPart>,
    /// A sentence for people.
    pub notice: String,
}

/// Held-back records of one part and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HeldBackPart {
    /// The read model that does not have them (`sessions`: the session, its log, counts,
    /// reviews and report; `replay`: the replay), or `relay` (not published at all, so in no
    /// read model).
    pub part: String,
    /// `unappliable` (the database refused it), `undecodable` (not readable by this version),
    /// `unpublishable` (the broker refused it), or `held` (waits behind one of those, to keep
    /// the session's order).
    pub kind: String,
    pub records: i64,
    pub since: DateTime<Utc>,
}

/// What of `session` is held back now (unresolved quarantine rows), or `None`.
pub async fn for_session(pool: &PgPool, session: Uuid) -> Result<Option<HeldBack>, sqlx::Error> {
    let groups = groups(pool, session).await?;
    let Some(since) = groups.iter().map(|g| g.since).min() else {
        return Ok(None);
    };
    let records: i64 = groups.iter().map(|g| g.records).sum();
    let parts: Vec<&str> = {
        let mut parts: Vec<&str> = groups
            .iter()
            .map(|g| match g.part.as_str() {
                "sessions" => "the session, its log and report",
                "replay" => "the replay",
                "relay" => "any read model (not yet published)",
                other => other,
            })
            .collect();
        parts.dedup();
        parts
    };
    let notice = format!(
        "{records} acknowledged record{} of this session {} held back since {} (not yet in {}). \
         Nothing is lost: {} kept, an operator has been alerted, and {} applied once the cause is fixed.",
        if records == 1 { "" } else { "s" },
        if records == 1 { "is" } else { "are" },
        since.format("%Y-%m-%d %H:%M:%S UTC"),
        parts.join("; "),
        if records == 1 { "it is" } else { "they are" },
        if records == 1 { "it will be" } else { "they will be" },
    );
    Ok(Some(HeldBack {
        records,
        since,
        operator_alerted: true,
        by_part: groups
            .into_iter()
            .map(|g| HeldBackPart {
                part: g.part,
                kind: g.kind,
                records: g.records,
                since: g.since,
            })
            .collect(),
        notice,
    }))
}

/// Unresolved quarantined records of one session, by where they were stopped and kind.
struct Group {
    /// The projection (`sessions`, `replay`) or `relay`.
    part: String,
    kind: String,
    records: i64,
    since: DateTime<Utc>,
}

/// What of `session`'s data is held back (unresolved rows only), by part and kind; empty when
/// nothing is.
async fn groups(pool: &PgPool, session: Uuid) -> Result<Vec<Group>, sqlx::Error> {
    let rows: Vec<(String, String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT projection, kind, count(*), min(rejected_at) FROM projection_rejects
          WHERE session_id = $1 AND resolved_at IS NULL GROUP BY 1, 2
         UNION ALL
         SELECT 'relay', kind, count(*), min(rejected_at) FROM relay_rejects
          WHERE aggregate_type = 'CandidateSession' AND aggregate_id = $1::text AND resolved_at IS NULL
          GROUP BY 1, 2
          ORDER BY 1, 2",
    )
    .bind(session)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(part, kind, records, since)| Group {
            part,
            kind,
            records,
            since,
        })
        .collect())
}
