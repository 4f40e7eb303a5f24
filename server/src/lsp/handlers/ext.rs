//! Handlers of the custom protocol (`infinityMatrix/*` requests and notifications).

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::WorkDoneProgressCancelParams;

use super::super::convert;
use super::super::ext::{self, ContextParams, ContextResult};
use super::super::host::task_of_token;
use super::super::server::{Backend, invalid_params, session_error};
use super::agents::diagnostic_input;
use crate::audit::AuditQuery;
use crate::session::ContextArgs;

impl Backend {
    /// `infinityMatrix/context`.
    pub async fn context(&self, params: ContextParams) -> Result<ContextResult> {
        let uri = params.text_document.uri.as_str().to_string();
        let args = ContextArgs {
            position: convert::position(params.position),
            range: params.range.map(convert::range),
            budget_tokens: params.budget_tokens.map(|b| b as usize),
            diagnostics: params
                .diagnostics
                .unwrap_or_default()
                .iter()
                .map(diagnostic_input)
                .collect(),
        };
        let snapshot = self
            .session()?
            .context(&uri, args)
            .await
            .map_err(session_error)?;
        Ok(ContextResult {
            items: snapshot
                .items
                .into_iter()
                .map(|i| ext::ContextItem {
                    kind: serde_json::to_value(i.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    uri: i.uri,
                    range: convert::to_lsp_range(i.range),
                    text: i.text,
                    tokens: i.tokens as u32,
                    reason: i.reason,
                    elided: i.elided.iter().map(|&(a, b)| [a, b]).collect(),
                })
                .collect(),
            total_tokens: snapshot.total_tokens as u32,
            budget_tokens: snapshot.budget_tokens as u32,
            rendered: snapshot.rendered,
            index_complete: snapshot.index_complete,
        })
    }

    /// `infinityMatrix/agents`.
    pub async fn agents_request(&self) -> Result<Value> {
        let session = self.session()?;
        Ok(
            serde_json::json!({ "agents": session.agents(), "defaultAgent": session.default_agent() }),
        )
    }

    /// `infinityMatrix/tasks`.
    pub async fn tasks_request(&self) -> Result<Value> {
        Ok(serde_json::json!({ "tasks": self.session()?.tasks() }))
    }

    /// `infinityMatrix/task`.
    pub async fn task_request(&self, params: ext::TaskParams) -> Result<Value> {
        let detail = self
            .session()?
            .task(&params.task_id)
            .ok_or_else(|| invalid_params(format!("unknown task {:?}", params.task_id)))?;
        serde_json::to_value(detail).map_err(|e| invalid_params(e.to_string()))
    }

    /// `infinityMatrix/audit`.
    pub async fn audit_request(&self, params: ext::AuditParams) -> Result<Value> {
        let query = AuditQuery {
            since: params.since,
            task_id: params.task_id,
            agent: params.agent,
            kind: params.kind.as_deref().and_then(|k| k.parse().ok()),
            limit: params.limit,
        };
        let entries = self.session()?.audit(query).await.map_err(session_error)?;
        Ok(serde_json::json!({ "entries": entries }))
    }

    /// `infinityMatrix/metrics`.
    pub async fn metrics_request(&self) -> Result<Value> {
        serde_json::to_value(self.session()?.metrics_snapshot())
            .map_err(|e| invalid_params(e.to_string()))
    }

    /// `infinityMatrix/setSecret`: a key from the client's secret storage (never logged).
    pub async fn set_secret(&self, params: ext::SetSecretParams) -> Result<Value> {
        self.session()?
            .set_secret(&params.name, &params.value)
            .map_err(session_error)?;
        Ok(Value::Null)
    }

    /// `infinityMatrix/testProvider`: `doctor`'s checks on one provider, its health updated.
    pub async fn test_provider(
        &self,
        params: ext::TestProviderParams,
    ) -> Result<ext::TestProviderResult> {
        let session = self.session()?;
        let report = session
            .test_provider(&params.name)
            .await
            .map_err(session_error)?;
        let health = session
            .status()
            .providers
            .into_iter()
            .find(|p| p.name == params.name)
            .map_or_else(|| "unknown".to_string(), |p| p.health);
        Ok(ext::test_provider_result(&report, health))
    }

    /// `infinityMatrix/diagnosticsChanged` (notification): drives onDiagnostics agents.
    pub async fn diagnostics_changed(&self, params: ext::DiagnosticsChangedParams) {
        let Ok(session) = self.session() else { return };
        let diagnostics = params.diagnostics.iter().map(diagnostic_input).collect();
        session.diagnostics_changed(params.text_document.uri.as_str(), diagnostics);
    }

    /// `window/workDoneProgress/cancel` (notification): cancelling a task's progress cancels the task.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if let (Some(id), Ok(session)) = (task_of_token(&params.token), self.session()) {
            let _ = session.cancel(&id);
        }
    }
}
