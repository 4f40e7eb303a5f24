//! Go: imports (package paths to folders through `go.mod`), the package's other files,
//! names used and bound in code, types of variables, parameters and receivers.

use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::{CodeFacts, Files, ImportBinding, Rules, Shape, Step, first_type_chain, text_of, walk};

pub(crate) struct Go;

impl Rules for Go {
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
        walk(
            root,
            root.start_byte(),
            root.end_byte(),
            &mut |node, _, stack| match node.kind() {
                "import_spec" => {
                    let Some(path) = node.child_by_field_name("path") else {
                        return false;
                    };
                    let module = text_of(path, text).trim_matches(['"', '`']).to_string();
                    let local = match node.child_by_field_name("name") {
                        Some(n) => text_of(n, text).to_string(),
                        None => package_name(&module),
                    };
                    let local = if local == "." { "*".to_string() } else { local };
                    if local != "_" {
                        out.push(ImportBinding {
                            local,
                            module,
                            name: None,
                            export: false,
                        });
                    }
                    false
                }
                "source_file" | "import_declaration" | "import_spec_list" => true,
                _ => stack.is_empty(),
            },
        );
    }

    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts) {
        walk(
            root,
            start,
            end,
            &mut |node, field, stack| match node.kind() {
                "identifier" | "type_identifier" | "package_identifier" => {
                    classify(node, field, stack, text, facts);
                    false
                }
                "field_identifier" => {
                    if let Some(&(parent, _)) = stack.last()
                        && parent.kind() == "selector_expression"
                        && field == Some("field")
                    {
                        let chain = parent
                            .child_by_field_name("operand")
                            .map(|o| operand_chain(o, text))
                            .unwrap_or_default();
                        facts.push_ref(node, text, Shape::Member(chain));
                    }
                    false
                }
                "qualified_type" => {
                    if let (Some(pkg), Some(name)) = (
                        node.child_by_field_name("package"),
                        node.child_by_field_name("name"),
                    ) {
                        facts.push_ref(pkg, text, Shape::Plain);
                        facts.push_ref(
                            name,
                            text,
                            Shape::Qualified(vec![text_of(pkg, text).to_string()]),
                        );
                    }
                    false
                }
                "parameter_declaration" | "var_spec" => {
                    if let Some(ty) = node.child_by_field_name("type") {
                        let chain = self.type_chain(text_of(ty, text));
                        let mut cursor = node.walk();
                        let names: Vec<Node<'_>> =
                            node.children_by_field_name("name", &mut cursor).collect();
                        for name in names {
                            facts.set_type(name, text, chain.clone());
                        }
                    }
                    true
                }
                "short_var_declaration" => {
                    if let (Some(left), Some(right)) = (
                        node.child_by_field_name("left"),
                        node.child_by_field_name("right"),
                    ) && let (Some(var), Some(value)) =
                        (left.named_child(0), right.named_child(0))
                        && var.kind() == "identifier"
                    {
                        let ty = value_type(value, text);
                        if ty.is_empty() {
                            if value.kind() == "call_expression"
                                && let Some(function) = value.child_by_field_name("function")
                            {
                                facts.set_call(var, text, operand_chain(function, text));
                            }
                        } else {
                            facts.set_type(var, text, ty);
                        }
                    }
                    true
                }
                "comment" | "interpreted_string_literal" | "raw_string_literal" => false,
                _ => true,
            },
        );
    }

    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        let Some(dir) = package_dir(module, from, fs) else {
            return Vec::new();
        };
        go_files(&dir, fs)
    }

    fn implicit_files(&self, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        let Some(dir) = from.parent() else {
            return Vec::new();
        };
        go_files(dir, fs)
            .into_iter()
            .filter(|f| f != from)
            .collect()
    }

    fn type_chain(&self, written: &str) -> Vec<String> {
        first_type_chain(written, ".", &[], &["chan", "func", "map"])
    }

    fn field_type(&self, type_text: &str, name: &str) -> Vec<String> {
        for line in type_text.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some(name) {
                let rest: Vec<&str> = words.collect();
                return self.type_chain(&rest.join(" "));
            }
        }
        Vec::new()
    }

    fn return_type(&self, header: &str) -> Vec<String> {
        // `func (r *R) name(params) Result {`: with a receiver, the parameters are the second
        // parenthesis.
        let rest = header
            .trim_start()
            .strip_prefix("func")
            .unwrap_or(header)
            .trim_start();
        let rest = if rest.starts_with('(') {
            let mut depth = 0;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest.get(end..).unwrap_or("")
        } else {
            rest
        };
        super::return_type_after(rest, "")
            .map(|t| self.type_chain(t.trim_start_matches('(')))
            .unwrap_or_default()
    }

    fn this_names(&self) -> &'static [&'static str] {
        &[]
    }

    fn is_lead_line(&self, line: &str) -> bool {
        line.trim_start().starts_with("//")
    }

    fn is_doc_line(&self, line: &str) -> bool {
        line.trim_start().starts_with("//")
    }

    fn is_constructor(&self, name: &str, container: Option<&str>) -> bool {
        container.is_some_and(|c| name == format!("New{c}")) || name == "New"
    }
}

/// The package name an import path binds by default: its last segment (without a `.vN`
/// or `/vN` version).
fn package_name(path: &str) -> String {
    let mut segs: Vec<&str> = path.split('/').collect();
    if segs.len() > 1
        && segs.last().is_some_and(|s| {
            s.len() > 1
                && s.starts_with('v')
                && s.get(1..)
                    .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit()))
        })
    {
        segs.pop();
    }
    let last = segs.last().copied().unwrap_or(path);
    let last = last.split('.').next().unwrap_or(last);
    last.trim_start_matches("go-").replace('-', "_")
}

/// The folder of an import path: under the module that `go.mod` names, else the folder of
/// the workspace whose path ends with the import path.
fn package_dir(module: &str, from: &Path, fs: &dyn Files) -> Option<PathBuf> {
    for dir in from.ancestors().skip(1) {
        let go_mod = dir.join("go.mod");
        if fs.is_file(&go_mod) {
            let text = fs.read_small(&go_mod)?;
            let name = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("module "))
                .map(|m| m.trim().trim_matches('"').to_string())?;
            if module == name {
                return Some(dir.to_path_buf());
            }
            if let Some(rest) = module.strip_prefix(&format!("{name}/")) {
                return Some(dir.join(rest)).filter(|d| fs.is_dir(d));
            }
            break;
        }
    }
    // A vendored or sibling copy: a folder whose path ends with the import path.
    for root in fs.roots() {
        let mut p = PathBuf::from(module);
        while p.components().count() > 0 {
            let candidate = root.join(&p);
            if fs.is_dir(&candidate) && !go_files(&candidate, fs).is_empty() {
                return Some(candidate);
            }
            let mut comps = p.components();
            comps.next();
            p = comps.as_path().to_path_buf();
        }
    }
    None
}

/// The package's Go files in a folder (tests aside).
fn go_files(dir: &Path, fs: &dyn Files) -> Vec<PathBuf> {
    fs.list_dir(dir)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "go") && !p.to_string_lossy().ends_with("_test.go")
        })
        .collect()
}

fn classify(
    node: Node<'_>,
    field: Option<&str>,
    stack: &[Step<'_>],
    text: &str,
    facts: &mut CodeFacts,
) {
    let Some(&(parent, _)) = stack.last() else {
        facts.push_ref(node, text, Shape::Plain);
        return;
    };
    match parent.kind() {
        "parameter_declaration" | "variadic_parameter_declaration" | "var_spec" | "const_spec"
            if field == Some("name") =>
        {
            return facts.bind(node, text);
        }
        "expression_list" => {
            if let Some(&(grand, reached)) = stack.get(stack.len().wrapping_sub(2))
                && matches!(grand.kind(), "short_var_declaration" | "range_clause")
                && reached == Some("left")
            {
                return facts.bind(node, text);
            }
        }
        "range_clause" if field == Some("left") => return facts.bind(node, text),
        "labeled_statement" | "break_statement" | "continue_statement" | "goto_statement" => return,
        "type_parameter_declaration" if field == Some("name") => return facts.bind(node, text),
        "function_declaration" | "type_spec" if field == Some("name") => {
            return facts.bind(node, text);
        }
        "keyed_element" | "literal_element" => {
            // `Foo{A: 1}`: a field name, not a use.
            if let Some(&(grand, reached)) = stack.get(stack.len().wrapping_sub(2))
                && grand.kind() == "keyed_element"
                && reached == Some("key")
            {
                return;
            }
        }
        _ => {}
    }
    let shape = match parent.kind() {
        "call_expression" if field == Some("function") => Shape::Call,
        "composite_literal" if field == Some("type") => Shape::Call,
        _ => Shape::Plain,
    };
    facts.push_ref(node, text, shape);
}

fn operand_chain(node: Node<'_>, text: &str) -> Vec<String> {
    match node.kind() {
        "identifier" => vec![text_of(node, text).to_string()],
        "selector_expression" => {
            let (Some(operand), Some(field)) = (
                node.child_by_field_name("operand"),
                node.child_by_field_name("field"),
            ) else {
                return Vec::new();
            };
            let mut chain = operand_chain(operand, text);
            if chain.is_empty() {
                return chain;
            }
            chain.push(text_of(field, text).to_string());
            chain
        }
        "parenthesized_expression" => node
            .named_child(0)
            .map(|n| operand_chain(n, text))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `Foo{…}`, `&Foo{…}`, `NewFoo(…)`, `pkg.NewFoo(…)`: the type.
fn value_type(value: Node<'_>, text: &str) -> Vec<String> {
    let node = if value.kind() == "unary_expression" {
        value.child_by_field_name("operand").unwrap_or(value)
    } else {
        value
    };
    match node.kind() {
        "composite_literal" => node
            .child_by_field_name("type")
            .map(|t| Go.type_chain(text_of(t, text)))
            .unwrap_or_default(),
        "call_expression" => {
            let Some(function) = node.child_by_field_name("function") else {
                return Vec::new();
            };
            let mut chain = operand_chain(function, text);
            match chain.last_mut() {
                Some(last) if last.starts_with("New") && last.len() > 3 => {
                    *last = last.get(3..).unwrap_or("").to_string();
                    chain
                }
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}
