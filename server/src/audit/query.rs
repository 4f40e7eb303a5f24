//! Reading the audit log: filtered, time-ordered entries across all tables, and task rows.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::TaskState;

/// The number of entries a query returns when it sets no limit.
pub const DEFAULT_QUERY_LIMIT: usize = 200;

/// The most entries one query may return.
const MAX_QUERY_LIMIT: usize = 100_000;

/// Which table an [`AuditEntry`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A task's creation (`tasks`).
    Task,
    /// A state change (`task_events`).
    Transition,
    /// A provider call (`attempts`).
    Attempt,
    /// An approval decision (`approvals`).
    Approval,
    /// An edit (`edits`).
    Edit,
}

impl EntryKind {
    pub const ALL: [EntryKind; 5] = [
        EntryKind::Task,
        EntryKind::Transition,
        EntryKind::Attempt,
        EntryKind::Approval,
        EntryKind::Edit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Task => "task",
            EntryKind::Transition => "transition",
            EntryKind::Attempt => "attempt",
            EntryKind::Approval => "approval",
            EntryKind::Edit => "edit",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("unknown audit entry kind {s:?} (expected task, transition, attempt, approval or edit)")
        })
    }
}

/// A filter over the audit log. Every field is optional; `Default` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    /// Only entries at or after this time (milliseconds since the Unix epoch).
    pub since: Option<i64>,
    pub task_id: Option<String>,
    pub agent: Option<String>,
    pub kind: Option<EntryKind>,
    /// At most this many entries (the newest ones); default [`DEFAULT_QUERY_LIMIT`].
    pub limit: Option<usize>,
}

/// A `since` bound as people write it: a duration back from now (`30s`, `30m`, `2h`, `7d`) or
/// milliseconds since the Unix epoch. The error names the accepted forms.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 30m, 2h, 7d or epoch milliseconds"))?;
    let scale = match unit {
        "" => return Ok(n),
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use s, m, h or d)")),
    };
    Ok(now.saturating_sub(n.saturating_mul(scale)))
}

/// One row of any audit table, flattened. Front ends convert it to their wire type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub kind: EntryKind,
    pub task_id: String,
    /// The task's agent (absent when the task row is gone or was never written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// One human-readable line.
    pub summary: String,
    /// The row's columns (snake_case, as in the schema). Full prompt and reply texts are left
    /// out; read them with `AuditLog::task`.
    pub details: Value,
}

/// A row of the `tasks` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    pub id: String,
    pub agent: String,
    pub state: TaskState,
    pub priority: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub uri: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub error: Option<String>,
    pub prompt_hash: Option<String>,
    /// Present only when prompts are stored.
    pub prompt: Option<String>,
    /// Present only when prompts are stored.
    pub reply: Option<String>,
    pub reply_hash: Option<String>,
    pub summary: Option<String>,
}

fn state_at(row: &Row<'_>, idx: &str) -> rusqlite::Result<TaskState> {
    let text: String = row.get(idx)?;
    text.parse().map_err(|msg: String| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(msg),
        )
    })
}

fn task_row(row: &Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: row.get("id")?,
        agent: row.get("agent")?,
        state: state_at(row, "state")?,
        priority: row.get("priority")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        uri: row.get("uri")?,
        provider: row.get("provider")?,
        model: row.get("model")?,
        error: row.get("error")?,
        prompt_hash: row.get("prompt_hash")?,
        prompt: row.get("prompt")?,
        reply: row.get("reply")?,
        reply_hash: row.get("reply_hash")?,
        summary: row.get("summary")?,
    })
}

const TASK_COLUMNS: &str = "id, agent, state, priority, created_at, updated_at, uri, provider, \
                            model, error, prompt_hash, prompt, reply, reply_hash, summary";

pub(crate) fn task(conn: &Connection, task_id: &str) -> rusqlite::Result<Option<TaskRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?;
    let mut rows = stmt.query_map([task_id], task_row)?;
    rows.next().transpose()
}

pub(crate) fn latest_findings(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<(String, String, Value)>> {
    let limit = i64::try_from(limit.min(MAX_QUERY_LIMIT)).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(
        "SELECT f.task_id, f.uri, f.items FROM findings f \
         WHERE f.seq = (SELECT MAX(g.seq) FROM findings g WHERE g.uri = f.uri) \
         ORDER BY f.seq DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (task, uri, items) = row?;
        if let Ok(items) = serde_json::from_str(&items) {
            out.push((task, uri, items));
        }
    }
    Ok(out)
}

pub(crate) fn tasks(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<TaskRow>> {
    let limit = i64::try_from(limit.min(MAX_QUERY_LIMIT)).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare(&format!(
        "SELECT {TASK_COLUMNS} FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ?1"
    ))?;
    stmt.query_map([limit], task_row)?.collect()
}

/// An entry plus what orders it: time, then kind, then insertion order within the table.
struct Sortable {
    seq: i64,
    entry: AuditEntry,
}

pub(crate) fn run(conn: &Connection, query: &AuditQuery) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = query
        .limit
        .unwrap_or(DEFAULT_QUERY_LIMIT)
        .min(MAX_QUERY_LIMIT);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let kinds: Vec<EntryKind> = match query.kind {
        Some(kind) => vec![kind],
        None => EntryKind::ALL.to_vec(),
    };
    let mut all = Vec::new();
    for kind in kinds {
        let (sql, map): (&str, fn(&Row<'_>) -> rusqlite::Result<Sortable>) = match kind {
            EntryKind::Task => (TASK_SQL, task_entry),
            EntryKind::Transition => (TRANSITION_SQL, transition_entry),
            EntryKind::Attempt => (ATTEMPT_SQL, attempt_entry),
            EntryKind::Approval => (APPROVAL_SQL, approval_entry),
            EntryKind::Edit => (EDIT_SQL, edit_entry),
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(
            params![query.since, query.task_id, query.agent, sql_limit],
            map,
        )?;
        for row in rows {
            all.push(row?);
        }
    }
    all.sort_by_key(|s| (s.entry.at, s.entry.kind, s.seq));
    let skip = all.len().saturating_sub(limit);
    Ok(all.into_iter().skip(skip).map(|s| s.entry).collect())
}

// Each query takes ?1 since, ?2 task id, ?3 agent, ?4 limit, and returns the newest rows.

const TASK_SQL: &str = "SELECT rowid AS seq, id, agent, state, priority, created_at, updated_at, \
     uri, provider, model, error, prompt_hash, reply_hash, summary, \
     (SELECT o.front_end FROM owners o WHERE o.id = tasks.owner) AS front_end FROM tasks \
     WHERE (?1 IS NULL OR created_at >= ?1) AND (?2 IS NULL OR id = ?2) \
     AND (?3 IS NULL OR agent = ?3) \
     ORDER BY created_at DESC, rowid DESC LIMIT ?4";

const TRANSITION_SQL: &str = "SELECT e.seq, e.task_id, e.at, e.from_state, e.to_state, e.detail, \
     t.agent FROM task_events e LEFT JOIN tasks t ON t.id = e.task_id \
     WHERE (?1 IS NULL OR e.at >= ?1) AND (?2 IS NULL OR e.task_id = ?2) \
     AND (?3 IS NULL OR t.agent = ?3) \
     ORDER BY e.at DESC, e.seq DESC LIMIT ?4";

const ATTEMPT_SQL: &str = "SELECT a.seq, a.task_id, a.attempt, a.provider, a.model, a.started_at, \
     a.latency_ms, a.ttft_ms, a.prompt_tokens, a.completion_tokens, a.outcome, a.error_class, \
     a.error_message, a.retry_delay_ms, t.agent \
     FROM attempts a LEFT JOIN tasks t ON t.id = a.task_id \
     WHERE (?1 IS NULL OR a.started_at >= ?1) AND (?2 IS NULL OR a.task_id = ?2) \
     AND (?3 IS NULL OR t.agent = ?3) \
     ORDER BY a.started_at DESC, a.seq DESC LIMIT ?4";

const APPROVAL_SQL: &str = "SELECT p.seq, p.task_id, p.at, p.decision, p.by_whom, p.reason, \
     t.agent FROM approvals p LEFT JOIN tasks t ON t.id = p.task_id \
     WHERE (?1 IS NULL OR p.at >= ?1) AND (?2 IS NULL OR p.task_id = ?2) \
     AND (?3 IS NULL OR t.agent = ?3) \
     ORDER BY p.at DESC, p.seq DESC LIMIT ?4";

const EDIT_SQL: &str = "SELECT d.seq, d.task_id, d.at, d.files, d.lines_changed, d.content_hash, \
     d.summary, d.applied, d.outcome_detail, t.agent \
     FROM edits d LEFT JOIN tasks t ON t.id = d.task_id \
     WHERE (?1 IS NULL OR d.at >= ?1) AND (?2 IS NULL OR d.task_id = ?2) \
     AND (?3 IS NULL OR t.agent = ?3) \
     ORDER BY d.at DESC, d.seq DESC LIMIT ?4";

fn with_suffix(head: String, tail: Option<&str>) -> String {
    match tail {
        Some(tail) if !tail.is_empty() => format!("{head}: {tail}"),
        _ => head,
    }
}

fn task_entry(row: &Row<'_>) -> rusqlite::Result<Sortable> {
    let id: String = row.get("id")?;
    let agent: String = row.get("agent")?;
    let state: String = row.get("state")?;
    let created_at: i64 = row.get("created_at")?;
    let summary: Option<String> = row.get("summary")?;
    let details = json!({
        "id": id,
        "agent": agent,
        "state": state,
        "priority": row.get::<_, i64>("priority")?,
        "created_at": created_at,
        "updated_at": row.get::<_, i64>("updated_at")?,
        "uri": row.get::<_, Option<String>>("uri")?,
        "provider": row.get::<_, Option<String>>("provider")?,
        "model": row.get::<_, Option<String>>("model")?,
        "error": row.get::<_, Option<String>>("error")?,
        "prompt_hash": row.get::<_, Option<String>>("prompt_hash")?,
        "reply_hash": row.get::<_, Option<String>>("reply_hash")?,
        "summary": summary,
        "front_end": row.get::<_, Option<String>>("front_end")?,
    });
    Ok(Sortable {
        seq: row.get("seq")?,
        entry: AuditEntry {
            at: created_at,
            kind: EntryKind::Task,
            summary: with_suffix(
                format!("{agent} task created (now {state})"),
                summary.as_deref(),
            ),
            task_id: id,
            agent: Some(agent),
            details,
        },
    })
}

fn transition_entry(row: &Row<'_>) -> rusqlite::Result<Sortable> {
    let from: Option<String> = row.get("from_state")?;
    let to: String = row.get("to_state")?;
    let detail: Option<String> = row.get("detail")?;
    let head = match &from {
        Some(from) => format!("{from} → {to}"),
        None => format!("→ {to}"),
    };
    let seq: i64 = row.get("seq")?;
    let at: i64 = row.get("at")?;
    Ok(Sortable {
        seq,
        entry: AuditEntry {
            at,
            kind: EntryKind::Transition,
            task_id: row.get("task_id")?,
            agent: row.get("agent")?,
            summary: with_suffix(head, detail.as_deref()),
            details: json!({ "seq": seq, "at": at, "from_state": from, "to_state": to, "detail": detail }),
        },
    })
}

fn attempt_entry(row: &Row<'_>) -> rusqlite::Result<Sortable> {
    let seq: i64 = row.get("seq")?;
    let attempt: i64 = row.get("attempt")?;
    let provider: String = row.get("provider")?;
    let model: String = row.get("model")?;
    let started_at: i64 = row.get("started_at")?;
    let latency_ms: Option<i64> = row.get("latency_ms")?;
    let outcome: String = row.get("outcome")?;
    let error_class: Option<String> = row.get("error_class")?;
    let error_message: Option<String> = row.get("error_message")?;
    let mut head = format!("attempt {attempt} on {provider}/{model}: {outcome}");
    if let Some(ms) = latency_ms {
        head.push_str(&format!(" in {ms} ms"));
    }
    let error_class_json = error_class
        .as_deref()
        .map(|s| serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_owned())));
    Ok(Sortable {
        seq,
        entry: AuditEntry {
            at: started_at,
            kind: EntryKind::Attempt,
            task_id: row.get("task_id")?,
            agent: row.get("agent")?,
            summary: with_suffix(head, error_message.as_deref()),
            details: json!({
                "seq": seq,
                "attempt": attempt,
                "provider": provider,
                "model": model,
                "started_at": started_at,
                "latency_ms": latency_ms,
                "ttft_ms": row.get::<_, Option<i64>>("ttft_ms")?,
                "prompt_tokens": row.get::<_, Option<i64>>("prompt_tokens")?,
                "completion_tokens": row.get::<_, Option<i64>>("completion_tokens")?,
                "outcome": outcome,
                "error_class": error_class_json,
                "error_message": error_message,
                "retry_delay_ms": row.get::<_, Option<i64>>("retry_delay_ms")?,
            }),
        },
    })
}

fn approval_entry(row: &Row<'_>) -> rusqlite::Result<Sortable> {
    let seq: i64 = row.get("seq")?;
    let at: i64 = row.get("at")?;
    let decision: String = row.get("decision")?;
    let by_whom: String = row.get("by_whom")?;
    let reason: Option<String> = row.get("reason")?;
    Ok(Sortable {
        seq,
        entry: AuditEntry {
            at,
            kind: EntryKind::Approval,
            task_id: row.get("task_id")?,
            agent: row.get("agent")?,
            summary: with_suffix(format!("{decision} by {by_whom}"), reason.as_deref()),
            details: json!({
                "seq": seq, "at": at, "decision": decision, "by_whom": by_whom, "reason": reason,
            }),
        },
    })
}

fn edit_entry(row: &Row<'_>) -> rusqlite::Result<Sortable> {
    let seq: i64 = row.get("seq")?;
    let at: i64 = row.get("at")?;
    let files_text: String = row.get("files")?;
    let files: Value = serde_json::from_str(&files_text).unwrap_or(Value::String(files_text));
    let file_count = files.as_array().map_or(1, Vec::len);
    let lines_changed: i64 = row.get("lines_changed")?;
    let summary: String = row.get("summary")?;
    let applied: bool = row.get("applied")?;
    let outcome_detail: Option<String> = row.get("outcome_detail")?;
    let head = format!(
        "edit {}: {file_count} file(s), {lines_changed} line(s)",
        if applied { "applied" } else { "not applied" },
    );
    let mut text = with_suffix(head, Some(summary.as_str()));
    if let Some(detail) = outcome_detail.as_deref().filter(|d| !d.is_empty()) {
        text.push_str(&format!(" ({detail})"));
    }
    Ok(Sortable {
        seq,
        entry: AuditEntry {
            at,
            kind: EntryKind::Edit,
            task_id: row.get("task_id")?,
            agent: row.get("agent")?,
            summary: text,
            details: json!({
                "seq": seq,
                "at": at,
                "files": files,
                "lines_changed": lines_changed,
                "content_hash": row.get::<_, String>("content_hash")?,
                "summary": summary,
                "applied": applied,
                "outcome_detail": outcome_detail,
            }),
        },
    })
}
