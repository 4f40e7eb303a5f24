//! Anthropic Messages API adapter (`/v1/messages` with named SSE events, `x-api-key` auth).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::http::{
    Failure, Flow, Frame, Framing, ProviderCore, StreamOut, StreamParser, check_get, count,
    health_from, run_chat, with_key_problem,
};
use super::secrets::SecretStore;
use super::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind, Role,
};
use crate::config::types::ProviderConfig;

/// Base URL when the configuration sets none.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the API: this is used when neither request nor config sets it.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// Anthropic's Messages API.
pub struct AnthropicProvider {
    core: ProviderCore,
}

impl AnthropicProvider {
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
    ) -> Result<Self, ProviderError> {
        Ok(AnthropicProvider {
            core: ProviderCore::new(
                name,
                ProviderKind::Anthropic,
                cfg,
                secrets,
                DEFAULT_BASE_URL,
            )?,
        })
    }

    /// The chat endpoint.
    pub fn chat_url(&self) -> String {
        format!("{}/v1/messages", self.core.base_url)
    }

    fn authorize(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let key = self.core.require_key()?;
        Ok(builder
            .header("x-api-key", self.core.secret_header(&key)?)
            .header("anthropic-version", ANTHROPIC_VERSION))
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<MessageStart>,
    #[serde(default)]
    content_block: Option<ContentBlock>,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct MessageStart {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

/// Parses the named events up to `message_stop`.
#[derive(Default)]
struct AnthropicParser {
    stop_reason_seen: bool,
}

fn error_class(kind: &str) -> ErrorClass {
    match kind {
        "overloaded_error" => ErrorClass::Server { status: 529 },
        "api_error" => ErrorClass::Server { status: 500 },
        "rate_limit_error" => ErrorClass::RateLimited {
            retry_after_ms: None,
        },
        "authentication_error" => ErrorClass::Auth { status: 401 },
        "permission_error" => ErrorClass::Auth { status: 403 },
        "invalid_request_error" => ErrorClass::BadRequest { status: 400 },
        "not_found_error" => ErrorClass::BadRequest { status: 404 },
        "request_too_large" => ErrorClass::BadRequest { status: 413 },
        _ => ErrorClass::Protocol,
    }
}

impl StreamParser for AnthropicParser {
    fn frame(&mut self, frame: &Frame, out: &mut StreamOut<'_>) -> Result<Flow, Failure> {
        let data = frame.data.as_str();
        // The SSE event name says what the event is; the data's "type" repeats it.
        let named = frame.event != "message";
        if named && !KNOWN_EVENTS.contains(&frame.event.as_str()) {
            return Ok(Flow::Continue); // ping and future event types
        }
        let event: Event = serde_json::from_str(data)
            .map_err(|e| Failure::protocol("JSON in an SSE event", data, &e))?;
        let kind = if named {
            frame.event.as_str()
        } else {
            event.kind.as_deref().unwrap_or_default()
        };
        match kind {
            "message_start" => {
                if let Some(usage) = event.message.as_ref().and_then(|m| m.usage.as_ref()) {
                    out.usage.prompt_tokens = count(usage.input_tokens);
                    out.usage.completion_tokens = count(usage.output_tokens);
                }
            }
            "content_block_start" => {
                if let Some(block) = &event.content_block
                    && block.kind.as_deref() == Some("text")
                    && let Some(text) = &block.text
                {
                    out.push_text(text);
                }
            }
            "content_block_delta" => {
                if let Some(delta) = &event.delta
                    && delta.kind.as_deref() == Some("text_delta")
                    && let Some(text) = &delta.text
                {
                    out.push_text(text);
                }
            }
            "message_delta" => {
                if let Some(reason) = event.delta.as_ref().and_then(|d| d.stop_reason.clone()) {
                    self.stop_reason_seen = true;
                    out.finish_reason = Some(reason);
                }
                if let Some(usage) = &event.usage {
                    out.usage.completion_tokens =
                        count(usage.output_tokens).or(out.usage.completion_tokens);
                    out.usage.prompt_tokens = count(usage.input_tokens).or(out.usage.prompt_tokens);
                }
            }
            "message_stop" => return Ok(Flow::Done),
            "error" => {
                let (kind, message) = match &event.error {
                    Some(e) => (
                        e.kind.clone().unwrap_or_default(),
                        e.message.clone().unwrap_or_default(),
                    ),
                    None => (String::new(), String::new()),
                };
                return Err(Failure::new(
                    error_class(&kind),
                    format!("error event in the stream: {message} ({kind})"),
                ));
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn eof(&mut self, _out: &StreamOut<'_>) -> Result<(), Failure> {
        if self.stop_reason_seen {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamBroken,
                "the stream ended without message_stop or a stop_reason",
            ))
        }
    }
}

/// Whether `/v1/models` lists `model` (exactly, or as the undated alias of a dated id).
fn listing_has_model(v: &serde_json::Value, model: &str) -> Option<bool> {
    let items = v.get("data")?.as_array()?;
    let alias = model.strip_suffix("-latest").unwrap_or(model);
    let dated = format!("{alias}-");
    Some(
        items
            .iter()
            .filter_map(|m| m.get("id").and_then(|id| id.as_str()))
            .any(|id| {
                id == model
                    || id
                        .strip_prefix(&dated)
                        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            }),
    )
}

impl Provider for AnthropicProvider {
    crate::providers::http::core_accessors!();

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(async move {
            let url = self.chat_url();
            let system: Vec<&str> = request
                .messages
                .iter()
                .filter(|m| m.role == Role::System)
                .map(|m| m.content.as_str())
                .collect();
            let body = Body {
                model: self.core.model_for(request),
                max_tokens: self
                    .core
                    .max_tokens_for(request)
                    .unwrap_or(DEFAULT_MAX_TOKENS),
                system: (!system.is_empty()).then(|| system.join("\n\n")),
                messages: request
                    .messages
                    .iter()
                    .filter_map(|m| match m.role {
                        Role::User => Some(WireMessage {
                            role: "user",
                            content: &m.content,
                        }),
                        Role::Assistant => Some(WireMessage {
                            role: "assistant",
                            content: &m.content,
                        }),
                        Role::System => None,
                    })
                    .collect(),
                stream: true,
                temperature: self.core.temperature_for(request),
            };
            let builder = self.authorize(
                self.core
                    .client()?
                    .post(&url)
                    .header("accept", "text/event-stream")
                    .json(&body),
            )?;
            run_chat(
                &self.core,
                &url,
                builder,
                Framing::Sse,
                AnthropicParser::default(),
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
            let url = format!("{}/v1/models?limit=1000", self.core.base_url);
            let (builder, key_problem) = match self.authorize(client.get(&url)) {
                Ok(b) => (b, None),
                Err(e) => (client.get(&url), Some(e.message)),
            };
            let reply = check_get(&self.core, &url, builder).await;
            let model = self.core.model.clone();
            let report = health_from(reply, Some(true), &model, false, |v| {
                listing_has_model(v, &model)
            });
            with_key_problem(report, key_problem)
        })
    }
}
