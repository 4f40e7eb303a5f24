//! Open documents: the exact mirror of the client's buffers (rope, version, language, syntax tree).
//!
//! Edits are applied synchronously, in the order they arrive, and each keeps the syntax trees
//! in step ([`Syntax::edit`]) so the next parse is incremental. Parsing itself is lazy: it runs
//! when a reader needs the tree (`DocumentStore::snapshot`), never per keystroke. Only the
//! most recently used documents keep their tree and analysis ([`TreeCache`]); the others keep
//! just their text and parse again when a reader needs them.

mod position;

pub use position::{
    Position, PositionEncoding, PositionError, Range, byte_to_point, byte_to_position,
    char_to_position, column_in_line, line_count, position_to_char,
};

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use dashmap::DashMap;
use parking_lot::Mutex;
use ropey::Rope;
use tree_sitter::InputEdit;

use crate::analysis::{Language, Source, Syntax};

/// One content change as the client sends it: a range replacement, or the whole text.
#[derive(Debug, Clone)]
pub struct TextChange {
    pub range: Option<Range>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("document {0} is not open")]
    NotOpen(String),
    #[error("stale version {got} for {uri}: already at version {current}; change ignored")]
    StaleVersion { uri: String, got: i32, current: i32 },
    #[error(
        "invalid range in change {index} for {uri}: {source}; the rest of the batch was skipped"
    )]
    BadRange {
        uri: String,
        index: usize,
        source: PositionError,
    },
}

/// A place the user edited recently (for context: "what was I just doing").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEdit {
    pub uri: String,
    pub line: u32,
}

const RECENT_EDITS: usize = 16;

/// An open document.
pub struct Document {
    pub uri: String,
    pub path: Option<PathBuf>,
    pub language: Language,
    pub version: i32,
    rope: Rope,
    /// The last syntax, kept in step with every edit (so possibly stale).
    tree: Option<Syntax>,
    /// The version `tree` was parsed at; `None` when edits happened since.
    tree_version: Option<i32>,
    /// Text, tree and symbols computed at one version (reused until the next edit).
    analysis: Option<Arc<Analysis>>,
    /// Larger texts are mirrored exactly but never parsed (plain text: no tree, no symbols).
    parse_limit: usize,
}

/// Documents larger than this are not parsed by default (a 2 MiB file is 50,000 lines of
/// code; trees cost ~30× their text).
pub const DEFAULT_PARSE_LIMIT: usize = 2 * 1024 * 1024;

/// A document's analysis at one version: what every reader needs, computed once per version.
#[derive(Debug)]
pub struct Analysis {
    pub version: i32,
    pub text: Arc<str>,
    pub tree: Option<Syntax>,
    pub symbols: Vec<crate::analysis::Symbol>,
    /// The imports, computed on first use at this version.
    pub imports: std::sync::OnceLock<Vec<crate::analysis::Import>>,
    /// One prompt line per symbol (`(symbol range, "12: fn f() {", tokens)`), on first use at
    /// this version.
    /// With each line's token estimate.
    pub outline_lines: std::sync::OnceLock<Vec<(crate::analysis::Span, String, u32)>>,
}

impl Analysis {
    pub fn new(
        version: i32,
        text: Arc<str>,
        tree: Option<Syntax>,
        symbols: Vec<crate::analysis::Symbol>,
    ) -> Analysis {
        Analysis {
            version,
            text,
            tree,
            symbols,
            imports: std::sync::OnceLock::new(),
            outline_lines: std::sync::OnceLock::new(),
        }
    }
}

/// A consistent view of a document at one version, cheap to clone and to send to another thread.
#[derive(Clone)]
pub struct DocSnapshot {
    pub uri: String,
    pub path: Option<PathBuf>,
    pub language: Language,
    pub version: i32,
    pub rope: Rope,
    pub analysis: Arc<Analysis>,
}

/// How many documents keep their syntax tree and analysis by default. A tree costs about 30
/// times its text (~300 KB for a 10 KB file); the documents being worked on are few.
pub const DEFAULT_TREE_CACHE: usize = 4;

/// The documents that keep their tree and analysis, most recently used first. Touching one
/// may evict the least recently used, which drops its tree (the next reader parses it again).
pub struct TreeCache {
    capacity: AtomicUsize,
    recent: Mutex<VecDeque<(String, Weak<Mutex<Document>>)>>,
}

impl Default for TreeCache {
    fn default() -> TreeCache {
        TreeCache {
            capacity: AtomicUsize::new(DEFAULT_TREE_CACHE),
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl TreeCache {
    /// Marks `uri` as just used. Must be called without holding any document's lock.
    fn touch(&self, uri: &str, doc: &Arc<Mutex<Document>>) {
        let evicted: Vec<Weak<Mutex<Document>>> = {
            let mut recent = self.recent.lock();
            if recent.front().is_some_and(|(u, _)| u == uri) {
                return;
            }
            recent.retain(|(u, _)| u != uri);
            recent.push_front((uri.to_string(), Arc::downgrade(doc)));
            let capacity = self.capacity.load(Ordering::Relaxed).max(1);
            if recent.len() > capacity {
                recent.drain(capacity..).map(|(_, d)| d).collect()
            } else {
                Vec::new()
            }
        };
        for doc in evicted {
            if let Some(doc) = doc.upgrade() {
                doc.lock().drop_tree();
            }
        }
    }

    fn forget(&self, uri: &str) {
        self.recent.lock().retain(|(u, _)| u != uri);
    }

    /// The URIs holding a tree, most recently used first.
    pub fn uris(&self) -> Vec<String> {
        self.recent.lock().iter().map(|(u, _)| u.clone()).collect()
    }
}

/// A snapshot whose analysis may still need a parse; taken under the lock, resolved outside it.
pub struct PendingSnapshot {
    doc: Arc<Mutex<Document>>,
    cache: Arc<TreeCache>,
    uri: String,
    path: Option<PathBuf>,
    job: ParseJob,
    ready: Option<Arc<Analysis>>,
}

impl PendingSnapshot {
    /// True when no parse is needed (resolving is then O(1)).
    pub fn is_ready(&self) -> bool {
        self.ready.is_some()
    }

    pub fn version(&self) -> i32 {
        self.job.version
    }

    /// Parses (incrementally) if needed and returns the snapshot; stores the result in the
    /// document when it is still at the same version.
    pub fn resolve(self) -> DocSnapshot {
        let analysis = match self.ready {
            Some(a) => a,
            None => {
                let tree = self.job.run();
                let text: Arc<str> = Arc::from(self.job.rope.to_string());
                let symbols = match &tree {
                    Some(t) => crate::analysis::symbols(self.job.language, t, &text),
                    None => Vec::new(),
                };
                let analysis = Arc::new(Analysis::new(self.job.version, text, tree, symbols));
                let mut doc = self.doc.lock();
                if doc.version == analysis.version {
                    if let Some(t) = &analysis.tree {
                        doc.tree = Some(t.clone());
                        doc.tree_version = Some(analysis.version);
                    }
                    doc.analysis = Some(analysis.clone());
                }
                analysis
            }
        };
        self.cache.touch(&self.uri, &self.doc);
        DocSnapshot {
            uri: self.uri,
            path: self.path,
            language: self.job.language,
            version: self.job.version,
            rope: self.job.rope,
            analysis,
        }
    }
}

impl Document {
    pub fn new(
        uri: String,
        path: Option<PathBuf>,
        language: Language,
        version: i32,
        text: &str,
    ) -> Document {
        Document {
            uri,
            path,
            language,
            version,
            rope: Rope::from_str(text),
            tree: None,
            tree_version: None,
            analysis: None,
            parse_limit: DEFAULT_PARSE_LIMIT,
        }
    }

    /// Whether the document is too large to parse (then it is plain text to every reader).
    pub fn over_parse_limit(&self) -> bool {
        self.rope.len_bytes() > self.parse_limit
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// The version and text (the analysis's text when it is current, else a copy of the
    /// rope: no parse).
    pub fn current_text(&self) -> (i32, Arc<str>) {
        match &self.analysis {
            Some(a) if a.version == self.version => (self.version, a.text.clone()),
            _ => (self.version, Arc::from(self.rope.to_string())),
        }
    }

    /// Takes what a reader needs at the current version; cheap (O(1) clones), so it runs
    /// under the lock in the request's synchronous prefix, before any `.await`.
    pub fn pending_snapshot(
        &self,
        doc: Arc<Mutex<Document>>,
        cache: Arc<TreeCache>,
    ) -> PendingSnapshot {
        let ready = self
            .analysis
            .as_ref()
            .filter(|a| a.version == self.version)
            .cloned();
        PendingSnapshot {
            doc,
            cache,
            uri: self.uri.clone(),
            path: self.path.clone(),
            job: self.parse_job(),
            ready,
        }
    }

    /// Applies a batch of changes for `version`. Changes are applied in order; positions of
    /// each change refer to the text after the previous one (LSP semantics).
    pub fn apply_changes(
        &mut self,
        version: i32,
        changes: &[TextChange],
        encoding: PositionEncoding,
    ) -> Result<Vec<u32>, EditError> {
        if version <= self.version {
            return Err(EditError::StaleVersion {
                uri: self.uri.clone(),
                got: version,
                current: self.version,
            });
        }
        let mut touched_lines = Vec::with_capacity(changes.len());
        if !changes.is_empty() {
            self.tree_version = None;
        }
        for (index, change) in changes.iter().enumerate() {
            match change.range {
                None => {
                    self.rope = Rope::from_str(&change.text);
                    self.tree = None;
                    touched_lines.push(0);
                }
                Some(range) => {
                    if self.over_parse_limit() {
                        // Not parsed: no tree to keep in step.
                        self.tree = None;
                    }
                    let map = |source| EditError::BadRange {
                        uri: self.uri.clone(),
                        index,
                        source,
                    };
                    let a = position_to_char(&self.rope, range.start, encoding).map_err(map)?;
                    let b = position_to_char(&self.rope, range.end, encoding).map_err(map)?;
                    let (start, end) = if a <= b { (a, b) } else { (b, a) };
                    self.replace_chars(start, end, &change.text);
                    touched_lines.push(range.start.line.min(range.end.line));
                }
            }
            // The version advances even if a later change in the batch is bad, because the
            // earlier ones were applied: the mirror must say what it holds.
            self.version = version;
        }
        self.version = version;
        Ok(touched_lines)
    }

    /// Replaces chars `start..end` with `text`, and tells the tree about it.
    fn replace_chars(&mut self, start: usize, end: usize, text: &str) {
        let start_byte = self.rope.char_to_byte(start);
        let old_end_byte = self.rope.char_to_byte(end);
        let start_position = byte_to_point(&self.rope, start_byte);
        let old_end_position = byte_to_point(&self.rope, old_end_byte);
        if end > start {
            self.rope.remove(start..end);
        }
        if !text.is_empty() {
            self.rope.insert(start, text);
        }
        let new_end_byte = start_byte + text.len();
        if let Some(tree) = self.tree.as_mut() {
            let new_end_position = byte_to_point(&self.rope, new_end_byte);
            tree.edit(&InputEdit {
                start_byte,
                old_end_byte,
                new_end_byte,
                start_position,
                old_end_position,
                new_end_position,
            });
        }
    }

    /// Forgets the tree and the analysis (the text stays); the next reader parses from scratch.
    fn drop_tree(&mut self) {
        self.tree = None;
        self.tree_version = None;
        self.analysis = None;
    }

    /// Whether the document holds a tree (fresh or kept in step with edits).
    pub fn has_tree(&self) -> bool {
        self.tree.is_some()
    }

    /// The tree, if it was parsed at the current version.
    pub fn fresh_tree(&self) -> Option<&Syntax> {
        if self.tree_version == Some(self.version) {
            self.tree.as_ref()
        } else {
            None
        }
    }

    /// Parses (incrementally when an old tree exists) and stores the tree. Returns the tree.
    pub fn reparse(&mut self) -> Option<Syntax> {
        if let Some(tree) = self.fresh_tree() {
            return Some(tree.clone());
        }
        if self.over_parse_limit() {
            self.tree = None;
            return None;
        }
        let tree = parse_rope(self.language, &self.rope, self.tree.as_ref())?;
        self.tree = Some(tree.clone());
        self.tree_version = Some(self.version);
        Some(tree)
    }

    /// What a background parse needs: the text at this version and the edited old tree.
    pub fn parse_job(&self) -> ParseJob {
        let too_large = self.over_parse_limit();
        ParseJob {
            version: self.version,
            // Too large: read as plain text (no tree, no symbols, no analysis built).
            language: if too_large {
                Language::PlainText
            } else {
                self.language
            },
            rope: self.rope.clone(),
            old_tree: if too_large { None } else { self.tree.clone() },
        }
    }

    /// Installs the result of a background parse if nothing changed meanwhile.
    pub fn install_tree(&mut self, version: i32, tree: Syntax) -> bool {
        if version == self.version && self.tree_version != Some(version) {
            self.tree = Some(tree);
            self.tree_version = Some(version);
            true
        } else {
            false
        }
    }
}

/// A parse to run off the request path (rope clones are O(1)).
pub struct ParseJob {
    pub version: i32,
    pub language: Language,
    pub rope: Rope,
    pub old_tree: Option<Syntax>,
}

impl ParseJob {
    pub fn run(&self) -> Option<Syntax> {
        parse_rope(self.language, &self.rope, self.old_tree.as_ref())
    }
}

/// Idle parsers, shared by the threads that parse. A parser keeps the stacks it grew for the
/// largest file it parsed, so at most [`IDLE_PARSERS`] per language are kept (one per thread
/// and language kept ~6 MiB on a pool of parse threads).
static PARSERS: parking_lot::Mutex<Vec<(Language, tree_sitter::Parser)>> =
    parking_lot::Mutex::new(Vec::new());

/// Idle parsers kept per language: a keystroke's parse and a background one at once.
const IDLE_PARSERS: usize = 2;

/// Runs `f` with a parser for `language` (taken from the shared pool, or new, and given back).
pub fn with_parser<R>(
    language: Language,
    f: impl FnOnce(&mut tree_sitter::Parser) -> R,
) -> Option<R> {
    let taken = {
        let mut pool = PARSERS.lock();
        pool.iter()
            .position(|(l, _)| *l == language)
            .map(|i| pool.swap_remove(i).1)
    };
    let mut parser = match taken {
        Some(p) => p,
        None => language.new_parser()?,
    };
    let out = f(&mut parser);
    let mut pool = PARSERS.lock();
    if pool.iter().filter(|(l, _)| *l == language).count() < IDLE_PARSERS {
        pool.push((language, parser));
    }
    Some(out)
}

/// Parses a rope chunk by chunk (no copy of the text), reusing `old_tree` when given.
pub fn parse_rope(language: Language, rope: &Rope, old_tree: Option<&Syntax>) -> Option<Syntax> {
    with_parser(language, |parser| {
        let len = rope.len_bytes();
        let mut read = |byte: usize, _: tree_sitter::Point| -> &[u8] {
            if byte >= len {
                return &[];
            }
            let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
            chunk
                .as_bytes()
                .get(byte - chunk_start..)
                .unwrap_or_default()
        };
        let point_at = |byte: usize| byte_to_point(rope, byte.min(len));
        let mut src = Source {
            parser,
            read: &mut read,
            point_at: &point_at,
            len,
        };
        match old_tree {
            Some(old) => old.reparse(&mut src),
            None => Syntax::parse(&mut src),
        }
    })
    .flatten()
}

/// Parses a string once, as one tree (a parse that is read and dropped; see
/// [`Syntax::parse_whole_str`]).
pub fn parse_str(language: Language, text: &str) -> Option<Syntax> {
    with_parser(language, |parser| Syntax::parse_whole_str(parser, text)).flatten()
}

/// All open documents, keyed by URI. Each document has its own lock; none is held across `.await`.
pub struct DocumentStore {
    docs: DashMap<String, Arc<Mutex<Document>>>,
    recent: Mutex<VecDeque<RecentEdit>>,
    trees: Arc<TreeCache>,
    parse_limit: AtomicUsize,
}

impl Default for DocumentStore {
    fn default() -> DocumentStore {
        DocumentStore {
            // A fixed shard count: the default asks the OS for the core count (reading cgroup
            // files) on the way to the first response.
            docs: DashMap::with_shard_amount(DOCUMENT_SHARDS),
            recent: Mutex::default(),
            trees: Arc::default(),
            parse_limit: AtomicUsize::new(DEFAULT_PARSE_LIMIT),
        }
    }
}

/// Shards of the document map (a power of two); contention is per document anyway.
const DOCUMENT_SHARDS: usize = 16;

impl DocumentStore {
    pub fn new() -> DocumentStore {
        DocumentStore::default()
    }

    pub fn open(
        &self,
        uri: &str,
        path: Option<PathBuf>,
        language_id: &str,
        version: i32,
        text: &str,
    ) -> Arc<Mutex<Document>> {
        let language = Language::detect(language_id, path.as_deref().unwrap_or(Path::new(uri)));
        let mut document = Document::new(uri.to_string(), path, language, version, text);
        document.parse_limit = self.parse_limit.load(Ordering::Relaxed);
        let doc = Arc::new(Mutex::new(document));
        self.docs.insert(uri.to_string(), doc.clone());
        doc
    }

    /// Closes a document; returns how many bytes of text it held (0 when it was not open).
    pub fn close(&self, uri: &str) -> usize {
        self.trees.forget(uri);
        self.docs
            .remove(uri)
            .map_or(0, |(_, doc)| doc.lock().rope.len_bytes())
    }

    /// Documents larger than this many bytes are mirrored but not parsed (at least 1 KiB).
    pub fn set_parse_limit(&self, bytes: usize) {
        let bytes = bytes.max(1024);
        self.parse_limit.store(bytes, Ordering::Relaxed);
        for doc in self.docs.iter() {
            doc.value().lock().parse_limit = bytes;
        }
    }

    /// How many documents keep their tree between requests (at least 1).
    pub fn set_tree_cache_capacity(&self, capacity: usize) {
        self.trees
            .capacity
            .store(capacity.max(1), Ordering::Relaxed);
    }

    /// The documents that hold a tree now, most recently used first.
    pub fn tree_cache(&self) -> &TreeCache {
        &self.trees
    }

    pub fn get(&self, uri: &str) -> Option<Arc<Mutex<Document>>> {
        self.docs.get(uri).map(|d| d.value().clone())
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn uris(&self) -> Vec<String> {
        self.docs.iter().map(|e| e.key().clone()).collect()
    }

    /// Applies changes to an open document and records the edit location.
    pub fn change(
        &self,
        uri: &str,
        version: i32,
        changes: &[TextChange],
        encoding: PositionEncoding,
    ) -> Result<(), EditError> {
        let doc = self
            .get(uri)
            .ok_or_else(|| EditError::NotOpen(uri.to_string()))?;
        let result = doc.lock().apply_changes(version, changes, encoding);
        let lines = result?;
        if let Some(&line) = lines.last() {
            let mut recent = self.recent.lock();
            recent.retain(|e| !(e.uri == uri && e.line.abs_diff(line) <= 3));
            recent.push_front(RecentEdit {
                uri: uri.to_string(),
                line,
            });
            recent.truncate(RECENT_EDITS);
        }
        Ok(())
    }

    /// Most recent edit locations, newest first.
    pub fn recent_edits(&self) -> Vec<RecentEdit> {
        self.recent.lock().iter().cloned().collect()
    }
}

impl DocumentStore {
    /// See [`Document::pending_snapshot`].
    pub fn pending_snapshot(&self, uri: &str) -> Option<PendingSnapshot> {
        let doc = self.get(uri)?;
        let guard = doc.lock();
        Some(guard.pending_snapshot(doc.clone(), self.trees.clone()))
    }

    /// A resolved snapshot (parses on this thread if needed).
    pub fn snapshot(&self, uri: &str) -> Option<DocSnapshot> {
        self.pending_snapshot(uri).map(PendingSnapshot::resolve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_rust(store: &DocumentStore, i: usize) -> String {
        let uri = format!("file:///t/f{i}.rs");
        store.open(&uri, None, "rust", 1, &format!("fn f{i}() {{}}\n"));
        uri
    }

    fn holds_tree(store: &DocumentStore, uri: &str) -> bool {
        store.get(uri).is_some_and(|d| d.lock().has_tree())
    }

    #[test]
    fn only_the_most_recently_used_documents_keep_their_tree() {
        let store = DocumentStore::new();
        store.set_tree_cache_capacity(3);
        let uris: Vec<String> = (0..5).map(|i| open_rust(&store, i)).collect();
        for uri in &uris {
            assert!(
                store
                    .snapshot(uri)
                    .is_some_and(|s| s.analysis.tree.is_some())
            );
        }
        let kept: Vec<bool> = uris.iter().map(|u| holds_tree(&store, u)).collect();
        assert_eq!(kept, [false, false, true, true, true]);
        assert_eq!(
            store.tree_cache().uris(),
            [uris[4].clone(), uris[3].clone(), uris[2].clone()]
        );

        // An evicted document parses again on demand, with the same result.
        let again = store.snapshot(&uris[0]).expect("open");
        assert_eq!(
            again.analysis.symbols.first().map(|s| s.name.as_str()),
            Some("f0")
        );
        assert!(holds_tree(&store, &uris[0]));
        assert!(
            !holds_tree(&store, &uris[2]),
            "the least recently used one made room"
        );

        // Reading a cached document makes it recent again.
        store.snapshot(&uris[3]);
        store.snapshot(&uris[1]);
        assert!(holds_tree(&store, &uris[3]));
        assert!(!holds_tree(&store, &uris[4]));
    }

    #[test]
    fn edits_after_eviction_still_apply_and_parse() {
        let store = DocumentStore::new();
        store.set_tree_cache_capacity(1);
        let a = open_rust(&store, 0);
        let b = open_rust(&store, 1);
        store.snapshot(&a);
        store.snapshot(&b);
        assert!(!holds_tree(&store, &a));
        let change = TextChange {
            range: Some(Range::new(Position::new(0, 3), Position::new(0, 5))),
            text: "renamed".into(),
        };
        store
            .change(&a, 2, &[change], PositionEncoding::Utf16)
            .expect("change");
        let snap = store.snapshot(&a).expect("open");
        assert_eq!(snap.version, 2);
        assert_eq!(
            snap.analysis.symbols.first().map(|s| s.name.as_str()),
            Some("renamed")
        );
        store.close(&a);
        assert!(store.tree_cache().uris().is_empty());
    }
}
