//! The real binary's stdio transport: bad frames, wrong lengths, end of input, and stderr.
//!
//! Frames tower-lsp-server cannot decode, wrong Content-Length values, random and mutated
//! frames against one process, the process ending after stdin closes, and what reaches stderr.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::LspClient;

/// A server initialized on an empty workspace.
fn initialized() -> (tempfile::TempDir, LspClient) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LspClient::spawn();
    c.initialize(dir.path(), json!({}));
    (dir, c)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// A frame whose declared length is `delta` bytes off.
fn misframed(body: &[u8], delta: i64) -> Vec<u8> {
    let len = body.len() as i64 + delta;
    let mut out = format!("Content-Length: {len}\r\n\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

fn symbol_request(id: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "workspace/symbol", "params": {"query": "zz"}}))
        .unwrap()
}

/// Sends a valid request as raw bytes and asserts it is answered with a result.
fn assert_serving(c: &mut LspClient, id: &str) {
    c.write_bytes(&frame(&symbol_request(json!(id))));
    let resp = c.response_to(json!(id));
    assert!(resp.get("result").is_some(), "{resp}");
}

/// Each of these passed the old JSON check, then tower-lsp-server failed to decode it, logged
/// "failed to decode message" and stopped reading for good.
#[test]
fn frames_tower_cannot_decode_are_answered_and_the_session_goes_on() {
    let (_dir, mut c) = initialized();
    let mut bad_utf8 =
        br#"{"jsonrpc":"2.0","id":31,"method":"workspace/symbol","params":{"query":""#.to_vec();
    bad_utf8.extend_from_slice(b"\xc3\x28\xff\"}}");
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":36,"method":"workspace/symbol","params":{{"query":"a","x":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let big: Value = serde_json::from_str("18446744073709551616").unwrap();
    let cases: Vec<(Vec<u8>, i64, Value)> = vec![
        (bad_utf8, -32700, json!(31)),
        (
            br#"{"jsonrpc":"2.0","id":32,"method":"workspace/symbol","params":{"query":"\ud800"}}"#
                .to_vec(),
            -32700,
            json!(32),
        ),
        (
            br#"{"jsonrpc":"2.0","id":1.5,"method":"workspace/symbol","params":{"query":""}}"#
                .to_vec(),
            -32600,
            json!(1.5),
        ),
        (
            br#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"workspace/symbol","params":{"query":""}}"#
                .to_vec(),
            -32600,
            big,
        ),
        (
            br#"{"jsonrpc":"2.0","id":1.2e29,"method":"workspace/symbol","params":{"query":""}}"#
                .to_vec(),
            -32600,
            json!(1.2e29),
        ),
        (deep.into_bytes(), -32700, json!(36)),
        (
            br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///x.rs","languageId":"rust","version":1,"text":"\udfff"}}}"#
                .to_vec(),
            -32700,
            Value::Null,
        ),
    ];
    for (n, (body, code, id)) in cases.into_iter().enumerate() {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(120)
            .collect::<String>();
        c.write_bytes(&frame(&body));
        let resp = c.response_to(id.clone());
        assert_eq!(resp["error"]["code"], code, "{shown}: {resp}");
        assert!(
            !resp["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{resp}"
        );
        assert_serving(&mut c, &format!("after-{n}"));
    }
    assert!(c.is_alive());
    c.shutdown();
}

/// A wrong Content-Length used to desynchronise the stream for good (every later frame was
/// answered -32700, id null). Each case is followed by a valid request that must be answered.
#[test]
fn a_wrong_content_length_resynchronises_on_the_next_header() {
    let (_dir, mut c) = initialized();
    for (n, delta) in [-5i64, 5, 200].into_iter().enumerate() {
        let broken = symbol_request(json!(format!("broken-{n}")));
        let mut bytes = misframed(&broken, delta);
        bytes.extend(frame(&symbol_request(json!(format!("next-{n}")))));
        c.write_bytes(&bytes);
        // The valid request right after it is answered (after 200 bytes too many, once the
        // body has stalled: nothing more comes until we have the answer).
        let next = c.response_to(json!(format!("next-{n}")));
        assert!(next.get("result").is_some(), "delta {delta}: {next}");
        if delta > 0 {
            // Too large: the message itself was whole, and is answered too.
            let own = c.response_to(json!(format!("broken-{n}")));
            assert!(own.get("result").is_some(), "delta {delta}: {own}");
        }
        assert_serving(&mut c, &format!("after-{n}"));
    }
    // Garbage before a header, on the header's own line.
    let mut bytes = b"}}] stray bytes ".to_vec();
    bytes.extend(frame(&symbol_request(json!("after-garbage"))));
    c.write_bytes(&bytes);
    let resp = c.response_to(json!("after-garbage"));
    assert!(resp.get("result").is_some(), "{resp}");
    assert!(c.is_alive());
    c.shutdown();
}

/// Messages to mutate: none of them can become `exit` or `shutdown` in a few byte edits.
fn seeds() -> Vec<Vec<u8>> {
    [
        json!({"jsonrpc": "2.0", "id": 7, "method": "workspace/symbol", "params": {"query": "abc"}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "file:///fuzz/a.rs", "languageId": "rust", "version": 1, "text": "fn main() {\n    let x = \"é\";\n}\n"}}}),
        json!({"jsonrpc": "2.0", "id": 8, "method": "workspace/executeCommand", "params": {"command": "nope", "arguments": null}}),
        json!({"jsonrpc": "2.0", "id": 9, "result": {"applied": true}}),
        json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 7}}),
        json!({"jsonrpc": "2.0", "id": 10, "method": "textDocument/hover", "params": {"textDocument": {"uri": "file:///fuzz/a.rs"}, "position": {"line": 0, "character": 1}}}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).unwrap())
    .collect()
}

/// Byte strings that break decoders in interesting ways.
const SPLICES: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"1.5",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1.2e29",
    b"null",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"}",
    b"{",
    b"\"",
    b"\\",
    b"\r\n\r\n",
    b"Content-Length: 3\r\n\r\n",
    b"\x00",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the byte at (position % len) with a byte.
    Byte(usize, u8),
    /// Insert one of the [`SPLICES`] at a position.
    Splice(usize, usize),
    /// Delete up to `n` bytes at a position.
    Delete(usize, usize),
    /// Keep only the first (position % len) bytes.
    Truncate(usize),
}

fn apply(mut body: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = body.len().max(1);
        match *edit {
            Edit::Byte(at, b) => {
                if let Some(x) = body.get_mut(at % len) {
                    *x = b;
                }
            }
            Edit::Splice(at, which) => {
                let at = (at % len).min(body.len());
                let splice = SPLICES[which % SPLICES.len()];
                body.splice(at..at, splice.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = (at % len).min(body.len());
                let end = (at + n).min(body.len());
                body.drain(at..end);
            }
            Edit::Truncate(at) => body.truncate(at % len),
        }
    }
    body
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Splice(a, b)),
        (any::<usize>(), 1usize..12).prop_map(|(a, n)| Edit::Delete(a, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// One piece of input: a mutated message (its length right, or a few bytes off), random bytes
/// in a frame, or random bytes between frames.
#[derive(Debug, Clone)]
enum Piece {
    Mutated {
        seed: usize,
        edits: Vec<Edit>,
        delta: i64,
    },
    RandomBody(Vec<u8>),
    Garbage(Vec<u8>),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => (any::<usize>(), prop::collection::vec(edit(), 1..4), prop_oneof![4 => Just(0i64), 1 => -20i64..40])
            .prop_map(|(seed, edits, delta)| Piece::Mutated { seed, edits, delta }),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Piece::RandomBody),
        1 => prop::collection::vec(any::<u8>(), 1..80).prop_map(Piece::Garbage),
    ]
}

fn bytes_of(piece: &Piece, seeds: &[Vec<u8>]) -> Vec<u8> {
    match piece {
        Piece::Mutated { seed, edits, delta } => {
            let body = apply(seeds[seed % seeds.len()].clone(), edits);
            misframed(&body, (*delta).max(-(body.len() as i64)))
        }
        Piece::RandomBody(bytes) => frame(bytes),
        Piece::Garbage(bytes) => bytes.clone(),
    }
}

/// Random and mutated frames, then a valid request: it must be answered, every time, by the
/// same server process (bounded: 64 cases of up to 5 pieces, no shrinking).
#[test]
fn random_and_mutated_frames_never_end_the_session() {
    let (_dir, c) = initialized();
    let c = std::cell::RefCell::new(c);
    let n = std::cell::Cell::new(0u32);
    let seeds = seeds();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        max_shrink_iters: 0,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(piece(), 1..6), |pieces| {
        n.set(n.get() + 1);
        let mut c = c.borrow_mut();
        let mut bytes = Vec::new();
        for piece in &pieces {
            bytes.extend(bytes_of(piece, &seeds));
        }
        let probe = format!("probe-{}", n.get());
        bytes.extend(frame(&symbol_request(json!(probe))));
        c.write_bytes(&bytes);
        let resp = c.response_to(json!(probe));
        if resp.get("result").is_none() {
            return Err(TestCaseError::fail(format!("{pieces:?}: {resp}")));
        }
        Ok(())
    });
    assert!(result.is_ok(), "{result:?}");
    let mut c = c.into_inner();
    assert!(c.is_alive());
    c.shutdown();
}

/// A TCP listener on 127.0.0.1 that accepts connections and never answers; it stops by itself
/// after `lifetime`.
fn silent_listener(lifetime: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut held = Vec::new();
        while start.elapsed() < lifetime {
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    format!("http://{addr}/v1")
}

/// The process never outlives its client: closing stdin ends it (measured; bounded wait, no
/// time assertion), while a provider call hangs on a silent listener, while a handler waits
/// for an answer from the client that will never come, and while a big tree is indexed.
#[test]
fn the_process_ends_soon_after_stdin_closes_whatever_still_runs() {
    let limit = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join("src")).unwrap();
    for i in 0..3000 {
        let text = format!("pub fn f{i}() -> u32 {{ {i} }}\npub struct S{i};\n");
        std::fs::write(root.join("src").join(format!("m{i}.rs")), text).unwrap();
    }
    std::fs::write(root.join("a.py"), "def add(a, b):\n    return a + b\n").unwrap();
    let env = [
        ("XDG_DATA_HOME", dir.path().join("data")),
        ("XDG_CONFIG_HOME", dir.path().join("config")),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let uri = support::file_uri(&root);
    let mut measured = Vec::new();

    // 1. A running agent task whose provider never answers.
    let provider = silent_listener(Duration::from_secs(30));
    let mut c = LspClient::spawn_with_env(&env);
    let config = json!({
        "providers": {"silent": {"kind": "openai", "base_url": provider, "model": "m", "timeout_ms": 600000, "max_attempts": 1}},
        "defaults": {"providers": ["silent"]}
    });
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": "ws"}],
               "initializationOptions": {"config": config}, "capabilities": {}}),
    )
    .unwrap();
    c.notify("initialized", json!({}));
    let py = support::file_uri(&root.join("a.py"));
    c.open(&py, "python", "def add(a, b):\n    return a + b\n");
    let r = c
        .request(
            "workspace/executeCommand",
            json!({"command": "infinity-matrix.executePrompt", "arguments": [{"prompt": "x", "textDocument": {"uri": py}, "position": {"line": 0, "character": 0}}]}),
        )
        .unwrap();
    let task = r["taskId"].as_str().unwrap().to_string();
    c.wait_notification(|n| {
        n["method"] == "infinityMatrix/taskEvent"
            && n["params"]["task"]["id"] == task.as_str()
            && n["params"]["task"]["state"] == "running"
    });
    c.close_stdin();
    let took = c.wait_for_exit(limit);
    assert!(
        took.is_some(),
        "still running {limit:?} after stdin closed (provider call hanging)"
    );
    measured.push(("provider call hanging", took));

    // 2. `initialized` waits for the client's answer to workspace/configuration, which never
    // comes, while the initial index walks 3,000 files.
    let mut c = LspClient::spawn_with_env(&env);
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": "ws"}],
               "capabilities": {"workspace": {"configuration": true}}}),
    )
    .unwrap();
    c.notify("initialized", json!({}));
    c.close_stdin();
    let took = c.wait_for_exit(limit);
    assert!(
        took.is_some(),
        "still running {limit:?} after stdin closed (unanswered request)"
    );
    measured.push(("unanswered server request + indexing", took));

    // 3. Nothing special running: the usual case.
    let mut c = LspClient::spawn_with_env(&env);
    c.initialize(&root, json!({}));
    c.close_stdin();
    let took = c.wait_for_exit(limit);
    assert!(took.is_some(), "still running {limit:?} after stdin closed");
    measured.push(("idle after initialize", took));
    eprintln!("exit after stdin closed: {measured:?}");
}

/// Runs a session whose stderr goes to a file, and returns what it logged.
fn logged(env: &[(&str, &str)], session: impl FnOnce(&mut LspClient)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut c = LspClient::spawn_with_stderr(env, Stdio::from(file));
    c.initialize(dir.path(), json!({}));
    session(&mut c);
    c.shutdown();
    std::fs::read_to_string(&log).unwrap()
}

/// tower-lsp-server traces every message it reads, setSecret's value included.
#[test]
fn a_secret_never_reaches_stderr_at_any_log_level() {
    let secret = "zq-distinctive-secret-7f3a9c";
    for filter in [
        "trace",
        "tower_lsp_server=trace",
        "tower_lsp_server::codec=trace,trace",
    ] {
        let text = logged(&[("INFINITY_MATRIX_LOG", filter)], |c| {
            c.request(
                "infinityMatrix/setSecret",
                json!({"name": "OPENAI_API_KEY", "value": secret}),
            )
            .unwrap();
            // A request after it, so the log certainly covers the secret's message.
            c.request("workspace/symbol", json!({"query": "after-the-secret"}))
                .unwrap();
        });
        assert!(!text.contains(secret), "{filter}: the secret is in stderr");
        assert!(!text.contains("zq-distinctive"), "{filter}");
        if filter == "trace" {
            // The log was on: our own trace/debug lines are there.
            assert!(text.lines().count() > 3, "{filter}: {text}");
        }
    }
}

/// An unsupported request is answered MethodNotFound: tower-lsp-server's "not implemented"
/// is not an ERROR in a stock session.
#[test]
fn an_unsupported_request_logs_no_error() {
    let text = logged(&[], |c| {
        let err = c
            .request(
                "textDocument/hover",
                json!({"textDocument": {"uri": "file:///nowhere/a.rs"}, "position": {"line": 0, "character": 0}}),
            )
            .unwrap_err();
        assert_eq!(err["code"], -32601, "{err}");
    });
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:?}");
    // At debug it is there, as DEBUG.
    let text = logged(&[("INFINITY_MATRIX_LOG", "debug")], |c| {
        let _ = c.request(
            "textDocument/hover",
            json!({"textDocument": {"uri": "file:///nowhere/a.rs"}, "position": {"line": 0, "character": 0}}),
        );
    });
    assert!(
        text.lines().any(|l| l.contains(" DEBUG ")
            && l.contains("textDocument/hover")
            && l.contains("not implemented")),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.contains("ERROR")), "{text}");
}
