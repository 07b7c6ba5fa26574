//! Projection `sessions`: everything known about a candidate session outside its replay, from
//! the sessions topic. It is ONE registered projection (one consumer group, one set of offsets,
//! `clarity rebuild sessions`) whose code is split by concern, each part owning its tables:
//!
//! | part | tables | from |
//! |---|---|---|
//! | [`event_log`] | `session_events`, the counters of `sessions` | every record |
//! | [`lifecycle`] | the status, candidate and times of `sessions` | invited … expired, revoked |
//! | [`integrity`] | `integrity_analyses`, `integrity_findings`; queues `integrity_jobs` | `IntegrityAnalysed`, finishing |
//! | [`reviews`] | `review_reviewers`, `review_scores`, `review_comments`, `finding_resolutions`, `decisions` | review events |
//! | [`scores`] | `session_scores`, `score_histogram` | after reviews and analyses |
//! | [`audit_chain`] | the chain columns of `session_events`, `audit_chain_heads`, `audit_checkpoints` | every record |
//!
//! and the queries over them beside their part: [`leaderboard`] (scores), [`audit_trail`] (the
//! audit chain). Why one projection and not six: the parts depend on each other within a batch
//! (scores read reviews and the integrity tier; the integrity job must be queued in the
//! transaction that records the session as finished; the audit chain follows the log's order),
//! and splitting the registration would rename consumer groups and offsets of running
//! deployments. One transaction per batch keeps them consistent with each other.
//!
//! This module only routes each record to its parts, in partition order.

pub mod audit_chain;
pub mod audit_trail;
pub mod event_log;
pub mod integrity;
pub mod leaderboard;
pub mod lifecycle;
pub mod reviews;
pub mod runs;
pub mod scores;

use clarity_domain::session::SessionEvent;
use clarity_domain::wire::StreamKind;
use sqlx::PgConnection;

use crate::{ProjectionConfig, ProjectionError, Record};
use event_log::TelemetryColumns;

/// The tables the projection owns, children first (the order a rebuild clears them in), by part.
pub const TABLES: &[&str] = &[
    // scores
    "score_histogram",
    "session_scores",
    // audit chain
    "audit_checkpoints",
    "audit_chain_heads",
    // reviews
    "decisions",
    "finding_resolutions",
    "review_comments",
    "review_scores",
    "review_reviewers",
    // runs
    "session_grades",
    "session_runs",
    // integrity
    "integrity_findings",
    "integrity_analyses",
    // log and lifecycle
    "session_events",
    "sessions",
];

/// Applies a batch: telemetry in bulk, lifecycle events one by one.
pub async fn apply(
    config: &ProjectionConfig,
    conn: &mut PgConnection,
    records: &[Record],
) -> Result<(), ProjectionError> {
    let mut telemetry = TelemetryColumns::default();
    let mut chains = audit_chain::Chains::load(conn, records).await?;
    for record in records {
        let wire = &record.event;
        let (session_id, org_id) = record.session_and_org()?;
        match wire.streamkind {
            StreamKind::Telemetry => {
                let link = chains.append(session_id, org_id, record);
                telemetry.push(session_id, org_id, record, link);
            }
            StreamKind::Lifecycle => {
                // Keep partition order between the two kinds: flush telemetry gathered so far.
                telemetry.flush(conn).await?;
                let event: SessionEvent = wire
                    .decode()
                    .map_err(|e| record.undecodable(&e.to_string()))?;
                let link = chains.append(session_id, org_id, record);
                let short_type = wire.type_parts().map_or("unknown", |(_, n)| n);
                if let (Some(link), Some(reason)) = (
                    &link,
                    audit_chain::checkpoint_reason(wire.streamkind, short_type),
                ) {
                    let head = clarity_domain::audit::ChainHead {
                        count: link.position as u64,
                        hash: link.hash.clone(),
                    };
                    audit_chain::checkpoint(
                        &config.audit,
                        conn,
                        session_id,
                        org_id,
                        &head,
                        wire.time,
                        reason,
                    )
                    .await?;
                }
                if event_log::insert_lifecycle(conn, session_id, org_id, record, link).await? {
                    match event {
                        SessionEvent::IntegrityAnalysed { analysis, at, .. } => {
                            integrity::record_analysis(
                                conn,
                                session_id,
                                org_id,
                                wire.sequence as i64,
                                &analysis,
                                at,
                            )
                            .await?;
                            event_log::lifecycle_counted(conn, session_id, org_id).await?;
                            scores::refresh(conn, session_id).await?;
                        }
                        event @ (SessionEvent::ReviewersAssigned { .. }
                        | SessionEvent::CriterionScored { .. }
                        | SessionEvent::ReviewCompleted { .. }
                        | SessionEvent::CommentAdded { .. }
                        | SessionEvent::FindingResolved { .. }
                        | SessionEvent::DecisionRecorded { .. }) => {
                            let rescore = matches!(
                                event,
                                SessionEvent::ReviewCompleted { .. }
                                    | SessionEvent::CriterionScored { .. }
                            );
                            reviews::apply(conn, session_id, org_id, wire.sequence as i64, event)
                                .await?;
                            event_log::lifecycle_counted(conn, session_id, org_id).await?;
                            if rescore {
                                scores::refresh(conn, session_id).await?;
                            }
                        }
                        event @ (SessionEvent::RunRequested { .. }
                        | SessionEvent::RunCompleted { .. }
                        | SessionEvent::SubmissionGraded { .. }) => {
                            runs::apply(conn, session_id, org_id, event).await?;
                            event_log::lifecycle_counted(conn, session_id, org_id).await?;
                        }
                        event => lifecycle::apply(conn, session_id, org_id, event).await?,
                    }
                }
            }
        }
    }
    telemetry.flush(conn).await?;
    chains.save(conn).await?;
    Ok(())
}
