//! What each language contributes to context capture: the names a piece of code uses (and
//! those it binds itself), a file's imports, how a module path names files, and how its
//! definitions read (types written for variables, base classes, doc comments). One file per
//! language; [`rules`] is the table.

mod c;
mod go;
mod java;
mod python;
mod rust;
mod typescript;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use tree_sitter::Node;

use crate::analysis::Language;

/// How a name is used where it appears.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Shape {
    /// A bare name: a value or a type.
    Plain,
    /// A bare name called or constructed: `f(…)`, `new C(…)`, `C { … }`.
    Call,
    /// `receiver.name`: a method or field of what the receiver chain names. The chain is
    /// the receiver's plain segments (`self.client.get` → `["self", "client"]`), empty when
    /// the receiver is not a chain of names (a call's result, an index...).
    Member(Vec<String>),
    /// `a::b::name`, `A.B` in a type: a name inside what the qualifier names.
    Qualified(Vec<String>),
}

/// One use of a name in code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub name: String,
    /// Bytes of the name in the file.
    pub start: usize,
    pub end: usize,
    pub shape: Shape,
    /// Whether the name is called (`f()`, `x.m()`, `T::new()`, `new C()`): a callable, not a
    /// field or a constant, is meant.
    pub call: bool,
}

/// What a piece of code uses and binds.
#[derive(Debug, Default)]
pub(crate) struct CodeFacts {
    /// Every use of a name, in document order.
    pub refs: Vec<Reference>,
    /// Names bound inside the code (parameters, locals, loop and comprehension variables,
    /// closure parameters, pattern bindings, nested definitions): never looked up.
    pub locals: HashSet<String>,
    /// Variable → the type written or constructed for it (`x: Foo`, `x = Foo(…)`,
    /// `let x = Foo::new(…)`), as a chain of names (`["mod", "Foo"]`).
    pub var_types: HashMap<String, Vec<String>>,
    /// Variable → the function or method whose result it holds (`x = make()`,
    /// `let s = store.open()`), as the callee's chain: its type is the callee's return type.
    pub var_calls: HashMap<String, Vec<String>>,
    /// Imports inside the code (Python imports in a function body).
    pub imports: Vec<ImportBinding>,
}

impl CodeFacts {
    pub(crate) fn push_ref(&mut self, node: Node<'_>, text: &str, shape: Shape) {
        if let Some(name) = text.get(node.start_byte()..node.end_byte()) {
            self.refs.push(Reference {
                name: name.to_owned(),
                start: node.start_byte(),
                end: node.end_byte(),
                call: shape == Shape::Call || is_called(node),
                shape,
            });
        }
    }

    pub(crate) fn bind(&mut self, node: Node<'_>, text: &str) {
        if let Some(name) = text.get(node.start_byte()..node.end_byte()) {
            self.locals.insert(name.to_owned());
        }
    }

    pub(crate) fn set_type(&mut self, var: Node<'_>, text: &str, ty: Vec<String>) {
        if ty.is_empty() {
            return;
        }
        if let Some(name) = text.get(var.start_byte()..var.end_byte()) {
            self.var_types.insert(name.to_owned(), ty);
        }
    }
}

impl CodeFacts {
    /// `var` holds the result of calling `callee` (when no type is known for it already).
    pub(crate) fn set_call(&mut self, var: Node<'_>, text: &str, callee: Vec<String>) {
        if callee.is_empty() {
            return;
        }
        if let Some(name) = text.get(var.start_byte()..var.end_byte())
            && !self.var_types.contains_key(name)
        {
            self.var_calls.insert(name.to_owned(), callee);
        }
    }
}

/// The return type in a function header: the text after `marker` (`->`, `:`) that follows
/// the parameter list's closing parenthesis, up to the body or a `where`.
pub(crate) fn return_type_after<'h>(header: &'h str, marker: &str) -> Option<&'h str> {
    // The parameter list's `)`: the first `(` at depth 0 and its match.
    let bytes = header.as_bytes();
    let open = header.find('(')?;
    let mut depth = 0i32;
    let mut close = None;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let rest = header.get(close? + 1..)?.trim_start();
    let rest = rest.strip_prefix(marker)?;
    let end = [" where ", "{", "=>"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .unwrap_or(rest.len());
    rest.get(..end).map(str::trim)
}

/// One name an import statement binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImportBinding {
    /// The name bound in the importing file; `*` for a glob import.
    pub local: String,
    /// The module as written: `a.b`, `.x`, `./util`, `crate::a`, `net/http`, `x.h`; empty
    /// for a name of the file itself (`export { a as b }` without `from`).
    pub module: String,
    /// The name imported from the module; `None` binds the module itself.
    pub name: Option<String>,
    /// Whether importers of this file see the binding (a re-export).
    pub export: bool,
}

/// The file system as module resolution sees it (cached by the caller).
pub(crate) trait Files {
    fn is_file(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// The files directly in a folder, sorted.
    fn list_dir(&self, path: &Path) -> Vec<PathBuf>;
    /// A small text file's contents (manifests: Cargo.toml, go.mod, tsconfig.json).
    fn read_small(&self, path: &Path) -> Option<String>;
    /// The workspace roots.
    fn roots(&self) -> Vec<PathBuf>;
    /// Indexed files whose path ends with `suffix` (whole components).
    fn files_ending_with(&self, suffix: &Path) -> Vec<PathBuf>;
}

/// The per-language rules.
pub(crate) trait Rules: Sync {
    /// The import bindings of a file's top level.
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>);
    /// The names used and bound inside `start..end`.
    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts);
    /// The files a module path names, seen from `from`.
    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf>;
    /// Files whose top-level names a file sees without importing them (its package).
    fn implicit_files(&self, _from: &Path, _fs: &dyn Files) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Whether a module's file also names its submodules' folder (Python packages, Rust
    /// `mod.rs`): `name` inside `file` may be the module `name` beside it.
    fn submodule_files(&self, _file: &Path, _name: &str, _fs: &dyn Files) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Whether a bare name that does not resolve may still be defined in the workspace
    /// (C and C++: headers reach a file through other headers).
    fn guesses_bare_names(&self) -> bool {
        false
    }
    /// Whether a file is one class named as the file, whose static members an import can
    /// name (Java's `import static a.b.C.m`).
    fn class_per_file(&self) -> bool {
        false
    }
    /// Whether an import of a file is visible to that file's importers.
    fn exports_imports(&self) -> bool {
        false
    }
    /// The type named by a written type, as a chain (`Optional[mod.Foo]` → `["mod", "Foo"]`,
    /// `&mut Vec<Foo>` → `["Vec"]`... wrappers that hold one value are looked through).
    fn type_chain(&self, written: &str) -> Vec<String>;
    /// The base types a class-like header names (`class A(B, C):` → `B`, `C`).
    fn bases(&self, _header: &str) -> Vec<Vec<String>> {
        Vec::new()
    }
    /// The type a field or attribute `name` of a type has, read from the type's text
    /// (its declaration `name: T`, or an assignment `self.name = T(…)`).
    fn field_type(&self, _type_text: &str, _name: &str) -> Vec<String> {
        Vec::new()
    }
    /// The type a function returns, read from its header (`fn f() -> T`, `f(): T`,
    /// `def f() -> T:`), as a chain; `["Self"]` for Rust's `Self`.
    fn return_type(&self, _header: &str) -> Vec<String> {
        Vec::new()
    }
    /// Receiver names meaning the enclosing type's instance (`self`, `this`).
    fn this_names(&self) -> &'static [&'static str];
    /// Whether a bare name the scope does not bind may be a member of the enclosing type or of
    /// its bases (Java's implicit `this.`: `invalidate()`, `mScale` inherited from a base).
    fn bare_names_reach_members(&self) -> bool {
        false
    }
    /// Whether a line directly above a definition belongs to it (doc comment, attribute,
    /// decorator, annotation).
    fn is_lead_line(&self, line: &str) -> bool;
    /// Whether a lead line is a doc comment's text (only its first one is kept in a skeleton).
    fn is_doc_line(&self, line: &str) -> bool;
    /// Whether a definition's doc string follows its header (Python).
    fn doc_follows_header(&self) -> bool {
        false
    }
    /// Names of constructors (`__init__`, `new`, `constructor`); Java's carry the class name.
    fn is_constructor(&self, name: &str, container: Option<&str>) -> bool;
}

/// The rules for a language, if context capture knows it.
pub(crate) fn rules(lang: Language) -> Option<&'static dyn Rules> {
    Some(match lang {
        Language::Python => &python::Python,
        Language::Rust => &rust::Rust,
        Language::TypeScript | Language::Tsx | Language::JavaScript => &typescript::TypeScript,
        Language::Go => &go::Go,
        Language::Java => &java::Java,
        Language::C | Language::Cpp => &c::C,
        Language::PlainText => return None,
    })
}

/// An ancestor on the path from the walk's root: the node and the field it was reached by.
pub(crate) type Step<'t> = (Node<'t>, Option<&'t str>);

/// How deep the walk goes (deeper nodes are not visited).
const MAX_WALK_DEPTH: usize = 256;

/// Visits the nodes overlapping `start..end` in document order, with the field each was
/// reached by and its ancestors (nearest last). `f` returns whether to descend.
pub(crate) fn walk<'t, F>(root: Node<'t>, start: usize, end: usize, f: &mut F)
where
    F: FnMut(Node<'t>, Option<&'t str>, &[Step<'t>]) -> bool,
{
    let mut cursor = root.walk();
    let mut stack: Vec<Step<'t>> = Vec::new();
    loop {
        let node = cursor.node();
        let field = cursor.field_name();
        let overlaps = node.end_byte() > start && node.start_byte() < end;
        let descend = overlaps && stack.len() < MAX_WALK_DEPTH && f(node, field, &stack);
        if descend && cursor.goto_first_child() {
            stack.push((node, field));
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
            stack.pop();
        }
    }
}

/// Whether a name is what a call calls: the name itself, or the member or path expression
/// it ends, is the callee of a call (`f()`, `x.m()`, `a::b::f()`, `x.m::<T>()`, `new C()`).
fn is_called(node: Node<'_>) -> bool {
    let Some(parent) = node.parent() else {
        return false;
    };
    if parent.kind() == "method_invocation" {
        return parent.child_by_field_name("name") == Some(node);
    }
    let mut expr = if matches!(
        parent.kind(),
        "attribute"
            | "field_expression"
            | "member_expression"
            | "selector_expression"
            | "scoped_identifier"
            | "field_access"
            | "qualified_identifier"
    ) {
        parent
    } else {
        node
    };
    if let Some(p) = expr.parent()
        && p.kind() == "generic_function"
    {
        expr = p;
    }
    expr.parent().is_some_and(|call| match call.kind() {
        "call" | "call_expression" => call.child_by_field_name("function") == Some(expr),
        "new_expression" => call.child_by_field_name("constructor") == Some(expr),
        _ => false,
    })
}

/// The text of a node.
pub(crate) fn text_of<'s>(node: Node<'_>, text: &'s str) -> &'s str {
    text.get(node.start_byte()..node.end_byte()).unwrap_or("")
}

/// A dotted or `::` chain of plain names (`a.b.c` → `["a", "b", "c"]`); `None` when a
/// segment is not a plain name.
pub(crate) fn chain_of(written: &str, sep: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = written.split(sep).map(|s| s.trim().to_string()).collect();
    parts
        .iter()
        .all(|p| is_name(p))
        .then_some(parts)
        .filter(|p| !p.is_empty())
}

/// Whether `s` is one identifier.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// The first name chain in a written type, looking through `wrappers` (`Option<Box<Foo>>` →
/// `Foo`) and skipping `skip` words (`&`, `mut`, `dyn`...). `sep` separates path segments.
pub(crate) fn first_type_chain(
    written: &str,
    sep: &str,
    wrappers: &[&str],
    skip: &[&str],
) -> Vec<String> {
    let mut rest = written.trim();
    for _ in 0..8 {
        // Read one path (names and separators).
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes.get(i).copied().unwrap_or(b' ');
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || !c.is_ascii() {
                i += 1;
            } else if rest.get(i..).is_some_and(|r| r.starts_with(sep)) && !sep.is_empty() {
                i += sep.len();
            } else {
                break;
            }
        }
        let path = rest.get(..i).unwrap_or("").trim_end_matches(sep);
        let after = rest.get(i..).unwrap_or("").trim_start();
        if path.is_empty() {
            // Skip one character of punctuation (`&`, `*`, `(`, `[`...).
            let mut chars = after.chars();
            if chars.next().is_none() {
                return Vec::new();
            }
            rest = chars.as_str().trim_start();
            continue;
        }
        let Some(chain) = chain_of(path, sep) else {
            return Vec::new();
        };
        let last = chain.last().map(String::as_str).unwrap_or("");
        if skip.contains(&last) {
            rest = after;
            continue;
        }
        if wrappers.contains(&last) && (after.starts_with('<') || after.starts_with('[')) {
            rest = after.get(1..).unwrap_or("");
            continue;
        }
        return chain;
    }
    Vec::new()
}

/// Splits a list at top-level commas (brackets and strings nest).
pub(crate) fn split_top_level(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut quote: Option<char> = None;
    for (i, c) in list.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => {
                out.push(list.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = list.get(start..).unwrap_or("").trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// Normalises `a/./b/../c` to `a/c` without touching the file system.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The first of `candidates` that is a file.
pub(crate) fn first_file(
    candidates: impl IntoIterator<Item = PathBuf>,
    fs: &dyn Files,
) -> Option<PathBuf> {
    candidates.into_iter().find(|p| fs.is_file(p))
}

/// The leading whitespace of a line.
pub(crate) fn indent_of(line: &str) -> &str {
    let trimmed = line.trim_start();
    line.get(..line.len() - trimmed.len()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_chains_look_through_wrappers() {
        let rs = ["Option", "Box", "Arc", "Rc", "Vec", "RefCell", "Mutex"];
        let skip = ["mut", "dyn", "impl"];
        assert_eq!(
            first_type_chain("&mut Option<Box<a::Foo>>", "::", &rs, &skip),
            ["a", "Foo"]
        );
        assert_eq!(
            first_type_chain("dyn Bar + Send", "::", &rs, &skip),
            ["Bar"]
        );
        assert_eq!(
            first_type_chain("HashMap<K, V>", "::", &rs, &skip),
            ["HashMap"]
        );
        assert_eq!(
            first_type_chain("Optional[mod.Client]", ".", &["Optional"], &[]),
            ["mod", "Client"]
        );
        assert_eq!(first_type_chain("  ", ".", &[], &[]), Vec::<String>::new());
    }

    #[test]
    fn lists_split_at_top_level_commas_only() {
        assert_eq!(
            split_top_level("A, B[C, D], metaclass=M, 'x,y'"),
            ["A", "B[C, D]", "metaclass=M", "'x,y'"]
        );
    }
}
