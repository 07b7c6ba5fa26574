//! Scripted typing, from keystroke timing.
//!
//! Runs only with the candidate's consent to keystroke dynamics, and only on sessions with at
//! least [`MIN_KEYSTROKES`] key presses. Keystrokes are split into *bursts* at pauses longer than
//! `max(2 s, 5 × median gap)`; interval statistics use the down-to-down gaps (IKIs) inside bursts.
//!
//! # Rules
//! Each rule is a [`RuleCheck`] recorded in the report whether it fired or not. Rules are grouped
//! into **families**; rules in one family measure the same property (e.g. the log-sd and the
//! coefficient of variation of IKIs are both "spread") and count once.
//!
//! | family | rule | fires when | why |
//! |---|---|---|---|
//! | `iki_distribution` | `log_iki_sd_low` | sd of ln IKI < 0.22 | human IKIs are roughly log-normal with a log-sd of 0.35–0.7 inside bursts |
//! | | `iki_cv_low` | CV of IKI < 0.25 | the same spread on the linear scale |
//! | | `log_iki_skew_negative` | 10/50/90 quantile skew of ln IKI < −0.15 | human ln IKI has a right tail (hesitations); a bounded uniform range has a left one |
//! | | `iki_values_discrete` | occupied share of the timer grid < 0.3 of what a smooth distribution gives | delays drawn from a small set; judged *relative to the detected timer grid*, so a coarse browser timer alone never fires it |
//! | | `iki_mode_share_high` | share of gaps equal to the most common gap (on the timer grid) > 0.9 | a fixed delay; measured **on any grid** (a 100 ms timer leaves a human's gaps spread over several steps) |
//! | `hold_distribution` | `hold_log_sd_low` | sd of ln hold < 0.08 | human holds vary by key, hand and moment (log-sd ≥ 0.15) |
//! | | `hold_mode_share_high` | share of holds equal to the most common hold > 0.97 | a fixed hold; measured **on any grid** |
//! | `key_ups` | `key_up_missing_share` | share of presses with no key-up (or, on a fine timer, a hold < 10 ms) > 0.2 | focus changes lose a key-up rarely; injected events often have none or a 0 ms hold |
//! | `rollover` | `rollover_absent` | overlap share < 0.25 × the share expected from the gap and hold distributions | humans roll over when their gaps are shorter than their holds; sequential automation never does. The threshold is 0 (cannot fire) when less than 4% overlap is expected, e.g. slow typists |
//! | `serial_correlation` | `iki_serial_correlation_low` | lag-1 autocorrelation of ln IKI (after removing the key-class-pair mean) < 0.05 | humans alternate fluent and hesitant stretches; i.i.d. samplers give ≈ 0 |
//! | `context_pauses` | `line_start_pause_absent` | median gap before the first key of a line / median letter-to-letter gap < 1.5 | humans plan at statement starts; samplers without context do not |
//! | | `key_context_effect_absent` | adjusted share of ln-IKI variance explained by the classes of the two keys around the gap < 0.02 | a shifted character, a space before a word, a line start take a human longer; a sampler drawing every gap from one distribution explains nothing. Needs only 3 contexts of 8 gaps, so it is measured on short tasks |
//!
//! **Applicability.** The timer grid is detected from the key times (1 ms … 100 ms, any phase;
//! browsers round `performance.now()`, Firefox with resistFingerprinting to 100 ms). The spread,
//! skew, occupancy, serial-correlation and key-context rules are measured only when the grid is
//! at most a quarter of the median IKI, `hold_log_sd_low` only when it is at most a quarter of the
//! median hold; rules that cannot be measured are left out of `checks` and listed in
//! `metrics.not_applicable` with the reason. Quantisation is never evidence on its own: honest
//! timers quantise. **But a coarse grid never switches the detector off** (version 2): the
//! mode-share rules are measured on every grid, because a timer explains few distinct values,
//! never (nearly) all gaps or all holds being one value — a bot typing on round numbers (a 100 ms
//! gap, a 50 ms hold) is measured, not excused.
//!
//! # Composite
//! A single rule never flags anyone. The detector reports one finding,
//! `independent_rules_agree`, when at least [`FAMILIES_REQUIRED`] families other than serial
//! correlation fire: **Review**, or **Major** when [`FAMILIES_MAJOR`] or more fired counting serial
//! correlation. Serial correlation is *supporting evidence only* since version 2: in real
//! composition logs and in an independent generator's honest typists it is near 0 as often as in
//! a sampler's (`docs/integrity-eval.md`), so it may raise a finding, never make one. The families look at different physical properties
//! (the gap distribution, the hold distribution, key-up events, overlap between presses, the
//! sequence of gaps, the position of pauses), so an honest typist who is unusual in one of them
//! (a very even typist, a slow typist, a coarse timer) does not also become unusual in another.
//! On 1 500 synthetic honest sessions (300 per profile) no honest trace reached 2 families and
//! each single rule fired on at most 1 in 300 (see `tests::calibration_table`); on held-out and
//! real corpora see `docs/integrity-eval.md`. Major needs a third independent family because the two
//! "cognitive" families (serial correlation, context pauses) are the ones most likely to be
//! correlated in a real honest person (e.g. someone re-typing from memory).
//!
//! # Evidence
//! Bursts (long ones cut into windows of at most 120 keys) are ranked by how many of the fired
//! rules also hold inside them; the top three are cited with their seq range, the replay position
//! and their local numbers.
//!
//! # Timing replay across sessions
//! Per-session statistics cannot see a replay of another session's (human) timing. For that,
//! [`timing_fingerprint`] hashes n-grams of consecutive `(IKI, hold)` rounded to whole ms (6-grams
//! on a fine timer, 12 on a ~16 ms grid, 24 on a coarser one, so honest coarse sessions do not
//! collide) and 40-grams of the *ordinal* pattern of consecutive IKIs (longer / equal / shorter,
//! which survives small jitter). Grams with too few distinct values (a constant bot) are skipped.
//! Only the [`FINGERPRINT_SIZE`] smallest hashes are kept (bottom-k MinHash), so the fingerprint
//! is at most 256 numbers of JSON. [`replay_overlap`] estimates the share of one session's grams
//! found in another from the two sketches, and [`replay_check`] fires at [`REPLAY_THRESHOLD`].
//!
//! What it catches (100 replays of honest sessions against a pool of 160 sessions): an exact
//! replay onto any text (100/100), re-rounded to 1 ms (100/100), time-scaled by 10% (100/100,
//! the ordinal grams are scale-free), with ±1 ms jitter (94/100) or ±3 ms jitter (93/100); no
//! pair of 60 independent honest sessions shares a sampled gram. What it does not: jitter added
//! to a replay of a coarse-timer session (jitter breaks the ties the grid made), a replay
//! re-quantised to a coarser grid than the original, jitter of tens of ms, or timing stitched
//! from fragments of many sessions shorter than 40 keys each. A match says the two sessions share
//! timing, not which one is the original. (Per-session rules do not flag a replay: only the
//! line-start pauses, now misplaced for the new text, fire.)

mod fingerprint;
mod stats;

use chrono::{DateTime, Utc};
use serde_json::json;

pub use fingerprint::{
    replay_check, replay_overlap, timing_fingerprint, TimingGram, FINGERPRINT_SIZE,
    REPLAY_THRESHOLD,
};

use crate::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck, SessionTrace};
use clarity_domain::telemetry::{KeyClass, TelemetryData};

pub const DETECTOR: &str = "keystroke_timing";
pub const VERSION: &str = "2";

/// Fewer key presses than this: not enough to measure.
pub const MIN_KEYSTROKES: usize = 200;
/// Fewer in-burst intervals than this: not enough to measure.
pub const MIN_BURST_INTERVALS: usize = 150;
/// Independent families that must agree for a finding.
pub const FAMILIES_REQUIRED: usize = 2;
/// Independent families for a Major finding.
pub const FAMILIES_MAJOR: usize = 3;

const IMPLAUSIBLE_HOLD_MS: f64 = 10.0;
const ROLLOVER_MIN_EXPECTED: f64 = 0.04;
const MIN_LINE_STARTS: usize = 15;
const MIN_HOLDS: usize = 100;
/// A key-class context (the classes of the keys before and after a gap) needs this many gaps to
/// have a mean of its own.
const CONTEXT_MIN_GAPS: usize = 8;
const WINDOW_KEYS: usize = 120;
const MIN_WINDOW_KEYS: usize = 30;
const EVIDENCE_WINDOWS: usize = 3;

/// One key press.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub down: f64,
    pub up: Option<f64>,
    pub class: KeyClass,
}

/// The keystrokes of a trace, in order, with valid times.
pub(crate) fn keys(trace: &SessionTrace) -> Vec<Key> {
    trace
        .events
        .iter()
        .filter_map(|e| match &e.data {
            TelemetryData::Keystroke {
                down_ms,
                up_ms,
                key_class,
            } if down_ms.is_finite() => Some(Key {
                seq: e.seq,
                ts: e.ts,
                down: *down_ms,
                up: up_ms.filter(|u| u.is_finite() && u >= down_ms),
                class: *key_class,
            }),
            _ => None,
        })
        .collect()
}

/// The rule families (rules in one family count once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    IkiDistribution,
    HoldDistribution,
    KeyUps,
    Rollover,
    SerialCorrelation,
    ContextPauses,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::IkiDistribution => "iki_distribution",
            Self::HoldDistribution => "hold_distribution",
            Self::KeyUps => "key_ups",
            Self::Rollover => "rollover",
            Self::SerialCorrelation => "serial_correlation",
            Self::ContextPauses => "context_pauses",
        }
    }
}

/// Measurements over a range of keys (the whole session or one window).
#[derive(Debug, Clone, Default)]
struct Measures {
    intervals: usize,
    median_iki: f64,
    log_iki_sd: f64,
    iki_cv: f64,
    log_iki_skew: f64,
    occupancy: f64,
    iki_mode_share: f64,
    serial_correlation: f64,
    key_context_effect: f64,
    context_groups: usize,
    holds: usize,
    median_hold: f64,
    hold_log_sd: f64,
    hold_mode_share: f64,
    missing_up_share: f64,
    overlap_pairs: usize,
    overlap_share: f64,
    expected_overlap: f64,
}

/// Measures keys `keys[range]`, with the in-burst flags of the gaps leading to each key.
fn measure(keys: &[Key], in_burst: &[bool], grid: f64) -> Measures {
    let floor = (grid / 2.0).max(1.0);
    // In-burst gaps: gap i leads to key i (i >= 1).
    let mut ikis = Vec::new();
    let mut log_ikis = Vec::new();
    let mut pair_of = Vec::new();
    let mut adjacent = Vec::new();
    let mut last_index: Option<usize> = None;
    for i in 1..keys.len() {
        if !in_burst[i] {
            continue;
        }
        let iki = keys[i].down - keys[i - 1].down;
        if iki < 0.0 {
            continue;
        }
        if let Some(last) = last_index {
            if let Some(a) = adjacent.last_mut() {
                *a = last + 1 == i;
            }
        }
        ikis.push(iki);
        log_ikis.push(iki.max(floor).ln());
        pair_of.push((keys[i - 1].class, keys[i].class));
        adjacent.push(false);
        last_index = Some(i);
    }
    let mut m = Measures {
        intervals: ikis.len(),
        ..Measures::default()
    };
    if !ikis.is_empty() {
        m.median_iki = stats::median(&ikis);
        m.log_iki_sd = stats::sd(&log_ikis);
        m.iki_cv = stats::sd(&ikis) / stats::mean(&ikis).max(1e-9);
        m.log_iki_skew = stats::quantile_skew(&log_ikis);
        m.occupancy = stats::occupancy_ratio(&ikis, grid);
        // Residuals from the key-class-pair means, so a per-pair table does not look like state.
        let mut sums: Vec<((KeyClass, KeyClass), f64, usize)> = Vec::new();
        for (p, v) in pair_of.iter().zip(&log_ikis) {
            match sums.iter_mut().find(|(q, _, _)| q == p) {
                Some(entry) => {
                    entry.1 += v;
                    entry.2 += 1;
                }
                None => sums.push((*p, *v, 1)),
            }
        }
        let residuals: Vec<f64> = pair_of
            .iter()
            .zip(&log_ikis)
            .map(|(p, v)| {
                let (_, s, n) = sums.iter().find(|(q, _, _)| q == p).expect("pair seen");
                v - s / *n as f64
            })
            .collect();
        m.serial_correlation = stats::lag1_autocorrelation(&residuals, &adjacent);
        m.iki_mode_share = stats::mode_share(&ikis, grid);
        // Adjusted share of ln-IKI variance explained by the key-class pair, over the pairs
        // seen often enough to have a mean.
        let kept: Vec<&((KeyClass, KeyClass), f64, usize)> = sums
            .iter()
            .filter(|(_, _, n)| *n >= CONTEXT_MIN_GAPS)
            .collect();
        m.context_groups = kept.len();
        let values: Vec<(f64, f64)> = pair_of
            .iter()
            .zip(&log_ikis)
            .filter_map(|(p, v)| {
                kept.iter()
                    .find(|(q, _, _)| q == p)
                    .map(|(_, s, n)| (*v, s / *n as f64))
            })
            .collect();
        let n = values.len() as f64;
        let k = kept.len() as f64;
        if kept.len() >= 2 && n > k + 1.0 {
            let grand = values.iter().map(|(v, _)| v).sum::<f64>() / n;
            let total: f64 = values.iter().map(|(v, _)| (v - grand).powi(2)).sum();
            let within: f64 = values.iter().map(|(v, g)| (v - g).powi(2)).sum();
            m.key_context_effect = if total <= 1e-12 {
                0.0
            } else {
                1.0 - (within / (n - k)) / (total / (n - 1.0))
            };
        }
    }

    let holds: Vec<f64> = keys
        .iter()
        .filter_map(|k| k.up.map(|u| u - k.down))
        .collect();
    m.holds = holds.len();
    m.median_hold = stats::median(&holds);
    let log_holds: Vec<f64> = holds.iter().map(|h| h.max(floor).ln()).collect();
    m.hold_log_sd = stats::sd(&log_holds);
    m.hold_mode_share = stats::mode_share(&holds, grid);
    let missing = keys
        .iter()
        .filter(|k| match k.up {
            None => true,
            Some(u) => grid < IMPLAUSIBLE_HOLD_MS && u - k.down < IMPLAUSIBLE_HOLD_MS,
        })
        .count();
    m.missing_up_share = if keys.is_empty() {
        0.0
    } else {
        missing as f64 / keys.len() as f64
    };

    // Rollover: the next key goes down before this one comes up.
    let mut pairs = 0usize;
    let mut overlaps = 0usize;
    let mut pair_ikis = Vec::new();
    let mut pair_holds = Vec::new();
    for i in 1..keys.len() {
        if !in_burst[i] {
            continue;
        }
        if let Some(up) = keys[i - 1].up {
            pairs += 1;
            if keys[i].down < up {
                overlaps += 1;
            }
            pair_ikis.push(keys[i].down - keys[i - 1].down);
            pair_holds.push(up - keys[i - 1].down);
        }
    }
    m.overlap_pairs = pairs;
    m.overlap_share = if pairs == 0 {
        0.0
    } else {
        overlaps as f64 / pairs as f64
    };
    m.expected_overlap = expected_overlap(&pair_ikis, &pair_holds);
    m
}

/// The overlap share expected if gaps and holds were paired at random: P(IKI < hold).
fn expected_overlap(ikis: &[f64], holds: &[f64]) -> f64 {
    if ikis.is_empty() || holds.is_empty() {
        return 0.0;
    }
    let mut sorted_holds = holds.to_vec();
    sorted_holds.sort_by(f64::total_cmp);
    let n = sorted_holds.len() as f64;
    let total: f64 = ikis
        .iter()
        .map(|iki| {
            // Holds strictly longer than the gap.
            let not_longer = sorted_holds.partition_point(|h| h <= iki);
            (sorted_holds.len() - not_longer) as f64 / n
        })
        .sum();
    total / ikis.len() as f64
}

/// One measured rule with its family.
struct Check {
    family: Family,
    check: RuleCheck,
}

/// The thresholds of the rules. [`Thresholds::default`] is what Clarity ships;
/// [`Thresholds::fit`] derives them from a set of honest sessions, so an evaluation can fit on one
/// corpus and measure on another.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// `log_iki_sd_low`: sd of ln IKI below this.
    pub log_iki_sd_min: f64,
    /// `iki_cv_low`: coefficient of variation of IKI below this.
    pub iki_cv_min: f64,
    /// `log_iki_skew_negative`: 10/50/90 skew of ln IKI below this.
    pub log_iki_skew_min: f64,
    /// `iki_values_discrete`: grid occupancy relative to a smooth distribution below this.
    pub occupancy_min: f64,
    /// `iki_mode_share_high`: share of gaps equal to the most common gap (on the timer grid)
    /// above this. Measured on any timer grid.
    pub iki_mode_share_max: f64,
    /// `hold_log_sd_low`: sd of ln hold below this.
    pub hold_log_sd_min: f64,
    /// `hold_mode_share_high`: share of holds equal to the most common hold above this. Measured
    /// on any timer grid.
    pub hold_mode_share_max: f64,
    /// `key_up_missing_share`: share of presses without a plausible key-up above this.
    pub missing_up_max: f64,
    /// `rollover_absent`: overlap share below this fraction of the expected share.
    pub rollover_fraction: f64,
    /// `iki_serial_correlation_low`: lag-1 autocorrelation below this.
    pub serial_correlation_min: f64,
    /// `line_start_pause_absent`: line-start gap over letter gap below this.
    pub line_start_ratio_min: f64,
    /// `key_context_effect_absent`: share of ln-IKI variance explained by the key classes around
    /// the gap (adjusted) below this.
    pub key_context_min: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            log_iki_sd_min: 0.22,
            iki_cv_min: 0.25,
            log_iki_skew_min: -0.15,
            occupancy_min: 0.3,
            iki_mode_share_max: 0.9,
            hold_log_sd_min: 0.08,
            hold_mode_share_max: 0.97,
            missing_up_max: 0.2,
            rollover_fraction: 0.25,
            serial_correlation_min: 0.05,
            line_start_ratio_min: 1.5,
            key_context_min: 0.02,
        }
    }
}

/// Honest measurements needed before a fitted threshold replaces the default.
const FIT_MIN_VALUES: usize = 30;
/// Fitting keeps this share of honest sessions clear of each rule...
const FIT_QUANTILE: f64 = 0.01;
/// ...plus this share of the honest values' 10–90 range as a margin.
const FIT_MARGIN: f64 = 0.1;

impl Thresholds {
    /// Fits every threshold on honest sessions: for a rule firing below its threshold, the
    /// honest values' 1st percentile minus a tenth of their 10–90% range (above: the 99th plus
    /// the margin). A rule measured on fewer than 30 honest sessions keeps its default.
    pub fn fit(honest: &[&SessionTrace]) -> Self {
        let base = Self::default();
        let mut values: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for trace in honest {
            let report = analyse_with(trace, &base);
            for c in &report.checks {
                if c.measured.is_finite() {
                    values.entry(c.rule.clone()).or_default().push(c.measured);
                }
            }
            // The rollover rule's threshold is relative: fit the ratio, not the share.
            if let Some(m) = &report.metrics {
                let share = m.get("overlap_share").and_then(|v| v.as_f64());
                let expected = m.get("expected_overlap_share").and_then(|v| v.as_f64());
                if let (Some(s), Some(e)) = (share, expected) {
                    if e >= ROLLOVER_MIN_EXPECTED {
                        values
                            .entry("rollover_ratio".into())
                            .or_default()
                            .push(s / e);
                    }
                }
            }
        }
        let below = |rule: &str, default: f64| -> f64 {
            match values.get(rule) {
                Some(v) if v.len() >= FIT_MIN_VALUES => {
                    let range = stats::quantile(v, 0.9) - stats::quantile(v, 0.1);
                    stats::quantile(v, FIT_QUANTILE) - FIT_MARGIN * range
                }
                _ => default,
            }
        };
        let above = |rule: &str, default: f64| -> f64 {
            match values.get(rule) {
                Some(v) if v.len() >= FIT_MIN_VALUES => {
                    let range = stats::quantile(v, 0.9) - stats::quantile(v, 0.1);
                    stats::quantile(v, 1.0 - FIT_QUANTILE) + FIT_MARGIN * range
                }
                _ => default,
            }
        };
        Self {
            log_iki_sd_min: below("log_iki_sd_low", base.log_iki_sd_min),
            iki_cv_min: below("iki_cv_low", base.iki_cv_min),
            log_iki_skew_min: below("log_iki_skew_negative", base.log_iki_skew_min),
            occupancy_min: below("iki_values_discrete", base.occupancy_min),
            iki_mode_share_max: above("iki_mode_share_high", base.iki_mode_share_max),
            hold_log_sd_min: below("hold_log_sd_low", base.hold_log_sd_min),
            hold_mode_share_max: above("hold_mode_share_high", base.hold_mode_share_max),
            missing_up_max: above("key_up_missing_share", base.missing_up_max),
            rollover_fraction: below("rollover_ratio", base.rollover_fraction),
            serial_correlation_min: below(
                "iki_serial_correlation_low",
                base.serial_correlation_min,
            ),
            line_start_ratio_min: below("line_start_pause_absent", base.line_start_ratio_min),
            key_context_min: below("key_context_effect_absent", base.key_context_min),
        }
    }
}

/// Scripted-typing analysis of one session with the shipped thresholds: see the module
/// documentation.
pub fn analyse(trace: &SessionTrace) -> DetectorReport {
    analyse_with(trace, &Thresholds::default())
}

/// Scripted-typing analysis with the given thresholds.
pub fn analyse_with(trace: &SessionTrace, t: &Thresholds) -> DetectorReport {
    if !trace.consent.keystroke_dynamics {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            "the candidate did not consent to keystroke dynamics",
        );
    }
    let keys = keys(trace);
    if keys.len() < MIN_KEYSTROKES {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            format!(
                "too few keystrokes to measure ({} < {MIN_KEYSTROKES})",
                keys.len()
            ),
        );
    }

    let all_gaps: Vec<f64> = keys.windows(2).map(|w| w[1].down - w[0].down).collect();
    let pause_ms = (5.0 * stats::median(&all_gaps)).max(2000.0);
    let mut in_burst = vec![false; keys.len()];
    for i in 1..keys.len() {
        let gap = keys[i].down - keys[i - 1].down;
        in_burst[i] = (0.0..=pause_ms).contains(&gap);
    }
    let bursts = bursts(&in_burst);
    let times: Vec<f64> = keys
        .iter()
        .flat_map(|k| std::iter::once(k.down).chain(k.up))
        .collect();
    let grid = stats::detect_grid(&times);
    let m = measure(&keys, &in_burst, grid);
    if m.intervals < MIN_BURST_INTERVALS {
        return DetectorReport::skipped(
            DETECTOR,
            VERSION,
            format!(
                "too few intervals inside typing bursts to measure ({} < {MIN_BURST_INTERVALS})",
                m.intervals
            ),
        );
    }

    let mut checks: Vec<Check> = Vec::new();
    let mut not_applicable: Vec<serde_json::Value> = Vec::new();
    let mut na = |rule: &str, reason: String| {
        not_applicable.push(json!({ "rule": rule, "reason": reason }));
    };
    let mut add = |family: Family, check: RuleCheck| checks.push(Check { family, check });

    // Degenerate timing is judged on any timer grid: a coarse grid may explain few distinct
    // values, never (nearly) all gaps or all holds being the same value.
    add(
        Family::IkiDistribution,
        RuleCheck::new(
            "iki_mode_share_high",
            m.iki_mode_share,
            Comparison::Above,
            t.iki_mode_share_max,
        ),
    );
    let iki_grid_ok = grid <= m.median_iki / 4.0;
    if iki_grid_ok {
        add(
            Family::IkiDistribution,
            RuleCheck::new(
                "log_iki_sd_low",
                m.log_iki_sd,
                Comparison::Below,
                t.log_iki_sd_min,
            ),
        );
        add(
            Family::IkiDistribution,
            RuleCheck::new("iki_cv_low", m.iki_cv, Comparison::Below, t.iki_cv_min),
        );
        add(
            Family::IkiDistribution,
            RuleCheck::new(
                "log_iki_skew_negative",
                m.log_iki_skew,
                Comparison::Below,
                t.log_iki_skew_min,
            ),
        );
        add(
            Family::IkiDistribution,
            RuleCheck::new(
                "iki_values_discrete",
                m.occupancy,
                Comparison::Below,
                t.occupancy_min,
            ),
        );
        add(
            Family::SerialCorrelation,
            RuleCheck::new(
                "iki_serial_correlation_low",
                m.serial_correlation,
                Comparison::Below,
                t.serial_correlation_min,
            ),
        );
    } else {
        let reason = format!(
            "timer grid {grid:.1} ms is coarse for a median gap of {:.0} ms",
            m.median_iki
        );
        for rule in [
            "log_iki_sd_low",
            "iki_cv_low",
            "log_iki_skew_negative",
            "iki_values_discrete",
            "iki_serial_correlation_low",
        ] {
            na(rule, reason.clone());
        }
    }

    if m.holds < MIN_HOLDS {
        for rule in ["hold_log_sd_low", "hold_mode_share_high"] {
            na(rule, format!("only {} key-ups recorded", m.holds));
        }
    } else {
        add(
            Family::HoldDistribution,
            RuleCheck::new(
                "hold_mode_share_high",
                m.hold_mode_share,
                Comparison::Above,
                t.hold_mode_share_max,
            ),
        );
        if grid > m.median_hold / 4.0 {
            na(
                "hold_log_sd_low",
                format!(
                    "timer grid {grid:.1} ms is coarse for a median hold of {:.0} ms",
                    m.median_hold
                ),
            );
        } else {
            add(
                Family::HoldDistribution,
                RuleCheck::new(
                    "hold_log_sd_low",
                    m.hold_log_sd,
                    Comparison::Below,
                    t.hold_log_sd_min,
                ),
            );
        }
    }

    add(
        Family::KeyUps,
        RuleCheck::new(
            "key_up_missing_share",
            m.missing_up_share,
            Comparison::Above,
            t.missing_up_max,
        ),
    );

    if m.overlap_pairs < MIN_HOLDS {
        na(
            "rollover_absent",
            format!("only {} key pairs with a key-up", m.overlap_pairs),
        );
    } else if m.expected_overlap < ROLLOVER_MIN_EXPECTED {
        na(
            "rollover_absent",
            format!(
                "{:.1}% overlap expected from the gaps and holds: too little to judge its absence",
                100.0 * m.expected_overlap
            ),
        );
    } else {
        add(
            Family::Rollover,
            RuleCheck::new(
                "rollover_absent",
                m.overlap_share,
                Comparison::Below,
                t.rollover_fraction * m.expected_overlap,
            ),
        );
    }

    let line_start_gaps: Vec<f64> = (1..keys.len())
        .filter(|&i| keys[i - 1].class == KeyClass::Enter && keys[i].class != KeyClass::Enter)
        .map(|i| keys[i].down - keys[i - 1].down)
        .collect();
    let letter_gaps: Vec<f64> = (1..keys.len())
        .filter(|&i| {
            in_burst[i]
                && keys[i - 1].class == KeyClass::Letter
                && keys[i].class == KeyClass::Letter
        })
        .map(|i| keys[i].down - keys[i - 1].down)
        .collect();
    let line_start_ratio = if line_start_gaps.len() < MIN_LINE_STARTS || letter_gaps.len() < 50 {
        na(
            "line_start_pause_absent",
            format!(
                "only {} line starts and {} letter-to-letter gaps",
                line_start_gaps.len(),
                letter_gaps.len()
            ),
        );
        None
    } else {
        let ratio =
            stats::median(&line_start_gaps) / stats::median(&letter_gaps).max(grid / 2.0).max(1.0);
        add(
            Family::ContextPauses,
            RuleCheck::new(
                "line_start_pause_absent",
                ratio,
                Comparison::Below,
                t.line_start_ratio_min,
            ),
        );
        Some(ratio)
    };
    // The key classes around a gap explain part of its length in human typing (a shifted
    // character, a space before a word, a line start); a sampler drawing every gap from one
    // distribution explains none. Measured on short tasks too.
    let key_context = if iki_grid_ok && m.context_groups >= 3 {
        add(
            Family::ContextPauses,
            RuleCheck::new(
                "key_context_effect_absent",
                m.key_context_effect,
                Comparison::Below,
                t.key_context_min,
            ),
        );
        Some(m.key_context_effect)
    } else {
        na(
            "key_context_effect_absent",
            if iki_grid_ok {
                format!(
                    "only {} key-class contexts with {CONTEXT_MIN_GAPS} gaps or more",
                    m.context_groups
                )
            } else {
                format!(
                    "timer grid {grid:.1} ms is coarse for a median gap of {:.0} ms",
                    m.median_iki
                )
            },
        );
        None
    };

    let mut fired_families: Vec<Family> = Vec::new();
    for c in checks.iter().filter(|c| c.check.fired) {
        if !fired_families.contains(&c.family) {
            fired_families.push(c.family);
        }
    }
    let mut measured_families: Vec<Family> = Vec::new();
    for c in &checks {
        if !measured_families.contains(&c.family) {
            measured_families.push(c.family);
        }
    }

    let metrics = json!({
        "keystrokes": keys.len(),
        "bursts": bursts.len(),
        "pause_ms": round2(pause_ms),
        "timer_grid_ms": round2(grid),
        "intervals_in_bursts": m.intervals,
        "median_iki_ms": round2(m.median_iki),
        "log_iki_sd": if iki_grid_ok { json!(round2(m.log_iki_sd)) } else { serde_json::Value::Null },
        "iki_mode_share": round2(m.iki_mode_share),
        "median_hold_ms": if m.holds == 0 { serde_json::Value::Null } else { json!(round2(m.median_hold)) },
        "hold_mode_share": if m.holds < MIN_HOLDS { serde_json::Value::Null } else { json!(round2(m.hold_mode_share)) },
        "overlap_share": if m.overlap_pairs == 0 { serde_json::Value::Null } else { json!(round2(m.overlap_share)) },
        "expected_overlap_share": if m.overlap_pairs == 0 { serde_json::Value::Null } else { json!(round2(m.expected_overlap)) },
        "line_start_ratio": line_start_ratio.map(round2),
        "key_context_effect": key_context.map(|v| (v * 1000.0).round() / 1000.0),
        "families_measured": measured_families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "families_fired": fired_families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "not_applicable": not_applicable,
    });

    let mut findings = Vec::new();
    // Serial correlation is supporting evidence only: real composition logs and an independent
    // generator show honest typists near 0 as often as samplers (docs/integrity-eval.md), so it
    // can raise a finding to Major but never makes one.
    let primary = fired_families
        .iter()
        .filter(|f| **f != Family::SerialCorrelation)
        .count();
    if primary >= FAMILIES_REQUIRED {
        let supporting: Vec<RuleCheck> = checks
            .iter()
            .filter(|c| c.check.fired)
            .map(|c| c.check.clone())
            .collect();
        let level = if fired_families.len() >= FAMILIES_MAJOR {
            FindingLevel::Major
        } else {
            FindingLevel::Review
        };
        let names: Vec<&str> = fired_families.iter().map(|f| f.name()).collect();
        findings.push(Finding {
            detector: DETECTOR.to_string(),
            detector_version: VERSION.to_string(),
            rule: "independent_rules_agree".to_string(),
            level,
            measured: primary as f64,
            threshold: FAMILIES_REQUIRED as f64,
            comparison: Comparison::AtLeast,
            summary: format!(
                "Keystroke timing looks scripted on {} independent measures ({}) of the {} that \
                 could be measured; check the cited bursts in the replay.",
                fired_families.len(),
                names.join(", "),
                measured_families.len()
            ),
            related_session: None,
            supporting,
            evidence: evidence(trace, &keys, &in_burst, &bursts, grid, &fired_families, t),
        });
    }

    DetectorReport {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        skipped: None,
        checks: checks.into_iter().map(|c| c.check).collect(),
        findings,
        metrics: super::metrics_object(metrics),
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Bursts as inclusive key index ranges (a key starts a new burst when its gap is a pause).
fn bursts(in_burst: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, inside) in in_burst.iter().enumerate().skip(1) {
        if !inside {
            out.push((start, i - 1));
            start = i;
        }
    }
    if !in_burst.is_empty() {
        out.push((start, in_burst.len() - 1));
    }
    out
}

/// The windows that show the fired pattern most strongly.
fn evidence(
    trace: &SessionTrace,
    keys: &[Key],
    in_burst: &[bool],
    bursts: &[(usize, usize)],
    grid: f64,
    fired: &[Family],
    t: &Thresholds,
) -> Vec<Evidence> {
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for &(start, end) in bursts {
        let len = end + 1 - start;
        if len < MIN_WINDOW_KEYS {
            continue;
        }
        let pieces = len.div_ceil(WINDOW_KEYS);
        let size = len.div_ceil(pieces);
        let mut s = start;
        while s <= end {
            let e = (s + size - 1).min(end);
            if e + 1 - s >= MIN_WINDOW_KEYS {
                windows.push((s, e));
            }
            s = e + 1;
        }
    }
    if windows.is_empty() {
        windows.push((0, keys.len() - 1));
    }
    let mut scored: Vec<(usize, f64, (usize, usize), Measures)> = windows
        .into_iter()
        .map(|(s, e)| {
            let slice = &keys[s..=e];
            let mut flags = in_burst[s..=e].to_vec();
            flags[0] = false;
            let w = measure(slice, &flags, grid);
            let mut score = 0usize;
            for family in fired {
                let holds = match family {
                    Family::IkiDistribution => {
                        w.log_iki_sd < t.log_iki_sd_min
                            || w.log_iki_skew < t.log_iki_skew_min
                            || w.iki_cv < t.iki_cv_min
                            || w.iki_mode_share > t.iki_mode_share_max
                    }
                    Family::HoldDistribution => {
                        w.holds >= 2
                            && (w.hold_log_sd < t.hold_log_sd_min
                                || w.hold_mode_share > t.hold_mode_share_max)
                    }
                    Family::KeyUps => w.missing_up_share > t.missing_up_max,
                    Family::Rollover => w.overlap_share < t.rollover_fraction * w.expected_overlap,
                    Family::SerialCorrelation => w.serial_correlation < t.serial_correlation_min,
                    Family::ContextPauses => false,
                };
                score += usize::from(holds);
            }
            (score, w.log_iki_sd, (s, e), w)
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)));
    let mut chosen: Vec<_> = scored.into_iter().take(EVIDENCE_WINDOWS).collect();
    chosen.sort_by_key(|c| c.2 .0);
    chosen
        .into_iter()
        .map(|(_, _, (s, e), w)| {
            let overlaps = (w.overlap_share * w.overlap_pairs as f64).round();
            Evidence {
                from_seq: keys[s].seq,
                to_seq: keys[e].seq,
                replay_seq: keys[s].seq,
                at_ms: trace.at_ms(keys[s].ts),
                file: None,
                note: format!(
                    "{} key presses: median gap {:.0} ms, ln-gap sd {:.2} (humans ≥ 0.35), \
                     lag-1 correlation {:.2}, hold median {:.0} ms with ln sd {:.2}, {} of {} \
                     presses overlapping the previous key, {:.0}% missing or instant key-ups",
                    e + 1 - s,
                    w.median_iki,
                    w.log_iki_sd,
                    w.serial_correlation,
                    if w.median_hold.is_nan() {
                        0.0
                    } else {
                        w.median_hold
                    },
                    w.hold_log_sd,
                    overlaps,
                    w.overlap_pairs,
                    100.0 * w.missing_up_share
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
