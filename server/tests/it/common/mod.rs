//! Helpers for orchestrator tests: a scripted in-process provider, a recording `TaskHost`, and a
//! harness wiring them to a real `Orchestrator` with an in-memory audit log.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use infinity_matrix::agents::{
    AgentDiagnostic, EditProposal, Orchestrator, OrchestratorConfig, TaskEvent, TaskHost, TaskId,
    TaskInfo, TaskSpec, TaskState,
};
use infinity_matrix::audit::{AuditEntry, AuditLog, AuditQuery, EntryKind};
use infinity_matrix::config::{AgentConfig, Config, ProviderConfig};
use infinity_matrix::documents::{Position, Range};
use infinity_matrix::metrics::Metrics;
use infinity_matrix::providers::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind, Role, SecretStore, Usage,
};

/// Upper bound for every wait: only there so a broken orchestrator fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);

/// The code every spec targets (lines 10..13 of `file:///ws/a.rs`).
pub const TARGET: &str = "fn a() -> i32 {\n    1\n}\n";
/// A reply whose fenced block replaces [`TARGET`].
pub const EDIT_REPLY: &str = "Here you go:\n```rust\nfn a() -> i32 {\n    2\n}\n```\n";
/// The new text parsed from [`EDIT_REPLY`].
pub const EDIT_NEW_TEXT: &str = "fn a() -> i32 {\n    2\n}\n";

// ---------------------------------------------------------------------------------------------
// Waiting.

/// Polls `cond` every 10 ms until it holds; panics naming `what` after [`WAIT`].
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`wait_for`] but reports whether the condition held instead of panicking.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted provider.

/// A gate a blocked provider call waits on.
#[derive(Clone)]
pub struct Gate(Arc<Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(Semaphore::new(0)))
    }
    /// Lets one blocked call (present or future) through.
    pub fn open_one(&self) {
        self.0.add_permits(1);
    }
    /// Lets every blocked call through.
    pub fn open_all(&self) {
        self.0.add_permits(1_000_000);
    }
}

/// What one provider call does.
#[derive(Clone)]
pub enum Step {
    /// Streams these chunks with `delay` before each, honouring cancellation.
    Reply {
        chunks: Vec<String>,
        delay: Duration,
    },
    /// Streams `partial`, then fails.
    Fail {
        partial: Vec<String>,
        class: ErrorClass,
        message: String,
    },
    /// Waits for the gate (or cancellation), then streams the chunks.
    Block { gate: Gate, chunks: Vec<String> },
    /// Waits for the gate only (ignores cancellation), then streams the chunks.
    BlockIgnoringCancel { gate: Gate, chunks: Vec<String> },
    /// Panics inside the call (a bug in an adapter).
    Panic(String),
    /// Streams `chunk` `count` times as fast as it can (no sleeping), stopping when cancelled.
    Flood { chunk: String, count: usize },
}

impl Step {
    pub fn reply(chunks: &[&str]) -> Step {
        Step::Reply {
            chunks: chunks.iter().map(|s| s.to_string()).collect(),
            delay: Duration::from_millis(5),
        }
    }
    pub fn text(text: &str) -> Step {
        Step::Reply {
            chunks: vec![text.to_string()],
            delay: Duration::from_millis(1),
        }
    }
    pub fn fail(class: ErrorClass, message: &str) -> Step {
        Step::Fail {
            partial: Vec::new(),
            class,
            message: message.to_string(),
        }
    }
    pub fn fail_after(partial: &[&str], class: ErrorClass, message: &str) -> Step {
        Step::Fail {
            partial: partial.iter().map(|s| s.to_string()).collect(),
            class,
            message: message.to_string(),
        }
    }
    pub fn block(gate: &Gate) -> Step {
        Step::Block {
            gate: gate.clone(),
            chunks: vec!["released".to_string()],
        }
    }
    pub fn block_then(gate: &Gate, text: &str) -> Step {
        Step::Block {
            gate: gate.clone(),
            chunks: vec![text.to_string()],
        }
    }
    pub fn panic(message: &str) -> Step {
        Step::Panic(message.to_string())
    }
    pub fn flood(chunk: &str, count: usize) -> Step {
        Step::Flood {
            chunk: chunk.to_string(),
            count,
        }
    }
    pub fn block_ignoring_cancel(gate: &Gate) -> Step {
        Step::BlockIgnoringCancel {
            gate: gate.clone(),
            chunks: vec!["late".to_string()],
        }
    }
}

/// A provider whose calls follow a script: steps keyed by the prompt (the last user message),
/// then a general queue, then a default reply.
pub struct Scripted {
    name: String,
    by_prompt: Mutex<HashMap<String, VecDeque<Step>>>,
    queue: Mutex<VecDeque<Step>>,
    default: Mutex<Step>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    cancels: AtomicUsize,
    prompts: Mutex<Vec<String>>,
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Scripted {
    pub fn new(name: &str) -> Arc<Scripted> {
        Arc::new(Scripted {
            name: name.to_string(),
            by_prompt: Mutex::new(HashMap::new()),
            queue: Mutex::new(VecDeque::new()),
            default: Mutex::new(Step::reply(&["ok from ", name])),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            cancels: AtomicUsize::new(0),
            prompts: Mutex::new(Vec::new()),
        })
    }

    /// The next call whose prompt is `prompt` takes `step`.
    pub fn on(&self, prompt: &str, step: Step) {
        self.by_prompt
            .lock()
            .entry(prompt.to_string())
            .or_default()
            .push_back(step);
    }

    /// The next call without a prompt-specific step takes `step`.
    pub fn push(&self, step: Step) {
        self.queue.lock().push_back(step);
    }

    /// What calls do when nothing else is scripted.
    pub fn set_default(&self, step: Step) {
        *self.default.lock() = step;
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
    /// Calls that ended because their cancellation token fired.
    pub fn cancels(&self) -> usize {
        self.cancels.load(Ordering::SeqCst)
    }
    /// Prompts of every call, in call order.
    pub fn prompts(&self) -> Vec<String> {
        self.prompts.lock().clone()
    }

    fn next_step(&self, prompt: &str) -> Step {
        if let Some(step) = self
            .by_prompt
            .lock()
            .get_mut(prompt)
            .and_then(VecDeque::pop_front)
        {
            return step;
        }
        if let Some(step) = self.queue.lock().pop_front() {
            return step;
        }
        self.default.lock().clone()
    }

    fn error(&self, class: ErrorClass, message: &str, partial: String) -> ProviderError {
        ProviderError {
            provider: self.name.clone(),
            class,
            message: message.to_string(),
            partial_text: partial,
        }
    }

    fn cancelled(&self, partial: String) -> ProviderError {
        self.cancels.fetch_add(1, Ordering::SeqCst);
        self.error(ErrorClass::Cancelled, "cancelled by the caller", partial)
    }

    async fn stream(
        &self,
        chunks: &[String],
        delay: Duration,
        on_chunk: ChunkSink<'_>,
        cancel: &CancellationToken,
        honour_cancel: bool,
    ) -> Result<String, ProviderError> {
        let mut text = String::new();
        for chunk in chunks {
            if honour_cancel {
                tokio::select! {
                    () = cancel.cancelled() => return Err(self.cancelled(text)),
                    () = tokio::time::sleep(delay) => {}
                }
            } else {
                tokio::time::sleep(delay).await;
            }
            on_chunk(chunk);
            text.push_str(chunk);
        }
        Ok(text)
    }
}

impl Provider for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn model(&self) -> &str {
        "scripted-model"
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let _guard = InFlight(&self.in_flight);
            let prompt = request
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.clone())
                .unwrap_or_default();
            self.prompts.lock().push(prompt.clone());
            let step = self.next_step(&prompt);
            let text = match step {
                Step::Reply { chunks, delay } => {
                    self.stream(&chunks, delay, on_chunk, &cancel, true).await?
                }
                Step::Fail {
                    partial,
                    class,
                    message,
                } => {
                    let text = self
                        .stream(&partial, Duration::from_millis(1), on_chunk, &cancel, true)
                        .await?;
                    return Err(self.error(class, &message, text));
                }
                Step::Block { gate, chunks } => {
                    tokio::select! {
                        () = cancel.cancelled() => return Err(self.cancelled(String::new())),
                        permit = gate.0.acquire() => permit.expect("gate closed").forget(),
                    }
                    self.stream(&chunks, Duration::from_millis(1), on_chunk, &cancel, true)
                        .await?
                }
                Step::BlockIgnoringCancel { gate, chunks } => {
                    gate.0.acquire().await.expect("gate closed").forget();
                    self.stream(&chunks, Duration::from_millis(1), on_chunk, &cancel, false)
                        .await?
                }
                Step::Panic(message) => panic!("{message}"),
                Step::Flood { chunk, count } => {
                    let mut text = String::new();
                    for i in 0..count {
                        if cancel.is_cancelled() {
                            return Err(self.cancelled(text));
                        }
                        on_chunk(&chunk);
                        text.push_str(&chunk);
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    text
                }
            };
            if text.is_empty() {
                return Err(self.error(ErrorClass::EmptyReply, "empty reply", String::new()));
            }
            Ok(ChatOutcome {
                usage: Usage {
                    prompt_tokens: Some(7),
                    completion_tokens: Some(3),
                },
                text,
                finish_reason: Some("stop".into()),
                time_to_first_token: None,
            })
        })
    }

    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async {
            HealthReport {
                reachable: true,
                authorized: Some(true),
                model_present: Some(true),
                detail: "scripted".into(),
            }
        })
    }
}

/// A provider configuration with small limits: one attempt, concurrency 8, default breaker.
pub fn pcfg() -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Openai,
        base_url: Some("http://127.0.0.1:9/v1".into()),
        model: "scripted-model".into(),
        api_key_env: None,
        timeout_ms: Some(5_000),
        connect_timeout_ms: Some(1_000),
        first_token_timeout_ms: Some(5_000),
        max_attempts: Some(1),
        max_concurrency: Some(8),
        circuit_failure_threshold: Some(100),
        circuit_cooldown_ms: Some(60_000),
        max_tokens: None,
        temperature: None,
        project: None,
        location: None,
        token_command: None,
        token_command_timeout_ms: None,
        model_path: None,
        context_tokens: None,
        threads: None,
        idle_unload_secs: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Recording host.

/// How the host answers `ask_approval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskMode {
    Answer(Option<bool>),
    /// The question is never answered (the user ignores the dialog).
    Never,
}

/// (task id, edits, reasons) of one ask_approval call.
pub type Question = (TaskId, Vec<EditProposal>, Vec<String>);

pub struct RecordingHost {
    pub events: Mutex<Vec<TaskEvent>>,
    /// (task id, edits) of every apply_edit call.
    pub applied: Mutex<Vec<(TaskId, Vec<EditProposal>)>>,
    pub apply_answer: Mutex<Result<bool, String>>,
    /// (task id, edits, reasons) of every ask_approval call.
    pub asked: Mutex<Vec<Question>>,
    pub ask_mode: Mutex<AskMode>,
    /// (task id, timeout) of every alert.
    pub alerts: Mutex<Vec<(TaskId, Duration)>>,
    /// (task id, uri, diagnostics) of every publish.
    pub diagnostics: Mutex<Vec<(TaskId, String, Vec<AgentDiagnostic>)>>,
}

impl RecordingHost {
    pub fn new() -> Arc<RecordingHost> {
        Arc::new(RecordingHost {
            events: Mutex::new(Vec::new()),
            applied: Mutex::new(Vec::new()),
            apply_answer: Mutex::new(Ok(true)),
            asked: Mutex::new(Vec::new()),
            ask_mode: Mutex::new(AskMode::Never),
            alerts: Mutex::new(Vec::new()),
            diagnostics: Mutex::new(Vec::new()),
        })
    }
}

impl TaskHost for RecordingHost {
    fn on_event(&self, event: TaskEvent) {
        self.events.lock().push(event);
    }

    fn apply_edit(
        &self,
        task: &TaskInfo,
        edits: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        self.applied.lock().push((task.id.clone(), edits));
        let answer = self.apply_answer.lock().clone();
        Box::pin(async move { answer })
    }

    fn ask_approval(
        &self,
        task: &TaskInfo,
        edits: &[EditProposal],
        reasons: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        self.asked
            .lock()
            .push((task.id.clone(), edits.to_vec(), reasons.to_vec()));
        match *self.ask_mode.lock() {
            AskMode::Never => Box::pin(std::future::pending()),
            AskMode::Answer(answer) => Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                answer
            }),
        }
    }

    fn alert(
        &self,
        task: &TaskInfo,
        _edits: &[EditProposal],
        _reasons: &[String],
        timeout: Duration,
    ) {
        self.alerts.lock().push((task.id.clone(), timeout));
    }

    fn publish_diagnostics(&self, task: &TaskInfo, uri: &str, diagnostics: &[AgentDiagnostic]) {
        self.diagnostics
            .lock()
            .push((task.id.clone(), uri.to_string(), diagnostics.to_vec()));
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and specs.

/// An agent answering with the raw prompt as its user message (so providers can key on it).
pub fn agent(providers: &[&str]) -> AgentConfig {
    AgentConfig {
        providers: Some(providers.iter().map(|s| s.to_string()).collect()),
        prompt: Some("{{prompt}}".into()),
        ..AgentConfig::default()
    }
}

/// A configuration with the given global cap and no agents of its own.
pub fn config_with_cap(max_concurrent_tasks: usize) -> Config {
    let mut config = Config::default();
    config.defaults.max_concurrent_tasks = max_concurrent_tasks;
    config.agents = BTreeMap::new();
    config
}

pub fn target_range() -> Range {
    Range::new(Position::new(10, 0), Position::new(13, 0))
}

/// A spec on `file:///ws/a.rs` targeting [`TARGET`] as an explicit selection.
pub fn spec(agent: &str, prompt: &str) -> TaskSpec {
    TaskSpec {
        agent: agent.into(),
        prompt: prompt.into(),
        uri: Some("file:///ws/a.rs".into()),
        path: Some(PathBuf::from("/ws/a.rs")),
        display_path: "a.rs".into(),
        language: "rust".into(),
        document_version: Some(3),
        target_text: TARGET.into(),
        target_range: Some(target_range()),
        target_is_selection: true,
        ..TaskSpec::default()
    }
}

pub fn spec_prio(agent: &str, prompt: &str, priority: i32) -> TaskSpec {
    TaskSpec {
        priority: Some(priority),
        ..spec(agent, prompt)
    }
}

// ---------------------------------------------------------------------------------------------
// Harness.

pub struct Harness {
    pub orch: Orchestrator,
    pub host: Arc<RecordingHost>,
    pub audit: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
}

impl Harness {
    /// An orchestrator over `config` with workspace root `/ws`.
    pub fn new(config: Config) -> Harness {
        let host = RecordingHost::new();
        let audit = Arc::new(AuditLog::open_in_memory().expect("in-memory audit log"));
        let metrics = Arc::new(Metrics::new());
        let orch = Orchestrator::new(
            OrchestratorConfig {
                config,
                workspace_roots: vec![PathBuf::from("/ws")],
            },
            host.clone(),
            Some(audit.clone()),
            metrics.clone(),
            Arc::new(SecretStore::new()),
        );
        Harness {
            orch,
            host,
            audit,
            metrics,
        }
    }

    /// Inserts a scripted provider named `name`.
    pub fn provider(&self, name: &str, config: ProviderConfig) -> Arc<Scripted> {
        let p = Scripted::new(name);
        self.orch.insert_provider(name, p.clone(), config);
        p
    }

    pub fn submit(&self, spec: TaskSpec) -> TaskId {
        self.orch.submit(spec).expect("submit")
    }

    pub fn state(&self, id: &str) -> TaskState {
        self.orch.task(id).expect("task known").info.state
    }

    /// Waits until the task is in `state` (read from the orchestrator).
    pub async fn wait_state(&self, id: &str, state: TaskState) {
        wait_for(&format!("task {id} to be {state}"), || {
            self.orch.task(id).is_some_and(|t| t.info.state == state)
        })
        .await;
    }

    /// The last terminal state event of a task, if the host has seen one.
    pub fn terminal_info(&self, id: &str) -> Option<TaskInfo> {
        self.host.events.lock().iter().rev().find_map(|e| match e {
            TaskEvent::State { task } if task.id == id && task.state.is_terminal() => {
                Some(task.clone())
            }
            _ => None,
        })
    }

    /// Waits until the host saw a terminal state event of the task (sent after the audit write).
    pub async fn wait_terminal(&self, id: &str) -> TaskInfo {
        wait_for(&format!("task {id} to reach a terminal state"), || {
            self.terminal_info(id).is_some()
        })
        .await;
        self.terminal_info(id).expect("terminal")
    }

    pub fn events_for(&self, id: &str) -> Vec<TaskEvent> {
        self.host
            .events
            .lock()
            .iter()
            .filter(|e| match e {
                TaskEvent::State { task } => task.id == id,
                TaskEvent::Chunk { task_id, .. } | TaskEvent::Reset { task_id, .. } => {
                    task_id == id
                }
            })
            .cloned()
            .collect()
    }

    /// The sequence of states the host was told about for a task.
    /// The task's state transitions (each attempt's start repeats `running` with its provider
    /// and attempt count: counted once here).
    pub fn states_for(&self, id: &str) -> Vec<TaskState> {
        let mut states: Vec<TaskState> = self
            .events_for(id)
            .into_iter()
            .filter_map(|e| match e {
                TaskEvent::State { task } => Some(task.state),
                _ => None,
            })
            .collect();
        states.dedup();
        states
    }

    /// Ids in the order of their first `running` event.
    pub fn running_order(&self) -> Vec<TaskId> {
        let mut out: Vec<TaskId> = Vec::new();
        for e in self.host.events.lock().iter() {
            if let TaskEvent::State { task } = e
                && task.state == TaskState::Running
                && !out.contains(&task.id)
            {
                out.push(task.id.clone());
            }
        }
        out
    }

    /// Waits until every task the orchestrator knows is terminal.
    pub async fn wait_all_terminal(&self) {
        wait_for("every task to reach a terminal state", || {
            self.orch.tasks().iter().all(|t| t.state.is_terminal())
        })
        .await;
    }

    pub fn audit_entries(&self, kind: Option<EntryKind>, task_id: Option<&str>) -> Vec<AuditEntry> {
        self.audit.flush().expect("audit flush");
        self.audit
            .query(&AuditQuery {
                kind,
                task_id: task_id.map(str::to_string),
                limit: Some(10_000),
                ..AuditQuery::default()
            })
            .expect("audit query")
    }
}
