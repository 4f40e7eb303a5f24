//! The approval policy: decides, per edit, whether it is applied, announced, asked for or refused.
//!
//! The agent's setting is the starting point; rules only tighten it: an edit outside the
//! selection, over `max_auto_lines` lines or across files is never automatic, and an edit
//! outside the workspace is refused outright.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::agents::EditProposal;
use crate::config::{Approval, PolicyConfig};
use crate::documents::Range;
use crate::engine::uri_to_path;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "decision")]
pub enum Decision {
    /// Apply now.
    Apply,
    /// Tell the user; apply after the timeout unless rejected.
    Alert { reasons: Vec<String> },
    /// Ask; apply only if accepted.
    Ask { reasons: Vec<String> },
    /// Never apply.
    Refuse { reason: String },
}

/// What the policy looks at.
pub struct EditContext<'a> {
    pub approval: Approval,
    pub edits: &'a [EditProposal],
    /// The range the user selected (edits must stay inside it to be automatic).
    pub selection: Option<Range>,
    pub workspace_roots: &'a [PathBuf],
    pub config: &'a PolicyConfig,
}

fn inside(inner: Range, outer: Range) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn within_roots(path: &Path, roots: &[PathBuf]) -> bool {
    // Normalise `..` without touching the disk (the file may not exist yet).
    let mut norm = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                norm.pop();
            }
            std::path::Component::CurDir => {}
            other => norm.push(other),
        }
    }
    roots.iter().any(|r| norm.starts_with(r))
}

/// Decides what happens to a set of edits from one task.
pub fn decide(ctx: &EditContext<'_>) -> Decision {
    if ctx.edits.is_empty() {
        return Decision::Refuse {
            reason: "the edit is empty".into(),
        };
    }
    for e in ctx.edits {
        match uri_to_path(&e.uri) {
            Some(path) if within_roots(&path, ctx.workspace_roots) => {}
            Some(path) => {
                return Decision::Refuse {
                    reason: format!("{} is outside the workspace", path.display()),
                };
            }
            None => {
                return Decision::Refuse {
                    reason: format!("{} is not a file in the workspace", e.uri),
                };
            }
        }
    }
    let mut reasons = Vec::new();
    if let Some(sel) = ctx.selection
        && ctx.edits.iter().any(|e| !inside(e.range, sel))
    {
        reasons.push("the edit reaches outside the selection".to_string());
    }
    let lines: usize = ctx.edits.iter().map(|e| e.lines_changed).sum();
    if lines > ctx.config.max_auto_lines {
        reasons.push(format!(
            "the edit changes {lines} lines (more than {})",
            ctx.config.max_auto_lines
        ));
    }
    let mut files: Vec<&str> = ctx.edits.iter().map(|e| e.uri.as_str()).collect();
    files.sort();
    files.dedup();
    if files.len() > 1 {
        reasons.push(format!("the edit touches {} files", files.len()));
    }
    match (ctx.approval, reasons.is_empty()) {
        (Approval::Auto, true) => Decision::Apply,
        (Approval::Alert, true) => Decision::Alert { reasons },
        (Approval::Manual, _) => Decision::Ask { reasons },
        // A tightening rule fired: never automatic.
        (Approval::Auto | Approval::Alert, false) => Decision::Ask { reasons },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::Position;

    fn edit(uri: &str, l0: u32, l1: u32, lines: usize) -> EditProposal {
        EditProposal {
            uri: uri.into(),
            range: Range::new(Position::new(l0, 0), Position::new(l1, 0)),
            new_text: "x".into(),
            original_text: "y".into(),
            lines_changed: lines,
            version: None,
        }
    }

    fn run(approval: Approval, edits: &[EditProposal], selection: Option<Range>) -> Decision {
        let roots = vec![PathBuf::from("/ws")];
        let config = PolicyConfig::default();
        decide(&EditContext {
            approval,
            edits,
            selection,
            workspace_roots: &roots,
            config: &config,
        })
    }

    #[test]
    fn auto_applies_small_edits_inside_the_selection() {
        let sel = Some(Range::new(Position::new(0, 0), Position::new(10, 0)));
        assert_eq!(
            run(Approval::Auto, &[edit("file:///ws/a.rs", 1, 2, 2)], sel),
            Decision::Apply
        );
        assert_eq!(
            run(Approval::Alert, &[edit("file:///ws/a.rs", 1, 2, 2)], sel),
            Decision::Alert { reasons: vec![] }
        );
        assert_eq!(
            run(Approval::Manual, &[edit("file:///ws/a.rs", 1, 2, 2)], sel),
            Decision::Ask { reasons: vec![] }
        );
    }

    #[test]
    fn rules_only_tighten() {
        let sel = Some(Range::new(Position::new(0, 0), Position::new(3, 0)));
        assert!(matches!(
            run(Approval::Auto, &[edit("file:///ws/a.rs", 2, 5, 2)], sel),
            Decision::Ask { .. }
        ));
        assert!(matches!(
            run(Approval::Alert, &[edit("file:///ws/a.rs", 0, 1, 500)], None),
            Decision::Ask { .. }
        ));
        let two = [
            edit("file:///ws/a.rs", 0, 1, 1),
            edit("file:///ws/b.rs", 0, 1, 1),
        ];
        assert!(matches!(
            run(Approval::Auto, &two, None),
            Decision::Ask { .. }
        ));
    }

    #[test]
    fn outside_the_workspace_is_refused() {
        for uri in [
            "file:///etc/passwd",
            "file:///ws/../etc/passwd",
            "untitled:Untitled-1",
        ] {
            assert!(
                matches!(
                    run(Approval::Auto, &[edit(uri, 0, 1, 1)], None),
                    Decision::Refuse { .. }
                ),
                "{uri}"
            );
        }
    }
}
