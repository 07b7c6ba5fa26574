//! Krippendorff's alpha: agreement between reviewers beyond what chance would give.
//!
//! Follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability".
//!
//! **Input.** Reliability data as units × coders: `units[u][i]` is coder `i`'s value for unit `u`,
//! `None` when that coder did not code that unit. Rows may have different lengths (a short row
//! means the coders past its end are missing). For reviewer agreement a unit is what was scored
//! (e.g. one submission on one rubric criterion) and a coder a reviewer. Values must be finite.
//!
//! **Coincidence matrix.** Only *pairable* values count: those in units coded by at least two
//! coders (`m_u ≥ 2` values); units with fewer values are dropped. Each unit contributes its
//! `m_u (m_u − 1)` ordered pairs of values from different coders, each weighted `1 / (m_u − 1)`:
//!
//! ```text
//! o_ck = Σ_u (number of c–k pairs in u) / (m_u − 1),   n_c = Σ_k o_ck,   n = Σ_c n_c
//! ```
//!
//! so every pairable value contributes exactly 1 to the matrix and `n` is the number of pairable
//! values.
//!
//! **Alpha.**
//!
//! ```text
//! α = 1 − D_o / D_e = 1 − (n − 1) × Σ_c Σ_k o_ck δ²_ck / Σ_c Σ_k n_c n_k δ²_ck
//! ```
//!
//! with the difference function δ² of the [`Metric`]:
//!
//! - nominal: `δ²_ck = 0` if `c = k`, else 1;
//! - ordinal: `δ²_ck = (Σ_{g=c}^{k} n_g − (n_c + n_k) / 2)²`, over the distinct values in order
//!   (only the order of the values matters, and differences grow with how many values lie
//!   between them);
//! - interval: `δ²_ck = (c − k)²`.
//!
//! α = 1 is perfect agreement, 0 agreement at chance level, and negative values systematic
//! disagreement.
//!
//! **Undefined.** α is undefined, and [`krippendorff_alpha`] returns an [`AlphaError`], when
//! there are no pairable values ([`AlphaError::NoPairableValues`]: no unit was coded by two
//! coders) or when `D_e = 0` ([`AlphaError::NoVariation`]: all pairable values are the same
//! value, so there is no variation for agreement to explain; for the three metrics here that is
//! exactly when there is a single distinct pairable value).

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

/// The level of measurement of the values, which sets how different two values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Categories: any two different values are equally different.
    Nominal,
    /// Ranks: only the order of the values matters.
    Ordinal,
    /// Equal intervals: the difference is the squared distance between the values.
    Interval,
}

/// Why alpha could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum AlphaError {
    #[error("value {value} of coder {coder} in unit {unit} is not finite")]
    NonFiniteValue {
        unit: usize,
        coder: usize,
        value: f64,
    },
    #[error("no unit has values from two coders, so no values are pairable; alpha is undefined")]
    NoPairableValues,
    #[error(
        "all pairable values are the same value (expected disagreement is 0); alpha is undefined"
    )]
    NoVariation,
}

/// The coincidence matrix of the pairable values (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct CoincidenceMatrix {
    /// The distinct pairable values, ascending.
    pub values: Vec<f64>,
    /// `o_ck`, row-major: `coincidences[c * values.len() + k]`, indices into `values`.
    pub coincidences: Vec<f64>,
}

impl CoincidenceMatrix {
    /// `o_ck` for the `c`-th and `k`-th distinct values.
    pub fn get(&self, c: usize, k: usize) -> f64 {
        self.coincidences[c * self.values.len() + k]
    }

    /// The marginals `n_c = Σ_k o_ck`, one per distinct value.
    pub fn marginals(&self) -> Vec<f64> {
        let v = self.values.len();
        (0..v)
            .map(|c| self.coincidences[c * v..(c + 1) * v].iter().sum())
            .collect()
    }

    /// `n`, the number of pairable values.
    pub fn total(&self) -> f64 {
        self.coincidences.iter().sum()
    }
}

/// Builds the coincidence matrix of units × coders reliability data. Errors only on a
/// non-finite value; with no pairable values the matrix is empty. `-0.0` counts as `0.0`.
pub fn coincidence_matrix<U: AsRef<[Option<f64>]>>(
    units: &[U],
) -> Result<CoincidenceMatrix, AlphaError> {
    // The pairable values of each unit (units with fewer than two values are dropped).
    let mut pairable: Vec<Vec<f64>> = Vec::new();
    for (unit, row) in units.iter().enumerate() {
        let mut values = Vec::new();
        for (coder, value) in row.as_ref().iter().enumerate() {
            if let Some(value) = *value {
                if !value.is_finite() {
                    return Err(AlphaError::NonFiniteValue { unit, coder, value });
                }
                // Adding 0.0 turns -0.0 into 0.0 and leaves every other value as it is.
                values.push(value + 0.0);
            }
        }
        if values.len() >= 2 {
            pairable.push(values);
        }
    }

    let mut distinct: Vec<f64> = pairable.iter().flatten().copied().collect();
    distinct.sort_unstable_by(f64::total_cmp);
    distinct.dedup();
    let v = distinct.len();
    let index = |x: f64| {
        distinct
            .binary_search_by(|d| d.total_cmp(&x))
            .expect("every pairable value is among the distinct values")
    };

    let mut coincidences = vec![0.0; v * v];
    let mut counts: Vec<(usize, f64)> = Vec::new();
    for values in &pairable {
        // How often each distinct value occurs in this unit.
        let mut idx: Vec<usize> = values.iter().map(|&x| index(x)).collect();
        idx.sort_unstable();
        counts.clear();
        for i in idx {
            match counts.last_mut() {
                Some((last, count)) if *last == i => *count += 1.0,
                _ => counts.push((i, 1.0)),
            }
        }
        // Ordered pairs from different coders: n_c × n_k pairs for c ≠ k, n_c × (n_c − 1) for
        // c = k, each weighted 1 / (m_u − 1).
        let weight = 1.0 / (values.len() - 1) as f64;
        for &(c, n_c) in &counts {
            for &(k, n_k) in &counts {
                let pairs = if c == k { n_c * (n_c - 1.0) } else { n_c * n_k };
                coincidences[c * v + k] += pairs * weight;
            }
        }
    }
    Ok(CoincidenceMatrix {
        values: distinct,
        coincidences,
    })
}

/// Krippendorff's alpha of units × coders reliability data under `metric` (see the module docs
/// for the definition, the input layout and when alpha is undefined).
pub fn krippendorff_alpha<U: AsRef<[Option<f64>]>>(
    units: &[U],
    metric: Metric,
) -> Result<f64, AlphaError> {
    let matrix = coincidence_matrix(units)?;
    alpha_from_coincidences(&matrix, metric)
}

/// Alpha from an already built coincidence matrix.
pub fn alpha_from_coincidences(
    matrix: &CoincidenceMatrix,
    metric: Metric,
) -> Result<f64, AlphaError> {
    let v = matrix.values.len();
    if v == 0 {
        return Err(AlphaError::NoPairableValues);
    }
    if v == 1 {
        return Err(AlphaError::NoVariation);
    }
    let marginals = matrix.marginals();
    let n: f64 = marginals.iter().sum();
    // cumulative[i] = Σ_{g < i} n_g, for the ordinal metric.
    let cumulative: Vec<f64> = std::iter::once(0.0)
        .chain(marginals.iter().scan(0.0, |acc, &n_g| {
            *acc += n_g;
            Some(*acc)
        }))
        .collect();
    let delta2 = |c: usize, k: usize| -> f64 {
        if c == k {
            return 0.0;
        }
        match metric {
            Metric::Nominal => 1.0,
            Metric::Ordinal => {
                let (lo, hi) = (c.min(k), c.max(k));
                let d = cumulative[hi + 1] - cumulative[lo] - (marginals[lo] + marginals[hi]) / 2.0;
                d * d
            }
            Metric::Interval => {
                let d = matrix.values[c] - matrix.values[k];
                d * d
            }
        }
    };

    let mut observed = 0.0;
    let mut expected = 0.0;
    for c in 0..v {
        for k in 0..v {
            let d2 = delta2(c, k);
            observed += matrix.get(c, k) * d2;
            expected += marginals[c] * marginals[k] * d2;
        }
    }
    if expected <= 0.0 {
        return Err(AlphaError::NoVariation);
    }
    Ok(1.0 - (n - 1.0) * observed / expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Option<f64> = None;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn to_units(coders: &[&[Option<f64>]]) -> Vec<Vec<Option<f64>>> {
        let units = coders[0].len();
        (0..units)
            .map(|u| coders.iter().map(|c| c[u]).collect())
            .collect()
    }

    fn values(xs: &[f64]) -> Vec<Option<f64>> {
        xs.iter().copied().map(Some).collect()
    }

    /// Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the example with four
    /// observers, twelve units and missing values (values 1–5), given observers × units and
    /// transposed to units × coders.
    fn krippendorff_2011() -> Vec<Vec<Option<f64>>> {
        let s = |x: f64| Some(x);
        #[rustfmt::skip]
        let a = [s(1.), s(2.), s(3.), s(3.), s(2.), s(1.), s(4.), s(1.), s(2.), M,     M,     M    ];
        #[rustfmt::skip]
        let b = [s(1.), s(2.), s(3.), s(3.), s(2.), s(2.), s(4.), s(1.), s(2.), s(5.), M,     s(3.)];
        #[rustfmt::skip]
        let c = [M,     s(3.), s(3.), s(3.), s(2.), s(3.), s(4.), s(2.), s(2.), s(5.), s(1.), M    ];
        #[rustfmt::skip]
        let d = [s(1.), s(2.), s(3.), s(3.), s(2.), s(4.), s(4.), s(1.), s(2.), s(5.), s(1.), M    ];
        to_units(&[&a, &b, &c, &d])
    }

    #[test]
    fn the_published_example_has_the_published_coincidence_matrix() {
        // Unit 12 has a single value (B's 3) and is not pairable; the other units hold
        // 3+4+4+4+4+4+4+4+4+3+2 = 40 pairable values.
        // o_11: unit 1 (1,1,1; m=3) 6 pairs × 1/2 = 3; unit 8 (1,1,2,1; m=4) 6 pairs × 1/3 = 2;
        //       unit 11 (1,1; m=2) 2 pairs × 1 = 2 → 7.
        // o_12: unit 6 (1,2,3,4) 1 pair × 1/3; unit 8 3 pairs × 1/3 = 1 → 4/3.
        let m = coincidence_matrix(&krippendorff_2011()).unwrap();
        assert_eq!(m.values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(close(m.total(), 40.0));
        let marginals = m.marginals();
        for (got, want) in marginals.iter().zip([9.0, 13.0, 10.0, 5.0, 3.0]) {
            assert!(close(*got, want), "{marginals:?}");
        }
        let third = 1.0 / 3.0;
        #[rustfmt::skip]
        let published = [
            7.0,       4.0 * third, third,       third,  0.0,
            4.0 * third, 10.0,      4.0 * third, third,  0.0,
            third,     4.0 * third, 8.0,         third,  0.0,
            third,     third,       third,       4.0,    0.0,
            0.0,       0.0,         0.0,         0.0,    3.0,
        ];
        for (i, (got, want)) in m.coincidences.iter().zip(published).enumerate() {
            assert!(close(*got, want), "o[{}][{}] = {got}", i / 5 + 1, i % 5 + 1);
        }
    }

    #[test]
    fn the_published_example_gives_the_published_nominal_ordinal_and_interval_alphas() {
        let data = krippendorff_2011();
        let nominal = krippendorff_alpha(&data, Metric::Nominal).unwrap();
        let ordinal = krippendorff_alpha(&data, Metric::Ordinal).unwrap();
        let interval = krippendorff_alpha(&data, Metric::Interval).unwrap();
        // Nominal by hand: off-diagonal coincidences 40 − (7+10+8+4+3) = 8;
        // Σ_{c≠k} n_c n_k = 40² − (9² + 13² + 10² + 5² + 3²) = 1600 − 384 = 1216;
        // α = 1 − 39 × 8 / 1216 = 1 − 312/1216 ≈ 0.7434.
        assert!(close(nominal, 1.0 - 312.0 / 1216.0));
        assert_eq!(format!("{nominal:.3}"), "0.743");
        assert_eq!(format!("{ordinal:.3}"), "0.815");
        assert_eq!(format!("{interval:.3}"), "0.849");
        // Exact values, cross-checked with rational arithmetic outside this code:
        // ordinal 108577/133160 ≈ 0.81539, interval 951/1120 ≈ 0.84911.
        assert!(close(ordinal, 108_577.0 / 133_160.0));
        assert!(close(interval, 951.0 / 1120.0));
    }

    #[test]
    fn perfect_agreement_gives_alpha_1() {
        let data = [
            values(&[1.0, 1.0, 1.0]),
            values(&[2.0, 2.0, 2.0]),
            vec![Some(4.0), None, Some(4.0)],
            values(&[3.0, 3.0]),
        ];
        for metric in [Metric::Nominal, Metric::Ordinal, Metric::Interval] {
            assert_eq!(krippendorff_alpha(&data, metric), Ok(1.0));
        }
    }

    #[test]
    fn a_two_coder_example_matches_the_hand_computation() {
        // Coder A: 1 2 3 3; coder B: 1 2 3 4 (4 units, m_u = 2, each ordered pair weighs 1).
        // Coincidences: o_11 = o_22 = o_33 = 2, o_34 = o_43 = 1.
        // Marginals: n_1 = 2, n_2 = 2, n_3 = 3, n_4 = 1, n = 8.
        let data = [
            values(&[1.0, 1.0]),
            values(&[2.0, 2.0]),
            values(&[3.0, 3.0]),
            values(&[3.0, 4.0]),
        ];
        // Nominal: observed Σ_{c≠k} o_ck = 2; expected Σ_{c≠k} n_c n_k = 64 − (4+4+9+1) = 46;
        // α = 1 − 7 × 2 / 46 = 16/23 ≈ 0.6957.
        let nominal = krippendorff_alpha(&data, Metric::Nominal).unwrap();
        assert!(close(nominal, 16.0 / 23.0));
        // Interval: observed 2 × (3−4)² = 2; expected 2 × Σ_{c<k} n_c n_k (c−k)² =
        // 2 × (2·2·1 + 2·3·4 + 2·1·9 + 2·3·1 + 2·1·4 + 3·1·1) = 2 × 63 = 126;
        // α = 1 − 7 × 2 / 126 = 8/9 ≈ 0.8889.
        let interval = krippendorff_alpha(&data, Metric::Interval).unwrap();
        assert!(close(interval, 8.0 / 9.0));
        // Ordinal: δ_ck = Σ_{g=c}^{k} n_g − (n_c + n_k)/2:
        // δ_12 = 4 − 2 = 2, δ_13 = 7 − 2.5 = 4.5, δ_14 = 8 − 1.5 = 6.5,
        // δ_23 = 5 − 2.5 = 2.5, δ_24 = 6 − 1.5 = 4.5, δ_34 = 4 − 2 = 2.
        // Observed: 2 × δ²_34 = 8. Expected: 2 × (4·4 + 6·20.25 + 2·42.25 + 6·6.25 + 2·20.25
        // + 3·4) = 2 × 312 = 624. α = 1 − 7 × 8 / 624 = 71/78 ≈ 0.9103.
        let ordinal = krippendorff_alpha(&data, Metric::Ordinal).unwrap();
        assert!(close(ordinal, 71.0 / 78.0));
    }

    #[test]
    fn systematic_disagreement_gives_a_negative_alpha() {
        // A: 1 2 1 2; B: 2 1 2 1. o_12 = o_21 = 4, n_1 = n_2 = 4, n = 8.
        // Nominal (= interval here, the values being 1 apart): α = 1 − 7 × 8 / (2 × 16) = −0.75.
        let data = [
            values(&[1.0, 2.0]),
            values(&[2.0, 1.0]),
            values(&[1.0, 2.0]),
            values(&[2.0, 1.0]),
        ];
        assert!(close(
            krippendorff_alpha(&data, Metric::Nominal).unwrap(),
            -0.75
        ));
        assert!(close(
            krippendorff_alpha(&data, Metric::Interval).unwrap(),
            -0.75
        ));
        assert!(krippendorff_alpha(&data, Metric::Ordinal).unwrap() < 0.0);
    }

    #[test]
    fn alpha_is_undefined_without_pairable_values_or_without_variation() {
        // One coder only, or every unit coded once: nothing is pairable.
        let single_coder = [vec![Some(1.0)], vec![Some(2.0)], vec![Some(3.0)]];
        let scattered = [vec![Some(1.0), None], vec![None, Some(2.0)]];
        let empty: [Vec<Option<f64>>; 0] = [];
        for data in [&single_coder[..], &scattered[..], &empty[..]] {
            assert_eq!(
                krippendorff_alpha(data, Metric::Nominal),
                Err(AlphaError::NoPairableValues)
            );
        }
        // Everyone always gives 3: D_e = 0. (The lone 1 in the last unit is not pairable.)
        let constant = [
            values(&[3.0, 3.0]),
            values(&[3.0, 3.0, 3.0]),
            vec![None, Some(1.0)],
        ];
        for metric in [Metric::Nominal, Metric::Ordinal, Metric::Interval] {
            assert_eq!(
                krippendorff_alpha(&constant, metric),
                Err(AlphaError::NoVariation)
            );
        }
    }

    #[test]
    fn non_finite_values_are_rejected_with_their_position() {
        let data = [values(&[1.0, 2.0]), vec![Some(1.0), Some(f64::INFINITY)]];
        assert!(matches!(
            krippendorff_alpha(&data, Metric::Interval),
            Err(AlphaError::NonFiniteValue {
                unit: 1,
                coder: 1,
                ..
            })
        ));
    }

    #[test]
    fn units_coded_once_do_not_change_alpha() {
        let mut data = krippendorff_2011();
        let before = krippendorff_alpha(&data, Metric::Ordinal).unwrap();
        data.push(vec![None, None, Some(5.0)]);
        data.push(vec![Some(1.0)]);
        data.push(vec![]);
        assert_eq!(krippendorff_alpha(&data, Metric::Ordinal).unwrap(), before);
    }

    #[test]
    fn alpha_is_invariant_under_the_transformations_each_metric_allows() {
        let data = krippendorff_2011();
        let map = |f: &dyn Fn(f64) -> f64| -> Vec<Vec<Option<f64>>> {
            data.iter()
                .map(|unit| unit.iter().map(|v| v.map(f)).collect())
                .collect()
        };
        let alpha = |d: &[Vec<Option<f64>>], m| krippendorff_alpha(d, m).unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        // Interval: any affine map with a non-zero slope.
        let affine = map(&|x| 10.0 * x - 3.0);
        assert!(near(
            alpha(&affine, Metric::Interval),
            alpha(&data, Metric::Interval)
        ));
        // Ordinal: any strictly increasing map.
        let monotone = map(&|x| x * x * x + 100.0);
        assert!(near(
            alpha(&monotone, Metric::Ordinal),
            alpha(&data, Metric::Ordinal)
        ));
        // Nominal: any relabelling.
        let relabelled = map(&|x| [0.0, 40.0, -7.0, 3.5, 1.0, 2.0][x as usize]);
        assert!(near(
            alpha(&relabelled, Metric::Nominal),
            alpha(&data, Metric::Nominal)
        ));
    }

    #[test]
    fn metrics_serialise_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&Metric::Interval).unwrap(),
            "\"interval\""
        );
    }
}
