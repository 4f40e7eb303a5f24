//! The custom LSP protocol (`infinityMatrix/*` methods): wire types and method names.
//!
//! Every change here must be reflected in docs/lsp-extensions.md; a test
//! (`server/tests/lsp_extensions_doc.rs`) fails when this file's hash is not the one the doc records.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Diagnostic, Position, Range, TextDocumentIdentifier};

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

/// `infinity-matrix.startAgent` arguments[0].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartAgentArgs {
    pub agent: String,
    #[serde(default)]
    pub text_document: Option<TextDocumentIdentifier>,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub position: Option<Position>,
    #[serde(default)]
    pub diagnostics: Option<Vec<Diagnostic>>,
    #[serde(default)]
    pub prompt: Option<String>,
    /// Continue the conversation of this task: its earlier turns go before this one.
    #[serde(default)]
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskParams {
    pub task_id: String,
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
];

/// `initializationOptions.config`, and the `infinityMatrix` section of workspace/configuration,
/// take the configuration file's shape (see docs/configuration.md and docs/config.schema.json).
pub const CONFIG_SECTION: &str = "infinityMatrix";

/// The wire result of a connection test, from `doctor`'s report.
pub fn test_provider_result(
    report: &crate::providers::HealthReport,
    health: String,
) -> TestProviderResult {
    let ok =
        report.reachable && report.authorized != Some(false) && report.model_present != Some(false);
    let mut parts = vec![if report.reachable {
        "reachable"
    } else {
        "unreachable"
    }];
    match report.authorized {
        Some(true) => parts.push("key accepted"),
        Some(false) => parts.push("key refused"),
        None => {}
    }
    match report.model_present {
        Some(true) => parts.push("model present"),
        Some(false) => parts.push("model not found"),
        None => {}
    }
    let mut summary = parts.join(", ");
    if !report.detail.is_empty() {
        summary.push_str(" — ");
        summary.push_str(&report.detail);
    }
    TestProviderResult {
        ok,
        summary,
        health,
    }
}
