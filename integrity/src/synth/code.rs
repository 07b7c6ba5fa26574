//! Synthetic solutions per task, and copies disguised with renames, reordering and dead code.
//!
//! A [`solution`] is assembled from a per-task pool of idioms ([`pools`]): every file is a
//! header, a random subset of units (top-level functions, types, statements) in a random order,
//! each unit one of several variants, with random choices inside, optional lines, shuffled
//! independent statements and per-solution names drawn from synonyms. Independent solutions of
//! the same task therefore share vocabulary and common idioms (the source of false positives in
//! real life) but differ in structure, helpers, ordering and details. Some files start from the
//! task's starter file, which the candidate extends (starter exclusion must remove it again).
//!
//! Template syntax: `«name»` a per-solution name (a synonym chosen once per solution),
//! `⟨a¦b¦c⟩` a random choice (nestable), a line starting with `?` is kept with probability ½,
//! consecutive lines starting with `%` are shuffled among themselves, and `⟦path:from-to⟧` is
//! replaced (before anything else) by lines `from` to `to` (1-based, inclusive) of the task's
//! starter file `path`, so code a candidate keeps comes from the catalogue's own files.

mod pools;

use std::borrow::Cow;
use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::similarity::lexer::{lang_of, lex, Lang, TokenKind};
use clarity_domain::session::SubmittedFile;

use self::pools::{FilePool, Unit};

/// Number of tasks with a pool (the catalogue's seven, in catalogue order).
pub const TASKS: usize = 7;

/// A plausible, independently written solution of `task` (0..7, catalogue order; taken modulo 7).
pub fn solution(rng: &mut StdRng, task: usize) -> Vec<SubmittedFile> {
    let pool = pools::task(task % TASKS);
    let names: HashMap<&str, String> = pool
        .names
        .iter()
        .map(|(logical, synonyms)| {
            let pick = synonyms[rng.random_range(0..synonyms.len())];
            (*logical, pick.to_string())
        })
        .collect();
    let starter = starter_files(task % TASKS);
    // How often this candidate adds a statement of their own (logging, metrics, assertions).
    let touch_rate = rng.random_range(0.15..0.45);
    pool.files
        .iter()
        .map(|f| {
            let content = render_file(rng, f, &names, &starter);
            let lang = lang_of(f.path).unwrap_or(Lang::Generic);
            SubmittedFile {
                path: f.path.to_string(),
                content: personal_touches(rng, &content, lang, touch_rate),
            }
        })
        .collect()
}

/// Statements individual candidates add between the pool's statements: logging, metrics,
/// assertions. Inserted after complete statements inside bodies, at the next statement's
/// indentation.
fn personal_touches(rng: &mut StdRng, text: &str, lang: Lang, rate: f64) -> String {
    let touches: &[&str] = match lang {
        Lang::TypeScript => &[
            "console.debug(\"step\", Date.now());",
            "metrics.increment(\"checkpoint\");",
            "if (process.env.DEBUG) console.log(\"trace\");",
            "logger.info({ at: \"here\" }, \"progress\");",
        ],
        Lang::Go => &[
            "slog.Debug(\"step\", \"at\", time.Now())",
            "metrics.Inc(\"checkpoint\")",
            "if debug {\n\tlog.Println(\"trace\")\n}",
        ],
        Lang::Python => &[
            "log.debug(\"step %s\", time.monotonic())",
            "metrics.incr(\"checkpoint\")",
            "assert True, \"invariant\"",
        ],
        Lang::Sql | Lang::Generic => return text.to_string(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let indent_of = |l: &str| -> String { l.chars().take_while(|c| c.is_whitespace()).collect() };
    let balanced = |l: &str| {
        let open = l.chars().filter(|c| "([{".contains(*c)).count();
        let close = l.chars().filter(|c| ")]}".contains(*c)).count();
        open == close
    };
    let mut out = String::with_capacity(text.len() + 256);
    let mut in_string = false; // inside a Python triple-quoted or TS/Go backtick string
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let quotes = line.matches("\"\"\"").count() + line.matches('`').count();
        if quotes % 2 == 1 {
            in_string = !in_string;
        }
        let Some(next) = lines.get(i + 1) else {
            continue;
        };
        let trimmed = line.trim_end();
        let indent = indent_of(line);
        let complete = match lang {
            Lang::TypeScript => trimmed.ends_with(';'),
            _ => {
                !trimmed.ends_with([',', '(', '[', '{', ':', '\\', '+', '=', '.'])
                    && !trimmed.trim_start().starts_with(['}', ')', '@', '#', '/'])
            }
        };
        let statement_next = next.starts_with(indent.as_str())
            && indent_of(next) == indent
            && next
                .trim_start()
                .starts_with(|c: char| c.is_ascii_alphabetic())
            && !next.trim_start().starts_with("else")
            && !next.trim_start().starts_with("elif")
            && !next.trim_start().starts_with("except")
            && !next.trim_start().starts_with("case")
            && !next.trim_start().starts_with("finally");
        if !in_string
            && !indent.is_empty()
            && complete
            && balanced(line)
            && statement_next
            && rng.random_bool(rate)
        {
            let touch = touches[rng.random_range(0..touches.len())];
            for t in touch.lines() {
                out.push_str(&indent);
                out.push_str(t);
                out.push('\n');
            }
        }
    }
    out
}

/// The starter files of a catalogue task.
pub fn starter_files(task: usize) -> Vec<SubmittedFile> {
    clarity_domain::catalogue::builtin()
        .into_iter()
        .nth(task % TASKS)
        .map(|e| {
            e.spec
                .tasks
                .into_iter()
                .flat_map(|t| t.starter_files)
                .map(|f| SubmittedFile {
                    path: f.path,
                    content: f.content,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn render_file(
    rng: &mut StdRng,
    f: &FilePool,
    names: &HashMap<&str, String>,
    starter: &[SubmittedFile],
) -> String {
    let mut out = String::new();
    let base = f
        .extends_starter
        .then(|| starter.iter().find(|s| s.path == f.path))
        .flatten();
    if let Some(base) = base {
        // The candidate keeps the starter file, drops some of its TODO stubs and adds code.
        for line in base.content.lines() {
            let stub = line.contains("TODO") || line.contains("NotImplementedError");
            if stub && rng.random_bool(0.6) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    } else {
        out.push_str(&expand_quoting(rng, f.header, names, starter));
        out.push('\n');
    }
    let mut units: Vec<&Unit> = f
        .units
        .iter()
        .filter(|u| u.required || rng.random_bool(0.65))
        .collect();
    if f.reorder {
        units.shuffle(rng);
    }
    let lang = lang_of(f.path).unwrap_or(Lang::Generic);
    let mut chunks: Vec<String> = units
        .iter()
        .map(|u| expand_quoting(rng, u.variants, names, starter))
        .collect();
    // Generic helpers some candidates write and others don't.
    let helpers = pools::helpers(lang);
    if !helpers.is_empty() && f.reorder {
        for _ in 0..rng.random_range(0..3) {
            let at = rng.random_range(0..=chunks.len());
            chunks.insert(at, expand_one(rng, helpers, names));
        }
    }
    for chunk in chunks {
        out.push_str(chunk.trim_end());
        out.push_str("\n\n");
    }
    if !f.footer.is_empty() {
        out.push_str(&expand_quoting(rng, f.footer, names, starter));
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn expand_one(rng: &mut StdRng, variants: &[&str], names: &HashMap<&str, String>) -> String {
    let template = pick(rng, variants);
    expand(rng, template, names)
}

/// [`expand_one`] for a file's templates, which may quote the task's starter files.
fn expand_quoting(
    rng: &mut StdRng,
    variants: &[&str],
    names: &HashMap<&str, String>,
    starter: &[SubmittedFile],
) -> String {
    let template = pick(rng, variants);
    expand(rng, &quote_starter(template, starter), names)
}

/// Replaces every `⟦path:from-to⟧` with lines `from..=to` (1-based) of the starter file `path`.
/// The pools are fixed, so a quote that does not resolve is a bug in them: it panics.
fn quote_starter<'a>(template: &'a str, starter: &[SubmittedFile]) -> Cow<'a, str> {
    if !template.contains('⟦') {
        return Cow::Borrowed(template);
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('⟦') {
        out.push_str(&rest[..open]);
        let inner = &rest[open + '⟦'.len_utf8()..];
        let close = inner.find('⟧').expect("a starter quote is closed");
        let (path, range) = inner[..close]
            .rsplit_once(':')
            .expect("a starter quote is `path:from-to`");
        let (from, to) = range
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .expect("a starter quote's lines are `from-to`");
        let file = starter
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no starter file `{path}` to quote"));
        let lines: Vec<&str> = file.content.lines().collect();
        assert!(
            1 <= from && from <= to && to <= lines.len(),
            "`{path}` has no lines {range}"
        );
        out.push_str(&lines[from - 1..to].join("\n"));
        rest = &inner[close + '⟧'.len_utf8()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn pick<'a>(rng: &mut StdRng, variants: &[&'a str]) -> &'a str {
    if variants.is_empty() {
        ""
    } else {
        variants[rng.random_range(0..variants.len())]
    }
}

/// Expands a template: names, choices, then optional and shuffled lines.
pub fn expand(rng: &mut StdRng, template: &str, names: &HashMap<&str, String>) -> String {
    let chars: Vec<char> = template
        .strip_prefix('\n')
        .unwrap_or(template)
        .chars()
        .collect();
    let mut text = String::new();
    expand_into(rng, &chars, names, &mut text);
    arrange_lines(rng, &text)
}

fn expand_into(rng: &mut StdRng, chars: &[char], names: &HashMap<&str, String>, out: &mut String) {
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '«' => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '»')
                    .map_or(chars.len(), |p| i + p);
                let name: String = chars[i + 1..end].iter().collect();
                match names.get(name.as_str()) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&name),
                }
                i = end + 1;
            }
            '⟨' => {
                // Split the top-level alternatives up to the matching close.
                let mut depth = 0;
                let mut alts: Vec<(usize, usize)> = Vec::new();
                let mut from = i + 1;
                let mut j = i + 1;
                while j < chars.len() {
                    match chars[j] {
                        '⟨' => depth += 1,
                        '⟩' if depth == 0 => break,
                        '⟩' => depth -= 1,
                        '¦' if depth == 0 => {
                            alts.push((from, j));
                            from = j + 1;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                alts.push((from, j.min(chars.len())));
                let (a, b) = alts[rng.random_range(0..alts.len())];
                expand_into(rng, &chars[a..b], names, out);
                i = j + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn arrange_lines(rng: &mut StdRng, text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut group: Vec<String> = Vec::new();
    let flush = |group: &mut Vec<String>, out: &mut Vec<String>, rng: &mut StdRng| {
        group.shuffle(rng);
        out.append(group);
    };
    for line in text.lines() {
        let mut rest = line;
        let mut optional = false;
        let mut shuffled = false;
        loop {
            if let Some(r) = rest.strip_prefix('?') {
                optional = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix('%') {
                shuffled = true;
                rest = r;
            } else {
                break;
            }
        }
        if !shuffled {
            flush(&mut group, &mut out, rng);
        }
        if optional && rng.random_bool(0.5) {
            continue;
        }
        if shuffled {
            group.push(rest.to_string());
        } else {
            out.push(rest.to_string());
        }
    }
    flush(&mut group, &mut out, rng);
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// How a copy is disguised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disguise {
    /// Rename the identifiers the files declare, consistently across files.
    pub rename: bool,
    /// Reorder top-level functions and blocks within each file.
    pub reorder: bool,
    /// Insert unused helpers and no-op statements.
    pub dead_code: bool,
}

impl Disguise {
    pub const ALL: Disguise = Disguise {
        rename: true,
        reorder: true,
        dead_code: true,
    };
}

/// A disguised copy of `files`.
pub fn disguise(rng: &mut StdRng, files: &[SubmittedFile], how: Disguise) -> Vec<SubmittedFile> {
    let mut out: Vec<SubmittedFile> = files.to_vec();
    if how.rename {
        let mut map: HashMap<String, String> = HashMap::new();
        for f in &out {
            if let Some(lang) = lang_of(&f.path) {
                for name in declared_names(&f.content, lang) {
                    let len = map.len();
                    map.entry(name).or_insert_with(|| fresh_name(rng, len));
                }
            }
        }
        for f in &mut out {
            if let Some(lang) = lang_of(&f.path) {
                f.content = rename(&f.content, lang, &map);
            }
        }
    }
    if how.reorder {
        for f in &mut out {
            if let Some(lang) = lang_of(&f.path) {
                let mut blocks = split_blocks(&f.content, lang);
                let movable: Vec<usize> = (0..blocks.len()).filter(|&i| blocks[i].1).collect();
                let mut order = movable.clone();
                order.shuffle(rng);
                let texts: Vec<String> = order.iter().map(|&i| blocks[i].0.clone()).collect();
                for (slot, text) in movable.iter().zip(texts) {
                    blocks[*slot].0 = text;
                }
                f.content = join_blocks(blocks.into_iter().map(|b| b.0).collect());
            }
        }
    }
    if how.dead_code {
        for f in &mut out {
            if let Some(lang) = lang_of(&f.path) {
                f.content = insert_dead_code(rng, &f.content, lang);
            }
        }
    }
    out
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "ze", "pi", "sa", "do", "fe", "gu", "hi", "jo", "bel",
];

fn fresh_name(rng: &mut StdRng, n: usize) -> String {
    let parts = rng.random_range(2..4);
    let mut s: String = (0..parts)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect();
    s.push_str(&n.to_string());
    s
}

/// Identifiers the file declares: after a declaring keyword, or assigned at the start of a
/// statement (`x := `, `x = ` in Python), plus function parameters' names are left alone.
fn declared_names(src: &str, lang: Lang) -> Vec<String> {
    let tokens = lex(src, lang);
    let text = |i: usize| &src[tokens[i].span.clone()];
    let mut names = Vec::new();
    for i in 0..tokens.len() {
        if tokens[i].kind != TokenKind::Ident {
            continue;
        }
        let prev = if i > 0 { Some(text(i - 1)) } else { None };
        let next = tokens.get(i + 1).map(|_| text(i + 1));
        if lang == Lang::Sql {
            // Index, view and table names, and aliases (`AS x`, `FROM orders o`).
            let lower = |j: usize| text(j).to_ascii_lowercase();
            let before = |n: usize| if i >= n { lower(i - n) } else { String::new() };
            let declared = matches!(before(1).as_str(), "index" | "view" | "as")
                || (matches!(before(1).as_str(), "concurrently" | "exists")
                    && next.is_some_and(|t| t.eq_ignore_ascii_case("on")))
                || (i >= 2
                    && tokens[i - 1].kind == TokenKind::Ident
                    && matches!(before(2).as_str(), "from" | "join"));
            if declared {
                names.push(text(i).to_string());
            }
            continue;
        }
        let declared = match prev {
            Some(
                "def" | "class" | "func" | "function" | "const" | "let" | "var" | "type"
                | "interface",
            ) => true,
            // Go methods: func (r *T) Name(
            Some(")") => {
                lang == Lang::Go
                    && next == Some("(")
                    && tokens[..i]
                        .iter()
                        .rev()
                        .take(8)
                        .any(|t| &src[t.span.clone()] == "func")
            }
            _ => false,
        } || next == Some(":=")
            || (lang == Lang::Python
                && next == Some("=")
                && (i == 0 || tokens[i - 1].line < tokens[i].line));
        if declared && !text(i).starts_with("__") && text(i) != "_" {
            names.push(text(i).to_string());
        }
    }
    names
}

fn rename(src: &str, lang: Lang, map: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for t in lex(src, lang) {
        if t.kind != TokenKind::Ident {
            continue;
        }
        if let Some(new) = map.get(&src[t.span.clone()]) {
            out.push_str(&src[at..t.span.start]);
            out.push_str(new);
            at = t.span.end;
        }
    }
    out.push_str(&src[at..]);
    out
}

/// Splits a file into top-level blocks: `(text, movable)`. Movable blocks are function, type and
/// class definitions (with the comments and decorators above them) and SQL statements.
fn split_blocks(src: &str, lang: Lang) -> Vec<(String, bool)> {
    let lines: Vec<&str> = src.lines().collect();
    // Brace depth at the start of each line, from the lexer (braces in strings do not count).
    let mut depth_at = vec![0i32; lines.len() + 1];
    let mut delta = vec![0i32; lines.len() + 2];
    for t in lex(src, lang) {
        if t.kind == TokenKind::Punct {
            let line = t.line as usize;
            match &src[t.span.clone()] {
                "{" | "(" | "[" => delta[line] += 1,
                "}" | ")" | "]" => delta[line] -= 1,
                _ => {}
            }
        }
    }
    for i in 0..lines.len() {
        depth_at[i + 1] = depth_at[i] + delta[i + 1];
    }
    let starts = |i: usize| -> bool {
        let l = lines[i];
        if depth_at[i] != 0 || l.starts_with(char::is_whitespace) || l.is_empty() {
            return false;
        }
        let first = l
            .split(|c: char| !c.is_alphanumeric() && c != '@')
            .next()
            .unwrap_or("");
        match lang {
            Lang::Python => matches!(first, "def" | "class" | "async" | "@"),
            Lang::Sql => lex(l, lang)
                .first()
                .is_some_and(|t| t.kind == TokenKind::Keyword),
            _ => matches!(
                first,
                "func" | "type" | "function" | "export" | "class" | "interface" | "async"
            ),
        }
    };
    let mut blocks: Vec<(String, bool)> = Vec::new();
    let mut current = String::new();
    let mut movable = false;
    let mut i = 0;
    while i < lines.len() {
        if starts(i) || (lines[i].starts_with('@') && lang == Lang::Python && depth_at[i] == 0) {
            // Attach the comment lines just above to the new block.
            let mut attached: Vec<String> = Vec::new();
            while let Some(last) = current.lines().last().map(str::to_string) {
                let comment =
                    last.starts_with("//") || last.starts_with('#') || last.starts_with("--");
                if !comment {
                    break;
                }
                let cut = current.trim_end_matches('\n').len() - last.len();
                current.truncate(cut);
                attached.insert(0, last);
            }
            if !current.trim().is_empty() {
                blocks.push((current.clone(), movable));
            }
            current = attached.iter().map(|l| format!("{l}\n")).collect();
            movable = true;
            // Decorators and the definition they decorate stay together.
            while i < lines.len() && lines[i].starts_with('@') {
                current.push_str(lines[i]);
                current.push('\n');
                i += 1;
            }
            if i < lines.len() {
                current.push_str(lines[i]);
                current.push('\n');
                i += 1;
            }
            continue;
        }
        // A non-indented statement after a Python definition ends it.
        if lang == Lang::Python
            && movable
            && !lines[i].is_empty()
            && !lines[i].starts_with(char::is_whitespace)
            && !lines[i].starts_with('#')
            && depth_at[i] == 0
        {
            blocks.push((current.clone(), movable));
            current.clear();
            movable = false;
        }
        current.push_str(lines[i]);
        current.push('\n');
        i += 1;
    }
    if !current.trim().is_empty() {
        blocks.push((current, movable));
    }
    blocks
}

fn join_blocks(blocks: Vec<String>) -> String {
    let mut out = String::new();
    for b in blocks {
        out.push_str(b.trim_end());
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// Inserts unused helpers between top-level blocks and no-op statements at the start of blocks.
fn insert_dead_code(rng: &mut StdRng, src: &str, lang: Lang) -> String {
    let mut blocks: Vec<(String, bool)> = split_blocks(src, lang);
    let pool = pools::dead_code(lang);
    let extra = rng.random_range(1..4);
    for _ in 0..extra {
        let first_movable = blocks.iter().position(|b| b.1).unwrap_or(blocks.len());
        let at = rng.random_range(first_movable..=blocks.len());
        let n = rng.random_range(0..1000);
        let names: HashMap<&str, String> = HashMap::from([("dead", fresh_name(rng, n))]);
        let text = expand_one(rng, pool, &names);
        blocks.insert(at, (text, true));
    }
    let no_op = |rng: &mut StdRng, indent: &str| -> String {
        let n = rng.random_range(0..100);
        match lang {
            Lang::Python => format!("{indent}_ = {n}"),
            Lang::Go => format!("{indent}_ = {n}"),
            Lang::TypeScript => format!("{indent}void {n};"),
            Lang::Sql => String::new(),
            Lang::Generic => format!("{indent};"),
        }
    };
    let mut out = String::new();
    let text = join_blocks(blocks.into_iter().map(|b| b.0).collect());
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        let opens = match lang {
            Lang::Python => {
                line.trim_start().starts_with("def ") || line.trim_start().starts_with("async def ")
            }
            Lang::Go | Lang::TypeScript | Lang::Generic => {
                line.trim_start().starts_with("func ")
                    || line.trim_start().starts_with("function ")
                    || line.contains("=> {")
                    || line.trim_start().starts_with("if ") && line.ends_with('{')
            }
            Lang::Sql => false,
        };
        let opens = opens && (line.ends_with('{') || line.ends_with(':'));
        if opens && rng.random_bool(0.5) {
            let next = lines.get(i + 1).copied().unwrap_or("");
            let indent: String = next.chars().take_while(|c| c.is_whitespace()).collect();
            let stmt = no_op(rng, &indent);
            if !stmt.is_empty() && !indent.is_empty() {
                out.push_str(&stmt);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
