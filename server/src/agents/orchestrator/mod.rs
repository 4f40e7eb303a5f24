//! The orchestrator's façade: the `Orchestrator` handle, its state, and the API front ends call.
//!
//! A priority queue of tasks, concurrency caps per agent, per provider and overall, failover
//! along each agent's provider chain, the approval flow, background triggers, and the
//! guarantee that every task reaches a terminal state (recorded in the audit log).
//! `scheduler.rs` starts queued tasks within the caps and owns triggers and shutdown, `run.rs`
//! runs one task along its provider chain, `approval.rs` takes a proposed edit through the
//! policy and the user, and `record.rs` moves tasks between states and writes the audit
//! records and metrics of every step.

mod approval;
mod record;
mod run;
mod scheduler;

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    AgentDef, AgentDiagnostic, EditProposal, TaskDetail, TaskEvent, TaskHost, TaskId, TaskInfo,
    TaskSpec, TaskState, resolve_agents,
};
use crate::audit::{AttemptRecord, AuditLog, TaskRecord};
use crate::config::ProviderConfig;
use crate::config::{Config, OutputMode, effective_providers};
use crate::metrics::Metrics;
use crate::providers::{CircuitState, ProviderHandle, ProviderHealth, SecretStore, redact};

pub use run::build_request;
use scheduler::is_background;

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

fn circuit_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
    }
}

/// Inputs the orchestrator is (re)configured with.
#[derive(Clone, Default)]
pub struct OrchestratorConfig {
    pub config: Config,
    pub workspace_roots: Vec<PathBuf>,
}

/// Health of one provider as shown in agentStatus.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Agents, tasks and providers at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[error("task {0} has no target code to replace")]
    NoTarget(String),
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

/// The number the next task gets: one more than the highest of the workspace's recent tasks in
/// the audit log, so labels (`explain #12`) go on across restarts instead of starting at 1.
fn first_task_number(audit: Option<&AuditLog>) -> u64 {
    let recent = audit.and_then(|a| a.tasks(200).ok()).unwrap_or_default();
    recent
        .iter()
        .filter_map(|t| task_number(&t.id))
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

/// The number at the end of a task id (`<prefix>-<n>`).
pub fn task_number(id: &str) -> Option<u64> {
    id.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
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
        let audit_for_seq = audit.clone();
        let inner = Arc::new(Inner {
            host,
            audit,
            metrics,
            secrets,
            state: Mutex::new(State::default()),
            wake: Arc::new(Notify::new()),
            seq: AtomicU64::new(first_task_number(audit_for_seq.as_deref())),
            id_prefix: id_prefix(),
            shutting_down: AtomicBool::new(false),
            idle: Notify::new(),
        });
        let orch = Orchestrator { inner };
        orch.reconfigure(config);
        orch.spawn_dispatcher();
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

    /// Runs `doctor`'s checks on one configured provider (reachable, authorised, model
    /// present) within `timeout`, and records the verdict as its health. `None`: no provider
    /// of that name (a misconfigured one answers with its error).
    pub async fn test_provider(
        &self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Option<crate::providers::HealthReport> {
        let slot = {
            let st = self.inner.state.lock();
            if let Some(err) = st.provider_errors.get(name) {
                return Some(crate::providers::HealthReport::failed(err.clone()));
            }
            st.providers.get(name).cloned()?
        };
        let report = match tokio::time::timeout(timeout, slot.provider.check()).await {
            Ok(mut report) => {
                report.detail = redact(&report.detail);
                report
            }
            Err(_) => crate::providers::HealthReport::failed(format!(
                "no answer within {} s",
                timeout.as_secs()
            )),
        };
        let answered = report.reachable
            && report.authorized != Some(false)
            && report.model_present != Some(false);
        slot.breaker
            .record_check(answered, !report.reachable, &report.detail);
        Some(report)
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
            parent_task_id: spec.parent_task_id.clone(),
            tokens_in: None,
            tokens_out: None,
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

    pub fn tasks(&self) -> Vec<TaskInfo> {
        let st = self.inner.state.lock();
        let mut v: Vec<TaskInfo> = st.tasks.values().map(|e| e.info.clone()).collect();
        v.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
        v
    }

    /// Proposes `new_text` (a code block the user picked from the answer of task `parent`) as
    /// the replacement of that task's target, as a new task of the same agent that asks no
    /// provider: the policy applies and the edit is audited, as an edit agent's (an answer
    /// agent's approval counts as manual: it never covered edits).
    pub fn propose_edit(
        &self,
        parent: &str,
        new_text: String,
    ) -> Result<TaskId, OrchestratorError> {
        let spec = {
            let st = self.inner.state.lock();
            let entry = st
                .tasks
                .get(parent)
                .ok_or_else(|| OrchestratorError::UnknownTask(parent.to_string()))?;
            // A code block rarely ends with the line break a target of whole lines ends with.
            let mut new_text = new_text;
            if entry.spec.target_text.ends_with('\n') && !new_text.ends_with('\n') {
                new_text.push('\n');
            }
            TaskSpec {
                prompt: format!("apply the code block of {}", entry.info.label()),
                parent_task_id: Some(parent.to_string()),
                history: Vec::new(),
                given_edit: Some(new_text),
                priority: None,
                trigger: None,
                ..(*entry.spec).clone()
            }
        };
        if spec.target_range.is_none() {
            return Err(OrchestratorError::NoTarget(parent.to_string()));
        }
        self.submit(spec)
    }

    pub fn task(&self, id: &str) -> Option<TaskDetail> {
        let st = self.inner.state.lock();
        st.tasks.get(id).map(|e| TaskDetail {
            info: e.info.clone(),
            text: e.text.clone(),
            edit: e.edits.as_ref().and_then(|v| v.first().cloned()),
            diagnostics: e.diagnostics.clone(),
            approval: e.approval.clone(),
            prompt: e.spec.prompt.clone(),
            target: e.spec.uri.clone().zip(e.spec.target_range),
            context: e
                .spec
                .context
                .as_ref()
                .map(|c| c.items.clone())
                .unwrap_or_default(),
        })
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
}

impl std::fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Orchestrator")
    }
}
