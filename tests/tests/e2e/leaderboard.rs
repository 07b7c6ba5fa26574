//! Leaderboard arithmetic against real PostgreSQL: the histogram path (no date range) and the
//! exact-count path (date range) agree, ties get competition ranks and mid-rank percentiles, and
//! withheld sessions (a reviewer's pending reviews) vanish from the cohort as if they did not
//! exist. Rows are written straight into the read model; the projection that fills it is tested
//! end to end in `reviews.rs`.

use chrono::{Duration, Utc};
use clarity_api::leaderboard::{self, Board, Cohort};
use clarity_tests::TestEnv;
use sqlx::PgPool;
use uuid::Uuid;

/// (score, days ago, cleared) of each session of one cohort.
const SESSIONS: &[(f64, i64, bool)] = &[
    (91.5, 1, true),
    (80.0, 2, true),
    (80.0, 3, false),
    (80.0, 40, true),
    (65.0, 5, true),
    (50.0, 200, true),
    (12.5, 6, false),
];

async fn insert(pool: &PgPool, org: Uuid, assessment: Uuid) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::new();
    for (i, (score, days, cleared)) in SESSIONS.iter().enumerate() {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO session_scores (session_id, org_id, assessment_id, assessment_version, score, reviews,
                 time_used_seconds, finished_at, integrity_tier, cleared, candidate_name)
             VALUES ($1, $2, $3, 1, $4, 1, 3600, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(org)
        .bind(assessment)
        .bind(score)
        .bind(Utc::now() - Duration::days(*days))
        .bind(if *cleared { "none" } else { "review_suggested" })
        .bind(cleared)
        .bind(format!("Candidate {i}"))
        .execute(pool)
        .await?;
        ids.push(id);
    }
    rebuild_histogram(pool).await?;
    Ok(ids)
}

/// The histogram exactly as the projection keeps it: one row per distinct score per cohort.
async fn rebuild_histogram(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM score_histogram")
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO score_histogram (org_id, assessment_id, assessment_version, cleared, score, sessions)
         SELECT org_id, assessment_id, assessment_version, cleared, score, count(*)
         FROM session_scores GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// (rank, score, percentile) of each row.
fn standings(board: &Board) -> Vec<(i64, f64, Option<f64>)> {
    board
        .rows
        .iter()
        .map(|r| (r.rank, r.score, r.percentile))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranks_and_percentiles_agree_on_both_count_paths_and_withheld_sessions_vanish(
) -> anyhow::Result<()> {
    // Arrange
    let env = TestEnv::new().await?;
    let (org, assessment) = (Uuid::new_v4(), Uuid::new_v4());
    let ids = insert(&env.pool, org, assessment).await?;
    let cohort = Cohort {
        org_id: org,
        assessment_id: Some(assessment),
        version: 1,
        cleared_only: false,
        finished_from: None,
        finished_to: None,
    };
    let ever = Cohort {
        finished_from: Some(Utc::now() - Duration::days(3650)),
        finished_to: Some(Utc::now() + Duration::days(1)),
        ..cohort.clone()
    };

    // Act
    let histogram = leaderboard::top(&env.pool, &cohort, 4, &[]).await?;
    let dated = leaderboard::top(&env.pool, &ever, 4, &[]).await?;

    // Assert: three sessions tie at 80 and share rank 2; the page ends inside the tie, and the
    // tie's percentile still counts all three: (below 3 + ½·3) / 7.
    assert_eq!(histogram.cohort_size, 7);
    let tie = 100.0 * (3.0 + 1.5) / 7.0;
    assert_eq!(
        standings(&histogram),
        vec![
            (1, 91.5, Some(100.0 * 6.5 / 7.0)),
            (2, 80.0, Some(tie)),
            (2, 80.0, Some(tie)),
            (2, 80.0, Some(tie)),
        ]
    );
    assert_eq!(standings(&dated), standings(&histogram));
    assert_eq!(dated.cohort_size, 7);

    // A date range and the cleared filter narrow the cohort.
    let month = Cohort {
        finished_from: Some(Utc::now() - Duration::days(30)),
        finished_to: None,
        ..cohort.clone()
    };
    let board = leaderboard::top(&env.pool, &month, 50, &[]).await?;
    assert_eq!(
        board.cohort_size, 5,
        "the 40- and 200-day-old sessions are out"
    );
    let cleared = Cohort {
        cleared_only: true,
        ..cohort.clone()
    };
    let board = leaderboard::top(&env.pool, &cleared, 50, &[]).await?;
    assert_eq!(board.cohort_size, 5);
    assert_eq!(
        board.rows.iter().map(|r| r.rank).collect::<Vec<_>>(),
        vec![1, 2, 2, 4, 5]
    );

    // Withholding one of the tied sessions gives exactly the board without it, on both paths.
    let mut ids = ids;
    for c in [&cohort, &ever] {
        let hidden = leaderboard::top(&env.pool, c, 50, &[ids[2]]).await?;
        assert_eq!(hidden.withheld, 1);
        assert!(hidden.rows.iter().all(|r| r.session_id != ids[2]));
        sqlx::query("DELETE FROM session_scores WHERE session_id = $1")
            .bind(ids[2])
            .execute(&env.pool)
            .await?;
        rebuild_histogram(&env.pool).await?;
        let without = leaderboard::top(&env.pool, c, 50, &[]).await?;
        assert_eq!(hidden.cohort_size, 6);
        assert_eq!(without.cohort_size, 6);
        assert_eq!(standings(&hidden), standings(&without));
        assert_eq!(without.withheld, 0);
        // Put the cohort back whole for the other path.
        sqlx::query("DELETE FROM session_scores WHERE org_id = $1")
            .bind(org)
            .execute(&env.pool)
            .await?;
        ids = insert(&env.pool, org, assessment).await?;
    }

    // A withheld session of another cohort changes nothing.
    let board = leaderboard::top(&env.pool, &cohort, 50, &[Uuid::new_v4()]).await?;
    assert_eq!((board.cohort_size, board.withheld), (7, 0));
    Ok(())
}
