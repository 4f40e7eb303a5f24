//! Vertex AI adapter: Gemini's body and stream on the regional `aiplatform` endpoint, with a bearer token from an env var or a cached `token_command`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::gemini::{bare_model, gemini_chat};
use super::http::{ProviderCore, check_get, health_from, truncate_chars, with_key_problem};
use super::secrets::{SecretStore, register_secret};
use super::{
    BoxFuture, ChatOutcome, ChatRequest, ChunkSink, ErrorClass, HealthReport, Provider,
    ProviderError, ProviderKind,
};
use crate::config::types::ProviderConfig;

/// Location when the configuration sets none.
pub const DEFAULT_LOCATION: &str = "us-central1";
/// A token printed by `token_command` is reused for this long.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);
/// `token_command` must finish within this when the configuration sets no
/// `token_command_timeout_ms`.
pub const TOKEN_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this much of the command's stdout and of its stderr is kept.
const MAX_TOKEN_OUTPUT_BYTES: u64 = 64 * 1024;

/// The default endpoint of a location (`global` has no regional prefix).
pub fn default_base_url(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_string()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

struct CachedToken {
    token: String,
    fetched: Instant,
}

/// Gemini models on Vertex AI.
pub struct VertexProvider {
    core: ProviderCore,
    project: String,
    location: String,
    token_command: Option<String>,
    token_command_timeout: Duration,
    /// Held while a token is fetched, so concurrent calls run the command once.
    token_cache: tokio::sync::Mutex<Option<CachedToken>>,
}

impl VertexProvider {
    pub fn new(
        name: &str,
        cfg: &ProviderConfig,
        secrets: Arc<SecretStore>,
    ) -> Result<Self, ProviderError> {
        let location = cfg
            .location
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or(DEFAULT_LOCATION)
            .to_string();
        let core = ProviderCore::new(
            name,
            ProviderKind::Vertex,
            cfg,
            secrets,
            &default_base_url(&location),
        )?;
        let project = match cfg
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(p) => p.to_string(),
            None => {
                return Err(core.error(
                    ErrorClass::Config,
                    "vertex needs `project` (the Google Cloud project id)",
                ));
            }
        };
        Ok(VertexProvider {
            core,
            project,
            location,
            token_command: cfg.token_command.clone().filter(|c| !c.trim().is_empty()),
            token_command_timeout: cfg
                .token_command_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(TOKEN_COMMAND_TIMEOUT),
            token_cache: tokio::sync::Mutex::new(None),
        })
    }

    fn model_url(&self, model: &str) -> String {
        format!(
            "{}/v1/projects/{}/locations/{}/publishers/google/models/{}",
            self.core.base_url,
            self.project,
            self.location,
            bare_model(model)
        )
    }

    /// The streaming endpoint for `model`.
    pub fn chat_url(&self, model: &str) -> String {
        format!("{}:streamGenerateContent?alt=sse", self.model_url(model))
    }

    /// The bearer token: the key from `api_key_env` (or set at runtime), else the cached output
    /// of `token_command`.
    async fn token(&self) -> Result<String, ProviderError> {
        if let Some(token) = self.core.key() {
            return Ok(token);
        }
        let Some(command) = &self.token_command else {
            return Err(self.core.error(
                ErrorClass::Config,
                match &self.core.api_key_env {
                    Some(env) => format!(
                        "no token for vertex: {env} is not set and no token_command is configured"
                    ),
                    None => "no token for vertex: set api_key_env or token_command".to_string(),
                },
            ));
        };
        let mut cache = self.token_cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.fetched.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(cached.token.clone());
        }
        let token = self.run_token_command(command).await?;
        *cache = Some(CachedToken {
            token: token.clone(),
            fetched: Instant::now(),
        });
        Ok(token)
    }

    /// Runs `token_command` in a process group of its own: on a timeout (or when the call is
    /// cancelled) the whole group is killed, not only the `sh` wrapper, so nothing it started
    /// keeps running.
    async fn run_token_command(&self, command: &str) -> Result<String, ProviderError> {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            self.core.error(
                ErrorClass::Config,
                format!("could not run token_command: {e}"),
            )
        })?;
        // Kills the group if this future is dropped (the call was cancelled) or times out.
        let mut group = ProcessGroup::of(&child);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = async {
            tokio::join!(
                read_bounded_pipe(stdout),
                read_bounded_pipe(stderr),
                child.wait()
            )
        };
        let (stdout, stderr, status) =
            match tokio::time::timeout(self.token_command_timeout, run).await {
                Ok((out, err, Ok(status))) => (out, err, status),
                Ok((_, _, Err(e))) => {
                    group.kill();
                    return Err(self
                        .core
                        .error(ErrorClass::Config, format!("token_command failed: {e}")));
                }
                Err(_) => {
                    group.kill();
                    // Reap the wrapper (already killed with its group).
                    let _ = child.kill().await;
                    return Err(self.core.error(
                        ErrorClass::Config,
                        format!(
                            "token_command did not finish within {} ms; it and the processes \
                             it started were killed",
                            self.token_command_timeout.as_millis()
                        ),
                    ));
                }
            };
        // It finished: its process group may be gone, and its id free for reuse.
        group.disarm();
        let token = String::from_utf8_lossy(&stdout).trim().to_string();
        // Register before anything could print it.
        register_secret(&token);
        if !status.success() {
            let stderr = String::from_utf8_lossy(&stderr);
            return Err(self.core.error(
                ErrorClass::Config,
                format!(
                    "token_command exited with {}: {}",
                    status,
                    truncate_chars(stderr.trim(), 400)
                ),
            ));
        }
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(self
                .core
                .error(ErrorClass::Config, "token_command printed no single token"));
        }
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token_cache.lock().await = None;
    }
}

/// Reads at most [`MAX_TOKEN_OUTPUT_BYTES`] of a child's pipe (a read error ends it early).
async fn read_bounded_pipe<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe
            .take(MAX_TOKEN_OUTPUT_BYTES)
            .read_to_end(&mut buf)
            .await;
    }
    buf
}

/// The process group of a spawned command (its leader's pid, Unix), killed with SIGKILL when
/// asked to or when dropped while armed.
struct ProcessGroup {
    #[cfg_attr(not(unix), allow(dead_code))]
    pgid: Option<u32>,
}

impl ProcessGroup {
    fn of(child: &tokio::process::Child) -> ProcessGroup {
        ProcessGroup { pgid: child.id() }
    }

    /// Kills every process of the group (once).
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.pgid.take().and_then(|p| libc::pid_t::try_from(p).ok())
            && pgid > 0
        {
            // SAFETY: killpg only sends a signal; the group was created for this command
            // (process_group(0)) and its leader has not been reaped, so the id is still ours.
            let rc = unsafe { libc::killpg(pgid, libc::SIGKILL) };
            if rc != 0 {
                tracing::debug!("killpg({pgid}) failed: {}", std::io::Error::last_os_error());
            }
        }
        self.pgid = None;
    }

    /// The command finished: leave its group alone.
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Provider for VertexProvider {
    crate::providers::http::core_accessors!();

    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_chunk: ChunkSink<'a>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ChatOutcome, ProviderError>> {
        Box::pin(async move {
            let token = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    return Err(self.core.error(ErrorClass::Cancelled, "cancelled while fetching the token"));
                }
                token = self.token() => token?,
            };
            let url = self.chat_url(self.core.model_for(request));
            let (name, value) = self.core.bearer(&token)?;
            let builder = self.core.client()?.post(&url).header(name, value);
            let result = gemini_chat(&self.core, &url, builder, request, on_chunk, cancel).await;
            if let Err(e) = &result
                && matches!(e.class, ErrorClass::Auth { .. })
            {
                // The token may have expired early or been revoked: fetch a new one next time.
                self.forget_token().await;
            }
            result
        })
    }

    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let client = match self.core.client() {
                Ok(c) => c,
                Err(e) => return HealthReport::failed(e.message),
            };
            // countTokens is free and checks project, location, model and token at once.
            let url = format!("{}:countTokens", self.model_url(&self.core.model));
            let body = serde_json::json!({ "contents": [{ "role": "user", "parts": [{ "text": "ping" }] }] });
            let (builder, key_problem) = match self.token().await {
                Ok(token) => match self.core.bearer(&token) {
                    Ok((name, value)) => (client.post(&url).header(name, value), None),
                    Err(e) => (client.post(&url), Some(e.message)),
                },
                Err(e) => (client.post(&url), Some(e.message)),
            };
            let reply = check_get(&self.core, &url, builder.json(&body)).await;
            let report = health_from(reply, Some(true), &self.core.model, true, |_| Some(true));
            with_key_problem(report, key_problem)
        })
    }
}
