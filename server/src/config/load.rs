//! Loading configuration: the user file, the workspace file (restricted unless trusted), and
//! client settings, merged and validated with errors that name the file and the key.

use std::path::{Path, PathBuf};

use super::template::{VARIABLES, unknown_variables};
use super::{Approval, Config, builtin_agents, orchestrator_providers};

/// Where configuration comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSources {
    /// `$XDG_CONFIG_HOME/infinity-matrix/config.toml`.
    pub user_file: Option<PathBuf>,
    /// `<root>/.infinity-matrix.toml` (first workspace root).
    pub workspace_file: Option<PathBuf>,
    pub workspace_root: Option<PathBuf>,
}

impl ConfigSources {
    pub fn for_root(root: Option<&Path>) -> ConfigSources {
        ConfigSources {
            user_file: Some(user_config_path()),
            workspace_file: root.map(|r| r.join(".infinity-matrix.toml")),
            workspace_root: root.map(Path::to_path_buf),
        }
    }

    /// The files to watch for hot reload.
    pub fn files(&self) -> Vec<PathBuf> {
        self.user_file
            .iter()
            .chain(self.workspace_file.iter())
            .cloned()
            .collect()
    }
}

/// `$XDG_CONFIG_HOME/infinity-matrix/config.toml` (or `~/.config/...`).
pub fn user_config_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    base.join("infinity-matrix").join("config.toml")
}

/// `$XDG_DATA_HOME/infinity-matrix` (or `~/.local/share/...`): never inside a repository.
pub fn data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    base.join("infinity-matrix")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{source_name}: {key}: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
}

/// The merged configuration plus what was ignored and why (shown to the user).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    pub warnings: Vec<String>,
}

fn parse_file(path: &Path) -> Result<Option<Config>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::Parse {
                file: path.display().to_string(),
                message: e.to_string(),
            });
        }
    };
    toml::from_str::<Config>(&text)
        .map(Some)
        .map_err(|e| ConfigError::Parse {
            file: path.display().to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })
}

/// Parses client settings (initializationOptions.config or the `infinityMatrix` section).
pub fn parse_client_settings(value: &serde_json::Value) -> Result<Config, ConfigError> {
    serde_json::from_value::<Config>(value.clone()).map_err(|e| ConfigError::Parse {
        file: "client settings (infinityMatrix)".into(),
        message: e.to_string(),
    })
}

/// Loads and merges: user file < workspace file (restricted) < client settings. Validates the result.
pub fn load(sources: &ConfigSources, client: Option<&Config>) -> Result<LoadedConfig, ConfigError> {
    let mut warnings = Vec::new();
    let user = match &sources.user_file {
        Some(p) => parse_file(p)?,
        None => None,
    };
    let mut merged = user.clone().unwrap_or_default();
    // The source whose `[metrics]` section is in force (named in a warning if it is bad).
    let mut metrics_source = user
        .as_ref()
        .filter(|u| has_metrics(u))
        .and(sources.user_file.as_ref())
        .map(|p| p.display().to_string());
    // Only the user's own file can trust a workspace (client settings may come from the
    // workspace's editor settings).
    let trusted_roots: Vec<String> = merged.trusted_workspaces.clone();
    let mut named: Vec<(String, Config)> = Vec::new();
    if let (Some(p), Some(u)) = (&sources.user_file, &user) {
        named.push((p.display().to_string(), u.clone()));
    }
    if let Some(client) = client {
        let mut client = client.clone();
        if !client.trusted_workspaces.is_empty() {
            warnings.push("client settings: trusted_workspaces ignored: only the user config file can trust a workspace".into());
            client.trusted_workspaces.clear();
        }
        named.push(("client settings (infinityMatrix)".into(), client.clone()));
        if has_metrics(&client) {
            metrics_source = Some("client settings (infinityMatrix)".into());
        }
        merge_trusted(&mut merged, client);
    }
    if let Some(ws_path) = &sources.workspace_file
        && let Some(ws) = parse_file(ws_path)?
    {
        {
            let trusted = sources
                .workspace_root
                .as_ref()
                .is_some_and(|r| trusted_roots.iter().any(|t| Path::new(t) == r.as_path()));
            named.push((ws_path.display().to_string(), ws.clone()));
            if trusted {
                if has_metrics(&ws) {
                    metrics_source = Some(ws_path.display().to_string());
                }
                merge_trusted(&mut merged, ws);
            } else {
                merge_untrusted(
                    &mut merged,
                    ws,
                    &ws_path.display().to_string(),
                    &mut warnings,
                );
            }
        }
    }
    // A bad metrics setting turns metrics off; everything else stays in force.
    if let Err(e) = super::metrics::check_config(&merged.metrics) {
        warnings.push(format!(
            "{}: {}: {}; metrics are off, the rest of the configuration is in force",
            metrics_source.as_deref().unwrap_or("configuration"),
            e.key(),
            crate::secrets::redact(&e.to_string()),
        ));
        merged.metrics = super::MetricsConfig::default();
    }
    validate(&merged).map_err(|e| attribute(e, &named))?;
    Ok(LoadedConfig {
        config: merged,
        warnings,
    })
}

/// Names the source that set the offending key (the last one that mentions it wins).
fn attribute(err: ConfigError, sources: &[(String, Config)]) -> ConfigError {
    let ConfigError::Invalid { key, message, .. } = err else {
        return err;
    };
    let mut parts = key.split('.');
    let (section, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mentions = |c: &Config| match section {
        "providers" => c.providers.contains_key(name),
        "agents" => c.agents.contains_key(name),
        "defaults" => c.defaults != super::DefaultsConfig::default(),
        "metrics" => has_metrics(c),
        _ => false,
    };
    let source_name = sources
        .iter()
        .rev()
        .find(|(_, c)| mentions(c))
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| "configuration".into());
    ConfigError::Invalid {
        source_name,
        key,
        message,
    }
}

/// Whether a source has a `[metrics]` section (which then replaces earlier ones whole).
fn has_metrics(config: &Config) -> bool {
    config.metrics != super::MetricsConfig::default()
}

/// Overlays one client configuration on another (e.g. workspace/configuration settings over
/// initializationOptions.config), with the same rules as the files.
pub fn overlay(base: &mut Config, over: Config) {
    merge_trusted(base, over);
}

/// Overlay `over` onto `base` (later sources win key by key; agents merge field by field).
fn merge_trusted(base: &mut Config, over: Config) {
    for (name, p) in over.providers {
        base.providers.insert(name, p);
    }
    for (name, a) in over.agents {
        let entry = base.agents.entry(name).or_default();
        merge_agent_fields(entry, a);
    }
    merge_defaults(&mut base.defaults, over.defaults);
    if over.audit != super::AuditConfig::default() {
        base.audit = over.audit;
    }
    if over.metrics != super::MetricsConfig::default() {
        base.metrics = over.metrics;
    }
    if over.policy != super::PolicyConfig::default() {
        base.policy = over.policy;
    }
    base.trusted_workspaces.extend(over.trusted_workspaces);
    if over.log_level.is_some() {
        base.log_level = over.log_level;
    }
}

/// Whether `value` can name an environment variable: letters, digits and `_`, not starting with
/// a digit, at most 128 characters, and not shaped like a key (a long mix of lower-case
/// letters and digits). The reason when not.
fn check_env_name(value: &str) -> Result<(), &'static str> {
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("is not a variable name (letters, digits and `_`, not starting with a digit)");
    }
    if value.len() > 128 {
        return Err("is too long for a variable name");
    }
    let lower = value.chars().filter(char::is_ascii_lowercase).count();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if value.len() >= 24 && lower >= 4 && digits >= 4 {
        return Err("looks like a key, not a variable name");
    }
    Ok(())
}

/// `[defaults]` keys override one by one (a source without `[defaults]` changes nothing).
fn merge_defaults(base: &mut super::DefaultsConfig, over: super::DefaultsConfig) {
    let d = super::DefaultsConfig::default();
    if over.agent != d.agent {
        base.agent = over.agent;
    }
    if !over.providers.is_empty() {
        base.providers = over.providers;
    }
    if over.context_budget_tokens != d.context_budget_tokens {
        base.context_budget_tokens = over.context_budget_tokens;
    }
    if over.context_enclosing_percent != d.context_enclosing_percent {
        base.context_enclosing_percent = over.context_enclosing_percent;
    }
    if over.max_concurrent_tasks != d.max_concurrent_tasks {
        base.max_concurrent_tasks = over.max_concurrent_tasks;
    }
    if over.max_reply_bytes != d.max_reply_bytes {
        base.max_reply_bytes = over.max_reply_bytes;
    }
    if over.failover_after_wait_ms != d.failover_after_wait_ms {
        base.failover_after_wait_ms = over.failover_after_wait_ms;
    }
}

fn merge_agent_fields(base: &mut super::AgentConfig, over: super::AgentConfig) {
    macro_rules! take {
        ($($f:ident),*) => { $( if over.$f.is_some() { base.$f = over.$f; } )* };
    }
    take!(
        description,
        providers,
        model,
        system_prompt,
        prompt,
        output,
        approval,
        triggers,
        concurrency,
        priority,
        rate_per_minute,
        debounce_ms,
        context_budget_tokens
    );
}

/// A workspace file that is not trusted may add agents and prompts, but not set providers
/// (URLs, keys), metrics, audit or trust, and may only tighten approvals.
fn merge_untrusted(base: &mut Config, ws: Config, file: &str, warnings: &mut Vec<String>) {
    if !ws.providers.is_empty() {
        warnings.push(format!(
            "{file}: [providers] ignored: a workspace file cannot set provider URLs or keys unless the user config lists this workspace in trusted_workspaces"
        ));
    }
    if has_metrics(&ws) {
        warnings.push(format!(
            "{file}: [metrics] ignored in an untrusted workspace file"
        ));
    }
    if ws.audit != super::AuditConfig::default() {
        warnings.push(format!(
            "{file}: [audit] ignored in an untrusted workspace file"
        ));
    }
    if !ws.trusted_workspaces.is_empty() {
        warnings.push(format!(
            "{file}: trusted_workspaces ignored: only the user config can trust a workspace"
        ));
    }
    let builtins = builtin_agents();
    for (name, mut agent) in ws.agents {
        let existing = base
            .agents
            .get(&name)
            .and_then(|a| a.approval)
            .or_else(|| builtins.get(name.as_str()).and_then(|b| b.approval))
            .unwrap_or(Approval::Manual);
        if let Some(requested) = agent.approval {
            if requested < existing {
                warnings.push(format!(
                    "{file}: agents.{name}.approval = {requested:?} ignored: a workspace file can only tighten approvals (kept {existing:?})"
                ));
                agent.approval = Some(existing);
            }
        } else if !base.agents.contains_key(&name) && !builtins.contains_key(name.as_str()) {
            agent.approval = Some(Approval::Manual);
        }
        let entry = base.agents.entry(name).or_default();
        merge_agent_fields(entry, agent);
    }
    // A memory bound: an untrusted workspace may lower the reply cap, not raise it.
    let reply_cap = base.defaults.max_reply_bytes;
    merge_defaults(&mut base.defaults, ws.defaults);
    base.defaults.max_reply_bytes = base.defaults.max_reply_bytes.min(reply_cap);
    // Policy: only stricter values.
    base.policy.max_auto_lines = base.policy.max_auto_lines.min(ws.policy.max_auto_lines);
}

/// Checks cross references and values; the error names the key. `[metrics]` is checked apart
/// ([`super::metrics::check_config`]): a bad section only turns metrics off, with a warning.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    let invalid = |key: String, message: String| ConfigError::Invalid {
        source_name: "configuration".into(),
        key,
        message,
    };
    let providers = orchestrator_providers(config);
    let percent = config.defaults.context_enclosing_percent;
    if !(1..=100).contains(&percent) {
        return Err(invalid(
            "defaults.context_enclosing_percent".into(),
            format!("{percent} is not a percentage from 1 to 100"),
        ));
    }
    if config.defaults.max_reply_bytes == 0 {
        return Err(invalid(
            "defaults.max_reply_bytes".into(),
            "0 would fail every reply; use a number of bytes (default 1048576)".into(),
        ));
    }
    for (name, p) in &config.providers {
        if let Some(url) = p
            .base_url
            .as_ref()
            .filter(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(invalid(
                format!("providers.{name}.base_url"),
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        let embedded = p.kind == super::ProviderKind::Embedded;
        if p.model.trim().is_empty() && !embedded {
            return Err(invalid(
                format!("providers.{name}.model"),
                "must not be empty".into(),
            ));
        }
        if let Some(c) = p
            .context_tokens
            .filter(|c| !(1..=super::EMBEDDED_MAX_CONTEXT_TOKENS).contains(c))
        {
            return Err(invalid(
                format!("providers.{name}.context_tokens"),
                format!(
                    "{c} is outside 1..={} (the longest context the embedded model supports)",
                    super::EMBEDDED_MAX_CONTEXT_TOKENS
                ),
            ));
        }
        if p.threads == Some(0) {
            return Err(invalid(
                format!("providers.{name}.threads"),
                "must be at least 1".into(),
            ));
        }
        if embedded && p.model_path.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(invalid(
                format!("providers.{name}.model_path"),
                "must not be empty (leave it out for the bundled model)".into(),
            ));
        }
        if p.kind == super::ProviderKind::Vertex && p.project.is_none() {
            return Err(invalid(
                format!("providers.{name}.project"),
                "is required for kind = \"vertex\"".into(),
            ));
        }
        if let Some(env) = &p.api_key_env
            && let Err(why) = check_env_name(env)
        {
            // Most likely a key pasted where its variable's name belongs: from now on it is
            // redacted wherever it would show, and the message does not echo it.
            crate::secrets::register_secret(env);
            return Err(invalid(
                format!("providers.{name}.api_key_env"),
                format!(
                    "must be the NAME of an environment variable holding the key, never the key \
                     itself; the value given {why} (it is not shown)"
                ),
            ));
        }
    }
    for (name, a) in &config.agents {
        for p in a.providers.iter().flatten() {
            if !providers.contains(p) {
                return Err(invalid(
                    format!("agents.{name}.providers"),
                    format!("unknown provider {p:?}; known: {}", providers.join(", ")),
                ));
            }
        }
        for (field, t) in [("prompt", &a.prompt), ("system_prompt", &a.system_prompt)] {
            if let Some(t) = t {
                let unknown = unknown_variables(t);
                if !unknown.is_empty() {
                    return Err(invalid(
                        format!("agents.{name}.{field}"),
                        format!(
                            "unknown template variables {unknown:?}; known: {}",
                            VARIABLES.join(", ")
                        ),
                    ));
                }
            }
        }
        if a.concurrency == Some(0) {
            return Err(invalid(
                format!("agents.{name}.concurrency"),
                "must be at least 1".into(),
            ));
        }
    }
    for p in &config.defaults.providers {
        if !providers.contains(p) {
            return Err(invalid(
                "defaults.providers".into(),
                format!("unknown provider {p:?}; known: {}", providers.join(", ")),
            ));
        }
    }
    // Every agent: the built-ins and the configured ones (those `agents::resolve_agents` makes).
    let default = config.defaults.agent.as_str();
    if !builtin_agents().contains_key(default) && !config.agents.contains_key(default) {
        return Err(invalid(
            "defaults.agent".into(),
            format!("unknown agent {:?}", config.defaults.agent),
        ));
    }
    Ok(())
}

/// The JSON Schema of the configuration (committed as docs/config.schema.json).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
}
