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

/// What the edits of a Java file type.
const JAVA_PIECES: &[&str] = &[
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
    "void extra() {}\n",
    "class Open {\n",
    "}\n",
    "int q = 1;",
    "} class Other {\n",
    "import java.io.File;\n",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Insert piece number `.2` at (line, column).
    Insert(u32, u32, usize),
    /// Delete from (line, column) to (line + lines, column2).
    Delete(u32, u32, u32, u32),
    /// Delete whole lines from `line` on (crosses segment boundaries).
    DeleteLines(u32, u32),
    /// Paste a block of new items at the start of `line`.
    Paste(u32, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        12 => (0u32..2000, 0u32..50, 0usize..PIECES.len().max(JAVA_PIECES.len()))
            .prop_map(|(l, c, p)| Edit::Insert(l, c, p)),
        6 => (0u32..2000, 0u32..50, 0u32..3, 0u32..50).prop_map(|(l, c, n, c2)| Edit::Delete(l, c, n, c2)),
        1 => (0u32..2000, 100u32..900).prop_map(|(l, n)| Edit::DeleteLines(l, n)),
        1 => (0u32..2000, 50usize..400).prop_map(|(l, n)| Edit::Paste(l, n)),
    ]
}

/// The change `edit` makes in a file of `lines` lines, with `pieces` (what an insertion
/// types, by the index `edit` holds) and `paste` (n items of new text).
fn change_with(
    edit: &Edit,
    lines: u32,
    pieces: &[&'static str],
    paste: fn(usize, &str) -> String,
) -> TextChange {
    let clamp = |l: u32| l.min(lines.saturating_sub(1));
    match edit {
        Edit::Insert(l, c, piece) => {
            let p = Position::new(clamp(*l), *c);
            TextChange {
                range: Some(Range::new(p, p)),
                text: pieces.get(*piece).copied().unwrap_or("x").to_string(),
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
                text: paste(*n, "Pasted"),
            }
        }
    }
}

/// A file the property tests edit: how it starts, what edits type and paste into it.
struct Subject {
    lang: Language,
    id: &'static str,
    initial: String,
    pieces: &'static [&'static str],
    paste: fn(usize, &str) -> String,
    /// Split in the body of the item wrapping it, not at its top level.
    wrapped: bool,
}

/// Applies `edits` to `subject`'s file, batch after batch, and checks after each batch that
/// what readers see equals a parse of the whole file.
fn run(subject: Subject, edits: Vec<Vec<Edit>>) -> Result<(), TestCaseError> {
    let Subject {
        lang,
        id,
        initial,
        pieces,
        paste,
        wrapped,
    } = subject;
    prop_assume!(initial.len() > 2 * SPLIT_MIN_BYTES);
    let store = DocumentStore::new();
    let uri = "file:///big";
    let doc = store.open(uri, None, id, 1, &initial);
    let first = store.snapshot(uri).expect("snapshot");
    let tree = first.analysis.tree.as_ref().expect("tree");
    prop_assert!(tree.tree_count() > 1, "a large clean file is split");
    prop_assert_eq!(tree.is_wrapped(), wrapped);
    let mut version = 1;
    for batch in edits {
        // one didChange per edit (each against the lines it sees: an earlier deletion may
        // have shortened the file), one reader per batch: the reparse catches up with
        // several edits at once
        for e in &batch {
            version += 1;
            let lines = doc.lock().rope().len_lines() as u32;
            let change = change_with(e, lines, pieces, paste);
            store
                .change(uri, version, &[change], PositionEncoding::Utf8)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let snap = store.snapshot(uri).expect("snapshot");
        let text = &snap.analysis.text;
        let seen = snap.analysis.tree.as_ref().expect("tree");
        let fresh = parse_str(lang, text).expect("fresh parse");
        prop_assert!(seen.segments_hold_their_items());
        if fresh.has_error() {
            // (an incremental parse of a broken file may recover differently from a fresh
            // one, split or not: only the error itself is compared)
            prop_assert!(
                seen.has_error(),
                "a file with a syntax error never reads as clean"
            );
        } else {
            if !seen.is_wrapped() {
                // (edits can wrap most of the file in one item: then the segments hold its
                // members, and the readers below are what is compared)
                prop_assert_eq!(seen.top_level_sexps(), fresh.top_level_sexps());
            }
            prop_assert_eq!(&snap.analysis.symbols, &symbols(lang, &fresh, text));
            reads_as_whole(lang, seen, text, 331)?;
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
        run(Subject {
            lang: Language::Rust,
            id: "rust",
            initial: rust_items(800, ""),
            pieces: PIECES,
            paste: rust_items,
            wrapped: false,
        }, edits)?;
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

// ---------------------------------------------------------------------------------------
// Files whose top level is one wrapping item: the members of its body are split instead.
// ---------------------------------------------------------------------------------------

/// A Java file that is one class of about `members` members (methods, fields, a nested
/// class, comments and strings holding braces).
fn java_class(members: usize, tag: &str) -> String {
    let mut out = String::from(
        "package bench;\n\nimport java.util.Map;\nimport java.util.List;\n\n/** The big class. */\npublic class Big {\n",
    );
    out.push_str(&java_members(members, tag));
    out.push_str("}\n");
    out
}

fn java_members(members: usize, tag: &str) -> String {
    let mut out = String::new();
    for i in 0..members {
        out.push_str(&match i % 4 {
            0 => format!(
                "    /** Member {i}. */\n    public double {tag}score{i}(Map<Long, Double> w, long id) {{\n        \
                 double x = w.getOrDefault(id, 1.0);\n        return helper(id) * x;\n    }}\n\n"
            ),
            1 => format!("    private static final int {tag}LIMIT_{i} = {i};\n\n"),
            2 => format!(
                "    // a comment {{ with a brace\n    static String {tag}name{i}() {{\n        \
                 return \"a string }}\";\n    }}\n\n"
            ),
            _ => format!(
                "    static class {tag}Inner{i} {{\n        int value() {{ return {i}; }}\n    }}\n\n"
            ),
        });
    }
    out
}

/// The same file in the shapes that wrap everything: a Java class, a TypeScript
/// `export class`, nested C++ namespaces, a Rust `impl` and a JavaScript
/// `export default class`.
fn wrapped_files() -> Vec<(Language, String, String)> {
    let n = 600;
    let mut ts = String::from("import { helper } from \"./util\";\n\nexport class Big {\n");
    let mut cpp = String::from("#include <vector>\n\nnamespace outer {\nnamespace inner {\n");
    let mut rs = String::from("use std::collections::HashMap;\n\nimpl Big {\n");
    for i in 0..n {
        ts.push_str(&format!(
            "  /** Member {i}. */\n  score{i}(w: Map<number, number>, id: number): number {{\n    const x = w.get(id) ?? 1;\n    return helper(id) * x;\n  }}\n\n"
        ));
        cpp.push_str(&format!(
            "// member {i}\nint compute{i}(int x) {{\n    return x + {i};\n}}\nstruct Item{i} {{\n    int id;\n}};\n\n"
        ));
        rs.push_str(&format!(
            "    /// Member {i}.\n    pub fn score{i}(&self, w: &HashMap<u64, f64>) -> f64 {{\n        w.get(&self.id).copied().unwrap_or(1.0) * {i}.0\n    }}\n\n"
        ));
    }
    let mut js =
        String::from("import { helper } from './util.js';\n\nexport default class Big {\n");
    for i in 0..n {
        js.push_str(&format!(
            "  // member {i}\n  score{i}(w, id) {{\n    const x = w.get(id) ?? 1;\n    return helper(id) * x;\n  }}\n\n"
        ));
    }
    ts.push_str("}\n");
    cpp.push_str("}  // namespace inner\n}  // namespace outer\n");
    rs.push_str("}\n");
    js.push_str("}\n");
    vec![
        (Language::Java, "java".into(), java_class(n, "")),
        (Language::TypeScript, "typescript".into(), ts),
        (Language::Cpp, "cpp".into(), cpp),
        (Language::Rust, "rust".into(), rs),
        (Language::JavaScript, "javascript".into(), js),
    ]
}

/// What readers get from `seen` equals what they get from a parse of the whole `text`:
/// symbols, imports, the scope chain at every `step`-th byte and the identifiers of a few
/// ranges.
fn reads_as_whole(
    lang: Language,
    seen: &infinity_matrix::analysis::Syntax,
    text: &str,
    step: usize,
) -> Result<(), TestCaseError> {
    use infinity_matrix::analysis::{enclosing_scopes, identifiers_in, imports};
    let fresh = parse_str(lang, text).expect("fresh parse");
    prop_assert_eq!(seen.has_error(), fresh.has_error());
    prop_assert_eq!(symbols(lang, seen, text), symbols(lang, &fresh, text));
    prop_assert_eq!(imports(lang, seen, text), imports(lang, &fresh, text));
    for byte in (0..=text.len()).step_by(step) {
        prop_assert_eq!(
            enclosing_scopes(lang, seen, text, byte),
            enclosing_scopes(lang, &fresh, text, byte),
            "scope chain at byte {}",
            byte
        );
    }
    let third = text.len() / 3;
    for (a, b) in [(0, text.len()), (third, 2 * third), (third / 2, third + 7)] {
        prop_assert_eq!(
            identifiers_in(seen, text, a, b),
            identifiers_in(&fresh, text, a, b),
            "identifiers in {}..{}",
            a,
            b
        );
    }
    Ok(())
}

#[test]
fn a_file_wrapped_in_one_item_splits_its_body_and_reads_as_a_whole_file_parse() {
    for (lang, name, text) in wrapped_files() {
        let store = DocumentStore::new();
        let uri = format!("file:///big.{name}");
        store.open(&uri, None, &name, 1, &text);
        let snap = store.snapshot(&uri).expect("snapshot");
        let tree = snap.analysis.tree.as_ref().expect("tree");
        assert!(
            tree.is_wrapped() && tree.tree_count() > 1,
            "{name} is split in its body: {tree:?} error {}",
            tree.has_error()
        );
        assert!(tree.segments_hold_their_items(), "{name}");
        reads_as_whole(lang, tree, &text, 97)
            .map_err(|e| format!("{name}: {e}"))
            .unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random edits to a Java file that is one class (in the head, in the members, across
    /// the tail, closing the class early and opening another): what readers see always
    /// equals a parse of the whole file.
    #[test]
    fn a_wrapped_file_reads_as_a_whole_file_parse_through_random_edits(
        edits in prop::collection::vec(prop::collection::vec(edit_strategy(), 1..4), 1..12)
    ) {
        run(Subject {
            lang: Language::Java,
            id: "java",
            initial: java_class(700, ""),
            pieces: JAVA_PIECES,
            paste: java_members,
            wrapped: true,
        }, edits)?;
    }
}

/// The edits that matter to a wrapped file, one at a time: a member typed in the middle
/// (only its segment reparses), the class renamed in the head and a comment added after the
/// tail (every segment reparses), and the class closed early with another opened after it
/// (the segments no longer hold the body: the whole tree serves, until the edit is undone).
#[test]
fn a_wrapped_file_follows_edits_in_its_members_head_and_tail() {
    let text = java_class(700, "");
    let store = DocumentStore::new();
    let uri = "file:///Big.java";
    store.open(uri, None, "java", 1, &text);
    let mut version = 1;
    let mut edit = |line: u32, col: u32, end: Option<(u32, u32)>, new: &str| {
        version += 1;
        let p = Position::new(line, col);
        let q = end.map_or(p, |(l, c)| Position::new(l, c));
        replace(&store, uri, version, (p, q), new)
    };
    let check = |snap: &infinity_matrix::documents::DocSnapshot, wrapped: bool| {
        let tree = snap.analysis.tree.as_ref().expect("tree");
        assert_eq!(tree.is_wrapped(), wrapped, "{tree:?}");
        reads_as_whole(Language::Java, tree, &snap.analysis.text, 211).unwrap();
    };
    let middle = text
        .lines()
        .position(|l| l.contains("score400("))
        .expect("member") as u32;
    let snap = edit(middle - 1, 0, None, "    void typed() {}\n");
    check(&snap, true);
    assert!(
        snap.analysis.symbols[0]
            .children
            .iter()
            .any(|s| s.name == "typed")
    );
    // the head: the class renamed (every member's container changes)
    let header = text
        .lines()
        .position(|l| l.starts_with("public class Big"))
        .expect("header") as u32;
    let snap = edit(header, 13, Some((header, 16)), "Huge");
    check(&snap, true);
    let class = &snap.analysis.symbols[0];
    assert_eq!(class.name, "Huge");
    assert!(class.children.len() > 700);
    assert!(
        class
            .children
            .iter()
            .all(|m| m.container.as_deref() == Some("Huge"))
    );
    // the tail: a comment after the closing brace
    let last = snap.analysis.text.lines().count() as u32;
    check(&edit(last, 0, None, "// the end\n"), true);
    // the class closed early, another opened (between two members): clean, but the body
    // is no longer one
    let at = snap
        .analysis
        .text
        .lines()
        .position(|l| l.contains("Member 404."))
        .expect("member") as u32;
    let snap = edit(at, 0, None, "} class Other {\n");
    check(&snap, false);
    assert_eq!(snap.analysis.symbols.len(), 2);
    // undone: one class again
    let snap = edit(at, 0, Some((at + 1, 0)), "");
    check(&snap, true);
    assert_eq!(snap.analysis.symbols.len(), 1);
}

/// Replaces `from..to` of the open document with `text` (one didChange of `version`) and
/// returns the new snapshot.
fn replace(
    store: &DocumentStore,
    uri: &str,
    version: i32,
    (from, to): (Position, Position),
    text: &str,
) -> infinity_matrix::documents::DocSnapshot {
    store
        .change(
            uri,
            version,
            &[TextChange {
                range: Some(Range::new(from, to)),
                text: text.into(),
            }],
            PositionEncoding::Utf8,
        )
        .expect("change");
    store.snapshot(uri).expect("snapshot")
}

/// The position of byte `at` in `text` (lines end with `\n`).
fn position_of(text: &str, at: usize) -> Position {
    let before = &text[..at];
    Position::new(
        before.matches('\n').count() as u32,
        (at - before.rfind('\n').map_or(0, |p| p + 1)) as u32,
    )
}

/// Inserts `text` at byte `at` of the open document and returns the new snapshot.
fn insert_at(
    store: &DocumentStore,
    uri: &str,
    version: i32,
    at: usize,
    text: &str,
) -> infinity_matrix::documents::DocSnapshot {
    let snap = store.snapshot(uri).expect("snapshot");
    let p = position_of(&snap.analysis.text, at);
    replace(store, uri, version, (p, p), text)
}

/// Under automatic semicolon insertion an item without `;` may be continued by the next
/// line (`const v = f()` then `[0].forEach(g)` is one expression): a segment never ends
/// after such an item, so typing at any segment's start reads as a whole-file parse, at the
/// top level and in a class body.
#[test]
fn segments_never_end_where_automatic_semicolons_could_be_undone() {
    let mut top = String::new();
    let mut class = String::from("export class Big {\n");
    for i in 0..900 {
        top.push_str(&format!(
            "function f{i}() {{\n  return {{ a: {i} }}\n}}\nconst v{i} = f{i}()\n\n"
        ));
        class.push_str(&format!(
            "  m{i}() {{\n    return {i}\n  }}\n  x{i} = {i}\n\n"
        ));
    }
    class.push_str("}\n");
    for (lang, id, text, typed) in [
        (Language::JavaScript, "javascript", top, "[0].forEach(f0)\n"),
        (Language::TypeScript, "typescript", class, "['k'] = 1\n"),
    ] {
        let starts = {
            let store = DocumentStore::new();
            store.open("file:///a", None, id, 1, &text);
            let snap = store.snapshot("file:///a").expect("snapshot");
            let tree = snap.analysis.tree.as_ref().expect("tree");
            assert!(tree.tree_count() > 1, "{id} is split");
            tree.segment_starts()
        };
        for &start in starts.iter().skip(1) {
            let store = DocumentStore::new();
            store.open("file:///a", None, id, 1, &text);
            let snap = insert_at(&store, "file:///a", 2, start, typed);
            let tree = snap.analysis.tree.as_ref().expect("tree");
            let fresh = parse_str(lang, &snap.analysis.text).expect("parse");
            assert!(
                !fresh.has_error(),
                "{id}: typing at {start} keeps the file clean"
            );
            assert_eq!(
                snap.analysis.symbols,
                symbols(lang, &fresh, &snap.analysis.text),
                "{id}: typed at the segment starting at {start}"
            );
            reads_as_whole(lang, tree, &snap.analysis.text, 997).unwrap();
        }
    }
}

/// A pure insertion goes to the token that ends where it is made: typing right after a
/// class's `{`, or at a segment's start when no whitespace separates it from the previous
/// one, must not grow a token of another segment's tree.
#[test]
fn insertions_at_the_body_start_and_at_seamless_boundaries_read_as_a_whole_parse() {
    let mut text = String::from("package p;\n\npublic class Big {");
    for i in 0..3000 {
        // members back to back: segment boundaries have no whitespace
        text.push_str(&format!("int a{i}=1;void g{i}(){{a{i}++;}}"));
    }
    text.push_str("}\n");
    let store = DocumentStore::new();
    store.open("file:///Big.java", None, "java", 1, &text);
    let snap = store.snapshot("file:///Big.java").expect("snapshot");
    let tree = snap.analysis.tree.as_ref().expect("tree");
    assert!(tree.is_wrapped() && tree.tree_count() > 1);
    let starts = tree.segment_starts();
    let head_end = *starts.first().expect("a segment");
    assert_eq!(text.get(head_end - 1..head_end), Some("{"));
    let mut version = 1;
    for (at, typed) in [(head_end, "\n  int first;\n"), (starts[3] + 14, "int z;")] {
        version += 1;
        let snap = insert_at(&store, "file:///Big.java", version, at, typed);
        let tree = snap.analysis.tree.as_ref().expect("tree");
        assert!(
            tree.is_wrapped(),
            "still split in its body after typing at {at}"
        );
        assert!(tree.segments_hold_their_items());
        reads_as_whole(Language::Java, tree, &snap.analysis.text, 1013).unwrap();
    }
}

/// Parsed on its own, a segment's last item is final, and a final item may drop what the
/// whole file needs before the next one: the `,` of a C initializer list, a Rust match arm's
/// `,`. An item typed after the last `,` of a segment (without its own) is an error in the
/// whole file, so it must read as one, though the segment alone parses cleanly.
#[test]
fn an_item_typed_at_a_segments_end_without_its_separator_reads_as_an_error() {
    let mut c = String::from("static const int table[] = {\n");
    let mut rs = String::from("fn f(x: u32) -> u32 {\n    match x {\n");
    for i in 0..6000 {
        c.push_str(&format!("  {i},\n"));
        rs.push_str(&format!("        {i} => {i} + 1,\n"));
    }
    c.push_str("};\n");
    rs.push_str("        _ => 0,\n    }\n}\n");
    for (lang, id, text, typed) in [
        (Language::C, "c", c, " 99"),
        (Language::Rust, "rust", rs, " 7000 => 0"),
    ] {
        let store = DocumentStore::new();
        store.open("file:///a", None, id, 1, &text);
        let snap = store.snapshot("file:///a").expect("snapshot");
        let tree = snap.analysis.tree.as_ref().expect("tree");
        assert!(tree.is_wrapped() && tree.tree_count() > 2, "{id}: {tree:?}");
        let boundary = tree.segment_starts()[2];
        let after_comma = text[..boundary].rfind(',').expect("a comma") + 1;
        let snap = insert_at(&store, "file:///a", 2, after_comma, typed);
        let fresh = parse_str(lang, &snap.analysis.text).expect("parse");
        assert!(fresh.has_error(), "{id}: the whole file has an error");
        let tree = snap.analysis.tree.as_ref().expect("tree");
        assert!(tree.has_error(), "{id}: and reads as having one");
    }
}

/// A Python item needs a line break before the next one: deleting the blank lines at a
/// segment's end joins its last line with the next segment's first, an error in the whole
/// file, though the segment alone still parses cleanly.
#[test]
fn joining_the_lines_across_a_segment_boundary_reads_as_an_error() {
    let mut text = String::new();
    for i in 0..1500 {
        text.push_str(&format!("def f{i}(x):\n    return x + {i}\n\n"));
    }
    let store = DocumentStore::new();
    store.open("file:///a.py", None, "python", 1, &text);
    let snap = store.snapshot("file:///a.py").expect("snapshot");
    let tree = snap.analysis.tree.as_ref().expect("tree");
    assert!(tree.tree_count() > 2);
    let boundary = tree.segment_starts()[2];
    assert_eq!(text.get(boundary - 2..boundary), Some("\n\n"));
    // "return x + N\n\ndef f..." becomes "return x + N def f..."
    let joined = (
        position_of(&text, boundary - 2),
        position_of(&text, boundary),
    );
    let snap = replace(&store, "file:///a.py", 2, joined, " ");
    let fresh = parse_str(Language::Python, &snap.analysis.text).expect("parse");
    assert!(fresh.has_error(), "the whole file has an error");
    assert!(
        snap.analysis.tree.as_ref().expect("tree").has_error(),
        "and reads as having one"
    );
}
