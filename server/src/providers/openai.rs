//! OpenAI-compatible adapter (`/chat/completions` with SSE `data:` chunks ending in `[DONE]`): OpenAI, llama.cpp server, vLLM, LM Studio, Ollama's `/v1`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::http::{
    CheckReply, Failure, Flow, Frame, Framing, ProviderCore, StreamOut, StreamParser, check_get,
    count, health_from, json_error_message, run_chat, with_key_problem,
};
use super::secrets::SecretStore;
use super::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind, Role,
};
use crate::config::types::ProviderConfig;

/// Base URL when the configuration sets none.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// An OpenAI-compatible endpoint. Sends `Authorization: Bearer` only when a key is configured.
pub struct OpenAiProvider {
    core: ProviderCore,
}

impl OpenAiProvider {
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
    ) -> Result<Self, ProviderError> {
        Ok(OpenAiProvider {
            core: ProviderCore::new(name, ProviderKind::Openai, cfg, secrets, DEFAULT_BASE_URL)?,
        })
    }

    /// The chat endpoint.
    pub fn chat_url(&self) -> String {
        format!("{}/chat/completions", self.core.base_url)
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Parses `data: {chat.completion.chunk}` events up to `data: [DONE]`.
#[derive(Default)]
struct OpenAiParser {
    saw_finish: bool,
}

/// An error object sent inside a stream.
fn stream_error(err: &serde_json::Value) -> Failure {
    let wrapped = serde_json::json!({ "error": err });
    let message = json_error_message(&wrapped).unwrap_or_else(|| err.to_string());
    let kind = [err.get("type"), err.get("code")]
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let class = if kind.contains("rate_limit") {
        ErrorClass::RateLimited {
            retry_after_ms: None,
        }
    } else if kind.contains("invalid_request") {
        ErrorClass::BadRequest { status: 400 }
    } else {
        ErrorClass::Server { status: 500 }
    };
    Failure::new(class, format!("error inside the stream: {message}"))
}

impl StreamParser for OpenAiParser {
    fn frame(&mut self, frame: &Frame, out: &mut StreamOut<'_>) -> Result<Flow, Failure> {
        if frame.event != "message" {
            return Ok(Flow::Continue); // unknown event types are ignored
        }
        let data = frame.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Done);
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|e| Failure::protocol("JSON in an SSE data line", data, &e))?;
        if let Some(err) = &chunk.error {
            return Err(stream_error(err));
        }
        if let Some(choice) = chunk.choices.first() {
            if let Some(text) = choice.delta.as_ref().and_then(|d| d.content.as_deref()) {
                out.push_text(text);
            }
            if let Some(reason) = &choice.finish_reason {
                self.saw_finish = true;
                out.finish_reason = Some(reason.clone());
            }
        }
        if let Some(usage) = chunk.usage {
            out.usage.prompt_tokens = count(usage.prompt_tokens).or(out.usage.prompt_tokens);
            out.usage.completion_tokens =
                count(usage.completion_tokens).or(out.usage.completion_tokens);
        }
        Ok(Flow::Continue)
    }

    fn eof(&mut self, _out: &StreamOut<'_>) -> Result<(), Failure> {
        if self.saw_finish {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamBroken,
                "the stream ended without [DONE] or a finish_reason",
            ))
        }
    }
}

/// Whether a `/models` listing holds `model` (`data[].id`; llama.cpp also lists `models[].name`).
fn listing_has_model(v: &serde_json::Value, model: &str) -> Option<bool> {
    let ids = v.get("data").and_then(|d| d.as_array()).map(|items| {
        items
            .iter()
            .filter_map(|m| m.get("id").and_then(|id| id.as_str()))
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let names = v.get("models").and_then(|d| d.as_array()).map(|items| {
        items
            .iter()
            .flat_map(|m| [m.get("name"), m.get("model"), m.get("id")])
            .flatten()
            .filter_map(|n| n.as_str())
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    if ids.is_none() && names.is_none() {
        return None;
    }
    Some(ids.into_iter().chain(names).flatten().any(|id| id == model))
}

impl Provider for OpenAiProvider {
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
                        role: role_name(m.role),
                        content: &m.content,
                    })
                    .collect(),
                stream: true,
                stream_options: StreamOptions {
                    include_usage: true,
                },
                max_tokens: self.core.max_tokens_for(request),
                temperature: self.core.temperature_for(request),
            };
            let builder = self
                .core
                .client()?
                .post(&url)
                .header("accept", "text/event-stream")
                .json(&body);
            let builder = self.core.authorize_optional_bearer(builder)?;
            run_chat(
                &self.core,
                &url,
                builder,
                Framing::Sse,
                OpenAiParser::default(),
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
            let url = format!("{}/models", self.core.base_url);
            let (builder, key_problem) = match self.core.authorize_optional_bearer(client.get(&url))
            {
                Ok(b) => (b, None),
                Err(e) => (client.get(&url), Some(e.message)),
            };
            let reply: CheckReply = check_get(&self.core, &url, builder).await;
            let model = self.core.model.clone();
            let report = health_from(reply, Some(true), &model, false, |v| {
                listing_has_model(v, &model)
            });
            with_key_problem(report, key_problem)
        })
    }
}
