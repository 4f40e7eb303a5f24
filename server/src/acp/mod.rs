//! The ACP front end: `infinity-matrix acp` is an Agent Client Protocol agent over stdio. Each
//! ACP session is a workspace session on its cwd; a prompt runs an agent (the default one, or
//! the one its `/command` names) on the files and selections the prompt carries. It only
//! translates: every rule lives in the session.

mod host;
mod prompt;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agent_client_protocol::v1::schema::{
    AgentCapabilities, AvailableCommand, AvailableCommandInput, AvailableCommandsUpdate,
    CancelNotification, Implementation, InitializeRequest, InitializeResponse, NewSessionRequest,
    NewSessionResponse, PromptCapabilities, PromptRequest, SessionId, SessionNotification,
    SessionUpdate, ToolCallUpdate, UnstructuredCommandInput,
};
use agent_client_protocol::{Agent, ByteStreams, Client};
use anyhow::Result;
use parking_lot::Mutex;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use crate::session::{FrontEnd, Headless, Session};
use host::AcpHost;

/// One ACP session: the workspace session and the prompt turn running in it.
struct AcpSession {
    headless: Headless,
    /// The task of the running turn, and whether the client cancelled it.
    turn: Mutex<Turn>,
}

#[derive(Default)]
struct Turn {
    /// Counts the session's turns (tool call ids are unique per turn).
    number: u64,
    task: Option<String>,
    cancelled: bool,
}

/// The agent's state across the connection.
#[derive(Default)]
struct AcpAgent {
    client_writes: Mutex<bool>,
    sessions: Mutex<HashMap<String, Arc<AcpSession>>>,
}

/// A session update notification.
pub(crate) fn update(session_id: &SessionId, update: ToolCallUpdate) -> SessionNotification {
    SessionNotification::new(session_id.clone(), SessionUpdate::ToolCallUpdate(update))
}

fn acp_error(e: impl std::fmt::Display) -> agent_client_protocol::Error {
    agent_client_protocol::Error::invalid_params().data(serde_json::Value::String(
        crate::secrets::redact(&e.to_string()),
    ))
}

impl AcpAgent {
    fn initialize(&self, req: InitializeRequest) -> InitializeResponse {
        *self.client_writes.lock() = req.client_capabilities.fs.write_text_file;
        InitializeResponse::new(agent_client_protocol::schema::ProtocolVersion::V1)
            .agent_capabilities(
                AgentCapabilities::new()
                    .prompt_capabilities(PromptCapabilities::new().embedded_context(true)),
            )
            .agent_info(Implementation::new(
                "infinity-matrix",
                env!("CARGO_PKG_VERSION"),
            ))
    }

    /// Starts a workspace session on the request's cwd.
    fn new_session(
        &self,
        req: NewSessionRequest,
        connection: &agent_client_protocol::v1::ConnectionTo<Client>,
    ) -> Result<(SessionId, Vec<AvailableCommand>), agent_client_protocol::Error> {
        let id = SessionId::new(format!(
            "im-{}-{}",
            std::process::id(),
            self.sessions.lock().len() + 1
        ));
        let host = Arc::new(AcpHost {
            connection: connection.clone(),
            session_id: id.clone(),
            client_writes: *self.client_writes.lock(),
            session: OnceLock::new(),
        });
        let headless = Session::start_headless(Some(&req.cwd), FrontEnd::Acp, host.clone())
            .map_err(acp_error)?;
        let session = headless.session.clone();
        let _ = host.session.set(Arc::downgrade(&session));
        let commands = session
            .agents()
            .into_iter()
            .map(|a| {
                AvailableCommand::new(a.name, a.description).input(
                    AvailableCommandInput::Unstructured(UnstructuredCommandInput::new(
                        "what to ask or change (attach files or a selection)",
                    )),
                )
            })
            .collect();
        self.sessions.lock().insert(
            id.to_string(),
            Arc::new(AcpSession {
                turn: Mutex::new(Turn::default()),
                headless,
            }),
        );
        Ok((id, commands))
    }

    fn session(&self, id: &SessionId) -> Result<Arc<AcpSession>, agent_client_protocol::Error> {
        self.sessions
            .lock()
            .get(&id.to_string())
            .cloned()
            .ok_or_else(|| acp_error(format!("no session {id}")))
    }

    fn cancel(&self, note: CancelNotification) {
        let Ok(s) = self.session(&note.session_id) else {
            return;
        };
        let task = {
            let mut turn = s.turn.lock();
            turn.cancelled = true;
            turn.task.clone()
        };
        if let Some(task) = task {
            let _ = s.headless.session.cancel(&task);
        }
    }
}

/// `infinity-matrix acp`: serves the client on stdin/stdout until it goes.
pub fn run() -> Result<()> {
    let runtime = crate::process::server_runtime()?;
    let agent = Arc::new(AcpAgent::default());
    let result = runtime.block_on({
        let agent = agent.clone();
        async move {
            let (a1, a2, a3, a4) = (agent.clone(), agent.clone(), agent.clone(), agent.clone());
            let transport = ByteStreams::new(
                tokio::io::stdout().compat_write(),
                tokio::io::stdin().compat(),
            );
            Agent
                .v1()
                .name("infinity-matrix")
                .on_receive_request(
                    async move |req: InitializeRequest, responder, _cx| {
                        responder.respond(a1.initialize(req))
                    },
                    agent_client_protocol::on_receive_request!(),
                )
                .on_receive_request(
                    async move |req: NewSessionRequest, responder, cx| match a2
                        .new_session(req, &cx)
                    {
                        Ok((id, commands)) => {
                            responder.respond(NewSessionResponse::new(id.clone()))?;
                            cx.send_notification(SessionNotification::new(
                                id,
                                SessionUpdate::AvailableCommandsUpdate(
                                    AvailableCommandsUpdate::new(commands),
                                ),
                            ))
                        }
                        Err(e) => responder.respond_with_error(e),
                    },
                    agent_client_protocol::on_receive_request!(),
                )
                .on_receive_request(
                    async move |req: PromptRequest, responder, cx| {
                        let session = match a3.session(&req.session_id) {
                            Ok(s) => s,
                            Err(e) => return responder.respond_with_error(e),
                        };
                        // The turn runs outside the dispatch loop: cancels, permission answers
                        // and file writes keep flowing while it does.
                        let connection = cx.clone();
                        cx.spawn(async move {
                            match prompt::run_turn(&session, &connection, req).await {
                                Ok(response) => responder.respond(response),
                                Err(e) => responder.respond_with_error(e),
                            }
                        })
                    },
                    agent_client_protocol::on_receive_request!(),
                )
                .on_receive_notification(
                    async move |note: CancelNotification, _cx| {
                        a4.cancel(note);
                        Ok(())
                    },
                    agent_client_protocol::on_receive_notification!(),
                )
                .connect_to(transport)
                .await
        }
    });
    let sessions: Vec<Arc<AcpSession>> = agent.sessions.lock().drain().map(|(_, s)| s).collect();
    runtime.block_on(async {
        for s in sessions {
            s.headless.session.shutdown(Duration::from_secs(2)).await;
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    result.map_err(|e| anyhow::anyhow!("acp connection: {e}"))
}
