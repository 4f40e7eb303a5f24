//! Python: `import` / `from … import` bindings (relative and absolute, packages' `__init__`),
//! names used and bound in code, types from annotations and constructor calls, base classes.

use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::{
    CodeFacts, Files, ImportBinding, Rules, Shape, Step, first_file, first_type_chain,
    split_top_level, text_of, walk,
};

pub(crate) struct Python;

/// Wrappers of one type that annotations put around it.
const WRAPPERS: &[&str] = &[
    "Optional",
    "List",
    "list",
    "Sequence",
    "Iterable",
    "Iterator",
    "Type",
    "type",
    "Final",
    "ClassVar",
    "Annotated",
    "Awaitable",
    "Set",
    "set",
    "FrozenSet",
    "frozenset",
    "Tuple",
    "tuple",
    "AsyncIterator",
    "Generator",
    "Union",
];

/// Containers that hold the names a binding target binds.
const PATTERNS: &[&str] = &[
    "pattern_list",
    "tuple_pattern",
    "list_pattern",
    "list_splat_pattern",
    "dictionary_splat_pattern",
    "as_pattern_target",
    "tuple",
    "list",
    "parenthesized_expression",
    "splat_pattern",
    "case_pattern",
    "keyword_pattern",
    "dict_pattern",
    "class_pattern",
    "as_pattern",
];

impl Rules for Python {
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
        let mut cursor = root.walk();
        for node in root.named_children(&mut cursor) {
            import_bindings(node, text, out);
            // Imports guarded by `if TYPE_CHECKING:` / `try:` at the top level count too.
            if matches!(node.kind(), "if_statement" | "try_statement") {
                walk(node, node.start_byte(), node.end_byte(), &mut |n, _, _| {
                    if matches!(n.kind(), "import_statement" | "import_from_statement") {
                        import_bindings(n, text, out);
                        return false;
                    }
                    !matches!(n.kind(), "function_definition" | "class_definition")
                });
            }
        }
    }

    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts) {
        let mut globals: Vec<String> = Vec::new();
        walk(root, start, end, &mut |node, field, stack| {
            match node.kind() {
                "identifier" => {
                    classify(node, field, stack, text, facts, &mut globals);
                    false
                }
                "import_statement" | "import_from_statement" => {
                    let before = facts.imports.len();
                    import_bindings(node, text, &mut facts.imports);
                    let bound: Vec<String> = facts
                        .imports
                        .get(before..)
                        .unwrap_or(&[])
                        .iter()
                        .map(|b| b.local.clone())
                        .collect();
                    facts.locals.extend(bound);
                    false
                }
                "assignment" => {
                    assignment_type(node, text, facts);
                    true
                }
                "typed_parameter" | "typed_default_parameter" => {
                    let name = match node.child_by_field_name("name") {
                        Some(n) => Some(n),
                        None => node.named_child(0).filter(|n| n.kind() == "identifier"),
                    };
                    if let (Some(name), Some(ty)) = (name, node.child_by_field_name("type")) {
                        facts.set_type(name, text, self.type_chain(text_of(ty, text)));
                    }
                    true
                }
                "with_item" => {
                    // `with Client() as c:`
                    if let Some(value) = node.child_by_field_name("value")
                        && value.kind() == "as_pattern"
                        && let (Some(call), Some(alias)) =
                            (value.named_child(0), value.child_by_field_name("alias"))
                        && let Some(var) = alias.named_child(0)
                    {
                        facts.set_type(var, text, call_type(call, text));
                    }
                    true
                }
                _ => true,
            }
        });
        for g in globals {
            facts.locals.remove(&g);
        }
    }

    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        let dots = module.chars().take_while(|&c| c == '.').count();
        let rest = module.get(dots..).unwrap_or("");
        let parts: Vec<&str> = rest.split('.').filter(|s| !s.is_empty()).collect();
        if dots > 0 {
            let mut base = from.parent().map(Path::to_path_buf).unwrap_or_default();
            for _ in 1..dots {
                base.pop();
            }
            return module_at(&base, &parts, fs).into_iter().collect();
        }
        let Some(first) = parts.first() else {
            return Vec::new();
        };
        // Absolute: the nearest folder above the importing file (or a root, or a root's
        // `src`) holding the top-level package or module.
        let mut bases: Vec<PathBuf> = from.ancestors().skip(1).map(Path::to_path_buf).collect();
        for root in fs.roots() {
            bases.push(root.join("src"));
            bases.push(root.join("lib"));
            bases.push(root);
        }
        for base in bases {
            if (fs.is_dir(&base.join(first)) || fs.is_file(&base.join(format!("{first}.py"))))
                && let Some(found) = module_at(&base, &parts, fs)
            {
                return vec![found];
            }
        }
        Vec::new()
    }

    fn submodule_files(&self, file: &Path, name: &str, fs: &dyn Files) -> Vec<PathBuf> {
        // `from pkg import mod`: the module `mod` beside `pkg/__init__.py`.
        if file.file_name().is_some_and(|n| n == "__init__.py")
            && let Some(dir) = file.parent()
        {
            return module_at(dir, &[name], fs).into_iter().collect();
        }
        Vec::new()
    }

    fn exports_imports(&self) -> bool {
        true
    }

    fn type_chain(&self, written: &str) -> Vec<String> {
        let written = written.trim().trim_matches(|c| c == '"' || c == '\'');
        // `Foo | None`: the first alternative that is not None.
        for alt in written.split('|') {
            let chain = first_type_chain(alt, ".", WRAPPERS, &[]);
            if chain.last().is_some_and(|l| l != "None") {
                return chain;
            }
        }
        Vec::new()
    }

    fn bases(&self, header: &str) -> Vec<Vec<String>> {
        let Some(open) = header.find('(') else {
            return Vec::new();
        };
        let Some(close) = header.rfind(')') else {
            return Vec::new();
        };
        let inner = header.get(open + 1..close).unwrap_or("");
        split_top_level(inner)
            .into_iter()
            .filter(|b| !b.contains('='))
            .map(|b| first_type_chain(b, ".", &["Generic"], &[]))
            .filter(|c| !c.is_empty() && c.last().is_some_and(|l| l != "object"))
            .collect()
    }

    fn field_type(&self, type_text: &str, name: &str) -> Vec<String> {
        for line in type_text.lines() {
            let t = line.trim();
            // `name: Type` (class attribute or dataclass field) or `self.name: Type = …`
            for prefix in [format!("{name}:"), format!("self.{name}:")] {
                if let Some(rest) = t.strip_prefix(&prefix) {
                    let ty = rest.split('=').next().unwrap_or("");
                    let chain = self.type_chain(ty);
                    if !chain.is_empty() {
                        return chain;
                    }
                }
            }
            // `self.name = Type(…)`
            if let Some(rest) = t.strip_prefix(&format!("self.{name} =")) {
                let rest = rest.trim();
                if let Some(paren) = rest.find('(') {
                    let callee = rest.get(..paren).unwrap_or("");
                    if let Some(chain) = super::chain_of(callee, ".")
                        && chain
                            .last()
                            .is_some_and(|l| l.starts_with(char::is_uppercase))
                    {
                        return chain;
                    }
                }
            }
        }
        Vec::new()
    }

    fn return_type(&self, header: &str) -> Vec<String> {
        let header = header.trim_end().trim_end_matches(':');
        super::return_type_after(header, "->")
            .map(|t| self.type_chain(t))
            .unwrap_or_default()
    }

    fn this_names(&self) -> &'static [&'static str] {
        &["self", "cls"]
    }

    fn is_lead_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with('@') || t.starts_with('#')
    }

    fn is_doc_line(&self, line: &str) -> bool {
        line.trim_start().starts_with('#')
    }

    fn doc_follows_header(&self) -> bool {
        true
    }

    fn is_constructor(&self, name: &str, _container: Option<&str>) -> bool {
        matches!(name, "__init__" | "__new__" | "__post_init__")
    }
}

/// `base/a/b.py` or `base/a/b/__init__.py` for `["a", "b"]` (`base/__init__.py` for none).
fn module_at(base: &Path, parts: &[&str], fs: &dyn Files) -> Option<PathBuf> {
    let mut dir = base.to_path_buf();
    for p in parts {
        dir.push(p);
    }
    if parts.is_empty() {
        return first_file([dir.join("__init__.py")], fs);
    }
    let file = dir.with_extension("py");
    first_file(
        [file, dir.join("__init__.py"), dir.with_extension("pyi")],
        fs,
    )
}

/// The bindings one import statement makes.
fn import_bindings(node: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
    match node.kind() {
        "import_statement" => {
            let mut cursor = node.walk();
            for name in node.children_by_field_name("name", &mut cursor) {
                match name.kind() {
                    // `import a.b` binds `a` (the package); `a.b.x` then reads through it.
                    "dotted_name" => {
                        let full = text_of(name, text);
                        let first = full.split('.').next().unwrap_or(full).trim();
                        out.push(ImportBinding {
                            local: first.to_string(),
                            module: first.to_string(),
                            name: None,
                            export: true,
                        });
                    }
                    "aliased_import" => {
                        if let (Some(n), Some(alias)) = (
                            name.child_by_field_name("name"),
                            name.child_by_field_name("alias"),
                        ) {
                            out.push(ImportBinding {
                                local: text_of(alias, text).to_string(),
                                module: text_of(n, text).to_string(),
                                name: None,
                                export: true,
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        "import_from_statement" => {
            let Some(module) = node.child_by_field_name("module_name") else {
                return;
            };
            let module: String = text_of(module, text).split_whitespace().collect();
            let mut cursor = node.walk();
            let mut any = false;
            for name in node.children_by_field_name("name", &mut cursor) {
                any = true;
                let (imported, local) = match name.kind() {
                    "aliased_import" => (
                        name.child_by_field_name("name").map(|n| text_of(n, text)),
                        name.child_by_field_name("alias").map(|n| text_of(n, text)),
                    ),
                    _ => (Some(text_of(name, text)), Some(text_of(name, text))),
                };
                if let (Some(imported), Some(local)) = (imported, local) {
                    out.push(ImportBinding {
                        local: local.to_string(),
                        module: module.clone(),
                        name: Some(imported.to_string()),
                        export: true,
                    });
                }
            }
            if !any {
                let mut cursor = node.walk();
                if node
                    .named_children(&mut cursor)
                    .any(|c| c.kind() == "wildcard_import")
                {
                    out.push(ImportBinding {
                        local: "*".into(),
                        module,
                        name: None,
                        export: true,
                    });
                }
            }
        }
        _ => {}
    }
}

/// Classifies one identifier: a binding, a use, or neither.
fn classify(
    node: Node<'_>,
    field: Option<&str>,
    stack: &[Step<'_>],
    text: &str,
    facts: &mut CodeFacts,
    globals: &mut Vec<String>,
) {
    let Some(&(parent, parent_field)) = stack.last() else {
        facts.push_ref(node, text, Shape::Plain);
        return;
    };
    let name = text_of(node, text);
    match parent.kind() {
        "attribute" if field == Some("attribute") => {
            let chain = parent
                .child_by_field_name("object")
                .map(|o| receiver_chain(o, text))
                .unwrap_or_default();
            facts.push_ref(node, text, Shape::Member(chain));
            return;
        }
        "keyword_argument" if field == Some("name") => return,
        "parameters" | "lambda_parameters" => return facts.bind(node, text),
        "typed_parameter" if field.is_none() => return facts.bind(node, text),
        "default_parameter" | "typed_default_parameter" if field == Some("name") => {
            return facts.bind(node, text);
        }
        "function_definition" | "class_definition" if field == Some("name") => {
            return facts.bind(node, text);
        }
        "named_expression" if field == Some("name") => return facts.bind(node, text),
        "global_statement" | "nonlocal_statement" => {
            globals.push(name.to_string());
            return;
        }
        "aliased_import" | "dotted_name" | "relative_import" => return,
        _ => {}
    }
    if is_binding_target(node, field, stack) {
        return facts.bind(node, text);
    }
    if matches!(name, "self" | "cls") {
        return;
    }
    let shape = if parent.kind() == "call" && field == Some("function") {
        Shape::Call
    } else {
        Shape::Plain
    };
    let _ = parent_field;
    facts.push_ref(node, text, shape);
}

/// Whether an identifier is (inside) the target of an assignment, a loop, a comprehension,
/// an `as`, a `case` pattern or a parameter list.
fn is_binding_target(node: Node<'_>, field: Option<&str>, stack: &[Step<'_>]) -> bool {
    let mut reached_by = field;
    let mut child = node;
    for &(ancestor, ancestor_field) in stack.iter().rev() {
        let kind = ancestor.kind();
        match kind {
            "assignment" | "augmented_assignment" | "for_statement" | "for_in_clause" => {
                return reached_by == Some("left");
            }
            "as_pattern" => return reached_by == Some("alias"),
            "with_item" | "except_clause" => return false,
            "parameters" | "lambda_parameters" => return true,
            "case_clause" => {
                return reached_by != Some("consequence") && reached_by != Some("guard");
            }
            _ if PATTERNS.contains(&kind) => {
                // `attribute` / `subscript` targets (`self.x = …`) bind nothing.
                let _ = child;
            }
            _ => return false,
        }
        child = ancestor;
        reached_by = ancestor_field;
    }
    false
}

/// `self.client` → `["self", "client"]`; `mod.sub` → `["mod", "sub"]`; other receivers: `[]`.
fn receiver_chain(node: Node<'_>, text: &str) -> Vec<String> {
    match node.kind() {
        "identifier" => vec![text_of(node, text).to_string()],
        "attribute" => {
            let (Some(object), Some(attr)) = (
                node.child_by_field_name("object"),
                node.child_by_field_name("attribute"),
            ) else {
                return Vec::new();
            };
            let mut chain = receiver_chain(object, text);
            if chain.is_empty() {
                return chain;
            }
            chain.push(text_of(attr, text).to_string());
            chain
        }
        _ => Vec::new(),
    }
}

/// The class a call constructs, when its callee is a capitalised name (`Foo(…)`,
/// `mod.Foo(…)`), or when it is `Foo.from_x(…)`-like (a classmethod on a capitalised name).
fn call_type(call: Node<'_>, text: &str) -> Vec<String> {
    if call.kind() != "call" {
        return Vec::new();
    }
    let Some(function) = call.child_by_field_name("function") else {
        return Vec::new();
    };
    let chain = receiver_chain(function, text);
    let Some(last) = chain.last() else {
        return Vec::new();
    };
    if last.starts_with(char::is_uppercase) {
        return chain;
    }
    // `Foo.create(…)`: a constructor-like classmethod.
    if chain.len() >= 2
        && let Some(owner) = chain.get(chain.len() - 2)
        && owner.starts_with(char::is_uppercase)
    {
        return chain.get(..chain.len() - 1).unwrap_or(&[]).to_vec();
    }
    Vec::new()
}

/// `x: Foo = …` and `x = Foo(…)`: the variable's type.
fn assignment_type(node: Node<'_>, text: &str, facts: &mut CodeFacts) {
    let Some(left) = node.child_by_field_name("left") else {
        return;
    };
    if left.kind() != "identifier" {
        return;
    }
    if let Some(ty) = node.child_by_field_name("type") {
        facts.set_type(left, text, Python.type_chain(text_of(ty, text)));
        return;
    }
    if let Some(right) = node.child_by_field_name("right") {
        let chain = call_type(right, text);
        if chain.is_empty() {
            let right = if right.kind() == "await" {
                right.named_child(0).unwrap_or(right)
            } else {
                right
            };
            if right.kind() == "call"
                && let Some(function) = right.child_by_field_name("function")
            {
                facts.set_call(left, text, receiver_chain(function, text));
            }
        } else {
            facts.set_type(left, text, chain);
        }
    }
}
