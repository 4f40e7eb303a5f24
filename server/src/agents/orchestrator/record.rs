//! Task transitions and their records: audit rows and metrics of states, attempts, approvals, edits.

use super::{Orchestrator, now_ms};
use crate::agents::{EditProposal, TaskEvent, TaskInfo, TaskState};
use crate::audit::{
    ApprovalActor, ApprovalDecision, ApprovalRecord, AttemptRecord, EditRecord, sha256_hex,
};
use crate::metrics;
use crate::providers::{AttemptEvent, ErrorClass, redact};

/// Keep at most this many finished tasks in memory (the audit log keeps them all).
const FINISHED_KEPT: usize = 500;

impl Orchestrator {
    pub(super) fn update_gauges(&self) {
        let (running, queued) = {
            let st = self.inner.state.lock();
            (st.running_total, st.queue.len())
        };
        self.inner
            .metrics
            .set_gauge(metrics::TASKS_RUNNING, &[], running as f64);
        self.inner
            .metrics
            .set_gauge(metrics::TASKS_QUEUED, &[], queued as f64);
    }

    pub(super) fn transition(
        &self,
        id: &str,
        to: TaskState,
        detail: Option<String>,
    ) -> Option<TaskInfo> {
        let detail = detail.map(|d| redact(&d));
        let info = {
            let mut st = self.inner.state.lock();
            let entry = st.tasks.get_mut(id)?;
            let from = entry.info.state;
            if from.is_terminal() || from == to {
                return None;
            }
            entry.info.state = to;
            let now = now_ms();
            if to == TaskState::Running && entry.info.started_at_ms.is_none() {
                entry.info.started_at_ms = Some(now);
            }
            let mut freed_slot = false;
            if to.is_terminal() {
                entry.info.finished_at_ms = Some(now);
                if to != TaskState::Succeeded {
                    entry.info.error = detail.clone();
                }
                entry.approval_tx = None;
                freed_slot = std::mem::take(&mut entry.holds_slot);
            }
            let info = entry.info.clone();
            // Recorded under the lock: whoever sees the new state can flush and find it written.
            if let Some(audit) = &self.inner.audit {
                audit.task_transition(id, from, to, detail.as_deref());
            }
            if freed_slot {
                if let Some(n) = st.running_per_agent.get_mut(&info.agent) {
                    *n = n.saturating_sub(1);
                }
                st.running_total = st.running_total.saturating_sub(1);
            }
            info
        };
        self.inner
            .host
            .on_event(TaskEvent::State { task: info.clone() });
        Some(info)
    }

    /// Moves a task to a terminal state (freeing its concurrency slot if it held one). A
    /// provider call still in flight (the task panicked, or shutdown gave up on it) is closed
    /// in the audit log first.
    pub(super) fn finish(&self, id: &str, state: TaskState, detail: Option<String>) {
        let open = {
            let mut st = self.inner.state.lock();
            st.tasks
                .get_mut(id)
                .filter(|e| !e.info.state.is_terminal())
                .and_then(|e| e.open_attempt.take())
        };
        if let Some(mut attempt) = open {
            attempt.latency_ms = u64::try_from(now_ms() - attempt.started_at).ok();
            attempt.error_class = Some(if state == TaskState::Cancelled {
                ErrorClass::Cancelled
            } else {
                ErrorClass::Internal
            });
            attempt.error_message = Some(redact(&format!(
                "the task ended while this call was in flight: {}",
                detail.as_deref().unwrap_or(state.as_str())
            )));
            if let Some(audit) = &self.inner.audit {
                audit.attempt(&attempt);
            }
        }
        let Some(info) = self.transition(id, state, detail) else {
            return;
        };
        {
            let mut st = self.inner.state.lock();
            if let Some(e) = st.tasks.get_mut(id) {
                // Kept for taskResult; give back what the growing buffer over-allocated.
                e.text.shrink_to_fit();
            }
            st.finished.push_back(id.to_string());
            while st.finished.len() > FINISHED_KEPT {
                if let Some(old) = st.finished.pop_front() {
                    st.tasks.remove(&old);
                }
            }
        }
        self.inner.metrics.inc(
            metrics::TASKS_TOTAL,
            &[("agent", &info.agent), ("state", state.as_str())],
        );
        self.update_gauges();
        self.inner.idle.notify_waiters();
        self.inner.wake.notify_one();
    }

    pub(super) fn on_attempt(&self, id: &str, ev: AttemptEvent) {
        match ev {
            AttemptEvent::Started { attempt } => {
                if attempt > 1 {
                    self.reset_text(id, "retrying");
                }
                let mut st = self.inner.state.lock();
                let mut started = None;
                if let Some(e) = st.tasks.get_mut(id) {
                    e.info.attempts += 1;
                    if attempt > 1 {
                        e.info.retries += 1;
                    }
                    // Written now, so a call in flight when the process dies is on record.
                    let record = AttemptRecord {
                        task_id: id.to_string(),
                        attempt: e.info.attempts,
                        provider: e.info.provider.clone().unwrap_or_default(),
                        model: e.info.model.clone().unwrap_or_default(),
                        started_at: now_ms(),
                        latency_ms: None,
                        ttft_ms: None,
                        usage: Default::default(),
                        error_class: None,
                        error_message: None,
                        retry_delay_ms: None,
                        skipped: false,
                    };
                    if let Some(audit) = &self.inner.audit {
                        audit.attempt_started(&record);
                    }
                    e.open_attempt = Some(record);
                    started = Some(e.info.clone());
                }
                drop(st);
                // Each attempt shows: its provider and model, and the attempt count.
                if let Some(task) = started {
                    self.inner.host.on_event(TaskEvent::State { task });
                }
            }
            AttemptEvent::Finished(report) => {
                let m = &self.inner.metrics;
                let outcome = report
                    .error
                    .as_ref()
                    .map(|e| e.class.name())
                    .unwrap_or("ok");
                m.inc(
                    metrics::PROVIDER_REQUESTS_TOTAL,
                    &[("provider", &report.provider), ("outcome", outcome)],
                );
                m.observe(
                    metrics::PROVIDER_LATENCY_SECONDS,
                    &[("provider", &report.provider)],
                    report.latency.as_secs_f64(),
                );
                if let Some(t) = report.time_to_first_token {
                    m.observe(
                        metrics::PROVIDER_TTFT_SECONDS,
                        &[("provider", &report.provider)],
                        t.as_secs_f64(),
                    );
                }
                if report.retry_delay.is_some() {
                    m.inc(
                        metrics::PROVIDER_RETRIES_TOTAL,
                        &[("provider", &report.provider)],
                    );
                }
                if let Some(n) = report.usage.prompt_tokens {
                    m.add(
                        metrics::TOKENS_TOTAL,
                        &[("provider", &report.provider), ("direction", "prompt")],
                        u64::from(n),
                    );
                }
                if let Some(n) = report.usage.completion_tokens {
                    m.add(
                        metrics::TOKENS_TOTAL,
                        &[("provider", &report.provider), ("direction", "completion")],
                        u64::from(n),
                    );
                }
                // Attempts are numbered across the whole chain (the report counts per provider).
                let (attempt, started_at) = {
                    let mut st = self.inner.state.lock();
                    match st.tasks.get_mut(id) {
                        Some(e) => {
                            let open = e.open_attempt.take();
                            // The answering call's counts, as the provider reported them.
                            if report.error.is_none() {
                                e.info.tokens_in = report.usage.prompt_tokens;
                                e.info.tokens_out = report.usage.completion_tokens;
                            }
                            (
                                e.info.attempts,
                                open.map(|a| a.started_at).unwrap_or_else(|| {
                                    now_ms() - report.latency.as_millis() as i64
                                }),
                            )
                        }
                        None => (report.attempt, now_ms() - report.latency.as_millis() as i64),
                    }
                };
                if let Some(audit) = &self.inner.audit {
                    audit.attempt(&AttemptRecord {
                        task_id: id.to_string(),
                        attempt,
                        provider: report.provider.clone(),
                        model: report.model.clone(),
                        started_at,
                        latency_ms: Some(report.latency.as_millis() as u64),
                        ttft_ms: report.time_to_first_token.map(|t| t.as_millis() as u64),
                        usage: report.usage,
                        error_class: report.error.as_ref().map(|e| e.class.clone()),
                        error_message: report.error.as_ref().map(|e| redact(&e.message)),
                        retry_delay_ms: report.retry_delay.map(|d| d.as_millis() as u64),
                        skipped: false,
                    });
                }
            }
        }
    }

    pub(super) fn record_attempt_failure(&self, id: &str, provider: &str, why: &str) {
        self.inner.metrics.inc(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", provider), ("outcome", "config")],
        );
        if let Some(audit) = &self.inner.audit {
            audit.attempt(&AttemptRecord {
                task_id: id.to_string(),
                attempt: 0,
                provider: provider.to_string(),
                model: String::new(),
                started_at: now_ms(),
                latency_ms: None,
                ttft_ms: None,
                usage: Default::default(),
                error_class: Some(ErrorClass::Config),
                error_message: Some(redact(why)),
                retry_delay_ms: None,
                skipped: false,
            });
        }
    }

    /// A provider of the chain passed over without a request (circuit open, Retry-After).
    pub(super) fn record_skipped(
        &self,
        id: &str,
        provider: &str,
        model: &str,
        class: ErrorClass,
        why: &str,
    ) {
        self.inner.metrics.inc(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("provider", provider), ("outcome", "skipped")],
        );
        if let Some(audit) = &self.inner.audit {
            audit.attempt(&AttemptRecord {
                task_id: id.to_string(),
                attempt: 0,
                provider: provider.to_string(),
                model: model.to_string(),
                started_at: now_ms(),
                latency_ms: None,
                ttft_ms: None,
                usage: Default::default(),
                error_class: Some(class),
                error_message: Some(redact(why)),
                retry_delay_ms: None,
                skipped: true,
            });
        }
    }

    pub(super) fn record_approval(
        &self,
        id: &str,
        decision: ApprovalDecision,
        by: ApprovalActor,
        reason: &str,
    ) {
        if let Some(audit) = &self.inner.audit {
            audit.approval(&ApprovalRecord {
                task_id: id.to_string(),
                at: now_ms(),
                decision,
                by_whom: by,
                reason: if reason.is_empty() {
                    None
                } else {
                    Some(reason.to_string())
                },
            });
        }
    }

    pub(super) fn record_edit(
        &self,
        id: &str,
        edits: &[EditProposal],
        applied: bool,
        detail: &str,
    ) {
        if let Some(audit) = &self.inner.audit {
            let files: Vec<String> = edits.iter().map(|e| e.uri.clone()).collect();
            let new_text: String = edits.iter().map(|e| e.new_text.as_str()).collect();
            let lines: usize = edits.iter().map(|e| e.lines_changed).sum();
            let summary = edits
                .iter()
                .map(|e| {
                    format!(
                        "{} lines {}-{}: {}",
                        e.uri,
                        e.range.start.line + 1,
                        e.range.end.line + 1,
                        crate::line_diff::changed_lines_label(e.lines_changed)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            audit.edit(&EditRecord {
                task_id: id.to_string(),
                at: now_ms(),
                files,
                lines_changed: lines as u32,
                content_hash: sha256_hex(&new_text),
                summary,
                applied,
                outcome_detail: Some(detail.to_string()),
            });
        }
    }
}
