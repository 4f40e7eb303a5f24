//! Edits and approvals: reply → edit proposal, the policy's decision, the user's answer, applying it.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Orchestrator, OrchestratorError};
use crate::agents::results::{ResultError, lines_changed};
use crate::agents::{AgentDef, EditProposal, TaskSpec, TaskState};
use crate::audit::{ApprovalActor, ApprovalDecision};
use crate::policy::{self, Decision, EditContext};

impl Orchestrator {
    /// Answers a pending approval.
    pub fn approve(&self, id: &str, accept: bool) -> Result<(), OrchestratorError> {
        let mut st = self.inner.state.lock();
        let entry = st
            .tasks
            .get_mut(id)
            .ok_or_else(|| OrchestratorError::UnknownTask(id.to_string()))?;
        match entry.approval_tx.take() {
            Some(tx) => {
                let _ = tx.send(accept);
                Ok(())
            }
            None => Err(OrchestratorError::NotAwaitingApproval(
                id.to_string(),
                entry.info.state.as_str(),
            )),
        }
    }

    pub(super) async fn handle_edit(
        &self,
        id: &str,
        agent: &AgentDef,
        spec: &TaskSpec,
        new_text: Result<String, ResultError>,
        cancel: &CancellationToken,
    ) -> Result<(), (TaskState, String)> {
        let (roots, config) = {
            let st = self.inner.state.lock();
            (st.roots.clone(), st.config.clone())
        };
        let (Some(uri), Some(range)) = (&spec.uri, spec.target_range) else {
            return Err((
                TaskState::Failed,
                "an edit agent needs a document and a range".into(),
            ));
        };
        let new_text = new_text.map_err(|e| {
            (
                TaskState::Failed,
                format!(
                    "the reply could not be used as an edit: {e}; the raw reply is kept in the task"
                ),
            )
        })?;
        let edit = EditProposal {
            uri: uri.clone(),
            range,
            lines_changed: lines_changed(&spec.target_text, &new_text),
            new_text,
            original_text: spec.target_text.clone(),
            version: spec.document_version,
        };
        let edits = vec![edit];
        let selection = spec.target_is_selection.then_some(range);
        let decision = policy::decide(&EditContext {
            approval: agent.approval,
            edits: &edits,
            selection,
            workspace_roots: &roots,
            config: &config.policy,
        });
        let info = {
            let mut st = self.inner.state.lock();
            let e = st
                .tasks
                .get_mut(id)
                .ok_or((TaskState::Failed, "task vanished".to_string()))?;
            e.edits = Some(edits.clone());
            e.info.clone()
        };
        let (apply, by, decision_name, reasons) = match decision {
            Decision::Refuse { reason } => {
                self.record_approval(
                    id,
                    ApprovalDecision::Refused,
                    ApprovalActor::Policy,
                    &reason,
                );
                self.record_edit(id, &edits, false, &format!("refused: {reason}"));
                return Err((TaskState::Failed, format!("edit refused: {reason}")));
            }
            Decision::Apply => (
                true,
                ApprovalActor::Policy,
                ApprovalDecision::Auto,
                Vec::new(),
            ),
            Decision::Alert { reasons } => {
                let rx = self.await_approval(id)?;
                let timeout = Duration::from_secs(config.policy.alert_timeout_secs);
                self.inner.host.alert(&info, &edits, &reasons, timeout);
                tokio::select! {
                    answer = rx => match answer {
                        Ok(true) => (true, ApprovalActor::User, ApprovalDecision::Accepted, reasons),
                        Ok(false) => (false, ApprovalActor::User, ApprovalDecision::Rejected, reasons),
                        Err(_) => return Err((TaskState::Cancelled, "cancelled while awaiting approval".into())),
                    },
                    _ = tokio::time::sleep(timeout) => (true, ApprovalActor::Timeout, ApprovalDecision::TimeoutApplied, reasons),
                    _ = cancel.cancelled() => return Err((TaskState::Cancelled, "cancelled while awaiting approval".into())),
                }
            }
            Decision::Ask { reasons } => {
                let rx = self.await_approval(id)?;
                let question = self.inner.host.ask_approval(&info, &edits, &reasons);
                let this = self.clone();
                let task_id = id.to_string();
                let asking = tokio::spawn(async move {
                    if let Some(accept) = question.await {
                        let _ = this.approve(&task_id, accept);
                    }
                });
                // However the decision comes (this prompt, another client, the approve command,
                // a cancel), the prompt is withdrawn: dropping the question lets the host tell
                // its client (`$/cancelRequest`).
                let answer = tokio::select! {
                    answer = rx => answer.map_err(|_| ()),
                    _ = cancel.cancelled() => Err(()),
                };
                asking.abort();
                match answer {
                    Ok(true) => (
                        true,
                        ApprovalActor::User,
                        ApprovalDecision::Accepted,
                        reasons,
                    ),
                    Ok(false) => (
                        false,
                        ApprovalActor::User,
                        ApprovalDecision::Rejected,
                        reasons,
                    ),
                    Err(()) => {
                        return Err((
                            TaskState::Cancelled,
                            "cancelled while awaiting approval".into(),
                        ));
                    }
                }
            }
        };
        self.record_approval(id, decision_name, by, &reasons.join("; "));
        {
            let mut st = self.inner.state.lock();
            if let Some(e) = st.tasks.get_mut(id) {
                e.approval = Some(decision_name.as_str().to_string());
            }
        }
        if !apply {
            self.record_edit(id, &edits, false, "rejected by the user");
            return Err((TaskState::Cancelled, crate::agents::EDIT_REJECTED.into()));
        }
        if self
            .inner
            .state
            .lock()
            .tasks
            .get(id)
            .is_some_and(|e| e.info.state == TaskState::AwaitingApproval)
        {
            self.transition(id, TaskState::Running, Some("approved".into()));
        }
        match self.inner.host.apply_edit(&info, edits.clone()).await {
            Ok(true) => {
                self.record_edit(id, &edits, true, "applied");
                Ok(())
            }
            Ok(false) => {
                self.record_edit(id, &edits, false, "the client did not apply the edit");
                Err((
                    TaskState::Failed,
                    "the editor did not apply the edit (the document may have changed)".into(),
                ))
            }
            Err(e) => {
                self.record_edit(id, &edits, false, &e);
                Err((TaskState::Failed, format!("applying the edit failed: {e}")))
            }
        }
    }

    pub(super) fn await_approval(
        &self,
        id: &str,
    ) -> Result<oneshot::Receiver<bool>, (TaskState, String)> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.state.lock();
            let e = st
                .tasks
                .get_mut(id)
                .ok_or((TaskState::Failed, "task vanished".to_string()))?;
            e.approval_tx = Some(tx);
        }
        self.transition(id, TaskState::AwaitingApproval, None);
        Ok(rx)
    }
}
