//! Small statistics helpers for the keystroke detector.

/// Median of a slice (NaN when empty). Does not need sorted input.
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Linear-interpolated quantile `q` in 0..=1 (NaN when empty).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// Quantile of already sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean (NaN when empty).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (0 with fewer than two values).
pub fn sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Bowley (quartile-free, 10/50/90) skewness: `(q90 + q10 - 2 q50) / (q90 - q10)`, in -1..=1.
/// Positive for a long right tail; 0 for a symmetric or degenerate sample.
pub fn quantile_skew(values: &[f64]) -> f64 {
    if values.len() < 3 {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q10 = quantile_sorted(&sorted, 0.1);
    let q50 = quantile_sorted(&sorted, 0.5);
    let q90 = quantile_sorted(&sorted, 0.9);
    if q90 - q10 <= f64::EPSILON {
        return 0.0;
    }
    (q90 + q10 - 2.0 * q50) / (q90 - q10)
}

/// Lag-1 autocorrelation of `series` counting only the pairs `(i, i + 1)` for which
/// `adjacent[i]` is true. 0 when the series has no variance or no pairs.
pub fn lag1_autocorrelation(series: &[f64], adjacent: &[bool]) -> f64 {
    let m = mean(series);
    if series.len() < 3 || m.is_nan() {
        return 0.0;
    }
    let var: f64 = series.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / series.len() as f64;
    if var <= 1e-12 {
        return 0.0;
    }
    let mut cov = 0.0;
    let mut pairs = 0usize;
    for i in 0..series.len() - 1 {
        if adjacent.get(i).copied().unwrap_or(false) {
            cov += (series[i] - m) * (series[i + 1] - m);
            pairs += 1;
        }
    }
    if pairs == 0 {
        return 0.0;
    }
    (cov / pairs as f64) / var
}

/// The timer grid the values sit on, in ms: the largest candidate grid on which at least 90% of
/// the values fall (any phase), judged by the circular concentration of `value mod grid`; 0 when
/// the timer is finer than 1 ms.
pub fn detect_grid(values: &[f64]) -> f64 {
    const CANDIDATES: [f64; 9] = [
        100.0,
        50.0,
        100.0 / 3.0,
        20.0,
        50.0 / 3.0,
        10.0,
        5.0,
        2.0,
        1.0,
    ];
    if values.len() < 20 {
        return 0.0;
    }
    let sample: Vec<f64> = values.iter().copied().take(4000).collect();
    for grid in CANDIDATES {
        let (mut c, mut s) = (0.0, 0.0);
        for v in &sample {
            let angle = 2.0 * std::f64::consts::PI * (v / grid);
            c += angle.cos();
            s += angle.sin();
        }
        let r = (c * c + s * s).sqrt() / sample.len() as f64;
        if r >= 0.95 {
            return grid;
        }
    }
    0.0
}

/// Share of the grid points between the 5th and 95th percentiles of `values` (rounded to `grid`)
/// that are occupied, relative to the share a smooth distribution would occupy with this many
/// samples (`R (1 - e^{-m/R})` for `m` samples over `R` points). About 1 for honest timing at any
/// timer resolution; near 0 when the values come from a small set of delays.
pub fn occupancy_ratio(values: &[f64], grid: f64) -> f64 {
    let step = grid.max(1.0);
    if values.len() < 20 {
        return 1.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let lo = (quantile_sorted(&sorted, 0.05) / step).round() as i64;
    let hi = (quantile_sorted(&sorted, 0.95) / step).round() as i64;
    let points = (hi - lo + 1).max(1) as f64;
    let central: Vec<i64> = sorted
        .iter()
        .map(|v| (v / step).round() as i64)
        .filter(|k| *k >= lo && *k <= hi)
        .collect();
    let m = central.len() as f64;
    let mut distinct = central;
    distinct.dedup();
    let expected = points * (1.0 - (-m / points).exp());
    if expected <= 0.0 {
        return 1.0;
    }
    (distinct.len() as f64 / expected).min(1.0)
}

/// Share of `values` equal to the most common value once rounded to the timer grid (`grid`, at
/// least 1 ms). 0 when empty. Honest gaps and holds spread over many grid steps; a script with a
/// fixed delay puts (nearly) all of them on one, whatever the grid.
pub fn mode_share(values: &[f64], grid: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let step = grid.max(1.0);
    let mut keys: Vec<i64> = values.iter().map(|v| (v / step).round() as i64).collect();
    keys.sort_unstable();
    let mut best = 0usize;
    let mut run = 0usize;
    for i in 0..keys.len() {
        run = if i > 0 && keys[i] == keys[i - 1] {
            run + 1
        } else {
            1
        };
        best = best.max(run);
    }
    best as f64 / values.len() as f64
}
