//! The embedded provider with the real bundled model (SmolLM2-135M-Instruct, Q4_0): streaming, stop, cancellation, queueing and idle unload; skipped, saying so, only in a plain `cargo test` without the model (scripts/test.sh installs it and names it, and then a missing model fails).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use infinity_matrix::config::{ProviderConfig, default_local_provider};
use infinity_matrix::providers::embedded::{EmbeddedProvider, default_model_path};
use infinity_matrix::providers::{
    ChatMessage, ChatRequest, ErrorClass, Provider, ProviderHandle, Role,
};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// The installed model, or None (with a message on stderr) when it is absent.
fn model_path() -> Option<std::path::PathBuf> {
    let named = std::env::var_os("INFINITY_MATRIX_EMBEDDED_MODEL").map(std::path::PathBuf::from);
    // scripts/test.sh (and so CI) installs the model and names it: then it must be there, and
    // these tests must run, never skip.
    if let Some(path) = &named {
        assert!(
            path.is_file(),
            "INFINITY_MATRIX_EMBEDDED_MODEL names {}, which is not a file",
            path.display()
        );
    }
    let path = named.unwrap_or_else(default_model_path);
    if path.is_file() {
        return Some(path);
    }
    eprintln!(
        "SKIPPED: the embedded model is not installed at {} (run `infinity-matrix model install`)",
        path.display()
    );
    None
}

fn config(path: &std::path::Path) -> ProviderConfig {
    ProviderConfig {
        model_path: Some(path.display().to_string()),
        max_tokens: Some(24),
        temperature: Some(0.0),
        idle_unload_secs: Some(2),
        max_concurrency: Some(4),
        ..default_local_provider()
    }
}

fn request(question: &str) -> ChatRequest {
    ChatRequest {
        model: String::new(),
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "You are a concise programming assistant.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: question.into(),
            },
        ],
        max_tokens: None,
        temperature: None,
    }
}

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_model_streams_stops_cancels_queues_and_unloads() {
    let Some(path) = model_path() else {
        return;
    };
    let cfg = config(&path);
    let provider = Arc::new(EmbeddedProvider::new("local", &cfg).expect("provider"));
    assert!(
        !provider.is_loaded(),
        "nothing is loaded before the first call"
    );
    let rss_before = rss_mib();
    let handle = ProviderHandle::new(provider.clone(), &cfg);
    let noop = |_: infinity_matrix::providers::AttemptEvent| {};

    // 1. A reply streams in several chunks and stops at the end token or max_tokens.
    let chunks = Mutex::new(Vec::<(Duration, String)>::new());
    let started = Instant::now();
    let sink = |c: &str| chunks.lock().push((started.elapsed(), c.to_string()));
    let outcome = handle
        .call(
            &request("What does a Python list comprehension do? One sentence."),
            &sink,
            CancellationToken::new(),
            &noop,
        )
        .await
        .expect("a reply");
    let chunks = chunks.into_inner();
    assert!(chunks.len() > 3, "streamed in pieces: {chunks:?}");
    let streamed: String = chunks.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(streamed, outcome.text);
    assert!(outcome.text.trim().len() > 10, "{:?}", outcome.text);
    let completion = outcome.usage.completion_tokens.unwrap_or(0);
    assert!((1..=24).contains(&completion), "{:?}", outcome.usage);
    assert!(outcome.usage.prompt_tokens.unwrap_or(0) > 10);
    let reason = outcome.finish_reason.as_deref();
    assert!(
        reason == Some("stop") || (reason == Some("length") && completion == 24),
        "{reason:?} after {completion} tokens"
    );
    eprintln!(
        "first chunk after {:?} (model load included), {completion} tokens: {:?}",
        chunks.first().map(|c| c.0),
        outcome.text
    );
    assert!(provider.is_loaded());
    let rss_loaded = rss_mib();

    // 2. Cancelled mid-stream: the call ends at once and the model is free for the next one.
    let cancel = CancellationToken::new();
    let seen = AtomicUsize::new(0);
    let sink = |_: &str| {
        if seen.fetch_add(1, Ordering::SeqCst) == 1 {
            cancel.cancel();
        }
    };
    let mut long = request("Write a long story about a robot.");
    long.max_tokens = Some(400);
    let t = Instant::now();
    let err = handle
        .call(&long, &sink, cancel.clone(), &noop)
        .await
        .expect_err("cancelled");
    assert_eq!(err.class, ErrorClass::Cancelled);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(
        seen.load(Ordering::SeqCst) < 10,
        "stopped right after the cancel"
    );

    // 3. Two calls at once queue on the one model: the second streams after the first ends.
    let events = Arc::new(Mutex::new(Vec::<(usize, &'static str, Instant)>::new()));
    let run = |i: usize| {
        let handle = &handle;
        let events = events.clone();
        async move {
            let sink = |_: &str| events.lock().push((i, "chunk", Instant::now()));
            let r = handle
                .call(
                    &request("Name a sorting algorithm."),
                    &sink,
                    CancellationToken::new(),
                    &noop,
                )
                .await;
            events.lock().push((i, "end", Instant::now()));
            r
        }
    };
    let (a, b) = tokio::join!(run(0), run(1));
    a.expect("first");
    b.expect("second");
    let events = events.lock().clone();
    let end_of = |i| {
        events
            .iter()
            .find(|e| e.0 == i && e.1 == "end")
            .map(|e| e.2)
    };
    let first_chunk_of = |i| {
        events
            .iter()
            .find(|e| e.0 == i && e.1 == "chunk")
            .map(|e| e.2)
    };
    let (first, second) = match (first_chunk_of(0), first_chunk_of(1)) {
        (Some(x), Some(y)) if x <= y => (0, 1),
        _ => (1, 0),
    };
    assert!(
        end_of(first) <= first_chunk_of(second),
        "one reply at a time: {events:?}"
    );

    // 4. After the idle time the model is dropped and its memory handed back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while provider.is_loaded() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!provider.is_loaded(), "unloaded after idle_unload_secs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let (Some(before), Some(loaded), Some(after)) = (rss_before, rss_loaded, rss_mib()) {
        eprintln!("RSS: {before:.0} MiB before, {loaded:.0} MiB loaded, {after:.0} MiB unloaded");
        assert!(
            after < loaded - (loaded - before) / 2.0,
            "most of the model's memory is returned: {before:.0} -> {loaded:.0} -> {after:.0} MiB"
        );
    }
}

#[tokio::test]
async fn a_missing_model_is_a_configuration_error_that_says_how_to_install_it() {
    let cfg = ProviderConfig {
        model_path: Some("/nonexistent/dir/model.gguf".into()),
        ..default_local_provider()
    };
    let provider = EmbeddedProvider::new("local", &cfg).expect("provider");
    let err = provider
        .chat(&request("hi"), &|_| {}, CancellationToken::new())
        .await
        .expect_err("no model");
    assert_eq!(err.class, ErrorClass::Config);
    assert!(
        err.message.contains("infinity-matrix model install"),
        "{}",
        err.message
    );
    let health = provider.check().await;
    assert!(!health.reachable);
    assert_eq!(health.model_present, Some(false));
}
