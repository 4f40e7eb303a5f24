//! Edits outside an editor: an edit as a unified diff, and written to its file on disk.

use std::path::Path;
use std::time::Duration;

use crate::agents::{AgentDiagnostic, TaskEvent, TaskHost, TaskInfo};
use crate::providers::BoxFuture;

use crate::documents::{PositionEncoding, position_to_char};
use crate::engine::uri_to_path;
use crate::policy::EditProposal;

/// The edit as a unified diff of its minimal hunks, the path relative to `root` when inside it.
pub fn edit_diff(root: &Path, edit: &EditProposal) -> String {
    let path = uri_to_path(&edit.uri)
        .map(|p| match p.strip_prefix(root) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => p.display().to_string(),
        })
        .unwrap_or_else(|| edit.uri.clone());
    crate::line_diff::unified_diff(
        &path,
        edit.range.start.line,
        &edit.original_text,
        &edit.new_text,
    )
}

/// The file's whole text after the edit (UTF-8 positions), checking that the replaced text is
/// still what the model saw.
pub fn edited_text(text: &str, edit: &EditProposal) -> Result<String, String> {
    let mut rope = ropey::Rope::from_str(text);
    let start = position_to_char(&rope, edit.range.start, PositionEncoding::Utf8)
        .map_err(|e| e.to_string())?;
    let end = position_to_char(&rope, edit.range.end, PositionEncoding::Utf8)
        .map_err(|e| e.to_string())?;
    if rope.slice(start..end) != edit.original_text.as_str() {
        return Err("the file changed since the task started; not writing".into());
    }
    rope.remove(start..end);
    rope.insert(start, &edit.new_text);
    Ok(rope.to_string())
}

/// Writes one edit to its file on disk (see [`edited_text`]).
pub fn write_edit(edit: &EditProposal) -> Result<(), String> {
    let path = uri_to_path(&edit.uri).ok_or_else(|| format!("{} is not a file", edit.uri))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let new = edited_text(&text, edit).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The host of a session with no editor and no one to ask (the MCP front end): front ends
/// follow tasks through [`Session::subscribe`](super::Session::subscribe); edits the policy
/// lets through are written to disk; an edit that needs approval waits for
/// [`Session::approve`](super::Session::approve).
pub struct DiskHost;

impl TaskHost for DiskHost {
    fn on_event(&self, _: TaskEvent) {}

    fn apply_edit(
        &self,
        _: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        Box::pin(async move {
            for edit in &edits {
                write_edit(edit)?;
            }
            Ok(true)
        })
    }

    fn ask_approval(
        &self,
        _: &TaskInfo,
        _: &[EditProposal],
        _: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        Box::pin(async { None })
    }

    fn alert(&self, _: &TaskInfo, _: &[EditProposal], _: &[String], _: Duration) {}

    fn publish_diagnostics(&self, _: &TaskInfo, _: &str, _: &[AgentDiagnostic]) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{Position, Range};

    fn edit(original: &str, new: &str, range: Range) -> EditProposal {
        EditProposal {
            uri: "file:///w/a.py".into(),
            range,
            new_text: new.into(),
            original_text: original.into(),
            lines_changed: 1,
            version: None,
        }
    }

    #[test]
    fn an_edit_replaces_its_range_and_refuses_a_changed_file() {
        let range = Range::new(Position::new(1, 0), Position::new(2, 0));
        let e = edit("b = 2\n", "b = 3\n", range);
        assert_eq!(
            edited_text("a = 1\nb = 2\nc = 3\n", &e).unwrap(),
            "a = 1\nb = 3\nc = 3\n"
        );
        assert!(edited_text("a = 1\nb = 9\nc = 3\n", &e).is_err());
        assert!(edited_text("a = 1\n", &e).is_err(), "a range past the end");
    }
}
