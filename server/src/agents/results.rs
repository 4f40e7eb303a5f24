//! Turning model replies into results: edits (a fenced code block or a unified diff) and
//! diagnostics (JSON lines). A reply that does not parse is an error; nothing here can empty
//! or truncate a file.

use super::task::{AgentDiagnostic, Severity};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    #[error("the reply has no fenced code block and no unified diff")]
    NoEdit,
    #[error("the reply's code block is empty; refusing to delete the code")]
    EmptyReplacement,
    #[error(
        "the reply's code elides code with a placeholder ({0:?}); refusing to apply a partial replacement"
    )]
    Placeholder(String),
    #[error("the diff does not apply: {0}")]
    DiffMismatch(String),
    #[error("the reply has no parsable diagnostics (expected one JSON object per line)")]
    NoDiagnostics,
}

/// The new text for the target, from a reply. `target` is the code that was shown to the model;
/// a unified diff is applied to it, a fenced block replaces it.
pub fn parse_edit(reply: &str, target: &str) -> Result<String, ResultError> {
    let blocks = fenced_blocks(reply);
    // A diff, fenced as ```diff / ```patch or bare.
    let diff_text = blocks
        .iter()
        .find(|(lang, body)| lang == "diff" || lang == "patch" || looks_like_diff(body))
        .map(|(_, b)| b.clone())
        .or_else(|| looks_like_diff(reply).then(|| reply.to_string()));
    if let Some(diff) = diff_text {
        return apply_unified_diff(target, &diff);
    }
    let Some((_, body)) = blocks.into_iter().max_by_key(|(_, b)| b.len()) else {
        return Err(ResultError::NoEdit);
    };
    if body.trim().is_empty() {
        return Err(ResultError::EmptyReplacement);
    }
    if let Some(line) = placeholder_line(&body, target) {
        return Err(ResultError::Placeholder(line));
    }
    // Keep the target's trailing newline convention.
    let mut new_text = body;
    if target.ends_with('\n') && !new_text.ends_with('\n') {
        new_text.push('\n');
    } else if !target.ends_with('\n') && new_text.ends_with('\n') {
        new_text.pop();
    }
    Ok(new_text)
}

/// `(language, body)` of every fenced block (``` or ~~~, any length ≥ 3).
pub fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let fence_char = match trimmed.chars().next() {
            Some(c @ ('`' | '~')) => c,
            _ => continue,
        };
        let fence_len = trimmed.chars().take_while(|&c| c == fence_char).count();
        if fence_len < 3 {
            continue;
        }
        let lang = trimmed[fence_len..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase();
        let mut body = String::new();
        let mut closed = false;
        for inner in lines.by_ref() {
            let t = inner.trim();
            if t.len() >= fence_len && t.chars().all(|c| c == fence_char) {
                closed = true;
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        // An unclosed block (the model stopped mid-way) is not trusted as a full replacement.
        if closed {
            out.push((lang, body));
        }
    }
    out
}

fn looks_like_diff(text: &str) -> bool {
    let has_hunk = text.lines().any(|l| l.starts_with("@@ ") || l == "@@");
    let has_headers =
        text.lines().any(|l| l.starts_with("--- ")) && text.lines().any(|l| l.starts_with("+++ "));
    has_hunk
        && (has_headers
            || text
                .lines()
                .filter(|l| l.starts_with('+') || l.starts_with('-'))
                .count()
                > 0)
}

/// A line that elides code ("...", "// rest unchanged") which the original did not contain.
fn placeholder_line(body: &str, target: &str) -> Option<String> {
    for line in body.lines() {
        let t = line
            .trim()
            .trim_start_matches("//")
            .trim_start_matches('#')
            .trim_start_matches("/*")
            .trim();
        let lower = t.to_lowercase();
        let elides = t == "..."
            || t == "…"
            || (lower.starts_with("...") || lower.starts_with('…'))
                && (lower.contains("existing")
                    || lower.contains("unchanged")
                    || lower.contains("rest")
                    || lower.contains("same"))
            || lower.contains("rest of the code")
            || lower.contains("remains unchanged");
        if elides && !target.contains(line.trim()) {
            return Some(line.trim().to_string());
        }
    }
    None
}

/// Applies a unified diff to `original`. Hunks are located by their context and removed lines
/// (line numbers in the header are hints only, as models get them wrong).
pub fn apply_unified_diff(original: &str, diff: &str) -> Result<String, ResultError> {
    let orig_lines: Vec<&str> = original.split_inclusive('\n').collect();
    let mut hunks: Vec<Vec<(char, String)>> = Vec::new();
    for line in diff.lines() {
        if line.starts_with("--- ")
            || line.starts_with("+++ ")
            || line.starts_with("diff ")
            || line.starts_with("index ")
        {
            continue;
        }
        if line.starts_with("@@") {
            hunks.push(Vec::new());
            continue;
        }
        let Some(hunk) = hunks.last_mut() else {
            continue;
        };
        let (tag, rest) = match line.chars().next() {
            Some(c @ ('+' | '-' | ' ')) => (c, &line[1..]),
            None => (' ', ""),
            Some('\\') => continue, // "\ No newline at end of file"
            Some(_) => (' ', line),
        };
        hunk.push((tag, rest.to_string()));
    }
    if hunks.is_empty() {
        return Err(ResultError::DiffMismatch("no hunks".into()));
    }
    let mut out: Vec<String> = Vec::new();
    let mut pos = 0usize;
    for (i, hunk) in hunks.iter().enumerate() {
        let old: Vec<&str> = hunk
            .iter()
            .filter(|(t, _)| *t != '+')
            .map(|(_, l)| l.as_str())
            .collect();
        let new: Vec<&str> = hunk
            .iter()
            .filter(|(t, _)| *t != '-')
            .map(|(_, l)| l.as_str())
            .collect();
        let strip = |l: &str| l.trim_end_matches(['\n', '\r']).to_string();
        let matches_at = |start: usize| {
            old.iter().enumerate().all(|(k, o)| {
                orig_lines
                    .get(start + k)
                    .is_some_and(|l| strip(l).trim_end() == o.trim_end())
            })
        };
        let found = if old.is_empty() {
            Some(pos)
        } else {
            (pos..=orig_lines.len().saturating_sub(old.len())).find(|&s| matches_at(s))
        };
        let Some(start) = found else {
            return Err(ResultError::DiffMismatch(format!(
                "hunk {} does not match the code",
                i + 1
            )));
        };
        for l in orig_lines.iter().take(start).skip(pos) {
            out.push((*l).to_string());
        }
        let eol = if original.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        for l in &new {
            out.push(format!("{l}{eol}"));
        }
        pos = start + old.len();
    }
    for l in orig_lines.iter().skip(pos) {
        out.push((*l).to_string());
    }
    let mut result = out.concat();
    if !original.ends_with('\n') && result.ends_with('\n') {
        result.pop();
        if result.ends_with('\r') {
            result.pop();
        }
    }
    if result.trim().is_empty() && !original.trim().is_empty() {
        return Err(ResultError::EmptyReplacement);
    }
    Ok(result)
}

pub use crate::line_diff::changed_lines as lines_changed;

/// Parses diagnostics-mode replies: one JSON object per line, `{"line", "endLine"?, "severity"?, "message"}`
/// with 1-based lines relative to `first_line` (0-based) of the code shown.
pub fn parse_diagnostics(
    reply: &str,
    first_line: u32,
) -> Result<Vec<AgentDiagnostic>, ResultError> {
    let mut out = Vec::new();
    let mut saw_empty_marker = false;
    let body: String = {
        let blocks = fenced_blocks(reply);
        if blocks.is_empty() {
            reply.to_string()
        } else {
            blocks
                .into_iter()
                .map(|(_, b)| b)
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    for line in body.lines() {
        let t = line.trim().trim_end_matches(',');
        if t == "[]" || t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("no issues") {
            saw_empty_marker = true;
            continue;
        }
        let values: Vec<serde_json::Value> = if t.starts_with('[') {
            serde_json::from_str::<Vec<serde_json::Value>>(t).unwrap_or_default()
        } else if t.starts_with('{') {
            serde_json::from_str::<serde_json::Value>(t)
                .ok()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        for v in values {
            let Some(message) = v.get("message").and_then(|m| m.as_str()) else {
                continue;
            };
            let line_no = v.get("line").and_then(|l| l.as_u64()).unwrap_or(1).max(1) as u32;
            let end = v
                .get("endLine")
                .or_else(|| v.get("end_line"))
                .and_then(|l| l.as_u64())
                .map(|l| l as u32)
                .unwrap_or(line_no)
                .max(line_no);
            let severity = match v
                .get("severity")
                .and_then(|s| s.as_str())
                .map(str::to_lowercase)
                .as_deref()
            {
                Some("error") => Severity::Error,
                Some("warning") | Some("warn") => Severity::Warning,
                Some("hint") => Severity::Hint,
                _ => Severity::Information,
            };
            out.push(AgentDiagnostic {
                line: first_line + line_no - 1,
                end_line: first_line + end - 1,
                severity,
                message: message.to_string(),
            });
        }
    }
    if out.is_empty() && !saw_empty_marker && !reply.trim().is_empty() {
        return Err(ResultError::NoDiagnostics);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_block_replaces_target() {
        let reply = "Here you go:\n```rust\nfn a() -> i32 {\n    2\n}\n```\nDone.";
        assert_eq!(
            parse_edit(reply, "fn a() -> i32 {\n    1\n}\n").unwrap(),
            "fn a() -> i32 {\n    2\n}\n"
        );
        assert_eq!(
            parse_edit(reply, "fn a() -> i32 { 1 }").unwrap(),
            "fn a() -> i32 {\n    2\n}"
        );
    }

    #[test]
    fn refuses_empty_unparsable_unclosed_and_elided_replies() {
        assert_eq!(parse_edit("no code here", "x"), Err(ResultError::NoEdit));
        assert_eq!(
            parse_edit("```\n\n```", "x"),
            Err(ResultError::EmptyReplacement)
        );
        assert_eq!(
            parse_edit("```rust\nfn a() {\n", "fn a() {}"),
            Err(ResultError::NoEdit)
        );
        assert!(matches!(
            parse_edit(
                "```rust\nfn a() {\n    // ... rest unchanged\n}\n```",
                "fn a() {\n    x();\n}\n"
            ),
            Err(ResultError::Placeholder(_))
        ));
    }

    #[test]
    fn unified_diff_applies_by_context() {
        let original = "a\nb\nc\nd\n";
        let diff = "--- a/x\n+++ b/x\n@@ -2,2 +2,2 @@\n b\n-c\n+C\n";
        assert_eq!(
            parse_edit(&format!("```diff\n{diff}```"), original).unwrap(),
            "a\nb\nC\nd\n"
        );
        assert!(matches!(
            apply_unified_diff(original, "@@ -1 +1 @@\n-zzz\n+y\n"),
            Err(ResultError::DiffMismatch(_))
        ));
        assert_eq!(
            apply_unified_diff("a\r\nb\r\n", "@@\n-a\n+A\n").unwrap(),
            "A\r\nb\r\n"
        );
    }

    #[test]
    fn diagnostics_json_lines() {
        let d = parse_diagnostics(
            "{\"line\": 2, \"severity\": \"error\", \"message\": \"boom\"}\nnoise\n",
            10,
        )
        .unwrap();
        assert_eq!(
            d,
            vec![AgentDiagnostic {
                line: 11,
                end_line: 11,
                severity: Severity::Error,
                message: "boom".into()
            }]
        );
        assert_eq!(parse_diagnostics("[]", 0).unwrap(), vec![]);
        assert_eq!(
            parse_diagnostics("I think it is fine", 0),
            Err(ResultError::NoDiagnostics)
        );
    }
}
