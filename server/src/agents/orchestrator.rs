//! The orchestrator: a priority queue of tasks, concurrency caps per agent, per provider and
//! overall, failover along each agent's provider chain, the approval flow, background triggers,
//! and the guarantee that every task reaches a terminal state (recorded in the audit log).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::results::{lines_changed, parse_diagnostics, parse_edit};
use super::template::{TemplateVars, render};
use super::{
    AgentDef, AgentDiagnostic, EditProposal, TaskDetail, TaskEvent, TaskId, TaskInfo, TaskSpec,
    TaskState, resolve_agents,
};
use crate::audit::{
    ApprovalActor, ApprovalDecision, ApprovalRecord, AttemptRecord, AuditLog, EditRecord,
    TaskRecord, sha256_hex,
};
use crate::config::ProviderConfig;
use crate::config::{Config, OutputMode, Trigger};
use crate::metrics::{self, Metrics};
use crate::policy::{self, Decision, EditContext};
use crate::providers::{
    AttemptEvent, BoxFuture, CallOptions, ChatMessage, ChatRequest, CircuitState, ErrorClass,
    ProviderHandle, ProviderHealth, Role, SecretStore, call_with_options, human_bytes, redact,
};

/// One step of a failover chain: the name, the provider (if it could be built), and why not.
type ChainLink = (String, Option<Arc<ProviderSlot>>, Option<String>);

/// A provider's handle together with the configuration it was built from.
struct ProviderSlot {
    handle: ProviderHandle,
    config: ProviderConfig,
}

impl ProviderSlot {
    fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Worth trying now: its circuit is not open and it has not asked callers to stay away.
    fn is_available(&self) -> bool {
        self.breaker.state() != CircuitState::Open && self.retry_after.remaining().is_none()
    }
}

impl std::ops::Deref for ProviderSlot {
    type Target = ProviderHandle;
    fn deref(&self) -> &ProviderHandle {
        &self.handle
    }
}

fn circuit_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
    }
}

fn health_name(health: ProviderHealth) -> &'static str {
    match health {
        ProviderHealth::Unknown => "unknown",
        ProviderHealth::Healthy => "healthy",
        ProviderHealth::Unreachable => "unreachable",
        ProviderHealth::Failing => "failing",
        ProviderHealth::CircuitOpen => "circuit_open",
        ProviderHealth::HalfOpen => "half_open",
    }
}

fn circuit_gauge(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed => metrics::CIRCUIT_CLOSED,
        CircuitState::HalfOpen => metrics::CIRCUIT_HALF_OPEN,
        CircuitState::Open => metrics::CIRCUIT_OPEN,
    }
}

/// Builds a task for an agent when a background trigger fires (None: nothing to do).
pub type PrepareFn = Arc<dyn Fn(&AgentDef) -> Option<TaskSpec> + Send + Sync>;

/// Keep at most this many finished tasks in memory (the audit log keeps them all).
const FINISHED_KEPT: usize = 500;

/// What the front end does for the orchestrator (LSP: notifications, applyEdit,
/// showMessageRequest, publishDiagnostics; CLI: stdout and files).
pub trait TaskHost: Send + Sync + 'static {
    /// A state change or a streamed chunk. Must not block.
    fn on_event(&self, event: TaskEvent);
    /// Applies edits; `Ok(true)` when the client applied them.
    fn apply_edit(
        &self,
        task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>>;
    /// Asks the user; `Some(accept)` or `None` when the question was dismissed or unsupported.
    fn ask_approval(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>>;
    /// Announces an edit that will be applied after `timeout` unless rejected.
    fn alert(&self, task: &TaskInfo, edits: &[EditProposal], reasons: &[String], timeout: Duration);
    /// Publishes findings of a diagnostics-mode agent for `uri` (replacing earlier ones).
    fn publish_diagnostics(&self, task: &TaskInfo, uri: &str, diagnostics: &[AgentDiagnostic]);
}

/// Inputs the orchestrator is (re)configured with.
#[derive(Clone, Default)]
pub struct OrchestratorConfig {
    pub config: Config,
    pub workspace_roots: Vec<PathBuf>,
}

/// Health of one provider as shown in agentStatus.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// One agent as shown in agentStatus.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSnapshot {
    pub agents: Vec<AgentStatus>,
    pub tasks: Vec<TaskInfo>,
    pub providers: Vec<ProviderStatus>,
    pub running: usize,
    pub queued: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrchestratorError {
    #[error("unknown agent {0:?}; known agents: {1}")]
    UnknownAgent(String, String),
    #[error("unknown task {0:?}")]
    UnknownTask(String),
    #[error("task {0} is not awaiting approval (it is {1})")]
    NotAwaitingApproval(String, &'static str),
    #[error("task {0} already finished ({1})")]
    AlreadyFinished(String, &'static str),
    #[error("the server is shutting down")]
    ShuttingDown,
}

struct TaskEntry {
    info: TaskInfo,
    spec: Arc<TaskSpec>,
    cancel: CancellationToken,
    text: String,
    seq: u64,
    edits: Option<Vec<EditProposal>>,
    diagnostics: Vec<AgentDiagnostic>,
    approval_tx: Option<oneshot::Sender<bool>>,
    approval: Option<String>,
    /// Set when the scheduler counted this task against the caps; cleared when it ends.
    holds_slot: bool,
    /// The provider call in flight (its audit row says `running` until it ends).
    open_attempt: Option<AttemptRecord>,
}

#[derive(Default)]
struct State {
    config: Arc<Config>,
    roots: Vec<PathBuf>,
    agents: BTreeMap<String, AgentDef>,
    providers: BTreeMap<String, Arc<ProviderSlot>>,
    /// Providers given in code (tests, benchmarks, embedders) rather than by configuration; they win.
    injected: BTreeMap<String, Arc<ProviderSlot>>,
    provider_errors: BTreeMap<String, String>,
    queue: BTreeMap<(Reverse<i32>, u64), TaskId>,
    tasks: HashMap<TaskId, TaskEntry>,
    finished: VecDeque<TaskId>,
    running_per_agent: HashMap<String, usize>,
    running_total: usize,
    enabled: HashSet<String>,
    trigger_generation: HashMap<(String, String), u64>,
    recent_runs: HashMap<String, VecDeque<Instant>>,
}

struct Inner {
    host: Arc<dyn TaskHost>,
    audit: Option<Arc<AuditLog>>,
    metrics: Arc<Metrics>,
    secrets: Arc<SecretStore>,
    state: Mutex<State>,
    wake: Arc<Notify>,
    seq: AtomicU64,
    id_prefix: String,
    shutting_down: AtomicBool,
    idle: Notify,
}

/// The orchestrator. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The prefix of this orchestrator's task ids: start time, process id and an instance number,
/// so two servers sharing one audit database (same workspace) never issue the same id, even
/// when they start in the same millisecond.
fn id_prefix() -> String {
    static INSTANCES: AtomicU64 = AtomicU64::new(0);
    let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{:x}.{instance}", now_ms(), std::process::id())
}

fn is_background(agent: &AgentDef) -> bool {
    agent
        .triggers
        .iter()
        .any(|t| matches!(t, Trigger::OnSave | Trigger::OnDiagnostics))
}

impl Orchestrator {
    /// Creates the orchestrator and starts its dispatcher on the current tokio runtime.
    pub fn new(
        config: OrchestratorConfig,
        host: Arc<dyn TaskHost>,
        audit: Option<Arc<AuditLog>>,
        metrics: Arc<Metrics>,
        secrets: Arc<SecretStore>,
    ) -> Orchestrator {
        let inner = Arc::new(Inner {
            host,
            audit,
            metrics,
            secrets,
            state: Mutex::new(State::default()),
            wake: Arc::new(Notify::new()),
            seq: AtomicU64::new(1),
            id_prefix: id_prefix(),
            shutting_down: AtomicBool::new(false),
            idle: Notify::new(),
        });
        let orch = Orchestrator { inner };
        orch.reconfigure(config);
        let weak = Arc::downgrade(&orch.inner);
        let wake = orch.inner.wake.clone();
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                // A bug in scheduling must not stop every later task from starting.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::schedule(&inner)))
                    .is_err()
                {
                    tracing::error!("the task scheduler panicked; it keeps running");
                }
                drop(inner);
                // notify_one keeps a permit when nobody waits, so no wake-up is lost here.
                wake.notified().await;
            }
        });
        orch
    }

    /// Applies a new configuration: agents, providers (breakers of unchanged providers are kept).
    pub fn reconfigure(&self, new: OrchestratorConfig) {
        let agents: BTreeMap<String, AgentDef> = resolve_agents(&new.config)
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        let mut st = self.inner.state.lock();
        let mut providers = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for (name, cfg) in effective_providers(&new.config) {
            if let Some(old) = st.providers.get(&name).filter(|old| old.config() == &cfg) {
                providers.insert(name, old.clone());
                continue;
            }
            match ProviderHandle::from_config(&name, &cfg, self.inner.secrets.clone()) {
                Ok(handle) => {
                    providers.insert(
                        name,
                        Arc::new(ProviderSlot {
                            handle,
                            config: cfg,
                        }),
                    );
                }
                Err(e) => {
                    errors.insert(name, redact(&e.to_string()));
                }
            }
        }
        for (name, slot) in &st.injected {
            errors.remove(name);
            providers.insert(name.clone(), slot.clone());
        }
        st.config = Arc::new(new.config);
        st.roots = new.workspace_roots;
        st.agents = agents;
        st.providers = providers;
        st.provider_errors = errors;
        // The default agent's first provider gets its HTTP client now, off the request path,
        // so the first request does not wait for it.
        let first = st
            .agents
            .get(&st.config.defaults.agent)
            .and_then(|a| a.providers.first())
            .and_then(|p| st.providers.get(p))
            .map(|slot| slot.handle.provider.clone());
        drop(st);
        if let (Some(provider), Ok(runtime)) = (first, tokio::runtime::Handle::try_current()) {
            runtime.spawn_blocking(move || provider.warm_up());
        }
        self.inner.wake.notify_one();
    }

    /// Adds (or replaces) a provider built in code; it survives reconfiguration.
    pub fn insert_provider(
        &self,
        name: &str,
        provider: Arc<dyn crate::providers::Provider>,
        config: ProviderConfig,
    ) {
        let slot = Arc::new(ProviderSlot {
            handle: ProviderHandle::new(provider, &config),
            config,
        });
        let mut st = self.inner.state.lock();
        st.injected.insert(name.to_string(), slot.clone());
        st.provider_errors.remove(name);
        st.providers.insert(name.to_string(), slot);
    }

    pub fn agents(&self) -> Vec<AgentDef> {
        self.inner.state.lock().agents.values().cloned().collect()
    }

    pub fn agent(&self, name: &str) -> Result<AgentDef, OrchestratorError> {
        let st = self.inner.state.lock();
        st.agents.get(name).cloned().ok_or_else(|| {
            OrchestratorError::UnknownAgent(
                name.to_string(),
                st.agents.keys().cloned().collect::<Vec<_>>().join(", "),
            )
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.inner.state.lock().config.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }

    /// Queues a task; returns its id at once.
    pub fn submit(&self, spec: TaskSpec) -> Result<TaskId, OrchestratorError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(OrchestratorError::ShuttingDown);
        }
        let agent = self.agent(&spec.agent)?;
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{seq}", self.inner.id_prefix);
        let priority = spec.priority.unwrap_or(agent.priority);
        let info = TaskInfo {
            id: id.clone(),
            agent: agent.name.clone(),
            state: TaskState::Queued,
            output: agent.output,
            uri: spec.uri.clone(),
            priority,
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            provider: None,
            model: None,
            attempts: 0,
            retries: 0,
            error: None,
        };
        if let Some(audit) = &self.inner.audit {
            audit.task_created(&TaskRecord {
                id: id.clone(),
                agent: agent.name.clone(),
                state: TaskState::Queued,
                priority,
                created_at: info.created_at_ms,
                uri: spec.uri.clone(),
                provider: None,
                model: None,
                prompt: spec.prompt.clone(),
                summary: spec
                    .prompt
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(120)
                    .collect(),
            });
        }
        {
            let mut st = self.inner.state.lock();
            st.tasks.insert(
                id.clone(),
                TaskEntry {
                    info: info.clone(),
                    spec: Arc::new(spec),
                    cancel: CancellationToken::new(),
                    text: String::new(),
                    seq: 0,
                    edits: None,
                    diagnostics: Vec::new(),
                    approval_tx: None,
                    approval: None,
                    holds_slot: false,
                    open_attempt: None,
                },
            );
            st.queue.insert((Reverse(priority), seq), id.clone());
        }
        self.update_gauges();
        self.inner.host.on_event(TaskEvent::State { task: info });
        self.inner.wake.notify_one();
        Ok(id)
    }

    /// Cancels a task in any non-terminal state.
    pub fn cancel(&self, id: &str) -> Result<(), OrchestratorError> {
        let queued_info = {
            let mut st = self.inner.state.lock();
            let entry = st
                .tasks
                .get(id)
                .ok_or_else(|| OrchestratorError::UnknownTask(id.to_string()))?;
            let state = entry.info.state;
            if state.is_terminal() {
                return Err(OrchestratorError::AlreadyFinished(
                    id.to_string(),
                    state.as_str(),
                ));
            }
            entry.cancel.cancel();
            if state == TaskState::Queued {
                st.queue.retain(|_, v| v != id);
                true
            } else {
                false
            }
        };
        if queued_info {
            self.finish(
                id,
                TaskState::Cancelled,
                Some("cancelled while queued".into()),
            );
        }
        // Running and awaiting tasks see the token and finish themselves.
        Ok(())
    }

    /// Answers a pending approval.
    pub fn approve(&self, id: &str, accept: bool) -> Result<(), OrchestratorError> {
        let mut st = self.inner.state.lock();
        let entry = st
            .tasks
            .get_mut(id)
            .ok_or_else(|| OrchestratorError::UnknownTask(id.to_string()))?;
        match entry.approval_tx.take() {
            Some(tx) => {
                let _ = tx.send(accept);
                Ok(())
            }
            None => Err(OrchestratorError::NotAwaitingApproval(
                id.to_string(),
                entry.info.state.as_str(),
            )),
        }
    }

    pub fn tasks(&self) -> Vec<TaskInfo> {
        let st = self.inner.state.lock();
        let mut v: Vec<TaskInfo> = st.tasks.values().map(|e| e.info.clone()).collect();
        v.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
        v
    }

    pub fn task(&self, id: &str) -> Option<TaskDetail> {
        let st = self.inner.state.lock();
        st.tasks.get(id).map(|e| TaskDetail {
            info: e.info.clone(),
            text: e.text.clone(),
            edit: e.edits.as_ref().and_then(|v| v.first().cloned()),
            diagnostics: e.diagnostics.clone(),
            approval: e.approval.clone(),
        })
    }

    /// Enables a background agent (runs on its triggers until stopped).
    pub fn enable(&self, agent: &str) -> Result<bool, OrchestratorError> {
        let def = self.agent(agent)?;
        if is_background(&def) {
            self.inner.state.lock().enabled.insert(def.name);
            self.inner.wake.notify_one();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Disables a background agent and cancels its queued and running tasks.
    pub fn stop_agent(&self, agent: &str) -> Result<usize, OrchestratorError> {
        let def = self.agent(agent)?;
        let ids: Vec<TaskId> = {
            let mut st = self.inner.state.lock();
            st.enabled.remove(&def.name);
            st.tasks
                .values()
                .filter(|e| e.info.agent == def.name && !e.info.state.is_terminal())
                .map(|e| e.info.id.clone())
                .collect()
        };
        let n = ids.len();
        for id in ids {
            let _ = self.cancel(&id);
        }
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// A trigger fired (save, new diagnostics) on `uri`: every enabled agent listening to it
    /// runs after its debounce, within its rate limit. `prepare` builds the spec at run time.
    pub fn fire_trigger(&self, trigger: Trigger, uri: &str, prepare: PrepareFn) {
        let agents: Vec<AgentDef> = {
            let st = self.inner.state.lock();
            st.agents
                .values()
                .filter(|a| st.enabled.contains(&a.name) && a.triggers.contains(&trigger))
                .cloned()
                .collect()
        };
        for agent in agents {
            let key = (agent.name.clone(), uri.to_string());
            let generation = {
                let mut st = self.inner.state.lock();
                let g = st.trigger_generation.entry(key.clone()).or_insert(0);
                *g += 1;
                *g
            };
            let this = self.clone();
            let prepare = prepare.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(agent.debounce_ms)).await;
                {
                    let mut st = this.inner.state.lock();
                    if st.trigger_generation.get(&key) != Some(&generation)
                        || !st.enabled.contains(&agent.name)
                    {
                        return;
                    }
                    let window = st.recent_runs.entry(agent.name.clone()).or_default();
                    let now = Instant::now();
                    while window
                        .front()
                        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
                    {
                        window.pop_front();
                    }
                    if window.len() >= agent.rate_per_minute as usize {
                        tracing::info!(
                            "agent {} rate limited ({} runs per minute)",
                            agent.name,
                            agent.rate_per_minute
                        );
                        return;
                    }
                    window.push_back(now);
                }
                if let Some(mut spec) = prepare(&agent) {
                    spec.trigger = Some(trigger);
                    spec.priority = spec.priority.or(Some(agent.priority - 10));
                    let _ = this.submit(spec);
                }
            });
        }
    }

    /// Status for agentStatus / the status bar.
    pub fn status(&self) -> StatusSnapshot {
        let st = self.inner.state.lock();
        let mut agents = Vec::new();
        for a in st.agents.values() {
            let running = st
                .tasks
                .values()
                .filter(|e| {
                    e.info.agent == a.name
                        && matches!(
                            e.info.state,
                            TaskState::Running | TaskState::AwaitingApproval
                        )
                })
                .count();
            let queued = st
                .tasks
                .values()
                .filter(|e| e.info.agent == a.name && e.info.state == TaskState::Queued)
                .count();
            let enabled = st.enabled.contains(&a.name);
            let state = if running > 0 {
                "running"
            } else if enabled {
                "enabled"
            } else {
                "idle"
            };
            agents.push(AgentStatus {
                name: a.name.clone(),
                description: a.description.clone(),
                state: state.into(),
                background: is_background(a),
                enabled,
                running,
                queued,
                output: a.output,
                providers: a.providers.clone(),
            });
        }
        let mut providers: Vec<ProviderStatus> = st
            .providers
            .iter()
            .map(|(name, h)| {
                let (health, reason) = h.breaker.health();
                ProviderStatus {
                    name: name.clone(),
                    kind: format!("{:?}", h.config().kind).to_lowercase(),
                    model: h.config().model.clone(),
                    circuit: circuit_name(h.breaker.state()).to_string(),
                    consecutive_failures: h.breaker.consecutive_failures(),
                    error: reason,
                    health: health_name(health).to_string(),
                }
            })
            .collect();
        for (name, err) in &st.provider_errors {
            providers.push(ProviderStatus {
                name: name.clone(),
                kind: String::new(),
                model: String::new(),
                circuit: "misconfigured".into(),
                consecutive_failures: 0,
                error: Some(err.clone()),
                health: "misconfigured".into(),
            });
        }
        let mut tasks: Vec<TaskInfo> = st.tasks.values().map(|e| e.info.clone()).collect();
        tasks.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
        tasks.truncate(50);
        let running = st
            .tasks
            .values()
            .filter(|e| {
                matches!(
                    e.info.state,
                    TaskState::Running | TaskState::AwaitingApproval
                )
            })
            .count();
        let queued = st.queue.len();
        StatusSnapshot {
            agents,
            tasks,
            providers,
            running,
            queued,
        }
    }

    /// Cancels everything and waits (bounded) until every task has recorded its end.
    pub async fn shutdown(&self, wait: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let ids: Vec<TaskId> = {
            let st = self.inner.state.lock();
            st.tasks
                .values()
                .filter(|e| !e.info.state.is_terminal())
                .map(|e| e.info.id.clone())
                .collect()
        };
        for id in &ids {
            let _ = self.cancel(id);
        }
        let deadline = Instant::now() + wait;
        loop {
            let open: Vec<TaskId> = {
                let st = self.inner.state.lock();
                st.tasks
                    .values()
                    .filter(|e| !e.info.state.is_terminal())
                    .map(|e| e.info.id.clone())
                    .collect()
            };
            if open.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for id in open {
                    self.finish(&id, TaskState::Cancelled, Some("server shut down".into()));
                }
                break;
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(20), self.inner.idle.notified()).await;
        }
        if let Some(audit) = &self.inner.audit {
            let _ = audit.flush();
        }
    }

    // ---- internals -------------------------------------------------------------------

    fn update_gauges(&self) {
        let (running, queued) = {
            let st = self.inner.state.lock();
            (st.running_total, st.queue.len())
        };
        self.inner
            .metrics
            .set_gauge(metrics::TASKS_RUNNING, &[], running as f64);
        self.inner
            .metrics
            .set_gauge(metrics::TASKS_QUEUED, &[], queued as f64);
    }

    /// Starts every queued task the caps allow, highest priority first (FIFO within a priority).
    fn schedule(inner: &Arc<Inner>) {
        if inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let mut to_start = Vec::new();
        {
            let mut st = inner.state.lock();
            let max_total = st.config.defaults.max_concurrent_tasks.max(1);
            let keys: Vec<((Reverse<i32>, u64), TaskId)> =
                st.queue.iter().map(|(k, v)| (*k, v.clone())).collect();
            for (key, id) in keys {
                if st.running_total >= max_total {
                    break;
                }
                let Some(agent_name) = st.tasks.get(&id).map(|e| e.info.agent.clone()) else {
                    st.queue.remove(&key);
                    continue;
                };
                let cap = st
                    .agents
                    .get(&agent_name)
                    .map(|a| a.concurrency)
                    .unwrap_or(1);
                let running = st.running_per_agent.get(&agent_name).copied().unwrap_or(0);
                if running >= cap {
                    continue;
                }
                st.queue.remove(&key);
                let Some(entry) = st.tasks.get_mut(&id) else {
                    continue;
                };
                if entry.info.state.is_terminal() {
                    continue; // cancelled while queued
                }
                entry.holds_slot = true;
                *st.running_per_agent.entry(agent_name).or_insert(0) += 1;
                st.running_total += 1;
                to_start.push(id);
            }
        }
        for id in to_start {
            let orch = Orchestrator {
                inner: inner.clone(),
            };
            tokio::spawn(async move {
                orch.run(id).await;
            });
        }
    }

    fn transition(&self, id: &str, to: TaskState, detail: Option<String>) -> Option<TaskInfo> {
        let detail = detail.map(|d| redact(&d));
        let info = {
            let mut st = self.inner.state.lock();
            let entry = st.tasks.get_mut(id)?;
            let from = entry.info.state;
            if from.is_terminal() || from == to {
                return None;
            }
            entry.info.state = to;
            let now = now_ms();
            if to == TaskState::Running && entry.info.started_at_ms.is_none() {
                entry.info.started_at_ms = Some(now);
            }
            let mut freed_slot = false;
            if to.is_terminal() {
                entry.info.finished_at_ms = Some(now);
                if to != TaskState::Succeeded {
                    entry.info.error = detail.clone();
                }
                entry.approval_tx = None;
                freed_slot = std::mem::take(&mut entry.holds_slot);
            }
            let info = entry.info.clone();
            // Recorded under the lock: whoever sees the new state can flush and find it written.
            if let Some(audit) = &self.inner.audit {
                audit.task_transition(id, from, to, detail.as_deref());
            }
            if freed_slot {
                if let Some(n) = st.running_per_agent.get_mut(&info.agent) {
                    *n = n.saturating_sub(1);
                }
                st.running_total = st.running_total.saturating_sub(1);
            }
            info
        };
        self.inner
            .host
            .on_event(TaskEvent::State { task: info.clone() });
        Some(info)
    }

    /// Moves a task to a terminal state (freeing its concurrency slot if it held one). A
    /// provider call still in flight (the task panicked, or shutdown gave up on it) is closed
    /// in the audit log first.
    fn finish(&self, id: &str, state: TaskState, detail: Option<String>) {
        let open = {
            let mut st = self.inner.state.lock();
            st.tasks
                .get_mut(id)
                .filter(|e| !e.info.state.is_terminal())
                .and_then(|e| e.open_attempt.take())
        };
        if let Some(mut attempt) = open {
            attempt.latency_ms = u64::try_from(now_ms() - attempt.started_at).ok();
            attempt.error_class = Some(if state == TaskState::Cancelled {
                ErrorClass::Cancelled
            } else {
                ErrorClass::Internal
            });
            attempt.error_message = Some(redact(&format!(
                "the task ended while this call was in flight: {}",
                detail.as_deref().unwrap_or(state.as_str())
            )));
            if let Some(audit) = &self.inner.audit {
                audit.attempt(&attempt);
            }
        }
        let Some(info) = self.transition(id, state, detail) else {
            return;
        };
        {
            let mut st = self.inner.state.lock();
            if let Some(e) = st.tasks.get_mut(id) {
                // Kept for taskResult; give back what the growing buffer over-allocated.
                e.text.shrink_to_fit();
            }
            st.finished.push_back(id.to_string());
            while st.finished.len() > FINISHED_KEPT {
                if let Some(old) = st.finished.pop_front() {
                    st.tasks.remove(&old);
                }
            }
        }
        self.inner.metrics.inc(
            metrics::TASKS_TOTAL,
            &[("agent", &info.agent), ("state", state.as_str())],
        );
        self.update_gauges();
        self.inner.idle.notify_waiters();
        self.inner.wake.notify_one();
    }

    /// Runs a task to its end. A panic anywhere in its body (a provider, the host, a parser)
    /// is caught here: the task fails with the panic's message and frees its slot.
    async fn run(&self, id: TaskId) {
        let outcome = std::panic::AssertUnwindSafe(self.run_inner(&id))
            .catch_unwind()
            .await;
        let (state, detail) = match outcome {
            Ok(Ok(())) => (TaskState::Succeeded, None),
            Ok(Err((state, detail))) => (state, Some(detail)),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!("task {id} panicked: {}", redact(&message));
                (
                    TaskState::Failed,
                    Some(format!("internal error: the task panicked: {message}")),
                )
            }
        };
        self.finish(&id, state, detail);
    }

    fn push_chunk(&self, id: &str, text: &str) {
        let event = {
            let mut st = self.inner.state.lock();
            let Some(entry) = st.tasks.get_mut(id) else {
                return;
            };
            entry.text.push_str(text);
            entry.seq += 1;
            TaskEvent::Chunk {
                task_id: id.to_string(),
                seq: entry.seq,
                text: text.to_string(),
            }
        };
        self.inner.host.on_event(event);
    }

    fn reset_text(&self, id: &str, reason: &str) {
        let event = {
            let mut st = self.inner.state.lock();
            let Some(entry) = st.tasks.get_mut(id) else {
                return;
            };
            if entry.text.is_empty() {
                return;
            }
            // Dropped, not cleared: a long reply's buffer is given back at once.
            entry.text = String::new();
            entry.seq += 1;
            TaskEvent::Reset {
                task_id: id.to_string(),
                seq: entry.seq,
                reason: redact(reason),
            }
        };
        self.inner.host.on_event(event);
    }

    async fn run_inner(&self, id: &str) -> Result<(), (TaskState, String)> {
        let (spec, cancel, agent, chain, defaults) = {
            let st = self.inner.state.lock();
            let entry = st
                .tasks
                .get(id)
                .ok_or((TaskState::Failed, "task vanished".to_string()))?;
            let agent = st.agents.get(&entry.info.agent).cloned().ok_or((
                TaskState::Failed,
                format!("agent {} was removed", entry.info.agent),
            ))?;
            let chain: Vec<ChainLink> = agent
                .providers
                .iter()
                .map(|p| {
                    (
                        p.clone(),
                        st.providers.get(p).cloned(),
                        st.provider_errors.get(p).cloned(),
                    )
                })
                .collect();
            (
                entry.spec.clone(),
                entry.cancel.clone(),
                agent,
                chain,
                st.config.defaults.clone(),
            )
        };
        if cancel.is_cancelled() {
            return Err((TaskState::Cancelled, "cancelled".into()));
        }
        self.transition(id, TaskState::Running, None);
        let request = build_request(&agent, &spec);
        let max_reply_bytes = defaults.max_reply_bytes.max(1);
        let failover_after = Duration::from_millis(defaults.failover_after_wait_ms);
        let mut failures: Vec<String> = Vec::new();
        let mut answer = None;
        let mut previous: Option<String> = None;
        for (index, (pname, handle, config_error)) in chain.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err((TaskState::Cancelled, "cancelled".into()));
            }
            let Some(handle) = handle else {
                let why = config_error
                    .clone()
                    .unwrap_or_else(|| "no such provider is configured".into());
                failures.push(format!("{pname}: {why}"));
                self.record_attempt_failure(id, pname, &why);
                continue;
            };
            // Another provider later in the chain that is worth trying now.
            let can_fail_over = || {
                chain
                    .iter()
                    .skip(index + 1)
                    .any(|(_, slot, _)| slot.as_ref().is_some_and(|s| s.is_available()))
            };
            let model = agent
                .model
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| handle.config().model.clone());
            if let Some(left) = handle.retry_after.remaining()
                && can_fail_over()
            {
                let why = format!(
                    "skipped: the provider asked callers to wait (Retry-After) for {} more",
                    human_wait(left)
                );
                self.record_skipped(
                    id,
                    pname,
                    &model,
                    ErrorClass::RateLimited {
                        retry_after_ms: u64::try_from(left.as_millis()).ok(),
                    },
                    &why,
                );
                failures.push(format!("{pname} (rate_limited): {why}"));
                continue;
            }
            if let Some(prev) = &previous {
                self.inner.metrics.inc(
                    metrics::FAILOVERS_TOTAL,
                    &[("agent", &agent.name), ("from", prev), ("to", pname)],
                );
                tracing::info!("task {id}: failing over from {prev} to {pname}");
            }
            previous = Some(pname.clone());
            let permit = tokio::select! {
                p = handle.semaphore.clone().acquire_owned() => p.ok(),
                _ = cancel.cancelled() => return Err((TaskState::Cancelled, "cancelled".into())),
            };
            let mut req = request.clone();
            if let Some(m) = &agent.model {
                req.model = m.clone();
            }
            {
                let mut st = self.inner.state.lock();
                if let Some(e) = st.tasks.get_mut(id) {
                    e.info.provider = Some(pname.clone());
                    e.info.model = Some(model.clone());
                }
            }
            let this = self.clone();
            let task_id = id.to_string();
            let on_chunk = move |t: &str| this.push_chunk(&task_id, t);
            let this2 = self.clone();
            let task_id2 = id.to_string();
            let on_attempt = move |ev: AttemptEvent| this2.on_attempt(&task_id2, ev);
            let result = call_with_options(
                handle.provider.as_ref(),
                &handle.breaker,
                &handle.retry,
                &req,
                &on_chunk,
                cancel.clone(),
                &on_attempt,
                CallOptions {
                    max_reply_bytes: Some(max_reply_bytes),
                    max_retry_wait: Some(failover_after),
                    can_fail_over: Some(&can_fail_over),
                },
            )
            .await;
            drop(permit);
            handle.note_result(&result);
            self.inner.metrics.set_gauge(
                metrics::CIRCUIT_STATE,
                &[("provider", pname)],
                circuit_gauge(handle.breaker.state()),
            );
            match result {
                Ok(outcome) => {
                    answer = Some((pname.clone(), handle.config().model.clone(), outcome));
                    break;
                }
                Err(e) if e.class == ErrorClass::Cancelled || cancel.is_cancelled() => {
                    return Err((TaskState::Cancelled, "cancelled".into()));
                }
                Err(e) if matches!(e.class, ErrorClass::ReplyTooLarge { .. }) => {
                    let message = reply_cap_message(max_reply_bytes);
                    // Gives the partial reply's memory back at once.
                    self.reset_text(id, &message);
                    return Err((TaskState::Failed, message));
                }
                Err(e) => {
                    if e.class == ErrorClass::CircuitOpen {
                        // No request was sent; the audit log still says the provider was passed.
                        self.record_skipped(
                            id,
                            pname,
                            &model,
                            ErrorClass::CircuitOpen,
                            &format!("skipped: {}", e.message),
                        );
                    }
                    self.reset_text(id, &format!("{pname} failed: {}", e.message));
                    failures.push(format!("{pname} ({}): {}", e.class.name(), e.message));
                }
            }
        }
        let Some((provider, model, outcome)) = answer else {
            return Err((TaskState::Failed, no_provider_message(&failures)));
        };
        if let Some(audit) = &self.inner.audit {
            audit.set_task_result(id, &provider, &model, &outcome.text);
        }
        match agent.output {
            OutputMode::Answer => Ok(()),
            OutputMode::Diagnostics => {
                let first_line = spec.target_range.map(|r| r.start.line).unwrap_or(0);
                let diags = parse_diagnostics(&outcome.text, first_line).map_err(|e| {
                    (
                        TaskState::Failed,
                        format!("{e}; the raw reply is kept in the task"),
                    )
                })?;
                let info = {
                    let mut st = self.inner.state.lock();
                    let e = st
                        .tasks
                        .get_mut(id)
                        .ok_or((TaskState::Failed, "task vanished".to_string()))?;
                    e.diagnostics = diags.clone();
                    e.info.clone()
                };
                if let Some(uri) = &spec.uri {
                    self.inner.host.publish_diagnostics(&info, uri, &diags);
                }
                Ok(())
            }
            OutputMode::Edit => {
                self.handle_edit(id, &agent, &spec, &outcome.text, &cancel)
                    .await
            }
        }
    }

    async fn handle_edit(
        &self,
        id: &str,
        agent: &AgentDef,
        spec: &TaskSpec,
        reply: &str,
        cancel: &CancellationToken,
    ) -> Result<(), (TaskState, String)> {
        let (roots, config) = {
            let st = self.inner.state.lock();
            (st.roots.clone(), st.config.clone())
        };
        let (Some(uri), Some(range)) = (&spec.uri, spec.target_range) else {
            return Err((
                TaskState::Failed,
                "an edit agent needs a document and a range".into(),
            ));
        };
        let new_text = parse_edit(reply, &spec.target_text).map_err(|e| {
            (
                TaskState::Failed,
                format!(
                    "the reply could not be used as an edit: {e}; the raw reply is kept in the task"
                ),
            )
        })?;
        let edit = EditProposal {
            uri: uri.clone(),
            range,
            lines_changed: lines_changed(&spec.target_text, &new_text),
            new_text,
            original_text: spec.target_text.clone(),
            version: spec.document_version,
        };
        let edits = vec![edit];
        let selection = spec.target_is_selection.then_some(range);
        let decision = policy::decide(&EditContext {
            approval: agent.approval,
            edits: &edits,
            selection,
            workspace_roots: &roots,
            config: &config.policy,
        });
        let info = {
            let mut st = self.inner.state.lock();
            let e = st
                .tasks
                .get_mut(id)
                .ok_or((TaskState::Failed, "task vanished".to_string()))?;
            e.edits = Some(edits.clone());
            e.info.clone()
        };
        let (apply, by, decision_name, reasons) = match decision {
            Decision::Refuse { reason } => {
                self.record_approval(
                    id,
                    ApprovalDecision::Refused,
                    ApprovalActor::Policy,
                    &reason,
                );
                self.record_edit(id, &edits, false, &format!("refused: {reason}"));
                return Err((TaskState::Failed, format!("edit refused: {reason}")));
            }
            Decision::Apply => (
                true,
                ApprovalActor::Policy,
                ApprovalDecision::Auto,
                Vec::new(),
            ),
            Decision::Alert { reasons } => {
                let rx = self.await_approval(id)?;
                let timeout = Duration::from_secs(config.policy.alert_timeout_secs);
                self.inner.host.alert(&info, &edits, &reasons, timeout);
                tokio::select! {
                    answer = rx => match answer {
                        Ok(true) => (true, ApprovalActor::User, ApprovalDecision::Accepted, reasons),
                        Ok(false) => (false, ApprovalActor::User, ApprovalDecision::Rejected, reasons),
                        Err(_) => return Err((TaskState::Cancelled, "cancelled while awaiting approval".into())),
                    },
                    _ = tokio::time::sleep(timeout) => (true, ApprovalActor::Timeout, ApprovalDecision::TimeoutApplied, reasons),
                    _ = cancel.cancelled() => return Err((TaskState::Cancelled, "cancelled while awaiting approval".into())),
                }
            }
            Decision::Ask { reasons } => {
                let rx = self.await_approval(id)?;
                let question = self.inner.host.ask_approval(&info, &edits, &reasons);
                let this = self.clone();
                let task_id = id.to_string();
                tokio::spawn(async move {
                    if let Some(accept) = question.await {
                        let _ = this.approve(&task_id, accept);
                    }
                });
                tokio::select! {
                    answer = rx => match answer {
                        Ok(true) => (true, ApprovalActor::User, ApprovalDecision::Accepted, reasons),
                        Ok(false) => (false, ApprovalActor::User, ApprovalDecision::Rejected, reasons),
                        Err(_) => return Err((TaskState::Cancelled, "cancelled while awaiting approval".into())),
                    },
                    _ = cancel.cancelled() => return Err((TaskState::Cancelled, "cancelled while awaiting approval".into())),
                }
            }
        };
        self.record_approval(id, decision_name, by, &reasons.join("; "));
        {
            let mut st = self.inner.state.lock();
            if let Some(e) = st.tasks.get_mut(id) {
                e.approval = Some(decision_name.as_str().to_string());
            }
        }
        if !apply {
            self.record_edit(id, &edits, false, "rejected by the user");
            return Err((TaskState::Cancelled, "edit rejected".into()));
        }
        if self
            .inner
            .state
            .lock()
            .tasks
            .get(id)
            .is_some_and(|e| e.info.state == TaskState::AwaitingApproval)
        {
            self.transition(id, TaskState::Running, Some("approved".into()));
        }
        match self.inner.host.apply_edit(&info, edits.clone()).await {
            Ok(true) => {
                self.record_edit(id, &edits, true, "applied");
                Ok(())
            }
            Ok(false) => {
                self.record_edit(id, &edits, false, "the client did not apply the edit");
                Err((
                    TaskState::Failed,
                    "the editor did not apply the edit (the document may have changed)".into(),
                ))
            }
            Err(e) => {
                self.record_edit(id, &edits, false, &e);
                Err((TaskState::Failed, format!("applying the edit failed: {e}")))
            }
        }
    }

    fn await_approval(&self, id: &str) -> Result<oneshot::Receiver<bool>, (TaskState, String)> {
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.inner.state.lock();
            let e = st
                .tasks
                .get_mut(id)
                .ok_or((TaskState::Failed, "task vanished".to_string()))?;
            e.approval_tx = Some(tx);
        }
        self.transition(id, TaskState::AwaitingApproval, None);
        Ok(rx)
    }

    fn on_attempt(&self, id: &str, ev: AttemptEvent) {
        match ev {
            AttemptEvent::Started { attempt } => {
                if attempt > 1 {
                    self.reset_text(id, "retrying");
                }
                let mut st = self.inner.state.lock();
                if let Some(e) = st.tasks.get_mut(id) {
                    e.info.attempts += 1;
                    if attempt > 1 {
                        e.info.retries += 1;
                    }
                    // Written now, so a call in flight when the process dies is on record.
                    let record = AttemptRecord {
                        task_id: id.to_string(),
                        attempt: e.info.attempts,
                        provider: e.info.provider.clone().unwrap_or_default(),
                        model: e.info.model.clone().unwrap_or_default(),
                        started_at: now_ms(),
                        latency_ms: None,
                        ttft_ms: None,
                        usage: Default::default(),
                        error_class: None,
                        error_message: None,
                        retry_delay_ms: None,
                        skipped: false,
                    };
                    if let Some(audit) = &self.inner.audit {
                        audit.attempt_started(&record);
                    }
                    e.open_attempt = Some(record);
                }
            }
            AttemptEvent::Finished(report) => {
                let m = &self.inner.metrics;
                let outcome = report
                    .error
                    .as_ref()
                    .map(|e| e.class.name())
                    .unwrap_or("ok");
                m.inc(
                    metrics::PROVIDER_REQUESTS_TOTAL,
                    &[("provider", &report.provider), ("outcome", outcome)],
                );
                m.observe(
                    metrics::PROVIDER_LATENCY_SECONDS,
                    &[("provider", &report.provider)],
                    report.latency.as_secs_f64(),
                );
                if let Some(t) = report.time_to_first_token {
                    m.observe(
                        metrics::PROVIDER_TTFT_SECONDS,
                        &[("provider", &report.provider)],
                        t.as_secs_f64(),
                    );
                }
                if report.retry_delay.is_some() {
                    m.inc(
                        metrics::PROVIDER_RETRIES_TOTAL,
                        &[("provider", &report.provider)],
                    );
                }
                if let Some(n) = report.usage.prompt_tokens {
                    m.add(
                        metrics::TOKENS_TOTAL,
                        &[("provider", &report.provider), ("direction", "prompt")],
                        u64::from(n),
                    );
                }
                if let Some(n) = report.usage.completion_tokens {
                    m.add(
                        metrics::TOKENS_TOTAL,
                        &[("provider", &report.provider), ("direction", "completion")],
                        u64::from(n),
                    );
                }
                // Attempts are numbered across the whole chain (the report counts per provider).
                let (attempt, started_at) = {
                    let mut st = self.inner.state.lock();
                    match st.tasks.get_mut(id) {
                        Some(e) => {
                            let open = e.open_attempt.take();
                            (
                                e.info.attempts,
                                open.map(|a| a.started_at).unwrap_or_else(|| {
                                    now_ms() - report.latency.as_millis() as i64
                                }),
                            )
                        }
                        None => (report.attempt, now_ms() - report.latency.as_millis() as i64),
                    }
                };
                if let Some(audit) = &self.inner.audit {
                    audit.attempt(&AttemptRecord {
                        task_id: id.to_string(),
                        attempt,
                        provider: report.provider.clone(),
                        model: report.model.clone(),
                        started_at,
                        latency_ms: Some(report.latency.as_millis() as u64),
                        ttft_ms: report.time_to_first_token.map(|t| t.as_millis() as u64),
                        usage: report.usage,
                        error_class: report.error.as_ref().map(|e| e.class.clone()),
                        error_message: report.error.as_ref().map(|e| redact(&e.message)),
                        retry_delay_ms: report.retry_delay.map(|d| d.as_millis() as u64),
                        skipped: false,
                    });
                }
            }
        }
    }

    fn record_attempt_failure(&self, id: &str, provider: &str, why: &str) {
        self.inner.metrics.inc(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", provider), ("outcome", "config")],
        );
        if let Some(audit) = &self.inner.audit {
            audit.attempt(&AttemptRecord {
                task_id: id.to_string(),
                attempt: 0,
                provider: provider.to_string(),
                model: String::new(),
                started_at: now_ms(),
                latency_ms: None,
                ttft_ms: None,
                usage: Default::default(),
                error_class: Some(ErrorClass::Config),
                error_message: Some(redact(why)),
                retry_delay_ms: None,
                skipped: false,
            });
        }
    }

    /// A provider of the chain passed over without a request (circuit open, Retry-After).
    fn record_skipped(&self, id: &str, provider: &str, model: &str, class: ErrorClass, why: &str) {
        self.inner.metrics.inc(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", provider), ("outcome", "skipped")],
        );
        if let Some(audit) = &self.inner.audit {
            audit.attempt(&AttemptRecord {
                task_id: id.to_string(),
                attempt: 0,
                provider: provider.to_string(),
                model: model.to_string(),
                started_at: now_ms(),
                latency_ms: None,
                ttft_ms: None,
                usage: Default::default(),
                error_class: Some(class),
                error_message: Some(redact(why)),
                retry_delay_ms: None,
                skipped: true,
            });
        }
    }

    fn record_approval(
        &self,
        id: &str,
        decision: ApprovalDecision,
        by: ApprovalActor,
        reason: &str,
    ) {
        if let Some(audit) = &self.inner.audit {
            audit.approval(&ApprovalRecord {
                task_id: id.to_string(),
                at: now_ms(),
                decision,
                by_whom: by,
                reason: if reason.is_empty() {
                    None
                } else {
                    Some(reason.to_string())
                },
            });
        }
    }

    fn record_edit(&self, id: &str, edits: &[EditProposal], applied: bool, detail: &str) {
        if let Some(audit) = &self.inner.audit {
            let files: Vec<String> = edits.iter().map(|e| e.uri.clone()).collect();
            let new_text: String = edits.iter().map(|e| e.new_text.as_str()).collect();
            let lines: usize = edits.iter().map(|e| e.lines_changed).sum();
            let summary = edits
                .iter()
                .map(|e| {
                    format!(
                        "{} lines {}-{}: {}",
                        e.uri,
                        e.range.start.line + 1,
                        e.range.end.line + 1,
                        super::line_diff::changed_lines_label(e.lines_changed)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            audit.edit(&EditRecord {
                task_id: id.to_string(),
                at: now_ms(),
                files,
                lines_changed: lines as u32,
                content_hash: sha256_hex(&new_text),
                summary,
                applied,
                outcome_detail: Some(detail.to_string()),
            });
        }
    }
}

/// The providers in effect: the configured ones plus the built-in local defaults for the
/// default chain's names when the configuration does not define them.
pub fn effective_providers(config: &Config) -> BTreeMap<String, crate::config::ProviderConfig> {
    let mut out = config.providers.clone();
    out.entry("ollama".into())
        .or_insert_with(crate::config::default_ollama_provider);
    out.entry("local".into())
        .or_insert_with(crate::config::default_local_provider);
    out
}

fn build_request(agent: &AgentDef, spec: &TaskSpec) -> ChatRequest {
    let diagnostics = spec
        .diagnostics
        .iter()
        .map(|d| format!("line {}: {}", d.range.start.line + 1, d.message))
        .collect::<Vec<_>>()
        .join("\n");
    let vars = TemplateVars {
        selection: spec.target_text.clone(),
        context: spec
            .context
            .as_ref()
            .map(|c| c.rendered.clone())
            .unwrap_or_default(),
        file: spec.display_path.clone(),
        language: spec.language.clone(),
        diagnostics: if diagnostics.is_empty() {
            "(none)".into()
        } else {
            diagnostics
        },
        prompt: spec.prompt.clone(),
    };
    let user = render(&agent.prompt, &vars);
    ChatRequest {
        model: String::new(),
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: agent.system_prompt.clone(),
            },
            ChatMessage {
                role: Role::User,
                content: user,
            },
        ],
        max_tokens: None,
        temperature: None,
    }
}

/// The error of a task whose reply grew past `defaults.max_reply_bytes`.
fn reply_cap_message(limit: usize) -> String {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    format!(
        "the reply was longer than the cap of {} ({limit} bytes) of text per task \
         (defaults.max_reply_bytes); the stream was stopped and the partial reply discarded",
        human_bytes(limit)
    )
}

/// A wait in words: "59 min 58 s", "4 s".
fn human_wait(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// The text of a panic's payload (cut to 500 characters).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_string());
    text.chars().take(500).collect()
}

fn no_provider_message(failures: &[String]) -> String {
    format!(
        "no provider answered. Tried: {}. Configure a provider in $XDG_CONFIG_HOME/infinity-matrix/config.toml \
(e.g. [providers.local] kind = \"openai\", base_url = \"http://127.0.0.1:8765/v1\", model = \"smollm2\"), \
or start the bundled local model with `bash scripts/local-model.sh start`.",
        if failures.is_empty() {
            "nothing (the agent's provider chain is empty)".to_string()
        } else {
            failures.join("; ")
        }
    )
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Orchestrator")
    }
}
