//! Session results as MCP tool output: JSON with paths relative to the workspace root and
//! 1-based lines, and the run of an agent as text plus its structured outcome.

use std::path::{Path, PathBuf};

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use crate::agents::TaskInfo;
use crate::audit::AuditEntry;
use crate::context::ContextItem;
use crate::engine::{DocumentSymbolInfo, WorkspaceSymbolInfo};
use crate::session::{AgentRun, Session};

pub fn context_item(item: &ContextItem) -> Value {
    let (start_line, end_line) = item.lines();
    let kind = item.kind.title().to_lowercase().replace(' ', "_");
    json!({
        "kind": kind, "path": item.display_path, "start_line": start_line, "end_line": end_line,
        "reason": item.reason, "tokens": item.tokens, "text": item.text,
    })
}

pub fn document_symbol(s: &DocumentSymbolInfo) -> Value {
    let children: Vec<Value> = s.children.iter().map(document_symbol).collect();
    json!({
        "name": s.name, "kind": s.kind.as_str(), "detail": s.detail,
        "start_line": s.range.start.line + 1, "end_line": s.range.end.line + 1, "children": children,
    })
}

pub fn workspace_symbol(session: &Session, h: &WorkspaceSymbolInfo) -> Value {
    json!({
        "name": h.name, "kind": h.kind.as_str(), "container": h.container,
        "path": session.display_path(&h.path), "line": h.range.start.line + 1,
    })
}

pub fn task_line(t: &TaskInfo) -> Value {
    json!({
        "id": t.id, "label": t.label(), "agent": t.agent, "state": t.state.as_str(),
        "provider": t.provider, "model": t.model, "error": t.error,
        "created_at": t.created_at_ms, "finished_at": t.finished_at_ms,
    })
}

pub fn audit_entry(e: &AuditEntry) -> Value {
    let kind = serde_json::to_value(e.kind).unwrap_or(Value::Null);
    json!({
        "at": e.at, "kind": kind, "task_id": e.task_id, "agent": e.agent, "summary": e.summary,
        "details": e.details,
    })
}

/// The outcome of an agent run: its report as text; the answer or the diff, whether the edit
/// was written, the findings and the error as structured content.
pub fn run_result(roots: &[PathBuf], run: &AgentRun) -> CallToolResult {
    let info = &run.info;
    let root = roots.first().map_or(Path::new(""), PathBuf::as_path);
    let diff = run.diff(root);
    let findings: Vec<Value> = (run.detail.iter().flat_map(|d| &d.diagnostics))
        .map(|f| {
            let severity = format!("{:?}", f.severity).to_lowercase();
            json!({"line": f.line + 1, "end_line": f.end_line + 1, "severity": severity, "message": f.message})
        })
        .collect();
    let structured = json!({
        "task_id": info.id, "label": info.label(), "agent": info.agent,
        "state": info.state.as_str(), "provider": info.provider, "model": info.model,
        "answer": diff.is_none().then_some(&run.text), "diff": diff, "applied": run.applied(),
        "findings": findings, "error": info.error,
    });
    let content = vec![ContentBlock::text(run.report(root))];
    let mut result = match info.failed() {
        true => CallToolResult::error(content),
        false => CallToolResult::success(content),
    };
    result.structured_content = Some(structured);
    result
}
