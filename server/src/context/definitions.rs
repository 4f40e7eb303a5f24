//! The definitions of what the code at the cursor uses, ranked: the symbol at the cursor
//! (or in the selection) first, then names resolved through scopes and imports by their
//! distance from the cursor, then bare-name guesses, rare names before common ones. Names
//! the code binds itself are never looked up, and a name that resolves brings no homonyms.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::analysis::{Language, SymbolKind};
use crate::index::{IndexedSymbol, WorkspaceIndex};

use super::items::{Builder, outline_of};
use super::lang::{CodeFacts, Files, Reference, Rules, Shape};
use super::outline::{ContextCache, FileOutline};
use super::resolve::{Env, Outcome, Resolver, Target, find_def, is_type_kind, proximity};
use super::{ContextItemKind, SourceProvider, skeleton};

/// At most this many definitions are shown (the budget usually cuts sooner).
const MAX_DEFINITIONS: usize = 24;
/// A bare-name guess is made only for names with at most this many definitions.
const MAX_GUESS_HOMONYMS: usize = 6;
/// Guesses shown for the symbol at the cursor when it does not resolve.
const CURSOR_GUESSES: usize = 3;
/// Share of the budget (percent) the definition of the symbol at the cursor may take.
const CURSOR_SHARE_PERCENT: usize = 35;
/// Share of the budget (1/n) any other definition may take.
const OTHER_SHARE_DIVISOR: usize = 8;
/// Below this many tokens left, no more definitions are tried.
const MIN_LEFT: usize = 24;

/// What resolution reads, over the snapshot's sources and caches.
struct SessionEnv<'b> {
    sources: &'b dyn SourceProvider,
    cache: &'b ContextCache,
    index: &'b WorkspaceIndex,
    current: Arc<FileOutline>,
}

impl Env for SessionEnv<'_> {
    fn outline(&self, path: &Path) -> Option<Arc<FileOutline>> {
        if *self.current.path == *path {
            return Some(self.current.clone());
        }
        outline_of(self.sources, self.cache, path)
    }

    fn module_files(
        &self,
        rules: &dyn Rules,
        language: Language,
        module: &str,
        from: &Path,
    ) -> Vec<PathBuf> {
        self.cache.module_files(language, from, module, || {
            rules.module_files(module, from, self)
        })
    }

    fn files(&self) -> &dyn Files {
        self
    }

    fn index(&self) -> &WorkspaceIndex {
        self.index
    }
}

impl Files for SessionEnv<'_> {
    fn is_file(&self, path: &Path) -> bool {
        self.cache.is_file(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.cache.is_dir(path)
    }
    fn list_dir(&self, path: &Path) -> Vec<PathBuf> {
        self.cache.list_dir(path)
    }
    fn read_small(&self, path: &Path) -> Option<String> {
        self.cache.read_small(path)
    }
    fn roots(&self) -> Vec<PathBuf> {
        self.sources.roots()
    }
    fn files_ending_with(&self, suffix: &Path) -> Vec<PathBuf> {
        if suffix
            .to_str()
            .is_some_and(|s| s == "Cargo.toml" || s == "package.json")
        {
            return self
                .cache
                .manifests(&self.sources.roots())
                .into_iter()
                .filter(|p| p.ends_with(suffix))
                .collect();
        }
        self.index.paths_ending_with(suffix)
    }
}

/// One name the code uses (its first use), with how near the cursor it is used.
struct Use {
    r: Reference,
    distance: u32,
    at_cursor: bool,
}

/// A definition to show, with why.
struct Candidate {
    tier: u8,
    key: (u32, u32, usize),
    file: Arc<FileOutline>,
    index: u32,
    how: String,
    at_cursor: bool,
}

/// The code whose names are looked up: the enclosing symbol, else the selection, else the
/// top-level statement at the cursor.
fn used_span(b: &Builder<'_>) -> (usize, usize) {
    if let Some(sym) = b.enclosing() {
        return (sym.range.start_byte, sym.range.end_byte);
    }
    if let Some(sel) = b.selection {
        return sel;
    }
    let text_len = b.doc.analysis.text.len();
    if let Some(tree) = &b.doc.analysis.tree {
        for (root, _, _) in tree.pieces_overlapping(b.cursor_byte, b.cursor_byte) {
            let mut cursor = root.walk();
            if cursor.goto_first_child_for_byte(b.cursor_byte).is_some() {
                let n = cursor.node();
                if n.start_byte() <= b.cursor_byte {
                    return (n.start_byte(), n.end_byte());
                }
            }
        }
    }
    let rope = &b.doc.rope;
    let line = rope.byte_to_line(b.cursor_byte.min(rope.len_bytes()));
    let start = rope.line_to_byte(line);
    let end = rope
        .line_to_byte((line + 1).min(rope.len_lines()))
        .min(text_len);
    (start, end)
}

/// Adds the definition items.
pub(super) fn add(b: &mut Builder<'_>) {
    let Some(rules) = b.rules else { return };
    let doc = b.doc;
    let Some(tree) = &doc.analysis.tree else {
        return;
    };
    let text: &str = &doc.analysis.text;
    let (start, end) = used_span(b);
    let mut facts = CodeFacts::default();
    for (root, ps, pe) in tree.pieces_overlapping(start, end) {
        rules.facts(root, text, start.max(ps), end.min(pe), &mut facts);
    }
    let env = SessionEnv {
        sources: b.sources,
        cache: b.cache,
        index: b.index,
        current: b.file.clone(),
    };
    let mut resolver = Resolver::new(&env, b.file.clone(), Some(tree), &facts);
    if let Some(t) = b.scopes.iter().rev().find(|s| is_type_kind(s.kind)) {
        resolver.set_this_type(&t.name, t.kind, b.cursor_byte);
    }

    // The distinct uses, in order of first appearance.
    let rope = &doc.rope;
    let line_of = |byte: usize| rope.byte_to_line(byte.min(rope.len_bytes())) as u32;
    let mut uses: Vec<Use> = Vec::new();
    let mut by_key: HashMap<(String, Shape), usize> = HashMap::new();
    for r in &facts.refs {
        let at_cursor = match b.selection {
            Some((a, z)) => r.start >= a && r.end <= z,
            None => r.start <= b.cursor_byte && b.cursor_byte <= r.end,
        };
        let distance = if at_cursor {
            0
        } else {
            line_of(r.start).abs_diff(b.cursor_line)
        };
        let key = (r.name.clone(), r.shape.clone());
        match by_key.get(&key).and_then(|&i| uses.get_mut(i)) {
            Some(u) => {
                u.distance = u.distance.min(distance);
                u.at_cursor |= at_cursor;
                u.r.call |= r.call;
            }
            None => {
                by_key.insert(key, uses.len());
                uses.push(Use {
                    r: r.clone(),
                    distance,
                    at_cursor,
                });
            }
        }
    }

    // Resolve each; remember the types the code uses (for ranking member guesses).
    let mut types_used: HashSet<String> = resolver
        .this_types()
        .iter()
        .filter_map(|(f, i)| f.def(*i).map(|d| d.name.to_string()))
        .collect();
    for var in facts.var_calls.keys() {
        for (f, i) in resolver.types_of_chain(std::slice::from_ref(var)) {
            if let Some(d) = f.def(i) {
                types_used.insert(d.name.to_string());
            }
        }
    }
    for chain in facts.var_types.values() {
        for (f, i) in resolver.types_of_chain(chain) {
            if let Some(d) = f.def(i) {
                types_used.insert(d.name.to_string());
            }
        }
    }
    let outcomes: Vec<Outcome> = uses
        .iter()
        .map(|u| match resolver.resolve(&u.r) {
            Outcome::Found(targets) => Outcome::Found(fitting(targets, u.r.call)),
            other => other,
        })
        .collect();
    for o in &outcomes {
        if let Outcome::Found(targets) = o {
            for t in targets {
                if let Target::Def(f, i) = t
                    && let Some(d) = f.def(*i)
                    && is_type_kind(d.kind)
                {
                    types_used.insert(d.name.to_string());
                }
            }
        }
    }
    let resolved_names: HashSet<&str> = uses
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Outcome::Found(_)))
        .map(|(u, _)| u.r.name.as_str())
        .collect();

    let this_path = doc.path.clone();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (u, outcome) in uses.iter().zip(&outcomes) {
        let key = (u.distance, 0, u.r.start);
        match outcome {
            Outcome::Local => {}
            Outcome::Found(targets) => {
                for t in targets {
                    if let Target::Def(f, i) = t {
                        let how = if b.is_current(f) {
                            "same file"
                        } else {
                            "resolved"
                        };
                        candidates.push(Candidate {
                            tier: if u.at_cursor { 0 } else { 1 },
                            key,
                            file: f.clone(),
                            index: *i,
                            how: how.into(),
                            at_cursor: u.at_cursor,
                        });
                    }
                }
            }
            Outcome::Unresolved => {
                // A name resolved elsewhere in the code brings no homonyms.
                if resolved_names.contains(u.r.name.as_str()) && !u.at_cursor {
                    continue;
                }
                for (tier, guess_key, path, sym, how) in
                    guesses(b, rules, u, &types_used, this_path.as_deref())
                {
                    let Some(f) = b.outline_of(&path) else {
                        continue;
                    };
                    let Some(i) = find_def(&f, &sym.name, sym.selection_range.start_byte) else {
                        continue;
                    };
                    candidates.push(Candidate {
                        tier,
                        key: (guess_key.0, guess_key.1, u.r.start),
                        file: f,
                        index: i,
                        how,
                        at_cursor: u.at_cursor,
                    });
                }
            }
        }
    }
    candidates.sort_by(|a, b| {
        a.tier
            .cmp(&b.tier)
            .then(a.key.cmp(&b.key))
            .then_with(|| a.file.path.cmp(&b.file.path))
            .then(a.index.cmp(&b.index))
    });

    let wanted: HashSet<&str> = uses.iter().map(|u| u.r.name.as_str()).collect();
    let mut shown: HashSet<(PathBuf, u32)> = HashSet::new();
    let mut taken = 0;
    for c in candidates {
        if taken >= MAX_DEFINITIONS || b.left() < MIN_LEFT {
            break;
        }
        if !shown.insert((c.file.path.to_path_buf(), c.index)) {
            continue;
        }
        let Some(d) = c.file.def(c.index) else {
            continue;
        };
        if b.is_current(&c.file) {
            // Already in the snapshot: the code itself, or what encloses it.
            let (ds, de) = (d.range.start_byte, d.range.end_byte);
            if (ds <= b.cursor_byte && b.cursor_byte <= de) || (ds >= start && de <= end) {
                continue;
            }
            let (dl0, dl1) = (
                c.file.line_of(ds),
                c.file.line_of(de.saturating_sub(1).max(ds)),
            );
            if b.shown_lines_of_current()
                .iter()
                .any(|&(x, y)| x <= dl0 && dl1 <= y)
            {
                continue;
            }
        }
        let Some(def_rules) = super::lang::rules(c.file.language) else {
            continue;
        };
        let share_divisor_share = b.budget() / OTHER_SHARE_DIVISOR;
        let share = if c.at_cursor {
            b.budget() * CURSOR_SHARE_PERCENT / 100
        } else {
            share_divisor_share
        }
        .min(b.left());
        let Some((excerpt, is_skeleton)) =
            skeleton::shape(&c.file, c.index, share, &wanted, def_rules)
        else {
            continue;
        };
        let what = if is_skeleton {
            "skeleton of long definition"
        } else {
            "definition"
        };
        let reason = format!(
            "{what} of {} {} used here ({})",
            d.kind.as_str(),
            d.name,
            c.how
        );
        if b.push_source(ContextItemKind::Definition, &c.file, excerpt, reason) {
            taken += 1;
        }
    }
}

/// Whether a definition of this kind can be what a use means: a call means something
/// callable (or a type: constructors), anything else a value or a type.
fn fits(kind: SymbolKind, call: bool) -> bool {
    let callable = matches!(
        kind,
        SymbolKind::Function | SymbolKind::Method | SymbolKind::Constructor
    );
    if call {
        callable || is_type_kind(kind)
    } else {
        !callable
    }
}

/// The targets that fit how the name is used (all of them when none does: a method passed
/// as a value, a field holding a function).
fn fitting(targets: Vec<Target>, call: bool) -> Vec<Target> {
    let fit = |t: &Target| match t {
        Target::Def(f, i) => f.def(*i).is_some_and(|d| fits(d.kind, call)),
        Target::Module(_) => true,
    };
    if targets.iter().any(fit) {
        targets.into_iter().filter(|t| fit(t)).collect()
    } else {
        targets
    }
}

/// Guesses by bare name for a use that did not resolve: `(tier, key, path, symbol, how)`.
///
/// A bare name that does not resolve is, in most languages, a builtin or from a library
/// (imports and scopes are complete): it is guessed only for the symbol at the cursor, in
/// languages whose names reach a file in ways resolution does not follow (C headers), or
/// from ambient declarations (`.d.ts`). A member guess needs a type the code uses, or a
/// name only one definition has.
#[allow(clippy::type_complexity)]
fn guesses(
    b: &Builder<'_>,
    rules: &dyn Rules,
    u: &Use,
    types_used: &HashSet<String>,
    this_path: Option<&Path>,
) -> Vec<(u8, (u32, u32), Arc<Path>, IndexedSymbol, String)> {
    let name = u.r.name.as_str();
    let homonyms = b.index.count(name);
    if homonyms == 0 {
        return Vec::new();
    }
    let this_dir = this_path.and_then(Path::parent);
    let member = matches!(u.r.shape, Shape::Member(_) | Shape::Qualified(_));
    let call = u.r.call;
    let ambient = |path: &Path| path.to_string_lossy().ends_with(".d.ts");
    let eligible = |path: &Path, sym: &IndexedSymbol| {
        // A field called is one holding a function.
        if !(fits(sym.kind, call) || (call && sym.kind == SymbolKind::Field)) {
            return false;
        }
        if member {
            !matches!(sym.kind, SymbolKind::Module | SymbolKind::Impl)
        } else {
            super::is_definition_kind(sym.kind)
                && !matches!(
                    sym.kind,
                    SymbolKind::Method | SymbolKind::Constructor | SymbolKind::Impl
                )
                && (sym.container.is_none() || is_type_kind(sym.kind))
                && (u.at_cursor || rules.guesses_bare_names() || ambient(path))
        }
    };
    let rank = |path: &Path, sym: &IndexedSymbol| -> Option<u8> {
        if !eligible(path, sym) {
            return None;
        }
        if this_path == Some(path) {
            return None; // the file's own names resolve; an unresolved one is not here
        }
        let by_type = member
            && sym
                .container
                .as_deref()
                .is_some_and(|c| types_used.contains(c));
        Some(if by_type {
            0
        } else if this_dir.is_some() && path.parent() == this_dir {
            1
        } else {
            2 + (proximity(this_dir.unwrap_or(Path::new("/")), path).min(200) as u8)
        })
    };
    let limit = if u.at_cursor { CURSOR_GUESSES } else { 2 };
    let found = b.index.best_definitions(name, limit, rank);
    let bucket = match homonyms {
        1 => 0,
        2..=3 => 1,
        _ => 2,
    };
    let mut out = Vec::new();
    for (rank, path, sym) in found {
        let by_type = member && rank == 0;
        let rare = homonyms <= if member { 1 } else { MAX_GUESS_HOMONYMS };
        if !u.at_cursor && !by_type && !rare {
            continue;
        }
        let (tier, how) = if u.at_cursor {
            (0, format!("guessed by name, {homonyms} definitions"))
        } else if by_type {
            (1, "member of a type the code uses".to_string())
        } else {
            (2, format!("guessed by name, {homonyms} definitions"))
        };
        let key = if tier == 2 {
            (bucket, u.distance)
        } else {
            (u.distance, 0)
        };
        out.push((tier, key, path, sym, how));
    }
    out
}
