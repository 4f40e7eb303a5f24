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
        // 1-based lines; a range ending at a line's column 0 does not include that line.
        let (start, end) = (item.range.start.line, item.range.end.line);
        let last = if item.range.end.character == 0 && end > start {
            end - 1
        } else {
            end
        };
        let lines = if last > start {
            format!("{}-{}", start + 1, last + 1)
        } else {
            format!("{}", start + 1)
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
