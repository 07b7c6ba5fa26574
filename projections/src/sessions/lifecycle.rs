//! The lifecycle part of projection `sessions`: the `sessions` row's status, candidate,
//! assessment and times, from the session's lifecycle events (invited, consented, started,
//! submitted, expired, access revoked). Finishing a session also queues its integrity analysis
//! ([`super::integrity::enqueue`]) and its grading ([`super::runs::enqueue`]), in the same
//! transaction. Read with [`list`] and [`find`].

use chrono::{DateTime, Utc};
use clarity_domain::session::SessionEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::held_back::HeldBack;

use super::event_log::lifecycle_counted;
use super::integrity;

/// Applies one lifecycle event that was newly appended to the log (review, scoring and integrity
/// events are recorded by their own parts before this is reached).
pub(super) async fn apply(
    conn: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
    event: SessionEvent,
) -> Result<(), sqlx::Error> {
    lifecycle_counted(conn, id, org_id).await?;
    match &event {
        SessionEvent::SessionSubmitted { through_seq, .. }
        | SessionEvent::SessionExpired { through_seq, .. } => {
            integrity::enqueue(conn, id, org_id, integrity::FINISHED).await?;
            // Graded on what the log reconstructs through the finish's `seq`; a session from
            // before 2026-12 (no `seq`) is graded on the files it submitted.
            super::runs::enqueue(
                conn,
                super::runs::grade_run_id(id),
                id,
                org_id,
                "grade",
                *through_seq,
            )
            .await?;
        }
        _ => {}
    }
    let query = match event {
        SessionEvent::CandidateInvited { candidate, assessment, invite_expires_at, invited_by, at, .. } => {
            sqlx::query(
                "UPDATE sessions SET status = 'invited', candidate_name = $2, candidate_email = $3,
                     candidate_ref = $4, assessment_id = $5, assessment_version = $6, assessment_title = $7,
                     invited_by = $8, invited_at = $9, invite_expires_at = $10
                 WHERE session_id = $1",
            )
            .bind(id)
            .bind(candidate.name)
            .bind(candidate.email)
            .bind(candidate.external_ref)
            .bind(assessment.assessment_id)
            .bind(assessment.version as i32)
            .bind(assessment.title)
            .bind(invited_by)
            .bind(at)
            .bind(invite_expires_at)
        }
        SessionEvent::ConsentRecorded { notice_version, scopes, at, notice_sha256 } => sqlx::query(
            "UPDATE sessions SET status = 'consented', consent_notice = $2, consent_scopes = $3, consented_at = $4,
                 consent_notice_sha256 = $5
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(notice_version)
        .bind(sqlx::types::Json(scopes))
        .bind(at)
        .bind(notice_sha256),
        // The current scopes lose the withdrawn ones (the integrity analysis reads them), and
        // the withdrawal is kept with its time.
        SessionEvent::ConsentWithdrawn { scopes, at } => sqlx::query(
            "UPDATE sessions SET
                 consent_scopes = jsonb_build_object(
                     'keystroke_dynamics', COALESCE((consent_scopes ->> 'keystroke_dynamics')::boolean, false) AND NOT $2,
                     'face_continuity', COALESCE((consent_scopes ->> 'face_continuity')::boolean, false) AND NOT $3),
                 consent_withdrawals = consent_withdrawals || jsonb_build_array(jsonb_build_object('scopes', $4::jsonb, 'at', $5::timestamptz))
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(scopes.keystroke_dynamics)
        .bind(scopes.face_continuity)
        .bind(sqlx::types::Json(scopes))
        .bind(at),
        SessionEvent::ExtraTimeGranted { minutes, deadline, .. } => sqlx::query(
            "UPDATE sessions SET extra_time_minutes = extra_time_minutes + $2,
                 deadline = COALESCE($3, deadline)
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(minutes as i32)
        .bind(deadline),
        SessionEvent::SessionStarted { at, deadline } => sqlx::query(
            "UPDATE sessions SET status = 'in_progress', started_at = $2, deadline = $3 WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(deadline),
        SessionEvent::SessionSubmitted { files_digest, time_used_seconds, at, through_seq, .. } => sqlx::query(
            "UPDATE sessions SET status = 'submitted', submitted_at = $2, files_digest = $3, time_used_seconds = $4,
                 through_seq = $5
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(files_digest)
        .bind(time_used_seconds)
        .bind(through_seq.map(|s| s as i64)),
        SessionEvent::SessionExpired { time_used_seconds, at, through_seq, .. } => sqlx::query(
            "UPDATE sessions SET status = 'expired', expired_at = $2, time_used_seconds = $3, through_seq = $4
             WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(time_used_seconds)
        .bind(through_seq.map(|s| s as i64)),
        SessionEvent::CandidateAccessRevoked { reason, at, .. } => sqlx::query(
            "UPDATE sessions SET access_revoked_at = $2, access_revoked_reason = $3 WHERE session_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(reason),
        // Recorded by `integrity` and `review` before this function is reached.
        _ => return Ok(()),
    };
    query.execute(conn).await?;
    Ok(())
}

/// A session as the `sessions` projection has it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct SessionView {
    pub session_id: Uuid,
    pub status: Option<String>,
    pub assessment_id: Option<Uuid>,
    pub assessment_version: Option<i32>,
    pub assessment_title: Option<String>,
    pub candidate_name: Option<String>,
    pub candidate_email: Option<String>,
    pub candidate_ref: Option<String>,
    pub invited_at: Option<DateTime<Utc>>,
    pub invite_expires_at: Option<DateTime<Utc>>,
    pub consented_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    /// When staff revoked the candidate's access (their link stopped working then), and why.
    pub access_revoked_at: Option<DateTime<Utc>>,
    pub access_revoked_reason: Option<String>,
    pub time_used_seconds: Option<i64>,
    pub files_digest: Option<String>,
    pub lifecycle_events: i64,
    pub telemetry_events: i64,
    pub keystrokes: i64,
    pub edits: i64,
    pub pastes: i64,
    pub focus_losses: i64,
    pub code_runs: i64,
    pub face_checks: i64,
    pub last_seq: i64,
    /// Present while records of this session are held back (quarantined): this view does not
    /// count them yet.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_back: Option<HeldBack>,
}

const SESSION_COLUMNS: &str = "session_id, status, assessment_id, assessment_version, assessment_title, candidate_name,
    candidate_email, candidate_ref, invited_at, invite_expires_at, consented_at, started_at, deadline, submitted_at,
    expired_at, access_revoked_at, access_revoked_reason, time_used_seconds, files_digest, lifecycle_events, telemetry_events, keystrokes, edits, pastes,
    focus_losses, code_runs, face_checks, last_seq";

/// The sessions of organization `org_id`, newest invitation first, optionally of one status and
/// one assessment.
pub async fn list(
    pool: &PgPool,
    org_id: Uuid,
    status: Option<&str>,
    assessment_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<SessionView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE org_id = $1 AND ($2::text IS NULL OR status = $2)
         AND ($3::uuid IS NULL OR assessment_id = $3) ORDER BY invited_at DESC NULLS LAST, session_id LIMIT $4"
    ))
    .bind(org_id)
    .bind(status)
    .bind(assessment_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Session `session_id` of organization `org_id` (`held_back` left for the caller), or `None`.
pub async fn find(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Option<SessionView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = $1 AND org_id = $2"
    ))
    .bind(session_id)
    .bind(org_id)
    .fetch_optional(pool)
    .await
}

/// The status of session `session_id` of organization `org_id`: `None` when the organization has
/// no such session, `Some(None)` before its first lifecycle event is projected.
pub async fn status(
    pool: &PgPool,
    org_id: Uuid,
    session_id: Uuid,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM sessions WHERE session_id = $1 AND org_id = $2")
        .bind(session_id)
        .bind(org_id)
        .fetch_optional(pool)
        .await
}
