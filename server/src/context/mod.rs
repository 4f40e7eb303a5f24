//! Context capture: the ranked, token-budgeted, provenance-tagged snapshot of what a model
//! needs to know about a cursor or selection, and its deterministic rendering as prompt text.

mod render;
mod tokens;

pub use render::render;
pub use tokens::estimate_tokens;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::{self, Span, Symbol, SymbolKind};
use crate::documents::{
    DocSnapshot, Position, PositionEncoding, Range, RecentEdit, byte_to_position, column_in_line,
    position_to_char,
};
use crate::index::{IndexedSymbol, WorkspaceIndex};

/// Default budget when the caller gives none.
pub const DEFAULT_BUDGET_TOKENS: usize = 4096;
/// Definitions longer than this many lines are given as their signature only.
const SHORT_DEFINITION_LINES: u32 = 30;
/// At most this many definitions are considered (the budget usually cuts sooner).
const MAX_DEFINITIONS: usize = 24;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContextItemKind {
    Selection,
    EnclosingSymbol,
    Imports,
    Definition,
    Diagnostics,
    Outline,
    RecentEdit,
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
    /// Language name for rendering fences (not part of the wire format).
    #[serde(skip)]
    pub language: &'static str,
    /// Path relative to the workspace root, for rendering.
    #[serde(skip)]
    pub display_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextSnapshot {
    pub items: Vec<ContextItem>,
    pub total_tokens: usize,
    pub budget_tokens: usize,
    pub rendered: String,
}

/// What to capture.
#[derive(Debug, Clone)]
pub struct ContextRequest {
    pub position: Position,
    pub range: Option<Range>,
    pub budget_tokens: usize,
    pub diagnostics: Vec<DiagnosticInput>,
    pub encoding: PositionEncoding,
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

/// Where the builder gets text of other files: open documents first, then disk.
pub trait SourceProvider {
    /// The text of `path`, if it can be read.
    fn text_of(&self, path: &Path) -> Option<Arc<str>>;
    /// The URI of `path` as the client knows it.
    fn uri_of(&self, path: &Path) -> String;
    /// Path relative to the workspace for display.
    fn display_path(&self, path: &Path) -> String;
    /// A snapshot of an open document (for recent edits in other files).
    fn open_document(&self, uri: &str) -> Option<DocSnapshot>;
}

/// Builds the snapshot. Deterministic: the same inputs give the same items, cut and rendering.
pub fn build(
    doc: &DocSnapshot,
    req: &ContextRequest,
    index: &WorkspaceIndex,
    recent: &[RecentEdit],
    sources: &dyn SourceProvider,
) -> Result<ContextSnapshot, ContextError> {
    let text: &str = &doc.analysis.text;
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
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            Some((rope.char_to_byte(a), rope.char_to_byte(b)))
        }
        None => None,
    };
    let language = doc.language.name();
    let this_path = doc.path.clone();
    let display = this_path
        .as_deref()
        .map(|p| sources.display_path(p))
        .unwrap_or_else(|| doc.uri.clone());
    let span_range = |start: usize, end: usize| Range {
        start: crate::documents::byte_to_position(rope, start, enc),
        end: crate::documents::byte_to_position(rope, end, enc),
    };
    let mut candidates: Vec<ContextItem> = Vec::new();
    let item = |kind,
                range,
                text: String,
                reason: String,
                language: &'static str,
                uri: &str,
                path: &str| ContextItem {
        kind,
        uri: uri.to_string(),
        range,
        tokens: estimate_tokens(&text),
        text,
        reason,
        language,
        display_path: path.to_string(),
    };

    // 1. The selection.
    if let Some((a, b)) = selection.filter(|(a, b)| b > a) {
        let sel_text = text.get(a..b).unwrap_or_default().to_string();
        candidates.push(item(
            ContextItemKind::Selection,
            span_range(a, b),
            sel_text,
            "selected text".into(),
            language,
            &doc.uri,
            &display,
        ));
    }

    // 2. The enclosing symbol with its scope chain.
    let scopes: Vec<Symbol> = match &doc.analysis.tree {
        Some(tree) => analysis::enclosing_scopes(
            doc.language,
            tree,
            text,
            selection.map_or(cursor_byte, |s| s.0),
        ),
        None => Vec::new(),
    };
    let enclosing = scopes.last().cloned();
    if let Some(sym) = &enclosing {
        let chain: Vec<String> = scopes
            .iter()
            .map(|s| format!("{} {}", s.kind.as_str(), s.name))
            .collect();
        let body = text
            .get(sym.range.start_byte..sym.range.end_byte)
            .unwrap_or_default()
            .to_string();
        candidates.push(item(
            ContextItemKind::EnclosingSymbol,
            span_range(sym.range.start_byte, sym.range.end_byte),
            body,
            format!("enclosing {}: {}", sym.kind.as_str(), chain.join(" > ")),
            language,
            &doc.uri,
            &display,
        ));
    }

    // 3. Imports.
    let imports = doc
        .analysis
        .imports
        .get_or_init(|| match &doc.analysis.tree {
            Some(tree) => analysis::imports(doc.language, tree, text),
            None => Vec::new(),
        });
    if let (Some(first), Some(last)) = (imports.first(), imports.last()) {
        let joined: Vec<&str> = imports.iter().map(|i| i.text.as_str()).collect();
        candidates.push(item(
            ContextItemKind::Imports,
            span_range(first.range.start_byte, last.range.end_byte),
            joined.join("\n"),
            format!("{} imports of this file", imports.len()),
            language,
            &doc.uri,
            &display,
        ));
    }

    // 4. Definitions of identifiers used here and defined elsewhere.
    let used_span = match (&enclosing, selection) {
        (Some(sym), _) => Some((sym.range.start_byte, sym.range.end_byte)),
        (None, Some((a, b))) if b > a => Some((a, b)),
        _ => {
            let line = rope.char_to_line(cursor_char);
            Some((
                rope.line_to_byte(line),
                rope.line_to_byte((line + 1).min(rope.len_lines())),
            ))
        }
    };
    if let (Some(tree), Some((ua, ub))) = (&doc.analysis.tree, used_span) {
        let idents = analysis::identifiers_in(tree, text, ua, ub);
        let import_segments: HashSet<&str> = imports
            .iter()
            .filter_map(|i| i.module.as_deref())
            .flat_map(|m| m.split(|c: char| !(c.is_alphanumeric() || c == '_')))
            .filter(|s| !s.is_empty())
            .collect();
        let this_dir = this_path.as_deref().and_then(Path::parent);
        let mut defs: Vec<(u8, usize, Arc<Path>, IndexedSymbol)> = Vec::new();
        for (order, name) in idents.iter().enumerate() {
            if enclosing.as_ref().is_some_and(|e| &e.name == name) {
                continue;
            }
            let rank = |path: &Path, sym: &IndexedSymbol| -> Option<u8> {
                let same_file = this_path.as_deref() == Some(path);
                if same_file
                    && used_span
                        .is_some_and(|(a, b)| sym.range.start_byte >= a && sym.range.end_byte <= b)
                {
                    return None; // defined inside the code we already include
                }
                let in_imports = |s: Option<&std::ffi::OsStr>| {
                    s.and_then(|s| s.to_str())
                        .is_some_and(|s| import_segments.contains(s))
                };
                Some(if same_file {
                    0
                } else if this_dir.is_some() && path.parent() == this_dir {
                    1
                } else if in_imports(path.file_stem())
                    || in_imports(path.parent().and_then(|p| p.file_name()))
                {
                    2
                } else {
                    3
                })
            };
            for (tier, path, sym) in index.best_definitions(name, 2, rank) {
                defs.push((tier, order, path, sym));
            }
        }
        defs.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then_with(|| a.2.cmp(&b.2))
                .then(a.3.range.start_byte.cmp(&b.3.range.start_byte))
        });
        // Keep at most two definitions per name (overloads, same name in two modules).
        let mut per_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut taken = 0;
        for (tier, _, path, sym) in &defs {
            let n = per_name.entry(&sym.name).or_insert(0);
            if *n >= 2 || taken >= MAX_DEFINITIONS {
                continue;
            }
            let Some(def) = definition_item(path, sym, *tier, doc, sources, enc) else {
                continue;
            };
            *n += 1;
            taken += 1;
            candidates.push(def);
        }
    }

    // 5. Diagnostics for the range.
    let (diag_from, diag_to) = match (req.range, &enclosing) {
        (Some(r), _) => (r.start.min(r.end), r.start.max(r.end)),
        (None, Some(sym)) => (
            byte_to_position(rope, sym.range.start_byte, enc),
            byte_to_position(rope, sym.range.end_byte, enc),
        ),
        (None, None) => (
            Position::new(req.position.line, 0),
            Position::new(req.position.line, u32::MAX),
        ),
    };
    let diags: Vec<&DiagnosticInput> = req
        .diagnostics
        .iter()
        .filter(|d| d.range.start <= diag_to && d.range.end >= diag_from)
        .collect();
    if !diags.is_empty() {
        let lines: Vec<String> = diags
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
        candidates.push(item(
            ContextItemKind::Diagnostics,
            Range {
                start: first,
                end: last,
            },
            lines.join("\n"),
            format!("{} diagnostics for this range", diags.len()),
            "text",
            &doc.uri,
            &display,
        ));
    }

    // 6. Outline of the rest of the file.
    let all_lines = doc.analysis.outline_lines.get_or_init(|| {
        analysis::outline(&doc.analysis.symbols)
            .into_iter()
            .map(|(depth, s)| {
                (
                    s.range,
                    format!(
                        "{}{}: {}",
                        "  ".repeat(depth),
                        rope.byte_to_line(s.range.start_byte.min(rope.len_bytes())) + 1,
                        s.signature
                    ),
                )
            })
            .collect()
    });
    let outline_lines: Vec<&str> = all_lines
        .iter()
        .filter(|(range, _)| enclosing.as_ref().is_none_or(|e| e.range != *range))
        .map(|(_, line)| line.as_str())
        .collect();
    if !outline_lines.is_empty() {
        candidates.push(item(
            ContextItemKind::Outline,
            span_range(0, text.len()),
            outline_lines.join("\n"),
            "outline of the rest of the file".into(),
            "text",
            &doc.uri,
            &display,
        ));
    }

    // 7. Recently edited locations (other than the cursor's neighbourhood).
    let cursor_line = rope.char_to_line(cursor_char) as u32;
    for edit in recent.iter().take(5) {
        if edit.uri == doc.uri && edit.line.abs_diff(cursor_line) <= 5 {
            continue;
        }
        let other;
        let (erope, elang, edisplay) = if edit.uri == doc.uri {
            (rope, language, display.clone())
        } else {
            match sources.open_document(&edit.uri) {
                Some(s) => {
                    other = s;
                    let d = other
                        .path
                        .as_deref()
                        .map(|p| sources.display_path(p))
                        .unwrap_or_else(|| edit.uri.clone());
                    (&other.rope, other.language.name(), d)
                }
                None => continue,
            }
        };
        let line = (edit.line as usize).min(erope.len_lines().saturating_sub(1));
        let from = line.saturating_sub(2);
        let to = (line + 3).min(erope.len_lines());
        let snippet = erope
            .slice(erope.line_to_char(from)..erope.line_to_char(to))
            .to_string();
        candidates.push(item(
            ContextItemKind::RecentEdit,
            Range {
                start: Position::new(from as u32, 0),
                end: Position::new(to as u32, 0),
            },
            snippet,
            format!("recently edited near line {}", edit.line + 1),
            elang,
            &edit.uri,
            &edisplay,
        ));
    }

    let (items, total) = cut_to_budget(candidates, req.budget_tokens);
    let rendered = render(&items);
    Ok(ContextSnapshot {
        items,
        total_tokens: total,
        budget_tokens: req.budget_tokens,
        rendered,
    })
}

/// A definition from the index as a context item: whole body when short, signature when long.
fn definition_item(
    path: &Arc<Path>,
    sym: &IndexedSymbol,
    tier: u8,
    doc: &DocSnapshot,
    sources: &dyn SourceProvider,
    enc: PositionEncoding,
) -> Option<ContextItem> {
    let same_file = doc.path.as_deref() == Some(path.as_ref());
    let file_text: Arc<str> = if same_file {
        doc.analysis.text.clone()
    } else {
        sources.text_of(path)?
    };
    let r: Span = sym.range;
    // The index may be older than the file: check the name is still where it was.
    let name_here = file_text.get(sym.selection_range.start_byte..sym.selection_range.end_byte);
    if name_here != Some(&*sym.name) {
        return None;
    }
    let whole = r.line_count() <= SHORT_DEFINITION_LINES;
    let text = if whole {
        file_text.get(r.start_byte..r.end_byte)?.to_string()
    } else {
        sym.signature(&file_text)
    };
    let col = |byte: usize, col: u32| {
        let line_start = byte.saturating_sub(col as usize);
        file_text
            .get(line_start..byte)
            .map(|p| column_in_line(p, enc))
            .unwrap_or(col)
    };
    let range = if same_file {
        Range {
            start: byte_to_position(&doc.rope, r.start_byte, enc),
            end: byte_to_position(&doc.rope, r.end_byte, enc),
        }
    } else {
        Range {
            start: Position::new(r.start.line, col(r.start_byte, r.start.col)),
            end: Position::new(r.end.line, col(r.end_byte, r.end.col)),
        }
    };
    let where_ = match tier {
        0 => "same file",
        1 => "same directory",
        2 => "imported module",
        _ => "workspace",
    };
    let how = if whole {
        "definition"
    } else {
        "signature of long definition"
    };
    let language = crate::analysis::Language::from_path(path).name();
    Some(ContextItem {
        kind: ContextItemKind::Definition,
        uri: sources.uri_of(path),
        range,
        tokens: estimate_tokens(&text),
        text,
        reason: format!(
            "{how} of {} {} used here ({where_})",
            sym.kind.as_str(),
            sym.name
        ),
        language,
        display_path: sources.display_path(path),
    })
}

/// Keeps items in priority order while they fit; an item that does not fit is cut to its
/// leading lines when it can usefully be (selection, enclosing symbol, outline, imports),
/// otherwise skipped so smaller later items still get their chance. Deterministic.
fn cut_to_budget(candidates: Vec<ContextItem>, budget: usize) -> (Vec<ContextItem>, usize) {
    let mut out = Vec::with_capacity(candidates.len());
    let mut used = 0usize;
    for mut item in candidates {
        let left = budget.saturating_sub(used);
        if item.tokens <= left {
            used += item.tokens;
            out.push(item);
            continue;
        }
        let truncatable = matches!(
            item.kind,
            ContextItemKind::Selection
                | ContextItemKind::EnclosingSymbol
                | ContextItemKind::Outline
                | ContextItemKind::Imports
        );
        if !truncatable || left < 16 {
            continue;
        }
        let lines: Vec<&str> = item.text.lines().collect();
        let marker = |n: usize| format!("… ({} more lines cut to fit the budget)", lines.len() - n);
        // Leave room for the "… N more lines" marker (its longest form).
        let marker_tokens = estimate_tokens(&marker(0)) + 1;
        let mut kept_tokens = 0usize;
        let mut n = 0usize;
        for line in &lines {
            let cost = estimate_tokens(line) + 1;
            if kept_tokens + cost + marker_tokens > left {
                break;
            }
            kept_tokens += cost;
            n += 1;
        }
        // The estimate of the joined text can differ from the sum of its lines: drop lines
        // until it fits.
        let kept = loop {
            if n == 0 {
                break None;
            }
            let mut kept = lines.get(..n).unwrap_or_default().join("\n");
            kept.push('\n');
            kept.push_str(&marker(n));
            if estimate_tokens(&kept) <= left {
                break Some(kept);
            }
            n -= 1;
        };
        let Some(kept) = kept else {
            continue;
        };
        item.tokens = estimate_tokens(&kept);
        item.text = kept;
        item.reason.push_str(" (truncated)");
        // The selection and the enclosing symbol are file lines: the range shrinks to those kept.
        if matches!(
            item.kind,
            ContextItemKind::Selection | ContextItemKind::EnclosingSymbol
        ) {
            item.range.end = Position::new(item.range.start.line + n as u32, 0);
        }
        used += item.tokens;
        out.push(item);
    }
    (out, used)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn enclosing(lines: u32) -> ContextItem {
        let text: String = (0..lines)
            .map(|i| format!("    let v{i} = {i};\n"))
            .collect();
        ContextItem {
            kind: ContextItemKind::EnclosingSymbol,
            uri: "file:///a.rs".into(),
            range: Range::new(Position::new(10, 0), Position::new(10 + lines - 1, 17)),
            tokens: estimate_tokens(&text),
            text,
            reason: "enclosing function: function f".into(),
            language: "rust",
            display_path: "a.rs".into(),
        }
    }

    #[test]
    fn a_truncated_item_names_only_the_lines_it_keeps() {
        let full = enclosing(40);
        let budget = full.tokens / 2;
        let (items, used) = cut_to_budget(vec![full], budget);
        assert!(used <= budget);
        let item = items.first().expect("kept, truncated");
        assert!(item.reason.ends_with("(truncated)"));
        let kept = item
            .text
            .lines()
            .filter(|l| l.starts_with("    let"))
            .count() as u32;
        assert!(kept > 0 && kept < 40);
        // Lines 11.. (1-based), exactly as many as kept.
        let rendered = render(&items);
        let want = format!("a.rs:11-{} ", 10 + kept);
        assert!(rendered.contains(&want), "{want} in {rendered}");
    }

    #[test]
    fn a_range_ending_at_column_zero_does_not_name_that_line() {
        let mut item = enclosing(3);
        item.range = Range::new(Position::new(2, 0), Position::new(7, 0));
        assert!(render(&[item]).contains("a.rs:3-7 "));
    }
}
