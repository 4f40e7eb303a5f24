//! Tests of the audit log: every write kind, queries, prompt storage, retention, concurrency and crash safety.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infinity_matrix::audit::{
    ApprovalActor, ApprovalDecision, ApprovalRecord, AttemptRecord, AuditError, AuditLog,
    AuditQuery, EditRecord, EntryKind, SCHEMA_VERSION, TaskRecord, TaskState, database_file_in,
    database_path_for_root, default_database_path, now_ms, sha256_hex,
};
use infinity_matrix::providers::{ErrorClass, Usage};

const DAY_MS: i64 = 86_400_000;

fn task(id: &str, agent: &str, state: TaskState, created_at: i64) -> TaskRecord {
    TaskRecord {
        id: id.to_owned(),
        agent: agent.to_owned(),
        state,
        priority: 1,
        created_at,
        uri: Some("file:///repo/src/lib.rs".to_owned()),
        provider: Some("local".to_owned()),
        model: Some("qwen".to_owned()),
        prompt: format!("explain the code of {id}"),
        summary: format!("explain {id}"),
    }
}

fn attempt(task_id: &str, n: u32, started_at: i64, error: Option<ErrorClass>) -> AttemptRecord {
    AttemptRecord {
        task_id: task_id.to_owned(),
        attempt: n,
        provider: "local".to_owned(),
        model: "qwen".to_owned(),
        started_at,
        latency_ms: Some(1234),
        ttft_ms: Some(200),
        usage: Usage {
            prompt_tokens: Some(100),
            completion_tokens: Some(42),
        },
        error_message: error.as_ref().map(|c| format!("failed: {}", c.name())),
        error_class: error,
        retry_delay_ms: Some(500),
        skipped: false,
    }
}

fn approval(task_id: &str, at: i64, decision: ApprovalDecision) -> ApprovalRecord {
    ApprovalRecord {
        task_id: task_id.to_owned(),
        at,
        decision,
        by_whom: ApprovalActor::User,
        reason: Some("looks right".to_owned()),
    }
}

fn edit(task_id: &str, at: i64, applied: bool) -> EditRecord {
    EditRecord {
        task_id: task_id.to_owned(),
        at,
        files: vec![
            "file:///repo/a.rs".to_owned(),
            "file:///repo/b.rs".to_owned(),
        ],
        lines_changed: 7,
        content_hash: sha256_hex("new text"),
        summary: "rename foo to bar".to_owned(),
        applied,
        outcome_detail: (!applied).then(|| "rejected by user".to_owned()),
    }
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn audit_log_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<AuditLog>();
    check::<Arc<AuditLog>>();
}

#[test]
fn task_lifecycle_is_recorded() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("t1", "explain", TaskState::Queued, t0));
    log.task_transition("t1", TaskState::Queued, TaskState::Running, None);
    log.task_transition("t1", TaskState::Running, TaskState::Succeeded, Some("done"));
    log.set_task_result(
        "t1",
        "claude",
        "sonnet",
        "\n\n  The function adds two numbers.  \nMore.",
    );
    log.flush().unwrap();

    let row = log.task("t1").unwrap().unwrap();
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.agent, "explain");
    assert_eq!(row.priority, 1);
    assert_eq!(row.created_at, t0);
    assert!(row.updated_at >= t0);
    assert_eq!(row.provider.as_deref(), Some("claude"));
    assert_eq!(row.model.as_deref(), Some("sonnet"));
    assert_eq!(row.error, None);
    assert_eq!(
        row.prompt_hash.as_deref(),
        Some(sha256_hex("explain the code of t1").as_str())
    );
    assert_eq!(
        row.reply_hash.as_deref(),
        Some(sha256_hex("\n\n  The function adds two numbers.  \nMore.").as_str())
    );
    assert_eq!(
        row.summary.as_deref(),
        Some("The function adds two numbers.")
    );
    assert!(log.task("missing").unwrap().is_none());

    let events = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Transition),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].summary, "queued → running");
    assert_eq!(events[1].summary, "running → succeeded: done");
    assert_eq!(events[1].details["from_state"], "running");
    assert_eq!(events[1].details["to_state"], "succeeded");
    assert_eq!(events[1].agent.as_deref(), Some("explain"));
    assert!(events[0].at <= events[1].at);
}

/// Every task entry names the front end whose process created it (LSP, CLI, MCP or ACP); a log
/// that was never told has none.
#[test]
fn task_entries_name_their_front_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let log = AuditLog::open(&db, false).unwrap();
    log.set_front_end("mcp");
    log.task_created(&task("t1", "explain", TaskState::Queued, now_ms()));
    log.flush().unwrap();
    drop(log);
    let other = AuditLog::open(&db, false).unwrap();
    other.task_created(&task("t2", "explain", TaskState::Queued, now_ms()));
    other.flush().unwrap();
    let tasks = other
        .query(&AuditQuery {
            kind: Some(EntryKind::Task),
            ..Default::default()
        })
        .unwrap();
    let front_end = |id: &str| {
        let entry = tasks.iter().find(|e| e.task_id == id).unwrap();
        entry.details["front_end"].clone()
    };
    assert_eq!(front_end("t1"), "mcp");
    assert_eq!(front_end("t2"), serde_json::Value::Null);
}

/// Each file's latest findings are what a restarted server publishes: a later empty list
/// replaces earlier findings; other files keep theirs.
#[test]
fn the_latest_findings_per_file_are_kept() {
    let log = AuditLog::open_in_memory().unwrap();
    let one =
        serde_json::json!([{"line": 1, "end_line": 1, "severity": "Warning", "message": "m"}]);
    log.findings("t1", "file:///w/a.py", &one);
    log.findings("t1", "file:///w/b.py", &one);
    log.findings("t2", "file:///w/a.py", &serde_json::json!([]));
    log.flush().unwrap();
    let mut latest = log.latest_findings(10).unwrap();
    latest.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        latest,
        vec![
            (
                "t2".to_string(),
                "file:///w/a.py".to_string(),
                serde_json::json!([])
            ),
            ("t1".to_string(), "file:///w/b.py".to_string(), one),
        ]
    );
}

#[test]
fn failed_transition_sets_the_error() {
    let log = AuditLog::open_in_memory().unwrap();
    log.task_created(&task("t1", "fix", TaskState::Queued, now_ms()));
    log.task_created(&task("t2", "fix", TaskState::Running, now_ms()));
    log.task_transition(
        "t1",
        TaskState::Queued,
        TaskState::Failed,
        Some("all providers failed"),
    );
    log.task_transition("t2", TaskState::Running, TaskState::Failed, None);
    let t1 = log.task("t1").unwrap().unwrap();
    assert_eq!(t1.state, TaskState::Failed);
    assert_eq!(t1.error.as_deref(), Some("all providers failed"));
    let t2 = log.task("t2").unwrap().unwrap();
    assert_eq!(t2.error.as_deref(), Some("failed"));
}

#[test]
fn reads_see_writes_queued_before_them() {
    let log = AuditLog::open_in_memory().unwrap();
    for i in 0..100 {
        log.task_created(&task(
            &format!("t{i}"),
            "explain",
            TaskState::Queued,
            now_ms(),
        ));
    }
    // No flush: reads run after the writes queued before them.
    assert_eq!(log.tasks(1000).unwrap().len(), 100);
}

#[test]
fn attempts_are_recorded() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("t1", "explain", TaskState::Running, t0));
    log.attempt(&attempt(
        "t1",
        1,
        t0 + 1,
        Some(ErrorClass::RateLimited {
            retry_after_ms: Some(900),
        }),
    ));
    log.attempt(&attempt(
        "t1",
        2,
        t0 + 2,
        Some(ErrorClass::Server { status: 503 }),
    ));
    log.attempt(&attempt("t1", 3, t0 + 3, None));
    log.flush().unwrap();

    let entries = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Attempt),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(entries.len(), 3);
    let outcomes: Vec<_> = entries
        .iter()
        .map(|e| e.details["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["rate_limited", "server", "ok"]);
    let first = &entries[0];
    assert_eq!(first.kind, EntryKind::Attempt);
    assert_eq!(first.at, t0 + 1);
    assert_eq!(first.details["attempt"], 1);
    assert_eq!(first.details["latency_ms"], 1234);
    assert_eq!(first.details["ttft_ms"], 200);
    assert_eq!(first.details["prompt_tokens"], 100);
    assert_eq!(first.details["completion_tokens"], 42);
    assert_eq!(first.details["retry_delay_ms"], 500);
    assert_eq!(first.details["error_class"]["class"], "rate_limited");
    assert_eq!(first.details["error_class"]["retry_after_ms"], 900);
    assert_eq!(first.details["error_message"], "failed: rate_limited");
    assert_eq!(entries[1].details["error_class"]["status"], 503);
    assert_eq!(entries[2].details["error_class"], serde_json::Value::Null);
    assert_eq!(entries[2].summary, "attempt 3 on local/qwen: ok in 1234 ms");
    assert!(
        first
            .summary
            .starts_with("attempt 1 on local/qwen: rate_limited in 1234 ms: failed")
    );
}

#[test]
fn approvals_are_recorded() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("t1", "fix", TaskState::AwaitingApproval, t0));
    log.approval(&approval("t1", t0 + 1, ApprovalDecision::Accepted));
    log.approval(&ApprovalRecord {
        task_id: "t1".to_owned(),
        at: t0 + 2,
        decision: ApprovalDecision::TimeoutApplied,
        by_whom: ApprovalActor::Timeout,
        reason: None,
    });
    log.approval(&ApprovalRecord {
        task_id: "t1".to_owned(),
        at: t0 + 3,
        decision: ApprovalDecision::Refused,
        by_whom: ApprovalActor::Policy,
        reason: Some("more than 40 lines".to_owned()),
    });
    log.flush().unwrap();
    let entries = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Approval),
            ..Default::default()
        })
        .unwrap();
    let summaries: Vec<_> = entries.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "accepted by user: looks right",
            "timeout_applied by timeout",
            "refused by policy: more than 40 lines"
        ]
    );
    assert_eq!(entries[0].details["decision"], "accepted");
    assert_eq!(entries[0].details["by_whom"], "user");
    assert_eq!(entries[1].details["reason"], serde_json::Value::Null);
}

#[test]
fn edits_are_recorded() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("t1", "fix", TaskState::Running, t0));
    log.edit(&edit("t1", t0 + 1, true));
    log.edit(&edit("t1", t0 + 2, false));
    log.flush().unwrap();
    let entries = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Edit),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(entries.len(), 2);
    let applied = &entries[0];
    assert_eq!(
        applied.details["files"],
        serde_json::json!(["file:///repo/a.rs", "file:///repo/b.rs"])
    );
    assert_eq!(applied.details["lines_changed"], 7);
    assert_eq!(applied.details["content_hash"], sha256_hex("new text"));
    assert_eq!(applied.details["applied"], true);
    assert_eq!(
        applied.summary,
        "edit applied: 2 file(s), 7 line(s): rename foo to bar"
    );
    assert_eq!(entries[1].details["applied"], false);
    assert_eq!(entries[1].details["outcome_detail"], "rejected by user");
    assert!(entries[1].summary.ends_with("(rejected by user)"));
}

#[test]
fn queries_filter_and_order() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms() - 10_000;
    log.task_created(&task("a1", "explain", TaskState::Queued, t0));
    log.task_created(&task("b1", "fix", TaskState::Queued, t0 + 10));
    log.attempt(&attempt("a1", 1, t0 + 20, None));
    log.attempt(&attempt("b1", 1, t0 + 30, None));
    log.approval(&approval("b1", t0 + 40, ApprovalDecision::Accepted));
    log.edit(&edit("b1", t0 + 50, true));
    log.flush().unwrap();

    let all = log.query(&AuditQuery::default()).unwrap();
    let kinds: Vec<_> = all.iter().map(|e| (e.kind, e.task_id.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (EntryKind::Task, "a1"),
            (EntryKind::Task, "b1"),
            (EntryKind::Attempt, "a1"),
            (EntryKind::Attempt, "b1"),
            (EntryKind::Approval, "b1"),
            (EntryKind::Edit, "b1"),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));

    let by_task = log
        .query(&AuditQuery {
            task_id: Some("a1".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_task.len(), 2);
    assert!(by_task.iter().all(|e| e.task_id == "a1"));

    let by_agent = log
        .query(&AuditQuery {
            agent: Some("fix".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_agent.len(), 4);
    assert!(by_agent.iter().all(|e| e.agent.as_deref() == Some("fix")));

    let since = log
        .query(&AuditQuery {
            since: Some(t0 + 30),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(since.len(), 3);
    assert!(since.iter().all(|e| e.at >= t0 + 30));

    // The limit keeps the newest entries, still newest last.
    let newest = log
        .query(&AuditQuery {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    let kinds: Vec<_> = newest.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Approval, EntryKind::Edit]);

    let combined = log
        .query(&AuditQuery {
            agent: Some("fix".into()),
            kind: Some(EntryKind::Task),
            since: Some(t0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(combined.len(), 1);
    assert_eq!(combined[0].task_id, "b1");
    assert_eq!(
        combined[0].summary,
        "fix task created (now queued): explain b1"
    );

    assert!(
        log.query(&AuditQuery {
            limit: Some(0),
            ..Default::default()
        })
        .unwrap()
        .is_empty()
    );

    // tasks(): newest first.
    let tasks = log.tasks(10).unwrap();
    let ids: Vec<_> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["b1", "a1"]);
    assert_eq!(log.tasks(1).unwrap().len(), 1);
}

#[test]
fn default_query_limit_is_200() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("t", "explain", TaskState::Running, t0));
    for i in 0..300 {
        log.attempt(&attempt("t", i, t0 + i64::from(i), None));
    }
    let entries = log.query(&AuditQuery::default()).unwrap();
    assert_eq!(entries.len(), 200);
    assert_eq!(entries.last().unwrap().details["attempt"], 299);
}

/// The engine's audit types serialize with their own field names; the front ends put them on
/// their wire in camelCase (`lsp/ext.rs` `AuditEntry`, `cli/json.rs` `AuditLine`).
#[test]
fn query_types_serialize_for_the_wire() {
    let log = AuditLog::open_in_memory().unwrap();
    log.task_created(&task("t1", "explain", TaskState::Queued, now_ms()));
    let entries = log.query(&AuditQuery::default()).unwrap();
    let json = serde_json::to_value(&entries[0]).unwrap();
    for key in ["at", "kind", "task_id", "agent", "summary", "details"] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["kind"], "task");
    let query: AuditQuery =
        serde_json::from_value(serde_json::json!({"task_id": "t1", "kind": "edit", "limit": 5}))
            .unwrap();
    assert_eq!(query.task_id.as_deref(), Some("t1"));
    assert_eq!(query.kind, Some(EntryKind::Edit));
    assert_eq!(
        "approval".parse::<EntryKind>().unwrap(),
        EntryKind::Approval
    );
    assert!("nope".parse::<EntryKind>().is_err());
    assert_eq!(
        "awaiting_approval".parse::<TaskState>().unwrap(),
        TaskState::AwaitingApproval
    );
}

/// Every byte of the database and its WAL.
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let wal = path.with_extension("sqlite3-wal");
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn prompts_are_not_stored_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let log = AuditLog::open(&path, false).unwrap();
    assert!(!log.stores_prompts());
    let mut record = task("t1", "explain", TaskState::Queued, now_ms());
    record.prompt = "PROMPT-TEXT-MARKER with context".to_owned();
    log.task_created(&record);
    log.set_task_result(
        "t1",
        "local",
        "qwen",
        "REPLY-TEXT-MARKER first line\nsecond",
    );
    let row = log.task("t1").unwrap().unwrap();
    assert_eq!(row.prompt, None);
    assert_eq!(row.reply, None);
    assert_eq!(
        row.prompt_hash,
        Some(sha256_hex("PROMPT-TEXT-MARKER with context"))
    );
    assert_eq!(
        row.reply_hash,
        Some(sha256_hex("REPLY-TEXT-MARKER first line\nsecond"))
    );
    assert_eq!(row.summary.as_deref(), Some("REPLY-TEXT-MARKER first line"));
    log.close().unwrap();
    let bytes = database_bytes(&path);
    assert!(!contains(&bytes, "PROMPT-TEXT-MARKER"));
    assert!(!contains(&bytes, "second"));
}

#[test]
fn prompts_are_stored_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let log = AuditLog::open(&path, true).unwrap();
    let mut record = task("t1", "explain", TaskState::Queued, now_ms());
    record.prompt = "the whole prompt".to_owned();
    log.task_created(&record);
    log.set_task_result("t1", "local", "qwen", "the whole reply\nwith two lines");
    let row = log.task("t1").unwrap().unwrap();
    assert_eq!(row.prompt.as_deref(), Some("the whole prompt"));
    assert_eq!(
        row.reply.as_deref(),
        Some("the whole reply\nwith two lines")
    );
    assert_eq!(row.prompt_hash, Some(sha256_hex("the whole prompt")));
}

#[test]
fn summaries_are_one_short_line() {
    let log = AuditLog::open_in_memory().unwrap();
    log.task_created(&task("t1", "explain", TaskState::Queued, now_ms()));
    let long = "é".repeat(300);
    log.set_task_result("t1", "local", "qwen", &format!("\n   \n{long}\nnext line"));
    let summary = log.task("t1").unwrap().unwrap().summary.unwrap();
    assert_eq!(summary.chars().count(), 120);
    assert!(summary.ends_with('…'));
    assert!(!summary.contains('\n'));

    log.task_created(&task("t2", "explain", TaskState::Queued, now_ms()));
    log.set_task_result("t2", "local", "qwen", "");
    assert_eq!(
        log.task("t2").unwrap().unwrap().summary.as_deref(),
        Some("(empty reply)")
    );
}

fn scrub(text: &str) -> String {
    text.replace("sk-SECRET", "[REDACTED]")
}

#[test]
fn redactor_scrubs_every_free_text_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let log = AuditLog::open(&path, true).unwrap();
    log.set_redactor(scrub);
    let t0 = now_ms();
    let mut record = task("t1", "explain", TaskState::Queued, t0);
    record.prompt = "key sk-SECRET in prompt".to_owned();
    record.summary = "summary sk-SECRET".to_owned();
    log.task_created(&record);
    log.task_transition(
        "t1",
        TaskState::Queued,
        TaskState::Failed,
        Some("detail sk-SECRET"),
    );
    log.set_task_result("t1", "local", "qwen", "reply sk-SECRET");
    let mut a = attempt("t1", 1, t0, Some(ErrorClass::Auth { status: 401 }));
    a.error_message = Some("bad key sk-SECRET".to_owned());
    log.attempt(&a);
    let mut p = approval("t1", t0, ApprovalDecision::Rejected);
    p.reason = Some("reason sk-SECRET".to_owned());
    log.approval(&p);
    let mut e = edit("t1", t0, false);
    e.summary = "edit sk-SECRET".to_owned();
    e.outcome_detail = Some("detail sk-SECRET".to_owned());
    log.edit(&e);

    let row = log.task("t1").unwrap().unwrap();
    assert_eq!(row.prompt.as_deref(), Some("key [REDACTED] in prompt"));
    assert_eq!(row.reply.as_deref(), Some("reply [REDACTED]"));
    assert_eq!(row.error.as_deref(), Some("detail [REDACTED]"));
    let entries = log.query(&AuditQuery::default()).unwrap();
    assert_eq!(entries.len(), 5);
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("sk-SECRET"), "{text}");
    assert!(text.contains("[REDACTED]"));
    log.close().unwrap();
    assert!(!contains(&database_bytes(&path), "sk-SECRET"));
}

#[test]
fn retention_deletes_old_rows() {
    let log = AuditLog::open_in_memory().unwrap();
    let now = now_ms();
    let old = now - 40 * DAY_MS;
    log.task_created(&task("old-done", "explain", TaskState::Succeeded, old));
    log.task_created(&task("old-open", "explain", TaskState::Queued, old));
    log.task_created(&task("new", "explain", TaskState::Queued, now));
    log.attempt(&attempt("old-done", 1, old, None));
    log.attempt(&attempt("new", 1, now, None));
    log.approval(&approval("old-done", old, ApprovalDecision::Auto));
    log.approval(&approval("new", now, ApprovalDecision::Auto));
    log.edit(&edit("old-done", old, true));
    log.edit(&edit("new", now, true));
    log.flush().unwrap();

    assert_eq!(log.apply_retention(0).unwrap(), 0, "0 disables retention");
    assert_eq!(log.apply_retention(60).unwrap(), 0);
    assert_eq!(log.apply_retention(30).unwrap(), 4);
    assert!(log.task("old-done").unwrap().is_none());
    assert!(
        log.task("old-open").unwrap().is_some(),
        "unfinished tasks are kept"
    );
    assert!(log.task("new").unwrap().is_some());
    let left = log.query(&AuditQuery::default()).unwrap();
    let non_task: Vec<_> = left.iter().filter(|e| e.kind != EntryKind::Task).collect();
    assert_eq!(non_task.len(), 3);
    assert!(non_task.iter().all(|e| e.task_id == "new"));
    assert_eq!(log.apply_retention(30).unwrap(), 0);
}

#[test]
fn recover_interrupted_fails_unfinished_tasks_of_a_process_that_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let t0 = now_ms();
    // A first process writes tasks and starts a call, then goes away without finishing them.
    let first = AuditLog::open(&path, false).unwrap();
    first.task_created(&task("q", "explain", TaskState::Queued, t0));
    first.task_created(&task("r", "explain", TaskState::Running, t0));
    first.task_created(&task("w", "explain", TaskState::AwaitingApproval, t0));
    first.task_created(&task("s", "explain", TaskState::Succeeded, t0));
    first.task_created(&task("c", "explain", TaskState::Cancelled, t0));
    first.attempt_started(&AttemptRecord {
        latency_ms: None,
        ttft_ms: None,
        retry_delay_ms: None,
        ..attempt("r", 1, t0, None)
    });
    drop(first);

    let log = AuditLog::open(&path, false).unwrap();
    assert_eq!(log.recover_interrupted().unwrap(), 3);
    for id in ["q", "r", "w"] {
        let row = log.task(id).unwrap().unwrap();
        assert_eq!(row.state, TaskState::Failed, "{id}");
        assert_eq!(row.error.as_deref(), Some("interrupted"));
    }
    assert_eq!(log.task("s").unwrap().unwrap().state, TaskState::Succeeded);
    assert_eq!(log.task("c").unwrap().unwrap().state, TaskState::Cancelled);
    let events = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Transition),
            task_id: Some("w".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].summary, "awaiting_approval → failed: interrupted");
    // The call in flight is closed as interrupted.
    let attempts = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Attempt),
            task_id: Some("r".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].details["outcome"], "interrupted");
    assert_eq!(
        attempts[0].details["error_message"],
        infinity_matrix::audit::INTERRUPTED_ATTEMPT
    );
    assert_eq!(log.recover_interrupted().unwrap(), 0);
}

#[test]
fn recovery_leaves_the_tasks_of_a_live_process_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let t0 = now_ms();
    // The first server is alive and running a task (with a call in flight).
    let first = AuditLog::open(&path, false).unwrap();
    first.task_created(&task("live", "explain", TaskState::Queued, t0));
    first.task_transition("live", TaskState::Queued, TaskState::Running, None);
    first.attempt_started(&AttemptRecord {
        latency_ms: None,
        ttft_ms: None,
        retry_delay_ms: None,
        ..attempt("live", 1, t0, None)
    });
    first.flush().unwrap();

    // A second server starts on the same workspace: nothing of the first one is touched,
    // and its own running tasks are not touched by its own recovery either.
    let second = AuditLog::open(&path, false).unwrap();
    second.task_created(&task("mine", "explain", TaskState::Running, t0));
    assert_eq!(second.recover_interrupted().unwrap(), 0);
    assert_eq!(
        second.task("live").unwrap().unwrap().state,
        TaskState::Running
    );
    assert_eq!(
        second.task("mine").unwrap().unwrap().state,
        TaskState::Running
    );
    // The first server finishes its task normally.
    first.attempt(&attempt("live", 1, t0, None));
    first.task_transition("live", TaskState::Running, TaskState::Succeeded, None);
    first.flush().unwrap();
    let row = second.task("live").unwrap().unwrap();
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.error, None);
    let summaries: Vec<String> = second
        .query(&AuditQuery {
            task_id: Some("live".into()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.summary)
        .collect();
    assert!(
        !summaries.iter().any(|s| s.contains("interrupted")),
        "{summaries:?}"
    );
    assert!(
        summaries.iter().any(|s| s.contains(": ok")),
        "the in-flight row was completed: {summaries:?}"
    );

    // Once the first process is gone, its unfinished task (not the second's) is recovered.
    first.task_created(&task("left", "explain", TaskState::Running, t0));
    drop(first);
    assert_eq!(second.recover_interrupted().unwrap(), 1);
    assert_eq!(
        second.task("left").unwrap().unwrap().state,
        TaskState::Failed
    );
    assert_eq!(
        second.task("mine").unwrap().unwrap().state,
        TaskState::Running
    );
    assert_eq!(
        second.task("live").unwrap().unwrap().state,
        TaskState::Succeeded
    );
    drop(second);
    // Owners are on record: both ended, and no lock file is left behind.
    let conn = raw(&path);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM owners WHERE ended_at IS NOT NULL"
        ),
        2
    );
    let locks = std::fs::read_dir(dir.path().join("audit.sqlite3.owners"))
        .unwrap()
        .count();
    assert_eq!(locks, 0);
}

#[test]
fn an_attempt_row_is_written_when_the_call_starts_and_completed_when_it_ends() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("t", "explain", TaskState::Running, t0));
    log.attempt_started(&AttemptRecord {
        latency_ms: None,
        ttft_ms: None,
        retry_delay_ms: None,
        ..attempt("t", 1, t0, None)
    });
    let query = AuditQuery {
        kind: Some(EntryKind::Attempt),
        task_id: Some("t".into()),
        ..Default::default()
    };
    let rows = log.query(&query).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].details["outcome"], "running");
    assert_eq!(rows[0].details["latency_ms"], serde_json::Value::Null);
    log.attempt(&attempt(
        "t",
        1,
        t0 + 5,
        Some(ErrorClass::Server { status: 503 }),
    ));
    // A skipped provider is a row of its own.
    log.attempt(&AttemptRecord {
        skipped: true,
        attempt: 0,
        latency_ms: None,
        error_message: Some("skipped: circuit open".into()),
        ..attempt("t", 0, t0 + 6, Some(ErrorClass::CircuitOpen))
    });
    let rows = log.query(&query).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].details["outcome"], "server");
    assert_eq!(rows[0].details["started_at"], t0, "the start time is kept");
    assert_eq!(rows[0].details["latency_ms"], 1234);
    assert_eq!(rows[1].details["outcome"], "skipped");
    assert_eq!(rows[1].details["error_class"]["class"], "circuit_open");
    assert!(
        rows[1].summary.contains("skipped: circuit open"),
        "{}",
        rows[1].summary
    );
}

/// The version 1 schema, as the first release wrote it.
const SCHEMA_V1: &str = r#"
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY NOT NULL, agent TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('queued','running','awaiting_approval','succeeded','failed','cancelled')),
        priority INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, uri TEXT, provider TEXT, model TEXT, error TEXT,
        prompt_hash TEXT, prompt TEXT NULL, reply TEXT NULL, reply_hash TEXT, summary TEXT);
    CREATE INDEX tasks_created_at ON tasks(created_at);
    CREATE INDEX tasks_state ON tasks(state);
    CREATE TABLE task_events (seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL,
        at INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL, detail TEXT);
    CREATE INDEX task_events_task ON task_events(task_id);
    CREATE INDEX task_events_at ON task_events(at);
    CREATE TABLE attempts (seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
        started_at INTEGER NOT NULL, latency_ms INTEGER, ttft_ms INTEGER, prompt_tokens INTEGER,
        completion_tokens INTEGER, outcome TEXT NOT NULL, error_class TEXT, error_message TEXT,
        retry_delay_ms INTEGER);
    CREATE INDEX attempts_task ON attempts(task_id);
    CREATE INDEX attempts_started_at ON attempts(started_at);
    CREATE TABLE approvals (seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL, at INTEGER NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN
            ('accepted','rejected','auto','timeout_applied','refused')),
        by_whom TEXT NOT NULL CHECK (by_whom IN ('user','policy','timeout')), reason TEXT);
    CREATE INDEX approvals_task ON approvals(task_id);
    CREATE INDEX approvals_at ON approvals(at);
    CREATE TABLE edits (seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL, at INTEGER NOT NULL,
        files TEXT NOT NULL, lines_changed INTEGER NOT NULL, content_hash TEXT NOT NULL,
        summary TEXT NOT NULL, applied INTEGER NOT NULL CHECK (applied IN (0, 1)),
        outcome_detail TEXT);
    CREATE INDEX edits_task ON edits(task_id);
    CREATE INDEX edits_at ON edits(at);
    PRAGMA user_version = 1;
"#;

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let t0 = now_ms() - 1000;
    {
        let conn = raw(&path);
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO tasks (id, agent, state, priority, created_at, updated_at, summary) \
             VALUES ('old-done', 'explain', 'succeeded', 0, ?1, ?1, 'done'), \
                    ('old-stuck', 'fix', 'running', 0, ?1, ?1, 'stuck')",
            [t0],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO attempts (task_id, attempt, provider, model, started_at, latency_ms, \
             outcome) VALUES ('old-done', 1, 'local', 'm', ?1, 12, 'ok')",
            [t0],
        )
        .unwrap();
    }
    let log = AuditLog::open(&path, false).unwrap();
    assert_eq!(
        log.task("old-done").unwrap().unwrap().state,
        TaskState::Succeeded
    );
    // Rows from before owners were recorded belong to no live process: recovered.
    assert_eq!(log.recover_interrupted().unwrap(), 1);
    let stuck = log.task("old-stuck").unwrap().unwrap();
    assert_eq!(stuck.state, TaskState::Failed);
    assert_eq!(stuck.error.as_deref(), Some("interrupted"));
    let attempts = log
        .query(&AuditQuery {
            kind: Some(EntryKind::Attempt),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].details["outcome"], "ok");
    // New writes carry their owner.
    log.task_created(&task("new", "explain", TaskState::Queued, now_ms()));
    let owner = log.owner_id().to_owned();
    drop(log);
    let conn = raw(&path);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let (row_owner, old_owner): (String, Option<String>) = conn
        .query_row(
            "SELECT (SELECT owner FROM tasks WHERE id = 'new'), \
                    (SELECT owner FROM tasks WHERE id = 'old-done')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(row_owner, owner);
    assert_eq!(old_owner, None);
    let pid: i64 = conn
        .query_row("SELECT pid FROM owners WHERE id = ?1", [&owner], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(pid, i64::from(std::process::id()));
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let log = Arc::new(AuditLog::open(&path, false).unwrap());
    const THREADS: usize = 8;
    const PER_THREAD: usize = 500;
    let start = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let id = format!("t{t}-{i}");
                    log.task_created(&task(&id, "explain", TaskState::Queued, now_ms()));
                    log.task_transition(&id, TaskState::Queued, TaskState::Running, None);
                    log.attempt(&attempt(&id, 1, now_ms(), None));
                    log.task_transition(&id, TaskState::Running, TaskState::Succeeded, None);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let enqueued = start.elapsed();
    log.flush().unwrap();
    let committed = start.elapsed();
    let events = THREADS * PER_THREAD * 4;
    eprintln!("{events} events: enqueued in {enqueued:?}, committed in {committed:?}");

    let conn = raw(&path);
    let total = (THREADS * PER_THREAD) as i64;
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tasks"), total);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM tasks WHERE state = 'succeeded'"
        ),
        total
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM task_events"), total * 2);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM attempts"), total);
    // Per task, the events are in call order.
    let misordered = count(
        &conn,
        "SELECT COUNT(*) FROM task_events a JOIN task_events b ON a.task_id = b.task_id \
         WHERE a.seq < b.seq AND a.to_state = 'succeeded'",
    );
    assert_eq!(misordered, 0);
}

#[test]
fn flush_reports_failed_writes_and_keeps_the_rest() {
    let log = AuditLog::open_in_memory().unwrap();
    let t0 = now_ms();
    log.task_created(&task("dup", "explain", TaskState::Queued, t0));
    log.task_created(&task("dup", "explain", TaskState::Queued, t0));
    log.task_created(&task("other", "explain", TaskState::Queued, t0));
    match log.flush() {
        Err(AuditError::WriteFailed { count, last }) => {
            assert_eq!(count, 1);
            assert!(last.contains("UNIQUE"), "{last}");
        }
        other => panic!("expected WriteFailed, got {other:?}"),
    }
    assert!(log.task("other").unwrap().is_some());
    log.flush().unwrap();
}

#[test]
fn closed_log_drops_writes_and_refuses_reads() {
    let log = AuditLog::open_in_memory().unwrap();
    log.task_created(&task("t1", "explain", TaskState::Queued, now_ms()));
    log.close().unwrap();
    log.close().unwrap();
    log.task_created(&task("t2", "explain", TaskState::Queued, now_ms()));
    assert!(matches!(log.flush(), Err(AuditError::Closed)));
    assert!(matches!(log.task("t1"), Err(AuditError::Closed)));
}

#[test]
fn open_creates_directories_and_configures_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("audit.sqlite3");
    let log = AuditLog::open(&path, false).unwrap();
    assert_eq!(log.path(), Some(path.as_path()));
    log.task_created(&task("t1", "explain", TaskState::Queued, now_ms()));
    drop(log); // dropping flushes
    assert!(path.exists());
    let conn = raw(&path);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM tasks"), 1);
    drop(conn);
    // Reopening applies no migration twice and keeps the data.
    let log = AuditLog::open(&path, false).unwrap();
    assert!(log.task("t1").unwrap().is_some());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    drop(AuditLog::open(&path, false).unwrap());
    raw(&path).pragma_update(None, "user_version", 99).unwrap();
    let err = AuditLog::open(&path, false).unwrap_err();
    assert!(
        matches!(err, AuditError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer"));
}

#[test]
fn database_paths_are_per_root_and_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("My Project");
    std::fs::create_dir(&root).unwrap();
    let path = database_path_for_root(&root);
    assert!(!path.starts_with(&root));
    assert!(
        path.parent().unwrap().ends_with("infinity-matrix/audit"),
        "{}",
        path.display()
    );
    let name = path.file_name().unwrap().to_str().unwrap();
    let stem = name.strip_suffix(".sqlite3").unwrap();
    let (base, hash) = stem.rsplit_once('-').unwrap();
    assert_eq!(base, "My_Project");
    assert_eq!(hash.len(), 16);
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(database_path_for_root(&root), path, "deterministic");
    let other = dir.path().join("other");
    assert_ne!(database_path_for_root(&other), path);
    assert!(default_database_path().ends_with("infinity-matrix/audit/default.sqlite3"));
    let in_dir = database_file_in(Path::new("/data"), Some(&root));
    assert_eq!(in_dir.parent(), Some(Path::new("/data")));
    assert_eq!(
        database_file_in(Path::new("/data"), None),
        Path::new("/data/default.sqlite3")
    );
}

const CHILD_ENV: &str = "INFINITY_MATRIX_AUDIT_CHILD_DB";

/// Not a test on its own: when `CHILD_ENV` is set, this is the writer process that
/// `killed_writer_keeps_flushed_data` kills with SIGKILL.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let log = AuditLog::open(Path::new(&path), false).unwrap();
    let t0 = now_ms();
    log.task_created(&task("crash-task", "explain", TaskState::Queued, t0));
    log.task_transition(
        "crash-task",
        TaskState::Queued,
        TaskState::Running,
        Some("started"),
    );
    log.attempt_started(&AttemptRecord {
        latency_ms: None,
        ttft_ms: None,
        retry_delay_ms: None,
        ..attempt("crash-task", 1_000_000, t0, None)
    });
    log.flush().unwrap();
    println!("AUDIT-CHILD-FLUSHED");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i: u32 = 0;
    while Instant::now() < deadline {
        log.attempt(&attempt(
            "crash-task",
            i,
            now_ms(),
            Some(ErrorClass::Timeout),
        ));
        log.task_created(&task(
            &format!("extra-{i}"),
            "fix",
            TaskState::Queued,
            now_ms(),
        ));
        if i.is_multiple_of(50) {
            log.flush().unwrap();
        }
        i += 1;
    }
}

#[cfg(unix)]
#[test]
fn killed_writer_keeps_flushed_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audit::child_writer",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let flushed = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("AUDIT-CHILD-FLUSHED"));
    assert!(flushed, "the child never reported its flush");
    // While the child lives, another process's recovery leaves its tasks alone.
    let probe = AuditLog::open(&path, false).unwrap();
    assert_eq!(probe.recover_interrupted().unwrap(), 0);
    assert_eq!(
        probe.task("crash-task").unwrap().unwrap().state,
        TaskState::Running
    );
    drop(probe);
    // Let it write (and commit some batches) for a while, then kill it mid-way.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());

    let conn = raw(&path);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let state: String = conn
        .query_row("SELECT state FROM tasks WHERE id = 'crash-task'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(state, "running");
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM task_events WHERE task_id = 'crash-task'"
        ),
        1,
        "the flushed transition survived"
    );
    let extra = count(&conn, "SELECT COUNT(*) FROM tasks WHERE id LIKE 'extra-%'");
    assert!(
        extra > 0,
        "the child committed more batches before it was killed"
    );
    drop(conn);

    let log = AuditLog::open(&path, false).unwrap();
    let recovered = log.recover_interrupted().unwrap();
    assert_eq!(
        recovered as i64,
        1 + extra,
        "crash-task plus the queued extras"
    );
    let row = log.task("crash-task").unwrap().unwrap();
    assert_eq!(row.state, TaskState::Failed);
    assert_eq!(row.error.as_deref(), Some("interrupted"));
    let events = log
        .query(&AuditQuery {
            task_id: Some("crash-task".into()),
            kind: Some(EntryKind::Transition),
            ..Default::default()
        })
        .unwrap();
    let summaries: Vec<_> = events.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(
        summaries,
        ["queued → running: started", "running → failed: interrupted"]
    );
    // The call the child had in flight when it was killed is on record, closed as interrupted.
    let conn = raw(&path);
    let outcome: String = conn
        .query_row(
            "SELECT outcome FROM attempts WHERE task_id = 'crash-task' AND attempt = 1000000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outcome, "interrupted");
    drop(conn);
    log.close().unwrap();
    let check: String = raw(&path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
