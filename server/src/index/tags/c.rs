//! C and C++ items for the tag scanner: functions, records, enums, typedefs, namespaces, templates.

use super::parser::{Def, Parser, SigEnd};
use super::{MAX_DEPTH, T};
use crate::analysis::{Language, SymbolKind};

impl Parser<'_> {
    pub(super) fn c_body(
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
