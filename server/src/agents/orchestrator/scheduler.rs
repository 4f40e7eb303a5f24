//! Scheduling: the dispatcher (priorities, caps), background triggers (debounce, rate limit), shutdown.

use std::cmp::Reverse;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Inner, Orchestrator, OrchestratorError};
use crate::agents::{AgentDef, TaskId, TaskSpec, TaskState};
use crate::config::Trigger;

/// Builds a task for an agent when a background trigger fires (None: nothing to do).
pub type PrepareFn = Arc<dyn Fn(&AgentDef) -> Option<TaskSpec> + Send + Sync>;

pub(super) fn is_background(agent: &AgentDef) -> bool {
    agent
        .triggers
        .iter()
        .any(|t| matches!(t, Trigger::OnSave | Trigger::OnDiagnostics))
}

impl Orchestrator {
    /// Starts the dispatcher on the current tokio runtime: it schedules whenever woken, until
    /// the orchestrator is dropped.
    pub(super) fn spawn_dispatcher(&self) {
        let weak = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                // A bug in scheduling must not stop every later task from starting.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::schedule(&inner)))
                    .is_err()
                {
                    tracing::error!("the task scheduler panicked; it keeps running");
                }
                drop(inner);
                // notify_one keeps a permit when nobody waits, so no wake-up is lost here.
                wake.notified().await;
            }
        });
    }

    /// Enables a background agent (runs on its triggers until stopped).
    pub fn enable(&self, agent: &str) -> Result<bool, OrchestratorError> {
        let def = self.agent(agent)?;
        if is_background(&def) {
            self.inner.state.lock().enabled.insert(def.name);
            self.inner.wake.notify_one();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Disables a background agent and cancels its queued and running tasks.
    pub fn stop_agent(&self, agent: &str) -> Result<usize, OrchestratorError> {
        let def = self.agent(agent)?;
        let ids: Vec<TaskId> = {
            let mut st = self.inner.state.lock();
            st.enabled.remove(&def.name);
            st.tasks
                .values()
                .filter(|e| e.info.agent == def.name && !e.info.state.is_terminal())
                .map(|e| e.info.id.clone())
                .collect()
        };
        let n = ids.len();
        for id in ids {
            let _ = self.cancel(&id);
        }
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// A trigger fired (save, new diagnostics) on `uri`: every enabled agent listening to it
    /// runs after its debounce, within its rate limit. `prepare` builds the spec at run time.
    pub fn fire_trigger(&self, trigger: Trigger, uri: &str, prepare: PrepareFn) {
        let agents: Vec<AgentDef> = {
            let st = self.inner.state.lock();
            st.agents
                .values()
                .filter(|a| st.enabled.contains(&a.name) && a.triggers.contains(&trigger))
                .cloned()
                .collect()
        };
        for agent in agents {
            let key = (agent.name.clone(), uri.to_string());
            let generation = {
                let mut st = self.inner.state.lock();
                let g = st.trigger_generation.entry(key.clone()).or_insert(0);
                *g += 1;
                *g
            };
            let this = self.clone();
            let prepare = prepare.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(agent.debounce_ms)).await;
                {
                    let mut st = this.inner.state.lock();
                    if st.trigger_generation.get(&key) != Some(&generation)
                        || !st.enabled.contains(&agent.name)
                    {
                        return;
                    }
                    let window = st.recent_runs.entry(agent.name.clone()).or_default();
                    let now = Instant::now();
                    while window
                        .front()
                        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
                    {
                        window.pop_front();
                    }
                    if window.len() >= agent.rate_per_minute as usize {
                        tracing::info!(
                            "agent {} rate limited ({} runs per minute)",
                            agent.name,
                            agent.rate_per_minute
                        );
                        return;
                    }
                    window.push_back(now);
                }
                if let Some(mut spec) = prepare(&agent) {
                    spec.trigger = Some(trigger);
                    spec.priority = spec.priority.or(Some(agent.priority - 10));
                    let _ = this.submit(spec);
                }
            });
        }
    }

    /// Cancels everything and waits (bounded) until every task has recorded its end.
    pub async fn shutdown(&self, wait: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let ids: Vec<TaskId> = {
            let st = self.inner.state.lock();
            st.tasks
                .values()
                .filter(|e| !e.info.state.is_terminal())
                .map(|e| e.info.id.clone())
                .collect()
        };
        for id in &ids {
            let _ = self.cancel(id);
        }
        let deadline = Instant::now() + wait;
        loop {
            let open: Vec<TaskId> = {
                let st = self.inner.state.lock();
                st.tasks
                    .values()
                    .filter(|e| !e.info.state.is_terminal())
                    .map(|e| e.info.id.clone())
                    .collect()
            };
            if open.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                for id in open {
                    self.finish(&id, TaskState::Cancelled, Some("server shut down".into()));
                }
                break;
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(20), self.inner.idle.notified()).await;
        }
        if let Some(audit) = &self.inner.audit {
            let _ = audit.flush();
        }
    }

    /// Starts every queued task the caps allow, highest priority first (FIFO within a priority).
    pub(super) fn schedule(inner: &Arc<Inner>) {
        if inner.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let mut to_start = Vec::new();
        {
            let mut st = inner.state.lock();
            let max_total = st.config.defaults.max_concurrent_tasks.max(1);
            let keys: Vec<((Reverse<i32>, u64), TaskId)> =
                st.queue.iter().map(|(k, v)| (*k, v.clone())).collect();
            for (key, id) in keys {
                if st.running_total >= max_total {
                    break;
                }
                let Some(agent_name) = st.tasks.get(&id).map(|e| e.info.agent.clone()) else {
                    st.queue.remove(&key);
                    continue;
                };
                let cap = st
                    .agents
                    .get(&agent_name)
                    .map(|a| a.concurrency)
                    .unwrap_or(1);
                let running = st.running_per_agent.get(&agent_name).copied().unwrap_or(0);
                if running >= cap {
                    continue;
                }
                st.queue.remove(&key);
                let Some(entry) = st.tasks.get_mut(&id) else {
                    continue;
                };
                if entry.info.state.is_terminal() {
                    continue; // cancelled while queued
                }
                entry.holds_slot = true;
                *st.running_per_agent.entry(agent_name).or_insert(0) += 1;
                st.running_total += 1;
                to_start.push(id);
            }
        }
        for id in to_start {
            let orch = Orchestrator {
                inner: inner.clone(),
            };
            tokio::spawn(async move {
                orch.run(id).await;
            });
        }
    }
}
