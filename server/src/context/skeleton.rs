//! How a definition is shown within its share of the budget: whole when it fits, else as a
//! skeleton of verbatim lines (its header, then the member lines a caller needs: the
//! constructor, the members the code uses, then the others; each with its attributes and
//! the first line of its doc comment), and a long body shown as its header plus a window
//! around the cursor.

use std::collections::HashSet;

use super::excerpt::Excerpt;
use super::lang::Rules;
use super::outline::{Def, FileOutline};
use crate::analysis::SymbolKind;

/// At most this many lines of comments and attributes above a definition belong to it.
const MAX_LEAD_LINES: u32 = 40;
/// At most this many lines of a member's header are kept.
const MAX_MEMBER_HEADER_LINES: u32 = 16;

/// The lines a definition spans, its lead (doc comment, attributes) included.
pub(crate) fn full_span(file: &FileOutline, d: &Def, rules: &dyn Rules) -> (u32, u32) {
    let start = file.line_of(d.range.start_byte);
    let end = file.line_of(d.range.end_byte.saturating_sub(1).max(d.range.start_byte));
    (lead_start(file, start, rules), end.max(start))
}

/// The first line of the comments and attributes directly above line `start`.
fn lead_start(file: &FileOutline, start: u32, rules: &dyn Rules) -> u32 {
    let mut first = start;
    while first > 0 && start - first < MAX_LEAD_LINES {
        let above = file.line(first - 1);
        if above.trim().is_empty() || !rules.is_lead_line(above) {
            break;
        }
        first -= 1;
    }
    first
}

/// The lines to keep of a definition's lead: attributes, decorators, and the first line of
/// its doc comment (the line with text when the comment opens on a line of its own).
fn lead_lines(file: &FileOutline, first: u32, start: u32, rules: &dyn Rules) -> Vec<(u32, u32)> {
    let mut keep = Vec::new();
    let mut doc_taken = false;
    for line in first..start {
        let text = file.line(line);
        if rules.is_doc_line(text) {
            if !doc_taken {
                keep.push((line, line));
                let bare = text
                    .trim()
                    .trim_start_matches(['/', '*', '!', '#'])
                    .trim()
                    .is_empty();
                if bare && line + 1 < start {
                    keep.push((line + 1, line + 1));
                }
                doc_taken = true;
            }
        } else {
            keep.push((line, line));
        }
    }
    keep
}

/// The header lines of a definition (from its first line to the line its body opens on),
/// at most `max` of them, and for Python the first line of its doc string.
fn header_lines(file: &FileOutline, d: &Def, rules: &dyn Rules, max: u32) -> Vec<(u32, u32)> {
    let start = file.line_of(d.range.start_byte);
    let end = file.line_of(d.header_end.max(d.range.start_byte));
    let mut keep = vec![(start, end.min(start.saturating_add(max.saturating_sub(1))))];
    if rules.doc_follows_header() {
        let last = file.line_of(d.range.end_byte.saturating_sub(1));
        let mut line = end + 1;
        while line <= last && file.line(line).trim().is_empty() {
            line += 1;
        }
        let t = file.line(line).trim_start();
        let t = t.trim_start_matches(['r', 'b', 'u', 'f', 'R', 'B', 'U', 'F']);
        if line <= last && (t.starts_with("\"\"\"") || t.starts_with("'''") || t.starts_with('"')) {
            keep.push((line, line));
            if t.len() <= 4 && line < last {
                keep.push((line + 1, line + 1));
            }
        }
    }
    keep
}

/// Whether the last line of a definition only closes it (`}`, `};`, `end`).
fn closing_line(file: &FileOutline, last: u32) -> Option<u32> {
    let t = file.line(last).trim();
    (t.starts_with('}') || t.starts_with(')') || t == "end").then_some(last)
}

/// The lines of one member in a skeleton.
fn member_lines(file: &FileOutline, m: &Def, rules: &dyn Rules) -> Vec<(u32, u32)> {
    let start = file.line_of(m.range.start_byte);
    let first = lead_start(file, start, rules);
    let mut keep = lead_lines(file, first, start, rules);
    let max = match m.kind {
        SymbolKind::Field
        | SymbolKind::EnumMember
        | SymbolKind::Constant
        | SymbolKind::TypeAlias => 3,
        _ => MAX_MEMBER_HEADER_LINES,
    };
    keep.extend(header_lines(file, m, rules, max));
    keep
}

fn tokens_of(file: &FileOutline, e: &Excerpt) -> usize {
    e.tokens(file)
}

/// A definition's excerpt within `share` tokens: whole when it fits, else a skeleton. The
/// members named in `wanted` come right after the constructor. `None` when not even the
/// header fits.
pub(crate) fn shape(
    file: &FileOutline,
    index: u32,
    share: usize,
    wanted: &HashSet<&str>,
    rules: &dyn Rules,
) -> Option<(Excerpt, bool)> {
    let d = file.def(index)?;
    let (first, last) = full_span(file, d, rules);
    let whole = Excerpt::whole(first, last);
    if tokens_of(file, &whole) <= share {
        return Some((whole, false));
    }
    let start = file.line_of(d.range.start_byte);
    let mut keep = lead_lines(file, first, start, rules);
    keep.extend(header_lines(file, d, rules, u32::MAX));
    keep.extend(
        closing_line(file, last)
            .filter(|&l| l > start)
            .map(|l| (l, l)),
    );
    let mut excerpt = Excerpt::with(first, last, keep);
    if tokens_of(file, &excerpt) > share {
        // Not even the header: its first lines, as many as fit.
        let header_end = file.line_of(d.header_end.max(d.range.start_byte));
        let mut n = header_end;
        while n > start {
            n -= 1;
            let e = Excerpt::with(first, last, [(start, n)]);
            if tokens_of(file, &e) <= share {
                return Some((e, true));
            }
        }
        let e = Excerpt::with(first, last, [(start, start)]);
        return (tokens_of(file, &e) <= share).then_some((e, true));
    }
    // Members by priority: constructors, members the code uses, then in order.
    let members = file.members(index);
    let mut order: Vec<(u8, u32)> = members
        .iter()
        .filter_map(|&m| {
            let md = file.def(m)?;
            let rank = if rules.is_constructor(&md.name, Some(&d.name)) {
                0
            } else if wanted.contains(&*md.name) {
                1
            } else {
                2
            };
            Some((rank, m))
        })
        .collect();
    order.sort_by_key(|&(rank, m)| (rank, m));
    for (_, m) in order {
        let Some(md) = file.def(m) else { continue };
        let lines = member_lines(file, md, rules);
        let candidate = Excerpt::with(first, last, excerpt.keep.iter().copied().chain(lines));
        if tokens_of(file, &candidate) <= share {
            excerpt = candidate;
        }
    }
    Some((excerpt, true))
}

/// A long body within `share` tokens: its header (and closing line) plus a window of lines
/// around `focus` (a line or a span of lines), the rest elided.
pub(crate) fn window(
    file: &FileOutline,
    first: u32,
    last: u32,
    header_end: u32,
    focus: (u32, u32),
    share: usize,
) -> Excerpt {
    let whole = Excerpt::whole(first, last);
    if tokens_of(file, &whole) <= share {
        return whole;
    }
    let mut keep: Vec<(u32, u32)> = vec![(first, header_end.min(last))];
    keep.extend(
        closing_line(file, last)
            .filter(|&l| l > header_end)
            .map(|l| (l, l)),
    );
    let (fa, fb) = (focus.0.clamp(first, last), focus.1.clamp(first, last));
    let mut lo = fa;
    let mut hi = fb.max(fa);
    let mut best = Excerpt::with(first, last, keep.iter().copied());
    if tokens_of(file, &best) > share {
        return Excerpt::with(first, last, [(first, first)]);
    }
    // Grow the window around the focus, a few lines at a time, alternating up and down.
    let step = 4;
    loop {
        let candidate = Excerpt::with(first, last, keep.iter().copied().chain([(lo, hi)]));
        if tokens_of(file, &candidate) > share {
            break;
        }
        best = candidate;
        if lo == first && hi == last {
            break;
        }
        lo = lo.saturating_sub(step).max(first);
        hi = (hi + step).min(last);
    }
    // Fill what is left a line at a time, below the window first.
    loop {
        let grew = [
            (lo, (hi + 1).min(last)),
            (lo.saturating_sub(1).max(first), hi),
        ]
        .into_iter()
        .map(|(a, b)| Excerpt::with(first, last, keep.iter().copied().chain([(a, b)])))
        .find(|c| c != &best && tokens_of(file, c) <= share);
        match grew {
            Some(c) => {
                if let Some(&(a, b)) = c.keep.iter().find(|&&(a, b)| a <= fa && fa <= b) {
                    lo = a.max(first);
                    hi = b.min(last);
                }
                best = c;
                if lo == first && hi == last {
                    break;
                }
            }
            None => break,
        }
    }
    best
}

/// The widest run of whole lines around `focus` within `first..=last` that fits `share`
/// tokens (for a target an edit replaces: no marker lines).
pub(crate) fn span_around(
    file: &FileOutline,
    first: u32,
    last: u32,
    focus: (u32, u32),
    share: usize,
) -> (u32, u32) {
    let (fa, fb) = (focus.0.clamp(first, last), focus.1.clamp(first, last));
    let (mut lo, mut hi) = (fa, fb.max(fa));
    let cost = |a: u32, b: u32| tokens_of(file, &Excerpt::whole(a, b));
    if cost(lo, hi) > share {
        return (lo, hi);
    }
    loop {
        let up = lo > first && cost(lo - 1, hi) <= share;
        if up {
            lo -= 1;
        }
        let down = hi < last && cost(lo, hi + 1) <= share;
        if down {
            hi += 1;
        }
        if !up && !down {
            return (lo, hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::estimate_tokens;
    use super::*;
    use crate::analysis::Language;
    use std::path::Path;
    use std::sync::Arc;

    fn outline(lang: Language, name: &str, text: &str) -> FileOutline {
        FileOutline::scan(Arc::from(Path::new(name)), lang, Arc::from(text))
    }

    fn class_index(f: &FileOutline, name: &str) -> u32 {
        *f.top_level(name).first().expect("defined")
    }

    /// Every line the excerpt shows is the file's line at that number.
    fn assert_verbatim(f: &FileOutline, e: &Excerpt, text: &str) {
        let mut line = e.first;
        let mut elided = e.elided().into_iter().peekable();
        for shown in text.lines() {
            if let Some(&(a, b)) = elided.peek()
                && a == line
            {
                assert!(
                    shown.trim_start().starts_with('⋯'),
                    "marker for {a}-{b}: {shown}"
                );
                assert!(
                    shown.contains(&format!("{}", a + 1)),
                    "{shown} names {}",
                    a + 1
                );
                elided.next();
                line = b + 1;
                continue;
            }
            assert_eq!(shown, f.line(line), "line {line} verbatim");
            line += 1;
        }
    }

    #[test]
    fn a_long_python_class_keeps_its_colon_its_init_and_its_methods() {
        let mut src = String::from(
            "import os\n\n\n@decorated\nclass Client(BaseClient):\n    \"\"\"An HTTP client.\n\n    More.\n    \"\"\"\n\n    timeout: float = 5.0\n\n    def __init__(\n        self,\n        auth=None,\n    ) -> None:\n",
        );
        for i in 0..40 {
            src.push_str(&format!("        self.v{i} = {i}\n"));
        }
        src.push_str("\n    @property\n    def get(self, url: str) -> Response:\n        \"\"\"Send a GET.\"\"\"\n");
        for i in 0..40 {
            src.push_str(&format!("        x{i} = url + '{i}'\n"));
        }
        src.push_str("        return x\n");
        let f = outline(Language::Python, "/c.py", &src);
        let i = class_index(&f, "Client");
        let wanted = HashSet::new();
        let (e, skeleton) = shape(
            &f,
            i,
            150,
            &wanted,
            super::super::lang::rules(Language::Python).expect("rules"),
        )
        .expect("fits");
        assert!(skeleton);
        let text = e.render(&f);
        assert_verbatim(&f, &e, &text);
        assert!(
            text.contains("@decorated\nclass Client(BaseClient):\n    \"\"\"An HTTP client.\n"),
            "{text}"
        );
        assert!(text.contains("    timeout: float = 5.0\n"), "{text}");
        assert!(
            text.contains("    def __init__(\n        self,\n        auth=None,\n    ) -> None:\n"),
            "{text}"
        );
        assert!(text.contains("    @property\n    def get(self, url: str) -> Response:\n        \"\"\"Send a GET.\"\"\"\n"), "{text}");
        assert!(!text.contains("self.v3 = 3"), "bodies are elided: {text}");
        assert!(text.contains("⋯ lines"), "{text}");
    }

    #[test]
    fn a_long_rust_enum_keeps_its_brace_its_variants_and_their_commas() {
        let mut src = String::from("/// Kinds of things.\n#[derive(Debug)]\npub enum Kind {\n");
        for i in 0..30 {
            src.push_str(&format!(
                "    /// Variant {i}.\n    V{i} {{\n        a: u32,\n        b: u32,\n    }},\n"
            ));
        }
        src.push_str("}\n");
        let f = outline(Language::Rust, "/k.rs", &src);
        let i = class_index(&f, "Kind");
        let rules = super::super::lang::rules(Language::Rust).expect("rules");
        let (e, skeleton) = shape(&f, i, 200, &HashSet::new(), rules).expect("fits");
        assert!(skeleton);
        let text = e.render(&f);
        assert_verbatim(&f, &e, &text);
        assert!(
            text.starts_with("/// Kinds of things.\n#[derive(Debug)]\npub enum Kind {\n"),
            "{text}"
        );
        assert!(text.contains("    /// Variant 0.\n    V0 {\n"), "{text}");
        assert!(text.ends_with("}\n"), "{text}");
    }

    #[test]
    fn short_definitions_stay_whole() {
        let src = "fn a() -> u32 {\n    1\n}\n";
        let f = outline(Language::Rust, "/a.rs", src);
        let rules = super::super::lang::rules(Language::Rust).expect("rules");
        let (e, skeleton) =
            shape(&f, class_index(&f, "a"), 100, &HashSet::new(), rules).expect("fits");
        assert!(!skeleton);
        assert_eq!(e.render(&f), src);
    }

    #[test]
    fn a_long_body_keeps_its_header_and_a_window_around_the_cursor() {
        let mut src = String::from("fn huge(\n    a: u32,\n) -> u32 {\n");
        for i in 0..1300 {
            src.push_str(&format!("    let v{i} = a + {i};\n"));
        }
        src.push_str("}\n");
        let f = outline(Language::Rust, "/h.rs", &src);
        let last = f.line_count() - 2;
        let e = window(&f, 0, last, 2, (700, 700), 300);
        let text = e.render(&f);
        assert_verbatim(&f, &e, &text);
        assert!(
            text.starts_with("fn huge(\n    a: u32,\n) -> u32 {\n    ⋯ lines 4-"),
            "{text}"
        );
        assert!(text.contains("    let v697 = a + 697;\n"), "{text}");
        assert!(text.ends_with("}\n"));
        assert!(estimate_tokens(&text) <= 300);
    }
}
