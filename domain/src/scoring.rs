//! Scoring arithmetic: rubric score aggregation, a candidate's standing in a cohort, and
//! agreement between reviewers. Everything here is a pure function of its arguments (no I/O, no
//! clock, no randomness), so the numbers reviewers, hiring managers and analytics read can be
//! recomputed from the events at any time.
//!
//! - [`rubric`]: [`weighted_score`] for one reviewer's scores and [`aggregate_score`] over
//!   several reviewers, both normalised to 0–100 from each criterion's level range. An incomplete
//!   review is an error ([`ScoringError::IncompleteReview`]), never a silent zero.
//! - [`percentile`]: the mid-rank [`percentile_rank`] (`100 × (below + ½ × equal) / n`), the same
//!   over a sorted cohort in O(log n) ([`percentile_rank_sorted`], [`Cohort`]), and the
//!   competition [`rank`] ("1224").
//! - [`alpha`]: Krippendorff's alpha ([`krippendorff_alpha`]) for nominal, ordinal and interval
//!   data with missing values, computed via the coincidence matrix.

pub mod alpha;
pub mod percentile;
pub mod rubric;

pub use alpha::{
    alpha_from_coincidences, coincidence_matrix, krippendorff_alpha, AlphaError, CoincidenceMatrix,
    Metric,
};
pub use percentile::{percentile_rank, percentile_rank_sorted, rank, Cohort, NonFiniteScore};
pub use rubric::{
    aggregate_score, weighted_score, AggregateScore, CriterionScore, CriterionWeight, Review,
    RubricWeights, ScoringError,
};
