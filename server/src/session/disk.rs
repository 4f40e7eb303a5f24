//! Files read from disk for front ends without an editor (MCP, ACP): opened as documents for the
//! length of a request, and 1-based line/column locations turned into positions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Session, SessionError};
use crate::documents::{Position, PositionEncoding, Range, byte_to_position};
use crate::engine::{path_to_uri, uri_to_path};

/// A workspace file open as a document while this guard lives (several guards on one file
/// share it). A file an editor has open stays the editor's: its buffer is used, never closed.
pub struct DiskDocument {
    session: Arc<Session>,
    pub uri: String,
    pub path: PathBuf,
    /// The text the document was opened with.
    pub text: String,
    owned: bool,
}

/// A place in a file as people give it: 1-based line and column (in characters), optionally
/// to an end. No line means the whole file; no end column means through the end line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilePlace {
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub end_line: Option<u32>,
    pub end_column: Option<u32>,
}

impl DiskDocument {
    /// The position of a 1-based line and character column (see [`position_of`]).
    pub fn position(&self, line: u32, column: u32) -> Result<Position, SessionError> {
        position_of(&self.text, line, column)
    }

    /// The cursor and the selection (if any) of a place in this document.
    pub fn place(&self, place: &FilePlace) -> Result<(Position, Option<Range>), SessionError> {
        let Some(line) = place.line else {
            return Ok((Position::new(0, 0), Some(self.whole())));
        };
        let start = self.position(line, place.column.unwrap_or(1))?;
        let end = match (place.end_line, place.end_column) {
            (None, _) => return Ok((start, None)),
            (Some(end), Some(column)) => self.position(end, column)?,
            (Some(end), None) => self
                .position(end.saturating_add(1), 1)
                .ok()
                .filter(|p| p.line == end)
                .unwrap_or(self.whole().end),
        };
        Ok((start, Some(Range::new(start, end.max(start)))))
    }

    /// The whole document as a range.
    pub fn whole(&self) -> Range {
        let rope = ropey::Rope::from_str(&self.text);
        Range::new(
            Position::new(0, 0),
            byte_to_position(&rope, self.text.len(), PositionEncoding::Utf8),
        )
    }
}

impl Drop for DiskDocument {
    fn drop(&mut self) {
        if self.owned {
            self.session.release_disk_document(&self.uri);
        }
    }
}

impl Session {
    /// Resolves `path` (relative to the first root, or absolute) to a file inside the workspace,
    /// symlinks followed: a path that leaves every root is refused.
    pub fn workspace_path(&self, path: &str) -> Result<PathBuf, SessionError> {
        let roots = self.roots();
        let given = Path::new(path);
        let joined = match roots.first() {
            Some(root) if given.is_relative() => root.join(given),
            _ => given.to_path_buf(),
        };
        let real = std::fs::canonicalize(&joined)
            .map_err(|e| SessionError::Invalid(format!("cannot open {path}: {e}")))?;
        let inside = roots
            .iter()
            .any(|root| std::fs::canonicalize(root).is_ok_and(|root| real.starts_with(&root)));
        if !inside {
            return Err(SessionError::Invalid(format!(
                "{path} is outside the workspace"
            )));
        }
        Ok(real)
    }

    /// `path` as people read it: relative to the first root that holds it, else as it is.
    pub fn display_path(&self, path: &Path) -> String {
        let roots = self.roots();
        let relative = roots.iter().find_map(|r| path.strip_prefix(r).ok());
        relative.unwrap_or(path).display().to_string()
    }

    /// Opens a workspace file from disk as a document (see [`DiskDocument`]).
    pub fn open_file(self: &Arc<Self>, path: &str) -> Result<DiskDocument, SessionError> {
        let path = self.workspace_path(path)?;
        let bytes = std::fs::read(&path)
            .map_err(|e| SessionError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        if crate::index::walk_is_binary(&bytes) {
            return Err(SessionError::Invalid(format!(
                "{} is a binary file",
                path.display()
            )));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let uri = path_to_uri(&path);
        Ok(self.open_text(uri, text))
    }

    /// Opens `text` as the document `uri` (a file's text a client sent, or a buffer with no
    /// file) for the guard's life; the editor's buffer wins when one is open.
    pub fn open_text(self: &Arc<Self>, uri: String, text: String) -> DiskDocument {
        let path = uri_to_path(&uri).unwrap_or_default();
        let owned = {
            let mut open = self.disk_documents.lock();
            match open.get_mut(&uri) {
                Some(count) => {
                    *count += 1;
                    true
                }
                None if self.engine.is_document_open(&uri) => false,
                None => {
                    open.insert(uri.clone(), 1);
                    self.open_document(&uri, "", 0, &text);
                    true
                }
            }
        };
        DiskDocument {
            session: self.clone(),
            uri,
            path,
            text,
            owned,
        }
    }

    /// The document and range a client's reference names: a workspace file (the lines its
    /// `#L5`, `#L5:9` or `#L5-L9` fragment names, else where the quoted `text` is in it, else
    /// all of it); else — text that is not in the file (an unsaved buffer), a file outside the
    /// workspace, a buffer with no file — the quoted text on its own.
    pub fn open_reference(
        self: &Arc<Self>,
        uri: &str,
        text: Option<String>,
    ) -> Result<(DiskDocument, Range), SessionError> {
        let (bare, fragment) = match uri.split_once('#') {
            Some((bare, fragment)) => (bare, fragment_lines(fragment)),
            None => (uri, None),
        };
        let on_disk = uri_to_path(bare).and_then(|p| self.open_file(&p.to_string_lossy()).ok());
        let doc = match (on_disk, text.as_deref()) {
            (Some(doc), Some(t)) if fragment.is_none() && !doc.text.contains(t) => {
                drop(doc);
                self.open_text(bare.to_string(), t.to_string())
            }
            (Some(doc), _) => doc,
            (None, Some(t)) => self.open_text(bare.to_string(), t.to_string()),
            (None, None) => return Err(SessionError::Invalid(format!("cannot read {uri}"))),
        };
        let found = text
            .as_deref()
            .filter(|t| !t.is_empty())
            .and_then(|t| doc.text.find(t).map(|at| (at, at + t.len())));
        let range = match (fragment, found) {
            (Some((a, b)), _) => {
                let place = FilePlace {
                    line: Some(a),
                    end_line: Some(b),
                    ..FilePlace::default()
                };
                doc.place(&place)?.1.unwrap_or(doc.whole())
            }
            (None, Some((from, to))) => {
                let rope = ropey::Rope::from_str(&doc.text);
                let at = |b| byte_to_position(&rope, b, PositionEncoding::Utf8);
                Range::new(at(from), at(to))
            }
            (None, None) => doc.whole(),
        };
        Ok((doc, range))
    }

    fn release_disk_document(&self, uri: &str) {
        let mut open = self.disk_documents.lock();
        if let Some(count) = open.get_mut(uri) {
            *count -= 1;
            if *count == 0 {
                open.remove(uri);
                drop(open);
                if tokio::runtime::Handle::try_current().is_ok() {
                    self.close_document(uri);
                }
            }
        }
    }
}

/// 1-based inclusive lines of a `L5`, `L5:9`, `L5-9` or `L5-L9` fragment.
fn fragment_lines(fragment: &str) -> Option<(u32, u32)> {
    let lines = fragment.strip_prefix('L')?;
    let (a, b) = lines.split_once([':', '-']).unwrap_or((lines, lines));
    let a: u32 = a.trim().parse().ok()?;
    let b: u32 = b.trim().trim_start_matches('L').parse().ok()?;
    Some((a.max(1), b.max(a)))
}

/// A 1-based line and character column to a UTF-8 position in `text`, counting lines as the
/// document mirror does (LF, CRLF and a lone CR each end a line). A column past the end of the
/// line means its end.
pub fn position_of(text: &str, line: u32, column: u32) -> Result<Position, SessionError> {
    let rope = ropey::Rope::from_str(text);
    let line0 = line.saturating_sub(1);
    if line0 as usize >= rope.len_lines() {
        return Err(SessionError::Invalid(format!(
            "line {line} is past the end of the file ({} lines)",
            rope.len_lines()
        )));
    }
    let byte_col: usize = rope
        .line(line0 as usize)
        .chars()
        .take_while(|c| *c != '\n' && *c != '\r')
        .take(column.saturating_sub(1) as usize)
        .map(char::len_utf8)
        .sum();
    Ok(Position::new(line0, byte_col as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_name_inclusive_lines() {
        assert_eq!(fragment_lines("L5"), Some((5, 5)));
        assert_eq!(fragment_lines("L5:9"), Some((5, 9)));
        assert_eq!(fragment_lines("L5-L9"), Some((5, 9)));
        assert_eq!(fragment_lines("L9-5"), Some((9, 9)));
        assert_eq!(fragment_lines("Lx"), None);
        assert_eq!(fragment_lines("section"), None);
    }

    #[test]
    fn columns_count_characters_and_lines_past_the_end_are_refused() {
        let text = "é = 1\r\nb = 2\n";
        assert_eq!(position_of(text, 1, 3).unwrap(), Position::new(0, 3));
        assert_eq!(position_of(text, 2, 99).unwrap(), Position::new(1, 5));
        assert!(position_of(text, 9, 1).is_err());
    }
}
