//! The command line's JSON output (`context --json`, `audit --json`): camelCase, the same shapes as the LSP protocol.

use serde::Serialize;

use crate::audit::{AuditEntry, EntryKind};
use crate::context::{ContextItemKind, ContextSnapshot};
use crate::documents::Range;

/// `context --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub items: Vec<ContextItem>,
    pub total_tokens: usize,
    pub budget_tokens: usize,
    pub rendered: String,
    pub index_complete: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextItem {
    pub kind: &'static str,
    pub uri: String,
    pub range: Range,
    pub text: String,
    pub tokens: usize,
    pub reason: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elided: Vec<(u32, u32)>,
}

/// The kind's name in JSON.
pub fn kind_name(kind: ContextItemKind) -> &'static str {
    match kind {
        ContextItemKind::Selection => "selection",
        ContextItemKind::EnclosingSymbol => "enclosingSymbol",
        ContextItemKind::Imports => "imports",
        ContextItemKind::Definition => "definition",
        ContextItemKind::Diagnostics => "diagnostics",
        ContextItemKind::Outline => "outline",
        ContextItemKind::RecentEdit => "recentEdit",
    }
}

impl From<ContextSnapshot> for Context {
    fn from(s: ContextSnapshot) -> Context {
        Context {
            items: s
                .items
                .into_iter()
                .map(|i| ContextItem {
                    kind: kind_name(i.kind),
                    uri: i.uri,
                    range: i.range,
                    text: i.text,
                    tokens: i.tokens,
                    reason: i.reason,
                    elided: i.elided,
                })
                .collect(),
            total_tokens: s.total_tokens,
            budget_tokens: s.budget_tokens,
            rendered: s.rendered,
            index_complete: s.index_complete,
        }
    }
}

/// One line of `audit --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine {
    pub at: i64,
    pub kind: EntryKind,
    pub task_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub summary: String,
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditLine {
    fn from(e: AuditEntry) -> AuditLine {
        AuditLine {
            at: e.at,
            kind: e.kind,
            task_id: e.task_id,
            agent: e.agent,
            summary: e.summary,
            details: e.details,
        }
    }
}
