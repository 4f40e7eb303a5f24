//! Agents: definitions (built-in and configured), prompt templates, result parsing and the orchestrator.

mod host;
mod orchestrator;
mod prepare;
pub mod results;
pub mod task;
pub mod template;

// Moved to `config` (its validation needs them); kept here for callers.
pub use crate::config::{builtin_agents, effective_providers, orchestrator_providers};
pub use host::{Notice, TaskHost};
pub use orchestrator::{
    AgentStatus, Orchestrator, OrchestratorConfig, OrchestratorError, ProviderStatus,
    StatusSnapshot, build_request,
};
pub use prepare::{PromptRequest, prepare_task};
pub use task::*;

use serde::Serialize;

use crate::config::{AgentConfig, Approval, Config, OutputMode, Trigger, builtins};

/// A fully resolved agent: configuration merged over the built-in of the same name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentDef {
    pub name: String,
    pub description: String,
    /// Ordered failover chain (already defaulted).
    pub providers: Vec<String>,
    pub model: Option<String>,
    pub system_prompt: String,
    pub prompt: String,
    pub output: OutputMode,
    pub approval: Approval,
    pub triggers: Vec<Trigger>,
    pub concurrency: usize,
    pub priority: i32,
    pub rate_per_minute: u32,
    pub debounce_ms: u64,
    pub context_budget_tokens: usize,
    /// Share of the budget (percent) the code around the cursor may take.
    pub context_enclosing_percent: u8,
    pub builtin: bool,
}

/// Names of the providers used when neither the agent nor `[defaults]` names any:
/// a local Ollama, then the local llama.cpp server that README's set-up command starts.
pub const DEFAULT_CHAIN: &[&str] = &["ollama", "local"];

/// Resolves every agent (built-ins overridden by config, plus configured ones), sorted by name.
pub fn resolve_agents(config: &Config) -> Vec<AgentDef> {
    let mut out: Vec<AgentDef> = Vec::new();
    let builtins = builtin_agents();
    let mut names: Vec<&str> = builtins
        .keys()
        .copied()
        .chain(config.agents.keys().map(String::as_str))
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let base = builtins.get(name);
        let over = config.agents.get(name);
        out.push(merge_agent(name, base, over, config));
    }
    out
}

fn merge_agent(
    name: &str,
    base: Option<&AgentConfig>,
    over: Option<&AgentConfig>,
    config: &Config,
) -> AgentDef {
    let description = over
        .and_then(|o| o.description.clone())
        .or_else(|| base.and_then(|b| b.description.clone()));
    let providers = over
        .and_then(|o| o.providers.clone())
        .or_else(|| base.and_then(|b| b.providers.clone()))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            if config.defaults.providers.is_empty() {
                DEFAULT_CHAIN.iter().map(|s| s.to_string()).collect()
            } else {
                config.defaults.providers.clone()
            }
        });
    let get = |f: fn(&AgentConfig) -> Option<String>| over.and_then(f).or_else(|| base.and_then(f));
    AgentDef {
        name: name.to_string(),
        description: description.unwrap_or_else(|| format!("Agent {name}")),
        providers,
        model: get(|a| a.model.clone()),
        system_prompt: get(|a| a.system_prompt.clone())
            .unwrap_or_else(|| builtins::DEFAULT_SYSTEM_PROMPT.to_string()),
        prompt: get(|a| a.prompt.clone()).unwrap_or_else(|| builtins::DEFAULT_TEMPLATE.to_string()),
        output: over
            .and_then(|o| o.output)
            .or_else(|| base.and_then(|b| b.output))
            .unwrap_or_default(),
        approval: over
            .and_then(|o| o.approval)
            .or_else(|| base.and_then(|b| b.approval))
            .unwrap_or_default(),
        triggers: over
            .and_then(|o| o.triggers.clone())
            .or_else(|| base.and_then(|b| b.triggers.clone()))
            .unwrap_or_else(|| vec![Trigger::Command]),
        concurrency: over
            .and_then(|o| o.concurrency)
            .or_else(|| base.and_then(|b| b.concurrency))
            .unwrap_or(2)
            .max(1),
        priority: over
            .and_then(|o| o.priority)
            .or_else(|| base.and_then(|b| b.priority))
            .unwrap_or(0),
        rate_per_minute: over
            .and_then(|o| o.rate_per_minute)
            .or_else(|| base.and_then(|b| b.rate_per_minute))
            .unwrap_or(6),
        debounce_ms: over
            .and_then(|o| o.debounce_ms)
            .or_else(|| base.and_then(|b| b.debounce_ms))
            .unwrap_or(1500),
        context_budget_tokens: over
            .and_then(|o| o.context_budget_tokens)
            .or_else(|| base.and_then(|b| b.context_budget_tokens))
            .unwrap_or(config.defaults.context_budget_tokens),
        context_enclosing_percent: config.defaults.context_enclosing_percent,
        builtin: base.is_some(),
    }
}
