//! The deadline scheduler: expires every started session whose deadline has passed, once the
//! expiry grace (`CLARITY_EXPIRY_GRACE_SECONDS`) has passed too: telemetry is refused from the
//! deadline on, and the grace lets every batch accepted before it reach the log first.
//!
//! It reads the event store itself (not a read model), so a deadline that passed while every
//! process was down is acted on at the next start. Several schedulers may run: the aggregate's
//! optimistic concurrency lets exactly one `SessionExpired` through.

use std::time::Duration;

use clarity_app::{Actor, App, CommandError, Origin, SystemRole};
use clarity_domain::session::{SessionCommand, SessionError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

/// When the scheduler looks, and how long it waits past a deadline.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Time between two rounds.
    pub interval: Duration,
    /// How long after its deadline a session is expired.
    pub grace: chrono::Duration,
}

/// Runs until `shutdown`, a round every `config.interval`.
pub async fn run(app: App, config: SchedulerConfig, shutdown: CancellationToken) {
    let interval = config.interval;
    while !shutdown.is_cancelled() {
        match expire_overdue(&app, config.grace).await {
            Ok(0) => {}
            Ok(n) => info!(expired = n, "expired overdue sessions"),
            Err(error) => warn!(error = %error, "deadline scheduler round failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Expires every session overdue by more than `grace`; returns how many this call expired.
pub async fn expire_overdue(app: &App, grace: chrono::Duration) -> anyhow::Result<usize> {
    let overdue: Vec<String> = sqlx::query_scalar(
        "SELECT s.aggregate_id FROM events s
         WHERE s.aggregate_type = 'CandidateSession' AND s.event_type = 'SessionStarted'
           AND (s.payload -> 'SessionStarted' ->> 'deadline')::timestamptz <= $1
           -- extra time granted during the session moves the deadline
           AND NOT EXISTS (SELECT 1 FROM events x WHERE x.aggregate_type = 'CandidateSession'
                 AND x.aggregate_id = s.aggregate_id AND x.event_type = 'ExtraTimeGranted'
                 AND (x.payload -> 'ExtraTimeGranted' ->> 'deadline')::timestamptz > $1)
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'CandidateSession'
                 AND e.aggregate_id = s.aggregate_id AND e.event_type IN ('SessionSubmitted', 'SessionExpired'))
         LIMIT 500",
    )
    .bind(app.now() - grace)
    .fetch_all(app.pool())
    .await?;
    let mut expired = 0;
    for id in overdue {
        let Ok(session_id) = id.parse::<Uuid>() else {
            continue;
        };
        let session = app.load_session(session_id).await?;
        // The submission is what the telemetry acknowledged so far reconstructs.
        let through_seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM telemetry_cursors WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(app.pool())
                .await?;
        let at = app.now();
        let origin = Origin::new(Actor::System(SystemRole::Scheduler), session.org_id, at);
        let result = app
            .execute(
                &origin,
                session_id,
                SessionCommand::Expire {
                    through_seq: Some(through_seq.unwrap_or(0).max(0) as u64),
                    at,
                },
            )
            .await;
        match result {
            Ok(()) => expired += 1,
            // Submitted or expired by someone else meanwhile: nothing to do.
            Err(CommandError::Session(SessionError::AlreadyFinished(_)))
            | Err(CommandError::Conflict) => {}
            Err(error) => warn!(%session_id, error = %error, "could not expire session"),
        }
    }
    Ok(expired)
}
