//! Provenance: where every character of the final files came from.
//!
//! The edits are replayed over the starter files with an origin on every UTF-16 unit
//! ([`ledger`]). Origins:
//!
//! - [`Origin::Starter`]: the assessment's starter files, untouched. Excluded from every share.
//! - [`Origin::Typed`]: an edit the editor marked `typed` with at least one `Keystroke` event
//!   strictly between the previous `Edit` event (of any file and origin, or the session start)
//!   and it. The client sends the key press before the edit it causes, so one key press
//!   attributes the next edit only (auto-indent and auto-closed brackets arrive in that one edit).
//! - [`Origin::Unattributed`]: an edit marked `typed` with no key press since the previous edit
//!   (text that appeared with no keystroke: a script driving the editor, a remote tool), and the
//!   content of a file created with content that matches nothing the session saw (an upload, a
//!   drag-and-drop). When the session holds no `Keystroke` event at all the client did not record
//!   key presses (e.g. no keystroke consent), so typed edits are counted as typed and the
//!   `unattributed_share_high` rule is not measured.
//! - [`Origin::Pasted`]: a paste whose text was not in the workspace (external).
//! - [`Origin::InternalPaste`]: a paste whose text, ignoring surrounding whitespace, was present
//!   in the workspace or in recently deleted text at paste time (duplicating a line, cut and paste
//!   to move code). Units copied from an external paste keep their `Pasted` origin and paste, so
//!   cut-and-paste does not turn a paste into internal work.
//! - [`Origin::Autocompleted`]: an `autocomplete` edit.
//! - [`Origin::Other`]: `other` edits, and `undo` edits that restore nothing remembered. An undo
//!   (or a created file's content) that restores recently deleted text takes back that text's
//!   origins.
//!
//! **Characters are Unicode scalar values** (a surrogate pair counts once) in every count and share
//! reported here; positions stay UTF-16 units as on the wire.
//!
//! An event that does not apply to the replayed state (unknown file, range past the end, inside a
//! surrogate pair, negative numbers) is skipped and counted in [`Provenance::anomalies`].

pub(crate) mod ledger;

use serde::Serialize;

use super::{Comparison, DetectorReport, Evidence, Finding, FindingLevel, RuleCheck, SessionTrace};
use clarity_domain::session::SubmittedFile;
use clarity_domain::telemetry::{EditOrigin, TelemetryData};
use ledger::{Insert, Ledger, Tag};

pub const DETECTOR: &str = "provenance";
pub const VERSION: &str = "1";

/// `pasted_share_high`: external pastes make up more than this share of the final non-starter code…
pub const PASTED_SHARE_THRESHOLD: f64 = 0.4;
/// …and at least this many characters of it (so a short solution with one import line pasted
/// stays silent).
pub const PASTED_MIN_CHARS: f64 = 300.0;
/// `large_paste_after_focus_loss`: a paste that followed a focus-away and of which at least this
/// many characters survive (a docs snippet of ~100 characters stays well below).
pub const LARGE_PASTE_CHARS: f64 = 200.0;
/// A focus-away "precedes" a paste when focus came back at most this long before it.
pub const FOCUS_WINDOW_MS: i64 = 30_000;
/// `unattributed_share_high`: more than this share of the final non-starter code appeared with no
/// key press…
pub const UNATTRIBUTED_SHARE_THRESHOLD: f64 = 0.2;
/// …and at least this many characters.
pub const UNATTRIBUTED_MIN_CHARS: f64 = 200.0;
/// Escalation to Major: surviving external pastes that followed a focus-away make up at least
/// this share of the final non-starter code…
pub const MAJOR_SHARE: f64 = 0.5;
/// …and at least this many characters.
pub const MAJOR_MIN_CHARS: u64 = 500;
/// Evidence lists at most this many pastes (largest first).
const MAX_EVIDENCE: usize = 5;

/// Where a character of the final files came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Starter,
    Typed,
    Pasted,
    InternalPaste,
    Autocompleted,
    Unattributed,
    Other,
}

/// Characters (Unicode scalar values) by origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OriginCounts {
    pub starter: u64,
    pub typed: u64,
    pub pasted: u64,
    pub internal_paste: u64,
    pub autocompleted: u64,
    pub unattributed: u64,
    pub other: u64,
}

impl OriginCounts {
    fn add(&mut self, origin: Origin, n: u64) {
        *self.slot(origin) += n;
    }

    fn slot(&mut self, origin: Origin) -> &mut u64 {
        match origin {
            Origin::Starter => &mut self.starter,
            Origin::Typed => &mut self.typed,
            Origin::Pasted => &mut self.pasted,
            Origin::InternalPaste => &mut self.internal_paste,
            Origin::Autocompleted => &mut self.autocompleted,
            Origin::Unattributed => &mut self.unattributed,
            Origin::Other => &mut self.other,
        }
    }

    /// Characters of every origin but the starter.
    pub fn non_starter(&self) -> u64 {
        self.typed
            + self.pasted
            + self.internal_paste
            + self.autocompleted
            + self.unattributed
            + self.other
    }

    /// Share of the non-starter characters with this origin (0 when there are none).
    pub fn share(&self, origin: Origin) -> f64 {
        let total = self.non_starter();
        if total == 0 || origin == Origin::Starter {
            return 0.0;
        }
        let mut copy = *self;
        *copy.slot(origin) as f64 / total as f64
    }

    /// The shares of every non-starter origin.
    pub fn shares(&self) -> Shares {
        Shares {
            typed: self.share(Origin::Typed),
            pasted: self.share(Origin::Pasted),
            internal_paste: self.share(Origin::InternalPaste),
            autocompleted: self.share(Origin::Autocompleted),
            unattributed: self.share(Origin::Unattributed),
            other: self.share(Origin::Other),
        }
    }
}

/// Shares of the final non-starter characters (they sum to 1 when there are any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Shares {
    pub typed: f64,
    pub pasted: f64,
    pub internal_paste: f64,
    pub autocompleted: f64,
    pub unattributed: f64,
    pub other: f64,
}

/// One final file's counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileProvenance {
    pub path: String,
    pub counts: OriginCounts,
    pub shares: Shares,
}

/// A focus-away (tab-away): focus lost, then regained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FocusAway {
    pub lost_seq: u64,
    /// `None` when focus had not come back by the time of the paste.
    pub regained_seq: Option<u64>,
    pub lost_at_ms: i64,
    /// How long the editor was away (to the paste when focus had not come back).
    pub duration_ms: i64,
    /// From focus coming back to the paste (0 when it had not come back).
    pub before_paste_ms: i64,
}

/// One external paste.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PasteRecord {
    pub seq: u64,
    pub at_ms: i64,
    /// The file pasted into (its name at paste time).
    pub file: String,
    /// Characters inserted.
    pub inserted_chars: u64,
    /// Characters of it in the final files (copies of it made by internal pastes count too).
    pub surviving_chars: u64,
    /// The focus-away that ended at most [`FOCUS_WINDOW_MS`] before the paste, if any.
    pub focus_away: Option<FocusAway>,
}

/// Where the final files came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// The final state of the workspace, sorted by path.
    pub files: Vec<SubmittedFile>,
    pub per_file: Vec<FileProvenance>,
    pub totals: OriginCounts,
    pub shares: Shares,
    /// External pastes in session order.
    pub pastes: Vec<PasteRecord>,
    /// Pastes found to copy text already in the workspace.
    pub internal_pastes: u32,
    /// Typed edits with no key press since the previous edit: (seq, characters inserted).
    pub unattributed_edits: Vec<(u64, u64)>,
    /// Whether the session holds any `Keystroke` event (if not, typed edits cannot be checked).
    pub keystrokes_recorded: bool,
    /// Events skipped because they did not apply to the replayed state.
    pub anomalies: u32,
    /// The first few anomalies: (seq, code).
    pub anomaly_samples: Vec<(u64, String)>,
}

impl Provenance {
    /// External pastes by surviving characters, largest first.
    pub fn largest_pastes(&self) -> Vec<&PasteRecord> {
        let mut v: Vec<&PasteRecord> = self.pastes.iter().collect();
        v.sort_by(|a, b| {
            b.surviving_chars
                .cmp(&a.surviving_chars)
                .then(a.seq.cmp(&b.seq))
        });
        v
    }
}

/// A focus-away: (lost seq, lost ms) and, once focus came back, (regained seq, regained ms).
type Interval = (u64, i64, Option<(u64, i64)>);

/// The focus-away intervals, in order.
fn focus_intervals(trace: &SessionTrace) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    let mut open: Option<(u64, i64)> = None;
    for e in &trace.events {
        match e.data {
            TelemetryData::FocusLost {} if open.is_none() => {
                open = Some((e.seq, trace.at_ms(e.ts)));
            }
            TelemetryData::FocusRegained {} => {
                if let Some((s, ms)) = open.take() {
                    out.push((s, ms, Some((e.seq, trace.at_ms(e.ts)))));
                }
            }
            _ => {}
        }
    }
    if let Some((s, ms)) = open {
        out.push((s, ms, None));
    }
    out
}

/// The focus-away preceding a paste at `seq` / `at_ms`.
fn preceding_focus_away(intervals: &[Interval], seq: u64, at_ms: i64) -> Option<FocusAway> {
    intervals
        .iter()
        .filter(|(lost, _, _)| *lost < seq)
        .filter_map(|&(lost_seq, lost_ms, regained)| match regained {
            Some((rs, rms)) if rs < seq => {
                let before = at_ms - rms;
                (before <= FOCUS_WINDOW_MS).then_some(FocusAway {
                    lost_seq,
                    regained_seq: Some(rs),
                    lost_at_ms: lost_ms,
                    duration_ms: rms - lost_ms,
                    before_paste_ms: before.max(0),
                })
            }
            Some(_) | None => Some(FocusAway {
                lost_seq,
                regained_seq: None,
                lost_at_ms: lost_ms,
                duration_ms: at_ms - lost_ms,
                before_paste_ms: 0,
            }),
        })
        .next_back()
}

/// Replays the session and attributes every character of the final files.
pub fn provenance(trace: &SessionTrace) -> Provenance {
    let mut ledger = Ledger::new(&trace.starter_files);
    let keystrokes_recorded = trace
        .events
        .iter()
        .any(|e| matches!(e.data, TelemetryData::Keystroke { .. }));
    let intervals = focus_intervals(trace);
    let mut key_since_edit = false;
    let mut anomalies = 0u32;
    let mut anomaly_samples = Vec::new();
    let mut pastes: Vec<PasteRecord> = Vec::new();
    let mut internal_pastes = 0u32;
    let mut unattributed_edits = Vec::new();
    for e in &trace.events {
        let result = match &e.data {
            TelemetryData::Keystroke { .. } => {
                key_since_edit = true;
                Ok(())
            }
            TelemetryData::Edit {
                file,
                position,
                deleted,
                inserted,
                origin,
            } => {
                let had_key = key_since_edit || !keystrokes_recorded;
                key_since_edit = false;
                let insert = match origin {
                    EditOrigin::Typed if had_key => Insert::Tagged(Tag::new(Origin::Typed, 0)),
                    EditOrigin::Typed => Insert::Tagged(Tag::new(Origin::Unattributed, 0)),
                    // A drop brings text in as a paste does (dragged from the page itself, it is
                    // recognised as a move, like an internal paste).
                    EditOrigin::Paste | EditOrigin::Drop => Insert::Paste {
                        external: Tag::new(Origin::Pasted, pastes.len() as u32 + 1),
                    },
                    EditOrigin::Autocomplete => Insert::Tagged(Tag::new(Origin::Autocompleted, 0)),
                    EditOrigin::Undo | EditOrigin::Redo => Insert::Restore {
                        fallback: Tag::new(Origin::Other, 0),
                    },
                    EditOrigin::Other => Insert::Tagged(Tag::new(Origin::Other, 0)),
                };
                ledger
                    .edit(file, *position, *deleted, inserted, insert)
                    .map(|applied| {
                        let chars = inserted.chars().count() as u64;
                        if chars == 0 {
                            return;
                        }
                        match origin {
                            o if o.is_brought_in() && applied.copied => internal_pastes += 1,
                            o if o.is_brought_in() => {
                                let at_ms = trace.at_ms(e.ts);
                                pastes.push(PasteRecord {
                                    seq: e.seq,
                                    at_ms,
                                    file: file.clone(),
                                    inserted_chars: chars,
                                    surviving_chars: 0,
                                    focus_away: preceding_focus_away(&intervals, e.seq, at_ms),
                                });
                            }
                            EditOrigin::Typed if !had_key => {
                                unattributed_edits.push((e.seq, chars))
                            }
                            _ => {}
                        }
                    })
            }
            TelemetryData::FileCreated { file, content } => ledger.create(
                file,
                content,
                Insert::Restore {
                    fallback: Tag::new(Origin::Unattributed, 0),
                },
            ),
            TelemetryData::FileRenamed { file, new_file } => ledger.rename(file, new_file),
            TelemetryData::FileDeleted { file } => ledger.delete(file),
            _ => Ok(()),
        };
        if let Err(code) = result {
            anomalies += 1;
            if anomaly_samples.len() < 10 {
                anomaly_samples.push((e.seq, code.to_string()));
            }
        }
    }

    let mut totals = OriginCounts::default();
    let mut per_file: Vec<FileProvenance> = Vec::new();
    let mut surviving = vec![0u64; pastes.len()];
    ledger.for_each_run(|path, tag, chars| {
        if per_file.last().is_none_or(|f| f.path != path) {
            per_file.push(FileProvenance {
                path: path.to_string(),
                counts: OriginCounts::default(),
                shares: Shares::default(),
            });
        }
        if let Some(f) = per_file.last_mut() {
            f.counts.add(tag.origin, chars);
        }
        totals.add(tag.origin, chars);
        if tag.origin == Origin::Pasted && tag.label > 0 {
            if let Some(s) = surviving.get_mut(tag.label as usize - 1) {
                *s += chars;
            }
        }
    });
    for f in &mut per_file {
        f.shares = f.counts.shares();
    }
    for (p, s) in pastes.iter_mut().zip(surviving) {
        p.surviving_chars = s;
    }
    // Files with no runs (empty) still appear in `files`; give them an empty entry too.
    for f in ledger.files.keys() {
        if !per_file.iter().any(|p| &p.path == f) {
            per_file.push(FileProvenance {
                path: f.clone(),
                counts: OriginCounts::default(),
                shares: Shares::default(),
            });
        }
    }
    per_file.sort_by(|a, b| a.path.cmp(&b.path));
    Provenance {
        files: ledger.submitted(),
        per_file,
        totals,
        shares: totals.shares(),
        pastes,
        internal_pastes,
        unattributed_edits,
        keystrokes_recorded,
        anomalies,
        anomaly_samples,
    }
}

fn paste_note(p: &PasteRecord) -> String {
    let mut note = format!(
        "pasted {} characters into {} ({} in the final files)",
        p.inserted_chars, p.file, p.surviving_chars
    );
    if let Some(f) = p.focus_away {
        match f.regained_seq {
            Some(_) => note.push_str(&format!(
                ", {:.1} s after returning from {:.1} s away (focus lost at seq {})",
                f.before_paste_ms as f64 / 1000.0,
                f.duration_ms as f64 / 1000.0,
                f.lost_seq
            )),
            None => note.push_str(&format!(
                ", while the editor had been without focus for {:.1} s (since seq {})",
                f.duration_ms as f64 / 1000.0,
                f.lost_seq
            )),
        }
    }
    note
}

fn paste_evidence(p: &PasteRecord) -> Evidence {
    Evidence {
        from_seq: p.seq,
        to_seq: p.seq,
        replay_seq: p.seq,
        at_ms: p.at_ms,
        file: Some(p.file.clone()),
        note: paste_note(p),
    }
}

/// Runs the provenance rules.
///
/// - `pasted_share_high` (Review): external pastes are more than [`PASTED_SHARE_THRESHOLD`] of the
///   final non-starter characters, and at least [`PASTED_MIN_CHARS`] characters
///   (`pasted_chars_min`, recorded beside it). A few honest pastes (an import, a docs snippet of
///   ~100 characters) in a solution of a thousand characters stay far below; internal pastes never
///   count.
/// - `large_paste_after_focus_loss` (Review): the largest surviving paste that followed a
///   focus-away (focus back at most [`FOCUS_WINDOW_MS`] before it) keeps at least
///   [`LARGE_PASTE_CHARS`] characters — twice the size of an honest docs snippet.
/// - `unattributed_share_high` (Review): typed text with no key press is more than
///   [`UNATTRIBUTED_SHARE_THRESHOLD`] of the final non-starter characters and at least
///   [`UNATTRIBUTED_MIN_CHARS`] characters (`unattributed_chars_min`). Not measured when the
///   session has no keystroke events.
///
/// Both paste findings become Major when the evidence is overwhelming: surviving external pastes
/// that followed a focus-away make up at least [`MAJOR_SHARE`] of the final non-starter
/// characters and at least [`MAJOR_MIN_CHARS`] characters (most of the submission arrived in
/// pastes right after tab-aways).
pub fn analyse(trace: &SessionTrace) -> DetectorReport {
    let p = provenance(trace);
    report(trace, &p)
}

fn report(trace: &SessionTrace, p: &Provenance) -> DetectorReport {
    let total = p.totals.non_starter();
    let pasted = p.totals.pasted;
    let largest = p.largest_pastes();
    let after_focus: Vec<&PasteRecord> = largest
        .iter()
        .copied()
        .filter(|r| r.focus_away.is_some())
        .collect();
    let after_focus_chars: u64 = after_focus.iter().map(|r| r.surviving_chars).sum();
    let after_focus_share = if total == 0 {
        0.0
    } else {
        after_focus_chars as f64 / total as f64
    };
    let overwhelming = after_focus_share >= MAJOR_SHARE && after_focus_chars >= MAJOR_MIN_CHARS;
    let escalated = if overwhelming {
        FindingLevel::Major
    } else {
        FindingLevel::Review
    };

    let mut checks = Vec::new();
    let mut findings = Vec::new();
    let finding = |rule: &RuleCheck,
                   level: FindingLevel,
                   summary: String,
                   supporting: Vec<RuleCheck>,
                   evidence: Vec<Evidence>| Finding {
        detector: DETECTOR.to_string(),
        detector_version: VERSION.to_string(),
        rule: rule.rule.clone(),
        level,
        measured: rule.measured,
        threshold: rule.threshold,
        comparison: rule.comparison,
        summary,
        related_session: None,
        supporting,
        evidence,
    };

    // pasted_share_high
    let share = RuleCheck::new(
        "pasted_share_high",
        p.shares.pasted,
        Comparison::Above,
        PASTED_SHARE_THRESHOLD,
    );
    let min = RuleCheck::new(
        "pasted_chars_min",
        pasted as f64,
        Comparison::AtLeast,
        PASTED_MIN_CHARS,
    );
    if share.fired && min.fired {
        let evidence = largest
            .iter()
            .filter(|r| r.surviving_chars > 0)
            .take(MAX_EVIDENCE)
            .map(|r| paste_evidence(r))
            .collect();
        findings.push(finding(
            &share,
            escalated,
            format!(
                "{:.0}% of the final code ({} of {} characters, starter excluded) arrived in {} external paste(s)",
                share.measured * 100.0,
                pasted,
                total,
                p.pastes.iter().filter(|r| r.surviving_chars > 0).count()
            ),
            vec![share.clone(), min.clone()],
            evidence,
        ));
    }
    checks.push(share);
    checks.push(min);

    // large_paste_after_focus_loss
    let top = after_focus.first().copied();
    let large = RuleCheck::new(
        "large_paste_after_focus_loss",
        top.map_or(0.0, |r| r.surviving_chars as f64),
        Comparison::AtLeast,
        LARGE_PASTE_CHARS,
    );
    if let Some(top) = top.filter(|_| large.fired) {
        let evidence = after_focus
            .iter()
            .filter(|r| r.surviving_chars as f64 >= LARGE_PASTE_CHARS)
            .take(MAX_EVIDENCE)
            .map(|r| paste_evidence(r))
            .collect();
        findings.push(finding(
            &large,
            escalated,
            format!(
                "A paste of {} characters ({} in the final files) followed a focus-away",
                top.inserted_chars, top.surviving_chars
            ),
            Vec::new(),
            evidence,
        ));
    }
    checks.push(large);

    // unattributed_share_high
    if p.keystrokes_recorded {
        let share = RuleCheck::new(
            "unattributed_share_high",
            p.shares.unattributed,
            Comparison::Above,
            UNATTRIBUTED_SHARE_THRESHOLD,
        );
        let min = RuleCheck::new(
            "unattributed_chars_min",
            p.totals.unattributed as f64,
            Comparison::AtLeast,
            UNATTRIBUTED_MIN_CHARS,
        );
        if share.fired && min.fired {
            let mut edits = p.unattributed_edits.clone();
            edits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let evidence = edits
                .iter()
                .take(MAX_EVIDENCE)
                .filter_map(|&(seq, chars)| {
                    let e = trace.events.iter().find(|e| e.seq == seq)?;
                    let file = match &e.data {
                        TelemetryData::Edit { file, .. } => Some(file.clone()),
                        _ => None,
                    };
                    Some(Evidence {
                        from_seq: seq,
                        to_seq: seq,
                        replay_seq: seq,
                        at_ms: trace.at_ms(e.ts),
                        file,
                        note: format!(
                            "{chars} characters marked typed appeared with no key press since the previous edit"
                        ),
                    })
                })
                .collect();
            findings.push(finding(
                &share,
                FindingLevel::Review,
                format!(
                    "{:.0}% of the final code ({} characters) appeared as typing without key presses",
                    share.measured * 100.0,
                    p.totals.unattributed
                ),
                vec![share.clone(), min.clone()],
                evidence,
            ));
        }
        checks.push(share);
        checks.push(min);
    }

    let largest_json: Vec<&PasteRecord> = largest.iter().copied().take(MAX_EVIDENCE).collect();
    let metrics = serde_json::json!({
        "totals": p.totals,
        "shares": p.shares,
        "per_file": p.per_file,
        "largest_pastes": largest_json,
        "external_pastes": p.pastes.len(),
        "internal_pastes": p.internal_pastes,
        "after_focus_away_share": after_focus_share,
        "keystrokes_recorded": p.keystrokes_recorded,
        "anomalies": p.anomalies,
        "anomaly_samples": p.anomaly_samples,
        "chars_are": "unicode_scalar_values",
    });
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
    use crate::synth::sessions::{honest_session, pasted_whole_session, HonestStyle};
    use chrono::Duration;
    use clarity_domain::telemetry::{KeyClass, TelemetryEvent};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Builds a trace from (ms since start, data), numbering from seq 1.
    fn script(starter: &[SubmittedFile], steps: Vec<(i64, TelemetryData)>) -> SessionTrace {
        let events = steps
            .into_iter()
            .enumerate()
            .map(|(i, (ms, data))| TelemetryEvent {
                seq: i as u64 + 1,
                ts: start() + Duration::milliseconds(ms),
                data,
            })
            .collect();
        trace(starter, events)
    }

    fn key() -> TelemetryData {
        TelemetryData::Keystroke {
            down_ms: 0.0,
            up_ms: None,
            key_class: KeyClass::Letter,
        }
    }

    fn edit(
        file: &str,
        position: i64,
        deleted: i64,
        inserted: &str,
        origin: EditOrigin,
    ) -> TelemetryData {
        TelemetryData::Edit {
            file: file.into(),
            position,
            deleted,
            inserted: inserted.into(),
            origin,
        }
    }

    fn renumber(events: Vec<TelemetryEvent>) -> Vec<TelemetryEvent> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                e.seq = i as u64 + 1;
                e
            })
            .collect()
    }

    fn fired(r: &DetectorReport, rule: &str) -> Option<FindingLevel> {
        r.findings.iter().find(|f| f.rule == rule).map(|f| f.level)
    }

    #[test]
    fn a_hand_built_edit_script_gives_the_hand_computed_counts_in_unicode_scalar_values() {
        use EditOrigin::*;
        let starter = vec![file("a.rs", "fn main() {}\n")];
        let t = script(
            &starter,
            vec![
                (1_000, key()),
                // "é😀x": 3 characters, 4 UTF-16 units.
                (1_001, edit("a.rs", 11, 0, "é😀x", Typed)),
                (
                    2_000,
                    TelemetryData::FileCreated {
                        file: "b.rs".into(),
                        content: String::new(),
                    },
                ),
                (2_100, key()),
                (2_101, edit("b.rs", 0, 0, "hello", Typed)),
                (10_000, TelemetryData::FocusLost {}),
                (40_000, TelemetryData::FocusRegained {}),
                // External: 12 characters, 5 s after a 30 s focus-away.
                (45_000, edit("b.rs", 5, 0, " WORLD_PASTE", Paste)),
                // Own code: already in the workspace.
                (46_000, edit("b.rs", 17, 0, "hello", Paste)),
                // Typed with no key press since the previous edit.
                (47_000, edit("b.rs", 0, 0, "zz", Typed)),
                (48_000, edit("a.rs", 15, 0, "fmt", Autocomplete)),
                (49_000, edit("a.rs", 999, 0, "q", Typed)),
                (49_100, edit("a.rs", 13, 0, "q", Typed)),
                (50_000, key()),
                // Deletes "WOR" of the paste.
                (50_001, edit("b.rs", 8, 3, "", Typed)),
                (
                    51_000,
                    TelemetryData::FileRenamed {
                        file: "b.rs".into(),
                        new_file: "c.rs".into(),
                    },
                ),
                (52_000, key()),
                (52_001, edit("c.rs", 21, 0, "!", Typed)),
                (
                    53_000,
                    TelemetryData::FileCreated {
                        file: "d.rs".into(),
                        content: "junk".into(),
                    },
                ),
                (
                    54_000,
                    TelemetryData::FileDeleted {
                        file: "d.rs".into(),
                    },
                ),
                (55_000, edit("d.rs", 0, 0, "x", Other)),
            ],
        );
        let p = provenance(&t);
        assert_eq!(
            p.files,
            vec![
                file("a.rs", "fn main() {é😀xfmt}\n"),
                file("c.rs", "zzhello LD_PASTEhello!"),
            ]
        );
        let a = OriginCounts {
            starter: 13,
            typed: 3,
            autocompleted: 3,
            ..Default::default()
        };
        let c = OriginCounts {
            typed: 6,
            pasted: 9,
            internal_paste: 5,
            unattributed: 2,
            ..Default::default()
        };
        assert_eq!(p.per_file[0].counts, a);
        assert_eq!(p.per_file[1].counts, c);
        let total = OriginCounts {
            starter: 13,
            typed: 9,
            pasted: 9,
            internal_paste: 5,
            autocompleted: 3,
            unattributed: 2,
            other: 0,
        };
        assert_eq!(p.totals, total);
        assert_eq!(p.totals.non_starter(), 28);
        assert_eq!(p.shares.typed, 9.0 / 28.0);
        assert_eq!(p.shares.pasted, 9.0 / 28.0);
        assert_eq!(p.shares.internal_paste, 5.0 / 28.0);
        assert_eq!(p.shares.autocompleted, 3.0 / 28.0);
        assert_eq!(p.shares.unattributed, 2.0 / 28.0);
        assert_eq!(p.anomalies, 3);
        assert_eq!(
            p.anomaly_samples,
            vec![
                (12, "position_out_of_range".to_string()),
                (13, "splits_surrogate_pair".to_string()),
                (21, "unknown_file".to_string()),
            ]
        );
        assert_eq!(p.internal_pastes, 1);
        assert_eq!(p.unattributed_edits, vec![(10, 2)]);
        assert_eq!(
            p.pastes,
            vec![PasteRecord {
                seq: 8,
                at_ms: 45_000,
                file: "b.rs".into(),
                inserted_chars: 12,
                surviving_chars: 9,
                focus_away: Some(FocusAway {
                    lost_seq: 6,
                    regained_seq: Some(7),
                    lost_at_ms: 10_000,
                    duration_ms: 30_000,
                    before_paste_ms: 5_000,
                }),
            }]
        );
        // Small pastes in a small session: every rule stays silent.
        let r = analyse(&t);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.checks.len(), 5);
        serde_json::to_string(&r).unwrap();
    }

    #[test]
    fn cutting_and_pasting_back_an_external_paste_keeps_it_external() {
        use EditOrigin::*;
        let starter = vec![file("a.rs", "")];
        let text = "let answer = compute_everything(42);";
        let t = script(
            &starter,
            vec![
                (0, key()),
                (1, edit("a.rs", 0, 0, text, Paste)),
                (1_000, key()),
                (1_001, edit("a.rs", 0, text.len() as i64, "", Other)),
                (2_000, key()),
                (2_001, edit("a.rs", 0, 0, &format!("  {text}\n"), Paste)),
            ],
        );
        let p = provenance(&t);
        assert_eq!(p.internal_pastes, 1);
        assert_eq!(p.pastes.len(), 1);
        assert_eq!(p.pastes[0].surviving_chars, text.len() as u64);
        assert_eq!(p.totals.pasted, text.len() as u64);
        assert_eq!(
            p.totals.internal_paste, 3,
            "the added whitespace is own work"
        );
    }

    #[test]
    fn an_undo_restores_the_origin_of_the_text_it_brings_back() {
        use EditOrigin::*;
        let starter = vec![file("a.rs", "x\n")];
        let t = script(
            &starter,
            vec![
                (0, key()),
                (1, edit("a.rs", 0, 0, "abc", Typed)),
                (100, key()),
                (101, edit("a.rs", 0, 4, "", Typed)),
                (200, key()),
                (201, edit("a.rs", 0, 0, "abcx", Undo)),
                (300, edit("a.rs", 4, 0, "zz", Undo)),
            ],
        );
        let p = provenance(&t);
        assert_eq!(p.files[0].content, "abcxzz\n");
        assert_eq!(
            p.totals,
            OriginCounts {
                starter: 2,
                typed: 3,
                other: 2,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_drop_is_text_brought_in_like_a_paste_and_a_redo_restores_like_an_undo() {
        use EditOrigin::*;
        let starter = vec![file("a.rs", "x\n")];
        let t = script(
            &starter,
            vec![
                (0, key()),
                (1, edit("a.rs", 0, 0, "abc", Typed)),
                // Dropped from outside the workspace: brought in, a paste record.
                (100, edit("a.rs", 3, 0, "DROPPED", Drop)),
                // Dragged within the workspace: a move, like an internal paste.
                (200, edit("a.rs", 10, 0, "abc", Drop)),
                (300, key()),
                (301, edit("a.rs", 0, 3, "", Typed)),
                // Redo brings the typed text back with its origin.
                (400, edit("a.rs", 0, 0, "abc", Redo)),
            ],
        );
        let p = provenance(&t);
        assert_eq!(p.files[0].content, "abcDROPPEDabcx\n");
        assert_eq!(p.pastes.len(), 1, "{:?}", p.pastes);
        assert_eq!(p.pastes[0].inserted_chars, 7);
        assert_eq!(p.internal_pastes, 1);
        assert_eq!(p.totals.typed, 3, "the redone text keeps its typed origin");
    }

    #[test]
    fn without_any_keystroke_event_typed_edits_count_as_typed_and_the_unattributed_rule_is_not_measured(
    ) {
        let starter = vec![file("a.rs", "")];
        let t = script(
            &starter,
            vec![(0, edit("a.rs", 0, 0, "fn main() {}", EditOrigin::Typed))],
        );
        let p = provenance(&t);
        assert!(!p.keystrokes_recorded);
        assert_eq!(p.totals.typed, 12);
        let r = analyse(&t);
        assert!(r.checks.iter().all(|c| !c.rule.starts_with("unattributed")));
    }

    #[test]
    fn a_hundred_kilobyte_file_with_twenty_thousand_edits_replays_quickly_and_exactly() {
        let line = "let value = compute(alpha, beta); // comment\n";
        let content: String = line.repeat(100_000 / line.len());
        let starter = vec![file("big.rs", &content)];
        let mut model: Vec<u8> = content.clone().into_bytes();
        let mut rng = StdRng::seed_from_u64(3);
        let mut steps = Vec::new();
        for i in 0..20_000i64 {
            steps.push((i * 100, key()));
            if i % 5 == 4 && model.len() > 10 {
                let pos = rng.random_range(0..model.len() - 3);
                model.drain(pos..pos + 3);
                steps.push((
                    i * 100 + 1,
                    edit("big.rs", pos as i64, 3, "", EditOrigin::Typed),
                ));
            } else {
                let pos = rng.random_range(0..=model.len());
                let c = (b'a' + rng.random_range(0..26u8)) as char;
                model.insert(pos, c as u8);
                steps.push((
                    i * 100 + 1,
                    edit("big.rs", pos as i64, 0, &c.to_string(), EditOrigin::Typed),
                ));
            }
        }
        let t = script(&starter, steps);
        let clock = std::time::Instant::now();
        let p = provenance(&t);
        let elapsed = clock.elapsed();
        eprintln!("100 KB, 20 000 edits: {elapsed:?}");
        assert_eq!(p.files[0].content.as_bytes(), &model[..]);
        assert_eq!(p.anomalies, 0);
        assert!(elapsed.as_secs() < 20);
    }

    #[test]
    fn a_large_paste_after_a_tab_away_fires_and_a_docs_sized_one_does_not() {
        let mut rng = StdRng::seed_from_u64(11);
        let (starter, target) = task(0);
        let honest = honest_session(
            &mut rng,
            &mut TestTypist,
            &starter,
            &target,
            HonestStyle::Typical,
            start(),
        );
        let with_paste = |size: usize| {
            let mut events = honest.clone();
            let last = events.last().unwrap().ts;
            let pasted: String = "// from elsewhere: fold the counts into a ranking table\n"
                .repeat(size / 56 + 1)[..size]
                .to_string();
            let end = target[0].content.encode_utf16().count() as i64;
            for (k, data) in [
                TelemetryData::FocusLost {},
                TelemetryData::FocusRegained {},
                key(),
                edit("src/lib.rs", end, 0, &pasted, EditOrigin::Paste),
            ]
            .into_iter()
            .enumerate()
            {
                let ms = [1_000, 61_000, 64_000, 64_001][k];
                events.push(TelemetryEvent {
                    seq: 0,
                    ts: last + Duration::milliseconds(ms),
                    data,
                });
            }
            analyse(&trace(&starter, renumber(events)))
        };
        let big = with_paste(320);
        assert_eq!(
            fired(&big, "large_paste_after_focus_loss"),
            Some(FindingLevel::Review)
        );
        assert_eq!(fired(&big, "pasted_share_high"), None);
        let f = big
            .findings
            .iter()
            .find(|f| f.rule == "large_paste_after_focus_loss")
            .unwrap();
        assert_eq!(f.evidence.len(), 1);
        assert_eq!(f.evidence[0].from_seq, f.evidence[0].replay_seq);
        assert!(
            f.evidence[0].note.contains("60.0 s away"),
            "{}",
            f.evidence[0].note
        );
        let small = with_paste(95);
        assert!(small.findings.is_empty(), "{:?}", small.findings);
    }

    #[test]
    fn a_pasted_solution_without_tab_away_is_a_review_and_with_tab_aways_a_major_finding() {
        let mut rng = StdRng::seed_from_u64(12);
        let (starter, target) = task(1);
        let events = pasted_whole_session(&mut rng, &mut TestTypist, &starter, &target, start());
        let r = analyse(&trace(&starter, events.clone()));
        assert_eq!(fired(&r, "pasted_share_high"), Some(FindingLevel::Major));
        assert_eq!(
            fired(&r, "large_paste_after_focus_loss"),
            Some(FindingLevel::Major)
        );
        let no_focus: Vec<TelemetryEvent> = events
            .into_iter()
            .filter(|e| {
                !matches!(
                    e.data,
                    TelemetryData::FocusLost {} | TelemetryData::FocusRegained {}
                )
            })
            .collect();
        let r = analyse(&trace(&starter, renumber(no_focus)));
        assert_eq!(fired(&r, "pasted_share_high"), Some(FindingLevel::Review));
        assert_eq!(fired(&r, "large_paste_after_focus_loss"), None);
    }

    #[test]
    fn typing_without_key_presses_fires_the_unattributed_rule_and_honest_typing_does_not() {
        let mut rng = StdRng::seed_from_u64(13);
        let (starter, target) = task(0);
        let events = honest_session(
            &mut rng,
            &mut TestTypist,
            &starter,
            &target,
            HonestStyle::Typical,
            start(),
        );
        let honest = analyse(&trace(&starter, events.clone()));
        assert!(honest.findings.is_empty());
        let cut = events.len() / 3;
        let scripted: Vec<TelemetryEvent> = events
            .into_iter()
            .enumerate()
            .filter(|(i, e)| *i < cut || !matches!(e.data, TelemetryData::Keystroke { .. }))
            .map(|(_, e)| e)
            .collect();
        let r = analyse(&trace(&starter, renumber(scripted)));
        assert_eq!(
            fired(&r, "unattributed_share_high"),
            Some(FindingLevel::Review)
        );
        let f = r
            .findings
            .iter()
            .find(|f| f.rule == "unattributed_share_high")
            .unwrap();
        assert!(!f.evidence.is_empty());
    }
}
