//! The tag scanner's tokenizer: skips comments, strings and preprocessor lines, pairs brackets, keeps `#define`s.

use memchr::{memchr, memchr2, memchr3, memrchr};

use super::{Define, Fam, NONE, T, Tok};
use crate::analysis::text::line_breaks;

pub(super) struct Lexer<'a> {
    pub(super) fam: Fam,
    pub(super) cpp: bool,
    pub(super) text: &'a [u8],
    pub(super) toks: Vec<Tok>,
    pub(super) defines: Vec<Define>,
    /// Open brackets not yet closed (token indices).
    pub(super) stack: Vec<u32>,
    /// Line number and line start at byte `seen`.
    pub(super) line: u32,
    pub(super) line_start: usize,
    pub(super) seen: usize,
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

    pub(super) fn run(&mut self) {
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
