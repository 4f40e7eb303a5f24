//! Conversions from the engine's plain types to the client's (`ls_types`, `ext` wire types).

use tower_lsp_server::ls_types::{self as lsp, SymbolKind as LspKind};

use super::ext;
use crate::agents::{self, Severity};
use crate::analysis::SymbolKind;
use crate::audit::AuditEntry;
use crate::context::{ContextItemKind, ContextSnapshot};
use crate::documents::{Position, Range};
use crate::engine::DocumentSymbolInfo;

pub fn position(p: Position) -> lsp::Position {
    lsp::Position {
        line: p.line,
        character: p.character,
    }
}

pub fn range(r: Range) -> lsp::Range {
    lsp::Range {
        start: position(r.start),
        end: position(r.end),
    }
}

pub fn symbol_kind(kind: SymbolKind) -> LspKind {
    match kind {
        SymbolKind::Module => LspKind::MODULE,
        SymbolKind::Namespace => LspKind::NAMESPACE,
        SymbolKind::Class => LspKind::CLASS,
        SymbolKind::Struct => LspKind::STRUCT,
        SymbolKind::Enum => LspKind::ENUM,
        SymbolKind::Interface | SymbolKind::Trait => LspKind::INTERFACE,
        SymbolKind::Impl => LspKind::OBJECT,
        SymbolKind::Function => LspKind::FUNCTION,
        SymbolKind::Method => LspKind::METHOD,
        SymbolKind::Constructor => LspKind::CONSTRUCTOR,
        SymbolKind::Constant => LspKind::CONSTANT,
        SymbolKind::TypeAlias => LspKind::TYPE_PARAMETER,
        SymbolKind::Field => LspKind::FIELD,
        SymbolKind::Variable => LspKind::VARIABLE,
        SymbolKind::EnumMember => LspKind::ENUM_MEMBER,
    }
}

pub fn document_symbol(s: DocumentSymbolInfo) -> lsp::DocumentSymbol {
    #[allow(deprecated)]
    lsp::DocumentSymbol {
        name: if s.name.is_empty() {
            "<anonymous>".into()
        } else {
            s.name
        },
        detail: Some(s.detail),
        kind: symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range: range(s.range),
        selection_range: range(s.selection_range),
        children: Some(s.children.into_iter().map(document_symbol).collect()),
    }
}

pub fn severity(s: Severity) -> lsp::DiagnosticSeverity {
    match s {
        Severity::Error => lsp::DiagnosticSeverity::ERROR,
        Severity::Warning => lsp::DiagnosticSeverity::WARNING,
        Severity::Information => lsp::DiagnosticSeverity::INFORMATION,
        Severity::Hint => lsp::DiagnosticSeverity::HINT,
    }
}

/// LSP numbering on the custom protocol's wire: 1 error, 2 warning, 3 information, 4 hint.
fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Error => 1,
        Severity::Warning => 2,
        Severity::Information => 3,
        Severity::Hint => 4,
    }
}

/// A context item's kind on the wire (`ContextItem.kind`).
pub fn context_kind(kind: ContextItemKind) -> &'static str {
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

pub fn context_result(snapshot: ContextSnapshot) -> ext::ContextResult {
    ext::ContextResult {
        items: snapshot
            .items
            .into_iter()
            .map(|i| ext::ContextItem {
                kind: context_kind(i.kind).into(),
                uri: i.uri,
                range: range(i.range),
                text: i.text,
                tokens: i.tokens as u32,
                reason: i.reason,
                elided: i.elided.iter().map(|&(a, b)| [a, b]).collect(),
            })
            .collect(),
        total_tokens: snapshot.total_tokens as u32,
        budget_tokens: snapshot.budget_tokens as u32,
        rendered: snapshot.rendered,
        index_complete: snapshot.index_complete,
    }
}

pub fn task_info(t: agents::TaskInfo) -> ext::TaskInfo {
    ext::TaskInfo {
        id: t.id,
        agent: t.agent,
        state: t.state,
        output: t.output,
        uri: t.uri,
        priority: t.priority,
        created_at_ms: t.created_at_ms,
        started_at_ms: t.started_at_ms,
        finished_at_ms: t.finished_at_ms,
        provider: t.provider,
        model: t.model,
        attempts: t.attempts,
        retries: t.retries,
        error: t.error,
        parent_task_id: t.parent_task_id,
        tokens_in: t.tokens_in,
        tokens_out: t.tokens_out,
    }
}

pub fn agent_def(a: agents::AgentDef) -> ext::AgentDef {
    ext::AgentDef {
        name: a.name,
        description: a.description,
        providers: a.providers,
        model: a.model,
        system_prompt: a.system_prompt,
        prompt: a.prompt,
        output: a.output,
        approval: a.approval,
        triggers: a.triggers,
        concurrency: a.concurrency,
        priority: a.priority,
        rate_per_minute: a.rate_per_minute,
        debounce_ms: a.debounce_ms,
        context_budget_tokens: a.context_budget_tokens,
        context_enclosing_percent: a.context_enclosing_percent,
        builtin: a.builtin,
    }
}

pub fn edit(e: agents::EditProposal) -> ext::EditProposal {
    ext::EditProposal {
        uri: e.uri,
        range: range(e.range),
        new_text: e.new_text,
        original_text: e.original_text,
        lines_changed: e.lines_changed,
        version: e.version,
    }
}

pub fn agent_diagnostic(d: agents::AgentDiagnostic) -> ext::AgentDiagnostic {
    ext::AgentDiagnostic {
        line: d.line,
        end_line: d.end_line,
        severity: severity_number(d.severity),
        message: d.message,
    }
}

pub fn task_detail(d: agents::TaskDetail) -> ext::TaskDetail {
    ext::TaskDetail {
        info: task_info(d.info),
        text: d.text,
        edit: d.edit.map(edit),
        diagnostics: d.diagnostics.into_iter().map(agent_diagnostic).collect(),
        approval: d.approval,
        prompt: d.prompt,
        target: d.target.map(|(uri, r)| ext::SentTarget {
            uri,
            range: range(r),
        }),
        context: d
            .context
            .into_iter()
            .map(|i| ext::SentContextItem {
                kind: context_kind(i.kind).into(),
                uri: i.uri,
                range: range(i.range),
                tokens: u32::try_from(i.tokens).unwrap_or(u32::MAX),
                reason: i.reason,
            })
            .collect(),
    }
}

pub fn agent_status(s: agents::StatusSnapshot) -> ext::AgentStatusParams {
    ext::AgentStatusParams {
        agents: s
            .agents
            .into_iter()
            .map(|a| ext::AgentStatus {
                name: a.name,
                description: a.description,
                state: a.state,
                background: a.background,
                enabled: a.enabled,
                running: a.running,
                queued: a.queued,
                output: a.output,
                providers: a.providers,
            })
            .collect(),
        tasks: s.tasks.into_iter().map(task_info).collect(),
        providers: s
            .providers
            .into_iter()
            .map(|p| ext::ProviderStatus {
                name: p.name,
                kind: p.kind,
                model: p.model,
                circuit: p.circuit,
                consecutive_failures: p.consecutive_failures,
                error: p.error,
                health: p.health,
            })
            .collect(),
        running: s.running,
        queued: s.queued,
    }
}

pub fn audit_entry(e: AuditEntry) -> ext::AuditEntry {
    ext::AuditEntry {
        at: e.at,
        kind: e.kind,
        task_id: e.task_id,
        agent: e.agent,
        summary: e.summary,
        details: e.details,
    }
}

/// The result of a connection test, from `doctor`'s report.
pub fn test_provider_result(
    report: &crate::providers::HealthReport,
    health: String,
) -> ext::TestProviderResult {
    let ok =
        report.reachable && report.authorized != Some(false) && report.model_present != Some(false);
    let mut parts = vec![if report.reachable {
        "reachable"
    } else {
        "unreachable"
    }];
    match report.authorized {
        Some(true) => parts.push("key accepted"),
        Some(false) => parts.push("key refused"),
        None => {}
    }
    match report.model_present {
        Some(true) => parts.push("model present"),
        Some(false) => parts.push("model not found"),
        None => {}
    }
    let mut summary = parts.join(", ");
    if !report.detail.is_empty() {
        summary.push_str(" — ");
        summary.push_str(&report.detail);
    }
    ext::TestProviderResult {
        ok,
        summary,
        health,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::TaskState;
    use crate::config::OutputMode;

    fn info() -> agents::TaskInfo {
        agents::TaskInfo {
            id: "t1".into(),
            agent: "explain".into(),
            state: TaskState::AwaitingApproval,
            output: OutputMode::Edit,
            uri: Some("file:///a.rs".into()),
            priority: 2,
            created_at_ms: 10,
            started_at_ms: Some(11),
            finished_at_ms: None,
            provider: Some("local".into()),
            model: None,
            attempts: 1,
            retries: 0,
            error: None,
            parent_task_id: None,
            tokens_in: None,
            tokens_out: None,
        }
    }

    #[test]
    fn token_counts_go_out_when_the_provider_reported_them() {
        let t = agents::TaskInfo {
            tokens_in: Some(812),
            tokens_out: Some(41),
            ..info()
        };
        let json = serde_json::to_value(task_info(t)).unwrap_or_default();
        assert_eq!(json["tokensIn"], 812);
        assert_eq!(json["tokensOut"], 41);
        let none = serde_json::to_value(task_info(info())).unwrap_or_default();
        assert!(none.get("tokensIn").is_none(), "{none}");
    }

    /// The wire is byte for byte what the server sent before the types moved to ext.rs.
    #[test]
    fn task_events_keep_their_wire_form() {
        let chunk = ext::TaskEventParams::Chunk {
            task_id: "t1".into(),
            seq: 3,
            text: "hi".into(),
        };
        assert_eq!(
            serde_json::to_string(&chunk).unwrap_or_default(),
            r#"{"type":"chunk","taskId":"t1","seq":3,"text":"hi"}"#
        );
        let reset = ext::TaskEventParams::Reset {
            task_id: "t1".into(),
            seq: 4,
            reason: "retry".into(),
        };
        assert_eq!(
            serde_json::to_string(&reset).unwrap_or_default(),
            r#"{"type":"reset","taskId":"t1","seq":4,"reason":"retry"}"#
        );
        let state = ext::TaskEventParams::State {
            task: task_info(info()),
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap_or_default(),
            concat!(
                r#"{"type":"state","task":{"id":"t1","agent":"explain","state":"awaiting_approval","#,
                r#""output":"edit","uri":"file:///a.rs","priority":2,"createdAtMs":10,"startedAtMs":11,"#,
                r#""finishedAtMs":null,"provider":"local","model":null,"attempts":1,"retries":0,"error":null}}"#
            )
        );
    }

    #[test]
    fn audit_entries_and_context_kinds_keep_their_wire_names() {
        let entry = AuditEntry {
            at: 5,
            kind: crate::audit::EntryKind::Attempt,
            task_id: "t1".into(),
            agent: None,
            summary: "s".into(),
            details: serde_json::json!({"task_id": "t1"}),
        };
        assert_eq!(
            serde_json::to_string(&audit_entry(entry)).unwrap_or_default(),
            r#"{"at":5,"kind":"attempt","taskId":"t1","summary":"s","details":{"task_id":"t1"}}"#
        );
        assert_eq!(
            context_kind(ContextItemKind::EnclosingSymbol),
            "enclosingSymbol"
        );
        assert_eq!(context_kind(ContextItemKind::RecentEdit), "recentEdit");
    }

    #[test]
    fn task_detail_flattens_the_task_and_numbers_severities() {
        let detail = agents::TaskDetail {
            info: info(),
            text: "x".into(),
            edit: None,
            diagnostics: vec![agents::AgentDiagnostic {
                line: 1,
                end_line: 2,
                severity: Severity::Hint,
                message: "m".into(),
            }],
            approval: None,
            prompt: "why?".into(),
            target: Some((
                "file:///a.py".into(),
                Range::new(Position::new(1, 0), Position::new(3, 0)),
            )),
            context: Vec::new(),
        };
        let json = serde_json::to_value(task_detail(detail)).unwrap_or_default();
        assert_eq!(json["prompt"], "why?");
        assert_eq!(
            json["target"],
            serde_json::json!({"uri": "file:///a.py", "range": {"start": {"line": 1, "character": 0}, "end": {"line": 3, "character": 0}}})
        );
        assert_eq!(json["context"], serde_json::json!([]));
        assert_eq!(json["id"], "t1");
        assert_eq!(json["text"], "x");
        assert_eq!(
            json["diagnostics"][0],
            serde_json::json!({"line": 1, "endLine": 2, "severity": 4, "message": "m"})
        );
    }
}
