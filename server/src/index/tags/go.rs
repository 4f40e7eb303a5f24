//! Go items for the tag scanner: functions, methods, types, interfaces, constants.

use super::parser::{Def, Parser, SigEnd};
use crate::analysis::SymbolKind;

impl Parser<'_> {
    pub(super) fn go_items(&mut self, a: usize, b: usize) {
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
        if kind == SymbolKind::Struct {
            // Named fields (`A, B int`); embedded types have no name of their own.
            let close = self.close(k + 1).min(end);
            let mut m = k + 2;
            while m < close {
                let e = self.go_spec_end(m, close);
                let mut names = vec![m];
                let mut n = m + 1;
                while self.p(n, b',') && self.ident(n + 1) {
                    names.push(n + 1);
                    n += 2;
                }
                // Tokens after the names make a type; `io.Reader` and a lone name are embedded.
                if self.ident(m) && n <= e && !self.p(n, b'.') {
                    for at in names {
                        let fname = self.str_of(at);
                        self.push(
                            Def {
                                kind: SymbolKind::Field,
                                name: fname,
                                sel: (at, at),
                                range: (m, e),
                                sig_start: self.t(m).start as usize,
                                sig: SigEnd::FirstLine,
                            },
                            Some(name),
                        );
                    }
                }
                m = e + 1;
            }
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
}
