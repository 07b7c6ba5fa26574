//! Whole editing sessions built from starter files, a target solution and a typist.
//!
//! Every generator returns telemetry numbered from seq 1 whose replay over `starter` yields exactly
//! `target` (files in `starter` but not in `target` are deleted, new ones created). Each typed
//! character is one `Keystroke` (key-down/up on a monotonic millisecond clock) followed by its
//! `Edit` with origin `typed`; a newline and the next line's indentation arrive in one edit
//! (auto-indent), and a line's leading indentation typed at the start of a block is one Tab key.
//! A backspace is a `Keystroke(Backspace)` and an `Edit` deleting one character. Event times
//! follow the key gaps: an edit is 1 ms after its key-down.
//!
//! Starter files are changed in place: a line diff gives the *hunks* (old lines replaced by new
//! ones), and each hunk's old text is selected and deleted before the new text is authored there.
//!
//! - [`honest_session`]: non-linear authoring (signatures and closing braces first, then bodies
//!   in shuffled order, jumping back up), typos fixed with backspace, occasional words rewritten,
//!   pauses before statements (the typist gets `statement_start` on the first non-blank character
//!   of each line and `word_start` on each word), focus-aways to read docs, failing then passing
//!   runs, and the style's honest pastes ([`HonestStyle`]).
//! - [`pasted_whole_session`]: types a line, tabs away, pastes the solution (a whole file, or hunk
//!   by hunk), runs the tests.
//! - [`transcribed_session`]: re-types the solution top to bottom with very few corrections;
//!   `statement_start` is always false and "looking at the source" pauses land at random
//!   characters.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::{log_normal, KeyContext, Typist};
use clarity_domain::session::SubmittedFile;
use clarity_domain::telemetry::{EditOrigin, KeyClass, TelemetryData, TelemetryEvent};

/// How an honest candidate works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HonestStyle {
    /// Skeleton first, bodies later; typos, docs look-ups, runs.
    Typical,
    /// Typical, and reuses its own code: lines and line beginnings already written are copied and
    /// pasted, and a block is cut and pasted back (moved).
    OwnCodePastes,
    /// Typical, and pastes up to three short lines (≤ 100 characters) from the docs right after
    /// reading them.
    DocsSnippetPastes,
    /// Reworks the starter in place, hunk by hunk in random order, and uses a scratch file.
    Refactorer,
    /// Writes top to bottom in one pass, fast, but pauses to think before statements.
    LinearComposer,
}

impl HonestStyle {
    pub const ALL: [HonestStyle; 5] = [
        HonestStyle::Typical,
        HonestStyle::OwnCodePastes,
        HonestStyle::DocsSnippetPastes,
        HonestStyle::Refactorer,
        HonestStyle::LinearComposer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Typical => "typical",
            Self::OwnCodePastes => "own_code_pastes",
            Self::DocsSnippetPastes => "docs_snippet_pastes",
            Self::Refactorer => "refactorer",
            Self::LinearComposer => "linear_composer",
        }
    }
}

/// How characters are typed.
#[derive(Debug, Clone, Copy)]
struct Manner {
    /// Chance that a letter is mistyped (then fixed with backspace).
    typo: f64,
    /// Chance that a finished word is deleted and typed again.
    rewrite_word: f64,
    /// Tell the typist about statement starts.
    statement_pauses: bool,
    /// Chance of a "looking at the source" pause before any character, and its median in ms.
    look_pause: f64,
    look_median_ms: f64,
    /// Chance of a focus-away (docs) at a line start.
    docs_away: f64,
    /// Paste reused own code (OwnCodePastes).
    reuse: bool,
    /// Docs snippets still allowed (count, characters).
    snippets: (u32, usize),
}

const HONEST: Manner = Manner {
    typo: 0.035,
    rewrite_word: 0.015,
    statement_pauses: true,
    look_pause: 0.0,
    look_median_ms: 0.0,
    docs_away: 0.02,
    reuse: false,
    snippets: (0, 0),
};

const TRANSCRIBER: Manner = Manner {
    typo: 0.004,
    rewrite_word: 0.0,
    statement_pauses: false,
    look_pause: 0.06,
    look_median_ms: 1100.0,
    docs_away: 0.0,
    reuse: false,
    snippets: (0, 0),
};

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

fn key_class(c: char) -> KeyClass {
    match c {
        '\n' => KeyClass::Enter,
        c if c.is_ascii_digit() => KeyClass::Digit,
        c if c.is_alphabetic() => KeyClass::Letter,
        c if c.is_whitespace() => KeyClass::Whitespace,
        c if c.is_ascii_punctuation() => KeyClass::Punctuation,
        _ => KeyClass::Other,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn find_units(hay: &[u16], needle: &[u16]) -> bool {
    !needle.is_empty()
        && needle.len() <= hay.len()
        && hay.windows(needle.len()).any(|w| w == needle)
}

/// The session being built.
struct Builder<'a> {
    rng: &'a mut StdRng,
    typist: &'a mut dyn Typist,
    start: DateTime<Utc>,
    events: Vec<TelemetryEvent>,
    /// Milliseconds since `start` of the last event.
    clock: f64,
    /// The last key-down, ms since start.
    last_down: f64,
    /// Offset of the client's monotonic clock.
    mono: f64,
    prev_key: Option<KeyClass>,
    files: BTreeMap<String, Vec<u16>>,
    manner: Manner,
}

impl<'a> Builder<'a> {
    fn new(
        rng: &'a mut StdRng,
        typist: &'a mut dyn Typist,
        starter: &[SubmittedFile],
        start: DateTime<Utc>,
        manner: Manner,
    ) -> Self {
        let mono = rng.random_range(500.0..5000.0);
        Self {
            rng,
            typist,
            start,
            events: Vec::new(),
            clock: 0.0,
            last_down: 0.0,
            mono,
            prev_key: None,
            files: starter
                .iter()
                .map(|f| (f.path.clone(), f.content.encode_utf16().collect()))
                .collect(),
            manner,
        }
    }

    fn push(&mut self, data: TelemetryData) {
        let ts = self.start + Duration::microseconds((self.clock * 1000.0).round() as i64);
        let seq = self.events.len() as u64 + 1;
        self.events.push(TelemetryEvent { seq, ts, data });
    }

    /// Time passes with no key press.
    fn idle(&mut self, ms: f64) {
        self.clock += ms.max(0.0);
        self.last_down = self.last_down.max(self.clock - 1.0);
    }

    /// Idles for a log-normal time.
    fn idle_ln(&mut self, median: f64, sigma: f64) {
        let ms = log_normal(self.rng, median, sigma);
        self.idle(ms);
    }

    fn key(&mut self, key: KeyClass, statement_start: bool, word_start: bool, extra_ms: f64) {
        let timing = self.typist.next_key(
            self.rng,
            KeyContext {
                key,
                previous: self.prev_key,
                statement_start,
                word_start,
            },
        );
        let grid = self.typist.timer_grid();
        // A coarse browser timer puts every absolute time on its grid: two key-downs may share a
        // tick and a short hold may read 0.
        let (min_gap, min_hold) = if grid.is_some() {
            (0.0, 0.0)
        } else {
            (5.0, 1.0)
        };
        let gap = timing.gap_ms.max(min_gap) + extra_ms.max(0.0);
        self.last_down += gap;
        self.clock = self.clock.max(self.last_down);
        let round = |t: f64| grid.map_or(t, |g| (t / g).round() * g);
        let down = round(self.mono + self.last_down);
        self.push(TelemetryData::Keystroke {
            down_ms: down,
            up_ms: timing.hold_ms.map(|h| round(down + h.max(min_hold))),
            key_class: key,
        });
        self.prev_key = Some(key);
    }

    fn edit(&mut self, file: &str, pos: usize, deleted: usize, inserted: &str, origin: EditOrigin) {
        let text = self.files.entry(file.to_string()).or_default();
        let ins: Vec<u16> = inserted.encode_utf16().collect();
        text.splice(pos..pos + deleted, ins);
        self.clock += 1.0;
        self.push(TelemetryData::Edit {
            file: file.to_string(),
            position: pos as i64,
            deleted: deleted as i64,
            inserted: inserted.to_string(),
            origin,
        });
    }

    fn len(&self, file: &str) -> usize {
        self.files.get(file).map_or(0, Vec::len)
    }

    fn cursor(&mut self, file: &str, pos: usize, selection_end: Option<usize>) {
        self.push(TelemetryData::Cursor {
            file: file.to_string(),
            position: pos as i64,
            selection_end: selection_end.map(|s| s as i64),
        });
    }

    /// Moves to `pos` (mouse click or a few arrow keys) after a short look.
    fn navigate(&mut self, file: &str, pos: usize) {
        let look = log_normal(self.rng, 900.0, 0.6);
        self.idle(look);
        let arrows = self.rng.random_range(0..4);
        for _ in 0..arrows {
            self.key(KeyClass::Navigation, false, false, 0.0);
        }
        self.idle(20.0);
        self.cursor(file, pos, None);
    }

    fn focus_away(&mut self, ms: f64) {
        self.idle(50.0);
        self.push(TelemetryData::FocusLost {});
        self.idle(ms);
        self.push(TelemetryData::FocusRegained {});
    }

    fn run(&mut self, passed: bool, tests: u32) {
        self.idle_ln(1500.0, 0.4);
        let duration = self.rng.random_range(800..4000u64);
        let failed = if passed {
            0
        } else {
            self.rng.random_range(1..=tests.max(1))
        };
        self.push(TelemetryData::CodeRun {
            command: "cargo test".to_string(),
            exit_code: if passed { 0 } else { 101 },
            tests_passed: tests - failed.min(tests),
            tests_failed: failed,
            duration_ms: duration,
        });
        self.idle(duration as f64);
        self.idle_ln(2500.0, 0.5);
    }

    /// Selects `[start, end)` and deletes it with one backspace.
    fn delete_range(&mut self, file: &str, start: usize, end: usize) {
        if end <= start {
            return;
        }
        self.cursor(file, start, Some(end));
        self.key(KeyClass::Backspace, false, false, 0.0);
        self.edit(file, start, end - start, "", EditOrigin::Typed);
    }

    /// Ctrl+V: replaces `deleted` units at `pos` by `text`.
    fn paste(&mut self, file: &str, pos: usize, deleted: usize, text: &str) {
        self.key(KeyClass::Modifier, false, false, 0.0);
        self.key(KeyClass::Letter, false, false, 0.0);
        self.edit(file, pos, deleted, text, EditOrigin::Paste);
    }

    /// Types one character (with a possible typo first); returns the position after it.
    fn type_char(&mut self, file: &str, pos: usize, c: char, statement: bool, word: bool) -> usize {
        let m = self.manner;
        let look = if m.look_pause > 0.0 && self.rng.random::<f64>() < m.look_pause {
            log_normal(self.rng, m.look_median_ms, 0.5)
        } else {
            0.0
        };
        if c.is_ascii_alphabetic() && self.rng.random::<f64>() < m.typo {
            let wrong = (b'a' + self.rng.random_range(0..26u8)) as char;
            self.key(KeyClass::Letter, statement, word, look);
            self.edit(file, pos, 0, &wrong.to_string(), EditOrigin::Typed);
            let notice = log_normal(self.rng, 250.0, 0.5);
            self.key(KeyClass::Backspace, false, false, notice);
            self.edit(file, pos, 1, "", EditOrigin::Typed);
            self.key(key_class(c), false, false, 0.0);
        } else {
            self.key(key_class(c), statement, word, look);
        }
        let s = c.to_string();
        self.edit(file, pos, 0, &s, EditOrigin::Typed);
        pos + c.len_utf16()
    }

    /// Deletes the `n` units before `pos` one backspace at a time.
    fn backspaces(&mut self, file: &str, mut pos: usize, text: &str) -> usize {
        for c in text.chars().rev() {
            self.key(KeyClass::Backspace, false, false, 0.0);
            let n = c.len_utf16();
            self.edit(file, pos - n, n, "", EditOrigin::Typed);
            pos -= n;
        }
        pos
    }

    /// Types the content of one line (no newline, no leading indentation) at `pos`.
    fn type_content(&mut self, file: &str, mut pos: usize, content: &str) -> usize {
        let mut prev: Option<char> = None;
        let mut word_start_pos = pos;
        let chars: Vec<char> = content.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let statement = i == 0 && self.manner.statement_pauses;
            let word = is_word(c) && !prev.is_some_and(is_word);
            if word {
                word_start_pos = pos;
            }
            pos = self.type_char(file, pos, c, statement, word);
            prev = Some(c);
            let word_ends = is_word(c) && !chars.get(i + 1).copied().is_some_and(is_word);
            if word_ends
                && pos - word_start_pos >= 3
                && self.rng.random::<f64>() < self.manner.rewrite_word
            {
                // Second thoughts about a word: delete it and type it again.
                let start = chars[..=i]
                    .iter()
                    .rev()
                    .take_while(|c| is_word(**c))
                    .count();
                let word_text: String = chars[i + 1 - start..=i].iter().collect();
                let think = log_normal(self.rng, 700.0, 0.5);
                self.idle(think);
                pos = self.backspaces(file, pos, &word_text);
                for (k, wc) in word_text.chars().enumerate() {
                    pos = self.type_char(file, pos, wc, false, k == 0);
                }
            }
            i += 1;
        }
        pos
    }

    /// Authors one line's content at `pos`, typing it or (by style) pasting it.
    fn author_content(&mut self, file: &str, pos: usize, content: &str) -> usize {
        if content.is_empty() {
            return pos;
        }
        let n = units(content);
        let (snips, budget) = self.manner.snippets;
        if snips > 0
            && (15..=100).contains(&n)
            && n <= budget
            && !self.in_workspace(content)
            && self.rng.random::<f64>() < 0.12
        {
            // Read the docs, come back, paste the line from them.
            let away = log_normal(self.rng, 20_000.0, 0.5);
            self.focus_away(away);
            let back = log_normal(self.rng, 2500.0, 0.4);
            self.idle(back);
            self.paste(file, pos, 0, content);
            self.manner.snippets = (snips - 1, budget - n);
            return pos + n;
        }
        if self.manner.reuse && n >= 12 {
            if self.in_workspace(content) {
                self.idle_ln(1500.0, 0.4);
                self.paste(file, pos, 0, content);
                return pos + n;
            }
            // The longest beginning (ending at a word boundary) already written elsewhere.
            let chars: Vec<(usize, char)> = content.char_indices().collect();
            let mut best = None;
            for &(b, c) in chars.iter().rev() {
                if b >= 12 && !is_word(c) && self.in_workspace(&content[..b]) {
                    best = Some(b);
                    break;
                }
            }
            if let Some(b) = best {
                self.idle_ln(1500.0, 0.4);
                self.paste(file, pos, 0, &content[..b]);
                let p = pos + units(&content[..b]);
                return self.type_content_rest(file, p, &content[b..]);
            }
        }
        self.type_content(file, pos, content)
    }

    fn type_content_rest(&mut self, file: &str, pos: usize, rest: &str) -> usize {
        let saved = self.manner.statement_pauses;
        self.manner.statement_pauses = false;
        let p = self.type_content(file, pos, rest);
        self.manner.statement_pauses = saved;
        p
    }

    fn in_workspace(&self, text: &str) -> bool {
        let needle: Vec<u16> = text.encode_utf16().collect();
        self.files.values().any(|t| find_units(t, &needle))
    }

    /// Types `text` (whole lines, the last possibly without newline) at `pos`, top to bottom.
    /// The leading indentation of the first line is one Tab key; a newline carries the next
    /// line's indentation (auto-indent).
    fn type_block(&mut self, file: &str, mut pos: usize, text: &str) -> usize {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (k, line) in lines.iter().enumerate() {
            let body = line.strip_suffix('\n').unwrap_or(line);
            let indent_len = body.len() - body.trim_start_matches([' ', '\t']).len();
            let (indent, content) = body.split_at(indent_len);
            if k == 0 && !indent.is_empty() {
                self.key(KeyClass::Whitespace, false, false, 0.0);
                self.edit(file, pos, 0, indent, EditOrigin::Typed);
                pos += units(indent);
            }
            if self.manner.docs_away > 0.0 && self.rng.random::<f64>() < self.manner.docs_away {
                let away = log_normal(self.rng, 25_000.0, 0.7);
                self.focus_away(away);
            }
            pos = self.author_content(file, pos, content);
            if line.ends_with('\n') {
                let next_indent = lines.get(k + 1).map_or("", |l| {
                    let b = l.strip_suffix('\n').unwrap_or(l);
                    &b[..b.len() - b.trim_start_matches([' ', '\t']).len()]
                });
                let ins = format!("\n{next_indent}");
                self.key(KeyClass::Enter, false, false, 0.0);
                self.edit(file, pos, 0, &ins, EditOrigin::Typed);
                pos += units(&ins);
            }
        }
        pos
    }

    /// Authors `text` at `pos` non-linearly: the skeleton (item headers, closing lines, short
    /// items) top to bottom, then the bodies in shuffled order (recursively to `depth`).
    fn author_block(&mut self, file: &str, pos: usize, text: &str, depth: u32) {
        let segments = skeleton(text);
        if depth == 0 || segments.len() < 2 {
            self.type_block(file, pos, text);
            return;
        }
        let lens: Vec<usize> = segments.iter().map(|(s, _)| units(s)).collect();
        let mut done = vec![false; segments.len()];
        let at = |done: &[bool], k: usize| -> usize {
            pos + (0..k).filter(|&j| done[j]).map(|j| lens[j]).sum::<usize>()
        };
        for k in 0..segments.len() {
            if !segments[k].1 {
                let p = at(&done, k);
                self.type_block(file, p, segments[k].0);
                done[k] = true;
            }
        }
        let mut bodies: Vec<usize> = (0..segments.len()).filter(|&k| segments[k].1).collect();
        bodies.shuffle(self.rng);
        for k in bodies {
            let p = at(&done, k);
            self.navigate(file, p);
            self.author_block(file, p, segments[k].0, depth - 1);
            done[k] = true;
            if self.rng.random::<f64>() < 0.15 {
                self.run(false, 4);
            }
        }
    }
}

/// Splits a block into segments (text, is_body): each item (a line at the block's smallest
/// indentation and the deeper lines after it) is a header line, a body, and a closing line at
/// the item's indentation; blank lines and short items are skeleton.
fn skeleton(text: &str) -> Vec<(&str, bool)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let indent = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let blank = |l: &str| l.trim().is_empty();
    let Some(min) = lines.iter().filter(|l| !blank(l)).map(|l| indent(l)).min() else {
        return vec![(text, false)];
    };
    // Line offsets (bytes).
    let mut offs = Vec::with_capacity(lines.len() + 1);
    let mut o = 0;
    for l in &lines {
        offs.push(o);
        o += l.len();
    }
    offs.push(o);
    let mut out: Vec<(&str, bool)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if blank(lines[i]) || indent(lines[i]) != min {
            out.push((&text[offs[i]..offs[i + 1]], false));
            i += 1;
            continue;
        }
        // Item from i to j (exclusive): following lines deeper than min or blank.
        let mut j = i + 1;
        while j < lines.len() && (blank(lines[j]) || indent(lines[j]) > min) {
            j += 1;
        }
        // A closing line at the item's indentation.
        let closes = j < lines.len() && {
            let t = lines[j].trim_start();
            t.starts_with('}') || t.starts_with(')') || t.starts_with(']')
        };
        let end = if closes { j + 1 } else { j };
        // Trailing blank lines of the body belong to the skeleton.
        let mut body_end = j;
        while body_end > i + 1 && blank(lines[body_end - 1]) {
            body_end -= 1;
        }
        if body_end > i + 1 && closes {
            out.push((&text[offs[i]..offs[i + 1]], false));
            out.push((&text[offs[i + 1]..offs[body_end]], true));
            out.push((&text[offs[body_end]..offs[end]], false));
        } else {
            out.push((&text[offs[i]..offs[end]], false));
        }
        i = end;
    }
    out
}

/// One change of a file: `old` (whole lines of the current text) becomes `new`.
#[derive(Debug, Clone)]
struct Hunk {
    old: String,
    new: String,
}

/// A file as alternating kept text and hunks, in order.
#[derive(Debug, Clone)]
enum Segment {
    Keep(String),
    Change(Hunk),
}

/// Line diff (LCS) of `old` and `new` into segments; falls back to common prefix/suffix lines
/// when the files are large.
fn plan(old: &str, new: &str) -> Vec<Segment> {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let mut pre = 0;
    while pre < a.len() && pre < b.len() && a[pre] == b[pre] {
        pre += 1;
    }
    let mut suf = 0;
    while suf < a.len() - pre && suf < b.len() - pre && a[a.len() - 1 - suf] == b[b.len() - 1 - suf]
    {
        suf += 1;
    }
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    // ops: (keep?, a_line, b_line)
    let mut ops: Vec<(Option<&str>, Option<&str>)> = Vec::new(); // (old, new): both = keep
    for l in &a[..pre] {
        ops.push((Some(l), Some(l)));
    }
    if am.len() * bm.len() <= 4_000_000 {
        let (n, m) = (am.len(), bm.len());
        let mut dp = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                dp[i * (m + 1) + j] = if am[i] == bm[j] {
                    dp[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    dp[(i + 1) * (m + 1) + j].max(dp[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push((Some(am[i]), Some(bm[j])));
                i += 1;
                j += 1;
            } else if j < m && (i == n || dp[i * (m + 1) + j + 1] >= dp[(i + 1) * (m + 1) + j]) {
                ops.push((None, Some(bm[j])));
                j += 1;
            } else {
                ops.push((Some(am[i]), None));
                i += 1;
            }
        }
    } else {
        for l in am {
            ops.push((Some(l), None));
        }
        for l in bm {
            ops.push((None, Some(l)));
        }
    }
    for l in &a[a.len() - suf..] {
        ops.push((Some(l), Some(l)));
    }
    let mut out: Vec<Segment> = Vec::new();
    for (o, n) in ops {
        match (o, n) {
            (Some(l), Some(_)) => match out.last_mut() {
                Some(Segment::Keep(s)) => s.push_str(l),
                _ => out.push(Segment::Keep(l.to_string())),
            },
            (o, n) => {
                if !matches!(out.last(), Some(Segment::Change(_))) {
                    out.push(Segment::Change(Hunk {
                        old: String::new(),
                        new: String::new(),
                    }));
                }
                if let Some(Segment::Change(h)) = out.last_mut() {
                    h.old.push_str(o.unwrap_or(""));
                    h.new.push_str(n.unwrap_or(""));
                }
            }
        }
    }
    out
}

/// The files to work on: (path, starter content or None, target content or None), sorted.
fn file_plan(
    starter: &[SubmittedFile],
    target: &[SubmittedFile],
) -> Vec<(String, Option<String>, Option<String>)> {
    let mut m: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for f in starter {
        m.entry(f.path.clone()).or_default().0 = Some(f.content.clone());
    }
    for f in target {
        m.entry(f.path.clone()).or_default().1 = Some(f.content.clone());
    }
    m.into_iter().map(|(p, (s, t))| (p, s, t)).collect()
}

/// Applies the hunks of one file in `order` (indices into the hunks), calling `author` for each
/// with (builder, file, position, hunk) after deleting the hunk's old text.
fn apply_hunks(
    b: &mut Builder<'_>,
    file: &str,
    segments: &[Segment],
    order: &[usize],
    author: &mut dyn FnMut(&mut Builder<'_>, &str, usize, &Hunk),
) {
    let mut cur: Vec<usize> = segments
        .iter()
        .map(|s| match s {
            Segment::Keep(t) => units(t),
            Segment::Change(h) => units(&h.old),
        })
        .collect();
    for &k in order {
        let Segment::Change(h) = &segments[k] else {
            continue;
        };
        let pos: usize = cur[..k].iter().sum();
        author(b, file, pos, h);
        cur[k] = units(&h.new);
    }
}

fn hunk_indices(segments: &[Segment]) -> Vec<usize> {
    (0..segments.len())
        .filter(|&k| matches!(segments[k], Segment::Change(_)))
        .collect()
}

fn delete_old(b: &mut Builder<'_>, file: &str, pos: usize, h: &Hunk) {
    if !h.old.is_empty() {
        b.navigate(file, pos);
        b.delete_range(file, pos, pos + units(&h.old));
    }
}

/// An honest session: see the module documentation and [`HonestStyle`].
pub fn honest_session(
    rng: &mut StdRng,
    typist: &mut dyn Typist,
    starter: &[SubmittedFile],
    target: &[SubmittedFile],
    style: HonestStyle,
    start: DateTime<Utc>,
) -> Vec<TelemetryEvent> {
    let mut manner = HONEST;
    match style {
        HonestStyle::OwnCodePastes => manner.reuse = true,
        HonestStyle::DocsSnippetPastes => manner.snippets = (3, 250),
        HonestStyle::LinearComposer => {
            manner.typo = 0.02;
            manner.rewrite_word = 0.005;
            manner.docs_away = 0.01;
        }
        _ => {}
    }
    let mut b = Builder::new(rng, typist, starter, start, manner);
    let reading = log_normal(b.rng, 20_000.0, 0.5);
    b.idle(reading);
    let files = file_plan(starter, target);
    if style == HonestStyle::Refactorer {
        // A scratch file for trying things out, deleted later.
        b.push(TelemetryData::FileCreated {
            file: "scratch.txt".into(),
            content: String::new(),
        });
        b.type_block("scratch.txt", 0, "try: sort then dedup\n");
    }
    let depth = match style {
        HonestStyle::LinearComposer => 0,
        HonestStyle::Refactorer => 1,
        _ => 2,
    };
    for (path, old, new) in &files {
        let Some(new) = new else {
            b.idle_ln(3000.0, 0.5);
            b.push(TelemetryData::FileDeleted { file: path.clone() });
            b.files.remove(path);
            continue;
        };
        if old.is_none() {
            b.idle_ln(2000.0, 0.5);
            b.push(TelemetryData::FileCreated {
                file: path.clone(),
                content: String::new(),
            });
            b.files.insert(path.clone(), Vec::new());
        }
        let segments = plan(old.as_deref().unwrap_or(""), new);
        let mut order = hunk_indices(&segments);
        if style == HonestStyle::Refactorer {
            order.shuffle(b.rng);
        }
        apply_hunks(&mut b, path, &segments, &order, &mut |b, file, pos, h| {
            delete_old(b, file, pos, h);
            if h.new.is_empty() {
                return;
            }
            if b.len(file) > 0 && pos != b.len(file) {
                b.navigate(file, pos);
            }
            b.author_block(file, pos, &h.new, depth);
        });
        if style == HonestStyle::OwnCodePastes {
            move_a_line(&mut b, path);
        }
        if b.rng.random::<f64>() < 0.6 {
            b.run(false, 4);
        }
    }
    if style == HonestStyle::Refactorer {
        b.idle_ln(2000.0, 0.5);
        b.push(TelemetryData::FileDeleted {
            file: "scratch.txt".into(),
        });
        b.files.remove("scratch.txt");
    }
    b.run(true, 4);
    b.events
}

/// Cuts a line of `file` and pastes it back where it was (moving code; the text is unchanged).
fn move_a_line(b: &mut Builder<'_>, file: &str) {
    let text = String::from_utf16_lossy(&b.files[file]);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let candidates: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim().len() >= 8 && lines[i].ends_with('\n'))
        .collect();
    if candidates.is_empty() {
        return;
    }
    let i = candidates[b.rng.random_range(0..candidates.len())];
    let start: usize = lines[..i].iter().map(|l| units(l)).sum();
    let n = units(lines[i]);
    b.navigate(file, start);
    b.cursor(file, start, Some(start + n));
    b.key(KeyClass::Modifier, false, false, 0.0);
    b.key(KeyClass::Letter, false, false, 0.0);
    b.edit(file, start, n, "", EditOrigin::Other);
    b.idle_ln(1200.0, 0.4);
    b.cursor(file, start, None);
    b.paste(file, start, 0, lines[i]);
}

/// Types a line, tabs away, and pastes the solution: per file either the whole file over the
/// current text or hunk by hunk (tabbing away again before some), then runs the tests.
pub fn pasted_whole_session(
    rng: &mut StdRng,
    typist: &mut dyn Typist,
    starter: &[SubmittedFile],
    target: &[SubmittedFile],
    start: DateTime<Utc>,
) -> Vec<TelemetryEvent> {
    let mut b = Builder::new(rng, typist, starter, start, HONEST);
    let reading = log_normal(b.rng, 15_000.0, 0.5);
    b.idle(reading);
    let files = file_plan(starter, target);
    let mut typed_a_little = false;
    for (path, old, new) in &files {
        let Some(new) = new else {
            b.push(TelemetryData::FileDeleted { file: path.clone() });
            b.files.remove(path);
            continue;
        };
        if old.is_none() {
            b.push(TelemetryData::FileCreated {
                file: path.clone(),
                content: String::new(),
            });
            b.files.insert(path.clone(), Vec::new());
        }
        if old.as_deref() == Some(new.as_str()) {
            continue;
        }
        let whole = b.rng.random::<f64>() < 0.6;
        let segments = plan(old.as_deref().unwrap_or(""), new);
        if !typed_a_little {
            typed_a_little = true;
            // Type the first line of the first change, then look it up elsewhere.
            let Some(&first) = hunk_indices(&segments).first() else {
                continue;
            };
            let pos: usize = segments[..first]
                .iter()
                .map(|s| match s {
                    Segment::Keep(t) => units(t),
                    Segment::Change(h) => units(&h.old),
                })
                .sum();
            if let Segment::Change(h) = &segments[first] {
                let line = h.new.split_inclusive('\n').next().unwrap_or("");
                let line = line.strip_suffix('\n').unwrap_or(line);
                if !line.is_empty() {
                    b.navigate(path, pos);
                    let end = b.type_block(path, pos, line);
                    b.idle_ln(4000.0, 0.5);
                    b.delete_range(path, pos, end);
                }
            }
        }
        if whole {
            let away = log_normal(b.rng, 60_000.0, 0.6);
            b.focus_away(away);
            b.idle_ln(2500.0, 0.4);
            let n = b.len(path);
            b.cursor(path, 0, Some(n));
            b.paste(path, 0, n, new);
        } else {
            let mut first = true;
            apply_hunks(
                &mut b,
                path,
                &segments,
                &hunk_indices(&segments),
                &mut |b, file, pos, h| {
                    if first || b.rng.random::<f64>() < 0.5 {
                        let away = log_normal(b.rng, 40_000.0, 0.6);
                        b.focus_away(away);
                        b.idle_ln(2500.0, 0.4);
                    }
                    first = false;
                    let n = units(&h.old);
                    b.cursor(file, pos, Some(pos + n));
                    if h.new.is_empty() {
                        b.delete_range(file, pos, pos + n);
                    } else {
                        b.paste(file, pos, n, &h.new);
                    }
                },
            );
        }
    }
    b.run(true, 4);
    b.events
}

/// Re-types the solution top to bottom, file by file, hunk by hunk: statement starts get no
/// extra pause, "looking at the source" pauses land at random characters, very few typos.
pub fn transcribed_session(
    rng: &mut StdRng,
    typist: &mut dyn Typist,
    starter: &[SubmittedFile],
    target: &[SubmittedFile],
    start: DateTime<Utc>,
) -> Vec<TelemetryEvent> {
    let mut b = Builder::new(rng, typist, starter, start, TRANSCRIBER);
    let reading = log_normal(b.rng, 10_000.0, 0.5);
    b.idle(reading);
    for (path, old, new) in file_plan(starter, target) {
        let Some(new) = new else {
            b.push(TelemetryData::FileDeleted { file: path.clone() });
            b.files.remove(&path);
            continue;
        };
        if old.is_none() {
            b.push(TelemetryData::FileCreated {
                file: path.clone(),
                content: String::new(),
            });
            b.files.insert(path.clone(), Vec::new());
        }
        let segments = plan(old.as_deref().unwrap_or(""), &new);
        apply_hunks(
            &mut b,
            &path,
            &segments,
            &hunk_indices(&segments),
            &mut |b, file, pos, h| {
                delete_old(b, file, pos, h);
                if !h.new.is_empty() {
                    b.type_block(file, pos, &h.new);
                }
            },
        );
    }
    b.run(true, 4);
    b.events
}

/// A small log-normal typist and two tasks, for tests of the generators and the detectors.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::synth::KeyTiming;
    use crate::SessionTrace;
    use clarity_domain::session::ConsentScopes;

    /// Log-normal key gaps; a word start adds a little, a statement start (usually) seconds.
    pub(crate) struct TestTypist;

    impl Typist for TestTypist {
        fn next_key(&mut self, rng: &mut StdRng, ctx: KeyContext) -> KeyTiming {
            let mut gap = log_normal(rng, 170.0, 0.45);
            if ctx.word_start {
                gap += log_normal(rng, 110.0, 0.6);
            }
            if ctx.statement_start && rng.random::<f64>() < 0.75 {
                gap += log_normal(rng, 2200.0, 0.7);
            }
            KeyTiming {
                gap_ms: gap,
                hold_ms: Some(log_normal(rng, 95.0, 0.3)),
            }
        }
    }

    pub(crate) fn file(path: &str, content: &str) -> SubmittedFile {
        SubmittedFile {
            path: path.into(),
            content: content.into(),
        }
    }

    const STARTER_A: &str = r#"//! Word statistics.

use std::collections::HashMap;

/// Counts the words of `text`, lowercased.
pub fn word_counts(text: &str) -> HashMap<String, usize> {
    todo!()
}

/// The `k` most frequent words, most frequent first, ties by word.
pub fn top_k(counts: &HashMap<String, usize>, k: usize) -> Vec<(String, usize)> {
    todo!()
}
"#;

    const TARGET_A: &str = r#"//! Word statistics.

use std::collections::HashMap;

/// Counts the words of `text`, lowercased.
pub fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// The `k` most frequent words, most frequent first, ties by word.
pub fn top_k(counts: &HashMap<String, usize>, k: usize) -> Vec<(String, usize)> {
    let mut all: Vec<(String, usize)> = counts
        .iter()
        .map(|(word, n)| (word.clone(), *n))
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_ignoring_case_and_punctuation() {
        let counts = word_counts("Café, café! naïve 😀 code");
        assert_eq!(counts["café"], 2);
        assert_eq!(counts["naïve"], 1);
        assert_eq!(counts.get("😀"), None);
    }

    #[test]
    fn top_k_orders_by_count_then_word() {
        let counts = word_counts("b a b c a b");
        let top = top_k(&counts, 2);
        assert_eq!(top, vec![("b".to_string(), 3), ("a".to_string(), 2)]);
    }
}
"#;

    const STARTER_B: &str = "// Write your solution here.\n";

    const TARGET_B_LIB: &str = r#"mod parse;

pub use parse::{parse_line, Entry};

/// Sums the amounts of the lines that parse, per account.
pub fn totals(input: &str) -> Vec<(String, i64)> {
    let mut totals: Vec<(String, i64)> = Vec::new();
    for line in input.lines() {
        let Ok(entry) = parse_line(line) else {
            continue;
        };
        match totals.iter_mut().find(|(a, _)| *a == entry.account) {
            Some((_, sum)) => *sum += entry.amount,
            None => totals.push((entry.account, entry.amount)),
        }
    }
    totals.sort();
    totals
}
"#;

    const TARGET_B_PARSE: &str = r#"/// One ledger line: `account amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub account: String,
    pub amount: i64,
}

/// Parses `account amount`, e.g. `rent -1200`.
pub fn parse_line(line: &str) -> Result<Entry, String> {
    let mut parts = line.split_whitespace();
    let account = parts.next().ok_or("missing account")?;
    let amount = parts
        .next()
        .ok_or("missing amount")?
        .parse::<i64>()
        .map_err(|e| format!("bad amount: {e}"))?;
    if parts.next().is_some() {
        return Err("trailing text".to_string());
    }
    Ok(Entry {
        account: account.to_string(),
        amount,
    })
}
"#;

    /// (starter, target) of task `i % 2`.
    pub(crate) fn task(i: usize) -> (Vec<SubmittedFile>, Vec<SubmittedFile>) {
        if i.is_multiple_of(2) {
            (
                vec![file("src/lib.rs", STARTER_A)],
                vec![file("src/lib.rs", TARGET_A)],
            )
        } else {
            (
                vec![
                    file("README.md", "Sum the ledger.\n"),
                    file("src/lib.rs", STARTER_B),
                ],
                vec![
                    file("README.md", "Sum the ledger.\n"),
                    file("src/lib.rs", TARGET_B_LIB),
                    file("src/parse.rs", TARGET_B_PARSE),
                ],
            )
        }
    }

    pub(crate) fn start() -> DateTime<Utc> {
        "2026-03-02T09:00:00Z".parse().unwrap()
    }

    pub(crate) fn trace(starter: &[SubmittedFile], events: Vec<TelemetryEvent>) -> SessionTrace {
        SessionTrace {
            submission: None,
            started_at: Some(start()),
            events,
            consent: ConsentScopes {
                keystroke_dynamics: true,
                face_continuity: false,
            },
            starter_files: starter.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::{provenance, transcription, DetectorReport, FindingLevel};
    use rand::SeedableRng;

    fn sorted(mut files: Vec<SubmittedFile>) -> Vec<SubmittedFile> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    }

    fn flagged(r: &DetectorReport) -> bool {
        r.findings.iter().any(|f| f.level >= FindingLevel::Review)
    }

    fn well_formed(events: &[TelemetryEvent]) {
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            if i > 0 {
                assert!(
                    e.ts >= events[i - 1].ts,
                    "time goes backwards at seq {}",
                    e.seq
                );
            }
        }
        let downs: Vec<f64> = events
            .iter()
            .filter_map(|e| match e.data {
                TelemetryData::Keystroke { down_ms, .. } => Some(down_ms),
                _ => None,
            })
            .collect();
        assert!(downs.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn the_line_plan_rebuilds_the_target() {
        for i in 0..2 {
            let (starter, target) = task(i);
            for (_, old, new) in file_plan(&starter, &target) {
                let (Some(old), Some(new)) = (old, new) else {
                    continue;
                };
                let mut rebuilt = String::new();
                for s in plan(&old, &new) {
                    match s {
                        Segment::Keep(t) => rebuilt.push_str(&t),
                        Segment::Change(h) => rebuilt.push_str(&h.new),
                    }
                }
                assert_eq!(rebuilt, new);
            }
        }
    }

    #[test]
    fn generated_sessions_of_every_kind_reproduce_the_target_files_exactly() {
        let mut rng = StdRng::seed_from_u64(7);
        for i in 0..4 {
            let (starter, target) = task(i);
            let mut sessions: Vec<Vec<TelemetryEvent>> = HonestStyle::ALL
                .iter()
                .map(|&style| {
                    honest_session(&mut rng, &mut TestTypist, &starter, &target, style, start())
                })
                .collect();
            sessions.push(pasted_whole_session(
                &mut rng,
                &mut TestTypist,
                &starter,
                &target,
                start(),
            ));
            sessions.push(transcribed_session(
                &mut rng,
                &mut TestTypist,
                &starter,
                &target,
                start(),
            ));
            for events in sessions {
                well_formed(&events);
                let p = provenance::provenance(&trace(&starter, events));
                assert_eq!(p.anomalies, 0, "{:?}", p.anomaly_samples);
                assert_eq!(p.files, sorted(target.clone()));
            }
        }
    }

    /// Runs `n` sessions of a generator and counts the sessions each detector flagged.
    fn count(
        n: usize,
        seed: u64,
        mut generate: impl FnMut(&mut StdRng, usize) -> (Vec<SubmittedFile>, Vec<TelemetryEvent>),
    ) -> (usize, usize, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut prov, mut major, mut trans) = (0, 0, 0);
        for i in 0..n {
            let (starter, events) = generate(&mut rng, i);
            let t = trace(&starter, events);
            let p = provenance::analyse(&t);
            if flagged(&p) {
                prov += 1;
            }
            if p.findings.iter().any(|f| f.level == FindingLevel::Major) {
                major += 1;
            }
            if flagged(&transcription::analyse(&t)) {
                trans += 1;
            }
        }
        (prov, major, trans)
    }

    const N: usize = 100;

    #[test]
    fn honest_sessions_of_every_style_raise_no_finding() {
        for (k, style) in HonestStyle::ALL.into_iter().enumerate() {
            let (prov, major, trans) = count(N, 100 + k as u64, |rng, i| {
                let (starter, target) = task(i);
                let events =
                    honest_session(rng, &mut TestTypist, &starter, &target, style, start());
                (starter, events)
            });
            eprintln!(
                "honest {:<20} n={N}: provenance flagged {prov} (major {major}), transcription flagged {trans}",
                style.name()
            );
            assert_eq!((prov, trans), (0, 0), "{}", style.name());
        }
    }

    #[test]
    fn pasted_whole_sessions_are_flagged_by_provenance_not_transcription() {
        let (prov, major, trans) = count(N, 200, |rng, i| {
            let (starter, target) = task(i);
            let events = pasted_whole_session(rng, &mut TestTypist, &starter, &target, start());
            (starter, events)
        });
        eprintln!("pasted_whole n={N}: provenance flagged {prov} (major {major}), transcription flagged {trans}");
        assert_eq!(prov, N);
        assert_eq!(major, N);
        assert_eq!(trans, 0);
    }

    #[test]
    fn transcribed_sessions_are_flagged_by_transcription_not_provenance() {
        let (prov, major, trans) = count(N, 300, |rng, i| {
            let (starter, target) = task(i);
            let events = transcribed_session(rng, &mut TestTypist, &starter, &target, start());
            (starter, events)
        });
        eprintln!("transcribed n={N}: provenance flagged {prov} (major {major}), transcription flagged {trans}");
        assert_eq!(prov, 0);
        assert!(trans >= N * 9 / 10, "transcription flagged {trans} of {N}");
    }
}
