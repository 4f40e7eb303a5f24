//! Rust: `use` trees (`crate::` / `super::` / `self::`, globs, `pub use` re-exports, other
//! crates of the workspace), `mod` files, names used and bound in code (patterns, closures),
//! types of `let`s and parameters, struct field types.

use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::{
    CodeFacts, Files, ImportBinding, Rules, Shape, Step, first_file, first_type_chain, is_name,
    text_of, walk,
};

pub(crate) struct Rust;

/// Types that hold one value of the type that matters.
const WRAPPERS: &[&str] = &[
    "Option", "Box", "Arc", "Rc", "Vec", "RefCell", "Cell", "Mutex", "RwLock", "Weak", "Pin",
    "VecDeque", "Result", "Cow",
];
const SKIP: &[&str] = &["mut", "dyn", "impl", "const", "static"];

impl Rules for Rust {
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
        let mut cursor = root.walk();
        for node in root.named_children(&mut cursor) {
            match node.kind() {
                "use_declaration" => {
                    let export = has_pub(node);
                    if let Some(arg) = node.child_by_field_name("argument") {
                        use_tree(arg, text, "", export, out);
                    }
                }
                // `mod x;`: the module `x` is a name of this file.
                "mod_item" if node.child_by_field_name("body").is_none() => {
                    if let Some(name) = node.child_by_field_name("name") {
                        let name = text_of(name, text).to_string();
                        out.push(ImportBinding {
                            local: name.clone(),
                            module: "self".into(),
                            name: Some(name),
                            export: has_pub(node),
                        });
                    }
                }
                "extern_crate_declaration" => {
                    if let Some(name) = node.child_by_field_name("name") {
                        let name = text_of(name, text).to_string();
                        let local = node
                            .child_by_field_name("alias")
                            .map(|a| text_of(a, text).to_string())
                            .unwrap_or_else(|| name.clone());
                        out.push(ImportBinding {
                            local,
                            module: name,
                            name: None,
                            export: false,
                        });
                    }
                }
                _ => {}
            }
        }
    }

    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts) {
        walk(
            root,
            start,
            end,
            &mut |node, field, stack| match node.kind() {
                "identifier" | "type_identifier" | "shorthand_field_identifier" => {
                    classify(node, field, stack, text, facts);
                    false
                }
                "field_identifier" => {
                    if let Some(&(parent, _)) = stack.last()
                        && parent.kind() == "field_expression"
                        && field == Some("field")
                    {
                        let chain = parent
                            .child_by_field_name("value")
                            .map(|v| value_chain(v, text))
                            .unwrap_or_default();
                        facts.push_ref(node, text, Shape::Member(chain));
                    }
                    false
                }
                "scoped_identifier" | "scoped_type_identifier" => {
                    scoped(node, text, facts);
                    false
                }
                "use_declaration" => {
                    if let Some(arg) = node.child_by_field_name("argument") {
                        let before = facts.imports.len();
                        use_tree(arg, text, "", false, &mut facts.imports);
                        let bound: Vec<String> = facts
                            .imports
                            .get(before..)
                            .unwrap_or(&[])
                            .iter()
                            .map(|b| b.local.clone())
                            .collect();
                        facts.locals.extend(bound.into_iter().filter(|l| l != "*"));
                    }
                    false
                }
                "let_declaration" => {
                    if let Some(pattern) = node.child_by_field_name("pattern")
                        && pattern.kind() == "identifier"
                    {
                        let ty = match node.child_by_field_name("type") {
                            Some(t) => self.type_chain(text_of(t, text)),
                            None => node
                                .child_by_field_name("value")
                                .map(|v| value_type(v, text))
                                .unwrap_or_default(),
                        };
                        if ty.is_empty() {
                            if let Some(callee) = node
                                .child_by_field_name("value")
                                .and_then(|v| callee_of(v, text))
                            {
                                facts.set_call(pattern, text, callee);
                            }
                        } else {
                            facts.set_type(pattern, text, ty);
                        }
                    }
                    true
                }
                "parameter" => {
                    if let (Some(pattern), Some(ty)) = (
                        node.child_by_field_name("pattern"),
                        node.child_by_field_name("type"),
                    ) && pattern.kind() == "identifier"
                    {
                        facts.set_type(pattern, text, self.type_chain(text_of(ty, text)));
                    }
                    true
                }
                "macro_invocation" => {
                    // The macro's name is not looked up; its arguments are code.
                    if let Some(args) = node
                        .named_children(&mut node.walk())
                        .find(|c| c.kind() == "token_tree")
                    {
                        token_tree_refs(args, text, facts);
                    }
                    false
                }
                "line_comment" | "block_comment" | "string_literal" | "raw_string_literal" => false,
                _ => true,
            },
        );
    }

    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        let segments: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        module_path_files(&segments, from, fs)
    }

    fn submodule_files(&self, file: &Path, name: &str, fs: &dyn Files) -> Vec<PathBuf> {
        child_module(file, name, fs).into_iter().collect()
    }

    fn type_chain(&self, written: &str) -> Vec<String> {
        first_type_chain(written, "::", WRAPPERS, SKIP)
    }

    fn field_type(&self, type_text: &str, name: &str) -> Vec<String> {
        // `pub name: Type,` inside a struct.
        for line in type_text.lines() {
            let t = line.trim();
            let t = t
                .strip_prefix("pub(crate) ")
                .or_else(|| t.strip_prefix("pub "))
                .unwrap_or(t);
            if let Some(rest) = t
                .strip_prefix(name)
                .and_then(|r| r.trim_start().strip_prefix(':'))
                && !rest.starts_with(':')
            {
                return self.type_chain(rest.trim_end_matches(','));
            }
        }
        Vec::new()
    }

    fn return_type(&self, header: &str) -> Vec<String> {
        super::return_type_after(header, "->")
            .map(|t| self.type_chain(t))
            .unwrap_or_default()
    }

    fn this_names(&self) -> &'static [&'static str] {
        &["self", "Self"]
    }

    fn is_lead_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with("///")
            || t.starts_with("#[")
            || t.starts_with("/**")
            || t.starts_with("* ")
            || t == "*"
            || t.starts_with("*/")
    }

    fn is_doc_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with("///") || t.starts_with("/**") || t.starts_with('*')
    }

    fn is_constructor(&self, name: &str, _container: Option<&str>) -> bool {
        matches!(name, "new" | "default" | "with_capacity" | "builder") || name.starts_with("new_")
    }
}

fn has_pub(node: Node<'_>) -> bool {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .any(|c| c.kind() == "visibility_modifier")
}

/// The bindings of one `use` tree, with `prefix` the path before it.
fn use_tree(node: Node<'_>, text: &str, prefix: &str, export: bool, out: &mut Vec<ImportBinding>) {
    let join = |a: &str, b: &str| -> String {
        if a.is_empty() {
            b.to_string()
        } else if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}::{b}")
        }
    };
    match node.kind() {
        "identifier" | "scoped_identifier" | "crate" | "super" | "self" => {
            let full = join(
                prefix,
                &text_of(node, text).split_whitespace().collect::<String>(),
            );
            let (module, name) = split_last(&full);
            if name == "self" {
                // `use a::b::{self}` binds `b`.
                let (m, n) = split_last(&module);
                out.push(ImportBinding {
                    local: n.clone(),
                    module: m,
                    name: Some(n),
                    export,
                });
                return;
            }
            out.push(ImportBinding {
                local: name.clone(),
                module,
                name: Some(name),
                export,
            });
        }
        "use_as_clause" => {
            let (Some(path), Some(alias)) = (
                node.child_by_field_name("path"),
                node.child_by_field_name("alias"),
            ) else {
                return;
            };
            let full = join(
                prefix,
                &text_of(path, text).split_whitespace().collect::<String>(),
            );
            let (module, name) = split_last(&full);
            out.push(ImportBinding {
                local: text_of(alias, text).to_string(),
                module,
                name: Some(name),
                export,
            });
        }
        "use_wildcard" => {
            let path = node.named_child(0).map(|p| text_of(p, text)).unwrap_or("");
            out.push(ImportBinding {
                local: "*".into(),
                module: join(prefix, &path.split_whitespace().collect::<String>()),
                name: None,
                export,
            });
        }
        "scoped_use_list" => {
            let path = node
                .child_by_field_name("path")
                .map(|p| text_of(p, text).split_whitespace().collect::<String>())
                .unwrap_or_default();
            let prefix = join(prefix, &path);
            if let Some(list) = node.child_by_field_name("list") {
                use_tree(list, text, &prefix, export, out);
            }
        }
        "use_list" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                use_tree(child, text, prefix, export, out);
            }
        }
        _ => {}
    }
}

/// `a::b::c` → (`a::b`, `c`).
fn split_last(path: &str) -> (String, String) {
    match path.rsplit_once("::") {
        Some((m, n)) => (m.to_string(), n.to_string()),
        None => (String::new(), path.to_string()),
    }
}

fn classify(
    node: Node<'_>,
    field: Option<&str>,
    stack: &[Step<'_>],
    text: &str,
    facts: &mut CodeFacts,
) {
    let name = text_of(node, text);
    if matches!(name, "self" | "Self" | "crate" | "super") {
        return;
    }
    let Some(&(parent, _)) = stack.last() else {
        facts.push_ref(node, text, Shape::Plain);
        return;
    };
    match parent.kind() {
        // Definitions inside the code: their names are bound.
        "function_item" | "struct_item" | "enum_item" | "const_item" | "static_item"
        | "type_item" | "trait_item" | "mod_item" | "macro_definition" | "type_parameter"
        | "lifetime" | "label"
            if field == Some("name") || parent.kind() == "lifetime" || parent.kind() == "label" =>
        {
            return facts.bind(node, text);
        }
        "type_parameters" | "constrained_type_parameter" => return facts.bind(node, text),
        "field_initializer" if field == Some("field") => return,
        "field_declaration" if field == Some("name") => return,
        "meta_item" | "attribute" => return,
        _ => {}
    }
    if is_pattern_binding(node, field, stack, name) {
        return facts.bind(node, text);
    }
    let shape = match parent.kind() {
        "call_expression" if field == Some("function") => Shape::Call,
        "struct_expression" if field == Some("name") => Shape::Call,
        _ => Shape::Plain,
    };
    facts.push_ref(node, text, shape);
}

/// Whether an identifier inside a pattern binds a name (lower-case identifiers do;
/// `None`, `Some`, constants and variants are uses).
fn is_pattern_binding(node: Node<'_>, field: Option<&str>, stack: &[Step<'_>], name: &str) -> bool {
    if node.kind() == "shorthand_field_identifier" {
        return true;
    }
    if node.kind() != "identifier" {
        return false;
    }
    let mut reached_by = field;
    for &(ancestor, ancestor_field) in stack.iter().rev() {
        match ancestor.kind() {
            "let_declaration" | "for_expression" | "let_condition" | "let_chain" => {
                return reached_by == Some("pattern") && binds(name);
            }
            "parameter" | "closure_parameters" => {
                return (reached_by == Some("pattern") || ancestor.kind() == "closure_parameters")
                    && binds(name);
            }
            "match_pattern" => return reached_by != Some("condition") && binds(name),
            "match_arm" => return reached_by == Some("pattern") && binds(name),
            "tuple_struct_pattern" | "struct_pattern" => {
                // The pattern's type is a use; what it holds binds.
                if reached_by == Some("type") {
                    return false;
                }
            }
            "tuple_pattern"
            | "slice_pattern"
            | "field_pattern"
            | "ref_pattern"
            | "mut_pattern"
            | "or_pattern"
            | "reference_pattern"
            | "captured_pattern"
            | "remaining_field_pattern" => {}
            _ => return false,
        }
        reached_by = ancestor_field;
    }
    false
}

/// Lower-case names bind in patterns; capitalised ones are constants or variants.
fn binds(name: &str) -> bool {
    !name.starts_with(char::is_uppercase)
}

/// `a::b::C` (a path, not inside a pattern): `C` qualified by `a::b`, and `a` a plain use.
fn scoped(node: Node<'_>, text: &str, facts: &mut CodeFacts) {
    let Some(name) = node.child_by_field_name("name") else {
        return;
    };
    let path = node.child_by_field_name("path");
    let qualifier: Vec<String> = path
        .map(|p| {
            text_of(p, text)
                .split("::")
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    if qualifier.iter().all(|s| is_name(s)) && !qualifier.is_empty() {
        // The first segment is looked up like any name (a type, a module, a crate).
        if let Some(first) = first_segment(path) {
            let first_text = text_of(first, text);
            if !matches!(first_text, "self" | "Self" | "crate" | "super") {
                facts.push_ref(first, text, Shape::Plain);
            }
        }
        facts.push_ref(name, text, Shape::Qualified(qualifier));
    } else {
        // `<T as Trait>::x`, generic paths: the last name alone.
        facts.push_ref(name, text, Shape::Plain);
    }
}

fn first_segment(path: Option<Node<'_>>) -> Option<Node<'_>> {
    let mut node = path?;
    for _ in 0..32 {
        match node.kind() {
            "scoped_identifier" | "scoped_type_identifier" => {
                node = node.child_by_field_name("path")?
            }
            _ => return Some(node),
        }
    }
    None
}

/// `self.inner` → `["self", "inner"]`; `x` → `["x"]`; other values: `[]`.
fn value_chain(node: Node<'_>, text: &str) -> Vec<String> {
    match node.kind() {
        "self" | "identifier" => vec![text_of(node, text).to_string()],
        "field_expression" => {
            let (Some(value), Some(field)) = (
                node.child_by_field_name("value"),
                node.child_by_field_name("field"),
            ) else {
                return Vec::new();
            };
            let mut chain = value_chain(value, text);
            if chain.is_empty() {
                return chain;
            }
            chain.push(text_of(field, text).to_string());
            chain
        }
        _ => Vec::new(),
    }
}

/// The type a `let`'s value has when the code says it: `Foo::new(…)`, `Foo { … }`,
/// `Foo::default()`, `Foo(…)`.
fn value_type(value: Node<'_>, text: &str) -> Vec<String> {
    let mut node = value;
    // Look through `?`, `.await`, references and `.unwrap()`-like calls on the constructor.
    for _ in 0..4 {
        match node.kind() {
            "try_expression" | "reference_expression" | "await_expression" => {
                node = match node.named_child(0) {
                    Some(n) => n,
                    None => return Vec::new(),
                };
            }
            _ => break,
        }
    }
    match node.kind() {
        "struct_expression" => node
            .child_by_field_name("name")
            .map(|n| Rust.type_chain(text_of(n, text)))
            .unwrap_or_default(),
        "call_expression" => {
            let Some(function) = node.child_by_field_name("function") else {
                return Vec::new();
            };
            let written = text_of(function, text);
            let chain: Vec<String> = written.split("::").map(|s| s.trim().to_string()).collect();
            match chain.as_slice() {
                // `Foo(…)`: a tuple struct.
                [one] if one.starts_with(char::is_uppercase) => chain,
                // `Foo::new(…)`, `a::Foo::new(…)`
                [.., owner, _] if owner.starts_with(char::is_uppercase) && is_name(owner) => {
                    chain.get(..chain.len() - 1).unwrap_or(&[]).to_vec()
                }
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The callee chain of a call value (through `?`, `.await`, `&`): `make()` → `["make"]`,
/// `a::open()` → `["a", "open"]`, `self.store.open()` → `["self", "store", "open"]`.
fn callee_of(value: Node<'_>, text: &str) -> Option<Vec<String>> {
    let mut node = value;
    for _ in 0..4 {
        match node.kind() {
            "try_expression" | "reference_expression" | "await_expression" => {
                node = node.named_child(0)?;
            }
            _ => break,
        }
    }
    if node.kind() != "call_expression" {
        return None;
    }
    let function = node.child_by_field_name("function")?;
    let chain: Vec<String> = match function.kind() {
        "field_expression" => value_chain(function, text),
        "identifier" | "scoped_identifier" => text_of(function, text)
            .split("::")
            .map(|s| s.trim().to_string())
            .collect(),
        _ => Vec::new(),
    };
    (!chain.is_empty() && chain.iter().all(|s| is_name(s))).then_some(chain)
}

/// Names inside a macro's arguments: each identifier is a plain use (the token tree has no
/// syntax); `a.b` pairs give `b` as a member of `a`.
fn token_tree_refs(tree: Node<'_>, text: &str, facts: &mut CodeFacts) {
    let mut prev: Option<Node<'_>> = None;
    let mut prev2: Option<Node<'_>> = None;
    walk(
        tree,
        tree.start_byte(),
        tree.end_byte(),
        &mut |node, _, _| {
            if node.kind() == "token_tree" {
                return true;
            }
            if node.kind() == "identifier" {
                let after_dot = prev.is_some_and(|p| text_of(p, text) == ".");
                let receiver = prev2.filter(|p| matches!(p.kind(), "identifier" | "self"));
                if after_dot {
                    let chain = receiver
                        .map(|r| vec![text_of(r, text).to_string()])
                        .unwrap_or_default();
                    facts.push_ref(node, text, Shape::Member(chain));
                } else {
                    let name = text_of(node, text);
                    if !matches!(name, "self" | "Self") {
                        facts.push_ref(node, text, Shape::Plain);
                    }
                }
            }
            prev2 = prev;
            prev = Some(node);
            false
        },
    );
}

/// The crate a file belongs to: its `Cargo.toml` folder and root file (`src/lib.rs`, else
/// `src/main.rs`; a file under `tests/`, `examples/`, `benches/` or `src/bin/` is its own root).
/// Without a manifest, the nearest `lib.rs` or `main.rs` above the file.
fn crate_root(from: &Path, fs: &dyn Files) -> Option<PathBuf> {
    manifest_crate_root(from, fs).or_else(|| {
        from.ancestors()
            .skip(1)
            .find_map(|dir| first_file([dir.join("lib.rs"), dir.join("main.rs")], fs))
    })
}

fn manifest_crate_root(from: &Path, fs: &dyn Files) -> Option<PathBuf> {
    for dir in from.ancestors().skip(1) {
        if fs.is_file(&dir.join("Cargo.toml")) {
            let rel = from.strip_prefix(dir).ok()?;
            let first = rel.components().next()?.as_os_str().to_str()?;
            let in_bin = rel.starts_with("src/bin");
            if matches!(first, "tests" | "examples" | "benches") || in_bin {
                // The target's own root: the file directly in the folder, or `main.rs` of a subfolder.
                let depth = rel.components().count();
                if depth == 2 || (in_bin && depth == 3) {
                    return Some(from.to_path_buf());
                }
                let sub = rel
                    .components()
                    .take(if in_bin { 3 } else { 2 })
                    .collect::<PathBuf>();
                return first_file([dir.join(&sub).join("main.rs")], fs);
            }
            return first_file([dir.join("src/lib.rs"), dir.join("src/main.rs")], fs);
        }
    }
    None
}

/// The folder a module file's child modules live in.
fn module_dir(file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?.to_str()?;
    if matches!(name, "mod.rs" | "lib.rs" | "main.rs") {
        return file.parent().map(Path::to_path_buf);
    }
    // A crate root that is a lone file (tests/x.rs) also keeps its modules beside it... as
    // `tests/x/…`; a module file `a/b.rs` keeps them in `a/b/`.
    Some(file.with_extension(""))
}

/// The file of child module `name` of the module in `file`.
fn child_module(file: &Path, name: &str, fs: &dyn Files) -> Option<PathBuf> {
    let dir = module_dir(file)?;
    first_file(
        [
            dir.join(format!("{name}.rs")),
            dir.join(name).join("mod.rs"),
        ],
        fs,
    )
}

/// The module file that declares the module in `file`.
fn parent_module(file: &Path, fs: &dyn Files) -> Option<PathBuf> {
    let name = file.file_name()?.to_str()?;
    let dir = if name == "mod.rs" {
        file.parent()?.parent()?
    } else {
        file.parent()?
    };
    // `dir` holds `file`'s module; its own module file is `dir/mod.rs`, `dir/lib.rs`,
    // `dir/main.rs` or `dir.rs` beside the folder.
    let dir_name = dir.file_name()?.to_str()?;
    first_file(
        [
            dir.join("mod.rs"),
            dir.join("lib.rs"),
            dir.join("main.rs"),
            dir.parent()?.join(format!("{dir_name}.rs")),
        ],
        fs,
    )
    .filter(|p| p != file)
}

/// The workspace crate named `name` (hyphens read as underscores): its root file.
fn workspace_crate(name: &str, fs: &dyn Files) -> Option<PathBuf> {
    for manifest in fs.files_ending_with(Path::new("Cargo.toml")) {
        let Some(text) = fs.read_small(&manifest) else {
            continue;
        };
        let mut in_package = false;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                in_package = t == "[package]";
                continue;
            }
            if in_package
                && let Some(value) = t
                    .strip_prefix("name")
                    .map(str::trim_start)
                    .and_then(|r| r.strip_prefix('='))
            {
                let value = value.trim().trim_matches('"').replace('-', "_");
                if value == name {
                    let dir = manifest.parent()?;
                    return first_file([dir.join("src/lib.rs"), dir.join("src/main.rs")], fs);
                }
            }
        }
    }
    None
}

/// The files a `use` path's module part names, from the file it is written in.
fn module_path_files(segments: &[&str], from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
    let Some((first, rest)) = segments.split_first() else {
        return vec![from.to_path_buf()];
    };
    let start = match *first {
        "crate" => crate_root(from, fs),
        "self" => Some(from.to_path_buf()),
        "super" => parent_module(from, fs),
        // A child module of this file, else a crate of the workspace (2018 paths).
        name => child_module(from, name, fs).or_else(|| workspace_crate(name, fs)),
    };
    let Some(mut file) = start else {
        return Vec::new();
    };
    for seg in rest {
        file = match *seg {
            "super" => match parent_module(&file, fs) {
                Some(p) => p,
                None => return Vec::new(),
            },
            "self" => file,
            name => match child_module(&file, name, fs) {
                Some(f) => f,
                // An inline `mod name { … }` (or an item): stay in this file.
                None => return vec![file],
            },
        };
    }
    vec![file]
}
