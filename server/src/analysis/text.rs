//! Text helpers shared by the tree-sitter extraction and the lexical tag scanner: one-line
//! signatures, quoted names, constant-case names.

/// Maximum length of a signature in bytes (always cut on a char boundary).
pub(crate) const MAX_SIGNATURE: usize = 200;

pub(crate) fn is_upper_case(name: &str) -> bool {
    name.chars().any(char::is_uppercase)
        && name
            .chars()
            .all(|c| c.is_uppercase() || c.is_numeric() || c == '_')
}

/// Strips one pair of matching quotes (`"`, `'` or `` ` ``).
pub(crate) fn strip_quotes(s: &str) -> &str {
    for q in ['"', '\'', '`'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

pub(crate) fn prefixed(prefix: &str, s: String) -> String {
    if s.is_empty() {
        return s;
    }
    let mut out = String::with_capacity(prefix.len() + s.len());
    out.push_str(prefix);
    out.push_str(&s);
    if out.len() > MAX_SIGNATURE {
        let mut cut = MAX_SIGNATURE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Collapses whitespace runs to single spaces and trims; at most [`MAX_SIGNATURE`] bytes.
/// With `strip_open`, a trailing `{` or `:` (the start of a body) is removed.
pub(crate) fn one_line(s: &str, strip_open: bool) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_SIGNATURE));
    let mut space = false;
    let mut truncated = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        let needed = c.len_utf8() + usize::from(space);
        if out.len() + needed > MAX_SIGNATURE {
            truncated = true;
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if strip_open
        && !truncated
        && (out.ends_with('{') || out.ends_with(':'))
        && !out.ends_with("::")
    {
        out.pop();
        let len = out.trim_end().len();
        out.truncate(len);
    }
    out
}

/// Collapses whitespace runs to single spaces and trims, without a length limit.
pub(crate) fn one_line_full(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The line breaks in `text[from..to]` as LSP counts them (`\n`, `\r\n`, a lone `\r`):
/// how many, and the byte after the last one. A `\r` whose `\n` follows (even past `to`)
/// is not counted: the `\n` is.
pub(crate) fn line_breaks(text: &[u8], from: usize, to: usize) -> (u32, Option<usize>) {
    let Some(chunk) = text.get(from..to) else {
        return (0, None);
    };
    let (mut count, mut after_last) = (0u32, None);
    for i in memchr::memchr2_iter(b'\n', b'\r', chunk) {
        let at = from + i;
        if text.get(at) == Some(&b'\r') && text.get(at + 1) == Some(&b'\n') {
            continue;
        }
        count = count.saturating_add(1);
        after_last = Some(at + 1);
    }
    (count, after_last)
}

/// Whether `text` has a `\r` that is not followed by `\n`: the one case where tree-sitter's
/// rows (which count `\n` only) differ from the lines a client counts.
pub(crate) fn has_lone_cr(text: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', text).any(|i| text.get(i + 1) != Some(&b'\n'))
}

/// The byte where each line starts, lines broken as LSP breaks them (see [`line_breaks`]).
pub(crate) fn line_starts(text: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            memchr::memchr2_iter(b'\n', b'\r', text)
                .filter(|&i| !(text.get(i) == Some(&b'\r') && text.get(i + 1) == Some(&b'\n')))
                .map(|i| i + 1),
        )
        .collect()
}
