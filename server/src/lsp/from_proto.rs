//! Conversions from the client's types (`ls_types`, `ext` params) to the engine's plain types.

use tower_lsp_server::ls_types as lsp;

use crate::agents::PromptRequest;
use crate::context::DiagnosticInput;
use crate::documents::{Position, Range, TextChange};

pub fn position(p: lsp::Position) -> Position {
    Position {
        line: p.line,
        character: p.character,
    }
}

pub fn range(r: lsp::Range) -> Range {
    Range {
        start: position(r.start),
        end: position(r.end),
    }
}

/// LSP severity numbering (1 error … 4 hint), as the engine keeps it for context.
pub fn severity(d: &lsp::Diagnostic) -> Option<u8> {
    d.severity.map(|s| {
        if s == lsp::DiagnosticSeverity::ERROR {
            1
        } else if s == lsp::DiagnosticSeverity::WARNING {
            2
        } else if s == lsp::DiagnosticSeverity::INFORMATION {
            3
        } else {
            4
        }
    })
}

pub fn diagnostic_input(d: &lsp::Diagnostic) -> DiagnosticInput {
    DiagnosticInput {
        range: range(d.range),
        message: d.message.clone(),
        severity: severity(d),
        source: d.source.clone(),
    }
}

pub fn text_change(c: lsp::TextDocumentContentChangeEvent) -> TextChange {
    TextChange {
        range: c.range.map(range),
        text: c.text,
    }
}

/// The engine's request from command arguments.
pub fn prompt_request(
    prompt: String,
    position_: Option<lsp::Position>,
    range_: Option<lsp::Range>,
    diagnostics: Option<Vec<lsp::Diagnostic>>,
) -> PromptRequest {
    PromptRequest {
        prompt,
        parent_task_id: None,
        position: position_.map(position),
        range: range_.map(range),
        diagnostics: diagnostics
            .unwrap_or_default()
            .iter()
            .map(diagnostic_input)
            .collect(),
    }
}
