//! Configuration types (TOML, initializationOptions, workspace/configuration), with their JSON Schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole configuration after merging user file, workspace file and client settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// LLM endpoints by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Agents by name (built-ins can be overridden by name).
    #[serde(default)]
    pub agents: BTreeMap<String, AgentConfig>,
    #[serde(default)]
    pub defaults: DefaultsConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// A section that cannot be used turns metrics off with a warning; the rest of the
    /// configuration stays in force.
    #[serde(default, deserialize_with = "metrics_or_invalid")]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Workspace roots (absolute paths) whose `.infinity-matrix.toml` may set provider URLs
    /// and keys and loosen approvals. Only read from the user config.
    #[serde(default)]
    pub trusted_workspaces: Vec<String>,
    /// Log level filter (e.g. "info", "debug").
    #[serde(default)]
    pub log_level: Option<String>,
}

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Ollama,
    Openai,
    Anthropic,
    Gemini,
    Vertex,
    /// A GGUF model run in this process (no server): providers/embedded.rs.
    Embedded,
}

/// The longest context the embedded model runs with (candle's llama caps it at 4,096 tokens;
/// `providers::embedded::MAX_SEQ_LEN` is this number).
pub const EMBEDDED_MAX_CONTEXT_TOKENS: u32 = 4096;

/// One LLM endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Wire protocol: ollama | openai | anthropic | gemini | vertex, or embedded (a GGUF
    /// model run inside the server: see `model_path`).
    pub kind: ProviderKind,
    /// Base URL, e.g. "http://127.0.0.1:8080/v1" for an OpenAI-compatible server.
    /// Defaults per kind: ollama http://127.0.0.1:11434, openai https://api.openai.com/v1,
    /// anthropic https://api.anthropic.com, gemini https://generativelanguage.googleapis.com.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Model name. Optional for kind = "embedded" (a display name; default: the file's name).
    #[serde(default)]
    pub model: String,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Total timeout of one call, in milliseconds (default 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Connect timeout in milliseconds (default 5000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Time allowed until the first streamed token, in milliseconds (default 30000).
    #[serde(default)]
    pub first_token_timeout_ms: Option<u64>,
    /// Attempts per call including the first (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Calls in flight at once on this provider (default 4).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Consecutive failures that open the circuit (default 5).
    #[serde(default)]
    pub circuit_failure_threshold: Option<u32>,
    /// How long the circuit stays open before a half-open probe, in milliseconds (default 30000).
    #[serde(default)]
    pub circuit_cooldown_ms: Option<u64>,
    /// Maximum tokens to generate.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Vertex AI: Google Cloud project.
    #[serde(default)]
    pub project: Option<String>,
    /// Vertex AI: location (default us-central1).
    #[serde(default)]
    pub location: Option<String>,
    /// Vertex AI: command printing a bearer token (e.g. "gcloud auth print-access-token"),
    /// used when `api_key_env` is not set.
    #[serde(default)]
    pub token_command: Option<String>,
    /// Vertex AI: time allowed for `token_command`, in milliseconds (default 10000). Past it
    /// the command and every process it started (its process group) are killed.
    #[serde(default)]
    pub token_command_timeout_ms: Option<u64>,
    /// Embedded: the GGUF model file (absolute, or starting with ~/). Default: the bundled
    /// SmolLM2-135M-Instruct that `infinity-matrix model install` puts in
    /// $XDG_DATA_HOME/infinity-matrix/models/.
    #[serde(default)]
    pub model_path: Option<String>,
    /// Embedded: context length in tokens, prompt and reply together (default and maximum 4096).
    #[serde(default)]
    pub context_tokens: Option<u32>,
    /// Embedded: threads computing each token (default: half the cores, at least one; the
    /// first embedded model loaded in a process sizes candle's thread pool for all).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Embedded: seconds without a request after which the model is dropped from memory
    /// (default 300); the next request loads it again.
    #[serde(default)]
    pub idle_unload_secs: Option<u64>,
}

/// Output mode of an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    #[default]
    Answer,
    Edit,
    Diagnostics,
}

/// Approval policy for an agent's edits.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Apply at once (rules may still tighten it).
    Auto,
    /// Notify, apply after a timeout unless rejected.
    Alert,
    /// Ask; apply only when accepted.
    #[default]
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    Command,
    CodeAction,
    OnSave,
    OnDiagnostics,
}

/// An agent definition (every field optional so a config can override part of a built-in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// One line shown beside the agent's name in the agent list and pickers.
    #[serde(default)]
    pub description: Option<String>,
    /// Ordered failover chain of provider names.
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// Model override (else each provider's model).
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Template with {{selection}}, {{context}}, {{file}}, {{language}}, {{diagnostics}}, {{prompt}}.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub output: Option<OutputMode>,
    #[serde(default)]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub triggers: Option<Vec<Trigger>>,
    /// Tasks of this agent running at once (default 2).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Queue priority: higher runs first (default 0; background triggers use -10).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Background triggers: at most this many runs per minute (default 6).
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
    /// Background triggers: quiet time before running, in milliseconds (default 1500).
    #[serde(default)]
    pub debounce_ms: Option<u64>,
    /// Context budget for this agent's prompts.
    #[serde(default)]
    pub context_budget_tokens: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    /// Agent used by executePrompt when none is named.
    #[serde(default = "default_agent")]
    pub agent: String,
    /// Chain for agents that name none (empty: the built-in local chain).
    #[serde(default)]
    pub providers: Vec<String>,
    #[serde(default = "default_budget")]
    pub context_budget_tokens: usize,
    /// Share of the context budget (percent, 1-100) the code around the cursor may take:
    /// the enclosing symbol, and the target code an agent's template shows. Over it, a
    /// long body is shown as its header and a window of lines around the cursor.
    #[serde(default = "default_enclosing_percent")]
    pub context_enclosing_percent: u8,
    /// Tasks running at once across all agents.
    #[serde(default = "default_global_concurrency")]
    pub max_concurrent_tasks: usize,
    /// The most reply text one task may receive, in bytes (default 1048576 = 1 MiB). A reply
    /// streaming past it is stopped and the task fails with an error naming this limit.
    #[serde(default = "default_max_reply_bytes")]
    pub max_reply_bytes: usize,
    /// A provider asking to wait longer than this before a retry (Retry-After, in
    /// milliseconds; default 5000) is left at once for the next available provider of the
    /// chain, and later tasks skip it until its Retry-After has passed. With no other provider
    /// available the wait is honoured (up to 60 s per retry).
    #[serde(default = "default_failover_after_wait_ms")]
    pub failover_after_wait_ms: u64,
}

/// The most reply text one call may stream, in bytes, when the configuration sets none (1 MiB).
pub const DEFAULT_MAX_REPLY_BYTES: usize = 1 << 20;
/// A retry wait longer than this (ms) fails over at once when another provider is available.
pub const DEFAULT_FAILOVER_AFTER_WAIT_MS: u64 = 5_000;

fn default_agent() -> String {
    "explain".into()
}
fn default_budget() -> usize {
    4096
}
fn default_enclosing_percent() -> u8 {
    crate::context::DEFAULT_ENCLOSING_PERCENT
}
fn default_global_concurrency() -> usize {
    8
}
fn default_max_reply_bytes() -> usize {
    DEFAULT_MAX_REPLY_BYTES
}
fn default_failover_after_wait_ms() -> u64 {
    DEFAULT_FAILOVER_AFTER_WAIT_MS
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        DefaultsConfig {
            agent: default_agent(),
            providers: Vec::new(),
            context_budget_tokens: default_budget(),
            context_enclosing_percent: default_enclosing_percent(),
            max_concurrent_tasks: default_global_concurrency(),
            max_reply_bytes: default_max_reply_bytes(),
            failover_after_wait_ms: default_failover_after_wait_ms(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Keep full prompts and replies in the audit log (default false: hashes and summaries only).
    #[serde(default)]
    pub store_prompts: bool,
    /// Delete audit entries older than this many days (default 90).
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

fn default_retention() -> u32 {
    90
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            store_prompts: false,
            retention_days: default_retention(),
        }
    }
}

/// The Prometheus endpoint. The last source with a `[metrics]` section sets all of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus text at http://LISTEN/metrics; loopback addresses only
    /// (127.0.0.0/8, [::1] or localhost), e.g. "127.0.0.1:9464". Only requests whose Host
    /// header names the loopback are answered.
    #[serde(default)]
    pub listen: Option<String>,
    /// A file holding a bearer token (absolute or starting with ~/; surrounding whitespace
    /// is ignored). Scrapes must then send `Authorization: Bearer <token>`. Read when the
    /// configuration is loaded.
    #[serde(default)]
    pub token_file: Option<String>,
    /// Name of the environment variable holding a bearer token (never the token itself), as
    /// an alternative to `token_file`.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Why the section could not be parsed (set by the parser, never read from a source).
    #[serde(skip)]
    pub invalid: Option<String>,
}

/// Parses `[metrics]`, keeping a section that does not parse as [`MetricsConfig::invalid`]
/// instead of rejecting the whole configuration.
fn metrics_or_invalid<'de, D>(deserializer: D) -> Result<MetricsConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(
        MetricsConfig::deserialize(value).unwrap_or_else(|e| MetricsConfig {
            invalid: Some(e.to_string()),
            ..MetricsConfig::default()
        }),
    )
}

/// Rules that tighten approvals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// An edit changing more lines than this is never applied automatically (default 40).
    #[serde(default = "default_max_auto_lines")]
    pub max_auto_lines: usize,
    /// Seconds an `alert` edit waits for a rejection before it is applied (default 10).
    #[serde(default = "default_alert_timeout")]
    pub alert_timeout_secs: u64,
}

fn default_max_auto_lines() -> usize {
    40
}
fn default_alert_timeout() -> u64 {
    10
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            max_auto_lines: default_max_auto_lines(),
            alert_timeout_secs: default_alert_timeout(),
        }
    }
}

fn bare_provider(kind: ProviderKind, base_url: &str, model: &str) -> ProviderConfig {
    ProviderConfig {
        kind,
        base_url: Some(base_url.to_string()),
        model: model.to_string(),
        api_key_env: None,
        timeout_ms: None,
        connect_timeout_ms: Some(2000),
        first_token_timeout_ms: None,
        max_attempts: None,
        max_concurrency: None,
        circuit_failure_threshold: None,
        circuit_cooldown_ms: None,
        max_tokens: Some(512),
        temperature: None,
        project: None,
        location: None,
        token_command: None,
        token_command_timeout_ms: None,
        model_path: None,
        context_tokens: None,
        threads: None,
        idle_unload_secs: None,
    }
}

/// The built-in `ollama` provider: a local Ollama on 127.0.0.1:11434.
pub fn default_ollama_provider() -> ProviderConfig {
    ProviderConfig {
        max_attempts: Some(1),
        ..bare_provider(ProviderKind::Ollama, "http://127.0.0.1:11434", "llama3.2")
    }
}

/// The built-in `local` provider: the bundled SmolLM2-135M-Instruct run inside the server
/// (`infinity-matrix model install` puts it in place), one reply at a time.
pub fn default_local_provider() -> ProviderConfig {
    ProviderConfig {
        base_url: None,
        max_concurrency: Some(1),
        max_attempts: Some(1),
        ..bare_provider(ProviderKind::Embedded, "", "smollm2")
    }
}

/// The providers in effect: the configured ones plus the built-in local defaults for the
/// default chain's names when the configuration does not define them.
pub fn effective_providers(config: &Config) -> BTreeMap<String, crate::config::ProviderConfig> {
    let mut out = config.providers.clone();
    out.entry("ollama".into())
        .or_insert_with(crate::config::default_ollama_provider);
    out.entry("local".into())
        .or_insert_with(crate::config::default_local_provider);
    out
}

/// Names of every provider an agent may reference (configured plus built-in local defaults).
pub fn orchestrator_providers(config: &Config) -> Vec<String> {
    effective_providers(config).into_keys().collect()
}
