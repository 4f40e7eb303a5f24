//! Builds adapters from configuration and bundles each with its breaker, retry policy and concurrency limit.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::anthropic::AnthropicProvider;
use super::embedded::EmbeddedProvider;
use super::gemini::GeminiProvider;
use super::ollama::OllamaProvider;
use super::openai::OpenAiProvider;
use super::resilience::{
    AttemptEvent, CallOptions, CircuitBreaker, RetryAfterMemory, RetryPolicy, call_with_options,
};
use super::secrets::{SecretStore, redact};
use super::vertex::VertexProvider;
use super::{
    ChatOutcome, ChatRequest, ChunkSink, ErrorClass, Provider, ProviderError, ProviderKind,
};
use crate::config::types::ProviderConfig;

/// Calls in flight at once on one provider when the configuration sets none.
pub const DEFAULT_MAX_CONCURRENCY: usize = 4;

/// Builds the adapter for `cfg.kind`. Fails with a Config error on a bad base URL, an empty
/// model, or (Vertex) a missing project. Keys are resolved per call, so a key set at runtime
/// after this applies.
pub fn build_provider(
    name: &str,
    cfg: &ProviderConfig,
    secrets: Arc<SecretStore>,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match cfg.kind {
        ProviderKind::Openai => Arc::new(OpenAiProvider::new(name, cfg, secrets)?),
        ProviderKind::Ollama => Arc::new(OllamaProvider::new(name, cfg, secrets)?),
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(name, cfg, secrets)?),
        ProviderKind::Gemini => Arc::new(GeminiProvider::new(name, cfg, secrets)?),
        ProviderKind::Vertex => Arc::new(VertexProvider::new(name, cfg, secrets)?),
        ProviderKind::Embedded => Arc::new(EmbeddedProvider::new(name, cfg)?),
    })
}

/// A provider with everything that guards it.
pub struct ProviderHandle {
    pub provider: Arc<dyn Provider>,
    pub breaker: CircuitBreaker,
    pub retry: RetryPolicy,
    /// Limits calls in flight (`max_concurrency`).
    pub semaphore: Arc<tokio::sync::Semaphore>,
    /// Until when the provider asked callers to stay away (its last Retry-After).
    pub retry_after: RetryAfterMemory,
}

impl std::fmt::Debug for ProviderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHandle")
            .field("provider", &self.provider.name())
            .field("kind", &self.provider.kind())
            .field("breaker", &self.breaker.snapshot())
            .field("retry", &self.retry)
            .field("available_permits", &self.semaphore.available_permits())
            .field("retry_after", &self.retry_after.remaining())
            .finish()
    }
}

impl ProviderHandle {
    /// Builds the adapter and its guards from configuration.
    pub fn from_config(
        name: &str,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
    ) -> Result<Self, ProviderError> {
        Ok(ProviderHandle::new(
            build_provider(name, cfg, secrets)?,
            cfg,
        ))
    }

    /// Wraps an existing adapter (e.g. a test double) with guards from configuration.
    pub fn new(provider: Arc<dyn Provider>, cfg: &ProviderConfig) -> Self {
        ProviderHandle {
            provider,
            breaker: CircuitBreaker::from_config(cfg),
            retry: RetryPolicy::from_config(cfg),
            semaphore: Arc::new(tokio::sync::Semaphore::new(
                cfg.max_concurrency
                    .unwrap_or(DEFAULT_MAX_CONCURRENCY)
                    .max(1),
            )),
            retry_after: RetryAfterMemory::default(),
        }
    }

    /// Waits for a concurrency slot (cancellable), then calls with retries, the breaker and the
    /// standard options (the default reply cap).
    pub async fn call(
        &self,
        request: &ChatRequest,
        on_chunk: ChunkSink<'_>,
        cancel: CancellationToken,
        on_attempt: &(dyn Fn(AttemptEvent) + Send + Sync),
    ) -> Result<ChatOutcome, ProviderError> {
        self.call_with(
            request,
            on_chunk,
            cancel,
            on_attempt,
            CallOptions::standard(),
        )
        .await
    }

    /// [`ProviderHandle::call`] with explicit options. A final rate-limit failure with a
    /// Retry-After is remembered in `retry_after`; a success forgets it.
    pub async fn call_with(
        &self,
        request: &ChatRequest,
        on_chunk: ChunkSink<'_>,
        cancel: CancellationToken,
        on_attempt: &(dyn Fn(AttemptEvent) + Send + Sync),
        options: CallOptions<'_>,
    ) -> Result<ChatOutcome, ProviderError> {
        let cancelled = |what: &str| ProviderError {
            provider: self.provider.name().to_string(),
            class: ErrorClass::Cancelled,
            message: redact(what),
            partial_text: String::new(),
        };
        let _slot = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(cancelled("cancelled while waiting for a concurrency slot")),
            slot = self.semaphore.acquire() => match slot {
                Ok(slot) => slot,
                Err(_) => return Err(cancelled("the provider was shut down")),
            },
        };
        let result = call_with_options(
            self.provider.as_ref(),
            &self.breaker,
            &self.retry,
            request,
            on_chunk,
            cancel,
            on_attempt,
            options,
        )
        .await;
        self.note_result(&result);
        result
    }

    /// Remembers a rate limit's Retry-After (or forgets it after a success).
    pub fn note_result(&self, result: &Result<ChatOutcome, ProviderError>) {
        match result {
            Ok(_) => self.retry_after.clear(),
            Err(ProviderError {
                class:
                    ErrorClass::RateLimited {
                        retry_after_ms: Some(ms),
                    },
                ..
            }) => self
                .retry_after
                .remember(std::time::Duration::from_millis(*ms)),
            Err(_) => {}
        }
    }
}
