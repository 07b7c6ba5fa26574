//! Pure replay of a candidate's editor telemetry into workspace states: no I/O, no SQL.
//!
//! # Positions are UTF-16 code units
//!
//! Browser editors (Monaco, CodeMirror) report positions and lengths in UTF-16 code units, so
//! every `position`, `deleted` and `selection_end` here counts UTF-16 units from the start of a
//! file: `é` and `中` are one unit each, `😀` (outside the Basic Multilingual Plane) is a surrogate
//! pair of two units. Files are stored as Rust `String`s (UTF-8); [`utf16_to_byte`] converts. A
//! position that falls between the two halves of a surrogate pair cannot be represented in UTF-8
//! and is an anomaly.
//!
//! # Anomalies
//!
//! [`Workspace::apply`] checks an event against the state it claims to change (the file exists,
//! the range is inside it, no surrogate pair is split, numbers are non-negative). When the check
//! fails the event is *skipped*: the workspace is left unchanged and an [`Anomaly`] with a stable
//! code says why. Replay never stops on an anomaly, so the live projection, [`state_at`] and
//! [`replay_with_keyframes`] all reach the same state from the same events.
//!
//! # Keyframes
//!
//! Replaying a long session from its first event to show "the code at minute 37" costs a lot, so
//! the workspace is stored every now and then as a [`Keyframe`] (the state right after telemetry
//! event `seq`; seq 0 is the empty workspace). A [`KeyframePolicy`] decides when: after a number
//! of events since the last keyframe or after an amount of session time, whichever comes first.
//! *Every* event counts — keystrokes, focus changes and anomalous events too — because the cost
//! the keyframes bound is the number of events [`state_at`] must read and replay after one. The
//! state at any event is then the nearest keyframe at or before it plus at most that many events
//! after it. [`KeyframeReplayer`] is the incremental form of [`replay_with_keyframes`] for the
//! live projection, so both place keyframes with the same rule.
//!
//! # Diffs
//!
//! [`diff`] compares two workspaces line by line (Myers' algorithm) and returns unified-diff style
//! hunks with three lines of context.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use clarity_domain::telemetry::TelemetryData;
use serde::{Deserialize, Serialize};

/// All files of a candidate's workspace, and the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// File contents by path.
    pub files: BTreeMap<String, String>,
    /// The last cursor the editor reported (renames carry it along; deleting its file clears it).
    pub cursor: Option<Cursor>,
}

/// The editor's cursor: a position and, for a selection, its other end (UTF-16 units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub file: String,
    pub position: u64,
    pub selection_end: Option<u64>,
}

/// Why an event did not apply to the state it claims; the state is left unchanged.
///
/// Codes: `unknown_file` (edit, rename, delete or cursor of a file that does not exist),
/// `file_exists` (create or rename onto an existing path), `position_out_of_range`,
/// `splits_surrogate_pair` (a position, or `position + deleted`, falls inside a UTF-16 surrogate
/// pair), `negative_value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub code: &'static str,
    pub reason: String,
}

impl Anomaly {
    fn new(code: &'static str, reason: String) -> Self {
        Self { code, reason }
    }
}

/// Why a UTF-16 offset has no byte offset.
enum Miss {
    OutOfRange,
    SplitsPair,
}

/// Byte offset of the UTF-16 offset `units` counted from byte `from` of `s`.
fn locate(s: &str, from: usize, units: u64) -> Result<usize, Miss> {
    let mut seen = 0u64;
    for (i, ch) in s[from..].char_indices() {
        if seen == units {
            return Ok(from + i);
        }
        seen += ch.len_utf16() as u64;
        if seen > units {
            return Err(Miss::SplitsPair);
        }
    }
    if seen == units {
        Ok(s.len())
    } else {
        Err(Miss::OutOfRange)
    }
}

/// Byte offset in `s` of UTF-16 offset `pos`; None if beyond the end or inside a surrogate pair.
pub fn utf16_to_byte(s: &str, pos: usize) -> Option<usize> {
    locate(s, 0, pos as u64).ok()
}

/// Length of `s` in UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

fn non_negative(field: &str, value: i64) -> Result<u64, Anomaly> {
    u64::try_from(value).map_err(|_| {
        Anomaly::new(
            "negative_value",
            format!("`{field}` is {value}, must be >= 0"),
        )
    })
}

fn unknown_file(file: &str) -> Anomaly {
    Anomaly::new("unknown_file", format!("file `{file}` does not exist"))
}

fn file_exists(file: &str) -> Anomaly {
    Anomaly::new("file_exists", format!("file `{file}` already exists"))
}

/// Byte offset of `units` UTF-16 units after byte `from`, or the anomaly; `what` names the
/// position in messages.
fn position(
    text: &str,
    file: &str,
    from: usize,
    units: u64,
    what: &str,
    total: u64,
) -> Result<usize, Anomaly> {
    locate(text, from, units).map_err(|miss| match miss {
        Miss::OutOfRange => Anomaly::new(
            "position_out_of_range",
            format!(
                "{what} {total} is past the end of `{file}` ({} UTF-16 units)",
                utf16_len(text)
            ),
        ),
        Miss::SplitsPair => Anomaly::new(
            "splits_surrogate_pair",
            format!("{what} {total} falls inside a surrogate pair in `{file}`"),
        ),
    })
}

impl Workspace {
    /// Applies one event. Document-changing events: Edit, FileCreated, FileRenamed, FileDeleted;
    /// Cursor updates the cursor; every other kind is a no-op `Ok(())`.
    /// On `Err` the workspace is unchanged.
    ///
    /// Checks, in order: negative numbers (`negative_value`), the file (`unknown_file`,
    /// `file_exists`), then positions (`position_out_of_range`, `splits_surrogate_pair`; for an
    /// edit first `position`, then `position + deleted`). An edit to a file that does not exist is
    /// `unknown_file` even at position 0 with nothing deleted: editors send `FileCreated` first.
    /// Renaming a file onto its own path is `file_exists`. Edits do not move the cursor (the
    /// editor reports the new cursor itself); a rename carries the cursor to the new path and
    /// deleting the cursor's file clears it.
    pub fn apply(&mut self, data: &TelemetryData) -> Result<(), Anomaly> {
        match data {
            TelemetryData::Edit {
                file,
                position: pos,
                deleted,
                inserted,
                ..
            } => {
                let pos = non_negative("position", *pos)?;
                let deleted = non_negative("deleted", *deleted)?;
                let text = self.files.get_mut(file).ok_or_else(|| unknown_file(file))?;
                let start = position(text, file, 0, pos, "position", pos)?;
                let end = position(
                    text,
                    file,
                    start,
                    deleted,
                    "position + deleted",
                    pos.saturating_add(deleted),
                )?;
                text.replace_range(start..end, inserted);
            }
            TelemetryData::FileCreated { file, content } => {
                if self.files.contains_key(file) {
                    return Err(file_exists(file));
                }
                self.files.insert(file.clone(), content.clone());
            }
            TelemetryData::FileRenamed { file, new_file } => {
                if !self.files.contains_key(file) {
                    return Err(unknown_file(file));
                }
                if self.files.contains_key(new_file) {
                    return Err(file_exists(new_file));
                }
                let content = self.files.remove(file).unwrap_or_default();
                self.files.insert(new_file.clone(), content);
                if let Some(cursor) = self.cursor.as_mut().filter(|c| &c.file == file) {
                    cursor.file = new_file.clone();
                }
            }
            TelemetryData::FileDeleted { file } => {
                if self.files.remove(file).is_none() {
                    return Err(unknown_file(file));
                }
                if self.cursor.as_ref().is_some_and(|c| &c.file == file) {
                    self.cursor = None;
                }
            }
            TelemetryData::Cursor {
                file,
                position: pos,
                selection_end,
            } => {
                let pos = non_negative("position", *pos)?;
                let selection_end = selection_end
                    .map(|s| non_negative("selection_end", s))
                    .transpose()?;
                let text = self.files.get(file).ok_or_else(|| unknown_file(file))?;
                position(text, file, 0, pos, "position", pos)?;
                if let Some(end) = selection_end {
                    position(text, file, 0, end, "selection_end", end)?;
                }
                self.cursor = Some(Cursor {
                    file: file.clone(),
                    position: pos,
                    selection_end,
                });
            }
            TelemetryData::Keystroke { .. }
            | TelemetryData::FocusLost {}
            | TelemetryData::FocusRegained {}
            | TelemetryData::CodeRun { .. }
            | TelemetryData::FaceCheck { .. } => {}
        }
        Ok(())
    }
}

/// When to store a keyframe: after `every_events` applied events since the last keyframe, or when
/// `every_ms` of session time passed since it (whichever first); 0 disables that trigger.
///
/// "Applied events" are all events run through [`Workspace::apply`], of every kind and whether or
/// not they were anomalous: the keyframe interval bounds the events a [`state_at`] replays.
#[derive(Debug, Clone, Copy)]
pub struct KeyframePolicy {
    pub every_events: u32,
    pub every_ms: i64,
}

impl KeyframePolicy {
    /// Whether a keyframe is due after `events_since` applied events and `ms_since` milliseconds
    /// of session time since the last keyframe. Never due when no event was applied since (the
    /// keyframe would repeat the previous one), nor on a negative `ms_since` alone.
    pub fn due(&self, events_since: u32, ms_since: i64) -> bool {
        events_since > 0
            && ((self.every_events > 0 && events_since >= self.every_events)
                || (self.every_ms > 0 && ms_since >= self.every_ms))
    }
}

/// A stored keyframe: the workspace right after applying telemetry `seq` (seq 0 = empty workspace
/// before any event).
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    pub seq: u64,
    pub workspace: Workspace,
}

/// The state right after event `target` given the nearest keyframe at or before it and the events
/// after it (seq-ordered, seq > keyframe.seq, may extend beyond target — ignored). Anomalous
/// events are skipped (state unchanged), exactly as the live projection does. Returns the
/// workspace and the anomalies met (with their seq).
///
/// Events at or before `keyframe.seq` are ignored too. A `target` before `keyframe.seq` is a
/// caller error (the wrong keyframe) and yields the keyframe's own workspace.
pub fn state_at(
    keyframe: &Keyframe,
    events: &[(u64, TelemetryData)],
    target: u64,
) -> (Workspace, Vec<(u64, Anomaly)>) {
    let mut workspace = keyframe.workspace.clone();
    let mut anomalies = Vec::new();
    for (seq, data) in events {
        if *seq > target {
            break;
        }
        if *seq <= keyframe.seq {
            continue;
        }
        if let Err(anomaly) = workspace.apply(data) {
            anomalies.push((*seq, anomaly));
        }
    }
    (workspace, anomalies)
}

/// Incremental keyframe placement: applies events one at a time and says when a keyframe is due.
/// [`replay_with_keyframes`] is this run over a whole list, so a live projection stepping the
/// same events stores the same keyframes.
#[derive(Debug, Clone)]
pub struct KeyframeReplayer {
    policy: KeyframePolicy,
    workspace: Workspace,
    events_since: u32,
    keyframe_ms: i64,
}

impl KeyframeReplayer {
    /// Starts at the empty workspace (the seq-0 keyframe, session time 0).
    pub fn new(policy: KeyframePolicy) -> Self {
        Self::resume(policy, Workspace::default(), 0, 0)
    }

    /// Continues from a saved position: the `workspace` after some event, the number of events
    /// stepped since the last keyframe (0 when resuming at a keyframe) and that keyframe's
    /// session time. Stepping the following events then matches a replay from scratch.
    pub fn resume(
        policy: KeyframePolicy,
        workspace: Workspace,
        events_since: u32,
        keyframe_ms: i64,
    ) -> Self {
        Self {
            policy,
            workspace,
            events_since,
            keyframe_ms,
        }
    }

    /// Applies event `seq` at session time `elapsed_ms` (events in seq order). Returns the
    /// anomaly if the event was skipped, and the keyframe to store if one is due right after it.
    pub fn step(
        &mut self,
        seq: u64,
        elapsed_ms: i64,
        data: &TelemetryData,
    ) -> (Option<Anomaly>, Option<Keyframe>) {
        let anomaly = self.workspace.apply(data).err();
        self.events_since = self.events_since.saturating_add(1);
        let keyframe = self
            .policy
            .due(
                self.events_since,
                elapsed_ms.saturating_sub(self.keyframe_ms),
            )
            .then(|| {
                self.events_since = 0;
                self.keyframe_ms = elapsed_ms;
                Keyframe {
                    seq,
                    workspace: self.workspace.clone(),
                }
            });
        (anomaly, keyframe)
    }

    /// The workspace after the events stepped so far.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// Events stepped since the last keyframe, and that keyframe's session time: what to save
    /// to [`resume`](Self::resume) later.
    pub fn counters(&self) -> (u32, i64) {
        (self.events_since, self.keyframe_ms)
    }

    /// Ends the replay, returning the workspace.
    pub fn into_workspace(self) -> Workspace {
        self.workspace
    }
}

/// Builds keyframes for a whole event list by replaying from scratch with the policy (events are
/// (seq, elapsed_ms, data), seq-ordered); returns the keyframes (always including seq 0) and the
/// final workspace. This is the reference the live projection must match.
pub fn replay_with_keyframes(
    events: &[(u64, i64, TelemetryData)],
    policy: KeyframePolicy,
) -> (Vec<Keyframe>, Workspace) {
    let mut keyframes = vec![Keyframe {
        seq: 0,
        workspace: Workspace::default(),
    }];
    let mut replayer = KeyframeReplayer::new(policy);
    for (seq, elapsed_ms, data) in events {
        if let (_, Some(keyframe)) = replayer.step(*seq, *elapsed_ms, data) {
            keyframes.push(keyframe);
        }
    }
    (keyframes, replayer.into_workspace())
}

/// A line diff of one file between two workspaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// `"added"`, `"removed"` or `"modified"`.
    pub status: &'static str,
    pub hunks: Vec<Hunk>,
}

/// A unified-diff hunk. Starts are 1-based line numbers; for an empty range (`*_lines == 0`) the
/// start is the line *before* the range (0 at the top of the file), as in `diff -u`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunk {
    pub old_start: usize,
    pub old_lines: usize,
    pub new_start: usize,
    pub new_lines: usize,
    pub lines: Vec<DiffLine>,
}

/// One line of a hunk: `' '` context, `'+'` added, `'-'` removed. `text` is the line including
/// its `\n` terminator, which the last line of a file may lack (so a missing final newline shows
/// as a change of the last line and hunks reconstruct files exactly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub op: char,
    pub text: String,
}

/// Lines of context around changes.
const CONTEXT: usize = 3;

/// Edit distance (in lines) beyond which the diff of a file stops looking for the shortest edit
/// script and replaces the remaining middle (after common prefix and suffix) wholesale. Bounds
/// time and memory on unrelated large files; the hunks stay correct, just not minimal.
const MAX_EDIT_DISTANCE: usize = 2_000;

/// Unified-diff style hunks with 3 lines of context; unchanged files are omitted; ordered by path.
/// A renamed file shows as removed + added. The cursor is not compared.
pub fn diff(before: &Workspace, after: &Workspace) -> Vec<FileDiff> {
    let paths: BTreeSet<&String> = before.files.keys().chain(after.files.keys()).collect();
    let mut diffs = Vec::new();
    for path in paths {
        let (status, old, new) = match (before.files.get(path), after.files.get(path)) {
            (Some(old), Some(new)) if old == new => continue,
            (Some(old), Some(new)) => ("modified", old.as_str(), new.as_str()),
            (None, Some(new)) => ("added", "", new.as_str()),
            (Some(old), None) => ("removed", old.as_str(), ""),
            (None, None) => continue,
        };
        diffs.push(FileDiff {
            path: path.clone(),
            status,
            hunks: line_hunks(old, new),
        });
    }
    diffs
}

/// One step of a line edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Old line i equals new line j.
    Equal(usize, usize),
    /// Old line i removed.
    Delete(usize),
    /// New line j added.
    Insert(usize),
}

fn line_hunks(old: &str, new: &str) -> Vec<Hunk> {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = line_ops(&a, &b);
    group_hunks(&ops, &a, &b)
}

/// Numbers lines by content: equal lines get equal ids.
fn intern<'a>(ids: &mut HashMap<&'a str, u32>, lines: &[&'a str]) -> Vec<u32> {
    lines
        .iter()
        .map(|line| {
            let next = ids.len() as u32;
            *ids.entry(*line).or_insert(next)
        })
        .collect()
}

/// A shortest (up to [`MAX_EDIT_DISTANCE`]) edit script from `a` to `b`, with each run of changes
/// listing its deletions before its insertions.
fn line_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    // Intern lines so the inner loop compares integers.
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let a_ids = intern(&mut ids, a);
    let b_ids = intern(&mut ids, b);

    let prefix = a_ids.iter().zip(&b_ids).take_while(|(x, y)| x == y).count();
    let suffix = a_ids[prefix..]
        .iter()
        .rev()
        .zip(b_ids[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let a_mid = &a_ids[prefix..a_ids.len() - suffix];
    let b_mid = &b_ids[prefix..b_ids.len() - suffix];

    let mut ops: Vec<Op> = (0..prefix).map(|i| Op::Equal(i, i)).collect();
    let middle = myers(a_mid, b_mid, MAX_EDIT_DISTANCE).unwrap_or_else(|| {
        (0..a_mid.len())
            .map(Op::Delete)
            .chain((0..b_mid.len()).map(Op::Insert))
            .collect()
    });
    ops.extend(middle.into_iter().map(|op| match op {
        Op::Equal(i, j) => Op::Equal(prefix + i, prefix + j),
        Op::Delete(i) => Op::Delete(prefix + i),
        Op::Insert(j) => Op::Insert(prefix + j),
    }));
    let (a_end, b_end) = (a_ids.len() - suffix, b_ids.len() - suffix);
    ops.extend((0..suffix).map(|k| Op::Equal(a_end + k, b_end + k)));

    // Deletions before insertions within each run of changes, as diff tools show them.
    let mut start = 0;
    while start < ops.len() {
        if matches!(ops[start], Op::Equal(..)) {
            start += 1;
            continue;
        }
        let end = ops[start..]
            .iter()
            .position(|op| matches!(op, Op::Equal(..)))
            .map_or(ops.len(), |n| start + n);
        ops[start..end].sort_by_key(|op| match *op {
            Op::Delete(i) => (0, i),
            Op::Insert(j) => (1, j),
            Op::Equal(..) => unreachable!("runs hold changes only"),
        });
        start = end;
    }
    ops
}

/// Myers' greedy shortest edit script of `a` to `b`, or None if it needs more than `max_d`
/// deletions + insertions.
fn myers(a: &[u32], b: &[u32], max_d: usize) -> Option<Vec<Op>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = a.len() + b.len();
    let offset = max as isize + 1;
    // v[offset + k]: furthest x reached on diagonal k = x - y.
    let mut v = vec![0isize; 2 * max + 3];
    // trace[d]: v on diagonals -d-1..=d+1 before round d, for backtracking.
    let mut trace: Vec<Vec<isize>> = Vec::new();
    for d in 0..=(max.min(max_d) as isize) {
        trace.push(v[(offset - d - 1) as usize..=(offset + d + 1) as usize].to_vec());
        for k in (-d..=d).step_by(2) {
            let i = (offset + k) as usize;
            let mut x = if k == -d || (k != d && v[i - 1] < v[i + 1]) {
                v[i + 1]
            } else {
                v[i - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[i] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m));
            }
        }
    }
    None
}

fn backtrack(trace: &[Vec<isize>], n: isize, m: isize) -> Vec<Op> {
    let (mut x, mut y) = (n, m);
    let mut ops = Vec::new();
    for (d, snapshot) in trace.iter().enumerate().rev() {
        let d = d as isize;
        let get = |k: isize| snapshot[(k + d + 1) as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && get(k - 1) < get(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = get(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
            ops.push(Op::Equal(x as usize, y as usize));
        }
        if d > 0 {
            if x == prev_x {
                y -= 1;
                ops.push(Op::Insert(y as usize));
            } else {
                x -= 1;
                ops.push(Op::Delete(x as usize));
            }
        }
    }
    ops.reverse();
    ops
}

/// Groups an edit script into hunks: changes at most `2 * CONTEXT` unchanged lines apart share a
/// hunk, and each hunk carries up to `CONTEXT` unchanged lines on either side.
fn group_hunks(ops: &[Op], a: &[&str], b: &[&str]) -> Vec<Hunk> {
    // Lines of old and new consumed before each op.
    let mut before = Vec::with_capacity(ops.len());
    let (mut old_pos, mut new_pos) = (0usize, 0usize);
    for op in ops {
        before.push((old_pos, new_pos));
        match op {
            Op::Equal(..) => {
                old_pos += 1;
                new_pos += 1;
            }
            Op::Delete(_) => old_pos += 1,
            Op::Insert(_) => new_pos += 1,
        }
    }
    let changes: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Equal(..)))
        .map(|(i, _)| i)
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &c in &changes {
        match groups.last_mut() {
            Some((_, last)) if c - *last - 1 <= 2 * CONTEXT => *last = c,
            _ => groups.push((c, c)),
        }
    }
    groups
        .into_iter()
        .map(|(first, last)| {
            let lo = first.saturating_sub(CONTEXT);
            let hi = (last + CONTEXT + 1).min(ops.len());
            let lines: Vec<DiffLine> = ops[lo..hi]
                .iter()
                .map(|op| match *op {
                    Op::Equal(i, _) => DiffLine {
                        op: ' ',
                        text: a[i].to_string(),
                    },
                    Op::Delete(i) => DiffLine {
                        op: '-',
                        text: a[i].to_string(),
                    },
                    Op::Insert(j) => DiffLine {
                        op: '+',
                        text: b[j].to_string(),
                    },
                })
                .collect();
            let old_lines = lines.iter().filter(|l| l.op != '+').count();
            let new_lines = lines.iter().filter(|l| l.op != '-').count();
            let (old_at, new_at) = before[lo];
            Hunk {
                old_start: if old_lines == 0 { old_at } else { old_at + 1 },
                old_lines,
                new_start: if new_lines == 0 { new_at } else { new_at + 1 },
                new_lines,
                lines,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clarity_domain::telemetry::{EditOrigin, KeyClass};
    use proptest::prelude::*;

    fn edit(file: &str, position: i64, deleted: i64, inserted: &str) -> TelemetryData {
        TelemetryData::Edit {
            file: file.into(),
            position,
            deleted,
            inserted: inserted.into(),
            origin: EditOrigin::Typed,
        }
    }

    fn create(file: &str, content: &str) -> TelemetryData {
        TelemetryData::FileCreated {
            file: file.into(),
            content: content.into(),
        }
    }

    fn rename(file: &str, new_file: &str) -> TelemetryData {
        TelemetryData::FileRenamed {
            file: file.into(),
            new_file: new_file.into(),
        }
    }

    fn delete(file: &str) -> TelemetryData {
        TelemetryData::FileDeleted { file: file.into() }
    }

    fn cursor(file: &str, position: i64, selection_end: Option<i64>) -> TelemetryData {
        TelemetryData::Cursor {
            file: file.into(),
            position,
            selection_end,
        }
    }

    fn keystroke() -> TelemetryData {
        TelemetryData::Keystroke {
            down_ms: 1.0,
            up_ms: Some(2.0),
            key_class: KeyClass::Letter,
        }
    }

    fn workspace_with(file: &str, content: &str) -> Workspace {
        let mut ws = Workspace::default();
        ws.apply(&create(file, content)).unwrap();
        ws
    }

    /// Applies an event that must be refused, checks its code and that nothing changed.
    fn refused(ws: &mut Workspace, data: TelemetryData) -> &'static str {
        let before = ws.clone();
        let anomaly = ws.apply(&data).unwrap_err();
        assert_eq!(*ws, before, "a refused event changed the workspace");
        assert!(!anomaly.reason.is_empty());
        anomaly.code
    }

    #[test]
    fn utf16_offsets_count_an_emoji_as_two_units() {
        let s = "aé中😀b";
        assert_eq!(utf16_len(s), 6);
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_to_byte(s, 0), Some(0));
        assert_eq!(utf16_to_byte(s, 1), Some(1));
        assert_eq!(utf16_to_byte(s, 2), Some(3));
        assert_eq!(utf16_to_byte(s, 3), Some(6));
        assert_eq!(utf16_to_byte(s, 4), None, "inside the surrogate pair");
        assert_eq!(utf16_to_byte(s, 5), Some(10));
        assert_eq!(utf16_to_byte(s, 6), Some(11));
        assert_eq!(utf16_to_byte(s, 7), None, "past the end");
        assert_eq!(utf16_to_byte("", 0), Some(0));
    }

    #[test]
    fn multi_byte_text_is_inserted_and_deleted_at_utf16_positions() {
        let mut ws = workspace_with("a.rs", "");
        ws.apply(&edit("a.rs", 0, 0, "é中😀x")).unwrap();
        assert_eq!(ws.files["a.rs"], "é中😀x");
        // After the emoji: é(1) 中(1) 😀(2) = 4.
        ws.apply(&edit("a.rs", 4, 0, "!")).unwrap();
        assert_eq!(ws.files["a.rs"], "é中😀!x");
        // Delete the emoji: two units at position 2.
        ws.apply(&edit("a.rs", 2, 2, "")).unwrap();
        assert_eq!(ws.files["a.rs"], "é中!x");
        // Replace é by an emoji.
        ws.apply(&edit("a.rs", 0, 1, "😀")).unwrap();
        assert_eq!(ws.files["a.rs"], "😀中!x");
        // Append at the very end (position == length).
        ws.apply(&edit("a.rs", 5, 0, "\n")).unwrap();
        assert_eq!(ws.files["a.rs"], "😀中!x\n");
        // Delete everything.
        ws.apply(&edit("a.rs", 0, 6, "")).unwrap();
        assert_eq!(ws.files["a.rs"], "");
    }

    #[test]
    fn an_edit_inside_a_surrogate_pair_is_an_anomaly_and_leaves_the_state_unchanged() {
        let mut ws = workspace_with("a.rs", "a😀b");
        assert_eq!(
            refused(&mut ws, edit("a.rs", 2, 0, "x")),
            "splits_surrogate_pair"
        );
        assert_eq!(
            refused(&mut ws, edit("a.rs", 0, 2, "")),
            "splits_surrogate_pair",
            "the end of the deleted range splits the pair"
        );
        assert_eq!(
            refused(&mut ws, edit("a.rs", 2, 1, "")),
            "splits_surrogate_pair"
        );
        assert_eq!(ws.files["a.rs"], "a😀b");
    }

    #[test]
    fn an_edit_past_the_end_is_position_out_of_range() {
        let mut ws = workspace_with("a.rs", "abc");
        assert_eq!(
            refused(&mut ws, edit("a.rs", 4, 0, "x")),
            "position_out_of_range"
        );
        assert_eq!(
            refused(&mut ws, edit("a.rs", 1, 5, "")),
            "position_out_of_range"
        );
        assert_eq!(
            refused(&mut ws, edit("a.rs", i64::MAX, i64::MAX, "")),
            "position_out_of_range"
        );
        ws.apply(&edit("a.rs", 3, 0, "d")).unwrap();
        assert_eq!(ws.files["a.rs"], "abcd");
    }

    #[test]
    fn an_edit_to_an_unknown_file_is_an_anomaly_even_at_position_zero() {
        let mut ws = workspace_with("a.rs", "abc");
        assert_eq!(refused(&mut ws, edit("b.rs", 0, 0, "x")), "unknown_file");
        assert_eq!(refused(&mut ws, edit("b.rs", 0, 0, "")), "unknown_file");
        assert_eq!(refused(&mut ws, edit("b.rs", 3, 1, "")), "unknown_file");
    }

    #[test]
    fn negative_positions_and_lengths_are_negative_value_anomalies() {
        let mut ws = workspace_with("a.rs", "abc");
        assert_eq!(refused(&mut ws, edit("a.rs", -1, 0, "x")), "negative_value");
        assert_eq!(refused(&mut ws, edit("a.rs", 0, -1, "")), "negative_value");
        assert_eq!(refused(&mut ws, edit("nope", -1, 0, "")), "negative_value");
        assert_eq!(refused(&mut ws, cursor("a.rs", -1, None)), "negative_value");
        assert_eq!(
            refused(&mut ws, cursor("a.rs", 0, Some(-2))),
            "negative_value"
        );
    }

    #[test]
    fn files_are_created_renamed_and_deleted() {
        let mut ws = Workspace::default();
        ws.apply(&create("a.rs", "fn main() {}\n")).unwrap();
        ws.apply(&create("b.rs", "")).unwrap();
        ws.apply(&rename("a.rs", "src/main.rs")).unwrap();
        assert_eq!(ws.files.keys().collect::<Vec<_>>(), ["b.rs", "src/main.rs"]);
        assert_eq!(ws.files["src/main.rs"], "fn main() {}\n");
        ws.apply(&delete("b.rs")).unwrap();
        assert_eq!(ws.files.keys().collect::<Vec<_>>(), ["src/main.rs"]);
        // A deleted path can be created again.
        ws.apply(&create("b.rs", "again")).unwrap();
        assert_eq!(ws.files["b.rs"], "again");
    }

    #[test]
    fn creating_or_renaming_onto_an_existing_path_is_file_exists() {
        let mut ws = workspace_with("a.rs", "a");
        ws.apply(&create("b.rs", "b")).unwrap();
        assert_eq!(refused(&mut ws, create("a.rs", "other")), "file_exists");
        assert_eq!(refused(&mut ws, rename("a.rs", "b.rs")), "file_exists");
        assert_eq!(refused(&mut ws, rename("a.rs", "a.rs")), "file_exists");
    }

    #[test]
    fn renaming_or_deleting_an_unknown_file_is_unknown_file() {
        let mut ws = workspace_with("a.rs", "a");
        assert_eq!(refused(&mut ws, rename("x.rs", "y.rs")), "unknown_file");
        assert_eq!(refused(&mut ws, rename("x.rs", "a.rs")), "unknown_file");
        assert_eq!(refused(&mut ws, delete("x.rs")), "unknown_file");
        assert_eq!(refused(&mut ws, cursor("x.rs", 0, None)), "unknown_file");
    }

    #[test]
    fn cursor_updates_are_validated_and_follow_renames_and_deletions() {
        let mut ws = workspace_with("a.rs", "a😀b");
        ws.apply(&cursor("a.rs", 1, Some(3))).unwrap();
        assert_eq!(
            ws.cursor,
            Some(Cursor {
                file: "a.rs".into(),
                position: 1,
                selection_end: Some(3)
            })
        );
        assert_eq!(
            refused(&mut ws, cursor("a.rs", 2, None)),
            "splits_surrogate_pair"
        );
        assert_eq!(
            refused(&mut ws, cursor("a.rs", 0, Some(2))),
            "splits_surrogate_pair"
        );
        assert_eq!(
            refused(&mut ws, cursor("a.rs", 5, None)),
            "position_out_of_range"
        );
        ws.apply(&cursor("a.rs", 4, None)).unwrap();
        assert_eq!(ws.cursor.as_ref().unwrap().position, 4);
        // An edit leaves the cursor where the editor last reported it.
        ws.apply(&edit("a.rs", 0, 0, "xx")).unwrap();
        assert_eq!(ws.cursor.as_ref().unwrap().position, 4);
        ws.apply(&rename("a.rs", "b.rs")).unwrap();
        assert_eq!(ws.cursor.as_ref().unwrap().file, "b.rs");
        ws.apply(&create("c.rs", "")).unwrap();
        ws.apply(&delete("c.rs")).unwrap();
        assert!(
            ws.cursor.is_some(),
            "deleting another file keeps the cursor"
        );
        ws.apply(&delete("b.rs")).unwrap();
        assert_eq!(ws.cursor, None);
    }

    #[test]
    fn events_that_do_not_change_documents_are_no_ops() {
        let mut ws = workspace_with("a.rs", "abc");
        let before = ws.clone();
        let others = [
            keystroke(),
            TelemetryData::FocusLost {},
            TelemetryData::FocusRegained {},
            TelemetryData::CodeRun {
                command: "cargo test".into(),
                exit_code: 0,
                tests_passed: 3,
                tests_failed: 0,
                duration_ms: 100,
            },
            TelemetryData::FaceCheck {
                similarity: 0.9,
                model_id: "m".into(),
                model_version: "1".into(),
                face_count: 1,
                quality: 0.8,
            },
        ];
        for data in &others {
            ws.apply(data).unwrap();
        }
        assert_eq!(ws, before);
    }

    #[test]
    fn a_workspace_round_trips_through_json() {
        let mut ws = workspace_with("a.rs", "é😀\n");
        ws.apply(&cursor("a.rs", 1, None)).unwrap();
        let json = serde_json::to_string(&ws).unwrap();
        assert_eq!(serde_json::from_str::<Workspace>(&json).unwrap(), ws);
    }

    #[test]
    fn a_keyframe_is_due_after_enough_applied_events_or_enough_session_time() {
        let both = KeyframePolicy {
            every_events: 10,
            every_ms: 60_000,
        };
        assert!(!both.due(9, 59_999));
        assert!(both.due(10, 0));
        assert!(both.due(11, 0));
        assert!(both.due(1, 60_000));
        assert!(
            !both.due(0, 1_000_000),
            "nothing applied since the last one"
        );
        assert!(!both.due(1, -5), "a clock going backwards never triggers");

        let events_only = KeyframePolicy {
            every_events: 3,
            every_ms: 0,
        };
        assert!(!events_only.due(2, i64::MAX));
        assert!(events_only.due(3, 0));

        let time_only = KeyframePolicy {
            every_events: 0,
            every_ms: 1_000,
        };
        assert!(!time_only.due(u32::MAX, 999));
        assert!(time_only.due(1, 1_000));

        let never = KeyframePolicy {
            every_events: 0,
            every_ms: 0,
        };
        assert!(!never.due(u32::MAX, i64::MAX));
    }

    #[test]
    fn keyframes_start_at_seq_zero_and_count_every_event_including_anomalies() {
        let events = vec![
            (1, 0, create("a.rs", "")),
            (2, 10, keystroke()),
            (3, 20, edit("a.rs", 0, 0, "x")),
            (4, 30, edit("nope", 0, 0, "x")),
            (5, 40, cursor("a.rs", 1, None)),
            (6, 50, keystroke()),
            (7, 5_000, keystroke()),
            (8, 5_010, edit("a.rs", 1, 0, "y")),
        ];
        let policy = KeyframePolicy {
            every_events: 4,
            every_ms: 1_000,
        };
        let (keyframes, last) = replay_with_keyframes(&events, policy);
        let seqs: Vec<u64> = keyframes.iter().map(|k| k.seq).collect();
        // Seq 4 is the fourth event (a keystroke and an anomaly among them); seq 7 comes more than
        // a second of session time after seq 4.
        assert_eq!(seqs, [0, 4, 7]);
        assert_eq!(keyframes[0].workspace, Workspace::default());
        assert_eq!(keyframes[1].workspace.files["a.rs"], "x");
        assert_eq!(keyframes[2].workspace.cursor.as_ref().unwrap().position, 1);
        assert_eq!(last.files["a.rs"], "xy");
    }

    #[test]
    fn state_at_ignores_events_beyond_the_target_and_reports_anomalies_with_their_seq() {
        let keyframe = Keyframe {
            seq: 2,
            workspace: workspace_with("a.rs", "ab"),
        };
        let events = vec![
            (1, create("ignored.rs", "")),
            (3, edit("a.rs", 2, 0, "c")),
            (4, edit("a.rs", 9, 0, "?")),
            (5, delete("zzz")),
            (6, edit("a.rs", 0, 1, "")),
        ];
        let (ws, anomalies) = state_at(&keyframe, &events, 5);
        assert_eq!(ws.files.keys().collect::<Vec<_>>(), ["a.rs"]);
        assert_eq!(ws.files["a.rs"], "abc");
        let codes: Vec<(u64, &str)> = anomalies.iter().map(|(s, a)| (*s, a.code)).collect();
        assert_eq!(codes, [(4, "position_out_of_range"), (5, "unknown_file")]);
        let (at_keyframe, none) = state_at(&keyframe, &events, 2);
        assert_eq!(at_keyframe, keyframe.workspace);
        assert!(none.is_empty());
    }

    #[test]
    fn a_resumed_replayer_places_the_same_keyframes_as_a_replay_from_scratch() {
        let events: Vec<(u64, i64, TelemetryData)> = (1..=20)
            .map(|seq| {
                let data = if seq == 1 {
                    create("a.rs", "")
                } else {
                    edit("a.rs", 0, 0, "x")
                };
                (seq, seq as i64 * 100, data)
            })
            .collect();
        let policy = KeyframePolicy {
            every_events: 6,
            every_ms: 0,
        };
        let (keyframes, last) = replay_with_keyframes(&events, policy);
        assert_eq!(
            keyframes.iter().map(|k| k.seq).collect::<Vec<_>>(),
            [0, 6, 12, 18]
        );
        let mut replayer =
            KeyframeReplayer::resume(policy, keyframes[2].workspace.clone(), 0, 1_200);
        let later: Vec<u64> = events[12..]
            .iter()
            .filter_map(|(seq, ms, data)| replayer.step(*seq, *ms, data).1.map(|k| k.seq))
            .collect();
        assert_eq!(later, [18]);
        assert_eq!(*replayer.workspace(), last);
        // Resuming mid-interval from saved counters (after seq 14: 2 events since seq 12).
        let mut replayer = KeyframeReplayer::new(policy);
        for (seq, ms, data) in &events[..14] {
            replayer.step(*seq, *ms, data);
        }
        let (events_since, keyframe_ms) = replayer.counters();
        assert_eq!((events_since, keyframe_ms), (2, 1_200));
        let mut resumed = KeyframeReplayer::resume(
            policy,
            replayer.workspace().clone(),
            events_since,
            keyframe_ms,
        );
        let later: Vec<u64> = events[14..]
            .iter()
            .filter_map(|(seq, ms, data)| resumed.step(*seq, *ms, data).1.map(|k| k.seq))
            .collect();
        assert_eq!(later, [18]);
    }

    fn file_diff(before: &str, after: &str) -> Vec<Hunk> {
        let diffs = diff(&workspace_with("f", before), &workspace_with("f", after));
        match diffs.as_slice() {
            [] => Vec::new(),
            [one] => {
                assert_eq!(one.status, "modified");
                one.hunks.clone()
            }
            more => panic!("one file, {} diffs", more.len()),
        }
    }

    fn numbered(lines: impl IntoIterator<Item = usize>) -> String {
        lines.into_iter().map(|i| format!("{i}\n")).collect()
    }

    fn rendered(hunk: &Hunk) -> String {
        hunk.lines
            .iter()
            .map(|l| format!("{}{}", l.op, l.text))
            .collect()
    }

    #[test]
    fn a_changed_line_shows_as_one_hunk_with_three_lines_of_context() {
        let before = numbered(1..=20);
        let after = before.replace("10\n", "ten\n");
        let hunks = file_diff(&before, &after);
        assert_eq!(hunks.len(), 1);
        let h = &hunks[0];
        assert_eq!(
            (h.old_start, h.old_lines, h.new_start, h.new_lines),
            (7, 7, 7, 7)
        );
        assert_eq!(rendered(h), " 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n");
    }

    #[test]
    fn changes_more_than_six_lines_apart_make_separate_hunks() {
        let before = numbered(1..=30);
        // Lines 5 and 12 are 6 unchanged lines apart: one hunk.
        let after = before
            .replace("\n5\n", "\nfive\n")
            .replace("12\n", "twelve\n");
        assert_eq!(file_diff(&before, &after).len(), 1);
        // Lines 5 and 13 are 7 apart: two hunks.
        let after = before
            .replace("\n5\n", "\nfive\n")
            .replace("13\n", "thirteen\n");
        let hunks = file_diff(&before, &after);
        assert_eq!(hunks.len(), 2);
        assert_eq!((hunks[0].old_start, hunks[0].old_lines), (2, 7));
        assert_eq!((hunks[1].old_start, hunks[1].old_lines), (10, 7));
    }

    #[test]
    fn insertions_at_the_top_use_the_line_before_as_the_start_of_an_empty_range() {
        let hunks = file_diff("a\n", "new\na\n");
        assert_eq!(
            (
                hunks[0].old_start,
                hunks[0].old_lines,
                hunks[0].new_start,
                hunks[0].new_lines
            ),
            (1, 1, 1, 2)
        );
        assert_eq!(rendered(&hunks[0]), "+new\n a\n");
        let hunks = file_diff("", "x");
        assert_eq!(
            (
                hunks[0].old_start,
                hunks[0].old_lines,
                hunks[0].new_start,
                hunks[0].new_lines
            ),
            (0, 0, 1, 1)
        );
    }

    #[test]
    fn a_missing_final_newline_is_a_change_of_the_last_line() {
        let hunks = file_diff("a\nb", "a\nb\n");
        assert_eq!(rendered(&hunks[0]), " a\n-b+b\n");
    }

    #[test]
    fn a_renamed_file_shows_as_removed_and_added_and_unchanged_files_are_omitted() {
        let mut before = workspace_with("same.rs", "s\n");
        before.apply(&create("old.rs", "x\ny\n")).unwrap();
        let mut after = before.clone();
        after.apply(&rename("old.rs", "new.rs")).unwrap();
        after.apply(&create("empty.rs", "")).unwrap();
        let diffs = diff(&before, &after);
        let summary: Vec<(&str, &str, usize)> = diffs
            .iter()
            .map(|d| (d.path.as_str(), d.status, d.hunks.len()))
            .collect();
        assert_eq!(
            summary,
            [
                ("empty.rs", "added", 0),
                ("new.rs", "added", 1),
                ("old.rs", "removed", 1)
            ]
        );
        assert_eq!(rendered(&diffs[1].hunks[0]), "+x\n+y\n");
        assert_eq!(rendered(&diffs[2].hunks[0]), "-x\n-y\n");
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn files_too_different_for_the_edit_distance_limit_still_diff_correctly() {
        let before = numbered(0..3_000);
        let after = numbered(10_000..11_200);
        let hunks = file_diff(&before, &after);
        assert_eq!(apply_hunks(&before, &hunks), after);
    }

    // ---- property tests -------------------------------------------------------------------

    const PATHS: [&str; 3] = ["a.rs", "src/b.py", "c.txt"];
    const ALPHABET: [char; 6] = ['a', 'b', 'é', '中', '😀', '\n'];

    /// A script step before it is made concrete against the current state.
    #[derive(Debug, Clone)]
    enum Step {
        /// mode 0..=5: an existing file (if any), position inside it, deletion clamped;
        /// 6: any path, maybe missing; 7: deletion unclamped; 8: position past the end;
        /// 9: a negative number.
        Edit {
            file: usize,
            at: u16,
            del: u8,
            text: String,
            mode: u8,
        },
        Create {
            file: usize,
            content: String,
        },
        Rename {
            file: usize,
            to: usize,
        },
        Delete {
            file: usize,
        },
        Cursor {
            file: usize,
            at: u16,
            sel: Option<u16>,
        },
        Noise,
    }

    fn text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(ALPHABET.to_vec()), 0..max)
            .prop_map(|chars| chars.into_iter().collect())
    }

    fn step() -> impl Strategy<Value = Step> {
        let file = 0..PATHS.len();
        prop_oneof![
            8 => (file.clone(), any::<u16>(), 0u8..6, text(12), 0u8..10).prop_map(
                |(file, at, del, text, mode)| Step::Edit { file, at, del, text, mode }
            ),
            2 => (file.clone(), text(60)).prop_map(|(file, content)| Step::Create { file, content }),
            1 => (file.clone(), file.clone()).prop_map(|(file, to)| Step::Rename { file, to }),
            1 => file.clone().prop_map(|file| Step::Delete { file }),
            2 => (file, any::<u16>(), prop::option::of(any::<u16>()))
                .prop_map(|(file, at, sel)| Step::Cursor { file, at, sel }),
            1 => Just(Step::Noise),
        ]
    }

    fn script() -> impl Strategy<Value = Vec<(Step, u16)>> {
        prop::collection::vec((step(), 0u16..400), 0..200)
    }

    fn policy() -> impl Strategy<Value = KeyframePolicy> {
        (0u32..12, prop_oneof![Just(0i64), 1i64..3_000]).prop_map(|(every_events, every_ms)| {
            KeyframePolicy {
                every_events,
                every_ms,
            }
        })
    }

    /// A naive model: files as UTF-16 buffers.
    type Model = BTreeMap<String, Vec<u16>>;

    fn splits_pair(units: &[u16], pos: usize) -> bool {
        pos > 0
            && pos < units.len()
            && (0xD800..0xDC00).contains(&units[pos - 1])
            && (0xDC00..0xE000).contains(&units[pos])
    }

    fn model_position(units: &[u16], pos: usize) -> Result<(), &'static str> {
        if pos > units.len() {
            Err("position_out_of_range")
        } else if splits_pair(units, pos) {
            Err("splits_surrogate_pair")
        } else {
            Ok(())
        }
    }

    /// One of the files that exist (picked by `pick`), or a path if none does.
    fn existing(model: &Model, pick: usize) -> &'static str {
        let present: Vec<&'static str> = PATHS
            .iter()
            .copied()
            .filter(|p| model.contains_key(*p))
            .collect();
        present
            .get(pick % present.len().max(1))
            .copied()
            .unwrap_or(PATHS[pick])
    }

    /// Makes a step concrete against the model, applies it to the model and returns the event and
    /// the expected outcome.
    fn concretize(model: &mut Model, step: &Step) -> (TelemetryData, Result<(), &'static str>) {
        let scaled = |len: usize, at: u16| (at as usize * (len + 1)) >> 16;
        match step {
            Step::Edit {
                file,
                at,
                del,
                text,
                mode,
            } => {
                let path = if *mode == 6 {
                    PATHS[*file]
                } else {
                    existing(model, *file)
                };
                let len = model.get(path).map_or(0, Vec::len);
                let (pos, deleted): (i64, i64) = match mode {
                    0..=6 => {
                        let pos = scaled(len, *at);
                        (pos as i64, (*del as usize).min(len - pos) as i64)
                    }
                    7 => (scaled(len, *at) as i64, *del as i64),
                    8 => ((len + 1 + *del as usize) as i64, 0),
                    _ if at % 2 == 0 => (-1 - *del as i64, 0),
                    _ => (0, -1 - *del as i64),
                };
                let data = edit(path, pos, deleted, text);
                let outcome = if pos < 0 || deleted < 0 {
                    Err("negative_value")
                } else if let Some(units) = model.get_mut(path) {
                    let (pos, end) = (pos as usize, (pos + deleted) as usize);
                    model_position(units, pos)
                        .and_then(|()| model_position(units, end))
                        .map(|()| {
                            units.splice(pos..end, text.encode_utf16());
                        })
                } else {
                    Err("unknown_file")
                };
                (data, outcome)
            }
            Step::Create { file, content } => {
                let path = PATHS[*file];
                let outcome = if model.contains_key(path) {
                    Err("file_exists")
                } else {
                    model.insert(path.into(), content.encode_utf16().collect());
                    Ok(())
                };
                (create(path, content), outcome)
            }
            Step::Rename { file, to } => {
                let (from, to) = (PATHS[*file], PATHS[*to]);
                let outcome = if !model.contains_key(from) {
                    Err("unknown_file")
                } else if model.contains_key(to) {
                    Err("file_exists")
                } else {
                    let units = model.remove(from).unwrap();
                    model.insert(to.into(), units);
                    Ok(())
                };
                (rename(from, to), outcome)
            }
            Step::Delete { file } => {
                let path = PATHS[*file];
                let outcome = match model.remove(path) {
                    Some(_) => Ok(()),
                    None => Err("unknown_file"),
                };
                (delete(path), outcome)
            }
            Step::Cursor { file, at, sel } => {
                let path = existing(model, *file);
                let len = model.get(path).map_or(0, Vec::len);
                // Mostly inside the file, sometimes just past its end.
                let pos = scaled(len + 1, *at);
                let sel = sel.map(|s| scaled(len, s));
                let outcome = match model.get(path) {
                    None => Err("unknown_file"),
                    Some(units) => model_position(units, pos)
                        .and_then(|()| sel.map_or(Ok(()), |s| model_position(units, s))),
                };
                (cursor(path, pos as i64, sel.map(|s| s as i64)), outcome)
            }
            Step::Noise => (keystroke(), Ok(())),
        }
    }

    /// Concrete events (seq from 1, cumulative session time) and the states after each seq
    /// (index 0 = empty), replayed from scratch and checked against the model on the way.
    struct Scripted {
        events: Vec<(u64, i64, TelemetryData)>,
        states: Vec<Workspace>,
        anomalies: Vec<(u64, Anomaly)>,
    }

    fn run_script(steps: &[(Step, u16)]) -> Result<Scripted, TestCaseError> {
        let mut model = Model::new();
        let mut ws = Workspace::default();
        let mut scripted = Scripted {
            events: Vec::new(),
            states: vec![ws.clone()],
            anomalies: Vec::new(),
        };
        let mut elapsed = 0i64;
        for (i, (step, gap)) in steps.iter().enumerate() {
            let seq = i as u64 + 1;
            elapsed += *gap as i64;
            let (data, expected) = concretize(&mut model, step);
            let result = ws.apply(&data);
            prop_assert_eq!(result.clone().map_err(|a| a.code), expected, "{:?}", data);
            if let Err(anomaly) = result {
                scripted.anomalies.push((seq, anomaly));
            }
            let files: Model = ws
                .files
                .iter()
                .map(|(p, s)| (p.clone(), s.encode_utf16().collect()))
                .collect();
            prop_assert_eq!(&files, &model);
            scripted.events.push((seq, elapsed, data));
            scripted.states.push(ws.clone());
        }
        Ok(scripted)
    }

    /// Rebuilds the new text of a file from the old text and the hunks, checking headers, context
    /// and removed lines against the old text on the way.
    fn apply_hunks(old: &str, hunks: &[Hunk]) -> String {
        let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let (mut at, mut new_count) = (0usize, 0usize);
        for hunk in hunks {
            let start = if hunk.old_lines == 0 {
                hunk.old_start
            } else {
                hunk.old_start - 1
            };
            let new_start = if hunk.new_lines == 0 {
                hunk.new_start
            } else {
                hunk.new_start - 1
            };
            assert!(start >= at, "hunks overlap or are out of order");
            assert!(
                at == 0 || start > at,
                "adjacent hunks should have been merged"
            );
            for line in &old_lines[at..start] {
                out.push_str(line);
                new_count += 1;
            }
            assert_eq!(
                new_start, new_count,
                "new_start disagrees with the old file"
            );
            assert!(
                hunk.lines.iter().any(|l| l.op != ' '),
                "a hunk without changes"
            );
            let lead = hunk.lines.iter().take_while(|l| l.op == ' ').count();
            let trail = hunk.lines.iter().rev().take_while(|l| l.op == ' ').count();
            assert!(lead <= CONTEXT && trail <= CONTEXT, "too much context");
            let mut consumed = 0;
            for line in &hunk.lines {
                match line.op {
                    ' ' | '-' => {
                        assert_eq!(line.text, old_lines[start + consumed]);
                        consumed += 1;
                        if line.op == ' ' {
                            out.push_str(&line.text);
                            new_count += 1;
                        }
                    }
                    '+' => {
                        out.push_str(&line.text);
                        new_count += 1;
                    }
                    other => panic!("unknown op {other:?}"),
                }
            }
            assert_eq!(consumed, hunk.old_lines);
            assert_eq!(
                hunk.lines.iter().filter(|l| l.op != '-').count(),
                hunk.new_lines
            );
            at = start + consumed;
        }
        for line in &old_lines[at..] {
            out.push_str(line);
        }
        out
    }

    /// Checks that `diff(before, after)` describes exactly the difference.
    fn check_diff(before: &Workspace, after: &Workspace) -> Result<(), TestCaseError> {
        let diffs = diff(before, after);
        let paths: Vec<&str> = diffs.iter().map(|d| d.path.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&paths, &sorted, "ordered by path, each once");
        let mut rebuilt = before.files.clone();
        for d in &diffs {
            let old = before.files.get(&d.path);
            let new = after.files.get(&d.path);
            match d.status {
                "added" => {
                    prop_assert!(old.is_none());
                    rebuilt.insert(d.path.clone(), apply_hunks("", &d.hunks));
                }
                "removed" => {
                    prop_assert!(new.is_none());
                    prop_assert_eq!(apply_hunks(old.unwrap(), &d.hunks), "");
                    rebuilt.remove(&d.path);
                }
                "modified" => {
                    prop_assert!(old.is_some() && new.is_some() && old != new);
                    rebuilt.insert(d.path.clone(), apply_hunks(old.unwrap(), &d.hunks));
                }
                other => prop_assert!(false, "unknown status {}", other),
            }
        }
        prop_assert_eq!(&rebuilt, &after.files);
        Ok(())
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 64,
            // Shrunk failures are printed; do not write regression files into the tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn apply_agrees_with_a_naive_utf16_model_on_random_edit_scripts(steps in script()) {
            run_script(&steps)?;
        }

        #[test]
        fn state_at_from_any_keyframe_equals_a_replay_from_scratch(
            steps in script(),
            policy in policy(),
        ) {
            let scripted = run_script(&steps)?;
            let (keyframes, last) = replay_with_keyframes(&scripted.events, policy);
            prop_assert_eq!(&last, scripted.states.last().unwrap());
            prop_assert_eq!(keyframes[0].seq, 0);
            let last_seq = scripted.events.len() as u64;
            for (i, keyframe) in keyframes.iter().enumerate() {
                let events: Vec<(u64, TelemetryData)> = scripted
                    .events
                    .iter()
                    .filter(|(seq, _, _)| *seq > keyframe.seq)
                    .map(|(seq, _, data)| (*seq, data.clone()))
                    .collect();
                let until = keyframes.get(i + 1).map_or(last_seq, |next| next.seq);
                for target in keyframe.seq..=until {
                    let (ws, anomalies) = state_at(keyframe, &events, target);
                    prop_assert_eq!(&ws, &scripted.states[target as usize], "target {}", target);
                    let expected: Vec<&(u64, Anomaly)> = scripted
                        .anomalies
                        .iter()
                        .filter(|(seq, _)| *seq > keyframe.seq && *seq <= target)
                        .collect();
                    prop_assert_eq!(anomalies.iter().collect::<Vec<_>>(), expected);
                }
            }
        }

        #[test]
        fn keyframes_hold_the_replayed_state_at_their_seq_and_resume_identically(
            steps in script(),
            policy in policy(),
        ) {
            let scripted = run_script(&steps)?;
            let (keyframes, _) = replay_with_keyframes(&scripted.events, policy);
            for pair in keyframes.windows(2) {
                prop_assert!(pair[0].seq < pair[1].seq);
            }
            for keyframe in &keyframes {
                prop_assert_eq!(&keyframe.workspace, &scripted.states[keyframe.seq as usize]);
            }
            // The cost bound: never more than `every_events` events after a keyframe.
            if policy.every_events > 0 {
                let last_seq = scripted.events.len() as u64;
                let every = u64::from(policy.every_events);
                for pair in keyframes.windows(2) {
                    prop_assert!(pair[1].seq - pair[0].seq <= every);
                }
                prop_assert!(last_seq - keyframes.last().unwrap().seq < every);
            }
            // A live projection resuming mid-interval from saved counters places the same
            // later keyframes.
            let mut replayer = KeyframeReplayer::new(policy);
            for (at, (seq, ms, data)) in scripted.events.iter().enumerate() {
                replayer.step(*seq, *ms, data);
                if at % 7 == 0 {
                    let (events_since, keyframe_ms) = replayer.counters();
                    let mut resumed = KeyframeReplayer::resume(
                        policy,
                        replayer.workspace().clone(),
                        events_since,
                        keyframe_ms,
                    );
                    let later: Vec<Keyframe> = scripted.events[at + 1..]
                        .iter()
                        .filter_map(|(seq, ms, data)| resumed.step(*seq, *ms, data).1)
                        .collect();
                    let expected: Vec<Keyframe> =
                        keyframes.iter().filter(|k| k.seq > *seq).cloned().collect();
                    prop_assert_eq!(later, expected);
                }
            }
            // A live projection resuming from any keyframe places the same later keyframes.
            for (i, keyframe) in keyframes.iter().enumerate() {
                let ms = scripted
                    .events
                    .iter()
                    .find(|(seq, _, _)| *seq == keyframe.seq)
                    .map_or(0, |(_, ms, _)| *ms);
                let mut replayer =
                    KeyframeReplayer::resume(policy, keyframe.workspace.clone(), 0, ms);
                let later: Vec<Keyframe> = scripted
                    .events
                    .iter()
                    .filter(|(seq, _, _)| *seq > keyframe.seq)
                    .filter_map(|(seq, ms, data)| replayer.step(*seq, *ms, data).1)
                    .collect();
                prop_assert_eq!(&later[..], &keyframes[i + 1..]);
            }
        }

        #[test]
        fn diffs_between_replayed_states_reconstruct_the_later_state(
            steps in script(),
            picks in prop::collection::vec(
                (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
                1..8,
            ),
        ) {
            let scripted = run_script(&steps)?;
            for state in &scripted.states {
                prop_assert!(diff(state, state).is_empty());
            }
            for (i, j) in picks {
                let before = i.get(&scripted.states);
                let after = j.get(&scripted.states);
                check_diff(before, after)?;
                check_diff(after, before)?;
            }
        }

        #[test]
        fn diffs_of_random_line_lists_reconstruct_the_new_file(
            old in prop::collection::vec(prop::sample::select(vec!["x\n", "y\n", "z\n", "\n", "x"]), 0..60),
            new in prop::collection::vec(prop::sample::select(vec!["x\n", "y\n", "z\n", "\n", "w\n", "y"]), 0..60),
        ) {
            let (old, new): (String, String) = (old.concat(), new.concat());
            let before = workspace_with("f", &old);
            let after = workspace_with("f", &new);
            check_diff(&before, &after)?;
            prop_assert!(diff(&before, &before).is_empty());
            // Myers finds a shortest script: no more changed lines than a longest common
            // subsequence allows.
            let a: Vec<&str> = old.split_inclusive('\n').collect();
            let b: Vec<&str> = new.split_inclusive('\n').collect();
            let changed: usize = diff(&before, &after)
                .iter()
                .flat_map(|d| &d.hunks)
                .flat_map(|h| &h.lines)
                .filter(|l| l.op != ' ')
                .count();
            prop_assert_eq!(changed, a.len() + b.len() - 2 * lcs(&a, &b));
        }
    }

    fn lcs(a: &[&str], b: &[&str]) -> usize {
        let mut row = vec![0usize; b.len() + 1];
        for x in a {
            let mut diag = 0;
            for (j, y) in b.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = if x == y { diag + 1 } else { up.max(row[j]) };
                diag = up;
            }
        }
        row[b.len()]
    }
}
