//! Criterion benchmarks for the hot paths: edits, incremental reparse, context capture,
//! request latency while a large file opens, and cold start. Numbers go to README's Performance section.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use infinity_matrix::context::ContextRequest;
use infinity_matrix::documents::{DocumentStore, Position, PositionEncoding, Range, TextChange};
use infinity_matrix::engine::{Engine, path_to_uri};
use serde_json::{Value, json};

/// A realistic Rust file of about `lines` lines: structs, impls, functions calling each other.
fn rust_file(lines: usize, prefix: &str) -> String {
    let mut out = String::from("use std::collections::HashMap;\nuse crate::util::helper;\n\n");
    let mut i = 0;
    while out.lines().count() < lines {
        out.push_str(&format!(
            "/// Item number {i}.\npub struct {prefix}Item{i} {{\n    id: u64,\n    name: String,\n}}\n\n\
             impl {prefix}Item{i} {{\n    pub fn new(id: u64) -> Self {{\n        Self {{ id, name: format!(\"item-{{id}}\") }}\n    }}\n\n\
             \x20   pub fn score(&self, weights: &HashMap<u64, f64>) -> f64 {{\n        let w = weights.get(&self.id).copied().unwrap_or(1.0);\n\
             \x20       helper(self.id) as f64 * w + {prefix}compute_{i}(self.id)\n    }}\n}}\n\n\
             pub fn {prefix}compute_{i}(x: u64) -> f64 {{\n    let mut acc = 0.0;\n    for k in 0..x {{\n        acc += (k as f64).sqrt();\n    }}\n    acc\n}}\n\n"
        ));
        i += 1;
    }
    out
}

/// Keystroke `i` at `(line, col)`: types an "x" (even `i`) or deletes it again (odd `i`), so
/// the file stays the same size and valid.
fn toggle_char(store: &DocumentStore, uri: &str, version: i32, (line, col): (u32, u32), i: u64) {
    let pos = Position::new(line, col);
    let end = Position::new(line, col + (i % 2) as u32);
    let change = TextChange {
        range: Some(Range::new(pos, end)),
        text: if i.is_multiple_of(2) {
            "x".into()
        } else {
            String::new()
        },
    };
    store
        .change(uri, version, &[change], PositionEncoding::Utf16)
        .ok();
}

/// A Java file of about `lines` lines: one public class holding everything, as Java files do.
fn java_class_file(lines: usize) -> String {
    let mut out = String::from("package bench;\n\nimport java.util.Map;\n\npublic class Big {\n");
    let mut i = 0;
    while out.lines().count() < lines {
        out.push_str(&format!(
            "    /** Item number {i}. */\n    public double score{i}(Map<Long, Double> weights, long id) {{\n\
             \x20       double w = weights.getOrDefault(id, 1.0);\n        return helper(id) * w + compute{i}(id);\n    }}\n\n\
             \x20   static double compute{i}(long x) {{\n        double acc = 0.0;\n        for (long k = 0; k < x; k++) {{\n\
             \x20           acc += Math.sqrt(k);\n        }}\n        return acc;\n    }}\n\n"
        ));
        i += 1;
    }
    out.push_str("    static long helper(long x) {\n        return x * 2;\n    }\n}\n");
    out
}

/// The incremental reparse after a keystroke in a 10,000-line Java file whose top level is
/// one class (its body's members are split into segments), and what a reader waits for.
fn wrapped(c: &mut Criterion) {
    let text = java_class_file(10_000);
    let store = DocumentStore::new();
    let uri = "file:///bench/Big.java";
    store.open(uri, None, "java", 1, &text);
    let _ = store.snapshot(uri);
    let doc = store.get(uri).expect("open");
    let (line, col) = text
        .lines()
        .enumerate()
        .skip(5_000)
        .find_map(|(i, l)| l.find("double w").map(|c| (i as u32, c as u32 + 8)))
        .expect("a local in the middle of the file");
    let mut version = 1;
    bench_steps(
        c,
        "edit/incremental reparse after one keystroke, 10k-line Java file (one class)",
        |i| {
            version += 1;
            toggle_char(&store, uri, version, (line, col), i);
            let mut d = doc.lock();
            let start = Instant::now();
            let tree = d.reparse();
            let took = start.elapsed();
            drop(d);
            assert!(tree.is_some_and(|t| t.is_wrapped() && t.tree_count() > 1));
            took
        },
    );
    bench_steps(
        c,
        "edit/snapshot (reparse + symbols) after one keystroke, 10k-line Java file (one class)",
        |i| {
            version += 1;
            toggle_char(&store, uri, version, (line, col), i);
            let start = Instant::now();
            let snap = store.snapshot(uri);
            let took = start.elapsed();
            assert!(snap.is_some_and(|s| s.analysis.symbols.len() == 1));
            took
        },
    );
}

fn edits(c: &mut Criterion) {
    let text = rust_file(10_000, "");
    let store = DocumentStore::new();
    let uri = "file:///bench/big.rs";
    store.open(uri, None, "rust", 1, &text);
    let _ = store.snapshot(uri); // parse once
    let mut version = 1;
    let line = 5_000u32;
    c.bench_function("edit/apply one char, 10k-line file", |b| {
        b.iter(|| {
            version += 1;
            let pos = Position::new(line, 4);
            let change = TextChange {
                range: Some(Range::new(pos, pos)),
                text: "x".into(),
            };
            store
                .change(uri, version, &[change], PositionEncoding::Utf16)
                .ok();
            version += 1;
            let end = Position::new(line, 5);
            let undo = TextChange {
                range: Some(Range::new(pos, end)),
                text: String::new(),
            };
            store
                .change(uri, version, &[undo], PositionEncoding::Utf16)
                .ok();
        })
    });
    // The incremental reparse that follows a keystroke (trees edited in step, then parsed):
    // typing one character into a name inside a function body and deleting it again, so the
    // file stays the same size and valid.
    let doc = store.get(uri).expect("open");
    let (typing_line, typing_col) = text
        .lines()
        .enumerate()
        .skip(line as usize)
        .find_map(|(i, l)| l.find("let w").map(|c| (i as u32, c as u32 + 5)))
        .expect("a let in the middle of the file");
    let mut keystroke = |text: &str, undo: bool| {
        version += 1;
        let pos = Position::new(typing_line, typing_col);
        let end = Position::new(typing_line, typing_col + if undo { 1 } else { 0 });
        let change = TextChange {
            range: Some(Range::new(pos, end)),
            text: text.into(),
        };
        store
            .change(uri, version, &[change], PositionEncoding::Utf16)
            .ok();
        let mut d = doc.lock();
        let start = Instant::now();
        let tree = d.reparse();
        let took = start.elapsed();
        drop(d);
        assert!(tree.is_some());
        took
    };
    keystroke("x", false);
    keystroke("", true);
    let split = doc.lock().reparse().map_or(0, |t| t.tree_count());
    assert!(split > 1, "the 10k-line file is parsed in segments");
    bench_steps(
        c,
        "edit/incremental reparse after one keystroke, 10k-line file",
        |i| {
            if i % 2 == 0 {
                keystroke("x", false)
            } else {
                keystroke("", true)
            }
        },
    );
    // A keystroke that leaves a syntax error (an unclosed parenthesis): the whole file's
    // tree is reparsed too. Only the breaking keystroke is timed; the mending one is not.
    bench_steps(
        c,
        "edit/incremental reparse after a keystroke leaving a syntax error, 10k-line file",
        |_| {
            let took = keystroke("(", false);
            keystroke("", true);
            took
        },
    );
    // What a reader waits for after a keystroke: the reparse plus the file's symbols.
    bench_steps(
        c,
        "edit/snapshot (reparse + symbols) after one keystroke, 10k-line file",
        |i| {
            version += 1;
            toggle_char(&store, uri, version, (typing_line, typing_col), i);
            let start = Instant::now();
            let snap = store.snapshot(uri);
            let took = start.elapsed();
            assert!(snap.is_some_and(|s| !s.analysis.symbols.is_empty()));
            took
        },
    );
}

/// A benchmark whose iteration `i` times itself (`step(i)` returns the time to count).
fn bench_steps(c: &mut Criterion, name: &str, mut step: impl FnMut(u64) -> Duration) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| (0..iters).map(&mut step).sum())
    });
}

fn context(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(
        src.join("util.rs"),
        "pub fn helper(x: u64) -> u64 {\n    x * 2\n}\n",
    )
    .expect("write");
    for k in 0..20 {
        std::fs::write(
            src.join(format!("mod{k}.rs")),
            rust_file(300, &format!("M{k}")),
        )
        .expect("write");
    }
    let big = rust_file(5_000, "");
    let path = src.join("main.rs");
    std::fs::write(&path, &big).expect("write");
    let engine = Engine::new();
    engine.set_roots(vec![dir.path().to_path_buf()]);
    engine.index_workspace(&|_| {});
    let uri = path_to_uri(&path);
    engine.open_document(&uri, Some(path.clone()), "rust", 1, &big);
    let snap = engine.snapshot(&uri).expect("snapshot");
    // Inside `score` of an impl in the middle of the file: uses helper (another file) and compute_N.
    let line = big
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("helper(self.id)"))
        .map(|(i, _)| i)
        .nth(120)
        .unwrap_or(0);
    let req = ContextRequest::at(Position::new(line as u32, 10), PositionEncoding::Utf16);
    let sample = engine.context(&snap, &req).expect("context");
    assert!(
        sample
            .items
            .iter()
            .any(|i| i.uri.ends_with("util.rs") && i.reason.contains("(resolved)")),
        "cross-file definition resolved through the import"
    );
    c.bench_function("context/snapshot in 5k-line file, warm index", |b| {
        b.iter(|| engine.context(&snap, &req))
    });

    // The first request on a file just opened: a new engine each time (index built, not
    // timed), then open, parse, outline, resolution and the files imports reach, all cold.
    let root = dir.path().to_path_buf();
    bench_steps(
        c,
        "context/first request on a 5k-line file just opened, nothing cached",
        |_| {
            let engine = Engine::new();
            engine.set_roots(vec![root.clone()]);
            engine.index_workspace(&|_| {});
            let start = Instant::now();
            engine.open_document(&uri, Some(path.clone()), "rust", 1, &big);
            let snap = engine.snapshot(&uri).expect("snapshot");
            let ctx = engine.context(&snap, &req).expect("context");
            let took = start.elapsed();
            assert!(!ctx.items.is_empty());
            took
        },
    );
}

/// Minimal framing client for the process benchmarks.
struct Proc {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
}

impl Proc {
    fn spawn() -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_infinity-matrix"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Proc { child, stdin, out }
    }
    fn send(&mut self, v: &Value) {
        let body = serde_json::to_vec(v).expect("json");
        let _ = write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len());
        let _ = self.stdin.write_all(&body);
        let _ = self.stdin.flush();
    }
    fn recv_id(&mut self, id: i64) -> Value {
        loop {
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if self.out.read_line(&mut line).unwrap_or(0) == 0 {
                    panic!("server closed");
                }
                let t = line.trim();
                if t.is_empty() {
                    break;
                }
                if let Some(v) = t.strip_prefix("Content-Length: ") {
                    len = v.parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            self.out.read_exact(&mut body).expect("body");
            let v: Value = serde_json::from_slice(&body).expect("json");
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                return v;
            }
        }
    }
    fn initialize(&mut self, root: &Path) {
        self.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":null,"rootUri":path_to_uri(root),"capabilities":{}}}));
        self.recv_id(0);
        self.send(&json!({"jsonrpc":"2.0","method":"initialized","params":{}}));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn process(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("process");
    group.sample_size(30);
    group.bench_function("cold start: spawn to initialize result", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut p = Proc::spawn();
                p.send(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":null,"rootUri":path_to_uri(dir.path()),"capabilities":{}}}));
                p.recv_id(0);
                total += start.elapsed();
            }
            total
        })
    });
    let big = rust_file(6_000, ""); // about 200 KB
    let mut p = Proc::spawn();
    p.initialize(dir.path());
    let mut id = 1;
    group.bench_function("request with nothing else going on", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                id += 1;
                p.send(&json!({"jsonrpc":"2.0","id":id,"method":"workspace/symbol","params":{"query":"zzzz"}}));
                p.recv_id(id);
                total += start.elapsed();
            }
            total
        })
    });
    let mut n = 0;
    group.sample_size(10);
    group.bench_function("request right after didOpen of a 200 KB file", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let uri = format!("file:///bench/open{n}.rs");
                // Timed from the moment the didOpen is on its way: the request queues behind it.
                let start = Instant::now();
                p.send(&json!({"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":uri,"languageId":"rust","version":1,"text":big}}}));
                id += 1;
                p.send(&json!({"jsonrpc":"2.0","id":id,"method":"workspace/symbol","params":{"query":"zzzz"}}));
                p.recv_id(id);
                total += start.elapsed();
                p.send(&json!({"jsonrpc":"2.0","method":"textDocument/didClose","params":{"textDocument":{"uri":uri}}}));
                // Let the background parse of this file finish before the next sample.
                std::thread::sleep(Duration::from_millis(150));
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, edits, wrapped, context, process);
criterion_main!(benches);
