//! The audit writer thread: drains the channel, commits each batch of writes in one transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

use parking_lot::RwLock;
use rusqlite::{Connection, Transaction, params};

use super::{
    ApprovalRecord, AttemptRecord, AuditError, EditRecord, TaskRecord, TaskState, sha256_hex,
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
    Attempt(Box<AttemptRecord>),
    Approval(Box<ApprovalRecord>),
    Edit(Box<EditRecord>),
}

pub(crate) struct Writer {
    conn: Connection,
    store_prompts: bool,
    redactor: Arc<RwLock<Option<Redactor>>>,
    failed: u64,
    last_error: Option<String>,
}

impl Writer {
    pub(crate) fn new(
        conn: Connection,
        store_prompts: bool,
        redactor: Arc<RwLock<Option<Redactor>>>,
    ) -> Writer {
        Writer {
            conn,
            store_prompts,
            redactor,
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
        let outcome = catch_unwind(AssertUnwindSafe(|| write_batch(conn, ops.drain(..), &ctx)));
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
) -> (u64, Option<String>) {
    let total = ops.len() as u64;
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(error) => return (total, Some(format!("cannot begin a transaction: {error}"))),
    };
    let mut failed = 0_u64;
    let mut last_error = None;
    for op in ops {
        if let Err(error) = apply(&tx, op, ctx) {
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

fn apply(tx: &Transaction<'_>, op: Op, ctx: &WriteCtx) -> rusqlite::Result<()> {
    match op {
        Op::TaskCreated(task) => {
            let prompt = ctx.text(&task.prompt);
            let prompt_hash = sha256_hex(&prompt);
            let stored_prompt = ctx.store_prompts.then_some(prompt);
            tx.prepare_cached(
                "INSERT INTO tasks (id, agent, state, priority, created_at, updated_at, uri, \
                 provider, model, error, prompt_hash, prompt, reply, reply_hash, summary) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, NULL, ?9, ?10, NULL, NULL, ?11)",
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
            let error = (to == TaskState::Failed)
                .then(|| detail.clone().unwrap_or_else(|| "failed".to_owned()));
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
        Op::Attempt(a) => {
            let error_class = match &a.error_class {
                Some(class) => Some(
                    serde_json::to_string(class)
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                ),
                None => None,
            };
            tx.prepare_cached(
                "INSERT INTO attempts (task_id, attempt, provider, model, started_at, latency_ms, \
                 ttft_ms, prompt_tokens, completion_tokens, outcome, error_class, error_message, \
                 retry_delay_ms) \
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
                ctx.opt_text(a.error_message.as_deref()),
                a.retry_delay_ms.map(to_i64),
            ])?;
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
    }
    Ok(())
}

/// Marks unfinished tasks failed with error "interrupted". Returns how many.
pub(crate) fn recover_interrupted(
    conn: &mut Connection,
    now: i64,
    redact: Option<Redactor>,
) -> Result<usize, AuditError> {
    let ctx = WriteCtx {
        store_prompts: false,
        redact,
    };
    let detail = ctx.text("interrupted");
    let tx = conn.transaction()?;
    let stuck: Vec<(String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT id, state FROM tasks \
             WHERE state IN ('queued', 'running', 'awaiting_approval') ORDER BY created_at",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
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
    }
    tx.commit()?;
    Ok(stuck.len())
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
        "DELETE FROM tasks WHERE updated_at < ?1 \
         AND state IN ('succeeded', 'failed', 'cancelled')",
    ] {
        deleted += tx.execute(sql, [cutoff])?;
    }
    tx.commit()?;
    Ok(deleted)
}
