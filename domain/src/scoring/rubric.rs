//! Rubric score aggregation.
//!
//! A reviewer scores every criterion of the rubric at one of its levels. A criterion's score is
//! normalised to 0–1 from its level range, `(score − min) / (max − min)`, so a criterion scored
//! 1–4 and one scored 0–2 count the same at their top level. The weighted mean of the normalised
//! scores, times 100, is the reviewer's score on a 0–100 scale:
//!
//! ```text
//! weighted_score = 100 × Σ_c w_c × (s_c − min_c) / (max_c − min_c) / Σ_c w_c
//! ```
//!
//! Over several reviewers, [`aggregate_score`] first takes the mean of the reviewers' scores per
//! criterion, then weights as above. (Because the formula is linear this equals the mean of the
//! reviewers' weighted scores; computing it per criterion also yields the per-criterion means a
//! hiring manager reads.)
//!
//! A review must score every criterion exactly once, with a finite score inside the criterion's
//! level range; anything else is a [`ScoringError`], never a silent zero.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use crate::assessment::Rubric;

/// One criterion's weight and the range of its level scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionWeight {
    /// The criterion's stable key, e.g. `api_design`.
    pub criterion: String,
    /// Relative weight (finite, > 0).
    pub weight: f64,
    /// Score of the lowest level (normalises to 0).
    pub min_score: f64,
    /// Score of the highest level (normalises to 100); greater than `min_score`.
    pub max_score: f64,
}

/// The rubric as the arithmetic needs it: criteria with weights and level ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RubricWeights {
    pub criteria: Vec<CriterionWeight>,
}

/// A reviewer's score on one criterion (the numeric score of the level chosen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CriterionScore {
    pub criterion: String,
    pub score: f64,
}

/// One reviewer's scores on a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub reviewer: String,
    pub scores: Vec<CriterionScore>,
}

/// The aggregate over reviewers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AggregateScore {
    /// Weighted score of the per-criterion means, 0–100.
    pub score: f64,
    /// Mean of the reviewers' scores per criterion, in rubric order (on the level scale, not
    /// normalised).
    pub criteria: Vec<CriterionScore>,
    /// How many reviews were aggregated.
    pub reviewers: usize,
}

/// Why a score could not be computed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScoringError {
    #[error("the rubric has no criteria")]
    EmptyRubric,
    #[error("criterion {criterion:?} appears more than once in the rubric")]
    DuplicateRubricCriterion { criterion: String },
    #[error("criterion {criterion:?} has weight {weight}; weights must be finite and > 0")]
    InvalidWeight { criterion: String, weight: f64 },
    #[error(
        "criterion {criterion:?} has level range {min_score}..={max_score}; it must be finite with min < max"
    )]
    InvalidLevelRange {
        criterion: String,
        min_score: f64,
        max_score: f64,
    },
    #[error("review{} does not score {missing:?}", reviewer_suffix(.reviewer))]
    IncompleteReview {
        reviewer: Option<String>,
        missing: Vec<String>,
    },
    #[error("review{} scores {criterion:?}, which is not in the rubric", reviewer_suffix(.reviewer))]
    UnknownCriterion {
        reviewer: Option<String>,
        criterion: String,
    },
    #[error("review{} scores {criterion:?} more than once", reviewer_suffix(.reviewer))]
    DuplicateScore {
        reviewer: Option<String>,
        criterion: String,
    },
    #[error(
        "review{} scores {criterion:?} at {score}, outside its level range {min_score}..={max_score}",
        reviewer_suffix(.reviewer)
    )]
    ScoreOutOfRange {
        reviewer: Option<String>,
        criterion: String,
        score: f64,
        min_score: f64,
        max_score: f64,
    },
    #[error("there are no reviews to aggregate")]
    NoReviews,
}

fn reviewer_suffix(reviewer: &Option<String>) -> String {
    reviewer
        .as_ref()
        .map_or_else(String::new, |r| format!(" by {r:?}"))
}

impl RubricWeights {
    /// The weights and level ranges of an assessment's rubric: each criterion's range runs from
    /// its lowest to its highest level score.
    pub fn from_rubric(rubric: &Rubric) -> Result<Self, ScoringError> {
        let criteria = rubric
            .criteria
            .iter()
            .map(|c| {
                let scores = c.levels.iter().map(|l| f64::from(l.score));
                CriterionWeight {
                    criterion: c.key.clone(),
                    weight: f64::from(c.weight),
                    min_score: scores.clone().fold(f64::INFINITY, f64::min),
                    max_score: scores.fold(f64::NEG_INFINITY, f64::max),
                }
            })
            .collect();
        let weights = Self { criteria };
        weights.validate()?;
        Ok(weights)
    }

    /// Checks the rubric: at least one criterion, unique keys, weights finite and > 0, level
    /// ranges finite with min < max.
    pub fn validate(&self) -> Result<(), ScoringError> {
        if self.criteria.is_empty() {
            return Err(ScoringError::EmptyRubric);
        }
        let mut seen = BTreeSet::new();
        for c in &self.criteria {
            if !seen.insert(c.criterion.as_str()) {
                return Err(ScoringError::DuplicateRubricCriterion {
                    criterion: c.criterion.clone(),
                });
            }
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return Err(ScoringError::InvalidWeight {
                    criterion: c.criterion.clone(),
                    weight: c.weight,
                });
            }
            if !(c.min_score.is_finite() && c.max_score.is_finite() && c.min_score < c.max_score) {
                return Err(ScoringError::InvalidLevelRange {
                    criterion: c.criterion.clone(),
                    min_score: c.min_score,
                    max_score: c.max_score,
                });
            }
        }
        Ok(())
    }

    /// `100 × Σ w_c × norm(s_c) / Σ w_c` for per-criterion scores given in rubric order.
    fn weighted(&self, scores_in_order: &[f64]) -> f64 {
        let mut num = 0.0;
        let mut den = 0.0;
        for (c, &s) in self.criteria.iter().zip(scores_in_order) {
            num += c.weight * (s - c.min_score) / (c.max_score - c.min_score);
            den += c.weight;
        }
        100.0 * num / den
    }
}

/// One review's scores in rubric order, after checking the review is complete and valid.
fn scores_in_rubric_order(
    rubric: &RubricWeights,
    reviewer: Option<&str>,
    scores: &[CriterionScore],
) -> Result<Vec<f64>, ScoringError> {
    let reviewer = || reviewer.map(str::to_owned);
    let index: BTreeMap<&str, usize> = rubric
        .criteria
        .iter()
        .enumerate()
        .map(|(i, c)| (c.criterion.as_str(), i))
        .collect();
    let mut by_criterion: Vec<Option<f64>> = vec![None; rubric.criteria.len()];
    for s in scores {
        let Some(&i) = index.get(s.criterion.as_str()) else {
            return Err(ScoringError::UnknownCriterion {
                reviewer: reviewer(),
                criterion: s.criterion.clone(),
            });
        };
        if by_criterion[i].is_some() {
            return Err(ScoringError::DuplicateScore {
                reviewer: reviewer(),
                criterion: s.criterion.clone(),
            });
        }
        let c = &rubric.criteria[i];
        if !(s.score.is_finite() && c.min_score <= s.score && s.score <= c.max_score) {
            return Err(ScoringError::ScoreOutOfRange {
                reviewer: reviewer(),
                criterion: s.criterion.clone(),
                score: s.score,
                min_score: c.min_score,
                max_score: c.max_score,
            });
        }
        by_criterion[i] = Some(s.score);
    }
    let missing: Vec<String> = rubric
        .criteria
        .iter()
        .zip(&by_criterion)
        .filter(|(_, s)| s.is_none())
        .map(|(c, _)| c.criterion.clone())
        .collect();
    if !missing.is_empty() {
        return Err(ScoringError::IncompleteReview {
            reviewer: reviewer(),
            missing,
        });
    }
    Ok(by_criterion.into_iter().flatten().collect())
}

/// One reviewer's weighted score, 0–100 (see the module docs for the formula).
///
/// Errors when the rubric is invalid, or the scores miss a criterion, score one twice, score a
/// criterion not in the rubric, or fall outside a criterion's level range.
pub fn weighted_score(
    rubric: &RubricWeights,
    scores: &[CriterionScore],
) -> Result<f64, ScoringError> {
    rubric.validate()?;
    let ordered = scores_in_rubric_order(rubric, None, scores)?;
    Ok(rubric.weighted(&ordered))
}

/// The aggregate over reviewers: the mean of the reviewers' scores per criterion, then weighted
/// as in [`weighted_score`]. Every review must be complete; the first invalid review (in the
/// order given) is reported with its reviewer.
pub fn aggregate_score(
    rubric: &RubricWeights,
    reviews: &[Review],
) -> Result<AggregateScore, ScoringError> {
    rubric.validate()?;
    if reviews.is_empty() {
        return Err(ScoringError::NoReviews);
    }
    let mut sums = vec![0.0; rubric.criteria.len()];
    for review in reviews {
        let ordered = scores_in_rubric_order(rubric, Some(&review.reviewer), &review.scores)?;
        for (sum, s) in sums.iter_mut().zip(ordered) {
            *sum += s;
        }
    }
    let n = reviews.len() as f64;
    let means: Vec<f64> = sums.into_iter().map(|s| s / n).collect();
    Ok(AggregateScore {
        score: rubric.weighted(&means),
        criteria: rubric
            .criteria
            .iter()
            .zip(&means)
            .map(|(c, &m)| CriterionScore {
                criterion: c.criterion.clone(),
                score: m,
            })
            .collect(),
        reviewers: reviews.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assessment::{Criterion, Level};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn criterion(key: &str, weight: f64, min_score: f64, max_score: f64) -> CriterionWeight {
        CriterionWeight {
            criterion: key.into(),
            weight,
            min_score,
            max_score,
        }
    }

    fn score(criterion: &str, score: f64) -> CriterionScore {
        CriterionScore {
            criterion: criterion.into(),
            score,
        }
    }

    /// design: weight 3, levels 1–4; testing: weight 2, levels 1–4; communication: weight 1,
    /// levels 1–3. Total weight 6.
    fn rubric() -> RubricWeights {
        RubricWeights {
            criteria: vec![
                criterion("design", 3.0, 1.0, 4.0),
                criterion("testing", 2.0, 1.0, 4.0),
                criterion("communication", 1.0, 1.0, 3.0),
            ],
        }
    }

    fn alice() -> Review {
        Review {
            reviewer: "alice".into(),
            scores: vec![
                score("design", 4.0),
                score("testing", 2.0),
                score("communication", 3.0),
            ],
        }
    }

    fn bob() -> Review {
        Review {
            reviewer: "bob".into(),
            // Order differs from the rubric's on purpose.
            scores: vec![
                score("communication", 1.0),
                score("design", 3.0),
                score("testing", 3.0),
            ],
        }
    }

    #[test]
    fn a_reviewers_weighted_score_normalises_each_criterion_by_its_level_range() {
        // alice: design 4 → (4−1)/3 = 1; testing 2 → (2−1)/3 = 1/3; communication 3 → (3−1)/2 = 1.
        // (3×1 + 2×1/3 + 1×1) / 6 = (14/3) / 6 = 7/9 → 100 × 7/9 = 700/9 ≈ 77.78.
        assert!(close(
            weighted_score(&rubric(), &alice().scores).unwrap(),
            700.0 / 9.0
        ));
        // bob: design 3 → 2/3; testing 3 → 2/3; communication 1 → 0.
        // (3×2/3 + 2×2/3 + 0) / 6 = (10/3) / 6 = 5/9 → 500/9 ≈ 55.56.
        assert!(close(
            weighted_score(&rubric(), &bob().scores).unwrap(),
            500.0 / 9.0
        ));
    }

    #[test]
    fn the_aggregate_takes_the_mean_per_criterion_then_weights() {
        // Means: design (4+3)/2 = 3.5 → 2.5/3 = 5/6; testing (2+3)/2 = 2.5 → 1.5/3 = 1/2;
        // communication (3+1)/2 = 2 → 1/2.
        // (3×5/6 + 2×1/2 + 1×1/2) / 6 = (5/2 + 1 + 1/2) / 6 = 4/6 → 200/3 ≈ 66.67,
        // which is also the mean of 700/9 and 500/9.
        let agg = aggregate_score(&rubric(), &[alice(), bob()]).unwrap();
        assert!(close(agg.score, 200.0 / 3.0));
        assert_eq!(agg.reviewers, 2);
        let means: Vec<(&str, f64)> = agg
            .criteria
            .iter()
            .map(|c| (c.criterion.as_str(), c.score))
            .collect();
        assert_eq!(
            means,
            vec![("design", 3.5), ("testing", 2.5), ("communication", 2.0)]
        );
    }

    #[test]
    fn the_lowest_levels_score_0_and_the_highest_score_100() {
        let lowest = [
            score("design", 1.0),
            score("testing", 1.0),
            score("communication", 1.0),
        ];
        let highest = [
            score("design", 4.0),
            score("testing", 4.0),
            score("communication", 3.0),
        ];
        assert_eq!(weighted_score(&rubric(), &lowest).unwrap(), 0.0);
        assert!(close(weighted_score(&rubric(), &highest).unwrap(), 100.0));
    }

    #[test]
    fn a_review_missing_a_criterion_is_an_error_naming_the_reviewer_and_the_criteria() {
        let mut incomplete = bob();
        incomplete.scores.retain(|s| s.criterion == "design");
        assert_eq!(
            aggregate_score(&rubric(), &[alice(), incomplete]),
            Err(ScoringError::IncompleteReview {
                reviewer: Some("bob".into()),
                missing: vec!["testing".into(), "communication".into()],
            })
        );
        assert_eq!(
            weighted_score(&rubric(), &[]),
            Err(ScoringError::IncompleteReview {
                reviewer: None,
                missing: vec!["design".into(), "testing".into(), "communication".into()],
            })
        );
    }

    #[test]
    fn unknown_duplicate_and_out_of_range_scores_are_errors() {
        let mut unknown = alice().scores;
        unknown.push(score("style", 2.0));
        assert!(matches!(
            weighted_score(&rubric(), &unknown),
            Err(ScoringError::UnknownCriterion { criterion, .. }) if criterion == "style"
        ));

        let mut duplicate = alice().scores;
        duplicate.push(score("design", 2.0));
        assert!(matches!(
            weighted_score(&rubric(), &duplicate),
            Err(ScoringError::DuplicateScore { criterion, .. }) if criterion == "design"
        ));

        for bad in [0.0, 4.5, f64::NAN, f64::INFINITY] {
            let mut out = alice().scores;
            out[1].score = bad;
            assert!(matches!(
                weighted_score(&rubric(), &out),
                Err(ScoringError::ScoreOutOfRange { criterion, .. }) if criterion == "testing"
            ));
        }
    }

    #[test]
    fn an_invalid_rubric_or_no_reviews_is_an_error() {
        let empty = RubricWeights { criteria: vec![] };
        assert_eq!(weighted_score(&empty, &[]), Err(ScoringError::EmptyRubric));

        let mut zero_weight = rubric();
        zero_weight.criteria[0].weight = 0.0;
        assert!(matches!(
            weighted_score(&zero_weight, &alice().scores),
            Err(ScoringError::InvalidWeight { .. })
        ));

        let mut flat = rubric();
        flat.criteria[2].max_score = 1.0;
        assert!(matches!(
            weighted_score(&flat, &alice().scores),
            Err(ScoringError::InvalidLevelRange { .. })
        ));

        let mut twice = rubric();
        twice.criteria[1].criterion = "design".into();
        assert!(matches!(
            weighted_score(&twice, &alice().scores),
            Err(ScoringError::DuplicateRubricCriterion { .. })
        ));

        assert_eq!(
            aggregate_score(&rubric(), &[]),
            Err(ScoringError::NoReviews)
        );
    }

    #[test]
    fn rubric_weights_come_from_an_assessment_rubric_s_weights_and_level_scores() {
        let level = |score: u8| Level {
            score,
            descriptor: format!("level {score}"),
        };
        let rubric = Rubric {
            criteria: vec![
                Criterion {
                    key: "design".into(),
                    name: "Design".into(),
                    weight: 3,
                    levels: vec![level(1), level(2), level(3), level(4)],
                },
                Criterion {
                    key: "communication".into(),
                    name: "Communication".into(),
                    weight: 1,
                    levels: vec![level(0), level(2)],
                },
            ],
        };
        assert_eq!(
            RubricWeights::from_rubric(&rubric).unwrap(),
            RubricWeights {
                criteria: vec![
                    criterion("design", 3.0, 1.0, 4.0),
                    criterion("communication", 1.0, 0.0, 2.0),
                ],
            }
        );

        let mut one_level = rubric.clone();
        one_level.criteria[1].levels.truncate(1);
        assert!(matches!(
            RubricWeights::from_rubric(&one_level),
            Err(ScoringError::InvalidLevelRange { .. })
        ));
    }

    #[test]
    fn scores_serialise_as_plain_json() {
        let json = serde_json::to_value(score("design", 3.0)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "criterion": "design", "score": 3.0 })
        );
    }
}
