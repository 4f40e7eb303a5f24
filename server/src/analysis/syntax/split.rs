//! Where a file is cut into segments: top-level items, or the members of a file that is one wrapping item (a Java class, a namespace, an `impl`), with the head and tail each segment is parsed with.

use super::*;

/// The segment size aimed for in a file of `len` bytes.
pub(super) fn segment_target(len: usize) -> usize {
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
    /// Whether the byte before `end` is a line break.
    pub(super) fn breaks_line_before(&mut self, end: usize) -> bool {
        let Some(at) = end.checked_sub(1).filter(|&at| at < self.len) else {
            return false;
        };
        let point = (self.point_at)(at);
        matches!((self.read)(at, point).as_ref().first(), Some(b'\n' | b'\r'))
    }

    /// Parses the whole text (no ranges), or only the bytes of `ranges` (each `start..end`,
    /// in order; `END`: to the end), reusing `old`.
    pub(super) fn parse(&mut self, ranges: &[(usize, usize)], old: Option<&Tree>) -> Option<Tree> {
        let ranges: Vec<Range> = ranges
            .iter()
            .map(|&(start, end)| {
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
            .collect();
        self.parser.set_included_ranges(&ranges).ok()?;
        self.parser.parse_with_options(self.read, old, None)
    }
}

/// Splits the top-level items of `tree` within `start..end` (with a wrapper: the members of
/// its body) into runs of about `target` bytes and parses each run on its own, reusing
/// `tree`'s subtrees. `None` (keep the tree whole) unless it gives at least two segments
/// that parse without errors and hold exactly the items `tree` has there.
pub(super) fn split<F, T>(
    src: &mut Source<'_, F>,
    tree: &Tree,
    wrapper: Option<Wrapper>,
    (start, end): (usize, usize),
    target: usize,
    last_closer: Option<Closer>,
) -> Option<Vec<Segment>>
where
    F: FnMut(usize, Point) -> T,
    T: AsRef<[u8]>,
{
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let parent = match wrapper {
        None => root,
        Some(w) => wrapper_body(tree, w)?,
    };
    let mut bounds = vec![start];
    let mut cursor = parent.walk();
    let children: Vec<Node<'_>> = parent
        .children(&mut cursor)
        .filter(|c| c.start_byte() >= start && c.end_byte() <= end)
        .collect();
    let items = children.len();
    let last_end = children.last().map_or(start, |c| c.end_byte());
    let asi = inserts_semicolons(tree);
    for pair in children.windows(2) {
        let (child, next) = match pair {
            [child, next] => (child, next),
            _ => continue,
        };
        let last = bounds.last().copied().unwrap_or(start);
        // A segment starts where an item (or the comment before it) starts; the whitespace
        // and any terminator after the previous item (Go's newline, a `;`) stay with that
        // item, and a comment stays with the item after it.
        if child.end_byte().saturating_sub(last) >= target
            && next.is_named()
            && !child.is_extra()
            && (!asi || closes(*child))
        {
            bounds.push(next.start_byte());
        }
    }
    // A last run much smaller than the target joins the one before it (a trailing comment
    // alone is no segment).
    if bounds.len() > 1
        && let Some(&last) = bounds.last()
        && last_end.saturating_sub(last) < target / 2
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
        let closer = match bounds.get(k + 1) {
            // the last item before the next segment, as the tree being split has it
            Some(_) => {
                let line_broken = src.breaks_line_before(seg_end);
                children
                    .iter()
                    .rev()
                    .find(|c| c.end_byte() <= seg_end && !c.is_extra())
                    .map(|c| closer_of(*c, line_broken))
            }
            None => last_closer,
        };
        let ranges = match wrapper {
            None => vec![(seg_start, seg_end)],
            Some(w) => wrapped_ranges(w, seg_start, seg_end),
        };
        let piece = src.parse(&ranges, Some(tree))?;
        // clean, and (but for the last) ending on its own as the file has it end there
        if piece.root_node().has_error()
            || closer.is_some_and(|c| !ends_as_split(&piece, wrapper, c))
        {
            return None;
        }
        seen_items += match wrapper {
            None => piece.root_node().child_count() as usize,
            // the body's children less its braces
            Some(w) => (wrapper_body(&piece, w)?.child_count() as usize).checked_sub(2)?,
        };
        segments.push(Segment::new(seg_start, piece, closer));
    }
    (seen_items == items).then_some(segments)
}

/// Whether the grammar ends statements by automatic semicolon insertion (JavaScript,
/// TypeScript, TSX; told by a node kind only they have). There an item not closed by `;`
/// may be continued by what an edit puts after it (`x = a` then `(b)` is one call), so a
/// segment may only end after an item that nothing can continue.
pub(super) fn inserts_semicolons(tree: &Tree) -> bool {
    tree.language().id_for_node_kind("statement_block", true) != 0
}

/// Declarations that end with a body nothing can continue.
pub(super) const CLOSED_DECLARATIONS: &[&str] = &[
    "function_declaration",
    "generator_function_declaration",
    "class_declaration",
    "abstract_class_declaration",
    "interface_declaration",
    "enum_declaration",
    "internal_module",
    "module",
    "method_definition",
    "class_static_block",
    "statement_block",
];

/// Under automatic semicolon insertion: whether `item` ends so that nothing after it can
/// continue it: a `;` token, an item ending with an explicit `;`, or a closed declaration
/// (exported or not).
pub(super) fn closes(item: Node<'_>) -> bool {
    if item.kind() == ";" {
        return true;
    }
    let last = item.child(item.child_count().saturating_sub(1));
    if last.is_some_and(|l| l.kind() == ";" && l.end_byte() > l.start_byte()) {
        return true;
    }
    let declaration = if item.kind() == "export_statement" {
        let mut cursor = item.walk();
        item.named_children(&mut cursor).last()
    } else {
        Some(item)
    };
    declaration.is_some_and(|d| CLOSED_DECLARATIONS.contains(&d.kind()))
}

/// The kinds of `item` and of its last token when that is punctuation (a named last token,
/// like the last name of a Python block, changes with every edit there and says nothing
/// about how the item ends).
pub(super) fn closer_of(item: Node<'_>, line_broken: bool) -> Closer {
    let mut last = item;
    while let Some(child) = last.child(last.child_count().saturating_sub(1)) {
        last = child;
    }
    Closer {
        item: item.kind_id(),
        token: (!last.is_named()).then(|| last.kind_id()),
        line_broken,
    }
}

/// Whether a segment's tree still ends as it did when it was split (`closer`): the same
/// kinds of last item and last token and, under automatic semicolon insertion, an item
/// nothing can continue.
pub(super) fn ends_as_split(tree: &Tree, wrapper: Option<Wrapper>, closer: Closer) -> bool {
    let parent = match wrapper {
        None => Some(tree.root_node()),
        Some(w) => wrapper_body(tree, w),
    };
    let Some(parent) = parent else {
        return false;
    };
    // (a wrapper's body: its braces are the head's and the tail's)
    let count = parent.child_count();
    let (first, end) = match wrapper {
        None => (0, count),
        Some(_) => (1, count.saturating_sub(1)),
    };
    (first..end)
        .rev()
        .filter_map(|i| parent.child(i))
        .find(|c| !c.is_extra())
        .is_some_and(|last| {
            closer_of(last, closer.line_broken) == closer
                && (!inserts_semicolons(tree) || closes(last))
        })
}

/// The ranges a wrapped segment with bytes `start..end` is parsed from: the head, its own
/// bytes and the tail.
pub(super) fn wrapped_ranges(w: Wrapper, start: usize, end: usize) -> Vec<(usize, usize)> {
    vec![(0, w.head_end), (start, end), (w.tail_start, END)]
}

/// In a tree of the file (whole, or a wrapped segment's): the wrapper's body node, when the
/// `{` ending at `head_end` still opens it and the `}` at `tail_start` still closes it.
pub(super) fn wrapper_body(tree: &Tree, w: Wrapper) -> Option<Node<'_>> {
    let open = tree
        .root_node()
        .descendant_for_byte_range(w.head_end.checked_sub(1)?, w.head_end)?;
    if open.kind() != "{" || open.end_byte() != w.head_end {
        return None;
    }
    let body = open.parent()?;
    let close = body.child(body.child_count().checked_sub(1)?)?;
    (body.child(0) == Some(open) && close.kind() == "}" && close.start_byte() == w.tail_start)
        .then_some(body)
}

/// The braced body to split in a file whose top level is one large item: going down through
/// the children that span at least half of the file, the innermost node whose first child is
/// `{` and last child `}` (a class, namespace, `impl` or function body).
pub(super) fn find_wrapper(tree: &Tree, len: usize) -> Option<Wrapper> {
    let mut node = tree.root_node();
    let mut found = None;
    for _ in 0..MAX_WRAPPER_DEPTH {
        let mut cursor = node.walk();
        let Some(big) = node.children(&mut cursor).find(|c| {
            c.end_byte()
                .saturating_sub(c.start_byte())
                .saturating_mul(2)
                >= len
        }) else {
            break;
        };
        let (first, last) = (big.child(0), big.child(big.child_count().saturating_sub(1)));
        if let (Some(open), Some(close)) = (first, last)
            && big.child_count() >= 2
            && open.kind() == "{"
            && close.kind() == "}"
        {
            found = Some(Wrapper {
                head_end: open.end_byte(),
                tail_start: close.start_byte(),
            });
        }
        node = big;
    }
    found
}

/// The list a wrapper's members go in: the children of the innermost symbol spanning the
/// whole body, or the top level when no symbol does.
pub(super) fn body_list(list: &mut Vec<Symbol>, w: Wrapper) -> &mut Vec<Symbol> {
    let spans = |s: &Symbol| s.range.start_byte < w.head_end && s.range.end_byte > w.tail_start;
    if let Some(i) = list.iter().position(spans)
        && i < list.len()
    {
        return body_list(&mut list[i].children, w);
    }
    list
}
