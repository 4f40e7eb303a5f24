//! Turning "run this agent here" into a `TaskSpec`: the target code, its range and the context snapshot.

use crate::analysis;
use crate::config::OutputMode;
use crate::context::{ContextRequest, DiagnosticInput, SourceProvider};
use crate::documents::{DocSnapshot, Position, Range, byte_to_position, position_to_char};
use crate::engine::{Engine, EngineError};

use super::{AgentDef, TaskSpec};

/// A request to run an agent on a document.
#[derive(Debug, Clone, Default)]
pub struct PromptRequest {
    pub prompt: String,
    pub position: Option<Position>,
    pub range: Option<Range>,
    pub diagnostics: Vec<DiagnosticInput>,
}

/// Captures everything the task needs from the document now (context included).
pub fn prepare_task(
    engine: &Engine,
    agent: &AgentDef,
    snap: &DocSnapshot,
    req: &PromptRequest,
) -> Result<TaskSpec, EngineError> {
    let enc = engine.encoding();
    let rope = &snap.rope;
    let text: &str = &snap.analysis.text;
    let position = req
        .position
        .or(req.range.map(|r| r.start))
        .unwrap_or_default();
    let selection = req.range.filter(|r| !r.is_empty());
    let (target_range, target_text, is_selection) = if let Some(sel) = selection {
        let a = position_to_char(rope, sel.start, enc)
            .map_err(|e| EngineError::Context(to_ctx_err(e, sel.start)))?;
        let b = position_to_char(rope, sel.end, enc)
            .map_err(|e| EngineError::Context(to_ctx_err(e, sel.end)))?;
        let (a, b) = (a.min(b), a.max(b));
        let range = Range::new(
            crate::documents::char_to_position(rope, a, enc),
            crate::documents::char_to_position(rope, b, enc),
        );
        (range, rope.slice(a..b).to_string(), true)
    } else if agent.output == OutputMode::Diagnostics {
        (
            Range::new(Position::new(0, 0), byte_to_position(rope, text.len(), enc)),
            text.to_string(),
            false,
        )
    } else {
        let c = position_to_char(rope, position, enc)
            .map_err(|e| EngineError::Context(to_ctx_err(e, position)))?;
        let byte = rope.char_to_byte(c);
        let enclosing = snap
            .analysis
            .tree
            .as_ref()
            .and_then(|t| analysis::enclosing_scopes(snap.language, t, text, byte).pop());
        match enclosing {
            Some(sym) => {
                // Whole lines: from the start of the symbol's first line (found from bytes:
                // tree-sitter's points count only `\n` as a line break, the client also `\r`).
                let start_byte = sym.range.start_byte.min(rope.len_bytes());
                let line_start = rope.line_to_byte(rope.byte_to_line(start_byte));
                let range = Range::new(
                    byte_to_position(rope, line_start, enc),
                    byte_to_position(rope, sym.range.end_byte, enc),
                );
                (
                    range,
                    text.get(line_start..sym.range.end_byte)
                        .unwrap_or_default()
                        .to_string(),
                    false,
                )
            }
            None => {
                let line = rope.char_to_line(c);
                let start = rope.line_to_char(line);
                let end_line = (line + 1).min(rope.len_lines());
                let end = rope.line_to_char(end_line);
                (
                    Range::new(
                        Position::new(line as u32, 0),
                        crate::documents::char_to_position(rope, end, enc),
                    ),
                    rope.slice(start..end).to_string(),
                    false,
                )
            }
        }
    };
    let context = engine.context(
        snap,
        &ContextRequest {
            position,
            range: selection,
            budget_tokens: agent.context_budget_tokens,
            diagnostics: req.diagnostics.clone(),
            encoding: enc,
        },
    )?;
    let display_path = snap
        .path
        .as_deref()
        .map(|p| engine.display_path(p))
        .unwrap_or_else(|| snap.uri.clone());
    Ok(TaskSpec {
        agent: agent.name.clone(),
        prompt: req.prompt.clone(),
        uri: Some(snap.uri.clone()),
        path: snap.path.clone(),
        display_path,
        language: snap.language.name().to_string(),
        document_version: Some(snap.version),
        target_text,
        target_range: Some(target_range),
        target_is_selection: is_selection,
        context: Some(context),
        diagnostics: req.diagnostics.clone(),
        priority: None,
        trigger: None,
    })
}

fn to_ctx_err(e: crate::documents::PositionError, p: Position) -> crate::context::ContextError {
    let line_count = match e {
        crate::documents::PositionError::LineOutOfRange { line_count, .. } => line_count,
    };
    crate::context::ContextError::OutOfRange {
        line: p.line,
        character: p.character,
        line_count,
    }
}
