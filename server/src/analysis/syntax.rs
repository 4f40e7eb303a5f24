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
//!
//! A file whose top level is one large item with a braced body (a Java class, a C++
//! namespace, a Rust `impl` or `mod`, a TypeScript `export class`, one huge function) has no
//! top-level runs to split. Its body's members are split instead ([`Wrapper`]): every segment
//! is parsed together with the head (the file up to and including the body's `{`) and the
//! tail (from the body's `}` on), so each segment's tree is a complete file holding some of
//! the members. Readers take the head and the tail from the first and last segment's trees.

use std::sync::{Arc, OnceLock};

use tree_sitter::{InputEdit, Node, Parser, Point, Range, Tree};

use super::{Symbol, TextPoint};

/// Files smaller than this keep a single tree (its incremental parse is already cheap).
pub const SPLIT_MIN_BYTES: usize = 24 * 1024;
/// The smallest segment size aimed for when splitting.
const SEGMENT_MIN_BYTES: usize = 8 * 1024;
/// At most about this many segments per file (larger files get larger segments).
const MAX_SEGMENTS: usize = 64;
/// How deep [`find_wrapper`] looks for the body to split.
const MAX_WRAPPER_DEPTH: usize = 8;
/// tree-sitter's "to the end of the input" range bound.
const END: usize = u32::MAX as usize;

/// The braced body whose members are split when the file's top level is one wrapping item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wrapper {
    /// The byte after the body's `{`: the head is `0..head_end`, the first segment's start.
    head_end: usize,
    /// The byte of the body's `}`: the tail is `tail_start..`, the last segment's end.
    tail_start: usize,
}

/// One run of top-level items (or of a wrapper's members): the bytes from `start` to the next
/// segment's start (or to the wrapper's tail).
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
    /// How the segment ended when it was split, when another follows: the kinds of its last
    /// item and of that item's last token (see [`Syntax::reparse`]).
    closer: Option<Closer>,
    /// Readable as part of the file since it was last parsed (see [`Syntax::reparse`]).
    clean: bool,
}

/// How a segment ended when it was split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Closer {
    /// The node kind of its last item.
    item: u16,
    /// The kind of that item's last token, when it is punctuation (`;`, `}`, `,`, a Go
    /// newline).
    token: Option<u16>,
    /// Whether its bytes end with a line break (a Python item needs one before the next).
    line_broken: bool,
}

impl Segment {
    fn new(start: usize, tree: Tree, closer: Option<Closer>) -> Segment {
        Segment {
            start,
            tree,
            dirty: false,
            symbols: OnceLock::new(),
            unsplittable: false,
            closer,
            clean: true,
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
    /// Empty, or segments covering the file in order (the first starts at 0), or, with a
    /// wrapper, covering its body (`head_end..tail_start`).
    segments: Vec<Segment>,
    /// Set when the segments split a wrapping item's body rather than the top level.
    wrapper: Option<Wrapper>,
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
            .field("wrapper", &self.wrapper)
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
            wrapper: None,
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
        let whole = src.parse(&[], None)?;
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
        let wrapper = out.wrapper;
        let count = out.segments.len();
        for k in 0..out.segments.len() {
            let ranges = out.segment_ranges(k);
            let end = out.segment_end(k);
            let Some(segment) = out.segments.get_mut(k) else {
                break;
            };
            if segment.dirty {
                segment.tree = src.parse(&ranges, Some(&segment.tree))?;
                segment.dirty = false;
                // No error, and, for a wrapped segment, its members still inside the same
                // body (an edit that closes the body early and opens another parses cleanly
                // but elsewhere). And a segment followed by another still ends as it did
                // when split: parsed on its own its last item is final, and a final item may
                // drop what the whole file needs before the next one (a `,` in a list, a Go
                // newline, Rust's `;` before a block's tail expression, a match arm's `,`).
                // Segments not parsed again keep their verdict: edits only moved them.
                segment.clean = !segment.tree.root_node().has_error()
                    && wrapper.is_none_or(|w| wrapper_body(&segment.tree, w).is_some())
                    && (k + 1 == count
                        || segment.closer.is_some_and(|c| {
                            c.line_broken == src.breaks_line_before(end)
                                && ends_as_split(&segment.tree, wrapper, c)
                        }));
            }
            segments_clean &= segment.clean;
        }
        if segments_clean {
            out.segmented_view = true;
            out.split_oversized(src);
            return Some(out);
        }
        if out.whole_dirty {
            out.whole = src.parse(&[], Some(&out.whole))?;
            out.whole_dirty = false;
        }
        out.segmented_view = false;
        // Segments with errors while the whole file is clean no longer fall on item
        // boundaries (a construct moved across one): split again.
        if !out.segments.is_empty() && !out.whole.root_node().has_error() {
            out.clear_segments();
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
        if let Some(w) = self.wrapper {
            let in_head = a < w.head_end;
            // an insertion right before the `}` belongs to the last segment
            let in_tail = a > w.tail_start || (a == w.tail_start && b > a);
            if (in_head && b > w.head_end) || (a < w.tail_start && b > w.tail_start) {
                // Across the head's or the tail's edge: split again once the file is clean.
                self.clear_segments();
                return;
            }
            if in_head || in_tail {
                // Every segment's tree holds the head and the tail.
                for segment in &mut self.segments {
                    segment.tree.edit(edit);
                    segment.dirty = true;
                    segment.symbols = OnceLock::new();
                    if in_head {
                        segment.start = shift(segment.start);
                    }
                }
                if in_head {
                    self.wrapper = Some(Wrapper {
                        head_end: shift(w.head_end),
                        tail_start: shift(w.tail_start),
                    });
                }
                return;
            }
            self.wrapper = Some(Wrapper {
                tail_start: shift(w.tail_start),
                ..w
            });
        }
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
                let merged = self.segments.remove(k);
                if let Some(o) = self.segments.get_mut(owner) {
                    o.unsplittable = false;
                    // the owner now ends where the merged segment ended
                    o.closer = merged.closer;
                }
            } else {
                break;
            }
        }
        // Segments before the owner hold the text after the edit too when they hold a
        // wrapper's tail: their trees move it.
        let first_told = if self.wrapper.is_some() { 0 } else { owner };
        for (i, segment) in self.segments.iter_mut().enumerate().skip(first_told) {
            segment.tree.edit(edit);
            if i < owner {
                continue;
            }
            if i == owner {
                segment.dirty = true;
                segment.symbols = OnceLock::new();
            } else {
                segment.start = shift(segment.start);
            }
        }
        // tree-sitter gives a pure insertion to the token that ends where it is made. In a
        // wrapper's trees that do not own it, that is the body's `{` (typing right after it)
        // or, with no whitespace between two segments, the previous segment's last token:
        // those trees parse again.
        if let Some(w) = self.wrapper
            && a == b
        {
            let owner_start = self.segments.get(owner).map(|o| o.start);
            for (i, segment) in self.segments.iter_mut().enumerate() {
                if a == w.head_end || (i + 1 == owner && owner_start == Some(a)) {
                    segment.dirty = true;
                    segment.symbols = OnceLock::new();
                }
            }
        }
        // A deletion of exactly the owner's bytes empties it: drop it (its bytes are gone).
        let next_start = self
            .segments
            .get(owner + 1)
            .map(|n| n.start)
            .or(self.wrapper.map(|w| w.tail_start));
        if let (Some(o), Some(n)) = (self.segments.get(owner), next_start)
            && o.start >= n
        {
            self.segments.remove(owner);
        }
        // Segments of a wrapper always cover its whole body, or there are none; and one
        // segment left is the whole file's cost: split again (maybe otherwise) once clean.
        if self.segments.len() < 2
            || self
                .wrapper
                .is_some_and(|w| self.segments.first().is_some_and(|f| f.start != w.head_end))
        {
            self.clear_segments();
        }
    }

    /// Drops the segments: readers see the whole tree until the file is split again.
    fn clear_segments(&mut self) {
        self.segments.clear();
        self.wrapper = None;
        self.segmented_view = false;
    }

    /// The byte ranges segment `k` is parsed from: its own, plus the head and the tail of a
    /// wrapper.
    fn segment_ranges(&self, k: usize) -> Vec<(usize, usize)> {
        let start = self.segments.get(k).map_or(0, |s| s.start);
        let next = self.segments.get(k + 1).map(|s| s.start);
        match self.wrapper {
            None => vec![(start, next.unwrap_or(END))],
            Some(w) => wrapped_ranges(w, start, next.unwrap_or(w.tail_start)),
        }
    }

    /// Where segment `k`'s own bytes end.
    fn segment_end(&self, k: usize) -> usize {
        match (self.segments.get(k + 1), self.wrapper) {
            (Some(next), _) => next.start,
            (None, Some(w)) => w.tail_start,
            (None, None) => END,
        }
    }

    /// The root nodes of the trees readers see, in document order: the segments' roots when
    /// they are clean, else the whole tree's root. (Private: in a wrapped file every segment's
    /// tree holds the head and the tail, so readers go through [`Syntax::pieces`].)
    fn roots(&self) -> Vec<Node<'_>> {
        if self.segmented_view {
            self.segments.iter().map(|s| s.tree.root_node()).collect()
        } else {
            vec![self.whole.root_node()]
        }
    }

    /// The trees readers walk, each with the bytes it speaks for (`start..end`), in document
    /// order and covering the file. A wrapper's head is read from the first segment's tree
    /// and its tail from the last one's (every segment's tree holds both).
    pub(crate) fn pieces(&self) -> Vec<(Node<'_>, usize, usize)> {
        if !self.segmented_view {
            return vec![(self.whole.root_node(), 0, END)];
        }
        let mut out = Vec::with_capacity(self.segments.len() + 2);
        fn root(s: &Segment) -> Node<'_> {
            s.tree.root_node()
        }
        if let (Some(w), Some(first)) = (self.wrapper, self.segments.first()) {
            out.push((root(first), 0, w.head_end));
        }
        for (k, segment) in self.segments.iter().enumerate() {
            out.push((root(segment), segment.start, self.segment_end(k)));
        }
        if let (Some(w), Some(last)) = (self.wrapper, self.segments.last()) {
            out.push((root(last), w.tail_start, END));
        }
        out
    }

    /// The pieces (see [`Syntax::pieces`]) whose bytes meet `start..=end` (a position at a
    /// piece's end counts for it and for the next).
    pub(crate) fn pieces_overlapping(
        &self,
        start: usize,
        end: usize,
    ) -> Vec<(Node<'_>, usize, usize)> {
        let mut pieces = self.pieces();
        if pieces.len() > 1 {
            pieces.retain(|&(_, s, e)| s <= end && e >= start);
        }
        pieces
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
    ///
    /// With a wrapper, the first segment's tree gives the head's and the tail's symbols and
    /// the list the body's members go in (the children of the innermost symbol spanning the
    /// body, or the top level); every other segment adds its members to that list.
    pub(crate) fn symbols_by_root(&self, compute: impl Fn(Node<'_>) -> Vec<Symbol>) -> Vec<Symbol> {
        if !self.segmented_view {
            return compute(self.whole.root_node());
        }
        let mut out = Vec::new();
        let wrapped = self.wrapper.map(|w| {
            let first = self.segments.first().map(|s| s.tree.root_node());
            (w, first.map(&compute).unwrap_or_default())
        });
        for (k, segment) in self.segments.iter().enumerate() {
            if wrapped.is_some() && k == 0 {
                continue;
            }
            let root = segment.tree.root_node();
            let key = match self.wrapper {
                None => Some(root),
                // the segment's first member, which moves with the segment
                Some(w) => wrapper_body(&segment.tree, w)
                    .and_then(|body| body.first_child_for_byte(segment.start)),
            };
            let now = key.map_or((segment.start, Point::default()), |n| {
                (n.start_byte(), n.start_position())
            });
            let cached = segment.symbols.get_or_init(|| {
                let symbols = match self.wrapper {
                    None => compute(root),
                    Some(w) => {
                        let mut all = compute(root);
                        let list = body_list(&mut all, w);
                        let end = self.segment_end(k);
                        list.retain(|s| {
                            s.range.start_byte >= segment.start && s.range.start_byte < end
                        });
                        std::mem::take(list)
                    }
                };
                Arc::new(CachedSymbols {
                    byte: now.0,
                    point: now.1,
                    symbols,
                })
            });
            if (cached.byte, cached.point) == now {
                out.extend(cached.symbols.iter().cloned());
            } else {
                let shift = Shift::between((cached.byte, cached.point), now);
                out.extend(cached.symbols.iter().map(|s| s.moved(&shift)));
            }
        }
        match wrapped {
            None => out,
            Some((w, mut all)) => {
                let list = body_list(&mut all, w);
                let at = list
                    .iter()
                    .position(|s| s.range.start_byte >= w.tail_start)
                    .unwrap_or(list.len());
                list.splice(at..at, out);
                all
            }
        }
    }

    /// Whether the segments split a wrapping item's body rather than the top level.
    pub fn is_wrapped(&self) -> bool {
        self.wrapper.is_some() && self.segmented_view
    }

    /// Where each segment starts (empty when the file is not split).
    pub fn segment_starts(&self) -> Vec<usize> {
        self.segments.iter().map(|s| s.start).collect()
    }

    /// Whether each segment's tree holds its items inside the segment's byte range (an
    /// invariant the edits keep; checked by the tests).
    pub fn segments_hold_their_items(&self) -> bool {
        self.segments.iter().enumerate().all(|(k, s)| {
            let end = self.segment_end(k);
            let (parent, first, last) = match self.wrapper {
                None => {
                    let root = s.tree.root_node();
                    (Some(root), 0, root.child_count())
                }
                Some(w) => {
                    let body = wrapper_body(&s.tree, w);
                    // the braces are the head's and the tail's
                    (
                        body,
                        1,
                        body.map_or(0, |b| b.child_count().saturating_sub(1)),
                    )
                }
            };
            let Some(parent) = parent else {
                // a wrapped segment edited out of its body (an error, or the class closed
                // early) is never read: readers see the whole tree then
                return self.wrapper.is_some() && !self.segmented_view;
            };
            s.start <= end
                && (first..last).all(|i| {
                    parent
                        .child(i)
                        .is_some_and(|c| c.start_byte() >= s.start && c.end_byte() <= end)
                })
        })
    }

    /// The S-expressions of the top-level nodes readers see, one per line (for comparing
    /// a segmented syntax with a parse of the whole file; not comparable when
    /// [`Syntax::is_wrapped`], where each segment's tree holds the wrapper).
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
        self.clear_segments();
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
        // The top level's items, else the members of the item wrapping the file.
        let split = split(src, &self.whole, None, (0, END), target, None)
            .map(|segments| (None, segments))
            .or_else(|| {
                let w = find_wrapper(&self.whole, len)?;
                let segments = split(
                    src,
                    &self.whole,
                    Some(w),
                    (w.head_end, w.tail_start),
                    target,
                    None,
                )?;
                Some((Some(w), segments))
            });
        match split {
            Some((wrapper, segments)) => {
                self.segments = segments;
                self.wrapper = wrapper;
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
        let wrapper = self.wrapper;
        let mut k = 0;
        while k < self.segments.len() {
            let range_end = self.segment_end(k);
            let end = range_end.min(len);
            let Some(segment) = self.segments.get_mut(k) else {
                break;
            };
            if end.saturating_sub(segment.start) > 4 * target && !segment.unsplittable {
                if let Some(parts) = split(
                    src,
                    &segment.tree,
                    wrapper,
                    (segment.start, range_end),
                    target,
                    segment.closer,
                ) {
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

mod split;
pub use split::*;
