//! One ACP prompt turn: the prompt's blocks → an agent, a target document and a question; the
//! task's context capture and provider attempts → tool calls; its answer → message chunks.

use agent_client_protocol::Client;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, EmbeddedResourceResource, PromptRequest, PromptResponse, SessionId,
    SessionNotification, SessionUpdate, StopReason, ToolCall, ToolCallContent, ToolCallLocation,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields, ToolKind,
};

use super::{AcpSession, acp_error, update};
use crate::agents::{PromptRequest as AgentRequest, TaskEvent, TaskInfo, TaskState};
use crate::documents::Range;
use crate::session::AgentRun;

type AcpResult<T> = Result<T, agent_client_protocol::Error>;

/// What a prompt asks: the agent its `/command` names, the question, and the file or selection
/// it carries (the first resource; the others are quoted in the question).
#[derive(Debug, Default, PartialEq)]
struct Ask {
    agent: Option<String>,
    question: String,
    target: Option<(String, Option<String>)>,
}

fn parse_blocks(blocks: Vec<ContentBlock>, agents: &[String]) -> Ask {
    let mut ask = Ask::default();
    let mut texts = Vec::new();
    let mut quoted = Vec::new();
    for block in blocks {
        let (uri, text) = match block {
            ContentBlock::Text(t) => {
                texts.push(t.text);
                continue;
            }
            ContentBlock::ResourceLink(link) => (link.uri, None),
            ContentBlock::Resource(r) => match r.resource {
                EmbeddedResourceResource::TextResourceContents(c) => (c.uri, Some(c.text)),
                _ => continue, // binary contents: nothing a code agent reads
            },
            _ => continue, // images and audio are not advertised
        };
        if ask.target.is_none() {
            ask.target = Some((uri, text));
        } else {
            quoted.push(match text {
                Some(text) => format!("{uri}:\n```\n{text}\n```"),
                None => format!("(see {uri})"),
            });
        }
    }
    let mut question = texts.join("\n").trim().to_string();
    if let Some(rest) = question.strip_prefix('/') {
        let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if agents.iter().any(|a| a == word) {
            ask.agent = Some(word.to_string());
            question = tail.trim().to_string();
        }
    }
    for q in quoted {
        question.push_str("\n\n");
        question.push_str(&q);
    }
    ask.question = question;
    ask
}

fn send(connection: &ConnectionTo<Client>, id: &SessionId, update: SessionUpdate) {
    let _ = connection.send_notification(SessionNotification::new(id.clone(), update));
}

fn say(connection: &ConnectionTo<Client>, id: &SessionId, text: impl Into<String>) {
    let chunk = ContentChunk::new(ContentBlock::from(text.into()));
    send(connection, id, SessionUpdate::AgentMessageChunk(chunk));
}

fn finish(connection: &ConnectionTo<Client>, id: &SessionId, call: &str, status: ToolCallStatus) {
    let fields = ToolCallUpdateFields::new().status(status);
    let _ = connection.send_notification(update(id, ToolCallUpdate::new(call.to_string(), fields)));
}

/// Runs one prompt turn to its end.
pub(super) async fn run_turn(
    acp: &AcpSession,
    connection: &ConnectionTo<Client>,
    req: PromptRequest,
) -> AcpResult<PromptResponse> {
    let session = &acp.headless.session;
    let sid = req.session_id.clone();
    let agents: Vec<String> = session.agents().into_iter().map(|a| a.name).collect();
    let ask = parse_blocks(req.prompt, &agents);
    let (doc, range) = match ask.target {
        Some((uri, text)) => session.open_reference(&uri, text).map_err(acp_error)?,
        None => {
            let doc = session.open_text(format!("untitled:acp-{sid}"), String::new());
            (doc, Range::default())
        }
    };
    let position = range.start;
    let turn = {
        let mut turn = acp.turn.lock();
        *turn = super::Turn {
            number: turn.number + 1,
            ..super::Turn::default()
        };
        turn.number
    };
    let context_call = format!("context-{sid}-{turn}");
    let (first, last) = (range.start.line + 1, range.end.line + 1);
    let title = format!(
        "Context: {} lines {first}-{last}",
        session.display_path(&doc.path)
    );
    let location = ToolCallLocation::new(doc.path.clone()).line(first);
    let call = ToolCall::new(context_call.clone(), title).kind(ToolKind::Read);
    send(
        connection,
        &sid,
        SessionUpdate::ToolCall(
            call.status(ToolCallStatus::InProgress)
                .locations(vec![location]),
        ),
    );
    let mut events = session.subscribe();
    let selection = (!range.is_empty()).then_some(range);
    let request = AgentRequest::at(ask.question, position, selection);
    let id = match session
        .run_agent(ask.agent.as_deref(), &doc.uri, request)
        .await
    {
        Ok(id) => id,
        Err(e) => {
            finish(connection, &sid, &context_call, ToolCallStatus::Failed);
            return Err(acp_error(e));
        }
    };
    let cancelled_early = {
        let mut turn = acp.turn.lock();
        turn.task = Some(id.clone());
        turn.cancelled
    };
    if cancelled_early {
        let _ = session.cancel(&id);
    }
    let items: Vec<ToolCallContent> = session
        .task(&id)
        .map(|d| {
            d.context
                .iter()
                .map(|i| {
                    let (first, last) = i.lines();
                    let shown = format!(
                        "{}:{first}-{last} — {} ({} tokens)",
                        i.display_path, i.reason, i.tokens
                    );
                    ToolCallContent::from(shown)
                })
                .collect()
        })
        .unwrap_or_default();
    let fields = ToolCallUpdateFields::new()
        .status(ToolCallStatus::Completed)
        .content(items);
    let _ = connection.send_notification(update(&sid, ToolCallUpdate::new(context_call, fields)));
    let last = follow(connection, &sid, &id, &mut events).await;
    drop(doc);
    let cancelled = std::mem::take(&mut *acp.turn.lock()).cancelled;
    if cancelled {
        return Ok(PromptResponse::new(StopReason::Cancelled));
    }
    if let Some(info) = last {
        let run = AgentRun {
            detail: session.task(&id),
            info,
            text: String::new(),
        };
        let notes = run.notes();
        if !notes.is_empty() {
            say(connection, &sid, format!("\n{notes}"));
        }
    }
    Ok(PromptResponse::new(StopReason::EndTurn))
}

/// Streams a task's answer and shows each provider attempt as a tool call, until the task ends.
async fn follow(
    connection: &ConnectionTo<Client>,
    sid: &SessionId,
    id: &str,
    events: &mut crate::session::FeedReceiver,
) -> Option<TaskInfo> {
    let mut attempt: Option<(String, u32)> = None;
    while let Some(event) = events.next_of(id).await {
        match event {
            TaskEvent::Chunk { text, .. } => say(connection, sid, text),
            TaskEvent::Reset { reason, .. } => say(
                connection,
                sid,
                format!("\n\n[{reason}; starting over]\n\n"),
            ),
            TaskEvent::State { task } => {
                let now = (task.state == TaskState::Running && task.attempts > 0)
                    .then(|| task.provider.clone().map(|p| (p, task.attempts)))
                    .flatten();
                if now.is_some() && now != attempt {
                    if let Some((_, n)) = &attempt {
                        finish(
                            connection,
                            sid,
                            &format!("attempt-{id}-{n}"),
                            ToolCallStatus::Failed,
                        );
                    }
                    if let Some((provider, n)) = &now {
                        let title = format!(
                            "Ask {provider}{}",
                            task.model
                                .as_deref()
                                .map(|m| format!(" · {m}"))
                                .unwrap_or_default()
                        );
                        let call = ToolCall::new(format!("attempt-{id}-{n}"), title)
                            .kind(ToolKind::Fetch)
                            .status(ToolCallStatus::InProgress);
                        send(connection, sid, SessionUpdate::ToolCall(call));
                    }
                    attempt = now;
                } else if task.state != TaskState::Running
                    && let Some((_, n)) = attempt.take()
                {
                    let status = match task.failed() {
                        true => ToolCallStatus::Failed,
                        false => ToolCallStatus::Completed,
                    };
                    finish(connection, sid, &format!("attempt-{id}-{n}"), status);
                }
                if task.state.is_terminal() {
                    return Some(task);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_client_protocol::v1::schema::{
        EmbeddedResource, ResourceLink, TextContent, TextResourceContents,
    };

    #[test]
    fn a_slash_command_names_the_agent_and_the_first_resource_is_the_target() {
        let agents = vec!["explain".to_string(), "fix".to_string()];
        let blocks = vec![
            ContentBlock::Text(TextContent::new("/fix the off-by-one")),
            ContentBlock::Resource(EmbeddedResource::new(
                EmbeddedResourceResource::TextResourceContents(TextResourceContents::new(
                    "x = 1",
                    "file:///w/a.py#L3:4",
                )),
            )),
            ContentBlock::ResourceLink(ResourceLink::new("b.py", "file:///w/b.py")),
        ];
        let ask = parse_blocks(blocks, &agents);
        assert_eq!(ask.agent.as_deref(), Some("fix"));
        assert!(ask.question.starts_with("the off-by-one"));
        assert!(ask.question.contains("(see file:///w/b.py)"));
        assert_eq!(
            ask.target,
            Some(("file:///w/a.py#L3:4".into(), Some("x = 1".into())))
        );
        let unknown = parse_blocks(
            vec![ContentBlock::Text(TextContent::new("/nope hi"))],
            &agents,
        );
        assert_eq!(
            (unknown.agent, unknown.question.as_str()),
            (None, "/nope hi")
        );
    }
}
