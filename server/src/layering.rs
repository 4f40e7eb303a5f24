//! A test of the module layering: the engine's top-level modules form no cycle and use no front end.
//!
//! It reads the sources (not the compiled crate): a dependency is a `crate::MODULE` path in
//! code, also inside a `crate::{…}` group. Comment lines, `tests.rs` files and inline
//! `mod tests { … }` blocks are not code for this purpose (a test may drive a module through a
//! layer above it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The engine's top-level modules. The front ends (`lsp`, `cli`) may use all of them.
const ENGINE: &[&str] = &[
    "agents",
    "analysis",
    "audit",
    "config",
    "context",
    "documents",
    "engine",
    "index",
    "metrics",
    "policy",
    "process",
    "providers",
    "secrets",
    "telemetry",
    "uri",
];
const FRONT_ENDS: &[&str] = &["lsp", "cli"];

/// A file's code: comment lines and trailing comments dropped, an inline test module cut off.
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        if trimmed.starts_with("#[cfg(test)]") && next.contains("mod tests {") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        // `//` not after `:` (a URL in a string stays).
        let end = line
            .match_indices("//")
            .find(|(at, _)| !line[..*at].ends_with(':'))
            .map_or(line.len(), |(at, _)| at);
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
}

/// The top-level modules `code` names through `crate::` paths.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level items: split at commas outside nested braces.
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(first_segment(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.insert(first_segment(&item));
        } else {
            out.insert(first_segment(rest));
        }
    }
    out
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Module → module it uses → the files that use it.
type Edges = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn edges() -> Edges {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = Edges::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let top = rel
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap_or("")
                .trim_end_matches(".rs")
                .to_string();
            let is_tests = path.file_name().is_some_and(|n| n == "tests.rs");
            if path.extension().is_none_or(|e| e != "rs") || is_tests {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            for used in named_modules(&code(&text)) {
                if used != top && !used.is_empty() {
                    edges
                        .entry(top.clone())
                        .or_default()
                        .entry(used)
                        .or_default()
                        .insert(rel.display().to_string());
                }
            }
        }
    }
    edges
}

#[test]
fn no_engine_module_uses_a_front_end() {
    let edges = edges();
    let mut wrong = Vec::new();
    for module in ENGINE {
        for (used, files) in edges.get(*module).into_iter().flatten() {
            if FRONT_ENDS.contains(&used.as_str()) {
                wrong.push(format!("{module} uses {used} in {files:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn engine_modules_form_no_cycle() {
    let edges = edges();
    let uses = |m: &str| -> Vec<String> {
        edges
            .get(m)
            .map(|to| {
                to.keys()
                    .filter(|t| ENGINE.contains(&t.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut cycles = Vec::new();
    for from in ENGINE {
        for to in uses(from) {
            // A path back from `to` to `from` closes a cycle through the edge from → to.
            let mut back: BTreeMap<String, String> = BTreeMap::new();
            let mut queue = VecDeque::from([to.clone()]);
            while let Some(m) = queue.pop_front() {
                if m == *from {
                    let mut path = vec![m.clone()];
                    let mut at = m;
                    while let Some(prev) = back.get(&at) {
                        path.push(prev.clone());
                        at = prev.clone();
                    }
                    path.push(from.to_string());
                    path.reverse();
                    let files = &edges[*from][&to];
                    cycles.push(format!("{} (first edge in {files:?})", path.join(" → ")));
                    break;
                }
                for next in uses(&m) {
                    if next != to && !back.contains_key(&next) {
                        back.insert(next.clone(), m.clone());
                        queue.push_back(next);
                    }
                }
            }
        }
    }
    assert!(cycles.is_empty(), "{cycles:#?}");
}

#[test]
fn dependencies_are_read_from_code() {
    let text = "//! uses crate::lsp in a comment\nuse crate::{config::{A, B}, uri};\nfn f() { crate::policy::decide(x) } // crate::cli\nlet u = \"http://x\"; crate::audit::f();\n#[cfg(test)]\nmod tests {\n    use crate::engine::Engine;\n}\n";
    let found: Vec<String> = named_modules(&code(text)).into_iter().collect();
    assert_eq!(found, ["audit", "config", "policy", "uri"]);
}
