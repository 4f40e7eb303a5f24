//! Session requests: running agents and their triggers, context, symbols, indexing, the audit.

use std::future::Future;
use std::sync::Arc;

use super::{Session, SessionError};
use crate::agents::{AgentDef, PromptRequest, TaskId, TaskSpec, prepare_task};
use crate::audit::{AuditEntry, AuditQuery};
use crate::config::Trigger;
use crate::context::{ContextRequest, ContextSnapshot, DEFAULT_BUDGET_TOKENS, DiagnosticInput};
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
        Ok(self.orch.submit(spec)?)
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
