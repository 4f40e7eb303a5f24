//! Agent handlers: code actions and the `infinity-matrix.*` commands of workspace/executeCommand.

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::super::ext;
use super::super::from_proto::prompt_request;
use super::super::server::{Backend, invalid_params, session_error};
use crate::agents::AgentDef;
use crate::config::Trigger;

impl Backend {
    /// `textDocument/codeAction`: one action per agent with the `codeAction` trigger.
    pub(in crate::lsp) async fn agent_code_actions(
        &self,
        params: CodeActionParams,
    ) -> Result<Option<CodeActionResponse>> {
        let Ok(session) = self.session() else {
            return Ok(Some(Vec::new()));
        };
        let has_selection = params.range.start != params.range.end;
        let diagnostics = params.context.diagnostics.clone();
        let mut actions = Vec::new();
        for agent in session.agents() {
            if !agent.triggers.contains(&Trigger::CodeAction) {
                continue;
            }
            let for_diagnostics = agent.name == "fix";
            if for_diagnostics && diagnostics.is_empty() {
                continue;
            }
            if !for_diagnostics && !has_selection && diagnostics.is_empty() {
                continue;
            }
            let args = ext::StartAgentArgs {
                agent: agent.name.clone(),
                text_document: Some(params.text_document.clone()),
                range: Some(params.range),
                position: None,
                diagnostics: Some(if for_diagnostics {
                    diagnostics.clone()
                } else {
                    Vec::new()
                }),
                prompt: None,
                parent_task_id: None,
            };
            let title = action_title(&agent);
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: title.clone(),
                kind: Some(if for_diagnostics {
                    CodeActionKind::QUICKFIX
                } else {
                    CodeActionKind::REFACTOR
                }),
                diagnostics: for_diagnostics.then(|| diagnostics.clone()),
                command: Some(Command {
                    title,
                    command: ext::START_AGENT.into(),
                    arguments: Some(vec![serde_json::to_value(args).unwrap_or_default()]),
                }),
                ..Default::default()
            }));
        }
        Ok(Some(actions))
    }

    /// `workspace/executeCommand`.
    pub(in crate::lsp) async fn run_command(
        &self,
        params: ExecuteCommandParams,
    ) -> Result<Option<Value>> {
        // eglot sends `"arguments": null` for commands without arguments.
        let arg = params.arguments.into_iter().next().unwrap_or(Value::Null);
        let result = self.execute_agent_command(&params.command, arg).await?;
        Ok(Some(serde_json::to_value(result).unwrap_or_default()))
    }

    async fn execute_agent_command(&self, command: &str, arg: Value) -> Result<ext::CommandResult> {
        fn parse<T: serde::de::DeserializeOwned>(command: &str, arg: Value) -> Result<T> {
            serde_json::from_value(arg)
                .map_err(|e| invalid_params(format!("bad arguments for {command}: {e}")))
        }
        match command {
            ext::EXECUTE_PROMPT => {
                let a: ext::ExecutePromptArgs = parse(command, arg)?;
                let session = self.session()?;
                let mut req = prompt_request(a.prompt, a.position, a.range, a.diagnostics);
                req.parent_task_id = a.parent_task_id;
                let id = session
                    .run_agent(a.agent.as_deref(), a.text_document.uri.as_str(), req)
                    .await
                    .map_err(session_error)?;
                Ok(ext::CommandResult { task_id: Some(id) })
            }
            ext::START_AGENT => {
                let a: ext::StartAgentArgs = parse(command, arg)?;
                let session = self.session()?;
                let background = session.enable_agent(&a.agent).map_err(session_error)?;
                match a.text_document {
                    Some(doc) => {
                        let mut req = prompt_request(
                            a.prompt.unwrap_or_default(),
                            a.position,
                            a.range,
                            a.diagnostics,
                        );
                        req.parent_task_id = a.parent_task_id;
                        let id = session
                            .run_agent(Some(&a.agent), doc.uri.as_str(), req)
                            .await
                            .map_err(session_error)?;
                        Ok(ext::CommandResult { task_id: Some(id) })
                    }
                    None if background => Ok(ext::CommandResult { task_id: None }),
                    None => Err(invalid_params(format!(
                        "agent {} runs on a document: pass textDocument (and range or position)",
                        a.agent
                    ))),
                }
            }
            ext::STOP_AGENT => {
                let a: ext::StopAgentArgs = parse(command, arg)?;
                self.session()?
                    .stop_agent(&a.agent)
                    .map_err(session_error)?;
                Ok(ext::CommandResult { task_id: None })
            }
            ext::CANCEL_TASK => {
                let a: ext::CancelTaskArgs = parse(command, arg)?;
                self.session()?.cancel(&a.task_id).map_err(session_error)?;
                Ok(ext::CommandResult {
                    task_id: Some(a.task_id),
                })
            }
            ext::APPROVE => {
                let a: ext::ApproveArgs = parse(command, arg)?;
                self.session()?
                    .approve(&a.task_id, a.accept)
                    .map_err(session_error)?;
                Ok(ext::CommandResult {
                    task_id: Some(a.task_id),
                })
            }
            ext::PROPOSE_EDIT => {
                let a: ext::ProposeEditArgs = parse(command, arg)?;
                let id = self
                    .session()?
                    .propose_edit(&a.task_id, a.new_text)
                    .map_err(session_error)?;
                Ok(ext::CommandResult { task_id: Some(id) })
            }
            other => Err(invalid_params(format!(
                "unknown command {other:?}; this server provides: {}",
                ext::COMMANDS.join(", ")
            ))),
        }
    }
}

/// Code action titles for the built-in agents.
fn action_title(agent: &AgentDef) -> String {
    match agent.name.as_str() {
        "explain" => "Explain".into(),
        "fix" => "Fix this diagnostic".into(),
        "document" => "Add docs".into(),
        "tests" => "Write tests".into(),
        "refactor" => "Refactor".into(),
        _ => agent.description.clone(),
    }
}
