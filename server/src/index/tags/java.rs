//! Java items for the tag scanner: classes, records, interfaces, enums, methods, constructors, constants.

use super::MAX_DEPTH;
use super::parser::{Def, Parser, SigEnd};
use crate::analysis::SymbolKind;
use crate::analysis::text::one_line_full;

impl Parser<'_> {
    pub(super) fn java_body(
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
                let kind = if within == JavaIn::Interface || (is_static && is_final) {
                    SymbolKind::Constant
                } else {
                    SymbolKind::Field
                };
                if within != JavaIn::Top {
                    self.java_constants(kind, start, name_at, end, container);
                }
                i = end + 1;
            } else {
                i = k.max(i) + 1;
            }
        }
    }

    /// The declarators of a field `start..=end` whose first name is `first`.
    fn java_constants(
        &mut self,
        kind: SymbolKind,
        start: usize,
        first: usize,
        end: usize,
        container: Option<&str>,
    ) {
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
                    kind,
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
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum JavaIn {
    Top,
    Class,
    Interface,
}
