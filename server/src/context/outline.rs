//! Per-file facts that context capture reads again and again, cached per file version: a
//! file's definitions (flat, each with where its header ends and how deep it sits), its
//! line starts, and its import bindings; plus the cache of file-system answers module
//! resolution asks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::analysis::{Language, Span, Symbol, SymbolKind, Syntax};
use crate::index::SigSource;

use super::lang::{ImportBinding, rules};

/// One definition of a file.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub name: Box<str>,
    pub kind: SymbolKind,
    pub container: Option<Box<str>>,
    pub range: Span,
    pub selection: Span,
    /// The byte where the definition's body starts (its header ends there); the range's
    /// end when it has no body.
    pub header_end: usize,
    /// 0 for top-level definitions, 1 for their members...
    pub depth: u16,
}

/// A file's text at one version with its definitions and line starts.
pub(crate) struct FileOutline {
    pub path: Arc<Path>,
    pub language: Language,
    pub text: Arc<str>,
    pub line_starts: Vec<usize>,
    /// Sorted by start.
    pub defs: Vec<Def>,
    by_name: HashMap<Box<str>, Vec<u32>>,
    imports: OnceLock<Vec<ImportBinding>>,
    /// Each line's token estimate (its text without the line break), computed on first use
    /// a chunk of [`TOKEN_CHUNK`] lines at a time (a request reads a few places of a file).
    line_tokens: Vec<OnceLock<Box<[u32]>>>,
}

impl std::fmt::Debug for FileOutline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileOutline")
            .field("path", &self.path)
            .field("defs", &self.defs.len())
            .finish()
    }
}

impl FileOutline {
    /// The outline of a file from the lexical scanner (files on disk).
    pub(crate) fn scan(path: Arc<Path>, language: Language, text: Arc<str>) -> FileOutline {
        let scanned = crate::index::scan_for_index(language, &text);
        let defs = scanned
            .into_iter()
            .map(|(s, sig)| {
                let header_end = match sig {
                    SigSource::Header(_, body) => body as usize,
                    _ => s.range.end_byte,
                };
                def_of(s, header_end)
            })
            .collect();
        FileOutline::new(path, language, text, defs)
    }

    /// The outline of an open document from its tree-sitter symbols.
    pub(crate) fn from_symbols(
        path: Arc<Path>,
        language: Language,
        text: Arc<str>,
        symbols: &[Symbol],
    ) -> FileOutline {
        let mut defs = Vec::new();
        fn rec(symbols: &[Symbol], out: &mut Vec<Def>) {
            for s in symbols {
                out.push(def_of(s.clone_shallow(), s.header_end));
                rec(&s.children, out);
            }
        }
        rec(symbols, &mut defs);
        defs.sort_by_key(|d| d.range.start_byte);
        FileOutline::new(path, language, text, defs)
    }

    fn new(path: Arc<Path>, language: Language, text: Arc<str>, mut defs: Vec<Def>) -> FileOutline {
        // Depth from nesting: a definition inside another's range is one deeper.
        let mut stack: Vec<usize> = Vec::new();
        for d in defs.iter_mut() {
            while stack.last().is_some_and(|&end| d.range.start_byte >= end) {
                stack.pop();
            }
            d.depth = u16::try_from(stack.len()).unwrap_or(u16::MAX);
            stack.push(d.range.end_byte.max(d.range.start_byte + 1));
        }
        let mut by_name: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        for (i, d) in defs.iter().enumerate() {
            by_name.entry(d.name.clone()).or_default().push(i as u32);
        }
        let line_starts = crate::analysis::text::line_starts(text.as_bytes());
        let line_count = line_starts.len();
        FileOutline {
            path,
            language,
            text,
            line_starts,
            defs,
            by_name,
            imports: OnceLock::new(),
            line_tokens: (0..line_count.div_ceil(TOKEN_CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    pub(crate) fn def(&self, i: u32) -> Option<&Def> {
        self.defs.get(i as usize)
    }

    /// The definitions named `name`.
    pub(crate) fn named(&self, name: &str) -> &[u32] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The top-level definitions named `name` (Rust `impl` blocks aside).
    pub(crate) fn top_level(&self, name: &str) -> Vec<u32> {
        self.named(name)
            .iter()
            .copied()
            .filter(|&i| {
                self.def(i)
                    .is_some_and(|d| d.depth == 0 && d.kind != SymbolKind::Impl)
            })
            .collect()
    }

    /// The members of definition `i` (one level down, inside its range).
    pub(crate) fn members(&self, i: u32) -> Vec<u32> {
        let Some(d) = self.def(i) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for j in (i as usize + 1)..self.defs.len() {
            let Some(m) = self.defs.get(j) else { break };
            if m.range.start_byte >= d.range.end_byte {
                break;
            }
            if m.depth == d.depth + 1 {
                out.push(j as u32);
            }
        }
        out
    }

    /// The line (0-based) holding `byte`.
    pub(crate) fn line_of(&self, byte: usize) -> u32 {
        let i = self.line_starts.partition_point(|&s| s <= byte);
        i.saturating_sub(1) as u32
    }

    pub(crate) fn line_count(&self) -> u32 {
        self.line_starts.len() as u32
    }

    /// Line `i` without its line break.
    pub(crate) fn line(&self, i: u32) -> &str {
        let start = self
            .line_starts
            .get(i as usize)
            .copied()
            .unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(i as usize + 1)
            .copied()
            .unwrap_or(self.text.len());
        self.text
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }

    /// The line break ending line `i` (`\n`, `\r\n` or `\r`), `None` for the last line.
    pub(crate) fn line_break(&self, i: u32) -> Option<&str> {
        let start = self.line_starts.get(i as usize).copied()?;
        let next = self.line_starts.get(i as usize + 1).copied()?;
        let line = self.text.get(start..next)?;
        let content = line.trim_end_matches(['\n', '\r']).len();
        line.get(content..)
    }

    /// The token estimate of line `i` (without its line break).
    pub(crate) fn line_tokens(&self, i: u32) -> usize {
        let i = i as usize;
        let Some(chunk) = self.line_tokens.get(i / TOKEN_CHUNK) else {
            return 0;
        };
        let tokens = chunk.get_or_init(|| {
            let first = i / TOKEN_CHUNK * TOKEN_CHUNK;
            (first..(first + TOKEN_CHUNK).min(self.line_starts.len()))
                .map(|l| super::estimate_tokens(self.line(l as u32)) as u32)
                .collect()
        });
        tokens.get(i % TOKEN_CHUNK).copied().unwrap_or(0) as usize
    }

    /// The text of a definition's whole range (for readers of declarations).
    pub(crate) fn text_of(&self, d: &Def) -> &str {
        self.text
            .get(d.range.start_byte..d.range.end_byte)
            .unwrap_or("")
    }

    /// The file's import bindings (parsed once per version).
    pub(crate) fn imports(&self, tree: Option<&Syntax>) -> &[ImportBinding] {
        self.imports.get_or_init(|| {
            let Some(rules) = rules(self.language) else {
                return Vec::new();
            };
            let parsed;
            let syntax = match tree {
                Some(t) => t,
                None => match crate::documents::parse_str(self.language, &self.text) {
                    Some(t) => {
                        parsed = t;
                        &parsed
                    }
                    None => return Vec::new(),
                },
            };
            let mut out = Vec::new();
            for (root, start, end) in syntax.pieces() {
                let mut found = Vec::new();
                rules.imports(root, &self.text, &mut found);
                let _ = (start, end);
                for b in found {
                    if !out.contains(&b) {
                        out.push(b);
                    }
                }
            }
            out
        })
    }
}

fn def_of(s: Symbol, header_end: usize) -> Def {
    Def {
        name: s.name.into_boxed_str(),
        kind: s.kind,
        container: s.container.map(String::into_boxed_str),
        range: s.range,
        selection: s.selection_range,
        header_end: header_end.clamp(s.range.start_byte, s.range.end_byte.max(s.range.start_byte)),
        depth: 0,
    }
}

/// Lines per chunk of the per-line token estimates.
const TOKEN_CHUNK: usize = 256;
/// How long file-system answers are trusted without an event saying something changed.
const FS_TTL: Duration = Duration::from_secs(3);
/// How many file outlines are kept.
const MAX_OUTLINES: usize = 32;
/// At most this much text is kept in outlines (the least recently used go first).
const MAX_OUTLINE_BYTES: usize = 4 * 1024 * 1024;

/// The caches context capture keeps between requests. Owned by the engine.
#[derive(Default)]
pub struct ContextCache {
    outlines: Mutex<Outlines>,
    fs: Mutex<HashMap<(u8, PathBuf), Stamped<FsAnswer>>>,
    modules: Mutex<HashMap<ModuleKey, Stamped<Vec<PathBuf>>>>,
    manifests: Mutex<Option<Stamped<Vec<PathBuf>>>>,
    generation: AtomicU64,
}

/// Outlines by path, least recently used first evicted.
#[derive(Default)]
struct Outlines {
    map: HashMap<PathBuf, (u64, VersionedOutline)>,
    clock: u64,
    bytes: usize,
}

impl Outlines {
    fn get(&mut self, path: &Path) -> Option<&VersionedOutline> {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.map.get_mut(path)?;
        entry.0 = clock;
        Some(&entry.1)
    }

    fn insert(&mut self, path: PathBuf, value: VersionedOutline) {
        self.clock += 1;
        self.bytes += value.1.text.len();
        if let Some((_, old)) = self.map.insert(path, (self.clock, value)) {
            self.bytes -= old.1.text.len();
        }
        while self.map.len() > MAX_OUTLINES
            || (self.bytes > MAX_OUTLINE_BYTES && self.map.len() > 1)
        {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
    }

    fn remove(&mut self, path: &Path) {
        if let Some((_, old)) = self.map.remove(path) {
            self.bytes -= old.1.text.len();
        }
    }
}

/// An answer with the generation and time it was given at.
type Stamped<T> = (u64, Instant, T);
/// An outline with the open document's version it was built at (`None`: from disk).
type VersionedOutline = (Option<i32>, Arc<FileOutline>);
/// A module path as seen from a file.
type ModuleKey = (Language, PathBuf, String);

/// Project manifests module resolution reads (found by a shallow walk of the roots).
const MANIFESTS: &[&str] = &["Cargo.toml", "package.json"];
/// How deep below a root manifests are looked for.
const MANIFEST_DEPTH: usize = 5;
/// How long the manifest list is trusted without an event.
const MANIFEST_TTL: Duration = Duration::from_secs(60);

#[derive(Clone)]
enum FsAnswer {
    Flag(bool),
    List(Vec<PathBuf>),
    Text(Option<String>),
}

impl ContextCache {
    pub fn new() -> ContextCache {
        ContextCache::default()
    }

    /// Something changed on disk: file-system answers and module resolutions are asked again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets what is kept of a file (its document was closed).
    pub fn forget(&self, path: &Path) {
        self.outlines.lock().remove(path);
    }

    /// The outline of `path` at `text` (an open document's `version`), built when the
    /// cached one is of another version.
    pub(crate) fn outline(
        &self,
        path: &Path,
        language: Language,
        text: &Arc<str>,
        version: Option<i32>,
        build: impl FnOnce() -> FileOutline,
    ) -> Arc<FileOutline> {
        if let Some((v, o)) = self.outlines.lock().get(path)
            && o.language == language
            && (Arc::ptr_eq(&o.text, text)
                || (version.is_some() && *v == version && o.text.len() == text.len()))
        {
            return o.clone();
        }
        let outline = Arc::new(build());
        self.outlines
            .lock()
            .insert(path.to_path_buf(), (version, outline.clone()));
        outline
    }

    fn fs_answer(&self, kind: u8, path: &Path, ask: impl FnOnce() -> FsAnswer) -> FsAnswer {
        let generation = self.generation.load(Ordering::Relaxed);
        let key = (kind, path.to_path_buf());
        if let Some((g, at, answer)) = self.fs.lock().get(&key)
            && *g == generation
            && at.elapsed() < FS_TTL
        {
            return answer.clone();
        }
        let answer = ask();
        let mut map = self.fs.lock();
        if map.len() > 50_000 {
            map.clear();
        }
        map.insert(key, (generation, Instant::now(), answer.clone()));
        answer
    }

    pub(crate) fn is_file(&self, path: &Path) -> bool {
        matches!(
            self.fs_answer(0, path, || FsAnswer::Flag(path.is_file())),
            FsAnswer::Flag(true)
        )
    }

    pub(crate) fn is_dir(&self, path: &Path) -> bool {
        matches!(
            self.fs_answer(1, path, || FsAnswer::Flag(path.is_dir())),
            FsAnswer::Flag(true)
        )
    }

    pub(crate) fn list_dir(&self, path: &Path) -> Vec<PathBuf> {
        match self.fs_answer(2, path, || {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.is_file())
                        .take(2000)
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            FsAnswer::List(files)
        }) {
            FsAnswer::List(l) => l,
            _ => Vec::new(),
        }
    }

    pub(crate) fn read_small(&self, path: &Path) -> Option<String> {
        match self.fs_answer(3, path, || {
            let text = std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file() && m.len() <= 1 << 20)
                .and_then(|_| std::fs::read_to_string(path).ok());
            FsAnswer::Text(text)
        }) {
            FsAnswer::Text(t) => t,
            _ => None,
        }
    }

    /// The manifests (`Cargo.toml`, `package.json`) under the roots, outside ignored and
    /// vendored folders, sorted.
    pub(crate) fn manifests(&self, roots: &[PathBuf]) -> Vec<PathBuf> {
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some((g, at, list)) = self.manifests.lock().as_ref()
            && *g == generation
            && at.elapsed() < MANIFEST_TTL
        {
            return list.clone();
        }
        let mut found = Vec::new();
        for root in roots {
            let walk = ignore::WalkBuilder::new(root)
                .max_depth(Some(MANIFEST_DEPTH))
                .filter_entry(|e| {
                    !matches!(
                        e.file_name().to_str(),
                        Some("node_modules" | "target" | ".git" | "dist" | "build")
                    )
                })
                .build();
            for entry in walk.flatten() {
                if entry.file_type().is_some_and(|t| t.is_file())
                    && entry
                        .file_name()
                        .to_str()
                        .is_some_and(|n| MANIFESTS.contains(&n))
                {
                    found.push(entry.into_path());
                }
                if found.len() > 5000 {
                    break;
                }
            }
        }
        found.sort();
        *self.manifests.lock() = Some((generation, Instant::now(), found.clone()));
        found
    }

    /// A cached module resolution (`resolve` runs when there is none, or it is stale).
    pub(crate) fn module_files(
        &self,
        language: Language,
        from: &Path,
        module: &str,
        resolve: impl FnOnce() -> Vec<PathBuf>,
    ) -> Vec<PathBuf> {
        let generation = self.generation.load(Ordering::Relaxed);
        let key = (language, from.to_path_buf(), module.to_string());
        if let Some((g, at, files)) = self.modules.lock().get(&key)
            && *g == generation
            && at.elapsed() < FS_TTL
        {
            return files.clone();
        }
        let files = resolve();
        let mut map = self.modules.lock();
        if map.len() > 20_000 {
            map.clear();
        }
        map.insert(key, (generation, Instant::now(), files.clone()));
        files
    }
}
