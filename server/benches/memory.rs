//! Memory measurement (not criterion: peak RSS is one number per run): the real binary with
//! 200 typical source files open and parsed, peak RSS read from /proc/<pid>/status (VmHWM).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn main() {
    // Under `cargo test --benches` criterion-style args arrive; this measurement only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_infinity-matrix"))
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut send = |v: Value| {
        let body = serde_json::to_vec(&v).expect("json");
        write!(stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write");
        stdin.write_all(&body).expect("write");
        stdin.flush().expect("flush");
    };
    let mut recv_id = |id: i64| loop {
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).expect("read") > 0, "server closed");
            let t = line.trim();
            if t.is_empty() {
                break;
            }
            if let Some(v) = t.strip_prefix("Content-Length: ") {
                len = v.parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        out.read_exact(&mut body).expect("body");
        let v: Value = serde_json::from_slice(&body).expect("json");
        if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
            return v;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    send(
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":null,"rootUri":infinity_matrix::engine::path_to_uri(dir.path()),"capabilities":{}}}),
    );
    recv_id(0);
    send(json!({"jsonrpc":"2.0","method":"initialized","params":{}}));
    // 200 files of about 300 lines (10 KB), a typical source file.
    let mut bytes = 0usize;
    for i in 0..200 {
        let mut text = String::new();
        for j in 0..30 {
            text.push_str(&format!(
                "/// Doc {j}.\npub fn function_{i}_{j}(input: &[u32], factor: u32) -> Vec<u32> {{\n    let mut out = Vec::with_capacity(input.len());\n    for value in input {{\n        if *value % 2 == 0 {{\n            out.push(value * factor);\n        }}\n    }}\n    out\n}}\n"
            ));
        }
        bytes += text.len();
        let uri = format!("file:///mem/file{i}.rs");
        send(
            json!({"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":uri,"languageId":"rust","version":1,"text":text}}}),
        );
        send(
            json!({"jsonrpc":"2.0","id":i + 1,"method":"textDocument/documentSymbol","params":{"textDocument":{"uri":uri}}}),
        );
        recv_id(i + 1);
    }
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    };
    println!(
        "memory: 200 open files, {} KiB of source, parsed",
        bytes / 1024
    );
    println!("memory: {}", field("VmHWM"));
    println!("memory: {}", field("VmRSS"));
    let _ = child.kill();
    let _ = child.wait();
}
