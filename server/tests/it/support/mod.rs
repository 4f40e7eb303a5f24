//! A small real LSP client for tests: spawns the built binary and speaks Content-Length framed JSON-RPC over its stdio.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Generous limit so a hung server fails the test instead of hanging it (not a speed check).
pub const WAIT: Duration = Duration::from_secs(60);

pub struct LspClient {
    child: Child,
    /// `None` once [`LspClient::close_stdin`] closed it.
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications received so far (method, params).
    pub notifications: Vec<Value>,
    /// Requests the server sent us (we answer them with `null` unless told otherwise).
    pub server_requests: Vec<Value>,
    /// Server request methods this client leaves unanswered (a prompt the user has not
    /// clicked yet); they are still kept in `server_requests`.
    pub unanswered: Vec<&'static str>,
    pending: Vec<Value>,
}

pub fn file_uri(path: &Path) -> String {
    infinity_matrix::engine::path_to_uri(path)
}

impl LspClient {
    pub fn spawn() -> LspClient {
        Self::spawn_with_env(&[])
    }

    pub fn spawn_with_env(env: &[(&str, &str)]) -> LspClient {
        Self::spawn_with_stderr(env, Stdio::null())
    }

    /// Spawns with `env`, writing the server's stderr (its log) to the file `stderr`.
    pub fn spawn_logging_to(env: &[(&str, &str)], stderr: &Path) -> LspClient {
        let file = std::fs::File::create(stderr).expect("create the stderr file");
        Self::spawn_with_stderr(env, Stdio::from(file))
    }

    /// Spawns with the child's stderr going to `stderr` (e.g. a file the test reads later).
    pub fn spawn_with_stderr(env: &[(&str, &str)], stderr: Stdio) -> LspClient {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infinity-matrix"));
        cmd.arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env_remove("INFINITY_MATRIX_LOG")
            .env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn infinity-matrix");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut len: Option<usize> = None;
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.trim().parse().ok();
                    }
                }
                let Some(len) = len else { return };
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let value: Value = serde_json::from_slice(&body).expect("server sent invalid JSON");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        LspClient {
            child,
            stdin: Some(stdin),
            rx,
            next_id: 1,
            notifications: Vec::new(),
            server_requests: Vec::new(),
            unanswered: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let header = format!("Content-Length: {}\r\n\r\n", bytes.len());
        let stdin = self.stdin.as_mut().expect("stdin is closed");
        stdin.write_all(header.as_bytes()).expect("write header");
        stdin.write_all(bytes).expect("write body");
        stdin.flush().expect("flush");
    }

    /// Writes `bytes` to the server's stdin as they are (no framing added).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is closed");
        stdin.write_all(bytes).expect("write");
        stdin.flush().expect("flush");
    }

    /// Closes the server's stdin (the client goes away without `shutdown` or `exit`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Polls until the process has ended, at most `limit`; how long it took, or `None` if it
    /// is still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    pub fn send(&mut self, msg: &Value) {
        let bytes = serde_json::to_vec(msg).expect("serialize");
        self.send_raw(&bytes);
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    fn recv(&mut self) -> Value {
        if !self.pending.is_empty() {
            return self.pending.remove(0);
        }
        match self.rx.recv_timeout(WAIT) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("no message from the server within {WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("server closed stdout"),
        }
    }

    /// Handles one incoming message that is not a response; returns it back if it is one.
    fn dispatch(&mut self, msg: Value) -> Option<Value> {
        if msg.get("method").is_some() {
            if let Some(id) = msg.get("id").cloned() {
                self.server_requests.push(msg.clone());
                let method = msg["method"].as_str().unwrap_or("");
                if !self.unanswered.contains(&method) {
                    let result = self.answer_for(&msg);
                    self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
                }
            } else {
                self.notifications.push(msg);
            }
            None
        } else {
            Some(msg)
        }
    }

    fn answer_for(&self, msg: &Value) -> Value {
        match msg["method"].as_str() {
            Some("workspace/applyEdit") => json!({"applied": true}),
            Some("window/showDocument") => json!({"success": true}),
            _ => Value::Null,
        }
    }

    /// Waits for the response to `id` (`Value::Null` for errors about messages without an id).
    pub fn response_to(&mut self, id: Value) -> Value {
        let deadline = Instant::now() + WAIT;
        let mut stash = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "no response to request {id}");
            let msg = self.recv();
            if let Some(resp) = self.dispatch(msg) {
                if resp["id"] == id {
                    self.pending.extend(stash);
                    return resp;
                }
                stash.push(resp);
            }
        }
    }

    /// Waits for the response to `id`.
    pub fn response(&mut self, id: i64) -> Value {
        self.response_to(json!(id))
    }

    /// Sends a request and returns `Ok(result)` or `Err(error)`.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params);
        let resp = self.response(id);
        match resp.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(resp.get("result").cloned().unwrap_or(Value::Null)),
        }
    }

    /// Waits until a request from the server matching `pred` arrives (it was answered, and is
    /// kept in `server_requests`).
    pub fn wait_server_request(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(r) = self.server_requests.iter().find(|r| pred(r)) {
                return r.clone();
            }
            assert!(
                Instant::now() < deadline,
                "expected request from the server did not arrive"
            );
            let msg = self.recv();
            if let Some(resp) = self.dispatch(msg) {
                self.pending.push(resp);
            }
        }
    }

    /// Waits until a notification matching `pred` arrives (it is kept in `notifications`).
    pub fn wait_notification(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(n) = self.notifications.iter().find(|n| pred(n)) {
            return n.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "expected notification did not arrive"
            );
            let msg = self.recv();
            if let Some(resp) = self.dispatch(msg) {
                self.pending.push(resp);
                continue;
            }
            if let Some(n) = self.notifications.last().filter(|n| pred(n)) {
                return n.clone();
            }
        }
    }

    pub fn initialize(&mut self, root: &Path, capabilities: Value) -> Value {
        self.initialize_with(root, capabilities, Value::Null)
    }

    /// Initializes with `initializationOptions`.
    pub fn initialize_with(&mut self, root: &Path, capabilities: Value, options: Value) -> Value {
        let uri = file_uri(root);
        let result = self
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": uri,
                    "workspaceFolders": [{"uri": uri, "name": "root"}],
                    "capabilities": capabilities,
                    "initializationOptions": options,
                }),
            )
            .expect("initialize failed");
        self.notify("initialized", json!({}));
        result
    }

    /// Initializes and waits until the background index reports it is done.
    pub fn initialize_and_index(&mut self, root: &Path) -> Value {
        let result = self.initialize(root, json!({"window": {"workDoneProgress": true}}));
        self.wait_indexed();
        result
    }

    /// Waits until the background index reports it is done.
    pub fn wait_indexed(&mut self) {
        self.wait_notification(|n| {
            n["method"] == "window/logMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("indexed "))
        });
    }

    pub fn open(&mut self, uri: &str, language_id: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}}),
        );
    }

    pub fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert!(r.is_ok(), "shutdown failed: {r:?}");
        self.exit();
    }

    /// Sends `exit` and waits (bounded) for the process to end.
    pub fn exit(mut self) {
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + WAIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!("server did not exit after `exit`");
                }
            }
        }
    }

    /// SIGKILL, no goodbye (for crash tests).
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process is running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a fixture directory into a fresh temp dir (so tests never write into the repo).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&src, dir.path());
    dir
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}
