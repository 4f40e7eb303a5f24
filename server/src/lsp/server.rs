//! The `LanguageServer` implementation: translates LSP messages to session calls.
//!
//! Ordering: tower-lsp-server runs up to four handlers at once, so every handler does its
//! state work (applying an edit, taking a snapshot) synchronously before its first `.await`.
//! Work that takes time (parsing, indexing) runs in `spawn_blocking`, tagged with the
//! document version it saw. The session starts at `initialized` (off the initialize path);
//! requests before it get "server not initialized".

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use super::ext::{self, InitializationOptions};
use super::host::{HostCapabilities, LspHost};
use crate::agents::TaskHost;
use crate::documents::PositionEncoding;
use crate::engine::uri_to_path;
use crate::index::IndexConfig;
use crate::secrets::redact;
use crate::session::{ClientSettings, OnConfigError, Session, SessionError};

/// What the client told us at initialize.
#[derive(Default)]
struct ClientInfo {
    work_done_progress: bool,
    /// `experimental.infinityMatrix.taskEvents`: the client shows task events itself.
    task_events: bool,
    /// `window.showDocument.support`.
    show_document: bool,
    /// `experimental.infinityMatrix.approvalPrompt`: the client prompts for approvals itself.
    approval_prompt: bool,
    watch_dynamic_registration: bool,
    configuration: bool,
    document_changes: bool,
}

/// Everything the server holds, shared with the end of the session.
pub struct Shared {
    client: Client,
    info: Mutex<ClientInfo>,
    /// The roots and client settings read at initialize, taken when the session starts.
    setup: Mutex<Option<(Vec<PathBuf>, ClientSettings)>>,
    session: OnceLock<Arc<Session>>,
    /// The session as the task host's notification pump sees it (for agent status).
    session_slot: Arc<OnceLock<Weak<Session>>>,
    host: OnceLock<Arc<LspHost>>,
    progress_ids: AtomicU64,
}

/// After the end of input, how long the server may take to finish (and answer) the requests
/// in hand on its own.
const END_OF_INPUT_GRACE: Duration = Duration::from_millis(250);
/// Then how long cancelling and recording the running tasks and flushing the audit log may take.
const END_OF_SESSION_CLEANUP: Duration = Duration::from_millis(300);
/// Then how long the stdout writer may take to write what is queued.
const WRITER_DRAIN: Duration = Duration::from_millis(100);
/// The process ends this long after the end of input (or of the session), whatever still runs.
const EXIT_DEADLINE: Duration = Duration::from_millis(900);

/// Serves LSP on stdin/stdout until the client exits or its input ends. The process never
/// outlives its client: once stdin is closed it ends within [`EXIT_DEADLINE`].
pub async fn run_stdio() {
    use super::transport::{self, Outgoing};
    // Framing is checked before tower-lsp-server sees it (see transport.rs). stdin and stdout
    // each have a thread of their own that blocks on them.
    let (frames_tx, frames_rx) = tokio::sync::mpsc::unbounded_channel();
    let (out_tx, out_rx) = tokio::sync::mpsc::channel(transport::OUTPUT_QUEUE_FRAMES);
    let (input_ended_tx, input_ended) = tokio::sync::oneshot::channel::<()>();
    let writer = std::thread::Builder::new()
        .name("lsp-stdout".into())
        .spawn(move || transport::write_frames(std::io::stdout().lock(), out_rx));
    let errors = out_tx.clone();
    let reader = std::thread::Builder::new()
        .name("lsp-stdin".into())
        .spawn(move || {
            transport::read_frames(std::io::stdin(), frames_tx, errors);
            // The client is gone (or the server stopped reading after `exit`). Armed here, off
            // the runtime, so that nothing the runtime is stuck on can keep the process alive.
            crate::process::exit_after(EXIT_DEADLINE);
            let _ = input_ended_tx.send(());
        });
    let (Ok(writer), Ok(_)) = (writer, reader) else {
        tracing::error!("could not start the stdio threads");
        return;
    };
    let shared: Arc<OnceLock<Arc<Shared>>> = Arc::new(OnceLock::new());
    let slot = shared.clone();
    let (service, socket) = LspService::build(move |client| {
        let backend = Backend::new(client);
        let _ = slot.set(backend.s.clone());
        backend
    })
    .custom_method(ext::CONTEXT_METHOD, Backend::context)
    .custom_method(ext::AGENTS, Backend::agents_request)
    .custom_method(ext::TASKS, Backend::tasks_request)
    .custom_method(ext::TASK, Backend::task_request)
    .custom_method(ext::AUDIT, Backend::audit_request)
    .custom_method(ext::METRICS, Backend::metrics_request)
    .custom_method(ext::SET_SECRET, Backend::set_secret)
    .custom_method(ext::TEST_PROVIDER, Backend::test_provider)
    .custom_method(ext::DIAGNOSTICS_CHANGED, Backend::diagnostics_changed)
    .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
    .finish();
    let server_out = transport::ServerOutput::new(out_tx.clone());
    let serve = Server::new(transport::server_input(frames_rx), server_out, socket).serve(service);
    tokio::pin!(serve);
    tokio::select! {
        () = &mut serve => {}
        _ = input_ended => {
            // tower-lsp-server waits for every handler before it returns, also for one that
            // waits for the client's answer (which will never come now): give them a moment.
            if tokio::time::timeout(END_OF_INPUT_GRACE, &mut serve).await.is_err() {
                tracing::debug!("end of input: requests still running are dropped");
            }
        }
    }
    crate::process::exit_after(EXIT_DEADLINE);
    if let Some(shared) = shared.get()
        && tokio::time::timeout(END_OF_SESSION_CLEANUP, shared.end_of_session())
            .await
            .is_err()
    {
        tracing::debug!("end of session: cleanup cut short");
    }
    // Everything the server wrote is queued by now; the writer stops after it.
    let _ = tokio::time::timeout(WRITER_DRAIN, async {
        let _ = out_tx.send(Outgoing::End).await;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    })
    .await;
}

impl Shared {
    /// The end of the session, also one the client did not shut down (its input ended): tasks
    /// are cancelled and recorded, the audit log flushed. What `shutdown` did already is cheap
    /// to do again.
    async fn end_of_session(&self) {
        if let Some(s) = self.session.get() {
            s.shutdown(END_OF_SESSION_CLEANUP / 2).await;
        }
    }
}

/// The `LanguageServer`: a handle on the shared state.
pub struct Backend {
    s: Arc<Shared>,
}

impl std::ops::Deref for Backend {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.s
    }
}

pub(super) fn invalid_params(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into().into(),
        data: None,
    }
}

/// A session error as the client sees it: failed background work is an internal error,
/// anything else a bad request.
pub(super) fn session_error(e: impl Into<SessionError>) -> Error {
    match e.into() {
        SessionError::Internal(message) => Error {
            code: ErrorCode::InternalError,
            message: message.into(),
            data: None,
        },
        other => invalid_params(other.to_string()),
    }
}

impl Backend {
    pub fn new(client: Client) -> Backend {
        let shared = Shared {
            client,
            info: Mutex::new(ClientInfo::default()),
            setup: Mutex::new(None),
            session: OnceLock::new(),
            session_slot: Arc::new(OnceLock::new()),
            host: OnceLock::new(),
            progress_ids: AtomicU64::new(1),
        };
        Backend {
            s: Arc::new(shared),
        }
    }
}

impl Shared {
    pub(super) fn session(&self) -> Result<&Arc<Session>> {
        self.session.get().ok_or_else(|| Error {
            code: ErrorCode::ServerError(-32002),
            message: "server not initialized".into(),
            data: None,
        })
    }

    /// Fetches the `infinityMatrix` section of workspace/configuration.
    async fn fetch_client_settings(&self) {
        if !self.info.lock().configuration {
            return;
        }
        let items = vec![ConfigurationItem {
            scope_uri: None,
            section: Some(ext::CONFIG_SECTION.into()),
        }];
        if let Ok(values) = self.client.configuration(items).await {
            self.set_client_settings(values.into_iter().next()).await;
        }
    }

    async fn set_client_settings(&self, value: Option<Value>) {
        let Some(value) = value.filter(|v| v.is_object()) else {
            return;
        };
        let Ok(session) = self.session() else { return };
        match crate::config::parse_client_settings(&value) {
            Ok(cfg) => session.set_client_settings(cfg),
            Err(e) => {
                self.client
                    .show_message(
                        MessageType::ERROR,
                        format!("Infinity Matrix settings: {}", redact(&e.to_string())),
                    )
                    .await;
            }
        }
    }

    /// Starts the session with what initialize read: the task host, the engine, the audit
    /// log, the orchestrator (at `initialized`, before its first `.await`).
    fn start_session(&self) {
        let Some((roots, settings)) = self.setup.lock().take() else {
            return;
        };
        let caps = {
            let info = self.info.lock();
            HostCapabilities {
                document_changes: info.document_changes,
                work_done_progress: info.work_done_progress,
                task_events: info.task_events,
                show_document: info.show_document,
                approval_prompt: info.approval_prompt,
            }
        };
        let host = LspHost::new(self.client.clone(), caps, self.session_slot.clone());
        let started = Session::start(roots, settings, OnConfigError::UseDefaults, host.clone());
        // A configuration error falls back to the defaults (UseDefaults): never an Err here.
        if let Ok(started) = started {
            let _ = self.session_slot.set(Arc::downgrade(&started.session));
            let _ = self.session.set(started.session);
            host.status_changed();
        }
        let _ = self.host.set(host);
    }

    pub(super) fn log_to_client(&self, typ: MessageType, message: String) {
        let client = self.client.clone();
        tokio::spawn(async move { client.log_message(typ, message).await });
    }

    /// The initial workspace walk, with work-done progress when the client supports it.
    async fn index_workspace(&self) {
        let Ok(session) = self.session() else { return };
        let token = NumberOrString::String(format!(
            "infinity-matrix/index/{}",
            self.progress_ids.fetch_add(1, Ordering::Relaxed)
        ));
        let progress_supported = self.info.lock().work_done_progress;
        let progress = if progress_supported
            && self
                .client
                .create_work_done_progress(token.clone())
                .await
                .is_ok()
        {
            Some(
                self.client
                    .progress(token, "Indexing workspace")
                    .begin()
                    .await,
            )
        } else {
            None
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let started = std::time::Instant::now();
        let job = session.index_workspace(move |n| {
            let _ = tx.send(n);
        });
        while let Some(n) = rx.recv().await {
            if let Some(p) = &progress {
                p.report(format!("{n} files")).await;
            }
        }
        let message = match job.await {
            Ok((files, symbols)) => format!(
                "indexed {files} files, {symbols} symbols in {:.0?}",
                started.elapsed()
            ),
            Err(e) => format!("indexing failed: {e}"),
        };
        tracing::info!("{message}");
        if let Some(p) = progress {
            p.finish_with_message(message.clone()).await;
        }
        self.client.log_message(MessageType::INFO, message).await;
    }

    async fn register_watcher(&self) {
        if !self.info.lock().watch_dynamic_registration {
            return;
        }
        let options = DidChangeWatchedFilesRegistrationOptions {
            watchers: vec![FileSystemWatcher {
                glob_pattern: GlobPattern::String("**/*".into()),
                kind: None,
            }],
        };
        let registration = Registration {
            id: "infinity-matrix-watch".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(options).ok(),
        };
        if let Err(e) = self.client.register_capability(vec![registration]).await {
            tracing::warn!("file watcher registration failed: {e}");
        }
    }
}

fn workspace_roots(params: &InitializeParams) -> Vec<PathBuf> {
    if let Some(folders) = &params.workspace_folders {
        let roots: Vec<PathBuf> = folders
            .iter()
            .filter_map(|f| uri_to_path(f.uri.as_str()))
            .collect();
        if !roots.is_empty() {
            return roots;
        }
    }
    #[allow(deprecated)]
    if let Some(p) = params
        .root_uri
        .as_ref()
        .and_then(|uri| uri_to_path(uri.as_str()))
    {
        return vec![p];
    }
    #[allow(deprecated)]
    if let Some(path) = &params.root_path {
        return vec![PathBuf::from(path)];
    }
    Vec::new()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let offers_utf8 = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .is_some_and(|encs| encs.contains(&PositionEncodingKind::UTF8));
        let encoding = if offers_utf8 {
            PositionEncoding::Utf8
        } else {
            PositionEncoding::Utf16
        };
        let mut settings = ClientSettings {
            encoding,
            ..ClientSettings::default()
        };
        if let Some(opts) = params.initialization_options.as_ref() {
            match serde_json::from_value::<InitializationOptions>(opts.clone()) {
                Ok(o) => {
                    if let Some(cfg) = &o.config {
                        match crate::config::parse_client_settings(cfg) {
                            Ok(c) => settings.config = Some(c),
                            Err(e) => tracing::error!("{}", redact(&e.to_string())),
                        }
                    }
                    let mut config = IndexConfig::default();
                    if let Some(max) = o.max_file_size_bytes {
                        config.max_file_size = max;
                    }
                    if let Some(dirs) = o.exclude_dirs {
                        config.skip_dirs.extend(dirs);
                    }
                    settings.index = config;
                    settings.tree_cache_size = o.tree_cache_size;
                    settings.max_parse_bytes = o.max_parse_bytes;
                }
                Err(e) => tracing::warn!("ignoring invalid initializationOptions: {e}"),
            }
        }
        *self.setup.lock() = Some((workspace_roots(&params), settings));
        {
            let mut info = self.info.lock();
            info.work_done_progress = params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false);
            let ws = params.capabilities.workspace.as_ref();
            info.watch_dynamic_registration = ws
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false);
            info.configuration = ws.and_then(|w| w.configuration).unwrap_or(false);
            info.show_document = params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|d| d.support);
            let ours = params
                .capabilities
                .experimental
                .as_ref()
                .and_then(|e| e.get("infinityMatrix"));
            let flag = |name: &str| {
                ours.and_then(|e| e.get(name))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false)
            };
            info.task_events = flag("taskEvents");
            info.approval_prompt = flag("approvalPrompt");
            info.document_changes = ws
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.document_changes)
                .unwrap_or(false);
        }
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "infinity-matrix".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                position_encoding: Some(match encoding {
                    PositionEncoding::Utf8 => PositionEncodingKind::UTF8,
                    PositionEncoding::Utf16 => PositionEncodingKind::UTF16,
                }),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                            include_text: Some(false),
                        })),
                        ..Default::default()
                    },
                )),
                document_symbol_provider: Some(OneOf::Left(true)),
                workspace_symbol_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: ext::COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                experimental: Some(serde_json::json!({ "infinityMatrix": { "context": true } })),
                ..Default::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        // Off the initialize path (cold start): opening the audit database and building the
        // providers' HTTP clients take milliseconds.
        self.start_session();
        self.register_watcher().await;
        self.fetch_client_settings().await;
        let Ok(session) = self.session() else { return };
        session.reload_config(false).await;
        session.watch_config();
        // What the last review found, as before the restart.
        session.republish_findings().await;
        self.index_workspace().await;
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(s) = self.session.get() {
            // Queued and running tasks are cancelled and recorded before we answer.
            s.shutdown(Duration::from_secs(3)).await;
        }
        Ok(())
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let section = params.settings.get(ext::CONFIG_SECTION).cloned();
        match section {
            Some(v) => self.set_client_settings(Some(v)).await,
            None => self.fetch_client_settings().await,
        }
        if let Ok(session) = self.session() {
            session.reload_config(true).await;
        }
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        self.open_document(params);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Applied synchronously, before any await: later messages see this edit.
        self.change_document(params);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.save_document(params).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.close_document(params);
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        self.watched_files_changed(params).await;
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.document_symbols(params).await
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        self.workspace_symbols(params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.agent_code_actions(params).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        self.run_command(params).await
    }
}
