//! The command-line front end, run as a real process.

use crate::support;

use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_infinity-matrix"))
}

#[test]
fn version_and_help_on_every_command() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("infinity-matrix {}", env!("CARGO_PKG_VERSION"))
    );
    for args in [
        vec!["--help"],
        vec!["lsp", "--help"],
        vec!["context", "--help"],
        vec!["symbols", "--help"],
    ] {
        let out = bin().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: infinity-matrix"),
            "{args:?}"
        );
    }
}

#[test]
fn context_prints_the_snapshot_with_cross_file_definitions() {
    let dir = support::copy_fixture("project");
    let file = dir.path().join("src/main.rs");
    let out = bin()
        .args(["context", &format!("{}:15:10", file.display()), "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("### Enclosing symbol: src/main.rs:12-17"),
        "{text}"
    );
    assert!(text.contains("### Definition: src/util.rs:1-4"), "{text}");
    assert!(text.contains("x * 2"));

    let out = bin()
        .args([
            "context",
            &format!("{}:15:10", file.display()),
            "--json",
            "--budget",
            "80",
            "--root",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["totalTokens"].as_u64().unwrap() <= 80);
    assert_eq!(v["budgetTokens"], 80);
    assert_eq!(v["items"][0]["kind"], "enclosingSymbol");
}

#[test]
fn context_reports_bad_locations_clearly() {
    let dir = support::copy_fixture("project");
    let file = dir.path().join("src/main.rs");
    for (loc, msg) in [
        (format!("{}:999:1", file.display()), "past the end"),
        (format!("{}:x:1", file.display()), "not a number"),
        ("/no/such/file.rs:1:1".to_string(), "cannot open"),
        (format!("{}:0:1", file.display()), "1-based"),
    ] {
        let out = bin().args(["context", &loc]).output().unwrap();
        assert!(!out.status.success(), "{loc}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(msg), "{loc}: {err}");
        assert!(out.stdout.is_empty(), "errors never go to stdout");
    }
}

#[test]
fn symbols_lists_a_file_and_a_directory() {
    let dir = support::copy_fixture("project");
    let out = bin()
        .args(["symbols"])
        .arg(dir.path().join("src/shapes.rs"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("2:12 struct pub struct Shape"),
        "{text}"
    );
    assert!(lines[1].starts_with("  3:5 field side: i32"), "{text}");
    assert!(
        lines[3].starts_with("  7:12 method pub fn square(side: i32) -> Shape"),
        "{text}"
    );

    let out = bin()
        .args(["symbols", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"helper".to_string()) && names.contains(&"greeting".to_string()));
    assert!(!names.contains(&"ignoredByDotIgnore".to_string()));
}

/// A loopback server answering every request with one Ollama chat stream whose text is
/// `reply` (read the request first, then answer and close). Serves `count` requests.
fn ollama_replying(reply: &str, count: usize) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let body = format!(
        "{}\n{}\n",
        serde_json::json!({"model": "m", "message": {"role": "assistant", "content": reply}, "done": false}),
        serde_json::json!({"model": "m", "message": {"role": "assistant", "content": ""}, "done_reason": "stop", "done": true, "prompt_eval_count": 5, "eval_count": 5}),
    );
    let handle = std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            // Headers, then Content-Length bytes of body.
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                buf.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&buf).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut rest = vec![0u8; len];
            let _ = conn.read_exact(&mut rest);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, handle)
}

/// `run` with an edit agent prints a unified diff whose paths are relative to the root and
/// whose hunk is the minimal one (the changed line with three lines of context), with the
/// file's own line numbers; nothing is written without --apply.
#[test]
fn run_prints_a_minimal_diff_with_paths_relative_to_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let original: String = (1..=20).map(|i| format!("x{i} = {i}\n")).collect();
    std::fs::write(root.join("src/x.py"), &original).unwrap();
    let body: String = (3..=17)
        .map(|i| {
            if i == 10 {
                "x10 = 'ten'\n".to_string()
            } else {
                format!("x{i} = {i}\n")
            }
        })
        .collect();
    let (url, server) = ollama_replying(&format!("```python\n{body}```\n"), 1);
    let config = dir.path().join("config/infinity-matrix");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[providers.mock]\nkind = \"ollama\"\nbase_url = \"{url}\"\nmodel = \"m\"\n\n\
             [agents.rewrite]\noutput = \"edit\"\napproval = \"manual\"\nproviders = [\"mock\"]\n\
             prompt = \"Rewrite:\\n{{{{selection}}}}\"\n"
        ),
    )
    .unwrap();
    let out = bin()
        .args(["run", "--agent", "rewrite", "src/x.py:3:1", "--to", "18:1"])
        .current_dir(&root)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env_remove("INFINITY_MATRIX_LOG")
        .output()
        .unwrap();
    server.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = "--- a/src/x.py\n+++ b/src/x.py\n@@ -7,7 +7,7 @@\n x7 = 7\n x8 = 8\n x9 = 9\n-x10 = 10\n+x10 = 'ten'\n x11 = 11\n x12 = 12\n x13 = 13\n";
    assert!(stderr.contains(expected), "stderr:\n{stderr}");
    assert!(!stderr.contains(dir.path().to_str().unwrap()), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(root.join("src/x.py")).unwrap(),
        original,
        "a dry run writes nothing"
    );
}
