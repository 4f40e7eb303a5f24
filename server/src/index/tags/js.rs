//! JavaScript / TypeScript / TSX items for the tag scanner: functions, classes, interfaces, enums, variables, class members.

use super::parser::{Def, Parser, SigEnd};
use super::{MAX_DEPTH, T};
use crate::analysis::SymbolKind;
use crate::analysis::text::{one_line_full, strip_quotes};

impl Parser<'_> {
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
        // A type's closing `>` (`| Result<T, E>`) ends a line like any name: a declaration
        // keyword after it starts the next statement.
        if prev.kind == T::Punct
            && prev.b == b'>'
            && !self.p2(k.saturating_sub(2), b'=', b'>')
            && matches!(
                self.word(k),
                b"export"
                    | b"import"
                    | b"function"
                    | b"class"
                    | b"interface"
                    | b"type"
                    | b"const"
                    | b"let"
                    | b"var"
                    | b"enum"
                    | b"declare"
                    | b"namespace"
                    | b"abstract"
                    | b"async"
            )
        {
            return false;
        }
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

    pub(super) fn js_items(
        &mut self,
        a: usize,
        b: usize,
        container: Option<&str>,
        scope: Scope,
        depth: u32,
    ) {
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
                    // `type X = { … }`: the type literal's members are X's.
                    let mut eq = j + 2;
                    if self.p(eq, b'<') {
                        eq = self.angles(eq, b) + 1;
                    }
                    if self.p(eq, b'=') && self.p(eq + 1, b'{') {
                        let open = eq + 1;
                        let close = self.close(open);
                        if close == end || (close + 1 == end && self.p(end, b';')) {
                            let name = self.str_of(j + 1);
                            self.js_items(open + 1, close, Some(name), Scope::Interface, depth + 1);
                        }
                    }
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
                // Type arguments of a call (`new Map<K, V>()`, `f<T>(x)`): their commas
                // separate no declarators.
                if self.p(e, b'<')
                    && e > m
                    && self.ident(e - 1)
                    && self.t(e - 1).end == self.t(e).start
                {
                    let gt = self.angles(e, b);
                    if self.p(gt + 1, b'(') {
                        e = gt + 1;
                        continue;
                    }
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
        // Any other field of a class, or a property of an interface or type literal.
        if (scope == Scope::Class || scope == Scope::Interface) && !computed {
            let name = self
                .src
                .get(self.t(n_first).start as usize..self.t(n_last).end as usize)
                .map(strip_quotes)
                .unwrap_or("");
            let last = if self.p(end, b';') || self.p(end, b',') {
                end.saturating_sub(1)
            } else {
                end
            }
            .min(b.saturating_sub(1))
            .max(n_last);
            self.push(
                Def {
                    kind: SymbolKind::Field,
                    name,
                    sel: (n_first, n_last),
                    range: (start, last),
                    sig_start: self.t(after_decorators).start as usize,
                    sig: SigEnd::FirstLine,
                },
                container,
            );
        }
        end.max(i)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// File or namespace level.
    Top,
    Class,
    Interface,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Function,
    Class,
}
