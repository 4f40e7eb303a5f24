//! Tests of the module layering: no cycles, no front end below the session, front ends only translate.
//!
//! They read the sources (not the compiled crate). A dependency is a `crate::MODULE` path in
//! code, also inside a `crate::{…}` group. Comments, string and char literals, `tests.rs` files
//! and inline `mod tests { … }` blocks are not code for this purpose (a test may drive a module
//! through a layer above it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// The front ends: they translate a protocol to session calls. `mcp` and `acp` are covered as
/// soon as they exist.
const FRONT_ENDS: &[&str] = &["lsp", "cli", "mcp", "acp"];
/// Files at the top of `src/` that are no module of the layering.
const NOT_MODULES: &[&str] = &["lib", "main", "layering"];
/// The running parts only `session/` builds (front ends get them through a session).
const SESSION_PARTS: &[&str] = &[
    "Engine",
    "Orchestrator",
    "AuditLog",
    "Metrics",
    "SecretStore",
    "ProviderHandle",
];

/// A file's code: comments and the contents of string and char literals dropped, an inline
/// test module cut off.
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        if line.trim_start().starts_with("#[cfg(test)]") && next.contains("mod tests {") {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    strip_comments_and_literals(&kept)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Drops comments and what string and char literals hold (their quotes stay).
fn strip_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let after_ident = i > 0 && is_ident(at(i - 1));
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && !after_ident && (at(i + 1) == '"' || at(i + 1) == '#') {
            // A raw string: r"…", r#"…"#, …
            let mut hashes = 0;
            let mut j = i + 1;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) != '"' {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() && !(chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#')) {
                j += 1;
            }
            out.push_str("\"\"");
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i = j + 1;
        } else if c == '\'' && at(i + 1) == '\\' {
            // '\n', '\'', '\u{…}'
            let mut j = i + 3;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else if c == '\'' && at(i + 2) == '\'' {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
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

/// A source file: its path under `src/`, its top-level module, its code.
struct Source {
    rel: String,
    top: String,
    code: String,
    /// Lines of the file before its inline test module.
    lines: usize,
}

/// Every source file of the crate but `tests.rs` files.
fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let is_tests = path.file_name().is_some_and(|n| n == "tests.rs");
            if path.extension().is_none_or(|e| e != "rs") || is_tests {
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
            let text = std::fs::read_to_string(&path).expect("read source");
            let code = code(&text);
            out.push(Source {
                rel: rel.display().to_string(),
                top,
                lines: text[..text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len())]
                    .lines()
                    .count(),
                code,
            });
        }
    }
    out
}

/// The layers below the front ends: every top-level module that is not one (the engine and
/// the session).
fn core_modules(sources: &[Source]) -> BTreeSet<String> {
    sources
        .iter()
        .map(|s| s.top.clone())
        .filter(|t| !FRONT_ENDS.contains(&t.as_str()) && !NOT_MODULES.contains(&t.as_str()))
        .collect()
}

/// Module → module it uses → the files that use it.
type Edges = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn edges(sources: &[Source]) -> Edges {
    let mut edges = Edges::new();
    for s in sources {
        for used in named_modules(&s.code) {
            if used != s.top && !used.is_empty() {
                edges
                    .entry(s.top.clone())
                    .or_default()
                    .entry(used)
                    .or_default()
                    .insert(s.rel.clone());
            }
        }
    }
    edges
}

/// `PART::item` paths in `code` for each part (a construction, or another associated item).
fn associated_uses(code: &str, parts: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for part in parts {
        let needle = format!("{part}::");
        for (at, _) in code.match_indices(&needle) {
            if code[..at].chars().next_back().is_some_and(is_ident) {
                continue; // `MyEngine::`
            }
            let item: String = code[at + needle.len()..]
                .chars()
                .take_while(|c| is_ident(*c))
                .collect();
            out.push(format!("{part}::{item}"));
        }
    }
    out
}

#[test]
fn no_core_module_uses_a_front_end() {
    let sources = sources();
    let edges = edges(&sources);
    let mut wrong = Vec::new();
    for module in core_modules(&sources) {
        for (used, files) in edges.get(&module).into_iter().flatten() {
            if FRONT_ENDS.contains(&used.as_str()) {
                wrong.push(format!("{module} uses {used} in {files:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn core_modules_form_no_cycle() {
    let sources = sources();
    let core = core_modules(&sources);
    let edges = edges(&sources);
    let uses = |m: &str| -> Vec<String> {
        edges
            .get(m)
            .map(|to| to.keys().filter(|t| core.contains(*t)).cloned().collect())
            .unwrap_or_default()
    };
    let mut cycles = Vec::new();
    for from in &core {
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
                    path.push(from.clone());
                    path.reverse();
                    let files = &edges[from][&to];
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

/// Front ends only translate: none builds an engine part (only `session/` does), so every
/// front end runs the same setup (audit recovery, retention, secrets, metrics).
#[test]
fn front_ends_build_no_engine_part() {
    let mut wrong = Vec::new();
    for s in sources() {
        if FRONT_ENDS.contains(&s.top.as_str()) {
            for found in associated_uses(&s.code, SESSION_PARTS) {
                wrong.push(format!("{}: {found}", s.rel));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "front ends get engine parts through session::Session, never build them:\n{wrong:#?}"
    );
}

/// Each protocol's framework is spoken by its front end only: tower-lsp-server and its
/// `ls_types` by `lsp/`, rmcp by `mcp/`, agent-client-protocol by `acp/`.
#[test]
fn only_each_front_end_uses_its_protocol_framework() {
    const FRAMEWORKS: &[(&str, &str)] = &[
        ("tower_lsp_server", "lsp"),
        ("ls_types", "lsp"),
        ("rmcp", "mcp"),
        ("agent_client_protocol", "acp"),
    ];
    let mut wrong = Vec::new();
    for s in sources() {
        for (framework, owner) in FRAMEWORKS {
            let mentions = s.code.match_indices(framework).any(|(i, _)| {
                let before = s.code[..i].chars().next_back();
                !before.is_some_and(|c| is_ident(c) || c == '-')
            });
            if mentions && s.top != *owner {
                wrong.push(format!("{}: {framework}", s.rel));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The measure of thin front ends: the MCP and ACP adapters stay under 700 lines each, and
/// no source file reaches 800 (inline test modules and `tests.rs` files aside).
#[test]
fn front_ends_and_files_stay_small() {
    let sources = sources();
    for adapter in ["mcp", "acp"] {
        let lines: usize = sources
            .iter()
            .filter(|s| s.top == adapter)
            .map(|s| s.lines)
            .sum();
        assert!(lines > 0, "no {adapter}/ module");
        assert!(
            lines < 700,
            "{adapter}/ is {lines} lines: move rules into session/"
        );
    }
    let long: Vec<String> = sources
        .iter()
        .filter(|s| s.lines >= 800)
        .map(|s| format!("{}: {} lines", s.rel, s.lines))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn constructions_are_read_from_code() {
    let text = "let e = Arc::new(Engine::new());\nlet x = MyEngine::new(); // Orchestrator::new\nlet s = \"AuditLog::open\";\n/* Metrics::new() */ let c = '\"'; let m = Metrics::new();\n";
    assert_eq!(
        associated_uses(&code(text), SESSION_PARTS),
        ["Engine::new", "Metrics::new"]
    );
}

#[test]
fn dependencies_are_read_from_code() {
    let text = "//! uses crate::lsp in a comment\nuse crate::{config::{A, B}, uri};\nfn f<'a>() { crate::policy::decide(x) } // crate::cli\nlet u = \"http://x crate::lsp\"; let q = '\\''; crate::audit::f();\nlet r = r#\"crate::cli\"#;\n#[cfg(test)]\nmod tests {\n    use crate::engine::Engine;\n}\n";
    let found: Vec<String> = named_modules(&code(text)).into_iter().collect();
    assert_eq!(found, ["audit", "config", "policy", "uri"]);
}
