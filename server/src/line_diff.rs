//! Line diffs of proposed edits: the changed-line count policy decides on, and unified diffs.

use similar::{ChangeTag, DiffOp, TextDiff};

/// Lines a reader sees changed between two texts, by a line diff (Myers): in each run of
/// changes, a line replaced by another counts once, so the count is the larger of the lines
/// removed and the lines added there. A line whose only change is its line ending, and a
/// missing final newline, do not count.
pub fn changed_lines(old: &str, new: &str) -> usize {
    let old = normalized_lines(old);
    let new = normalized_lines(new);
    let diff = TextDiff::configure().diff_slices(&old, &new);
    let mut total = 0;
    let (mut removed, mut added) = (0, 0);
    for op in diff.ops() {
        match *op {
            DiffOp::Equal { .. } => {
                total += removed.max(added);
                (removed, added) = (0, 0);
            }
            DiffOp::Delete { old_len, .. } => removed += old_len,
            DiffOp::Insert { new_len, .. } => added += new_len,
            DiffOp::Replace {
                old_len, new_len, ..
            } => {
                removed += old_len;
                added += new_len;
            }
        }
    }
    total + removed.max(added)
}

/// `1 line changed`, `3 lines changed`.
pub fn changed_lines_label(n: usize) -> String {
    if n == 1 {
        "1 line changed".to_string()
    } else {
        format!("{n} lines changed")
    }
}

/// A unified diff (3 lines of context) of replacing `old` by `new`, where `old` starts at
/// 0-based line `first_line` of the file named `path` (shown as `a/PATH` and `b/PATH`): only
/// the hunks that change something, with the file's own line numbers.
pub fn unified_diff(path: &str, first_line: u32, old: &str, new: &str) -> String {
    let old_lines = normalized_lines(old);
    let new_lines = normalized_lines(new);
    let diff = TextDiff::configure().diff_slices(&old_lines, &new_lines);
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    let offset = first_line as usize;
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            hunk_range(offset + old_range.start, old_range.len()),
            hunk_range(offset + new_range.start, new_range.len()),
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                out.push(sign);
                out.push_str(change.value());
                out.push('\n');
            }
        }
    }
    out
}

/// `START,LEN` of a hunk header (1-based; an empty range names the line before it).
fn hunk_range(start0: usize, len: usize) -> String {
    if len == 0 {
        format!("{start0},0")
    } else if len == 1 {
        format!("{}", start0 + 1)
    } else {
        format!("{},{len}", start0 + 1)
    }
}

/// The text's lines without their line endings (`\n`, `\r\n`).
fn normalized_lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_line_counts_once() {
        assert_eq!(changed_lines("a\nb\nc\n", "a\nB\nc\n"), 1);
        assert_eq!(changed_lines("a\nb\nc\n", "a\nb\nc\n"), 0);
        assert_eq!(changed_lines("", "x\n"), 1);
        assert_eq!(changed_lines("a\nb\n", ""), 2);
    }

    #[test]
    fn insertions_and_deletions_count_their_lines() {
        assert_eq!(changed_lines("a\n", "a\nb\nc\n"), 2);
        assert_eq!(changed_lines("a\nb\nc\nd\n", "a\nd\n"), 2);
        // Two separate one-line changes.
        assert_eq!(changed_lines("a\nb\nc\nd\ne\n", "A\nb\nc\nd\nE\n"), 2);
    }

    /// The reported case: a docstring added to a function whose selection ended at the start
    /// of the next line (the original ends with its newline; the reply may not). Trimming
    /// identical lines at both ends counted the whole body once the last lines differed.
    #[test]
    fn a_docstring_added_to_a_selection_ending_at_the_next_line() {
        let body: String = (0..10).map(|i| format!("    x{i} = {i}\n")).collect();
        let old = format!("def f():\n{body}");
        let new = format!(
            "def f():\n    \"\"\"Sets ten names.\"\"\"\n{}",
            body.trim_end()
        );
        assert_eq!(changed_lines(&old, &new), 1);
        // The blank line after the function selected too and dropped by the reply: that line
        // is removed, the rest is still one inserted line.
        assert_eq!(changed_lines(&format!("{old}\n"), &new), 2);
    }

    #[test]
    fn line_endings_alone_change_nothing() {
        assert_eq!(changed_lines("a\r\nb\r\n", "a\nb"), 0);
    }

    #[test]
    fn labels() {
        assert_eq!(changed_lines_label(1), "1 line changed");
        assert_eq!(changed_lines_label(0), "0 lines changed");
        assert_eq!(changed_lines_label(12), "12 lines changed");
    }

    #[test]
    fn unified_diff_shows_the_minimal_hunk_with_file_line_numbers() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        let diff = unified_diff("src/x.py", 99, &old, &new);
        assert_eq!(
            diff,
            "--- a/src/x.py\n+++ b/src/x.py\n@@ -106,7 +106,7 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten\n line 11\n line 12\n line 13\n"
        );
    }

    #[test]
    fn unified_diff_of_a_pure_insertion_and_of_no_change() {
        let diff = unified_diff("a.rs", 0, "fn f() {}\n", "/// Doc.\nfn f() {}\n");
        assert_eq!(
            diff,
            "--- a/a.rs\n+++ b/a.rs\n@@ -1 +1,2 @@\n+/// Doc.\n fn f() {}\n"
        );
        assert_eq!(
            unified_diff("a.rs", 0, "x\n", "x\n"),
            "--- a/a.rs\n+++ b/a.rs\n"
        );
    }
}
