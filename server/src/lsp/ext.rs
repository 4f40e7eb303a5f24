//! The custom LSP protocol (`infinityMatrix/*` methods): every request, response and notification type, and the method names.
//!
//! Every change here must be reflected in docs/lsp-extensions.md; a test
//! (`server/tests/it/lsp_extensions_doc.rs`) fails when this file's hash is not the one the doc records.
//! Engine types never go out as they are: `to_proto.rs` converts them to these types and
//! `from_proto.rs` converts params back, so renaming an engine field cannot change the wire.
//! Enums shared with the configuration file (`OutputMode`, `Approval`, `Trigger`) and the
//! audit log (`TaskState`, `EntryKind`) keep the names those formats give them.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Diagnostic, Position, Range, TextDocumentIdentifier};

use crate::audit::EntryKind;
use crate::config::{Approval, OutputMode, Trigger};
pub use crate::metrics::MetricsSnapshot;

/// A task's state: queued | running | awaiting_approval | succeeded | failed | cancelled.
pub use crate::audit::TaskState;

/// `infinityMatrix/context` request: the context snapshot for a position or selection.
pub const CONTEXT_METHOD: &str = "infinityMatrix/context";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub budget_tokens: Option<u32>,
    #[serde(default)]
    pub diagnostics: Option<Vec<Diagnostic>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContextItem {
    /// selection | enclosingSymbol | imports | definition | diagnostics | outline | recentEdit
    pub kind: String,
    pub uri: String,
    pub range: Range,
    pub text: String,
    pub tokens: u32,
    pub reason: String,
    /// Runs of lines (0-based, first and last inclusive) of `range` that `text` leaves out,
    /// each replaced there by one marker line; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elided: Vec<[u32; 2]>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContextResult {
    pub items: Vec<ContextItem>,
    pub total_tokens: u32,
    pub budget_tokens: u32,
    pub rendered: String,
    /// False while the workspace's first index is still being built.
    pub index_complete: bool,
}

/// Keys accepted in `initializationOptions` (all optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializationOptions {
    /// Files larger than this are not indexed (default 1 MiB).
    #[serde(default)]
    pub max_file_size_bytes: Option<u64>,
    /// Extra directory names the indexer never enters.
    #[serde(default)]
    pub exclude_dirs: Option<Vec<String>>,
    /// How many open documents keep their syntax tree between requests (default 4, at least 1).
    #[serde(default)]
    pub tree_cache_size: Option<usize>,
    /// Open documents larger than this are mirrored exactly but never parsed: plain text, no
    /// symbols (default 2 MiB, at least 1 KiB).
    #[serde(default)]
    pub max_parse_bytes: Option<usize>,
    /// Configuration with the same shape as the TOML file (user-level trust).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

// ---- agents -------------------------------------------------------------------------------

/// workspace/executeCommand commands. Each answers `{ "taskId": string | null }` at once; the
/// work continues asynchronously and is reported through `infinityMatrix/taskEvent`.
pub const START_AGENT: &str = "infinity-matrix.startAgent";
pub const STOP_AGENT: &str = "infinity-matrix.stopAgent";
pub const EXECUTE_PROMPT: &str = "infinity-matrix.executePrompt";
pub const CANCEL_TASK: &str = "infinity-matrix.cancelTask";
pub const APPROVE: &str = "infinity-matrix.approve";
pub const PROPOSE_EDIT: &str = "infinity-matrix.proposeEdit";

/// `infinity-matrix.startAgent` arguments[0] (also what a code action's command carries).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartAgentArgs {
    pub agent: String,
    #[serde(default)]
    pub text_document: Option<TextDocumentIdentifier>,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    #[serde(default)]
    pub diagnostics: Option<Vec<Diagnostic>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Continue the conversation of this task: its earlier turns go before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<String>,
}

/// `infinity-matrix.stopAgent` arguments[0].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopAgentArgs {
    pub agent: String,
}

/// `infinity-matrix.executePrompt` arguments[0].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutePromptArgs {
    pub prompt: String,
    #[serde(default)]
    pub agent: Option<String>,
    pub text_document: TextDocumentIdentifier,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub position: Option<Position>,
    #[serde(default)]
    pub diagnostics: Option<Vec<Diagnostic>>,
    /// Continue the conversation of this task: its earlier turns go before this one.
    #[serde(default)]
    pub parent_task_id: Option<String>,
}

/// `infinity-matrix.cancelTask` arguments[0].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelTaskArgs {
    pub task_id: String,
}

/// `infinity-matrix.approve` arguments[0].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApproveArgs {
    pub task_id: String,
    pub accept: bool,
}

/// `infinity-matrix.proposeEdit` arguments[0]: a code block the user picked from a task's
/// answer, proposed as the replacement of that task's target. A new task (same agent, no
/// provider call) puts it through the agent's approval policy, as an edit agent's reply.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposeEditArgs {
    pub task_id: String,
    pub new_text: String,
}

/// The answer of every command.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommandResult {
    pub task_id: Option<String>,
}

/// Server → client notification: a task changed state, or streamed text
/// (params: `{type: "state", task}` | `{type: "chunk", taskId, seq, text}` | `{type: "reset", taskId, seq, reason}`).
pub const TASK_EVENT: &str = "infinityMatrix/taskEvent";
/// Server → client notification: agents, tasks and provider health (coalesced, at most ~10/s).
pub const AGENT_STATUS: &str = "infinityMatrix/agentStatus";

/// A task as the client sees it (`taskEvent`, `agentStatus`, `infinityMatrix/tasks`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    pub id: String,
    pub agent: String,
    pub state: TaskState,
    pub output: OutputMode,
    pub uri: Option<String>,
    pub priority: i32,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// The provider currently (or finally) used.
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    pub retries: u32,
    /// Why it failed or was cancelled (never holds a secret).
    pub error: Option<String>,
    /// The task this one follows up, when it continues a conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<String>,
    /// Prompt and reply tokens of the call that answered, when its provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u32>,
}

/// `infinityMatrix/taskEvent` params.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TaskEventParams {
    /// Every state change, in order.
    State { task: TaskInfo },
    /// Streamed answer text; `seq` counts chunk and reset events of a task from 1.
    Chunk {
        task_id: String,
        seq: u64,
        text: String,
    },
    /// Discard the text so far (retry / failover).
    Reset {
        task_id: String,
        seq: u64,
        reason: String,
    },
}

/// `infinityMatrix/agentStatus` params.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatusParams {
    pub agents: Vec<AgentStatus>,
    /// The 50 most recent.
    pub tasks: Vec<TaskInfo>,
    pub providers: Vec<ProviderStatus>,
    pub running: usize,
    pub queued: usize,
}

/// One agent in `agentStatus`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub name: String,
    pub description: String,
    /// idle | running | enabled (a background agent waiting for its trigger)
    pub state: String,
    pub background: bool,
    pub enabled: bool,
    pub running: usize,
    pub queued: usize,
    pub output: OutputMode,
    pub providers: Vec<String>,
}

/// One provider in `agentStatus`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    pub name: String,
    pub kind: String,
    pub model: String,
    /// closed | open | half_open | misconfigured
    pub circuit: String,
    pub consecutive_failures: u32,
    /// The configuration error, or the reason of the last failed call.
    pub error: Option<String>,
    /// unknown (never contacted) | healthy | unreachable | failing | circuit_open | half_open |
    /// misconfigured
    pub health: String,
}

/// Requests (client → server).
pub const AGENTS: &str = "infinityMatrix/agents";
pub const TASKS: &str = "infinityMatrix/tasks";
pub const TASK: &str = "infinityMatrix/task";
pub const AUDIT: &str = "infinityMatrix/audit";
pub const METRICS: &str = "infinityMatrix/metrics";
pub const SET_SECRET: &str = "infinityMatrix/setSecret";
pub const TEST_PROVIDER: &str = "infinityMatrix/testProvider";
/// Client → server notification: the editor's diagnostics for a document changed (drives `onDiagnostics` agents).
pub const DIAGNOSTICS_CHANGED: &str = "infinityMatrix/diagnosticsChanged";

/// `infinityMatrix/agents` result.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentsResult {
    pub agents: Vec<AgentDef>,
    /// The agent `executePrompt` runs when none is named.
    pub default_agent: String,
}

/// An agent: its configuration merged over the built-in of the same name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentDef {
    pub name: String,
    pub description: String,
    /// Ordered failover chain.
    pub providers: Vec<String>,
    pub model: Option<String>,
    pub system_prompt: String,
    pub prompt: String,
    pub output: OutputMode,
    pub approval: Approval,
    pub triggers: Vec<Trigger>,
    pub concurrency: usize,
    pub priority: i32,
    pub rate_per_minute: u32,
    pub debounce_ms: u64,
    pub context_budget_tokens: usize,
    pub context_enclosing_percent: u8,
    pub builtin: bool,
}

/// `infinityMatrix/tasks` result (in memory: the running tasks and the last 500 finished).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TasksResult {
    pub tasks: Vec<TaskInfo>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskParams {
    pub task_id: String,
}

/// `infinityMatrix/task` result: the task with its full output.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskDetail {
    #[serde(flatten)]
    pub info: TaskInfo,
    /// The full output (kept also when an edit reply did not parse).
    pub text: String,
    pub edit: Option<EditProposal>,
    pub diagnostics: Vec<AgentDiagnostic>,
    pub approval: Option<String>,
    /// What the user asked (the free-text prompt; empty for an agent run on a selection).
    pub prompt: String,
    /// The code the task is about (absent for a task of an earlier server).
    #[serde(default)]
    pub target: Option<SentTarget>,
    /// The context items sent with it, without their text.
    #[serde(default)]
    pub context: Vec<SentContextItem>,
}

/// `TaskDetail.target`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SentTarget {
    pub uri: String,
    pub range: Range,
}

/// One item of `TaskDetail.context`: a context item as sent, its text left out.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SentContextItem {
    /// As `ContextItem.kind`.
    pub kind: String,
    pub uri: String,
    pub range: Range,
    pub tokens: u32,
    pub reason: String,
}

/// An edit an agent proposes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EditProposal {
    pub uri: String,
    pub range: Range,
    pub new_text: String,
    pub original_text: String,
    /// Lines removed plus lines added.
    pub lines_changed: usize,
    /// The document version the edit was computed against.
    pub version: Option<i32>,
}

/// A finding of a diagnostics-mode agent (0-based lines).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AgentDiagnostic {
    pub line: u32,
    pub end_line: u32,
    /// 1 error, 2 warning, 3 information, 4 hint (LSP numbering).
    pub severity: u8,
    pub message: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditParams {
    /// Milliseconds since the Unix epoch.
    #[serde(default)]
    pub since: Option<i64>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    /// task | transition | attempt | approval | edit
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `infinityMatrix/audit` result: oldest first.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditResult {
    pub entries: Vec<AuditEntry>,
}

/// One row of any audit table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub kind: EntryKind,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// One human-readable line.
    pub summary: String,
    /// The row's columns (snake_case, as in the audit database's schema).
    pub details: serde_json::Value,
}

/// `infinityMatrix/metrics` result: `{counters, gauges, histograms}`, the same series as the
/// Prometheus endpoint (single-word field names, the same in the engine).
pub type MetricsResult = MetricsSnapshot;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSecretParams {
    /// The name agents' providers refer to in `api_key_env`.
    pub name: String,
    pub value: String,
}

/// `infinityMatrix/testProvider` params.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestProviderParams {
    /// The provider's name in the configuration.
    pub name: String,
}

/// `infinityMatrix/testProvider` result: `doctor`'s checks on one provider.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestProviderResult {
    /// Reachable, authorised (or no key needed) and the model present (or not checkable).
    pub ok: bool,
    /// One line for the user: what held, or what failed and why (redacted).
    pub summary: String,
    /// The provider's health after the test (as in `agentStatus`).
    pub health: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticsChangedParams {
    pub text_document: TextDocumentIdentifier,
    pub diagnostics: Vec<Diagnostic>,
}

/// Commands accepted by workspace/executeCommand.
pub const COMMANDS: &[&str] = &[
    START_AGENT,
    STOP_AGENT,
    EXECUTE_PROMPT,
    CANCEL_TASK,
    APPROVE,
    PROPOSE_EDIT,
];

/// `initializationOptions.config`, and the `infinityMatrix` section of workspace/configuration,
/// take the configuration file's shape (see docs/configuration.md and docs/config.schema.json).
pub const CONFIG_SECTION: &str = "infinityMatrix";
