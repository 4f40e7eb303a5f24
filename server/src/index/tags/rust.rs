//! Rust items for the tag scanner: functions, structs and their fields, enums and variants,
//! traits, impls, modules, constants.

use super::parser::{Def, Parser, SigEnd};
use super::{MAX_DEPTH, T};
use crate::analysis::SymbolKind;

impl Parser<'_> {
    pub(super) fn rust_items(
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
                    if let Some(open) = body.filter(|&o| self.p(o, b'{')) {
                        let name = self.str_of(name_at);
                        self.rust_fields(open + 1, self.close(open), name);
                    }
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

    /// The named fields of a struct body `a..b` (`[pub] name: Type,`).
    fn rust_fields(&mut self, a: usize, b: usize, struct_name: &str) {
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
            let start = i;
            let mut k = i;
            if self.is(k, b"pub") {
                k += 1;
                if self.p(k, b'(') {
                    k = self.close(k) + 1;
                }
            }
            let mut end = k;
            while end < b && !self.p(end, b',') {
                end = self.close(end) + 1;
            }
            if self.ident(k) && self.p(k + 1, b':') && !self.path_sep(k + 1) {
                let name = self.str_of(k);
                self.push(
                    Def {
                        kind: SymbolKind::Field,
                        name,
                        sel: (k, k),
                        range: (start, end.saturating_sub(1).max(k)),
                        sig_start: self.t(start).start as usize,
                        sig: SigEnd::FirstLine,
                    },
                    Some(struct_name),
                );
            }
            i = end + 1;
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
}
