//! The audit writer thread: drains the channel, commits each batch of writes in one transaction.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use parking_lot::RwLock;
use rusqlite::{Connection, Transaction, params};

use super::owner::{Liveness, OwnerLock, liveness, lock_files};
use super::{
    ApprovalRecord, AttemptRecord, AuditError, EditRecord, TaskRecord, TaskState, now_ms,
    sha256_hex,
};

/// The optional last-line-of-defence secret scrubber.
pub(crate) type Redactor = fn(&str) -> String;

/// The most messages taken off the channel for one transaction.
const MAX_BATCH: usize = 4096;

/// The longest one-line summary kept for a task, in characters.
pub(crate) const SUMMARY_MAX_CHARS: usize = 120;

/// A message to the writer thread.
pub(crate) enum Msg {
    Write(Op),
    /// Reply once everything before it is committed, with the failures since the last flush.
    Flush(SyncSender<Result<(), AuditError>>),
    /// Run on the connection after everything before it is committed.
    Call(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// One write.
pub(crate) enum Op {
    TaskCreated(Box<TaskRecord>),
    Transition {
        task_id: String,
        at: i64,
        from: TaskState,
        to: TaskState,
        detail: Option<String>,
    },
    TaskResult {
        task_id: String,
        at: i64,
        provider: String,
        model: String,
        reply: String,
    },
    /// A call starts: its row is written at once with outcome `running`.
    AttemptStarted(Box<AttemptRecord>),
    /// A call ended (or was skipped): completes the `running` row of the same task and attempt
    /// number, or adds a row.
    Attempt(Box<AttemptRecord>),
    Approval(Box<ApprovalRecord>),
    Edit(Box<EditRecord>),
    Findings {
        task_id: String,
        uri: String,
        at: i64,
        items: String,
    },
}

/// This log's identity as the owner of the tasks it creates (see `owner.rs`).
pub(crate) struct Owner {
    id: String,
    /// Where owner locks live (`None`: an in-memory database, or the lock could not be made).
    dir: Option<PathBuf>,
    opened_at: i64,
    /// Taken (and the `owners` row written) before the first task is written.
    lock: Option<OwnerLock>,
    registered: bool,
    /// The front end this process serves (`AuditLog::set_front_end`).
    front_end: Arc<RwLock<Option<&'static str>>>,
}

impl Owner {
    pub(crate) fn new(
        id: String,
        dir: Option<PathBuf>,
        opened_at: i64,
        front_end: Arc<RwLock<Option<&'static str>>>,
    ) -> Owner {
        Owner {
            id,
            dir,
            opened_at,
            lock: None,
            registered: false,
            front_end,
        }
    }

    /// Takes the owner lock and writes the `owners` row, once, inside `tx`.
    fn register(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.registered {
            return Ok(());
        }
        if self.lock.is_none()
            && let Some(dir) = self.dir.clone()
        {
            match OwnerLock::acquire(&dir, &self.id) {
                Ok(lock) => self.lock = Some(lock),
                Err(error) => {
                    tracing::warn!(
                        "audit: cannot create the owner lock in {}: {error}; a server started \
                         later may mark this process's running tasks as interrupted",
                        dir.display()
                    );
                    // Not retried for every task.
                    self.dir = None;
                }
            }
        }
        tx.prepare_cached(
            "INSERT OR IGNORE INTO owners (id, pid, started_at, front_end) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            self.id,
            std::process::id(),
            self.opened_at,
            *self.front_end.read()
        ])?;
        self.registered = true;
        Ok(())
    }
}

pub(crate) struct Writer {
    conn: Connection,
    store_prompts: bool,
    redactor: Arc<RwLock<Option<Redactor>>>,
    owner: Owner,
    failed: u64,
    last_error: Option<String>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        store_prompts: bool,
        redactor: Arc<RwLock<Option<Redactor>>>,
        owner: Owner,
    ) -> Writer {
        Writer {
            conn,
            store_prompts,
            redactor,
            owner,
            failed: 0,
            last_error: None,
        }
    }

    /// Runs until every sender is dropped and the queue is drained.
    pub(crate) fn run(mut self, receiver: Receiver<Msg>) {
        while let Ok(first) = receiver.recv() {
            let mut batch = Vec::with_capacity(64);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
        if self.failed > 0 {
            tracing::error!(
                count = self.failed,
                last = self.last_error.as_deref().unwrap_or(""),
                "audit writes failed and were never reported by a flush"
            );
        }
        if self.owner.registered
            && let Err(error) = self.conn.execute(
                "UPDATE owners SET ended_at = ?2, end_reason = 'closed' \
                 WHERE id = ?1 AND ended_at IS NULL",
                params![self.owner.id, now_ms()],
            )
        {
            tracing::warn!(%error, "audit: cannot record the end of this process");
        }
        // Only now, with everything written, may another process treat our tasks as orphaned.
        drop(self.owner.lock.take());
        if let Err(error) = self.conn.execute_batch("PRAGMA optimize;") {
            tracing::debug!(%error, "audit: PRAGMA optimize failed");
        }
    }

    fn process(&mut self, batch: Vec<Msg>) {
        let mut writes = Vec::with_capacity(batch.len());
        for msg in batch {
            match msg {
                Msg::Write(op) => writes.push(op),
                Msg::Flush(reply) => {
                    self.commit(&mut writes);
                    let result = match self.last_error.take() {
                        Some(last) => Err(AuditError::WriteFailed {
                            count: std::mem::take(&mut self.failed),
                            last,
                        }),
                        None => Ok(()),
                    };
                    // A caller that stopped waiting is not an error.
                    let _ = reply.send(result);
                }
                Msg::Call(f) => {
                    self.commit(&mut writes);
                    let conn = &mut self.conn;
                    if catch_unwind(AssertUnwindSafe(|| f(conn))).is_err() {
                        tracing::error!("audit: a read or maintenance call panicked");
                        rollback_if_open(conn);
                    }
                }
            }
        }
        self.commit(&mut writes);
    }

    fn commit(&mut self, ops: &mut Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let count = ops.len();
        let redact = *self.redactor.read();
        let ctx = WriteCtx {
            store_prompts: self.store_prompts,
            redact,
        };
        let conn = &mut self.conn;
        let owner = &mut self.owner;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            write_batch(conn, ops.drain(..), &ctx, owner)
        }));
        let (failed, error) = match outcome {
            Ok(result) => result,
            Err(_) => {
                rollback_if_open(&self.conn);
                (
                    count as u64,
                    Some("the audit writer panicked while writing a batch".to_owned()),
                )
            }
        };
        ops.clear();
        if let Some(error) = error {
            tracing::error!(failed, %error, "audit write failed");
            self.failed = self.failed.saturating_add(failed);
            self.last_error = Some(error);
        }
    }
}

fn rollback_if_open(conn: &Connection) {
    if !conn.is_autocommit()
        && let Err(error) = conn.execute_batch("ROLLBACK;")
    {
        tracing::error!(%error, "audit: rollback failed");
    }
}

struct WriteCtx {
    store_prompts: bool,
    redact: Option<Redactor>,
}

impl WriteCtx {
    fn text(&self, s: &str) -> String {
        match self.redact {
            Some(redact) => redact(s),
            None => s.to_owned(),
        }
    }

    fn opt_text(&self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.text(s))
    }
}

/// Writes `ops` in one transaction. Returns how many writes were lost and the last error.
fn write_batch(
    conn: &mut Connection,
    ops: impl ExactSizeIterator<Item = Op>,
    ctx: &WriteCtx,
    owner: &mut Owner,
) -> (u64, Option<String>) {
    let total = ops.len() as u64;
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(error) => return (total, Some(format!("cannot begin a transaction: {error}"))),
    };
    let mut failed = 0_u64;
    let mut last_error = None;
    for op in ops {
        if matches!(op, Op::TaskCreated(_))
            && let Err(error) = owner.register(&tx)
        {
            tracing::warn!(%error, "audit: cannot record this process as a task owner");
        }
        if let Err(error) = apply(&tx, op, ctx, &owner.id) {
            failed += 1;
            last_error = Some(error.to_string());
            if tx.is_autocommit() {
                // SQLite rolled the whole transaction back (disk full, I/O error): all lost.
                return (total, last_error);
            }
        }
    }
    match tx.commit() {
        Ok(()) => (failed, last_error),
        Err(error) => (total, Some(format!("commit failed: {error}"))),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The first non-blank line of `text`, trimmed, cut to [`SUMMARY_MAX_CHARS`] characters.
pub(crate) fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() <= SUMMARY_MAX_CHARS {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(SUMMARY_MAX_CHARS - 1).collect();
    out.push('…');
    out
}

fn error_class_json(a: &AttemptRecord) -> rusqlite::Result<Option<String>> {
    match &a.error_class {
        Some(class) => serde_json::to_string(class)
            .map(Some)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
        None => Ok(None),
    }
}

fn apply(tx: &Transaction<'_>, op: Op, ctx: &WriteCtx, owner: &str) -> rusqlite::Result<()> {
    match op {
        Op::TaskCreated(task) => {
            let prompt = ctx.text(&task.prompt);
            let prompt_hash = sha256_hex(&prompt);
            let stored_prompt = ctx.store_prompts.then_some(prompt);
            tx.prepare_cached(
                "INSERT INTO tasks (id, agent, state, priority, created_at, updated_at, uri, \
                 provider, model, error, prompt_hash, prompt, reply, reply_hash, summary, owner) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, NULL, ?9, ?10, NULL, NULL, ?11, ?12)",
            )?
            .execute(params![
                task.id,
                task.agent,
                task.state.as_str(),
                task.priority,
                task.created_at,
                task.uri,
                task.provider,
                task.model,
                prompt_hash,
                stored_prompt,
                one_line(&ctx.text(&task.summary)),
                owner,
            ])?;
        }
        Op::Transition {
            task_id,
            at,
            from,
            to,
            detail,
        } => {
            let detail = ctx.opt_text(detail.as_deref());
            // Why it failed, or why it was cancelled ("edit rejected", "cancelled by the user"):
            // the task list of a later server shows it.
            let error = match to {
                TaskState::Failed => Some(detail.clone().unwrap_or_else(|| "failed".to_owned())),
                TaskState::Cancelled => detail.clone(),
                _ => None,
            };
            tx.prepare_cached(
                "UPDATE tasks SET state = ?2, updated_at = ?3, error = COALESCE(?4, error) \
                 WHERE id = ?1",
            )?
            .execute(params![task_id, to.as_str(), at, error])?;
            tx.prepare_cached(
                "INSERT INTO task_events (task_id, at, from_state, to_state, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![task_id, at, from.as_str(), to.as_str(), detail])?;
        }
        Op::TaskResult {
            task_id,
            at,
            provider,
            model,
            reply,
        } => {
            let reply = ctx.text(&reply);
            let reply_hash = sha256_hex(&reply);
            let summary = match one_line(&reply) {
                s if s.is_empty() => "(empty reply)".to_owned(),
                s => s,
            };
            let stored_reply = ctx.store_prompts.then_some(reply);
            tx.prepare_cached(
                "UPDATE tasks SET provider = ?2, model = ?3, reply = ?4, reply_hash = ?5, \
                 summary = ?6, updated_at = ?7 WHERE id = ?1",
            )?
            .execute(params![
                task_id,
                provider,
                model,
                stored_reply,
                reply_hash,
                summary,
                at
            ])?;
        }
        Op::AttemptStarted(a) => {
            tx.prepare_cached(
                "INSERT INTO attempts (task_id, attempt, provider, model, started_at, outcome) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
            )?
            .execute(params![
                a.task_id,
                a.attempt,
                a.provider,
                a.model,
                a.started_at
            ])?;
        }
        Op::Attempt(a) => {
            let error_class = error_class_json(&a)?;
            let error_message = ctx.opt_text(a.error_message.as_deref());
            let updated = tx
                .prepare_cached(
                    "UPDATE attempts SET provider = ?3, model = ?4, latency_ms = ?5, ttft_ms = ?6, \
                     prompt_tokens = ?7, completion_tokens = ?8, outcome = ?9, error_class = ?10, \
                     error_message = ?11, retry_delay_ms = ?12 \
                     WHERE task_id = ?1 AND attempt = ?2 AND outcome = 'running'",
                )?
                .execute(params![
                    a.task_id,
                    a.attempt,
                    a.provider,
                    a.model,
                    a.latency_ms.map(to_i64),
                    a.ttft_ms.map(to_i64),
                    a.usage.prompt_tokens,
                    a.usage.completion_tokens,
                    a.outcome(),
                    error_class,
                    error_message,
                    a.retry_delay_ms.map(to_i64),
                ])?;
            if updated == 0 {
                tx.prepare_cached(
                    "INSERT INTO attempts (task_id, attempt, provider, model, started_at, \
                     latency_ms, ttft_ms, prompt_tokens, completion_tokens, outcome, error_class, \
                     error_message, retry_delay_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?
                .execute(params![
                    a.task_id,
                    a.attempt,
                    a.provider,
                    a.model,
                    a.started_at,
                    a.latency_ms.map(to_i64),
                    a.ttft_ms.map(to_i64),
                    a.usage.prompt_tokens,
                    a.usage.completion_tokens,
                    a.outcome(),
                    error_class,
                    error_message,
                    a.retry_delay_ms.map(to_i64),
                ])?;
            }
        }
        Op::Approval(a) => {
            tx.prepare_cached(
                "INSERT INTO approvals (task_id, at, decision, by_whom, reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                a.task_id,
                a.at,
                a.decision.as_str(),
                a.by_whom.as_str(),
                ctx.opt_text(a.reason.as_deref()),
            ])?;
        }
        Op::Edit(e) => {
            let files = serde_json::to_string(&e.files)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.prepare_cached(
                "INSERT INTO edits (task_id, at, files, lines_changed, content_hash, summary, \
                 applied, outcome_detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                e.task_id,
                e.at,
                files,
                e.lines_changed,
                e.content_hash,
                ctx.text(&e.summary),
                e.applied,
                ctx.opt_text(e.outcome_detail.as_deref()),
            ])?;
        }
        Op::Findings {
            task_id,
            uri,
            at,
            items,
        } => {
            tx.prepare_cached(
                "INSERT INTO findings (task_id, uri, at, items) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![task_id, uri, at, ctx.text(&items)])?;
        }
    }
    Ok(())
}

/// The `error_message` of an attempt that was in flight when its process died.
pub const INTERRUPTED_ATTEMPT: &str =
    "interrupted: the server stopped while this call was in flight";

/// Marks the unfinished tasks of owners that died (and of no owner: rows written before
/// owners were recorded) failed with error "interrupted", closes their in-flight attempts as
/// `interrupted`, and records the owners' end. Tasks of this log (`me`) and of live processes
/// are left alone. Returns how many tasks were marked.
pub(crate) fn recover_interrupted(
    conn: &mut Connection,
    now: i64,
    redact: Option<Redactor>,
    me: &str,
    owners_dir: Option<&Path>,
) -> Result<usize, AuditError> {
    let ctx = WriteCtx {
        store_prompts: false,
        redact,
    };
    let detail = ctx.text("interrupted");
    let attempt_detail = ctx.text(INTERRUPTED_ATTEMPT);
    // Every owner that might need recovering or tidying, checked once each (a check of a dead
    // owner removes its lock file), before the write transaction.
    let mut candidates: Vec<Option<String>> = {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT owner FROM tasks \
             WHERE state IN ('queued', 'running', 'awaiting_approval')",
        )?;
        let rows = stmt.query_map([], |row| row.get::<_, Option<String>>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    {
        let mut stmt = conn.prepare("SELECT id FROM owners WHERE ended_at IS NULL")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        for id in rows {
            candidates.push(Some(id?));
        }
    }
    candidates.extend(lock_files(owners_dir).into_iter().map(Some));
    let mut verdicts: BTreeMap<Option<String>, Liveness> = BTreeMap::new();
    for owner in candidates {
        if verdicts.contains_key(&owner) || owner.as_deref() == Some(me) {
            continue;
        }
        let verdict = match &owner {
            None => Liveness::Dead,
            Some(id) => liveness(owners_dir, id),
        };
        if verdict == Liveness::Unknown {
            tracing::warn!(
                owner = owner.as_deref().unwrap_or(""),
                "audit: cannot tell whether the process owning some tasks is alive; \
                 leaving its tasks as they are"
            );
        }
        verdicts.insert(owner, verdict);
    }
    let tx = conn.transaction()?;
    let mut recovered = 0;
    for (owner, verdict) in &verdicts {
        if *verdict != Liveness::Dead {
            continue;
        }
        let stuck: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT id, state FROM tasks WHERE owner IS ?1 \
                 AND state IN ('queued', 'running', 'awaiting_approval') ORDER BY created_at",
            )?;
            let rows = stmt.query_map([owner], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, state) in &stuck {
            tx.execute(
                "UPDATE tasks SET state = 'failed', error = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, detail, now],
            )?;
            tx.execute(
                "INSERT INTO task_events (task_id, at, from_state, to_state, detail) \
                 VALUES (?1, ?2, ?3, 'failed', ?4)",
                params![id, now, state, detail],
            )?;
            tx.execute(
                "UPDATE attempts SET outcome = 'interrupted', error_message = ?2 \
                 WHERE task_id = ?1 AND outcome = 'running'",
                params![id, attempt_detail],
            )?;
        }
        recovered += stuck.len();
        if let Some(owner) = owner {
            tx.execute(
                "UPDATE owners SET ended_at = ?2, end_reason = 'gone' \
                 WHERE id = ?1 AND ended_at IS NULL",
                params![owner, now],
            )?;
        }
    }
    tx.commit()?;
    Ok(recovered)
}

/// Deletes entries older than `cutoff` (finished tasks by `updated_at`). Returns the row count.
pub(crate) fn delete_before(conn: &mut Connection, cutoff: i64) -> Result<usize, AuditError> {
    let tx = conn.transaction()?;
    let mut deleted = 0;
    for sql in [
        "DELETE FROM task_events WHERE at < ?1",
        "DELETE FROM attempts WHERE started_at < ?1",
        "DELETE FROM approvals WHERE at < ?1",
        "DELETE FROM edits WHERE at < ?1",
        "DELETE FROM findings WHERE at < ?1",
        "DELETE FROM tasks WHERE updated_at < ?1 \
         AND state IN ('succeeded', 'failed', 'cancelled')",
        "DELETE FROM owners WHERE ended_at < ?1",
    ] {
        deleted += tx.execute(sql, [cutoff])?;
    }
    tx.commit()?;
    Ok(deleted)
}
