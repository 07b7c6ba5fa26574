//! The workspace replayed with a tag on every UTF-16 unit: where it came from and a caller-chosen
//! label (the paste it arrived in, the typing stretch it belongs to).
//!
//! Text is kept as UTF-16 units (`Vec<u16>`, the unit telemetry positions count) and tags as runs
//! (`len`, tag), so typing that extends a run costs a scan of the runs, not of the text. An edit
//! that does not apply (unknown file, range past the end, a position inside a surrogate pair,
//! negative numbers) leaves the ledger unchanged and is reported as an anomaly code, the same
//! checks `projections::replay_engine` makes.
//!
//! Text deleted during the session (edits, whole deleted files) is remembered with its tags (the
//! most recent [`MEMORY`] deletions), so a cut-then-paste or an undo restores where the text
//! originally came from instead of counting it as new.

use std::collections::{BTreeMap, VecDeque};

use super::Origin;
use clarity_domain::session::SubmittedFile;

/// How many recent deletions are remembered for cut/paste and undo matching.
const MEMORY: usize = 64;

/// Where one unit came from, and a label (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag {
    pub origin: Origin,
    pub label: u32,
}

impl Tag {
    pub const fn new(origin: Origin, label: u32) -> Self {
        Self { origin, label }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub len: u32,
    pub tag: Tag,
}

/// What to tag inserted text with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Insert {
    /// Exactly this tag.
    Tagged(Tag),
    /// A paste: if its text (ignoring surrounding whitespace) is already in the workspace or in
    /// recently deleted text, it is an internal paste and keeps the external-paste tags of the
    /// text it copies (so cut-and-paste cannot launder a paste); otherwise it gets `external`.
    Paste { external: Tag },
    /// Text that may restore earlier text (undo, a created file's content): if found in recently
    /// deleted text or the workspace, it takes the tags of what it restores; otherwise `fallback`.
    Restore { fallback: Tag },
}

/// What an applied insertion turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Applied {
    /// The inserted text was found in the workspace or recently deleted text.
    pub copied: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct FileLedger {
    pub text: Vec<u16>,
    pub runs: Vec<Run>,
    /// A run index and its start (in units), valid for the current runs: lookups start there, so
    /// edits near the previous one (the common case) do not scan the file's runs from the top.
    hint: (usize, usize),
}

impl FileLedger {
    fn new(text: Vec<u16>, tag: Tag) -> Self {
        let mut f = Self {
            text,
            runs: Vec::new(),
            hint: (0, 0),
        };
        let len = f.text.len() as u32;
        if len > 0 {
            f.runs.push(Run { len, tag });
        }
        f
    }

    /// The run containing unit `pos` (or `runs.len()` at the end) and that run's start.
    fn seek(&self, pos: usize) -> (usize, usize) {
        let (mut i, mut start) = self.hint;
        if i > self.runs.len() {
            (i, start) = (0, 0);
        }
        while start > pos && i > 0 {
            i -= 1;
            start -= self.runs[i].len as usize;
        }
        while i < self.runs.len() && start + self.runs[i].len as usize <= pos {
            start += self.runs[i].len as usize;
            i += 1;
        }
        (i, start)
    }

    /// Index of the first run starting at unit `pos`, splitting a run if `pos` falls inside it.
    fn split_at(&mut self, pos: usize) -> usize {
        let (i, start) = self.seek(pos);
        self.hint = (i, start);
        if i == self.runs.len() || pos == start {
            return i;
        }
        let head = (pos - start) as u32;
        let Run { len, tag } = self.runs[i];
        self.runs[i].len = head;
        self.runs.insert(
            i + 1,
            Run {
                len: len - head,
                tag,
            },
        );
        i + 1
    }

    fn merge_around(&mut self, i: usize) {
        // Merge run i-1 with i when their tags match.
        if i > 0 && i < self.runs.len() && self.runs[i - 1].tag == self.runs[i].tag {
            self.runs[i - 1].len += self.runs[i].len;
            self.runs.remove(i);
        }
    }

    /// The runs covering `[start, end)`.
    pub fn runs_in(&self, start: usize, end: usize) -> Vec<Run> {
        let mut out = Vec::new();
        let (first, mut at) = self.seek(start);
        for run in &self.runs[first..] {
            let (a, b) = (at, at + run.len as usize);
            at = b;
            let (lo, hi) = (a.max(start), b.min(end));
            if lo < hi {
                push_run(&mut out, (hi - lo) as u32, run.tag);
            }
            if at >= end {
                break;
            }
        }
        out
    }

    /// Replaces `[start, end)` by `text` tagged with `runs` (whose lengths sum to `text.len()`);
    /// returns the removed text and its runs.
    fn replace(&mut self, start: usize, end: usize, text: &[u16], runs: &[Run]) -> Chunk {
        let removed_runs = self.runs_in(start, end);
        let removed_text: Vec<u16> = self.text.splice(start..end, text.iter().copied()).collect();
        let a = self.split_at(start);
        // Runs before `a - 1` and the start of run `a - 1` survive the changes below.
        let keep = if a > 0 {
            (a - 1, start - self.runs[a - 1].len as usize)
        } else {
            (0, 0)
        };
        let b = self.split_at(end);
        self.runs.splice(a..b, runs.iter().copied());
        let after = a + runs.len();
        self.merge_around(after);
        self.merge_around(a);
        self.hint = keep;
        Chunk {
            text: removed_text,
            runs: removed_runs,
        }
    }
}

fn push_run(out: &mut Vec<Run>, len: u32, tag: Tag) {
    if len == 0 {
        return;
    }
    match out.last_mut() {
        Some(last) if last.tag == tag => last.len += len,
        _ => out.push(Run { len, tag }),
    }
}

/// Deleted text with its tags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chunk {
    pub text: Vec<u16>,
    pub runs: Vec<Run>,
}

impl Chunk {
    fn runs_in(&self, start: usize, end: usize) -> Vec<Run> {
        let f = FileLedger {
            text: Vec::new(),
            runs: self.runs.clone(),
            hint: (0, 0),
        };
        f.runs_in(start, end)
    }
}

/// The tagged workspace.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ledger {
    pub files: BTreeMap<String, FileLedger>,
    memory: VecDeque<Chunk>,
}

fn is_high(u: u16) -> bool {
    (0xD800..0xDC00).contains(&u)
}

fn is_low(u: u16) -> bool {
    (0xDC00..0xE000).contains(&u)
}

/// Whether `pos` is a valid boundary of `text` (not past the end, not inside a surrogate pair).
fn boundary(text: &[u16], pos: usize) -> Result<(), &'static str> {
    if pos > text.len() {
        return Err("position_out_of_range");
    }
    if pos > 0 && pos < text.len() && is_high(text[pos - 1]) && is_low(text[pos]) {
        return Err("splits_surrogate_pair");
    }
    Ok(())
}

fn is_space(u: u16) -> bool {
    matches!(u, 0x20 | 0x09 | 0x0A | 0x0D)
}

fn find(haystack: &[u16], needle: &[u16]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    let first = needle[0];
    let last = haystack.len() - needle.len();
    (0..=last).find(|&i| haystack[i] == first && haystack[i..i + needle.len()] == *needle)
}

/// Number of Unicode scalar values in `units` (a low surrogate after a high one is not counted).
pub(crate) fn chars_in(units: &[u16]) -> u64 {
    let mut n = 0u64;
    let mut prev_high = false;
    for &u in units {
        if !(prev_high && is_low(u)) {
            n += 1;
        }
        prev_high = is_high(u);
    }
    n
}

impl Ledger {
    pub fn new(starter: &[SubmittedFile]) -> Self {
        let mut files = BTreeMap::new();
        for f in starter {
            files.insert(
                f.path.clone(),
                FileLedger::new(
                    f.content.encode_utf16().collect(),
                    Tag::new(Origin::Starter, 0),
                ),
            );
        }
        Self {
            files,
            memory: VecDeque::new(),
        }
    }

    fn remember(&mut self, chunk: Chunk) {
        if chunk.text.is_empty() {
            return;
        }
        if self.memory.len() == MEMORY {
            self.memory.pop_front();
        }
        self.memory.push_back(chunk);
    }

    /// Finds `needle` in the workspace or the memory (in the given order) and returns its runs.
    fn locate(&self, needle: &[u16], memory_first: bool) -> Option<Vec<Run>> {
        let in_files = || {
            self.files
                .values()
                .find_map(|f| find(&f.text, needle).map(|i| f.runs_in(i, i + needle.len())))
        };
        let in_memory = || {
            self.memory
                .iter()
                .rev()
                .find_map(|c| find(&c.text, needle).map(|i| c.runs_in(i, i + needle.len())))
        };
        if memory_first {
            in_memory().or_else(in_files)
        } else {
            in_files().or_else(in_memory)
        }
    }

    /// The runs to tag `text` with, and whether it was copied from known text.
    fn tags_for(&self, text: &[u16], insert: Insert) -> (Vec<Run>, bool) {
        let len = text.len() as u32;
        match insert {
            Insert::Tagged(tag) => (vec![Run { len, tag }], false),
            Insert::Paste { external } => {
                let lead = text.iter().take_while(|&&u| is_space(u)).count();
                let trail = text[lead..]
                    .iter()
                    .rev()
                    .take_while(|&&u| is_space(u))
                    .count();
                let core = &text[lead..text.len() - trail];
                let internal = Tag::new(Origin::InternalPaste, 0);
                if core.is_empty() {
                    return (vec![Run { len, tag: internal }], true);
                }
                match self.locate(core, false) {
                    Some(found) => {
                        let mut runs = Vec::new();
                        push_run(&mut runs, lead as u32, internal);
                        for r in found {
                            let tag = if r.tag.origin == Origin::Pasted {
                                r.tag
                            } else {
                                internal
                            };
                            push_run(&mut runs, r.len, tag);
                        }
                        push_run(&mut runs, trail as u32, internal);
                        (runs, true)
                    }
                    None => (vec![Run { len, tag: external }], false),
                }
            }
            Insert::Restore { fallback } => match self.locate(text, true) {
                Some(found) => (found, true),
                None => (vec![Run { len, tag: fallback }], false),
            },
        }
    }

    /// Applies an edit; on `Err` (an anomaly code) the ledger is unchanged.
    pub fn edit(
        &mut self,
        file: &str,
        position: i64,
        deleted: i64,
        inserted: &str,
        insert: Insert,
    ) -> Result<Applied, &'static str> {
        let (Ok(pos), Ok(del)) = (usize::try_from(position), usize::try_from(deleted)) else {
            return Err("negative_value");
        };
        let f = self.files.get(file).ok_or("unknown_file")?;
        boundary(&f.text, pos)?;
        let end = pos.checked_add(del).ok_or("position_out_of_range")?;
        boundary(&f.text, end)?;
        let text: Vec<u16> = inserted.encode_utf16().collect();
        let (runs, copied) = if text.is_empty() {
            (Vec::new(), false)
        } else {
            self.tags_for(&text, insert)
        };
        let f = self.files.get_mut(file).ok_or("unknown_file")?;
        let removed = f.replace(pos, end, &text, &runs);
        self.remember(removed);
        Ok(Applied { copied })
    }

    pub fn create(
        &mut self,
        file: &str,
        content: &str,
        insert: Insert,
    ) -> Result<(), &'static str> {
        let text: Vec<u16> = content.encode_utf16().collect();
        if let Some(existing) = self.files.get(file) {
            // A page announces the starter files it opens with (the server's workspace starts
            // empty); the ledger starts from them already, so an identical announcement changes
            // nothing and is no anomaly.
            return if existing.text == text {
                Ok(())
            } else {
                Err("file_exists")
            };
        }
        let runs = if text.is_empty() {
            Vec::new()
        } else {
            self.tags_for(&text, insert).0
        };
        self.files.insert(
            file.to_string(),
            FileLedger {
                text,
                runs,
                hint: (0, 0),
            },
        );
        Ok(())
    }

    pub fn rename(&mut self, file: &str, new_file: &str) -> Result<(), &'static str> {
        if !self.files.contains_key(file) {
            return Err("unknown_file");
        }
        if self.files.contains_key(new_file) {
            return Err("file_exists");
        }
        let f = self.files.remove(file).unwrap_or_default();
        self.files.insert(new_file.to_string(), f);
        Ok(())
    }

    pub fn delete(&mut self, file: &str) -> Result<(), &'static str> {
        let f = self.files.remove(file).ok_or("unknown_file")?;
        self.remember(Chunk {
            text: f.text,
            runs: f.runs,
        });
        Ok(())
    }

    /// The final files, sorted by path.
    pub fn submitted(&self) -> Vec<SubmittedFile> {
        self.files
            .iter()
            .map(|(path, f)| SubmittedFile {
                path: path.clone(),
                content: String::from_utf16_lossy(&f.text),
            })
            .collect()
    }

    /// Calls `visit(path, tag, chars)` for every run of every file, counting Unicode scalar values.
    pub fn for_each_run(&self, mut visit: impl FnMut(&str, Tag, u64)) {
        for (path, f) in &self.files {
            let mut at = 0usize;
            for run in &f.runs {
                let end = at + run.len as usize;
                visit(path, run.tag, chars_in(&f.text[at..end]));
                at = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn runs_agree_with_a_tag_per_unit_model_under_random_edits() {
        let mut rng = StdRng::seed_from_u64(5);
        let origins = [
            Origin::Typed,
            Origin::Autocompleted,
            Origin::Other,
            Origin::Unattributed,
        ];
        let starter = "abcdefghij\n".repeat(30);
        let mut ledger = Ledger::new(&[SubmittedFile {
            path: "f".into(),
            content: starter.clone(),
        }]);
        let mut model: Vec<(u16, Origin)> = starter
            .encode_utf16()
            .map(|u| (u, Origin::Starter))
            .collect();
        for step in 0..3000 {
            // Mostly local edits near a wandering cursor, sometimes anywhere.
            let len = model.len();
            let pos = if step % 7 == 0 {
                rng.random_range(0..=len)
            } else {
                (len / 2 + rng.random_range(0..20)).min(len)
            };
            let del = rng.random_range(0..4usize).min(len - pos);
            let ins: String = (0..rng.random_range(0..4))
                .map(|_| if rng.random::<f64>() < 0.2 { 'é' } else { 'x' })
                .collect();
            let origin = origins[rng.random_range(0..origins.len())];
            ledger
                .edit(
                    "f",
                    pos as i64,
                    del as i64,
                    &ins,
                    Insert::Tagged(Tag::new(origin, 0)),
                )
                .unwrap();
            model.splice(pos..pos + del, ins.encode_utf16().map(|u| (u, origin)));
            let f = &ledger.files["f"];
            assert!(f.runs.iter().all(|r| r.len > 0));
            assert!(
                f.runs.windows(2).all(|w| w[0].tag != w[1].tag),
                "runs are merged"
            );
            let expanded: Vec<Origin> = f
                .runs
                .iter()
                .flat_map(|r| std::iter::repeat_n(r.tag.origin, r.len as usize))
                .collect();
            let expected: Vec<Origin> = model.iter().map(|(_, o)| *o).collect();
            assert_eq!(expanded, expected, "step {step}");
            assert!(f.text.iter().copied().eq(model.iter().map(|(u, _)| *u)));
        }
    }
}
