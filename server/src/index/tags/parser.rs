//! The tag scanner's generic parser helpers: token access, bracket matching, spans, and recording definitions.

use memchr::{memchr_iter, memrchr};

use super::{Define, EOF, NONE, SigSource, T, Tok};
use crate::analysis::text::{line_breaks, prefixed};
use crate::analysis::{Language, Span, Symbol, SymbolKind, TextPoint};

/// Where a definition's signature ends.
#[derive(Clone, Copy)]
pub(super) enum SigEnd {
    /// At this byte (the start of the body).
    Body(usize),
    /// No body: the first line of the definition.
    FirstLine,
}

pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) text: &'a [u8],
    pub(super) toks: &'a [Tok],
    pub(super) lang: Language,
    pub(super) out: Vec<Symbol>,
    /// Parallel to `out`.
    pub(super) sigs: Vec<SigSource>,
    pub(super) with_signatures: bool,
}

/// One definition to record.
pub(super) struct Def<'n> {
    pub(super) kind: SymbolKind,
    pub(super) name: &'n str,
    /// First and last token of the name.
    pub(super) sel: (usize, usize),
    /// First and last token of the whole definition.
    pub(super) range: (usize, usize),
    pub(super) sig_start: usize,
    pub(super) sig: SigEnd,
}

impl<'a> Parser<'a> {
    pub(super) fn t(&self, i: usize) -> Tok {
        self.toks.get(i).copied().unwrap_or(EOF)
    }

    pub(super) fn word(&self, i: usize) -> &'a [u8] {
        let t = self.t(i);
        if t.kind != T::Ident {
            return &[];
        }
        self.text
            .get(t.start as usize..t.end as usize)
            .unwrap_or(&[])
    }

    pub(super) fn is(&self, i: usize, w: &[u8]) -> bool {
        self.word(i) == w
    }

    pub(super) fn p(&self, i: usize, c: u8) -> bool {
        let t = self.t(i);
        t.kind == T::Punct && t.b == c
    }

    pub(super) fn ident(&self, i: usize) -> bool {
        self.t(i).kind == T::Ident
    }

    pub(super) fn str_of(&self, i: usize) -> &'a str {
        let t = self.t(i);
        self.src.get(t.start as usize..t.end as usize).unwrap_or("")
    }

    /// `::` at `i` (two adjacent colons).
    pub(super) fn path_sep(&self, i: usize) -> bool {
        self.p(i, b':') && self.p(i + 1, b':') && self.t(i).end == self.t(i + 1).start
    }

    /// Two adjacent punctuation tokens `a b` at `i` (`=>`, `->`).
    pub(super) fn p2(&self, i: usize, a: u8, b: u8) -> bool {
        self.p(i, a) && self.p(i + 1, b) && self.t(i).end == self.t(i + 1).start
    }

    pub(super) fn col(&self, i: usize) -> u32 {
        let t = self.t(i);
        t.start.saturating_sub(t.line_start)
    }

    /// Whether token `i` is the first on its line.
    pub(super) fn first_on_line(&self, i: usize) -> bool {
        match i.checked_sub(1) {
            None => true,
            Some(prev) => self.t(prev).end <= self.t(i).line_start,
        }
    }

    /// The index of the bracket closing the one at `i` (or `i` itself when not a bracket).
    pub(super) fn close(&self, i: usize) -> usize {
        let t = self.t(i);
        if t.kind == T::Punct && matches!(t.b, b'(' | b'[' | b'{') && t.pair != NONE {
            (t.pair as usize).max(i)
        } else {
            i
        }
    }

    pub(super) fn is_open(&self, i: usize) -> bool {
        let t = self.t(i);
        t.kind == T::Punct && matches!(t.b, b'(' | b'[' | b'{')
    }

    /// From `i` (at `<`): the index of the matching `>` (not counting `->`, `=>`), skipping
    /// bracket groups, never past `b`.
    pub(super) fn angles(&self, mut i: usize, b: usize) -> usize {
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
    pub(super) fn to_body(&self, mut i: usize, b: usize) -> (Option<usize>, usize) {
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
    pub(super) fn to_semi(&self, mut i: usize, b: usize) -> usize {
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

    pub(super) fn push(&mut self, d: Def<'_>, container: Option<&str>) {
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
        let header_end = match source {
            SigSource::Header(_, body) => (body as usize).clamp(range.start_byte, range.end_byte),
            _ => range.end_byte,
        };
        self.sigs.push(source);
        self.out.push(Symbol {
            name: d.name.to_owned(),
            kind: d.kind,
            range,
            selection_range,
            container: container.map(str::to_owned),
            signature,
            header_end,
            children: Vec::new(),
        });
    }

    /// Prefixes the signature of symbol `index` (`const ` before one of several declarators).
    pub(super) fn prefix_signature(&mut self, index: usize, prefix: &str) {
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

    pub(super) fn push_define(&mut self, d: &Define) {
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
            header_end: e,
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
}
