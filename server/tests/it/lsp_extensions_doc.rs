//! Tidy test (as rust-analyzer's): docs/lsp-extensions.md must be updated whenever the custom
//! protocol in server/src/lsp/ext.rs changes. The doc records a hash of ext.rs. The context
//! result's shape, defined with the engine's types in server/src/context/mod.rs, is checked
//! name by name.

use std::path::Path;

fn fnv1a(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.replace("\r\n", "\n").bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[test]
fn lsp_extensions_doc_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ext = std::fs::read_to_string(root.join("server/src/lsp/ext.rs")).expect("ext.rs");
    let doc = std::fs::read_to_string(root.join("docs/lsp-extensions.md"))
        .expect("docs/lsp-extensions.md");
    let expected = format!("lsp/ext.rs hash: {:016x}", fnv1a(&ext));
    assert!(
        doc.contains(&expected),
        "server/src/lsp/ext.rs changed: update docs/lsp-extensions.md to describe the change, then set its hash line to `{expected}`"
    );
    // Every type of the protocol (request, response and notification types all live in
    // ext.rs) is named in the doc.
    for line in ext.lines() {
        let line = line.trim();
        let name = ["pub struct ", "pub enum ", "pub type "]
            .iter()
            .find_map(|kw| line.strip_prefix(kw))
            .and_then(|rest| {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
            });
        if let Some(name) = name {
            assert!(
                doc.contains(&format!("`{name}`")) || doc.contains(&format!("interface {name} ")),
                "type {name} of ext.rs is not named in docs/lsp-extensions.md"
            );
        }
    }
    // Every method name the protocol defines is documented.
    for line in ext.lines() {
        if let Some(name) = line
            .trim()
            .strip_prefix("pub const ")
            .and_then(|rest| rest.split('"').nth(1))
        {
            assert!(
                doc.contains(name),
                "{name} is not documented in docs/lsp-extensions.md"
            );
        }
    }
}

/// The wire names (camelCase) of the variants of the enum, or of the serialized fields of the
/// struct, that `header` (e.g. `pub enum X {`) opens in `src`.
fn wire_names(src: &str, header: &str) -> Vec<String> {
    let start = src
        .find(header)
        .unwrap_or_else(|| panic!("{header} not found"));
    let body = &src[start + header.len()..];
    let body = &body[..body.find("\n}").expect("end of the item")];
    let mut names = Vec::new();
    let mut skip_next = false;
    for line in body.lines().map(str::trim) {
        if line.starts_with("#[serde(skip") {
            skip_next = true;
            continue;
        }
        if line.is_empty() || line.starts_with("//") || line.starts_with("#[") {
            continue;
        }
        let ident = line
            .trim_start_matches("pub ")
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        if ident.is_empty() || std::mem::take(&mut skip_next) {
            continue;
        }
        let mut camel = String::new();
        let mut upper = false;
        for (i, c) in ident.chars().enumerate() {
            if c == '_' {
                upper = true;
            } else if i == 0 {
                camel.extend(c.to_lowercase());
            } else if std::mem::take(&mut upper) {
                camel.extend(c.to_uppercase());
            } else {
                camel.push(c);
            }
        }
        names.push(camel);
    }
    names
}

#[test]
fn context_result_shape_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = std::fs::read_to_string(root.join("server/src/context/mod.rs")).expect("context");
    let doc = std::fs::read_to_string(root.join("docs/lsp-extensions.md")).expect("doc");
    let kinds = wire_names(&src, "pub enum ContextItemKind {");
    assert!(kinds.len() >= 7, "{kinds:?}");
    for kind in kinds {
        assert!(
            doc.contains(&format!("\"{kind}\"")),
            "context item kind {kind:?} is not documented in docs/lsp-extensions.md"
        );
    }
    for header in ["pub struct ContextItem {", "pub struct ContextSnapshot {"] {
        for field in wire_names(&src, header) {
            assert!(
                doc.contains(&format!("  {field}:")) || doc.contains(&format!("  {field}?:")),
                "field {field} of {header} is not documented in docs/lsp-extensions.md"
            );
        }
    }
}
