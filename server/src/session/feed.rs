//! Task events fanned out to whoever waits on a task (an MCP tool call, an ACP prompt turn).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{Session, SessionError};
use crate::agents::{
    AgentDiagnostic, EDIT_REJECTED, EditProposal, Notice, PromptRequest, TaskDetail, TaskEvent,
    TaskHost, TaskInfo, TaskState,
};
use crate::providers::BoxFuture;

/// Every task event, to each subscriber. Subscribe before starting a task: its first events
/// may arrive before its id is known.
#[derive(Clone, Default)]
pub struct TaskFeed {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<TaskEvent>>>>,
}

impl TaskFeed {
    /// A stream of every event from now on; dropping it unsubscribes.
    pub fn subscribe(&self) -> FeedReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().push(tx);
        FeedReceiver { rx }
    }

    /// Sends `event` to every live subscriber (never blocks).
    pub fn publish(&self, event: &TaskEvent) {
        self.subscribers
            .lock()
            .retain(|tx| tx.send(event.clone()).is_ok());
    }
}

/// One subscription to a [`TaskFeed`].
pub struct FeedReceiver {
    rx: mpsc::UnboundedReceiver<TaskEvent>,
}

impl FeedReceiver {
    /// The next event of task `id` (`None` when the feed is gone).
    pub async fn next_of(&mut self, id: &str) -> Option<TaskEvent> {
        loop {
            let event = self.rx.recv().await?;
            let of = match &event {
                TaskEvent::State { task } => task.id.as_str(),
                TaskEvent::Chunk { task_id, .. } | TaskEvent::Reset { task_id, .. } => {
                    task_id.as_str()
                }
            };
            if of == id {
                return Some(event);
            }
        }
    }

    /// Waits until task `id` ends or waits for approval; returns its last state and the text
    /// it streamed (what a failed attempt streamed is dropped on reset).
    pub async fn settle(&mut self, id: &str) -> Option<(TaskInfo, String)> {
        let mut text = String::new();
        while let Some(event) = self.next_of(id).await {
            match event {
                TaskEvent::Chunk { text: chunk, .. } => text.push_str(&chunk),
                TaskEvent::Reset { .. } => text.clear(),
                TaskEvent::State { task } => {
                    if task.state.is_terminal()
                        || task.state == crate::agents::TaskState::AwaitingApproval
                    {
                        return Some((task, text));
                    }
                }
            }
        }
        None
    }
}

/// The front end's host, with every task event also published to the session's feed.
pub(super) struct FeedHost {
    pub feed: TaskFeed,
    pub inner: Arc<dyn TaskHost>,
}

impl TaskHost for FeedHost {
    fn on_event(&self, event: TaskEvent) {
        self.feed.publish(&event);
        self.inner.on_event(event);
    }
    fn apply_edit(
        &self,
        task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        self.inner.apply_edit(task, edits)
    }
    fn ask_approval(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        self.inner.ask_approval(task, edits, reasons)
    }
    fn alert(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
        timeout: Duration,
    ) {
        self.inner.alert(task, edits, reasons, timeout);
    }
    fn publish_diagnostics(&self, task: &TaskInfo, uri: &str, diagnostics: &[AgentDiagnostic]) {
        self.inner.publish_diagnostics(task, uri, diagnostics);
    }
    fn notify(&self, notice: Notice) -> BoxFuture<'static, ()> {
        self.inner.notify(notice)
    }
    fn status_changed(&self) {
        self.inner.status_changed();
    }
}

/// How an agent run ended (or stopped to wait for approval), for front ends that wait on it.
#[derive(Debug, Clone)]
pub struct AgentRun {
    pub info: TaskInfo,
    /// What the task streamed (an earlier failed attempt's text dropped).
    pub text: String,
    /// Its edit, findings and context.
    pub detail: Option<TaskDetail>,
}

impl Session {
    /// Every task event from now on.
    pub fn subscribe(&self) -> FeedReceiver {
        self.feed.subscribe()
    }

    /// Runs an agent (see [`Session::run_agent`]) and waits until it ends or waits for
    /// approval. Dropping the future before then cancels the task.
    pub async fn run_agent_to_end(
        &self,
        agent: Option<&str>,
        uri: &str,
        req: PromptRequest,
    ) -> Result<AgentRun, SessionError> {
        let mut events = self.subscribe();
        let id = self.run_agent(agent, uri, req).await?;
        self.wait_for(&mut events, &id).await
    }

    /// Decides on an edit awaiting approval and waits until the task ends.
    pub async fn approve_to_end(&self, id: &str, accept: bool) -> Result<AgentRun, SessionError> {
        let mut events = self.subscribe();
        self.approve(id, accept)?;
        self.wait_for(&mut events, id).await
    }

    async fn wait_for(
        &self,
        events: &mut FeedReceiver,
        id: &str,
    ) -> Result<AgentRun, SessionError> {
        struct CancelOnDrop<'a>(&'a Session, &'a str, bool);
        impl Drop for CancelOnDrop<'_> {
            fn drop(&mut self) {
                if self.2 {
                    let _ = self.0.cancel(self.1);
                }
            }
        }
        let mut guard = CancelOnDrop(self, id, true);
        let settled = events.settle(id).await;
        guard.2 = false;
        let (info, text) =
            settled.ok_or_else(|| SessionError::Internal("the task's events stopped".into()))?;
        Ok(AgentRun {
            info,
            text,
            detail: self.task(id),
        })
    }
}

impl AgentRun {
    /// The proposed edit as a unified diff, paths relative to `root`.
    pub fn diff(&self, root: &std::path::Path) -> Option<String> {
        let edit = self.detail.as_ref()?.edit.as_ref()?;
        Some(super::edit_diff(root, edit))
    }

    /// Whether the run's edit was written.
    pub fn applied(&self) -> bool {
        self.info.state == TaskState::Succeeded
            && self.detail.as_ref().is_some_and(|d| d.edit.is_some())
    }

    /// What people read about the outcome: the answer, or the edit's diff and what became of
    /// it, then [`AgentRun::notes`].
    pub fn report(&self, root: &std::path::Path) -> String {
        let body = match (self.diff(root), self.info.state) {
            (Some(diff), TaskState::AwaitingApproval) => format!(
                "{diff}\nThis edit awaits approval (the workspace's policy): approve task {} to \
                 write it, or reject it.",
                self.info.id
            ),
            (Some(diff), TaskState::Succeeded) => format!("{diff}\nWritten."),
            (Some(diff), _) => format!("{diff}\nNot written."),
            (None, _) => self.text.clone(),
        };
        body + &self.notes()
    }

    /// The findings (one line each) and the error, each on a line of its own.
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for f in self.detail.iter().flat_map(|d| &d.diagnostics) {
            let severity = format!("{:?}", f.severity).to_lowercase();
            out.push_str(&format!("\nline {}: {severity}: {}", f.line + 1, f.message));
        }
        match self.info.error.as_deref() {
            Some(EDIT_REJECTED) => out.push_str("\nEdit rejected: nothing was written."),
            Some(error) => {
                let (label, state) = (self.info.label(), self.info.state.as_str());
                out.push_str(&format!("\n[{label} {state}: {error}]"));
            }
            None => {}
        }
        out
    }
}
