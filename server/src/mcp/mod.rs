//! The MCP front end: `infinity-matrix mcp` serves one workspace session's tools (context,
//! symbols, definitions, agents, tasks, audit) and its agents' prompts to MCP clients, over
//! stdio or Streamable HTTP. It only translates: every rule lives in the session.

mod convert;
mod http;
mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rmcp::model::{
    GetPromptRequestParams, GetPromptResult, Implementation, ListPromptsResult,
    PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, Role as McpRole,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool_handler};

use crate::providers::Role;
use crate::session::{DiskHost, FrontEnd, Session};
use tools::McpServer;

/// `infinity-matrix mcp`'s options.
pub struct McpArgs {
    pub root: Option<PathBuf>,
    /// Serve Streamable HTTP on this loopback address instead of stdio.
    pub http: Option<String>,
    /// Read the bearer token from this file (else one is made and printed once).
    pub token_file: Option<PathBuf>,
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            "infinity-matrix",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Code context and AI agents for one workspace. Paths are relative to the workspace \
             root; lines and columns are 1-based. `context` and `definition` show definitions \
             as exact source lines; `run_agent` runs an agent under the workspace's approval \
             policy (edits wait for `approve` unless the policy allows them).",
        )
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        const ARGUMENTS: [(&str, &str); 4] = [
            ("path", "File, relative to the workspace root (required)"),
            ("line", "1-based line (default: the whole file)"),
            ("end_line", "1-based last line of a selection"),
            ("prompt", "Free-text instruction"),
        ];
        let arguments: Vec<PromptArgument> = ARGUMENTS
            .iter()
            .map(|(name, about)| {
                PromptArgument::new(*name)
                    .with_description(*about)
                    .with_required(*name == "path")
            })
            .collect();
        let prompts = (self.session.agents().into_iter())
            .map(|a| Prompt::new(a.name, Some(a.description), Some(arguments.clone())))
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, ErrorData> {
        // Prompt arguments are strings: the numbers become numbers, then a `Place`.
        let args: serde_json::Map<String, serde_json::Value> =
            (request.arguments.unwrap_or_default())
                .into_iter()
                .map(|(k, v)| match v.as_str().map(|s| s.trim().parse::<u32>()) {
                    Some(Ok(n)) if k != "path" && k != "prompt" => (k, n.into()),
                    _ => (k, v),
                })
                .collect();
        let params: tools::RunAgentParams = serde_json::from_value(args.into())
            .map_err(|e| ErrorData::invalid_params(format!("arguments: {e}"), None))?;
        let invalid = |e: crate::session::SessionError| {
            ErrorData::invalid_params(crate::secrets::redact(&e.to_string()), None)
        };
        let (doc, req) = self.request(&params).map_err(invalid)?;
        let messages = self
            .session
            .agent_messages(Some(&request.name), &doc.uri, req)
            .await
            .map_err(invalid)?;
        // MCP prompts have no system role: the system prompt leads the first user message.
        let mut system = None;
        let out = messages.into_iter().filter_map(|m| match m.role {
            Role::System => system.replace(m.content).and(None),
            Role::User => Some(PromptMessage::new_text(
                McpRole::User,
                match system.take() {
                    Some(s) => format!("{s}\n\n{}", m.content),
                    None => m.content,
                },
            )),
            Role::Assistant => Some(PromptMessage::new_text(McpRole::Assistant, m.content)),
        });
        Ok(GetPromptResult::new(out.collect()).into())
    }
}

/// `infinity-matrix mcp`: serves until the client goes (stdio) or the process is stopped (HTTP).
pub fn run(args: McpArgs) -> Result<()> {
    let listen = args
        .http
        .as_deref()
        .map(http::loopback_address)
        .transpose()?;
    let token = match listen {
        Some(_) => Some(http::Token::new(args.token_file.as_deref())?),
        None => None,
    };
    let runtime = crate::process::server_runtime()?;
    let result = runtime.block_on(async move {
        let headless =
            Session::start_headless(args.root.as_deref(), FrontEnd::Mcp, Arc::new(DiskHost))?;
        let session = headless.session.clone();
        let server = McpServer::new(session.clone());
        let served = match (listen, token) {
            (Some(addr), Some(token)) => http::serve(server, addr, token).await,
            _ => {
                async {
                    let running = server.serve(rmcp::transport::stdio()).await?;
                    running.waiting().await?;
                    Ok(())
                }
                .await
            }
        };
        session.shutdown(Duration::from_secs(2)).await;
        served
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}
