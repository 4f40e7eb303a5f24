//! One workspace session: the running engine and agent parts that every front end drives.
//!
//! A `Session` owns the `Engine`, the `Orchestrator`, the `AuditLog` (interrupted tasks
//! recovered and retention applied when it opens), the `Metrics` registry and its endpoint,
//! the `SecretStore` and the configuration sources. Front ends (`lsp`, `cli`) only translate
//! their protocol to these calls and back: no front end builds an engine part or holds a rule
//! of its own (`layering.rs` checks it). The session talks back through the front end's
//! [`TaskHost`]: task events, edits, approvals, and [`Notice`]s for the user.

mod agents;
mod config;
mod disk;
mod edits;
mod endpoint;
mod feed;
mod files;
mod lookup;
mod oneshot;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use self::agents::ContextArgs;
pub use self::disk::{DiskDocument, FilePlace, position_of};
pub use self::edits::{DiskHost, edit_diff, edited_text, write_edit};
pub use self::feed::{AgentRun, FeedReceiver, TaskFeed};
pub use self::files::FileChange;
pub use self::oneshot::{
    ProviderCheck, ReadAuditError, check_providers, context_of_file, load_config, read_audit,
};
pub use self::watch::{Headless, WorkspaceWatcher};
use crate::agents::{
    AgentDef, Orchestrator, OrchestratorConfig, OrchestratorError, StatusSnapshot, TaskDetail,
    TaskInfo,
};
pub use crate::agents::{Notice, PromptRequest, TaskHost};
use crate::audit::{AuditLog, audit_dir, database_file_in};
use crate::config::{Config, ConfigError, ConfigSources};
use crate::documents::PositionEncoding;
use crate::engine::{Engine, EngineError};
use crate::index::IndexConfig;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::secrets::{SecretStore, redact};

/// The front end a session serves; the audit log names it on every task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrontEnd {
    #[default]
    Lsp,
    Cli,
    Mcp,
    Acp,
}

impl FrontEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            FrontEnd::Lsp => "lsp",
            FrontEnd::Cli => "cli",
            FrontEnd::Mcp => "mcp",
            FrontEnd::Acp => "acp",
        }
    }
}

/// What the client says about itself and the workspace when a session starts.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// Which front end serves the client.
    pub front_end: FrontEnd,
    /// Configuration from the client (LSP: `initializationOptions.config`), over the files.
    pub config: Option<Config>,
    /// How the client counts columns.
    pub encoding: PositionEncoding,
    /// What the workspace walk indexes.
    pub index: IndexConfig,
    /// How many documents keep their syntax tree (`treeCacheSize`).
    pub tree_cache_size: Option<usize>,
    /// Documents larger than this are mirrored but never parsed (`maxParseBytes`).
    pub max_parse_bytes: Option<usize>,
}

/// What [`Session::start`] does when the configuration cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConfigError {
    /// Log it and start with the defaults (a language server keeps serving; the next reload
    /// tells the user).
    UseDefaults,
    /// Start nothing and return the error (a command fails).
    Fail,
}

/// A started session and the configuration's warnings at start.
pub struct Started {
    pub session: Arc<Session>,
    pub warnings: Vec<String>,
}

/// Errors of session calls. Front ends word them for their protocol.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Agent(#[from] OrchestratorError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A request that cannot be served as asked (a bad argument, the audit log not open).
    #[error("{0}")]
    Invalid(String),
    /// Background work failed (a parse or search task panicked).
    #[error("{0}")]
    Internal(String),
}

/// How many tasks of earlier sessions the task list keeps (from the audit log).
pub const HISTORY_TASKS: usize = 200;

/// The running parts of one workspace. Thread-safe; shared in an `Arc`.
pub struct Session {
    engine: Arc<Engine>,
    orch: Orchestrator,
    audit: Option<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
    secrets: Arc<SecretStore>,
    host: Arc<dyn TaskHost>,
    /// Every task event, for front ends that wait on tasks.
    feed: TaskFeed,
    config: config::ConfigState,
    endpoint: endpoint::Endpoint,
    reindex: files::Reindex,
    /// Files opened from disk for a request (front ends without an editor), with how many
    /// requests hold each.
    disk_documents: parking_lot::Mutex<std::collections::HashMap<String, usize>>,
    shutting_down: AtomicBool,
}

impl Session {
    /// Starts a session on `roots` (the first one names the workspace configuration file and
    /// the audit database): the engine, the configuration, the audit log (recovery and
    /// retention), the orchestrator. Call it on a tokio runtime; it does not walk the
    /// workspace ([`Session::index_workspace`]) or load the client's pulled settings.
    pub fn start(
        roots: Vec<PathBuf>,
        client: ClientSettings,
        on_error: OnConfigError,
        host: Arc<dyn TaskHost>,
    ) -> Result<Started, ConfigError> {
        let root = roots.first().cloned();
        let sources = ConfigSources::for_root(root.as_deref());
        let (config, warnings) = match crate::config::load(&sources, client.config.as_ref()) {
            Ok(loaded) => (loaded.config, loaded.warnings),
            Err(e) if on_error == OnConfigError::Fail => return Err(e),
            Err(e) => {
                tracing::error!("{}", redact(&e.to_string()));
                (Config::default(), Vec::new())
            }
        };
        let engine = Arc::new(Engine::new());
        engine.set_encoding(client.encoding);
        engine.set_roots(roots.clone());
        // Until the first walk ends, context results say the index is incomplete.
        engine.begin_indexing();
        engine.set_index_config(client.index);
        if let Some(n) = client.tree_cache_size {
            engine.set_tree_cache_capacity(n);
        }
        if let Some(n) = client.max_parse_bytes {
            engine.set_parse_limit(n);
        }
        let audit = open_audit(root.as_deref(), &config);
        if let Some(audit) = &audit {
            audit.set_front_end(client.front_end.as_str());
        }
        let metrics = Arc::new(Metrics::new());
        let secrets = Arc::new(SecretStore::new());
        let feed = TaskFeed::default();
        let host: Arc<dyn TaskHost> = Arc::new(feed::FeedHost {
            feed: feed.clone(),
            inner: host,
        });
        let orch = Orchestrator::new(
            OrchestratorConfig {
                config,
                workspace_roots: roots,
            },
            host.clone(),
            audit.clone(),
            metrics.clone(),
            secrets.clone(),
        );
        host.status_changed();
        let session = Arc::new(Session {
            engine,
            orch,
            audit,
            metrics,
            secrets,
            host,
            feed,
            config: config::ConfigState::new(sources, client.config),
            endpoint: endpoint::Endpoint::default(),
            reindex: files::Reindex::default(),
            disk_documents: Default::default(),
            shutting_down: AtomicBool::new(false),
        });
        Ok(Started { session, warnings })
    }

    /// The workspace roots.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.engine.roots()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.orch.config()
    }

    /// Every agent (built-ins and configured), sorted by name.
    pub fn agents(&self) -> Vec<AgentDef> {
        self.orch.agents()
    }

    /// The agent used when none is named.
    pub fn default_agent(&self) -> String {
        self.orch.config().defaults.agent.clone()
    }

    /// Enables an agent; `Ok(true)` when it runs in the background (save or diagnostics
    /// triggers) rather than on a document.
    pub fn enable_agent(&self, name: &str) -> Result<bool, SessionError> {
        Ok(self.orch.enable(name)?)
    }

    /// Stops an agent: its background triggers and its queued and running tasks.
    pub fn stop_agent(&self, name: &str) -> Result<(), SessionError> {
        self.orch.stop_agent(name)?;
        Ok(())
    }

    /// Every task of the session, and before them the workspace's most recent tasks of earlier
    /// sessions from the audit log (so a restart keeps the history): oldest first, at most
    /// [`HISTORY_TASKS`] of the earlier ones.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let live = self.orch.tasks();
        let Some(audit) = &self.audit else {
            return live;
        };
        let known: std::collections::HashSet<&str> = live.iter().map(|t| t.id.as_str()).collect();
        let mut earlier: Vec<TaskInfo> = audit
            .tasks(HISTORY_TASKS)
            .unwrap_or_default()
            .into_iter()
            .filter(|row| !known.contains(row.id.as_str()))
            .map(|row| self.task_info_of(row))
            .collect();
        earlier.reverse();
        earlier.extend(live);
        earlier
    }

    /// One task with its text, edits and findings; a task of an earlier session from the audit
    /// log (its answer only when prompts are stored, `audit.store_prompts`).
    pub fn task(&self, id: &str) -> Option<TaskDetail> {
        if let Some(detail) = self.orch.task(id) {
            return Some(detail);
        }
        let row = self.audit.as_ref()?.task(id).ok()??;
        let text = row.reply.clone().unwrap_or_default();
        let prompt = String::new();
        Some(TaskDetail {
            info: self.task_info_of(row),
            text,
            edit: None,
            diagnostics: Vec::new(),
            approval: None,
            prompt,
            target: None,
            context: Vec::new(),
        })
    }

    /// A task of the audit log as the task list shows it.
    fn task_info_of(&self, row: crate::audit::TaskRow) -> TaskInfo {
        let output = self
            .orch
            .agent(&row.agent)
            .map(|a| a.output)
            .unwrap_or(crate::config::OutputMode::Answer);
        TaskInfo {
            id: row.id,
            agent: row.agent,
            state: row.state,
            output,
            uri: row.uri,
            priority: i32::try_from(row.priority).unwrap_or_default(),
            created_at_ms: row.created_at,
            started_at_ms: None,
            finished_at_ms: row.state.is_terminal().then_some(row.updated_at),
            provider: row.provider,
            model: row.model,
            attempts: 0,
            retries: 0,
            error: row.error,
            parent_task_id: None,
            tokens_in: None,
            tokens_out: None,
        }
    }

    /// Agents, providers and tasks at a glance.
    pub fn status(&self) -> StatusSnapshot {
        self.orch.status()
    }

    /// Cancels a queued or running task.
    pub fn cancel(&self, id: &str) -> Result<(), SessionError> {
        Ok(self.orch.cancel(id)?)
    }

    /// Proposes a code block of task `parent`'s answer as the replacement of its target: a new
    /// task, under the agent's approval policy (applied, asked about, or refused), audited.
    pub fn propose_edit(&self, parent: &str, new_text: String) -> Result<String, SessionError> {
        Ok(self.orch.propose_edit(parent, new_text)?)
    }

    /// Answers a task awaiting approval of its edit.
    pub fn approve(&self, id: &str, accept: bool) -> Result<(), SessionError> {
        Ok(self.orch.approve(id, accept)?)
    }

    /// The metrics registry's current values.
    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Sets a key (from the client's secret storage; never logged). Providers resolve keys per
    /// call; they are reconfigured so that cached tokens are dropped.
    pub fn set_secret(&self, name: &str, value: &str) -> Result<(), SessionError> {
        if name.trim().is_empty() {
            return Err(SessionError::Invalid(
                "secret name must not be empty".into(),
            ));
        }
        self.secrets.set(name, value);
        self.orch.reconfigure(OrchestratorConfig {
            config: (*self.orch.config()).clone(),
            workspace_roots: self.engine.roots(),
        });
        Ok(())
    }

    /// Runs `doctor`'s checks on one provider with the session's keys (reachable, authorised,
    /// model present); its health then shows the verdict.
    pub async fn test_provider(
        &self,
        name: &str,
    ) -> Result<crate::providers::HealthReport, SessionError> {
        let report = self
            .orch
            .test_provider(name, Duration::from_secs(10))
            .await
            .ok_or_else(|| SessionError::Invalid(format!("no provider named {name:?}")))?;
        self.host.status_changed();
        Ok(report)
    }

    /// Whether the session is ending (background loops stop).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Ends the session: queued and running tasks are cancelled and recorded (waiting at most
    /// `timeout` for them), the metrics endpoint stops, the audit log is flushed. Doing it
    /// again is cheap.
    pub async fn shutdown(&self, timeout: Duration) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.orch.shutdown(timeout).await;
        self.endpoint.stop();
        if let Some(audit) = self.audit.clone() {
            let _ = tokio::task::spawn_blocking(move || audit.flush()).await;
        }
    }
}

/// Opens the workspace's audit log, marks the tasks an earlier server left unfinished as
/// interrupted, and applies retention. `None` (tasks run without an audit trail) when the
/// database cannot be opened.
fn open_audit(root: Option<&std::path::Path>, config: &Config) -> Option<Arc<AuditLog>> {
    let db = database_file_in(&audit_dir(), root);
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
            Some(Arc::new(log))
        }
        Err(e) => {
            tracing::error!(
                "audit log {} could not be opened: {e}; tasks run without an audit trail",
                db.display()
            );
            None
        }
    }
}
