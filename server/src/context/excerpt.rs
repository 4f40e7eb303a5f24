//! Verbatim excerpts: which lines of a file a context item shows, and the one marker line
//! that stands in for each run of lines left out (naming those lines).

use std::sync::Arc;

use super::outline::FileOutline;

/// The lines an item shows: `keep` holds sorted, disjoint, inclusive 0-based line ranges
/// inside `first..=last`; every other line of that span is elided, each run by one marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Excerpt {
    pub first: u32,
    pub last: u32,
    pub keep: Vec<(u32, u32)>,
}

impl Excerpt {
    /// Every line of `first..=last`.
    pub(crate) fn whole(first: u32, last: u32) -> Excerpt {
        let last = last.max(first);
        Excerpt {
            first,
            last,
            keep: vec![(first, last)],
        }
    }

    /// The span `first..=last` showing only `keep` (clipped, sorted and merged).
    pub(crate) fn with(
        first: u32,
        last: u32,
        keep: impl IntoIterator<Item = (u32, u32)>,
    ) -> Excerpt {
        let last = last.max(first);
        let mut ranges: Vec<(u32, u32)> = keep
            .into_iter()
            .filter_map(|(a, b)| {
                let (a, b) = (a.min(b).max(first), a.max(b).min(last));
                (a <= b).then_some((a, b))
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(prev) if a <= prev.1.saturating_add(1) => prev.1 = prev.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Excerpt {
            first,
            last,
            keep: merged,
        }
    }

    /// The union of two excerpts of the same file.
    pub(crate) fn union(&self, other: &Excerpt) -> Excerpt {
        Excerpt::with(
            self.first.min(other.first),
            self.last.max(other.last),
            self.keep.iter().chain(other.keep.iter()).copied(),
        )
    }

    /// These lines left out (each kept range that meets them is cut).
    pub(crate) fn without(&self, a: u32, b: u32) -> Excerpt {
        let mut keep = Vec::with_capacity(self.keep.len() + 1);
        for &(x, y) in &self.keep {
            if y < a || x > b {
                keep.push((x, y));
                continue;
            }
            if x < a {
                keep.push((x, a - 1));
            }
            if y > b {
                keep.push((b + 1, y));
            }
        }
        Excerpt {
            first: self.first,
            last: self.last,
            keep,
        }
    }

    /// Whether a line is shown.
    #[cfg(test)]
    pub(crate) fn shows(&self, line: u32) -> bool {
        self.keep.iter().any(|&(a, b)| a <= line && line <= b)
    }

    /// How many lines are shown.
    pub(crate) fn shown(&self) -> u32 {
        self.keep.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// The runs of lines left out, in order.
    pub(crate) fn elided(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        let mut next = self.first;
        for &(a, b) in &self.keep {
            if a > next {
                out.push((next, a - 1));
            }
            next = b + 1;
        }
        if next <= self.last {
            out.push((next, self.last));
        }
        out
    }

    /// Whether the excerpt shows any line of `a..=b`.
    pub(crate) fn shows_any(&self, a: u32, b: u32) -> bool {
        self.keep.iter().any(|&(x, y)| x <= b && a <= y)
    }

    /// Whether two excerpts show a line in common.
    pub(crate) fn intersects(&self, other: &Excerpt) -> bool {
        self.keep.iter().any(|&(a, b)| other.shows_any(a, b))
    }

    /// An upper bound of the token estimate of [`Excerpt::render`], from per-line estimates
    /// kept with the file (each line break costs one token; blank lines make it an
    /// overestimate, never an under one).
    pub(crate) fn tokens(&self, file: &FileOutline) -> usize {
        let kept: usize = self
            .keep
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .map(|l| file.line_tokens(l) + 1)
            .sum();
        let markers: usize = self
            .elided()
            .iter()
            .map(|&(a, b)| super::estimate_tokens(&marker("", a, b, Some("(the selection)"))) + 1)
            .sum();
        kept + markers
    }

    /// The text: kept lines verbatim (with their own line breaks), one marker line per
    /// elided run.
    pub(crate) fn render(&self, file: &FileOutline) -> String {
        self.render_with(file, |_, _| None)
    }

    /// [`Excerpt::render`] with markers worded by `note` where it has something to say
    /// (for lines shown elsewhere in the prompt).
    pub(crate) fn render_with(
        &self,
        file: &FileOutline,
        note: impl Fn(u32, u32) -> Option<&'static str>,
    ) -> String {
        let mut out = String::new();
        let mut elided = self.elided().into_iter().peekable();
        let mut line = self.first;
        while line <= self.last {
            if let Some(&(a, b)) = elided.peek()
                && a == line
            {
                elided.next();
                let indent = super::lang::indent_of(file.line(a));
                out.push_str(&marker(indent, a, b, note(a, b)));
                out.push_str(file.line_break(b).unwrap_or("\n"));
                line = b + 1;
                continue;
            }
            out.push_str(file.line(line));
            out.push_str(file.line_break(line).unwrap_or(""));
            line += 1;
        }
        out
    }
}

/// The marker line for elided lines `a..=b` (0-based; the marker names them 1-based).
pub(crate) fn marker(indent: &str, a: u32, b: u32, note: Option<&str>) -> String {
    let what = if a == b {
        format!("line {}", a + 1)
    } else {
        format!("lines {}-{}", a + 1, b + 1)
    };
    match note {
        Some(n) => format!("{indent}⋯ {what} {n}"),
        None => format!("{indent}⋯ {what} elided"),
    }
}

/// An excerpt with the file it is of.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub file: Arc<FileOutline>,
    pub excerpt: Excerpt,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Language;
    use std::path::Path;

    fn file(text: &str) -> FileOutline {
        FileOutline::scan(
            Arc::from(Path::new("/x.py")),
            Language::Python,
            Arc::from(text),
        )
    }

    #[test]
    fn markers_stand_for_each_elided_run_and_name_it() {
        let f = file("a\n  b\n  c\nd\ne\nf\n");
        let e = Excerpt::with(0, 5, [(0, 0), (3, 3)]);
        assert_eq!(e.elided(), vec![(1, 2), (4, 5)]);
        assert_eq!(
            e.render(&f),
            "a\n  ⋯ lines 2-3 elided\nd\n⋯ lines 5-6 elided\n"
        );
        assert_eq!(Excerpt::whole(1, 1).render(&f), "  b\n");
    }

    proptest::proptest! {
        /// The fast estimate budgets rely on never counts fewer tokens than the rendered text
        /// has (it may count more: blank lines).
        #[test]
        fn the_fast_estimate_bounds_the_rendered_one(
            runs in proptest::collection::vec((0u32..60, 0u32..8), 0..6),
        ) {
            let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/symbols/sample.py")).unwrap_or_default();
            let f = file(&text);
            let last = f.line_count().saturating_sub(1);
            let e = Excerpt::with(0, last, runs.iter().map(|&(a, n)| (a, a + n)));
            proptest::prop_assert!(e.tokens(&f) >= crate::context::estimate_tokens(&e.render(&f)));
        }
    }

    #[test]
    fn unions_merge_and_cuts_split() {
        let a = Excerpt::with(0, 9, [(0, 2)]);
        let b = Excerpt::with(5, 12, [(3, 6), (12, 12)]);
        let u = a.union(&b);
        assert_eq!((u.first, u.last), (0, 12));
        assert_eq!(u.keep, vec![(0, 2), (5, 6), (12, 12)]);
        let cut = u.without(2, 5);
        assert_eq!(cut.keep, vec![(0, 1), (6, 6), (12, 12)]);
        assert!(cut.shows(6) && !cut.shows(5));
        assert_eq!(cut.shown(), 4);
    }
}
