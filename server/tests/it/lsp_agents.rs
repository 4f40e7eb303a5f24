//! The agent surface over real LSP stdio: commands, code actions, approvals, notifications,
//! secrets, metrics, and the crash test — against a wiremock OpenAI-compatible provider.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{LspClient, file_uri};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sse(chunks: &[&str]) -> String {
    let mut body = String::new();
    for c in chunks {
        body.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]})
        ));
    }
    body.push_str(&format!("data: {}\n\n", json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 11, "completion_tokens": 7}})));
    body.push_str("data: [DONE]\n\n");
    body
}

async fn provider(chunks: &[&str], delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse(chunks))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

struct Env {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("a.py"),
        "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    )
    .unwrap();
    Env {
        root,
        data: dir.path().join("data"),
        config: dir.path().join("config"),
        _dir: dir,
    }
}

fn spawn(e: &Env) -> LspClient {
    let cache = e.data.with_file_name("cache");
    LspClient::spawn_with_env(&[
        ("XDG_DATA_HOME", e.data.to_str().unwrap()),
        ("XDG_CONFIG_HOME", e.config.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
        ("IM_PLANTED_KEY", "sk-planted-secret-0123456789abcdef"),
    ])
}

fn init(c: &mut LspClient, e: &Env, config: Value) {
    init_with(
        c,
        e,
        config,
        json!({"window": {"workDoneProgress": true}, "workspace": {"workspaceEdit": {"documentChanges": true}},
               "experimental": {"infinityMatrix": {"taskEvents": true}}}),
    );
}

fn init_with(c: &mut LspClient, e: &Env, config: Value, capabilities: Value) {
    let uri = file_uri(&e.root);
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": "ws"}],
               "initializationOptions": {"config": config},
               "capabilities": capabilities}),
    )
    .unwrap();
    c.notify("initialized", json!({}));
    let text = std::fs::read_to_string(e.root.join("a.py")).unwrap();
    c.open(&file_uri(&e.root.join("a.py")), "python", &text);
}

fn task_state(c: &mut LspClient, id: &str, want: &[&str]) -> Value {
    let id = id.to_string();
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    let n = c.wait_notification(|n| {
        n["method"] == "infinityMatrix/taskEvent"
            && n["params"]["type"] == "state"
            && n["params"]["task"]["id"] == id.as_str()
            && want
                .iter()
                .any(|w| n["params"]["task"]["state"] == w.as_str())
    });
    n["params"]["task"].clone()
}

/// Runs the default agent with a prompt on `add` in a.py and waits until it succeeds; its id.
fn explain_add(c: &mut LspClient, e: &Env) -> String {
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(c, "infinity-matrix.executePrompt", json!({"prompt": "explain", "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    assert_eq!(
        task_state(c, &id, &["succeeded", "failed"])["state"],
        "succeeded"
    );
    id
}

fn exec(c: &mut LspClient, command: &str, args: Value) -> Result<Value, Value> {
    c.request(
        "workspace/executeCommand",
        json!({"command": command, "arguments": [args]}),
    )
}

fn live(url: &str) -> Value {
    json!({"kind": "openai", "base_url": format!("{url}/v1"), "model": "m", "api_key_env": "IM_PLANTED_KEY", "max_attempts": 1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_prompt_streams_and_lists_commands_and_code_actions() {
    let server = provider(&["Adds ", "two ", "numbers."], Duration::ZERO).await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "explain", "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert_eq!(task["provider"], "live");
    // The answering call's token counts, as the provider's stream reported them.
    assert_eq!(task["tokensIn"], 11, "{task}");
    assert_eq!(task["tokensOut"], 7, "{task}");
    let detail = c
        .request("infinityMatrix/task", json!({"taskId": id}))
        .unwrap();
    assert_eq!(detail["text"], "Adds two numbers.");
    // What was sent, for the answer panel's chips: the target and each context item (no text).
    assert_eq!(detail["target"]["uri"], uri.as_str(), "{detail}");
    let sent = detail["context"].as_array().expect("context items");
    assert!(!sent.is_empty(), "{detail}");
    for item in sent {
        assert!(
            item["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{item}"
        );
        assert!(item["tokens"].as_u64().is_some_and(|t| t > 0), "{item}");
        assert!(item.get("text").is_none(), "{item}");
    }
    // The prompt sent to the provider carried the enclosing function and the context.
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("def add(a, b):"), "{user}");
    assert!(body["stream"] == true);
    // Agents, tasks, status.
    let agents = c.request("infinityMatrix/agents", json!(null)).unwrap();
    let names: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for n in ["document", "explain", "fix", "refactor", "review", "tests"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let tasks = c.request("infinityMatrix/tasks", json!(null)).unwrap();
    assert!(
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str())
    );
    c.wait_notification(|n| n["method"] == "infinityMatrix/agentStatus");
    // Code actions for a selection and for a diagnostic.
    let actions = c
        .request("textDocument/codeAction", json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}, "context": {"diagnostics": []}}))
        .unwrap();
    let titles: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        vec!["Add docs", "Explain", "Refactor", "Write tests"]
    );
    let with_diag = c
        .request("textDocument/codeAction", json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
            "context": {"diagnostics": [{"range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 10}}, "message": "bad"}]}}))
        .unwrap();
    let fix = with_diag
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == "Fix this diagnostic")
        .expect("fix action");
    assert_eq!(fix["kind"], "quickfix");
    assert_eq!(fix["command"]["command"], "infinity-matrix.startAgent");
    assert_eq!(fix["command"]["arguments"][0]["agent"], "fix");
    // Bad command arguments are a clear error, and the server keeps serving.
    let err = exec(&mut c, "infinity-matrix.executePrompt", json!({"nope": 1})).unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("bad arguments"),
        "{err}"
    );
    let err = exec(
        &mut c,
        "infinity-matrix.startAgent",
        json!({"agent": "nonexistent"}),
    )
    .unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("unknown agent"),
        "{err}"
    );
    c.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_edit_is_approved_through_show_message_request_and_applied() {
    let server = provider(
        &["```python\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n```"],
        Duration::ZERO,
    )
    .await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    // `document` is a manual edit agent: the server asks with Apply / Reject.
    let r = exec(
        &mut c,
        "infinity-matrix.startAgent",
        json!({"agent": "document", "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}}),
    )
    .unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    let task = task_state(&mut c, &id, &["awaiting_approval", "failed"]);
    assert_eq!(task["state"], "awaiting_approval", "{task}");
    // The question and the state event travel separately: either may arrive first.
    let asked = c.wait_server_request(|r| r["method"] == "window/showMessageRequest");
    assert!(
        asked["params"]["message"]
            .as_str()
            .unwrap()
            .contains("document")
    );
    // Our client answered the showMessageRequest with null (dismissed); approve through the command instead.
    exec(
        &mut c,
        "infinity-matrix.approve",
        json!({"taskId": id, "accept": true}),
    )
    .unwrap();
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "succeeded", "{task}");
    let apply = c
        .server_requests
        .iter()
        .find(|r| r["method"] == "workspace/applyEdit")
        .cloned()
        .expect("applyEdit");
    let edit = &apply["params"]["edit"]["documentChanges"][0];
    assert_eq!(edit["textDocument"]["uri"], uri.as_str());
    assert_eq!(
        edit["edits"][0]["newText"],
        "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b"
    );
    assert_eq!(edit["edits"][0]["range"]["start"]["line"], 0);
    // Approving again is an error that says why.
    let err = exec(
        &mut c,
        "infinity-matrix.approve",
        json!({"taskId": id, "accept": true}),
    )
    .unwrap_err();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("not awaiting approval"),
        "{err}"
    );
    // The audit log has the approval and the applied edit.
    let audit = c
        .request("infinityMatrix/audit", json!({"taskId": id}))
        .unwrap();
    let kinds: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"approval") && kinds.contains(&"edit") && kinds.contains(&"attempt"),
        "{kinds:?}"
    );
    c.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_task_and_stop_agent() {
    let server = provider(&["slow"], Duration::from_secs(30)).await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"slow": live(&server.uri())}, "defaults": {"providers": ["slow"]}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    task_state(&mut c, &id, &["running"]);
    exec(&mut c, "infinity-matrix.cancelTask", json!({"taskId": id})).unwrap();
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "cancelled");
    // Cancelling through the task's work-done progress works too.
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "y", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id2 = r["taskId"].as_str().unwrap().to_string();
    task_state(&mut c, &id2, &["running"]);
    let token = format!("infinity-matrix/task/{id2}");
    c.wait_notification(|n| {
        n["method"] == "$/progress"
            && n["params"]["token"] == token.as_str()
            && n["params"]["value"]["kind"] == "begin"
    });
    c.notify("window/workDoneProgress/cancel", json!({"token": token}));
    let task = task_state(&mut c, &id2, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "cancelled");
    // By the time the terminal event arrives, the task's progress has ended.
    assert!(
        c.notifications.iter().any(|n| n["method"] == "$/progress"
            && n["params"]["token"] == token.as_str()
            && n["params"]["value"]["kind"] == "end"),
        "the progress ends before the terminal task event"
    );
    // stopAgent cancels running tasks of the agent.
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "z", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id3 = r["taskId"].as_str().unwrap().to_string();
    task_state(&mut c, &id3, &["running"]);
    exec(
        &mut c,
        "infinity-matrix.stopAgent",
        json!({"agent": "explain"}),
    )
    .unwrap();
    let task = task_state(&mut c, &id3, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "cancelled");
    c.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_key_never_leaks_into_errors_logs_or_the_audit_log() {
    let key = "sk-planted-secret-0123456789abcdef";
    let server = MockServer::start().await;
    // The provider echoes the key back in its error body, as some proxies do.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!(
            "{{\"error\": \"invalid key {key}; Authorization: Bearer {key}\"}}"
        )))
        .mount(&server)
        .await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}}),
    );
    // The key also arrives through setSecret under another name.
    c.request(
        "infinityMatrix/setSecret",
        json!({"name": "OTHER_KEY", "value": "sk-client-secret-abcdef0123456789"}),
    )
    .unwrap();
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "failed");
    // The provider really received the key (so the test would notice a leak).
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        requests[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {key}")
    );
    let audit = c.request("infinityMatrix/audit", json!({})).unwrap();
    let everything = format!(
        "{} {} {:?} {:?}",
        task, audit, c.notifications, c.server_requests
    );
    assert!(everything.contains("401"), "the error is reported: {task}");
    assert!(
        !everything.contains(key),
        "the planted key leaked: {everything}"
    );
    assert!(
        !everything.contains("sk-client-secret"),
        "the client secret leaked"
    );
    c.shutdown();
    // The database file itself.
    let db_dir = e.data.join("infinity-matrix");
    let mut found_db = false;
    for entry in walk(&db_dir) {
        found_db = true;
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(key),
            "key in {}",
            entry.display()
        );
    }
    assert!(found_db, "the audit database exists under XDG_DATA_HOME");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_task_then_restart_marks_it_interrupted() {
    let server = provider(&["never"], Duration::from_secs(60)).await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"slow": live(&server.uri())}, "defaults": {"providers": ["slow"]}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    task_state(&mut c, &id, &["running"]);
    // Wait until the running transition is committed (the audit request flushes first), then SIGKILL.
    let audit = c
        .request("infinityMatrix/audit", json!({"taskId": id}))
        .unwrap();
    assert!(audit["entries"].as_array().unwrap().len() >= 2, "{audit}");
    c.kill_hard();
    drop(c);
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"slow": live(&server.uri())}}),
    );
    let audit = c
        .request("infinityMatrix/audit", json!({"taskId": id}))
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let text = serde_json::to_string(entries).unwrap();
    assert!(text.contains("interrupted"), "{text}");
    assert!(
        text.contains("running"),
        "the committed running transition survived: {text}"
    );
    // The provider call in flight at the kill was written when it started, and closed as
    // interrupted by the recovery.
    let attempts: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "attempt").collect();
    assert_eq!(attempts.len(), 1, "{text}");
    assert_eq!(attempts[0]["details"]["provider"], "slow");
    assert_eq!(attempts[0]["details"]["outcome"], "interrupted", "{text}");
    c.shutdown();
}

/// The audit entries of one task, as one string and as the list.
fn audit_of(c: &mut LspClient, id: &str) -> (String, Vec<Value>) {
    let audit = c
        .request("infinityMatrix/audit", json!({"taskId": id}))
        .unwrap();
    let entries = audit["entries"].as_array().cloned().unwrap_or_default();
    (serde_json::to_string(&entries).unwrap(), entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_workspace_leaves_the_first_servers_tasks_alone() {
    let server = provider(&["never"], Duration::from_secs(60)).await;
    let e = env();
    let config =
        json!({"providers": {"slow": live(&server.uri())}, "defaults": {"providers": ["slow"]}});
    let mut first = spawn(&e);
    init(&mut first, &e, config.clone());
    let uri = file_uri(&e.root.join("a.py"));
    let start = |c: &mut LspClient| {
        let r = exec(c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
        let id = r["taskId"].as_str().unwrap().to_string();
        task_state(c, &id, &["running"]);
        id
    };
    let t1 = start(&mut first);
    // Committed (the audit request flushes first).
    let (text, _) = audit_of(&mut first, &t1);
    assert!(text.contains("running"), "{text}");

    // A second server starts on the same workspace (and runs its crash recovery).
    let mut second = spawn(&e);
    init(&mut second, &e, config.clone());
    let (text, _) = audit_of(&mut second, &t1);
    assert!(
        !text.contains("interrupted"),
        "the second server marked the first one's live task: {text}"
    );
    // The first server's task is still its own: it ends the way the first server ends it.
    exec(
        &mut first,
        "infinity-matrix.cancelTask",
        json!({"taskId": t1}),
    )
    .unwrap();
    let task = task_state(&mut first, &t1, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "cancelled");
    let (text, entries) = audit_of(&mut first, &t1);
    assert!(!text.contains("interrupted"), "{text}");
    let transitions: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "transition")
        .map(|e| e["details"]["to_state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(transitions, ["running", "cancelled"], "{text}");

    // When the first server dies, its unfinished task is recovered by the next start — and
    // the second server's own running task is not.
    let t2 = start(&mut first);
    let _ = audit_of(&mut first, &t2);
    let t3 = start(&mut second);
    let _ = audit_of(&mut second, &t3);
    first.kill_hard();
    drop(first);
    let mut third = spawn(&e);
    init(&mut third, &e, config);
    let (text, _) = audit_of(&mut third, &t2);
    assert!(
        text.contains("running → failed: interrupted"),
        "the dead server's task is recovered: {text}"
    );
    let (text, _) = audit_of(&mut third, &t3);
    assert!(
        !text.contains("interrupted"),
        "the live second server's task is left alone: {text}"
    );
    second.shutdown();
    third.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_fails_over_at_once_and_later_tasks_skip_the_provider() {
    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&limited)
        .await;
    let spare = provider(&["from the spare"], Duration::ZERO).await;
    let e = env();
    let mut c = spawn(&e);
    let mut limited_cfg = live(&limited.uri());
    limited_cfg["max_attempts"] = json!(3);
    init(
        &mut c,
        &e,
        json!({"providers": {"limited": limited_cfg, "spare": live(&spare.uri())},
               "defaults": {"providers": ["limited", "spare"]}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
        let id = r["taskId"].as_str().unwrap().to_string();
        let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
        assert_eq!(task["state"], "succeeded", "{task}");
        assert_eq!(task["provider"], "spare");
        ids.push(id);
    }
    assert_eq!(
        limited.received_requests().await.unwrap().len(),
        1,
        "one request: no retry within the hour, and the second task skipped it"
    );
    let (text, entries) = audit_of(&mut c, &ids[0]);
    assert!(text.contains("not waiting 3600 s"), "{text}");
    let (text, entries2) = audit_of(&mut c, &ids[1]);
    let skipped = entries2
        .iter()
        .find(|e| e["kind"] == "attempt" && e["details"]["provider"] == "limited")
        .unwrap_or_else(|| panic!("a row for the skipped provider: {text}"));
    assert_eq!(skipped["details"]["outcome"], "skipped", "{text}");
    assert!(
        skipped["summary"]
            .as_str()
            .unwrap_or("")
            .contains("Retry-After"),
        "{text}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["details"]["outcome"] == "rate_limited")
    );
    c.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_past_the_cap_ends_the_task_with_an_error_naming_the_cap() {
    // 300 chunks of 1,000 bytes against a cap of 64 KiB.
    let chunk = "z".repeat(1000);
    let chunks: Vec<&str> = (0..300).map(|_| chunk.as_str()).collect();
    let server = provider(&chunks, Duration::ZERO).await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())},
               "defaults": {"providers": ["live"], "max_reply_bytes": 65536}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "failed", "{task}");
    let error = task["error"].as_str().unwrap_or("");
    assert!(
        error.contains("64 KiB") && error.contains("defaults.max_reply_bytes"),
        "{error}"
    );
    let detail = c
        .request("infinityMatrix/task", json!({"taskId": id}))
        .unwrap();
    assert_eq!(detail["text"], "", "the partial reply was released");
    // The server keeps serving.
    let again = c.request("infinityMatrix/tasks", json!(null)).unwrap();
    assert!(again["tasks"].is_array());
    c.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_on_loopback_when_configured() {
    let server = provider(&["ok"], Duration::ZERO).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}, "metrics": {"listen": format!("127.0.0.1:{port}")}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let r = exec(&mut c, "infinity-matrix.executePrompt", json!({"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})).unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    task_state(&mut c, &id, &["succeeded"]);
    let m = c.request("infinityMatrix/metrics", json!(null)).unwrap();
    assert!(m.to_string().contains("provider_requests_total"), "{m}");
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            write!(
                s,
                "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            s.read_to_string(&mut body).unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("infinity_matrix_tasks_total{agent=\"explain\",state=\"succeeded\"} 1"),
        "{body}"
    );
    c.shutdown();
}

/// Background agents (here on save) run only on files of the workspace as the walk sees them:
/// never on a file outside the roots (the editor's own settings), never on an ignored one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_triggers_never_fire_outside_the_workspace_or_on_ignored_files() {
    let server = provider(&["ok"], Duration::ZERO).await;
    let e = env();
    std::fs::write(e.root.join(".gitignore"), "build/\n").unwrap();
    std::fs::create_dir_all(e.root.join(".git")).unwrap();
    std::fs::create_dir_all(e.root.join("build")).unwrap();
    let ignored = e.root.join("build/gen.py");
    std::fs::write(&ignored, "GENERATED = 1\n").unwrap();
    let outside_dir = tempfile::tempdir().unwrap();
    let settings = outside_dir.path().join("settings.json");
    std::fs::write(&settings, "{\"secret.setting\": \"do not send me\"}\n").unwrap();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"p": live(&server.uri())}, "defaults": {"providers": ["p"]},
               "agents": {"watch": {"description": "reviews on save", "prompt": "{{selection}}", "output": "answer",
                                    "triggers": ["onSave"], "debounce_ms": 50}}}),
    );
    exec(
        &mut c,
        "infinity-matrix.startAgent",
        json!({"agent": "watch"}),
    )
    .unwrap();
    for (path, lang) in [(&settings, "json"), (&ignored, "python")] {
        let uri = file_uri(path);
        c.open(&uri, lang, &std::fs::read_to_string(path).unwrap());
        c.notify(
            "textDocument/didSave",
            json!({"textDocument": {"uri": uri}}),
        );
    }
    // The workspace's own file does trigger (the control): its task runs to the end.
    let a = file_uri(&e.root.join("a.py"));
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": a}}));
    let done = c.wait_notification(|n| {
        n["method"] == "infinityMatrix/taskEvent"
            && n["params"]["type"] == "state"
            && n["params"]["task"]["state"] == "succeeded"
    });
    assert_eq!(done["params"]["task"]["agent"], "watch");
    // Saves that came before it had their debounce well before this point.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(
        requests.len(),
        1,
        "only the workspace file reached the provider"
    );
    let body = String::from_utf8_lossy(&requests[0].body).to_string();
    assert!(body.contains("def add"), "{body}");
    assert!(
        !body.contains("do not send me") && !body.contains("GENERATED"),
        "{body}"
    );
    c.shutdown();
}

/// `infinityMatrix/testProvider` runs doctor's checks with the session's keys: a provider with
/// nothing listening is unreachable (agentStatus says so, with the reason), one that lists its
/// model is healthy; a provider never contacted is `unknown`, never a green `healthy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_provider_reports_reachability_and_sets_the_health() {
    let up = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [{"id": "m", "object": "model"}]})),
        )
        .mount(&up)
        .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"up": live(&up.uri()), "down": live(&dead)}, "defaults": {"providers": ["up", "down"]}}),
    );
    let down = c
        .request("infinityMatrix/testProvider", json!({"name": "down"}))
        .unwrap();
    assert_eq!(down["ok"], false, "{down}");
    assert_eq!(down["health"], "unreachable", "{down}");
    assert!(
        down["summary"].as_str().unwrap().starts_with("unreachable"),
        "{down}"
    );
    let status = c.wait_notification(|n| {
        n["method"] == "infinityMatrix/agentStatus"
            && n["params"]["providers"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["name"] == "down" && p["health"] == "unreachable")
            })
    });
    let row = status["params"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "down")
        .cloned()
        .unwrap();
    assert!(
        row["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{row}"
    );
    let never = status["params"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "up")
        .cloned()
        .unwrap();
    assert_eq!(never["health"], "unknown", "never contacted: {never}");

    let ok = c
        .request("infinityMatrix/testProvider", json!({"name": "up"}))
        .unwrap();
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["health"], "healthy", "{ok}");
    assert!(
        !ok["summary"].as_str().unwrap().contains("sk-planted"),
        "{ok}"
    );

    let unknown = c.request("infinityMatrix/testProvider", json!({"name": "nope"}));
    assert!(unknown.is_err(), "{unknown:?}");
}

/// A follow-up (`parentTaskId`) sends the conversation's earlier turns — each question and
/// answer, oldest first — as chat messages before the new one; the task record names its
/// parent and keeps the question; an unknown parent is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_carries_the_earlier_turns_of_its_conversation() {
    let server = provider(&["It adds ", "a and b."], Duration::ZERO).await;
    let e = env();
    let mut c = spawn(&e);
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let ask = |c: &mut LspClient, prompt: &str, parent: Option<&str>| {
        let mut args = json!({"prompt": prompt, "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}});
        if let Some(p) = parent {
            args["parentTaskId"] = json!(p);
        }
        exec(c, "infinity-matrix.executePrompt", args)
    };
    let first = ask(&mut c, "What does add do?", None).unwrap()["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        task_state(&mut c, &first, &["succeeded", "failed"])["state"],
        "succeeded"
    );
    let second = ask(&mut c, "And with strings?", Some(&first)).unwrap()["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    let t = task_state(&mut c, &second, &["succeeded", "failed"]);
    assert_eq!(t["state"], "succeeded", "{t}");
    assert_eq!(t["parentTaskId"], first.as_str(), "{t}");
    let third = ask(&mut c, "Thanks. Any bug?", Some(&second)).unwrap()["taskId"]
        .as_str()
        .unwrap()
        .to_string();
    task_state(&mut c, &third, &["succeeded", "failed"]);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let roles_and_text = |i: usize| -> Vec<(String, String)> {
        let body: Value = serde_json::from_slice(&requests[i].body).unwrap();
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap_or("").to_string(),
                    m["content"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    // The first request: system + user only.
    assert_eq!(roles_and_text(0).len(), 2);
    let m = roles_and_text(2);
    let roles: Vec<&str> = m.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user", "assistant", "user"],
        "{m:?}"
    );
    assert_eq!(m[1].1, "What does add do?");
    assert_eq!(m[2].1, "It adds a and b.");
    assert_eq!(m[3].1, "And with strings?");
    assert!(m[5].1.contains("Thanks. Any bug?"), "{m:?}");
    assert!(
        m[5].1.contains("def add(a, b):"),
        "the new turn still shows the code"
    );

    let detail = c
        .request("infinityMatrix/task", json!({"taskId": second}))
        .unwrap();
    assert_eq!(detail["prompt"], "And with strings?");
    assert_eq!(detail["parentTaskId"], first.as_str());

    let refused = ask(&mut c, "?", Some("no-such-task-1"));
    let err = refused.expect_err("an unknown parent is refused");
    assert!(err.to_string().contains("parentTaskId"), "{err}");
}

/// A restarted server keeps the workspace's history: earlier tasks are listed (from the audit
/// log) and readable (their answer when prompts are stored), and task numbers go on, so the
/// label `explain #n` never repeats after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_task_history_and_the_numbering() {
    let server = provider(&["Adds ", "numbers."], Duration::ZERO).await;
    let e = env();
    let config = json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}, "audit": {"store_prompts": true}});
    let run = |c: &mut LspClient| explain_add(c, &e);
    let number = |id: &str| -> u64 { id.rsplit_once('-').unwrap().1.parse().unwrap() };

    let mut c = spawn(&e);
    init(&mut c, &e, config.clone());
    let first = run(&mut c);
    let second = run(&mut c);
    c.shutdown();

    let mut c = spawn(&e);
    init(&mut c, &e, config);
    let tasks = c.request("infinityMatrix/tasks", json!(null)).unwrap();
    let ids: Vec<&str> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str(), second.as_str()], "oldest first");
    assert_eq!(tasks["tasks"][1]["state"], "succeeded");
    let old = c
        .request("infinityMatrix/task", json!({"taskId": first}))
        .expect("a task of the earlier server is still readable");
    assert_eq!(old["text"], "Adds numbers.");
    let third = run(&mut c);
    assert_eq!(number(&third), number(&second) + 1, "{second} then {third}");
    let tasks = c.request("infinityMatrix/tasks", json!(null)).unwrap();
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 3);
    c.shutdown();
}

/// A client that does not handle task events (stock Neovim, Emacs) still gets the answer:
/// opened as a Markdown file with window/showDocument when it supports that, else shown with
/// window/showMessage (first lines and the file's path); a client declaring the experimental
/// `taskEvents` capability gets neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_clients_get_answers_through_standard_lsp() {
    let server = provider(&["It adds ", "two numbers."], Duration::ZERO).await;
    let config =
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}});
    let run = explain_add;

    // showDocument supported: the answer file is opened.
    let e = env();
    let mut c = spawn(&e);
    init_with(
        &mut c,
        &e,
        config.clone(),
        json!({"window": {"showDocument": {"support": true}}}),
    );
    run(&mut c, &e);
    let req = c.wait_server_request(|r| r["method"] == "window/showDocument");
    let uri = req["params"]["uri"].as_str().unwrap();
    assert!(uri.ends_with(".md"), "{uri}");
    let path = uri.strip_prefix("file://").unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("# explain #"), "{text}");
    assert!(text.contains("It adds two numbers."), "{text}");
    assert!(
        path.starts_with(e.data.with_file_name("cache").to_str().unwrap()),
        "{path}"
    );
    c.shutdown();

    // No showDocument: a message with the answer's first lines and the path.
    let e = env();
    let mut c = spawn(&e);
    init_with(&mut c, &e, config.clone(), json!({}));
    run(&mut c, &e);
    let msg = c.wait_notification(|n| {
        n["method"] == "window/showMessage"
            && n["params"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("answered"))
    });
    let m = msg["params"]["message"].as_str().unwrap();
    assert!(m.contains("It adds two numbers."), "{m}");
    assert!(m.contains(".md"), "{m}");
    assert_eq!(msg["params"]["type"], 3, "info");
    c.shutdown();

    // The experimental capability: the client shows task events itself.
    let e = env();
    let mut c = spawn(&e);
    init(&mut c, &e, config);
    run(&mut c, &e);
    run(&mut c, &e);
    assert!(
        !c.notifications
            .iter()
            .any(|n| n["method"] == "window/showMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("answered"))),
        "a task-event client got the answer twice"
    );
    assert!(
        !c.server_requests
            .iter()
            .any(|r| r["method"] == "window/showDocument")
    );
    c.shutdown();
}

/// One approval prompt at a time: when the decision comes another way (the approve command,
/// another client), the server withdraws its pending window/showMessageRequest with
/// `$/cancelRequest`; a client that prompts itself (`approvalPrompt`) gets no message request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_made_elsewhere_withdraws_the_approval_prompt() {
    let server = provider(
        &["```python\ndef add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n```"],
        Duration::ZERO,
    )
    .await;
    let config =
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}});
    let start = |c: &mut LspClient, e: &Env| {
        let uri = file_uri(&e.root.join("a.py"));
        let r = exec(
            c,
            "infinity-matrix.startAgent",
            json!({"agent": "document", "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 16}}}),
        )
        .unwrap();
        let id = r["taskId"].as_str().unwrap().to_string();
        assert_eq!(
            task_state(c, &id, &["awaiting_approval", "failed"])["state"],
            "awaiting_approval"
        );
        id
    };

    // A stock client: the prompt is up, unanswered; the approve command decides; the prompt is
    // withdrawn.
    let e = env();
    let mut c = spawn(&e);
    c.unanswered.push("window/showMessageRequest");
    init(&mut c, &e, config.clone());
    let id = start(&mut c, &e);
    let asked = c.wait_server_request(|r| r["method"] == "window/showMessageRequest");
    exec(
        &mut c,
        "infinity-matrix.approve",
        json!({"taskId": id, "accept": false}),
    )
    .unwrap();
    let cancel = c.wait_notification(|n| n["method"] == "$/cancelRequest");
    assert_eq!(cancel["params"]["id"], asked["id"], "{cancel} {asked}");
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "cancelled");
    assert_eq!(task["error"], "edit rejected");
    // A stale decision is refused clearly.
    let stale = exec(
        &mut c,
        "infinity-matrix.approve",
        json!({"taskId": id, "accept": true}),
    )
    .expect_err("the task is no longer awaiting approval");
    assert!(
        stale.to_string().contains("not awaiting approval"),
        "{stale}"
    );
    c.shutdown();

    // A client that prompts itself: no message request; the command decides.
    let e = env();
    let mut c = spawn(&e);
    init_with(
        &mut c,
        &e,
        config,
        json!({"workspace": {"workspaceEdit": {"documentChanges": true}},
               "experimental": {"infinityMatrix": {"taskEvents": true, "approvalPrompt": true}}}),
    );
    let id = start(&mut c, &e);
    exec(
        &mut c,
        "infinity-matrix.approve",
        json!({"taskId": id, "accept": true}),
    )
    .unwrap();
    let task = task_state(&mut c, &id, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "succeeded", "{task}");
    assert!(
        !c.server_requests
            .iter()
            .any(|r| r["method"] == "window/showMessageRequest"),
        "the client prompts itself"
    );
    c.shutdown();
}

/// A review's findings are published as diagnostics, kept in the audit log, and published
/// again by the next server on the workspace (a restart) before anything runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_findings_are_published_again_after_a_restart() {
    let reply = r#"{"line": 2, "severity": "warning", "message": "add validates nothing"}"#;
    let server = provider(&[reply], Duration::ZERO).await;
    let e = env();
    let config =
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]}});
    let uri = file_uri(&e.root.join("a.py"));
    let published = |c: &mut LspClient| {
        c.wait_notification(|n| {
            n["method"] == "textDocument/publishDiagnostics"
                && n["params"]["uri"] == uri.as_str()
                && n["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty())
        })
    };
    let mut first = spawn(&e);
    init(&mut first, &e, config.clone());
    let r = exec(
        &mut first,
        "infinity-matrix.startAgent",
        json!({"agent": "review", "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}}),
    )
    .unwrap();
    let id = r["taskId"].as_str().unwrap().to_string();
    assert_eq!(
        task_state(&mut first, &id, &["succeeded", "failed"])["state"],
        "succeeded"
    );
    let before = published(&mut first);
    let finding = before["params"]["diagnostics"][0].clone();
    assert_eq!(finding["message"], "add validates nothing", "{before}");
    first.shutdown();

    let mut second = spawn(&e);
    init(&mut second, &e, config);
    let after = published(&mut second);
    assert_eq!(after["params"]["diagnostics"][0], finding, "{after}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "the restarted server ran nothing");
}

/// *Apply as edit* of an answer's code block goes through the approval policy as an edit
/// agent's reply would: an answer agent's approval (`explain`: auto, for its answers) counts as
/// manual, so the edit waits for approval; an edit agent's own `auto` inside its selection
/// applies it with `workspace/applyEdit`; an unknown task is an error. No provider is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_block_proposed_as_an_edit_follows_the_approval_policy() {
    let server = provider(
        &["Use:\n```python\ndef add(a, b):\n    return b + a\n```\n"],
        Duration::ZERO,
    )
    .await;
    let e = env();
    let mut c = spawn(&e);
    let autoedit = json!({"description": "Quick fix", "output": "edit", "approval": "auto",
        "triggers": ["command"], "prompt": "Fix:\n```\n{{selection}}\n```"});
    init(
        &mut c,
        &e,
        json!({"providers": {"live": live(&server.uri())}, "defaults": {"providers": ["live"]},
               "agents": {"autoedit": autoedit}}),
    );
    let uri = file_uri(&e.root.join("a.py"));
    let selection =
        json!({"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}});
    let answered = |c: &mut LspClient, agent: &str| {
        let r = exec(
            c,
            "infinity-matrix.startAgent",
            json!({"agent": agent, "textDocument": {"uri": uri}, "range": selection}),
        )
        .unwrap();
        let id = r["taskId"].as_str().unwrap().to_string();
        assert_eq!(
            task_state(c, &id, &["succeeded", "failed"])["state"],
            "succeeded"
        );
        id
    };
    let propose = |c: &mut LspClient, task: &str, text: &str| {
        let r = exec(
            c,
            "infinity-matrix.proposeEdit",
            json!({"taskId": task, "newText": text}),
        )
        .unwrap();
        r["taskId"].as_str().unwrap().to_string()
    };
    let applied_edits = |c: &LspClient| {
        c.server_requests
            .iter()
            .filter(|r| r["method"] == "workspace/applyEdit")
            .cloned()
            .collect::<Vec<Value>>()
    };
    let new_text = "def add(a, b):\n    return b + a\n";
    // As a code block holds it: without the line break the whole-line target ends with.
    let block = new_text.trim_end();

    let explained = answered(&mut c, "explain");
    let asked = propose(&mut c, &explained, block);
    assert_ne!(asked, explained);
    let task = task_state(
        &mut c,
        &asked,
        &["awaiting_approval", "succeeded", "failed"],
    );
    assert_eq!(task["state"], "awaiting_approval", "{task}");
    assert_eq!(task["parentTaskId"], explained.as_str(), "{task}");
    assert!(
        applied_edits(&c).is_empty(),
        "an answer agent's pick applied unasked"
    );

    let fixed = answered(&mut c, "autoedit");
    let before = applied_edits(&c).len();
    let applied = propose(&mut c, &fixed, block);
    let task = task_state(&mut c, &applied, &["succeeded", "failed", "cancelled"]);
    assert_eq!(task["state"], "succeeded", "{task}");
    let edits = applied_edits(&c);
    assert_eq!(edits.len(), before + 1, "{edits:?}");
    let change = &edits[before]["params"]["edit"]["documentChanges"][0]["edits"][0];
    assert_eq!(change["newText"], new_text, "{change}");
    assert_eq!(change["range"], selection, "{change}");

    let err = exec(
        &mut c,
        "infinity-matrix.proposeEdit",
        json!({"taskId": "nope", "newText": "x"}),
    )
    .unwrap_err();
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("nope")),
        "{err}"
    );
    let calls = server.received_requests().await.unwrap().len();
    assert_eq!(calls, 2, "proposing an edit asks no provider");
}
