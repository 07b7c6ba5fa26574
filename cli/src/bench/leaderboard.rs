//! `clarity bench leaderboard`: top-k and single-candidate percentile latency over a cohort of
//! (by default) 1,000,000 scored sessions of one assessment version — the worst case: one
//! organization, one cohort — through the same functions the API uses.

use std::time::Instant;

use anyhow::Context;
use chrono::{Duration, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{finish, histogram, note, pct_text, percentiles, BenchEnv};
use clarity_api::config::Config;
use clarity_api::leaderboard::{self, Cohort};

/// `clarity bench leaderboard`
#[derive(Debug, clap::Args)]
pub struct LeaderboardArgs {
    /// Scored sessions in the cohort.
    #[arg(long, default_value_t = 1_000_000)]
    pub sessions: u64,
    /// Queries per measurement.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Rows per leaderboard page.
    #[arg(long, default_value_t = 50)]
    pub top: i64,
    /// Print machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Keep the bench database.
    #[arg(long)]
    pub keep: bool,
}

pub async fn run(base: Config, args: LeaderboardArgs) -> anyhow::Result<()> {
    let env = BenchEnv::create(&base).await?;
    let result = measure(&env, &args).await;
    finish(env, result, args.keep, args.json, |report| {
        println!(
            "leaderboard over {} sessions in one cohort ({} queries each)",
            args.sessions, args.samples
        );
        for key in [
            "top_k",
            "top_k_cleared",
            "percentile",
            "percentile_cleared",
            "top_k_date_range",
            "percentile_date_range",
        ] {
            println!("  {key:<22} {}", pct_text(&report[key]));
        }
    })
    .await
}

async fn measure(env: &BenchEnv, args: &LeaderboardArgs) -> anyhow::Result<Value> {
    let pool = crate::connect(&env.config).await?;
    let (org, assessment) = (Uuid::new_v4(), Uuid::new_v4());
    note(format!("inserting {} scored sessions", args.sessions));
    let started = Instant::now();
    // Scores on a 0.1 grid (1,001 distinct values, like weighted rubric means); 85% cleared;
    // finished over the past year.
    sqlx::query(
        "INSERT INTO session_scores (session_id, org_id, assessment_id, assessment_version, score, reviews,
             time_used_seconds, finished_at, integrity_tier, cleared, candidate_name)
         SELECT gen_random_uuid(), $1, $2, 1, floor(random() * 1001) / 10.0, 1 + (i % 3),
                1800 + (random() * 7200)::bigint, now() - random() * interval '365 days',
                CASE WHEN flagged THEN 'review_suggested' ELSE 'none' END, NOT flagged,
                'Candidate ' || i
         FROM (SELECT i, random() < 0.15 AS flagged FROM generate_series(1, $3) AS i) AS g",
    )
    .bind(org)
    .bind(assessment)
    .bind(args.sessions as i64)
    .execute(&pool)
    .await
    .context("inserting sessions")?;
    sqlx::query(
        "INSERT INTO score_histogram (org_id, assessment_id, assessment_version, cleared, score, sessions)
         SELECT org_id, assessment_id, assessment_version, cleared, score, count(*)
         FROM session_scores GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(&pool)
    .await?;
    sqlx::query("VACUUM ANALYZE session_scores")
        .execute(&pool)
        .await?;
    sqlx::query("VACUUM ANALYZE score_histogram")
        .execute(&pool)
        .await?;
    note(format!(
        "loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT session_id FROM session_scores TABLESAMPLE SYSTEM (1) LIMIT 5000",
    )
    .fetch_all(&pool)
    .await?;
    anyhow::ensure!(!ids.is_empty(), "no sessions sampled");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let cohort = |cleared_only: bool, dated: bool| Cohort {
        org_id: org,
        assessment_id: Some(assessment),
        version: 1,
        cleared_only,
        finished_from: dated.then(|| Utc::now() - Duration::days(90)),
        finished_to: None,
    };
    let mut out = json!({"sessions": args.sessions, "samples": args.samples, "top": args.top});
    for (key, cleared, dated, top) in [
        ("top_k", false, false, true),
        ("top_k_cleared", true, false, true),
        ("percentile", false, false, false),
        ("percentile_cleared", true, false, false),
        ("top_k_date_range", false, true, true),
        ("percentile_date_range", false, true, false),
    ] {
        let c = cohort(cleared, dated);
        let samples = if dated {
            args.samples.min(200)
        } else {
            args.samples
        };
        // Warm up.
        leaderboard::top(&pool, &c, args.top, &[]).await?;
        let mut h = histogram();
        for _ in 0..samples {
            let t = Instant::now();
            if top {
                let board = leaderboard::top(&pool, &c, args.top, &[]).await?;
                anyhow::ensure!(board.rows.len() as i64 == args.top.min(board.cohort_size));
            } else {
                let id = ids[rng.random_range(0..ids.len())];
                leaderboard::standing_of(&pool, &c, id, &[]).await?;
            }
            h.record(t.elapsed().as_micros().max(1) as u64)?;
        }
        out[key] = percentiles(&h);
    }
    Ok(out)
}
