//! Lexical tag scanner: definitions of files not open in the editor, from one pass over the bytes (no parse tree).
//!
//! [`scan`] tokenizes a file once (skipping comments, strings, char literals, raw strings,
//! template literals and C preprocessor lines, pairing brackets on the way) and then walks
//! the token list per language, recognising definitions by keyword at item positions and
//! skipping function bodies by bracket matching (Python blocks by indentation). It follows
//! the conventions of `crate::analysis::symbols` (kinds, names, containers, one-line
//! signatures, ranges) and returns a flat list: `children` are empty, `container` is set.
//! It never panics: tokens and bytes are only read through `get`, recursion is bounded.

use memchr::{memchr, memchr_iter, memchr2, memchr3, memrchr};

use crate::analysis::text::{
    is_upper_case, line_breaks, one_line, one_line_full, prefixed, strip_quotes,
};
use crate::analysis::{Language, Span, Symbol, SymbolKind, TextPoint};

/// Maximum length of a signature in bytes (as in `analysis::symbols`).
/// How many nested containers (modules, classes, namespaces...) are followed.
const MAX_DEPTH: u32 = 48;
/// "No matching bracket".
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    Ident,
    Str,
    Num,
    Punct,
    Eof,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    start: u32,
    end: u32,
    line: u32,
    line_start: u32,
    /// For brackets: the index of the matching bracket (or `NONE`).
    pair: u32,
    kind: T,
    /// First byte of the token.
    b: u8,
}

const EOF: Tok = Tok {
    start: 0,
    end: 0,
    line: 0,
    line_start: 0,
    pair: NONE,
    kind: T::Eof,
    b: 0,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    Rust,
    Python,
    Js,
    Go,
    Java,
    C,
}

/// A `#define NAME value` line (C / C++).
struct Define {
    name: (u32, u32),
    start: u32,
    end: u32,
}

/// The definitions in `text`, flat (children empty, `container` set), sorted by position.
pub fn scan(language: Language, text: &str) -> Vec<Symbol> {
    scan_with(language, text, true)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// [`scan`] for the index: signatures are left empty and described by a [`SigSource`]
/// instead (read back from the file's text when needed).
pub(super) fn scan_for_index(language: Language, text: &str) -> Vec<(Symbol, SigSource)> {
    scan_with(language, text, false)
}

/// Where a symbol's one-line signature is read from in its file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigSource {
    /// The header at these bytes, collapsed, with a trailing `{` / `:` removed.
    Header(u32, u32),
    /// The first line of the text at these bytes, collapsed.
    FirstLine(u32, u32),
    /// Kept as text (prefixed signatures, open documents).
    Text(Box<str>),
}

impl SigSource {
    /// The signature, given the text of the file the symbol was found in.
    pub fn read(&self, file_text: &str) -> String {
        match self {
            SigSource::Header(s, e) => {
                one_line(file_text.get(*s as usize..*e as usize).unwrap_or(""), true)
            }
            SigSource::FirstLine(s, e) => {
                let all = file_text.get(*s as usize..*e as usize).unwrap_or("");
                one_line(all.split('\n').next().unwrap_or(""), false)
            }
            SigSource::Text(t) => t.to_string(),
        }
    }
}

fn scan_with(language: Language, text: &str, with_signatures: bool) -> Vec<(Symbol, SigSource)> {
    let fam = match language {
        Language::Rust => Fam::Rust,
        Language::Python => Fam::Python,
        Language::TypeScript | Language::Tsx | Language::JavaScript => Fam::Js,
        Language::Go => Fam::Go,
        Language::Java => Fam::Java,
        Language::C | Language::Cpp => Fam::C,
        Language::PlainText => return Vec::new(),
    };
    // Offsets are kept in u32; larger inputs are not indexed (the walk stops at 1 MiB).
    if u32::try_from(text.len()).is_err() {
        return Vec::new();
    }
    let mut lx = Lexer {
        fam,
        cpp: language == Language::Cpp,
        text: text.as_bytes(),
        toks: Vec::with_capacity(text.len() / 6 + 16),
        defines: Vec::new(),
        stack: Vec::new(),
        line: 0,
        line_start: 0,
        seen: 0,
    };
    lx.run();
    let Lexer { toks, defines, .. } = lx;
    let mut p = Parser {
        src: text,
        text: text.as_bytes(),
        toks: &toks,
        lang: language,
        out: Vec::new(),
        sigs: Vec::new(),
        with_signatures,
    };
    let n = toks.len();
    match fam {
        Fam::Rust => p.rust_items(0, n, None, false, 0),
        Fam::Python => p.py_block(0, n, None, false, 0),
        Fam::Js => p.js_items(0, n, None, Scope::Top, 0),
        Fam::Go => p.go_items(0, n),
        Fam::Java => p.java_body(0, n, None, JavaIn::Top, 0),
        Fam::C => p.c_body(0, n, None, false, 0),
    }
    for d in &defines {
        p.push_define(d);
    }
    let mut out: Vec<(Symbol, SigSource)> = p.out.into_iter().zip(p.sigs).collect();
    if !out.is_sorted_by_key(|s| s.0.range.start_byte) {
        out.sort_by_key(|s| s.0.range.start_byte);
    }
    out
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

struct Lexer<'a> {
    fam: Fam,
    cpp: bool,
    text: &'a [u8],
    toks: Vec<Tok>,
    defines: Vec<Define>,
    /// Open brackets not yet closed (token indices).
    stack: Vec<u32>,
    /// Line number and line start at byte `seen`.
    line: u32,
    line_start: usize,
    seen: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> u8 {
        self.text.get(i).copied().unwrap_or(0)
    }

    /// Moves the line counter to byte `pos` (forward only), counting newlines with memchr.
    fn seek(&mut self, pos: usize) {
        if pos <= self.seen {
            return;
        }
        let (count, after_last) = line_breaks(self.text, self.seen, pos);
        if let Some(line_start) = after_last {
            self.line = self.line.saturating_add(count);
            self.line_start = line_start;
        }
        self.seen = pos;
    }

    fn push(&mut self, kind: T, start: usize, end: usize) {
        self.seek(start);
        let b = self.at(start);
        let idx = self.toks.len() as u32;
        let mut tok = Tok {
            start: start as u32,
            end: end as u32,
            line: self.line,
            line_start: self.line_start as u32,
            pair: NONE,
            kind,
            b,
        };
        if kind == T::Punct {
            match b {
                b'(' | b'[' | b'{' => self.stack.push(idx),
                b')' | b']' | b'}' => {
                    let open = match b {
                        b')' => b'(',
                        b']' => b'[',
                        _ => b'{',
                    };
                    // Match the nearest opener of the same kind within a few levels;
                    // openers skipped over are closed here too.
                    let depth = self.stack.len();
                    let found = (0..depth.min(4)).find(|k| {
                        self.stack
                            .get(depth - 1 - k)
                            .and_then(|&o| self.toks.get(o as usize))
                            .is_some_and(|t| t.b == open)
                    });
                    if let Some(k) = found {
                        for _ in 0..=k {
                            if let Some(o) = self.stack.pop()
                                && let Some(t) = self.toks.get_mut(o as usize)
                            {
                                t.pair = idx;
                                if t.b == open {
                                    tok.pair = o;
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.toks.push(tok);
    }

    fn run(&mut self) {
        let n = self.text.len();
        let mut i = 0usize;
        while i < n {
            let b = self.at(i);
            match b {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => i += 1,
                b'/' if self.fam != Fam::Python && self.at(i + 1) == b'/' => {
                    i = self.line_end(i);
                }
                b'/' if self.fam != Fam::Python && self.at(i + 1) == b'*' => {
                    i = self.block_comment(i + 2);
                }
                b'#' if self.fam == Fam::Python => i = self.line_end(i),
                b'#' if self.fam == Fam::C && self.at_line_start(i) => i = self.directive(i),
                b'"' => {
                    let end = self.quoted(i + 1, b'"', self.fam != Fam::Rust);
                    let end = if self.fam == Fam::Python
                        && self.at(i + 1) == b'"'
                        && self.at(i + 2) == b'"'
                    {
                        self.triple(i + 3, b'"')
                    } else {
                        end
                    };
                    self.push(T::Str, i, end);
                    i = end;
                }
                b'\'' => match self.fam {
                    Fam::Python => {
                        let end = if self.at(i + 1) == b'\'' && self.at(i + 2) == b'\'' {
                            self.triple(i + 3, b'\'')
                        } else {
                            self.quoted(i + 1, b'\'', true)
                        };
                        self.push(T::Str, i, end);
                        i = end;
                    }
                    Fam::Rust => i = self.rust_quote(i),
                    _ => {
                        let end = self.quoted(i + 1, b'\'', true);
                        self.push(T::Str, i, end);
                        i = end;
                    }
                },
                b'`' if self.fam == Fam::Js => {
                    let end = self.template(i + 1, 0);
                    self.push(T::Str, i, end);
                    i = end;
                }
                b'`' if self.fam == Fam::Go => {
                    let end = memchr(b'`', self.text.get(i + 1..).unwrap_or(&[]))
                        .map_or(n, |p| i + 1 + p + 1);
                    self.push(T::Str, i, end);
                    i = end;
                }
                b'/' if self.fam == Fam::Js && self.regex_allowed() => {
                    let end = self.regex(i + 1);
                    match end {
                        Some(end) => {
                            self.push(T::Str, i, end);
                            i = end;
                        }
                        None => {
                            self.push(T::Punct, i, i + 1);
                            i += 1;
                        }
                    }
                }
                b'0'..=b'9' => {
                    let mut j = i + 1;
                    loop {
                        let c = self.at(j);
                        if is_ident_byte(c) || c == b'.' {
                            j += 1;
                        } else if c == b'\'' && self.cpp && self.at(j + 1).is_ascii_alphanumeric() {
                            j += 2;
                        } else {
                            break;
                        }
                    }
                    self.push(T::Num, i, j);
                    i = j;
                }
                _ if is_ident_start(b) => {
                    let mut j = i + 1;
                    while is_ident_byte(self.at(j)) {
                        j += 1;
                    }
                    i = self.ident(i, j);
                }
                _ => {
                    self.push(T::Punct, i, i + 1);
                    i += 1;
                }
            }
        }
        // Brackets left open close at the end of the file.
        let last = self.toks.len().saturating_sub(1) as u32;
        while let Some(o) = self.stack.pop() {
            if let Some(t) = self.toks.get_mut(o as usize) {
                t.pair = last;
            }
        }
    }

    /// An identifier at `i..j`, or a string prefix (`r#"…"#`, `b"…"`, `R"(…)"`...).
    fn ident(&mut self, i: usize, j: usize) -> usize {
        let word = self.text.get(i..j).unwrap_or(&[]);
        let next = self.at(j);
        match self.fam {
            Fam::Rust if matches!(word, b"r" | b"br" | b"cr") && (next == b'#' || next == b'"') => {
                let mut hashes = 0;
                while self.at(j + hashes) == b'#' {
                    hashes += 1;
                }
                if self.at(j + hashes) == b'"' {
                    let end = self.raw_string(j + hashes + 1, hashes);
                    self.push(T::Str, i, end);
                    return end;
                }
            }
            Fam::C if self.cpp && word.ends_with(b"R") && next == b'"' && word.len() <= 3 => {
                // R"delim( ... )delim"
                let start = j + 1;
                let rest = self.text.get(start..).unwrap_or(&[]);
                if let Some(p) = memchr(b'(', rest).filter(|&p| p <= 16) {
                    let delim = rest.get(..p).unwrap_or(&[]);
                    let mut close = Vec::with_capacity(delim.len() + 2);
                    close.push(b')');
                    close.extend_from_slice(delim);
                    close.push(b'"');
                    let body = rest.get(p + 1..).unwrap_or(&[]);
                    let end = memchr::memmem::find(body, &close)
                        .map_or(self.text.len(), |q| start + p + 1 + q + close.len());
                    self.push(T::Str, i, end);
                    return end;
                }
            }
            _ => {}
        }
        self.push(T::Ident, i, j);
        j
    }

    fn at_line_start(&self, i: usize) -> bool {
        let before = self.text.get(..i).unwrap_or(&[]);
        let from = memrchr(b'\n', before).map_or(0, |p| p + 1);
        before
            .get(from..)
            .is_some_and(|s| s.iter().all(|c| c.is_ascii_whitespace()))
    }

    /// The byte of the newline ending the line at `i` (or the end of the text).
    fn line_end(&self, i: usize) -> usize {
        memchr(b'\n', self.text.get(i..).unwrap_or(&[])).map_or(self.text.len(), |p| i + p)
    }

    /// After `/*`: the byte after the closing `*/` (nested in Rust).
    fn block_comment(&self, mut i: usize) -> usize {
        let n = self.text.len();
        if self.fam != Fam::Rust {
            return memchr::memmem::find(self.text.get(i..).unwrap_or(&[]), b"*/")
                .map_or(n, |p| i + p + 2);
        }
        let mut depth = 1u32;
        while i < n {
            let Some(p) = memchr2(b'*', b'/', self.text.get(i..).unwrap_or(&[])) else {
                return n;
            };
            i += p;
            match (self.at(i), self.at(i + 1)) {
                (b'*', b'/') => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return i;
                    }
                }
                (b'/', b'*') => {
                    depth = depth.saturating_add(1);
                    i += 2;
                }
                _ => i += 1,
            }
        }
        n
    }

    /// After an opening quote: the byte after the closing one. With `stop_at_newline`, an
    /// unescaped newline ends the literal too (unterminated strings do not run away).
    fn quoted(&self, mut i: usize, quote: u8, stop_at_newline: bool) -> usize {
        let n = self.text.len();
        while i < n {
            let Some(p) = memchr3(quote, b'\\', b'\n', self.text.get(i..).unwrap_or(&[])) else {
                return n;
            };
            i += p;
            match self.at(i) {
                b'\\' => i += 2,
                b'\n' if stop_at_newline => return i,
                b'\n' => i += 1,
                _ => return i + 1,
            }
        }
        n
    }

    /// Python `"""…"""` / `'''…'''` after the opening three quotes.
    fn triple(&self, mut i: usize, quote: u8) -> usize {
        let n = self.text.len();
        while i < n {
            let Some(p) = memchr2(quote, b'\\', self.text.get(i..).unwrap_or(&[])) else {
                return n;
            };
            i += p;
            if self.at(i) == b'\\' {
                i += 2;
            } else if self.at(i + 1) == quote && self.at(i + 2) == quote {
                return i + 3;
            } else {
                i += 1;
            }
        }
        n
    }

    /// Rust raw string body after `r##"`: the byte after `"##`.
    fn raw_string(&self, mut i: usize, hashes: usize) -> usize {
        let n = self.text.len();
        while i < n {
            let Some(p) = memchr(b'"', self.text.get(i..).unwrap_or(&[])) else {
                return n;
            };
            i += p + 1;
            if (0..hashes).all(|k| self.at(i + k) == b'#') {
                return i + hashes;
            }
        }
        n
    }

    /// Rust `'`: a char literal (`'a'`, `'\n'`, `'\u{1F600}'`) or a lifetime / label.
    fn rust_quote(&mut self, i: usize) -> usize {
        let next = self.at(i + 1);
        if next == b'\\' {
            let end = self.quoted(i + 1, b'\'', true);
            self.push(T::Str, i, end);
            return end;
        }
        // One UTF-8 char, then a closing quote: a char literal.
        let width = match next {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        if next != b'\'' && next != b'\n' && self.at(i + 1 + width) == b'\'' {
            self.push(T::Str, i, i + 2 + width);
            return i + 2 + width;
        }
        self.push(T::Punct, i, i + 1);
        i + 1
    }

    /// JavaScript template literal after the backtick: the byte after the closing one.
    fn template(&self, mut i: usize, depth: u32) -> usize {
        let n = self.text.len();
        while i < n {
            let Some(p) = memchr3(b'`', b'\\', b'$', self.text.get(i..).unwrap_or(&[])) else {
                return n;
            };
            i += p;
            match self.at(i) {
                b'`' => return i + 1,
                b'\\' => i += 2,
                _ if self.at(i + 1) == b'{' && depth < 16 => i = self.substitution(i + 2, depth),
                _ => i += 1,
            }
        }
        n
    }

    /// Inside `${`: the byte after the matching `}`.
    fn substitution(&self, mut i: usize, depth: u32) -> usize {
        let n = self.text.len();
        let mut braces = 0u32;
        while i < n {
            match self.at(i) {
                b'{' => braces += 1,
                b'}' => {
                    if braces == 0 {
                        return i + 1;
                    }
                    braces -= 1;
                }
                b'`' => {
                    i = self.template(i + 1, depth + 1);
                    continue;
                }
                q @ (b'"' | b'\'') => {
                    i = self.quoted(i + 1, q, true);
                    continue;
                }
                b'/' if self.at(i + 1) == b'/' => {
                    i = self.line_end(i);
                    continue;
                }
                b'/' if self.at(i + 1) == b'*' => {
                    i = self.block_comment(i + 2);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        n
    }

    /// Whether a `/` starts a regular expression (JavaScript), judged by the previous token.
    fn regex_allowed(&self) -> bool {
        let Some(prev) = self.toks.last() else {
            return true;
        };
        match prev.kind {
            T::Num | T::Str => false,
            T::Ident => {
                let w = self
                    .text
                    .get(prev.start as usize..prev.end as usize)
                    .unwrap_or(&[]);
                matches!(
                    w,
                    b"return"
                        | b"typeof"
                        | b"case"
                        | b"do"
                        | b"else"
                        | b"in"
                        | b"of"
                        | b"void"
                        | b"yield"
                        | b"await"
                        | b"delete"
                        | b"throw"
                        | b"new"
                        | b"instanceof"
                )
            }
            _ => !matches!(prev.b, b')' | b']' | b'}'),
        }
    }

    /// After the opening `/` of a regex: the byte after the flags, or `None` when the line
    /// ends first (then it was a division after all).
    fn regex(&self, mut i: usize) -> Option<usize> {
        let mut class = false;
        loop {
            match self.at(i) {
                b'\n' | 0 if i >= self.text.len() || self.at(i) == b'\n' => return None,
                b'\\' => i += 2,
                b'[' => {
                    class = true;
                    i += 1;
                }
                b']' => {
                    class = false;
                    i += 1;
                }
                b'/' if !class => {
                    i += 1;
                    while self.at(i).is_ascii_alphabetic() {
                        i += 1;
                    }
                    return Some(i);
                }
                _ => i += 1,
            }
        }
    }

    /// A C preprocessor line at `#`: records `#define NAME value`, skips the rest
    /// (with backslash continuations). Returns the byte of the ending newline.
    fn directive(&mut self, i: usize) -> usize {
        let n = self.text.len();
        let mut end = i;
        loop {
            let e = self.line_end(end);
            let mut k = e;
            while k > i && matches!(self.at(k - 1), b'\r') {
                k -= 1;
            }
            if k > i && self.at(k - 1) == b'\\' && e < n {
                end = e + 1;
                continue;
            }
            end = e;
            break;
        }
        let mut j = i + 1;
        while matches!(self.at(j), b' ' | b'\t') {
            j += 1;
        }
        if self.text.get(j..j + 6) == Some(b"define") && !is_ident_byte(self.at(j + 6)) {
            j += 6;
            while matches!(self.at(j), b' ' | b'\t') {
                j += 1;
            }
            let name_start = j;
            while is_ident_byte(self.at(j)) && j < end {
                j += 1;
            }
            // Object-like macros with a value only (`#define X(a)` and `#define X` are not constants).
            let has_value = self.at(j) != b'(' && {
                let rest = self.text.get(j..end).unwrap_or(&[]);
                rest.iter().any(|c| !c.is_ascii_whitespace() && *c != b'\\')
            };
            if j > name_start && has_value && is_ident_start(self.at(name_start)) {
                // The range takes the newline too, as tree-sitter's `preproc_def` does.
                let range_end = if self.at(end) == b'\n' { end + 1 } else { end };
                self.defines.push(Define {
                    name: (name_start as u32, j as u32),
                    start: i as u32,
                    end: range_end as u32,
                });
            }
        }
        // `#if 0`: the block up to its `#else` / `#elif` / `#endif` is dead code.
        if self.text.get(j..j + 2) == Some(b"if") && {
            let rest = self.text.get(j + 2..end).unwrap_or(&[]);
            let rest = rest.trim_ascii();
            rest == b"0"
                || rest.starts_with(b"0 ")
                || rest.starts_with(b"0\t")
                || rest.starts_with(b"0/")
        } {
            return self.skip_if0(end);
        }
        // A block comment opened on the directive line runs on.
        if let Some(p) = memchr::memmem::find(self.text.get(i..end).unwrap_or(&[]), b"/*")
            && memchr::memmem::find(self.text.get(i + p + 2..end).unwrap_or(&[]), b"*/").is_none()
        {
            return self.block_comment(i + p + 2);
        }
        end
    }
}

impl Lexer<'_> {
    /// From the end of an `#if 0` line: the end of the line of the matching `#else`,
    /// `#elif` or `#endif` (nested conditionals counted).
    fn skip_if0(&self, mut i: usize) -> usize {
        let n = self.text.len();
        let mut depth = 0u32;
        while i < n {
            let line_start = i + 1;
            let line_end = self.line_end(line_start);
            let line = self
                .text
                .get(line_start..line_end)
                .unwrap_or(&[])
                .trim_ascii_start();
            if let Some(rest) = line.strip_prefix(b"#") {
                let word = rest.trim_ascii_start();
                if word.starts_with(b"if") {
                    depth += 1;
                } else if word.starts_with(b"endif")
                    || word.starts_with(b"else")
                    || word.starts_with(b"elif")
                {
                    if depth == 0 {
                        return line_end;
                    }
                    if word.starts_with(b"endif") {
                        depth -= 1;
                    }
                }
            }
            i = line_end;
        }
        n
    }
}

// ---------------------------------------------------------------------------
// Parser helpers
// ---------------------------------------------------------------------------

/// Where a definition's signature ends.
#[derive(Clone, Copy)]
enum SigEnd {
    /// At this byte (the start of the body).
    Body(usize),
    /// No body: the first line of the definition.
    FirstLine,
}

struct Parser<'a> {
    src: &'a str,
    text: &'a [u8],
    toks: &'a [Tok],
    lang: Language,
    out: Vec<Symbol>,
    /// Parallel to `out`.
    sigs: Vec<SigSource>,
    with_signatures: bool,
}

/// One definition to record.
struct Def<'n> {
    kind: SymbolKind,
    name: &'n str,
    /// First and last token of the name.
    sel: (usize, usize),
    /// First and last token of the whole definition.
    range: (usize, usize),
    sig_start: usize,
    sig: SigEnd,
}

impl<'a> Parser<'a> {
    fn t(&self, i: usize) -> Tok {
        self.toks.get(i).copied().unwrap_or(EOF)
    }

    fn word(&self, i: usize) -> &'a [u8] {
        let t = self.t(i);
        if t.kind != T::Ident {
            return &[];
        }
        self.text
            .get(t.start as usize..t.end as usize)
            .unwrap_or(&[])
    }

    fn is(&self, i: usize, w: &[u8]) -> bool {
        self.word(i) == w
    }

    fn p(&self, i: usize, c: u8) -> bool {
        let t = self.t(i);
        t.kind == T::Punct && t.b == c
    }

    fn ident(&self, i: usize) -> bool {
        self.t(i).kind == T::Ident
    }

    fn str_of(&self, i: usize) -> &'a str {
        let t = self.t(i);
        self.src.get(t.start as usize..t.end as usize).unwrap_or("")
    }

    /// `::` at `i` (two adjacent colons).
    fn path_sep(&self, i: usize) -> bool {
        self.p(i, b':') && self.p(i + 1, b':') && self.t(i).end == self.t(i + 1).start
    }

    /// Two adjacent punctuation tokens `a b` at `i` (`=>`, `->`).
    fn p2(&self, i: usize, a: u8, b: u8) -> bool {
        self.p(i, a) && self.p(i + 1, b) && self.t(i).end == self.t(i + 1).start
    }

    fn col(&self, i: usize) -> u32 {
        let t = self.t(i);
        t.start.saturating_sub(t.line_start)
    }

    /// Whether token `i` is the first on its line.
    fn first_on_line(&self, i: usize) -> bool {
        match i.checked_sub(1) {
            None => true,
            Some(prev) => self.t(prev).end <= self.t(i).line_start,
        }
    }

    /// The index of the bracket closing the one at `i` (or `i` itself when not a bracket).
    fn close(&self, i: usize) -> usize {
        let t = self.t(i);
        if t.kind == T::Punct && matches!(t.b, b'(' | b'[' | b'{') && t.pair != NONE {
            (t.pair as usize).max(i)
        } else {
            i
        }
    }

    fn is_open(&self, i: usize) -> bool {
        let t = self.t(i);
        t.kind == T::Punct && matches!(t.b, b'(' | b'[' | b'{')
    }

    /// From `i` (at `<`): the index of the matching `>` (not counting `->`, `=>`), skipping
    /// bracket groups, never past `b`.
    fn angles(&self, mut i: usize, b: usize) -> usize {
        let mut depth = 0u32;
        while i < b {
            let t = self.t(i);
            if t.kind == T::Punct {
                match t.b {
                    b'<' => depth += 1,
                    b'>' => {
                        let arrow =
                            i > 0 && (self.p2(i - 1, b'-', b'>') || self.p2(i - 1, b'=', b'>'));
                        if !arrow {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                return i;
                            }
                        }
                    }
                    b'(' | b'[' | b'{' => i = self.close(i),
                    b';' => return i.saturating_sub(1),
                    _ => {}
                }
            }
            i += 1;
        }
        b.saturating_sub(1)
    }

    /// From `i`: the first `{` (body) or `;` at this level, jumping `(`/`[` groups.
    /// Returns (body open, last token of the definition).
    fn to_body(&self, mut i: usize, b: usize) -> (Option<usize>, usize) {
        while i < b {
            let t = self.t(i);
            if t.kind == T::Punct {
                match t.b {
                    b'{' => return (Some(i), self.close(i).min(b.saturating_sub(1))),
                    b';' => return (None, i),
                    b'(' | b'[' => i = self.close(i),
                    b'}' => return (None, i.saturating_sub(1)),
                    _ => {}
                }
            }
            i += 1;
        }
        (None, b.saturating_sub(1))
    }

    /// From `i`: the `;` ending a statement, jumping all bracket groups.
    fn to_semi(&self, mut i: usize, b: usize) -> usize {
        while i < b {
            let t = self.t(i);
            if t.kind == T::Punct {
                match t.b {
                    b';' => return i,
                    b'(' | b'[' | b'{' => i = self.close(i),
                    b'}' | b')' | b']' => return i.saturating_sub(1),
                    _ => {}
                }
            }
            i += 1;
        }
        b.saturating_sub(1)
    }

    /// The end byte and point of token `i` (tokens may span lines: strings, comments).
    fn end_point(&self, i: usize) -> (usize, TextPoint) {
        let t = self.t(i);
        let (s, e) = (t.start as usize, t.end as usize);
        let mut line = t.line;
        let mut line_start = t.line_start as usize;
        if let (count, Some(after_last)) = line_breaks(self.text, s, e) {
            line = line.saturating_add(count);
            line_start = after_last;
        }
        (
            e,
            TextPoint {
                line,
                col: (e.saturating_sub(line_start)) as u32,
            },
        )
    }

    fn start_point(&self, i: usize) -> (usize, TextPoint) {
        let t = self.t(i);
        (
            t.start as usize,
            TextPoint {
                line: t.line,
                col: t.start.saturating_sub(t.line_start),
            },
        )
    }

    fn span(&self, first: usize, last: usize) -> Span {
        let last = last.max(first);
        let (start_byte, start) = self.start_point(first);
        let (end_byte, end) = self.end_point(last);
        Span {
            start_byte,
            end_byte,
            start,
            end,
        }
    }

    fn push(&mut self, d: Def<'_>, container: Option<&str>) {
        if d.name.is_empty() || self.t(d.sel.0).kind == T::Eof {
            return;
        }
        let range = self.span(d.range.0, d.range.1.max(d.sel.1));
        let selection_range = self.span(d.sel.0, d.sel.1);
        let source = match d.sig {
            SigEnd::Body(body) => {
                SigSource::Header(d.sig_start as u32, body.max(d.sig_start) as u32)
            }
            SigEnd::FirstLine => {
                SigSource::FirstLine(d.sig_start as u32, range.end_byte.max(d.sig_start) as u32)
            }
        };
        let signature = if self.with_signatures {
            source.read(self.src)
        } else {
            String::new()
        };
        self.sigs.push(source);
        self.out.push(Symbol {
            name: d.name.to_owned(),
            kind: d.kind,
            range,
            selection_range,
            container: container.map(str::to_owned),
            signature,
            children: Vec::new(),
        });
    }

    /// Prefixes the signature of symbol `index` (`const ` before one of several declarators).
    fn prefix_signature(&mut self, index: usize, prefix: &str) {
        let Some(source) = self.sigs.get_mut(index) else {
            return;
        };
        let text = prefixed(prefix, source.read(self.src));
        if self.with_signatures
            && let Some(sym) = self.out.get_mut(index)
        {
            sym.signature = text.clone();
        }
        *source = SigSource::Text(text.into_boxed_str());
    }

    fn push_define(&mut self, d: &Define) {
        let (ns, ne) = (d.name.0 as usize, d.name.1 as usize);
        let (s, e) = (d.start as usize, d.end as usize);
        let Some(name) = self.src.get(ns..ne) else {
            return;
        };
        // Points from the byte offsets: the line is found by binary search over the tokens'
        // line starts is not possible (directives have no tokens), so count from the text.
        let point = |byte: usize| -> TextPoint {
            let before = self.text.get(..byte).unwrap_or(&[]);
            let line_start = memrchr(b'\n', before).map_or(0, |p| p + 1);
            TextPoint {
                line: 0,
                col: (byte - line_start) as u32,
            }
        };
        let mut start = point(s);
        let mut end = point(e);
        let line = self.line_of(s);
        start.line = line;
        end.line = line
            .saturating_add(memchr_iter(b'\n', self.text.get(s..e).unwrap_or(&[])).count() as u32);
        let mut name_start = point(ns);
        name_start.line = line;
        let mut name_end = point(ne);
        name_end.line = line;
        let source = SigSource::FirstLine(d.start, d.end);
        let signature = if self.with_signatures {
            source.read(self.src)
        } else {
            String::new()
        };
        self.sigs.push(source);
        self.out.push(Symbol {
            name: name.to_owned(),
            kind: SymbolKind::Constant,
            range: Span {
                start_byte: s,
                end_byte: e,
                start,
                end,
            },
            selection_range: Span {
                start_byte: ns,
                end_byte: ne,
                start: name_start,
                end: name_end,
            },
            container: None,
            signature,
            children: Vec::new(),
        });
    }

    /// The line of byte `byte`, from the nearest token at or after it (directives sit
    /// between tokens; lines between them are counted).
    fn line_of(&self, byte: usize) -> u32 {
        let idx = self.toks.partition_point(|t| (t.start as usize) < byte);
        match self.toks.get(idx) {
            Some(t) => {
                let between = self.text.get(byte..t.start as usize).unwrap_or(&[]);
                t.line
                    .saturating_sub(memchr_iter(b'\n', between).count() as u32)
            }
            None => {
                // After the last token: count from it (or from the start).
                let (from, line) = match self.toks.last() {
                    Some(t) => (t.start as usize, t.line),
                    None => (0, 0),
                };
                let between = self.text.get(from..byte).unwrap_or(&[]);
                line.saturating_add(memchr_iter(b'\n', between).count() as u32)
            }
        }
    }

    // -----------------------------------------------------------------------
    // Rust
    // -----------------------------------------------------------------------

    fn rust_items(
        &mut self,
        a: usize,
        b: usize,
        container: Option<&str>,
        in_type: bool,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut i = a;
        while i < b {
            let t = self.t(i);
            // Attributes: `#[...]`, `#![...]`.
            if self.p(i, b'#') {
                let j = if self.p(i + 1, b'!') { i + 2 } else { i + 1 };
                i = if self.p(j, b'[') {
                    self.close(j) + 1
                } else {
                    i + 1
                };
                continue;
            }
            if t.kind != T::Ident {
                i = if self.is_open(i) {
                    self.close(i) + 1
                } else {
                    i + 1
                };
                continue;
            }
            let start = i;
            let mut j = i;
            // Modifiers.
            loop {
                match self.word(j) {
                    b"pub" => {
                        j += 1;
                        if self.p(j, b'(') {
                            j = self.close(j) + 1;
                        }
                    }
                    b"async" | b"unsafe" | b"safe" | b"auto" => j += 1,
                    b"default"
                        if matches!(
                            self.word(j + 1),
                            b"fn" | b"impl" | b"type" | b"const" | b"unsafe" | b"async" | b"pub"
                        ) =>
                    {
                        j += 1
                    }
                    b"const"
                        if matches!(self.word(j + 1), b"fn" | b"unsafe" | b"async" | b"extern") =>
                    {
                        j += 1
                    }
                    b"extern" if !self.is(j + 1, b"crate") => {
                        j += 1;
                        if self.t(j).kind == T::Str {
                            j += 1;
                        }
                        if self.p(j, b'{') {
                            // `extern "C" { ... }`: the items belong to the enclosing scope.
                            let close = self.close(j);
                            self.rust_items(j + 1, close.min(b), container, false, depth + 1);
                            j = close;
                            break;
                        }
                    }
                    _ => break,
                }
            }
            if self.p(j, b'}') && j > start {
                i = j + 1;
                continue;
            }
            let kw = self.word(j);
            let name_at = j + 1;
            let named = self.ident(name_at);
            match kw {
                b"fn" if named => {
                    let (body, end) = self.to_body(name_at + 1, b);
                    let kind = if in_type {
                        SymbolKind::Method
                    } else {
                        SymbolKind::Function
                    };
                    self.rust_def(kind, name_at, start, end, body, container);
                    i = end + 1;
                }
                b"struct" | b"union"
                    if named
                        && (kw == b"struct"
                            || self.p(name_at + 1, b'{')
                            || self.p(name_at + 1, b'<')
                            || self.is(name_at + 1, b"where")) =>
                {
                    // `struct S { }`, `struct S(u8);`, `struct S;`
                    let mut k = name_at + 1;
                    let mut body = None;
                    let mut end = b.saturating_sub(1);
                    while k < b {
                        if self.p(k, b'<') {
                            k = self.angles(k, b) + 1;
                            continue;
                        }
                        if self.p(k, b'{') {
                            body = Some(k);
                            end = self.close(k);
                            break;
                        }
                        if self.p(k, b'(') {
                            body = Some(k);
                            end = self.to_semi(k, b);
                            break;
                        }
                        if self.p(k, b';') || self.p(k, b'}') {
                            end = if self.p(k, b';') {
                                k
                            } else {
                                k.saturating_sub(1)
                            };
                            break;
                        }
                        k += 1;
                    }
                    self.rust_def(SymbolKind::Struct, name_at, start, end, body, container);
                    i = end + 1;
                }
                b"enum" if named => {
                    let (body, end) = self.to_body(name_at + 1, b);
                    let name = self.str_of(name_at);
                    self.rust_def(SymbolKind::Enum, name_at, start, end, body, container);
                    if let Some(open) = body {
                        self.rust_variants(open + 1, end.min(b), name);
                    }
                    i = end + 1;
                }
                b"trait" | b"mod" if named => {
                    let (body, end) = self.to_body(name_at + 1, b);
                    let (kind, inner) = if kw == b"trait" {
                        (SymbolKind::Trait, true)
                    } else {
                        (SymbolKind::Module, false)
                    };
                    let name = self.str_of(name_at);
                    self.rust_def(kind, name_at, start, end, body, container);
                    if let Some(open) = body {
                        self.rust_items(open + 1, end.min(b), Some(name), inner, depth + 1);
                    }
                    i = end + 1;
                }
                b"impl" => {
                    let (body, end) = self.to_body(j + 1, b);
                    let header_end = body.unwrap_or(end);
                    if let Some((s, e)) = self.rust_impl_name(j + 1, header_end) {
                        let name = self
                            .src
                            .get(self.t(s).start as usize..self.t(e).end as usize)
                            .unwrap_or("");
                        let sig = match body {
                            Some(o) => SigEnd::Body(self.t(o).start as usize),
                            None => SigEnd::FirstLine,
                        };
                        self.push(
                            Def {
                                kind: SymbolKind::Impl,
                                name,
                                sel: (s, e),
                                range: (start, end),
                                sig_start: self.t(start).start as usize,
                                sig,
                            },
                            container,
                        );
                        if let Some(open) = body {
                            self.rust_items(open + 1, end.min(b), Some(name), true, depth + 1);
                        }
                    }
                    i = end + 1;
                }
                b"const" | b"static" => {
                    let mut n = name_at;
                    if self.is(n, b"mut") {
                        n += 1;
                    }
                    let end = self.to_semi(n, b);
                    if self.ident(n) && !self.is(n, b"_") {
                        self.rust_plain(SymbolKind::Constant, n, start, end, container);
                    }
                    i = end + 1;
                }
                b"type" if named => {
                    let end = self.to_semi(name_at, b);
                    self.rust_plain(SymbolKind::TypeAlias, name_at, start, end, container);
                    i = end + 1;
                }
                b"use" | b"extern" => i = self.to_semi(j, b) + 1,
                b"macro_rules" => {
                    // Not a symbol kind of the index (tree-sitter extraction skips them too).
                    let mut k = j + 1;
                    while k < b && !self.is_open(k) {
                        k += 1;
                    }
                    i = self.close(k) + 1;
                }
                _ => i = j.max(i) + 1,
            }
        }
    }

    fn rust_def(
        &mut self,
        kind: SymbolKind,
        name_at: usize,
        start: usize,
        end: usize,
        body: Option<usize>,
        container: Option<&str>,
    ) {
        let sig = match body {
            Some(o) => SigEnd::Body(self.t(o).start as usize),
            None => SigEnd::FirstLine,
        };
        let name = self.str_of(name_at);
        self.push(
            Def {
                kind,
                name,
                sel: (name_at, name_at),
                range: (start, end),
                sig_start: self.t(start).start as usize,
                sig,
            },
            container,
        );
    }

    fn rust_plain(
        &mut self,
        kind: SymbolKind,
        name_at: usize,
        start: usize,
        end: usize,
        container: Option<&str>,
    ) {
        self.rust_def(kind, name_at, start, end, None, container);
    }

    fn rust_variants(&mut self, a: usize, b: usize, enum_name: &str) {
        let mut i = a;
        while i < b {
            if self.p(i, b'#') {
                i = if self.p(i + 1, b'[') {
                    self.close(i + 1) + 1
                } else {
                    i + 1
                };
                continue;
            }
            if self.ident(i) {
                let name_at = i;
                let mut k = i + 1;
                while k < b && !self.p(k, b',') {
                    k = self.close(k) + 1;
                }
                let end = k.saturating_sub(1).max(name_at);
                let name = self.str_of(name_at);
                self.push(
                    Def {
                        kind: SymbolKind::EnumMember,
                        name,
                        sel: (name_at, name_at),
                        range: (name_at, end),
                        sig_start: self.t(name_at).start as usize,
                        sig: SigEnd::FirstLine,
                    },
                    Some(enum_name),
                );
                i = k + 1;
            } else {
                i = self.close(i) + 1;
            }
        }
    }

    /// The tokens naming the implemented type in `impl<...> Trait for Type<...> where ...`.
    fn rust_impl_name(&self, mut i: usize, b: usize) -> Option<(usize, usize)> {
        if self.p(i, b'<') {
            i = self.angles(i, b) + 1;
        }
        // The type starts after `for` (at angle depth 0), else right here.
        let mut ty = i;
        let mut k = i;
        let mut angle = 0u32;
        while k < b {
            if self.p(k, b'<') {
                angle += 1;
            } else if self.p(k, b'>') && !(k > 0 && self.p2(k - 1, b'-', b'>')) {
                angle = angle.saturating_sub(1);
            } else if angle == 0 && self.is(k, b"for") && !self.p(k + 1, b'<') {
                ty = k + 1;
            } else if angle == 0 && self.is(k, b"where") {
                break;
            } else if self.is_open(k) {
                k = self.close(k);
            }
            k += 1;
        }
        let end = k;
        // Skip `&`, lifetimes, `mut`, `*const`, `dyn`.
        let mut s = ty;
        while s < end
            && (self.p(s, b'&')
                || self.p(s, b'*')
                || self.p(s, b'\'')
                || (self.p(s.wrapping_sub(1), b'\'') && s > ty)
                || matches!(self.word(s), b"mut" | b"const" | b"dyn"))
        {
            s += 1;
        }
        if self.p(s, b'(') || self.p(s, b'[') {
            return Some((s, self.close(s)));
        }
        // A path: the last segment before `<`.
        let mut name = None;
        while s < end {
            if self.ident(s) {
                name = Some(s);
                if self.path_sep(s + 1) {
                    s += 3;
                    continue;
                }
            } else if self.path_sep(s) {
                s += 2;
                continue;
            }
            break;
        }
        name.map(|n| (n, n))
    }

    // -----------------------------------------------------------------------
    // Python
    // -----------------------------------------------------------------------

    /// The statements of a block `a..b`; nested blocks other than class bodies are skipped.
    fn py_block(
        &mut self,
        a: usize,
        b: usize,
        container: Option<&str>,
        in_class: bool,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut i = a;
        let mut decorator: Option<usize> = None;
        while i < b {
            let col = self.col(i);
            let stmt_end = self.py_statement_end(i, col, b);
            let mut k = i;
            if self.is(k, b"async") {
                k += 1;
            }
            match self.word(k) {
                b"def" | b"class" if self.ident(k + 1) => {
                    let is_class = self.is(k, b"class");
                    let name_at = k + 1;
                    // The header ends at the `:` before the body.
                    let mut c = name_at + 1;
                    while c < stmt_end && !self.p(c, b':') {
                        c = self.close(c) + 1;
                    }
                    let sig = if c < stmt_end {
                        SigEnd::Body(self.t(c).end as usize)
                    } else {
                        SigEnd::FirstLine
                    };
                    let start = decorator.unwrap_or(i);
                    let last = self.py_last(i, stmt_end);
                    let name = self.str_of(name_at);
                    let kind = match (is_class, in_class) {
                        (true, _) => SymbolKind::Class,
                        (false, true) => SymbolKind::Method,
                        (false, false) => SymbolKind::Function,
                    };
                    self.push(
                        Def {
                            kind,
                            name,
                            sel: (name_at, name_at),
                            range: (start, last),
                            sig_start: self.t(i).start as usize,
                            sig,
                        },
                        container,
                    );
                    if is_class && c < stmt_end {
                        self.py_block(c + 1, stmt_end, Some(name), true, depth + 1);
                    }
                    decorator = None;
                }
                _ if self.p(i, b'@') => {
                    decorator.get_or_insert(i);
                }
                b"type" if self.ident(k + 1) && (self.p(k + 2, b'=') || self.p(k + 2, b'[')) => {
                    let last = self.py_last(i, stmt_end);
                    self.py_plain(SymbolKind::TypeAlias, k + 1, i, last, container);
                    decorator = None;
                }
                _ if !in_class && container.is_none() && self.ident(i) => {
                    // `NAME = ...` / `NAME: T = ...` at module level, upper case.
                    let assign = self.p(i + 1, b'=') && !self.p2(i + 1, b'=', b'=');
                    let annotated = self.p(i + 1, b':') && {
                        let mut c = i + 2;
                        while c < stmt_end && !self.p(c, b'=') {
                            c = self.close(c) + 1;
                        }
                        c < stmt_end && !self.p2(c, b'=', b'=')
                    };
                    let name = self.str_of(i);
                    if (assign || annotated) && is_upper_case(name) {
                        let last = self.py_last(i, stmt_end);
                        self.py_plain(SymbolKind::Constant, i, i, last, container);
                    }
                    decorator = None;
                }
                _ => decorator = None,
            }
            i = stmt_end.max(i + 1);
        }
    }

    fn py_plain(
        &mut self,
        kind: SymbolKind,
        name_at: usize,
        start: usize,
        last: usize,
        container: Option<&str>,
    ) {
        let name = self.str_of(name_at);
        self.push(
            Def {
                kind,
                name,
                sel: (name_at, name_at),
                range: (start, last),
                sig_start: self.t(start).start as usize,
                sig: SigEnd::FirstLine,
            },
            container,
        );
    }

    /// The first token after the statement starting at `i` (column `col`): the next token
    /// that starts a line at a column not greater than `col`, outside brackets.
    fn py_statement_end(&self, i: usize, col: u32, b: usize) -> usize {
        let mut k = self.close(i) + 1;
        while k < b {
            if self.first_on_line(k) && self.col(k) <= col {
                return k;
            }
            k = self.close(k) + 1;
        }
        b
    }

    /// The last token of a statement ending before `end`.
    fn py_last(&self, i: usize, end: usize) -> usize {
        end.saturating_sub(1).max(i)
    }

    // -----------------------------------------------------------------------
    // Go
    // -----------------------------------------------------------------------

    fn go_items(&mut self, a: usize, b: usize) {
        let mut i = a;
        while i < b {
            if !self.ident(i) || !self.first_on_line(i) {
                i = self.close(i) + 1;
                continue;
            }
            match self.word(i) {
                b"func" => i = self.go_func(i, b) + 1,
                b"type" | b"const" => {
                    let is_type = self.is(i, b"type");
                    if self.p(i + 1, b'(') {
                        let close = self.close(i + 1).min(b);
                        let mut k = i + 2;
                        while k < close {
                            let end = self.go_spec_end(k, close);
                            if self.ident(k) {
                                if is_type {
                                    self.go_type_spec(k, k, end, true);
                                } else {
                                    self.go_const_spec(k, k, end, true);
                                }
                            }
                            k = end + 1;
                        }
                        i = close + 1;
                    } else {
                        let end = self.go_spec_end(i + 1, b);
                        if is_type {
                            self.go_type_spec(i, i + 1, end, false);
                        } else {
                            self.go_const_spec(i, i + 1, end, false);
                        }
                        i = end + 1;
                    }
                }
                _ => i += 1,
            }
        }
    }

    /// The last token of a Go spec or statement starting at `i`: before the next token
    /// that starts a line, brackets jumped (or before `;`).
    fn go_spec_end(&self, i: usize, b: usize) -> usize {
        let mut k = self.close(i) + 1;
        while k < b {
            if self.first_on_line(k) || self.p(k, b';') {
                break;
            }
            k = self.close(k) + 1;
        }
        k.saturating_sub(1).max(i).min(b.saturating_sub(1).max(i))
    }

    fn go_func(&mut self, i: usize, b: usize) -> usize {
        let mut k = i + 1;
        let mut receiver = None;
        if self.p(k, b'(') {
            let close = self.close(k);
            // `(c *Cache[K, V])` → Cache; `(Stats)` → Stats.
            let mut idents = Vec::with_capacity(2);
            let mut r = k + 1;
            while r < close {
                if self.ident(r) {
                    idents.push(r);
                }
                r = self.close(r) + 1;
            }
            receiver = if idents.len() >= 2 {
                idents.get(1)
            } else {
                idents.first()
            }
            .copied();
            k = close + 1;
        }
        if !self.ident(k) {
            return k;
        }
        let name_at = k;
        let mut body = None;
        let mut end = name_at;
        let mut m = name_at + 1;
        while m < b {
            if m > name_at + 1 && self.first_on_line(m) {
                break;
            }
            if self.p(m, b'{') {
                if m > 0 && matches!(self.word(m - 1), b"struct" | b"interface") {
                    end = self.close(m);
                    m = end + 1;
                    continue;
                }
                body = Some(m);
                end = self.close(m);
                break;
            }
            end = self.close(m);
            m = end + 1;
        }
        let (kind, container) = match receiver {
            Some(r) => (SymbolKind::Method, Some(self.str_of(r))),
            None => (SymbolKind::Function, None),
        };
        let sig = match body {
            Some(o) => SigEnd::Body(self.t(o).start as usize),
            None => SigEnd::FirstLine,
        };
        let name = self.str_of(name_at);
        self.push(
            Def {
                kind,
                name,
                sel: (name_at, name_at),
                range: (i, end),
                sig_start: self.t(i).start as usize,
                sig,
            },
            container,
        );
        end
    }

    /// `Name [T any] = Type` / `Name struct {...}` / `Name interface {...}`.
    fn go_type_spec(&mut self, start: usize, name_at: usize, end: usize, grouped: bool) {
        if !self.ident(name_at) {
            return;
        }
        let mut k = name_at + 1;
        // Type parameters: `[K comparable, V any]` (not an array length `[4]`).
        if self.p(k, b'[')
            && self.ident(k + 1)
            && (self.ident(k + 2) || self.p(k + 2, b',') || self.p(k + 2, b'~'))
        {
            k = self.close(k) + 1;
        }
        let alias = self.p(k, b'=');
        if alias {
            k += 1;
        }
        let kind = match self.word(k) {
            b"struct" if !alias && self.p(k + 1, b'{') => SymbolKind::Struct,
            b"interface" if !alias && self.p(k + 1, b'{') => SymbolKind::Interface,
            _ => SymbolKind::TypeAlias,
        };
        let sig = if kind == SymbolKind::TypeAlias {
            SigEnd::FirstLine
        } else {
            SigEnd::Body(self.t(k + 1).start as usize)
        };
        let name = self.str_of(name_at);
        let before = self.out.len();
        self.push(
            Def {
                kind,
                name,
                sel: (name_at, name_at),
                range: (start, end),
                sig_start: self.t(start).start as usize,
                sig,
            },
            None,
        );
        if grouped {
            self.prefix_signature(before, "type ");
        }
        if kind == SymbolKind::Interface {
            let close = self.close(k + 1).min(end);
            let mut m = k + 2;
            while m < close {
                let e = self.go_spec_end(m, close);
                if self.ident(m) && self.p(m + 1, b'(') {
                    let mname = self.str_of(m);
                    self.push(
                        Def {
                            kind: SymbolKind::Method,
                            name: mname,
                            sel: (m, m),
                            range: (m, e),
                            sig_start: self.t(m).start as usize,
                            sig: SigEnd::FirstLine,
                        },
                        Some(name),
                    );
                }
                m = e + 1;
            }
        }
    }

    /// `A, B = 1, 2` / `A T = 1` / `A` (iota continuation).
    fn go_const_spec(&mut self, start: usize, first: usize, end: usize, grouped: bool) {
        let mut names = Vec::new();
        let mut k = first;
        while self.ident(k) && k <= end {
            names.push(k);
            if self.p(k + 1, b',') {
                k += 2;
            } else {
                break;
            }
        }
        let single = !grouped && names.len() == 1;
        for n in names {
            if self.is(n, b"_") {
                continue;
            }
            let name = self.str_of(n);
            let before = self.out.len();
            self.push(
                Def {
                    kind: SymbolKind::Constant,
                    name,
                    sel: (n, n),
                    range: (if single { start } else { first }, end),
                    sig_start: self.t(if single { start } else { first }).start as usize,
                    sig: SigEnd::FirstLine,
                },
                None,
            );
            if !single {
                self.prefix_signature(before, "const ");
            }
        }
    }

    // -----------------------------------------------------------------------
    // Java
    // -----------------------------------------------------------------------

    fn java_body(
        &mut self,
        a: usize,
        b: usize,
        container: Option<&str>,
        within: JavaIn,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut i = a;
        while i < b {
            let start = i;
            let mut j = i;
            let (mut is_static, mut is_final) = (false, false);
            // Annotations and modifiers.
            loop {
                if self.p(j, b'@') && !self.is(j + 1, b"interface") {
                    j += 1;
                    while self.ident(j) {
                        j += 1;
                        if self.p(j, b'.') {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                    if self.p(j, b'(') {
                        j = self.close(j) + 1;
                    }
                    continue;
                }
                match self.word(j) {
                    b"static" => is_static = true,
                    b"final" => is_final = true,
                    b"public" | b"private" | b"protected" | b"abstract" | b"synchronized"
                    | b"native" | b"transient" | b"volatile" | b"strictfp" | b"sealed"
                    | b"default" | b"non" => {}
                    _ if self.p(j, b'-') && self.is(j + 1, b"sealed") => j += 1,
                    _ => break,
                }
                j += 1;
            }
            let annotation_type = self.p(j, b'@') && self.is(j + 1, b"interface");
            let kw = if annotation_type {
                b"interface".as_slice()
            } else {
                self.word(j)
            };
            let name_at = if annotation_type { j + 2 } else { j + 1 };
            match kw {
                b"class" | b"interface" | b"enum" | b"record" if self.ident(name_at) => {
                    let (body, end) = self.to_body(name_at + 1, b);
                    let name = self.str_of(name_at);
                    let kind = match kw {
                        b"interface" => SymbolKind::Interface,
                        b"enum" => SymbolKind::Enum,
                        _ => SymbolKind::Class,
                    };
                    let sig = match body {
                        Some(o) => SigEnd::Body(self.t(o).start as usize),
                        None => SigEnd::FirstLine,
                    };
                    self.push(
                        Def {
                            kind,
                            name,
                            sel: (name_at, name_at),
                            range: (start, end),
                            sig_start: self.t(start).start as usize,
                            sig,
                        },
                        container,
                    );
                    if let Some(open) = body {
                        let close = end.min(b);
                        match kw {
                            b"enum" => self.java_enum(open + 1, close, name, depth + 1),
                            b"interface" => self.java_body(
                                open + 1,
                                close,
                                Some(name),
                                JavaIn::Interface,
                                depth + 1,
                            ),
                            _ => self.java_body(
                                open + 1,
                                close,
                                Some(name),
                                JavaIn::Class,
                                depth + 1,
                            ),
                        }
                    }
                    i = end + 1;
                    continue;
                }
                _ => {}
            }
            if within == JavaIn::Top {
                // package / import / stray tokens.
                i = if self.is_open(j) {
                    self.close(j) + 1
                } else {
                    j.max(i) + 1
                };
                continue;
            }
            if self.p(j, b'{') {
                i = self.close(j) + 1;
                continue;
            }
            if self.p(j, b';') || !self.ident(j) && !self.p(j, b'<') {
                i = self.close(j).max(i) + 1;
                continue;
            }
            // A member: scan to `(` (method / constructor), `{` (compact constructor),
            // `=` / `;` / `,` (field).
            let mut k = j;
            let mut last_ident = None;
            let mut idents = 0;
            loop {
                if k >= b {
                    break;
                }
                if self.p(k, b'<') {
                    k = self.angles(k, b) + 1;
                    continue;
                }
                if self.p(k, b'[') {
                    k = self.close(k) + 1;
                    continue;
                }
                if self.ident(k) {
                    last_ident = Some(k);
                    idents += 1;
                    k += 1;
                    continue;
                }
                if self.p(k, b'.') || self.p(k, b'?') || self.p(k, b'&') {
                    k += 1;
                    continue;
                }
                break;
            }
            let Some(name_at) = last_ident else {
                i = k.max(i) + 1;
                continue;
            };
            if self.p(k, b'(') {
                let (body, end) = self.to_body(k, b);
                let name = self.str_of(name_at);
                let kind = if idents == 1 {
                    SymbolKind::Constructor
                } else {
                    SymbolKind::Method
                };
                let sig = match body {
                    Some(o) => SigEnd::Body(self.t(o).start as usize),
                    None => SigEnd::FirstLine,
                };
                self.push(
                    Def {
                        kind,
                        name,
                        sel: (name_at, name_at),
                        range: (start, end),
                        sig_start: self.t(start).start as usize,
                        sig,
                    },
                    container,
                );
                i = end + 1;
            } else if self.p(k, b'{') && idents == 1 && within == JavaIn::Class {
                // Record compact constructor.
                let end = self.close(k);
                let name = self.str_of(name_at);
                self.push(
                    Def {
                        kind: SymbolKind::Constructor,
                        name,
                        sel: (name_at, name_at),
                        range: (start, end),
                        sig_start: self.t(start).start as usize,
                        sig: SigEnd::Body(self.t(k).start as usize),
                    },
                    container,
                );
                i = end + 1;
            } else if self.p(k, b'=') || self.p(k, b';') || self.p(k, b',') {
                let end = self.to_semi(k, b);
                if within == JavaIn::Interface || (is_static && is_final) {
                    self.java_constants(start, name_at, end, container);
                }
                i = end + 1;
            } else {
                i = k.max(i) + 1;
            }
        }
    }

    /// The declarators of a constant field `start..=end` whose first name is `first`.
    fn java_constants(&mut self, start: usize, first: usize, end: usize, container: Option<&str>) {
        let mut names = vec![first];
        let mut k = first + 1;
        while k < end {
            if self.p(k, b',') && self.ident(k + 1) {
                names.push(k + 1);
            }
            k = self.close(k) + 1;
        }
        let single = names.len() == 1;
        let prefix = if single {
            String::new()
        } else {
            let mut p = one_line_full(
                self.src
                    .get(self.t(start).start as usize..self.t(first).start as usize)
                    .unwrap_or(""),
            );
            if !p.is_empty() {
                p.push(' ');
            }
            p
        };
        for n in names {
            let name = self.str_of(n);
            let before = self.out.len();
            let s = if single { start } else { n };
            self.push(
                Def {
                    kind: SymbolKind::Constant,
                    name,
                    sel: (n, n),
                    range: (s, end),
                    sig_start: self.t(s).start as usize,
                    sig: SigEnd::FirstLine,
                },
                container,
            );
            if !single {
                self.prefix_signature(before, &prefix);
            }
        }
    }

    fn java_enum(&mut self, a: usize, b: usize, name: &str, depth: u32) {
        let mut i = a;
        while i < b {
            if self.p(i, b';') {
                self.java_body(i + 1, b, Some(name), JavaIn::Class, depth + 1);
                return;
            }
            if self.p(i, b'@') {
                i += 2;
                if self.p(i, b'(') {
                    i = self.close(i) + 1;
                }
                continue;
            }
            if self.ident(i) {
                let mut k = i + 1;
                while k < b && !self.p(k, b',') && !self.p(k, b';') {
                    k = self.close(k) + 1;
                }
                let end = k.saturating_sub(1).max(i);
                let member = self.str_of(i);
                self.push(
                    Def {
                        kind: SymbolKind::EnumMember,
                        name: member,
                        sel: (i, i),
                        range: (i, end),
                        sig_start: self.t(i).start as usize,
                        sig: SigEnd::FirstLine,
                    },
                    Some(name),
                );
                i = if self.p(k, b',') { k + 1 } else { k };
                continue;
            }
            i = self.close(i) + 1;
        }
    }

    // -----------------------------------------------------------------------
    // C / C++
    // -----------------------------------------------------------------------

    fn c_body(&mut self, a: usize, b: usize, container: Option<&str>, in_type: bool, depth: u32) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut i = a;
        while i < b {
            let t = self.t(i);
            if t.kind == T::Punct {
                i = self.close(i) + 1;
                continue;
            }
            let start = i;
            // Access specifiers: `public:`.
            if matches!(
                self.word(i),
                b"public" | b"private" | b"protected" | b"signals" | b"slots"
            ) && self.p(i + 1, b':')
                && !self.path_sep(i + 1)
            {
                i += 2;
                continue;
            }
            let mut j = i;
            while self.is(j, b"template") {
                j += 1;
                if self.p(j, b'<') {
                    j = self.angles(j, b) + 1;
                }
            }
            match self.word(j) {
                b"namespace" => {
                    let mut k = j + 1;
                    let name_first = k;
                    while self.ident(k) || self.path_sep(k) || (self.p(k, b':') && k > name_first) {
                        k += 1;
                    }
                    if self.p(k, b'{') {
                        let close = self.close(k).min(b);
                        if k > name_first {
                            let name = self
                                .src
                                .get(self.t(name_first).start as usize..self.t(k - 1).end as usize)
                                .unwrap_or("");
                            self.push(
                                Def {
                                    kind: SymbolKind::Namespace,
                                    name,
                                    sel: (name_first, k - 1),
                                    range: (start, close),
                                    sig_start: self.t(start).start as usize,
                                    sig: SigEnd::Body(self.t(k).start as usize),
                                },
                                container,
                            );
                            self.c_body(k + 1, close, Some(name), false, depth + 1);
                        } else {
                            self.c_body(k + 1, close, container, in_type, depth + 1);
                        }
                        i = close + 1;
                    } else {
                        i = self.to_semi(k, b) + 1;
                    }
                    continue;
                }
                b"extern" if self.t(j + 1).kind == T::Str && self.p(j + 2, b'{') => {
                    let close = self.close(j + 2).min(b);
                    self.c_body(j + 3, close, container, in_type, depth + 1);
                    i = close + 1;
                    continue;
                }
                b"typedef" => {
                    i = self.c_typedef(start, j + 1, b, container, depth) + 1;
                    continue;
                }
                b"using" if self.ident(j + 1) && self.p(j + 2, b'=') => {
                    let end = self.to_semi(j + 2, b);
                    let name = self.str_of(j + 1);
                    self.push(
                        Def {
                            kind: SymbolKind::TypeAlias,
                            name,
                            sel: (j + 1, j + 1),
                            range: (start, end),
                            sig_start: self.t(start).start as usize,
                            sig: SigEnd::FirstLine,
                        },
                        container,
                    );
                    i = end + 1;
                    continue;
                }
                b"using" | b"static_assert" | b"friend" | b"return" => {
                    i = self.to_semi(j, b) + 1;
                    continue;
                }
                _ => {}
            }
            i = self.c_statement(start, j, b, container, in_type, depth) + 1;
        }
    }

    /// A declaration or definition from `start` (after any `template <...>` at `j`).
    /// Returns its last token.
    fn c_statement(
        &mut self,
        start: usize,
        j: usize,
        b: usize,
        container: Option<&str>,
        in_type: bool,
        depth: u32,
    ) -> usize {
        let mut k = j;
        // The function name candidate: (first name token, last name token, qualifier token).
        let mut func: Option<(usize, usize, Option<usize>)> = None;
        let mut saw_eq = false;
        let mut init_list = false;
        let mut params_close = None;
        while k < b {
            let t = self.t(k);
            if t.kind == T::Ident {
                match self.word(k) {
                    b"struct" | b"union" | b"enum" | b"class" if func.is_none() && !saw_eq => {
                        // Under `template <...>` the record's range starts at `template`.
                        let from = if k == j { start } else { k };
                        if let Some(end) = self.c_record(from, k, b, container, depth) {
                            k = end + 1;
                            continue;
                        }
                    }
                    b"operator" if !init_list && !saw_eq => {
                        // `operator==`, `operator()`, `operator new`, `operator bool`.
                        let mut e = k + 1;
                        if self.p(e, b'(') && self.close(e) == e + 1 {
                            e += 2;
                        } else {
                            while e < b && !self.p(e, b'(') && !self.p(e, b';') && !self.p(e, b'{')
                            {
                                e += 1;
                            }
                        }
                        if self.p(e, b'(') && e > k + 1 {
                            func = Some((k, e - 1, self.c_qualifier(k)));
                            params_close = Some(self.close(e));
                            k = self.close(e) + 1;
                            continue;
                        }
                    }
                    _ => {}
                }
                k += 1;
                continue;
            }
            if t.kind != T::Punct {
                k += 1;
                continue;
            }
            match t.b {
                b';' => break,
                b'}' | b')' | b']' => return k.saturating_sub(1).max(start),
                b'=' if !init_list => {
                    let cmp = self.p2(k, b'=', b'=')
                        || (k > 0
                            && self.t(k - 1).end == t.start
                            && matches!(self.t(k - 1).b, b'!' | b'<' | b'>' | b'='));
                    if !cmp && params_close.is_none() {
                        saw_eq = true;
                    }
                    k += 1;
                }
                b':' if !(self.path_sep(k) || k > 0 && self.path_sep(k - 1)) => {
                    if params_close.is_some() {
                        init_list = true;
                    }
                    k += 1;
                }
                b'(' => {
                    let close = self.close(k);
                    let prev = k.checked_sub(1).filter(|&p| p >= j);
                    let fptr = self.p(k + 1, b'*') || self.p(k + 1, b'^') || self.p(k + 1, b'&');
                    if !init_list
                        && !saw_eq
                        && !fptr
                        && let Some(p) = prev
                        && self.ident(p)
                        && !is_c_non_name(self.word(p))
                    {
                        let first = if p > 0 && self.p(p - 1, b'~') {
                            p - 1
                        } else {
                            p
                        };
                        func = Some((first, p, self.c_qualifier(first)));
                        params_close = Some(close);
                    } else if fptr && params_close.is_none() {
                        // A function pointer declaration: not a function.
                        func = None;
                        saw_eq = true;
                    }
                    k = close + 1;
                }
                b'[' => k = self.close(k) + 1,
                b'{' => {
                    let prev_ident = k > 0 && (self.ident(k - 1) || self.p(k - 1, b'>'));
                    if saw_eq || (init_list && prev_ident) || func.is_none() {
                        // An initializer (or a block we do not understand).
                        let close = self.close(k);
                        if func.is_none() && !saw_eq {
                            return close;
                        }
                        k = close + 1;
                        continue;
                    }
                    let close = self.close(k).min(b.saturating_sub(1).max(k));
                    if let Some((first, last, qual)) = func {
                        self.c_function(
                            start,
                            first,
                            last,
                            qual,
                            close,
                            Some(k),
                            container,
                            in_type,
                        );
                    }
                    return close;
                }
                b'<' if k > j && self.ident(k - 1) && !saw_eq => {
                    let close = self.angles(k, b);
                    // Only jump template arguments that close on this statement.
                    k = if self.p(close, b'>') {
                        close + 1
                    } else {
                        k + 1
                    };
                }
                _ => k += 1,
            }
        }
        let end = k.min(b.saturating_sub(1)).max(start);
        if in_type
            && !saw_eq
            && let Some((first, last, qual)) = func
        {
            self.c_function(start, first, last, qual, end, None, container, in_type);
        }
        let _ = depth;
        end
    }

    /// The qualifier of a name at `first`: `Circle` in `geo::Circle::area`, `Stack` in `Stack<T>::pop`.
    fn c_qualifier(&self, first: usize) -> Option<usize> {
        let sep = first.checked_sub(2)?;
        if !self.path_sep(sep) {
            return None;
        }
        let q = sep.checked_sub(1)?;
        if self.ident(q) {
            return Some(q);
        }
        if self.p(q, b'>') {
            // Back over the template arguments.
            let mut depth = 0u32;
            let mut m = q;
            loop {
                if self.p(m, b'>') {
                    depth += 1;
                } else if self.p(m, b'<') {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return m.checked_sub(1).filter(|&n| self.ident(n));
                    }
                }
                m = m.checked_sub(1)?;
                if q - m > 64 {
                    return None;
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn c_function(
        &mut self,
        start: usize,
        first: usize,
        last: usize,
        qual: Option<usize>,
        end: usize,
        body: Option<usize>,
        container: Option<&str>,
        in_type: bool,
    ) {
        let name = self
            .src
            .get(self.t(first).start as usize..self.t(last).end as usize)
            .unwrap_or("");
        let qualifier = qual.map(|q| self.str_of(q));
        let owner = qualifier.or(if in_type { container } else { None });
        let (kind, cont) = match owner {
            Some(o) if o == name => (SymbolKind::Constructor, qualifier.or(container)),
            Some(_) => (SymbolKind::Method, qualifier.or(container)),
            None => (SymbolKind::Function, container),
        };
        let sig = match body {
            Some(o) => SigEnd::Body(self.t(o).start as usize),
            None => SigEnd::FirstLine,
        };
        self.push(
            Def {
                kind,
                name,
                sel: (first, last),
                range: (start, end),
                sig_start: self.t(start).start as usize,
                sig,
            },
            cont,
        );
    }

    /// `struct/union/enum/class [name] [: bases] { ... }` at `k`: records it (when named) and
    /// returns the body's closing token; `None` when there is no body (a type use).
    fn c_record(
        &mut self,
        from: usize,
        k: usize,
        b: usize,
        container: Option<&str>,
        depth: u32,
    ) -> Option<usize> {
        let kw = self.word(k);
        let mut m = k + 1;
        if kw == b"enum" && matches!(self.word(m), b"class" | b"struct") {
            m += 1;
        }
        let mut name = None;
        let mut in_bases = false;
        while m < b {
            if self.ident(m) {
                if !in_bases
                    && !matches!(
                        self.word(m),
                        b"final" | b"sealed" | b"alignas" | b"__attribute__"
                    )
                {
                    name = Some(m);
                }
                m += 1;
            } else if self.path_sep(m) {
                m += 2;
            } else if self.p(m, b'<') {
                m = self.angles(m, b) + 1;
            } else if self.p(m, b':') {
                in_bases = true;
                m += 1;
            } else if self.p(m, b'(') || self.p(m, b'[') {
                if in_bases
                    || self.word(m.saturating_sub(1)) == b"__attribute__"
                    || self.word(m.saturating_sub(1)) == b"alignas"
                    || self.word(m.saturating_sub(1)).starts_with(b"__declspec")
                {
                    m = self.close(m) + 1;
                } else {
                    return None;
                }
            } else if self.p(m, b',') && in_bases {
                m += 1;
            } else {
                break;
            }
        }
        if !self.p(m, b'{') {
            return None;
        }
        let close = self.close(m);
        if let Some(n) = name {
            self.c_record_symbol(kw, from, n, m, close, container, depth);
        }
        Some(close)
    }

    #[allow(clippy::too_many_arguments)]
    fn c_record_symbol(
        &mut self,
        kw: &[u8],
        start: usize,
        n: usize,
        open: usize,
        close: usize,
        container: Option<&str>,
        depth: u32,
    ) {
        let name = self.str_of(n);
        let kind = match kw {
            b"enum" => SymbolKind::Enum,
            b"class" => SymbolKind::Class,
            _ => SymbolKind::Struct,
        };
        self.push(
            Def {
                kind,
                name,
                sel: (n, n),
                range: (start, close),
                sig_start: self.t(start).start as usize,
                sig: SigEnd::Body(self.t(open).start as usize),
            },
            container,
        );
        if kind == SymbolKind::Enum {
            self.c_enumerators(open + 1, close, name);
        } else if self.lang == Language::Cpp {
            self.c_body(open + 1, close, Some(name), true, depth + 1);
        }
    }

    fn c_enumerators(&mut self, a: usize, b: usize, enum_name: &str) {
        let mut i = a;
        while i < b {
            if self.ident(i) {
                let mut k = i + 1;
                while k < b && !self.p(k, b',') {
                    k = self.close(k) + 1;
                }
                let end = k.saturating_sub(1).max(i);
                let name = self.str_of(i);
                self.push(
                    Def {
                        kind: SymbolKind::EnumMember,
                        name,
                        sel: (i, i),
                        range: (i, end),
                        sig_start: self.t(i).start as usize,
                        sig: SigEnd::FirstLine,
                    },
                    Some(enum_name),
                );
                i = k + 1;
            } else {
                i = self.close(i) + 1;
            }
        }
    }

    /// `typedef ...;` from `start` (the `typedef` keyword at `k - 1`). Returns its last token.
    fn c_typedef(
        &mut self,
        start: usize,
        k: usize,
        b: usize,
        container: Option<&str>,
        depth: u32,
    ) -> usize {
        let end = self.to_semi(k, b);
        // A record with a body inside?
        let mut m = k;
        while matches!(self.word(m), b"const" | b"volatile") {
            m += 1;
        }
        let mut record: Option<(usize, Option<usize>, usize, usize)> = None; // (kw, tag, open, close)
        let mut decl_from = k;
        if matches!(self.word(m), b"struct" | b"union" | b"enum" | b"class") {
            let mut q = m + 1;
            let mut tag = None;
            while q < end && !self.p(q, b'{') && !self.p(q, b';') {
                if self.ident(q) {
                    tag = Some(q);
                } else if self.p(q, b'(') || self.p(q, b'[') {
                    q = self.close(q);
                }
                q += 1;
            }
            if self.p(q, b'{') {
                let close = self.close(q);
                record = Some((m, tag, q, close));
                decl_from = close + 1;
            }
        }
        // Declarator names.
        let mut names = Vec::new();
        let mut d = decl_from;
        let mut cand: Option<usize> = None;
        while d <= end {
            if self.p(d, b',') || d == end {
                if let Some(c) = cand.take() {
                    names.push(c);
                }
                d += 1;
                continue;
            }
            if self.p(d, b'(') {
                let close = self.close(d);
                if self.p(d + 1, b'*') || self.p(d + 1, b'^') || self.p(d + 1, b'&') {
                    // `(*name)(...)`: the name is inside.
                    let mut q = d + 1;
                    while q < close {
                        if self.ident(q) {
                            cand = Some(q);
                        }
                        q = self.close(q) + 1;
                    }
                    // Skip everything up to the next `,` / end: that is the parameter list.
                    d = close + 1;
                    while d < end && !self.p(d, b',') {
                        d = self.close(d) + 1;
                    }
                    continue;
                }
                // `typedef void fn_t(int)`: the name came before; skip the parameters.
                d = close + 1;
                while d < end && !self.p(d, b',') {
                    d = self.close(d) + 1;
                }
                continue;
            }
            if self.p(d, b'[') {
                d = self.close(d) + 1;
                continue;
            }
            if self.ident(d) && !matches!(self.word(d), b"const" | b"volatile" | b"__attribute__") {
                cand = Some(d);
            }
            d = self.close(d) + 1;
        }
        match record {
            Some((kw_at, tag, open, close)) => {
                let kw = self.word(kw_at);
                if let Some(tag) = tag {
                    for &n in &names {
                        let name = self.str_of(n);
                        self.push(
                            Def {
                                kind: SymbolKind::TypeAlias,
                                name,
                                sel: (n, n),
                                range: (start, end),
                                sig_start: self.t(start).start as usize,
                                sig: SigEnd::Body(self.t(open).start as usize),
                            },
                            container,
                        );
                    }
                    self.c_record_symbol(kw, kw_at, tag, open, close, container, depth);
                } else if let Some(&n) = names.first() {
                    // `typedef struct {...} point_t;`: the struct takes the typedef's name.
                    let name = self.str_of(n);
                    let kind = match kw {
                        b"enum" => SymbolKind::Enum,
                        b"class" => SymbolKind::Class,
                        _ => SymbolKind::Struct,
                    };
                    self.push(
                        Def {
                            kind,
                            name,
                            sel: (n, n),
                            range: (start, end),
                            sig_start: self.t(start).start as usize,
                            sig: SigEnd::Body(self.t(open).start as usize),
                        },
                        container,
                    );
                    if kind == SymbolKind::Enum {
                        self.c_enumerators(open + 1, close, name);
                    } else if self.lang == Language::Cpp {
                        self.c_body(open + 1, close, Some(name), true, depth + 1);
                    }
                }
            }
            None => {
                for n in names {
                    let name = self.str_of(n);
                    self.push(
                        Def {
                            kind: SymbolKind::TypeAlias,
                            name,
                            sel: (n, n),
                            range: (start, end),
                            sig_start: self.t(start).start as usize,
                            sig: SigEnd::FirstLine,
                        },
                        container,
                    );
                }
            }
        }
        end
    }

    // -----------------------------------------------------------------------
    // JavaScript / TypeScript / TSX
    // -----------------------------------------------------------------------

    /// Whether token `i` can start a statement (JavaScript has automatic semicolons).
    fn js_statement_start(&self, i: usize, a: usize) -> bool {
        if i <= a {
            return true;
        }
        let prev = self.t(i - 1);
        match prev.kind {
            T::Punct => match prev.b {
                b';' | b'}' | b'{' => true,
                b')' | b']' => self.first_on_line(i),
                _ => false,
            },
            T::Ident => {
                matches!(
                    self.word(i - 1),
                    b"export" | b"default" | b"declare" | b"async" | b"abstract"
                ) || self.first_on_line(i)
            }
            T::Str | T::Num => self.first_on_line(i),
            T::Eof => true,
        }
    }

    /// The end of a JavaScript statement or class member starting at `i` (column of the
    /// start token `col`): `;`, or before a line starting at a column not greater than `col`.
    fn js_statement_end(&self, i: usize, b: usize, col: u32) -> usize {
        let mut k = i;
        while k < b {
            if self.p(k, b';') {
                return k;
            }
            if k > i && self.first_on_line(k) && self.col(k) <= col && !self.js_continues(k) {
                return k - 1;
            }
            if self.p(k, b'}') || self.p(k, b')') || self.p(k, b']') {
                return k.saturating_sub(1).max(i);
            }
            k = self.close(k) + 1;
        }
        b.saturating_sub(1).max(i).min(k)
    }

    /// Whether a line starting at `k` continues the previous one (`.`, operators, `)`...).
    fn js_continues(&self, k: usize) -> bool {
        let t = self.t(k);
        let prev = self.t(k.saturating_sub(1));
        (t.kind == T::Punct
            && matches!(
                t.b,
                b'.' | b'?' | b':' | b'=' | b'|' | b'&' | b'+' | b'*' | b'>' | b','
            ))
            || (prev.kind == T::Punct
                && matches!(
                    prev.b,
                    b'=' | b','
                        | b'('
                        | b'['
                        | b'+'
                        | b'-'
                        | b'*'
                        | b'|'
                        | b'&'
                        | b'?'
                        | b':'
                        | b'>'
                        | b'<'
                        | b'.'
                ))
    }

    fn js_items(&mut self, a: usize, b: usize, container: Option<&str>, scope: Scope, depth: u32) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut i = a;
        while i < b {
            if scope == Scope::Class || scope == Scope::Interface {
                i = self.js_member(i, b, container, scope) + 1;
                continue;
            }
            if !self.ident(i) || !self.js_statement_start(i, a) {
                // Decorators, stray punctuation; bracket groups are skipped whole.
                i = self.close(i) + 1;
                continue;
            }
            let start = i;
            let mut j = i;
            loop {
                match self.word(j) {
                    b"export" | b"declare" | b"abstract" => j += 1,
                    b"default" if j > start => j += 1,
                    b"async" if self.is(j + 1, b"function") => j += 1,
                    _ => break,
                }
            }
            let kw = self.word(j);
            match kw {
                b"function" => {
                    let mut n = j + 1;
                    if self.p(n, b'*') {
                        n += 1;
                    }
                    if self.ident(n) {
                        let end = self.js_function_end(n + 1, b);
                        let kind = SymbolKind::Function;
                        self.js_def(kind, n, start, j, end.0, end.1, container);
                        i = end.1 + 1;
                    } else {
                        i = j + 1;
                    }
                }
                b"class" | b"interface"
                    if self.ident(j + 1)
                        && !self.is(j + 1, b"extends")
                        && !self.is(j + 1, b"implements") =>
                {
                    let n = j + 1;
                    let open = self.js_body_open(n + 1, b);
                    let (kind, inner) = if kw == b"interface" {
                        (SymbolKind::Interface, Scope::Interface)
                    } else {
                        (SymbolKind::Class, Scope::Class)
                    };
                    let end = open.map_or(n, |o| self.close(o));
                    self.js_def(kind, n, start, j, open, end, container);
                    if let Some(o) = open {
                        let name = self.str_of(n);
                        self.js_items(o + 1, end.min(b), Some(name), inner, depth + 1);
                    }
                    i = end + 1;
                }
                b"enum"
                    if self.ident(j + 1) || (self.is(j, b"const") && self.is(j + 1, b"enum")) =>
                {
                    let n = j + 1;
                    let open = self.js_body_open(n + 1, b);
                    let end = open.map_or(n, |o| self.close(o));
                    self.js_def(SymbolKind::Enum, n, start, j, open, end, container);
                    if let Some(o) = open {
                        let name = self.str_of(n);
                        self.js_enum_members(o + 1, end.min(b), name);
                    }
                    i = end + 1;
                }
                b"const" if self.is(j + 1, b"enum") && self.ident(j + 2) => {
                    let n = j + 2;
                    let open = self.js_body_open(n + 1, b);
                    let end = open.map_or(n, |o| self.close(o));
                    self.js_def(SymbolKind::Enum, n, start, j, open, end, container);
                    if let Some(o) = open {
                        let name = self.str_of(n);
                        self.js_enum_members(o + 1, end.min(b), name);
                    }
                    i = end + 1;
                }
                b"type" if self.ident(j + 1) && (self.p(j + 2, b'=') || self.p(j + 2, b'<')) => {
                    let col = self.col(start);
                    let end = self.js_statement_end(j + 2, b, col);
                    self.js_def(SymbolKind::TypeAlias, j + 1, start, j, None, end, container);
                    i = end + 1;
                }
                b"namespace" | b"module"
                    if (self.ident(j + 1) || self.t(j + 1).kind == T::Str)
                        && !self.p(j + 1, b'.') =>
                {
                    // `namespace A.B {`, `declare module "x" {`.
                    let n = j + 1;
                    let mut k = n + 1;
                    while self.p(k, b'.') && self.ident(k + 1) {
                        k += 2;
                    }
                    if self.p(k, b'{') {
                        let close = self.close(k);
                        let last = k - 1;
                        let raw = self
                            .src
                            .get(self.t(n).start as usize..self.t(last).end as usize)
                            .unwrap_or("");
                        let name = strip_quotes(raw);
                        self.push(
                            Def {
                                kind: SymbolKind::Module,
                                name,
                                sel: (n, last),
                                range: (start, close),
                                sig_start: self.t(start).start as usize,
                                sig: SigEnd::Body(self.t(k).start as usize),
                            },
                            container,
                        );
                        self.js_items(k + 1, close.min(b), Some(name), Scope::Top, depth + 1);
                        i = close + 1;
                    } else {
                        i = j + 1;
                    }
                }
                b"const" | b"let" | b"var" => {
                    i = self.js_variables(start, j, b, container, scope) + 1;
                }
                _ => i = j + 1,
            }
        }
    }

    /// From after a function's name: the body `{` (after parameters and a return type) and
    /// the last token of the function.
    fn js_function_end(&self, mut k: usize, b: usize) -> (Option<usize>, usize) {
        if self.p(k, b'<') {
            k = self.angles(k, b) + 1;
        }
        if !self.p(k, b'(') {
            return (None, k.min(b.saturating_sub(1)));
        }
        let params = self.close(k);
        let line = self.t(params).line;
        k = params + 1;
        if self.p(k, b':') {
            k = self.js_skip_type(k + 1, b);
        }
        if self.p(k, b'{') {
            return (Some(k), self.close(k));
        }
        // No body: an overload signature or a declaration.
        let end = if self.p(k, b';') {
            k
        } else {
            k.saturating_sub(1)
        };
        let _ = line;
        (None, end.max(params))
    }

    /// Skips a TypeScript type annotation from `k`; returns the first token after it
    /// (a `{` body, `=`, `;`, `,`, or a closing bracket).
    fn js_skip_type(&self, k: usize, b: usize) -> usize {
        self.js_skip_type_to(k, b, false)
    }

    /// [`Self::js_skip_type`]; with `arrow`, a top-level `=>` ends the type too (the
    /// return type of an arrow function).
    fn js_skip_type_to(&self, mut k: usize, b: usize, arrow: bool) -> usize {
        let start_line = self.t(k).line;
        let mut first = true;
        while k < b {
            let t = self.t(k);
            if t.kind == T::Punct {
                match t.b {
                    b'{' if !first => {
                        // An object type after `|`/`&`/`=>`/`,` is still the type; a `{`
                        // after a complete type is the body.
                        let prev = self.t(k.saturating_sub(1));
                        if prev.kind == T::Punct
                            && matches!(prev.b, b'|' | b'&' | b'>' | b':' | b'(' | b',')
                            && !(k > 0 && self.p2(k - 1, b')', b'{'))
                            && (prev.b != b'>' || self.p2(k.saturating_sub(2), b'=', b'>'))
                        {
                            k = self.close(k) + 1;
                            continue;
                        }
                        return k;
                    }
                    b'{' | b'(' | b'[' => {
                        k = self.close(k) + 1;
                        first = false;
                        continue;
                    }
                    b'<' => {
                        k = self.angles(k, b) + 1;
                        first = false;
                        continue;
                    }
                    b'=' if arrow || !self.p2(k, b'=', b'>') => return k,
                    b';' | b',' | b')' | b']' | b'}' => return k,
                    _ => {}
                }
            } else if !first
                && self.first_on_line(k)
                && t.line > start_line
                && !self.js_continues(k)
            {
                return k;
            }
            first = false;
            k += 1;
        }
        b
    }

    /// From after a class / interface / enum name: its body `{` (past heritage clauses).
    fn js_body_open(&self, mut k: usize, b: usize) -> Option<usize> {
        while k < b {
            let t = self.t(k);
            if t.kind == T::Punct {
                match t.b {
                    b'{' => return Some(k),
                    b'<' => {
                        k = self.angles(k, b) + 1;
                        continue;
                    }
                    b'(' | b'[' => {
                        k = self.close(k) + 1;
                        continue;
                    }
                    b';' | b'}' => return None,
                    _ => {}
                }
            }
            k += 1;
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn js_def(
        &mut self,
        kind: SymbolKind,
        n: usize,
        start: usize,
        sig_from: usize,
        body: Option<usize>,
        end: usize,
        container: Option<&str>,
    ) {
        let _ = sig_from;
        let sig = match body {
            Some(o) => SigEnd::Body(self.t(o).start as usize),
            None => SigEnd::FirstLine,
        };
        let raw = self.str_of(n);
        let name = strip_quotes(raw);
        self.push(
            Def {
                kind,
                name,
                sel: (n, n),
                range: (start, end),
                sig_start: self.t(start).start as usize,
                sig,
            },
            container,
        );
    }

    fn js_enum_members(&mut self, a: usize, b: usize, enum_name: &str) {
        let mut i = a;
        while i < b {
            if self.ident(i) || self.t(i).kind == T::Str {
                let mut k = i + 1;
                while k < b && !self.p(k, b',') {
                    k = self.close(k) + 1;
                }
                let end = k.saturating_sub(1).max(i);
                let name = strip_quotes(self.str_of(i));
                self.push(
                    Def {
                        kind: SymbolKind::EnumMember,
                        name,
                        sel: (i, i),
                        range: (i, end),
                        sig_start: self.t(i).start as usize,
                        sig: SigEnd::FirstLine,
                    },
                    Some(enum_name),
                );
                i = k + 1;
            } else {
                i = self.close(i) + 1;
            }
        }
    }

    /// `const a = 1, f = () => {}`: returns the last token of the declaration.
    fn js_variables(
        &mut self,
        start: usize,
        kw: usize,
        b: usize,
        container: Option<&str>,
        scope: Scope,
    ) -> usize {
        let is_const = self.is(kw, b"const");
        let col = self.col(start);
        let mut k = kw + 1;
        let mut decls: Vec<(usize, usize, usize)> = Vec::new(); // (name, value start or NONE, last)
        loop {
            let name_at = k;
            let named = self.ident(name_at);
            // Skip to `=`, `,`, or the end, past a type annotation.
            let mut m = if named { k + 1 } else { self.close(k) + 1 };
            if self.p(m, b'!') {
                m += 1;
            }
            if self.p(m, b':') {
                m = self.js_skip_type(m + 1, b);
            }
            let mut value = None;
            if self.p(m, b'=') && !self.p2(m, b'=', b'>') {
                value = Some(m + 1);
                m += 1;
            }
            // The end of this declarator: `,` / `;` at this level, or a new statement line.
            let mut e = m;
            while e < b {
                if self.p(e, b',') || self.p(e, b';') {
                    break;
                }
                if e > m && self.first_on_line(e) && self.col(e) <= col && !self.js_continues(e) {
                    break;
                }
                if self.p(e, b'}') || self.p(e, b')') || self.p(e, b']') {
                    break;
                }
                e = self.close(e) + 1;
            }
            let last = e.saturating_sub(1).max(name_at);
            if named {
                decls.push((name_at, value.map_or(usize::MAX, |v| v), last));
            }
            if self.p(e, b',') && e < b {
                k = e + 1;
                continue;
            }
            let end = if self.p(e, b';') { e } else { last };
            let single = decls.len() == 1;
            let prefix_text = |p: &Self| {
                let first = decls.first().map_or(kw, |d| d.0);
                let mut s = one_line_full(
                    p.src
                        .get(p.t(start).start as usize..p.t(first).start as usize)
                        .unwrap_or(""),
                );
                if !s.is_empty() {
                    s.push(' ');
                }
                s
            };
            let prefix = if single {
                String::new()
            } else {
                prefix_text(self)
            };
            for &(n, v, l) in &decls {
                let (s, last) = if single { (start, end) } else { (n, l) };
                let before = self.out.len();
                let fn_body = if v == usize::MAX {
                    None
                } else {
                    self.js_function_value(v, l + 1)
                };
                match fn_body {
                    Some((ValueKind::Function, body)) => {
                        let kind = if scope == Scope::Class {
                            SymbolKind::Method
                        } else {
                            SymbolKind::Function
                        };
                        self.js_def(kind, n, s, s, body, last, container);
                    }
                    Some((ValueKind::Class, body)) => {
                        self.js_def(SymbolKind::Class, n, s, s, body, last, container);
                        if let Some(o) = body {
                            let name = self.str_of(n);
                            let close = self.close(o).min(b);
                            self.js_items(o + 1, close, Some(name), Scope::Class, 1);
                        }
                    }
                    None if is_const
                        && scope == Scope::Top
                        && !(v != usize::MAX && self.is(v, b"require")) =>
                    {
                        self.js_def(SymbolKind::Constant, n, s, s, None, last, container);
                    }
                    None => {}
                }
                if !single && self.out.len() > before {
                    self.prefix_signature(before, &prefix);
                }
            }
            return end;
        }
    }

    /// Whether the value at `v` (ending before `e`) is a function or a class expression,
    /// with its body.
    fn js_function_value(&self, mut v: usize, e: usize) -> Option<(ValueKind, Option<usize>)> {
        if self.is(v, b"async") {
            v += 1;
        }
        match self.word(v) {
            b"function" => {
                let mut k = v + 1;
                if self.p(k, b'*') {
                    k += 1;
                }
                if self.ident(k) {
                    k += 1;
                }
                let (body, _) = self.js_function_end(k, e);
                return Some((ValueKind::Function, body));
            }
            b"class" => {
                let body = self.js_body_open(v + 1, e);
                return Some((ValueKind::Class, body));
            }
            _ => {}
        }
        // Arrow functions: `x => ...`, `(a, b) => ...`, `<T>(a: T): R => ...`.
        let mut k = v;
        if self.p(k, b'<') {
            k = self.angles(k, e) + 1;
        }
        if self.ident(k) && self.p2(k + 1, b'=', b'>') {
            k += 1;
        } else if self.p(k, b'(') {
            k = self.close(k) + 1;
            if self.p(k, b':') {
                k = self.js_skip_type_to(k + 1, e, true);
                // The return type ends at the arrow.
                while k < e && !self.p2(k, b'=', b'>') && !self.p(k, b';') {
                    k = self.close(k) + 1;
                }
            }
        } else {
            return None;
        }
        if !self.p2(k, b'=', b'>') {
            return None;
        }
        // The body is a block or an expression (the signature ends where it starts).
        let body = (k + 2 < e).then_some(k + 2);
        Some((ValueKind::Function, body))
    }

    /// A class or interface member at `i`; returns its last token.
    fn js_member(&mut self, i: usize, b: usize, container: Option<&str>, scope: Scope) -> usize {
        let start = i;
        let mut j = i;
        // Decorators.
        while self.p(j, b'@') {
            j += 1;
            while self.ident(j) {
                j += 1;
                if self.p(j, b'.') {
                    j += 1;
                } else {
                    break;
                }
            }
            if self.p(j, b'(') {
                j = self.close(j) + 1;
            }
        }
        let after_decorators = j;
        // Modifiers (a modifier followed by `(`, `=`, `:`, `;`, `?` is the member's name).
        loop {
            let w = self.word(j);
            let modifier = matches!(
                w,
                b"public"
                    | b"private"
                    | b"protected"
                    | b"static"
                    | b"readonly"
                    | b"abstract"
                    | b"async"
                    | b"declare"
                    | b"override"
                    | b"accessor"
                    | b"get"
                    | b"set"
            );
            let next = self.t(j + 1);
            let names_next = next.kind == T::Ident
                || next.kind == T::Str
                || (next.kind == T::Punct && matches!(next.b, b'#' | b'[' | b'*'));
            if modifier && names_next && self.t(j + 1).line == self.t(j).line {
                j += 1;
            } else {
                break;
            }
        }
        if self.p(j, b'*') {
            j += 1;
        }
        if self.p(j, b';') || self.p(j, b',') {
            return j;
        }
        if self.p(j, b'{') {
            // `static { }` blocks and stray blocks.
            return self.close(j);
        }
        // The name.
        let (n_first, n_last) = if self.p(j, b'#') && self.ident(j + 1) {
            (j, j + 1)
        } else if self.ident(j) || self.t(j).kind == T::Str || self.t(j).kind == T::Num {
            (j, j)
        } else if self.p(j, b'[') {
            (j, self.close(j))
        } else {
            return self.close(j).max(i);
        };
        let mut k = n_last + 1;
        if self.p(k, b'?') || self.p(k, b'!') {
            k += 1;
        }
        let computed = self.p(n_first, b'[');
        if self.p(k, b'(') || self.p(k, b'<') {
            let (body, end) = self.js_function_end(k, b);
            if computed {
                // Index signatures `[key: string]: T` and computed names: not indexed here.
                return end;
            }
            let name = self
                .src
                .get(self.t(n_first).start as usize..self.t(n_last).end as usize)
                .map(strip_quotes)
                .unwrap_or("");
            let kind = if name == "constructor" {
                SymbolKind::Constructor
            } else {
                SymbolKind::Method
            };
            let sig = match body {
                Some(o) => SigEnd::Body(self.t(o).start as usize),
                None => SigEnd::FirstLine,
            };
            // Without a body the member ends at `;` (not included) or the end of its line.
            let end = if body.is_none() && !self.p(end, b';') {
                self.js_statement_end(k, b, self.col(start))
            } else {
                end
            };
            let end = if body.is_none() && self.p(end, b';') && end > n_last {
                end - 1
            } else {
                end
            };
            self.push(
                Def {
                    kind,
                    name,
                    sel: (n_first, n_last),
                    range: (start, end),
                    sig_start: self.t(after_decorators).start as usize,
                    sig,
                },
                container,
            );
            let _ = scope;
            return end;
        }
        // A field: `name = value`, `name: T = value`, `name;`.
        let col = self.col(start);
        if self.p(k, b':') {
            k = self.js_skip_type(k + 1, b);
        }
        let end = self.js_statement_end(k, b, col);
        if scope == Scope::Class
            && !computed
            && self.p(k, b'=')
            && !self.p2(k, b'=', b'>')
            && let Some((ValueKind::Function, body)) = self.js_function_value(k + 1, end + 1)
        {
            let name = self
                .src
                .get(self.t(n_first).start as usize..self.t(n_last).end as usize)
                .unwrap_or("");
            let sig = match body {
                Some(o) => SigEnd::Body(self.t(o).start as usize),
                None => SigEnd::FirstLine,
            };
            let end = match body {
                Some(o) => self.close(o).max(end),
                None => end,
            };
            self.push(
                Def {
                    kind: SymbolKind::Method,
                    name,
                    sel: (n_first, n_last),
                    range: (start, end),
                    sig_start: self.t(start).start as usize,
                    sig,
                },
                container,
            );
            return end;
        }
        end.max(i)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// File or namespace level.
    Top,
    Class,
    Interface,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JavaIn {
    Top,
    Class,
    Interface,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Function,
    Class,
}

/// Words that precede a `(` without being a function's name.
fn is_c_non_name(w: &[u8]) -> bool {
    matches!(
        w,
        b"if"
            | b"while"
            | b"for"
            | b"switch"
            | b"return"
            | b"sizeof"
            | b"alignof"
            | b"alignas"
            | b"_Alignas"
            | b"decltype"
            | b"typeof"
            | b"__typeof__"
            | b"__attribute__"
            | b"__declspec"
            | b"noexcept"
            | b"throw"
            | b"requires"
            | b"static_assert"
            | b"_Static_assert"
            | b"catch"
            | b"__asm__"
            | b"asm"
            | b"defined"
    )
}

#[cfg(test)]
mod tests;
