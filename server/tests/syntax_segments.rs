//! Property test: a large file, split into segments that reparse on their own, always reads
//! the same as a parse of the whole file, through random edit sequences (keystrokes that
//! break and mend the syntax, block comments and braces across segment boundaries, deletions
//! spanning segments, large pastes) applied the way the LSP handler applies them.

use infinity_matrix::analysis::{Language, SPLIT_MIN_BYTES, symbols};
use infinity_matrix::documents::{
    DocumentStore, Position, PositionEncoding, Range, TextChange, parse_str,
};
use proptest::prelude::*;

/// About `items` top-level items of varied kinds, one per a dozen lines.
fn rust_items(items: usize, tag: &str) -> String {
    let mut out = String::from("use std::collections::HashMap;\nuse crate::util::helper;\n\n");
    for i in 0..items {
        out.push_str(&match i % 4 {
            0 => format!(
                "/// Item {i}.\npub struct {tag}Item{i} {{\n    id: u64,\n    name: String,\n}}\n\n"
            ),
            1 => format!(
                "impl {tag}Item{} {{\n    pub fn score(&self, w: &HashMap<u64, f64>) -> f64 {{\n        \
                 let x = w.get(&self.id).copied().unwrap_or(1.0);\n        helper(self.id) as f64 * x\n    }}\n}}\n\n",
                i - 1
            ),
            2 => format!(
                "pub fn {tag}compute_{i}(x: u64) -> u64 {{\n    // a comment {{ with a brace\n    \
                 let s = \"a string }}\";\n    x + s.len() as u64\n}}\n\n"
            ),
            _ => format!("mod {tag}m{i} {{\n    pub const LIMIT: u32 = {i};\n}}\n\n"),
        });
    }
    out
}

const PIECES: &[&str] = &[
    "x",
    "(",
    ")",
    "{",
    "}",
    "/*",
    "*/",
    "\n",
    ";",
    "\"",
    "'",
    "// c\n",
    "fn extra() {}\n",
    "mod open {\n",
    "}\n",
    "let q = 1;",
    "r#\"",
    "\"#",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Insert a piece at (line, column).
    Insert(u32, u32, &'static str),
    /// Delete from (line, column) to (line + lines, column2).
    Delete(u32, u32, u32, u32),
    /// Delete whole lines from `line` on (crosses segment boundaries).
    DeleteLines(u32, u32),
    /// Paste a block of new items at the start of `line`.
    Paste(u32, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        12 => (0u32..2000, 0u32..50, prop::sample::select(PIECES))
            .prop_map(|(l, c, p)| Edit::Insert(l, c, p)),
        6 => (0u32..2000, 0u32..50, 0u32..3, 0u32..50).prop_map(|(l, c, n, c2)| Edit::Delete(l, c, n, c2)),
        1 => (0u32..2000, 100u32..900).prop_map(|(l, n)| Edit::DeleteLines(l, n)),
        1 => (0u32..2000, 50usize..400).prop_map(|(l, n)| Edit::Paste(l, n)),
    ]
}

fn change_for(edit: &Edit, lines: u32) -> TextChange {
    let clamp = |l: u32| l.min(lines.saturating_sub(1));
    match edit {
        Edit::Insert(l, c, piece) => {
            let p = Position::new(clamp(*l), *c);
            TextChange {
                range: Some(Range::new(p, p)),
                text: (*piece).to_string(),
            }
        }
        Edit::Delete(l, c, n, c2) => TextChange {
            range: Some(Range::new(
                Position::new(clamp(*l), *c),
                Position::new(clamp(l + n), *c2),
            )),
            text: String::new(),
        },
        Edit::DeleteLines(l, n) => TextChange {
            range: Some(Range::new(
                Position::new(clamp(*l), 0),
                Position::new(clamp(l + n), 0),
            )),
            text: String::new(),
        },
        Edit::Paste(l, n) => {
            let p = Position::new(clamp(*l), 0);
            TextChange {
                range: Some(Range::new(p, p)),
                text: rust_items(*n, "Pasted"),
            }
        }
    }
}

fn run(edits: Vec<Vec<Edit>>) -> Result<(), TestCaseError> {
    let initial = rust_items(800, "");
    prop_assume!(initial.len() > 2 * SPLIT_MIN_BYTES);
    let store = DocumentStore::new();
    let uri = "file:///big.rs";
    let doc = store.open(uri, None, "rust", 1, &initial);
    let first = store.snapshot(uri).expect("snapshot");
    let tree = first.analysis.tree.as_ref().expect("tree");
    prop_assert!(tree.tree_count() > 1, "a large clean file is split");
    let mut version = 1;
    for batch in edits {
        version += 1;
        let lines = doc.lock().rope().len_lines() as u32;
        let changes: Vec<TextChange> = batch.iter().map(|e| change_for(e, lines)).collect();
        store
            .change(uri, version, &changes, PositionEncoding::Utf8)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let snap = store.snapshot(uri).expect("snapshot");
        let text = &snap.analysis.text;
        let seen = snap.analysis.tree.as_ref().expect("tree");
        let fresh = parse_str(Language::Rust, text).expect("fresh parse");
        if fresh.has_error() {
            prop_assert!(
                seen.has_error(),
                "a file with a syntax error never reads as clean"
            );
        } else {
            prop_assert!(!seen.has_error());
            prop_assert!(seen.segments_hold_their_items());
            prop_assert_eq!(seen.top_level_sexps(), fresh.top_level_sexps());
            prop_assert_eq!(
                &snap.analysis.symbols,
                &symbols(Language::Rust, &fresh, text)
            );
            if text.len() >= 2 * SPLIT_MIN_BYTES {
                prop_assert!(seen.tree_count() > 1, "a large clean file stays split");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn segmented_syntax_reads_as_a_whole_file_parse(
        edits in prop::collection::vec(prop::collection::vec(edit_strategy(), 1..4), 1..16)
    ) {
        run(edits)?;
    }
}

/// Typing a block comment opener in one segment and its closer in a later one comments out
/// the items between: they must disappear from the symbols, as in a parse of the whole file.
#[test]
fn a_block_comment_across_segments_hides_the_items_inside() {
    let text = rust_items(800, "");
    let store = DocumentStore::new();
    let uri = "file:///big.rs";
    store.open(uri, None, "rust", 1, &text);
    let before = store.snapshot(uri).expect("snapshot");
    let top = |s: &infinity_matrix::documents::DocSnapshot| -> Vec<String> {
        s.analysis.symbols.iter().map(|s| s.name.clone()).collect()
    };
    assert!(top(&before).contains(&"compute_402".to_string()));
    let line_of = |needle: &str| -> u32 {
        text.lines()
            .position(|l| l.contains(needle))
            .expect("needle") as u32
    };
    let (open, close) = (line_of("struct Item400 "), line_of("struct Item560 "));
    let insert = |line: u32, piece: &str| TextChange {
        range: Some(Range::new(Position::new(line, 0), Position::new(line, 0))),
        text: piece.into(),
    };
    // Close first (a stray `*/` is an error), then open: two separate keystrokes.
    store
        .change(uri, 2, &[insert(close, "*/\n")], PositionEncoding::Utf16)
        .expect("change");
    store
        .change(uri, 3, &[insert(open, "/*\n")], PositionEncoding::Utf16)
        .expect("change");
    let after = store.snapshot(uri).expect("snapshot");
    let tree = after.analysis.tree.as_ref().expect("tree");
    assert!(!tree.has_error());
    let names = top(&after);
    assert!(!names.contains(&"compute_402".to_string()), "{names:?}");
    assert!(names.contains(&"Item560".to_string()));
    assert!(names.contains(&"Item396".to_string()));
    let fresh = parse_str(Language::Rust, &after.analysis.text).expect("parse");
    assert_eq!(tree.top_level_sexps(), fresh.top_level_sexps());
}

/// Joining a segment's first line onto the line before it, then typing at the start of that
/// line, moves the segment's items along their row: their cached symbols must move with them.
#[test]
fn items_moved_along_their_row_keep_exact_symbols() {
    let text = rust_items(800, "");
    let store = DocumentStore::new();
    let uri = "file:///big.rs";
    let doc = store.open(uri, None, "rust", 1, &text);
    let snap = store.snapshot(uri).expect("snapshot");
    let starts = snap.analysis.tree.as_ref().expect("tree").segment_starts();
    let start = *starts.get(3).expect("a split file");
    assert_eq!(text.get(start - 2..start), Some("\n\n"));
    let at = |text: &str, byte: usize| {
        let line = text[..byte].matches('\n').count() as u32;
        let col = (byte - text[..byte].rfind('\n').map_or(0, |p| p + 1)) as u32;
        Position::new(line, col)
    };
    let edits = [
        // "}\n\nfn ..." becomes "} fn ...": the segment's first item joins the previous line.
        TextChange {
            range: Some(Range::new(at(&text, start - 2), at(&text, start))),
            text: " ".into(),
        },
    ];
    store
        .change(uri, 2, &edits, PositionEncoding::Utf8)
        .expect("change");
    let check = |version: i32| {
        let snap = store.snapshot(uri).expect("snapshot");
        assert_eq!(snap.version, version);
        let text = &snap.analysis.text;
        let tree = snap.analysis.tree.as_ref().expect("tree");
        assert!(tree.tree_count() > 1);
        let fresh = parse_str(Language::Rust, text).expect("parse");
        assert_eq!(snap.analysis.symbols, symbols(Language::Rust, &fresh, text));
        text.to_string()
    };
    let joined = check(2);
    // Type at the start of the joined line: the text before the segment on its row grows.
    let line_start = joined[..start].rfind('\n').map_or(0, |p| p + 1);
    let p = at(&joined, line_start);
    store
        .change(
            uri,
            3,
            &[TextChange {
                range: Some(Range::new(p, p)),
                text: "    ".into(),
            }],
            PositionEncoding::Utf8,
        )
        .expect("change");
    check(3);
    drop(doc);
}
