//! The LSP side of the orchestrator (`TaskHost`): task notifications (coalesced), work-done
//! progress, workspace/applyEdit, approvals through window/showMessageRequest, and diagnostics.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tower_lsp_server::{Cancellable, Client, OngoingProgress, Unbounded};

type Ongoing = OngoingProgress<Unbounded, Cancellable>;
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::*;

use super::ext;
use super::to_proto;
use crate::agents::{AgentDiagnostic, EditProposal, TaskEvent, TaskHost, TaskInfo, TaskState};
use crate::providers::BoxFuture;
use crate::session::{Notice, Session};

/// How often streamed text and status are flushed to the client (≤ 10 notifications a second each).
const FLUSH_EVERY: Duration = Duration::from_millis(100);

enum TaskEventNotification {}
impl Notification for TaskEventNotification {
    type Params = ext::TaskEventParams;
    const METHOD: &'static str = ext::TASK_EVENT;
}

enum AgentStatusNotification {}
impl Notification for AgentStatusNotification {
    type Params = ext::AgentStatusParams;
    const METHOD: &'static str = ext::AGENT_STATUS;
}

/// What the client can do, read at initialize.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostCapabilities {
    pub document_changes: bool,
    pub work_done_progress: bool,
    /// The client handles `infinityMatrix/taskEvent` (its experimental capability); others
    /// get finished answers through standard LSP.
    pub task_events: bool,
    /// The client supports `window/showDocument`.
    pub show_document: bool,
    /// The client prompts for approvals itself (`experimental.infinityMatrix.approvalPrompt`):
    /// no `window/showMessageRequest` is sent.
    pub approval_prompt: bool,
}

/// Sends a request to the client; when the caller stops waiting (the future is dropped: the
/// decision came another way, the task ended), the client is told with `$/cancelRequest`, so
/// it can close the prompt.
async fn cancellable_request<R: request::Request>(
    client: &Client,
    params: R::Params,
) -> Result<R::Result, String> {
    use tower_lsp_server::jsonrpc;
    use tower_service::Service;
    let id = client.next_request_id();
    let value = serde_json::to_value(params).map_err(|e| e.to_string())?;
    let req = jsonrpc::Request::build(R::METHOD)
        .id(id.clone())
        .params(value)
        .finish();
    struct CancelOnDrop {
        client: Option<Client>,
        id: jsonrpc::Id,
    }
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            let Some(client) = self.client.take() else {
                return;
            };
            let id = match &self.id {
                jsonrpc::Id::Number(n) => {
                    NumberOrString::Number(i32::try_from(*n).unwrap_or(i32::MAX))
                }
                jsonrpc::Id::String(s) => NumberOrString::String(s.clone()),
                jsonrpc::Id::Null => return,
            };
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    client
                        .send_notification::<notification::Cancel>(CancelParams { id })
                        .await;
                });
            }
        }
    }
    let mut guard = CancelOnDrop {
        client: Some(client.clone()),
        id,
    };
    let response = client.clone().call(req).await;
    guard.client = None;
    let Ok(Some(response)) = response else {
        return Err("the client is gone".into());
    };
    let (_, result) = response.into_parts();
    let value = result.map_err(|e| e.message.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

pub struct LspHost {
    client: Client,
    /// Task events, or `None` when only the agent status changed (configuration reload, start).
    tx: mpsc::UnboundedSender<Option<TaskEvent>>,
    caps: HostCapabilities,
}

/// Token of a task's work-done progress.
pub fn progress_token(task_id: &str) -> NumberOrString {
    NumberOrString::String(format!("infinity-matrix/task/{task_id}"))
}

/// The task id in a progress token, if it is one of ours.
pub fn task_of_token(token: &NumberOrString) -> Option<String> {
    match token {
        NumberOrString::String(s) => s.strip_prefix("infinity-matrix/task/").map(str::to_string),
        NumberOrString::Number(_) => None,
    }
}

impl LspHost {
    /// Creates the host and starts its notification pump; `session` is filled once the
    /// session exists (the pump reads status from it).
    pub fn new(
        client: Client,
        caps: HostCapabilities,
        session: Arc<OnceLock<Weak<Session>>>,
    ) -> Arc<LspHost> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(pump(client.clone(), rx, session, caps));
        Arc::new(LspHost { client, tx, caps })
    }
}

#[derive(Default)]
struct PendingText {
    text: String,
    /// Wire sequence number of the last notification sent for this task.
    wire_seq: u64,
}

async fn pump(
    client: Client,
    mut rx: mpsc::UnboundedReceiver<Option<TaskEvent>>,
    session: Arc<OnceLock<Weak<Session>>>,
    caps: HostCapabilities,
) {
    let mut pending: HashMap<String, PendingText> = HashMap::new();
    let mut progress: HashMap<String, Ongoing> = HashMap::new();
    let mut dirty = false;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return };
                let Some(ev) = ev else {
                    dirty = true;
                    continue;
                };
                match ev {
                    TaskEvent::Chunk { task_id, text, .. } => {
                        pending.entry(task_id).or_default().text.push_str(&text);
                    }
                    TaskEvent::Reset { task_id, reason, .. } => {
                        let p = pending.entry(task_id.clone()).or_default();
                        p.text.clear();
                        p.wire_seq += 1;
                        let seq = p.wire_seq;
                        client.send_notification::<TaskEventNotification>(ext::TaskEventParams::Reset {
                            task_id, seq, reason
                        }).await;
                    }
                    TaskEvent::State { task } => {
                        flush_task(&client, &mut pending, &task.id).await;
                        // The progress first: a client that sees a task's terminal event finds
                        // its progress already ended.
                        if caps.work_done_progress {
                            update_progress(&client, &mut progress, &task).await;
                        }
                        let params = ext::TaskEventParams::State { task: to_proto::task_info(task.clone()) };
                        client.send_notification::<TaskEventNotification>(params).await;
                        if task.state.is_terminal() {
                            pending.remove(&task.id);
                            if !caps.task_events
                                && let Some(s) = session.get().and_then(Weak::upgrade)
                            {
                                super::answers::deliver(&client, &s, &task, caps.show_document).await;
                            }
                        }
                        dirty = true;
                    }
                }
            }
            _ = tick.tick() => {
                let ids: Vec<String> = pending.iter().filter(|(_, p)| !p.text.is_empty()).map(|(k, _)| k.clone()).collect();
                for id in ids {
                    flush_task(&client, &mut pending, &id).await;
                }
                // Kept dirty until the session exists: its first status is not lost.
                if dirty && let Some(s) = session.get().and_then(Weak::upgrade) {
                    dirty = false;
                    let status = to_proto::agent_status(s.status());
                    client.send_notification::<AgentStatusNotification>(status).await;
                }
            }
        }
    }
}

async fn flush_task(client: &Client, pending: &mut HashMap<String, PendingText>, id: &str) {
    let Some(p) = pending.get_mut(id) else { return };
    if p.text.is_empty() {
        return;
    }
    p.wire_seq += 1;
    let text = std::mem::take(&mut p.text);
    client
        .send_notification::<TaskEventNotification>(ext::TaskEventParams::Chunk {
            task_id: id.to_string(),
            seq: p.wire_seq,
            text,
        })
        .await;
}

async fn update_progress(
    client: &Client,
    progress: &mut HashMap<String, Ongoing>,
    task: &TaskInfo,
) {
    let message = match (&task.provider, task.state) {
        (Some(p), TaskState::Running) => format!("running on {p}"),
        (_, s) => s.as_str().replace('_', " "),
    };
    if task.state.is_terminal() {
        if let Some(p) = progress.remove(&task.id) {
            p.finish_with_message(message).await;
        }
        return;
    }
    if task.state == TaskState::Queued {
        return;
    }
    if let Some(p) = progress.get(&task.id) {
        p.report_with_message(message, Some(true)).await;
        return;
    }
    let token = progress_token(&task.id);
    if client
        .create_work_done_progress(token.clone())
        .await
        .is_ok()
    {
        let p = client
            .progress(token, format!("Infinity Matrix: {}", task.agent))
            .with_message(message)
            .with_cancel_button()
            .begin()
            .await;
        progress.insert(task.id.clone(), p);
    }
}

fn workspace_edit(edits: &[EditProposal], document_changes: bool) -> Option<WorkspaceEdit> {
    let mut by_uri: Vec<(Uri, Option<i32>, Vec<TextEdit>)> = Vec::new();
    for e in edits {
        let uri: Uri = e.uri.parse().ok()?;
        let edit = TextEdit {
            range: to_proto::range(e.range),
            new_text: e.new_text.clone(),
        };
        match by_uri.iter_mut().find(|(u, _, _)| *u == uri) {
            Some((_, _, list)) => list.push(edit),
            None => by_uri.push((uri, e.version, vec![edit])),
        }
    }
    if document_changes {
        let changes = by_uri
            .into_iter()
            .map(|(uri, version, edits)| TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier { uri, version },
                edits: edits.into_iter().map(OneOf::Left).collect(),
            })
            .collect();
        Some(WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(changes)),
            ..Default::default()
        })
    } else {
        let changes = by_uri
            .into_iter()
            .map(|(uri, _, edits)| (uri, edits))
            .collect();
        Some(WorkspaceEdit {
            changes: Some(changes),
            ..Default::default()
        })
    }
}

fn describe(task: &TaskInfo, edits: &[EditProposal]) -> String {
    let places: Vec<String> = edits
        .iter()
        .map(|e| {
            let file = e.uri.rsplit('/').next().unwrap_or(&e.uri);
            format!(
                "{file} lines {}-{} ({})",
                e.range.start.line + 1,
                e.range.end.line + 1,
                crate::line_diff::changed_lines_label(e.lines_changed)
            )
        })
        .collect();
    format!(
        "Infinity Matrix: {} proposes an edit to {}",
        task.label(),
        places.join(", ")
    )
}

impl TaskHost for LspHost {
    fn on_event(&self, event: TaskEvent) {
        let _ = self.tx.send(Some(event));
    }

    /// Schedules an `infinityMatrix/agentStatus` notification (coalesced like the others).
    fn status_changed(&self) {
        let _ = self.tx.send(None);
    }

    fn notify(&self, notice: Notice) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        Box::pin(async move {
            match notice {
                Notice::Warning(message) => {
                    client
                        .log_message(MessageType::WARNING, message.clone())
                        .await;
                    client.show_message(MessageType::WARNING, message).await;
                }
                Notice::Error(message) => client.show_message(MessageType::ERROR, message).await,
                Notice::Info(message) => client.log_message(MessageType::INFO, message).await,
            }
        })
    }

    fn apply_edit(
        &self,
        task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let client = self.client.clone();
        let label = format!("Infinity Matrix: {}", task.agent);
        let edit = workspace_edit(&edits, self.caps.document_changes);
        Box::pin(async move {
            let edit = edit.ok_or_else(|| {
                "the edit names a document URI the client cannot take".to_string()
            })?;
            let params = ApplyWorkspaceEditParams {
                label: Some(label),
                edit,
            };
            match client
                .send_request::<request::ApplyWorkspaceEdit>(params)
                .await
            {
                Ok(resp) => {
                    if !resp.applied {
                        tracing::warn!("client did not apply the edit: {:?}", resp.failure_reason);
                    }
                    Ok(resp.applied)
                }
                Err(e) => Err(format!("workspace/applyEdit failed: {e}")),
            }
        })
    }

    fn ask_approval(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        let client = self.client.clone();
        let mut message = describe(task, edits);
        if !reasons.is_empty() {
            message.push_str(&format!(" — needs approval because {}", reasons.join("; ")));
        }
        message.push_str(". Apply it?");
        if self.caps.approval_prompt {
            // The client prompts for approvals itself (VS Code's diff view with Apply /
            // Reject): one prompt, answered with the approve command.
            return Box::pin(std::future::pending());
        }
        Box::pin(async move {
            let actions = vec![
                MessageActionItem {
                    title: "Apply".into(),
                    properties: Default::default(),
                },
                MessageActionItem {
                    title: "Reject".into(),
                    properties: Default::default(),
                },
            ];
            let params = ShowMessageRequestParams {
                typ: MessageType::INFO,
                message,
                actions: Some(actions),
            };
            match cancellable_request::<request::ShowMessageRequest>(&client, params).await {
                Ok(Some(item)) if item.title == "Apply" => Some(true),
                Ok(Some(item)) if item.title == "Reject" => Some(false),
                _ => None,
            }
        })
    }

    fn alert(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
        timeout: Duration,
    ) {
        let client = self.client.clone();
        let mut message = describe(task, edits);
        message.push_str(&format!(
            "; it will be applied in {} s unless rejected (command infinity-matrix.approve with {{\"taskId\": \"{}\", \"accept\": false}})",
            timeout.as_secs(),
            task.id
        ));
        if !reasons.is_empty() {
            message.push_str(&format!(" [{}]", reasons.join("; ")));
        }
        tokio::spawn(async move { client.show_message(MessageType::WARNING, message).await });
    }

    fn publish_diagnostics(&self, task: &TaskInfo, uri: &str, diagnostics: &[AgentDiagnostic]) {
        let Ok(uri) = uri.parse::<Uri>() else { return };
        let client = self.client.clone();
        let agent = task.agent.clone();
        let diags: Vec<Diagnostic> = diagnostics
            .iter()
            .map(|d| Diagnostic {
                range: Range {
                    start: Position {
                        line: d.line,
                        character: 0,
                    },
                    end: Position {
                        line: d.end_line + 1,
                        character: 0,
                    },
                },
                severity: Some(to_proto::severity(d.severity)),
                source: Some("infinity-matrix".into()),
                code: Some(NumberOrString::String(agent.clone())),
                message: d.message.clone(),
                ..Default::default()
            })
            .collect();
        tokio::spawn(async move { client.publish_diagnostics(uri, diags, None).await });
    }
}
