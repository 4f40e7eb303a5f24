//! Task types: specs submitted to the orchestrator, states, events and summaries.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{OutputMode, Trigger};
use crate::context::{ContextSnapshot, DiagnosticInput};
use crate::documents::Range;

pub type TaskId = String;

/// Lifecycle: queued → running → (awaiting_approval) → succeeded | failed | cancelled
/// (one type for the orchestrator and the audit log).
pub use crate::audit::TaskState;

/// Everything a task needs, captured when it is submitted (so later edits don't change it).
#[derive(Debug, Clone, Default)]
pub struct TaskSpec {
    pub agent: String,
    /// The user's free-text prompt (executePrompt), if any.
    pub prompt: String,
    pub uri: Option<String>,
    pub path: Option<PathBuf>,
    /// Path relative to the workspace, for prompts.
    pub display_path: String,
    pub language: String,
    pub document_version: Option<i32>,
    /// The code the agent works on: the selection, else the enclosing symbol, else the cursor line.
    pub target_text: String,
    /// Where `target_text` is (client coordinates); edits replace this range.
    pub target_range: Option<Range>,
    /// Whether the target is an explicit selection (for the "edit outside the selection" rule).
    pub target_is_selection: bool,
    pub context: Option<ContextSnapshot>,
    pub diagnostics: Vec<DiagnosticInput>,
    /// Overrides the agent's priority when set.
    pub priority: Option<i32>,
    pub trigger: Option<Trigger>,
    /// The task this one follows up (same conversation).
    pub parent_task_id: Option<TaskId>,
    /// The conversation's earlier turns, oldest first, already trimmed to their budget share:
    /// sent before this turn as user / assistant messages.
    pub history: Vec<Turn>,
    /// The replacement the user picked for the target (a code block of an earlier answer): no
    /// provider is asked; the task proposes it as an edit, under the agent's approval policy.
    pub given_edit: Option<String>,
}

/// An earlier turn of a conversation: what was asked and what the model answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    pub question: String,
    pub answer: String,
}

/// Public view of a task (agentStatus, tasks list, CLI). Front ends convert it to their wire
/// type; its serde form (plain field names) is for logs and tests only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInfo {
    pub id: TaskId,
    pub agent: String,
    pub state: TaskState,
    pub output: OutputMode,
    pub uri: Option<String>,
    pub priority: i32,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    pub retries: u32,
    pub error: Option<String>,
    /// The task this one follows up, when it continues a conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<TaskId>,
    /// Prompt and reply tokens of the call that answered, when its provider reported them.
    pub tokens_in: Option<u32>,
    pub tokens_out: Option<u32>,
}

impl TaskInfo {
    /// Whether the task failed: it ended failed or cancelled, except by a rejected edit (a
    /// decision, not a failure).
    pub fn failed(&self) -> bool {
        matches!(self.state, TaskState::Failed | TaskState::Cancelled)
            && self.error.as_deref() != Some(EDIT_REJECTED)
    }

    /// The task's label wherever a person reads it: `explain #12` (the number goes on across
    /// restarts of the workspace's server).
    pub fn label(&self) -> String {
        match self.id.rsplit_once('-').map(|(_, n)| n) {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{} #{n}", self.agent)
            }
            _ => format!("{} {}", self.agent, self.id),
        }
    }
}

/// A proposed edit, in client coordinates (defined with the policy that judges it).
pub use crate::policy::EditProposal;

/// How serious an agent's finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Severity {
    Error,
    Warning,
    Information,
    Hint,
}

/// A finding from a diagnostics-mode agent (0-based lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AgentDiagnostic {
    pub line: u32,
    pub end_line: u32,
    pub severity: Severity,
    pub message: String,
}

/// Full record of a task (`infinityMatrix/task` in the LSP front end).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub info: TaskInfo,
    pub text: String,
    pub edit: Option<EditProposal>,
    pub diagnostics: Vec<AgentDiagnostic>,
    pub approval: Option<String>,
    /// What the user asked (the free-text prompt; empty for an agent run on a selection).
    pub prompt: String,
    /// What was sent besides the prompt: the target (uri and range) and the context items.
    pub target: Option<(String, Range)>,
    pub context: Vec<crate::context::ContextItem>,
}

/// The error a task ends with (cancelled) when its edit was rejected.
pub const EDIT_REJECTED: &str = "edit rejected";

/// What the orchestrator tells the front end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TaskEvent {
    /// A state change.
    State { task: TaskInfo },
    /// Streamed text; `seq` starts at 1 per task and has no gaps.
    Chunk {
        task_id: TaskId,
        seq: u64,
        text: String,
    },
    /// A provider attempt failed after streaming some text: discard the text received so far.
    Reset {
        task_id: TaskId,
        seq: u64,
        reason: String,
    },
}
