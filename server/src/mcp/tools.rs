//! The MCP tools: each one's arguments (with their JSON Schema) and its translation to session
//! calls and back to a tool result (readable text plus structured content).

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{ErrorData, schemars, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::convert::{
    audit_entry, context_item, document_symbol, run_result, task_line, workspace_symbol,
};
use crate::agents::PromptRequest;
use crate::audit::AuditQuery;
use crate::documents::{Position, Range};
use crate::secrets::redact;
use crate::session::{ContextArgs, DiskDocument, FilePlace, Session, SessionError};

/// The MCP server of one session.
#[derive(Clone)]
pub struct McpServer {
    pub(super) session: Arc<Session>,
    pub(super) tool_router: ToolRouter<McpServer>,
}

/// A place in a workspace file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Place {
    /// File path, relative to the workspace root or absolute (inside the workspace).
    pub path: String,
    /// 1-based line (none: the whole file).
    pub line: Option<u32>,
    /// 1-based column, in characters (default 1).
    pub column: Option<u32>,
    /// A selection's last line (1-based).
    pub end_line: Option<u32>,
    /// The column the selection ends before (1-based; default: through the end line).
    pub end_column: Option<u32>,
}

impl Place {
    pub(super) fn file_place(&self) -> FilePlace {
        FilePlace {
            line: self.line,
            column: self.column,
            end_line: self.end_line,
            end_column: self.end_column,
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ContextParams {
    #[serde(flatten)]
    pub place: Place,
    /// Token budget (default 4096).
    pub budget: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PathParams {
    /// File path, relative to the workspace root or absolute (inside the workspace).
    pub path: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceSymbolsParams {
    /// Fuzzy query.
    pub query: String,
    /// At most this many (default 50, at most 500).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct DefinitionParams {
    /// With `line` and `column`: the symbol used there, resolved through imports and scopes.
    pub path: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// Or a name: its definitions in the index.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunAgentParams {
    /// Agent name (see the prompts list); the configured default agent when absent.
    pub agent: Option<String>,
    #[serde(flatten)]
    pub place: Place,
    /// Free-text instruction or question.
    pub prompt: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ApproveParams {
    /// The task awaiting approval (`task_id` of `run_agent`).
    pub task: String,
    /// true writes the edit, false rejects it.
    pub accept: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AuditParams {
    /// Only entries newer than this: 30m, 2h, 7d, or milliseconds since the epoch.
    pub since: Option<String>,
    /// Only this task.
    pub task: Option<String>,
    /// At most this many, newest (default 200).
    pub limit: Option<usize>,
}

/// A tool result: `text` for people and models, `structured` for programs.
fn done(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A tool result of a session call; an error is one the caller can read (a result with
/// `isError`, as MCP asks, not a protocol error).
fn answer(result: Result<CallToolResult, SessionError>) -> Result<CallToolResult, ErrorData> {
    let error = |e: SessionError| vec![ContentBlock::text(redact(&e.to_string()))];
    Ok(result.unwrap_or_else(|e| CallToolResult::error(error(e))))
}

impl McpServer {
    pub fn new(session: Arc<Session>) -> McpServer {
        McpServer {
            session,
            tool_router: Self::tool_router(),
        }
    }

    /// The document and the agent request a run (or a prompt) asks for.
    pub(super) fn request(
        &self,
        p: &RunAgentParams,
    ) -> Result<(DiskDocument, PromptRequest), SessionError> {
        let (doc, position, range) = self.open(&p.place)?;
        let prompt = p.prompt.clone().unwrap_or_default();
        Ok((doc, PromptRequest::at(prompt, position, range)))
    }

    /// The request's document and its cursor and selection.
    fn open(&self, place: &Place) -> Result<(DiskDocument, Position, Option<Range>), SessionError> {
        let doc = self.session.open_file(&place.path)?;
        let (position, range) = doc.place(&place.file_place())?;
        Ok((doc, position, range))
    }
}

#[tool_router]
impl McpServer {
    #[tool(
        description = "The context a model needs about a place in a file: the code there, the definitions it uses (resolved through imports, as exact source lines), imports and diagnostics, ranked and cut to a token budget. Returns the rendered text and the items with their paths, lines and reasons."
    )]
    async fn context(
        &self,
        Parameters(p): Parameters<ContextParams>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(async {
            let (doc, position, range) = self.open(&p.place)?;
            let range = range.filter(|_| p.place.line.is_some());
            let (budget_tokens, diagnostics) = (p.budget, Vec::new());
            let args = ContextArgs { position, range, budget_tokens, diagnostics };
            let snap = self.session.context(&doc.uri, args).await?;
            let items: Vec<Value> = snap.items.iter().map(context_item).collect();
            let structured = json!({
                "path": self.session.display_path(&doc.path), "items": items, "total_tokens": snap.total_tokens,
                "budget_tokens": snap.budget_tokens, "index_complete": snap.index_complete,
            });
            Ok(done(snap.rendered, structured))
        }
        .await)
    }

    #[tool(
        description = "A file's outline: its symbols (classes, functions, methods, fields) with kinds and 1-based lines, nested."
    )]
    async fn symbols(
        &self,
        Parameters(p): Parameters<PathParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let doc = self.session.open_file(&p.path)?;
            let symbols = self.session.document_symbols(&doc.uri).await?;
            let list: Vec<Value> = symbols.iter().map(document_symbol).collect();
            Ok(CallToolResult::structured(json!({ "symbols": list })))
        };
        answer(result.await)
    }

    #[tool(
        description = "Search the workspace's symbols by fuzzy name, best first: name, kind, container, file and 1-based line."
    )]
    async fn workspace_symbols(
        &self,
        Parameters(p): Parameters<WorkspaceSymbolsParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = p.limit.unwrap_or(50).clamp(1, 500);
        let result = async {
            let hits = self.session.workspace_symbols(p.query, limit).await?;
            let list: Vec<Value> = hits
                .iter()
                .map(|h| workspace_symbol(&self.session, h))
                .collect();
            Ok(CallToolResult::structured(json!({ "symbols": list })))
        };
        answer(result.await)
    }

    #[tool(
        description = "Definitions as source: of the symbol used at `path` + `line` + `column` (resolved through imports and scopes; then the other definitions the code there uses), or every indexed definition of `name`."
    )]
    async fn definition(
        &self,
        Parameters(p): Parameters<DefinitionParams>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let items = match (&p.path, &p.name) {
                    (Some(path), _) => {
                        let doc = self.session.open_file(path)?;
                        let pos = doc.position(p.line.unwrap_or(1), p.column.unwrap_or(1))?;
                        self.session.definitions_at(&doc.uri, pos).await?
                    }
                    (None, Some(name)) => self.session.definitions_named(name, 20).await?,
                    (None, None) => {
                        let msg = "give `path` with `line` and `column`, or `name`";
                        return Err(SessionError::Invalid(msg.into()));
                    }
                };
                let text: String = (items.iter())
                    .map(|i| {
                        format!(
                            "{}:{}-{}\n{}\n",
                            i.display_path,
                            i.lines().0,
                            i.lines().1,
                            i.text
                        )
                    })
                    .collect();
                let defs: Vec<Value> = items.iter().map(context_item).collect();
                let text = if text.is_empty() {
                    "no definition found".into()
                } else {
                    text
                };
                Ok(done(text, json!({ "definitions": defs })))
            }
            .await,
        )
    }

    #[tool(
        description = "Run an agent (explain, fix, document, tests, refactor, review, or a configured one) on a file, a place or a selection, with an optional prompt. Returns the answer, or the proposed edit as a unified diff. The workspace's approval policy applies: an edit is written only when the policy allows it; otherwise the task waits for `approve`. Recorded in the audit log."
    )]
    async fn run_agent(
        &self,
        Parameters(p): Parameters<RunAgentParams>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let (doc, req) = self.request(&p)?;
                let run = self
                    .session
                    .run_agent_to_end(p.agent.as_deref(), &doc.uri, req)
                    .await?;
                Ok(run_result(&self.session.roots(), &run))
            }
            .await,
        )
    }

    #[tool(description = "Decide on an edit awaiting approval: accept writes it, reject drops it.")]
    async fn approve(
        &self,
        Parameters(p): Parameters<ApproveParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let run = self.session.approve_to_end(&p.task, p.accept).await?;
            Ok(run_result(&self.session.roots(), &run))
        };
        answer(result.await)
    }

    #[tool(
        description = "The agent tasks of this workspace: this session's and the most recent earlier ones, oldest first."
    )]
    async fn tasks(&self) -> Result<CallToolResult, ErrorData> {
        let tasks: Vec<Value> = self.session.tasks().iter().map(task_line).collect();
        Ok(CallToolResult::structured(json!({ "tasks": tasks })))
    }

    #[tool(
        description = "The audit log: tasks, state changes, provider attempts, approvals and edits, newest last; filter by `since` and `task`."
    )]
    async fn audit(
        &self,
        Parameters(p): Parameters<AuditParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let since = p
                .since
                .as_deref()
                .map(crate::audit::parse_since)
                .transpose();
            let query = AuditQuery {
                since: since.map_err(|e| SessionError::Invalid(format!("since {e}")))?,
                task_id: p.task,
                agent: None,
                kind: None,
                limit: p.limit,
            };
            let entries = self.session.audit(query).await?;
            let list: Vec<Value> = entries.iter().map(audit_entry).collect();
            Ok(CallToolResult::structured(json!({ "entries": list })))
        };
        answer(result.await)
    }
}
