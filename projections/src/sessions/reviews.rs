//! The review part of projection `sessions`: reviewers, scores (with the amendment chain),
//! completed reviews, comments, finding resolutions and decisions, from the session's events;
//! and the queries that read them back. Blind review is the caller's decision, passed in as
//! whose scores and decisions alone may be shown.

use chrono::{DateTime, Utc};
use clarity_domain::session::SessionEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// Applies one review event; `sequence` is the event's position in the session's stream.
pub async fn apply(
    conn: &mut PgConnection,
    session_id: Uuid,
    org_id: Uuid,
    sequence: i64,
    event: SessionEvent,
) -> Result<(), sqlx::Error> {
    match event {
        SessionEvent::ReviewersAssigned {
            reviewers,
            assigned_by,
            at,
        } => {
            sqlx::query(
                "INSERT INTO review_reviewers (session_id, reviewer, org_id, assigned_by, assigned_at)
                 SELECT $1, r, $2, $3, $4 FROM UNNEST($5::uuid[]) AS r ON CONFLICT DO NOTHING",
            )
            .bind(session_id)
            .bind(org_id)
            .bind(assigned_by)
            .bind(at)
            .bind(&reviewers)
            .execute(conn)
            .await?;
        }
        SessionEvent::CriterionScored {
            score_id,
            reviewer,
            criterion,
            score,
            justification,
            supersedes,
            at,
        } => {
            if let Some(old) = supersedes {
                sqlx::query("UPDATE review_scores SET current = false WHERE score_id = $1")
                    .bind(old)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO review_scores (score_id, session_id, org_id, reviewer, criterion, score,
                     justification, supersedes, current, scored_at, event_sequence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(score_id)
            .bind(session_id)
            .bind(org_id)
            .bind(reviewer)
            .bind(criterion)
            .bind(i16::from(score))
            .bind(justification)
            .bind(supersedes)
            .bind(at)
            .bind(sequence)
            .execute(conn)
            .await?;
        }
        SessionEvent::ReviewCompleted { reviewer, at } => {
            sqlx::query(
                "UPDATE review_reviewers SET completed_at = $3 WHERE session_id = $1 AND reviewer = $2",
            )
            .bind(session_id)
            .bind(reviewer)
            .bind(at)
            .execute(conn)
            .await?;
        }
        SessionEvent::CommentAdded {
            comment_id,
            author,
            replay_seq,
            text,
            at,
        } => {
            sqlx::query(
                "INSERT INTO review_comments (comment_id, session_id, org_id, author, replay_seq, text,
                     commented_at, event_sequence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(comment_id)
            .bind(session_id)
            .bind(org_id)
            .bind(author)
            .bind(replay_seq as i64)
            .bind(text)
            .bind(at)
            .bind(sequence)
            .execute(conn)
            .await?;
        }
        SessionEvent::FindingResolved {
            suite_version,
            ordinal,
            resolution,
            reason,
            by,
            at,
        } => {
            sqlx::query(
                "INSERT INTO finding_resolutions (session_id, event_sequence, org_id, suite_version,
                     ordinal, resolution, reason, resolved_by, resolved_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(session_id)
            .bind(sequence)
            .bind(org_id)
            .bind(suite_version)
            .bind(ordinal as i32)
            .bind(match resolution {
                clarity_domain::session::FindingResolution::Confirmed => "confirmed",
                clarity_domain::session::FindingResolution::Dismissed => "dismissed",
            })
            .bind(reason)
            .bind(by)
            .bind(at)
            .execute(conn)
            .await?;
        }
        SessionEvent::DecisionRecorded {
            decision_id,
            outcome,
            rationale,
            decided_by,
            report_hash,
            supersedes,
            at,
            chain_seal,
        } => {
            sqlx::query("UPDATE decisions SET current = false WHERE session_id = $1")
                .bind(session_id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO decisions (decision_id, session_id, org_id, outcome, rationale, decided_by,
                     report_hash, supersedes, current, decided_at, event_sequence, chain_count, chain_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            )
            .bind(decision_id)
            .bind(session_id)
            .bind(org_id)
            .bind(outcome.as_str())
            .bind(rationale)
            .bind(decided_by)
            .bind(report_hash)
            .bind(supersedes)
            .bind(at)
            .bind(sequence)
            .bind(chain_seal.as_ref().map(|c| c.count as i64))
            .bind(chain_seal.map(|c| c.hash))
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE sessions SET decision = $2, decided_at = $3 WHERE session_id = $1")
                .bind(session_id)
                .bind(outcome.as_str())
                .bind(at)
                .execute(conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// One score as the read model has it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ScoreView {
    pub score_id: Uuid,
    pub reviewer: Uuid,
    pub criterion: String,
    pub score: i16,
    pub justification: String,
    pub supersedes: Option<Uuid>,
    /// False when a later score of the same reviewer amended it.
    pub current: bool,
    pub scored_at: DateTime<Utc>,
}

/// A reviewer and whether they completed their review.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ReviewerView {
    pub reviewer: Uuid,
    pub assigned_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A comment.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct CommentView {
    pub comment_id: Uuid,
    pub author: Uuid,
    pub replay_seq: i64,
    pub text: String,
    pub commented_at: DateTime<Utc>,
}

/// A finding resolution.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ResolutionView {
    pub suite_version: String,
    pub ordinal: i32,
    pub resolution: String,
    pub reason: String,
    pub resolved_by: Uuid,
    pub resolved_at: DateTime<Utc>,
}

/// A decision (all of them, amendments included; `current` marks the one that counts).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct DecisionView {
    pub decision_id: Uuid,
    pub outcome: String,
    pub rationale: String,
    pub decided_by: Uuid,
    pub report_hash: String,
    pub supersedes: Option<Uuid>,
    pub current: bool,
    pub decided_at: DateTime<Utc>,
}

/// The session's reviewers, in assignment order.
pub async fn reviewers(pool: &PgPool, session_id: Uuid) -> Result<Vec<ReviewerView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT reviewer, assigned_at, completed_at FROM review_reviewers WHERE session_id = $1 ORDER BY assigned_at, reviewer",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await
}

/// Every score of the session, amended ones included; with `only_of: Some(member)` (blind
/// review) only `member`'s.
pub async fn scores(
    pool: &PgPool,
    session_id: Uuid,
    only_of: Option<Uuid>,
) -> Result<Vec<ScoreView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT score_id, reviewer, criterion, score, justification, supersedes, current, scored_at
         FROM review_scores WHERE session_id = $1 AND (NOT $2 OR reviewer = $3)
         ORDER BY reviewer, criterion, event_sequence",
    )
    .bind(session_id)
    .bind(only_of.is_some())
    .bind(only_of.unwrap_or_default())
    .fetch_all(pool)
    .await
}

/// The session's comments, by replay position.
pub async fn comments(pool: &PgPool, session_id: Uuid) -> Result<Vec<CommentView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT comment_id, author, replay_seq, text, commented_at FROM review_comments WHERE session_id = $1 ORDER BY replay_seq, event_sequence",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await
}

/// The session's finding resolutions, in order.
pub async fn resolutions(
    pool: &PgPool,
    session_id: Uuid,
) -> Result<Vec<ResolutionView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT suite_version, ordinal, resolution, reason, resolved_by, resolved_at FROM finding_resolutions WHERE session_id = $1 ORDER BY event_sequence",
    )
    .bind(session_id)
    .fetch_all(pool)
    .await
}

/// Every decision of the session, amendments included; with `only_by: Some(member)` (blind
/// review) only `member`'s.
pub async fn decisions(
    pool: &PgPool,
    session_id: Uuid,
    only_by: Option<Uuid>,
) -> Result<Vec<DecisionView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT decision_id, outcome, rationale, decided_by, report_hash, supersedes, current, decided_at
         FROM decisions WHERE session_id = $1 AND (NOT $2 OR decided_by = $3) ORDER BY event_sequence",
    )
    .bind(session_id)
    .bind(only_by.is_some())
    .bind(only_by.unwrap_or_default())
    .fetch_all(pool)
    .await
}
