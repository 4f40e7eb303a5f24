//! The `LanguageServer` implementation: translates LSP messages to engine calls.
//!
//! Ordering: tower-lsp-server runs up to four handlers at once, so every handler does its
//! state work (applying an edit, taking a snapshot) synchronously before its first `.await`.
//! Work that takes time (parsing, indexing) runs in `spawn_blocking`, tagged with the
//! document version it saw.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use super::convert;
use super::ext::{self, ContextParams, ContextResult, InitializationOptions};
use super::host::{HostCapabilities, LspHost, task_of_token};
use crate::agents::{
    AgentDef, Orchestrator, OrchestratorConfig, PromptRequest, TaskSpec, prepare_task,
};
use crate::audit::{AuditLog, AuditQuery, audit_dir, database_file_in};
use crate::config::{Config, ConfigSources, Trigger};
use crate::context::{ContextRequest, DEFAULT_BUDGET_TOKENS, DiagnosticInput};
use crate::documents::{DocSnapshot, PendingSnapshot, PositionEncoding, TextChange};
use crate::engine::{DocumentSymbolInfo, Engine, EngineError, uri_to_path};
use crate::index::IndexConfig;
use crate::metrics::{Access, Metrics};
use crate::providers::{SecretStore, redact};

/// How long after didOpen the background parse starts.
const OPEN_PARSE_DELAY: Duration = Duration::from_millis(50);

/// How long after the last keystroke an open document is re-indexed.
const REINDEX_DEBOUNCE: Duration = Duration::from_millis(300);

/// What the client told us at initialize.
#[derive(Default)]
struct ClientInfo {
    work_done_progress: bool,
    watch_dynamic_registration: bool,
    configuration: bool,
    document_changes: bool,
}

/// Builds a task spec for an agent on a document URI (for background triggers).
type PrepareForUri = Arc<dyn Fn(&AgentDef, &str) -> Option<TaskSpec> + Send + Sync>;

/// How often the configuration files are checked for changes (hot reload).
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// Everything the server holds, shared with its background tasks.
pub struct Shared {
    client: Client,
    engine: Arc<Engine>,
    info: Mutex<ClientInfo>,
    /// Per-URI generation for debounced re-indexing.
    edit_generation: Arc<Mutex<HashMap<String, u64>>>,
    shutting_down: AtomicBool,
    progress_ids: AtomicU64,
    orch: Arc<OnceLock<Orchestrator>>,
    host: OnceLock<Arc<LspHost>>,
    audit: OnceLock<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
    secrets: Arc<SecretStore>,
    sources: Mutex<ConfigSources>,
    /// Settings from initializationOptions.config.
    client_config: Mutex<Option<Config>>,
    /// The latest `infinityMatrix` section from workspace/configuration (replaced on each pull).
    settings_config: Mutex<Option<Config>>,
    /// The running Prometheus endpoint: its `listen`, its token, and what stops it.
    metrics_server: Mutex<Option<(String, Access, tokio_util::sync::CancellationToken)>>,
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
pub async fn run_stdio(engine: Arc<Engine>) {
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
        let backend = Backend::new(client, engine);
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
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(o) = self.orch.get() {
            o.shutdown(END_OF_SESSION_CLEANUP / 2).await;
        }
        if let Some(audit) = self.audit.get().cloned() {
            let _ = tokio::task::spawn_blocking(move || audit.flush()).await;
        }
    }
}

/// The `LanguageServer`: a handle on the shared state (background tasks hold the same `Arc`).
pub struct Backend {
    s: Arc<Shared>,
}

impl std::ops::Deref for Backend {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.s
    }
}

fn invalid_params(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.into().into(),
        data: None,
    }
}

fn engine_error(e: EngineError) -> Error {
    invalid_params(e.to_string())
}

impl Backend {
    pub fn new(client: Client, engine: Arc<Engine>) -> Backend {
        let shared = Shared {
            client,
            engine,
            info: Mutex::new(ClientInfo::default()),
            edit_generation: Arc::new(Mutex::new(HashMap::new())),
            shutting_down: AtomicBool::new(false),
            progress_ids: AtomicU64::new(1),
            orch: Arc::new(OnceLock::new()),
            host: OnceLock::new(),
            audit: OnceLock::new(),
            metrics: Arc::new(Metrics::new()),
            secrets: Arc::new(SecretStore::new()),
            sources: Mutex::new(ConfigSources::default()),
            client_config: Mutex::new(None),
            settings_config: Mutex::new(None),
            metrics_server: Mutex::new(None),
        };
        Backend {
            s: Arc::new(shared),
        }
    }
}

impl Shared {
    fn orch(&self) -> Result<&Orchestrator> {
        self.orch.get().ok_or_else(|| Error {
            code: ErrorCode::ServerError(-32002),
            message: "server not initialized".into(),
            data: None,
        })
    }

    /// Loads configuration from every source; on error keeps the previous one and tells the user.
    async fn reload_config(&self, announce: bool) {
        let sources = self.sources.lock().clone();
        let client = self.client_settings();
        match crate::config::load(&sources, client.as_ref()) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                    let message = format!("Infinity Matrix: {w}");
                    self.client
                        .log_message(MessageType::WARNING, message.clone())
                        .await;
                    self.client
                        .show_message(MessageType::WARNING, message)
                        .await;
                }
                if let Some(o) = self.orch.get() {
                    o.reconfigure(OrchestratorConfig {
                        config: loaded.config.clone(),
                        workspace_roots: self.engine.roots(),
                    });
                }
                if let Some(level) = &loaded.config.log_level
                    && let Err(e) = crate::telemetry::set_level(level)
                {
                    self.client
                        .show_message(MessageType::WARNING, format!("Infinity Matrix: {e}"))
                        .await;
                }
                self.apply_metrics(&loaded.config.metrics).await;
                if let Some(h) = self.host.get() {
                    h.status_changed();
                }
                if announce {
                    self.client
                        .log_message(MessageType::INFO, "configuration reloaded")
                        .await;
                }
            }
            Err(e) => {
                let message = format!(
                    "Infinity Matrix configuration error, keeping the previous configuration: {}",
                    redact(&e.to_string())
                );
                tracing::error!("{message}");
                self.client.show_message(MessageType::ERROR, message).await;
            }
        }
    }

    /// Starts, keeps, re-keys or stops the Prometheus endpoint. A setting that cannot be used
    /// (token file unreadable, port taken, ...) turns metrics off with a warning.
    async fn apply_metrics(&self, config: &crate::config::MetricsConfig) {
        let settings = match crate::metrics::endpoint_settings(config) {
            Ok(settings) => settings,
            Err(e) => {
                self.stop_metrics();
                self.warn_metrics_off(&e).await;
                return;
            }
        };
        let Some(settings) = settings else {
            self.stop_metrics();
            return;
        };
        if let Some((listen, access, _)) = self.metrics_server.lock().as_ref()
            && *listen == settings.listen
        {
            access.set_token(settings.token);
            return;
        }
        self.stop_metrics();
        let access = Access::new(settings.token);
        let token = tokio_util::sync::CancellationToken::new();
        match crate::metrics::serve_prometheus_with(
            self.metrics.clone(),
            &settings.listen,
            access.clone(),
            token.clone(),
        )
        .await
        {
            Ok(addr) => {
                tracing::info!("metrics at http://{addr}/metrics");
                *self.metrics_server.lock() = Some((settings.listen, access, token));
            }
            Err(e) => self.warn_metrics_off(&e).await,
        }
    }

    fn stop_metrics(&self) {
        if let Some((_, _, token)) = self.metrics_server.lock().take() {
            token.cancel();
        }
    }

    /// Tells the user (window/showMessage, window/logMessage and stderr) that metrics are off.
    async fn warn_metrics_off(&self, e: &crate::metrics::MetricsError) {
        let message = format!(
            "Infinity Matrix: {}: {}; metrics are off",
            e.key(),
            redact(&e.to_string())
        );
        tracing::warn!("{message}");
        self.client
            .log_message(MessageType::WARNING, message.clone())
            .await;
        self.client
            .show_message(MessageType::WARNING, message)
            .await;
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
        match crate::config::parse_client_settings(&value) {
            Ok(cfg) => *self.settings_config.lock() = Some(cfg),
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

    /// initializationOptions.config with the latest workspace/configuration settings over it.
    fn client_settings(&self) -> Option<Config> {
        let init = self.client_config.lock().clone();
        let settings = self.settings_config.lock().clone();
        match (init, settings) {
            (Some(mut base), Some(over)) => {
                crate::config::overlay(&mut base, over);
                Some(base)
            }
            (base, over) => over.or(base),
        }
    }

    /// Watches the configuration files' modification times.
    /// Opens the audit log, creates the task host and the orchestrator (at initialize).
    fn start_agents(&self) {
        let roots = self.engine.roots();
        let root = roots.first().cloned();
        *self.sources.lock() = ConfigSources::for_root(root.as_deref());
        let loaded = crate::config::load(
            &self.sources.lock().clone(),
            self.client_config.lock().clone().as_ref(),
        );
        let config = match loaded {
            Ok(l) => l.config,
            Err(e) => {
                tracing::error!("{}", redact(&e.to_string()));
                Config::default()
            }
        };
        let db = database_file_in(&audit_dir(), root.as_deref());
        match AuditLog::open(&db, config.audit.store_prompts) {
            Ok(log) => {
                log.set_redactor(redact);
                match log.recover_interrupted() {
                    Ok(n) if n > 0 => tracing::warn!(
                        "{n} tasks left running by an earlier server were marked failed (interrupted)"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!("audit recovery failed: {e}"),
                }
                if let Err(e) = log.apply_retention(config.audit.retention_days) {
                    tracing::warn!("audit retention failed: {e}");
                }
                let _ = self.audit.set(Arc::new(log));
            }
            Err(e) => tracing::error!(
                "audit log {} could not be opened: {e}; tasks run without an audit trail",
                db.display()
            ),
        }
        let caps = {
            let info = self.info.lock();
            HostCapabilities {
                document_changes: info.document_changes,
                work_done_progress: info.work_done_progress,
            }
        };
        let host = LspHost::new(self.client.clone(), caps, self.orch.clone());
        let orch = Orchestrator::new(
            OrchestratorConfig {
                config,
                workspace_roots: roots,
            },
            host.clone(),
            self.audit.get().cloned(),
            self.metrics.clone(),
            self.secrets.clone(),
        );
        let _ = self.orch.set(orch);
        host.status_changed();
        let _ = self.host.set(host);
    }

    fn config_stamps(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    }

    fn snapshot_prepare(&self) -> PrepareForUri {
        let engine = self.engine.clone();
        Arc::new(move |agent: &AgentDef, uri: &str| {
            let snap = engine.documents.snapshot(uri)?;
            prepare_task(&engine, agent, &snap, &PromptRequest::default()).ok()
        })
    }

    /// Prepares and submits a task for an agent on a document.
    async fn run_agent(&self, agent_name: &str, uri: &str, req: PromptRequest) -> Result<String> {
        let orch = self.orch()?.clone();
        let agent = orch
            .agent(agent_name)
            .map_err(|e| invalid_params(e.to_string()))?;
        let pending = self.engine.pending_snapshot(uri).map_err(engine_error)?;
        let spec = if pending.is_ready() {
            // Parsed already: capturing the target and the context takes a fraction of a
            // millisecond, less than a hop to the blocking pool and back.
            let snap = pending.resolve();
            prepare_task(&self.engine, &agent, &snap, &req).map_err(engine_error)?
        } else {
            let snap = Shared::resolve(pending).await?;
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || prepare_task(&engine, &agent, &snap, &req))
                .await
                .map_err(|e| Error {
                    code: ErrorCode::InternalError,
                    message: format!("prepare failed: {e}").into(),
                    data: None,
                })?
                .map_err(engine_error)?
        };
        orch.submit(spec).map_err(|e| invalid_params(e.to_string()))
    }

    /// Resolves a snapshot, parsing off the async runtime when a parse is needed.
    async fn resolve(pending: PendingSnapshot) -> Result<DocSnapshot> {
        if pending.is_ready() {
            return Ok(pending.resolve());
        }
        tokio::task::spawn_blocking(move || pending.resolve())
            .await
            .map_err(|e| Error {
                code: ErrorCode::InternalError,
                message: format!("parse task failed: {e}").into(),
                data: None,
            })
    }

    fn log_to_client(&self, typ: MessageType, message: String) {
        let client = self.client.clone();
        tokio::spawn(async move { client.log_message(typ, message).await });
    }

    /// Parses and re-indexes a document in the background once edits pause.
    fn schedule_reindex(&self, uri: String, delay: Duration) {
        let generation = {
            let mut map = self.edit_generation.lock();
            let g = map.entry(uri.clone()).or_insert(0);
            *g += 1;
            *g
        };
        let engine = self.engine.clone();
        let generations = self.edit_generation.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if generations.lock().get(&uri) != Some(&generation) {
                return; // a newer edit rescheduled it
            }
            let Ok(pending) = engine.pending_snapshot(&uri) else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                let snap = pending.resolve();
                engine.reindex_open_document(&snap);
            })
            .await;
            crate::process::release_memory_when_idle();
        });
    }

    /// The initial workspace walk, with work-done progress when the client supports it.
    async fn index_workspace(&self) {
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
        let engine = self.engine.clone();
        let started = std::time::Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            engine.index_workspace(&|p| {
                let _ = tx.send(p.files_indexed);
            })
        });
        while let Some(n) = rx.recv().await {
            if let Some(p) = &progress {
                p.report(format!("{n} files")).await;
            }
        }
        let result = job.await;
        let (files, symbols) = (
            self.engine.index.file_count(),
            self.engine.index.symbol_count(),
        );
        let message = match result {
            Ok(_) => format!(
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

impl Backend {
    /// Polls the configuration files and reloads when one changes (hot reload).
    fn spawn_config_poll(&self) {
        let shared = self.s.clone();
        tokio::spawn(async move {
            let mut stamps = Shared::config_stamps(&shared.sources.lock().files());
            loop {
                tokio::time::sleep(CONFIG_POLL).await;
                if shared.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                let now = Shared::config_stamps(&shared.sources.lock().files());
                if now != stamps {
                    stamps = now;
                    shared.reload_config(true).await;
                }
            }
        });
    }

    /// `infinityMatrix/context`.
    pub async fn context(&self, params: ContextParams) -> Result<ContextResult> {
        let uri = params.text_document.uri.as_str().to_string();
        let pending = self.engine.pending_snapshot(&uri).map_err(engine_error)?;
        let snap = Shared::resolve(pending).await?;
        let req = ContextRequest {
            position: convert::position(params.position),
            range: params.range.map(convert::range),
            budget_tokens: params
                .budget_tokens
                .map_or(DEFAULT_BUDGET_TOKENS, |b| b as usize),
            diagnostics: params
                .diagnostics
                .unwrap_or_default()
                .iter()
                .map(|d| DiagnosticInput {
                    range: convert::range(d.range),
                    message: d.message.clone(),
                    severity: convert::severity(d),
                    source: d.source.clone(),
                })
                .collect(),
            encoding: self.engine.encoding(),
            exclude: None,
            enclosing_percent: self
                .orch()
                .map(|o| o.config().defaults.context_enclosing_percent)
                .unwrap_or(crate::context::DEFAULT_ENCLOSING_PERCENT),
        };
        let engine = self.engine.clone();
        let snapshot = tokio::task::spawn_blocking(move || engine.context(&snap, &req))
            .await
            .map_err(|e| Error {
                code: ErrorCode::InternalError,
                message: format!("context task failed: {e}").into(),
                data: None,
            })?
            .map_err(engine_error)?;
        Ok(ContextResult {
            items: snapshot
                .items
                .into_iter()
                .map(|i| ext::ContextItem {
                    kind: serde_json::to_value(i.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    uri: i.uri,
                    range: convert::to_lsp_range(i.range),
                    text: i.text,
                    tokens: i.tokens as u32,
                    reason: i.reason,
                    elided: i.elided.iter().map(|&(a, b)| [a, b]).collect(),
                })
                .collect(),
            total_tokens: snapshot.total_tokens as u32,
            budget_tokens: snapshot.budget_tokens as u32,
            rendered: snapshot.rendered,
            index_complete: snapshot.index_complete,
        })
    }

    /// `infinityMatrix/agents`.
    pub async fn agents_request(&self) -> Result<Value> {
        let orch = self.orch()?;
        Ok(
            serde_json::json!({ "agents": orch.agents(), "defaultAgent": orch.config().defaults.agent }),
        )
    }

    /// `infinityMatrix/tasks`.
    pub async fn tasks_request(&self) -> Result<Value> {
        Ok(serde_json::json!({ "tasks": self.orch()?.tasks() }))
    }

    /// `infinityMatrix/task`.
    pub async fn task_request(&self, params: ext::TaskParams) -> Result<Value> {
        let detail = self
            .orch()?
            .task(&params.task_id)
            .ok_or_else(|| invalid_params(format!("unknown task {:?}", params.task_id)))?;
        serde_json::to_value(detail).map_err(|e| invalid_params(e.to_string()))
    }

    /// `infinityMatrix/audit`.
    pub async fn audit_request(&self, params: ext::AuditParams) -> Result<Value> {
        let audit = self.audit.get().cloned().ok_or_else(|| invalid_params("the audit log is not open (no workspace root, or it failed to open: see the server log)"))?;
        let query = AuditQuery {
            since: params.since,
            task_id: params.task_id,
            agent: params.agent,
            kind: params.kind.as_deref().and_then(|k| k.parse().ok()),
            limit: params.limit,
        };
        let entries = tokio::task::spawn_blocking(move || {
            let _ = audit.flush();
            audit.query(&query)
        })
        .await
        .map_err(|e| invalid_params(e.to_string()))?
        .map_err(|e| invalid_params(e.to_string()))?;
        Ok(serde_json::json!({ "entries": entries }))
    }

    /// `infinityMatrix/metrics`.
    pub async fn metrics_request(&self) -> Result<Value> {
        serde_json::to_value(self.metrics.snapshot()).map_err(|e| invalid_params(e.to_string()))
    }

    /// `infinityMatrix/setSecret`: a key from the client's secret storage (never logged).
    pub async fn set_secret(&self, params: ext::SetSecretParams) -> Result<Value> {
        if params.name.trim().is_empty() {
            return Err(invalid_params("secret name must not be empty"));
        }
        self.secrets.set(&params.name, &params.value);
        if let Some(o) = self.orch.get() {
            // Providers resolve keys per call; reconfigure so cached tokens are dropped.
            o.reconfigure(OrchestratorConfig {
                config: (*o.config()).clone(),
                workspace_roots: self.engine.roots(),
            });
        }
        Ok(Value::Null)
    }

    /// `infinityMatrix/diagnosticsChanged` (notification): drives onDiagnostics agents.
    pub async fn diagnostics_changed(&self, params: ext::DiagnosticsChangedParams) {
        let Ok(orch) = self.orch() else { return };
        if params.diagnostics.is_empty() {
            return;
        }
        let uri = params.text_document.uri.as_str().to_string();
        if !self.engine.is_workspace_file(&uri) {
            return;
        }
        let prepare = self.snapshot_prepare();
        let diags: Vec<DiagnosticInput> = params.diagnostics.iter().map(diagnostic_input).collect();
        let uri2 = uri.clone();
        orch.fire_trigger(
            Trigger::OnDiagnostics,
            &uri,
            Arc::new(move |agent: &AgentDef| {
                let mut spec = prepare(agent, &uri2)?;
                spec.diagnostics = diags.clone();
                Some(spec)
            }),
        );
    }

    /// `window/workDoneProgress/cancel` (notification): cancelling a task's progress cancels the task.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if let (Some(id), Ok(orch)) = (task_of_token(&params.token), self.orch()) {
            let _ = orch.cancel(&id);
        }
    }

    async fn execute_agent_command(&self, command: &str, arg: Value) -> Result<ext::CommandResult> {
        fn parse<T: serde::de::DeserializeOwned>(command: &str, arg: Value) -> Result<T> {
            serde_json::from_value(arg)
                .map_err(|e| invalid_params(format!("bad arguments for {command}: {e}")))
        }
        match command {
            ext::EXECUTE_PROMPT => {
                let a: ext::ExecutePromptArgs = parse(command, arg)?;
                let orch = self.orch()?;
                let agent = a
                    .agent
                    .unwrap_or_else(|| orch.config().defaults.agent.clone());
                let req = prompt_request(a.prompt, a.position, a.range, a.diagnostics);
                let id = self
                    .run_agent(&agent, a.text_document.uri.as_str(), req)
                    .await?;
                Ok(ext::CommandResult { task_id: Some(id) })
            }
            ext::START_AGENT => {
                let a: ext::StartAgentArgs = parse(command, arg)?;
                let orch = self.orch()?;
                let background = orch
                    .enable(&a.agent)
                    .map_err(|e| invalid_params(e.to_string()))?;
                match a.text_document {
                    Some(doc) => {
                        let req = prompt_request(
                            a.prompt.unwrap_or_default(),
                            a.position,
                            a.range,
                            a.diagnostics,
                        );
                        let id = self.run_agent(&a.agent, doc.uri.as_str(), req).await?;
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
                self.orch()?
                    .stop_agent(&a.agent)
                    .map_err(|e| invalid_params(e.to_string()))?;
                Ok(ext::CommandResult { task_id: None })
            }
            ext::CANCEL_TASK => {
                let a: ext::CancelTaskArgs = parse(command, arg)?;
                self.orch()?
                    .cancel(&a.task_id)
                    .map_err(|e| invalid_params(e.to_string()))?;
                Ok(ext::CommandResult {
                    task_id: Some(a.task_id),
                })
            }
            ext::APPROVE => {
                let a: ext::ApproveArgs = parse(command, arg)?;
                self.orch()?
                    .approve(&a.task_id, a.accept)
                    .map_err(|e| invalid_params(e.to_string()))?;
                Ok(ext::CommandResult {
                    task_id: Some(a.task_id),
                })
            }
            other => Err(invalid_params(format!(
                "unknown command {other:?}; this server provides: {}",
                ext::COMMANDS.join(", ")
            ))),
        }
    }
}

/// The engine's request from command arguments (LSP types → plain types).
fn prompt_request(
    prompt: String,
    position: Option<Position>,
    range: Option<Range>,
    diagnostics: Option<Vec<Diagnostic>>,
) -> PromptRequest {
    PromptRequest {
        prompt,
        position: position.map(convert::position),
        range: range.map(convert::range),
        diagnostics: diagnostics
            .unwrap_or_default()
            .iter()
            .map(diagnostic_input)
            .collect(),
    }
}

fn diagnostic_input(d: &Diagnostic) -> DiagnosticInput {
    DiagnosticInput {
        range: convert::range(d.range),
        message: d.message.clone(),
        severity: convert::severity(d),
        source: d.source.clone(),
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

fn to_document_symbol(s: DocumentSymbolInfo) -> DocumentSymbol {
    #[allow(deprecated)]
    DocumentSymbol {
        name: if s.name.is_empty() {
            "<anonymous>".into()
        } else {
            s.name
        },
        detail: Some(s.detail),
        kind: convert::symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range: convert::to_lsp_range(s.range),
        selection_range: convert::to_lsp_range(s.selection_range),
        children: Some(s.children.into_iter().map(to_document_symbol).collect()),
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
        self.engine.set_encoding(encoding);
        self.engine.set_roots(workspace_roots(&params));
        // Until the first walk ends, context results say the index is incomplete.
        self.engine.begin_indexing();
        if let Some(opts) = params.initialization_options.as_ref() {
            match serde_json::from_value::<InitializationOptions>(opts.clone()) {
                Ok(o) => {
                    if let Some(cfg) = &o.config {
                        match crate::config::parse_client_settings(cfg) {
                            Ok(c) => *self.client_config.lock() = Some(c),
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
                    if let Some(n) = o.tree_cache_size {
                        self.engine.documents.set_tree_cache_capacity(n);
                    }
                    if let Some(n) = o.max_parse_bytes {
                        self.engine.documents.set_parse_limit(n);
                    }
                    self.engine.set_index_config(config);
                }
                Err(e) => tracing::warn!("ignoring invalid initializationOptions: {e}"),
            }
        }
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
        self.start_agents();
        self.register_watcher().await;
        self.fetch_client_settings().await;
        self.reload_config(false).await;
        self.spawn_config_poll();
        self.index_workspace().await;
    }

    async fn shutdown(&self) -> Result<()> {
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(o) = self.orch.get() {
            // Queued and running tasks are cancelled and recorded before we answer.
            o.shutdown(Duration::from_secs(3)).await;
        }
        self.stop_metrics();
        if let Some(a) = self.audit.get() {
            let _ = a.flush();
        }
        Ok(())
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let section = params.settings.get(ext::CONFIG_SECTION).cloned();
        match section {
            Some(v) => self.set_client_settings(Some(v)).await,
            None => self.fetch_client_settings().await,
        }
        self.reload_config(true).await;
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let uri = doc.uri.as_str().to_string();
        self.engine.open_document(
            &uri,
            uri_to_path(&uri),
            &doc.language_id,
            doc.version,
            &doc.text,
        );
        // Parse and index off the request path, a moment later: requests that follow at once
        // (not needing this tree) are not slowed by it; ones that need the tree parse on demand.
        self.schedule_reindex(uri, OPEN_PARSE_DELAY);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        // Applied synchronously, before any await: later messages see this edit.
        let uri = params.text_document.uri.as_str().to_string();
        let changes: Vec<TextChange> = params
            .content_changes
            .into_iter()
            .map(|c| TextChange {
                range: c.range.map(convert::range),
                text: c.text,
            })
            .collect();
        match self
            .engine
            .change_document(&uri, params.text_document.version, &changes)
        {
            Ok(()) => self.schedule_reindex(uri, REINDEX_DEBOUNCE),
            Err(e) => {
                tracing::warn!("{e}");
                self.log_to_client(MessageType::WARNING, e.to_string());
            }
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let uri = params.text_document.uri.as_str().to_string();
        if let Ok(orch) = self.orch()
            && self.engine.is_workspace_file(&uri)
        {
            let prepare = self.snapshot_prepare();
            let target = uri.clone();
            orch.fire_trigger(
                Trigger::OnSave,
                &uri,
                Arc::new(move |agent: &AgentDef| prepare(agent, &target)),
            );
        }
        if self.engine.documents.get(&uri).is_some() {
            self.schedule_reindex(uri, Duration::ZERO);
        } else if let Some(path) = uri_to_path(&uri) {
            let engine = self.engine.clone();
            let _ = tokio::task::spawn_blocking(move || engine.file_changed_on_disk(&path)).await;
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri.as_str().to_string();
        self.engine.close_document(&uri);
        self.edit_generation.lock().remove(&uri);
        // The file on disk is the truth again.
        if let Some(path) = uri_to_path(&uri) {
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.file_changed_on_disk(&path));
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let engine = self.engine.clone();
        let events: Vec<(String, FileChangeType)> = params
            .changes
            .into_iter()
            .map(|c| (c.uri.as_str().to_string(), c.typ))
            .collect();
        let config_files = self.sources.lock().files();
        if events
            .iter()
            .any(|(uri, _)| uri_to_path(uri).is_some_and(|p| config_files.contains(&p)))
        {
            self.reload_config(true).await;
        }
        let _ = tokio::task::spawn_blocking(move || {
            for (uri, typ) in events {
                let Some(path) = uri_to_path(&uri) else {
                    continue;
                };
                if engine.documents.get(&uri).is_some() {
                    continue; // the open buffer wins over the disk
                }
                if typ == FileChangeType::DELETED {
                    engine.file_deleted(&path);
                } else {
                    engine.file_changed_on_disk(&path);
                }
            }
        })
        .await;
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        let uri = params.text_document.uri.as_str().to_string();
        let pending = self.engine.pending_snapshot(&uri).map_err(engine_error)?;
        let snap = Shared::resolve(pending).await?;
        let symbols = self
            .engine
            .document_symbols(&snap)
            .into_iter()
            .map(to_document_symbol)
            .collect();
        Ok(Some(DocumentSymbolResponse::Nested(symbols)))
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        let engine = self.engine.clone();
        let hits =
            tokio::task::spawn_blocking(move || engine.workspace_symbols(&params.query, 256))
                .await
                .map_err(|e| Error {
                    code: ErrorCode::InternalError,
                    message: format!("search failed: {e}").into(),
                    data: None,
                })?;
        #[allow(deprecated)]
        let symbols = hits
            .into_iter()
            .filter_map(|h| {
                let uri: Uri = crate::engine::path_to_uri(&h.path).parse().ok()?;
                Some(SymbolInformation {
                    name: h.name,
                    kind: convert::symbol_kind(h.kind),
                    tags: None,
                    deprecated: None,
                    location: Location {
                        uri,
                        range: convert::to_lsp_range(h.range),
                    },
                    container_name: h.container,
                })
            })
            .collect();
        Ok(Some(WorkspaceSymbolResponse::Flat(symbols)))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let Ok(orch) = self.orch() else {
            return Ok(Some(Vec::new()));
        };
        let has_selection = params.range.start != params.range.end;
        let diagnostics = params.context.diagnostics.clone();
        let mut actions = Vec::new();
        for agent in orch.agents() {
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
            let args = serde_json::json!({
                "agent": agent.name,
                "textDocument": { "uri": params.text_document.uri },
                "range": params.range,
                "diagnostics": if for_diagnostics { serde_json::to_value(&diagnostics).unwrap_or_default() } else { Value::Array(Vec::new()) },
            });
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
                    arguments: Some(vec![args]),
                }),
                ..Default::default()
            }));
        }
        Ok(Some(actions))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        // eglot sends `"arguments": null` for commands without arguments.
        let arg = params.arguments.into_iter().next().unwrap_or(Value::Null);
        let result = self.execute_agent_command(&params.command, arg).await?;
        Ok(Some(serde_json::to_value(result).unwrap_or_default()))
    }
}
