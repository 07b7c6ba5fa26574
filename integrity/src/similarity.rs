//! Similarity between the final files of submissions to the same task: winnowed fingerprints of
//! normalised tokens (Schleimer, Wilkerson & Aiken, *Winnowing: local algorithms for document
//! fingerprinting*, SIGMOD 2003), with the starter code excluded and a threshold calibrated per
//! task on independent honest pairs.
//!
//! # Pipeline
//!
//! 1. [`lexer`]: each file is lexed by its extension (Python, Go, TypeScript/JavaScript, SQL, C-like
//!    for anything else; prose and configuration are skipped). Comments and whitespace are
//!    dropped, every identifier becomes one token class and every literal another, so renaming
//!    variables or changing strings, numbers and comments changes nothing. Keywords and
//!    punctuation are kept: they carry the structure.
//! 2. Every run of `k` consecutive tokens of a file (a k-gram; k-grams never span two files, nor
//!    two SQL statements) is
//!    hashed, and winnowing keeps, in every window of `w` consecutive k-gram hashes, the minimum
//!    (the rightmost one on ties). Two guarantees follow:
//!    - any run of at least `t = w + k − 1` tokens shared by two submissions contains a whole
//!      window of identical hashes, from which both select the same fingerprint: **it is found**;
//!    - a shared run shorter than `k` tokens (the noise threshold) contains no whole k-gram:
//!      **it never matches**. Everyone's `if err != nil { return err }` (8 tokens) stays below it.
//! 3. Every fingerprint whose hash occurs anywhere in the starter files (all of their k-grams, not
//!    only the winnowed ones) is removed, so code everyone was given never counts.
//! 4. [`compare`]: the score is the share of distinct fingerprints in common, over the smaller of
//!    the two sets (so a copy padded with dead code still scores high); matched fingerprints are
//!    merged into [`Region`]s a reviewer reads side by side ([`side_by_side`]).
//! 5. [`analyse`]: one finding per other session at or above the task's threshold, obtained with
//!    [`calibrate`] from scores of independent honest pairs. Findings are never verdicts.
//!
//! # Parameters
//!
//! Defaults: `k = 15`, `w = 10`, so `t = 24` normalised tokens. A line of code is 6–10 tokens,
//! so `k` is about two lines: longer than the idioms every candidate writes (`if err != nil {
//! return fmt.Errorf("...: %w", err) }` is 14 tokens), and `t` about three lines, short enough that
//! a copied function (dozens of tokens) is always found even after dead statements are
//! interleaved every few lines. The expected density is `2 / (w + 1)` ≈ 18% of k-grams.
//!
//! Hashes are FNV-1a over normalised tokens, mixed and truncated to 53 bits so that the stored
//! JSON survives any JSON reader (IEEE doubles); they are stable across processes and releases.

pub mod lexer;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use self::lexer::{lang_of, lex, Lang};
use crate::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck};
use clarity_domain::session::SubmittedFile;

/// Detector name.
pub const DETECTOR: &str = "similarity";
/// Detector version: bump when the lexer, normalisation, hashing or defaults change
/// (fingerprints of different versions are not compared).
pub const VERSION: &str = "1";
/// The rule: a share of fingerprints in common with another submission at or above the task's
/// threshold.
pub const RULE_SHARED: &str = "shared_fingerprints_high";
/// Submissions with fewer fingerprints than this after starter exclusion are not compared: on a
/// few lines of code, a handful of shared fingerprints is a large share by chance.
pub const MIN_FINGERPRINTS: usize = 20;
/// At or above this score (and the threshold) a finding is `Major` rather than `Review`: most of
/// the smaller submission is in the other one.
pub const MAJOR_SCORE: f64 = 0.8;
/// How many regions become evidence in a finding (the largest first).
pub const MAX_EVIDENCE: usize = 5;
/// A hash found more often than this in one submission (repeated boilerplate) still counts for
/// the score, but is not used to build regions.
const MAX_OCCURRENCES_FOR_REGIONS: usize = 4;
const HASH_BITS_MASK: u64 = (1 << 53) - 1;

/// Winnowing parameters: k-gram length `k` (the noise threshold, in normalised tokens) and window
/// `w` (in k-grams). Any shared run of `t = w + k − 1` tokens is guaranteed to be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Params {
    pub k: usize,
    pub w: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self { k: 15, w: 10 }
    }
}

impl Params {
    /// The guarantee threshold `t = w + k − 1`.
    pub fn guarantee(&self) -> usize {
        self.w + self.k - 1
    }

    fn sane(self) -> Self {
        Self {
            k: self.k.max(1),
            w: self.w.max(1),
        }
    }
}

/// One selected fingerprint and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mark {
    /// The k-gram hash (53 bits).
    pub hash: u64,
    /// Index into [`Fingerprints::files`].
    pub file: u32,
    /// Index of the k-gram's first token among the file's tokens.
    pub token: u32,
    /// First and last line (1-based, inclusive) of the k-gram.
    pub lines: (u32, u32),
    /// Byte range of the k-gram in the file.
    pub bytes: (u32, u32),
}

/// The fingerprints of one submission, stored as JSON per submission by the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fingerprints {
    /// [`VERSION`] of the detector that computed them.
    pub version: String,
    pub params: Params,
    /// Paths of the files that were fingerprinted (sorted), indexed by [`Mark::file`].
    pub files: Vec<String>,
    /// Paths that were not (prose, configuration).
    #[serde(default)]
    pub ignored_files: Vec<String>,
    /// Normalised tokens over all fingerprinted files.
    pub tokens: usize,
    /// Winnowed fingerprints removed because their hash occurs in the starter files.
    pub starter_excluded: usize,
    /// The remaining fingerprints, by file then position.
    pub marks: Vec<Mark>,
}

impl Fingerprints {
    /// Distinct hashes.
    pub fn distinct(&self) -> HashSet<u64> {
        self.marks.iter().map(|m| m.hash).collect()
    }

    /// Whether the two sets were computed the same way and can be compared.
    pub fn comparable(&self, other: &Fingerprints) -> bool {
        self.version == other.version && self.params == other.params
    }
}

/// Hashes of every k-gram of `norm` (normalised token hashes).
pub fn kgram_hashes(norm: &[u64], k: usize) -> Vec<u64> {
    if k == 0 || norm.len() < k {
        return Vec::new();
    }
    norm.windows(k)
        .map(|gram| {
            let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
            for &t in gram {
                h = (h ^ t).wrapping_mul(0x1000_0000_01b3).rotate_left(29);
            }
            splitmix(h) & HASH_BITS_MASK
        })
        .collect()
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Winnowing: the positions (ascending, without duplicates) of the minimum hash of every window
/// of `w` consecutive hashes, the rightmost on ties. A sequence shorter than a window is one
/// window.
pub fn winnow(hashes: &[u64], w: usize) -> Vec<usize> {
    let w = w.max(1);
    let n = hashes.len();
    if n == 0 {
        return Vec::new();
    }
    let windows = if n <= w { 1 } else { n - w + 1 };
    let mut selected: Vec<usize> = Vec::new();
    for start in 0..windows {
        let end = (start + w).min(n);
        let mut best = start;
        for i in start..end {
            if hashes[i] <= hashes[best] {
                best = i;
            }
        }
        if selected.last() != Some(&best) {
            selected.push(best);
        }
    }
    selected
}

/// Fingerprints a submission: lexes, normalises and winnows every code file, then removes every
/// fingerprint whose hash occurs among the k-grams of the starter files.
pub fn fingerprint(
    files: &[SubmittedFile],
    starter: &[SubmittedFile],
    params: &Params,
) -> Fingerprints {
    let params = params.sane();
    let mut starter_hashes: HashSet<u64> = HashSet::new();
    for file in starter {
        if let Some(lang) = lang_of(&file.path) {
            let norm: Vec<u64> = lex(&file.content, lang).iter().map(|t| t.norm).collect();
            starter_hashes.extend(kgram_hashes(&norm, params.k));
            if lang == Lang::Sql {
                // Statement-bounded k-grams too (see below).
                for stmt in norm.split_inclusive(|h| *h == lexer::fnv1a(b";")) {
                    starter_hashes.extend(kgram_hashes(stmt, params.k));
                }
            }
        }
    }

    let mut sorted: Vec<&SubmittedFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Fingerprints {
        version: VERSION.to_string(),
        params,
        files: Vec::new(),
        ignored_files: Vec::new(),
        tokens: 0,
        starter_excluded: 0,
        marks: Vec::new(),
    };
    for file in sorted {
        let Some(lang) = lang_of(&file.path) else {
            out.ignored_files.push(file.path.clone());
            continue;
        };
        let index = out.files.len() as u32;
        out.files.push(file.path.clone());
        let tokens = lex(&file.content, lang);
        out.tokens += tokens.len();
        let norm: Vec<u64> = tokens.iter().map(|t| t.norm).collect();
        // SQL statements are short and independent: k-grams do not span two statements, so
        // reordering statements or inserting others between them changes nothing.
        let mut segments: Vec<(usize, usize)> = Vec::new();
        let mut from = 0;
        if lang == Lang::Sql {
            for (i, t) in tokens.iter().enumerate() {
                if &file.content[t.span.clone()] == ";" {
                    segments.push((from, i + 1));
                    from = i + 1;
                }
            }
        }
        segments.push((from, tokens.len()));
        let mut selected: Vec<(u64, usize)> = Vec::new();
        for (from, to) in segments {
            let hashes = kgram_hashes(&norm[from..to], params.k);
            selected.extend(
                winnow(&hashes, params.w)
                    .into_iter()
                    .map(|i| (hashes[i], from + i)),
            );
        }
        for (hash, pos) in selected {
            if starter_hashes.contains(&hash) {
                out.starter_excluded += 1;
                continue;
            }
            let first = &tokens[pos];
            let last = &tokens[pos + params.k - 1];
            let last_line = last.line
                + file.content[last.span.clone()]
                    .bytes()
                    .filter(|&b| b == b'\n')
                    .count() as u32;
            out.marks.push(Mark {
                hash,
                file: index,
                token: pos as u32,
                lines: (first.line, last_line),
                bytes: (first.span.start as u32, last.span.end as u32),
            });
        }
    }
    out
}

/// A stretch of code matched in both submissions: adjacent matched fingerprints merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    pub file_a: String,
    /// First and last line (1-based, inclusive).
    pub lines_a: (u32, u32),
    pub file_b: String,
    pub lines_b: (u32, u32),
    /// Normalised tokens covered on side a.
    pub tokens: usize,
    /// Matched fingerprints merged into the region.
    pub fingerprints: usize,
}

/// How similar two submissions are, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Match {
    /// Distinct fingerprints in common over the distinct fingerprints of the smaller submission,
    /// in [0, 1]; 0 when either is empty or the two cannot be compared.
    pub score: f64,
    /// Distinct fingerprints in common.
    pub shared: usize,
    /// Distinct fingerprints of each side.
    pub size_a: usize,
    pub size_b: usize,
    /// Matched regions, the largest first.
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    fa: u32,
    fb: u32,
    ta: u32,
    tb: u32,
    la: (u32, u32),
    lb: (u32, u32),
}

/// Compares two submissions' fingerprints.
pub fn compare(a: &Fingerprints, b: &Fingerprints) -> Match {
    let set_a = a.distinct();
    let set_b = b.distinct();
    let mut result = Match {
        score: 0.0,
        shared: 0,
        size_a: set_a.len(),
        size_b: set_b.len(),
        regions: Vec::new(),
    };
    if !a.comparable(b) || set_a.is_empty() || set_b.is_empty() {
        return result;
    }
    result.shared = set_a.intersection(&set_b).count();
    result.score = result.shared as f64 / set_a.len().min(set_b.len()) as f64;

    let mut in_b: HashMap<u64, Vec<&Mark>> = HashMap::new();
    for m in &b.marks {
        in_b.entry(m.hash).or_default().push(m);
    }
    let mut count_a: HashMap<u64, usize> = HashMap::new();
    for m in &a.marks {
        *count_a.entry(m.hash).or_default() += 1;
    }
    let mut pairs: Vec<Pair> = Vec::new();
    for ma in &a.marks {
        let Some(mbs) = in_b.get(&ma.hash) else {
            continue;
        };
        if mbs.len() > MAX_OCCURRENCES_FOR_REGIONS
            || count_a[&ma.hash] > MAX_OCCURRENCES_FOR_REGIONS
        {
            continue;
        }
        for mb in mbs {
            pairs.push(Pair {
                fa: ma.file,
                fb: mb.file,
                ta: ma.token,
                tb: mb.token,
                la: ma.lines,
                lb: mb.lines,
            });
        }
    }
    pairs.sort_by_key(|p| (p.fa, p.fb, p.ta, p.tb));

    // Greedy chaining: a pair extends an open region of the same two files when it follows it
    // on both sides within `gap` tokens (bridging a few inserted statements).
    struct Open {
        fa: u32,
        fb: u32,
        first_ta: u32,
        last_ta: u32,
        last_tb: u32,
        la: (u32, u32),
        lb: (u32, u32),
        count: usize,
    }
    let gap = 2 * a.params.guarantee() as u32;
    let k = a.params.k as u32;
    let mut open: Vec<Open> = Vec::new();
    for p in pairs {
        let found = open.iter_mut().rev().find(|r| {
            r.fa == p.fa
                && r.fb == p.fb
                && p.ta > r.last_ta
                && p.ta - r.last_ta <= gap
                && p.tb > r.last_tb
                && p.tb - r.last_tb <= gap
        });
        match found {
            Some(r) => {
                r.last_ta = p.ta;
                r.last_tb = p.tb;
                r.la = (r.la.0.min(p.la.0), r.la.1.max(p.la.1));
                r.lb = (r.lb.0.min(p.lb.0), r.lb.1.max(p.lb.1));
                r.count += 1;
            }
            None => open.push(Open {
                fa: p.fa,
                fb: p.fb,
                first_ta: p.ta,
                last_ta: p.ta,
                last_tb: p.tb,
                la: p.la,
                lb: p.lb,
                count: 1,
            }),
        }
    }
    result.regions = open
        .into_iter()
        .map(|r| Region {
            file_a: a.files[r.fa as usize].clone(),
            lines_a: r.la,
            file_b: b.files[r.fb as usize].clone(),
            lines_b: r.lb,
            tokens: (r.last_ta + k - r.first_ta) as usize,
            fingerprints: r.count,
        })
        .collect();
    result.regions.sort_by(|x, y| {
        y.tokens
            .cmp(&x.tokens)
            .then_with(|| x.file_a.cmp(&y.file_a))
            .then_with(|| x.lines_a.cmp(&y.lines_a))
    });
    result
}

fn lines_of(files: &[SubmittedFile], path: &str, lines: (u32, u32)) -> String {
    let Some(file) = files.iter().find(|f| f.path == path) else {
        return String::new();
    };
    let (from, to) = (lines.0.max(1) as usize, lines.1 as usize);
    file.content
        .lines()
        .enumerate()
        .filter(|(i, _)| (from..=to).contains(&(i + 1)))
        .map(|(_, l)| format!("{l}\n"))
        .collect()
}

/// The text of both sides of a region (whole lines), for display side by side.
pub fn side_by_side(
    region: &Region,
    a_files: &[SubmittedFile],
    b_files: &[SubmittedFile],
) -> (String, String) {
    (
        lines_of(a_files, &region.file_a, region.lines_a),
        lines_of(b_files, &region.file_b, region.lines_b),
    )
}

/// Compares one submission with the other submissions of the same task.
///
/// Measures [`RULE_SHARED`] as the highest score over the compared submissions and files a
/// finding per other session at or above `threshold` (`Major` from [`MAJOR_SCORE`]), with the
/// largest matched regions as evidence (the `seq` fields are 0: similarity is about final
/// files). Submissions with fewer than [`MIN_FINGERPRINTS`] fingerprints after starter exclusion,
/// or fingerprinted by another version or with other parameters, are not compared.
pub fn analyse(
    own: &Fingerprints,
    others: &[(String, Fingerprints)],
    threshold: f64,
) -> DetectorReport {
    let own_size = own.distinct().len();
    if own_size < MIN_FINGERPRINTS {
        let mut report = DetectorReport::skipped(
            DETECTOR,
            VERSION,
            format!(
                "too little code of its own to compare: {own_size} fingerprints after starter \
                 exclusion (fewer than {MIN_FINGERPRINTS})"
            ),
        );
        report.metrics =
            super::metrics_object(json!({ "fingerprints": own_size, "tokens": own.tokens }));
        return report;
    }
    let mut too_small = 0usize;
    let mut incompatible = 0usize;
    let mut scored: Vec<(&str, Match)> = Vec::new();
    for (session, theirs) in others {
        if !own.comparable(theirs) {
            incompatible += 1;
        } else if theirs.distinct().len() < MIN_FINGERPRINTS {
            too_small += 1;
        } else {
            scored.push((session.as_str(), compare(own, theirs)));
        }
    }
    if scored.is_empty() {
        let mut report = DetectorReport::skipped(
            DETECTOR,
            VERSION,
            format!(
                "no other submission to compare with ({} others: {too_small} too small, \
                 {incompatible} fingerprinted differently)",
                others.len()
            ),
        );
        report.metrics =
            super::metrics_object(json!({ "fingerprints": own_size, "tokens": own.tokens }));
        return report;
    }
    scored.sort_by(|x, y| y.1.score.total_cmp(&x.1.score).then(x.0.cmp(y.0)));
    let best = scored[0].1.score;
    let check = RuleCheck::new(RULE_SHARED, best, Comparison::AtLeast, threshold);

    let findings = scored
        .iter()
        .filter(|(_, m)| RuleCheck::new(RULE_SHARED, m.score, Comparison::AtLeast, threshold).fired)
        .map(|(session, m)| finding(session, m, threshold))
        .collect();
    let top: Vec<serde_json::Value> = scored
        .iter()
        .take(5)
        .map(|(s, m)| json!({ "session": s, "score": m.score, "shared": m.shared }))
        .collect();
    DetectorReport {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        skipped: None,
        checks: vec![check],
        findings,
        metrics: super::metrics_object(json!({
            "fingerprints": own_size,
            "tokens": own.tokens,
            "starter_excluded": own.starter_excluded,
            "compared": scored.len(),
            "skipped_too_small": too_small,
            "skipped_incompatible": incompatible,
            "k": own.params.k,
            "w": own.params.w,
            "top": top,
        })),
    }
}

fn finding(session: &str, m: &Match, threshold: f64) -> Finding {
    let level = if m.score >= MAJOR_SCORE {
        FindingLevel::Major
    } else {
        FindingLevel::Review
    };
    let evidence = m
        .regions
        .iter()
        .take(MAX_EVIDENCE)
        .map(|r| Evidence {
            from_seq: 0,
            to_seq: 0,
            replay_seq: 0,
            at_ms: 0,
            file: Some(r.file_a.clone()),
            note: format!(
                "lines {}–{} of {} match lines {}–{} of {} in session {session} ({} tokens, \
                 identifiers and literals abstracted)",
                r.lines_a.0, r.lines_a.1, r.file_a, r.lines_b.0, r.lines_b.1, r.file_b, r.tokens
            ),
        })
        .collect();
    Finding {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        rule: RULE_SHARED.to_string(),
        level,
        measured: m.score,
        threshold,
        comparison: Comparison::AtLeast,
        summary: format!(
            "{:.0}% of the code's fingerprints (starter code excluded) also occur in session \
             {session}, in {} matched regions: compare them side by side.",
            m.score * 100.0,
            m.regions.len()
        ),
        related_session: Some(session.to_string()),
        supporting: Vec::new(),
        evidence,
    }
}

/// The calibrated threshold for a built-in task (catalogue ids `c1a71700-…-00000000000N`, in
/// catalogue order): the highest score of any independent honest pair of that task in a
/// calibration run (`clarity integrity eval --seed 1`, ~10,000 pairs per task) plus 0.05, so that
/// the published evaluation (another seed) measures it out of sample (see
/// `docs/integrity-eval.md`). Custom assessments, never calibrated, use the strictest value.
pub fn task_threshold(assessment_id: uuid::Uuid) -> f64 {
    let base = 0xc1a7_1700_0000_4000_8000_0000_0000_0001_u128;
    let n = assessment_id.as_u128().wrapping_sub(base);
    TASK_THRESHOLDS
        .get(n as usize)
        .copied()
        .filter(|_| n < TASK_THRESHOLDS.len() as u128)
        .unwrap_or(UNCALIBRATED_THRESHOLD)
}

/// Per built-in task, in catalogue order. A value above 1 switches the detector off for the task:
/// on the schema-optimization task (SQL against a fixed schema) independent honest solutions
/// coincide, so a match says nothing.
pub const TASK_THRESHOLDS: [f64; 7] = [0.82, 1.01, 0.77, 0.91, 0.87, 0.88, 0.87];
/// For assessments without a calibration.
pub const UNCALIBRATED_THRESHOLD: f64 = 0.91;

/// A per-task threshold from the scores of independent honest pairs: the `quantile` (in [0, 1],
/// nearest rank) of the scores plus `margin`, clamped to [0, 1]. NaN scores are ignored; with no
/// scores the threshold is 1: until a task is calibrated only identical fingerprint sets fire.
pub fn calibrate(honest_pair_scores: &[f64], quantile: f64, margin: f64) -> f64 {
    let mut scores: Vec<f64> = honest_pair_scores
        .iter()
        .copied()
        .filter(|s| !s.is_nan())
        .collect();
    if scores.is_empty() {
        return 1.0;
    }
    scores.sort_by(f64::total_cmp);
    let q = quantile.clamp(0.0, 1.0);
    let rank = ((q * scores.len() as f64).ceil() as usize).clamp(1, scores.len());
    (scores[rank - 1] + margin).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests;
