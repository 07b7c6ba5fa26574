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

/// One sampled timing gram: `[hash, first seq, last seq]` — the hash and the telemetry `seq`
/// range of the key presses it covers, so a match can be shown where it happens.
pub type TimingGram = [u64; 3];

/// A bottom-k sketch of the session's timing n-grams: sorted by hash, deduplicated, at most
/// [`FINGERPRINT_SIZE`] grams. Empty without consent to keystroke dynamics or with too few keys.
pub fn timing_fingerprint(trace: &SessionTrace) -> Vec<TimingGram> {
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

    let mut hashes: Vec<TimingGram> = Vec::new();
    let n = exact_gram_len(grid);
    // Gram `i` of the pairs covers keys i ..= i + n (pair j is the gap from key j to key j + 1).
    for (i, gram) in pairs.windows(n).enumerate() {
        let mut distinct: Vec<(i64, i64)> = gram.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() * 2 < n {
            continue;
        }
        hashes.push([
            hash_gram(
                TAG_EXACT ^ n as u64,
                gram.iter().flat_map(|(a, b)| [*a, *b]),
            ),
            keys[i].seq,
            keys[i + n].seq,
        ]);
    }
    let steps: Vec<i64> = ikis
        .windows(2)
        .map(|w| match w[1].total_cmp(&w[0]) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        })
        .collect();
    // Step `i` compares gaps i and i + 1 (keys i ..= i + 2).
    for (i, gram) in steps.windows(ORDINAL_GRAM).enumerate() {
        if gram.iter().filter(|s| **s != 0).count() < ORDINAL_MIN_CHANGES {
            continue;
        }
        hashes.push([
            hash_gram(TAG_ORDINAL, gram.iter().copied()),
            keys[i].seq,
            keys[i + ORDINAL_GRAM + 1].seq,
        ]);
    }
    // Bottom-k by hash; a hash seen twice keeps its first place.
    hashes.sort_unstable();
    hashes.dedup_by_key(|g| g[0]);
    hashes.truncate(FINGERPRINT_SIZE);
    hashes
}

/// The estimated share of `a`'s grams that also occur in `b`'s session, from the two bottom-k
/// sketches: among `a`'s hashes up to the smaller of the two sketches' largest hashes (where both
/// sketches are complete), the share present in `b`. 0 when fewer than 32 hashes are comparable.
pub fn replay_overlap(a: &[TimingGram], b: &[TimingGram]) -> f64 {
    shared(a, b).map_or(0.0, |(found, sample)| found.len() as f64 / sample as f64)
}

/// The grams of `a` found in `b` (with `b`'s matching gram) and the comparable sample size, or
/// `None` when fewer than 32 hashes are comparable.
fn shared<'a>(
    a: &'a [TimingGram],
    b: &'a [TimingGram],
) -> Option<(Vec<(&'a TimingGram, &'a TimingGram)>, usize)> {
    let (Some(a_max), Some(b_max)) = (a.iter().map(|g| g[0]).max(), b.iter().map(|g| g[0]).max())
    else {
        return None;
    };
    let limit = a_max.min(b_max);
    let mut b_sorted: Vec<&TimingGram> = b.iter().collect();
    b_sorted.sort_unstable_by_key(|g| g[0]);
    let sample: Vec<&TimingGram> = a.iter().filter(|g| g[0] <= limit).collect();
    if sample.len() < MIN_SAMPLE {
        return None;
    }
    let found = sample
        .iter()
        .filter_map(|g| {
            b_sorted
                .binary_search_by_key(&g[0], |o| o[0])
                .ok()
                .map(|i| (*g, b_sorted[i]))
        })
        .collect();
    Some((found, sample.len()))
}

/// Seq ranges merged where they overlap or touch, largest first.
fn stretches(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (from, to) in ranges {
        match out.last_mut() {
            Some(last) if from <= last.1 + 1 => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out.sort_by_key(|(from, to)| std::cmp::Reverse(to - from));
    out
}

/// `timing_replayed`: the session's timing n-grams are found in another session's fingerprint at
/// or above [`REPLAY_THRESHOLD`]. Names every such session (strongest first, at most five); the
/// evidence cites the matching stretches in this session (up to three for the strongest match)
/// and the seq range of the same timing in the other session.
pub fn replay_check(
    trace: &SessionTrace,
    own: &[TimingGram],
    others: &[(String, Vec<TimingGram>)],
) -> Option<Finding> {
    let mut matches: Vec<(&str, f64, Vec<(&TimingGram, &TimingGram)>)> = others
        .iter()
        .filter_map(|(id, fp)| {
            let (found, sample) = shared(own, fp)?;
            let overlap = found.len() as f64 / sample as f64;
            (overlap >= REPLAY_THRESHOLD).then_some((id.as_str(), overlap, found))
        })
        .collect();
    if matches.is_empty() {
        return None;
    }
    matches.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best_id, best, _) = &matches[0];
    let at_ms = |seq: u64| -> i64 {
        trace
            .events
            .binary_search_by_key(&seq, |e| e.seq)
            .map_or(0, |i| trace.at_ms(trace.events[i].ts))
    };
    let mut evidence = Vec::new();
    for (rank, (id, overlap, found)) in matches.iter().take(5).enumerate() {
        let own_stretches = stretches(found.iter().map(|(a, _)| (a[1], a[2])).collect());
        for (from, to) in own_stretches.iter().take(if rank == 0 { 3 } else { 1 }) {
            // The other session's seq range for the grams inside this stretch.
            let theirs = stretches(
                found
                    .iter()
                    .filter(|(a, _)| a[1] >= *from && a[2] <= *to)
                    .map(|(_, b)| (b[1], b[2]))
                    .collect(),
            );
            let (their_from, their_to) = theirs
                .iter()
                .fold((u64::MAX, 0), |acc, (f, t)| (acc.0.min(*f), acc.1.max(*t)));
            evidence.push(Evidence {
                from_seq: *from,
                to_seq: *to,
                replay_seq: *from,
                at_ms: at_ms(*from),
                file: None,
                note: format!(
                    "keystroke timing of seq {from}–{to} here matches seq {their_from}–{their_to} \
                     of session {id} ({:.0}% of the sampled timing n-grams — exact ms and \
                     gap-order patterns — match that session); compare the two side by side",
                    100.0 * overlap
                ),
            });
        }
    }
    Some(Finding {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        rule: "timing_replayed".to_string(),
        level: FindingLevel::Major,
        measured: *best,
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
        evidence,
    })
}
