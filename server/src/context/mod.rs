//! Context capture: the ranked, token-budgeted, provenance-tagged snapshot of what a model
//! needs to know about a cursor or selection, and its deterministic rendering as prompt text.
//!
//! Every line of code in a snapshot is a verbatim line of its file: an item's `text` is the
//! file's lines from `range.start.line` on, except that each run of lines left out (in
//! `elided`) is replaced by one marker line naming those lines.

mod definitions;
mod excerpt;
mod items;
pub(crate) mod lang;
mod outline;
mod render;
mod resolve;
mod skeleton;
#[cfg(test)]
mod tests;
mod tokens;

pub use outline::ContextCache;
pub use render::render;
pub use tokens::estimate_tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::SymbolKind;
use crate::documents::{DocSnapshot, Position, PositionEncoding, Range, RecentEdit};
use crate::index::WorkspaceIndex;

/// Default budget when the caller gives none.
pub const DEFAULT_BUDGET_TOKENS: usize = 4096;
/// Default share of the budget the enclosing symbol (and the target code) may take.
pub const DEFAULT_ENCLOSING_PERCENT: u8 = 40;

/// A diagnostic the client passes in (e.g. the editor's errors for the range).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticInput {
    pub range: Range,
    pub message: String,
    #[serde(default)]
    pub severity: Option<u8>,
    #[serde(default)]
    pub source: Option<String>,
}

/// What a context item is. Front ends name the kinds on their wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ContextItemKind {
    Selection,
    EnclosingSymbol,
    Imports,
    Definition,
    Diagnostics,
    Outline,
    RecentEdit,
}

impl ContextItemKind {
    /// The kind's name in rendered context ("Enclosing symbol").
    pub fn title(self) -> &'static str {
        match self {
            ContextItemKind::Selection => "Selection",
            ContextItemKind::EnclosingSymbol => "Enclosing symbol",
            ContextItemKind::Imports => "Imports",
            ContextItemKind::Definition => "Definition",
            ContextItemKind::Diagnostics => "Diagnostics",
            ContextItemKind::Outline => "File outline",
            ContextItemKind::RecentEdit => "Recent edit",
        }
    }

    /// Whether the item's text is lines of its file (as opposed to a summary).
    pub fn is_source(self) -> bool {
        !matches!(
            self,
            ContextItemKind::Diagnostics | ContextItemKind::Outline
        )
    }
}

/// One piece of context with where it came from and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextItem {
    pub kind: ContextItemKind,
    pub uri: String,
    pub range: Range,
    pub text: String,
    pub tokens: usize,
    pub reason: String,
    /// Runs of lines (0-based, inclusive) of `range` left out of `text`, each replaced there
    /// by one marker line, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elided: Vec<(u32, u32)>,
    /// Language name for rendering fences (not part of the wire format).
    #[serde(skip)]
    pub language: &'static str,
    /// Path relative to the workspace root, for rendering.
    #[serde(skip)]
    pub display_path: String,
}

impl ContextItem {
    /// The item's first and last line, 1-based (a range ending at a line's column 0 does not
    /// include that line).
    pub fn lines(&self) -> (u32, u32) {
        let (start, end) = (self.range.start.line, self.range.end.line);
        let last = if self.range.end.character == 0 && end > start {
            end - 1
        } else {
            end
        };
        (start + 1, last + 1)
    }
}

/// A context snapshot: items in priority order, cut to the budget, and the rendered text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextSnapshot {
    pub items: Vec<ContextItem>,
    pub total_tokens: usize,
    pub budget_tokens: usize,
    pub rendered: String,
    /// False while the workspace's first index is still being built: definitions were
    /// resolved on demand, and bare-name guesses may be missing.
    pub index_complete: bool,
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct ContextRequest {
    pub position: Position,
    pub range: Option<Range>,
    pub budget_tokens: usize,
    pub diagnostics: Vec<DiagnosticInput>,
    pub encoding: PositionEncoding,
    /// Lines the prompt already shows (the target code in the template): no item repeats them.
    pub exclude: Option<Range>,
    /// The share of the budget (percent) the enclosing symbol may take.
    pub enclosing_percent: u8,
}

impl ContextRequest {
    /// A request at a position with the default budget and shares.
    pub fn at(position: Position, encoding: PositionEncoding) -> ContextRequest {
        ContextRequest {
            position,
            range: None,
            budget_tokens: DEFAULT_BUDGET_TOKENS,
            diagnostics: Vec::new(),
            encoding,
            exclude: None,
            enclosing_percent: DEFAULT_ENCLOSING_PERCENT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error(
        "line {line} (character {character}) is past the end of the document ({line_count} lines)"
    )]
    OutOfRange {
        line: u32,
        character: u32,
        line_count: usize,
    },
}

/// A file's current text: the open buffer's (with its version), else the disk's.
#[derive(Debug, Clone)]
pub struct FileText {
    pub text: Arc<str>,
    /// The open document's version; `None` for text read from disk.
    pub version: Option<i32>,
}

/// Where the builder gets text of other files and facts about the workspace.
pub trait SourceProvider {
    /// The text of `path`, if it can be read.
    fn text_of(&self, path: &Path) -> Option<Arc<str>>;
    /// The text of `path` with its version (cheap for open documents: no parse).
    fn file_text(&self, path: &Path) -> Option<FileText> {
        self.text_of(path).map(|text| FileText {
            text,
            version: None,
        })
    }
    /// The URI of `path` as the client knows it.
    fn uri_of(&self, path: &Path) -> String;
    /// Path relative to the workspace for display.
    fn display_path(&self, path: &Path) -> String;
    /// A snapshot of an open document (for recent edits in other files).
    fn open_document(&self, uri: &str) -> Option<DocSnapshot>;
    /// The workspace roots.
    fn roots(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    /// Whether the first index of the workspace is complete.
    fn index_complete(&self) -> bool {
        true
    }
}

/// Builds the snapshot. Deterministic: the same inputs give the same items, cut and rendering.
pub fn build(
    doc: &DocSnapshot,
    req: &ContextRequest,
    index: &WorkspaceIndex,
    recent: &[RecentEdit],
    sources: &dyn SourceProvider,
    cache: &ContextCache,
) -> Result<ContextSnapshot, ContextError> {
    let mut b = items::Builder::new(doc, req, index, sources, cache)?;
    b.selection();
    b.enclosing_symbol();
    b.imports();
    definitions::add(&mut b);
    b.diagnostics();
    b.outline();
    b.recent_edits(recent);
    let (items, total) = b.finish();
    let rendered = render(&items);
    Ok(ContextSnapshot {
        items,
        total_tokens: total,
        budget_tokens: req.budget_tokens,
        rendered,
        index_complete: sources.index_complete(),
    })
}

/// The target code an agent's template shows, cut to a share of the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CappedTarget {
    /// The lines shown (0-based, inclusive).
    pub first: u32,
    pub last: u32,
    /// Verbatim lines; with `contiguous` false, marker lines stand for elided runs.
    pub text: String,
}

/// Cuts target code (`lines` of the document, its header ending on `header_end`) to `share`
/// tokens around `focus`: as its header plus a window with marker lines, or, with
/// `contiguous` (a target an edit replaces), as the widest run of whole lines around the
/// focus. `None` when it fits whole.
pub fn cap_target(
    doc: &DocSnapshot,
    cache: &ContextCache,
    lines: (u32, u32),
    header_end: u32,
    focus: (u32, u32),
    share: usize,
    contiguous: bool,
) -> Option<CappedTarget> {
    let path: Arc<Path> = match &doc.path {
        Some(p) => Arc::from(p.as_path()),
        None => Arc::from(Path::new(&doc.uri)),
    };
    let text = &doc.analysis.text;
    let file = cache.outline(&path, doc.language, text, Some(doc.version), || {
        outline::FileOutline::from_symbols(
            path.clone(),
            doc.language,
            text.clone(),
            &doc.analysis.symbols,
        )
    });
    let whole = excerpt::Excerpt::whole(lines.0, lines.1);
    if estimate_tokens(&whole.render(&file)) <= share {
        return None;
    }
    if contiguous {
        let (first, last) = skeleton::span_around(&file, lines.0, lines.1, focus, share);
        let text = excerpt::Excerpt::whole(first, last).render(&file);
        return Some(CappedTarget { first, last, text });
    }
    let e = skeleton::window(&file, lines.0, lines.1, header_end, focus, share);
    Some(CappedTarget {
        first: lines.0,
        last: lines.1,
        text: e.render(&file),
    })
}

/// Language-neutral helper for callers that hold a path and need a display string.
pub fn relative_display(path: &Path, roots: &[PathBuf]) -> String {
    for root in roots {
        if let Ok(rel) = path.strip_prefix(root) {
            return rel.display().to_string();
        }
    }
    path.display().to_string()
}

/// Kind names that count as "definitions" worth resolving (types and callables).
pub fn is_definition_kind(kind: SymbolKind) -> bool {
    !matches!(kind, SymbolKind::Field | SymbolKind::EnumMember)
}
