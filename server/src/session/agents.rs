//! Session requests: running agents and their triggers, context, symbols, indexing, the audit.

use std::future::Future;
use std::sync::Arc;

use super::{Session, SessionError};
use crate::agents::{
    AgentDef, AgentDiagnostic, PromptRequest, TaskId, TaskSpec, Turn, prepare_task,
};
use crate::audit::{AuditEntry, AuditQuery};
use crate::config::Trigger;
use crate::context::{
    ContextRequest, ContextSnapshot, DEFAULT_BUDGET_TOKENS, DiagnosticInput, estimate_tokens,
};
use crate::documents::{DocSnapshot, PendingSnapshot, Position, Range};
use crate::engine::{DocumentSymbolInfo, WorkspaceSymbolInfo};

/// Builds a task spec for an agent on a document URI (for background triggers).
type PrepareForUri = Arc<dyn Fn(&AgentDef, &str) -> Option<TaskSpec> + Send + Sync>;

/// A context request on an open document, in client coordinates.
#[derive(Debug, Clone, Default)]
pub struct ContextArgs {
    pub position: Position,
    pub range: Option<Range>,
    /// Token budget; [`DEFAULT_BUDGET_TOKENS`] when not given.
    pub budget_tokens: Option<usize>,
    /// Diagnostics the client shows there.
    pub diagnostics: Vec<DiagnosticInput>,
}

/// Resolves a snapshot, parsing off the async runtime when a parse is needed.
async fn resolve(pending: PendingSnapshot) -> Result<DocSnapshot, SessionError> {
    if pending.is_ready() {
        return Ok(pending.resolve());
    }
    tokio::task::spawn_blocking(move || pending.resolve())
        .await
        .map_err(|e| SessionError::Internal(format!("parse task failed: {e}")))
}

impl Session {
    /// Prepares a task for `agent` (the default agent when `None`) on an open document and
    /// queues it; returns its id at once.
    pub async fn run_agent(
        &self,
        agent: Option<&str>,
        uri: &str,
        req: PromptRequest,
    ) -> Result<TaskId, SessionError> {
        let name = agent.map_or_else(|| self.default_agent(), str::to_owned);
        let agent = self.orch.agent(&name)?;
        let history = match &req.parent_task_id {
            Some(parent) => self.conversation(parent, agent.context_budget_tokens)?,
            None => Vec::new(),
        };
        let parent_task_id = req.parent_task_id.clone();
        let pending = self.engine.pending_snapshot(uri)?;
        let spec = if pending.is_ready() {
            // Parsed already: capturing the target and the context takes a fraction of a
            // millisecond, less than a hop to the blocking pool and back.
            let snap = pending.resolve();
            prepare_task(&self.engine, &agent, &snap, &req)?
        } else {
            let snap = resolve(pending).await?;
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || prepare_task(&engine, &agent, &snap, &req))
                .await
                .map_err(|e| SessionError::Internal(format!("prepare failed: {e}")))??
        };
        let spec = TaskSpec {
            parent_task_id,
            history,
            ..spec
        };
        Ok(self.orch.submit(spec)?)
    }

    /// The messages `agent` (the default agent when `None`) would send for a place in an open
    /// document, without running it: its template rendered with the code and context there.
    pub async fn agent_messages(
        &self,
        agent: Option<&str>,
        uri: &str,
        req: PromptRequest,
    ) -> Result<Vec<crate::providers::ChatMessage>, SessionError> {
        let name = agent.map_or_else(|| self.default_agent(), str::to_owned);
        let agent = self.orch.agent(&name)?;
        let snap = resolve(self.engine.pending_snapshot(uri)?).await?;
        let engine = self.engine.clone();
        let spec = tokio::task::spawn_blocking({
            let agent = agent.clone();
            move || prepare_task(&engine, &agent, &snap, &req)
        })
        .await
        .map_err(|e| SessionError::Internal(format!("prepare failed: {e}")))??;
        Ok(crate::agents::build_request(&agent, &spec).messages)
    }

    /// The turns of the conversation `parent` ends (oldest first): each task's question and
    /// answer, following `parent_task_id` back. They share a quarter of the agent's context
    /// budget, newest first: an older turn that does not fit is left out, an answer that does
    /// not fit whole is cut at a line with a marker.
    fn conversation(&self, parent: &str, budget_tokens: usize) -> Result<Vec<Turn>, SessionError> {
        const MAX_TURNS: usize = 8;
        let Some(first) = self.orch.task(parent) else {
            return Err(SessionError::Invalid(format!(
                "parentTaskId {parent:?} is not a task of this session"
            )));
        };
        let mut left = budget_tokens / 4;
        let mut turns = Vec::new();
        let mut next = Some(first);
        while let Some(task) = next.take() {
            if turns.len() == MAX_TURNS {
                break;
            }
            let question = if task.prompt.trim().is_empty() {
                format!("({} on the code shown)", task.info.agent)
            } else {
                task.prompt.clone()
            };
            let cost = estimate_tokens(&question) + 2;
            if cost >= left {
                break;
            }
            left -= cost;
            let answer = fit_text(&task.text, left);
            left = left.saturating_sub(estimate_tokens(&answer));
            let cut = answer.len() < task.text.len();
            turns.push(Turn { question, answer });
            if cut {
                break;
            }
            next = task
                .info
                .parent_task_id
                .as_deref()
                .and_then(|id| self.orch.task(id));
        }
        turns.reverse();
        Ok(turns)
    }

    /// The client's diagnostics for a document changed: diagnostics-triggered agents run on
    /// it (if the walk would index it).
    pub fn diagnostics_changed(&self, uri: &str, diagnostics: Vec<DiagnosticInput>) {
        if diagnostics.is_empty() || !self.engine.is_workspace_file(uri) {
            return;
        }
        let prepare = self.prepare_for_uri();
        let target = uri.to_string();
        self.orch.fire_trigger(
            Trigger::OnDiagnostics,
            uri,
            Arc::new(move |agent: &AgentDef| {
                let mut spec = prepare(agent, &target)?;
                spec.diagnostics = diagnostics.clone();
                Some(spec)
            }),
        );
    }

    pub(super) fn prepare_for_uri(&self) -> PrepareForUri {
        let engine = self.engine.clone();
        Arc::new(move |agent: &AgentDef, uri: &str| {
            let snap = engine.snapshot(uri)?;
            prepare_task(&engine, agent, &snap, &PromptRequest::default()).ok()
        })
    }

    /// The context snapshot at a position (and optional selection) of an open document. The
    /// document's state is taken when the future is first polled.
    pub async fn context(
        &self,
        uri: &str,
        args: ContextArgs,
    ) -> Result<ContextSnapshot, SessionError> {
        let pending = self.engine.pending_snapshot(uri)?;
        let snap = resolve(pending).await?;
        let req = ContextRequest {
            position: args.position,
            range: args.range,
            budget_tokens: args.budget_tokens.unwrap_or(DEFAULT_BUDGET_TOKENS),
            diagnostics: args.diagnostics,
            encoding: self.engine.encoding(),
            exclude: None,
            enclosing_percent: self.orch.config().defaults.context_enclosing_percent,
        };
        let engine = self.engine.clone();
        Ok(
            tokio::task::spawn_blocking(move || engine.context(&snap, &req))
                .await
                .map_err(|e| SessionError::Internal(format!("context task failed: {e}")))??,
        )
    }

    /// Hierarchical symbols of an open document, in client coordinates.
    pub async fn document_symbols(
        &self,
        uri: &str,
    ) -> Result<Vec<DocumentSymbolInfo>, SessionError> {
        let pending = self.engine.pending_snapshot(uri)?;
        let snap = resolve(pending).await?;
        Ok(self.engine.document_symbols(&snap))
    }

    /// Fuzzy workspace symbol search, best first.
    pub async fn workspace_symbols(
        &self,
        query: String,
        limit: usize,
    ) -> Result<Vec<WorkspaceSymbolInfo>, SessionError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.workspace_symbols(&query, limit))
            .await
            .map_err(|e| SessionError::Internal(format!("search failed: {e}")))
    }

    /// Walks the workspace into the index off the async runtime (started at once); `progress`
    /// gets the number of files indexed so far. Resolves to the files and symbols indexed.
    pub fn index_workspace<F: Fn(usize) + Send + Sync + 'static>(
        &self,
        progress: F,
    ) -> impl Future<Output = Result<(usize, usize), SessionError>> + use<F> {
        let engine = self.engine.clone();
        let job = tokio::task::spawn_blocking({
            let engine = engine.clone();
            move || {
                engine.index_workspace(&|p| progress(p.files_indexed));
            }
        });
        async move {
            job.await
                .map_err(|e| SessionError::Internal(e.to_string()))?;
            Ok(engine.index_counts())
        }
    }

    /// Publishes again each workspace file's most recent findings of a diagnostics-mode agent
    /// (from the audit log: a restarted server shows what the last review found).
    pub async fn republish_findings(&self) {
        let Some(audit) = self.audit.clone() else {
            return;
        };
        let rows = tokio::task::spawn_blocking(move || audit.latest_findings(500))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        for (task_id, uri, items) in rows {
            let Ok(findings) = serde_json::from_value::<Vec<AgentDiagnostic>>(items) else {
                continue;
            };
            if !self.engine.is_workspace_file(&uri) {
                continue;
            }
            if let Some(detail) = self.task(&task_id) {
                self.host.publish_diagnostics(&detail.info, &uri, &findings);
            }
        }
    }

    /// Entries of the audit log (what is queued is written first).
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>, SessionError> {
        let audit = self.audit.clone().ok_or_else(|| {
            SessionError::Invalid(
                "the audit log is not open (no workspace root, or it failed to open: see the server log)"
                    .into(),
            )
        })?;
        tokio::task::spawn_blocking(move || {
            let _ = audit.flush();
            audit.query(&query)
        })
        .await
        .map_err(|e| SessionError::Invalid(e.to_string()))?
        .map_err(|e| SessionError::Invalid(e.to_string()))
    }
}

/// The longest run of whole lines from the start of `text` within `tokens`, with a marker
/// when something was left out.
fn fit_text(text: &str, tokens: usize) -> String {
    if estimate_tokens(text) <= tokens {
        return text.to_string();
    }
    const MARKER: &str = "[… the rest of this answer is left out]";
    let room = tokens.saturating_sub(estimate_tokens(MARKER) + 1);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if estimate_tokens(&out) + estimate_tokens(line) > room {
            break;
        }
        out.push_str(line);
    }
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    out.push_str(MARKER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_over_its_share_is_cut_at_a_line_with_a_marker() {
        let text: String = (0..200)
            .map(|i| format!("line {i} of the answer\n"))
            .collect();
        let short = fit_text(&text, 60);
        assert!(short.starts_with("line 0 of the answer\n"));
        assert!(short.ends_with("[… the rest of this answer is left out]"));
        assert!(estimate_tokens(&short) <= 60, "{}", estimate_tokens(&short));
        assert!(short.lines().rev().skip(1).all(|l| l.starts_with("line ")));
        assert_eq!(fit_text("fits\n", 60), "fits\n");
    }
}
