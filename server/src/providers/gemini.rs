//! Gemini API adapter (`:streamGenerateContent?alt=sse`, `x-goog-api-key`), plus the request body and stream parser shared with Vertex AI.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::http::{
    Failure, Flow, Frame, Framing, ProviderCore, StreamOut, StreamParser, check_get,
    classify_status, count, health_from, json_error_message, run_chat, with_key_problem,
};
use super::secrets::SecretStore;
use super::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind, Role,
};
use crate::config::types::ProviderConfig;

/// Base URL when the configuration sets none.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// Google's Gemini API. The key goes in the `x-goog-api-key` header, never in the URL.
pub struct GeminiProvider {
    core: ProviderCore,
}

impl GeminiProvider {
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
    ) -> Result<Self, ProviderError> {
        Ok(GeminiProvider {
            core: ProviderCore::new(name, ProviderKind::Gemini, cfg, secrets, DEFAULT_BASE_URL)?,
        })
    }

    /// The streaming endpoint for `model`.
    pub fn chat_url(&self, model: &str) -> String {
        format!(
            "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
            self.core.base_url,
            bare_model(model)
        )
    }

    fn authorize(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let key = self.core.require_key()?;
        Ok(builder.header("x-goog-api-key", self.core.secret_header(&key)?))
    }
}

/// A model name without the `models/` prefix the API also accepts.
pub(crate) fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

// ---------------------------------------------------------------------------------------------
// Request body (shared with Vertex AI).

#[derive(Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<TextPart<'a>>,
}

#[derive(Serialize)]
struct SystemInstruction {
    parts: Vec<OwnedTextPart>,
}

#[derive(Serialize)]
struct OwnedTextPart {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

/// A `generateContent` request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GeminiBody<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
}

/// Maps a chat request: system messages become `systemInstruction`, assistant turns have role
/// "model", consecutive turns of one role are merged into one content with several parts.
pub(crate) fn gemini_body<'a>(core: &ProviderCore, request: &'a ChatRequest) -> GeminiBody<'a> {
    let mut contents: Vec<Content<'a>> = Vec::new();
    let mut system: Vec<&str> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::System => {
                system.push(&message.content);
                continue;
            }
            Role::User => "user",
            Role::Assistant => "model",
        };
        match contents.last_mut() {
            Some(last) if last.role == role => last.parts.push(TextPart {
                text: &message.content,
            }),
            _ => contents.push(Content {
                role,
                parts: vec![TextPart {
                    text: &message.content,
                }],
            }),
        }
    }
    let max_output_tokens = core.max_tokens_for(request);
    let temperature = core.temperature_for(request);
    GeminiBody {
        contents,
        system_instruction: (!system.is_empty()).then(|| SystemInstruction {
            parts: vec![OwnedTextPart {
                text: system.join("\n\n"),
            }],
        }),
        generation_config: (max_output_tokens.is_some() || temperature.is_some()).then_some(
            GenerationConfig {
                max_output_tokens,
                temperature,
            },
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Stream parsing (shared with Vertex AI).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Deserialize)]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    /// Thought summaries of thinking models are not part of the answer.
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
    #[serde(default)]
    block_reason_message: Option<String>,
}

/// Parses `data: {GenerateContentResponse}` events. There is no end marker: the body ends, and
/// that is a success only after a `finishReason`.
#[derive(Default)]
pub(crate) struct GeminiParser {
    finish_seen: bool,
}

impl StreamParser for GeminiParser {
    fn frame(&mut self, frame: &Frame, out: &mut StreamOut<'_>) -> Result<Flow, Failure> {
        if frame.event != "message" {
            return Ok(Flow::Continue);
        }
        let data = frame.data.trim();
        let response: WireResponse = serde_json::from_str(data)
            .map_err(|e| Failure::protocol("JSON in an SSE data line", data, &e))?;
        if let Some(err) = &response.error {
            let wrapped = serde_json::json!({ "error": err });
            let message = json_error_message(&wrapped).unwrap_or_else(|| err.to_string());
            let status = err
                .get("code")
                .and_then(|c| c.as_u64())
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500);
            let class = match classify_status(status, None) {
                ErrorClass::Protocol | ErrorClass::Config => ErrorClass::Server { status: 500 },
                class => class,
            };
            return Err(Failure::new(
                class,
                format!("error inside the stream: {message}"),
            ));
        }
        if let Some(reason) = response
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_deref())
        {
            let detail = response
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason_message.as_deref())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return Err(Failure::new(
                ErrorClass::BadRequest { status: 200 },
                format!("the prompt was blocked (blockReason {reason}){detail}"),
            ));
        }
        if let Some(candidate) = response.candidates.first() {
            if let Some(content) = &candidate.content {
                for part in content.parts.iter().filter(|p| !p.thought) {
                    if let Some(text) = &part.text {
                        out.push_text(text);
                    }
                }
            }
            if let Some(reason) = &candidate.finish_reason {
                self.finish_seen = true;
                out.finish_reason = Some(reason.clone());
            }
        }
        if let Some(usage) = &response.usage_metadata {
            out.usage.prompt_tokens = count(usage.prompt_token_count).or(out.usage.prompt_tokens);
            out.usage.completion_tokens =
                count(usage.candidates_token_count).or(out.usage.completion_tokens);
        }
        Ok(Flow::Continue)
    }

    fn eof(&mut self, _out: &StreamOut<'_>) -> Result<(), Failure> {
        if self.finish_seen {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamBroken,
                "the stream ended without a finishReason",
            ))
        }
    }
}

/// Streams one chat request to a Gemini-style endpoint (`builder` already authorised).
pub(crate) async fn gemini_chat(
    core: &ProviderCore,
    url: &str,
    builder: reqwest::RequestBuilder,
    request: &ChatRequest,
    on_chunk: ChunkSink<'_>,
    cancel: CancellationToken,
) -> Result<ChatOutcome, ProviderError> {
    let builder = builder
        .header("accept", "text/event-stream")
        .json(&gemini_body(core, request));
    run_chat(
        core,
        url,
        builder,
        Framing::Sse,
        GeminiParser::default(),
        on_chunk,
        cancel,
    )
    .await
}

impl Provider for GeminiProvider {
    crate::providers::http::core_accessors!();

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(async move {
            let url = self.chat_url(self.core.model_for(request));
            let builder = self.authorize(self.core.client()?.post(&url))?;
            gemini_chat(&self.core, &url, builder, request, on_chunk, cancel).await
        })
    }

    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let client = match self.core.client() {
                Ok(c) => c,
                Err(e) => return HealthReport::failed(e.message),
            };
            let url = format!(
                "{}/v1beta/models/{}",
                self.core.base_url,
                bare_model(&self.core.model)
            );
            let (builder, key_problem) = match self.authorize(client.get(&url)) {
                Ok(b) => (b, None),
                Err(e) => (client.get(&url), Some(e.message)),
            };
            let reply = check_get(&self.core, &url, builder).await;
            let report = health_from(reply, Some(true), &self.core.model, true, |_| Some(true));
            with_key_problem(report, key_problem)
        })
    }
}
