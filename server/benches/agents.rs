//! Criterion benchmarks for agent dispatch: orchestrator overhead with an instant in-process
//! provider, added latency per streamed chunk, submit → provider call, and final chunk →
//! terminal event.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use infinity_matrix::agents::{
    AgentDiagnostic, EditProposal, Orchestrator, OrchestratorConfig, PromptRequest, TaskEvent,
    TaskHost, TaskInfo, TaskSpec, prepare_task,
};
use infinity_matrix::audit::AuditLog;
use infinity_matrix::config::{AgentConfig, Config, ProviderConfig};
use infinity_matrix::documents::{Position, PositionEncoding};
use infinity_matrix::engine::{Engine, path_to_uri};
use infinity_matrix::metrics::Metrics;
use infinity_matrix::providers::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, HealthReport, Provider, ProviderError,
    ProviderKind, SecretStore,
};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Answers at once with `chunks` chunks; records when it was called and when it returned.
struct InstantProvider {
    chunks: usize,
    called: Mutex<Vec<Instant>>,
    returned: Mutex<Vec<Instant>>,
}

impl Provider for InstantProvider {
    fn name(&self) -> &str {
        "instant"
    }
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }
    fn model(&self) -> &str {
        "m"
    }
    fn chat<'a>(
        &'a self,
        _request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        _cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(async move {
            self.called.lock().push(Instant::now());
            let mut text = String::new();
            for _ in 0..self.chunks {
                on_chunk("tok ");
                text.push_str("tok ");
            }
            if self.chunks == 0 {
                on_chunk("ok");
                text.push_str("ok");
            }
            self.returned.lock().push(Instant::now());
            Ok(ChatOutcome {
                text,
                ..ChatOutcome::default()
            })
        })
    }
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async {
            HealthReport {
                reachable: true,
                authorized: None,
                model_present: None,
                detail: String::new(),
            }
        })
    }
}

/// Counts terminal events and records when each arrived.
#[derive(Default)]
struct CountingHost {
    done: AtomicUsize,
    chunks: AtomicUsize,
    finished_at: Mutex<Vec<Instant>>,
    notify: tokio::sync::Notify,
}

impl TaskHost for CountingHost {
    fn on_event(&self, event: TaskEvent) {
        match event {
            TaskEvent::State { task } if task.state.is_terminal() => {
                self.finished_at.lock().push(Instant::now());
                self.done.fetch_add(1, Ordering::SeqCst);
                self.notify.notify_waiters();
            }
            TaskEvent::Chunk { .. } => {
                self.chunks.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
    fn apply_edit(
        &self,
        _t: &TaskInfo,
        _e: Vec<EditProposal>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        Box::pin(async { Ok(true) })
    }
    fn ask_approval(
        &self,
        _t: &TaskInfo,
        _e: &[EditProposal],
        _r: &[String],
    ) -> BoxFuture<'static, Option<bool>> {
        Box::pin(async { Some(true) })
    }
    fn alert(&self, _t: &TaskInfo, _e: &[EditProposal], _r: &[String], _d: Duration) {}
    fn publish_diagnostics(&self, _t: &TaskInfo, _u: &str, _d: &[AgentDiagnostic]) {}
}

fn provider_config() -> ProviderConfig {
    let mut c = infinity_matrix::config::default_local_provider();
    c.max_concurrency = Some(100);
    c
}

fn setup(
    chunks: usize,
    audit: Option<Arc<AuditLog>>,
) -> (Orchestrator, Arc<CountingHost>, Arc<InstantProvider>) {
    let mut config = Config::default();
    config.defaults.max_concurrent_tasks = 100;
    config.defaults.providers = vec!["instant".into()];
    config.agents.insert(
        "bench".into(),
        AgentConfig {
            concurrency: Some(100),
            providers: Some(vec!["instant".into()]),
            ..AgentConfig::default()
        },
    );
    let host = Arc::new(CountingHost::default());
    let orch = Orchestrator::new(
        OrchestratorConfig {
            config,
            workspace_roots: vec![],
        },
        host.clone(),
        audit,
        Arc::new(Metrics::new()),
        Arc::new(SecretStore::new()),
    );
    let provider = Arc::new(InstantProvider {
        chunks,
        called: Mutex::new(Vec::new()),
        returned: Mutex::new(Vec::new()),
    });
    orch.insert_provider("instant", provider.clone(), provider_config());
    (orch, host, provider)
}

fn spec() -> TaskSpec {
    TaskSpec {
        agent: "bench".into(),
        prompt: "p".into(),
        target_text: "x".into(),
        ..TaskSpec::default()
    }
}

async fn wait_done(host: &CountingHost, n: usize) {
    while host.done.load(Ordering::SeqCst) < n {
        let notified = host.notify.notified();
        if host.done.load(Ordering::SeqCst) >= n {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
    }
}

fn dispatch(c: &mut Criterion) {
    // The server's own runtime (one worker beside the thread that blocks on it).
    let rt = infinity_matrix::process::server_runtime().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = Arc::new(AuditLog::open(&dir.path().join("bench.sqlite3"), false).expect("audit"));
    let mut group = c.benchmark_group("agents");
    group.sample_size(20);
    const BATCH: usize = 1000;
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function(
        "dispatch 1000 tasks, 100 concurrent, instant provider, audit on",
        |b| {
            let (orch, host, _p) = rt.block_on(async { setup(0, Some(audit.clone())) });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let base = host.done.load(Ordering::SeqCst);
                        for _ in 0..BATCH {
                            let _ = orch.submit(spec());
                        }
                        wait_done(&host, base + BATCH).await;
                    }
                    start.elapsed()
                })
            })
        },
    );
    group.throughput(criterion::Throughput::Elements(10_000));
    group.bench_function("stream 10000 chunks through one task", |b| {
        let (orch, host, _p) = rt.block_on(async { setup(10_000, None) });
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let base = host.done.load(Ordering::SeqCst);
                    let _ = orch.submit(spec());
                    wait_done(&host, base + 1).await;
                }
                start.elapsed()
            })
        })
    });
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function(
        "one task, one chunk (baseline for the per-chunk cost)",
        |b| {
            let (orch, host, _p) = rt.block_on(async { setup(0, None) });
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let base = host.done.load(Ordering::SeqCst);
                        let _ = orch.submit(spec());
                        wait_done(&host, base + 1).await;
                    }
                    start.elapsed()
                })
            })
        },
    );
    // Final chunk → terminal event (measured inside: provider return → host sees the end).
    group.bench_function("provider's final chunk to the terminal task event", |b| {
        let (orch, host, provider) = rt.block_on(async { setup(1, None) });
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let base = host.done.load(Ordering::SeqCst);
                    let _ = orch.submit(spec());
                    wait_done(&host, base + 1).await;
                    let returned = provider.returned.lock().last().copied();
                    let finished = host.finished_at.lock().last().copied();
                    if let (Some(r), Some(f)) = (returned, finished) {
                        total += f.saturating_duration_since(r);
                    }
                }
                total
            })
        })
    });
    // executePrompt's work (snapshot, target, context with a warm index on a 5,000-line file)
    // until the provider is called.
    let ws = tempfile::tempdir().expect("tempdir");
    let src = ws.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(
        src.join("util.rs"),
        "pub fn helper(x: u64) -> u64 {\n    x * 2\n}\n",
    )
    .expect("write");
    let mut big = String::new();
    for i in 0..700 {
        big.push_str(&format!("pub fn compute_{i}(x: u64) -> u64 {{\n    let y = helper(x);\n    y + {i}\n}}\n\nstruct S{i};\n\n"));
    }
    let path = src.join("main.rs");
    std::fs::write(&path, &big).expect("write");
    let engine = Engine::new();
    engine.set_encoding(PositionEncoding::Utf16);
    engine.set_roots(vec![ws.path().to_path_buf()]);
    engine.index_workspace(&|_| {});
    let uri = path_to_uri(&path);
    engine.open_document(&uri, Some(path.clone()), "rust", 1, &big);
    let _ = engine.snapshot(&uri);
    group.bench_function(
        "executePrompt to provider call, 5000-line file, warm index",
        |b| {
            let (orch, host, provider) = rt.block_on(async { setup(1, None) });
            let agent = orch.agent("bench").expect("agent");
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let base = host.done.load(Ordering::SeqCst);
                        let start = Instant::now();
                        let snap = engine.snapshot(&uri).expect("snapshot");
                        let req = PromptRequest {
                            prompt: "why".into(),
                            position: Some(Position::new(2500, 8)),
                            range: None,
                            diagnostics: vec![],
                            ..PromptRequest::default()
                        };
                        let spec = prepare_task(&engine, &agent, &snap, &req).expect("prepare");
                        let _ = orch.submit(spec);
                        wait_done(&host, base + 1).await;
                        if let Some(called) = provider.called.lock().last() {
                            total += called.saturating_duration_since(start);
                        }
                    }
                    total
                })
            })
        },
    );
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
