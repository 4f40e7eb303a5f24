//! Renders a context snapshot as prompt-ready text: one section per item, with path, lines and reason.

use super::ContextItem;

/// Deterministic rendering: items in order, each as a header and a fenced block.
pub fn render(items: &[ContextItem]) -> String {
    let mut out = String::new();
    for item in items {
        let title = item.kind.title();
        let (first, last) = item.lines();
        let lines = if last > first {
            format!("{first}-{last}")
        } else {
            format!("{first}")
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
