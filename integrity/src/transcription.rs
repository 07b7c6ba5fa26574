//! Transcription signature: a solution re-typed from another source, top to bottom.
//!
//! Someone typing in an answer read from elsewhere writes in one long linear pass, makes few
//! corrections, and pauses where they look back at the source — anywhere in a line. Someone
//! composing code jumps around (signatures first, bodies later, back up to fix things), deletes
//! more, and pauses to plan *before statements* much more than mid-line.
//!
//! # Stretches
//!
//! Edits the editor marked `typed` are cut into *top-to-bottom stretches*: a stretch continues
//! while each typed edit happens at or after the cursor the previous one left — right after the
//! previous insertion, a backspace or forward delete at the cursor (a *correction*), or further
//! down the same file (moving on to the next hole, past existing text; timing restarts there). A
//! typed edit before the cursor (going back up), a change of file, or a paste or other non-typed
//! edit starts a new stretch. Autocompletion at the cursor continues a stretch (its text is not
//! counted as typed). Cursor and focus events do not break a stretch. The deletion ratio counts
//! corrections only (deleting a starter placeholder further down is moving on, not a correction).
//! The edits are replayed so that each final character knows the stretch that typed it; a stretch
//! is *long* when at least [`LONG_STRETCH_CHARS`] of its characters survive.
//!
//! # Pauses
//!
//! Each typed edit's key time is the `down_ms` of the last key press before it (when the candidate
//! consented to keystroke dynamics and keystrokes were recorded), otherwise the edit's timestamp;
//! its gap is the time from the previous typed edit of the same stretch (capped at
//! [`GAP_CAP_MS`]). A *line-start pause* is the larger of the gap before a newline and the gap
//! before the first non-whitespace character after it; a *mid-line pause* is the larger of the
//! gaps of two consecutive mid-line keys (so both are a maximum of two gaps and compare fairly).
//! The ratio is the geometric mean of line-start pauses over the geometric mean of mid-line
//! pauses: several times 1 for composing, about 1 for transcribing.
//!
//! # Rule
//!
//! `linear_transcription` (Review) fires only when every check agrees over the long stretches:
//! `linear_coverage` (share of the final typed characters in long stretches) ≥ 0.6,
//! `linear_chars` ≥ 400, `typed_deletion_ratio` (deleted ÷ inserted typed units in them) ≤ 0.05 and
//! `line_start_pause_ratio` ≤ 1.8 with at least [`MIN_LINE_STARTS`] line starts.

use serde::Serialize;

use super::provenance::ledger::{Insert, Ledger, Tag};
use super::provenance::Origin;
use super::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck, SessionTrace};
use clarity_domain::telemetry::{EditOrigin, TelemetryData};

pub const DETECTOR: &str = "transcription";
pub const VERSION: &str = "2";

/// A stretch is long when at least this many of its characters survive.
pub const LONG_STRETCH_CHARS: u64 = 200;
pub const COVERAGE_THRESHOLD: f64 = 0.6;
pub const CHARS_THRESHOLD: f64 = 400.0;
pub const DELETION_RATIO_THRESHOLD: f64 = 0.05;
pub const PAUSE_RATIO_THRESHOLD: f64 = 1.8;
/// Fewer line starts than this in the long stretches: the pause ratio is not measured.
pub const MIN_LINE_STARTS: usize = 12;
/// Fewer mid-line pairs than this: the pause ratio is not measured.
pub const MIN_MID_LINE: usize = 30;
/// Gaps are capped (a coffee break is not a pause before a statement).
pub const GAP_CAP_MS: f64 = 20_000.0;

/// One linear stretch of typing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stretch {
    pub file: String,
    pub from_seq: u64,
    pub to_seq: u64,
    pub at_ms: i64,
    /// Typed units inserted and deleted within the stretch.
    pub inserted_units: u64,
    pub deleted_units: u64,
    /// Characters (Unicode scalar values) of the stretch in the final files.
    pub surviving_chars: u64,
    #[serde(skip)]
    line_start_pauses: Vec<f64>,
    #[serde(skip)]
    mid_line_pauses: Vec<f64>,
}

struct Cursor {
    file: String,
    at: i64,
    /// Key time of the previous typed edit in the stretch.
    last_key: Option<f64>,
    /// Gap of the newline edit whose line has not started yet (whitespace only so far).
    pending_line: Option<f64>,
    /// A mid-line gap waiting for its pair.
    pending_mid: Option<f64>,
}

fn utf16_len(s: &str) -> i64 {
    s.encode_utf16().count() as i64
}

/// Cuts the typed edits into stretches and replays them.
pub fn stretches(trace: &SessionTrace) -> (Vec<Stretch>, u64) {
    let use_keys = trace.consent.keystroke_dynamics
        && trace
            .events
            .iter()
            .any(|e| matches!(e.data, TelemetryData::Keystroke { .. }));
    let mut ledger = Ledger::new(&trace.starter_files);
    let mut out: Vec<Stretch> = Vec::new();
    let mut cur: Option<Cursor> = None;
    let mut key: Option<f64> = None;
    for e in &trace.events {
        match &e.data {
            TelemetryData::Keystroke { down_ms, .. } => key = Some(*down_ms),
            TelemetryData::Edit {
                file,
                position,
                deleted,
                inserted,
                origin,
            } => {
                let key_time = if use_keys {
                    key.take()
                } else {
                    Some(trace.at_ms(e.ts) as f64)
                };
                match origin {
                    EditOrigin::Typed => {
                        let step = cur
                            .as_ref()
                            .filter(|c| &c.file == file)
                            .and_then(|c| step(c.at, *position, *deleted, inserted));
                        if step.is_none() {
                            out.push(Stretch {
                                file: file.clone(),
                                from_seq: e.seq,
                                to_seq: e.seq,
                                at_ms: trace.at_ms(e.ts),
                                inserted_units: 0,
                                deleted_units: 0,
                                surviving_chars: 0,
                                line_start_pauses: Vec::new(),
                                mid_line_pauses: Vec::new(),
                            });
                            cur = Some(Cursor {
                                file: file.clone(),
                                at: *position,
                                last_key: None,
                                pending_line: None,
                                pending_mid: None,
                            });
                        }
                        let label = out.len() as u32;
                        let applied = ledger.edit(
                            file,
                            *position,
                            *deleted,
                            inserted,
                            Insert::Tagged(Tag::new(Origin::Typed, label)),
                        );
                        let (Some(c), Some(s)) = (cur.as_mut(), out.last_mut()) else {
                            continue;
                        };
                        if applied.is_err() {
                            cur = None;
                            continue;
                        }
                        s.to_seq = e.seq;
                        s.inserted_units += utf16_len(inserted) as u64;
                        if step == Some(Step::Correction) {
                            s.deleted_units += (*deleted).max(0) as u64;
                        }
                        if step == Some(Step::Forward) {
                            // Skipping ahead (the next hole, past existing text): the pass
                            // continues but the gap includes navigation, so timing restarts.
                            c.last_key = None;
                            c.pending_line = None;
                            c.pending_mid = None;
                        }
                        c.at = position + utf16_len(inserted);
                        let gap = match (c.last_key, key_time) {
                            (Some(a), Some(b)) if b > a => Some((b - a).min(GAP_CAP_MS)),
                            _ => None,
                        };
                        if key_time.is_some() {
                            c.last_key = key_time;
                        }
                        pauses(c, s, inserted, gap);
                    }
                    EditOrigin::Autocomplete => {
                        let _ = ledger.edit(
                            file,
                            *position,
                            *deleted,
                            inserted,
                            Insert::Tagged(Tag::new(Origin::Autocompleted, 0)),
                        );
                        match cur.as_mut() {
                            Some(c) if &c.file == file && position + deleted == c.at => {
                                c.at = position + utf16_len(inserted);
                                c.pending_mid = None;
                            }
                            _ => cur = None,
                        }
                    }
                    _ => {
                        let _ = ledger.edit(
                            file,
                            *position,
                            *deleted,
                            inserted,
                            Insert::Tagged(Tag::new(Origin::Other, 0)),
                        );
                        cur = None;
                    }
                }
            }
            TelemetryData::FileCreated { file, content } => {
                let _ = ledger.create(file, content, Insert::Tagged(Tag::new(Origin::Other, 0)));
            }
            TelemetryData::FileRenamed { file, new_file }
                if ledger.rename(file, new_file).is_ok() =>
            {
                if let Some(c) = cur.as_mut().filter(|c| &c.file == file) {
                    c.file = new_file.clone();
                }
            }
            TelemetryData::FileDeleted { file } => {
                let _ = ledger.delete(file);
                if cur.as_ref().is_some_and(|c| &c.file == file) {
                    cur = None;
                }
            }
            _ => {}
        }
    }
    let mut typed_total = 0u64;
    ledger.for_each_run(|_, tag, chars| {
        if tag.origin == Origin::Typed && tag.label > 0 {
            typed_total += chars;
            if let Some(s) = out.get_mut(tag.label as usize - 1) {
                s.surviving_chars += chars;
            }
        }
    });
    (out, typed_total)
}

/// How a typed edit relates to the stretch's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Inserting at the cursor.
    Linear,
    /// Backspace or forward delete at the cursor (a correction).
    Correction,
    /// Inserting or deleting after the cursor: moving on down the file.
    Forward,
}

/// The step a typed edit makes from cursor `at`, or `None` when it goes back (a new stretch).
fn step(at: i64, position: i64, deleted: i64, inserted: &str) -> Option<Step> {
    if inserted.is_empty() && deleted > 0 && (position + deleted == at || position == at) {
        Some(Step::Correction)
    } else if position == at && deleted == 0 {
        Some(Step::Linear)
    } else if position >= at {
        Some(Step::Forward)
    } else {
        None
    }
}

/// Records the pause samples of one typed edit.
fn pauses(c: &mut Cursor, s: &mut Stretch, inserted: &str, gap: Option<f64>) {
    if inserted.is_empty() {
        // A deletion: mid-line pairing restarts; a pending line start stays pending.
        c.pending_mid = None;
        return;
    }
    if let Some(nl) = inserted.rfind('\n') {
        c.pending_mid = None;
        let tail = &inserted[nl + 1..];
        if tail.trim().is_empty() {
            c.pending_line = Some(gap.unwrap_or(f64::NAN));
        } else {
            if let Some(g) = gap {
                s.line_start_pauses.push(g);
            }
            c.pending_line = None;
        }
        return;
    }
    if let Some(nl_gap) = c.pending_line {
        if inserted.trim().is_empty() {
            return;
        }
        c.pending_line = None;
        c.pending_mid = None;
        let g = match gap {
            Some(g) if !nl_gap.is_nan() => g.max(nl_gap),
            Some(g) => g,
            None if !nl_gap.is_nan() => nl_gap,
            None => return,
        };
        s.line_start_pauses.push(g);
        return;
    }
    match (gap, c.pending_mid.take()) {
        (Some(g), Some(prev)) => s.mid_line_pauses.push(g.max(prev)),
        (Some(g), None) => c.pending_mid = Some(g),
        (None, _) => {}
    }
}

fn geo_mean(v: &[f64]) -> f64 {
    let logs: Vec<f64> = v.iter().filter(|g| **g > 0.0).map(|g| g.ln()).collect();
    if logs.is_empty() {
        return f64::NAN;
    }
    (logs.iter().sum::<f64>() / logs.len() as f64).exp()
}

/// Measures the transcription signature.
pub fn analyse(trace: &SessionTrace) -> DetectorReport {
    let (all, typed_total) = stretches(trace);
    let long: Vec<&Stretch> = all
        .iter()
        .filter(|s| s.surviving_chars >= LONG_STRETCH_CHARS)
        .collect();
    let long_chars: u64 = long.iter().map(|s| s.surviving_chars).sum();
    let inserted: u64 = long.iter().map(|s| s.inserted_units).sum();
    let deleted: u64 = long.iter().map(|s| s.deleted_units).sum();
    let line: Vec<f64> = long
        .iter()
        .flat_map(|s| s.line_start_pauses.iter().copied())
        .collect();
    let mid: Vec<f64> = long
        .iter()
        .flat_map(|s| s.mid_line_pauses.iter().copied())
        .collect();
    let coverage = if typed_total == 0 {
        0.0
    } else {
        long_chars as f64 / typed_total as f64
    };
    let deletion_ratio = if inserted == 0 {
        0.0
    } else {
        deleted as f64 / inserted as f64
    };
    let enough_pauses = line.len() >= MIN_LINE_STARTS && mid.len() >= MIN_MID_LINE;
    let line_gm = geo_mean(&line);
    let mid_gm = geo_mean(&mid);
    let ratio = if enough_pauses {
        line_gm / mid_gm
    } else {
        f64::NAN
    };

    let c_cov = RuleCheck::new(
        "linear_coverage",
        coverage,
        Comparison::AtLeast,
        COVERAGE_THRESHOLD,
    );
    let c_chars = RuleCheck::new(
        "linear_chars",
        long_chars as f64,
        Comparison::AtLeast,
        CHARS_THRESHOLD,
    );
    let mut c_del = RuleCheck::new(
        "typed_deletion_ratio",
        deletion_ratio,
        Comparison::AtMost,
        DELETION_RATIO_THRESHOLD,
    );
    if inserted == 0 {
        // No long stretch: nothing to measure, never fired.
        c_del.fired = false;
    }
    // Not measurable (too few line starts): NaN, written as null, never fired.
    let c_pause = RuleCheck::new(
        "line_start_pause_ratio",
        ratio,
        Comparison::AtMost,
        PAUSE_RATIO_THRESHOLD,
    );
    let parts = [
        c_cov.clone(),
        c_chars.clone(),
        c_del.clone(),
        c_pause.clone(),
    ];
    let agreeing = parts.iter().filter(|c| c.fired).count();
    let composite = RuleCheck::new(
        "linear_transcription",
        agreeing as f64,
        Comparison::AtLeast,
        parts.len() as f64,
    );
    let mut findings = Vec::new();
    if composite.fired {
        let mut ev: Vec<&Stretch> = long.clone();
        ev.sort_by_key(|s| std::cmp::Reverse(s.surviving_chars));
        let evidence = ev
            .iter()
            .take(5)
            .map(|s| Evidence {
                from_seq: s.from_seq,
                to_seq: s.to_seq,
                replay_seq: s.from_seq,
                at_ms: s.at_ms,
                file: Some(s.file.clone()),
                note: format!(
                    "{} characters typed in one linear pass ({} surviving), {} units deleted",
                    s.inserted_units, s.surviving_chars, s.deleted_units
                ),
            })
            .collect();
        findings.push(Finding {
            detector: DETECTOR.to_string(),
            detector_version: VERSION.to_string(),
            rule: composite.rule.clone(),
            level: FindingLevel::Review,
            measured: composite.measured,
            threshold: composite.threshold,
            comparison: composite.comparison,
            summary: format!(
                "{:.0}% of the typed code ({long_chars} characters) was written top to bottom in linear passes with {:.1}% deletions and no extra pause before statements (ratio {:.2})",
                coverage * 100.0,
                deletion_ratio * 100.0,
                ratio
            ),
            related_session: None,
            supporting: parts.to_vec(),
            evidence,
        });
    }
    let metrics = serde_json::json!({
        "stretches": all.len(),
        "long_stretches": long.len(),
        "typed_chars": typed_total,
        "line_starts": line.len(),
        "mid_line_pairs": mid.len(),
        "line_start_pause_ms": if line_gm.is_nan() { None } else { Some(line_gm) },
        "mid_line_pause_ms": if mid_gm.is_nan() { None } else { Some(mid_gm) },
        "timing": if trace.consent.keystroke_dynamics { "keystrokes_if_recorded" } else { "edit_timestamps" },
    });
    let mut checks = parts.to_vec();
    checks.push(composite);
    DetectorReport {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        skipped: None,
        checks,
        findings,
        metrics: super::metrics_object(metrics),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::sessions::test_support::*;
    use crate::synth::sessions::{honest_session, transcribed_session, HonestStyle};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn fired(r: &DetectorReport) -> bool {
        r.findings.iter().any(|f| f.rule == "linear_transcription")
    }

    #[test]
    fn steps_follow_the_cursor_down_the_file_and_break_when_going_back() {
        assert_eq!(step(10, 10, 0, "a"), Some(Step::Linear));
        assert_eq!(step(10, 9, 1, ""), Some(Step::Correction));
        assert_eq!(step(10, 10, 2, ""), Some(Step::Correction));
        assert_eq!(step(10, 40, 0, "a"), Some(Step::Forward));
        assert_eq!(step(10, 40, 9, ""), Some(Step::Forward));
        assert_eq!(step(10, 3, 0, "a"), None);
        assert_eq!(step(10, 3, 2, ""), None);
    }

    #[test]
    fn a_transcription_is_flagged_with_its_stretch_as_evidence() {
        let mut rng = StdRng::seed_from_u64(21);
        let (starter, target) = task(1);
        let events = transcribed_session(&mut rng, &mut TestTypist, &starter, &target, start());
        let r = analyse(&trace(&starter, events));
        assert!(fired(&r), "{:?}", r.checks);
        let f = &r.findings[0];
        assert_eq!(f.level, FindingLevel::Review);
        assert_eq!(f.supporting.len(), 4);
        assert!(f.supporting.iter().all(|c| c.fired));
        assert!(!f.evidence.is_empty());
        assert!(f
            .evidence
            .iter()
            .all(|e| e.from_seq < e.to_seq && e.file.is_some()));
        assert_eq!(r.checks.len(), 5);
        serde_json::to_string(&r).unwrap();
    }

    #[test]
    fn without_keystroke_consent_edit_times_give_the_same_verdicts() {
        let mut rng = StdRng::seed_from_u64(22);
        for i in 0..6 {
            let (starter, target) = task(i);
            let transcribed =
                transcribed_session(&mut rng, &mut TestTypist, &starter, &target, start());
            let honest = honest_session(
                &mut rng,
                &mut TestTypist,
                &starter,
                &target,
                HonestStyle::LinearComposer,
                start(),
            );
            for (events, expected) in [(transcribed, true), (honest, false)] {
                let mut t = trace(&starter, events);
                t.consent.keystroke_dynamics = false;
                assert_eq!(fired(&analyse(&t)), expected);
            }
        }
    }

    #[test]
    fn a_short_transcription_is_not_enough_to_flag() {
        let mut rng = StdRng::seed_from_u64(23);
        let starter = vec![file("a.rs", "")];
        let target = vec![file(
            "a.rs",
            "fn add(a: i64, b: i64) -> i64 {\n    a + b\n}\n\nfn sub(a: i64, b: i64) -> i64 {\n    a - b\n}\n",
        )];
        let events = transcribed_session(&mut rng, &mut TestTypist, &starter, &target, start());
        let r = analyse(&trace(&starter, events));
        assert!(!fired(&r));
        assert!(r
            .checks
            .iter()
            .any(|c| c.rule == "linear_chars" && !c.fired));
    }

    #[test]
    fn a_session_with_no_typing_measures_nothing_and_flags_nothing() {
        let r = analyse(&trace(&[file("a.rs", "x")], Vec::new()));
        assert!(r.findings.is_empty());
        assert!(r.checks.iter().all(|c| !c.fired));
        // What cannot be measured is null (NaN), never a number that reads like a measurement.
        for c in &r.checks {
            assert_eq!(
                c.measured.is_nan(),
                c.rule == "line_start_pause_ratio",
                "{}",
                c.rule
            );
        }
        let json = serde_json::to_value(&r).unwrap();
        let pause = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["rule"] == "line_start_pause_ratio")
            .unwrap();
        assert!(pause["measured"].is_null());
        assert!(json["metrics"]["line_start_pause_ms"].is_null());
    }
}
