//! The audit log: an append-only SQLite (WAL) record of tasks, provider attempts, approvals and edits.
//!
//! One database per workspace root lives under `$XDG_DATA_HOME/infinity-matrix/audit/` (see
//! [`database_path_for_root`]), never inside the user's repository. Every write is sent over a
//! channel to one dedicated writer thread, which commits whatever is queued in one transaction;
//! a write call never waits for the disk. [`AuditLog::flush`] waits until everything queued so
//! far is committed. Reads (`query`, `task`, `tasks`) and maintenance (`recover_interrupted`,
//! `apply_retention`) run on the same thread after the writes queued before them, so a reader
//! always sees its own writes.
//!
//! Callers redact secrets before they log; [`AuditLog::set_redactor`] is a second line of defence
//! applied to every free-text field on the writer thread. Prompts and replies are stored only
//! when `store_prompts` is on; their SHA-256 is always stored.

mod owner;
mod query;
mod schema;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::providers::{ErrorClass, Usage};

pub use query::{AuditEntry, AuditQuery, DEFAULT_QUERY_LIMIT, EntryKind, TaskRow, parse_since};
pub use schema::{
    SCHEMA_VERSION, audit_dir, database_file_in, database_path_for_root, default_database_path,
};

pub use writer::INTERRUPTED_ATTEMPT;
use writer::{Msg, Op, Owner, Redactor};

/// Milliseconds since the Unix epoch (the unit of every audit timestamp).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Lower-case hex SHA-256 of `text` (used for `prompt_hash`, `reply_hash`, `content_hash`).
pub fn sha256_hex(text: &str) -> String {
    schema::hex(&Sha256::digest(text.as_bytes()))
}

/// Errors from opening, reading or writing the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot create the audit directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the audit database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot migrate the audit database schema: {source}")]
    Schema {
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the audit database has schema version {found}, newer than this build supports \
         ({supported}); upgrade infinity-matrix or move the database aside"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("cannot start the audit writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("audit database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{count} audit write(s) failed since the last flush; last error: {last}")]
    WriteFailed { count: u64, last: String },
    #[error("the audit log is closed (its writer thread has stopped)")]
    Closed,
}

/// The lifecycle state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Running,
    AwaitingApproval,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 6] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::AwaitingApproval,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::AwaitingApproval => "awaiting_approval",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Succeeded, failed or cancelled: the task will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown task state {s:?}"))
    }
}

/// What was decided about applying a task's edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Accepted,
    Rejected,
    /// Applied without asking (policy allowed it).
    Auto,
    /// Nobody rejected within the alert timeout, so it was applied.
    TimeoutApplied,
    /// Policy refused to apply it.
    Refused,
}

impl ApprovalDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalDecision::Accepted => "accepted",
            ApprovalDecision::Rejected => "rejected",
            ApprovalDecision::Auto => "auto",
            ApprovalDecision::TimeoutApplied => "timeout_applied",
            ApprovalDecision::Refused => "refused",
        }
    }
}

impl fmt::Display for ApprovalDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made an approval decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalActor {
    User,
    Policy,
    Timeout,
}

impl ApprovalActor {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalActor::User => "user",
            ApprovalActor::Policy => "policy",
            ApprovalActor::Timeout => "timeout",
        }
    }
}

impl fmt::Display for ApprovalActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new task (`AuditLog::task_created`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub id: String,
    pub agent: String,
    /// Usually `Queued`.
    pub state: TaskState,
    pub priority: i32,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The document the task is about, if any.
    pub uri: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// The full prompt: stored only when `store_prompts` is on; its hash always.
    pub prompt: String,
    /// One line describing the task (replaced by the reply's summary on `set_task_result`).
    pub summary: String,
}

/// One call to a provider (`AuditLog::attempt`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub task_id: String,
    /// 1 for the first attempt of the task, counting across providers.
    pub attempt: u32,
    pub provider: String,
    pub model: String,
    pub started_at: i64,
    pub latency_ms: Option<u64>,
    pub ttft_ms: Option<u64>,
    pub usage: Usage,
    /// `None` when the call succeeded.
    pub error_class: Option<ErrorClass>,
    /// Already redacted by the provider layer.
    pub error_message: Option<String>,
    /// The backoff before the next attempt, when one follows.
    pub retry_delay_ms: Option<u64>,
    /// No request was sent: the provider was skipped (its circuit is open, or it asked callers
    /// to stay away with Retry-After); `error_class` and `error_message` say why.
    pub skipped: bool,
}

impl AttemptRecord {
    /// `"ok"`, `"skipped"` or the error class name (the `outcome` column; a call in flight is
    /// `"running"`, and one its process died during is `"interrupted"`).
    pub fn outcome(&self) -> &'static str {
        if self.skipped {
            return "skipped";
        }
        self.error_class.as_ref().map_or("ok", ErrorClass::name)
    }
}

/// An approval decision (`AuditLog::approval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRecord {
    pub task_id: String,
    pub at: i64,
    pub decision: ApprovalDecision,
    pub by_whom: ApprovalActor,
    pub reason: Option<String>,
}

/// An edit a task produced, applied or not (`AuditLog::edit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditRecord {
    pub task_id: String,
    pub at: i64,
    /// URIs of the files touched.
    pub files: Vec<String>,
    pub lines_changed: u32,
    /// `sha256_hex` of the edit's new text.
    pub content_hash: String,
    pub summary: String,
    pub applied: bool,
    /// Why it was not applied, or what happened when it was.
    pub outcome_detail: Option<String>,
}

/// The append-only audit log. Send + Sync; share it in an `Arc`. Dropping it flushes.
pub struct AuditLog {
    sender: RwLock<Option<mpsc::Sender<Msg>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    store_prompts: bool,
    redactor: Arc<RwLock<Option<Redactor>>>,
    front_end: Arc<RwLock<Option<&'static str>>>,
    path: Option<PathBuf>,
    /// This log's owner id: recorded on every task it creates.
    owner_id: String,
    /// Where the owner locks live (`None` in memory).
    owners_dir: Option<PathBuf>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("store_prompts", &self.store_prompts)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating it and its parent directories if needed) the database at `path`, applies
    /// pending migrations and starts the writer thread.
    pub fn open(path: &Path, store_prompts: bool) -> Result<AuditLog, AuditError> {
        let conn = schema::open_file(path)?;
        Self::start(conn, store_prompts, Some(path.to_path_buf()))
    }

    /// A private in-memory log (for tests); prompts are stored.
    pub fn open_in_memory() -> Result<AuditLog, AuditError> {
        Self::open_in_memory_with(true)
    }

    /// A private in-memory log with the given `store_prompts` setting.
    pub fn open_in_memory_with(store_prompts: bool) -> Result<AuditLog, AuditError> {
        let conn = schema::open_memory()?;
        Self::start(conn, store_prompts, None)
    }

    fn start(
        conn: Connection,
        store_prompts: bool,
        path: Option<PathBuf>,
    ) -> Result<AuditLog, AuditError> {
        let (sender, receiver) = mpsc::channel();
        let redactor: Arc<RwLock<Option<Redactor>>> = Arc::new(RwLock::new(None));
        let front_end: Arc<RwLock<Option<&'static str>>> = Arc::new(RwLock::new(None));
        let opened_at = now_ms();
        let owner_id = owner::new_owner_id(opened_at);
        let owners_dir = path.as_deref().map(owner::owners_dir);
        let worker = writer::Writer::new(
            conn,
            store_prompts,
            Arc::clone(&redactor),
            Owner::new(
                owner_id.clone(),
                owners_dir.clone(),
                opened_at,
                Arc::clone(&front_end),
            ),
        );
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || worker.run(receiver))
            .map_err(AuditError::Spawn)?;
        Ok(AuditLog {
            sender: RwLock::new(Some(sender)),
            worker: Mutex::new(Some(handle)),
            store_prompts,
            redactor,
            front_end,
            path,
            owner_id,
            owners_dir,
        })
    }

    /// This log's owner id (`<pid>-<opened ms>-<random>`), recorded on the tasks it creates.
    pub fn owner_id(&self) -> &str {
        &self.owner_id
    }

    /// The database file (`None` for an in-memory log).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether full prompts and replies are kept.
    pub fn stores_prompts(&self) -> bool {
        self.store_prompts
    }

    /// Installs a function applied to every free-text field (prompt, reply, summaries, details,
    /// error messages, reasons) before it is written. Applies to everything written from now on,
    /// including writes already queued.
    pub fn set_redactor(&self, redactor: fn(&str) -> String) {
        *self.redactor.write() = Some(redactor);
    }

    /// Names the front end this process serves (`lsp`, `cli`, `mcp`, `acp`): recorded with
    /// this log's owner row before its first task, and shown on every task entry.
    pub fn set_front_end(&self, name: &'static str) {
        *self.front_end.write() = Some(name);
    }

    /// Records a new task.
    pub fn task_created(&self, task: &TaskRecord) {
        self.send_op(Op::TaskCreated(Box::new(task.clone())));
    }

    /// Records a state transition (a `task_events` row) and updates the task's state and
    /// `updated_at`; a transition to `Failed` also sets the task's error to `detail`.
    pub fn task_transition(
        &self,
        task_id: &str,
        from: TaskState,
        to: TaskState,
        detail: Option<&str>,
    ) {
        self.send_op(Op::Transition {
            task_id: task_id.to_owned(),
            at: now_ms(),
            from,
            to,
            detail: detail.map(str::to_owned),
        });
    }

    /// Records which provider/model answered and the reply: its hash and a one-line summary
    /// (at most 120 characters) always, the text itself only when `store_prompts` is on.
    pub fn set_task_result(&self, task_id: &str, provider: &str, model: &str, reply_text: &str) {
        self.send_op(Op::TaskResult {
            task_id: task_id.to_owned(),
            at: now_ms(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            reply: reply_text.to_owned(),
        });
    }

    /// Records that a provider call starts: a row with outcome `running`, completed by
    /// [`AuditLog::attempt`] with the same task id and attempt number (or closed as
    /// `interrupted` by recovery if the process dies first). Only `task_id`, `attempt`,
    /// `provider`, `model` and `started_at` are read.
    pub fn attempt_started(&self, attempt: &AttemptRecord) {
        self.send_op(Op::AttemptStarted(Box::new(attempt.clone())));
    }

    /// Records one provider call (completing its `running` row, if any) or a skipped provider.
    pub fn attempt(&self, attempt: &AttemptRecord) {
        self.send_op(Op::Attempt(Box::new(attempt.clone())));
    }

    /// Records an approval decision.
    pub fn approval(&self, approval: &ApprovalRecord) {
        self.send_op(Op::Approval(Box::new(approval.clone())));
    }

    /// Records an edit.
    pub fn edit(&self, edit: &EditRecord) {
        self.send_op(Op::Edit(Box::new(edit.clone())));
    }

    /// Records the findings a diagnostics-mode task published for `uri` (`items`: their JSON;
    /// an empty list too, which clears the file's earlier ones).
    pub fn findings(&self, task_id: &str, uri: &str, items: &serde_json::Value) {
        self.send_op(Op::Findings {
            task_id: task_id.to_owned(),
            uri: uri.to_owned(),
            at: now_ms(),
            items: items.to_string(),
        });
    }

    /// Each file's most recent findings (at most `limit` files, the most recent first):
    /// `(task id, uri, items)`. Items a redaction left unreadable are skipped.
    pub fn latest_findings(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, String, serde_json::Value)>, AuditError> {
        self.call(move |conn| Ok(query::latest_findings(conn, limit)?))
    }

    fn send_op(&self, op: Op) {
        let sent = match self.sender.read().as_ref() {
            Some(sender) => sender.send(Msg::Write(op)).is_ok(),
            None => false,
        };
        if !sent {
            tracing::warn!("audit log is closed; an audit event was dropped");
        }
    }

    /// Blocks until everything queued before this call is committed. Reports write failures
    /// since the previous flush (the failed events are lost; the others are committed).
    pub fn flush(&self) -> Result<(), AuditError> {
        let (reply, done) = mpsc::sync_channel(1);
        self.send_control(Msg::Flush(reply))?;
        done.recv().map_err(|_| AuditError::Closed)?
    }

    /// Runs `f` on the writer thread after everything queued before it, and returns its result.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let (reply, done) = mpsc::sync_channel(1);
        self.send_control(Msg::Call(Box::new(move |conn: &mut Connection| {
            // The receiver only disappears if the caller is gone; nothing to report then.
            let _ = reply.send(f(conn));
        })))?;
        done.recv().map_err(|_| AuditError::Closed)?
    }

    fn send_control(&self, msg: Msg) -> Result<(), AuditError> {
        match self.sender.read().as_ref() {
            Some(sender) => sender.send(msg).map_err(|_| AuditError::Closed),
            None => Err(AuditError::Closed),
        }
    }

    /// At startup: marks every task left queued, running or awaiting approval by a process
    /// that died as failed with error "interrupted" (a `task_events` row each), and closes its
    /// in-flight attempts as `interrupted`. Tasks of live processes — another server on the same
    /// workspace, or this log's own — are left alone: each process holds a lock while its log is
    /// open, and the kernel drops it when the process dies. Tasks written before owners were
    /// recorded (schema version 1) count as orphaned. Returns how many tasks were marked.
    pub fn recover_interrupted(&self) -> Result<usize, AuditError> {
        let redactor = *self.redactor.read();
        let me = self.owner_id.clone();
        let dir = self.owners_dir.clone();
        self.call(move |conn| {
            writer::recover_interrupted(conn, now_ms(), redactor, &me, dir.as_deref())
        })
    }

    /// Deletes entries older than `days` days: events, attempts, approvals and edits by their
    /// time, and finished tasks by their last update (unfinished tasks are kept). `0` disables
    /// retention (nothing is deleted). Returns the number of rows deleted.
    pub fn apply_retention(&self, days: u32) -> Result<usize, AuditError> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now_ms().saturating_sub(i64::from(days).saturating_mul(86_400_000));
        self.call(move |conn| writer::delete_before(conn, cutoff))
    }

    /// Entries matching `query`, in time order (newest last): the newest `limit` of them.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, AuditError> {
        let query = query.clone();
        self.call(move |conn| Ok(query::run(conn, &query)?))
    }

    /// One task's row.
    pub fn task(&self, task_id: &str) -> Result<Option<TaskRow>, AuditError> {
        let task_id = task_id.to_owned();
        self.call(move |conn| Ok(query::task(conn, &task_id)?))
    }

    /// The `limit` most recently created tasks, newest first.
    pub fn tasks(&self, limit: usize) -> Result<Vec<TaskRow>, AuditError> {
        self.call(move |conn| Ok(query::tasks(conn, limit)?))
    }

    /// Flushes, then stops the writer thread. Later writes are dropped (with a warning) and
    /// later reads fail with [`AuditError::Closed`]. Dropping the log does the same.
    pub fn close(&self) -> Result<(), AuditError> {
        let flushed = self.flush();
        // Dropping the sender lets the writer drain the queue and exit.
        drop(self.sender.write().take());
        if let Some(handle) = self.worker.lock().take()
            && handle.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
        match flushed {
            Err(AuditError::Closed) => Ok(()),
            other => other,
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::warn!(%error, "audit log: problem while closing");
        }
    }
}
