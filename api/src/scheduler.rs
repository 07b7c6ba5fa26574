//! The deadline scheduler: expires every started session whose deadline has passed, once the
//! expiry grace (`CLARITY_EXPIRY_GRACE_SECONDS`) has passed too: telemetry is refused from the
//! deadline on, and the grace lets every batch accepted before it reach the log first.
//!
//! It reads the event store itself (not a read model), so a deadline that passed while every
//! process was down is acted on at the next start. Several schedulers may run: the aggregate's
//! optimistic concurrency lets exactly one `SessionExpired` through.

use clarity_domain::session::{SessionCommand, SessionError};
use cqrs_es::AggregateError;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::state::{metadata, AppState};

/// Runs until `shutdown`, checking every `config.scheduler_interval()`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let interval = state.config.scheduler_interval();
    while !shutdown.is_cancelled() {
        match expire_overdue(&state).await {
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

/// Expires every overdue session; returns how many this call expired.
pub async fn expire_overdue(state: &AppState) -> anyhow::Result<usize> {
    let overdue: Vec<String> = sqlx::query_scalar(
        "SELECT s.aggregate_id FROM events s
         WHERE s.aggregate_type = 'CandidateSession' AND s.event_type = 'SessionStarted'
           AND (s.payload -> 'SessionStarted' ->> 'deadline')::timestamptz <= $1
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'CandidateSession'
                 AND e.aggregate_id = s.aggregate_id AND e.event_type IN ('SessionSubmitted', 'SessionExpired'))
         LIMIT 500",
    )
    .bind(state.now() - state.config.expiry_grace())
    .fetch_all(&state.pool)
    .await?;
    let mut expired = 0;
    for id in overdue {
        let Ok(session_id) = id.parse::<Uuid>() else {
            continue;
        };
        let session = state
            .load_session(session_id)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let at = state.now();
        let result = state
            .sessions
            .execute_with_metadata(
                &id,
                SessionCommand::Expire { at },
                metadata(session.org_id, "scheduler", at),
            )
            .await;
        match result {
            Ok(()) => expired += 1,
            // Submitted or expired by someone else meanwhile: nothing to do.
            Err(AggregateError::UserError(SessionError::AlreadyFinished(_)))
            | Err(AggregateError::AggregateConflict) => {}
            Err(error) => warn!(%session_id, error = %error, "could not expire session"),
        }
    }
    Ok(expired)
}
