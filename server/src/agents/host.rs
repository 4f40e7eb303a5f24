//! The `TaskHost` trait: what a front end does for the orchestrator.

use std::time::Duration;

use super::{AgentDiagnostic, EditProposal, TaskEvent, TaskInfo};
use crate::providers::BoxFuture;

/// What the front end does for the orchestrator (LSP: notifications, applyEdit,
/// showMessageRequest, publishDiagnostics; CLI: stdout and files).
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
}
