//! The approval policy: decides, per edit, whether it is applied, announced, asked for or refused.
//!
//! The agent's setting is the starting point; rules only tighten it: an edit outside the
//! selection, over `max_auto_lines` lines or across files is never automatic, and an edit
//! outside the workspace (real paths: symbolic links followed) is refused outright.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Approval, PolicyConfig};
use crate::documents::Range;
use crate::uri::uri_to_path;

/// A proposed edit, in client coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditProposal {
    pub uri: String,
    pub range: Range,
    pub new_text: String,
    pub original_text: String,
    /// Lines removed plus lines added.
    pub lines_changed: usize,
    /// The document version the edit was computed against (the client refuses it if the
    /// document changed since).
    pub version: Option<i32>,
}

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

/// `..` and `.` removed without touching the disk.
fn normalize(path: &Path) -> PathBuf {
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
    norm
}

/// Where a path really is: its longest existing ancestor with every symbolic link followed,
/// then the rest (the file may not exist yet; a part that does not exist cannot be a link).
fn real_path(path: &Path) -> PathBuf {
    let norm = normalize(path);
    let mut existing = norm.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return norm,
        }
    }
}

/// Whether a path is inside one of the roots, both taken as real paths (symbolic links
/// followed): a link inside the workspace pointing out of it is outside.
fn within_roots(path: &Path, roots: &[PathBuf]) -> bool {
    let real = real_path(path);
    roots.iter().any(|r| real.starts_with(real_path(r)))
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
            "the edit has {} (more than policy.max_auto_lines = {})",
            crate::line_diff::changed_lines_label(lines),
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

    /// A symbolic link inside the workspace that points outside it is outside: the real path
    /// decides, for a file and for a folder link, whether the file exists yet or not.
    #[cfg(unix)]
    #[test]
    fn links_out_of_the_workspace_are_outside_it() {
        let outside = tempfile::tempdir().expect("tmp");
        let ws = tempfile::tempdir().expect("tmp");
        std::fs::write(outside.path().join("secret.py"), "x = 1\n").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret.py"), ws.path().join("link.py"))
            .expect("link");
        std::os::unix::fs::symlink(outside.path(), ws.path().join("dir")).expect("link");
        std::fs::write(ws.path().join("own.py"), "y = 2\n").expect("write");
        let roots = vec![ws.path().to_path_buf()];
        let config = PolicyConfig::default();
        let decide_for = |path: &Path| {
            let uri = crate::uri::path_to_uri(path);
            let edits = [edit(&uri, 0, 1, 1)];
            decide(&EditContext {
                approval: Approval::Auto,
                edits: &edits,
                selection: None,
                workspace_roots: &roots,
                config: &config,
            })
        };
        for p in [
            ws.path().join("link.py"),
            ws.path().join("dir/secret.py"),
            ws.path().join("dir/new_file.py"),
            ws.path().join("sub/../dir/secret.py"),
        ] {
            assert!(
                matches!(decide_for(&p), Decision::Refuse { .. }),
                "{}",
                p.display()
            );
        }
        assert_eq!(decide_for(&ws.path().join("own.py")), Decision::Apply);
        assert_eq!(
            decide_for(&ws.path().join("not/yet/there.py")),
            Decision::Apply
        );
        // A root given through a link holds what is really inside it.
        let link_root = outside.path().join("ws-link");
        std::os::unix::fs::symlink(ws.path(), &link_root).expect("link");
        let roots = vec![link_root];
        let uri = crate::uri::path_to_uri(&ws.path().join("own.py"));
        let edits = [edit(&uri, 0, 1, 1)];
        let d = decide(&EditContext {
            approval: Approval::Auto,
            edits: &edits,
            selection: None,
            workspace_roots: &roots,
            config: &config,
        });
        assert_eq!(d, Decision::Apply);
    }
}
