//! Rendering the registry as Prometheus text exposition format 0.0.4.

use std::fmt::Write;

use super::{Kind, Labels, Registry, Series, help_for};

/// Every family with a `# HELP` and a `# TYPE` line, then its series; histograms as cumulative
/// `_bucket{le="..."}` lines ending with `le="+Inf"`, then `_sum` and `_count`.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    for (name, family) in &registry.families {
        let help = registry
            .help
            .get(name)
            .map(String::as_str)
            .or_else(|| help_for(name))
            .unwrap_or("Infinity Matrix metric.");
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
        for (labels, series) in &family.series {
            match (family.kind, series) {
                (Kind::Counter, Series::Counter(v)) => {
                    let _ = writeln!(out, "{name}{} {v}", label_set(labels, None));
                }
                (Kind::Gauge, Series::Gauge(v)) => {
                    let _ = writeln!(out, "{name}{} {}", label_set(labels, None), float(*v));
                }
                (Kind::Histogram, Series::Histogram(h)) => {
                    for bucket in h.cumulative() {
                        let le = float(bucket.le);
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            label_set(labels, Some(&le)),
                            bucket.count
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        label_set(labels, Some("+Inf")),
                        h.count
                    );
                    let _ = writeln!(
                        out,
                        "{name}_sum{} {}",
                        label_set(labels, None),
                        float(h.sum)
                    );
                    let _ = writeln!(out, "{name}_count{} {}", label_set(labels, None), h.count);
                }
                // The registry never stores a series of another kind in a family.
                _ => {}
            }
        }
    }
    out
}

/// `{a="x",b="y"}` (with `le` last when given), or nothing for no labels.
fn label_set(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut out = String::from("{");
    let mut first = true;
    let pairs = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(le.map(|le| ("le", le)));
    for (key, value) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(key);
        out.push_str("=\"");
        out.push_str(&escape_label_value(value));
        out.push('"');
    }
    out.push('}');
    out
}

/// Label values escape backslash, double quote and line feed.
pub(crate) fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Help text escapes backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Go-compatible float text: `NaN`, `+Inf`, `-Inf`, or the shortest decimal.
pub(crate) fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}
