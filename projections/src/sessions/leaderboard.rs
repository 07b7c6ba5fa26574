//! Leaderboard arithmetic over the `session_scores` read model: top-k, ranks and percentiles in a
//! cohort (an assessment version within an organization, optionally only integrity-cleared
//! sessions, optionally a finishing-date range).
//!
//! Without a date range every count comes from `score_histogram` (one row per distinct score), so
//! a percentile in a cohort of a million sessions sums a few thousand rows; with a date range the
//! counts are exact index range counts over `session_scores` (slower; see `clarity bench
//! leaderboard`). Percentile is mid-rank: `100 × (below + ½·equal) / n`; rank is competition
//! ranking ("1224").

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// The cohort filter over `session_scores`: binds `$1`–`$6` (see `bind_cohort!`); a query's own
/// parameters start at `$7`.
macro_rules! cohort_filter {
    () => {
        " org_id = $1
           AND ($2::uuid IS NULL OR (assessment_id = $2 AND assessment_version = $3))
           AND (cleared OR NOT $4)
           AND ($5::timestamptz IS NULL OR finished_at >= $5) AND ($6::timestamptz IS NULL OR finished_at < $6) "
    };
}

/// Binds a cohort to `$1`–`$6` of a query using `cohort_filter!`.
macro_rules! bind_cohort {
    ($query:expr, $cohort:expr) => {
        $query
            .bind($cohort.org_id)
            .bind($cohort.assessment_id)
            .bind($cohort.version)
            .bind($cohort.cleared_only)
            .bind($cohort.finished_from)
            .bind($cohort.finished_to)
    };
}

/// Which sessions are compared: one assessment version of an organization, or (with
/// `assessment_id: None`) every scored session of the organization.
#[derive(Debug, Clone)]
pub struct Cohort {
    pub org_id: Uuid,
    pub assessment_id: Option<Uuid>,
    pub version: i32,
    /// Only sessions whose integrity analysis found nothing to review.
    pub cleared_only: bool,
    pub finished_from: Option<DateTime<Utc>>,
    pub finished_to: Option<DateTime<Utc>>,
}

impl Cohort {
    fn dated(&self) -> bool {
        self.finished_from.is_some() || self.finished_to.is_some()
    }
}

/// (sessions strictly below `score`, sessions equal to it, cohort size).
pub async fn counts(
    pool: &PgPool,
    cohort: &Cohort,
    score: f64,
) -> Result<(i64, i64, i64), sqlx::Error> {
    if cohort.dated() {
        return bind_cohort!(
            sqlx::query_as(concat!(
                "SELECT count(*) FILTER (WHERE score < $7), count(*) FILTER (WHERE score = $7), count(*)
                 FROM session_scores WHERE",
                cohort_filter!()
            )),
            cohort
        )
        .bind(score)
        .fetch_one(pool)
        .await;
    }
    sqlx::query_as(
        "SELECT coalesce(sum(sessions) FILTER (WHERE score < $5), 0)::bigint,
                coalesce(sum(sessions) FILTER (WHERE score = $5), 0)::bigint,
                coalesce(sum(sessions), 0)::bigint
         FROM score_histogram WHERE org_id = $1
           AND ($2::uuid IS NULL OR (assessment_id = $2 AND assessment_version = $3))
           AND (cleared OR NOT $4)",
    )
    .bind(cohort.org_id)
    .bind(cohort.assessment_id)
    .bind(cohort.version)
    .bind(cohort.cleared_only)
    .bind(score)
    .fetch_one(pool)
    .await
}

/// Mid-rank percentile and competition rank from the counts.
pub fn standing(below: i64, equal: i64, n: i64) -> (Option<f64>, i64) {
    let percentile = (n > 0).then(|| 100.0 * (below as f64 + 0.5 * equal as f64) / n as f64);
    (percentile, n - below - equal + 1)
}

/// One row of a leaderboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Row {
    pub rank: i64,
    pub session_id: Uuid,
    pub candidate_name: Option<String>,
    pub assessment_id: Uuid,
    pub assessment_version: i32,
    /// Weighted rubric score 0–100 over the completed reviews.
    pub score: f64,
    pub percentile: Option<f64>,
    pub time_used_seconds: Option<i64>,
    pub integrity_tier: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A leaderboard page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Board {
    /// Sessions compared (those withheld from the caller not counted).
    pub cohort_size: i64,
    pub rows: Vec<Row>,
    /// Sessions of the cohort the caller reviews and has not completed the review of: left out
    /// of the rows, the ranks and the percentiles until they do (blind review), as if they were
    /// not in the cohort.
    pub withheld: i64,
}

/// The top `limit` sessions of the cohort, best first (ties by session id), with rank and
/// percentile. Three queries whatever the cohort size: the rows; the cohort size; and how many
/// sessions share the last row's score (the rows before a row are exactly the sessions scoring
/// higher, so ranks and "below" counts follow from the list itself).
///
/// `withheld` are sessions the caller must not see scored (their pending reviews): they are left
/// out of the cohort entirely, so neither the rows nor the ranks and percentiles of the others
/// (which would have gaps where they are) reveal anything about them.
pub async fn top(
    pool: &PgPool,
    cohort: &Cohort,
    limit: i64,
    withheld: &[Uuid],
) -> Result<Board, sqlx::Error> {
    type R = (
        Uuid,
        Option<String>,
        f64,
        Option<i64>,
        Option<String>,
        Option<DateTime<Utc>>,
        Uuid,
        i32,
    );
    let rows: Vec<R> = bind_cohort!(
        sqlx::query_as(concat!(
            "SELECT session_id, candidate_name, score, time_used_seconds, integrity_tier, finished_at,
                    assessment_id, assessment_version
             FROM session_scores WHERE",
            cohort_filter!(),
            "AND session_id <> ALL($8) ORDER BY score DESC, session_id LIMIT $7"
        )),
        cohort
    )
    .bind(limit)
    .bind(withheld)
    .fetch_all(pool)
    .await?;
    let last = rows.last().map(|r| r.2).unwrap_or(f64::MAX);
    // One query: the cohort size and the sessions sharing the last row's score.
    let (_, mut last_equal, mut n) = counts(pool, cohort, last).await?;
    // Take the withheld sessions back out of those counts.
    let hidden = withheld_scores(pool, cohort, withheld).await?;
    n -= hidden.len() as i64;
    last_equal -= hidden.iter().filter(|&&s| s == last).count() as i64;
    let mut out = Vec::with_capacity(rows.len());
    for (
        i,
        (
            session_id,
            candidate_name,
            score,
            time_used_seconds,
            integrity_tier,
            finished_at,
            assessment_id,
            assessment_version,
        ),
    ) in rows.iter().cloned().enumerate()
    {
        let higher = rows.iter().take(i).filter(|r| r.2 > score).count() as i64;
        let equal = if score == last {
            last_equal
        } else {
            rows.iter().filter(|r| r.2 == score).count() as i64
        };
        let below = n - higher - equal;
        let (percentile, rank) = standing(below, equal, n);
        out.push(Row {
            rank,
            session_id,
            candidate_name,
            assessment_id,
            assessment_version,
            score,
            percentile,
            time_used_seconds,
            integrity_tier,
            finished_at,
        });
    }
    Ok(Board {
        cohort_size: n,
        rows: out,
        withheld: hidden.len() as i64,
    })
}

/// What a leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    /// The weighted rubric score over completed reviews (`session_scores`).
    Rubric,
    /// The newest grader version's automated score, 0–100 (`session_grades`).
    Automated,
    /// The mean of the two; a session lacking either is not ranked.
    Combined,
}

/// The top `limit` sessions of the cohort by their automated score (or the mean of it and the
/// rubric score), with rank and percentile; `withheld` sessions are left out as in [`top`]. The
/// cohort's scores are read whole (one row per graded session of the cohort): fine for an
/// assessment's cohort, not meant for millions of graded sessions.
pub async fn top_by_grade(
    pool: &PgPool,
    cohort: &Cohort,
    limit: i64,
    withheld: &[Uuid],
    by: RankBy,
) -> Result<Board, sqlx::Error> {
    type R = (
        Uuid,
        Option<String>,
        f64,
        Option<i64>,
        Option<String>,
        Option<DateTime<Utc>>,
        Uuid,
        i32,
    );
    let combined = by == RankBy::Combined;
    let rows: Vec<R> = sqlx::query_as(
        "WITH latest AS (
             SELECT DISTINCT ON (session_id) session_id, fraction * 100 AS automated
             FROM session_grades WHERE org_id = $1 ORDER BY session_id, graded_at DESC, grader_version DESC)
         SELECT s.session_id, s.candidate_name,
                round((CASE WHEN $7 THEN (l.automated + sc.score) / 2 ELSE l.automated END)::numeric, 1)::float8 AS score,
                s.time_used_seconds, s.integrity_tier, coalesce(s.submitted_at, s.expired_at),
                s.assessment_id, s.assessment_version
         FROM latest l JOIN sessions s USING (session_id)
         LEFT JOIN session_scores sc ON sc.session_id = s.session_id
         WHERE s.org_id = $1
           AND ($2::uuid IS NULL OR (s.assessment_id = $2 AND s.assessment_version = $3))
           AND (s.integrity_tier = 'none' OR NOT $4)
           AND ($5::timestamptz IS NULL OR coalesce(s.submitted_at, s.expired_at) >= $5)
           AND ($6::timestamptz IS NULL OR coalesce(s.submitted_at, s.expired_at) < $6)
           AND (NOT $7 OR sc.score IS NOT NULL)
           AND s.session_id <> ALL($8)
         ORDER BY score DESC, s.session_id",
    )
    .bind(cohort.org_id)
    .bind(cohort.assessment_id)
    .bind(cohort.version)
    .bind(cohort.cleared_only)
    .bind(cohort.finished_from)
    .bind(cohort.finished_to)
    .bind(combined)
    .bind(withheld)
    .fetch_all(pool)
    .await?;
    let n = rows.len() as i64;
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate().take(limit.max(0) as usize) {
        let higher = rows.iter().take(i).filter(|x| x.2 > r.2).count() as i64;
        let equal = rows.iter().filter(|x| x.2 == r.2).count() as i64;
        let (percentile, rank) = standing(n - higher - equal, equal, n);
        out.push(Row {
            rank,
            session_id: r.0,
            candidate_name: r.1.clone(),
            assessment_id: r.6,
            assessment_version: r.7,
            score: r.2,
            percentile,
            time_used_seconds: r.3,
            integrity_tier: r.4.clone(),
            finished_at: r.5,
        });
    }
    // How many of the caller's pending reviews were left out of this cohort.
    let hidden: i64 = if withheld.is_empty() {
        0
    } else {
        sqlx::query_scalar(
            "SELECT count(DISTINCT g.session_id) FROM session_grades g JOIN sessions s USING (session_id)
             WHERE g.org_id = $1 AND ($2::uuid IS NULL OR (s.assessment_id = $2 AND s.assessment_version = $3))
               AND g.session_id = ANY($4)",
        )
        .bind(cohort.org_id)
        .bind(cohort.assessment_id)
        .bind(cohort.version)
        .bind(withheld)
        .fetch_one(pool)
        .await?
    };
    Ok(Board {
        cohort_size: n,
        rows: out,
        withheld: hidden,
    })
}

/// The scores of those of `sessions` that are in the cohort.
async fn withheld_scores(
    pool: &PgPool,
    cohort: &Cohort,
    sessions: &[Uuid],
) -> Result<Vec<f64>, sqlx::Error> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    bind_cohort!(
        sqlx::query_scalar(concat!(
            "SELECT score FROM session_scores WHERE",
            cohort_filter!(),
            "AND session_id = ANY($7)"
        )),
        cohort
    )
    .bind(sessions)
    .fetch_all(pool)
    .await
}

/// The sessions `member` reviews and has not completed the review of (blind review: they see
/// no aggregate of those sessions until they do).
pub async fn pending_reviews(pool: &PgPool, member: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT session_id FROM review_reviewers WHERE reviewer = $1 AND completed_at IS NULL",
    )
    .bind(member)
    .fetch_all(pool)
    .await
}

/// One session's place in its cohort: (score, percentile, rank, cohort size); `None` if the
/// session has no score in this cohort. `withheld` (the caller's pending reviews, never the
/// session itself) are left out of the cohort, as in [`top`].
pub async fn standing_of(
    pool: &PgPool,
    cohort: &Cohort,
    session_id: Uuid,
    withheld: &[Uuid],
) -> Result<Option<(f64, Option<f64>, i64, i64)>, sqlx::Error> {
    let score: Option<(f64, bool)> = sqlx::query_as(
        "SELECT score, cleared FROM session_scores WHERE session_id = $1 AND org_id = $2
           AND ($3::uuid IS NULL OR (assessment_id = $3 AND assessment_version = $4))",
    )
    .bind(session_id)
    .bind(cohort.org_id)
    .bind(cohort.assessment_id)
    .bind(cohort.version)
    .fetch_optional(pool)
    .await?;
    let Some((score, cleared)) = score else {
        return Ok(None);
    };
    if cohort.cleared_only && !cleared {
        return Ok(None);
    }
    let (mut below, mut equal, mut n) = counts(pool, cohort, score).await?;
    // Take the withheld sessions back out of those counts.
    for hidden in withheld_scores(pool, cohort, withheld).await? {
        n -= 1;
        if hidden < score {
            below -= 1;
        } else if hidden == score {
            equal -= 1;
        }
    }
    let (percentile, rank) = standing(below, equal, n);
    Ok(Some((score, percentile, rank, n)))
}

#[cfg(test)]
mod tests {
    use super::standing;

    #[test]
    fn standing_is_mid_rank_percentile_and_competition_rank() {
        // Cohort {10, 20, 20, 30}: for 20, one below, two equal.
        assert_eq!(standing(1, 2, 4), (Some(50.0), 2));
        // The best of four: 3 below.
        assert_eq!(standing(3, 1, 4), (Some(87.5), 1));
        // A cohort of one.
        assert_eq!(standing(0, 1, 1), (Some(50.0), 1));
        assert_eq!(standing(0, 0, 0), (None, 1));
    }
}
