//! A candidate's standing in the cohort of the same assessment version.
//!
//! **Percentile rank** (mid-rank definition): with `n` scores in the cohort, `below` of them
//! strictly lower than the candidate's score and `equal` of them equal to it,
//!
//! ```text
//! percentile_rank = 100 × (below + 0.5 × equal) / n
//! ```
//!
//! The candidate is part of the cohort (their own score is one of the `equal`), so a cohort of
//! one puts them at 50, the best of `n` distinct scores at `100 × (n − 0.5) / n` (never 100) and
//! the worst at `100 × 0.5 / n` (never 0). Ties share one value: everyone tied sits at the middle
//! of the tied block. The value is computed as `100 × (2 × below + equal) / (2n)` from integer
//! counts, so every implementation that counts the same gets bit-identical results.
//!
//! **Rank** (standard competition ranking, "1224"): `1 + the number of scores strictly higher`,
//! so tied candidates share the best rank of their block and the next rank skips.
//!
//! [`percentile_rank`] scans an unsorted cohort in O(n). [`percentile_rank_sorted`] and [`rank`]
//! answer from a sorted cohort by binary search in O(log n), which is what a leaderboard over a
//! million sessions needs. [`Cohort`] keeps a validated, sorted cohort and answers both.
//!
//! Scores are expected to be finite. The free functions do not check the cohort (a NaN in it
//! counts towards `n` but is never below or equal to anything, and breaks the sort order the
//! binary search relies on); [`Cohort::new`] rejects non-finite scores.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `100 × (2 × below + equal) / (2n)`, or `None` when `n == 0`.
fn mid_rank(below: usize, equal: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| 100.0 * (2 * below + equal) as f64 / (2 * n) as f64)
}

/// Mid-rank percentile of `score` in an unsorted `cohort` (which includes the candidate), in
/// O(n). `None` when the cohort is empty or `score` is NaN.
pub fn percentile_rank(score: f64, cohort: &[f64]) -> Option<f64> {
    if score.is_nan() {
        return None;
    }
    let (below, equal) = cohort.iter().fold((0, 0), |(b, e), &x| {
        if x < score {
            (b + 1, e)
        } else if x == score {
            (b, e + 1)
        } else {
            (b, e)
        }
    });
    mid_rank(below, equal, cohort.len())
}

/// Mid-rank percentile of `score` in a cohort sorted in **ascending** order (which includes the
/// candidate), by binary search in O(log n). Same result as [`percentile_rank`] on the same
/// scores. `None` when the cohort is empty or `score` is NaN.
pub fn percentile_rank_sorted(score: f64, sorted_asc: &[f64]) -> Option<f64> {
    if score.is_nan() {
        return None;
    }
    let below = sorted_asc.partition_point(|&x| x < score);
    let below_or_equal = sorted_asc.partition_point(|&x| x <= score);
    mid_rank(below, below_or_equal - below, sorted_asc.len())
}

/// Competition rank ("1224") of `score` in a cohort sorted in **descending** order: one plus the
/// number of scores strictly higher, by binary search in O(log n). A score higher than everyone's
/// (or an empty cohort) ranks 1; a NaN score ranks last (`n + 1`).
pub fn rank(score: f64, sorted_desc: &[f64]) -> usize {
    if score.is_nan() {
        return sorted_desc.len() + 1;
    }
    sorted_desc.partition_point(|&x| x > score) + 1
}

/// A cohort score that is NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[error("cohort score {score} at index {index} is not finite")]
pub struct NonFiniteScore {
    pub index: usize,
    pub score: f64,
}

/// The scores of a cohort, checked finite and kept sorted ascending, answering percentile and
/// rank queries in O(log n) each. Build it once per cohort (O(n log n)) and query it many times.
/// Serialises as the sorted array of scores; deserialising validates and sorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct Cohort {
    sorted_asc: Vec<f64>,
}

impl Cohort {
    /// Sorts the scores; errors on the first NaN or infinite one. `-0.0` is stored as `0.0`.
    pub fn new(mut scores: Vec<f64>) -> Result<Self, NonFiniteScore> {
        for (index, s) in scores.iter_mut().enumerate() {
            if !s.is_finite() {
                return Err(NonFiniteScore { index, score: *s });
            }
            if *s == 0.0 {
                *s = 0.0;
            }
        }
        scores.sort_unstable_by(f64::total_cmp);
        Ok(Self { sorted_asc: scores })
    }

    /// The scores, ascending.
    pub fn as_sorted(&self) -> &[f64] {
        &self.sorted_asc
    }

    pub fn len(&self) -> usize {
        self.sorted_asc.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted_asc.is_empty()
    }

    /// Mid-rank percentile of `score` (see the module docs); `None` when the cohort is empty or
    /// `score` is NaN.
    pub fn percentile_rank(&self, score: f64) -> Option<f64> {
        percentile_rank_sorted(score, &self.sorted_asc)
    }

    /// Competition rank of `score`: one plus the number of scores strictly higher. A NaN score
    /// ranks last (`n + 1`).
    pub fn rank(&self, score: f64) -> usize {
        if score.is_nan() {
            return self.len() + 1;
        }
        self.len() - self.sorted_asc.partition_point(|&x| x <= score) + 1
    }
}

impl TryFrom<Vec<f64>> for Cohort {
    type Error = NonFiniteScore;

    fn try_from(scores: Vec<f64>) -> Result<Self, Self::Error> {
        Self::new(scores)
    }
}

impl From<Cohort> for Vec<f64> {
    fn from(cohort: Cohort) -> Self {
        cohort.sorted_asc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn a_cohort_of_one_puts_the_candidate_at_the_50th_percentile() {
        // below 0, equal 1, n 1: 100 × (0 + 0.5) / 1 = 50.
        assert_eq!(percentile_rank(72.0, &[72.0]), Some(50.0));
        assert_eq!(percentile_rank_sorted(72.0, &[72.0]), Some(50.0));
        assert_eq!(rank(72.0, &[72.0]), 1);
    }

    #[test]
    fn tied_candidates_share_the_middle_of_their_block() {
        // Cohort 10, 20, 20, 30 (n = 4).
        // 20: below 1, equal 2 → 100 × (1 + 1) / 4 = 50 for both tied candidates.
        let cohort = [30.0, 20.0, 10.0, 20.0];
        assert_eq!(percentile_rank(20.0, &cohort), Some(50.0));
        // Everyone tied: below 0, equal 5 → 100 × 2.5 / 5 = 50.
        assert_eq!(percentile_rank(3.0, &[3.0; 5]), Some(50.0));
        // 1, 2, 2, 2, 5 (n = 5), score 2: below 1, equal 3 → 100 × 2.5 / 5 = 50;
        // score 5: below 4, equal 1 → 100 × 4.5 / 5 = 90.
        let sorted = [1.0, 2.0, 2.0, 2.0, 5.0];
        assert_eq!(percentile_rank_sorted(2.0, &sorted), Some(50.0));
        assert_eq!(percentile_rank_sorted(5.0, &sorted), Some(90.0));
    }

    #[test]
    fn the_top_and_bottom_of_a_cohort_never_reach_100_or_0() {
        // Cohort 10, 20, 20, 30 (n = 4).
        // Top, 30: below 3, equal 1 → 100 × 3.5 / 4 = 87.5.
        // Bottom, 10: below 0, equal 1 → 100 × 0.5 / 4 = 12.5.
        let cohort = [10.0, 20.0, 20.0, 30.0];
        assert_eq!(percentile_rank(30.0, &cohort), Some(87.5));
        assert_eq!(percentile_rank(10.0, &cohort), Some(12.5));
        assert_eq!(percentile_rank_sorted(30.0, &cohort), Some(87.5));
        assert_eq!(percentile_rank_sorted(10.0, &cohort), Some(12.5));
        // 100 distinct scores 1..=100: the best is 100 × 99.5 / 100 = 99.5, the worst 0.5.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_rank_sorted(100.0, &hundred), Some(99.5));
        assert_eq!(percentile_rank_sorted(1.0, &hundred), Some(0.5));
    }

    #[test]
    fn an_empty_cohort_or_a_nan_score_has_no_percentile() {
        assert_eq!(percentile_rank(50.0, &[]), None);
        assert_eq!(percentile_rank_sorted(50.0, &[]), None);
        assert_eq!(percentile_rank(f64::NAN, &[1.0, 2.0]), None);
        assert_eq!(percentile_rank_sorted(f64::NAN, &[1.0, 2.0]), None);
    }

    #[test]
    fn competition_ranking_gives_ties_the_same_rank_and_skips_the_next() {
        // 90, 80, 80, 70 → ranks 1, 2, 2, 4 ("1224").
        let desc = [90.0, 80.0, 80.0, 70.0];
        let ranks: Vec<usize> = desc.iter().map(|&s| rank(s, &desc)).collect();
        assert_eq!(ranks, vec![1, 2, 2, 4]);
        // A score above everyone ranks 1, below everyone n + 1; empty cohort ranks 1.
        assert_eq!(rank(95.0, &desc), 1);
        assert_eq!(rank(10.0, &desc), 5);
        assert_eq!(rank(10.0, &[]), 1);
        assert_eq!(rank(f64::NAN, &desc), 5);

        let cohort = Cohort::new(desc.to_vec()).unwrap();
        let ranks: Vec<usize> = desc.iter().map(|&s| cohort.rank(s)).collect();
        assert_eq!(ranks, vec![1, 2, 2, 4]);
    }

    #[test]
    fn a_cohort_rejects_non_finite_scores_and_treats_negative_zero_as_zero() {
        assert!(matches!(
            Cohort::new(vec![1.0, f64::NAN]),
            Err(NonFiniteScore { index: 1, score }) if score.is_nan()
        ));
        assert!(Cohort::new(vec![f64::INFINITY]).is_err());
        let cohort = Cohort::new(vec![0.0, -0.0, 1.0]).unwrap();
        // Both zeros are equal: below 0, equal 2 → 100 × 1 / 3.
        assert_eq!(cohort.percentile_rank(0.0), Some(100.0 / 3.0));
        assert_eq!(cohort.percentile_rank(-0.0), Some(100.0 / 3.0));
        assert!(serde_json::from_str::<Cohort>("[3.0, 1.0, 2.0]")
            .is_ok_and(|c| c.as_sorted() == [1.0, 2.0, 3.0]));
    }

    #[test]
    fn sorted_and_unsorted_versions_agree_on_random_cohorts() {
        let mut rng = StdRng::seed_from_u64(0x5C0E);
        for round in 0..500 {
            let n = rng.random_range(1..200);
            // Alternate between heavily tied integer levels and continuous scores.
            let cohort: Vec<f64> = (0..n)
                .map(|_| {
                    if round % 2 == 0 {
                        f64::from(rng.random_range(0..8u8))
                    } else {
                        rng.random_range(0.0..100.0)
                    }
                })
                .collect();
            let sorted = Cohort::new(cohort.clone()).unwrap();
            let mut desc = sorted.as_sorted().to_vec();
            desc.reverse();
            // Query every member plus scores that are not in the cohort.
            let queries = cohort.iter().copied().chain([
                -1.0,
                3.5,
                50.0,
                101.0,
                rng.random_range(0.0..100.0),
            ]);
            for q in queries {
                let unsorted = percentile_rank(q, &cohort);
                assert_eq!(percentile_rank_sorted(q, sorted.as_sorted()), unsorted);
                assert_eq!(sorted.percentile_rank(q), unsorted);
                let naive_rank = 1 + cohort.iter().filter(|&&x| x > q).count();
                assert_eq!(rank(q, &desc), naive_rank);
                assert_eq!(sorted.rank(q), naive_rank);
                let p = unsorted.unwrap();
                assert!((0.0..=100.0).contains(&p));
            }
        }
    }

    #[test]
    fn a_million_score_leaderboard_answers_by_binary_search() {
        // 1,000,000 scores 0.0, 0.1, …, each value twice (already ascending, no sort needed).
        let sorted: Vec<f64> = (0..1_000_000).map(|i| f64::from(i / 2) / 10.0).collect();
        // Score 25000.0 = value index 250000: below 500,000, equal 2 → 100 × 500,001 / 1,000,000.
        assert_eq!(percentile_rank_sorted(25_000.0, &sorted), Some(50.0001));
        let desc: Vec<f64> = sorted.iter().rev().copied().collect();
        // Strictly higher: the 249,999 values above it, twice each → rank 499,999.
        assert_eq!(rank(25_000.0, &desc), 499_999);
    }
}
