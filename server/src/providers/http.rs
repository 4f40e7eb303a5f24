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

/// The `Provider` methods every HTTP adapter answers from its `core: ProviderCore` field:
/// `warm_up` (builds the pooled client), `name`, `kind` and `model`.
macro_rules! core_accessors {
    () => {
        fn warm_up(&self) {
            let _ = self.core.client();
        }

        fn name(&self) -> &str {
            &self.core.name
        }

        fn kind(&self) -> crate::providers::ProviderKind {
            self.core.kind
        }

        fn model(&self) -> &str {
            &self.core.model
        }
    };
}
pub(crate) use core_accessors;

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
// Streaming (stream.rs).

mod stream;
pub(crate) use stream::*;

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
