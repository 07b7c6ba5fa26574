//! The scores part of projection `sessions`: a session's aggregate rubric score over its completed
//! reviews (`clarity_domain::scoring`), kept in `session_scores`, and the per-cohort score
//! histogram `score_histogram` that makes percentiles and ranks cheap at any cohort size.

use clarity_domain::assessment::Rubric;
use clarity_domain::scoring::{aggregate_score, CriterionScore, Review, RubricWeights};
use sqlx::PgConnection;
use uuid::Uuid;

type Key = (Uuid, Uuid, i32, bool, f64);

/// Recomputes a session's row after an event that can change its score or its integrity tier.
pub async fn refresh(conn: &mut PgConnection, session_id: Uuid) -> Result<(), sqlx::Error> {
    type Facts = (
        Uuid,
        Option<Uuid>,
        Option<i32>,
        Option<i64>,
        Option<chrono::DateTime<chrono::Utc>>,
        Option<String>,
        Option<String>,
        Option<sqlx::types::Json<Rubric>>,
    );
    let facts: Option<Facts> = sqlx::query_as(
        "SELECT s.org_id, s.assessment_id, s.assessment_version, s.time_used_seconds,
                coalesce(s.submitted_at, s.expired_at), s.integrity_tier, s.candidate_name,
                cv.spec -> 'rubric'
         FROM sessions s LEFT JOIN catalogue_versions cv
              ON cv.assessment_id = s.assessment_id AND cv.version = s.assessment_version
         WHERE s.session_id = $1",
    )
    .bind(session_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((org, Some(assessment), Some(version), time_used, finished, tier, name, rubric)) =
        facts
    else {
        return Ok(());
    };
    let scores: Vec<(Uuid, String, i16)> = sqlx::query_as(
        "SELECT sc.reviewer, sc.criterion, sc.score FROM review_scores sc
         JOIN review_reviewers r ON r.session_id = sc.session_id AND r.reviewer = sc.reviewer
         WHERE sc.session_id = $1 AND sc.current AND r.completed_at IS NOT NULL
         ORDER BY sc.reviewer, sc.criterion",
    )
    .bind(session_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut reviews: Vec<Review> = Vec::new();
    for (reviewer, criterion, score) in scores {
        let reviewer = reviewer.to_string();
        if reviews.last().is_none_or(|r| r.reviewer != reviewer) {
            reviews.push(Review {
                reviewer,
                scores: Vec::new(),
            });
        }
        if let Some(r) = reviews.last_mut() {
            r.scores.push(CriterionScore {
                criterion,
                score: f64::from(score),
            });
        }
    }
    let aggregate = rubric
        .and_then(|r| RubricWeights::from_rubric(&r.0).ok())
        .and_then(|w| aggregate_score(&w, &reviews).ok());
    let old: Option<(f64, bool)> =
        sqlx::query_as("SELECT score, cleared FROM session_scores WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&mut *conn)
            .await?;
    let cleared = tier.as_deref() == Some("none");
    let new = aggregate.map(|a| (round(a.score), a.reviewers as i32));
    if let Some((score, c)) = old {
        bump(conn, (org, assessment, version, c, score), -1).await?;
    }
    match new {
        Some((score, reviewers)) => {
            sqlx::query(
                "INSERT INTO session_scores (session_id, org_id, assessment_id, assessment_version, score, reviews,
                     time_used_seconds, finished_at, integrity_tier, cleared, candidate_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (session_id) DO UPDATE SET score = EXCLUDED.score, reviews = EXCLUDED.reviews,
                     time_used_seconds = EXCLUDED.time_used_seconds, finished_at = EXCLUDED.finished_at,
                     integrity_tier = EXCLUDED.integrity_tier, cleared = EXCLUDED.cleared,
                     candidate_name = EXCLUDED.candidate_name",
            )
            .bind(session_id)
            .bind(org)
            .bind(assessment)
            .bind(version)
            .bind(score)
            .bind(reviewers)
            .bind(time_used)
            .bind(finished)
            .bind(&tier)
            .bind(cleared)
            .bind(name)
            .execute(&mut *conn)
            .await?;
            bump(conn, (org, assessment, version, cleared, score), 1).await?;
        }
        None => {
            sqlx::query("DELETE FROM session_scores WHERE session_id = $1")
                .bind(session_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Scores are kept to 1e-9 so that equal scores computed in different orders land in one bucket.
fn round(score: f64) -> f64 {
    (score * 1e9).round() / 1e9
}

async fn bump(conn: &mut PgConnection, key: Key, delta: i64) -> Result<(), sqlx::Error> {
    let (org, assessment, version, cleared, score) = key;
    sqlx::query(
        "INSERT INTO score_histogram (org_id, assessment_id, assessment_version, cleared, score, sessions)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (org_id, assessment_id, assessment_version, cleared, score)
         DO UPDATE SET sessions = score_histogram.sessions + EXCLUDED.sessions",
    )
    .bind(org)
    .bind(assessment)
    .bind(version)
    .bind(cleared)
    .bind(score)
    .bind(delta)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM score_histogram WHERE org_id = $1 AND assessment_id = $2 AND assessment_version = $3
           AND cleared = $4 AND score = $5 AND sessions <= 0",
    )
    .bind(org)
    .bind(assessment)
    .bind(version)
    .bind(cleared)
    .bind(score)
    .execute(conn)
    .await?;
    Ok(())
}
