//! A file's syntax: one tree for the whole file plus, for large files, one tree per run of
//! top-level items (a segment), so a keystroke reparses a few kilobytes instead of the file.
//!
//! tree-sitter reuses unchanged subtrees, but an incremental parse still re-reduces every
//! top-level item after the edit into the file's root: on a 10,000-line file one keystroke
//! costs milliseconds. Segments bound that work. A large file that parses without errors is
//! split at top-level item boundaries; each segment is parsed on its own with tree-sitter's
//! included ranges (node positions stay absolute), reusing the subtrees of the whole tree, so
//! splitting costs about one incremental parse per segment.
//!
//! Every edit goes to the whole tree and to the segments it touches or shifts; parsing is
//! lazy ([`Syntax::reparse`]). When every segment parses without errors, readers see the
//! segments' roots, which hold exactly the file's top-level items. When some segment has an
//! error (an unclosed brace may belong to a later segment, a block comment may span two), the
//! segments cannot be trusted to agree with a parse of the whole file, so the whole tree is
//! reparsed incrementally and readers see it instead; once the file is clean again the
//! segments serve again. Readers therefore always see what a parse of the whole file would
//! give, and pay for the whole file only while it has a syntax error.

use std::sync::{Arc, OnceLock};

use tree_sitter::{InputEdit, Node, Parser, Point, Range, Tree};

use super::{Symbol, TextPoint};

/// Files smaller than this keep a single tree (its incremental parse is already cheap).
pub const SPLIT_MIN_BYTES: usize = 24 * 1024;
/// The smallest segment size aimed for when splitting.
const SEGMENT_MIN_BYTES: usize = 8 * 1024;
/// At most about this many segments per file (larger files get larger segments).
const MAX_SEGMENTS: usize = 64;
/// tree-sitter's "to the end of the input" range bound.
const END: usize = u32::MAX as usize;

/// One run of top-level items: the bytes from `start` to the next segment's start.
#[derive(Clone)]
struct Segment {
    start: usize,
    tree: Tree,
    /// Edited since it was parsed.
    dirty: bool,
    /// The segment's symbols, computed once and moved along when edits before the segment
    /// shift it (its own text is unchanged until it is edited, which empties this).
    symbols: OnceLock<Arc<CachedSymbols>>,
    /// Splitting it failed (one huge item, or pieces that do not parse on their own): not
    /// tried again on every keystroke.
    unsplittable: bool,
}

impl Segment {
    fn new(start: usize, tree: Tree) -> Segment {
        Segment {
            start,
            tree,
            dirty: false,
            symbols: OnceLock::new(),
            unsplittable: false,
        }
    }
}

/// Symbols computed when the segment's first token was at `byte` / `point`.
struct CachedSymbols {
    byte: usize,
    point: Point,
    symbols: Vec<Symbol>,
}

/// A rigid move of text: bytes by `bytes`, rows by `rows`, and columns by `cols` on the row
/// `row` where the moved text starts (the rest of that row moves with it).
pub(crate) struct Shift {
    bytes: i64,
    rows: i64,
    row: u32,
    cols: i64,
}

impl Shift {
    fn between(from: (usize, Point), to: (usize, Point)) -> Shift {
        let signed = |x: usize| i64::try_from(x).unwrap_or(i64::MAX);
        Shift {
            bytes: signed(to.0) - signed(from.0),
            rows: signed(to.1.row) - signed(from.1.row),
            row: u32::try_from(from.1.row).unwrap_or(u32::MAX),
            cols: signed(to.1.column) - signed(from.1.column),
        }
    }

    pub(crate) fn byte(&self, b: usize) -> usize {
        usize::try_from(i64::try_from(b).unwrap_or(i64::MAX) + self.bytes).unwrap_or(0)
    }

    pub(crate) fn point(&self, p: TextPoint) -> TextPoint {
        let add = |x: u32, by: i64| u32::try_from(i64::from(x) + by).unwrap_or(0);
        TextPoint {
            line: add(p.line, self.rows),
            col: if p.line == self.row {
                add(p.col, self.cols)
            } else {
                p.col
            },
        }
    }
}

/// The syntax of one file (see the module docs). Cheap to clone (trees are shared).
#[derive(Clone)]
pub struct Syntax {
    whole: Tree,
    /// The whole tree was edited since it was parsed.
    whole_dirty: bool,
    /// Empty, or segments covering the file in order (the first starts at 0).
    segments: Vec<Segment>,
    /// Readers see the segments (all clean and error-free) rather than the whole tree.
    segmented_view: bool,
    /// The file length at which splitting last failed (the pieces did not parse cleanly on
    /// their own): not tried again until the length moves a segment's worth away.
    split_failed_at: Option<usize>,
}

impl std::fmt::Debug for Syntax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syntax")
            .field("segments", &self.segments.len())
            .field("segmented_view", &self.segmented_view)
            .field("whole_dirty", &self.whole_dirty)
            .finish()
    }
}

impl Syntax {
    /// A syntax made of one already parsed tree (never split).
    pub fn from_tree(tree: Tree) -> Syntax {
        Syntax {
            whole: tree,
            whole_dirty: false,
            segments: Vec::new(),
            segmented_view: false,
            split_failed_at: None,
        }
    }

    /// Parses a file from scratch.
    pub fn parse<F, T>(src: &mut Source<'_, F>) -> Option<Syntax>
    where
        F: FnMut(usize, Point) -> T,
        T: AsRef<[u8]>,
    {
        let whole = src.parse(None, None)?;
        let mut syntax = Syntax::from_tree(whole);
        syntax.split_whole(src);
        Some(syntax)
    }

    /// Parses a string once, as one tree: for a parse that is read and dropped (the CLI, a
    /// reference in tests), where segments would cost a second pass and save nothing.
    pub fn parse_whole_str(parser: &mut Parser, text: &str) -> Option<Syntax> {
        parser.set_included_ranges(&[]).ok()?;
        parser.parse(text, None).map(Syntax::from_tree)
    }

    /// Parses a string from scratch for editing: large files are split (see [`Syntax::parse`]).
    pub fn parse_str(parser: &mut Parser, text: &str) -> Option<Syntax> {
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let point_at = |byte: usize| {
            let row = line_starts
                .partition_point(|&s| s <= byte)
                .saturating_sub(1);
            let col = byte - line_starts.get(row).copied().unwrap_or(0).min(byte);
            Point::new(row, col)
        };
        let bytes = text.as_bytes();
        let mut read = |byte: usize, _: Point| bytes.get(byte..).unwrap_or_default();
        Syntax::parse(&mut Source {
            parser,
            read: &mut read,
            point_at: &point_at,
            len: text.len(),
        })
    }

    /// Brings an edited syntax up to date, incrementally; `src` is the text after the edits.
    pub fn reparse<F, T>(&self, src: &mut Source<'_, F>) -> Option<Syntax>
    where
        F: FnMut(usize, Point) -> T,
        T: AsRef<[u8]>,
    {
        let mut out = self.clone();
        let mut segments_clean = !out.segments.is_empty();
        for k in 0..out.segments.len() {
            let end = out.segments.get(k + 1).map_or(END, |s| s.start);
            let Some(segment) = out.segments.get_mut(k) else {
                break;
            };
            if segment.dirty {
                segment.tree = src.parse(Some((segment.start, end)), Some(&segment.tree))?;
                segment.dirty = false;
            }
            segments_clean &= !segment.tree.root_node().has_error();
        }
        if segments_clean {
            out.segmented_view = true;
            out.split_oversized(src);
            return Some(out);
        }
        if out.whole_dirty {
            out.whole = src.parse(None, Some(&out.whole))?;
            out.whole_dirty = false;
        }
        out.segmented_view = false;
        // Segments with errors while the whole file is clean no longer fall on item
        // boundaries (a construct moved across one): split again.
        if !out.segments.is_empty() && !out.whole.root_node().has_error() {
            out.segments.clear();
        }
        if out.segments.is_empty() {
            out.split_whole(src);
        }
        Some(out)
    }

    /// Tells the trees about one edit (byte offsets and points as tree-sitter takes them).
    pub fn edit(&mut self, edit: &InputEdit) {
        self.whole.edit(edit);
        self.whole_dirty = true;
        self.segmented_view = false;
        if self.segments.is_empty() {
            return;
        }
        let (a, b) = (edit.start_byte, edit.old_end_byte);
        let shift = |x: usize| x - edit.old_end_byte + edit.new_end_byte;
        // The segment holding the edit's start: the last one starting at or before it.
        let owner = self
            .segments
            .iter()
            .rposition(|s| s.start <= a)
            .unwrap_or(0);
        // Segments starting inside the edit lose their start: they merge into the owner.
        let k = owner + 1;
        while let Some(s) = self.segments.get(k) {
            if s.start < b {
                self.segments.remove(k);
                if let Some(o) = self.segments.get_mut(owner) {
                    o.unsplittable = false;
                }
            } else {
                break;
            }
        }
        for (i, segment) in self.segments.iter_mut().enumerate().skip(owner) {
            segment.tree.edit(edit);
            if i == owner {
                segment.dirty = true;
                segment.symbols = OnceLock::new();
            } else {
                segment.start = shift(segment.start);
            }
        }
        // A deletion of exactly the owner's bytes empties it: drop it (its bytes are gone).
        if let (Some(o), Some(n)) = (self.segments.get(owner), self.segments.get(owner + 1))
            && o.start >= n.start
        {
            self.segments.remove(owner);
        }
    }

    /// The root nodes readers walk, in document order: the segments' roots when they are
    /// clean, else the whole tree's root.
    pub fn roots(&self) -> Vec<Node<'_>> {
        if self.segmented_view {
            self.segments.iter().map(|s| s.tree.root_node()).collect()
        } else {
            vec![self.whole.root_node()]
        }
    }

    /// The roots whose span overlaps `start..=end` (a position at a root's end counts).
    pub fn roots_overlapping(&self, start: usize, end: usize) -> Vec<Node<'_>> {
        let mut roots = self.roots();
        if roots.len() > 1 {
            roots.retain(|r| r.start_byte() <= end && r.end_byte() >= start);
        }
        roots
    }

    /// The grammar the trees were parsed with.
    pub fn language(&self) -> tree_sitter::LanguageRef<'_> {
        self.whole.language()
    }

    /// Whether what readers see contains a syntax error.
    pub fn has_error(&self) -> bool {
        self.roots().iter().any(|r| r.has_error())
    }

    /// How many trees readers see (1 unless the file is split).
    pub fn tree_count(&self) -> usize {
        if self.segmented_view {
            self.segments.len()
        } else {
            1
        }
    }

    /// The symbols of the file: `compute` gives those under one root. A clean segment's
    /// result is kept and, when edits before the segment move it, moved along instead of
    /// computed again, so after a keystroke only the edited segment is walked. `compute`
    /// must be a function of the root alone (the file's language and text fixed).
    pub(crate) fn symbols_by_root(&self, compute: impl Fn(Node<'_>) -> Vec<Symbol>) -> Vec<Symbol> {
        if !self.segmented_view {
            return compute(self.whole.root_node());
        }
        let mut out = Vec::new();
        for segment in &self.segments {
            let root = segment.tree.root_node();
            let now = (root.start_byte(), root.start_position());
            let cached = segment.symbols.get_or_init(|| {
                Arc::new(CachedSymbols {
                    byte: now.0,
                    point: now.1,
                    symbols: compute(root),
                })
            });
            if (cached.byte, cached.point) == now {
                out.extend(cached.symbols.iter().cloned());
            } else {
                let shift = Shift::between((cached.byte, cached.point), now);
                out.extend(cached.symbols.iter().map(|s| s.moved(&shift)));
            }
        }
        out
    }

    /// Where each segment starts (empty when the file is not split).
    pub fn segment_starts(&self) -> Vec<usize> {
        self.segments.iter().map(|s| s.start).collect()
    }

    /// Whether each segment's tree lies inside the segment's byte range (an invariant the
    /// edits keep; checked by the tests).
    pub fn segments_hold_their_items(&self) -> bool {
        self.segments.iter().enumerate().all(|(k, s)| {
            let end = self.segments.get(k + 1).map_or(END, |n| n.start);
            let root = s.tree.root_node();
            s.start <= end
                && (root.child_count() == 0
                    || (root.start_byte() >= s.start && root.end_byte() <= end))
        })
    }

    /// The S-expressions of the top-level nodes readers see, one per line (for comparing
    /// a segmented syntax with a parse of the whole file).
    pub fn top_level_sexps(&self) -> Vec<String> {
        let mut out = Vec::new();
        for root in self.roots() {
            let mut cursor = root.walk();
            for child in root.children(&mut cursor) {
                out.push(child.to_sexp());
            }
        }
        out
    }

    /// Splits a large, error-free whole tree into segments.
    fn split_whole<F, T>(&mut self, src: &mut Source<'_, F>)
    where
        F: FnMut(usize, Point) -> T,
        T: AsRef<[u8]>,
    {
        self.segments.clear();
        self.segmented_view = false;
        let len = src.len;
        if len < SPLIT_MIN_BYTES
            || self.whole_dirty
            || self.whole.root_node().has_error()
            || self
                .split_failed_at
                .is_some_and(|at| at.abs_diff(len) < SEGMENT_MIN_BYTES)
        {
            return;
        }
        let target = segment_target(len);
        match split(src, &self.whole, 0, END, target) {
            Some(segments) => {
                self.segments = segments;
                self.segmented_view = true;
                self.split_failed_at = None;
            }
            None => self.split_failed_at = Some(len),
        }
    }

    /// Splits again any clean segment that grew past four times the target size.
    fn split_oversized<F, T>(&mut self, src: &mut Source<'_, F>)
    where
        F: FnMut(usize, Point) -> T,
        T: AsRef<[u8]>,
    {
        let len = src.len;
        let target = segment_target(len);
        let mut k = 0;
        while k < self.segments.len() {
            let end = self.segments.get(k + 1).map_or(len, |s| s.start);
            let range_end = if k + 1 == self.segments.len() {
                END
            } else {
                end
            };
            let Some(segment) = self.segments.get_mut(k) else {
                break;
            };
            if end.saturating_sub(segment.start) > 4 * target && !segment.unsplittable {
                if let Some(parts) = split(src, &segment.tree, segment.start, range_end, target) {
                    let n = parts.len();
                    self.segments.splice(k..=k, parts);
                    k += n;
                    continue;
                }
                segment.unsplittable = true;
            }
            k += 1;
        }
    }
}

/// The segment size aimed for in a file of `len` bytes.
fn segment_target(len: usize) -> usize {
    SEGMENT_MIN_BYTES.max(len / MAX_SEGMENTS)
}

/// The text to parse as tree-sitter reads it, and the parser to read it with.
pub struct Source<'a, F> {
    pub parser: &'a mut Parser,
    /// The text at a byte offset (an empty slice past the end).
    pub read: &'a mut F,
    /// The tree-sitter point of a byte offset.
    pub point_at: &'a dyn Fn(usize) -> Point,
    /// The text's length in bytes.
    pub len: usize,
}

impl<F, T> Source<'_, F>
where
    F: FnMut(usize, Point) -> T,
    T: AsRef<[u8]>,
{
    /// Parses the whole text, or only the bytes `start..end` (`END`: to the end), reusing `old`.
    fn parse(&mut self, bytes: Option<(usize, usize)>, old: Option<&Tree>) -> Option<Tree> {
        let ranges: Vec<Range> = bytes
            .map(|(start, end)| {
                let end_point = if end == END {
                    Point::new(END, END)
                } else {
                    (self.point_at)(end)
                };
                Range {
                    start_byte: start,
                    end_byte: end,
                    start_point: (self.point_at)(start),
                    end_point,
                }
            })
            .into_iter()
            .collect();
        self.parser.set_included_ranges(&ranges).ok()?;
        self.parser.parse_with_options(self.read, old, None)
    }
}

/// Splits the top-level items of `tree` within `start..end` into runs of about `target`
/// bytes and parses each run on its own, reusing `tree`'s subtrees. `None` (keep the tree
/// whole) unless it gives at least two segments that parse without errors and hold exactly
/// the items `tree` has there.
fn split<F, T>(
    src: &mut Source<'_, F>,
    tree: &Tree,
    start: usize,
    end: usize,
    target: usize,
) -> Option<Vec<Segment>>
where
    F: FnMut(usize, Point) -> T,
    T: AsRef<[u8]>,
{
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let mut bounds = vec![start];
    let mut cursor = root.walk();
    let children: Vec<Node<'_>> = root
        .children(&mut cursor)
        .filter(|c| c.start_byte() >= start && c.end_byte() <= end)
        .collect();
    let items = children.len();
    for pair in children.windows(2) {
        let (child, next) = match pair {
            [child, next] => (child, next),
            _ => continue,
        };
        let last = bounds.last().copied().unwrap_or(start);
        // A segment starts where an item (or the comment before it) starts; the whitespace
        // and any terminator after the previous item (Go's newline, a `;`) stay with that
        // item, and a comment stays with the item after it.
        if child.end_byte().saturating_sub(last) >= target && next.is_named() && !child.is_extra() {
            bounds.push(next.start_byte());
        }
    }
    // A last run much smaller than the target joins the one before it.
    if bounds.len() > 2
        && let Some(&last) = bounds.last()
        && root.end_byte().saturating_sub(last) < target / 2
    {
        bounds.pop();
    }
    if bounds.len() < 2 {
        return None;
    }
    let mut segments = Vec::with_capacity(bounds.len());
    let mut seen_items = 0usize;
    for (k, &seg_start) in bounds.iter().enumerate() {
        let seg_end = bounds.get(k + 1).copied().unwrap_or(end);
        let piece = src.parse(Some((seg_start, seg_end)), Some(tree))?;
        let piece_root = piece.root_node();
        if piece_root.has_error() {
            return None;
        }
        seen_items += piece_root.child_count() as usize;
        segments.push(Segment::new(seg_start, piece));
    }
    (seen_items == items).then_some(segments)
}
