//! Native Ollama adapter (`/api/chat`, NDJSON lines ending with `"done": true`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::http::{
    Failure, Flow, Frame, Framing, ProviderCore, StreamOut, StreamParser, check_get, count,
    health_from, json_error_message, run_chat, with_key_problem,
};
use super::secrets::SecretStore;
use super::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind, Role,
};
use crate::config::types::ProviderConfig;

/// Base URL when the configuration sets none.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434";

/// A local (or remote) Ollama server. Sends a bearer key only if one is configured (for
/// Ollama behind an authenticating proxy).
pub struct OllamaProvider {
    core: ProviderCore,
}

impl OllamaProvider {
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
    ) -> Result<Self, ProviderError> {
        Ok(OllamaProvider {
            core: ProviderCore::new(name, ProviderKind::Ollama, cfg, secrets, DEFAULT_BASE_URL)?,
        })
    }

    /// The chat endpoint.
    pub fn chat_url(&self) -> String {
        format!("{}/api/chat", self.core.base_url)
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    options: Options,
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
}

/// Parses NDJSON chat lines up to the `"done": true` line.
struct OllamaParser;

impl StreamParser for OllamaParser {
    fn frame(&mut self, frame: &Frame, out: &mut StreamOut<'_>) -> Result<Flow, Failure> {
        let data = frame.data.as_str();
        let line: Line = serde_json::from_str(data)
            .map_err(|e| Failure::protocol("JSON in an NDJSON line", data, &e))?;
        if let Some(err) = &line.error {
            let wrapped = serde_json::json!({ "error": err });
            let message = json_error_message(&wrapped).unwrap_or_else(|| err.to_string());
            let class = if message.contains("not found") {
                ErrorClass::BadRequest { status: 404 }
            } else {
                ErrorClass::Server { status: 500 }
            };
            return Err(Failure::new(
                class,
                format!("error inside the stream: {message}"),
            ));
        }
        if let Some(text) = line.message.as_ref().and_then(|m| m.content.as_deref()) {
            out.push_text(text);
        }
        if line.done {
            out.finish_reason = line.done_reason.or_else(|| Some("stop".to_string()));
            out.usage.prompt_tokens = count(line.prompt_eval_count);
            out.usage.completion_tokens = count(line.eval_count);
            return Ok(Flow::Done);
        }
        Ok(Flow::Continue)
    }

    fn eof(&mut self, _out: &StreamOut<'_>) -> Result<(), Failure> {
        Err(Failure::new(
            ErrorClass::StreamBroken,
            "the stream ended without a \"done\": true line",
        ))
    }
}

/// Whether `/api/tags` lists `model` (a model without a tag means `:latest`).
fn tags_have_model(v: &serde_json::Value, model: &str) -> Option<bool> {
    let models = v.get("models")?.as_array()?;
    let with_tag = if model.contains(':') {
        model.to_string()
    } else {
        format!("{model}:latest")
    };
    Some(
        models
            .iter()
            .flat_map(|m| [m.get("name"), m.get("model")])
            .flatten()
            .filter_map(|n| n.as_str())
            .any(|n| n == model || n == with_tag),
    )
}

impl Provider for OllamaProvider {
    crate::providers::http::core_accessors!();

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(async move {
            let url = self.chat_url();
            let body = Body {
                model: self.core.model_for(request),
                messages: request
                    .messages
                    .iter()
                    .map(|m| WireMessage {
                        role: match m.role {
                            Role::System => "system",
                            Role::User => "user",
                            Role::Assistant => "assistant",
                        },
                        content: &m.content,
                    })
                    .collect(),
                stream: true,
                options: Options {
                    num_predict: self.core.max_tokens_for(request),
                    temperature: self.core.temperature_for(request),
                },
            };
            let builder = self
                .core
                .authorize_optional_bearer(self.core.client()?.post(&url).json(&body))?;
            run_chat(
                &self.core,
                &url,
                builder,
                Framing::Ndjson,
                OllamaParser,
                on_chunk,
                cancel,
            )
            .await
        })
    }

    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let client = match self.core.client() {
                Ok(c) => c,
                Err(e) => return HealthReport::failed(e.message),
            };
            let url = format!("{}/api/tags", self.core.base_url);
            let (builder, key_problem) = match self.core.authorize_optional_bearer(client.get(&url))
            {
                Ok(b) => (b, None),
                Err(e) => (client.get(&url), Some(e.message)),
            };
            let reply = check_get(&self.core, &url, builder).await;
            let model = self.core.model.clone();
            let report = health_from(reply, None, &model, false, |v| tags_have_model(v, &model));
            with_key_problem(report, key_problem)
        })
    }
}
