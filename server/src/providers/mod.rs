//! LLM providers: one adapter per wire protocol behind the `Provider` trait, plus the shared
//! resilience layer (timeouts, retries with backoff and jitter, circuit breakers) and secrets.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub mod anthropic;
pub mod embedded;
pub mod gemini;
pub mod http;
pub mod ollama;
pub mod openai;
pub mod registry;
pub mod resilience;
// The secret store and redactor moved to the leaf module `crate::secrets` (config needs them).
pub use crate::secrets;
pub mod vertex;

pub use anthropic::AnthropicProvider;
pub use embedded::EmbeddedProvider;
pub use gemini::GeminiProvider;
pub use http::{CallLimits, build_client, classify_status, parse_retry_after};
pub use ollama::OllamaProvider;
pub use openai::OpenAiProvider;
pub use registry::{ProviderHandle, build_provider};
pub use resilience::{
    AttemptEvent, AttemptReport, BreakerPermit, CallOptions, CircuitBreaker, CircuitSnapshot,
    CircuitState, ProviderHealth, RetryAfterMemory, RetryPolicy, call_with_options,
    call_with_resilience, counts_as_failure, human_bytes,
};
pub use secrets::{REDACTED, SecretStore, redact, register_secret};
pub use vertex::VertexProvider;
// Part of the configuration's shape (`kind = "openai"`), so defined there.
pub use crate::config::ProviderKind;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

/// One chat completion request (the adapter maps it to its wire format).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Model name; empty means the provider's configured model.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// Token usage as the provider reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

/// What one successful call produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatOutcome {
    pub text: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    /// Time from sending the request to the first text chunk.
    pub time_to_first_token: Option<Duration>,
}

/// Why a call failed, classified for retry and failover decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "class")]
pub enum ErrorClass {
    /// Could not connect (refused, DNS, TLS) or the connection dropped before any reply.
    Connect,
    /// The connect timeout passed.
    ConnectTimeout,
    /// No first token within the first-token timeout.
    FirstTokenTimeout,
    /// The whole call took longer than the total timeout (or the stream stalled).
    Timeout,
    /// HTTP 429; `retry_after_ms` from the Retry-After header when present.
    RateLimited { retry_after_ms: Option<u64> },
    /// HTTP 5xx (and 408).
    Server { status: u16 },
    /// HTTP 401/403: the key is missing or wrong.
    Auth { status: u16 },
    /// Other 4xx: the request itself is wrong (bad model name, bad params).
    BadRequest { status: u16 },
    /// The stream broke mid-way (connection reset after some data).
    StreamBroken,
    /// The reply could not be understood (malformed JSON / SSE).
    Protocol,
    /// The provider answered with no text at all.
    EmptyReply,
    /// The call was cancelled by the caller.
    Cancelled,
    /// The circuit breaker is open: the call was not made.
    CircuitOpen,
    /// Configuration problem (no key, bad URL).
    Config,
    /// The reply grew past the cap on reply text (`limit_bytes`); the stream was stopped.
    ReplyTooLarge { limit_bytes: u64 },
    /// The call ended abnormally inside this process (a panic): not the provider's fault.
    Internal,
}

impl ErrorClass {
    /// Worth retrying on the same provider.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ErrorClass::Connect
                | ErrorClass::ConnectTimeout
                | ErrorClass::FirstTokenTimeout
                | ErrorClass::Timeout
                | ErrorClass::RateLimited { .. }
                | ErrorClass::Server { .. }
                | ErrorClass::StreamBroken
        )
    }

    /// Short name for metrics and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::ConnectTimeout => "connect_timeout",
            ErrorClass::FirstTokenTimeout => "first_token_timeout",
            ErrorClass::Timeout => "timeout",
            ErrorClass::RateLimited { .. } => "rate_limited",
            ErrorClass::Server { .. } => "server",
            ErrorClass::Auth { .. } => "auth",
            ErrorClass::BadRequest { .. } => "bad_request",
            ErrorClass::StreamBroken => "stream_broken",
            ErrorClass::Protocol => "protocol",
            ErrorClass::EmptyReply => "empty_reply",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::CircuitOpen => "circuit_open",
            ErrorClass::Config => "config",
            ErrorClass::ReplyTooLarge { .. } => "reply_too_large",
            ErrorClass::Internal => "internal",
        }
    }
}

/// A failed call. `message` is already redacted: it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    pub provider: String,
    pub class: ErrorClass,
    pub message: String,
    /// Text received before the failure (for a stream that broke mid-way).
    pub partial_text: String,
}

/// Result of `Provider::check` (for `infinity-matrix doctor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub reachable: bool,
    pub authorized: Option<bool>,
    pub model_present: Option<bool>,
    pub detail: String,
}

impl HealthReport {
    /// A check that could not even be sent.
    pub fn failed(detail: String) -> HealthReport {
        HealthReport {
            reachable: false,
            authorized: None,
            model_present: None,
            detail,
        }
    }
}

/// Callback receiving each streamed text chunk as it arrives.
pub type ChunkSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// One LLM endpoint. `chat` makes exactly one HTTP request (no retries: the resilience layer
/// wraps it), streams text chunks to `on_chunk`, and aborts the request at once when `cancel`
/// fires. Implementations hold one pooled `reqwest::Client` for their lifetime.
pub trait Provider: Send + Sync {
    /// The provider's name in the configuration (e.g. "local", "claude").
    fn name(&self) -> &str;
    fn kind(&self) -> ProviderKind;
    /// The configured model.
    fn model(&self) -> &str;
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>>;
    /// Reachable? Authorised? Model present? (Cheap calls such as listing models.)
    fn check(&self) -> BoxFuture<'_, HealthReport>;
    /// Prepares what the first call would otherwise build (the HTTP client: ~10 ms the first
    /// time in a process). Blocking; called off the request path.
    fn warm_up(&self) {}
}
