//! The session's host for an ACP client: task events to the waiting prompt turn, edits as
//! diffs written through the client (`fs/write_text_file`) or to disk, approvals as
//! `session/request_permission`.

use std::path::PathBuf;
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use agent_client_protocol::Client;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    Diff, PermissionOption, PermissionOptionKind, RequestPermissionOutcome,
    RequestPermissionRequest, SessionId, ToolCallContent, ToolCallStatus, ToolCallUpdate,
    ToolCallUpdateFields, ToolKind, WriteTextFileRequest,
};

use crate::agents::{AgentDiagnostic, EditProposal, TaskEvent, TaskHost, TaskInfo};
use crate::engine::uri_to_path;
use crate::providers::BoxFuture;
use crate::session::{Session, edited_text, write_edit};

/// One ACP session's host (prompt turns follow the session's task events themselves).
pub struct AcpHost {
    pub connection: ConnectionTo<Client>,
    pub session_id: SessionId,
    /// The client writes files (`fs.writeTextFile`): edits go through it, so its buffers follow.
    pub client_writes: bool,
    /// Set once the session started (the host is built before it).
    pub session: OnceLock<Weak<Session>>,
}

/// An edit as the file's text before and after.
struct FileEdit {
    path: PathBuf,
    old: String,
    new: String,
}

fn file_edits(edits: &[EditProposal]) -> Result<Vec<FileEdit>, String> {
    edits
        .iter()
        .map(|e| {
            let path = uri_to_path(&e.uri).ok_or_else(|| format!("{} is not a file", e.uri))?;
            let old = std::fs::read_to_string(&path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            let new = edited_text(&old, e).map_err(|err| format!("{}: {err}", path.display()))?;
            Ok(FileEdit { path, old, new })
        })
        .collect()
}

/// The tool call that shows a task's edit.
pub fn edit_call_id(task: &TaskInfo) -> String {
    format!("edit-{}", task.id)
}

fn diff_update(task: &TaskInfo, edits: &[EditProposal], status: ToolCallStatus) -> ToolCallUpdate {
    let content = match file_edits(edits) {
        Ok(files) => files
            .into_iter()
            .map(|f| ToolCallContent::from(Diff::new(f.path, f.new).old_text(f.old)))
            .collect(),
        Err(e) => vec![ToolCallContent::from(e)],
    };
    ToolCallUpdate::new(
        edit_call_id(task),
        ToolCallUpdateFields::new()
            .kind(ToolKind::Edit)
            .status(status)
            .title(format!(
                "{}: edit ({} lines)",
                task.label(),
                edits.iter().map(|e| e.lines_changed).sum::<usize>()
            ))
            .content(content),
    )
}

impl AcpHost {
    /// Asks the client to allow or reject the edit; `None` when the turn was cancelled or the
    /// client did not answer.
    fn permission(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        let mut update = diff_update(task, edits, ToolCallStatus::Pending);
        if !reasons.is_empty() {
            update.fields.title = Some(format!(
                "{} — {}",
                update.fields.title.unwrap_or_default(),
                reasons.join("; ")
            ));
        }
        let request = RequestPermissionRequest::new(
            self.session_id.clone(),
            update,
            vec![
                PermissionOption::new("apply", "Apply", PermissionOptionKind::AllowOnce),
                PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
            ],
        );
        let sent = self.connection.send_request(request);
        Box::pin(async move {
            match sent.block_task().await {
                Ok(response) => match response.outcome {
                    RequestPermissionOutcome::Selected(chosen) => {
                        Some(chosen.option_id.to_string() == "apply")
                    }
                    _ => None,
                },
                Err(e) => {
                    tracing::warn!("acp: the permission request failed: {e}");
                    None
                }
            }
        })
    }
}

impl TaskHost for AcpHost {
    fn on_event(&self, _: TaskEvent) {}

    fn apply_edit(
        &self,
        task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let connection = self.connection.clone();
        let session_id = self.session_id.clone();
        let client_writes = self.client_writes;
        let shown = diff_update(task, &edits, ToolCallStatus::Completed);
        Box::pin(async move {
            if client_writes {
                for file in file_edits(&edits)? {
                    connection
                        .send_request(WriteTextFileRequest::new(
                            session_id.clone(),
                            file.path,
                            file.new,
                        ))
                        .block_task()
                        .await
                        .map_err(|e| format!("the client did not write the file: {e}"))?;
                }
            } else {
                for edit in &edits {
                    write_edit(edit)?;
                }
            }
            let _ = connection.send_notification(crate::acp::update(&session_id, shown));
            Ok(true)
        })
    }

    fn ask_approval(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        self.permission(task, edits, reasons)
    }

    fn alert(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
        timeout: Duration,
    ) {
        // Applied after `timeout` unless rejected: the user can reject it meanwhile.
        let question = self.permission(task, edits, reasons);
        let session = self.session.get().cloned();
        let id = task.id.clone();
        tokio::spawn(async move {
            if let Ok(Some(accept)) = tokio::time::timeout(timeout, question).await
                && let Some(session) = session.and_then(|s| s.upgrade())
            {
                let _ = session.approve(&id, accept);
            }
        });
    }

    fn publish_diagnostics(&self, _: &TaskInfo, _: &str, _: &[AgentDiagnostic]) {}
}
