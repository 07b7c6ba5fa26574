//! A small lexer for the task languages, and the normalisation used by fingerprinting.
//!
//! One set of rules with per-language switches: comments and whitespace are dropped; identifiers
//! become one token class and every literal (number, string of any quoting, template literal,
//! SQL parameter) another; keywords (a merged set per language, including the predeclared names a
//! rename never touches: `nil`, `self`, `string`, `len`, ...) and punctuation are kept as
//! themselves. SQL keywords are compared case-insensitively.

use std::ops::Range;

/// The language a file is lexed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Python,
    Go,
    TypeScript,
    Sql,
    /// Unknown extensions: C-like rules (`//` and `/* */` comments, `'` `"` and backtick strings).
    Generic,
}

/// The language of a path, or `None` for files that are not compared: prose and configuration
/// (markdown, text, YAML, JSON, TOML, lock and module files), where shared structure says little.
pub fn lang_of(path: &str) -> Option<Lang> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_string(),
        None => String::new(),
    };
    match ext.as_str() {
        "py" | "pyi" => Some(Lang::Python),
        "go" => Some(Lang::Go),
        "ts" | "tsx" | "js" | "jsx" | "mjs" | "cjs" | "mts" | "cts" => Some(Lang::TypeScript),
        "sql" => Some(Lang::Sql),
        "md" | "markdown" | "txt" | "rst" | "yaml" | "yml" | "json" | "toml" | "lock" | "sum"
        | "mod" | "csv" | "ini" | "cfg" | "env" => None,
        _ => Some(Lang::Generic),
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Ident,
    Keyword,
    /// Numbers, strings, template literals, SQL parameters (`$1`).
    Literal,
    Punct,
}

/// One token of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte range in the file.
    pub span: Range<usize>,
    /// 1-based line of the token's first byte.
    pub line: u32,
    /// Hash of the normalised token (identifier class, literal class, or the keyword/punct text).
    pub norm: u64,
}

const PYTHON_KEYWORDS: &[&str] = &[
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    "match",
    "case",
    "self",
    "cls",
    "super",
    "len",
    "range",
    "isinstance",
    "dict",
    "list",
    "set",
    "str",
    "int",
    "float",
    "bool",
    "tuple",
    "print",
    "Exception",
    "object",
];

const GO_KEYWORDS: &[&str] = &[
    "break",
    "case",
    "chan",
    "const",
    "continue",
    "default",
    "defer",
    "else",
    "fallthrough",
    "for",
    "func",
    "go",
    "goto",
    "if",
    "import",
    "interface",
    "map",
    "package",
    "range",
    "return",
    "select",
    "struct",
    "switch",
    "type",
    "var",
    "nil",
    "true",
    "false",
    "error",
    "string",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "bool",
    "byte",
    "rune",
    "any",
    "len",
    "cap",
    "make",
    "new",
    "append",
    "panic",
    "recover",
    "copy",
    "delete",
    "close",
    "min",
    "max",
];

const TS_KEYWORDS: &[&str] = &[
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "import",
    "in",
    "instanceof",
    "new",
    "null",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
    "let",
    "static",
    "implements",
    "interface",
    "private",
    "protected",
    "public",
    "as",
    "async",
    "await",
    "from",
    "of",
    "type",
    "readonly",
    "declare",
    "keyof",
    "abstract",
    "string",
    "number",
    "boolean",
    "any",
    "unknown",
    "never",
    "undefined",
    "object",
];

const SQL_KEYWORDS: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "null",
    "is",
    "in",
    "as",
    "on",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "cross",
    "group",
    "by",
    "order",
    "having",
    "limit",
    "offset",
    "insert",
    "into",
    "values",
    "update",
    "set",
    "delete",
    "create",
    "table",
    "index",
    "unique",
    "primary",
    "key",
    "foreign",
    "references",
    "default",
    "check",
    "constraint",
    "alter",
    "add",
    "drop",
    "column",
    "if",
    "exists",
    "returning",
    "with",
    "distinct",
    "case",
    "when",
    "then",
    "else",
    "end",
    "union",
    "all",
    "except",
    "intersect",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "true",
    "false",
    "between",
    "like",
    "ilike",
    "cast",
    "interval",
    "begin",
    "commit",
    "rollback",
    "transaction",
    "for",
    "skip",
    "locked",
    "nowait",
    "lateral",
    "using",
    "concurrently",
    "materialized",
    "view",
    "generated",
    "always",
    "identity",
    "text",
    "bigint",
    "integer",
    "int",
    "smallint",
    "boolean",
    "timestamptz",
    "timestamp",
    "date",
    "jsonb",
    "json",
    "numeric",
    "double",
    "precision",
    "char",
    "varchar",
    "serial",
    "bigserial",
    "trigger",
    "function",
    "returns",
    "language",
    "plpgsql",
    "declare",
    "return",
    "new",
    "old",
    "coalesce",
    "count",
    "sum",
    "min",
    "max",
    "now",
    "lower",
    "upper",
    "partition",
    "over",
    "row_number",
    "filter",
    "include",
    "zone",
    "at",
    "time",
    "conflict",
    "do",
    "nothing",
    "replace",
    "analyze",
    "vacuum",
    "explain",
    "rename",
    "to",
    "type",
    "enum",
    "cascade",
    "restrict",
    "only",
    "array",
    "any",
    "some",
    "least",
    "greatest",
    "extract",
    "date_trunc",
    "gin",
    "btree",
    "brin",
    "hash",
    "deferrable",
    "initially",
    "deferred",
];

const GENERIC_KEYWORDS: &[&str] = &[
    "if", "else", "for", "while", "do", "return", "break", "continue", "switch", "case", "default",
    "function", "fn", "func", "def", "class", "struct", "enum", "new", "this", "self", "null",
    "nil", "None", "true", "false", "try", "catch", "throw", "const", "let", "var", "static",
    "public", "private", "void", "int", "char", "float", "double", "long", "import", "package",
    "use", "mut", "pub", "impl", "match", "in", "and", "or", "not",
];

/// Multi-character operators, longest first.
const OPERATORS: &[&str] = &[
    ">>>=", "===", "!==", "...", "**=", "<<=", ">>=", "&&=", "||=", "??=", "&^=", "==", "!=", "<=",
    ">=", "=>", "->", ":=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=",
    "|=", "^=", "<<", ">>", "**", "::", "<-", "&^", "//",
];

fn keywords(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => PYTHON_KEYWORDS,
        Lang::Go => GO_KEYWORDS,
        Lang::TypeScript => TS_KEYWORDS,
        Lang::Sql => SQL_KEYWORDS,
        Lang::Generic => GENERIC_KEYWORDS,
    }
}

/// Whether `word` is a keyword (or kept predeclared name) of `lang`.
pub fn is_keyword(lang: Lang, word: &str) -> bool {
    if lang == Lang::Sql {
        let lower = word.to_ascii_lowercase();
        SQL_KEYWORDS.contains(&lower.as_str())
    } else {
        keywords(lang).contains(&word)
    }
}

/// 64-bit FNV-1a: stable across processes and releases (fingerprints are stored).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

const IDENT_CLASS: &[u8] = b"\x01ident";
const LITERAL_CLASS: &[u8] = b"\x01literal";

fn is_ident_start(b: u8, lang: Lang) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 || (b == b'$' && lang != Lang::Sql)
}

fn is_ident_continue(b: u8, lang: Lang) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 || (b == b'$' && lang != Lang::Sql)
}

/// Lexes one file. Never fails: unterminated strings and comments end at the end of the file
/// (strings on one line end at the end of the line).
pub fn lex(source: &str, lang: Lang) -> Vec<Token> {
    let s = source.as_bytes();
    let n = s.len();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut line: u32 = 1;
    let push = |tokens: &mut Vec<Token>, kind: TokenKind, span: Range<usize>, line: u32| {
        let norm = match kind {
            TokenKind::Ident => fnv1a(IDENT_CLASS),
            TokenKind::Literal => fnv1a(LITERAL_CLASS),
            TokenKind::Keyword if lang == Lang::Sql => {
                fnv1a(source[span.clone()].to_ascii_lowercase().as_bytes())
            }
            TokenKind::Keyword | TokenKind::Punct => fnv1a(&s[span.clone()]),
        };
        tokens.push(Token {
            kind,
            span,
            line,
            norm,
        });
    };
    // Counts the newlines in s[from..to] into `line`.
    let count_lines =
        |from: usize, to: usize| s[from..to].iter().filter(|&&b| b == b'\n').count() as u32;

    while i < n {
        let b = s[i];
        let next = if i + 1 < n { s[i + 1] } else { 0 };
        if b == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // Comments.
        let line_comment = match lang {
            Lang::Python => b == b'#',
            Lang::Sql => b == b'-' && next == b'-',
            Lang::Go | Lang::TypeScript | Lang::Generic => b == b'/' && next == b'/',
        };
        if line_comment {
            while i < n && s[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b == b'/' && next == b'*' && lang != Lang::Python {
            let start = i;
            i += 2;
            while i < n && !(s[i] == b'*' && i + 1 < n && s[i + 1] == b'/') {
                i += 1;
            }
            i = (i + 2).min(n);
            line += count_lines(start, i);
            continue;
        }
        let start = i;
        let start_line = line;
        // Strings.
        if b == b'"' || b == b'\'' || b == b'`' {
            let end = scan_string(s, i, lang);
            line += count_lines(start, end);
            i = end;
            let kind = if lang == Lang::Sql && b == b'"' {
                TokenKind::Ident // a quoted SQL identifier
            } else {
                TokenKind::Literal
            };
            push(&mut tokens, kind, start..end, start_line);
            continue;
        }
        // SQL parameters ($1) and dollar-quoted strings ($$...$$, $tag$...$tag$).
        if lang == Lang::Sql && b == b'$' {
            if next.is_ascii_digit() {
                i += 1;
                while i < n && s[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                let mut j = i + 1;
                while j < n && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
                    j += 1;
                }
                if j < n && s[j] == b'$' {
                    let tag = &s[i..=j];
                    let mut k = j + 1;
                    while k < n && !s[k..].starts_with(tag) {
                        k += 1;
                    }
                    i = (k + tag.len()).min(n);
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i);
            push(&mut tokens, TokenKind::Literal, start..i, start_line);
            continue;
        }
        // Numbers.
        if b.is_ascii_digit() || (b == b'.' && next.is_ascii_digit()) {
            i += 1;
            while i < n {
                let c = s[i];
                let digit_next = i + 1 < n && s[i + 1].is_ascii_digit();
                let part = c.is_ascii_alphanumeric()
                    || c == b'_'
                    || (c == b'.' && digit_next)
                    || ((c == b'+' || c == b'-')
                        && matches!(s[i - 1], b'e' | b'E')
                        && digit_next
                        && !(s[start..i].starts_with(b"0x") || s[start..i].starts_with(b"0X")));
                if !part {
                    break;
                }
                i += 1;
            }
            push(&mut tokens, TokenKind::Literal, start..i, start_line);
            continue;
        }
        // Identifiers and keywords (and Python's prefixed strings: f"...", rb'...').
        if is_ident_start(b, lang) {
            while i < n && is_ident_continue(s[i], lang) {
                i += 1;
            }
            let word = &source[start..i];
            if lang == Lang::Python
                && i < n
                && (s[i] == b'"' || s[i] == b'\'')
                && word.len() <= 2
                && word
                    .bytes()
                    .all(|c| matches!(c.to_ascii_lowercase(), b'r' | b'b' | b'f' | b'u'))
            {
                let end = scan_string(s, i, lang);
                line += count_lines(i, end);
                i = end;
                push(&mut tokens, TokenKind::Literal, start..end, start_line);
                continue;
            }
            let kind = if is_keyword(lang, word) {
                TokenKind::Keyword
            } else {
                TokenKind::Ident
            };
            push(&mut tokens, kind, start..i, start_line);
            continue;
        }
        // Punctuation: longest operator first, else one character (a whole UTF-8 scalar).
        let op = OPERATORS
            .iter()
            .find(|op| s[i..].starts_with(op.as_bytes()));
        let len = match op {
            Some(op) => op.len(),
            None => source[i..].chars().next().map_or(1, char::len_utf8),
        };
        i += len;
        push(&mut tokens, TokenKind::Punct, start..i, start_line);
    }
    tokens
}

/// The end (exclusive) of the string starting with the quote at `i`.
fn scan_string(s: &[u8], i: usize, lang: Lang) -> usize {
    let n = s.len();
    let q = s[i];
    // Python triple-quoted strings.
    if lang == Lang::Python && i + 2 < n && s[i + 1] == q && s[i + 2] == q {
        let mut j = i + 3;
        while j < n {
            if s[j] == b'\\' {
                j += 2;
                continue;
            }
            if j + 2 < n && s[j] == q && s[j + 1] == q && s[j + 2] == q {
                return j + 3;
            }
            j += 1;
        }
        return n;
    }
    let multiline = q == b'`';
    let backslash_escapes = !(lang == Lang::Sql || (lang == Lang::Go && q == b'`'));
    let mut j = i + 1;
    let mut depth = 0usize; // `${ ... }` nesting inside a template literal
    while j < n {
        let c = s[j];
        if backslash_escapes && c == b'\\' {
            j += 2;
            continue;
        }
        if c == b'\n' && !multiline {
            return j;
        }
        if q == b'`' && lang != Lang::Go {
            if c == b'$' && j + 1 < n && s[j + 1] == b'{' {
                depth += 1;
                j += 2;
                continue;
            }
            if c == b'}' && depth > 0 {
                depth -= 1;
            }
        }
        if c == q && depth == 0 {
            // SQL doubles the quote to escape it.
            if lang == Lang::Sql && j + 1 < n && s[j + 1] == q {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    n.min(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str, lang: Lang) -> Vec<(TokenKind, String)> {
        lex(src, lang)
            .into_iter()
            .map(|t| (t.kind, src[t.span].to_string()))
            .collect()
    }

    #[test]
    fn go_comments_are_dropped_and_err_nil_keeps_its_keywords() {
        let got = kinds("// hi\nif err != nil { /* x */ return err }", Lang::Go);
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["if", "err", "!=", "nil", "{", "return", "err", "}"]);
        assert_eq!(got[1].0, TokenKind::Ident);
        assert_eq!(got[3].0, TokenKind::Keyword);
    }

    #[test]
    fn python_strings_of_every_kind_are_single_literals() {
        let src = "x = f\"a{b}\" + '''multi\nline''' + r'\\d' # c\ny = 1.5e-3";
        let got = kinds(src, Lang::Python);
        let lits = got.iter().filter(|(k, _)| *k == TokenKind::Literal).count();
        assert_eq!(lits, 4);
        let toks = lex(src, Lang::Python);
        assert_eq!(toks.last().unwrap().line, 3);
    }

    #[test]
    fn sql_double_dash_is_a_comment_and_keywords_ignore_case() {
        let a = lex("SELECT id FROM t WHERE x = $1; -- note", Lang::Sql);
        let b = lex("select id\nfrom t where x = 'it''s';", Lang::Sql);
        let na: Vec<u64> = a.iter().map(|t| t.norm).collect();
        let nb: Vec<u64> = b.iter().map(|t| t.norm).collect();
        assert_eq!(na, nb);
    }

    #[test]
    fn template_literals_with_interpolations_are_one_literal() {
        let got = kinds("const s = `a ${f(`x`)} b`;", Lang::TypeScript);
        assert_eq!(got.len(), 5);
        assert_eq!(got[3].0, TokenKind::Literal);
    }

    #[test]
    fn prose_and_configuration_are_not_lexed() {
        assert_eq!(lang_of("DESIGN.md"), None);
        assert_eq!(lang_of("openapi.yaml"), None);
        assert_eq!(lang_of("src/app.ts"), Some(Lang::TypeScript));
        assert_eq!(lang_of("Makefile"), Some(Lang::Generic));
    }
}
