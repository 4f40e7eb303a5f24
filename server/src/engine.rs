//! The engine façade: one object owning documents, the index and context capture, used by every front end.
//!
//! Its API speaks plain Rust types (`documents::Position`, `analysis::Symbol`, ...). The LSP
//! layer, the CLI and later the MCP server translate their protocols to these calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::analysis::{Language, Symbol, SymbolKind};
use crate::context::{
    self, ContextCache, ContextError, ContextRequest, ContextSnapshot, FileText, SourceProvider,
};
use crate::documents::{
    DocSnapshot, DocumentStore, EditError, PendingSnapshot, Position, PositionEncoding, Range,
    TextChange, byte_to_position,
};
use crate::index::{
    IndexConfig, IndexProgress, WorkspaceIndex, index_document_symbols, index_file_text, is_walked,
    walk_workspace,
};
// Moved to the leaf module `uri` (policy needs them without the engine); kept here for callers.
pub use crate::uri::{path_to_uri, uri_to_path};

/// A symbol of an open document in client coordinates (for textDocument/documentSymbol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentSymbolInfo {
    pub name: String,
    pub kind: SymbolKind,
    pub detail: String,
    pub range: Range,
    pub selection_range: Range,
    pub children: Vec<DocumentSymbolInfo>,
}

/// A workspace/symbol hit in client coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceSymbolInfo {
    pub name: String,
    pub kind: SymbolKind,
    pub container: Option<String>,
    pub path: PathBuf,
    pub range: Range,
}

/// Errors the engine reports to front ends (each front end words them for its protocol).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("document {0} is not open")]
    NotOpen(String),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Edit(#[from] EditError),
}

/// Closing a document at least this large hands freed memory back to the system.
const RELEASE_AFTER_CLOSE_BYTES: usize = 256 * 1024;

/// A file's text with the modification time and size it was read at.
type CachedFile = (SystemTime, u64, Arc<str>);

/// Small cache of files read from disk for definitions (keyed by path, checked by mtime and size).
#[derive(Default)]
struct FileCache {
    entries: Mutex<std::collections::HashMap<PathBuf, CachedFile>>,
}

impl FileCache {
    const MAX: usize = 64;

    fn read(&self, path: &Path) -> Option<Arc<str>> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?;
        if let Some((_, _, text)) = self
            .entries
            .lock()
            .get(path)
            .filter(|(t, len, _)| *t == mtime && *len == meta.len())
        {
            return Some(text.clone());
        }
        let bytes = std::fs::read(path).ok()?;
        if crate::index::walk_is_binary(&bytes) {
            return None;
        }
        let text: Arc<str> = Arc::from(String::from_utf8_lossy(&bytes).into_owned());
        let mut entries = self.entries.lock();
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(path.to_path_buf(), (mtime, meta.len(), text.clone()));
        Some(text)
    }
}

/// The engine. Thread-safe; share it in an `Arc`.
pub struct Engine {
    documents: DocumentStore,
    index: WorkspaceIndex,
    roots: RwLock<Vec<PathBuf>>,
    encoding: RwLock<PositionEncoding>,
    index_config: RwLock<IndexConfig>,
    files: FileCache,
    context_cache: ContextCache,
    /// False from the start of the first walk of the workspace until it has finished.
    index_complete: std::sync::atomic::AtomicBool,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        Engine {
            documents: DocumentStore::new(),
            index: WorkspaceIndex::new(),
            roots: RwLock::new(Vec::new()),
            encoding: RwLock::new(PositionEncoding::Utf16),
            index_config: RwLock::new(IndexConfig::default()),
            files: FileCache::default(),
            context_cache: ContextCache::new(),
            index_complete: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub fn set_roots(&self, roots: Vec<PathBuf>) {
        *self.roots.write() = roots;
    }

    pub fn roots(&self) -> Vec<PathBuf> {
        self.roots.read().clone()
    }

    pub fn set_encoding(&self, encoding: PositionEncoding) {
        *self.encoding.write() = encoding;
    }

    pub fn encoding(&self) -> PositionEncoding {
        *self.encoding.read()
    }

    pub fn set_index_config(&self, config: IndexConfig) {
        *self.index_config.write() = config;
    }

    /// How many documents keep their syntax tree (the most recently read ones).
    pub fn set_tree_cache_capacity(&self, capacity: usize) {
        self.documents.set_tree_cache_capacity(capacity);
    }

    /// Documents larger than this (bytes) are mirrored but never parsed.
    pub fn set_parse_limit(&self, bytes: usize) {
        self.documents.set_parse_limit(bytes);
    }

    // ---- documents -------------------------------------------------------------------

    pub fn open_document(
        &self,
        uri: &str,
        path: Option<PathBuf>,
        language_id: &str,
        version: i32,
        text: &str,
    ) {
        self.documents.open(uri, path, language_id, version, text);
    }

    pub fn change_document(
        &self,
        uri: &str,
        version: i32,
        changes: &[TextChange],
    ) -> Result<(), EngineError> {
        Ok(self
            .documents
            .change(uri, version, changes, self.encoding())?)
    }

    pub fn close_document(&self, uri: &str) {
        let bytes = self.documents.close(uri);
        // What context capture kept of its text goes too (the disk's version is read again
        // when needed).
        match uri_to_path(uri) {
            Some(path) => self.context_cache.forget(&path),
            None => self.context_cache.forget(Path::new(uri)),
        }
        // A large document's memory (its text, trees, analysis) goes back to the system now,
        // not at some later allocation.
        if bytes >= RELEASE_AFTER_CLOSE_BYTES {
            crate::process::release_memory();
        }
    }

    /// Whether a document is open at `uri` (its buffer wins over the disk).
    pub fn is_document_open(&self, uri: &str) -> bool {
        self.documents.get(uri).is_some()
    }

    /// A resolved snapshot of an open document (parses now if the tree is stale).
    pub fn snapshot(&self, uri: &str) -> Option<DocSnapshot> {
        self.documents.snapshot(uri)
    }

    /// Takes a snapshot to resolve later (cheap; call it before any `.await`).
    pub fn pending_snapshot(&self, uri: &str) -> Result<PendingSnapshot, EngineError> {
        self.documents
            .pending_snapshot(uri)
            .ok_or_else(|| EngineError::NotOpen(uri.to_string()))
    }

    /// Re-indexes an open document from its current text (after a parse).
    pub fn reindex_open_document(&self, snap: &DocSnapshot) {
        // Open documents are indexed from their tree-sitter symbols (already extracted at
        // this version), not by the lexical scanner used for files on disk.
        if let Some(path) = &snap.path {
            let symbols =
                index_document_symbols(snap.language, &snap.analysis.text, &snap.analysis.symbols);
            self.index.update_file(path, symbols);
        }
    }

    // ---- analysis --------------------------------------------------------------------

    /// Hierarchical symbols of a snapshot, in client coordinates.
    pub fn document_symbols(&self, snap: &DocSnapshot) -> Vec<DocumentSymbolInfo> {
        let enc = self.encoding();
        fn convert(s: &Symbol, snap: &DocSnapshot, enc: PositionEncoding) -> DocumentSymbolInfo {
            // From byte offsets, not tree-sitter's points: those count only `\n` as a line
            // break, the client also counts a lone `\r`.
            let range = Range {
                start: byte_to_position(&snap.rope, s.range.start_byte, enc),
                end: byte_to_position(&snap.rope, s.range.end_byte, enc),
            };
            let sel = Range {
                start: byte_to_position(&snap.rope, s.selection_range.start_byte, enc),
                end: byte_to_position(&snap.rope, s.selection_range.end_byte, enc),
            };
            DocumentSymbolInfo {
                name: s.name.clone(),
                kind: s.kind,
                detail: s.signature.clone(),
                range,
                selection_range: sel,
                children: s.children.iter().map(|c| convert(c, snap, enc)).collect(),
            }
        }
        snap.analysis
            .symbols
            .iter()
            .map(|s| convert(s, snap, enc))
            .collect()
    }

    /// Fuzzy workspace symbol search, best first.
    pub fn workspace_symbols(&self, query: &str, limit: usize) -> Vec<WorkspaceSymbolInfo> {
        let enc = self.encoding();
        self.index
            .search(query, limit)
            .into_iter()
            .map(|hit| {
                let s = &hit.symbol;
                let (start, end) = match enc {
                    PositionEncoding::Utf16 => s.selection_utf16,
                    PositionEncoding::Utf8 => {
                        (s.selection_range.start.col, s.selection_range.end.col)
                    }
                };
                WorkspaceSymbolInfo {
                    name: s.name.to_string(),
                    kind: s.kind,
                    container: s.container.as_deref().map(str::to_string),
                    path: hit.path.to_path_buf(),
                    range: Range {
                        start: Position::new(s.selection_range.start.line, start),
                        end: Position::new(s.selection_range.end.line, end),
                    },
                }
            })
            .collect()
    }

    /// The indexed definitions named exactly `name`: file, kind, and first and last line
    /// (0-based) of the whole definition, ordered by file and line.
    pub fn definitions_named(&self, name: &str) -> Vec<(PathBuf, SymbolKind, u32, u32)> {
        let mut out: Vec<_> = self
            .index
            .definitions(name)
            .into_iter()
            .map(|(path, s)| {
                (
                    path.to_path_buf(),
                    s.kind,
                    s.range.start.line,
                    s.range.end.line,
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
        out
    }

    // ---- index -----------------------------------------------------------------------

    /// Marks the index as being built (context results say so until the walk ends).
    pub fn begin_indexing(&self) {
        self.index_complete
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// How many files and symbols the workspace index holds.
    pub fn index_counts(&self) -> (usize, usize) {
        (self.index.file_count(), self.index.symbol_count())
    }

    /// Whether the first walk of the workspace has finished.
    pub fn is_index_complete(&self) -> bool {
        self.index_complete
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Walks the workspace roots and fills the index (blocking; run it off the request path).
    pub fn index_workspace(&self, progress: &(dyn Fn(IndexProgress) + Sync)) -> IndexProgress {
        let config = self.index_config.read().clone();
        let n = self.index_walk(&self.roots(), &config, progress);
        self.context_cache.invalidate();
        self.index_complete
            .store(true, std::sync::atomic::Ordering::Release);
        IndexProgress {
            files_indexed: n,
            files_skipped: 0,
            done: true,
        }
    }

    /// Walks `roots` into the index; returns how many files the walk indexed. A document
    /// open meanwhile keeps the entry from its buffer, which wins over the disk.
    fn index_walk(
        &self,
        roots: &[PathBuf],
        config: &IndexConfig,
        progress: &(dyn Fn(IndexProgress) + Sync),
    ) -> usize {
        let mut files = walk_workspace(roots, config, progress);
        let n = files.len();
        files.retain(|(path, _)| !self.is_open(path));
        self.index.extend(files);
        n
    }

    /// Whether a document is open for `path`.
    fn is_open(&self, path: &Path) -> bool {
        self.is_document_open(&self.uri_of(path))
    }

    /// A file or folder changed on disk (save, close, watcher): re-read and re-index what the
    /// workspace walk would index there (the same roots, ignore files, skipped folders, size
    /// limit); anything else at that path leaves the index. Open documents are left alone.
    pub fn file_changed_on_disk(&self, path: &Path) {
        self.context_cache.invalidate();
        let config = self.index_config.read().clone();
        let roots = self.roots();
        let meta = std::fs::metadata(path);
        if meta.as_ref().is_ok_and(|m| m.is_dir()) {
            if is_walked(&roots, &config, path, true) {
                self.index_walk(&[path.to_path_buf()], &config, &|_| {});
            }
            return;
        }
        match meta {
            Ok(meta)
                if meta.is_file()
                    && meta.len() <= config.max_file_size
                    && is_walked(&roots, &config, path, false) =>
            {
                if Language::from_path(path) == Language::PlainText {
                    return;
                }
                match std::fs::read(path)
                    .ok()
                    .and_then(|b| index_file_text(path, &b))
                {
                    Some(symbols) => self.index.update_file(path, symbols),
                    None => self.index.remove_file(path),
                }
            }
            _ => self.index.remove_file(path),
        }
    }

    /// Whether a document is a file of the workspace as the walk sees it: inside a root, not
    /// ignored, hidden or vendored, within the size limit. Background agents (triggers) run
    /// only on those; never on the editor's own settings or on a file outside the roots.
    pub fn is_workspace_file(&self, uri: &str) -> bool {
        let Some(path) = uri_to_path(uri) else {
            return false;
        };
        let config = self.index_config.read().clone();
        std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= config.max_file_size)
            && is_walked(&self.roots(), &config, &path, false)
    }

    /// Whether the workspace walk would index a file at `path` (ignore rules and skipped
    /// folders; the file need not exist).
    pub fn would_index(&self, path: &Path) -> bool {
        let config = self.index_config.read().clone();
        is_walked(&self.roots(), &config, path, false)
    }

    /// A file or folder was deleted: everything indexed under it goes.
    pub fn file_deleted(&self, path: &Path) {
        self.context_cache.invalidate();
        self.index.remove_under(path);
    }

    // ---- context ---------------------------------------------------------------------

    /// Target code cut to a share of the budget (see [`context::cap_target`]).
    pub fn cap_target(
        &self,
        snap: &DocSnapshot,
        lines: (u32, u32),
        header_end: u32,
        focus: (u32, u32),
        share: usize,
        contiguous: bool,
    ) -> Option<context::CappedTarget> {
        context::cap_target(
            snap,
            &self.context_cache,
            lines,
            header_end,
            focus,
            share,
            contiguous,
        )
    }

    /// The context snapshot at a position (and optional selection) of an open document.
    pub fn context(
        &self,
        snap: &DocSnapshot,
        req: &ContextRequest,
    ) -> Result<ContextSnapshot, EngineError> {
        let recent = self.documents.recent_edits();
        Ok(context::build(
            snap,
            req,
            &self.index,
            &recent,
            self,
            &self.context_cache,
        )?)
    }
}

impl SourceProvider for Engine {
    fn text_of(&self, path: &Path) -> Option<Arc<str>> {
        let uri = self.uri_of(path);
        if let Some(snap) = self.documents.snapshot(&uri) {
            return Some(snap.analysis.text.clone());
        }
        self.files.read(path)
    }

    fn file_text(&self, path: &Path) -> Option<FileText> {
        let uri = self.uri_of(path);
        if let Some(doc) = self.documents.get(&uri) {
            let (version, text) = doc.lock().current_text();
            return Some(FileText {
                text,
                version: Some(version),
            });
        }
        self.files.read(path).map(|text| FileText {
            text,
            version: None,
        })
    }

    fn uri_of(&self, path: &Path) -> String {
        path_to_uri(path)
    }

    fn roots(&self) -> Vec<PathBuf> {
        self.roots()
    }

    fn index_complete(&self) -> bool {
        self.is_index_complete()
    }

    fn display_path(&self, path: &Path) -> String {
        context::relative_display(path, &self.roots.read())
    }

    fn open_document(&self, uri: &str) -> Option<DocSnapshot> {
        self.documents.snapshot(uri)
    }
}
