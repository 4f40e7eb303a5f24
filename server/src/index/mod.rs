//! Workspace symbol index: a parallel, .gitignore-aware walk of the workspace, kept current per file.

mod fuzzy;
mod tags;
mod walk;

pub use fuzzy::fuzzy_score;
pub(crate) use tags::scan_for_index;
pub use tags::{SigSource, scan as scan_tags};
pub use walk::{
    IndexConfig, IndexProgress, index_document_symbols, index_file_text,
    is_binary as walk_is_binary, is_walked, walk_workspace,
};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;

use crate::analysis::{Language, Span, SymbolKind};

/// A symbol as the index keeps it: enough to answer workspace/symbol and to find a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexedSymbol {
    pub name: Box<str>,
    pub kind: SymbolKind,
    /// Shared between the symbols of a file with the same container.
    pub container: Option<Arc<str>>,
    /// Where the one-line signature comes from (see [`IndexedSymbol::signature`]); most
    /// are read back from the file's text rather than kept.
    #[serde(skip)]
    pub signature: SigSource,
    pub range: Span,
    pub selection_range: Span,
    /// UTF-16 columns of `selection_range.start` / `.end` (the points hold byte columns).
    pub selection_utf16: (u32, u32),
}

impl IndexedSymbol {
    /// The one-line signature, given the text of the file the symbol was indexed from.
    pub fn signature(&self, file_text: &str) -> String {
        self.signature.read(file_text)
    }
}

/// The symbols of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSymbols {
    pub language: Option<Language>,
    pub symbols: Vec<IndexedSymbol>,
    /// Lines in the file (for statistics).
    pub lines: usize,
}

/// A symbol found in the index, with the file it is in.
#[derive(Debug, Clone)]
pub struct SymbolHit {
    pub path: Arc<Path>,
    pub symbol: IndexedSymbol,
    pub score: i64,
}

#[derive(Default)]
struct IndexData {
    files: HashMap<Arc<Path>, Arc<FileSymbols>>,
    /// Symbol name → the files defining it (with the symbol's position in that file's list).
    by_name: HashMap<Box<str>, Vec<(Arc<Path>, u32)>>,
}

/// The workspace index. Cheap to read concurrently; writers replace one file at a time.
#[derive(Default)]
pub struct WorkspaceIndex {
    data: RwLock<IndexData>,
}

impl WorkspaceIndex {
    pub fn new() -> WorkspaceIndex {
        WorkspaceIndex::default()
    }

    /// Replaces the symbols of one file (an empty list removes them).
    pub fn update_file(&self, path: &Path, symbols: FileSymbols) {
        let mut data = self.data.write();
        Self::remove_locked(&mut data, path);
        let key: Arc<Path> = Arc::from(path);
        for (i, s) in symbols.symbols.iter().enumerate() {
            data.by_name
                .entry(s.name.clone())
                .or_default()
                .push((key.clone(), i as u32));
        }
        data.files.insert(key, Arc::new(symbols));
    }

    /// Adds many files at once (the initial walk), under one write lock.
    pub fn extend(&self, files: Vec<(PathBuf, FileSymbols)>) {
        let mut data = self.data.write();
        for (path, symbols) in files {
            Self::remove_locked(&mut data, &path);
            let key: Arc<Path> = Arc::from(path.as_path());
            for (i, s) in symbols.symbols.iter().enumerate() {
                data.by_name
                    .entry(s.name.clone())
                    .or_default()
                    .push((key.clone(), i as u32));
            }
            data.files.insert(key, Arc::new(symbols));
        }
    }

    /// Removes a file, or every file under a folder.
    pub fn remove_under(&self, path: &Path) {
        let mut data = self.data.write();
        let gone: Vec<Arc<Path>> = data
            .files
            .keys()
            .filter(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in gone {
            Self::remove_locked(&mut data, &p);
        }
    }

    pub fn remove_file(&self, path: &Path) {
        let mut data = self.data.write();
        Self::remove_locked(&mut data, path);
    }

    fn remove_locked(data: &mut IndexData, path: &Path) {
        if let Some(old) = data.files.remove(path) {
            for s in &old.symbols {
                if let Some(list) = data.by_name.get_mut(&s.name) {
                    list.retain(|(p, _)| p.as_ref() != path);
                    if list.is_empty() {
                        data.by_name.remove(&s.name);
                    }
                }
            }
        }
    }

    pub fn file_count(&self) -> usize {
        self.data.read().files.len()
    }

    pub fn symbol_count(&self) -> usize {
        self.data
            .read()
            .files
            .values()
            .map(|f| f.symbols.len())
            .sum()
    }

    pub fn line_count(&self) -> usize {
        self.data.read().files.values().map(|f| f.lines).sum()
    }

    pub fn file(&self, path: &Path) -> Option<Arc<FileSymbols>> {
        self.data.read().files.get(path).cloned()
    }

    /// How many definitions are named exactly `name`.
    pub fn count(&self, name: &str) -> usize {
        self.data.read().by_name.get(name).map_or(0, Vec::len)
    }

    /// The indexed files whose path ends with `suffix` (whole components), sorted.
    pub fn paths_ending_with(&self, suffix: &Path) -> Vec<PathBuf> {
        let data = self.data.read();
        let mut out: Vec<PathBuf> = data
            .files
            .keys()
            .filter(|p| p.ends_with(suffix))
            .map(|p| p.to_path_buf())
            .collect();
        out.sort();
        out
    }

    /// Definitions named exactly `name`.
    pub fn definitions(&self, name: &str) -> Vec<(Arc<Path>, IndexedSymbol)> {
        let data = self.data.read();
        let Some(list) = data.by_name.get(name) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|(path, i)| {
                let file = data.files.get(path)?;
                let sym = file.symbols.get(*i as usize)?;
                Some((path.clone(), sym.clone()))
            })
            .collect()
    }

    /// The `limit` best definitions of `name` by `rank` (lower is better; `None` skips one),
    /// ties broken by path and position. Only those are cloned (a name like `new` may have
    /// hundreds of definitions).
    pub fn best_definitions(
        &self,
        name: &str,
        limit: usize,
        rank: impl Fn(&Path, &IndexedSymbol) -> Option<u8>,
    ) -> Vec<(u8, Arc<Path>, IndexedSymbol)> {
        let data = self.data.read();
        let Some(list) = data.by_name.get(name) else {
            return Vec::new();
        };
        let mut best: Vec<(u8, &Arc<Path>, &IndexedSymbol)> = Vec::with_capacity(limit + 1);
        for (path, i) in list {
            let Some(sym) = data
                .files
                .get(path)
                .and_then(|f| f.symbols.get(*i as usize))
            else {
                continue;
            };
            let Some(r) = rank(path, sym) else { continue };
            let key =
                |e: &(u8, &Arc<Path>, &IndexedSymbol)| (e.0, e.1.clone(), e.2.range.start_byte);
            let cand = (r, path, sym);
            if best.len() == limit && best.last().is_some_and(|last| key(last) <= key(&cand)) {
                continue;
            }
            let pos = best.partition_point(|e| key(e) <= key(&cand));
            best.insert(pos, cand);
            best.truncate(limit);
        }
        best.into_iter()
            .map(|(r, p, s)| (r, p.clone(), s.clone()))
            .collect()
    }

    /// Fuzzy search over all symbol names, best first, at most `limit` hits.
    /// Ties break by shorter name, then path, then position, so results are deterministic.
    pub fn search(&self, query: &str, limit: usize) -> Vec<SymbolHit> {
        let data = self.data.read();
        let mut hits: Vec<(i64, &Arc<Path>, &IndexedSymbol)> = Vec::new();
        for (path, file) in &data.files {
            for s in &file.symbols {
                if let Some(score) = fuzzy_score(query, &s.name) {
                    hits.push((score, path, s));
                }
            }
        }
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.2.name.len().cmp(&b.2.name.len()))
                .then_with(|| a.1.cmp(b.1))
                .then_with(|| a.2.range.start_byte.cmp(&b.2.range.start_byte))
        });
        hits.truncate(limit);
        hits.into_iter()
            .map(|(score, path, s)| SymbolHit {
                path: path.clone(),
                symbol: s.clone(),
                score,
            })
            .collect()
    }
}
