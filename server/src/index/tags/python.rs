//! Python items for the tag scanner: functions, classes, module constants, variables and type
//! aliases, class attributes and the attributes `__init__` assigns (blocks by indentation).

use super::MAX_DEPTH;
use super::parser::{Def, Parser, SigEnd};
use crate::analysis::SymbolKind;
use crate::analysis::symbols::python_assignment_kind;

impl Parser<'_> {
    /// The statements of a block `a..b`; nested blocks other than class bodies are skipped.
    pub(super) fn py_block(
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
                    if !is_class && in_class && name == "__init__" && c < stmt_end {
                        self.py_init_attributes(c + 1, stmt_end, container);
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
                _ if (in_class || container.is_none()) && self.ident(i) => {
                    // `name = …` / `name: T = …` (`name: T` alone too) at module level or
                    // in a class body.
                    let assign = self.p(i + 1, b'=') && !self.p2(i + 1, b'=', b'=');
                    let mut eq = None;
                    let annotated = self.p(i + 1, b':') && {
                        let mut c = i + 2;
                        while c < stmt_end && !self.p(c, b'=') {
                            c = self.close(c) + 1;
                        }
                        if c < stmt_end && !self.p2(c, b'=', b'=') {
                            eq = Some(c);
                        }
                        c >= stmt_end || !self.p2(c, b'=', b'=')
                    };
                    if assign {
                        eq = Some(i + 1);
                    }
                    if assign || annotated {
                        let name = self.str_of(i);
                        let kind = if in_class {
                            SymbolKind::Field
                        } else {
                            let annotation = annotated.then(|| {
                                let end = eq.unwrap_or(stmt_end);
                                let from = self.t(i + 2).start as usize;
                                let to = self.t(end.saturating_sub(1)).end as usize;
                                self.src.get(from..to.max(from)).unwrap_or("")
                            });
                            let subscript =
                                eq.is_some_and(|e| self.py_is_subscript(e + 1, stmt_end));
                            python_assignment_kind(name, annotation, subscript)
                        };
                        let last = self.py_last(i, stmt_end);
                        self.py_plain(kind, i, i, last, container);
                    }
                    decorator = None;
                }
                _ => decorator = None,
            }
            i = stmt_end.max(i + 1);
        }
    }

    /// Whether tokens `k..end` are one subscript: a dotted name then one `[…]`.
    fn py_is_subscript(&self, mut k: usize, end: usize) -> bool {
        if !self.ident(k) {
            return false;
        }
        k += 1;
        while self.p(k, b'.') && self.ident(k + 1) {
            k += 2;
        }
        self.p(k, b'[') && self.close(k) + 1 == end
    }

    /// `self.name = …` statements directly in `__init__`'s body (`a..b`): fields of the
    /// class, the first assignment of each name.
    fn py_init_attributes(&mut self, a: usize, b: usize, class: Option<&str>) {
        let mut seen: Vec<&[u8]> = Vec::new();
        let mut i = a;
        while i < b {
            let end = self.py_statement_end(i, self.col(i), b);
            if self.is(i, b"self")
                && self.p(i + 1, b'.')
                && self.ident(i + 2)
                && ((self.p(i + 3, b'=') && !self.p2(i + 3, b'=', b'=')) || self.p(i + 3, b':'))
            {
                let name = self.word(i + 2);
                let declared = self.out.iter().any(|s| {
                    s.kind == SymbolKind::Field
                        && s.container.as_deref() == class
                        && s.name.as_bytes() == name
                });
                if !seen.contains(&name) && !declared {
                    seen.push(name);
                    let last = self.py_last(i, end);
                    let text = self.str_of(i + 2);
                    self.push(
                        Def {
                            kind: SymbolKind::Field,
                            name: text,
                            sel: (i + 2, i + 2),
                            range: (i, last),
                            sig_start: self.t(i).start as usize,
                            sig: SigEnd::FirstLine,
                        },
                        class,
                    );
                }
            }
            i = end.max(i + 1);
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
}
