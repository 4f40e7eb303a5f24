//! Property test: random edit sequences through the same conversion path the LSP handler uses
//! (`DocumentStore::change`), in UTF-16 and UTF-8, against an independent reference model.

use infinity_matrix::documents::{DocumentStore, Position, PositionEncoding, Range, TextChange};
use proptest::prelude::*;

/// Pieces that stress conversions: surrogate pairs, CJK, combining marks, CR/LF/CRLF.
const PIECES: &[&str] = &[
    "a", "Z", " ", "\n", "\r\n", "\r", "😀", "𝄞", "日本", "é", "e\u{301}", "\u{301}", "\t", "ß", "",
];

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|v| v.concat())
}

/// LSP lines: split on \r\n, \n or \r; returns (start char index, chars without the break) per line.
fn reference_lines(chars: &[char]) -> Vec<(usize, Vec<char>)> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\r' if chars.get(i + 1) == Some(&'\n') => {
                lines.push((start, chars[start..i].to_vec()));
                i += 2;
                start = i;
            }
            '\r' | '\n' => {
                lines.push((start, chars[start..i].to_vec()));
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    lines.push((start, chars[start..].to_vec()));
    lines
}

/// Reference conversion: clamp past-the-end columns, floor mid-character columns.
fn reference_offset(chars: &[char], pos: Position, enc: PositionEncoding) -> Option<usize> {
    let lines = reference_lines(chars);
    let (start, line) = lines.get(pos.line as usize)?;
    let mut units = 0usize;
    for (i, c) in line.iter().enumerate() {
        let w = match enc {
            PositionEncoding::Utf16 => c.len_utf16(),
            PositionEncoding::Utf8 => c.len_utf8(),
        };
        if units + w > pos.character as usize {
            return Some(start + i);
        }
        units += w;
    }
    Some(start + line.len())
}

#[derive(Debug, Clone)]
enum Edit {
    Replace {
        start: (u32, u32),
        end: (u32, u32),
        text: String,
    },
    Whole(String),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        8 => ((0u32..6, 0u32..12), (0u32..6, 0u32..12), text_strategy())
            .prop_map(|(start, end, text)| Edit::Replace { start, end, text }),
        1 => text_strategy().prop_map(Edit::Whole),
    ]
}

fn run(initial: String, edits: Vec<Vec<Edit>>, enc: PositionEncoding) -> Result<(), TestCaseError> {
    let store = DocumentStore::new();
    let uri = "file:///t.rs";
    store.open(uri, None, "rust", 1, &initial);
    let mut model: Vec<char> = initial.chars().collect();
    let mut version = 1;
    for batch in edits {
        version += 1;
        // The reference applies the batch change by change; a bad line stops the batch.
        let mut changes = Vec::new();
        let mut expect_error = false;
        let mut next_model = model.clone();
        for e in &batch {
            match e {
                Edit::Whole(t) => {
                    if !expect_error {
                        next_model = t.chars().collect();
                    }
                    changes.push(TextChange {
                        range: None,
                        text: t.clone(),
                    });
                }
                Edit::Replace { start, end, text } => {
                    let s = Position::new(start.0, start.1);
                    let e2 = Position::new(end.0, end.1);
                    if !expect_error {
                        match (
                            reference_offset(&next_model, s, enc),
                            reference_offset(&next_model, e2, enc),
                        ) {
                            (Some(a), Some(b)) => {
                                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                                next_model.splice(a..b, text.chars());
                            }
                            _ => expect_error = true,
                        }
                    }
                    changes.push(TextChange {
                        range: Some(Range::new(s, e2)),
                        text: text.clone(),
                    });
                }
            }
        }
        let result = store.change(uri, version, &changes, enc);
        prop_assert_eq!(
            result.is_err(),
            expect_error,
            "error mismatch: {:?}",
            result
        );
        model = next_model;
        let doc = store.get(uri).expect("open");
        let got = doc.lock().rope().to_string();
        prop_assert_eq!(got, model.iter().collect::<String>());
        // A stale version (not newer than the one applied) never changes the mirror.
        let current = doc.lock().version;
        let stale = store.change(
            uri,
            current,
            &[TextChange {
                range: None,
                text: "STALE".into(),
            }],
            enc,
        );
        prop_assert!(stale.is_err());
        let again = doc.lock().rope().to_string();
        prop_assert_eq!(again, model.iter().collect::<String>());
    }
    // The parse of the final text equals a fresh parse (incremental edits kept the tree in step).
    let snap = store.snapshot(uri).expect("snapshot");
    let fresh = infinity_matrix::documents::parse_str(
        infinity_matrix::analysis::Language::Rust,
        &snap.analysis.text,
    );
    if let (Some(a), Some(b)) = (&snap.analysis.tree, &fresh) {
        prop_assert_eq!(a.top_level_sexps(), b.top_level_sexps());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn mirror_matches_reference_utf16(initial in text_strategy(), edits in prop::collection::vec(prop::collection::vec(edit_strategy(), 1..3), 1..12)) {
        run(initial, edits, PositionEncoding::Utf16)?;
    }

    #[test]
    fn mirror_matches_reference_utf8(initial in text_strategy(), edits in prop::collection::vec(prop::collection::vec(edit_strategy(), 1..3), 1..12)) {
        run(initial, edits, PositionEncoding::Utf8)?;
    }
}

#[test]
fn empty_document_and_positions_at_the_end() {
    let store = DocumentStore::new();
    store.open("file:///e.rs", None, "rust", 1, "");
    let at = |l, c| Some(Range::new(Position::new(l, c), Position::new(l, c)));
    store
        .change(
            "file:///e.rs",
            2,
            &[TextChange {
                range: at(0, 0),
                text: "x\n".into(),
            }],
            PositionEncoding::Utf16,
        )
        .unwrap();
    store
        .change(
            "file:///e.rs",
            3,
            &[TextChange {
                range: at(1, 0),
                text: "y".into(),
            }],
            PositionEncoding::Utf16,
        )
        .unwrap();
    assert!(
        store
            .change(
                "file:///e.rs",
                4,
                &[TextChange {
                    range: at(5, 0),
                    text: "z".into()
                }],
                PositionEncoding::Utf16
            )
            .is_err()
    );
    let doc = store.get("file:///e.rs").unwrap();
    assert_eq!(doc.lock().rope().to_string(), "x\ny");
}
