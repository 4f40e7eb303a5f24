//! Renders a context snapshot as prompt-ready text: one section per item, with path, lines and reason.

use super::{ContextItem, ContextItemKind};

/// Deterministic rendering: items in order, each as a header and a fenced block.
pub fn render(items: &[ContextItem]) -> String {
    let mut out = String::new();
    for item in items {
        let title = match item.kind {
            ContextItemKind::Selection => "Selection",
            ContextItemKind::EnclosingSymbol => "Enclosing symbol",
            ContextItemKind::Imports => "Imports",
            ContextItemKind::Definition => "Definition",
            ContextItemKind::Diagnostics => "Diagnostics",
            ContextItemKind::Outline => "File outline",
            ContextItemKind::RecentEdit => "Recent edit",
        };
        let lines = if item.range.end.line > item.range.start.line {
            format!("{}-{}", item.range.start.line + 1, item.range.end.line + 1)
        } else {
            format!("{}", item.range.start.line + 1)
        };
        out.push_str(&format!(
            "### {title}: {}:{lines} — {}\n",
            item.display_path, item.reason
        ));
        let fence = if item.text.contains("```") {
            "````"
        } else {
            "```"
        };
        out.push_str(fence);
        out.push_str(item.language);
        out.push('\n');
        out.push_str(&item.text);
        if !item.text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(fence);
        out.push_str("\n\n");
    }
    out
}
