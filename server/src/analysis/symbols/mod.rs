//! Symbols, enclosing scopes, imports and identifiers extracted from tree-sitter trees.
//!
//! Everything here is a pure function of `(Language, &Syntax, &str)`. The walks only follow
//! named children of declaration containers (source files, class / impl / module bodies,
//! export and template wrappers, preprocessor blocks, ERROR nodes) and never enter function
//! bodies. Node kinds are classified through a per-language table indexed by
//! `kind_id` (built once), not by comparing kind strings. Nothing here panics on any
//! tree/text pair, even mismatched ones: text is only read through `str::get`, and
//! recursion stops at a fixed depth.
//!
//! Here: the public API, the walk context (`Ctx`), the generic walk and the dispatch;
//! `kinds.rs` holds the node kind and field tables, and one file per language family
//! (`rust.rs`, `python.rs`, `js.rs`, `go.rs`, `java.rs`, `c.rs`) that family's `visit_*`
//! and `imports_*` with their helpers.

mod c;
mod go;
mod java;
mod js;
mod kinds;
mod python;
pub(crate) use python::assignment_kind as python_assignment_kind;
mod rust;

use std::collections::HashSet;

use tree_sitter::Node;

use self::kinds::{K, Tables, field, tables};
use super::text::{one_line, one_line_full, strip_quotes};
use super::{Import, Language, Span, Symbol, SymbolKind, Syntax, TextPoint};

/// How many nested containers (bodies, wrappers, ERROR nodes) the walks follow.
const MAX_DEPTH: u32 = 48;

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// The hierarchical symbols of a file (children sorted by position).
pub fn symbols(lang: Language, syntax: &Syntax, text: &str) -> Vec<Symbol> {
    let Some(cx) = Ctx::new(lang, text, None) else {
        return Vec::new();
    };
    syntax.symbols_by_root(|root| {
        let mut out = Vec::new();
        cx.walk_children(root, Scope::TOP, &mut out, 0);
        out
    })
}

/// The chain of symbols whose range contains `byte`, outermost first, children left empty.
///
/// Only the path from the root to `byte` is examined; the symbols of the rest of the file
/// are never computed.
pub fn enclosing_scopes(lang: Language, syntax: &Syntax, text: &str, byte: usize) -> Vec<Symbol> {
    let Some(cx) = Ctx::new(lang, text, Some(byte)) else {
        return Vec::new();
    };
    let mut chain: Vec<Symbol> = Vec::new();
    for (root, _, _) in syntax.pieces_overlapping(byte, byte) {
        let mut found = Vec::new();
        cx.walk_children(root, Scope::TOP, &mut found, 0);
        // Pieces of a wrapped file share the head and the tail: their symbols come once.
        for s in flatten(found) {
            // Fields and attributes are not scopes: a cursor on one is in its type.
            if s.range.contains_byte(byte) && !chain.contains(&s) && s.kind != SymbolKind::Field {
                chain.push(s);
            }
        }
    }
    chain
}

/// The import / use / include statements at the top level of a file.
pub fn imports(lang: Language, syntax: &Syntax, text: &str) -> Vec<Import> {
    let Some(cx) = Ctx::new(lang, text, None) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (root, start, end) in syntax.pieces() {
        let mut found = Vec::new();
        cx.imports_in(root, &mut found, 0);
        // each import once: from the piece that speaks for its bytes
        out.extend(
            found
                .into_iter()
                .filter(|i| i.range.start_byte >= start && i.range.start_byte < end),
        );
    }
    out
}

/// The distinct identifier-like names (longer than one character) inside
/// `start_byte..end_byte`, in order of first appearance.
pub fn identifiers_in(
    syntax: &Syntax,
    text: &str,
    start_byte: usize,
    end_byte: usize,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if start_byte >= end_byte {
        return names;
    }
    // Whether each kind id is identifier-like, looked up once per kind: 0 unknown, 1 yes, 2 no.
    let mut memo = vec![0u8; syntax.language().node_kind_count()];
    let mut is_identifier = |node: Node<'_>| match memo.get_mut(usize::from(node.kind_id())) {
        Some(0) | None => {
            let yes = is_identifier_kind(node.kind());
            if let Some(slot) = memo.get_mut(usize::from(node.kind_id())) {
                *slot = if yes { 1 } else { 2 };
            }
            yes
        }
        Some(v) => *v == 1,
    };
    let mut seen: HashSet<&str> = HashSet::new();
    for (root, piece_start, piece_end) in syntax.pieces_overlapping(start_byte, end_byte) {
        identifiers_under(
            root,
            text,
            start_byte.max(piece_start),
            end_byte.min(piece_end),
            &mut is_identifier,
            &mut seen,
            &mut names,
        );
    }
    names
}

/// [`identifiers_in`] below one root.
fn identifiers_under<'t>(
    root: Node<'_>,
    text: &'t str,
    start_byte: usize,
    end_byte: usize,
    is_identifier: &mut impl FnMut(Node<'_>) -> bool,
    seen: &mut HashSet<&'t str>,
    names: &mut Vec<String>,
) {
    let mut cursor = root.walk();
    'walk: loop {
        let node = cursor.node();
        if node.start_byte() >= end_byte {
            // Nodes are visited in document order: nothing after this can overlap.
            break;
        }
        let overlaps = node.end_byte() > start_byte;
        if overlaps && node.child_count() > 0 {
            if cursor.goto_first_child_for_byte(start_byte).is_some() {
                continue;
            }
        } else if overlaps
            && node.is_named()
            && node.start_byte() >= start_byte
            && node.end_byte() <= end_byte
            && is_identifier(node)
            && let Some(name) = text.get(node.start_byte()..node.end_byte())
            && name.chars().nth(1).is_some()
            && seen.insert(name)
        {
            names.push(name.to_owned());
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
}

/// Pre-order flattening of a symbol tree with each symbol's depth (0 for top level).
pub fn outline(symbols: &[Symbol]) -> Vec<(usize, &Symbol)> {
    fn rec<'s>(symbols: &'s [Symbol], depth: usize, out: &mut Vec<(usize, &'s Symbol)>) {
        for s in symbols {
            out.push((depth, s));
            rec(&s.children, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    rec(symbols, 0, &mut out);
    out
}

/// Pre-order flattening that moves the children out, so every returned symbol has none.
pub fn flatten(symbols: Vec<Symbol>) -> Vec<Symbol> {
    fn rec(symbols: Vec<Symbol>, out: &mut Vec<Symbol>) {
        for mut s in symbols {
            let children = std::mem::take(&mut s.children);
            out.push(s);
            rec(children, out);
        }
    }
    let mut out = Vec::with_capacity(symbols.len());
    rec(symbols, &mut out);
    out
}

fn is_identifier_kind(kind: &str) -> bool {
    matches!(
        kind,
        "identifier"
            | "type_identifier"
            | "field_identifier"
            | "property_identifier"
            | "private_property_identifier"
            | "shorthand_property_identifier"
            | "shorthand_property_identifier_pattern"
            | "shorthand_field_identifier"
            | "namespace_identifier"
            | "package_identifier"
    )
}

// ---------------------------------------------------------------------------
// Walk context
// ---------------------------------------------------------------------------

/// Languages that share extraction code. A new family is a file with its `visit_*` and
/// `imports_*`, a variant here and an entry in the `match`es of `Ctx::new`, `Ctx::visit`
/// and `Ctx::imports_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rust,
    Python,
    Js,
    Go,
    Java,
    C,
}

/// Where a definition sits.
#[derive(Clone, Copy)]
struct Scope<'s> {
    /// Name of the enclosing symbol.
    container: Option<&'s str>,
    /// Inside a class / impl / trait / interface body: functions are methods.
    in_type: bool,
    /// At module (or namespace) level: module-level constants are collected.
    top: bool,
}

impl Scope<'static> {
    const TOP: Scope<'static> = Scope {
        container: None,
        in_type: false,
        top: true,
    };
}

/// The extent of a definition including wrappers (export, decorators, templates...).
#[derive(Clone, Copy)]
struct Outer<'t> {
    /// The range starts where this node starts...
    start: Node<'t>,
    /// ...and ends where this one ends.
    end: Node<'t>,
    /// Byte where the signature starts.
    sig_start: usize,
}

impl<'t> Outer<'t> {
    fn of(node: Node<'t>) -> Outer<'t> {
        Outer {
            start: node,
            end: node,
            sig_start: node.start_byte(),
        }
    }

    /// The outer extent for `inner`, wrapped by `self`, with the signature starting at `inner`.
    fn wrap_sig_inner(self, inner: Node<'t>) -> Outer<'t> {
        Outer {
            sig_start: inner.start_byte(),
            ..self
        }
    }

    fn span(&self) -> Span {
        span_between(self.start, self.end)
    }
}

fn point(p: tree_sitter::Point) -> TextPoint {
    TextPoint {
        line: u32::try_from(p.row).unwrap_or(u32::MAX),
        col: u32::try_from(p.column).unwrap_or(u32::MAX),
    }
}

fn span_between(start: Node<'_>, end: Node<'_>) -> Span {
    let (a, b) = if end.end_byte() >= start.start_byte() {
        (start, end)
    } else {
        (start, start)
    };
    Span {
        start_byte: a.start_byte(),
        end_byte: b.end_byte(),
        start: point(a.start_position()),
        end: point(b.end_position()),
    }
}

/// Where a definition's signature ends.
#[derive(Clone, Copy)]
enum SigEnd {
    /// At this byte (the start of the body): the whole header, collapsed.
    Body(usize),
    /// No body: the first line of the definition.
    FirstLine,
}

struct Ctx<'a> {
    fam: Family,
    lang: Language,
    t: &'static Tables,
    text: &'a str,
    /// When set, only the path to this byte is walked (enclosing scopes).
    target: Option<usize>,
}

impl<'a> Ctx<'a> {
    fn new(lang: Language, text: &'a str, target: Option<usize>) -> Option<Ctx<'a>> {
        let fam = match lang {
            Language::Rust => Family::Rust,
            Language::Python => Family::Python,
            Language::TypeScript | Language::Tsx | Language::JavaScript => Family::Js,
            Language::Go => Family::Go,
            Language::Java => Family::Java,
            Language::C | Language::Cpp => Family::C,
            Language::PlainText => return None,
        };
        Some(Ctx {
            fam,
            lang,
            t: tables(lang)?,
            text,
            target,
        })
    }

    fn kind(&self, node: Node<'_>) -> K {
        match self.t.kinds.get(usize::from(node.kind_id())) {
            Some(&k) => k,
            None if node.is_error() => K::Error,
            None => K::Other,
        }
    }

    fn text_of(&self, node: Node<'_>) -> Option<&'a str> {
        self.text.get(node.start_byte()..node.end_byte())
    }

    /// A node's text as a name: quotes stripped from string literals, `None` when empty.
    fn name_of(&self, node: Node<'_>) -> Option<&'a str> {
        let text = self.text_of(node)?;
        let text = if self.kind(node) == K::String {
            strip_quotes(text)
        } else {
            text
        };
        let text = text.trim();
        (!text.is_empty()).then_some(text)
    }

    /// Whether the walk should look at `node` (always, unless looking for a target byte).
    fn wanted(&self, node: Node<'_>) -> bool {
        match self.target {
            Some(b) => node.start_byte() <= b && b <= node.end_byte(),
            None => true,
        }
    }

    fn signature(&self, sig_start: usize, end: SigEnd, outer_end: usize) -> String {
        match end {
            SigEnd::Body(body) => {
                let header = self.text.get(sig_start..body).unwrap_or("");
                one_line(header, true)
            }
            SigEnd::FirstLine => {
                let all = self.text.get(sig_start..outer_end).unwrap_or("");
                let first = all.split('\n').next().unwrap_or("");
                one_line(first, false)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn make(
        &self,
        kind: SymbolKind,
        name: &str,
        sel: Node<'_>,
        outer: &Outer<'_>,
        sig_end: SigEnd,
        container: Option<&str>,
        children: Vec<Symbol>,
    ) -> Symbol {
        let range = outer.span();
        Symbol {
            name: name.to_owned(),
            kind,
            range,
            selection_range: Span::from_node(&sel),
            container: container.map(str::to_owned),
            signature: self.signature(outer.sig_start, sig_end, range.end_byte),
            header_end: match sig_end {
                SigEnd::Body(b) => b.clamp(range.start_byte, range.end_byte),
                SigEnd::FirstLine => range.end_byte,
            },
            children,
        }
    }

    /// The collapsed text from `start` up to `first` plus a space: `const ` in
    /// `const a = 1, b = 2`, used to keep the keyword in each declarator's signature.
    fn prefix(&self, start: usize, first: Node<'_>) -> String {
        let mut p = one_line_full(self.text.get(start..first.start_byte()).unwrap_or(""));
        if !p.is_empty() {
            p.push(' ');
        }
        p
    }

    fn body_end(body: Option<Node<'_>>) -> SigEnd {
        match body {
            Some(b) => SigEnd::Body(b.start_byte()),
            None => SigEnd::FirstLine,
        }
    }

    // -----------------------------------------------------------------------
    // Generic walk
    // -----------------------------------------------------------------------

    /// Visits the named children of a declaration container.
    fn walk_children<'t>(
        &self,
        parent: Node<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let first = out.len();
        let mut cursor = parent.walk();
        let started = match self.target {
            // Jump straight to the first child ending at or after the target (this skips
            // whole subtrees, so it stays cheap in files with thousands of items), except
            // in TypeScript class bodies where decorators before the member must be seen.
            Some(b) if !(self.fam == Family::Js && self.kind(parent) == K::ClassBody) => cursor
                .goto_first_child_for_byte(b.saturating_sub(1))
                .is_some(),
            _ => cursor.goto_first_child(),
        };
        if !started {
            return;
        }
        let mut decorator: Option<Node<'t>> = None;
        loop {
            let node = cursor.node();
            if node.is_named() {
                match self.kind(node) {
                    K::Comment => {}
                    // TypeScript puts member decorators before the member, as siblings.
                    K::Decorator => {
                        decorator.get_or_insert(node);
                    }
                    _ => {
                        let start = decorator.take().unwrap_or(node);
                        if let Some(b) = self.target {
                            if start.start_byte() > b {
                                break;
                            }
                            if node.end_byte() < b {
                                if !cursor.goto_next_sibling() {
                                    break;
                                }
                                continue;
                            }
                        }
                        let before = out.len();
                        let outer = Outer {
                            start,
                            end: node,
                            sig_start: node.start_byte(),
                        };
                        self.visit(node, outer, scope, out, depth);
                        if self.target.is_some() && out.len() > before {
                            break;
                        }
                    }
                }
            }
            if !cursor.goto_next_sibling() {
                break;
            }
        }
        if let Some(added) = out.get_mut(first..)
            && !added.is_sorted_by_key(|s| s.range.start_byte)
        {
            added.sort_by_key(|s| s.range.start_byte);
        }
    }

    fn visit<'t>(
        &self,
        node: Node<'t>,
        outer: Outer<'t>,
        scope: Scope<'_>,
        out: &mut Vec<Symbol>,
        depth: u32,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let k = self.kind(node);
        if k == K::Error {
            self.walk_children(node, scope, out, depth + 1);
            return;
        }
        match self.fam {
            Family::Rust => self.visit_rust(node, k, outer, scope, out, depth),
            Family::Python => self.visit_python(node, k, outer, scope, out, depth),
            Family::Js => self.visit_js(node, k, outer, scope, out, depth),
            Family::Go => self.visit_go(node, k, outer, scope, out, depth),
            Family::Java => self.visit_java(node, k, outer, scope, out, depth),
            Family::C => self.visit_c(node, k, outer, scope, out, depth),
        }
    }

    /// Builds a container symbol whose members come from walking `body`.
    #[allow(clippy::too_many_arguments)]
    fn container<'t>(
        &self,
        kind: SymbolKind,
        name: &str,
        sel: Node<'t>,
        outer: &Outer<'t>,
        sig_end: SigEnd,
        body: Option<Node<'t>>,
        in_type: bool,
        scope: Scope<'_>,
        depth: u32,
    ) -> Symbol {
        let mut children = Vec::new();
        if let Some(body) = body
            && self.wanted(body)
        {
            let inner = Scope {
                container: Some(name),
                in_type,
                top: !in_type,
            };
            self.walk_children(body, inner, &mut children, depth + 1);
        }
        self.make(kind, name, sel, outer, sig_end, scope.container, children)
    }

    /// Enum members (and, for Java, the members after the constants) of an enum body.
    fn enum_members(&self, body: Node<'_>, enum_name: &str, depth: u32) -> Vec<Symbol> {
        let mut members = Vec::new();
        if depth > MAX_DEPTH || !self.wanted(body) {
            return members;
        }
        let f = &self.t.f;
        let mut cursor = body.walk();
        if !cursor.goto_first_child() {
            return members;
        }
        loop {
            let node = cursor.node();
            if node.is_named() && self.wanted(node) {
                let k = self.kind(node);
                let name_node = match k {
                    K::EnumVariant | K::EnumAssignment | K::EnumConstant | K::Enumerator => {
                        field(node, f.name)
                    }
                    K::EnumBodyDeclarations => {
                        let scope = Scope {
                            container: Some(enum_name),
                            in_type: true,
                            top: false,
                        };
                        self.walk_children(node, scope, &mut members, depth + 1);
                        None
                    }
                    // TypeScript: plain members are the enum body's `name` children.
                    _ if self.fam == Family::Js
                        && f.name.is_some()
                        && cursor.field_id() == f.name =>
                    {
                        Some(node)
                    }
                    _ => None,
                };
                if let Some(name_node) = name_node
                    && let Some(name) = self.name_of(name_node)
                {
                    members.push(self.make(
                        SymbolKind::EnumMember,
                        name,
                        name_node,
                        &Outer::of(node),
                        SigEnd::FirstLine,
                        Some(enum_name),
                        Vec::new(),
                    ));
                }
            }
            if !cursor.goto_next_sibling() {
                break;
            }
        }
        members
    }

    /// The node naming a type, without generics, paths, pointers or references.
    fn base_type_name<'t>(&self, mut node: Node<'t>) -> Node<'t> {
        let f = &self.t.f;
        for _ in 0..16 {
            let next = match self.kind(node) {
                K::GenericType => field(node, f.ty),
                K::TemplateType => field(node, f.name),
                K::ScopedTypeIdentifier | K::QualifiedType | K::QualifiedIdentifier => {
                    field(node, f.name)
                }
                K::ReferenceType => field(node, f.ty),
                K::PointerType => node.named_child(0),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    // -----------------------------------------------------------------------
    // Imports
    // -----------------------------------------------------------------------

    fn imports_in(&self, parent: Node<'_>, out: &mut Vec<Import>, depth: u32) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut cursor = parent.walk();
        if !cursor.goto_first_child() {
            return;
        }
        loop {
            let node = cursor.node();
            if node.is_named() {
                let k = self.kind(node);
                match (self.fam, k) {
                    (_, K::Error) => self.imports_in(node, out, depth + 1),
                    (Family::Rust, _) => self.imports_rust(node, k, out, depth),
                    (Family::Python, _) => self.imports_python(node, k, out, depth),
                    (Family::Js, _) => self.imports_js(node, k, out, depth),
                    (Family::Go, _) => self.imports_go(node, k, out, depth),
                    (Family::Java, _) => self.imports_java(node, k, out, depth),
                    (Family::C, _) => self.imports_c(node, k, out, depth),
                }
            }
            if !cursor.goto_next_sibling() {
                break;
            }
        }
    }

    fn push_import(&self, node: Node<'_>, module: Option<String>, out: &mut Vec<Import>) {
        out.push(Import {
            text: one_line_full(self.text_of(node).unwrap_or("")),
            range: Span::from_node(&node),
            module,
        });
    }
}
