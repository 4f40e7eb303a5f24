//! Turning "run this agent here" into a `TaskSpec`: the target code, its range and the context snapshot.

use crate::analysis;
use crate::config::OutputMode;
use crate::context::{ContextRequest, DiagnosticInput, SourceProvider, estimate_tokens};
use crate::documents::{DocSnapshot, Position, Range, byte_to_position, position_to_char};
use crate::engine::{Engine, EngineError};

use super::{AgentDef, TaskSpec};

/// A request to run an agent on a document.
#[derive(Debug, Clone, Default)]
pub struct PromptRequest {
    pub prompt: String,
    /// The task this request follows up: its conversation's earlier turns go before it.
    pub parent_task_id: Option<String>,
    pub position: Option<Position>,
    pub range: Option<Range>,
    pub diagnostics: Vec<DiagnosticInput>,
}

impl PromptRequest {
    /// A request with a prompt at a cursor, with an optional selection.
    pub fn at(prompt: String, position: Position, range: Option<Range>) -> PromptRequest {
        PromptRequest {
            prompt,
            position: Some(position),
            range,
            ..PromptRequest::default()
        }
    }
}

/// The code an agent works on.
struct Target {
    range: Range,
    text: String,
    is_selection: bool,
    /// Lines it spans and the last line of its header (for cutting it to the budget).
    lines: (u32, u32),
    header_end: u32,
}

/// Captures everything the task needs from the document now (context included).
pub fn prepare_task(
    engine: &Engine,
    agent: &AgentDef,
    snap: &DocSnapshot,
    req: &PromptRequest,
) -> Result<TaskSpec, EngineError> {
    let enc = engine.encoding();
    let position = req
        .position
        .or(req.range.map(|r| r.start))
        .unwrap_or_default();
    let selection = req.range.filter(|r| !r.is_empty());
    let mut target = target(engine, agent, snap, position, selection)?;

    // A target over the enclosing share of the budget is cut: an answer sees its header and
    // a window around the cursor; an edit or a review gets the window alone as its target
    // (whole lines, so what the agent returns replaces exactly those).
    let share =
        agent.context_budget_tokens * usize::from(agent.context_enclosing_percent.min(100)) / 100;
    if estimate_tokens(&target.text) > share {
        let focus = match selection {
            Some(s) => (s.start.line.min(s.end.line), s.start.line.max(s.end.line)),
            None => (position.line, position.line),
        };
        let narrows = agent.output != OutputMode::Answer && !target.is_selection;
        if (agent.output == OutputMode::Answer || narrows)
            && let Some(cut) =
                engine.cap_target(snap, target.lines, target.header_end, focus, share, narrows)
        {
            {
                if narrows {
                    let rope = &snap.rope;
                    let last_line = (cut.last as usize + 1).min(rope.len_lines());
                    let end = if last_line >= rope.len_lines() {
                        byte_to_position(rope, rope.len_bytes(), enc)
                    } else {
                        Position::new(last_line as u32, 0)
                    };
                    target.range = Range::new(Position::new(cut.first, 0), end);
                    target.text = rope
                        .slice(rope.line_to_char(cut.first as usize)..rope.line_to_char(last_line))
                        .to_string();
                } else {
                    target.text = cut.text;
                }
            }
        }
    }

    // The template shows the target: the context leaves those lines out.
    let shows_target = agent.prompt.contains("{{selection}}");
    let mut creq = ContextRequest::at(position, enc);
    creq.range = selection;
    creq.budget_tokens = agent.context_budget_tokens;
    creq.diagnostics = req.diagnostics.clone();
    creq.exclude = shows_target.then_some(target.range);
    creq.enclosing_percent = agent.context_enclosing_percent;
    let context = engine.context(snap, &creq)?;
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
        target_text: target.text,
        target_range: Some(target.range),
        target_is_selection: target.is_selection,
        context: Some(context),
        diagnostics: req.diagnostics.clone(),
        priority: None,
        trigger: None,
        parent_task_id: None,
        history: Vec::new(),
        given_edit: None,
    })
}

/// The target: the selection, else (for a review of the file) the whole file, else the
/// enclosing symbol's whole lines, else the cursor's line.
fn target(
    engine: &Engine,
    agent: &AgentDef,
    snap: &DocSnapshot,
    position: Position,
    selection: Option<Range>,
) -> Result<Target, EngineError> {
    let enc = engine.encoding();
    let rope = &snap.rope;
    let text: &str = &snap.analysis.text;
    let line_of = |byte: usize| rope.byte_to_line(byte.min(rope.len_bytes())) as u32;
    if let Some(sel) = selection {
        let a = position_to_char(rope, sel.start, enc)
            .map_err(|e| EngineError::Context(to_ctx_err(e, sel.start)))?;
        let b = position_to_char(rope, sel.end, enc)
            .map_err(|e| EngineError::Context(to_ctx_err(e, sel.end)))?;
        let (a, b) = (a.min(b), a.max(b));
        let range = Range::new(
            crate::documents::char_to_position(rope, a, enc),
            crate::documents::char_to_position(rope, b, enc),
        );
        let first = rope.char_to_line(a) as u32;
        let last = rope.char_to_line(b.saturating_sub(1).max(a)) as u32;
        return Ok(Target {
            range,
            text: rope.slice(a..b).to_string(),
            is_selection: true,
            lines: (first, last),
            header_end: first,
        });
    }
    if agent.output == OutputMode::Diagnostics {
        let last = line_of(text.len().saturating_sub(1));
        return Ok(Target {
            range: Range::new(Position::new(0, 0), byte_to_position(rope, text.len(), enc)),
            text: text.to_string(),
            is_selection: false,
            lines: (0, last),
            header_end: 0,
        });
    }
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
            let first = line_of(start_byte);
            Ok(Target {
                range,
                text: text
                    .get(line_start..sym.range.end_byte)
                    .unwrap_or_default()
                    .to_string(),
                is_selection: false,
                lines: (
                    first,
                    line_of(sym.range.end_byte.saturating_sub(1).max(start_byte)),
                ),
                header_end: line_of(sym.header_end.max(start_byte)),
            })
        }
        None => {
            let line = rope.char_to_line(c);
            let start = rope.line_to_char(line);
            let end_line = (line + 1).min(rope.len_lines());
            let end = rope.line_to_char(end_line);
            Ok(Target {
                range: Range::new(
                    Position::new(line as u32, 0),
                    crate::documents::char_to_position(rope, end, enc),
                ),
                text: rope.slice(start..end).to_string(),
                is_selection: false,
                lines: (line as u32, line as u32),
                header_end: line as u32,
            })
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::path_to_uri;

    fn agent(name: &str) -> AgentDef {
        super::super::resolve_agents(&Config::default())
            .into_iter()
            .find(|a| a.name == name)
            .expect("built-in agent")
    }

    /// A 1,300-line function with a helper from another file, the cursor near its end.
    fn huge_function() -> (tempfile::TempDir, Engine, DocSnapshot, u32) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::write(root.join("helpers.py"), "def tool(v):\n    return v\n").expect("write");
        let mut text = String::from("from helpers import tool\n\n\ndef huge(x):\n");
        for i in 0..1300 {
            text.push_str(&format!("    x = x + {i}\n"));
        }
        text.push_str("    return tool(x)\n");
        let path = root.join("main.py");
        std::fs::write(&path, &text).expect("write");
        let engine = Engine::new();
        engine.set_roots(vec![root]);
        engine.index_workspace(&|_| {});
        let uri = path_to_uri(&path);
        engine.open_document(&uri, Some(path), "python", 1, &text);
        let snap = engine.snapshot(&uri).expect("open");
        let last = text.lines().count() as u32 - 1;
        (dir, engine, snap, last)
    }

    /// Lines (0-based) a context item shows.
    fn shown(item: &crate::context::ContextItem) -> Vec<u32> {
        let mut out = Vec::new();
        let mut n = item.range.start.line;
        let mut elided = item.elided.iter().peekable();
        for _ in item.text.lines() {
            if let Some(&&(a, b)) = elided.peek()
                && a == n
            {
                elided.next();
                n = b + 1;
                continue;
            }
            out.push(n);
            n += 1;
        }
        out
    }

    #[test]
    fn an_answer_sees_a_huge_target_as_its_header_and_a_window_and_no_line_twice() {
        let (_dir, engine, snap, last) = huge_function();
        let explain = agent("explain");
        let req = PromptRequest {
            position: Some(Position::new(last, 8)),
            ..Default::default()
        };
        let spec = prepare_task(&engine, &explain, &snap, &req).expect("task");
        let share =
            explain.context_budget_tokens * usize::from(explain.context_enclosing_percent) / 100;
        assert!(estimate_tokens(&spec.target_text) <= share, "target capped");
        assert!(
            spec.target_text.starts_with("def huge(x):\n    ⋯ lines 5-"),
            "{}",
            &spec.target_text[..200]
        );
        assert!(spec.target_text.ends_with("    return tool(x)\n"));
        // The template shows the target: the context shows none of its lines.
        let context = spec.context.expect("context");
        let target = spec.target_range.expect("range");
        for item in context
            .items
            .iter()
            .filter(|i| i.uri == snap.uri && i.kind.is_source())
        {
            let inside: Vec<u32> = shown(item)
                .into_iter()
                .filter(|l| (target.start.line..=target.end.line).contains(l))
                .collect();
            assert!(inside.is_empty(), "{inside:?} in {item:?}");
        }
        assert!(
            context.items.iter().any(|i| i.uri.ends_with("helpers.py")),
            "definitions still come"
        );
    }

    #[test]
    fn an_edit_of_a_huge_symbol_targets_a_window_of_whole_lines_around_the_cursor() {
        let (_dir, engine, snap, last) = huge_function();
        let fix = agent("fix");
        let req = PromptRequest {
            position: Some(Position::new(700, 6)),
            ..Default::default()
        };
        let spec = prepare_task(&engine, &fix, &snap, &req).expect("task");
        let range = spec.target_range.expect("range");
        assert!(range.start.line <= 700 && 700 < range.end.line, "{range:?}");
        assert!(
            range.start.line > 3 && range.end.line < last,
            "a window, not the whole symbol: {range:?}"
        );
        assert_eq!(range.start.character, 0);
        assert_eq!(range.end.character, 0);
        // Exactly the document's lines in that range: what the edit replaces.
        let rope = &snap.rope;
        let expected = rope
            .slice(
                rope.line_to_char(range.start.line as usize)
                    ..rope.line_to_char(range.end.line as usize),
            )
            .to_string();
        assert_eq!(spec.target_text, expected);
        assert!(!spec.target_text.contains('⋯'));
    }
}
