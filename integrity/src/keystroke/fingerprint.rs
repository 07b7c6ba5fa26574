//! Timing fingerprints for cross-session replay detection (see the parent module documentation).

use super::{keys, stats, DETECTOR, VERSION};
use crate::{Comparison, Evidence, Finding, FindingLevel, SessionTrace};

/// At most this many hashes are kept per session (the smallest: a bottom-k sketch).
pub const FINGERPRINT_SIZE: usize = 256;
/// `timing_replayed` fires when at least this share of a session's sampled grams is found in
/// another session's fingerprint.
pub const REPLAY_THRESHOLD: f64 = 0.1;
/// Fewer comparable hashes than this: no estimate (0).
const MIN_SAMPLE: usize = 32;
const ORDINAL_GRAM: usize = 40;
/// Ordinal grams need this many non-equal steps (a constant bot has none).
const ORDINAL_MIN_CHANGES: usize = 30;

const TAG_EXACT: u64 = 0x6578_6163_7400_0000;
const TAG_ORDINAL: u64 = 0x6f72_6469_6e00_0000;

/// SplitMix64 finaliser: a fixed, well-mixed 64-bit hash step (stable across versions and
/// platforms, unlike `std`'s hasher).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_gram(tag: u64, values: impl Iterator<Item = i64>) -> u64 {
    values.fold(mix(tag), |h, v| mix(h ^ v as u64))
}

/// The exact-gram length for a timer grid: longer on coarse grids, which carry fewer bits per key.
fn exact_gram_len(grid: f64) -> usize {
    if grid < 5.0 {
        6
    } else if grid < 30.0 {
        12
    } else {
        24
    }
}

/// A bottom-k sketch of the session's timing n-grams: sorted, deduplicated, at most
/// [`FINGERPRINT_SIZE`] hashes. Empty without consent to keystroke dynamics or with too few keys.
pub fn timing_fingerprint(trace: &SessionTrace) -> Vec<u64> {
    if !trace.consent.keystroke_dynamics {
        return Vec::new();
    }
    let keys = keys(trace);
    if keys.len() < 2 {
        return Vec::new();
    }
    let times: Vec<f64> = keys
        .iter()
        .flat_map(|k| std::iter::once(k.down).chain(k.up))
        .collect();
    let grid = stats::detect_grid(&times);
    let ikis: Vec<f64> = keys.windows(2).map(|w| w[1].down - w[0].down).collect();
    let pairs: Vec<(i64, i64)> = keys
        .windows(2)
        .map(|w| {
            let iki = (w[1].down - w[0].down).round() as i64;
            let hold = w[1].up.map_or(-1, |u| (u - w[1].down).round() as i64);
            (iki, hold)
        })
        .collect();

    let mut hashes = Vec::new();
    let n = exact_gram_len(grid);
    for gram in pairs.windows(n) {
        let mut distinct: Vec<(i64, i64)> = gram.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() * 2 < n {
            continue;
        }
        hashes.push(hash_gram(
            TAG_EXACT ^ n as u64,
            gram.iter().flat_map(|(a, b)| [*a, *b]),
        ));
    }
    let steps: Vec<i64> = ikis
        .windows(2)
        .map(|w| match w[1].total_cmp(&w[0]) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        })
        .collect();
    for gram in steps.windows(ORDINAL_GRAM) {
        if gram.iter().filter(|s| **s != 0).count() < ORDINAL_MIN_CHANGES {
            continue;
        }
        hashes.push(hash_gram(TAG_ORDINAL, gram.iter().copied()));
    }
    hashes.sort_unstable();
    hashes.dedup();
    hashes.truncate(FINGERPRINT_SIZE);
    hashes
}

/// The estimated share of `a`'s grams that also occur in `b`'s session, from the two bottom-k
/// sketches: among `a`'s hashes up to the smaller of the two sketches' largest hashes (where both
/// sketches are complete), the share present in `b`. 0 when fewer than 32 hashes are comparable.
pub fn replay_overlap(a: &[u64], b: &[u64]) -> f64 {
    let (Some(&a_max), Some(&b_max)) = (a.iter().max(), b.iter().max()) else {
        return 0.0;
    };
    let limit = a_max.min(b_max);
    let mut b_sorted = b.to_vec();
    b_sorted.sort_unstable();
    let sample: Vec<u64> = a.iter().copied().filter(|h| *h <= limit).collect();
    if sample.len() < MIN_SAMPLE {
        return 0.0;
    }
    let found = sample
        .iter()
        .filter(|h| b_sorted.binary_search(h).is_ok())
        .count();
    found as f64 / sample.len() as f64
}

/// `timing_replayed`: the session's timing n-grams are found in another session's fingerprint at
/// or above [`REPLAY_THRESHOLD`]. Names every such session (strongest first, at most five) in the
/// evidence. The evidence spans the whole session (the sketch does not keep positions).
pub fn replay_check(own: &[u64], others: &[(String, Vec<u64>)]) -> Option<Finding> {
    let mut matches: Vec<(&str, f64)> = others
        .iter()
        .map(|(id, fp)| (id.as_str(), replay_overlap(own, fp)))
        .filter(|(_, overlap)| *overlap >= REPLAY_THRESHOLD)
        .collect();
    if matches.is_empty() {
        return None;
    }
    matches.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best_id, best) = matches[0];
    Some(Finding {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        rule: "timing_replayed".to_string(),
        level: FindingLevel::Major,
        measured: best,
        threshold: REPLAY_THRESHOLD,
        comparison: Comparison::AtLeast,
        summary: format!(
            "{:.0}% of this session's keystroke-timing sequences also occur in session {best_id}; \
             independent typists share almost none, so one session likely replays the other's \
             timing (which one is the original is not known from timing alone).",
            100.0 * best
        ),
        related_session: Some(best_id.to_string()),
        supporting: Vec::new(),
        evidence: matches
            .iter()
            .take(5)
            .map(|(id, overlap)| Evidence {
                from_seq: 1,
                to_seq: 1,
                replay_seq: 1,
                at_ms: 0,
                file: None,
                note: format!(
                    "{:.0}% of the sampled timing n-grams (exact ms and gap-order patterns) match \
                     session {id}; compare the two sessions' keystroke timing side by side",
                    100.0 * overlap
                ),
            })
            .collect(),
    })
}
