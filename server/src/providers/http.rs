//! Shared HTTP plumbing for the adapters: the pooled client, error classification, bounded error bodies, SSE and NDJSON framing, and the streaming driver (first-token, stall and total timeouts; cancellation).

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::secrets::{SecretStore, redact};
use super::{ChatOutcome, ChatRequest, ChunkSink, ErrorClass, ProviderError, ProviderKind, Usage};
use crate::config::types::ProviderConfig;

/// Total timeout of one call when the configuration sets none.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Connect timeout when the configuration sets none.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// First-token timeout when the configuration sets none.
pub const DEFAULT_FIRST_TOKEN_TIMEOUT_MS: u64 = 30_000;
/// How long an idle pooled connection is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this much of an error body is read.
pub const MAX_ERROR_BODY_BYTES: usize = 4096;
/// A health check never waits longer than this.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// An NDJSON line, or an SSE event, longer than this is a protocol error.
const MAX_LINE_BYTES: usize = 4 << 20;
/// After the end marker, the rest of the body (usually just the chunked terminator) is read for
/// at most this long before the call returns, so the connection goes back to the pool at once...
const DRAIN_INLINE: Duration = Duration::from_millis(250);
/// ...and then for at most this long in the background.
const DRAIN_BACKGROUND: Duration = Duration::from_secs(2);
/// Longest error detail kept in a message.
const MAX_DETAIL_CHARS: usize = 400;

const USER_AGENT: &str = concat!("infinity-matrix/", env!("CARGO_PKG_VERSION"));

/// Timeouts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// TCP (and TLS) connect timeout, enforced by the client.
    pub connect: Duration,
    /// From sending the request to the first text chunk. Also the stall timeout: once text has
    /// started, a stream that delivers nothing for this long has stalled.
    pub first_token: Duration,
    /// The whole call.
    pub total: Duration,
}

impl CallLimits {
    pub fn from_config(cfg: &ProviderConfig) -> Self {
        CallLimits {
            connect: Duration::from_millis(
                cfg.connect_timeout_ms.unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
            ),
            first_token: Duration::from_millis(
                cfg.first_token_timeout_ms
                    .unwrap_or(DEFAULT_FIRST_TOKEN_TIMEOUT_MS),
            ),
            total: Duration::from_millis(cfg.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
        }
    }
}

/// Builds the one pooled client of a provider: rustls, the configured connect timeout, an idle
/// pool timeout, no redirects (API endpoints do not redirect, and a redirect could carry a key
/// header to another host), and no total timeout (each call enforces its own).
pub fn build_client(cfg: &ProviderConfig) -> Result<reqwest::Client, reqwest::Error> {
    build_client_with(&CallLimits::from_config(cfg))
}

fn build_client_with(limits: &CallLimits) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(limits.connect)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// Parses a Retry-After value (delay-seconds or an HTTP-date) into milliseconds from `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64);
    }
    let at = parse_http_date(value)?;
    Some(
        at.duration_since(now)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

/// The retry delay a response asks for: `retry-after-ms` (OpenAI-style) or `Retry-After`.
pub fn retry_after_from_headers(headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(ms.round() as u64);
    }
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now))
}

/// Classifies an HTTP status that is not a success.
pub fn classify_status(status: u16, retry_after_ms: Option<u64>) -> ErrorClass {
    match status {
        429 => ErrorClass::RateLimited { retry_after_ms },
        408 | 500..=599 => ErrorClass::Server { status },
        401 | 403 => ErrorClass::Auth { status },
        400..=499 => ErrorClass::BadRequest { status },
        300..=399 => ErrorClass::Config,
        _ => ErrorClass::Protocol,
    }
}

/// Classifies a transport error. `reply_started`: the response headers had arrived (so the
/// failure happened while reading the body).
pub fn classify_reqwest_error(err: &reqwest::Error, reply_started: bool) -> ErrorClass {
    if err.is_connect() {
        if err.is_timeout() {
            ErrorClass::ConnectTimeout
        } else {
            ErrorClass::Connect
        }
    } else if err.is_timeout() {
        ErrorClass::Timeout
    } else if err.is_builder() || err.is_redirect() {
        ErrorClass::Config
    } else if reply_started || err.is_body() || err.is_decode() {
        ErrorClass::StreamBroken
    } else {
        // The connection dropped before any reply.
        ErrorClass::Connect
    }
}

/// An error and its sources, joined with ": " (repeated texts skipped).
pub fn describe_error(err: &dyn StdError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn StdError> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Lowercase name of a provider kind (as in the configuration).
pub fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Ollama => "ollama",
        ProviderKind::Openai => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gemini",
        ProviderKind::Vertex => "vertex",
        ProviderKind::Embedded => "embedded",
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP-date (RFC 9110 IMF-fixdate, plus the obsolete RFC 850 and asctime forms).

fn parse_http_date(value: &str) -> Option<SystemTime> {
    let cleaned = value.replace([',', '-'], " ");
    let tokens: Vec<&str> = cleaned.split_whitespace().collect();
    // Drop the weekday if present.
    let tokens: Vec<&str> = match tokens.first() {
        Some(t) if t.chars().all(|c| c.is_ascii_alphabetic()) && month_number(t).is_none() => {
            tokens.get(1..).map(<[&str]>::to_vec).unwrap_or_default()
        }
        _ => tokens,
    };
    let (day, month, year, time) = match tokens.as_slice() {
        // IMF-fixdate / RFC 850: 06 Nov 1994 08:49:37 GMT
        [d, m, y, t, ..] if d.chars().all(|c| c.is_ascii_digit()) => (*d, *m, *y, *t),
        // asctime: Nov 6 08:49:37 1994
        [m, d, t, y] => (*d, *m, *y, *t),
        _ => return None,
    };
    let day: u32 = day.parse().ok()?;
    let month = month_number(month)?;
    let mut year: i64 = year.parse().ok()?;
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    if !(1900..=9999).contains(&year) {
        return None;
    }
    let mut hms = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------------
// What every adapter shares.

/// The parts of an adapter that do not depend on its wire protocol.
pub(crate) struct ProviderCore {
    pub name: String,
    pub kind: ProviderKind,
    pub model: String,
    /// Without a trailing slash.
    pub base_url: String,
    /// Built on first use: a TLS client costs milliseconds and a megabyte or two, and many
    /// sessions never call some of the configured providers.
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    pub limits: CallLimits,
    pub secrets: Arc<SecretStore>,
    pub api_key_env: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl ProviderCore {
    pub fn new(
        name: &str,
        kind: ProviderKind,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
        default_base: &str,
    ) -> Result<Self, ProviderError> {
        let config_error = |message: String| ProviderError {
            provider: name.to_string(),
            class: ErrorClass::Config,
            message: redact(&message),
            partial_text: String::new(),
        };
        let base = cfg
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .unwrap_or(default_base);
        let base_url = base.trim_end_matches('/').to_string();
        match reqwest::Url::parse(&base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            Ok(_) => {
                return Err(config_error(format!(
                    "base_url {base_url} is not an http(s) URL"
                )));
            }
            Err(e) => {
                return Err(config_error(format!(
                    "base_url {base_url} is not a valid URL: {e}"
                )));
            }
        }
        if cfg.model.trim().is_empty() {
            return Err(config_error("no model configured".to_string()));
        }
        Ok(ProviderCore {
            name: name.to_string(),
            kind,
            model: cfg.model.trim().to_string(),
            base_url,
            client: std::sync::OnceLock::new(),
            limits: CallLimits::from_config(cfg),
            secrets,
            api_key_env: cfg.api_key_env.clone().filter(|e| !e.trim().is_empty()),
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
        })
    }

    /// The provider's one pooled HTTP client, built on first use.
    pub fn client(&self) -> Result<&reqwest::Client, ProviderError> {
        self.client
            .get_or_init(|| build_client_with(&self.limits).map_err(|e| describe_error(&e)))
            .as_ref()
            .map_err(|m| {
                self.error(
                    ErrorClass::Config,
                    format!("could not build the HTTP client: {m}"),
                )
            })
    }

    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind)
    }

    /// A redacted error of this provider.
    pub fn error(&self, class: ErrorClass, message: impl AsRef<str>) -> ProviderError {
        ProviderError {
            provider: self.name.clone(),
            class,
            message: redact(message.as_ref()),
            partial_text: String::new(),
        }
    }

    fn failure(&self, failure: Failure, partial_text: String) -> ProviderError {
        ProviderError {
            provider: self.name.clone(),
            class: failure.class,
            message: redact(&failure.message),
            partial_text: redact(&partial_text),
        }
    }

    /// The model of a request (the configured one when the request names none).
    pub fn model_for<'r>(&'r self, request: &'r ChatRequest) -> &'r str {
        let m = request.model.trim();
        if m.is_empty() { &self.model } else { m }
    }

    pub fn max_tokens_for(&self, request: &ChatRequest) -> Option<u32> {
        request.max_tokens.or(self.max_tokens)
    }

    pub fn temperature_for(&self, request: &ChatRequest) -> Option<f32> {
        request.temperature.or(self.temperature)
    }

    /// The API key, if one is configured (or set at runtime under the provider's name).
    pub fn key(&self) -> Option<String> {
        self.secrets
            .key_for(&self.name, self.api_key_env.as_deref())
    }

    /// The API key, or a Config error saying where it was looked for.
    pub fn require_key(&self) -> Result<String, ProviderError> {
        self.key().ok_or_else(|| self.missing_key_error())
    }

    /// The Config error for a key that could not be found.
    pub fn missing_key_error(&self) -> ProviderError {
        let hint = match &self.api_key_env {
            Some(env) => {
                format!("environment variable {env} is not set (and no key was set at runtime)")
            }
            None => "no api_key_env is configured (and no key was set at runtime)".to_string(),
        };
        self.error(
            ErrorClass::Config,
            format!("no API key for {}: {hint}", self.kind_name()),
        )
    }

    /// A sensitive header value holding a secret.
    pub fn secret_header(&self, value: &str) -> Result<HeaderValue, ProviderError> {
        let mut header = HeaderValue::from_str(value).map_err(|_| {
            self.error(
                ErrorClass::Config,
                "the API key contains characters not allowed in an HTTP header",
            )
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// `Authorization: Bearer <token>` as a (name, sensitive value) pair.
    /// Adds `Authorization: Bearer KEY` when a key is configured; local servers need none,
    /// but a configured key variable that is empty is an error (nothing is sent).
    pub fn authorize_optional_bearer(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        match self.key() {
            Some(key) => {
                let (name, value) = self.bearer(&key)?;
                Ok(builder.header(name, value))
            }
            None if self.api_key_env.is_some() => Err(self.missing_key_error()),
            None => Ok(builder),
        }
    }

    pub fn bearer(&self, token: &str) -> Result<(HeaderName, HeaderValue), ProviderError> {
        Ok((
            reqwest::header::AUTHORIZATION,
            self.secret_header(&format!("Bearer {token}"))?,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies.

/// Reads at most `limit` bytes of a body, lossily decoded.
pub(crate) async fn read_bounded(response: &mut reqwest::Response, limit: usize) -> String {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(chunk.get(..take).unwrap_or_default());
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The human-readable part of an error body: `error.message`, `error` (a string), `message`,
/// `detail`, else the trimmed body.
pub(crate) fn error_detail(body: &str) -> String {
    let detail = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => json_error_message(&v).unwrap_or_else(|| body.trim().to_string()),
        Err(_) => body.trim().to_string(),
    };
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    if detail.is_empty() {
        return "(empty body)".to_string();
    }
    truncate_chars(&detail, MAX_DETAIL_CHARS)
}

/// The message of a JSON error object in any of the providers' shapes.
pub(crate) fn json_error_message(v: &serde_json::Value) -> Option<String> {
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v); // Google sometimes wraps in [..]
    if let Some(err) = v.get("error") {
        if let Some(s) = err.as_str() {
            return Some(s.to_string());
        }
        if let Some(m) = err.get("message").and_then(|m| m.as_str()) {
            let kind = err
                .get("type")
                .or_else(|| err.get("status"))
                .and_then(|t| t.as_str());
            return Some(match kind {
                Some(k) if !k.is_empty() => format!("{m} ({k})"),
                _ => m.to_string(),
            });
        }
    }
    for key in ["message", "detail"] {
        if let Some(m) = v.get(key).and_then(|m| m.as_str()) {
            return Some(m.to_string());
        }
    }
    None
}

/// Google's RetryInfo in an error body (`"retryDelay": "37s"`), in milliseconds.
fn body_retry_delay_ms(body: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
    let details = v.get("error")?.get("details")?.as_array()?;
    details.iter().find_map(|d| {
        let delay = d.get("retryDelay")?.as_str()?;
        let secs: f64 = delay.trim().strip_suffix('s')?.parse().ok()?;
        (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).round() as u64)
    })
}

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", text.get(..idx).unwrap_or_default()),
        None => text.to_string(),
    }
}

/// Turns a non-success response into a classified failure with a readable, bounded message.
pub(crate) async fn failure_from_response(
    core: &ProviderCore,
    url: &str,
    mut response: reqwest::Response,
) -> Failure {
    let status = response.status().as_u16();
    let header_retry = retry_after_from_headers(response.headers(), SystemTime::now());
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = read_bounded(&mut response, MAX_ERROR_BODY_BYTES).await;
    let mut class = classify_status(status, header_retry.or_else(|| body_retry_delay_ms(&body)));
    // Google answers a wrong API key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
    if status == 400 && (body.contains("API_KEY_INVALID") || body.contains("API key not valid")) {
        class = ErrorClass::Auth { status };
    }
    let detail = match (&class, location) {
        (ErrorClass::Config, Some(to)) => format!("unexpected redirect to {to} (check base_url)"),
        _ => error_detail(&body),
    };
    Failure::new(
        class,
        format!("HTTP {status} from {} at {url}: {detail}", core.kind_name()),
    )
}

// ---------------------------------------------------------------------------------------------
// Streaming.

/// One unit of a streamed reply: an SSE event (`event` is its type, "message" by default) or an
/// NDJSON line (`event` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub event: String,
    pub data: String,
}

/// A classified failure before it is attributed to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub class: ErrorClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }

    pub fn protocol(what: &str, data: &str, err: &dyn std::fmt::Display) -> Self {
        Failure::new(
            ErrorClass::Protocol,
            format!(
                "malformed {what}: {err}; data: {}",
                truncate_chars(data.trim(), 200)
            ),
        )
    }
}

/// What a parser wants after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The end marker arrived: the reply is complete.
    Done,
}

/// Turns frames of one wire protocol into text, usage and a finish reason.
pub(crate) trait StreamParser: Send {
    fn frame(&mut self, frame: &Frame, out: &mut StreamOut<'_>) -> Result<Flow, Failure>;
    /// The body ended before [`Flow::Done`] (after at least one frame): Ok if the reply is
    /// nevertheless complete.
    fn eof(&mut self, out: &StreamOut<'_>) -> Result<(), Failure>;
}

/// What a parser produces while a reply streams.
pub(crate) struct StreamOut<'a> {
    on_chunk: ChunkSink<'a>,
    start: Instant,
    pub text: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    pub time_to_first_token: Option<Duration>,
}

impl<'a> StreamOut<'a> {
    fn new(on_chunk: ChunkSink<'a>, start: Instant) -> Self {
        StreamOut {
            on_chunk,
            start,
            text: String::new(),
            usage: Usage::default(),
            finish_reason: None,
            time_to_first_token: None,
        }
    }

    /// Appends a text chunk and passes it on at once.
    pub fn push_text(&mut self, chunk: &str) {
        if chunk.is_empty() {
            return;
        }
        if self.time_to_first_token.is_none() {
            self.time_to_first_token = Some(self.start.elapsed());
        }
        self.text.push_str(chunk);
        (self.on_chunk)(chunk);
    }
}

/// A token count from JSON (absent, negative or too large counts are `None`).
pub(crate) fn count(v: Option<u64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

/// How a reply body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Sse,
    Ndjson,
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, Failure>> + Send>>;

fn broken(err: &reqwest::Error) -> Failure {
    let class = match classify_reqwest_error(err, true) {
        ErrorClass::Timeout => ErrorClass::Timeout,
        _ => ErrorClass::StreamBroken,
    };
    Failure::new(
        class,
        format!("the connection broke mid-stream: {}", describe_error(err)),
    )
}

/// What feeds the SSE parser: the body's bytes, or why they stopped.
#[derive(Debug)]
enum SseSource {
    Transport(reqwest::Error),
    /// More than [`MAX_LINE_BYTES`] arrived without completing an event.
    EventTooLong,
}

impl std::fmt::Display for SseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseSource::Transport(e) => write!(f, "{}", describe_error(e)),
            SseSource::EventTooLong => {
                write!(f, "an SSE event is longer than {MAX_LINE_BYTES} bytes")
            }
        }
    }
}

/// SSE events over a response body. Comments (`: ping`) and events without data are dropped by
/// the parser; event types are left to the adapter. The parser buffers an event until it is
/// complete, so more than [`MAX_LINE_BYTES`] without one is a protocol error (an endless line
/// must not grow memory without bound).
pub(crate) fn sse_frames(response: reqwest::Response) -> FrameStream {
    let pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fed = Arc::clone(&pending);
    let body = response.bytes_stream().map(move |item| match item {
        Ok(bytes) => {
            let total = fed
                .fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed)
                .saturating_add(bytes.len());
            if total > MAX_LINE_BYTES {
                Err(SseSource::EventTooLong)
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(SseSource::Transport(e)),
    });
    Box::pin(body.eventsource().map(move |item| match item {
        Ok(event) => {
            pending.store(0, std::sync::atomic::Ordering::Relaxed);
            Ok(Frame {
                event: event.event,
                data: event.data,
            })
        }
        Err(EventStreamError::Transport(SseSource::Transport(e))) => Err(broken(&e)),
        Err(EventStreamError::Transport(e @ SseSource::EventTooLong)) => {
            Err(Failure::new(ErrorClass::Protocol, e.to_string()))
        }
        Err(EventStreamError::Utf8(e)) => Err(Failure::new(
            ErrorClass::Protocol,
            format!("the SSE stream is not valid UTF-8: {e}"),
        )),
        Err(EventStreamError::Parser(e)) => Err(Failure::new(
            ErrorClass::Protocol,
            format!("malformed SSE line: {e}"),
        )),
    }))
}

/// NDJSON lines over a byte stream (blank lines skipped; a last line without a newline counts).
pub(crate) fn ndjson_frames<S, B>(body: S) -> FrameStream
where
    S: Stream<Item = Result<B, reqwest::Error>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    struct State<S> {
        body: Pin<Box<S>>,
        buf: Vec<u8>,
        ended: bool,
    }
    let state = State {
        body: Box::pin(body),
        buf: Vec::new(),
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(pos) = st.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = st.buf.drain(..=pos).collect();
                if let Some(frame) = line_frame(&line) {
                    return Some((frame, st));
                }
                continue;
            }
            if st.ended {
                if st.buf.is_empty() {
                    return None;
                }
                let line = std::mem::take(&mut st.buf);
                match line_frame(&line) {
                    Some(frame) => return Some((frame, st)),
                    None => return None,
                }
            }
            if st.buf.len() > MAX_LINE_BYTES {
                st.buf.clear();
                st.ended = true;
                let failure = Failure::new(
                    ErrorClass::Protocol,
                    format!("an NDJSON line is longer than {MAX_LINE_BYTES} bytes"),
                );
                return Some((Err(failure), st));
            }
            match st.body.next().await {
                Some(Ok(bytes)) => st.buf.extend_from_slice(bytes.as_ref()),
                Some(Err(e)) => {
                    st.ended = true;
                    st.buf.clear();
                    return Some((Err(broken(&e)), st));
                }
                None => st.ended = true,
            }
        }
    }))
}

fn line_frame(line: &[u8]) -> Option<Result<Frame, Failure>> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(e) => {
            return Some(Err(Failure::new(
                ErrorClass::Protocol,
                format!("an NDJSON line is not valid UTF-8: {e}"),
            )));
        }
    };
    if text.is_empty() {
        return None;
    }
    Some(Ok(Frame {
        event: String::new(),
        data: text.to_string(),
    }))
}

/// `at + wait`, saturating at a year from `at` (configured timeouts can be absurdly large).
fn later(at: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    at.checked_add(wait.min(FAR)).unwrap_or(at)
}

/// Which deadline a wait runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    FirstToken,
    Stall,
    Total,
}

fn wait_failure(wait: Wait, limits: &CallLimits, out: &StreamOut<'_>, stage: &str) -> Failure {
    match wait {
        Wait::FirstToken => Failure::new(
            ErrorClass::FirstTokenTimeout,
            format!(
                "no text within the first-token timeout of {} ms ({stage})",
                limits.first_token.as_millis()
            ),
        ),
        Wait::Stall => Failure::new(
            ErrorClass::Timeout,
            format!(
                "the stream stalled: nothing received for {} ms after {} chars of text",
                limits.first_token.as_millis(),
                out.text.chars().count()
            ),
        ),
        Wait::Total => Failure::new(
            ErrorClass::Timeout,
            format!(
                "the call exceeded the total timeout of {} ms ({stage})",
                limits.total.as_millis()
            ),
        ),
    }
}

/// Sends a streaming request and drives the reply through `parser`: chunks go to `on_chunk` as
/// they arrive; the first-token, stall and total timeouts apply; `cancel` aborts at once (the
/// response is dropped, which closes the connection).
pub(crate) async fn run_chat<P: StreamParser>(
    core: &ProviderCore,
    url: &str,
    request: reqwest::RequestBuilder,
    framing: Framing,
    mut parser: P,
    on_chunk: ChunkSink<'_>,
    cancel: CancellationToken,
) -> Result<ChatOutcome, ProviderError> {
    if cancel.is_cancelled() {
        return Err(core.error(
            ErrorClass::Cancelled,
            "cancelled before the request was sent",
        ));
    }
    let start = Instant::now();
    let mut out = StreamOut::new(on_chunk, start);
    tracing::debug!(provider = %core.name, url = %redact(url), "sending streaming chat request");
    let result = {
        let work = drive(
            core,
            url,
            request,
            framing,
            &mut parser,
            &mut out,
            start,
            &cancel,
        );
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Failure::new(
                ErrorClass::Cancelled,
                format!("cancelled by the caller after {} ms", start.elapsed().as_millis()),
            )),
            r = work => r,
        }
    };
    let result = match result {
        Ok(Some(rest)) => {
            drain(rest).await;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(f) => Err(f),
    };
    let result = match result {
        Ok(()) if out.text.is_empty() => {
            let why = match &out.finish_reason {
                Some(reason) => format!("the reply held no text (finish reason {reason})"),
                None => "the reply held no text".to_string(),
            };
            Err(Failure::new(ErrorClass::EmptyReply, why))
        }
        other => other,
    };
    match result {
        Ok(()) => {
            tracing::debug!(
                provider = %core.name,
                chars = out.text.len(),
                ttft_ms = out.time_to_first_token.map(|d| d.as_millis() as u64),
                "chat reply complete"
            );
            Ok(ChatOutcome {
                text: out.text,
                usage: out.usage,
                finish_reason: out.finish_reason,
                time_to_first_token: out.time_to_first_token,
            })
        }
        Err(failure) => {
            let err = core.failure(failure, out.text);
            tracing::debug!(provider = %core.name, class = err.class.name(), "chat failed: {}", err.message);
            Err(err)
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call's parts, borrowed from run_chat for the call"
)]
async fn drive<P: StreamParser>(
    core: &ProviderCore,
    url: &str,
    request: reqwest::RequestBuilder,
    framing: Framing,
    parser: &mut P,
    out: &mut StreamOut<'_>,
    start: Instant,
    cancel: &CancellationToken,
) -> Result<Option<FrameStream>, Failure> {
    let limits = core.limits;
    let total_deadline = later(start, limits.total);
    let first_deadline = later(start, limits.first_token);
    let (before_text, before_text_wait) = if first_deadline <= total_deadline {
        (first_deadline, Wait::FirstToken)
    } else {
        (total_deadline, Wait::Total)
    };

    let response = match tokio::time::timeout_at(before_text, request.send()).await {
        Err(_) => {
            return Err(wait_failure(
                before_text_wait,
                &limits,
                out,
                "waiting for the response",
            ));
        }
        Ok(Err(e)) => {
            let class = classify_reqwest_error(&e, false);
            let what = match class {
                ErrorClass::ConnectTimeout => format!(
                    "could not connect to {} at {url} within {} ms",
                    core.kind_name(),
                    limits.connect.as_millis()
                ),
                _ => format!("request to {} at {url} failed", core.kind_name()),
            };
            return Err(Failure::new(
                class,
                format!("{what}: {}", describe_error(&e)),
            ));
        }
        Ok(Ok(r)) => r,
    };
    if !response.status().is_success() {
        return match tokio::time::timeout_at(
            total_deadline,
            failure_from_response(core, url, response),
        )
        .await
        {
            Ok(f) => Err(f),
            Err(_) => Err(wait_failure(
                Wait::Total,
                &limits,
                out,
                "reading an error reply",
            )),
        };
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if framing == Framing::Sse && (content_type.contains("json") || content_type.contains("html")) {
        let mut response = response;
        let body = tokio::time::timeout_at(
            total_deadline,
            read_bounded(&mut response, MAX_ERROR_BODY_BYTES),
        )
        .await
        .unwrap_or_default();
        return Err(Failure::new(
            ErrorClass::Protocol,
            format!(
                "expected an SSE stream from {} at {url} but got {content_type}: {}",
                core.kind_name(),
                error_detail(&body)
            ),
        ));
    }

    let mut frames = match framing {
        Framing::Sse => sse_frames(response),
        Framing::Ndjson => ndjson_frames(response.bytes_stream()),
    };
    let mut any_frame = false;
    let mut last_activity = Instant::now();
    loop {
        let (deadline, wait) = if out.time_to_first_token.is_none() {
            (before_text, before_text_wait)
        } else {
            let stall = later(last_activity, limits.first_token);
            if stall < total_deadline {
                (stall, Wait::Stall)
            } else {
                (total_deadline, Wait::Total)
            }
        };
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Err(_) => return Err(wait_failure(wait, &limits, out, "while streaming")),
            Ok(None) => {
                if !any_frame {
                    return Err(Failure::new(
                        ErrorClass::EmptyReply,
                        format!("{} at {url} answered with an empty body", core.kind_name()),
                    ));
                }
                return parser.eof(out).map(|()| None);
            }
            Ok(Some(Err(failure))) => return Err(failure),
            Ok(Some(Ok(frame))) => {
                any_frame = true;
                last_activity = Instant::now();
                if parser.frame(&frame, out)? == Flow::Done {
                    return Ok(Some(frames));
                }
                // A fast stream may never leave this loop pending, so the caller's select
                // would not see the token: check it after every frame (e.g. the reply cap).
                if cancel.is_cancelled() {
                    return Err(Failure::new(
                        ErrorClass::Cancelled,
                        format!(
                            "cancelled by the caller after {} ms",
                            start.elapsed().as_millis()
                        ),
                    ));
                }
            }
        }
    }
}

/// Reads what is left of a finished reply (ignoring it) so the connection goes back to the pool:
/// briefly inline, then in the background; a server that keeps streaming is cut off.
async fn drain(mut frames: FrameStream) {
    let mut rest = Box::pin(async move { while frames.next().await.is_some() {} });
    if tokio::time::timeout(DRAIN_INLINE, &mut rest).await.is_err()
        && let Ok(handle) = tokio::runtime::Handle::try_current()
    {
        handle.spawn(async move {
            let _ = tokio::time::timeout(DRAIN_BACKGROUND, rest).await;
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Health checks.

/// The reply to a health-check GET.
pub(crate) enum CheckReply {
    /// 2xx with a JSON body (Null when the body was not JSON).
    Json(serde_json::Value),
    /// A non-success status, classified, with a readable message.
    Status { class: ErrorClass, message: String },
    /// No HTTP reply at all.
    Unreachable(String),
}

/// Sends a health-check request, bounded by the total timeout and [`CHECK_TIMEOUT`].
pub(crate) async fn check_get(
    core: &ProviderCore,
    url: &str,
    request: reqwest::RequestBuilder,
) -> CheckReply {
    let limit = core.limits.total.min(CHECK_TIMEOUT);
    let work = async {
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return CheckReply::Unreachable(redact(&format!(
                    "could not reach {} at {url}: {}",
                    core.kind_name(),
                    describe_error(&e)
                )));
            }
        };
        if !response.status().is_success() {
            let failure = failure_from_response(core, url, response).await;
            return CheckReply::Status {
                class: failure.class,
                message: redact(&failure.message),
            };
        }
        let body = read_bounded(&mut response, 8 << 20).await;
        CheckReply::Json(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    };
    match tokio::time::timeout(limit, work).await {
        Ok(reply) => reply,
        Err(_) => CheckReply::Unreachable(redact(&format!(
            "no reply from {} at {url} within {} ms",
            core.kind_name(),
            limit.as_millis()
        ))),
    }
}

/// The usual mapping of a check reply to a report, given how to find the model in a 2xx body.
/// `model_url`: the check asked for the model itself, so a 404 means the model does not exist.
pub(crate) fn health_from(
    reply: CheckReply,
    authorized_on_success: Option<bool>,
    model: &str,
    model_url: bool,
    model_present: impl FnOnce(&serde_json::Value) -> Option<bool>,
) -> super::HealthReport {
    use super::HealthReport;
    match reply {
        CheckReply::Json(v) => {
            let present = model_present(&v);
            let detail = match present {
                Some(true) => format!("reachable; model {model} is available"),
                Some(false) => format!("reachable; model {model} was not found"),
                None => "reachable".to_string(),
            };
            HealthReport {
                reachable: true,
                authorized: authorized_on_success,
                model_present: present,
                detail,
            }
        }
        CheckReply::Status {
            class: ErrorClass::Auth { .. },
            message,
        } => HealthReport {
            reachable: true,
            authorized: Some(false),
            model_present: None,
            detail: message,
        },
        CheckReply::Status {
            class: ErrorClass::BadRequest { status: 404 },
            message,
        } if model_url => HealthReport {
            reachable: true,
            authorized: authorized_on_success,
            model_present: Some(false),
            detail: message,
        },
        CheckReply::Status { message, .. } => HealthReport {
            reachable: true,
            authorized: None,
            model_present: None,
            detail: message,
        },
        CheckReply::Unreachable(message) => HealthReport {
            reachable: false,
            authorized: None,
            model_present: None,
            detail: message,
        },
    }
}

/// Notes a key problem (no key, bad key) found before a check was sent without the key.
pub(crate) fn with_key_problem(
    mut report: super::HealthReport,
    problem: Option<String>,
) -> super::HealthReport {
    if let Some(problem) = problem {
        report.authorized = Some(false);
        report.detail = format!("{problem}; {}", report.detail);
    }
    report
}
