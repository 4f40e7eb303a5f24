//! A GGUF model loaded with candle, as a worker [`Session`]: the prompt is fed in pieces, tokens are sampled one at a time on a thread pool of the configured size.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

use super::llama::Llama;
use super::tokenizer::ModelTokenizer;
use super::worker::{Failure, Sampling, Session, Step};
use crate::providers::{ChatMessage, ErrorClass};

/// Prompt tokens fed per forward pass (bounds the attention scores' memory; cancellation is
/// checked between pieces).
const PROMPT_PIECE: usize = 512;
/// Sampling with a temperature keeps the most likely tokens that make up this probability...
const TOP_P: f32 = 0.95;
/// ...and at most this many.
const TOP_K: usize = 40;
/// Tokens among the last `REPEAT_WINDOW` of the context are made less likely by this factor
/// (as llama.cpp does by default): a small model otherwise loops on a phrase.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_WINDOW: usize = 64;

/// The model, its tokenizer and the position in the current reply.
pub struct CandleSession {
    model: Llama,
    tokenizer: ModelTokenizer,
    pool: rayon::ThreadPool,
    device: Device,
    /// Tokens in the KV cache.
    position: usize,
    /// Logits for the next token.
    logits: Option<Vec<f32>>,
    /// The token sampled last, not yet fed to the model.
    unfed: Option<u32>,
    /// The last tokens of the context (prompt, then reply), for the repeat penalty.
    recent: std::collections::VecDeque<u32>,
    sampling: Sampling,
    rng: rand::rngs::StdRng,
}

fn model_error(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorClass::Internal, format!("{what}: {e}"))
}

/// candle 0.11 runs its quantized kernels and attention on one process-wide pool of spinning
/// threads, sized when it is first used from `CANDLE_NUM_THREADS` (else the core count) and
/// never resized. The first model loaded in the process sizes it from its `threads`, unless
/// the environment already says; later models share that pool.
fn size_candle_pool(threads: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            // SAFETY: std serialises its own reads and writes of the environment; this runs
            // once per process, on the model thread, before candle's first read of it. What
            // remains is a C library calling getenv at this instant: none of the server's
            // (SQLite, tree-sitter, the TLS stack) reads the environment after start-up.
            unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.max(1).to_string()) };
        }
    });
}

impl CandleSession {
    /// Reads the GGUF file at `path` (weights and tokenizer) with a context of
    /// `context_tokens` and a pool of `threads` threads.
    pub fn load(path: &Path, context_tokens: usize, threads: usize) -> Result<Self, Failure> {
        size_candle_pool(threads);
        let mut file = std::fs::File::open(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; install it with `infinity-matrix model install`"
            } else {
                ""
            };
            Failure::new(
                ErrorClass::Config,
                format!("cannot open the model {}: {e}{hint}", path.display()),
            )
        })?;
        let bad = |e: &dyn std::fmt::Display| {
            Failure::new(
                ErrorClass::Config,
                format!("{} is not a usable GGUF model: {e}", path.display()),
            )
        };
        let content = gguf_file::Content::read(&mut file).map_err(|e| bad(&e))?;
        let tokenizer = ModelTokenizer::from_gguf(&content).map_err(|e| bad(&e))?;
        let device = Device::Cpu;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("embedded-model-{i}"))
            .build()
            .map_err(|e| model_error("cannot start the model's threads", e))?;
        let model = pool
            .install(|| Llama::from_gguf(&content, &mut file, context_tokens, &device))
            .map_err(|e| bad(&e))?;
        Ok(CandleSession {
            model,
            tokenizer,
            pool,
            device,
            position: 0,
            logits: None,
            unfed: None,
            recent: std::collections::VecDeque::with_capacity(REPEAT_WINDOW + 1),
            sampling: Sampling {
                temperature: 0.0,
                seed: 0,
            },
            rng: rand::rngs::StdRng::seed_from_u64(0),
        })
    }

    /// The context length in tokens.
    pub fn context_len(&self) -> usize {
        self.model.context_len
    }

    fn forward(&mut self, ids: &[u32]) -> Result<Vec<f32>, Failure> {
        let position = self.position;
        let device = &self.device;
        let model = &mut self.model;
        let logits = self.pool.install(|| {
            let input = Tensor::new(ids, device)?.unsqueeze(0)?;
            model
                .forward(&input, position)?
                .squeeze(0)?
                .to_vec1::<f32>()
        });
        self.position += ids.len();
        logits.map_err(|e| model_error("the model failed", e))
    }

    fn remember(&mut self, id: u32) {
        self.recent.push_back(id);
        while self.recent.len() > REPEAT_WINDOW {
            self.recent.pop_front();
        }
    }

    fn sample(&mut self, mut logits: Vec<f32>) -> Option<u32> {
        let mut seen = std::collections::HashSet::new();
        for id in &self.recent {
            if seen.insert(*id)
                && let Some(l) = logits.get_mut(*id as usize)
            {
                *l = if *l > 0.0 {
                    *l / REPEAT_PENALTY
                } else {
                    *l * REPEAT_PENALTY
                };
            }
        }
        let logits = logits.as_slice();
        let best = || {
            logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i as u32)
        };
        let t = self.sampling.temperature;
        if t <= 0.0 || !t.is_finite() {
            return best();
        }
        let mut ranked: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(TOP_K);
        let top = ranked.first().map_or(0.0, |r| r.1);
        let mut weights: Vec<f32> = ranked.iter().map(|r| ((r.1 - top) / t).exp()).collect();
        let sum: f32 = weights.iter().sum();
        let mut kept = 0.0;
        let mut keep = weights.len();
        for (i, w) in weights.iter().enumerate() {
            kept += w / sum;
            if kept >= TOP_P {
                keep = i + 1;
                break;
            }
        }
        weights.truncate(keep);
        let total: f32 = weights.iter().sum();
        let mut pick = self.rng.random::<f32>() * total;
        for (w, r) in weights.iter().zip(&ranked) {
            if pick < *w {
                return Some(r.0 as u32);
            }
            pick -= w;
        }
        best()
    }
}

impl Session for CandleSession {
    fn begin(
        &mut self,
        messages: &[ChatMessage],
        sampling: Sampling,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<usize, Failure> {
        self.model.clear_kv_cache();
        self.position = 0;
        self.logits = None;
        self.unfed = None;
        self.recent.clear();
        self.sampling = sampling;
        self.rng = rand::rngs::StdRng::seed_from_u64(sampling.seed);
        let prompt = self.tokenizer.prompt(messages);
        let ids = self
            .tokenizer
            .encode(&prompt)
            .map_err(|e| Failure::new(ErrorClass::BadRequest { status: 400 }, e))?;
        let context = self.context_len();
        if ids.is_empty() || ids.len() >= context {
            return Err(Failure::new(
                ErrorClass::BadRequest { status: 400 },
                format!(
                    "the prompt is {} tokens and the embedded model's context is {context} \
                     (context_tokens, at most 4096): shorten the agent's context_budget_tokens",
                    ids.len()
                ),
            ));
        }
        for id in ids.iter().rev().take(REPEAT_WINDOW).rev() {
            self.remember(*id);
        }
        let mut logits = Vec::new();
        for piece in ids.chunks(PROMPT_PIECE) {
            if cancelled() {
                return Err(Failure::new(ErrorClass::Cancelled, "cancelled"));
            }
            logits = self.forward(piece)?;
        }
        self.logits = Some(logits);
        Ok(ids.len())
    }

    fn next(&mut self) -> Result<Step, Failure> {
        if let Some(id) = self.unfed.take() {
            if self.position >= self.context_len() {
                return Ok(Step::ContextFull);
            }
            self.logits = Some(self.forward(&[id])?);
        }
        let Some(logits) = self.logits.take() else {
            return Err(model_error("internal", "next() before begin()"));
        };
        let Some(id) = self.sample(logits) else {
            return Err(model_error("the model failed", "no logits"));
        };
        if self.tokenizer.stop_ids.contains(&id) {
            return Ok(Step::End);
        }
        self.remember(id);
        self.unfed = Some(id);
        Ok(Step::Token(self.tokenizer.bytes_of(id).to_vec()))
    }
}

/// What a short generation showed: load time, first token, speed.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub load: Duration,
    pub prompt_tokens: usize,
    pub first_token: Duration,
    pub tokens: usize,
    pub tokens_per_second: f64,
    pub text: String,
}

/// Loads the model at `path` and generates up to `max_tokens` tokens greedily for `question`
/// (for `model install` and `doctor`).
pub fn probe(
    path: &Path,
    question: &str,
    max_tokens: usize,
    threads: usize,
) -> Result<Probe, Failure> {
    let messages = [ChatMessage {
        role: crate::providers::Role::User,
        content: question.to_string(),
    }];
    measure(path, &messages, max_tokens, threads, 512)
}

/// Loads the model at `path` with a context of `context_tokens` and generates up to
/// `max_tokens` tokens greedily for `messages`, timing each part (for `model bench` too).
pub fn measure(
    path: &Path,
    messages: &[ChatMessage],
    max_tokens: usize,
    threads: usize,
    context_tokens: usize,
) -> Result<Probe, Failure> {
    let started = Instant::now();
    let mut session = CandleSession::load(path, context_tokens, threads)?;
    let load = started.elapsed();
    let started = Instant::now();
    let sampling = Sampling {
        temperature: 0.0,
        seed: 0,
    };
    let prompt_tokens = session.begin(messages, sampling, &|| false)?;
    let mut first_token = None;
    let mut bytes = Vec::new();
    let mut tokens = 0;
    let mut generation_started = Instant::now();
    while tokens < max_tokens {
        match session.next()? {
            Step::Token(b) => {
                if first_token.is_none() {
                    first_token = Some(started.elapsed());
                    generation_started = Instant::now();
                }
                tokens += 1;
                bytes.extend(b);
            }
            Step::End | Step::ContextFull => break,
        }
    }
    let generation = generation_started.elapsed().as_secs_f64();
    Ok(Probe {
        load,
        prompt_tokens,
        first_token: first_token.unwrap_or_else(|| started.elapsed()),
        tokens,
        // The first token's time is the prompt's; the rate counts the ones after it.
        tokens_per_second: if tokens > 1 && generation > 0.0 {
            (tokens - 1) as f64 / generation
        } else {
            0.0
        },
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
