//! Running one task: prompt, provider chain with failover, streaming, reply cap and panic guard.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use super::{Orchestrator, ProviderSlot};
use crate::agents::results::{parse_diagnostics, parse_edit};
use crate::agents::template::{TemplateVars, render};
use crate::agents::{AgentDef, TaskEvent, TaskId, TaskSpec, TaskState};
use crate::config::OutputMode;
use crate::metrics;
use crate::providers::{
    AttemptEvent, CallOptions, ChatMessage, ChatRequest, CircuitState, ErrorClass, Role,
    call_with_options, human_bytes, redact,
};

/// One step of a failover chain: the name, the provider (if it could be built), and why not.
type ChainLink = (String, Option<Arc<ProviderSlot>>, Option<String>);

fn circuit_gauge(state: CircuitState) -> f64 {
    match state {
        CircuitState::Closed => metrics::CIRCUIT_CLOSED,
        CircuitState::HalfOpen => metrics::CIRCUIT_HALF_OPEN,
        CircuitState::Open => metrics::CIRCUIT_OPEN,
    }
}

impl Orchestrator {
    /// Runs a task to its end. A panic anywhere in its body (a provider, the host, a parser)
    /// is caught here: the task fails with the panic's message and frees its slot.
    pub(super) async fn run(&self, id: TaskId) {
        let outcome = std::panic::AssertUnwindSafe(self.run_inner(&id))
            .catch_unwind()
            .await;
        let (state, detail) = match outcome {
            Ok(Ok(())) => (TaskState::Succeeded, None),
            Ok(Err((state, detail))) => (state, Some(detail)),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!("task {id} panicked: {}", redact(&message));
                (
                    TaskState::Failed,
                    Some(format!("internal error: the task panicked: {message}")),
                )
            }
        };
        self.finish(&id, state, detail);
    }

    pub(super) fn push_chunk(&self, id: &str, text: &str) {
        let event = {
            let mut st = self.inner.state.lock();
            let Some(entry) = st.tasks.get_mut(id) else {
                return;
            };
            entry.text.push_str(text);
            entry.seq += 1;
            TaskEvent::Chunk {
                task_id: id.to_string(),
                seq: entry.seq,
                text: text.to_string(),
            }
        };
        self.inner.host.on_event(event);
    }

    pub(super) fn reset_text(&self, id: &str, reason: &str) {
        let event = {
            let mut st = self.inner.state.lock();
            let Some(entry) = st.tasks.get_mut(id) else {
                return;
            };
            if entry.text.is_empty() {
                return;
            }
            // Dropped, not cleared: a long reply's buffer is given back at once.
            entry.text = String::new();
            entry.seq += 1;
            TaskEvent::Reset {
                task_id: id.to_string(),
                seq: entry.seq,
                reason: redact(reason),
            }
        };
        self.inner.host.on_event(event);
    }

    pub(super) async fn run_inner(&self, id: &str) -> Result<(), (TaskState, String)> {
        let (spec, cancel, agent, chain, defaults) = {
            let st = self.inner.state.lock();
            let entry = st
                .tasks
                .get(id)
                .ok_or((TaskState::Failed, "task vanished".to_string()))?;
            let agent = st.agents.get(&entry.info.agent).cloned().ok_or((
                TaskState::Failed,
                format!("agent {} was removed", entry.info.agent),
            ))?;
            let chain: Vec<ChainLink> = agent
                .providers
                .iter()
                .map(|p| {
                    (
                        p.clone(),
                        st.providers.get(p).cloned(),
                        st.provider_errors.get(p).cloned(),
                    )
                })
                .collect();
            (
                entry.spec.clone(),
                entry.cancel.clone(),
                agent,
                chain,
                st.config.defaults.clone(),
            )
        };
        if cancel.is_cancelled() {
            return Err((TaskState::Cancelled, "cancelled".into()));
        }
        self.transition(id, TaskState::Running, None);
        if let Some(new_text) = spec.given_edit.clone() {
            // The user's own pick: the policy of an edit agent's reply, no provider call. An
            // answer agent's approval never covered edits: the user sees the diff first.
            let mut agent = agent.clone();
            if agent.output != OutputMode::Edit {
                agent.approval = crate::config::Approval::Manual;
            }
            return self
                .handle_edit(id, &agent, &spec, Ok(new_text), &cancel)
                .await;
        }
        let request = build_request(&agent, &spec);
        let max_reply_bytes = defaults.max_reply_bytes.max(1);
        let failover_after = Duration::from_millis(defaults.failover_after_wait_ms);
        let mut failures: Vec<String> = Vec::new();
        let mut answer = None;
        let mut previous: Option<String> = None;
        for (index, (pname, handle, config_error)) in chain.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err((TaskState::Cancelled, "cancelled".into()));
            }
            let Some(handle) = handle else {
                let why = config_error
                    .clone()
                    .unwrap_or_else(|| "no such provider is configured".into());
                failures.push(format!("{pname}: {why}"));
                self.record_attempt_failure(id, pname, &why);
                continue;
            };
            // Another provider later in the chain that is worth trying now.
            let can_fail_over = || {
                chain
                    .iter()
                    .skip(index + 1)
                    .any(|(_, slot, _)| slot.as_ref().is_some_and(|s| s.is_available()))
            };
            let model = agent
                .model
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| handle.config().model.clone());
            if let Some(left) = handle.retry_after.remaining()
                && can_fail_over()
            {
                let why = format!(
                    "skipped: the provider asked callers to wait (Retry-After) for {} more",
                    human_wait(left)
                );
                self.record_skipped(
                    id,
                    pname,
                    &model,
                    ErrorClass::RateLimited {
                        retry_after_ms: u64::try_from(left.as_millis()).ok(),
                    },
                    &why,
                );
                failures.push(format!("{pname} (rate_limited): {why}"));
                continue;
            }
            if let Some(prev) = &previous {
                self.inner.metrics.inc(
                    metrics::FAILOVERS_TOTAL,
                    &[("agent", &agent.name), ("from", prev), ("to", pname)],
                );
                tracing::info!("task {id}: failing over from {prev} to {pname}");
            }
            previous = Some(pname.clone());
            let permit = tokio::select! {
                p = handle.semaphore.clone().acquire_owned() => p.ok(),
                _ = cancel.cancelled() => return Err((TaskState::Cancelled, "cancelled".into())),
            };
            let mut req = request.clone();
            if let Some(m) = &agent.model {
                req.model = m.clone();
            }
            {
                let mut st = self.inner.state.lock();
                if let Some(e) = st.tasks.get_mut(id) {
                    e.info.provider = Some(pname.clone());
                    e.info.model = Some(model.clone());
                }
            }
            let this = self.clone();
            let task_id = id.to_string();
            let on_chunk = move |t: &str| this.push_chunk(&task_id, t);
            let this2 = self.clone();
            let task_id2 = id.to_string();
            let on_attempt = move |ev: AttemptEvent| this2.on_attempt(&task_id2, ev);
            let result = call_with_options(
                handle.provider.as_ref(),
                &handle.breaker,
                &handle.retry,
                &req,
                &on_chunk,
                cancel.clone(),
                &on_attempt,
                CallOptions {
                    max_reply_bytes: Some(max_reply_bytes),
                    max_retry_wait: Some(failover_after),
                    can_fail_over: Some(&can_fail_over),
                },
            )
            .await;
            drop(permit);
            handle.note_result(&result);
            self.inner.metrics.set_gauge(
                metrics::CIRCUIT_STATE,
                &[("provider", pname)],
                circuit_gauge(handle.breaker.state()),
            );
            match result {
                Ok(outcome) => {
                    answer = Some((pname.clone(), handle.config().model.clone(), outcome));
                    break;
                }
                Err(e) if e.class == ErrorClass::Cancelled || cancel.is_cancelled() => {
                    return Err((TaskState::Cancelled, "cancelled".into()));
                }
                Err(e) if matches!(e.class, ErrorClass::ReplyTooLarge { .. }) => {
                    let message = reply_cap_message(max_reply_bytes);
                    // Gives the partial reply's memory back at once.
                    self.reset_text(id, &message);
                    return Err((TaskState::Failed, message));
                }
                Err(e) => {
                    if e.class == ErrorClass::CircuitOpen {
                        // No request was sent; the audit log still says the provider was passed.
                        self.record_skipped(
                            id,
                            pname,
                            &model,
                            ErrorClass::CircuitOpen,
                            &format!("skipped: {}", e.message),
                        );
                    }
                    self.reset_text(id, &format!("{pname} failed: {}", e.message));
                    failures.push(format!("{pname} ({}): {}", e.class.name(), e.message));
                }
            }
        }
        let Some((provider, model, outcome)) = answer else {
            return Err((TaskState::Failed, no_provider_message(&failures)));
        };
        if let Some(audit) = &self.inner.audit {
            audit.set_task_result(id, &provider, &model, &outcome.text);
        }
        match agent.output {
            OutputMode::Answer => Ok(()),
            OutputMode::Diagnostics => {
                let first_line = spec.target_range.map(|r| r.start.line).unwrap_or(0);
                let diags = parse_diagnostics(&outcome.text, first_line).map_err(|e| {
                    (
                        TaskState::Failed,
                        format!("{e}; the raw reply is kept in the task"),
                    )
                })?;
                let info = {
                    let mut st = self.inner.state.lock();
                    let e = st
                        .tasks
                        .get_mut(id)
                        .ok_or((TaskState::Failed, "task vanished".to_string()))?;
                    e.diagnostics = diags.clone();
                    e.info.clone()
                };
                if let Some(uri) = &spec.uri {
                    self.inner.host.publish_diagnostics(&info, uri, &diags);
                    // Kept, so a restarted server publishes them again.
                    if let Some(audit) = &self.inner.audit
                        && let Ok(items) = serde_json::to_value(&diags)
                    {
                        audit.findings(id, uri, &items);
                    }
                }
                Ok(())
            }
            OutputMode::Edit => {
                let new_text = parse_edit(&outcome.text, &spec.target_text);
                self.handle_edit(id, &agent, &spec, new_text, &cancel).await
            }
        }
    }
}

/// The chat request a task sends: the system prompt, the conversation's earlier turns, and the
/// agent's template rendered with the task's code and context.
pub fn build_request(agent: &AgentDef, spec: &TaskSpec) -> ChatRequest {
    let diagnostics = spec
        .diagnostics
        .iter()
        .map(|d| format!("line {}: {}", d.range.start.line + 1, d.message))
        .collect::<Vec<_>>()
        .join("\n");
    let vars = TemplateVars {
        selection: spec.target_text.clone(),
        context: spec
            .context
            .as_ref()
            .map(|c| c.rendered.clone())
            .unwrap_or_default(),
        file: spec.display_path.clone(),
        language: spec.language.clone(),
        diagnostics: if diagnostics.is_empty() {
            "(none)".into()
        } else {
            diagnostics
        },
        prompt: spec.prompt.clone(),
    };
    let user = render(&agent.prompt, &vars);
    let mut messages = vec![ChatMessage {
        role: Role::System,
        content: agent.system_prompt.clone(),
    }];
    // A follow-up: the conversation's earlier turns, as the chat they were.
    for turn in &spec.history {
        messages.push(ChatMessage {
            role: Role::User,
            content: turn.question.clone(),
        });
        messages.push(ChatMessage {
            role: Role::Assistant,
            content: turn.answer.clone(),
        });
    }
    messages.push(ChatMessage {
        role: Role::User,
        content: user,
    });
    ChatRequest {
        model: String::new(),
        messages,
        max_tokens: None,
        temperature: None,
    }
}

/// The error of a task whose reply grew past `defaults.max_reply_bytes`.
fn reply_cap_message(limit: usize) -> String {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    format!(
        "the reply was longer than the cap of {} ({limit} bytes) of text per task \
         (defaults.max_reply_bytes); the stream was stopped and the partial reply discarded",
        human_bytes(limit)
    )
}

/// A wait in words: "59 min 58 s", "4 s".
fn human_wait(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// The text of a panic's payload (cut to 500 characters).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_string());
    text.chars().take(500).collect()
}

fn no_provider_message(failures: &[String]) -> String {
    format!(
        "no provider answered. Tried: {}. Configure a provider (in VS Code: Infinity Matrix: Configure \
Provider; elsewhere: [providers.NAME] in $XDG_CONFIG_HOME/infinity-matrix/config.toml), or install the \
built-in local model with `infinity-matrix model install`.",
        if failures.is_empty() {
            "nothing (the agent's provider chain is empty)".to_string()
        } else {
            failures.join("; ")
        }
    )
}
