//! The snapshot's items and their budget: each item is shaped to what is left of the budget
//! when its turn comes (selection, enclosing symbol, imports, definitions, diagnostics,
//! outline, recent edits), no two items show the same line (overlapping excerpts of a file
//! merge), and lines the prompt already shows are left out.

use std::path::Path;
use std::sync::Arc;

use crate::analysis::{self, Symbol};
use crate::documents::{
    DocSnapshot, Position, Range, RecentEdit, byte_to_position, column_in_line, position_to_char,
};
use crate::index::WorkspaceIndex;

use super::excerpt::{Excerpt, Source};
use super::lang::{Rules, rules};
use super::outline::{ContextCache, FileOutline};
use super::{
    ContextError, ContextItem, ContextItemKind, ContextRequest, SourceProvider, estimate_tokens,
    skeleton,
};

/// The imports item takes at most this share of the budget (percent).
const IMPORTS_PERCENT: usize = 10;

/// An item and, for source items, the excerpt it shows.
struct Entry {
    item: ContextItem,
    source: Option<Source>,
}

/// Builds the items of one snapshot.
pub(super) struct Builder<'a> {
    pub doc: &'a DocSnapshot,
    pub req: &'a ContextRequest,
    pub index: &'a WorkspaceIndex,
    pub sources: &'a dyn SourceProvider,
    pub cache: &'a ContextCache,
    pub rules: Option<&'static dyn Rules>,
    /// The document's outline.
    pub file: Arc<FileOutline>,
    pub cursor_byte: usize,
    pub cursor_line: u32,
    /// The selection in bytes, when not empty.
    pub selection: Option<(usize, usize)>,
    sel_lines: Option<(u32, u32)>,
    exclude_lines: Option<(u32, u32)>,
    /// The enclosing symbols, outermost first.
    pub scopes: Vec<Symbol>,
    entries: Vec<Entry>,
    used: usize,
}

impl<'a> Builder<'a> {
    pub(super) fn new(
        doc: &'a DocSnapshot,
        req: &'a ContextRequest,
        index: &'a WorkspaceIndex,
        sources: &'a dyn SourceProvider,
        cache: &'a ContextCache,
    ) -> Result<Builder<'a>, ContextError> {
        let rope = &doc.rope;
        let enc = req.encoding;
        let out_of_range = |p: Position| ContextError::OutOfRange {
            line: p.line,
            character: p.character,
            line_count: rope.len_lines(),
        };
        let cursor_char =
            position_to_char(rope, req.position, enc).map_err(|_| out_of_range(req.position))?;
        let cursor_byte = rope.char_to_byte(cursor_char);
        let selection = match req.range {
            Some(r) => {
                let a = position_to_char(rope, r.start, enc).map_err(|_| out_of_range(r.start))?;
                let b = position_to_char(rope, r.end, enc).map_err(|_| out_of_range(r.end))?;
                let (a, b) = (a.min(b), a.max(b));
                (b > a).then(|| (rope.char_to_byte(a), rope.char_to_byte(b)))
            }
            None => None,
        };
        let text = &doc.analysis.text;
        let path: Arc<Path> = match &doc.path {
            Some(p) => Arc::from(p.as_path()),
            None => Arc::from(Path::new(&doc.uri)),
        };
        let file = cache.outline(&path, doc.language, text, Some(doc.version), || {
            FileOutline::from_symbols(
                path.clone(),
                doc.language,
                text.clone(),
                &doc.analysis.symbols,
            )
        });
        let line_of = |byte: usize| rope.byte_to_line(byte.min(rope.len_bytes())) as u32;
        // The lines the selection covers whole (only those are left out of other items).
        let sel_lines = selection.and_then(|(a, b)| {
            let text = &doc.analysis.text;
            let (la, lb) = (line_of(a), line_of(b.saturating_sub(1).max(a)));
            let line_start = rope.line_to_byte(la as usize);
            let line_end = |l: u32| {
                let next = rope.line_to_byte((l as usize + 1).min(rope.len_lines()));
                next.min(text.len())
            };
            let blank = |s: Option<&str>| s.is_some_and(|s| s.trim().is_empty());
            let first = if blank(text.get(line_start..a)) {
                la
            } else {
                la + 1
            };
            let last = if blank(text.get(b..line_end(lb))) {
                lb
            } else {
                lb.checked_sub(1)?
            };
            (first <= last).then_some((first, last))
        });
        let exclude_lines = req.exclude.map(|r| {
            let (s, e) = (r.start.min(r.end), r.start.max(r.end));
            let last = if e.character == 0 && e.line > s.line {
                e.line - 1
            } else {
                e.line
            };
            (s.line, last)
        });
        let scopes = match &doc.analysis.tree {
            Some(tree) => analysis::enclosing_scopes(
                doc.language,
                tree,
                text,
                selection.map_or(cursor_byte, |s| s.0),
            ),
            None => Vec::new(),
        };
        Ok(Builder {
            doc,
            req,
            index,
            sources,
            cache,
            rules: rules(doc.language),
            file,
            cursor_byte,
            cursor_line: line_of(cursor_byte),
            selection,
            sel_lines,
            exclude_lines,
            scopes,
            entries: Vec::new(),
            used: 0,
        })
    }

    pub(super) fn budget(&self) -> usize {
        self.req.budget_tokens
    }

    pub(super) fn left(&self) -> usize {
        self.req.budget_tokens.saturating_sub(self.used)
    }

    /// The cap of the enclosing symbol and the selection.
    fn enclosing_cap(&self) -> usize {
        self.budget() * usize::from(self.req.enclosing_percent.min(100)) / 100
    }

    pub(super) fn display_path(&self, path: &Path) -> String {
        if Some(path) == self.doc.path.as_deref() || path == Path::new(&self.doc.uri) {
            return self
                .doc
                .path
                .as_deref()
                .map(|p| self.sources.display_path(p))
                .unwrap_or_else(|| self.doc.uri.clone());
        }
        self.sources.display_path(path)
    }

    fn uri_of(&self, path: &Path) -> String {
        if Some(path) == self.doc.path.as_deref() || path == Path::new(&self.doc.uri) {
            return self.doc.uri.clone();
        }
        self.sources.uri_of(path)
    }

    /// The innermost enclosing symbol.
    pub(super) fn enclosing(&self) -> Option<&Symbol> {
        self.scopes.last()
    }

    /// Whether an excerpt of `file` only shows lines the prompt already has.
    pub(super) fn is_current(&self, file: &FileOutline) -> bool {
        Arc::ptr_eq(&file.text, &self.file.text)
    }

    /// The range an excerpt spans, in the client's coordinates.
    fn range_of(&self, file: &FileOutline, e: &Excerpt) -> Range {
        let enc = self.req.encoding;
        let last = file.line(e.last);
        if self.is_current(file) {
            let rope = &self.doc.rope;
            let start =
                rope.line_to_byte((e.first as usize).min(rope.len_lines().saturating_sub(1)));
            let end_line = (e.last as usize).min(rope.len_lines().saturating_sub(1));
            let end = rope.line_to_byte(end_line) + last.len();
            return Range::new(
                byte_to_position(rope, start, enc),
                byte_to_position(rope, end.min(rope.len_bytes()), enc),
            );
        }
        Range::new(
            Position::new(e.first, 0),
            Position::new(e.last, column_in_line(last, enc)),
        )
    }

    /// Why a marker's lines are not shown, when they are shown elsewhere.
    fn marker_note(&self, file: &FileOutline, a: u32, b: u32) -> Option<&'static str> {
        if !self.is_current(file) {
            return None;
        }
        let inside = |r: Option<(u32, u32)>| r.is_some_and(|(x, y)| x <= a && b <= y);
        if inside(self.exclude_lines) {
            Some("shown above")
        } else if inside(self.sel_lines) {
            Some("(the selection)")
        } else {
            None
        }
    }

    fn render(&self, s: &Source) -> String {
        s.excerpt
            .render_with(&s.file, |a, b| self.marker_note(&s.file, a, b))
    }

    /// Adds a source item (lines of `file`), merged into an earlier item of the same file
    /// whose lines it meets. Lines the prompt already shows are left out. Returns whether
    /// anything was added.
    pub(super) fn push_source(
        &mut self,
        kind: ContextItemKind,
        file: &Arc<FileOutline>,
        excerpt: Excerpt,
        reason: String,
    ) -> bool {
        let mut excerpt = excerpt;
        if self.is_current(file)
            && let Some((a, b)) = self.exclude_lines
        {
            excerpt = excerpt.without(a, b);
        }
        if excerpt.shown() == 0 {
            return false;
        }
        // The lines the selection item shows whole are not repeated.
        if self.is_current(file)
            && kind != ContextItemKind::Selection
            && let Some((a, b)) = self.sel_lines
        {
            excerpt = excerpt.without(a, b);
        }
        if excerpt.shown() == 0 {
            return false;
        }
        // Merge into an earlier item of this file that shows some of the same lines.
        let merge_into = self.entries.iter().position(|e| {
            e.item.kind != ContextItemKind::Selection
                && e.source.as_ref().is_some_and(|s| {
                    Arc::ptr_eq(&s.file.text, &file.text) && s.excerpt.intersects(&excerpt)
                })
        });
        if let Some(i) = merge_into {
            let Some(old) = self.entries.get(i) else {
                return false;
            };
            let Some(old_source) = &old.source else {
                return false;
            };
            let merged = Source {
                file: file.clone(),
                excerpt: old_source.excerpt.union(&excerpt),
            };
            if merged.excerpt == old_source.excerpt {
                return false;
            }
            let text = self.render(&merged);
            let tokens = estimate_tokens(&text);
            let old_tokens = old.item.tokens;
            if self.used - old_tokens + tokens > self.budget() {
                return false;
            }
            let range = self.range_of(file, &merged.excerpt);
            let elided = merged.excerpt.elided();
            if let Some(entry) = self.entries.get_mut(i) {
                entry.item.text = text;
                entry.item.tokens = tokens;
                entry.item.range = range;
                entry.item.elided = elided;
                if !entry.item.reason.contains(&reason) {
                    entry.item.reason.push_str("; ");
                    entry.item.reason.push_str(&reason);
                }
                entry.source = Some(merged);
            }
            self.used = self.used - old_tokens + tokens;
            return true;
        }
        let source = Source {
            file: file.clone(),
            excerpt,
        };
        let text = self.render(&source);
        let tokens = estimate_tokens(&text);
        if tokens > self.left() {
            return false;
        }
        let item = ContextItem {
            kind,
            uri: self.uri_of(&file.path),
            range: self.range_of(file, &source.excerpt),
            tokens,
            text,
            reason,
            elided: source.excerpt.elided(),
            language: file.language.name(),
            display_path: self.display_path(&file.path),
        };
        self.used += tokens;
        self.entries.push(Entry {
            item,
            source: Some(source),
        });
        true
    }

    /// Adds a summary item (diagnostics, outline), cut to its leading lines when it does not
    /// fit.
    fn push_summary(
        &mut self,
        kind: ContextItemKind,
        range: Range,
        lines: Vec<(&str, usize)>,
        reason: String,
    ) {
        let left = self.left();
        let mut reason = reason;
        // Per-line estimates, one more token per line break (an upper bound of the whole's
        // estimate): linear in the lines, and what the item is counted at.
        let more = |n: usize| format!("⋯ {} more lines cut to fit the budget", lines.len() - n);
        let total: usize = lines.iter().map(|(_, t)| t + 1).sum();
        let (n, tokens) = if total <= left {
            (lines.len(), total)
        } else {
            let marker = estimate_tokens(&more(0)) + 1;
            let mut used = 0;
            let mut n = 0;
            for (_, t) in &lines {
                if used + t + 1 + marker > left {
                    break;
                }
                used += t + 1;
                n += 1;
            }
            reason.push_str(" (truncated)");
            (n, used + marker)
        };
        if n == 0 {
            return;
        }
        let mut text = lines
            .get(..n)
            .unwrap_or(&[])
            .iter()
            .map(|(l, _)| *l)
            .collect::<Vec<&str>>()
            .join("\n");
        if n < lines.len() {
            text.push('\n');
            text.push_str(&more(n));
        }
        let display = self.display_path(Path::new(&self.doc.uri));
        self.used += tokens;
        self.entries.push(Entry {
            item: ContextItem {
                kind,
                uri: self.doc.uri.clone(),
                range,
                text,
                tokens,
                reason,
                elided: Vec::new(),
                language: "text",
                display_path: display,
            },
            source: None,
        });
    }

    pub(super) fn finish(self) -> (Vec<ContextItem>, usize) {
        let total = self.entries.iter().map(|e| e.item.tokens).sum();
        (self.entries.into_iter().map(|e| e.item).collect(), total)
    }

    /// The lines of the current file a definition of it spans (for leaving out definitions
    /// the snapshot already shows).
    pub(super) fn shown_lines_of_current(&self) -> Vec<(u32, u32)> {
        self.entries
            .iter()
            .filter_map(|e| e.source.as_ref())
            .filter(|s| self.is_current(&s.file))
            .flat_map(|s| s.excerpt.keep.clone())
            .chain(self.exclude_lines)
            .collect()
    }

    // ---- the items ------------------------------------------------------------------------

    /// The selection (item 1): exactly the selected text, or, over the cap, its whole lines
    /// cut to a window (its first lines).
    pub(super) fn selection(&mut self) {
        let Some((a, z)) = self.selection else {
            return;
        };
        let file = self.file.clone();
        let first = file.line_of(a);
        let last = file.line_of(z.saturating_sub(1).max(a));
        if self
            .exclude_lines
            .is_some_and(|(x, y)| x <= first && last <= y)
        {
            return;
        }
        let text = self.doc.analysis.text.get(a..z).unwrap_or("").to_string();
        let tokens = estimate_tokens(&text);
        let cap = self.enclosing_cap().max(64);
        if tokens <= cap.min(self.left()) {
            let enc = self.req.encoding;
            let rope = &self.doc.rope;
            let item = ContextItem {
                kind: ContextItemKind::Selection,
                uri: self.doc.uri.clone(),
                range: Range::new(
                    byte_to_position(rope, a, enc),
                    byte_to_position(rope, z, enc),
                ),
                text,
                tokens,
                reason: "selected text".into(),
                elided: Vec::new(),
                language: file.language.name(),
                display_path: self.display_path(&file.path),
            };
            self.used += tokens;
            self.entries.push(Entry { item, source: None });
            return;
        }
        // Too long: its whole lines, as many leading ones as fit; the other items then
        // repeat nothing of it.
        let excerpt = skeleton::window(&file, first, last, first, (first, first), cap);
        self.sel_lines = None;
        self.push_source(
            ContextItemKind::Selection,
            &file,
            excerpt,
            "selected text".into(),
        );
    }

    /// The enclosing symbol with its scope chain (item 2): whole when it fits the cap, else
    /// its header and a window around the cursor (the selection's lines are shown once).
    pub(super) fn enclosing_symbol(&mut self) {
        let Some(sym) = self.enclosing().cloned() else {
            return;
        };
        let file = self.file.clone();
        let chain: Vec<String> = self
            .scopes
            .iter()
            .map(|s| format!("{} {}", s.kind.as_str(), s.name))
            .collect();
        let start = file.line_of(sym.range.start_byte);
        let last = file.line_of(
            sym.range
                .end_byte
                .saturating_sub(1)
                .max(sym.range.start_byte),
        );
        let first = match self.rules {
            Some(rules) => {
                let d = super::outline::Def {
                    name: sym.name.clone().into_boxed_str(),
                    kind: sym.kind,
                    container: None,
                    range: sym.range,
                    selection: sym.selection_range,
                    header_end: sym.header_end,
                    depth: 0,
                };
                skeleton::full_span(&file, &d, rules).0
            }
            None => start,
        };
        let header_end = file
            .line_of(sym.header_end.max(sym.range.start_byte))
            .max(start);
        let focus = self
            .sel_lines
            .unwrap_or((self.cursor_line, self.cursor_line));
        let cap = self
            .enclosing_cap()
            .saturating_sub(self.used)
            .max(self.enclosing_cap() / 4);
        let excerpt = skeleton::window(&file, first, last, header_end, focus, cap);
        self.push_source(
            ContextItemKind::EnclosingSymbol,
            &file,
            excerpt,
            format!("enclosing {}: {}", sym.kind.as_str(), chain.join(" > ")),
        );
    }

    /// 3. The imports: every import statement's lines.
    pub(super) fn imports(&mut self) {
        let doc = self.doc;
        let imports = doc
            .analysis
            .imports
            .get_or_init(|| match &doc.analysis.tree {
                Some(tree) => analysis::imports(doc.language, tree, &doc.analysis.text),
                None => Vec::new(),
            });
        let file = self.file.clone();
        let spans: Vec<(u32, u32)> = imports
            .iter()
            .map(|i| {
                (
                    file.line_of(i.range.start_byte),
                    file.line_of(i.range.end_byte.saturating_sub(1).max(i.range.start_byte)),
                )
            })
            .collect();
        let (Some(first), Some(last)) = (
            spans.iter().map(|s| s.0).min(),
            spans.iter().map(|s| s.1).max(),
        ) else {
            return;
        };
        let share = (self.budget() * IMPORTS_PERCENT / 100)
            .max(64)
            .min(self.left());
        let mut keep: Vec<(u32, u32)> = Vec::new();
        for span in &spans {
            let candidate = Excerpt::with(first, last, keep.iter().copied().chain([*span]));
            if candidate.tokens(&file) > share {
                break;
            }
            keep.push(*span);
        }
        if keep.is_empty() {
            return;
        }
        let n = imports.len();
        self.push_source(
            ContextItemKind::Imports,
            &file,
            Excerpt::with(first, last, keep),
            format!("{n} imports of this file"),
        );
    }

    /// 5. Diagnostics for the range.
    pub(super) fn diagnostics(&mut self) {
        let rope = &self.doc.rope;
        let enc = self.req.encoding;
        let (from, to) = match (self.req.range, self.enclosing()) {
            (Some(r), _) => (r.start.min(r.end), r.start.max(r.end)),
            (None, Some(sym)) => (
                byte_to_position(rope, sym.range.start_byte, enc),
                byte_to_position(rope, sym.range.end_byte, enc),
            ),
            (None, None) => (
                Position::new(self.req.position.line, 0),
                Position::new(self.req.position.line, u32::MAX),
            ),
        };
        let diags: Vec<&super::DiagnosticInput> = self
            .req
            .diagnostics
            .iter()
            .filter(|d| d.range.start <= to && d.range.end >= from)
            .collect();
        if diags.is_empty() {
            return;
        }
        let owned: Vec<String> = diags
            .iter()
            .map(|d| {
                let sev = match d.severity {
                    Some(1) => "error",
                    Some(2) => "warning",
                    Some(3) => "info",
                    Some(4) => "hint",
                    _ => "diagnostic",
                };
                let src = d
                    .source
                    .as_deref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default();
                format!("line {}: {sev}{src}: {}", d.range.start.line + 1, d.message)
            })
            .collect();
        let first = diags
            .iter()
            .map(|d| d.range.start)
            .min()
            .unwrap_or_default();
        let last = diags.iter().map(|d| d.range.end).max().unwrap_or_default();
        let n = diags.len();
        self.push_summary(
            ContextItemKind::Diagnostics,
            Range::new(first, last),
            owned
                .iter()
                .map(|l| (l.as_str(), estimate_tokens(l)))
                .collect(),
            format!("{n} diagnostics for this range"),
        );
    }

    /// The outline of the rest of the file (item 6): each symbol's first line, verbatim,
    /// with its line number.
    pub(super) fn outline(&mut self) {
        let doc = self.doc;
        let rope = &doc.rope;
        let file = self.file.clone();
        let all_lines = doc.analysis.outline_lines.get_or_init(|| {
            analysis::outline(&doc.analysis.symbols)
                .into_iter()
                .map(|(_, s)| {
                    let line = rope.byte_to_line(s.range.start_byte.min(rope.len_bytes())) as u32;
                    let text = format!("{}: {}", line + 1, file.line(line).trim_end());
                    let tokens = estimate_tokens(&text) as u32;
                    (s.range, text, tokens)
                })
                .collect()
        });
        let enclosing = self.enclosing().map(|e| e.range);
        let lines: Vec<(&str, usize)> = all_lines
            .iter()
            .filter(|(range, _, _)| enclosing.is_none_or(|e| e != *range))
            .map(|(_, line, tokens)| (line.as_str(), *tokens as usize))
            .collect();
        if lines.is_empty() {
            return;
        }
        let end = byte_to_position(rope, doc.analysis.text.len(), self.req.encoding);
        self.push_summary(
            ContextItemKind::Outline,
            Range::new(Position::new(0, 0), end),
            lines,
            "outline of the rest of the file".into(),
        );
    }

    /// 7. Recently edited places (other than the cursor's neighbourhood).
    pub(super) fn recent_edits(&mut self, recent: &[RecentEdit]) {
        for edit in recent.iter().take(5) {
            let file = if edit.uri == self.doc.uri {
                if edit.line.abs_diff(self.cursor_line) <= 5 {
                    continue;
                }
                self.file.clone()
            } else {
                let Some(other) = self.sources.open_document(&edit.uri) else {
                    continue;
                };
                let path: Arc<Path> = match &other.path {
                    Some(p) => Arc::from(p.as_path()),
                    None => Arc::from(Path::new(&other.uri)),
                };
                let text = other.analysis.text.clone();
                self.cache
                    .outline(&path, other.language, &text, Some(other.version), || {
                        FileOutline::from_symbols(
                            path.clone(),
                            other.language,
                            text.clone(),
                            &other.analysis.symbols,
                        )
                    })
            };
            let count = file.line_count();
            let line = edit.line.min(count.saturating_sub(1));
            let from = line.saturating_sub(2);
            let to = (line + 2).min(count.saturating_sub(1));
            self.push_source(
                ContextItemKind::RecentEdit,
                &file,
                Excerpt::whole(from, to),
                format!("recently edited near line {}", edit.line + 1),
            );
        }
    }

    /// The outline of another file (its current text; cached per version).
    pub(super) fn outline_of(&self, path: &Path) -> Option<Arc<FileOutline>> {
        if Some(path) == self.doc.path.as_deref() {
            return Some(self.file.clone());
        }
        outline_of(self.sources, self.cache, path)
    }
}

/// The outline of a file's current text (open buffer or disk), cached per version.
pub(super) fn outline_of(
    sources: &dyn SourceProvider,
    cache: &ContextCache,
    path: &Path,
) -> Option<Arc<FileOutline>> {
    let language = analysis::Language::from_path(path);
    rules(language)?;
    let ft = sources.file_text(path)?;
    let key: Arc<Path> = Arc::from(path);
    Some(cache.outline(path, language, &ft.text, ft.version, || {
        FileOutline::scan(key.clone(), language, ft.text.clone())
    }))
}
