//! Integration tests of the agent orchestrator with a scripted in-process provider and a
//! recording host: scheduling, caps, lifecycle, cancellation, failover, circuit breakers,
//! approvals, diagnostics, background triggers, shutdown and secret redaction.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use infinity_matrix::agents::{
    AgentDef, OrchestratorConfig, OrchestratorError, Severity, TaskEvent, TaskSpec, TaskState,
};
use infinity_matrix::audit::EntryKind;
use infinity_matrix::config::{AgentConfig, Approval, OutputMode, Trigger};
use infinity_matrix::metrics;
use infinity_matrix::providers::ErrorClass;

fn edit_agent(providers: &[&str], approval: Approval) -> AgentConfig {
    AgentConfig {
        output: Some(OutputMode::Edit),
        approval: Some(approval),
        ..agent(providers)
    }
}

fn chunk_events(h: &Harness, id: &str) -> Vec<(u64, String)> {
    h.events_for(id)
        .into_iter()
        .filter_map(|e| match e {
            TaskEvent::Chunk { seq, text, .. } => Some((seq, text)),
            _ => None,
        })
        .collect()
}

/// The `seq` of every chunk and reset event of a task, in order.
fn stream_seqs(h: &Harness, id: &str) -> Vec<u64> {
    h.events_for(id)
        .into_iter()
        .filter_map(|e| match e {
            TaskEvent::Chunk { seq, .. } | TaskEvent::Reset { seq, .. } => Some(seq),
            TaskEvent::State { .. } => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scheduling and caps.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_starts_first_and_equal_priorities_are_fifo() {
    let mut config = config_with_cap(1);
    config.agents.insert("w".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.on("blocker", Step::block(&gate));

    let blocker = h.submit(spec("w", "blocker"));
    wait_for("the blocker to reach the provider", || p.in_flight() == 1).await;
    let low = h.submit(spec_prio("w", "low", 0));
    let high = h.submit(spec_prio("w", "high", 10));
    let f1 = h.submit(spec_prio("w", "f1", 5));
    let f2 = h.submit(spec_prio("w", "f2", 5));
    let f3 = h.submit(spec_prio("w", "f3", 5));
    for id in [&low, &high, &f1, &f2, &f3] {
        assert_eq!(
            h.state(id),
            TaskState::Queued,
            "global cap 1 must keep {id} queued behind the blocker"
        );
    }
    assert_eq!(h.orch.status().queued, 5);

    gate.open_all();
    for id in [&blocker, &low, &high, &f1, &f2, &f3] {
        assert_eq!(h.wait_terminal(id).await.state, TaskState::Succeeded);
    }
    assert_eq!(
        h.running_order(),
        vec![blocker, high, f1, f2, f3, low],
        "running order must be priority first, FIFO within a priority"
    );
    assert_eq!(
        p.prompts(),
        vec!["blocker", "high", "f1", "f2", "f3", "low"]
    );
    assert_eq!(
        p.max_in_flight(),
        1,
        "global cap 1 must never allow two calls at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_agent_concurrency_cap_keeps_second_task_queued() {
    let mut config = config_with_cap(8);
    config.agents.insert(
        "solo".into(),
        AgentConfig {
            concurrency: Some(1),
            ..agent(&["p"])
        },
    );
    config.agents.insert("other".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.on("solo1", Step::block(&gate));
    p.on("solo2", Step::block(&gate));
    p.on("other1", Step::block(&gate));

    let solo1 = h.submit(spec("solo", "solo1"));
    let solo2 = h.submit(spec("solo", "solo2"));
    let other1 = h.submit(spec("other", "other1"));
    wait_for("solo1 and other1 in the provider", || p.in_flight() == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.state(&solo1), TaskState::Running);
    assert_eq!(h.state(&other1), TaskState::Running);
    assert_eq!(
        h.state(&solo2),
        TaskState::Queued,
        "agent concurrency 1: the second solo task must wait"
    );
    let status = h.orch.status();
    let solo = status
        .agents
        .iter()
        .find(|a| a.name == "solo")
        .expect("solo agent in status");
    assert_eq!((solo.running, solo.queued), (1, 1));
    assert_eq!(p.in_flight(), 2);

    // solo2 may start only once solo1 is done.
    gate.open_all();
    for id in [&solo1, &solo2, &other1] {
        assert_eq!(h.wait_terminal(id).await.state, TaskState::Succeeded);
    }
    let events = h.host.events.lock().clone();
    let pos =
        |pred: &dyn Fn(&TaskEvent) -> bool| events.iter().position(pred).expect("event present");
    let solo1_done = pos(
        &|e| matches!(e, TaskEvent::State { task } if task.id == solo1 && task.state.is_terminal()),
    );
    let solo2_running = pos(
        &|e| matches!(e, TaskEvent::State { task } if task.id == solo2 && task.state == TaskState::Running),
    );
    assert!(
        solo2_running > solo1_done,
        "solo2 started before solo1 finished"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_provider_cap_is_shared_between_agents() {
    let mut config = config_with_cap(8);
    config.agents.insert(
        "x".into(),
        AgentConfig {
            concurrency: Some(5),
            ..agent(&["shared"])
        },
    );
    config.agents.insert(
        "y".into(),
        AgentConfig {
            concurrency: Some(5),
            ..agent(&["shared"])
        },
    );
    let h = Harness::new(config);
    let p = h.provider("shared", pcfg().with_concurrency(1));
    let gate = Gate::new();
    p.on("x1", Step::block(&gate));
    p.set_default(Step::reply(&["a", "b", "c"]));

    let x1 = h.submit(spec("x", "x1"));
    wait_for("x1 in the provider", || p.in_flight() == 1).await;
    let y1 = h.submit(spec("y", "y1"));
    let x2 = h.submit(spec("x", "x2"));
    let y2 = h.submit(spec("y", "y2"));
    let y3 = h.submit(spec("y", "y3"));
    // Every task is running (the agents allow it) but waits for the provider's single slot.
    wait_for("all five tasks running", || h.orch.status().running == 5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        p.in_flight(),
        1,
        "provider max_concurrency 1 allowed a second call"
    );
    assert_eq!(p.calls(), 1);

    // A task waiting for the provider slot can be cancelled and never reaches the provider.
    h.orch.cancel(&y3).expect("cancel y3");
    assert_eq!(h.wait_terminal(&y3).await.state, TaskState::Cancelled);

    gate.open_all();
    for id in [&x1, &y1, &x2, &y2] {
        assert_eq!(h.wait_terminal(id).await.state, TaskState::Succeeded);
    }
    assert_eq!(
        p.max_in_flight(),
        1,
        "two calls were in flight on a provider with max_concurrency 1"
    );
    assert_eq!(p.calls(), 4);
    assert!(
        !p.prompts().contains(&"y3".to_string()),
        "the cancelled task reached the provider"
    );
}

trait WithConcurrency {
    fn with_concurrency(self, n: usize) -> Self;
}

impl WithConcurrency for infinity_matrix::config::ProviderConfig {
    fn with_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_cap_limits_tasks_across_agents() {
    let mut config = config_with_cap(2);
    for name in ["a", "b", "c"] {
        config.agents.insert(
            name.into(),
            AgentConfig {
                concurrency: Some(5),
                ..agent(&["p"])
            },
        );
    }
    let h = Harness::new(config);
    let p = h.provider("p", pcfg().with_concurrency(10));
    let gate = Gate::new();
    p.set_default(Step::block(&gate));

    let ids: Vec<String> = [("a", "t1"), ("b", "t2"), ("c", "t3"), ("a", "t4")]
        .iter()
        .map(|(a, t)| h.submit(spec(a, t)))
        .collect();
    wait_for("two calls in flight", || p.in_flight() == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = h.orch.status();
    assert_eq!((status.running, status.queued), (2, 2), "global cap 2");
    assert_eq!(p.in_flight(), 2);
    assert_eq!(
        ids.iter()
            .filter(|id| h.state(id) == TaskState::Queued)
            .count(),
        2
    );

    gate.open_all();
    for id in &ids {
        assert_eq!(h.wait_terminal(id).await.state, TaskState::Succeeded);
    }
    assert_eq!(
        p.max_in_flight(),
        2,
        "more than two calls ran under a global cap of 2"
    );
}

// ---------------------------------------------------------------------------------------------
// Lifecycle.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_and_streamed_chunks() {
    let mut config = config_with_cap(4);
    config.agents.insert("ask".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    p.on("hello", Step::reply(&["Hel", "lo, ", "wor", "ld", "!"]));

    let id = h.submit(spec("ask", "hello"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(
        h.states_for(&id),
        vec![TaskState::Queued, TaskState::Running, TaskState::Succeeded]
    );
    // The attempt's start is announced with its provider while the task runs (ACP shows each
    // attempt as a tool call; the editor's header shows the provider live).
    let attempt_started = h.events_for(&id).into_iter().any(|e| match e {
        TaskEvent::State { task } => {
            task.state == TaskState::Running
                && task.provider.as_deref() == Some("p")
                && task.attempts == 1
        }
        _ => false,
    });
    assert!(
        attempt_started,
        "no running event named the attempt's provider"
    );

    let chunks = chunk_events(&h, &id);
    let seqs: Vec<u64> = chunks.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5],
        "chunk seq must start at 1 and have no gaps"
    );
    let joined: String = chunks.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(joined, "Hello, world!");
    // Chunks arrive between the running and the succeeded events.
    let events = h.events_for(&id);
    let first_chunk = events
        .iter()
        .position(|e| matches!(e, TaskEvent::Chunk { .. }))
        .expect("chunk");
    let running = events
        .iter()
        .position(|e| matches!(e, TaskEvent::State { task } if task.state == TaskState::Running))
        .expect("running");
    let done = events
        .iter()
        .position(|e| matches!(e, TaskEvent::State { task } if task.state == TaskState::Succeeded))
        .expect("done");
    assert!(running < first_chunk && first_chunk < done);

    let detail = h.orch.task(&id).expect("detail");
    assert_eq!(detail.text, joined);
    assert_eq!(detail.info.provider.as_deref(), Some("p"));
    assert_eq!(detail.info.model.as_deref(), Some("scripted-model"));
    assert_eq!((detail.info.attempts, detail.info.retries), (1, 0));
    assert!(detail.info.started_at_ms.is_some() && detail.info.finished_at_ms.is_some());
    assert_eq!(detail.info.error, None);

    assert_eq!(
        h.metrics.counter(
            metrics::TASKS_TOTAL,
            &[("agent", "ask"), ("state", "succeeded")]
        ),
        1
    );
    assert_eq!(
        h.metrics.counter(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", "p"), ("outcome", "ok")]
        ),
        1
    );
    h.audit.flush().expect("flush");
    let row = h.audit.task(&id).expect("audit read").expect("task row");
    assert_eq!(row.state, TaskState::Succeeded);
    assert_eq!(row.provider.as_deref(), Some("p"));
    assert_eq!(row.reply.as_deref(), Some("Hello, world!"));
}

// ---------------------------------------------------------------------------------------------
// Cancellation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_queued_task_never_reaches_the_provider() {
    let mut config = config_with_cap(1);
    config.agents.insert("w".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.on("blocker", Step::block(&gate));

    let blocker = h.submit(spec("w", "blocker"));
    wait_for("the blocker in the provider", || p.in_flight() == 1).await;
    let queued = h.submit(spec("w", "queued"));
    assert_eq!(h.state(&queued), TaskState::Queued);
    h.orch.cancel(&queued).expect("cancel queued");
    let info = h.wait_terminal(&queued).await;
    assert_eq!(info.state, TaskState::Cancelled);
    assert_eq!(
        h.states_for(&queued),
        vec![TaskState::Queued, TaskState::Cancelled]
    );
    assert_eq!(h.orch.status().queued, 0);

    gate.open_all();
    assert_eq!(h.wait_terminal(&blocker).await.state, TaskState::Succeeded);
    // Let the dispatcher run once more: the cancelled task must not start.
    let after = h.submit(spec("w", "after"));
    assert_eq!(h.wait_terminal(&after).await.state, TaskState::Succeeded);
    assert_eq!(
        p.prompts(),
        vec!["blocker", "after"],
        "a task cancelled while queued reached the provider"
    );
    h.wait_all_terminal().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_task_cancels_the_provider_call() {
    let mut config = config_with_cap(2);
    config.agents.insert("w".into(), agent(&["p", "backup"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let backup = h.provider("backup", pcfg());
    let gate = Gate::new();
    p.on("long", Step::block(&gate));

    let id = h.submit(spec("w", "long"));
    wait_for("the call in the provider", || p.in_flight() == 1).await;
    assert_eq!(h.state(&id), TaskState::Running);
    h.orch.cancel(&id).expect("cancel running");
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Cancelled);
    assert_eq!(p.cancels(), 1, "the provider did not see the cancellation");
    assert_eq!(p.in_flight(), 0);
    assert_eq!(backup.calls(), 0, "a cancelled task must not fail over");
    assert_eq!(h.orch.status().running, 0);
    assert_eq!(
        h.metrics.counter(
            metrics::TASKS_TOTAL,
            &[("agent", "w"), ("state", "cancelled")]
        ),
        1
    );
    gate.open_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_awaiting_approval_never_applies() {
    let mut config = config_with_cap(2);
    config
        .agents
        .insert("edit".into(), edit_agent(&["p"], Approval::Manual));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    p.set_default(Step::text(EDIT_REPLY));
    *h.host.ask_mode.lock() = AskMode::Never;

    let id = h.submit(spec("edit", "change it"));
    h.wait_state(&id, TaskState::AwaitingApproval).await;
    assert_eq!(h.host.asked.lock().len(), 1);
    h.orch.cancel(&id).expect("cancel awaiting");
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Cancelled);
    assert!(
        h.host.applied.lock().is_empty(),
        "apply_edit was called for a cancelled task"
    );
    assert!(
        h.orch.approve(&id, true).is_err(),
        "approving a cancelled task must fail"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.host.applied.lock().is_empty());
    assert_eq!(h.orch.status().running, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_finished_or_unknown_task_is_an_error() {
    let mut config = config_with_cap(2);
    config.agents.insert("w".into(), agent(&["p"]));
    config.agents.insert("bad".into(), agent(&["broken"]));
    let h = Harness::new(config);
    h.provider("p", pcfg());
    let broken = h.provider("broken", pcfg());
    broken.set_default(Step::fail(
        ErrorClass::BadRequest { status: 400 },
        "bad request",
    ));

    let ok = h.submit(spec("w", "fine"));
    let failed = h.submit(spec("bad", "doomed"));
    assert_eq!(h.wait_terminal(&ok).await.state, TaskState::Succeeded);
    assert_eq!(h.wait_terminal(&failed).await.state, TaskState::Failed);
    assert!(matches!(
        h.orch.cancel(&ok),
        Err(OrchestratorError::AlreadyFinished(_, "succeeded"))
    ));
    assert!(matches!(
        h.orch.cancel(&failed),
        Err(OrchestratorError::AlreadyFinished(_, "failed"))
    ));
    assert!(matches!(
        h.orch.cancel("no-such-task"),
        Err(OrchestratorError::UnknownTask(_))
    ));
    assert_eq!(
        h.state(&ok),
        TaskState::Succeeded,
        "cancel must not change a finished task"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_right_after_submit_never_leaks_a_slot() {
    let mut config = config_with_cap(1);
    config.agents.insert("w".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    p.set_default(Step::reply(&["x", "y"]));
    // Each round starts with the slot free (if nothing leaked) and cancels after a varying
    // spin, sweeping the window between dispatch and the task's transition to running.
    for i in 0..1500u64 {
        let id = h.submit(spec("w", &format!("t{i}")));
        let spin_until = std::time::Instant::now() + Duration::from_micros((i % 60) * 4);
        while std::time::Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        let _ = h.orch.cancel(&id);
        h.wait_terminal(&id).await;
    }
    h.wait_all_terminal().await;
    let last = h.submit(spec("w", "last"));
    let finished = eventually(|| h.terminal_info(&last).is_some()).await;
    assert!(
        finished,
        "BUG: after cancelling tasks right after submitting them, a new task never starts (state {:?}, status \
         running={} queued={} with global cap 1): a task cancelled between dispatch and its transition to \
         running leaks a concurrency slot",
        h.state(&last),
        h.orch.status().running,
        h.orch.status().queued
    );
    assert_eq!(h.state(&last), TaskState::Succeeded);
}

// ---------------------------------------------------------------------------------------------
// Failover, retries, circuit breakers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_failure_fails_over_at_once() {
    let mut config = config_with_cap(2);
    config.agents.insert("fo".into(), agent(&["bad", "good"]));
    let h = Harness::new(config);
    let bad = h.provider("bad", pcfg().with_attempts(3));
    let good = h.provider("good", pcfg());
    bad.set_default(Step::fail(
        ErrorClass::BadRequest { status: 400 },
        "model not found",
    ));
    good.set_default(Step::reply(&["fine"]));

    let id = h.submit(spec("fo", "q"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(info.provider.as_deref(), Some("good"));
    assert_eq!(bad.calls(), 1, "a BadRequest must not be retried");
    assert_eq!(good.calls(), 1);
    assert_eq!(h.orch.task(&id).expect("detail").text, "fine");
    assert_eq!(
        h.metrics.counter(
            metrics::FAILOVERS_TOTAL,
            &[("agent", "fo"), ("from", "bad"), ("to", "good")]
        ),
        1
    );

    let attempts = h.audit_entries(Some(EntryKind::Attempt), Some(&id));
    let summary: Vec<(String, String)> = attempts
        .iter()
        .map(|e| {
            (
                e.details["provider"].as_str().unwrap_or("").to_string(),
                e.details["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("bad".to_string(), "bad_request".to_string()),
            ("good".to_string(), "ok".to_string())
        ]
    );
    assert_eq!(attempts[0].details["error_class"]["class"], "bad_request");
    assert_eq!(attempts[0].details["error_class"]["status"], 400);
    assert!(attempts[0].summary.contains("model not found"));
}

trait WithAttempts {
    fn with_attempts(self, n: u32) -> Self;
    fn with_breaker(self, threshold: u32, cooldown_ms: u64) -> Self;
}

impl WithAttempts for infinity_matrix::config::ProviderConfig {
    fn with_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    fn with_breaker(mut self, threshold: u32, cooldown_ms: u64) -> Self {
        self.circuit_failure_threshold = Some(threshold);
        self.circuit_cooldown_ms = Some(cooldown_ms);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_exhaust_attempts_then_fail_over() {
    let mut config = config_with_cap(2);
    config.agents.insert("fo".into(), agent(&["bad", "good"]));
    let h = Harness::new(config);
    let bad = h.provider("bad", pcfg().with_attempts(2));
    let good = h.provider("good", pcfg());
    bad.set_default(Step::fail(ErrorClass::Server { status: 503 }, "overloaded"));
    good.set_default(Step::reply(&["from ", "good"]));

    let id = h.submit(spec("fo", "q"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(info.provider.as_deref(), Some("good"));
    assert_eq!(
        bad.calls(),
        2,
        "max_attempts 2 means two calls on the failing provider"
    );
    assert_eq!(good.calls(), 1);
    assert_eq!((info.attempts, info.retries), (3, 1));
    assert_eq!(
        h.metrics.counter(
            metrics::FAILOVERS_TOTAL,
            &[("agent", "fo"), ("from", "bad"), ("to", "good")]
        ),
        1
    );
    assert_eq!(
        h.metrics
            .counter(metrics::PROVIDER_RETRIES_TOTAL, &[("provider", "bad")]),
        1
    );
    assert_eq!(
        h.metrics.counter(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", "bad"), ("outcome", "server")]
        ),
        2
    );

    let attempts = h.audit_entries(Some(EntryKind::Attempt), Some(&id));
    assert_eq!(
        attempts.len(),
        3,
        "every attempt is in the audit log: {attempts:#?}"
    );
    let on_bad: Vec<_> = attempts
        .iter()
        .filter(|e| e.details["provider"] == "bad")
        .collect();
    let on_good: Vec<_> = attempts
        .iter()
        .filter(|e| e.details["provider"] == "good")
        .collect();
    assert_eq!(on_bad.len(), 2);
    assert_eq!(on_good.len(), 1);
    for e in &on_bad {
        assert_eq!(e.details["outcome"], "server");
        assert_eq!(e.details["error_class"]["class"], "server");
        assert_eq!(e.details["error_class"]["status"], 503);
    }
    let delays: BTreeSet<bool> = on_bad
        .iter()
        .map(|e| e.details["retry_delay_ms"].is_null())
        .collect();
    assert_eq!(
        delays,
        BTreeSet::from([false, true]),
        "the first bad attempt has a retry delay, the last none"
    );
    assert_eq!(on_good[0].details["outcome"], "ok");
    assert_eq!(h.orch.task(&id).expect("detail").text, "from good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_attempt_numbers_count_across_providers() {
    let mut config = config_with_cap(2);
    config.agents.insert("fo".into(), agent(&["bad", "good"]));
    let h = Harness::new(config);
    let bad = h.provider("bad", pcfg().with_attempts(2));
    h.provider("good", pcfg());
    bad.set_default(Step::fail(ErrorClass::Server { status: 500 }, "boom"));

    let id = h.submit(spec("fo", "q"));
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Succeeded);
    let attempts = h.audit_entries(Some(EntryKind::Attempt), Some(&id));
    let mut numbers: Vec<i64> = attempts
        .iter()
        .map(|e| e.details["attempt"].as_i64().unwrap_or(-1))
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        vec![1, 2, 3],
        "BUG: AttemptRecord.attempt is documented as \"1 for the first attempt of the task, counting across \
         providers\", but the orchestrator records the per-provider attempt number (the good provider's attempt is 1 again)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_text_from_a_failed_provider_is_reset() {
    let mut config = config_with_cap(2);
    config.agents.insert("fo".into(), agent(&["bad", "good"]));
    let h = Harness::new(config);
    let bad = h.provider("bad", pcfg());
    let good = h.provider("good", pcfg());
    bad.set_default(Step::fail_after(
        &["half ", "an answer"],
        ErrorClass::StreamBroken,
        "connection reset",
    ));
    good.set_default(Step::reply(&["whole ", "answer"]));

    let id = h.submit(spec("fo", "q"));
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Succeeded);
    let events = h.events_for(&id);
    let reset_at = events
        .iter()
        .position(|e| matches!(e, TaskEvent::Reset { .. }))
        .expect("a Reset event after partial text");
    let before: String = events[..reset_at]
        .iter()
        .filter_map(|e| match e {
            TaskEvent::Chunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let after: String = events[reset_at..]
        .iter()
        .filter_map(|e| match e {
            TaskEvent::Chunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(before, "half an answer");
    assert_eq!(after, "whole answer");
    assert_eq!(
        stream_seqs(&h, &id),
        vec![1, 2, 3, 4, 5],
        "chunk and reset seqs must be gapless"
    );
    if let TaskEvent::Reset { reason, .. } = &events[reset_at] {
        assert!(
            reason.contains("bad"),
            "reset reason names the failed provider: {reason}"
        );
    }
    assert_eq!(h.orch.task(&id).expect("detail").text, "whole answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_opens_rejects_and_recovers_through_a_probe() {
    let mut config = config_with_cap(2);
    config
        .agents
        .insert("dual".into(), agent(&["flaky", "good"]));
    config.agents.insert("solo".into(), agent(&["flaky"]));
    let h = Harness::new(config);
    let flaky = h.provider("flaky", pcfg().with_breaker(2, 2_000));
    let good = h.provider("good", pcfg());
    flaky.push(Step::fail(ErrorClass::Server { status: 500 }, "down"));
    flaky.push(Step::fail(ErrorClass::Server { status: 500 }, "down"));
    flaky.set_default(Step::reply(&["probe ok"]));
    let circuit = |h: &Harness| {
        let p = h
            .orch
            .status()
            .providers
            .into_iter()
            .find(|p| p.name == "flaky")
            .expect("flaky in status");
        (p.circuit, p.consecutive_failures)
    };

    let t1 = h.submit(spec("dual", "t1"));
    assert_eq!(h.wait_terminal(&t1).await.state, TaskState::Succeeded);
    assert_eq!(circuit(&h), ("closed".to_string(), 1));
    let t2 = h.submit(spec("dual", "t2"));
    assert_eq!(h.wait_terminal(&t2).await.state, TaskState::Succeeded);
    assert_eq!(flaky.calls(), 2);
    assert_eq!(
        circuit(&h).0,
        "open",
        "two consecutive failures with threshold 2 must open the circuit"
    );
    assert_eq!(
        h.metrics
            .gauge(metrics::CIRCUIT_STATE, &[("provider", "flaky")]),
        Some(metrics::CIRCUIT_OPEN)
    );

    // Open: the provider is not called at all.
    let t3 = h.submit(spec("solo", "t3"));
    let info3 = h.wait_terminal(&t3).await;
    assert_eq!(info3.state, TaskState::Failed);
    let err = info3.error.unwrap_or_default();
    assert!(
        err.contains("circuit_open"),
        "error should say the circuit is open: {err}"
    );
    let t4 = h.submit(spec("dual", "t4"));
    let info4 = h.wait_terminal(&t4).await;
    assert_eq!(info4.state, TaskState::Succeeded);
    assert_eq!(info4.provider.as_deref(), Some("good"));
    assert_eq!(
        flaky.calls(),
        2,
        "an open circuit must reject without calling the provider"
    );
    assert_eq!(good.calls(), 3);

    // After the cool-down a half-open probe goes through and its success closes the circuit.
    wait_for("the circuit to become half-open", || {
        circuit(&h).0 == "half_open"
    })
    .await;
    let t5 = h.submit(spec("solo", "t5"));
    let info5 = h.wait_terminal(&t5).await;
    assert_eq!(
        info5.state,
        TaskState::Succeeded,
        "the half-open probe should succeed: {:?}",
        info5.error
    );
    assert_eq!(info5.provider.as_deref(), Some("flaky"));
    assert_eq!(flaky.calls(), 3);
    assert_eq!(circuit(&h), ("closed".to_string(), 0));
    assert_eq!(
        h.metrics
            .gauge(metrics::CIRCUIT_STATE, &[("provider", "flaky")]),
        Some(metrics::CIRCUIT_CLOSED)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_providers_failing_names_each_and_explains_configuration() {
    let mut config = config_with_cap(2);
    config
        .agents
        .insert("doomed".into(), agent(&["alpha", "beta", "ghost"]));
    let h = Harness::new(config);
    let alpha = h.provider("alpha", pcfg());
    let beta = h.provider("beta", pcfg().with_attempts(2));
    alpha.set_default(Step::fail(
        ErrorClass::Auth { status: 401 },
        "invalid api key",
    ));
    beta.set_default(Step::fail(ErrorClass::Connect, "connection refused"));

    let id = h.submit(spec("doomed", "q"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Failed);
    let err = info.error.expect("error message");
    for needle in [
        "alpha (auth)",
        "invalid api key",
        "beta (connect)",
        "connection refused",
        "ghost",
        "no such provider",
    ] {
        assert!(
            err.contains(needle),
            "error should mention {needle:?}: {err}"
        );
    }
    assert!(
        err.contains("config.toml") && err.contains("[providers."),
        "error should explain how to configure a provider: {err}"
    );
    assert_eq!((alpha.calls(), beta.calls()), (1, 2));

    let attempts = h.audit_entries(Some(EntryKind::Attempt), Some(&id));
    let outcomes: Vec<(String, String)> = attempts
        .iter()
        .map(|e| {
            (
                e.details["provider"].as_str().unwrap_or("").to_string(),
                e.details["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for expected in [("alpha", "auth"), ("beta", "connect"), ("ghost", "config")] {
        assert!(
            outcomes.contains(&(expected.0.to_string(), expected.1.to_string())),
            "audit attempts should include {expected:?}: {outcomes:?}"
        );
    }
    h.audit.flush().expect("flush");
    let row = h.audit.task(&id).expect("read").expect("row");
    assert_eq!(row.state, TaskState::Failed);
    assert!(row.error.unwrap_or_default().contains("alpha"));
}

// ---------------------------------------------------------------------------------------------
// Edits and approvals.

fn edit_harness(approval: Approval) -> (Harness, Arc<Scripted>) {
    let mut config = config_with_cap(4);
    config
        .agents
        .insert("edit".into(), edit_agent(&["p"], approval));
    config.policy.alert_timeout_secs = 1;
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    p.set_default(Step::text(EDIT_REPLY));
    (h, p)
}

fn approvals(h: &Harness, id: &str) -> Vec<(String, String)> {
    h.audit_entries(Some(EntryKind::Approval), Some(id))
        .iter()
        .map(|e| {
            (
                e.details["decision"].as_str().unwrap_or("").to_string(),
                e.details["by_whom"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn edits_applied(h: &Harness, id: &str) -> Vec<bool> {
    h.audit_entries(Some(EntryKind::Edit), Some(id))
        .iter()
        .map(|e| e.details["applied"].as_bool().unwrap_or(false))
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_edit_inside_the_selection_is_applied() {
    let (h, _p) = edit_harness(Approval::Auto);
    let id = h.submit(spec("edit", "bump it"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert!(h.host.asked.lock().is_empty(), "auto approval must not ask");
    let applied = h.host.applied.lock().clone();
    assert_eq!(applied.len(), 1);
    let (task, edits) = &applied[0];
    assert_eq!(task, &id);
    assert_eq!(edits.len(), 1);
    let e = &edits[0];
    assert_eq!(e.uri, "file:///ws/a.rs");
    assert_eq!(e.range, target_range());
    assert_eq!(e.new_text, EDIT_NEW_TEXT);
    assert_eq!(e.original_text, TARGET);
    assert_eq!(e.version, Some(3));
    assert_eq!(e.lines_changed, 1, "one line replaced by another");
    assert_eq!(
        h.states_for(&id),
        vec![TaskState::Queued, TaskState::Running, TaskState::Succeeded]
    );
    assert_eq!(approvals(&h, &id), vec![pair("auto", "policy")]);
    assert_eq!(edits_applied(&h, &id), vec![true]);
    let detail = h.orch.task(&id).expect("detail");
    assert_eq!(
        detail.edit.map(|e| e.new_text),
        Some(EDIT_NEW_TEXT.to_string())
    );
    assert_eq!(detail.approval.as_deref(), Some("auto"));
}

/// `policy.max_auto_lines` is held against the line diff's count: one line replaced is one
/// line (trimming identical lines at both ends counted it twice, and everything between two
/// separate changes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_auto_lines_counts_the_lines_a_line_diff_changes() {
    let mut config = config_with_cap(4);
    config
        .agents
        .insert("edit".into(), edit_agent(&["p"], Approval::Auto));
    config.policy.max_auto_lines = 1;
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    p.set_default(Step::text(EDIT_REPLY));
    let id = h.submit(spec("edit", "bump it"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert!(
        h.host.asked.lock().is_empty(),
        "a one-line edit is under 1 line"
    );
    assert_eq!(approvals(&h, &id), vec![pair("auto", "policy")]);

    // The first and the last line changed: two lines, over the limit, so the user is asked.
    p.set_default(Step::text(
        "```rust\nfn a() -> i64 {\n    1\n} // two\n```\n",
    ));
    *h.host.ask_mode.lock() = AskMode::Answer(Some(false));
    let id = h.submit(spec("edit", "widen it"));
    let info = h.wait_terminal(&id).await;
    let asked = h.host.asked.lock().clone();
    assert_eq!(asked.len(), 1, "{:?}", info.error);
    assert_eq!(asked[0].1[0].lines_changed, 2);
    assert!(
        asked[0].2.iter().any(|r| r.contains("2 lines changed")),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_edit_accepted_in_the_dialog_is_applied() {
    let (h, _p) = edit_harness(Approval::Manual);
    *h.host.ask_mode.lock() = AskMode::Answer(Some(true));
    let id = h.submit(spec("edit", "bump it"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert_eq!(h.host.asked.lock().len(), 1);
    assert_eq!(h.host.asked.lock()[0].1[0].new_text, EDIT_NEW_TEXT);
    assert_eq!(h.host.applied.lock().len(), 1);
    assert_eq!(
        h.states_for(&id),
        vec![
            TaskState::Queued,
            TaskState::Running,
            TaskState::AwaitingApproval,
            TaskState::Running,
            TaskState::Succeeded
        ]
    );
    assert_eq!(approvals(&h, &id), vec![pair("accepted", "user")]);
    assert_eq!(edits_applied(&h, &id), vec![true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_edit_rejected_in_the_dialog_is_cancelled() {
    let (h, _p) = edit_harness(Approval::Manual);
    *h.host.ask_mode.lock() = AskMode::Answer(Some(false));
    let id = h.submit(spec("edit", "bump it"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Cancelled);
    assert!(info.error.unwrap_or_default().contains("edit rejected"));
    assert!(
        h.host.applied.lock().is_empty(),
        "a rejected edit was applied"
    );
    assert_eq!(approvals(&h, &id), vec![pair("rejected", "user")]);
    assert_eq!(edits_applied(&h, &id), vec![false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_command_answers_a_pending_approval() {
    let (h, _p) = edit_harness(Approval::Manual);
    *h.host.ask_mode.lock() = AskMode::Never;
    let plain = {
        let id = h.submit(spec("edit", "first"));
        h.wait_state(&id, TaskState::AwaitingApproval).await;
        id
    };
    assert_eq!(h.host.asked.lock().len(), 1);
    h.orch
        .approve(&plain, true)
        .expect("approve a pending edit");
    let info = h.wait_terminal(&plain).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert_eq!(h.host.applied.lock().len(), 1);
    assert!(matches!(
        h.orch.approve(&plain, true),
        Err(OrchestratorError::NotAwaitingApproval(..))
    ));
    assert!(matches!(
        h.orch.approve("nope", true),
        Err(OrchestratorError::UnknownTask(_))
    ));
    assert_eq!(approvals(&h, &plain), vec![pair("accepted", "user")]);

    // approve(false) rejects.
    let second = h.submit(spec("edit", "second"));
    h.wait_state(&second, TaskState::AwaitingApproval).await;
    h.orch
        .approve(&second, false)
        .expect("reject a pending edit");
    assert_eq!(h.wait_terminal(&second).await.state, TaskState::Cancelled);
    assert_eq!(
        h.host.applied.lock().len(),
        1,
        "a rejected edit was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dismissed_dialog_leaves_the_edit_pending_until_approved() {
    let (h, _p) = edit_harness(Approval::Manual);
    *h.host.ask_mode.lock() = AskMode::Answer(None);
    let id = h.submit(spec("edit", "bump it"));
    h.wait_state(&id, TaskState::AwaitingApproval).await;
    // The dialog answers None (dismissed) after 20 ms; the task keeps waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.state(&id), TaskState::AwaitingApproval);
    assert!(
        h.host.applied.lock().is_empty(),
        "a dismissed dialog must not apply the edit"
    );
    h.orch
        .approve(&id, true)
        .expect("approve after the dialog was dismissed");
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Succeeded);
    assert_eq!(h.host.applied.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_edit_accepted_before_the_timeout_is_applied_at_once() {
    let (h, _p) = edit_harness(Approval::Alert);
    let id = h.submit(spec("edit", "bump it"));
    h.wait_state(&id, TaskState::AwaitingApproval).await;
    h.orch.approve(&id, true).expect("accept");
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Succeeded);
    assert_eq!(h.host.applied.lock().len(), 1);
    assert_eq!(approvals(&h, &id), vec![pair("accepted", "user")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_edit_is_applied_after_the_timeout() {
    let (h, _p) = edit_harness(Approval::Alert);
    let id = h.submit(spec("edit", "bump it"));
    h.wait_state(&id, TaskState::AwaitingApproval).await;
    assert!(
        h.host.applied.lock().is_empty(),
        "an alert edit must wait for its timeout"
    );
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert_eq!(
        h.host.alerts.lock().clone(),
        vec![(id.clone(), Duration::from_secs(1))]
    );
    assert!(h.host.asked.lock().is_empty());
    assert_eq!(h.host.applied.lock().len(), 1);
    assert_eq!(approvals(&h, &id), vec![pair("timeout_applied", "timeout")]);
    assert_eq!(edits_applied(&h, &id), vec![true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_edit_rejected_before_the_timeout_is_not_applied() {
    let (h, _p) = edit_harness(Approval::Alert);
    let id = h.submit(spec("edit", "bump it"));
    h.wait_state(&id, TaskState::AwaitingApproval).await;
    h.orch.approve(&id, false).expect("reject");
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Cancelled);
    assert!(info.error.unwrap_or_default().contains("edit rejected"));
    // Past the 1 s alert timeout: still not applied.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(
        h.host.applied.lock().is_empty(),
        "a rejected alert edit was applied"
    );
    assert_eq!(approvals(&h, &id), vec![pair("rejected", "user")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_outside_the_workspace_is_refused() {
    let (h, _p) = edit_harness(Approval::Auto);
    let outside = TaskSpec {
        uri: Some("file:///elsewhere/a.rs".into()),
        path: Some("/elsewhere/a.rs".into()),
        ..spec("edit", "bump it")
    };
    let id = h.submit(outside);
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Failed);
    let err = info.error.unwrap_or_default();
    assert!(err.contains("outside the workspace"), "{err}");
    assert!(
        h.host.applied.lock().is_empty(),
        "an edit outside the workspace was applied"
    );
    assert!(h.host.asked.lock().is_empty());
    assert_eq!(approvals(&h, &id), vec![pair("refused", "policy")]);
    assert_eq!(edits_applied(&h, &id), vec![false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_without_a_code_block_fails_and_keeps_the_raw_reply() {
    let (h, p) = edit_harness(Approval::Auto);
    let raw = "I would change the 1 into a 2, that should do it.";
    p.set_default(Step::text(raw));
    let id = h.submit(spec("edit", "bump it"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Failed);
    assert!(info.error.unwrap_or_default().contains("raw reply is kept"));
    assert_eq!(h.orch.task(&id).expect("detail").text, raw);
    assert!(h.host.applied.lock().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_refusing_the_edit_fails_the_task() {
    let (h, _p) = edit_harness(Approval::Auto);
    *h.host.apply_answer.lock() = Ok(false);
    let id = h.submit(spec("edit", "bump it"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Failed);
    assert!(info.error.unwrap_or_default().contains("did not apply"));
    assert_eq!(h.host.applied.lock().len(), 1);
    assert_eq!(edits_applied(&h, &id), vec![false]);
}

// ---------------------------------------------------------------------------------------------
// Diagnostics mode.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_reply_is_published_relative_to_the_target() {
    let mut config = config_with_cap(2);
    config.agents.insert(
        "lint".into(),
        AgentConfig {
            output: Some(OutputMode::Diagnostics),
            ..agent(&["p"])
        },
    );
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    p.on(
        "good",
        Step::text(
            "{\"line\": 2, \"severity\": \"error\", \"message\": \"boom\"}\n{\"line\": 3, \"endLine\": 4, \"severity\": \"warning\", \"message\": \"meh\"}\n",
        ),
    );
    p.on(
        "junk",
        Step::text("Looks mostly fine to me, but consider renaming a."),
    );

    let id = h.submit(spec("lint", "good"));
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Succeeded);
    let published = h.host.diagnostics.lock().clone();
    assert_eq!(published.len(), 1);
    let (task, uri, diags) = &published[0];
    assert_eq!(
        (task.as_str(), uri.as_str()),
        (id.as_str(), "file:///ws/a.rs")
    );
    let got: Vec<(u32, u32, Severity, &str)> = diags
        .iter()
        .map(|d| (d.line, d.end_line, d.severity, d.message.as_str()))
        .collect();
    // The target starts at line 10 (0-based); reply lines are 1-based within the target.
    assert_eq!(
        got,
        vec![
            (11, 11, Severity::Error, "boom"),
            (12, 13, Severity::Warning, "meh")
        ]
    );
    assert_eq!(h.orch.task(&id).expect("detail").diagnostics.len(), 2);

    let bad = h.submit(spec("lint", "junk"));
    let info = h.wait_terminal(&bad).await;
    assert_eq!(info.state, TaskState::Failed);
    assert_eq!(
        h.host.diagnostics.lock().len(),
        1,
        "nothing is published for an unparsable reply"
    );
    assert_eq!(
        h.orch.task(&bad).expect("detail").text,
        "Looks mostly fine to me, but consider renaming a."
    );
}

// ---------------------------------------------------------------------------------------------
// Background triggers.

type Prepare = Arc<dyn Fn(&AgentDef) -> Option<TaskSpec> + Send + Sync>;

fn counting_prepare(counter: Arc<AtomicUsize>) -> Prepare {
    Arc::new(move |agent: &AgentDef| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        Some(spec(&agent.name, &format!("save {n}")))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_triggers_need_enable_and_are_debounced_and_rate_limited() {
    let mut config = config_with_cap(4);
    config.agents.insert(
        "bg".into(),
        AgentConfig {
            triggers: Some(vec![Trigger::OnSave]),
            debounce_ms: Some(100),
            rate_per_minute: Some(2),
            output: Some(OutputMode::Answer),
            ..agent(&["p"])
        },
    );
    config.agents.insert("fg".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let prepared = Arc::new(AtomicUsize::new(0));
    let prepare = counting_prepare(prepared.clone());
    let uri = "file:///ws/a.rs";

    // Not enabled: nothing runs.
    h.orch.fire_trigger(Trigger::OnSave, uri, prepare.clone());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        h.orch.tasks().is_empty(),
        "a background agent that is not enabled ran"
    );
    assert_eq!(prepared.load(Ordering::SeqCst), 0);

    assert!(
        matches!(h.orch.enable("fg"), Ok(false)),
        "a command agent is not a background agent"
    );
    assert!(matches!(h.orch.enable("bg"), Ok(true)));
    assert!(
        h.orch
            .status()
            .agents
            .iter()
            .any(|a| a.name == "bg" && a.enabled && a.background)
    );

    // Three rapid saves: one run after the debounce.
    for _ in 0..3 {
        h.orch.fire_trigger(Trigger::OnSave, uri, prepare.clone());
    }
    wait_for("the debounced run", || h.orch.tasks().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        h.orch.tasks().len(),
        1,
        "three rapid triggers must be debounced into one task"
    );
    let first = h.orch.tasks()[0].clone();
    assert_eq!(h.wait_terminal(&first.id).await.state, TaskState::Succeeded);
    assert_eq!(
        first.priority, -10,
        "triggered tasks run at the agent priority minus 10"
    );
    assert_eq!(
        h.orch.task(&first.id).map(|t| t.info.agent),
        Some("bg".to_string())
    );

    // Triggers spaced beyond the debounce: the rate limit (2 per minute) allows one more.
    for _ in 0..3 {
        h.orch.fire_trigger(Trigger::OnSave, uri, prepare.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.wait_all_terminal().await;
    assert_eq!(
        h.orch.tasks().len(),
        2,
        "rate_per_minute 2 must allow exactly two runs in the minute"
    );
    assert_eq!(p.calls(), 2);
    // Another trigger (the diagnostics trigger) is not one this agent listens to.
    h.orch
        .fire_trigger(Trigger::OnDiagnostics, uri, prepare.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.orch.tasks().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_agent_disables_and_cancels() {
    let mut config = config_with_cap(4);
    config.agents.insert(
        "bg".into(),
        AgentConfig {
            triggers: Some(vec![Trigger::OnSave]),
            debounce_ms: Some(50),
            rate_per_minute: Some(20),
            ..agent(&["p"])
        },
    );
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.set_default(Step::block(&gate));
    let prepared = Arc::new(AtomicUsize::new(0));
    let prepare = counting_prepare(prepared.clone());
    let uri = "file:///ws/a.rs";

    assert!(matches!(h.orch.enable("bg"), Ok(true)));
    h.orch.fire_trigger(Trigger::OnSave, uri, prepare.clone());
    wait_for("the triggered task in the provider", || p.in_flight() == 1).await;
    let id = h.orch.tasks()[0].id.clone();
    assert_eq!(h.orch.stop_agent("bg").expect("stop"), 1);
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Cancelled);
    assert_eq!(p.cancels(), 1);
    let status = h.orch.status();
    let bg = status.agents.iter().find(|a| a.name == "bg").expect("bg");
    assert!(!bg.enabled);
    assert_eq!(bg.state, "idle");

    h.orch.fire_trigger(Trigger::OnSave, uri, prepare.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.orch.tasks().len(),
        1,
        "a stopped agent still ran on its trigger"
    );
    assert!(matches!(
        h.orch.stop_agent("nope"),
        Err(OrchestratorError::UnknownAgent(..))
    ));
    gate.open_all();
}

// ---------------------------------------------------------------------------------------------
// Reconfiguration and shutdown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_agent_with_a_queued_task_does_not_leak_a_slot() {
    let mut config = config_with_cap(1);
    config.agents.insert("w".into(), agent(&["p"]));
    config.agents.insert("gone".into(), agent(&["p"]));
    let h = Harness::new(config.clone());
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.on("blocker", Step::block(&gate));

    let blocker = h.submit(spec("w", "blocker"));
    wait_for("the blocker in the provider", || p.in_flight() == 1).await;
    let orphan = h.submit(spec("gone", "orphan"));
    let mut smaller = config;
    smaller.agents.remove("gone");
    h.orch.reconfigure(OrchestratorConfig {
        config: smaller,
        workspace_roots: vec!["/ws".into()],
    });
    gate.open_all();
    assert_eq!(h.wait_terminal(&blocker).await.state, TaskState::Succeeded);
    let info = h.wait_terminal(&orphan).await;
    assert_eq!(info.state, TaskState::Failed);
    assert!(info.error.unwrap_or_default().contains("removed"));

    let next = h.submit(spec("w", "next"));
    let started = eventually(|| h.terminal_info(&next).is_some()).await;
    assert!(
        started,
        "BUG: after a queued task's agent was removed by reconfigure, the next task never runs (state {:?}, \
         status running={}): the dispatched task failed before its transition to running, and finish() \
         did not release the global/agent slot it had taken",
        h.state(&next),
        h.orch.status().running
    );
    assert_eq!(h.state(&next), TaskState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_running_and_queued_tasks_and_records_them() {
    let mut config = config_with_cap(1);
    config.agents.insert("w".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.set_default(Step::block(&gate));

    let running = h.submit(spec("w", "running"));
    wait_for("the running task in the provider", || p.in_flight() == 1).await;
    let q1 = h.submit(spec("w", "q1"));
    let q2 = h.submit(spec("w", "q2"));
    h.orch.shutdown(Duration::from_secs(2)).await;

    for id in [&running, &q1, &q2] {
        assert_eq!(
            h.state(id),
            TaskState::Cancelled,
            "task {id} after shutdown"
        );
    }
    assert_eq!(p.calls(), 1, "queued tasks must not start during shutdown");
    assert_eq!(p.cancels(), 1);
    let rows = h.audit.tasks(10).expect("audit tasks");
    for id in [&running, &q1, &q2] {
        let row = rows
            .iter()
            .find(|r| &r.id == id)
            .expect("task row in the audit log");
        assert_eq!(row.state, TaskState::Cancelled, "audit state of {id}");
    }
    assert!(matches!(
        h.orch.submit(spec("w", "late")),
        Err(OrchestratorError::ShuttingDown)
    ));
    gate.open_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_when_a_provider_ignores_cancellation() {
    let mut config = config_with_cap(2);
    config.agents.insert("w".into(), agent(&["p"]));
    let h = Harness::new(config);
    let p = h.provider("p", pcfg());
    let gate = Gate::new();
    p.set_default(Step::block_ignoring_cancel(&gate));

    let id = h.submit(spec("w", "stubborn"));
    wait_for("the call in the provider", || p.in_flight() == 1).await;
    tokio::time::timeout(WAIT, h.orch.shutdown(Duration::from_millis(300)))
        .await
        .expect("shutdown must return after its bound");
    let info = h.orch.task(&id).expect("task").info;
    assert_eq!(info.state, TaskState::Cancelled);
    h.audit.flush().expect("flush");
    assert_eq!(
        h.audit.task(&id).expect("read").expect("row").state,
        TaskState::Cancelled
    );
    // The provider finishing late does not resurrect the task.
    gate.open_all();
    wait_for("the late call to end", || p.in_flight() == 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.state(&id), TaskState::Cancelled);
}

// ---------------------------------------------------------------------------------------------
// Secrets.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_error_secrets_never_leak() {
    const SECRET: &str = "sk-orch-planted-secret-123456";
    infinity_matrix::providers::register_secret(SECRET);
    let mut config = config_with_cap(2);
    config.agents.insert("leaky".into(), agent(&["leaky"]));
    let h = Harness::new(config);
    let leaky = h.provider("leaky", pcfg().with_attempts(2));
    let message = format!("upstream rejected key {SECRET} for this request");
    // One failure after partial text (reset path), one retried failure (retry path).
    leaky.on(
        "partial",
        Step::fail_after(
            &["some ", "text"],
            ErrorClass::Auth { status: 401 },
            &message,
        ),
    );
    leaky.on(
        "retried",
        Step::fail(ErrorClass::Server { status: 500 }, &message),
    );
    leaky.on(
        "retried",
        Step::fail(ErrorClass::Server { status: 500 }, &message),
    );

    let a = h.submit(spec("leaky", "partial"));
    let b = h.submit(spec("leaky", "retried"));
    for id in [&a, &b] {
        let info = h.wait_terminal(id).await;
        assert_eq!(info.state, TaskState::Failed);
        assert!(
            info.error.clone().unwrap_or_default().contains("leaky"),
            "the error still names the provider: {:?}",
            info.error
        );
    }
    assert_eq!(leaky.calls(), 3);

    let mut leaks: Vec<String> = Vec::new();
    for id in [&a, &b] {
        let detail = h.orch.task(id).expect("detail");
        if detail.info.error.as_deref().unwrap_or("").contains(SECRET) {
            leaks.push(format!("TaskInfo.error of {id}"));
        }
    }
    for event in h.host.events.lock().iter() {
        let json = serde_json::to_string(event).expect("event json");
        if json.contains(SECRET) {
            leaks.push(format!("event {json}"));
        }
    }
    for entry in h.audit_entries(None, None) {
        let json = serde_json::to_string(&entry).expect("entry json");
        if json.contains(SECRET) {
            leaks.push(format!("audit {} entry: {}", entry.kind, entry.summary));
        }
    }
    for row in h.audit.tasks(100).expect("audit tasks") {
        let json = serde_json::to_string(&row).expect("row json");
        if json.contains(SECRET) {
            leaks.push(format!("audit tasks row {}: error {:?}", row.id, row.error));
        }
    }
    let status = serde_json::to_string(&h.orch.status()).expect("status json");
    if status.contains(SECRET) {
        leaks.push("status()".into());
    }
    assert!(
        leaks.is_empty(),
        "BUG: a registered secret from a provider error leaked into:\n{}",
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Issue 11: skipped providers and in-flight calls in the audit log, Retry-After failover, the
// reply cap, panics.

/// (provider, outcome, error message) of every attempt row of a task, in order.
fn attempt_rows(h: &Harness, id: &str) -> Vec<(String, String, String)> {
    h.audit_entries(Some(EntryKind::Attempt), Some(id))
        .iter()
        .map(|e| {
            (
                e.details["provider"].as_str().unwrap_or("").to_string(),
                e.details["outcome"].as_str().unwrap_or("").to_string(),
                e.details["error_message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_skipped_for_an_open_circuit_is_in_the_audit_log() {
    let mut config = config_with_cap(2);
    config
        .agents
        .insert("dual".into(), agent(&["flaky", "good"]));
    let h = Harness::new(config);
    let flaky = h.provider("flaky", pcfg().with_breaker(1, 60_000));
    let good = h.provider("good", pcfg());
    flaky.set_default(Step::fail(ErrorClass::Server { status: 500 }, "down"));

    let t1 = h.submit(spec("dual", "t1"));
    assert_eq!(h.wait_terminal(&t1).await.state, TaskState::Succeeded);
    let t2 = h.submit(spec("dual", "t2"));
    let info = h.wait_terminal(&t2).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(info.provider.as_deref(), Some("good"));
    assert_eq!(flaky.calls(), 1, "the open circuit sent no second request");
    assert_eq!(good.calls(), 2);

    let rows = attempt_rows(&h, &t2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("flaky", "skipped")
    );
    assert!(
        rows[0].2.starts_with("skipped: circuit open"),
        "the skip says why: {rows:?}"
    );
    assert_eq!((rows[1].0.as_str(), rows[1].1.as_str()), ("good", "ok"));
    let entries = h.audit_entries(Some(EntryKind::Attempt), Some(&t2));
    assert_eq!(entries[0].details["error_class"]["class"], "circuit_open");
    assert_eq!(
        h.metrics.counter(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", "flaky"), ("outcome", "skipped")]
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_is_on_record_while_its_call_is_in_flight() {
    let mut config = config_with_cap(2);
    config.agents.insert("a".into(), agent(&["slow"]));
    let h = Harness::new(config);
    let slow = h.provider("slow", pcfg());
    let gate = Gate::new();
    slow.push(Step::block_then(&gate, "done"));

    let id = h.submit(spec("a", "q"));
    wait_for("the call to start", || slow.in_flight() == 1).await;
    assert_eq!(
        attempt_rows(&h, &id),
        vec![("slow".to_string(), "running".to_string(), String::new())],
        "the attempt is written when it starts"
    );
    gate.open_one();
    assert_eq!(h.wait_terminal(&id).await.state, TaskState::Succeeded);
    let entries = h.audit_entries(Some(EntryKind::Attempt), Some(&id));
    assert_eq!(entries.len(), 1, "the same row is completed: {entries:?}");
    assert_eq!(entries[0].details["outcome"], "ok");
    assert_eq!(entries[0].details["attempt"], 1);
    assert!(entries[0].details["latency_ms"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_retry_after_fails_over_at_once_and_later_tasks_skip_the_provider() {
    let mut config = config_with_cap(2);
    config
        .agents
        .insert("a".into(), agent(&["limited", "spare"]));
    let h = Harness::new(config);
    let limited = h.provider("limited", pcfg().with_attempts(3));
    let spare = h.provider("spare", pcfg());
    limited.set_default(Step::fail(
        ErrorClass::RateLimited {
            retry_after_ms: Some(3_600_000),
        },
        "429 Too Many Requests",
    ));

    // Bounded by WAIT (10 s): holding the task for the Retry-After (60 s per retry) fails here.
    let t1 = h.submit(spec("a", "t1"));
    let info = h.wait_terminal(&t1).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert_eq!(info.provider.as_deref(), Some("spare"));
    assert_eq!(
        limited.calls(),
        1,
        "a one-hour Retry-After is not waited out when another provider can answer"
    );
    let rows = attempt_rows(&h, &t1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("limited", "rate_limited")
    );
    assert!(
        rows[0].2.contains("not waiting 3600 s") && rows[0].2.contains("failing over"),
        "{rows:?}"
    );

    // Later tasks skip it while its Retry-After lasts, and the audit log says so.
    let t2 = h.submit(spec("a", "t2"));
    let info = h.wait_terminal(&t2).await;
    assert_eq!(info.state, TaskState::Succeeded);
    assert_eq!(info.provider.as_deref(), Some("spare"));
    assert_eq!(
        limited.calls(),
        1,
        "skipped until its Retry-After has passed"
    );
    assert_eq!(spare.calls(), 2);
    let rows = attempt_rows(&h, &t2);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("limited", "skipped")
    );
    assert!(rows[0].2.contains("Retry-After"), "{rows:?}");
    let entries = h.audit_entries(Some(EntryKind::Attempt), Some(&t2));
    assert_eq!(entries[0].details["error_class"]["class"], "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_is_waited_out_when_no_other_provider_can_answer() {
    let mut config = config_with_cap(2);
    config.defaults.failover_after_wait_ms = 50;
    config.agents.insert("solo".into(), agent(&["limited"]));
    let h = Harness::new(config);
    let limited = h.provider("limited", pcfg().with_attempts(2));
    limited.push(Step::fail(
        ErrorClass::RateLimited {
            retry_after_ms: Some(300),
        },
        "429 Too Many Requests",
    ));
    limited.set_default(Step::reply(&["after the wait"]));

    let id = h.submit(spec("solo", "q"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Succeeded, "{:?}", info.error);
    assert_eq!(
        limited.calls(),
        2,
        "it waited and retried the same provider"
    );
    let rows = attempt_rows(&h, &id);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].1, "rate_limited");
    assert_eq!(rows[1].1, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_past_the_cap_fails_the_task_naming_the_cap() {
    let mut config = config_with_cap(2);
    config.defaults.max_reply_bytes = 64 * 1024;
    config
        .agents
        .insert("a".into(), agent(&["endless", "other"]));
    let h = Harness::new(config);
    let endless = h.provider("endless", pcfg());
    let other = h.provider("other", pcfg());
    // 4 MB uncapped.
    endless.set_default(Step::flood(&"x".repeat(1000), 4096));

    let id = h.submit(spec("a", "q"));
    let info = h.wait_terminal(&id).await;
    assert_eq!(info.state, TaskState::Failed);
    let err = info.error.unwrap_or_default();
    for needle in ["64 KiB", "65536 bytes", "defaults.max_reply_bytes"] {
        assert!(
            err.contains(needle),
            "the error names the cap ({needle}): {err}"
        );
    }
    assert_eq!(endless.cancels(), 1, "the stream was stopped");
    assert_eq!(
        other.calls(),
        0,
        "a reply past the cap ends the task; it is not a provider failure"
    );
    let streamed: usize = chunk_events(&h, &id).iter().map(|(_, t)| t.len()).sum();
    assert!(
        streamed <= 64 * 1024,
        "nothing past the cap was passed on: {streamed}"
    );
    let detail = h.orch.task(&id).expect("task");
    assert!(detail.text.is_empty(), "the partial reply was released");
    let rows = attempt_rows(&h, &id);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "reply_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_provider_fails_its_task_and_frees_its_slot() {
    let mut config = config_with_cap(1);
    config.agents.insert(
        "a".into(),
        AgentConfig {
            concurrency: Some(1),
            ..agent(&["buggy"])
        },
    );
    let h = Harness::new(config);
    let buggy = h.provider("buggy", pcfg());
    buggy.push(Step::panic("adapter bug: index 7 out of range"));
    buggy.set_default(Step::reply(&["fine"]));

    let t1 = h.submit(spec("a", "first"));
    let info = h.wait_terminal(&t1).await;
    assert_eq!(info.state, TaskState::Failed);
    let err = info.error.unwrap_or_default();
    assert!(
        err.contains("panicked") && err.contains("adapter bug: index 7 out of range"),
        "{err}"
    );
    // The only slot (global cap 1, agent cap 1) was freed: the next task runs.
    let t2 = h.submit(spec("a", "second"));
    assert_eq!(h.wait_terminal(&t2).await.state, TaskState::Succeeded);
    assert_eq!(h.orch.status().running, 0);
    assert_eq!(
        h.metrics.gauge(metrics::TASKS_RUNNING, &[]),
        Some(0.0),
        "the running gauge is back to zero"
    );
    // The audit log has the failure and no call left "running".
    h.audit.flush().expect("flush");
    let row = h.audit.task(&t1).expect("read").expect("row");
    assert_eq!(row.state, TaskState::Failed);
    assert!(row.error.unwrap_or_default().contains("panicked"));
    let rows = attempt_rows(&h, &t1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "internal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrators_started_together_never_issue_the_same_task_id() {
    // Two servers on one workspace share an audit database: their ids must differ even when
    // they start in the same millisecond.
    let mut config = config_with_cap(2);
    config.agents.insert("a".into(), agent(&["p"]));
    let first = Harness::new(config.clone());
    let second = Harness::new(config);
    first.provider("p", pcfg());
    second.provider("p", pcfg());
    let a = first.submit(spec("a", "q"));
    let b = second.submit(spec("a", "q"));
    assert_ne!(a, b);
    first.wait_terminal(&a).await;
    second.wait_terminal(&b).await;
}
