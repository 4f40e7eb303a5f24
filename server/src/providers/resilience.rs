//! Retries (exponential backoff with full jitter, Retry-After honoured), per-provider circuit breakers, and `call_with_resilience` combining them around provider calls.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::secrets::redact;
use super::{ChatOutcome, ChatRequest, ChunkSink, ErrorClass, Provider, ProviderError, Usage};
use crate::config::types::ProviderConfig;
// Defaults of `[defaults]` keys, so defined with the configuration.
pub use crate::config::{DEFAULT_FAILOVER_AFTER_WAIT_MS, DEFAULT_MAX_REPLY_BYTES};

/// Attempts per call (including the first) when the configuration sets none.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// First backoff ceiling.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(250);
/// Largest backoff ceiling.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(8);
/// A Retry-After longer than this is cut to it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Consecutive failures that open a circuit when the configuration sets none.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
/// How long an open circuit stays open when the configuration sets none.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// A provider's Retry-After is remembered for at most this long.
pub const MAX_REMEMBERED_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How failed calls are retried on the same provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts including the first (at least 1).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; it doubles for each further retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    pub fn from_config(cfg: &ProviderConfig) -> Self {
        RetryPolicy {
            max_attempts: cfg.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1),
            ..Self::default()
        }
    }

    /// The backoff ceiling before retry number `retry` (1 = the first retry):
    /// `min(max_delay, base_delay * 2^(retry-1))`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Full jitter: a uniformly random delay between zero and the backoff ceiling.
    pub fn backoff_delay(&self, retry: u32) -> Duration {
        let ceiling = u64::try_from(self.backoff_ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }

    /// The delay before retry number `retry` after a failure of `class`: the server's
    /// Retry-After when it gave one (at most [`MAX_RETRY_AFTER`]), else the jittered backoff.
    pub fn delay_for(&self, retry: u32, class: &ErrorClass) -> Duration {
        self.requested_delay(retry, class).min(MAX_RETRY_AFTER)
    }

    /// Like [`RetryPolicy::delay_for`] but with the server's Retry-After uncut: how long the
    /// server asked callers to stay away.
    pub fn requested_delay(&self, retry: u32, class: &ErrorClass) -> Duration {
        match class {
            ErrorClass::RateLimited {
                retry_after_ms: Some(ms),
            } => Duration::from_millis(*ms),
            _ => self.backoff_delay(retry),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Remembered Retry-After.

/// Until when a provider asked callers to stay away (its last Retry-After), so that later calls
/// can go to another provider instead of being rejected again.
#[derive(Debug, Default)]
pub struct RetryAfterMemory {
    until: Mutex<Option<Instant>>,
}

impl RetryAfterMemory {
    /// Remembers a Retry-After of `wait` from now (at most [`MAX_REMEMBERED_RETRY_AFTER`]); a
    /// later time already remembered is kept.
    pub fn remember(&self, wait: Duration) {
        self.remember_at(Instant::now(), wait);
    }

    pub fn remember_at(&self, now: Instant, wait: Duration) {
        let until = now
            .checked_add(wait.min(MAX_REMEMBERED_RETRY_AFTER))
            .unwrap_or(now);
        let mut slot = self.until.lock();
        if slot.is_none_or(|old| old < until) {
            *slot = Some(until);
        }
    }

    /// Time left before the provider wants to be called again (`None`: call it).
    pub fn remaining(&self) -> Option<Duration> {
        self.remaining_at(Instant::now())
    }

    pub fn remaining_at(&self, now: Instant) -> Option<Duration> {
        let mut slot = self.until.lock();
        match *slot {
            Some(until) if until > now => Some(until.duration_since(now)),
            Some(_) => {
                *slot = None;
                None
            }
            None => None,
        }
    }

    /// Forgets the Retry-After (the provider answered).
    pub fn clear(&self) {
        *self.until.lock() = None;
    }
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker.

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls are rejected without a request until the cool-down has passed.
    Open,
    /// The cool-down has passed: exactly one probe call may go through.
    HalfOpen,
}

/// A breaker's state for status displays and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CircuitSnapshot {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    /// While open: time left before a probe is allowed.
    pub retry_in_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct BreakerInner {
    phase: Phase,
    consecutive_failures: u32,
    last: LastCall,
}

/// What the last call that reached the provider (or failed to) said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LastCall {
    Never,
    Answered,
    Failed { unreachable: bool, reason: String },
}

/// What is known of a provider, for status displays: never contacted, its last call answered,
/// could not connect, failed otherwise, or its circuit is open / probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderHealth {
    Unknown,
    Healthy,
    Unreachable,
    Failing,
    CircuitOpen,
    HalfOpen,
}

/// Failures that say the provider could not be reached at all.
fn is_unreachable(class: &ErrorClass) -> bool {
    matches!(class, ErrorClass::Connect | ErrorClass::ConnectTimeout)
}

/// Failures that say nothing about the provider (ours, the caller's, or no call made).
fn says_nothing(class: &ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Cancelled
            | ErrorClass::CircuitOpen
            | ErrorClass::Config
            | ErrorClass::Internal
            | ErrorClass::ReplyTooLarge { .. }
    )
}

/// Whether a failure counts toward opening a circuit: retryable failures and Auth do; the
/// request's own faults (BadRequest, EmptyReply, Protocol, Config) and cancellation do not.
pub fn counts_as_failure(class: &ErrorClass) -> bool {
    class.is_retryable() || matches!(class, ErrorClass::Auth { .. })
}

/// A per-provider circuit breaker: opens after `threshold` consecutive failures, stays open for
/// `cooldown`, then lets exactly one probe through; the probe's success closes it, its failure
/// opens it again. Methods ending in `_at` take the current time, so tests need no sleeping.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<BreakerInner>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(DEFAULT_FAILURE_THRESHOLD, DEFAULT_COOLDOWN)
    }
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        CircuitBreaker {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(BreakerInner {
                phase: Phase::Closed,
                consecutive_failures: 0,
                last: LastCall::Never,
            }),
        }
    }

    pub fn from_config(cfg: &ProviderConfig) -> Self {
        CircuitBreaker::new(
            cfg.circuit_failure_threshold
                .unwrap_or(DEFAULT_FAILURE_THRESHOLD),
            cfg.circuit_cooldown_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_COOLDOWN),
        )
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    pub fn state(&self) -> CircuitState {
        self.state_at(Instant::now())
    }

    /// The state at `now` (an open circuit whose cool-down has passed reports `HalfOpen`).
    pub fn state_at(&self, now: Instant) -> CircuitState {
        match self.inner.lock().phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { until } if now >= until => CircuitState::HalfOpen,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.inner.lock().consecutive_failures
    }

    /// Records the verdict of a connection test (`doctor`'s checks) as the last call's,
    /// without touching the circuit.
    pub fn record_check(&self, answered: bool, unreachable: bool, reason: &str) {
        self.inner.lock().last = if answered {
            LastCall::Answered
        } else {
            LastCall::Failed {
                unreachable,
                reason: reason.to_string(),
            }
        };
    }

    /// The provider's health and the reason of its last failure (when it failed).
    pub fn health(&self) -> (ProviderHealth, Option<String>) {
        let state = self.state();
        let inner = self.inner.lock();
        let reason = match &inner.last {
            LastCall::Failed { reason, .. } => Some(reason.clone()),
            _ => None,
        };
        let health = match (state, &inner.last) {
            (CircuitState::Open, _) => ProviderHealth::CircuitOpen,
            (CircuitState::HalfOpen, _) => ProviderHealth::HalfOpen,
            (_, LastCall::Never) => ProviderHealth::Unknown,
            (_, LastCall::Answered) => ProviderHealth::Healthy,
            (
                _,
                LastCall::Failed {
                    unreachable: true, ..
                },
            ) => ProviderHealth::Unreachable,
            (_, LastCall::Failed { .. }) => ProviderHealth::Failing,
        };
        (health, reason)
    }

    pub fn snapshot(&self) -> CircuitSnapshot {
        self.snapshot_at(Instant::now())
    }

    pub fn snapshot_at(&self, now: Instant) -> CircuitSnapshot {
        let state = self.state_at(now);
        let inner = self.inner.lock();
        let retry_in_ms = match inner.phase {
            Phase::Open { until } if until > now => {
                Some(u64::try_from(until.duration_since(now).as_millis()).unwrap_or(u64::MAX))
            }
            _ => None,
        };
        CircuitSnapshot {
            state,
            consecutive_failures: inner.consecutive_failures,
            retry_in_ms,
        }
    }

    /// Asks to make a call now. `Err` holds the time left before a probe is allowed (zero when
    /// a probe is already in flight).
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, Duration> {
        self.try_acquire_at(Instant::now())
    }

    pub fn try_acquire_at(&self, now: Instant) -> Result<BreakerPermit<'_>, Duration> {
        let mut inner = self.inner.lock();
        match inner.phase {
            Phase::Closed => Ok(BreakerPermit {
                breaker: self,
                probe: false,
                settled: false,
            }),
            Phase::Open { until } if now < until => Err(until.duration_since(now)),
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                inner.phase = Phase::HalfOpen { probing: true };
                Ok(BreakerPermit {
                    breaker: self,
                    probe: true,
                    settled: false,
                })
            }
            Phase::HalfOpen { probing: true } => Err(Duration::ZERO),
        }
    }

    /// Closes the circuit.
    pub fn reset(&self) {
        let mut inner = self.inner.lock();
        inner.phase = Phase::Closed;
        inner.consecutive_failures = 0;
    }

    fn open_until(&self, now: Instant) -> Instant {
        const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
        now.checked_add(self.cooldown.min(FAR)).unwrap_or(now)
    }

    fn on_success(&self) {
        self.reset();
        self.inner.lock().last = LastCall::Answered;
    }

    fn on_failure(&self, class: &ErrorClass, reason: &str, probe: bool, now: Instant) {
        let mut inner = self.inner.lock();
        if !says_nothing(class) {
            inner.last = LastCall::Failed {
                unreachable: is_unreachable(class),
                reason: reason.to_string(),
            };
        }
        if !counts_as_failure(class) {
            if probe && inner.phase == (Phase::HalfOpen { probing: true }) {
                // Not a verdict on the provider: let another probe decide.
                inner.phase = Phase::HalfOpen { probing: false };
            }
            return;
        }
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        match inner.phase {
            Phase::HalfOpen { .. } => {
                inner.phase = Phase::Open {
                    until: self.open_until(now),
                }
            }
            Phase::Closed if inner.consecutive_failures >= self.threshold => {
                inner.phase = Phase::Open {
                    until: self.open_until(now),
                };
            }
            _ => {}
        }
    }

    fn on_abandoned(&self, probe: bool) {
        let mut inner = self.inner.lock();
        if probe && inner.phase == (Phase::HalfOpen { probing: true }) {
            inner.phase = Phase::HalfOpen { probing: false };
        }
    }
}

/// Permission to make one call. Report its result with [`BreakerPermit::success`] or
/// [`BreakerPermit::failure`]; dropping it unreported (the call was abandoned) frees a
/// half-open probe slot without a verdict.
#[derive(Debug)]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl BreakerPermit<'_> {
    /// This call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn success(mut self) {
        self.settled = true;
        self.breaker.on_success();
    }

    pub fn failure(self, class: &ErrorClass) {
        self.failure_at(class, Instant::now());
    }

    /// A failure with the reason status displays show (already free of secrets).
    pub fn failure_because(mut self, class: &ErrorClass, reason: &str) {
        self.settled = true;
        self.breaker
            .on_failure(class, reason, self.probe, Instant::now());
    }

    pub fn failure_at(mut self, class: &ErrorClass, now: Instant) {
        self.settled = true;
        self.breaker
            .on_failure(class, &format!("{class:?}"), self.probe, now);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.on_abandoned(self.probe);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Resilient calls.

/// What one attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    /// 1-based.
    pub attempt: u32,
    pub provider: String,
    pub model: String,
    /// From the start of the attempt to its end.
    pub latency: Duration,
    /// From the start of the attempt to the first text chunk (also for failed attempts).
    pub time_to_first_token: Option<Duration>,
    pub usage: Usage,
    /// The failure (its message is redacted).
    pub error: Option<ProviderError>,
    /// Set when another attempt follows after this delay.
    pub retry_delay: Option<Duration>,
}

/// Progress of [`call_with_resilience`].
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one event per attempt, handed to a callback by value: its size does not matter"
)]
pub enum AttemptEvent {
    /// An attempt starts: text streamed by an earlier, failed attempt should be discarded.
    Started {
        attempt: u32,
    },
    Finished(AttemptReport),
}

fn circuit_open_error(
    provider: &dyn Provider,
    breaker: &CircuitBreaker,
    wait: Duration,
) -> ProviderError {
    let when = if wait.is_zero() {
        "a probe call is in flight".to_string()
    } else {
        format!("next probe in {} ms", wait.as_millis())
    };
    ProviderError {
        provider: provider.name().to_string(),
        class: ErrorClass::CircuitOpen,
        message: redact(&format!(
            "circuit open after {} consecutive failures; {when}; no request was sent",
            breaker.consecutive_failures()
        )),
        partial_text: String::new(),
    }
}

/// Limits of one resilient call beyond its retry policy.
#[derive(Clone, Copy, Default)]
pub struct CallOptions<'a> {
    /// Stop a reply whose text grows past this many bytes: the attempt fails with
    /// `ReplyTooLarge` (not retried) and nothing past the cap reaches `on_chunk`.
    pub max_reply_bytes: Option<usize>,
    /// A retry wait (Retry-After or backoff) longer than this is not waited out when
    /// `can_fail_over` says another provider could take the call: the call fails at once.
    pub max_retry_wait: Option<Duration>,
    /// Whether the caller has another provider to fail over to (asked when a retry would wait
    /// longer than `max_retry_wait`).
    pub can_fail_over: Option<&'a (dyn Fn() -> bool + Send + Sync)>,
}

impl std::fmt::Debug for CallOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("max_reply_bytes", &self.max_reply_bytes)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("can_fail_over", &self.can_fail_over.is_some())
            .finish()
    }
}

impl CallOptions<'_> {
    /// The defaults every call gets unless told otherwise: the reply cap of
    /// [`DEFAULT_MAX_REPLY_BYTES`], no failover bound.
    pub fn standard() -> CallOptions<'static> {
        CallOptions {
            max_reply_bytes: Some(DEFAULT_MAX_REPLY_BYTES),
            max_retry_wait: None,
            can_fail_over: None,
        }
    }
}

/// `n` bytes in words: "1 MiB", "64 KiB", "1500 bytes".
pub fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

fn reply_too_large_error(provider: &dyn Provider, limit: usize) -> ProviderError {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    ProviderError {
        provider: provider.name().to_string(),
        class: ErrorClass::ReplyTooLarge { limit_bytes: limit },
        message: format!(
            "the reply grew past the cap of {} ({limit} bytes) of text; the stream was stopped",
            human_bytes(limit)
        ),
        partial_text: String::new(),
    }
}

/// Calls `provider` with the breaker and retry policy and the standard options
/// ([`CallOptions::standard`]); see [`call_with_options`].
pub async fn call_with_resilience(
    provider: &dyn Provider,
    breaker: &CircuitBreaker,
    policy: &RetryPolicy,
    request: &ChatRequest,
    on_chunk: ChunkSink<'_>,
    cancel: CancellationToken,
    on_attempt: &(dyn Fn(AttemptEvent) + Send + Sync),
) -> Result<ChatOutcome, ProviderError> {
    call_with_options(
        provider,
        breaker,
        policy,
        request,
        on_chunk,
        cancel,
        on_attempt,
        CallOptions::standard(),
    )
    .await
}

/// Calls `provider` with the breaker and retry policy: an open circuit fails at once with
/// `CircuitOpen`; retryable failures are retried after the backoff (or the server's
/// Retry-After), the wait being cancellable — unless the wait is longer than
/// `options.max_retry_wait` and the caller can fail over, then the failure is returned at once;
/// a reply past `options.max_reply_bytes` is stopped (`ReplyTooLarge`); `on_attempt` hears each
/// attempt start and finish.
#[allow(
    clippy::too_many_arguments,
    reason = "the call's parts, each borrowed for the call; a struct would only rename them"
)]
pub async fn call_with_options(
    provider: &dyn Provider,
    breaker: &CircuitBreaker,
    policy: &RetryPolicy,
    request: &ChatRequest,
    on_chunk: ChunkSink<'_>,
    cancel: CancellationToken,
    on_attempt: &(dyn Fn(AttemptEvent) + Send + Sync),
    options: CallOptions<'_>,
) -> Result<ChatOutcome, ProviderError> {
    let model = if request.model.trim().is_empty() {
        provider.model().to_string()
    } else {
        request.model.trim().to_string()
    };
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let permit = match breaker.try_acquire() {
            Ok(permit) => permit,
            Err(wait) => return Err(circuit_open_error(provider, breaker, wait)),
        };
        on_attempt(AttemptEvent::Started { attempt });
        let started = Instant::now();
        let first_chunk: Mutex<Option<Duration>> = Mutex::new(None);
        // The attempt's own token: the reply cap stops the stream through it.
        let call_cancel = cancel.child_token();
        let received = AtomicUsize::new(0);
        let too_large = AtomicBool::new(false);
        let sink = |chunk: &str| {
            first_chunk.lock().get_or_insert_with(|| started.elapsed());
            if let Some(max) = options.max_reply_bytes {
                let total = received
                    .fetch_add(chunk.len(), Ordering::Relaxed)
                    .saturating_add(chunk.len());
                if total > max || too_large.load(Ordering::Relaxed) {
                    if !too_large.swap(true, Ordering::Relaxed) {
                        call_cancel.cancel();
                    }
                    return;
                }
            }
            on_chunk(chunk);
        };
        let result = provider.chat(request, &sink, call_cancel.clone()).await;
        let result = match (result, options.max_reply_bytes) {
            // Whatever the provider made of the stopped stream, the reply was cut: it failed.
            (_, Some(max)) if too_large.load(Ordering::Relaxed) => {
                Err(reply_too_large_error(provider, max))
            }
            (result, _) => result,
        };
        let latency = started.elapsed();
        let observed_ttft = *first_chunk.lock();
        match result {
            Ok(outcome) => {
                permit.success();
                on_attempt(AttemptEvent::Finished(AttemptReport {
                    attempt,
                    provider: provider.name().to_string(),
                    model: model.clone(),
                    latency,
                    time_to_first_token: outcome.time_to_first_token.or(observed_ttft),
                    usage: outcome.usage,
                    error: None,
                    retry_delay: None,
                }));
                return Ok(outcome);
            }
            Err(mut err) => {
                permit.failure_because(&err.class, &redact(&err.message));
                let mut retry_delay = None;
                if err.class.is_retryable() && attempt < max_attempts && !cancel.is_cancelled() {
                    let requested = policy.requested_delay(attempt, &err.class);
                    let fail_over = options.max_retry_wait.is_some_and(|max| requested > max)
                        && options.can_fail_over.is_some_and(|can| can());
                    if fail_over {
                        err.message = redact(&format!(
                            "{}; not waiting {} to retry (longer than {} ms): failing over",
                            err.message,
                            human_duration(requested),
                            options.max_retry_wait.unwrap_or_default().as_millis()
                        ));
                    } else {
                        retry_delay = Some(requested.min(MAX_RETRY_AFTER));
                    }
                }
                tracing::warn!(
                    provider = %provider.name(),
                    attempt,
                    class = err.class.name(),
                    retry_in_ms = retry_delay.map(|d| d.as_millis() as u64),
                    "provider call failed: {}",
                    redact(&err.message)
                );
                on_attempt(AttemptEvent::Finished(AttemptReport {
                    attempt,
                    provider: provider.name().to_string(),
                    model: model.clone(),
                    latency,
                    time_to_first_token: observed_ttft,
                    usage: Usage::default(),
                    error: Some(err.clone()),
                    retry_delay,
                }));
                let Some(delay) = retry_delay else {
                    return Err(err);
                };
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => {
                        return Err(ProviderError {
                            provider: provider.name().to_string(),
                            class: ErrorClass::Cancelled,
                            message: redact(&format!(
                                "cancelled while waiting to retry after: {}",
                                err.message
                            )),
                            partial_text: String::new(),
                        });
                    }
                    () = tokio::time::sleep(delay) => {}
                }
                if breaker.state() == CircuitState::Open {
                    err.message =
                        redact(&format!("{}; circuit now open, not retrying", err.message));
                    return Err(err);
                }
            }
        }
    }
}

/// A wait in words: "3600 s", "1.5 s", "250 ms".
fn human_duration(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{} s", d.as_secs())
    } else if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}
