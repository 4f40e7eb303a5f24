//! Integration tests of the provider layer: every adapter against wiremock (and a tiny raw HTTP/1.1 server for mid-stream stalls, resets, cancellation and connection counting), the resilience layer, the registry and secret redaction.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infinity_matrix::config::ProviderConfig;
use infinity_matrix::providers::{
    AttemptEvent, AttemptReport, CallOptions, ChatMessage, ChatOutcome, ChatRequest,
    CircuitBreaker, CircuitState, ErrorClass, Provider, ProviderError, ProviderHandle,
    ProviderKind, REDACTED, RetryPolicy, Role, SecretStore, Usage, build_provider,
    call_with_options, call_with_resilience, parse_retry_after, redact, register_secret,
};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

// =============================================================================================
// Adapter descriptions.

#[derive(Debug, Clone, Copy)]
struct Spec {
    kind: ProviderKind,
    /// Fixture file prefix.
    prefix: &'static str,
    model: &'static str,
    /// Appended to the server's address to make base_url.
    base_suffix: &'static str,
    chat_path: &'static str,
    content_type: &'static str,
    ext: &'static str,
    /// (api_key_env, key) put in the SecretStore at runtime; None: no key configured.
    key: Option<(&'static str, &'static str)>,
    /// Frames of the stream fixture up to and including the first text ("Hello").
    head_frames: usize,
    usage: (u32, u32),
    finish: &'static str,
}

const OPENAI: Spec = Spec {
    kind: ProviderKind::Openai,
    prefix: "openai",
    model: "gpt-4o-mini",
    base_suffix: "/v1",
    chat_path: "/v1/chat/completions",
    content_type: "text/event-stream",
    ext: "sse",
    key: Some(("IM_TEST_OPENAI_KEY", "sk-test-openai-key-000111222333")),
    head_frames: 2,
    usage: (12, 3),
    finish: "stop",
};

const OLLAMA: Spec = Spec {
    kind: ProviderKind::Ollama,
    prefix: "ollama",
    model: "llama3.2",
    base_suffix: "",
    chat_path: "/api/chat",
    content_type: "application/x-ndjson",
    ext: "ndjson",
    key: None,
    head_frames: 1,
    usage: (26, 4),
    finish: "stop",
};

const ANTHROPIC: Spec = Spec {
    kind: ProviderKind::Anthropic,
    prefix: "anthropic",
    model: "claude-sonnet-4-5",
    base_suffix: "",
    chat_path: "/v1/messages",
    content_type: "text/event-stream; charset=utf-8",
    ext: "sse",
    key: Some((
        "IM_TEST_ANTHROPIC_KEY",
        "sk-ant-api03-test-key-444555666777",
    )),
    head_frames: 4,
    usage: (25, 15),
    finish: "end_turn",
};

const GEMINI: Spec = Spec {
    kind: ProviderKind::Gemini,
    prefix: "gemini",
    model: "gemini-2.0-flash",
    base_suffix: "",
    chat_path: "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
    content_type: "text/event-stream",
    ext: "sse",
    key: Some(("IM_TEST_GEMINI_KEY", "AIzaSyTest-gemini-key-888999000111")),
    head_frames: 1,
    usage: (9, 3),
    finish: "STOP",
};

const VERTEX: Spec = Spec {
    kind: ProviderKind::Vertex,
    prefix: "vertex",
    model: "gemini-2.0-flash-001",
    base_suffix: "",
    chat_path: "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.0-flash-001:streamGenerateContent",
    content_type: "text/event-stream",
    ext: "sse",
    key: Some((
        "IM_TEST_VERTEX_TOKEN",
        "ya29.test-vertex-token-222333444555",
    )),
    head_frames: 1,
    usage: (9, 3),
    finish: "STOP",
};

const ALL: [Spec; 5] = [OPENAI, OLLAMA, ANTHROPIC, GEMINI, VERTEX];

fn fixture(name: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/providers")
        .join(name);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()))
}

impl Spec {
    fn stream(&self) -> String {
        fixture(&format!("{}_stream.{}", self.prefix, self.ext))
    }

    fn fixture(&self, what: &str) -> String {
        fixture(&format!("{}_{what}", self.prefix))
    }

    /// The stream fixture split into frames (each with its terminator).
    fn frames(&self) -> Vec<String> {
        split_frames(&self.stream(), self.ext == "ndjson")
    }

    fn head(&self) -> String {
        self.frames()[..self.head_frames].concat()
    }

    fn config(&self, base: &str) -> ProviderConfig {
        ProviderConfig {
            kind: self.kind,
            base_url: Some(format!("{base}{}", self.base_suffix)),
            model: self.model.to_string(),
            api_key_env: self.key.map(|(env, _)| env.to_string()),
            timeout_ms: Some(10_000),
            connect_timeout_ms: Some(2_000),
            first_token_timeout_ms: Some(5_000),
            max_attempts: Some(3),
            max_concurrency: None,
            circuit_failure_threshold: Some(5),
            circuit_cooldown_ms: Some(50),
            max_tokens: Some(64),
            temperature: Some(0.2),
            project: (self.kind == ProviderKind::Vertex).then(|| "test-project".to_string()),
            location: (self.kind == ProviderKind::Vertex).then(|| "us-central1".to_string()),
            token_command: None,
            token_command_timeout_ms: None,
            model_path: None,
            context_tokens: None,
            threads: None,
            idle_unload_secs: None,
        }
    }

    fn secrets(&self) -> Arc<SecretStore> {
        let secrets = Arc::new(SecretStore::new());
        if let Some((env, key)) = self.key {
            secrets.set(env, key);
        }
        secrets
    }

    fn provider(&self, base: &str, tweak: impl FnOnce(&mut ProviderConfig)) -> Arc<dyn Provider> {
        let mut cfg = self.config(base);
        tweak(&mut cfg);
        build_provider(self.kind.name(), &cfg, self.secrets()).expect("build provider")
    }
}

trait KindName {
    fn name(&self) -> &'static str;
}

impl KindName for ProviderKind {
    fn name(&self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Vertex => "vertex",
            ProviderKind::Embedded => "embedded",
        }
    }
}

fn split_frames(text: &str, ndjson: bool) -> Vec<String> {
    let sep = if ndjson {
        "\n"
    } else if text.contains("\r\n\r\n") {
        "\r\n\r\n"
    } else {
        "\n\n"
    };
    text.split_inclusive(sep)
        .filter(|f| !f.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn request() -> ChatRequest {
    let msg = |role, content: &str| ChatMessage {
        role,
        content: content.to_string(),
    };
    ChatRequest {
        model: String::new(),
        messages: vec![
            msg(Role::System, "You are terse."),
            msg(Role::User, "Say hello."),
            msg(Role::Assistant, "Hi."),
            msg(Role::User, "Once more, to the world."),
        ],
        max_tokens: None,
        temperature: None,
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

async fn mount_ok(server: &MockServer, spec: &Spec, body: String) {
    Mock::given(method("POST"))
        .and(path(spec.chat_path))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, spec.content_type))
        .mount(server)
        .await;
}

/// Collects streamed chunks.
#[derive(Default)]
struct Chunks(Mutex<Vec<String>>);

impl Chunks {
    fn push(&self, chunk: &str) {
        self.0.lock().push(chunk.to_string());
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

/// Collects attempt events.
#[derive(Default)]
struct Events(Mutex<Vec<AttemptEvent>>);

impl Events {
    fn push(&self, event: AttemptEvent) {
        self.0.lock().push(event);
    }

    fn reports(&self) -> Vec<AttemptReport> {
        self.0
            .lock()
            .iter()
            .filter_map(|e| match e {
                AttemptEvent::Finished(r) => Some(r.clone()),
                AttemptEvent::Started { .. } => None,
            })
            .collect()
    }

    fn started(&self) -> Vec<u32> {
        self.0
            .lock()
            .iter()
            .filter_map(|e| match e {
                AttemptEvent::Started { attempt } => Some(*attempt),
                AttemptEvent::Finished(_) => None,
            })
            .collect()
    }
}

async fn chat(provider: &dyn Provider) -> (Result<ChatOutcome, ProviderError>, Vec<String>) {
    let chunks = Chunks::default();
    let sink = |c: &str| chunks.push(c);
    let result = provider
        .chat(&request(), &sink, CancellationToken::new())
        .await;
    (result, chunks.all())
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn assert_request_shape(spec: &Spec, req: &Request) {
    let body: serde_json::Value = req.body_json().expect("JSON body");
    let url = req.url.to_string();
    assert!(!url.contains("key="), "no key in the URL: {url}");
    match spec.kind {
        ProviderKind::Openai => {
            assert_eq!(
                header(req, "authorization"),
                Some("Bearer sk-test-openai-key-000111222333")
            );
            assert_eq!(body["model"], "gpt-4o-mini");
            assert_eq!(body["stream"], true);
            assert_eq!(body["stream_options"]["include_usage"], true);
            assert_eq!(body["max_tokens"], 64);
            assert_eq!(body["temperature"], 0.2);
            assert_eq!(body["messages"][0]["role"], "system");
            assert_eq!(body["messages"][2]["role"], "assistant");
            assert_eq!(body["messages"].as_array().map(Vec::len), Some(4));
        }
        ProviderKind::Ollama => {
            assert_eq!(
                header(req, "authorization"),
                None,
                "no key configured: no Authorization"
            );
            assert_eq!(body["model"], "llama3.2");
            assert_eq!(body["stream"], true);
            assert_eq!(body["options"]["num_predict"], 64);
            assert_eq!(body["options"]["temperature"], 0.2);
            assert_eq!(body["messages"][0]["role"], "system");
        }
        ProviderKind::Anthropic => {
            assert_eq!(
                header(req, "x-api-key"),
                Some("sk-ant-api03-test-key-444555666777")
            );
            assert_eq!(header(req, "anthropic-version"), Some("2023-06-01"));
            assert_eq!(header(req, "authorization"), None);
            assert_eq!(body["model"], "claude-sonnet-4-5");
            assert_eq!(body["max_tokens"], 64);
            assert_eq!(body["system"], "You are terse.");
            assert_eq!(body["stream"], true);
            let roles: Vec<&str> = body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["role"].as_str().unwrap())
                .collect();
            assert_eq!(roles, ["user", "assistant", "user"]);
        }
        ProviderKind::Gemini | ProviderKind::Vertex => {
            if spec.kind == ProviderKind::Gemini {
                assert_eq!(
                    header(req, "x-goog-api-key"),
                    Some("AIzaSyTest-gemini-key-888999000111")
                );
                assert_eq!(header(req, "authorization"), None);
            } else {
                assert_eq!(
                    header(req, "authorization"),
                    Some("Bearer ya29.test-vertex-token-222333444555")
                );
                assert_eq!(header(req, "x-goog-api-key"), None);
            }
            assert_eq!(req.url.query(), Some("alt=sse"));
            let roles: Vec<&str> = body["contents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["role"].as_str().unwrap())
                .collect();
            assert_eq!(roles, ["user", "model", "user"]);
            assert_eq!(body["contents"][0]["parts"][0]["text"], "Say hello.");
            assert_eq!(
                body["systemInstruction"]["parts"][0]["text"],
                "You are terse."
            );
            assert_eq!(body["generationConfig"]["maxOutputTokens"], 64);
            assert_eq!(body["generationConfig"]["temperature"], 0.2);
        }
        ProviderKind::Embedded => unreachable!("the embedded provider sends no HTTP request"),
    }
}

// =============================================================================================
// A tiny raw HTTP/1.1 server: counts connections and requests, and can stall, reset or hold a
// reply mid-stream (which wiremock cannot).

#[derive(Clone)]
enum Step {
    Write(Vec<u8>),
    Sleep(Duration),
    /// Wait until the test says so (at most 10 s).
    WaitFor(Arc<Notify>),
    /// Keep the connection open until the client closes it.
    Hold,
    /// Reset the connection (RST).
    Reset,
}

type Script = Arc<dyn Fn(usize) -> Vec<Step> + Send + Sync>;

struct RawServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    closed_notify: Arc<Notify>,
}

impl RawServer {
    async fn start(script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = RawServer {
            addr,
            connections: Arc::new(AtomicUsize::new(0)),
            requests: Arc::new(AtomicUsize::new(0)),
            closed: Arc::new(AtomicUsize::new(0)),
            closed_notify: Arc::new(Notify::new()),
        };
        let script: Script = Arc::new(script);
        let (connections, requests, closed, notify) = (
            server.connections.clone(),
            server.requests.clone(),
            server.closed.clone(),
            server.closed_notify.clone(),
        );
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let _ = sock.set_nodelay(true);
                tokio::spawn(serve_connection(
                    sock,
                    script.clone(),
                    requests.clone(),
                    closed.clone(),
                    notify.clone(),
                ));
            }
        });
        server
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (at most 5 s) until the server has seen a client close a connection.
    async fn wait_closed(&self) -> bool {
        tokio::time::timeout(Duration::from_secs(5), async {
            while self.closed.load(Ordering::SeqCst) == 0 {
                self.closed_notify.notified().await;
            }
        })
        .await
        .is_ok()
    }
}

async fn serve_connection(
    mut sock: TcpStream,
    script: Script,
    requests: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    notify: Arc<Notify>,
) {
    let mark_closed = || {
        closed.fetch_add(1, Ordering::SeqCst);
        notify.notify_one();
    };
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if !read_request(&mut sock, &mut buf).await {
            mark_closed();
            return;
        }
        let n = requests.fetch_add(1, Ordering::SeqCst);
        for step in script(n) {
            match step {
                Step::Write(bytes) => {
                    if sock.write_all(&bytes).await.is_err() || sock.flush().await.is_err() {
                        mark_closed();
                        return;
                    }
                }
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::WaitFor(n) => {
                    let _ = tokio::time::timeout(Duration::from_secs(10), n.notified()).await;
                }
                Step::Hold => {
                    let mut tmp = [0u8; 1024];
                    loop {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => {
                                mark_closed();
                                return;
                            }
                            Ok(_) => {}
                        }
                    }
                }
                Step::Reset => {
                    let _ = sock.set_zero_linger();
                    drop(sock);
                    return;
                }
            }
        }
    }
}

/// Reads one request (headers and Content-Length body); false on EOF.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + len;
            if buf.len() >= total {
                buf.drain(..total);
                return true;
            }
        }
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

fn keepalive_response(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked_head(content_type: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n")
        .into_bytes()
}

fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

// =============================================================================================
// Scenarios run for every adapter.

async fn scenario_streaming_success(spec: Spec) {
    let server = MockServer::start().await;
    mount_ok(&server, &spec, spec.stream()).await;
    let provider = spec.provider(&server.uri(), |_| {});
    let (result, chunks) = chat(provider.as_ref()).await;
    let outcome = result.expect("streaming success");
    assert_eq!(chunks, ["Hello", ", world", "!"], "chunks in order");
    assert_eq!(outcome.text, "Hello, world!");
    assert_eq!(
        outcome.usage,
        Usage {
            prompt_tokens: Some(spec.usage.0),
            completion_tokens: Some(spec.usage.1)
        }
    );
    assert_eq!(outcome.finish_reason.as_deref(), Some(spec.finish));
    assert!(outcome.time_to_first_token.is_some());
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_request_shape(&spec, &requests[0]);
}

async fn scenario_rate_limited_retry_after(spec: Spec) {
    let server = MockServer::start().await;
    let times = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let (ok, limited, ct) = (spec.stream(), spec.fixture("429.json"), spec.content_type);
    let seen = times.clone();
    Mock::given(method("POST"))
        .and(path(spec.chat_path))
        .respond_with(move |_: &Request| {
            let mut seen = seen.lock();
            seen.push(Instant::now());
            if seen.len() == 1 {
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "1")
                    .set_body_raw(limited.clone(), "application/json")
            } else {
                ResponseTemplate::new(200).set_body_raw(ok.clone(), ct)
            }
        })
        .mount(&server)
        .await;
    let provider = spec.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::new(5, Duration::from_secs(30));
    let (chunks, events) = (Chunks::default(), Events::default());
    let outcome = call_with_resilience(
        provider.as_ref(),
        &breaker,
        &fast_policy(),
        &request(),
        &|c| chunks.push(c),
        CancellationToken::new(),
        &|e| events.push(e),
    )
    .await
    .expect("success after the rate limit");
    assert_eq!(outcome.text, "Hello, world!");
    let times = times.lock().clone();
    assert_eq!(times.len(), 2, "one retry");
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_millis(950),
        "the retry waited for Retry-After: 1 (waited {gap:?})"
    );
    assert_eq!(events.started(), [1, 2]);
    let reports = events.reports();
    assert_eq!(reports.len(), 2);
    let first = reports[0].error.as_ref().expect("first attempt failed");
    assert_eq!(
        first.class,
        ErrorClass::RateLimited {
            retry_after_ms: Some(1000)
        }
    );
    assert!(first.message.contains("HTTP 429"), "{}", first.message);
    assert_eq!(reports[0].retry_delay, Some(Duration::from_secs(1)));
    assert_eq!(reports[1].error, None);
    assert_eq!(reports[1].usage.completion_tokens, Some(spec.usage.1));
    assert_eq!(breaker.state(), CircuitState::Closed);
}

async fn scenario_server_error_then_success(spec: Spec) {
    let server = MockServer::start().await;
    let count = Arc::new(AtomicUsize::new(0));
    let (ok, failed, ct, n) = (
        spec.stream(),
        spec.fixture("500.json"),
        spec.content_type,
        count.clone(),
    );
    Mock::given(method("POST"))
        .and(path(spec.chat_path))
        .respond_with(move |_: &Request| {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                ResponseTemplate::new(500).set_body_raw(failed.clone(), "application/json")
            } else {
                ResponseTemplate::new(200).set_body_raw(ok.clone(), ct)
            }
        })
        .mount(&server)
        .await;
    let provider = spec.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::default();
    let (chunks, events) = (Chunks::default(), Events::default());
    let outcome = call_with_resilience(
        provider.as_ref(),
        &breaker,
        &fast_policy(),
        &request(),
        &|c| chunks.push(c),
        CancellationToken::new(),
        &|e| events.push(e),
    )
    .await
    .expect("success after a 500");
    assert_eq!(outcome.text, "Hello, world!");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let reports = events.reports();
    assert_eq!(
        reports[0].error.as_ref().map(|e| e.class.clone()),
        Some(ErrorClass::Server { status: 500 })
    );
    assert!(reports[0].retry_delay.is_some());
    assert_eq!(reports[1].error, None);
    assert_eq!(
        breaker.consecutive_failures(),
        0,
        "success resets the count"
    );
}

async fn scenario_first_token_timeout(spec: Spec) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(spec.chat_path))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(spec.stream(), spec.content_type)
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let provider = spec.provider(&server.uri(), |c| c.first_token_timeout_ms = Some(300));
    let (result, chunks) = chat(provider.as_ref()).await;
    let err = result.expect_err("first-token timeout");
    assert_eq!(err.class, ErrorClass::FirstTokenTimeout, "{err}");
    assert!(err.message.contains("300 ms"), "{}", err.message);
    assert!(chunks.is_empty());
}

async fn scenario_stall_mid_stream(spec: Spec) {
    let (ct, head) = (spec.content_type, spec.head());
    let server = RawServer::start(move |_| {
        vec![
            Step::Write(chunked_head(ct)),
            Step::Write(chunk(&head)),
            Step::Hold,
        ]
    })
    .await;
    let provider = spec.provider(&server.base(), |c| c.first_token_timeout_ms = Some(500));
    let (result, chunks) = chat(provider.as_ref()).await;
    let err = result.expect_err("stall");
    assert_eq!(err.class, ErrorClass::Timeout, "{err}");
    assert!(err.message.contains("stalled"), "{}", err.message);
    assert_eq!(err.partial_text, "Hello");
    assert_eq!(chunks, ["Hello"]);
}

async fn scenario_reset_mid_stream(spec: Spec) {
    let (ct, head) = (spec.content_type, spec.head());
    let first_chunk_seen = Arc::new(Notify::new());
    let seen = first_chunk_seen.clone();
    let server = RawServer::start(move |_| {
        vec![
            Step::Write(chunked_head(ct)),
            Step::Write(chunk(&head)),
            Step::WaitFor(seen.clone()),
            Step::Sleep(Duration::from_millis(20)),
            Step::Reset,
        ]
    })
    .await;
    let provider = spec.provider(&server.base(), |_| {});
    let sink = |_: &str| first_chunk_seen.notify_one();
    let err = provider
        .chat(&request(), &sink, CancellationToken::new())
        .await
        .expect_err("reset");
    assert_eq!(err.class, ErrorClass::StreamBroken, "{err}");
    assert_eq!(err.partial_text, "Hello", "partial text kept");
}

async fn scenario_malformed(spec: Spec) {
    let server = MockServer::start().await;
    mount_ok(
        &server,
        &spec,
        spec.fixture(&format!("malformed.{}", spec.ext)),
    )
    .await;
    let provider = spec.provider(&server.uri(), |_| {});
    let (result, _) = chat(provider.as_ref()).await;
    let err = result.expect_err("malformed");
    assert_eq!(err.class, ErrorClass::Protocol, "{err}");
    assert!(err.message.contains("malformed"), "{}", err.message);
    assert!(
        err.partial_text.starts_with("Hel"),
        "partial text kept: {:?}",
        err.partial_text
    );
}

async fn scenario_empty_reply(spec: Spec) {
    let server = MockServer::start().await;
    mount_ok(&server, &spec, spec.fixture(&format!("empty.{}", spec.ext))).await;
    let provider = spec.provider(&server.uri(), |_| {});
    let (result, chunks) = chat(provider.as_ref()).await;
    let err = result.expect_err("empty");
    assert_eq!(err.class, ErrorClass::EmptyReply, "{err}");
    assert!(chunks.is_empty());
}

async fn scenario_unauthorized(spec: Spec) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(spec.chat_path))
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(spec.fixture("401.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let provider = spec.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::default();
    let (chunks, events) = (Chunks::default(), Events::default());
    let err = call_with_resilience(
        provider.as_ref(),
        &breaker,
        &fast_policy(),
        &request(),
        &|c| chunks.push(c),
        CancellationToken::new(),
        &|e| events.push(e),
    )
    .await
    .expect_err("401");
    assert_eq!(err.class, ErrorClass::Auth { status: 401 });
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "Auth is not retried"
    );
    let expected = format!("HTTP 401 from {} at http://127.0.0.1", spec.kind.name());
    assert!(err.message.starts_with(&expected), "{}", err.message);
    assert_eq!(events.started(), [1]);
    assert_eq!(events.reports()[0].retry_delay, None);
    assert_eq!(
        breaker.consecutive_failures(),
        1,
        "Auth counts toward opening the circuit"
    );
}

async fn scenario_cancel_mid_stream(spec: Spec) {
    let (ct, head) = (spec.content_type, spec.head());
    let server = RawServer::start(move |_| {
        vec![
            Step::Write(chunked_head(ct)),
            Step::Write(chunk(&head)),
            Step::Hold,
        ]
    })
    .await;
    // Long timeouts: only cancellation can end this call.
    let provider = spec.provider(&server.base(), |c| {
        c.first_token_timeout_ms = Some(60_000);
        c.timeout_ms = Some(120_000);
    });
    let cancel = CancellationToken::new();
    let sink = |_: &str| cancel.cancel();
    let req = request();
    let call = provider.chat(&req, &sink, cancel.clone());
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("cancellation ends the call")
        .expect_err("cancelled");
    assert_eq!(err.class, ErrorClass::Cancelled, "{err}");
    assert_eq!(err.partial_text, "Hello");
    assert!(
        server.wait_closed().await,
        "the server saw the connection closed"
    );
}

async fn scenario_pooled_connection(spec: Spec) {
    // Streamed the way real servers stream: chunked, one chunk per frame, then the terminator.
    let (ct, frames) = (spec.content_type, spec.frames());
    let server = RawServer::start(move |_| {
        let mut steps = vec![Step::Write(chunked_head(ct))];
        steps.extend(frames.iter().map(|f| Step::Write(chunk(f))));
        steps.push(Step::Write(b"0\r\n\r\n".to_vec()));
        steps
    })
    .await;
    let provider = spec.provider(&server.base(), |_| {});
    for i in 0..30 {
        let (result, _) = chat(provider.as_ref()).await;
        assert_eq!(
            result.unwrap_or_else(|e| panic!("call {i}: {e}")).text,
            "Hello, world!"
        );
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 30);
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "30 sequential calls reuse one connection"
    );
}

macro_rules! adapter_tests {
    ($module:ident, $spec:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn streaming_success() {
                scenario_streaming_success($spec).await;
            }

            #[tokio::test]
            async fn rate_limited_retried_after_retry_after() {
                scenario_rate_limited_retry_after($spec).await;
            }

            #[tokio::test]
            async fn server_error_then_success() {
                scenario_server_error_then_success($spec).await;
            }

            #[tokio::test]
            async fn first_token_timeout() {
                scenario_first_token_timeout($spec).await;
            }

            #[tokio::test]
            async fn stall_mid_stream_is_timeout() {
                scenario_stall_mid_stream($spec).await;
            }

            #[tokio::test]
            async fn reset_mid_stream_is_stream_broken() {
                scenario_reset_mid_stream($spec).await;
            }

            #[tokio::test]
            async fn malformed_stream_is_protocol() {
                scenario_malformed($spec).await;
            }

            #[tokio::test]
            async fn empty_reply() {
                scenario_empty_reply($spec).await;
            }

            #[tokio::test]
            async fn unauthorized_is_auth_not_retried() {
                scenario_unauthorized($spec).await;
            }

            #[tokio::test]
            async fn cancel_mid_stream() {
                scenario_cancel_mid_stream($spec).await;
            }

            #[tokio::test]
            async fn thirty_calls_one_connection() {
                scenario_pooled_connection($spec).await;
            }
        }
    };
}

adapter_tests!(openai, OPENAI);
adapter_tests!(ollama, OLLAMA);
adapter_tests!(anthropic, ANTHROPIC);
adapter_tests!(gemini, GEMINI);
adapter_tests!(vertex, VERTEX);

// =============================================================================================
// Adapter specifics.

#[tokio::test]
async fn openai_local_server_needs_no_key() {
    let server = MockServer::start().await;
    mount_ok(&server, &OPENAI, OPENAI.stream()).await;
    let mut cfg = OPENAI.config(&server.uri());
    cfg.api_key_env = None;
    let provider = build_provider("local", &cfg, Arc::new(SecretStore::new())).unwrap();
    let (result, _) = chat(provider.as_ref()).await;
    assert_eq!(result.unwrap().text, "Hello, world!");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(header(&requests[0], "authorization"), None);
}

#[tokio::test]
async fn openai_configured_key_missing_is_config_error() {
    let server = MockServer::start().await;
    mount_ok(&server, &OPENAI, OPENAI.stream()).await;
    let mut cfg = OPENAI.config(&server.uri());
    cfg.api_key_env = Some("IM_TEST_SURELY_UNSET_VARIABLE".into());
    let provider = build_provider("cloud", &cfg, Arc::new(SecretStore::new())).unwrap();
    let err = chat(provider.as_ref()).await.0.expect_err("no key");
    assert_eq!(err.class, ErrorClass::Config);
    assert!(
        err.message.contains("IM_TEST_SURELY_UNSET_VARIABLE"),
        "{}",
        err.message
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "no request without the key"
    );
}

#[tokio::test]
async fn openai_end_without_done_after_finish_reason_is_ok() {
    let server = MockServer::start().await;
    let frames = OPENAI.frames();
    let body: String = frames
        .iter()
        .filter(|f| !f.contains("[DONE]"))
        .cloned()
        .collect();
    mount_ok(&server, &OPENAI, body).await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let outcome = chat(provider.as_ref()).await.0.expect("finish_reason seen");
    assert_eq!(outcome.text, "Hello, world!");
    assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn openai_end_without_done_or_finish_reason_is_stream_broken() {
    let server = MockServer::start().await;
    mount_ok(&server, &OPENAI, OPENAI.frames()[..3].concat()).await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let err = chat(provider.as_ref()).await.0.expect_err("truncated");
    assert_eq!(err.class, ErrorClass::StreamBroken);
    assert_eq!(err.partial_text, "Hello, world");
}

#[tokio::test]
async fn openai_ignores_comments_and_unknown_events() {
    let server = MockServer::start().await;
    let frames = OPENAI.frames();
    let body = format!(
        ": keep-alive\n\n{}event: ping\ndata: not json at all\n\n{}",
        frames[..2].concat(),
        frames[2..].concat()
    );
    mount_ok(&server, &OPENAI, body).await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    assert_eq!(
        chat(provider.as_ref()).await.0.expect("ok").text,
        "Hello, world!"
    );
}

#[tokio::test]
async fn openai_total_timeout() {
    let frames = OPENAI.frames();
    let head = frames[..2].concat();
    let server = RawServer::start(move |_| {
        let mut steps = vec![
            Step::Write(chunked_head("text/event-stream")),
            Step::Write(chunk(&head)),
        ];
        for _ in 0..40 {
            steps.push(Step::Sleep(Duration::from_millis(100)));
            steps.push(Step::Write(chunk("event: ping\ndata: {}\n\n")));
        }
        steps.push(Step::Hold);
        steps
    })
    .await;
    let provider = OPENAI.provider(&server.base(), |c| {
        c.first_token_timeout_ms = Some(2_000);
        c.timeout_ms = Some(800);
    });
    let err = chat(provider.as_ref()).await.0.expect_err("total timeout");
    assert_eq!(err.class, ErrorClass::Timeout);
    assert!(
        err.message.contains("total timeout of 800 ms"),
        "{}",
        err.message
    );
    assert_eq!(err.partial_text, "Hello");
}

#[tokio::test]
async fn openai_connection_refused_is_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let provider = OPENAI.provider(&format!("http://{addr}"), |_| {});
    let err = chat(provider.as_ref()).await.0.expect_err("refused");
    assert_eq!(err.class, ErrorClass::Connect, "{err}");
    assert!(err.message.contains(&addr.to_string()), "{}", err.message);
}

#[tokio::test]
async fn openai_json_instead_of_sse_is_protocol() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let err = chat(provider.as_ref()).await.0.expect_err("not SSE");
    assert_eq!(err.class, ErrorClass::Protocol);
}

#[tokio::test]
async fn openai_check_lists_models() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai_models.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let report = provider.check().await;
    assert!(
        report.reachable && report.authorized == Some(true) && report.model_present == Some(true),
        "{report:?}"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        header(&requests[0], "authorization"),
        Some("Bearer sk-test-openai-key-000111222333")
    );

    let missing = OPENAI.provider(&server.uri(), |c| c.model = "gpt-9".into());
    assert_eq!(missing.check().await.model_present, Some(false));
}

#[tokio::test]
async fn openai_check_llamacpp_alias_and_401() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("llamacpp_models.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |c| {
        c.model = "qwen2.5-coder".into();
        c.api_key_env = None;
    });
    let report = provider.check().await;
    assert_eq!(report.model_present, Some(true), "{report:?}");

    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).set_body_raw(fixture("openai_401.json"), "application/json"),
        )
        .mount(&denied)
        .await;
    let report = OPENAI.provider(&denied.uri(), |_| {}).check().await;
    assert!(
        report.reachable && report.authorized == Some(false),
        "{report:?}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let report = OPENAI
        .provider(&format!("http://{addr}"), |_| {})
        .check()
        .await;
    assert!(!report.reachable, "{report:?}");
}

#[tokio::test]
async fn ollama_model_not_found_is_bad_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw(fixture("ollama_404.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let provider = OLLAMA.provider(&server.uri(), |c| c.model = "llama9".into());
    let err = chat(provider.as_ref()).await.0.expect_err("404");
    assert_eq!(err.class, ErrorClass::BadRequest { status: 404 });
    assert!(
        err.message.contains("not found, try pulling it first"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn ollama_error_line_in_stream() {
    let server = MockServer::start().await;
    mount_ok(&server, &OLLAMA, fixture("ollama_model_not_found.ndjson")).await;
    let provider = OLLAMA.provider(&server.uri(), |_| {});
    let err = chat(provider.as_ref()).await.0.expect_err("error line");
    assert_eq!(err.class, ErrorClass::BadRequest { status: 404 });
}

#[tokio::test]
async fn ollama_check_tags() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("ollama_tags.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let report = OLLAMA.provider(&server.uri(), |_| {}).check().await;
    assert!(
        report.reachable && report.model_present == Some(true),
        "{report:?}"
    );
    assert_eq!(report.authorized, None);
    let report = OLLAMA
        .provider(&server.uri(), |c| c.model = "mistral".into())
        .check()
        .await;
    assert_eq!(report.model_present, Some(false));
}

#[tokio::test]
async fn anthropic_overloaded_error_event_is_server_529() {
    let server = MockServer::start().await;
    mount_ok(&server, &ANTHROPIC, fixture("anthropic_overloaded.sse")).await;
    let provider = ANTHROPIC.provider(&server.uri(), |_| {});
    let err = chat(provider.as_ref()).await.0.expect_err("overloaded");
    assert_eq!(err.class, ErrorClass::Server { status: 529 });
    assert!(err.message.contains("Overloaded"), "{}", err.message);
}

#[tokio::test]
async fn anthropic_missing_key_sends_nothing() {
    let server = MockServer::start().await;
    mount_ok(&server, &ANTHROPIC, ANTHROPIC.stream()).await;
    let cfg = ANTHROPIC.config(&server.uri());
    let provider = build_provider("claude", &cfg, Arc::new(SecretStore::new())).unwrap();
    let err = chat(provider.as_ref()).await.0.expect_err("no key");
    assert_eq!(err.class, ErrorClass::Config);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn anthropic_check_models() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("anthropic_models.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let report = ANTHROPIC.provider(&server.uri(), |_| {}).check().await;
    assert!(
        report.reachable && report.authorized == Some(true),
        "{report:?}"
    );
    assert_eq!(
        report.model_present,
        Some(true),
        "the undated alias matches the dated id"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        header(&requests[0], "x-api-key"),
        Some("sk-ant-api03-test-key-444555666777")
    );
    assert_eq!(
        header(&requests[0], "anthropic-version"),
        Some("2023-06-01")
    );
}

#[tokio::test]
async fn gemini_api_key_invalid_400_is_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GEMINI.chat_path))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            fixture("gemini_400_api_key_invalid.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    let err = chat(GEMINI.provider(&server.uri(), |_| {}).as_ref())
        .await
        .0
        .expect_err("bad key");
    assert_eq!(err.class, ErrorClass::Auth { status: 400 });
    assert!(err.message.contains("API key not valid"), "{}", err.message);
}

#[tokio::test]
async fn gemini_retry_info_in_body_sets_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GEMINI.chat_path))
        .respond_with(
            ResponseTemplate::new(429).set_body_raw(fixture("gemini_429.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let err = chat(GEMINI.provider(&server.uri(), |_| {}).as_ref())
        .await
        .0
        .expect_err("429");
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after_ms: Some(1000)
        }
    );
}

#[tokio::test]
async fn gemini_blocked_prompt_is_bad_request() {
    let server = MockServer::start().await;
    mount_ok(&server, &GEMINI, fixture("gemini_blocked.sse")).await;
    let err = chat(GEMINI.provider(&server.uri(), |_| {}).as_ref())
        .await
        .0
        .expect_err("blocked");
    assert!(
        matches!(err.class, ErrorClass::BadRequest { .. }),
        "{err:?}"
    );
    assert!(
        err.message.contains("PROHIBITED_CONTENT"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn gemini_end_without_finish_reason_is_stream_broken() {
    let server = MockServer::start().await;
    mount_ok(&server, &GEMINI, GEMINI.frames()[..2].concat()).await;
    let err = chat(GEMINI.provider(&server.uri(), |_| {}).as_ref())
        .await
        .0
        .expect_err("truncated");
    assert_eq!(err.class, ErrorClass::StreamBroken);
    assert_eq!(err.partial_text, "Hello, world");
}

#[tokio::test]
async fn gemini_check_model() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1beta/models/gemini-2.0-flash"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("gemini_model.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let report = GEMINI.provider(&server.uri(), |_| {}).check().await;
    assert!(
        report.reachable && report.model_present == Some(true),
        "{report:?}"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        header(&requests[0], "x-goog-api-key"),
        Some("AIzaSyTest-gemini-key-888999000111")
    );
    assert_eq!(requests[0].url.query(), None, "the key is never in the URL");
    let report = GEMINI
        .provider(&server.uri(), |c| c.model = "gemini-0".into())
        .check()
        .await;
    assert_eq!(report.model_present, Some(false), "{report:?}");
}

#[tokio::test]
async fn vertex_token_command_runs_once_and_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.log");
    let server = MockServer::start().await;
    mount_ok(&server, &VERTEX, VERTEX.stream()).await;
    let mut cfg = VERTEX.config(&server.uri());
    cfg.api_key_env = None;
    cfg.token_command = Some(format!(
        "echo run >> '{}'; printf '%s\\n' ya29.token-from-command-0123456789",
        log.display()
    ));
    let provider = build_provider("vertex", &cfg, Arc::new(SecretStore::new())).unwrap();
    for _ in 0..2 {
        assert_eq!(
            chat(provider.as_ref()).await.0.expect("ok").text,
            "Hello, world!"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        1,
        "token cached"
    );
    for req in server.received_requests().await.unwrap() {
        assert_eq!(
            header(&req, "authorization"),
            Some("Bearer ya29.token-from-command-0123456789")
        );
    }
    assert!(redact("token ya29.token-from-command-0123456789").contains(REDACTED));
}

#[tokio::test]
async fn vertex_token_command_failure_is_config() {
    let server = MockServer::start().await;
    let mut cfg = VERTEX.config(&server.uri());
    cfg.api_key_env = None;
    cfg.token_command = Some("echo 'not logged in' >&2; exit 3".into());
    let provider = build_provider("vertex", &cfg, Arc::new(SecretStore::new())).unwrap();
    let err = chat(provider.as_ref()).await.0.expect_err("command fails");
    assert_eq!(err.class, ErrorClass::Config);
    assert!(err.message.contains("not logged in"), "{}", err.message);
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// Whether process `pid` is gone (no such process, or a zombie nobody reaped yet).
#[cfg(target_os = "linux")]
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// A token_command that starts a long `sleep`, records its pid and never prints a token.
#[cfg(target_os = "linux")]
fn hanging_token_command(pid_file: &Path) -> String {
    format!("sleep 300 & echo $! > '{}'; wait", pid_file.display())
}

#[cfg(target_os = "linux")]
async fn read_pid(pid_file: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the token_command never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) for `pid` to be gone; kills it if it is not, so a failing run leaks nothing.
#[cfg(target_os = "linux")]
async fn assert_process_ends(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_gone(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone = process_gone(pid);
    if !gone {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    assert!(gone, "the token_command's child {pid} is still running");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn vertex_token_command_timeout_kills_its_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    let server = MockServer::start().await;
    let mut cfg = VERTEX.config(&server.uri());
    cfg.api_key_env = None;
    cfg.token_command = Some(hanging_token_command(&pid_file));
    cfg.token_command_timeout_ms = Some(500);
    let provider = build_provider("vertex", &cfg, Arc::new(SecretStore::new())).unwrap();
    let err = chat(provider.as_ref()).await.0.expect_err("times out");
    assert_eq!(err.class, ErrorClass::Config);
    assert!(
        err.message.contains("did not finish within 500 ms"),
        "{}",
        err.message
    );
    let pid = read_pid(&pid_file).await;
    assert_process_ends(pid).await;
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn vertex_token_command_cancelled_kills_its_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    let server = MockServer::start().await;
    let mut cfg = VERTEX.config(&server.uri());
    cfg.api_key_env = None;
    cfg.token_command = Some(hanging_token_command(&pid_file));
    cfg.token_command_timeout_ms = Some(60_000);
    let provider = build_provider("vertex", &cfg, Arc::new(SecretStore::new())).unwrap();
    let cancel = CancellationToken::new();
    let sink = |_: &str| {};
    let request = request();
    let call = provider.chat(&request, &sink, cancel.clone());
    let cancel_when_started = async {
        let pid = read_pid(&pid_file).await;
        cancel.cancel();
        pid
    };
    let (result, pid) = tokio::join!(call, cancel_when_started);
    let err = result.expect_err("cancelled");
    assert_eq!(err.class, ErrorClass::Cancelled);
    assert_process_ends(pid).await;
}

/// An OpenAI stream of `count` chunks of `chunk`.
fn openai_stream_of(chunk: &str, count: usize) -> String {
    let event = format!(
        "data: {}\n\n",
        serde_json::json!({"id": "x", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": chunk}, "finish_reason": null}]})
    );
    let mut body = event.repeat(count);
    body.push_str("data: [DONE]\n\n");
    body
}

#[tokio::test]
async fn a_reply_past_the_default_cap_of_1_mib_is_stopped() {
    let server = MockServer::start().await;
    // 2,000 chunks of 1,000 bytes: about 2 MB of text.
    mount_ok(&server, &OPENAI, openai_stream_of(&"y".repeat(1000), 2000)).await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::default();
    let events = Events::default();
    let on_attempt = |e: AttemptEvent| events.push(e);
    let received = AtomicUsize::new(0);
    let sink = |c: &str| {
        received.fetch_add(c.len(), Ordering::SeqCst);
    };
    let err = call_with_resilience(
        provider.as_ref(),
        &breaker,
        &fast_policy(),
        &request(),
        &sink,
        CancellationToken::new(),
        &on_attempt,
    )
    .await
    .expect_err("past the cap");
    assert_eq!(
        err.class,
        ErrorClass::ReplyTooLarge {
            limit_bytes: 1 << 20
        }
    );
    assert!(
        err.message.contains("1 MiB") && err.message.contains("1048576 bytes"),
        "{}",
        err.message
    );
    assert!(err.partial_text.is_empty());
    assert!(received.load(Ordering::SeqCst) <= 1 << 20);
    assert_eq!(events.started(), vec![1], "not retried");
    assert_eq!(
        breaker.consecutive_failures(),
        0,
        "not the provider's fault"
    );
}

#[tokio::test]
async fn a_reply_past_a_configured_cap_is_stopped_for_every_adapter() {
    for spec in ALL {
        let server = MockServer::start().await;
        // The fixture's text ("Hello, world!") is longer than the 8-byte cap.
        mount_ok(&server, &spec, spec.stream()).await;
        let provider = spec.provider(&server.uri(), |_| {});
        let breaker = CircuitBreaker::default();
        let received = Mutex::new(String::new());
        let sink = |c: &str| received.lock().push_str(c);
        let err = call_with_options(
            provider.as_ref(),
            &breaker,
            &fast_policy(),
            &request(),
            &sink,
            CancellationToken::new(),
            &|_| {},
            CallOptions {
                max_reply_bytes: Some(8),
                ..CallOptions::default()
            },
        )
        .await
        .expect_err("past the cap");
        assert_eq!(
            err.class,
            ErrorClass::ReplyTooLarge { limit_bytes: 8 },
            "{spec:?}"
        );
        assert!(
            received.lock().len() <= 8,
            "{spec:?}: {:?}",
            received.lock()
        );
    }
}

#[tokio::test]
async fn an_sse_event_that_never_ends_is_a_protocol_error() {
    let server = MockServer::start().await;
    // 5 MiB of one `data:` line with no newline: the parser would buffer it all.
    let mut body = String::from("data: {\"choices\": [{\"delta\": {\"content\": \"");
    body.push_str(&"z".repeat(5 << 20));
    mount_ok(&server, &OPENAI, body).await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let err = chat(provider.as_ref()).await.0.expect_err("too long");
    assert_eq!(err.class, ErrorClass::Protocol, "{}", err.message);
    assert!(
        err.message.contains("SSE event is longer than"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_long_retry_after_fails_over_at_once_and_is_remembered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    let mut cfg = OPENAI.config(&server.uri());
    cfg.max_attempts = Some(3);
    let handle = ProviderHandle::from_config("limited", &cfg, OPENAI.secrets()).unwrap();
    let events = Events::default();
    let on_attempt = |e: AttemptEvent| events.push(e);
    let can_fail_over = || true;
    let err = handle
        .call_with(
            &request(),
            &|_| {},
            CancellationToken::new(),
            &on_attempt,
            CallOptions {
                max_retry_wait: Some(Duration::from_secs(5)),
                can_fail_over: Some(&can_fail_over),
                ..CallOptions::standard()
            },
        )
        .await
        .expect_err("rate limited");
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after_ms: Some(3_600_000)
        }
    );
    assert!(
        err.message.contains("not waiting 3600 s") && err.message.contains("failing over"),
        "{}",
        err.message
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(events.reports().len(), 1);
    assert_eq!(events.reports()[0].retry_delay, None);
    let left = handle.retry_after.remaining().expect("remembered");
    assert!(left > Duration::from_secs(3500), "{left:?}");
}

#[tokio::test]
async fn vertex_check_counts_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.0-flash-001:countTokens",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixture("vertex_count_tokens.json"), "application/json"))
        .mount(&server)
        .await;
    let report = VERTEX.provider(&server.uri(), |_| {}).check().await;
    assert!(
        report.reachable && report.authorized == Some(true) && report.model_present == Some(true),
        "{report:?}"
    );
}

// =============================================================================================
// Circuit breaker.

const SERVER_ERROR: ErrorClass = ErrorClass::Server { status: 503 };

fn open_breaker(threshold: u32, cooldown: Duration, now: Instant) -> CircuitBreaker {
    let breaker = CircuitBreaker::new(threshold, cooldown);
    for _ in 0..threshold {
        breaker
            .try_acquire_at(now)
            .expect("closed")
            .failure_at(&SERVER_ERROR, now);
    }
    breaker
}

#[test]
fn breaker_opens_after_threshold_consecutive_failures() {
    let t0 = Instant::now();
    let breaker = CircuitBreaker::new(3, Duration::from_secs(30));
    for i in 1..3 {
        breaker
            .try_acquire_at(t0)
            .unwrap()
            .failure_at(&SERVER_ERROR, t0);
        assert_eq!(
            breaker.state_at(t0),
            CircuitState::Closed,
            "after {i} failures"
        );
    }
    breaker
        .try_acquire_at(t0)
        .unwrap()
        .failure_at(&ErrorClass::Timeout, t0);
    assert_eq!(breaker.state_at(t0), CircuitState::Open);
    assert_eq!(breaker.consecutive_failures(), 3);
    let wait = breaker
        .try_acquire_at(t0 + Duration::from_secs(29))
        .expect_err("open");
    assert_eq!(wait, Duration::from_secs(1));
}

#[test]
fn breaker_success_resets_the_count() {
    let t0 = Instant::now();
    let breaker = CircuitBreaker::new(3, Duration::from_secs(30));
    breaker
        .try_acquire_at(t0)
        .unwrap()
        .failure_at(&SERVER_ERROR, t0);
    breaker
        .try_acquire_at(t0)
        .unwrap()
        .failure_at(&SERVER_ERROR, t0);
    breaker.try_acquire_at(t0).unwrap().success();
    breaker
        .try_acquire_at(t0)
        .unwrap()
        .failure_at(&SERVER_ERROR, t0);
    assert_eq!(breaker.state_at(t0), CircuitState::Closed);
    assert_eq!(breaker.consecutive_failures(), 1);
}

#[test]
fn breaker_ignores_request_faults_but_counts_auth() {
    let t0 = Instant::now();
    let breaker = CircuitBreaker::new(2, Duration::from_secs(30));
    for class in [
        ErrorClass::BadRequest { status: 400 },
        ErrorClass::Cancelled,
        ErrorClass::EmptyReply,
        ErrorClass::BadRequest { status: 404 },
        ErrorClass::Cancelled,
    ] {
        breaker.try_acquire_at(t0).unwrap().failure_at(&class, t0);
    }
    assert_eq!(breaker.state_at(t0), CircuitState::Closed);
    assert_eq!(breaker.consecutive_failures(), 0);
    breaker
        .try_acquire_at(t0)
        .unwrap()
        .failure_at(&ErrorClass::Auth { status: 401 }, t0);
    breaker
        .try_acquire_at(t0)
        .unwrap()
        .failure_at(&ErrorClass::Auth { status: 401 }, t0);
    assert_eq!(breaker.state_at(t0), CircuitState::Open);
}

#[test]
fn breaker_half_open_lets_exactly_one_probe_through() {
    let t0 = Instant::now();
    let cooldown = Duration::from_secs(30);
    let breaker = open_breaker(5, cooldown, t0);
    let t1 = t0 + cooldown;
    assert_eq!(breaker.state_at(t1), CircuitState::HalfOpen);
    let probe = breaker.try_acquire_at(t1).expect("probe");
    assert!(probe.is_probe());
    assert_eq!(
        breaker
            .try_acquire_at(t1)
            .expect_err("second caller rejected"),
        Duration::ZERO
    );
    assert!(breaker.try_acquire_at(t1 + Duration::from_secs(5)).is_err());
    drop(probe); // abandoned without a verdict: the slot frees
    let probe = breaker.try_acquire_at(t1).expect("probe again");
    assert!(probe.is_probe());
}

#[test]
fn breaker_closes_on_probe_success() {
    let t0 = Instant::now();
    let cooldown = Duration::from_millis(40);
    let breaker = open_breaker(2, cooldown, t0);
    let probe = breaker.try_acquire_at(t0 + cooldown).unwrap();
    probe.success();
    assert_eq!(breaker.state_at(t0 + cooldown), CircuitState::Closed);
    assert_eq!(breaker.consecutive_failures(), 0);
    assert!(!breaker.try_acquire_at(t0 + cooldown).unwrap().is_probe());
}

#[test]
fn breaker_reopens_on_probe_failure() {
    let t0 = Instant::now();
    let cooldown = Duration::from_millis(40);
    let breaker = open_breaker(2, cooldown, t0);
    let t1 = t0 + cooldown + Duration::from_millis(5);
    breaker
        .try_acquire_at(t1)
        .unwrap()
        .failure_at(&SERVER_ERROR, t1);
    assert_eq!(breaker.state_at(t1), CircuitState::Open);
    assert!(
        breaker
            .try_acquire_at(t1 + cooldown - Duration::from_millis(1))
            .is_err(),
        "a full cool-down again"
    );
    assert!(breaker.try_acquire_at(t1 + cooldown).unwrap().is_probe());
}

#[test]
fn circuit_state_serializes_snake_case() {
    assert_eq!(
        serde_json::to_value(CircuitState::HalfOpen).unwrap(),
        "half_open"
    );
    assert_eq!(
        serde_json::to_value(CircuitState::Closed).unwrap(),
        "closed"
    );
    let t0 = Instant::now();
    let breaker = open_breaker(1, Duration::from_secs(30), t0);
    let snap = serde_json::to_value(breaker.snapshot_at(t0)).unwrap();
    assert_eq!(snap["state"], "open");
    assert_eq!(snap["consecutive_failures"], 1);
}

/// One call through the resilience layer; also returns how many attempts started.
async fn call_once(
    provider: &dyn Provider,
    breaker: &CircuitBreaker,
    policy: &RetryPolicy,
) -> (Result<ChatOutcome, ProviderError>, usize) {
    let events = Events::default();
    let result = call_with_resilience(
        provider,
        breaker,
        policy,
        &request(),
        &|_| {},
        CancellationToken::new(),
        &|e| events.push(e),
    )
    .await;
    (result, events.started().len())
}

#[tokio::test]
async fn open_circuit_rejects_without_a_request_then_probe_closes_it() {
    let server = MockServer::start().await;
    let failing = Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(
            ResponseTemplate::new(500).set_body_raw(fixture("openai_500.json"), "application/json"),
        )
        .mount_as_scoped(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::new(2, Duration::from_millis(200));
    let once = RetryPolicy {
        max_attempts: 1,
        ..fast_policy()
    };
    let call = || call_once(provider.as_ref(), &breaker, &once);
    for _ in 0..2 {
        assert_eq!(
            call().await.0.unwrap_err().class,
            ErrorClass::Server { status: 500 }
        );
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    let (rejected, started) = call().await;
    let rejected = rejected.unwrap_err();
    assert_eq!(rejected.class, ErrorClass::CircuitOpen);
    assert!(
        rejected.message.contains("no request was sent"),
        "{}",
        rejected.message
    );
    assert_eq!(started, 0, "no attempt started");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "the server saw nothing while open"
    );

    drop(failing);
    mount_ok(&server, &OPENAI, OPENAI.stream()).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert_eq!(
        call().await.0.expect("probe succeeds").text,
        "Hello, world!"
    );
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test]
async fn failed_probe_reopens_the_circuit() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream connect error"))
        .mount(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::new(1, Duration::from_millis(200));
    let once = RetryPolicy {
        max_attempts: 1,
        ..fast_policy()
    };
    let run = || async { call_once(provider.as_ref(), &breaker, &once).await.0 };
    assert_eq!(
        run().await.unwrap_err().class,
        ErrorClass::Server { status: 503 }
    );
    assert_eq!(run().await.unwrap_err().class, ErrorClass::CircuitOpen);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        run().await.unwrap_err().class,
        ErrorClass::Server { status: 503 },
        "the probe went through"
    );
    assert_eq!(
        run().await.unwrap_err().class,
        ErrorClass::CircuitOpen,
        "re-opened by the failed probe"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

// =============================================================================================
// Retry policy and resilience.

#[test]
fn backoff_is_exponential_with_full_jitter() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts, 3);
    assert_eq!(policy.backoff_ceiling(1), Duration::from_millis(250));
    assert_eq!(policy.backoff_ceiling(2), Duration::from_millis(500));
    assert_eq!(policy.backoff_ceiling(3), Duration::from_millis(1000));
    assert_eq!(policy.backoff_ceiling(6), Duration::from_secs(8));
    assert_eq!(policy.backoff_ceiling(40), Duration::from_secs(8));
    let samples: Vec<Duration> = (0..200).map(|_| policy.backoff_delay(3)).collect();
    assert!(samples.iter().all(|d| *d <= Duration::from_secs(1)));
    let distinct: std::collections::BTreeSet<_> = samples.iter().collect();
    assert!(distinct.len() > 10, "jittered");
}

#[test]
fn retry_after_sets_the_delay_capped_at_60s() {
    let policy = RetryPolicy::default();
    let limited = |ms| ErrorClass::RateLimited {
        retry_after_ms: Some(ms),
    };
    assert_eq!(policy.delay_for(1, &limited(1000)), Duration::from_secs(1));
    assert_eq!(
        policy.delay_for(1, &limited(20_000)),
        Duration::from_secs(20),
        "not capped by max_delay"
    );
    assert_eq!(
        policy.delay_for(1, &limited(600_000)),
        Duration::from_secs(60)
    );
    assert!(
        policy.delay_for(
            1,
            &ErrorClass::RateLimited {
                retry_after_ms: None
            }
        ) <= Duration::from_millis(250)
    );
}

#[test]
fn retry_after_parses_seconds_and_http_dates() {
    let date = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    let now = date - Duration::from_secs(5);
    assert_eq!(parse_retry_after("1", now), Some(1000));
    assert_eq!(parse_retry_after(" 120 ", now), Some(120_000));
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Some(5000)
    );
    assert_eq!(
        parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
        Some(5000)
    );
    assert_eq!(
        parse_retry_after("Sun Nov  6 08:49:37 1994", now),
        Some(5000)
    );
    assert_eq!(
        parse_retry_after(
            "Sun, 06 Nov 1994 08:49:37 GMT",
            date + Duration::from_secs(9)
        ),
        Some(0)
    );
    assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    assert_eq!(parse_retry_after("", SystemTime::now()), None);
}

#[tokio::test]
async fn retry_after_http_date_header_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(|_: &Request| {
            ResponseTemplate::new(429).insert_header("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")
        })
        .mount(&server)
        .await;
    let err = chat(OPENAI.provider(&server.uri(), |_| {}).as_ref())
        .await
        .0
        .unwrap_err();
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after_ms: Some(0)
        },
        "a past date means now"
    );
}

#[tokio::test]
async fn cancel_during_backoff_returns_cancelled() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_raw(fixture("openai_429.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::default();
    let cancel = CancellationToken::new();
    let on_attempt = |e: AttemptEvent| {
        if let AttemptEvent::Finished(r) = e {
            assert_eq!(r.retry_delay, Some(Duration::from_secs(30)));
            cancel.cancel();
        }
    };
    let (policy, req) = (fast_policy(), request());
    let call = call_with_resilience(
        provider.as_ref(),
        &breaker,
        &policy,
        &req,
        &|_| {},
        cancel.clone(),
        &on_attempt,
    );
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("not waiting 30 s")
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Cancelled);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ANTHROPIC.chat_path))
        .respond_with(ResponseTemplate::new(529).set_body_raw(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let provider = ANTHROPIC.provider(&server.uri(), |_| {});
    let events = Events::default();
    let err = call_with_resilience(
        provider.as_ref(),
        &CircuitBreaker::default(),
        &fast_policy(),
        &request(),
        &|_| {},
        CancellationToken::new(),
        &|e| events.push(e),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::Server { status: 529 });
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let reports = events.reports();
    assert_eq!(reports.len(), 3);
    assert!(reports[..2].iter().all(|r| r.retry_delay.is_some()));
    assert_eq!(reports[2].retry_delay, None);
    assert!(
        reports
            .iter()
            .all(|r| r.provider == "anthropic" && r.model == "claude-sonnet-4-5")
    );
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":null}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let provider = OPENAI.provider(&server.uri(), |_| {});
    let breaker = CircuitBreaker::new(1, Duration::from_secs(30));
    let err = call_with_resilience(
        provider.as_ref(),
        &breaker,
        &fast_policy(),
        &request(),
        &|_| {},
        CancellationToken::new(),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::BadRequest { status: 400 });
    assert!(
        err.message.contains("Invalid value for 'temperature'"),
        "{}",
        err.message
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        breaker.state(),
        CircuitState::Closed,
        "a bad request says nothing about the provider"
    );
}

// =============================================================================================
// Registry.

#[test]
fn build_provider_picks_the_adapter_by_kind() {
    for spec in ALL {
        let provider =
            build_provider("p", &spec.config("http://127.0.0.1:9"), spec.secrets()).unwrap();
        assert_eq!(provider.kind(), spec.kind);
        assert_eq!(provider.name(), "p");
        assert_eq!(provider.model(), spec.model);
    }
}

#[test]
fn build_provider_config_errors() {
    let mut cfg = VERTEX.config("http://127.0.0.1:9");
    cfg.project = None;
    let err = build_provider("v", &cfg, Arc::new(SecretStore::new()))
        .err()
        .expect("no project");
    assert_eq!(err.class, ErrorClass::Config);
    assert!(err.message.contains("project"), "{}", err.message);

    let mut cfg = OPENAI.config("");
    cfg.base_url = Some("not a url".into());
    assert_eq!(
        build_provider("o", &cfg, Arc::new(SecretStore::new()))
            .err()
            .unwrap()
            .class,
        ErrorClass::Config
    );
    cfg.base_url = Some("ftp://example.com".into());
    assert_eq!(
        build_provider("o", &cfg, Arc::new(SecretStore::new()))
            .err()
            .unwrap()
            .class,
        ErrorClass::Config
    );
}

#[tokio::test]
async fn provider_handle_from_config() {
    let server = MockServer::start().await;
    mount_ok(&server, &OLLAMA, OLLAMA.stream()).await;
    let mut cfg = OLLAMA.config(&server.uri());
    cfg.max_concurrency = Some(2);
    cfg.max_attempts = Some(4);
    cfg.circuit_failure_threshold = Some(7);
    let handle = ProviderHandle::from_config("local", &cfg, Arc::new(SecretStore::new())).unwrap();
    assert_eq!(handle.semaphore.available_permits(), 2);
    assert_eq!(handle.retry.max_attempts, 4);
    assert_eq!(handle.breaker.threshold(), 7);
    assert_eq!(handle.breaker.cooldown(), Duration::from_millis(50));
    let outcome = handle
        .call(&request(), &|_| {}, CancellationToken::new(), &|_| {})
        .await
        .unwrap();
    assert_eq!(outcome.text, "Hello, world!");
    assert_eq!(
        handle.semaphore.available_permits(),
        2,
        "the slot is released"
    );
}

// =============================================================================================
// Secrets and redaction.

#[test]
fn secret_store_runtime_value_wins_over_env() {
    // CARGO_PKG_VERSION_MAJOR is set by cargo for test processes (a short value: not registered).
    let secrets = SecretStore::new();
    let env = std::env::var("CARGO_PKG_VERSION_MAJOR").ok();
    assert_eq!(secrets.get("CARGO_PKG_VERSION_MAJOR"), env);
    secrets.set("CARGO_PKG_VERSION_MAJOR", "runtime-secret-value-42");
    assert_eq!(
        secrets.get("CARGO_PKG_VERSION_MAJOR").as_deref(),
        Some("runtime-secret-value-42")
    );
    assert_eq!(
        redact("x runtime-secret-value-42 y"),
        format!("x {REDACTED} y")
    );
    secrets.remove("CARGO_PKG_VERSION_MAJOR");
    assert_eq!(secrets.get("CARGO_PKG_VERSION_MAJOR"), env);
    assert_eq!(secrets.get("IM_TEST_SURELY_UNSET_VARIABLE"), None);
    secrets.set("claude", "key-set-under-provider-name-1");
    assert_eq!(
        secrets.key_for("claude", None).as_deref(),
        Some("key-set-under-provider-name-1")
    );
    assert!(!format!("{secrets:?}").contains("key-set-under-provider-name-1"));
}

#[test]
fn redact_registered_secrets_and_key_shapes() {
    register_secret("registered-secret-abcdef");
    register_secret("short"); // too short to register
    let text = "a registered-secret-abcdef b \
        https://h/v1beta/models/m:generateContent?alt=sse&key=AIzaSyA-abcdefghijklmnopqrstuvwxyz0123456 c \
        Authorization: Bearer tok-abcdef123456 d \
        x-api-key: ant-secret-value-987 e \
        {\"x-goog-api-key\": \"goog-secret-value-654\"} f \
        sk-proj-AbCdEfGhIjKlMnOpQrStUv g \
        a short word";
    let out = redact(text);
    for secret in [
        "registered-secret-abcdef",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz0123456",
        "tok-abcdef123456",
        "ant-secret-value-987",
        "goog-secret-value-654",
        "sk-proj-AbCdEfGhIjKlMnOpQrStUv",
    ] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    assert!(out.contains("?alt=sse&key=[REDACTED]"), "{out}");
    assert!(out.contains("Authorization: Bearer [REDACTED]"), "{out}");
    assert!(
        out.contains("a short word"),
        "short values are not registered: {out}"
    );
    assert_eq!(
        redact("invalid x-api-key"),
        "invalid x-api-key",
        "prose is left alone"
    );
    assert_eq!(redact("héllo wörld, key: naïve"), "héllo wörld, key: naïve");
}

const PLANTED_ENV: &str = "IM_TEST_PLANTED_KEY";
const PLANTED: &str = "sk-planted-0123456789abcdef";

/// Re-runs this test binary with the key planted in the environment (setting env vars in a
/// running multi-threaded test process is unsound); the child runs the checks.
fn run_with_planted_key() {
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            "providers::planted_env_key_never_leaks",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PLANTED_ENV, PLANTED)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child test ran:\n{stdout}");
    assert!(
        !stdout.contains(PLANTED) && !stderr.contains(PLANTED),
        "the key leaked into output"
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A key planted in the environment never leaks: run normally, this test starts a copy of
/// itself with the key planted, and that copy does the checks.
#[tokio::test]
async fn planted_env_key_never_leaks() {
    if std::env::var(PLANTED_ENV).as_deref() != Ok(PLANTED) {
        tokio::task::spawn_blocking(run_with_planted_key)
            .await
            .unwrap();
        return;
    }
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    for spec in ALL {
        let server = MockServer::start().await;
        // The server echoes the key and every credential header back in its error body.
        Mock::given(method("POST"))
            .respond_with(|req: &Request| {
                let echo = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let body = serde_json::json!({
                    "error": {
                        "message": format!(
                            "invalid key {PLANTED}; you sent Authorization: {}; x-api-key: {}; x-goog-api-key: {}; url {}",
                            echo("authorization"), echo("x-api-key"), echo("x-goog-api-key"), req.url
                        ),
                        "type": "authentication_error"
                    }
                });
                ResponseTemplate::new(401).set_body_json(body)
            })
            .mount(&server)
            .await;
        let mut cfg = spec.config(&server.uri());
        cfg.api_key_env = Some(PLANTED_ENV.to_string());
        let provider =
            build_provider(spec.kind.name(), &cfg, Arc::new(SecretStore::new())).unwrap();
        let events = Events::default();
        let err = call_with_resilience(
            provider.as_ref(),
            &CircuitBreaker::default(),
            &fast_policy(),
            &request(),
            &|_| {},
            CancellationToken::new(),
            &|e| events.push(e),
        )
        .await
        .unwrap_err();

        let sent = server.received_requests().await.unwrap();
        let sent_headers = format!("{:?}", sent[0].headers);
        assert!(
            sent_headers.contains(PLANTED),
            "{:?}: the key was really sent",
            spec.kind
        );
        assert!(
            !sent[0].url.to_string().contains(PLANTED),
            "never in the URL"
        );

        assert!(matches!(err.class, ErrorClass::Auth { .. }), "{err:?}");
        for shown in [
            err.to_string(),
            format!("{err:?}"),
            err.message.clone(),
            format!("{:?}", events.reports()),
        ] {
            assert!(
                !shown.contains(PLANTED),
                "{:?}: the key leaked: {shown}",
                spec.kind
            );
        }
        assert!(err.message.contains(REDACTED), "{}", err.message);
    }
    let logs = String::from_utf8_lossy(&logs.0.lock()).into_owned();
    assert!(
        logs.contains("provider call failed"),
        "tracing was captured: {logs}"
    );
    assert!(!logs.contains(PLANTED), "the key leaked into the logs");
}

#[tokio::test]
async fn openai_pooled_with_content_length_replies() {
    let body = OPENAI.stream();
    let server = RawServer::start(move |_| {
        vec![Step::Write(keepalive_response(OPENAI.content_type, &body))]
    })
    .await;
    let provider = OPENAI.provider(&server.base(), |_| {});
    for _ in 0..30 {
        assert_eq!(
            chat(provider.as_ref()).await.0.expect("ok").text,
            "Hello, world!"
        );
    }
    assert_eq!(server.requests.load(Ordering::SeqCst), 30);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

/// A provider's health as status displays show it: unknown until contacted, unreachable
/// (with the reason) when nothing listens, healthy once a call is answered, failing on a
/// server error, circuit open when the breaker opens.
#[tokio::test]
async fn health_is_unknown_until_contacted_then_follows_the_last_call() {
    use infinity_matrix::providers::ProviderHealth;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let once = RetryPolicy {
        max_attempts: 1,
        ..fast_policy()
    };
    let breaker = CircuitBreaker::new(3, Duration::from_secs(60));
    assert_eq!(breaker.health(), (ProviderHealth::Unknown, None));

    let refused = OPENAI.provider(&format!("http://{addr}"), |_| {});
    let _ = call_once(refused.as_ref(), &breaker, &once).await;
    let (health, reason) = breaker.health();
    assert_eq!(health, ProviderHealth::Unreachable);
    assert!(
        reason.as_deref().unwrap_or("").contains(&addr.to_string()),
        "{reason:?}"
    );

    let server = MockServer::start().await;
    mount_ok(&server, &OPENAI, OPENAI.stream()).await;
    let up = OPENAI.provider(&server.uri(), |_| {});
    call_once(up.as_ref(), &breaker, &once)
        .await
        .0
        .expect("answered");
    assert_eq!(breaker.health(), (ProviderHealth::Healthy, None));

    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI.chat_path))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .mount(&failing)
        .await;
    let down = OPENAI.provider(&failing.uri(), |_| {});
    let _ = call_once(down.as_ref(), &breaker, &once).await;
    assert_eq!(breaker.health().0, ProviderHealth::Failing);
    let _ = call_once(down.as_ref(), &breaker, &once).await;
    let _ = call_once(down.as_ref(), &breaker, &once).await;
    assert_eq!(breaker.health().0, ProviderHealth::CircuitOpen);
}
