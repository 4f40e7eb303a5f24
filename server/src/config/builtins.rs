//! The built-in agents (explain, fix, document, tests, refactor, review): the agent configuration every user starts from.

use std::collections::BTreeMap;

use super::{AgentConfig, Approval, OutputMode, Trigger};

pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a precise senior software engineer working inside the user's editor. \
Answer concisely and only about the code given.";

pub const DEFAULT_TEMPLATE: &str = "{{prompt}}\n\nFile: {{file}} ({{language}})\n\nCode:\n```{{language}}\n{{selection}}\n```\n\nContext:\n{{context}}";

const EDIT_RULES: &str = "Reply with exactly one fenced code block containing the complete replacement for the code shown \
(all of it, not just the changed lines, no placeholders like '...'), or with a unified diff. No other text is needed.";

fn agent(
    description: &str,
    prompt: String,
    output: OutputMode,
    approval: Approval,
    triggers: &[Trigger],
) -> AgentConfig {
    AgentConfig {
        description: Some(description.to_string()),
        prompt: Some(prompt),
        output: Some(output),
        approval: Some(approval),
        triggers: Some(triggers.to_vec()),
        ..AgentConfig::default()
    }
}

/// Built-in agent definitions by name (each can be overridden in config by name).
pub fn builtin_agents() -> BTreeMap<&'static str, AgentConfig> {
    use Trigger::*;
    let mut m = BTreeMap::new();
    m.insert(
        "explain",
        agent(
            "Explain the selected code",
            "Explain what this {{language}} code from {{file}} does, step by step. {{prompt}}\n\n```{{language}}\n{{selection}}\n```\n\nContext:\n{{context}}".into(),
            OutputMode::Answer,
            Approval::Auto,
            &[Command, CodeAction],
        ),
    );
    m.insert(
        "fix",
        agent(
            "Fix this diagnostic",
            format!("Fix the problems reported for this {{{{language}}}} code from {{{{file}}}}.\n\nDiagnostics:\n{{{{diagnostics}}}}\n\n{{{{prompt}}}}\n\n```{{{{language}}}}\n{{{{selection}}}}\n```\n\nContext:\n{{{{context}}}}\n\n{EDIT_RULES}"),
            OutputMode::Edit,
            Approval::Manual,
            &[Command, CodeAction],
        ),
    );
    m.insert(
        "document",
        agent(
            "Add docs",
            format!("Add documentation comments in the idiomatic style of {{{{language}}}} to this code from {{{{file}}}}. Do not change behaviour. {{{{prompt}}}}\n\n```{{{{language}}}}\n{{{{selection}}}}\n```\n\nContext:\n{{{{context}}}}\n\n{EDIT_RULES}"),
            OutputMode::Edit,
            Approval::Manual,
            &[Command, CodeAction],
        ),
    );
    m.insert(
        "tests",
        agent(
            "Write tests",
            "Write unit tests for this {{language}} code from {{file}}, in the project's test style. {{prompt}}\n\n```{{language}}\n{{selection}}\n```\n\nContext:\n{{context}}".into(),
            OutputMode::Answer,
            Approval::Manual,
            &[Command, CodeAction],
        ),
    );
    m.insert(
        "refactor",
        agent(
            "Refactor",
            format!("Refactor this {{{{language}}}} code from {{{{file}}}} for clarity without changing behaviour. {{{{prompt}}}}\n\n```{{{{language}}}}\n{{{{selection}}}}\n```\n\nContext:\n{{{{context}}}}\n\n{EDIT_RULES}"),
            OutputMode::Edit,
            Approval::Manual,
            &[Command, CodeAction],
        ),
    );
    m.insert(
        "review",
        agent(
            "Review the file on save",
            "Review this {{language}} code from {{file}} for bugs and risky constructs. {{prompt}}\n\nReply with one JSON object per line and nothing else, each {\"line\": <1-based line>, \"severity\": \"error\"|\"warning\"|\"info\", \"message\": \"...\"}. Reply with [] if there is nothing to report.\n\n```{{language}}\n{{selection}}\n```\n\nContext:\n{{context}}".into(),
            OutputMode::Diagnostics,
            Approval::Auto,
            &[Command, OnSave],
        ),
    );
    m
}
