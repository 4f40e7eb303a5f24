//! The parallel workspace walk: which files are indexed, and turning one file's text into symbols.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ignore::{WalkBuilder, WalkState};
use parking_lot::Mutex;

use super::{FileSymbols, IndexedSymbol, SigSource};
use crate::analysis::text::{has_lone_cr, line_breaks, line_starts};
use crate::analysis::{Language, Span, Symbol, TextPoint};
use crate::documents::{PositionEncoding, column_in_line};

/// What the walk indexes.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// Files larger than this are skipped (default 1 MiB).
    pub max_file_size: u64,
    /// Directory names never entered (vendored or generated code).
    pub skip_dirs: Vec<String>,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig {
            max_file_size: 1024 * 1024,
            skip_dirs: [
                "node_modules",
                "target",
                "vendor",
                "third_party",
                "dist",
                "build",
                "out",
                "__pycache__",
                ".venv",
                "venv",
                ".git",
                ".hg",
                ".svn",
                ".mypy_cache",
                ".tox",
                "bower_components",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            threads: 0,
        }
    }
}

/// Progress of a walk, reported every few hundred files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexProgress {
    pub files_indexed: usize,
    pub files_skipped: usize,
    pub done: bool,
}

/// Turns one file's bytes into its symbols with the lexical tag scanner (files not open in
/// the editor). Binary content yields `None`; invalid UTF-8 is read lossily (the index is a
/// guide; definitions are re-read from disk when used).
pub fn index_file_text(path: &Path, bytes: &[u8]) -> Option<FileSymbols> {
    if is_binary(bytes) {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let lines = bytecount_lines(bytes);
    let language = Language::from_path(path);
    if language == Language::PlainText {
        return Some(FileSymbols {
            language: None,
            symbols: Vec::new(),
            lines,
        });
    }
    let symbols = super::tags::scan_for_index(language, &text);
    Some(FileSymbols {
        language: Some(language),
        symbols: indexed(&text, symbols),
        lines,
    })
}

/// The index entry of an open document from the symbols tree-sitter extracted from it
/// (hierarchical; they are flattened here).
///
/// Points are tree-sitter's unless the text has a lone `\r`: its rows count `\n` only, so
/// such a text has its points recounted the way the client counts lines.
pub fn index_document_symbols(language: Language, text: &str, symbols: &[Symbol]) -> FileSymbols {
    fn rec(symbols: &[Symbol], lines: Option<&[usize]>, out: &mut Vec<(Symbol, SigSource)>) {
        for s in symbols {
            let mut sym = Symbol {
                children: Vec::new(),
                ..s.clone()
            };
            if let Some(starts) = lines {
                sym.range = client_span(starts, sym.range);
                sym.selection_range = client_span(starts, sym.selection_range);
            }
            // Where the signature is in the document's text, not a copy of it: an open
            // document's entries cost no string per symbol.
            let (start, end) = (sym.range.start_byte as u32, sym.header_end as u32);
            let sig = if sym.header_end < sym.range.end_byte {
                SigSource::Header(start, end)
            } else {
                SigSource::FirstLine(start, sym.range.end_byte as u32)
            };
            sym.signature = String::new();
            out.push((sym, sig));
            rec(&s.children, lines, out);
        }
    }
    let lines = has_lone_cr(text.as_bytes()).then(|| line_starts(text.as_bytes()));
    let mut flat = Vec::new();
    rec(symbols, lines.as_deref(), &mut flat);
    FileSymbols {
        language: (language != Language::PlainText).then_some(language),
        symbols: indexed(text, flat),
        lines: bytecount_lines(text.as_bytes()),
    }
}

/// `span` with its points taken from its bytes and the text's line starts.
fn client_span(line_starts: &[usize], span: Span) -> Span {
    let point = |byte: usize| {
        let line = line_starts
            .partition_point(|&s| s <= byte)
            .saturating_sub(1);
        let start = line_starts.get(line).copied().unwrap_or(0).min(byte);
        TextPoint {
            line: line as u32,
            col: (byte - start) as u32,
        }
    };
    Span {
        start: point(span.start_byte),
        end: point(span.end_byte),
        ..span
    }
}

/// Flat symbols to index entries; containers are shared between the symbols of a file.
fn indexed(text: &str, symbols: Vec<(Symbol, SigSource)>) -> Vec<IndexedSymbol> {
    let mut last_container: Option<Arc<str>> = None;
    symbols
        .into_iter()
        .map(|(s, signature)| {
            let sel = s.selection_range;
            let line_start = sel.start_byte.saturating_sub(sel.start.col as usize);
            let (start16, end16) = match text.get(line_start..sel.end_byte) {
                // ASCII up to the name's end: UTF-16 columns are the byte columns.
                Some(p) if p.is_ascii() => (Some(sel.start.col), Some(sel.end.col)),
                _ => (
                    text.get(line_start..sel.start_byte)
                        .map(|p| column_in_line(p, PositionEncoding::Utf16)),
                    text.get(line_start..sel.end_byte)
                        .map(|p| column_in_line(p, PositionEncoding::Utf16)),
                ),
            };
            let single_line = sel.start.line == sel.end.line;
            let container = s.container.map(|c| match &last_container {
                Some(prev) if **prev == *c => prev.clone(),
                _ => {
                    let shared: Arc<str> = Arc::from(c);
                    last_container = Some(shared.clone());
                    shared
                }
            });
            IndexedSymbol {
                name: s.name.into_boxed_str(),
                kind: s.kind,
                container,
                signature,
                range: s.range,
                selection_range: sel,
                selection_utf16: (
                    start16.unwrap_or(sel.start.col),
                    if single_line {
                        end16.unwrap_or(sel.end.col)
                    } else {
                        sel.end.col
                    },
                ),
            }
        })
        .collect()
}

/// Lines in a file, counted as the client counts them (a last line without a break counts).
fn bytecount_lines(bytes: &[u8]) -> usize {
    let (breaks, after_last) = line_breaks(bytes, 0, bytes.len());
    breaks as usize + usize::from(!bytes.is_empty() && after_last != Some(bytes.len()))
}

/// A file is binary when its first 8 KiB hold a NUL byte (as git decides).
pub fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, bytes.get(..8192).unwrap_or(bytes)).is_some()
}

/// Whether the walk of `roots` would visit `path` (a file, or a folder when `is_dir`): inside
/// a root, no hidden part, no skipped folder on the way, and neither the path nor a folder on
/// the way ignored by the rules the walk applies there (see [`ignored_by`]). Used for single
/// paths reported later (saves, watcher events) so they follow the walk's rules. Size and
/// binary checks are the caller's.
pub fn is_walked(roots: &[PathBuf], config: &IndexConfig, path: &Path, is_dir: bool) -> bool {
    let Some((root, rel)) = roots
        .iter()
        .find_map(|r| path.strip_prefix(r).ok().map(|rel| (r, rel)))
    else {
        return false;
    };
    let parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let folders = if is_dir {
        parts.len()
    } else {
        parts.len().saturating_sub(1)
    };
    let hidden = parts.iter().any(|p| p.to_string_lossy().starts_with('.'));
    let skipped = parts
        .iter()
        .take(folders)
        .any(|p| config.skip_dirs.iter().any(|s| *p == s.as_str()));
    if hidden || skipped {
        return false;
    }
    // The rules of the root's own ancestors apply too (the walk's `parents` option).
    let mut rules: Vec<FolderRules> = root.ancestors().map(FolderRules::read).collect();
    rules.reverse();
    let global = ignore::gitignore::Gitignore::global().0;
    let mut at = root.clone();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let last = i + 1 == parts.len();
        // the walk never enters an ignored folder, whatever deeper files say
        if ignored_by(&rules, &global, &at, !last || is_dir) {
            return false;
        }
        if !last {
            rules.push(FolderRules::read(&at));
        }
    }
    true
}

/// The ignore files of one folder, as the walk reads them.
struct FolderRules {
    dir: PathBuf,
    ignore: ignore::gitignore::Gitignore,
    gitignore: ignore::gitignore::Gitignore,
    /// `.git/info/exclude`, when the folder is a repository's root.
    exclude: ignore::gitignore::Gitignore,
}

impl FolderRules {
    fn read(dir: &Path) -> FolderRules {
        use ignore::gitignore::Gitignore;
        let load = |file: PathBuf| {
            if file.is_file() {
                Gitignore::new(&file).0
            } else {
                Gitignore::empty()
            }
        };
        FolderRules {
            dir: dir.to_path_buf(),
            ignore: load(dir.join(".ignore")),
            gitignore: load(dir.join(".gitignore")),
            exclude: if dir.join(".git").exists() {
                load(dir.join(".git/info/exclude"))
            } else {
                Gitignore::empty()
            },
        }
    }
}

/// Whether `path` is ignored under `rules` (outermost folder first) with the `ignore`
/// crate's precedence: the nearest `.ignore` that has a say, else the nearest `.gitignore`,
/// else the nearest `.git/info/exclude`, else the global gitignore. Within a file the last
/// matching line wins, and `!` re-includes. (The walk does not require a repository, so
/// `.gitignore` files above a repository's root apply inside it too.)
fn ignored_by(
    rules: &[FolderRules],
    global: &ignore::gitignore::Gitignore,
    path: &Path,
    is_dir: bool,
) -> bool {
    use ignore::Match;
    let (mut by_ignore, mut by_gitignore, mut by_exclude) = (Match::None, Match::None, Match::None);
    for folder in rules.iter().rev() {
        // Matched relative to the ignore file's folder (the matcher takes the path as is).
        let Ok(below) = path.strip_prefix(&folder.dir) else {
            continue;
        };
        if by_ignore.is_none() {
            by_ignore = folder.ignore.matched(below, is_dir);
        }
        if by_gitignore.is_none() {
            by_gitignore = folder.gitignore.matched(below, is_dir);
        }
        if by_exclude.is_none() {
            by_exclude = folder.exclude.matched(below, is_dir);
        }
    }
    by_ignore
        .or(by_gitignore)
        .or(by_exclude)
        .or(global.matched(path, is_dir))
        .is_ignore()
}

/// Walks `roots` in parallel (honouring .gitignore, .ignore, .git/info/exclude, the global
/// gitignore and hidden files), indexes every source file, and returns the results.
/// `progress` is called from worker threads.
pub fn walk_workspace(
    roots: &[PathBuf],
    config: &IndexConfig,
    progress: &(dyn Fn(IndexProgress) + Sync),
) -> Vec<(PathBuf, FileSymbols)> {
    let Some(first) = roots.first() else {
        return Vec::new();
    };
    let mut builder = WalkBuilder::new(first);
    for root in roots.iter().skip(1) {
        builder.add(root);
    }
    let skip: Arc<Vec<String>> = Arc::new(config.skip_dirs.clone());
    let threads = if config.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        config.threads
    };
    builder
        .require_git(false)
        .threads(threads)
        .max_filesize(Some(config.max_file_size))
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && entry.depth() > 0 && skip.iter().any(|s| entry.file_name() == s.as_str()))
        });
    let results: Mutex<Vec<(PathBuf, FileSymbols)>> = Mutex::new(Vec::new());
    let indexed = AtomicUsize::new(0);
    let skipped = AtomicUsize::new(0);
    builder.build_parallel().run(|| {
        let mut worker = Worker {
            local: Vec::new(),
            results: &results,
        };
        let indexed = &indexed;
        let skipped = &skipped;
        Box::new(move |entry: Result<ignore::DirEntry, ignore::Error>| {
            let Ok(entry) = entry else {
                skipped.fetch_add(1, Ordering::Relaxed);
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.path();
            if Language::from_path(path) == Language::PlainText {
                return WalkState::Continue;
            }
            match std::fs::read(path)
                .ok()
                .and_then(|bytes| index_file_text(path, &bytes))
            {
                Some(symbols) => {
                    worker.local.push((path.to_path_buf(), symbols));
                    let n = indexed.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(500) {
                        progress(IndexProgress {
                            files_indexed: n,
                            files_skipped: skipped.load(Ordering::Relaxed),
                            done: false,
                        });
                    }
                }
                None => {
                    skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
            WalkState::Continue
        })
    });
    progress(IndexProgress {
        files_indexed: indexed.load(Ordering::Relaxed),
        files_skipped: skipped.load(Ordering::Relaxed),
        done: true,
    });
    let mut out = results.into_inner();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One walker thread's results, handed over when the thread's visitor is dropped.
struct Worker<'a> {
    local: Vec<(PathBuf, FileSymbols)>,
    results: &'a Mutex<Vec<(PathBuf, FileSymbols)>>,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.results.lock().append(&mut self.local);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_walked` (for single paths reported later) agrees with the walk itself on every
    /// file of a tree with nested ignore files, a re-include, a skipped and a hidden folder.
    #[test]
    fn single_path_rules_agree_with_the_walk() {
        let outer = tempfile::tempdir().expect("tempdir");
        // the workspace sits in a folder whose own .gitignore the walk reads as well
        std::fs::write(outer.path().join(".gitignore"), "*.skip.rs\n").expect("write");
        let root = &outer.path().join("ws");
        let files = [
            "src/main.rs",
            "src/old.skip.rs",
            "notes/todo.rs",
            "repo/plain.rs",
            "repo/secret.rs",
            "repo/y.gen.rs",
            "repo/z.skip.rs",
            "src/x.gen.rs",
            "src/sub/keep.gen.rs",
            "src/sub/drop.gen.rs",
            "src/sub/ok.rs",
            "build/out.rs",
            "node_modules/m/index.js",
            ".hidden/h.rs",
            "docs/a.py",
            "docs/private/b.py",
        ];
        for f in files {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "fn f() {}\n").expect("write");
        }
        std::fs::write(root.join(".gitignore"), "*.gen.rs\nbuild/\n").expect("write");
        std::fs::write(root.join("src/sub/.gitignore"), "!keep.gen.rs\n").expect("write");
        std::fs::write(root.join("docs/.ignore"), "private\n").expect("write");
        // .ignore outranks .gitignore wherever it is: notes/ stays although notes/.gitignore
        // drops everything, because the root's .ignore re-includes todo.rs
        std::fs::write(root.join(".ignore"), "!todo.rs\n").expect("write");
        std::fs::write(root.join("notes/.gitignore"), "*\n").expect("write");
        // a nested repository: its .git/info/exclude applies, and so do the .gitignore files
        // above it (the walk does not require a repository)
        std::fs::create_dir_all(root.join("repo/.git/info")).expect("mkdir");
        std::fs::write(root.join("repo/.git/info/exclude"), "secret.rs\n").expect("write");
        let roots = vec![root.to_path_buf()];
        let config = IndexConfig::default();
        let mut walked: Vec<PathBuf> = walk_workspace(&roots, &config, &|_| {})
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        walked.sort();
        let mut single: Vec<PathBuf> = files
            .iter()
            .map(|f| root.join(f))
            .filter(|p| is_walked(&roots, &config, p, false))
            .collect();
        single.sort();
        assert_eq!(single, walked);
        let names: Vec<String> = walked
            .iter()
            .filter_map(|p| p.strip_prefix(root).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "docs/a.py",
                "notes/todo.rs",
                "repo/plain.rs",
                "src/main.rs",
                "src/sub/keep.gen.rs",
                "src/sub/ok.rs"
            ]
        );
        assert!(!is_walked(&roots, &config, &root.join("build"), true));
        assert!(is_walked(&roots, &config, &root.join("src/sub"), true));
        assert!(!is_walked(
            &roots,
            &config,
            Path::new("/elsewhere/a.rs"),
            false
        ));
    }
}
