//! The review part of projection `sessions`: reviewers, scores (with the amendment chain),
//! completed reviews, comments, finding resolutions and decisions, from the session's events.

use clarity_domain::session::SessionEvent;
use sqlx::PgConnection;
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
