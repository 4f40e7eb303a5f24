//! Process measurements of a whole session over real stdio (not criterion: each is a handful
//! of numbers per run, printed): 200 real source files opened, then a probe; memory with them
//! open and over a long session; a 20 MB document; the first and a warm AI request against a
//! loopback provider (time until the provider has the request's body).
//!
//! `cargo bench --bench session`. Real files come from the cargo registry (`cargo fetch`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Proc {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    out: BufReader<std::process::ChildStdout>,
    id: i64,
}

impl Proc {
    fn spawn(data: &Path) -> Proc {
        // IM_BENCH_WRAP="valgrind --tool=massif ..." runs the server under a profiler.
        let wrap = std::env::var("IM_BENCH_WRAP").unwrap_or_default();
        let mut words: Vec<String> = wrap.split_whitespace().map(str::to_string).collect();
        words.push(env!("CARGO_BIN_EXE_infinity-matrix").to_string());
        let mut child = Command::new(words.remove(0))
            .args(words)
            .arg("lsp")
            .env("XDG_DATA_HOME", data.join("data"))
            .env("XDG_CONFIG_HOME", data.join("config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take().expect("stdin");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Proc {
            child,
            stdin,
            out,
            id: 0,
        }
    }

    fn send(&mut self, v: &Value) {
        let body = serde_json::to_vec(v).expect("json");
        let _ = write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len());
        let _ = self.stdin.write_all(&body);
        let _ = self.stdin.flush();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.recv_id(id)
    }

    /// Reads messages until the response to `id`; answers server requests with null.
    fn recv_id(&mut self, id: i64) -> Value {
        loop {
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                assert!(
                    self.out.read_line(&mut line).unwrap_or(0) > 0,
                    "server closed"
                );
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
            if v.get("method").is_some() && v.get("id").is_some() {
                let reply = json!({"jsonrpc": "2.0", "id": v["id"], "result": null});
                self.send(&reply);
                continue;
            }
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                return v;
            }
        }
    }

    fn initialize(&mut self, root: &Path, options: Value) {
        self.request(
            "initialize",
            json!({"processId": null, "rootUri": uri(root), "capabilities": {},
                   "initializationOptions": options}),
        );
        self.notify("initialized", json!({}));
    }

    /// (RssAnon, RssFile) in KiB: the heap and stacks, and the mapped executable.
    fn memory_parts(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("RssAnon:"), field("RssFile:"))
    }

    /// (VmRSS, VmHWM) in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // An orderly end (a profiler wrapping the server writes its report then), else a kill.
        self.id += 1;
        let id = self.id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "shutdown"}));
        self.send(&json!({"jsonrpc": "2.0", "method": "exit"}));
        for _ in 0..600 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn uri(path: &Path) -> String {
    infinity_matrix::engine::path_to_uri(path)
}

/// 200 Rust files of 1–100 KiB from the cargo registry, picked evenly from the sorted list.
fn registry_files() -> Vec<PathBuf> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let mut files = Vec::new();
    let mut stack = vec![home.join("registry/src")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && let Ok(m) = e.metadata()
                && (1024..=100 * 1024).contains(&m.len())
            {
                files.push(p);
            }
        }
    }
    files.sort();
    let step = (files.len() / 200).max(1);
    files.into_iter().step_by(step).take(200).collect()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// 200 files opened, then a probe; memory then and over a long session.
fn many_files(tmp: &Path) {
    let files = registry_files();
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|p| Some((uri(p), std::fs::read_to_string(p).ok()?)))
        .collect();
    let total: usize = texts.iter().map(|(_, t)| t.len()).sum();
    println!(
        "session: {} registry files open, {} KiB of source",
        texts.len(),
        total / 1024
    );
    let root = tmp.join("empty");
    std::fs::create_dir_all(&root).expect("mkdir");
    for round in 0..3 {
        let mut p = Proc::spawn(tmp);
        p.initialize(&root, json!({}));
        let start = Instant::now();
        for (u, t) in &texts {
            p.notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": u, "languageId": "rust", "version": 1, "text": t}}),
            );
        }
        p.request("workspace/symbol", json!({"query": "zzzz"}));
        println!(
            "session: 200 didOpens -> probe answered (run {}): {}",
            round + 1,
            ms(start.elapsed())
        );
        if round < 2 {
            continue;
        }
        std::thread::sleep(Duration::from_secs(2));
        let (rss, hwm) = p.memory();
        let (anon, file) = p.memory_parts();
        println!(
            "session: with the files open: VmRSS {rss} KiB (anonymous {anon}, executable and other files {file}), VmHWM {hwm} KiB"
        );
        if std::env::var("IM_BENCH_SHORT").is_ok() {
            return;
        }
        // A long session: every file edited, symbols and context asked for, files closed and
        // opened again; RSS after each round.
        let mut version = 1;
        let mut rounds = Vec::new();
        for r in 0..8 {
            version += 1;
            for (i, (u, _)) in texts.iter().enumerate() {
                p.notify(
                    "textDocument/didChange",
                    json!({"textDocument": {"uri": u, "version": version},
                           "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "//x\n"}]}),
                );
                if i % 10 == r % 10 {
                    p.request(
                        "textDocument/documentSymbol",
                        json!({"textDocument": {"uri": u}}),
                    );
                    p.request(
                        "infinityMatrix/context",
                        json!({"textDocument": {"uri": u}, "position": {"line": 5, "character": 0}}),
                    );
                }
            }
            for (u, t) in texts.iter().skip(r * 20).take(20) {
                p.notify("textDocument/didClose", json!({"textDocument": {"uri": u}}));
                p.notify(
                    "textDocument/didOpen",
                    json!({"textDocument": {"uri": u, "languageId": "rust", "version": version, "text": t}}),
                );
            }
            p.request("workspace/symbol", json!({"query": "zzzz"}));
            // Settled: background parses done, the idle release of freed memory past.
            std::thread::sleep(Duration::from_millis(2500));
            rounds.push(p.memory().0);
        }
        let (rss, hwm) = p.memory();
        println!(
            "session: VmRSS after each of 8 rounds (KiB): {rounds:?}; VmHWM {hwm} KiB, VmRSS now {rss} KiB"
        );
    }
}

/// A 20 MB document opened, read and closed; a 5 MB one opened and closed five times.
fn large_documents(tmp: &Path) {
    let mut p = Proc::spawn(tmp);
    let root = tmp.join("empty");
    std::fs::create_dir_all(&root).expect("mkdir");
    p.initialize(&root, json!({}));
    let text = |mb: usize| -> String {
        let line = "    let value = compute(alpha, beta, gamma) + other_function(delta);\n";
        let mut t = String::from("fn big() {\n");
        while t.len() < mb * 1024 * 1024 {
            t.push_str(line);
        }
        t.push_str("}\n");
        t
    };
    let big = text(20);
    let u = "file:///bench/big.rs";
    let start = Instant::now();
    p.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "rust", "version": 1, "text": big}}),
    );
    p.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": u}}),
    );
    let symbols = start.elapsed();
    p.request(
        "infinityMatrix/context",
        json!({"textDocument": {"uri": u}, "position": {"line": 1000, "character": 4}}),
    );
    let (rss, hwm) = p.memory();
    p.notify("textDocument/didClose", json!({"textDocument": {"uri": u}}));
    p.request("workspace/symbol", json!({"query": "zzzz"}));
    std::thread::sleep(Duration::from_millis(300));
    let (after, _) = p.memory();
    println!(
        "session: 20 MB document: didOpen -> documentSymbol {}; open: VmRSS {rss} KiB, VmHWM {hwm} KiB; after didClose: VmRSS {after} KiB",
        ms(symbols)
    );
    drop(big);
    let five = text(5);
    let mut after_close = Vec::new();
    for i in 0..5 {
        let u = format!("file:///bench/five{i}.rs");
        p.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": u, "languageId": "rust", "version": 1, "text": five}}),
        );
        p.request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": u}}),
        );
        p.notify("textDocument/didClose", json!({"textDocument": {"uri": u}}));
        p.request("workspace/symbol", json!({"query": "zzzz"}));
        std::thread::sleep(Duration::from_millis(200));
        after_close.push(p.memory().0);
    }
    println!(
        "session: 5 MB document opened and closed 5 times: VmRSS after each close (KiB) {after_close:?}"
    );
}

/// A loopback provider: records when each request's body has fully arrived, answers with a
/// one-chunk OpenAI-style stream.
fn provider() -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let t = line.trim();
                        if t.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = t.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let _ = tx.send(Instant::now());
                    let chunk = json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]});
                    let sse = format!("data: {chunk}\n\ndata: [DONE]\n\n");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{sse}",
                        sse.len()
                    );
                    if reader.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// The first AI request right after didOpen of a 5,000-line file, then warm ones: the time
/// from writing executePrompt to the provider having the request's body.
fn ai_requests(tmp: &Path) {
    let (port, bodies) = provider();
    let root = tmp.join("ws");
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut text = String::from("use std::collections::HashMap;\n\n");
    let mut i = 0;
    while text.lines().count() < 5000 {
        text.push_str(&format!(
            "/// Item {i}.\npub struct Item{i} {{\n    id: u64,\n}}\n\nimpl Item{i} {{\n    pub fn score(&self, w: &HashMap<u64, f64>) -> f64 {{\n        w.get(&self.id).copied().unwrap_or(1.0) * compute_{i}(self.id)\n    }}\n}}\n\npub fn compute_{i}(x: u64) -> f64 {{\n    let mut acc = 0.0;\n    for k in 0..x {{\n        acc += (k as f64).sqrt();\n    }}\n    acc\n}}\n\n"
        ));
        i += 1;
    }
    let path = root.join("main.rs");
    std::fs::write(&path, &text).expect("write");
    let u = uri(&path);
    let config = json!({"config": {"providers": {"p": {"kind": "openai", "base_url": format!("http://127.0.0.1:{port}/v1"), "model": "m"}},
                                    "defaults": {"providers": ["p"]}}});
    let mut firsts = Vec::new();
    let mut warms = Vec::new();
    let mut answered = Vec::new();
    for _ in 0..5 {
        let mut p = Proc::spawn(tmp);
        p.initialize(&root, config.clone());
        // Let start-up settle (config load, index walk of this one file).
        p.request("workspace/symbol", json!({"query": "zzzz"}));
        std::thread::sleep(Duration::from_millis(300));
        while bodies.try_recv().is_ok() {}
        let line = 2500;
        let start = Instant::now();
        p.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": u, "languageId": "rust", "version": 1, "text": text}}),
        );
        p.request(
            "workspace/executeCommand",
            json!({"command": "infinity-matrix.executePrompt",
                   "arguments": [{"prompt": "explain", "textDocument": {"uri": u}, "position": {"line": line, "character": 8}}]}),
        );
        let Ok(at) = bodies.recv_timeout(Duration::from_secs(10)) else {
            println!("session: the provider got no request");
            return;
        };
        firsts.push(at.duration_since(start));
        let warm: usize = std::env::var("IM_BENCH_WARM")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        for k in 0..warm {
            std::thread::sleep(Duration::from_millis(100));
            let start = Instant::now();
            p.request(
                "workspace/executeCommand",
                json!({"command": "infinity-matrix.executePrompt",
                       "arguments": [{"prompt": "explain", "textDocument": {"uri": u}, "position": {"line": line + 16 * k, "character": 8}}]}),
            );
            if let Ok(at) = bodies.recv_timeout(Duration::from_secs(10)) {
                warms.push(at.duration_since(start));
            }
        }
    }
    firsts.sort();
    warms.sort();
    answered.sort();
    let median = |v: &[Duration]| v.get(v.len() / 2).copied().unwrap_or_default();
    println!(
        "session: first AI request after didOpen of a 5,000-line file -> provider has the body: median {} ({:?})",
        ms(median(&firsts)),
        firsts.iter().map(|d| ms(*d)).collect::<Vec<_>>()
    );
    println!(
        "session: warm AI request -> provider has the body (server share): median {} over {}",
        ms(median(&warms)),
        warms.len()
    );
    println!(
        "session: warm executePrompt answered (task id back): median {}",
        ms(median(&answered))
    );
}

fn main() {
    // Under `cargo test --benches` criterion-style args arrive; this only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("files") {
        many_files(tmp.path());
    }
    if run("large") {
        large_documents(tmp.path());
    }
    if run("ai") {
        ai_requests(tmp.path());
    }
}
