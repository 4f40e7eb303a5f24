//! Metrics: counters and latency histograms, readable over LSP and as Prometheus text on loopback.
//!
//! [`Metrics`] is a small, dependency-free registry of counters (`u64`), gauges (`f64`) and
//! histograms (fixed latency buckets, [`LATENCY_BUCKETS`]), each series keyed by a metric name
//! and its label pairs (sorted by label name). Every exported name carries the [`PREFIX`]
//! `infinity_matrix_` (added unless the caller already wrote it). A name keeps the type of its
//! first use; a later use as another type is ignored with a warning.
//!
//! [`Metrics::snapshot`] feeds the `infinityMatrix/metrics` LSP request,
//! [`Metrics::render_prometheus`] the text exposition format 0.0.4, which [`serve_prometheus`]
//! serves at `GET /metrics` on a loopback address, to requests that name the loopback in
//! `Host` and, when `[metrics]` sets a token, carry it ([`endpoint_settings`] reads it).

mod http;
mod prometheus;

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use http::{
    Access, BearerToken, EndpointSettings, MAX_CONNECTIONS, READ_TIMEOUT, endpoint_settings,
    serve_prometheus, serve_prometheus_with,
};
// Checking the `[metrics]` settings is part of loading configuration, so it lives there.
pub use crate::config::metrics::{MetricsError, check_config, parse_loopback_addr};

/// Prefix of every exported metric name.
pub const PREFIX: &str = "infinity_matrix_";

/// Counter `{agent, state}`: tasks that reached a terminal state (succeeded, failed, cancelled).
pub const TASKS_TOTAL: &str = "tasks_total";
/// Gauge: tasks running now.
pub const TASKS_RUNNING: &str = "tasks_running";
/// Gauge: tasks waiting in the queue now.
pub const TASKS_QUEUED: &str = "tasks_queued";
/// Counter `{provider, outcome}`: provider calls; outcome is "ok" or the error class name.
pub const PROVIDER_REQUESTS_TOTAL: &str = "provider_requests_total";
/// Histogram `{provider}`: whole-call latency in seconds.
pub const PROVIDER_LATENCY_SECONDS: &str = "provider_latency_seconds";
/// Histogram `{provider}`: time to the first streamed token in seconds.
pub const PROVIDER_TTFT_SECONDS: &str = "provider_ttft_seconds";
/// Counter `{provider}`: retries on the same provider.
pub const PROVIDER_RETRIES_TOTAL: &str = "provider_retries_total";
/// Counter `{agent, from, to}`: failovers from one provider to the next.
pub const FAILOVERS_TOTAL: &str = "failovers_total";
/// Gauge `{provider}`: circuit breaker state ([`CIRCUIT_CLOSED`], [`CIRCUIT_HALF_OPEN`],
/// [`CIRCUIT_OPEN`]).
pub const CIRCUIT_STATE: &str = "circuit_state";
/// Counter `{provider, direction}`: tokens; direction is "prompt" or "completion".
pub const TOKENS_TOTAL: &str = "tokens_total";

/// `circuit_state` value of a closed breaker.
pub const CIRCUIT_CLOSED: f64 = 0.0;
/// `circuit_state` value of a half-open breaker.
pub const CIRCUIT_HALF_OPEN: f64 = 1.0;
/// `circuit_state` value of an open breaker.
pub const CIRCUIT_OPEN: f64 = 2.0;

/// Upper bounds (seconds) of the histogram buckets, from 0.5 ms to 60 s; `+Inf` is implied.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0, 60.0,
];

/// The help text of a well-known metric (name with or without the prefix).
pub fn help_for(name: &str) -> Option<&'static str> {
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    Some(match short {
        TASKS_TOTAL => "Tasks that reached a terminal state, by agent and state.",
        TASKS_RUNNING => "Tasks running now.",
        TASKS_QUEUED => "Tasks waiting in the queue now.",
        PROVIDER_REQUESTS_TOTAL => "Provider calls, by provider and outcome (ok or error class).",
        PROVIDER_LATENCY_SECONDS => "Provider call latency in seconds.",
        PROVIDER_TTFT_SECONDS => "Provider time to first token in seconds.",
        PROVIDER_RETRIES_TOTAL => "Retries on the same provider.",
        FAILOVERS_TOTAL => "Failovers from one provider to the next, by agent.",
        CIRCUIT_STATE => "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        TOKENS_TOTAL => "Tokens used, by provider and direction (prompt or completion).",
        _ => return None,
    })
}

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Sorted, de-duplicated label pairs.
pub(crate) type Labels = Vec<(String, String)>;

#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`], plus one for `+Inf`.
    pub(crate) counts: [u64; LATENCY_BUCKETS.len() + 1],
    pub(crate) sum: f64,
    pub(crate) count: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            counts: [0; LATENCY_BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        let idx = LATENCY_BUCKETS
            .iter()
            .position(|&le| v <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(slot) = self.counts.get_mut(idx) {
            *slot = slot.saturating_add(1);
        }
        self.sum += v;
        self.count = self.count.saturating_add(1);
    }

    /// Cumulative counts for the finite bounds.
    pub(crate) fn cumulative(&self) -> Vec<BucketSample> {
        let mut running = 0_u64;
        LATENCY_BUCKETS
            .iter()
            .zip(self.counts.iter())
            .map(|(&le, &n)| {
                running = running.saturating_add(n);
                BucketSample { le, count: running }
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Series {
    Counter(u64),
    Gauge(f64),
    Histogram(Box<Histogram>),
}

#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) kind: Kind,
    pub(crate) series: BTreeMap<Labels, Series>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// By full (prefixed) name.
    pub(crate) families: BTreeMap<String, Family>,
    /// Help text set with `describe`, by full name.
    pub(crate) help: BTreeMap<String, String>,
}

/// The metrics registry. Send + Sync; share it in an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

/// A point-in-time copy of every series (the `infinityMatrix/metrics` result).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub counters: Vec<CounterSample>,
    pub gauges: Vec<GaugeSample>,
    pub histograms: Vec<HistogramSample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub count: u64,
    /// Sum of the observed values (seconds).
    pub sum: f64,
    /// Cumulative: observations at or below each bound. The `+Inf` bucket is `count`.
    pub buckets: Vec<BucketSample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketSample {
    pub le: f64,
    pub count: u64,
}

/// The exported name: invalid characters replaced by `_`, the prefix added when missing.
pub fn full_name(name: &str) -> String {
    let clean = sanitize(name, true);
    if clean.starts_with(PREFIX) {
        clean
    } else {
        format!("{PREFIX}{clean}")
    }
}

/// Metric names allow `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names the same without `:`.
fn sanitize(name: &str, colons: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn make_labels(labels: &[(&str, &str)], kind: Kind) -> Labels {
    let mut out: Labels = labels
        .iter()
        .map(|(k, v)| {
            let mut key = sanitize(k, false);
            // `le` is the bucket label of a histogram series; keep a caller's label apart.
            if kind == Kind::Histogram && key == "le" {
                key.push('_');
            }
            (key, (*v).to_owned())
        })
        .collect();
    // Stable sort, then keep the last value given for a repeated label name.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut dedup: Labels = Vec::with_capacity(out.len());
    for pair in out {
        match dedup.last_mut() {
            Some(last) if last.0 == pair.0 => *last = pair,
            _ => dedup.push(pair),
        }
    }
    dedup
}

fn label_map(labels: &Labels) -> BTreeMap<String, String> {
    labels.iter().cloned().collect()
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Sets the `# HELP` text of a metric (well-known metrics have one already).
    pub fn describe(&self, name: &str, help: &str) {
        self.registry
            .lock()
            .help
            .insert(full_name(name), help.to_owned());
    }

    /// Adds 1 to a counter.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Adds `v` to a counter.
    pub fn add(&self, name: &str, labels: &[(&str, &str)], v: u64) {
        self.update(name, labels, Kind::Counter, |series| {
            if let Series::Counter(c) = series {
                *c = c.saturating_add(v);
            }
        });
    }

    /// Sets a gauge.
    pub fn set_gauge(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.update(name, labels, Kind::Gauge, |series| {
            if let Series::Gauge(g) = series {
                *g = v;
            }
        });
    }

    /// Records one observation (in seconds) in a histogram. Negative values count as 0; NaN and
    /// infinities are ignored.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], seconds: f64) {
        if !seconds.is_finite() {
            return;
        }
        let v = seconds.max(0.0);
        self.update(name, labels, Kind::Histogram, |series| {
            if let Series::Histogram(h) = series {
                h.observe(v);
            }
        });
    }

    fn update(&self, name: &str, labels: &[(&str, &str)], kind: Kind, f: impl FnOnce(&mut Series)) {
        let name = full_name(name);
        let labels = make_labels(labels, kind);
        let mut registry = self.registry.lock();
        let family = registry.families.entry(name).or_insert_with(|| Family {
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::warn!(
                existing = family.kind.as_str(),
                attempted = kind.as_str(),
                "metric used with two types; the update is ignored"
            );
            return;
        }
        let series = family.series.entry(labels).or_insert_with(|| match kind {
            Kind::Counter => Series::Counter(0),
            Kind::Gauge => Series::Gauge(0.0),
            Kind::Histogram => Series::Histogram(Box::new(Histogram::new())),
        });
        f(series);
    }

    fn series(&self, name: &str, labels: &[(&str, &str)], kind: Kind) -> Option<Series> {
        let registry = self.registry.lock();
        let family = registry.families.get(&full_name(name))?;
        family.series.get(&make_labels(labels, kind)).cloned()
    }

    /// A counter's value (0 when it was never incremented).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.series(name, labels, Kind::Counter) {
            Some(Series::Counter(v)) => v,
            _ => 0,
        }
    }

    /// A gauge's value, if it was ever set.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.series(name, labels, Kind::Gauge) {
            Some(Series::Gauge(v)) => Some(v),
            _ => None,
        }
    }

    /// A histogram series, if it has observations.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<HistogramSample> {
        let kind = Kind::Histogram;
        match self.series(name, labels, kind) {
            Some(Series::Histogram(h)) => Some(HistogramSample {
                name: full_name(name),
                labels: label_map(&make_labels(labels, kind)),
                count: h.count,
                sum: h.sum,
                buckets: h.cumulative(),
            }),
            _ => None,
        }
    }

    /// Every series, sorted by name then labels.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let registry = self.registry.lock();
        let mut snap = MetricsSnapshot::default();
        for (name, family) in &registry.families {
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(v) => snap.counters.push(CounterSample {
                        name: name.clone(),
                        labels: label_map(labels),
                        value: *v,
                    }),
                    Series::Gauge(v) => snap.gauges.push(GaugeSample {
                        name: name.clone(),
                        labels: label_map(labels),
                        value: *v,
                    }),
                    Series::Histogram(h) => snap.histograms.push(HistogramSample {
                        name: name.clone(),
                        labels: label_map(labels),
                        count: h.count,
                        sum: h.sum,
                        buckets: h.cumulative(),
                    }),
                }
            }
        }
        snap
    }

    /// The Prometheus text exposition format 0.0.4.
    pub fn render_prometheus(&self) -> String {
        let registry = self.registry.lock();
        prometheus::render(&registry)
    }
}
