//! The access audit: who read which candidate's data, and when.
//!
//! Every staff read of a candidate's replay, event log, integrity analysis, copied-code matches or
//! review calls [`record`] once, after the caller passed the role and organization checks and the
//! data was loaded, and **before** the response is returned. Only successful reads are logged: a
//! 401/403, another organization's session (404) or a refused parameter (422) disclosed nothing
//! and leaves no row.
//!
//! If the row cannot be written the read fails with 503 `access_log_unavailable`: an unaudited
//! read must not happen. The table is append-only (a trigger refuses `UPDATE`, `DELETE` and
//! `TRUNCATE`); see `docs/decisions/0011-access-audit.md`.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Member;
use crate::error::{ApiError, Result};

/// A replay read: summary, state at a position, a page of events, a diff (`detail.view` says
/// which, with the request's position or range).
pub const REPLAY_READ: &str = "replay.read";
/// A replay playback stream was opened (logged once per stream).
pub const REPLAY_STREAM: &str = "replay.stream";
/// A page of the raw per-session event log.
pub const SESSION_EVENTS_READ: &str = "session_events.read";
/// A session's integrity analysis.
pub const INTEGRITY_READ: &str = "integrity.read";
/// Two sessions' code side by side (`detail.other_session_id` is the other one).
pub const INTEGRITY_MATCHES_READ: &str = "integrity.matches.read";
/// A session's review (scores, comments, resolutions, decisions).
pub const REVIEW_READ: &str = "review.read";
/// The access log itself was listed (`detail` holds the filters; no `session_id`).
pub const ACCESS_LOG_READ: &str = "access_log.read";
/// A candidate report (current or a served version).
pub const REPORT_READ: &str = "report.read";
/// A session's audit bundle exported through the API.
pub const AUDIT_BUNDLE_EXPORT: &str = "audit_bundle.export";
/// The submitted files were downloaded.
pub const SUBMISSION_DOWNLOAD: &str = "submission.download";

/// Appends one row to `access_log`: `member` (with their current role) performed `action` on
/// `session_id` (if the read is about one session), with the request's parameters in `detail`.
///
/// One cheap `INSERT` (no read-before-write), so it is fine on high-frequency reads such as the
/// replay state during playback. Fails with 503 `access_log_unavailable` when the row cannot be
/// written; callers propagate it with `?` so the data is not returned.
pub async fn record(
    pool: &PgPool,
    member: &Member,
    action: &str,
    session_id: Option<Uuid>,
    detail: Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO access_log (org_id, member_id, role, action, session_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(member.org_id)
    .bind(member.member_id)
    .bind(member.role)
    .bind(action)
    .bind(session_id)
    .bind(detail)
    .execute(pool)
    .await
    .map_err(|e| ApiError::unavailable("access_log_unavailable", e))?;
    Ok(())
}
