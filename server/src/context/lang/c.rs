//! C and C++: `#include "…"` (beside the file, else any indexed file with that path), the
//! file's own header, names used and bound in code, types of locals and parameters.

use std::path::{Path, PathBuf};

use tree_sitter::Node;

use super::{CodeFacts, Files, ImportBinding, Rules, Shape, Step, first_type_chain, text_of, walk};

pub(crate) struct C;

impl Rules for C {
    fn imports(&self, root: Node<'_>, text: &str, out: &mut Vec<ImportBinding>) {
        walk(
            root,
            root.start_byte(),
            root.end_byte(),
            &mut |node, _, _| match node.kind() {
                "preproc_include" => {
                    if let Some(path) = node.child_by_field_name("path")
                        && path.kind() == "string_literal"
                    {
                        out.push(ImportBinding {
                            local: "*".into(),
                            module: text_of(path, text).trim_matches('"').to_string(),
                            name: None,
                            export: true,
                        });
                    }
                    false
                }
                "translation_unit"
                | "preproc_ifdef"
                | "preproc_if"
                | "preproc_else"
                | "preproc_elif"
                | "linkage_specification"
                | "declaration_list"
                | "namespace_definition" => true,
                _ => false,
            },
        );
    }

    fn facts(&self, root: Node<'_>, text: &str, start: usize, end: usize, facts: &mut CodeFacts) {
        walk(
            root,
            start,
            end,
            &mut |node, field, stack| match node.kind() {
                "identifier" | "type_identifier" | "namespace_identifier" => {
                    classify(node, field, stack, text, facts);
                    false
                }
                "field_identifier" => {
                    if let Some(&(parent, _)) = stack.last()
                        && parent.kind() == "field_expression"
                        && field == Some("field")
                    {
                        let chain = parent
                            .child_by_field_name("argument")
                            .map(|a| match a.kind() {
                                "identifier" | "this" => vec![text_of(a, text).to_string()],
                                _ => Vec::new(),
                            })
                            .unwrap_or_default();
                        facts.push_ref(node, text, Shape::Member(chain));
                    }
                    false
                }
                "qualified_identifier" => {
                    if let (Some(scope), Some(name)) = (
                        node.child_by_field_name("scope"),
                        node.child_by_field_name("name"),
                    ) && matches!(name.kind(), "identifier" | "type_identifier")
                    {
                        let qualifier: Vec<String> = text_of(scope, text)
                            .split("::")
                            .map(|s| s.trim().to_string())
                            .collect();
                        facts.push_ref(scope, text, Shape::Plain);
                        facts.push_ref(name, text, Shape::Qualified(qualifier));
                        return false;
                    }
                    true
                }
                "declaration" | "parameter_declaration" => {
                    if let (Some(ty), Some(decl)) = (
                        node.child_by_field_name("type"),
                        node.child_by_field_name("declarator"),
                    ) && let Some(name) = declarator_name(decl)
                    {
                        facts.set_type(name, text, self.type_chain(text_of(ty, text)));
                    }
                    true
                }
                "comment" | "string_literal" | "system_lib_string" => false,
                _ => true,
            },
        );
    }

    fn module_files(&self, module: &str, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        if let Some(dir) = from.parent() {
            let beside = super::normalize(&dir.join(module));
            if fs.is_file(&beside) {
                return vec![beside];
            }
        }
        let mut found = fs.files_ending_with(Path::new(module));
        found.truncate(2);
        found
    }

    fn implicit_files(&self, from: &Path, fs: &dyn Files) -> Vec<PathBuf> {
        // A source file's own header.
        ["h", "hpp", "hh", "hxx"]
            .iter()
            .map(|ext| from.with_extension(ext))
            .filter(|p| p != from && fs.is_file(p))
            .collect()
    }

    fn type_chain(&self, written: &str) -> Vec<String> {
        first_type_chain(
            written,
            "::",
            &["unique_ptr", "shared_ptr", "vector", "optional"],
            &[
                "struct", "class", "enum", "union", "const", "volatile", "unsigned", "signed",
                "std",
            ],
        )
    }

    fn guesses_bare_names(&self) -> bool {
        true
    }

    fn this_names(&self) -> &'static [&'static str] {
        &["this"]
    }

    fn is_lead_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with("//")
            || t.starts_with("/*")
            || t.starts_with('*')
            || t.starts_with("template")
    }

    fn is_doc_line(&self, line: &str) -> bool {
        let t = line.trim_start();
        t.starts_with("//") || t.starts_with("/*") || t.starts_with('*')
    }

    fn is_constructor(&self, name: &str, container: Option<&str>) -> bool {
        container == Some(name)
    }
}

fn declarator_name(mut node: Node<'_>) -> Option<Node<'_>> {
    for _ in 0..8 {
        match node.kind() {
            "identifier" => return Some(node),
            "init_declarator"
            | "pointer_declarator"
            | "reference_declarator"
            | "array_declarator" => {
                node = node
                    .child_by_field_name("declarator")
                    .or_else(|| node.named_child(0))?;
            }
            _ => return None,
        }
    }
    None
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
    // A declarator's name binds (locals, parameters).
    if field == Some("declarator")
        && matches!(
            parent.kind(),
            "init_declarator"
                | "pointer_declarator"
                | "reference_declarator"
                | "array_declarator"
                | "declaration"
                | "parameter_declaration"
                | "function_declarator"
        )
    {
        return facts.bind(node, text);
    }
    if matches!(parent.kind(), "labeled_statement" | "goto_statement") {
        return;
    }
    if parent.kind() == "preproc_def" || parent.kind() == "preproc_function_def" {
        return;
    }
    let shape = match parent.kind() {
        "call_expression" if field == Some("function") => Shape::Call,
        _ => Shape::Plain,
    };
    facts.push_ref(node, text, shape);
}
