//! Handlers of the custom protocol (`infinityMatrix/*` requests and notifications).

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::WorkDoneProgressCancelParams;

use super::super::ext::{self, ContextParams, ContextResult};
use super::super::from_proto::{self, diagnostic_input};
use super::super::host::task_of_token;
use super::super::server::{Backend, invalid_params, session_error};
use super::super::to_proto;
use crate::audit::AuditQuery;
use crate::session::ContextArgs;

impl Backend {
    /// `infinityMatrix/context`.
    pub async fn context(&self, params: ContextParams) -> Result<ContextResult> {
        let uri = params.text_document.uri.as_str().to_string();
        let args = ContextArgs {
            position: from_proto::position(params.position),
            range: params.range.map(from_proto::range),
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
        Ok(to_proto::context_result(snapshot))
    }

    /// `infinityMatrix/agents`.
    pub async fn agents_request(&self) -> Result<ext::AgentsResult> {
        let session = self.session()?;
        Ok(ext::AgentsResult {
            agents: session
                .agents()
                .into_iter()
                .map(to_proto::agent_def)
                .collect(),
            default_agent: session.default_agent(),
        })
    }

    /// `infinityMatrix/tasks`.
    pub async fn tasks_request(&self) -> Result<ext::TasksResult> {
        let tasks = self.session()?.tasks();
        Ok(ext::TasksResult {
            tasks: tasks.into_iter().map(to_proto::task_info).collect(),
        })
    }

    /// `infinityMatrix/task`.
    pub async fn task_request(&self, params: ext::TaskParams) -> Result<ext::TaskDetail> {
        let detail = self
            .session()?
            .task(&params.task_id)
            .ok_or_else(|| invalid_params(format!("unknown task {:?}", params.task_id)))?;
        Ok(to_proto::task_detail(detail))
    }

    /// `infinityMatrix/audit`.
    pub async fn audit_request(&self, params: ext::AuditParams) -> Result<ext::AuditResult> {
        let query = AuditQuery {
            since: params.since,
            task_id: params.task_id,
            agent: params.agent,
            kind: params.kind.as_deref().and_then(|k| k.parse().ok()),
            limit: params.limit,
        };
        let entries = self.session()?.audit(query).await.map_err(session_error)?;
        Ok(ext::AuditResult {
            entries: entries.into_iter().map(to_proto::audit_entry).collect(),
        })
    }

    /// `infinityMatrix/metrics`.
    pub async fn metrics_request(&self) -> Result<ext::MetricsResult> {
        Ok(self.session()?.metrics_snapshot())
    }

    /// `infinityMatrix/setSecret`: a key from the client's secret storage (never logged).
    pub async fn set_secret(&self, params: ext::SetSecretParams) -> Result<()> {
        self.session()?
            .set_secret(&params.name, &params.value)
            .map_err(session_error)
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
        Ok(to_proto::test_provider_result(&report, health))
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
