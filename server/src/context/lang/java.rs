//! Java: `import` (classes, static members, packages) to files under the source root the
//! `package` line implies, the package's other classes, names used and bound in code, types
//! of locals, parameters and fields.

use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::{
    CodeFacts, Files, ImportBinding, Rules, Shape, Step, first_type_chain, split_top_level,
    text_of, walk,
};

pub(crate) struct Java;

const WRAPPERS: &[&str] = &[
    "List",
    "Optional",
    "Set",
    "Collection",
    "Iterable",
    "Supplier",
    "Future",
    "CompletableFuture",
];

impl Rules for Java {
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
        let mut cursor = root.walk();
        for node in root.named_children(&mut cursor) {
            if node.kind() != "import_declaration" {
                continue;
            }
            let mut c2 = node.walk();
            let parts: Vec<Node<'_>> = node.named_children(&mut c2).collect();
            let Some(path) = parts
                .iter()
                .find(|p| matches!(p.kind(), "scoped_identifier" | "identifier"))
            else {
                continue;
            };
            let path = text_of(*path, text).split_whitespace().collect::<String>();
            let glob = parts.iter().any(|p| p.kind() == "asterisk");
            let is_static = text_of(node, text)
                .trim_start()
                .starts_with("import static");
            if glob {
                out.push(ImportBinding {
                    local: "*".into(),
                    module: path,
                    name: None,
                    export: false,
                });
                continue;
            }
            let (module, name) = match path.rsplit_once('.') {
                Some((m, n)) => (m.to_string(), n.to_string()),
                None => (String::new(), path.clone()),
            };
            // `import a.b.C;` → C in file a/b/C.java; `import static a.b.C.m;` → m in a/b/C.java.
            let module = if is_static { module } else { path.clone() };
            let name = Some(name);
            let local = path.rsplit('.').next().unwrap_or(&path).to_string();
            out.push(ImportBinding {
                local,
                module,
                name,
                export: false,
            });
        }
    }

    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts) {
        walk(
            root,
            start,
            end,
            &mut |node, field, stack| match node.kind() {
                "identifier" | "type_identifier" => {
                    classify(node, field, stack, text, facts);
                    false
                }
                "local_variable_declaration" | "field_declaration" => {
                    if let Some(ty) = node.child_by_field_name("type") {
                        let written = text_of(ty, text);
                        let mut cursor = node.walk();
                        let decls: Vec<Node<'_>> = node
                            .children_by_field_name("declarator", &mut cursor)
                            .collect();
                        for d in decls {
                            let Some(name) = d.child_by_field_name("name") else {
                                continue;
                            };
                            let value = d.child_by_field_name("value");
                            let chain = if written == "var" {
                                value
                                    .filter(|v| v.kind() == "object_creation_expression")
                                    .and_then(|v| v.child_by_field_name("type"))
                                    .map(|t| self.type_chain(text_of(t, text)))
                                    .unwrap_or_default()
                            } else {
                                self.type_chain(written)
                            };
                            if chain.is_empty() {
                                if let Some(call) =
                                    value.filter(|v| v.kind() == "method_invocation")
                                    && let Some(m) = call.child_by_field_name("name")
                                {
                                    let mut callee = call
                                        .child_by_field_name("object")
                                        .map(|o| object_chain(o, text))
                                        .unwrap_or_default();
                                    callee.push(text_of(m, text).to_string());
                                    facts.set_call(name, text, callee);
                                }
                            } else {
                                facts.set_type(name, text, chain);
                            }
                        }
                    }
                    true
                }
                "formal_parameter" | "enhanced_for_statement" | "catch_formal_parameter" => {
                    if let (Some(ty), Some(name)) = (
                        node.child_by_field_name("type"),
                        node.child_by_field_name("name"),
                    ) {
                        facts.set_type(name, text, self.type_chain(text_of(ty, text)));
                    }
                    true
                }
                "line_comment" | "block_comment" | "string_literal" => false,
                _ => true,
            },
        );
    }

    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        let Some(root) = source_root(from, fs) else {
            return Vec::new();
        };
        let rel: PathBuf = module.split('.').collect();
        let class_file = root.join(&rel).with_extension("java");
        if fs.is_file(&class_file) {
            return vec![class_file];
        }
        // A package: its classes.
        let dir = root.join(&rel);
        if fs.is_dir(&dir) {
            return java_files(&dir, fs);
        }
        // Another source root of the workspace.
        fs.files_ending_with(&rel.with_extension("java"))
    }

    fn implicit_files(&self, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        let Some(dir) = from.parent() else {
            return Vec::new();
        };
        java_files(dir, fs)
            .into_iter()
            .filter(|f| f != from)
            .collect()
    }

    fn type_chain(&self, written: &str) -> Vec<String> {
        first_type_chain(written, ".", WRAPPERS, &["final"])
    }

    fn bases(&self, header: &str) -> Vec<Vec<String>> {
        // From the declaration's keyword to its body: annotations before it may hold braces
        // (`@SuppressWarnings({"a", "b"})`).
        let declared = ["class ", "interface ", "enum ", "record "]
            .iter()
            .filter_map(|k| {
                header.match_indices(k).map(|(i, _)| i).find(|&i| {
                    header
                        .get(..i)
                        .is_none_or(|b| b.is_empty() || b.ends_with([' ', '\n', '\t']))
                })
            })
            .min()
            .unwrap_or(0);
        let header = header.get(declared..).unwrap_or(header);
        let header = header.split('{').next().unwrap_or(header);
        let mut out = Vec::new();
        for keyword in [" extends ", " implements "] {
            if let Some(at) = header.find(keyword) {
                let rest = header.get(at + keyword.len()..).unwrap_or("");
                let rest = rest.split(" implements ").next().unwrap_or(rest);
                for base in split_top_level(rest) {
                    let chain = first_type_chain(base, ".", &[], &[]);
                    if !chain.is_empty() {
                        out.push(chain);
                    }
                }
            }
        }
        out
    }

    fn field_type(&self, type_text: &str, name: &str) -> Vec<String> {
        for line in type_text.lines() {
            let t = line.trim().trim_end_matches(';');
            let decl = t.split('=').next().unwrap_or(t).trim();
            let words: Vec<&str> = decl.split_whitespace().collect();
            if words.last() == Some(&name) && words.len() >= 2 {
                let ty = words.get(words.len() - 2).copied().unwrap_or("");
                return self.type_chain(ty);
            }
        }
        Vec::new()
    }

    fn class_per_file(&self) -> bool {
        true
    }

    fn return_type(&self, header: &str) -> Vec<String> {
        // `public static <T> Foo<T> make(…)`: the type just before the name.
        let before = header.split('(').next().unwrap_or("");
        let words: Vec<&str> = before.split_whitespace().collect();
        match words.len() {
            n if n >= 2 => self.type_chain(words.get(n - 2).copied().unwrap_or("")),
            _ => Vec::new(),
        }
    }

    fn this_names(&self) -> &'static [&'static str] {
        &["this"]
    }

    fn bare_names_reach_members(&self) -> bool {
        true
    }

    fn is_lead_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with('@') || t.starts_with("/**") || t.starts_with('*') || t.starts_with("//")
    }

    fn is_doc_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with("/**") || t.starts_with('*') || t.starts_with("//")
    }

    fn is_constructor(&self, name: &str, container: Option<&str>) -> bool {
        container == Some(name)
    }
}

/// The source root of a file: its folder minus the folders its `package` line names.
fn source_root(from: &Path, fs: &dyn Files) -> Option<PathBuf> {
    let text = fs.read_small(from)?;
    let package = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map(|p| p.trim().trim_end_matches(';').trim().to_string());
    let mut dir = from.parent()?.to_path_buf();
    if let Some(package) = package {
        for _ in package.split('.') {
            dir.pop();
        }
    }
    Some(dir)
}

fn java_files(dir: &Path, fs: &dyn Files) -> Vec<PathBuf> {
    fs.list_dir(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
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
        "variable_declarator"
        | "formal_parameter"
        | "catch_formal_parameter"
        | "enhanced_for_statement"
        | "method_declaration"
        | "class_declaration"
        | "interface_declaration"
        | "enum_declaration"
        | "record_declaration"
        | "type_parameter"
        | "spread_parameter"
            if field == Some("name") || parent.kind() == "type_parameter" =>
        {
            return facts.bind(node, text);
        }
        "lambda_expression" if field == Some("parameters") => return facts.bind(node, text),
        "inferred_parameters" => return facts.bind(node, text),
        "method_invocation" if field == Some("name") => {
            let shape = match parent.child_by_field_name("object") {
                Some(o) => Shape::Member(object_chain(o, text)),
                None => Shape::Call,
            };
            facts.push_ref(node, text, shape);
            return;
        }
        "field_access" if field == Some("field") => {
            let chain = parent
                .child_by_field_name("object")
                .map(|o| object_chain(o, text))
                .unwrap_or_default();
            facts.push_ref(node, text, Shape::Member(chain));
            return;
        }
        "scoped_type_identifier" => {
            let qualifier: Vec<String> = parent
                .named_child(0)
                .map(|q| text_of(q, text).split('.').map(str::to_string).collect())
                .unwrap_or_default();
            if parent.named_child(0) != Some(node) {
                facts.push_ref(node, text, Shape::Qualified(qualifier));
                return;
            }
        }
        // The class an import names (`import a.b.C;`): the import binds it.
        "scoped_identifier"
            if field == Some("name")
                && (stack.len().checked_sub(2))
                    .and_then(|i| stack.get(i))
                    .is_some_and(|(n, _)| n.kind() == "import_declaration") =>
        {
            return facts.push_ref(node, text, Shape::Plain);
        }
        "package_declaration" | "import_declaration" | "scoped_identifier" => return,
        _ => {}
    }
    let shape = match parent.kind() {
        "object_creation_expression" => Shape::Call,
        _ => Shape::Plain,
    };
    facts.push_ref(node, text, shape);
}

fn object_chain(node: Node<'_>, text: &str) -> Vec<String> {
    match node.kind() {
        "this" | "identifier" => vec![text_of(node, text).to_string()],
        "field_access" => {
            let (Some(object), Some(field)) = (
                node.child_by_field_name("object"),
                node.child_by_field_name("field"),
            ) else {
                return Vec::new();
            };
            let mut chain = object_chain(object, text);
            if chain.is_empty() {
                return chain;
            }
            chain.push(text_of(field, text).to_string());
            chain
        }
        _ => Vec::new(),
    }
}
