//! The `TaskHost` trait: what a front end does for the orchestrator.

use std::time::Duration;

use super::{AgentDiagnostic, EditProposal, TaskEvent, TaskInfo};
use crate::providers::BoxFuture;

/// A message for the user from the session (configuration problems, reloads). The session has
/// logged it to stderr already; a front end shows it in its own way, or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A problem the user should see and find in the log later (LSP: logMessage + showMessage).
    Warning(String),
    /// A problem the user should see now (LSP: showMessage, as an error).
    Error(String),
    /// For the log only (LSP: logMessage), e.g. "configuration reloaded".
    Info(String),
}

/// What the front end does for the orchestrator and the session (LSP: notifications,
/// applyEdit, showMessageRequest, publishDiagnostics; CLI: stdout and files).
pub trait TaskHost: Send + Sync + 'static {
    /// A state change or a streamed chunk. Must not block.
    fn on_event(&self, event: TaskEvent);
    /// Applies edits; `Ok(true)` when the client applied them.
    fn apply_edit(
        &self,
        task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>>;
    /// Asks the user; `Some(accept)` or `None` when the question was dismissed or unsupported.
    fn ask_approval(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>>;
    /// Announces an edit that will be applied after `timeout` unless rejected.
    fn alert(&self, task: &TaskInfo, edits: &[EditProposal], reasons: &[String], timeout: Duration);
    /// Publishes findings of a diagnostics-mode agent for `uri` (replacing earlier ones).
    fn publish_diagnostics(&self, task: &TaskInfo, uri: &str, diagnostics: &[AgentDiagnostic]);
    /// Shows a session notice; the session waits for it, so notices keep their order.
    /// By default nothing more is done (the session logged it).
    fn notify(&self, notice: Notice) -> BoxFuture<'static, ()> {
        let _ = notice;
        Box::pin(async {})
    }
    /// The agents' status changed (configuration applied): a front end that shows it refreshes.
    fn status_changed(&self) {}
}
