//! Tests of the metrics registry, the Prometheus exposition format, the loopback HTTP endpoint
//! (Host check against DNS rebinding, bearer token, idle connections), and the `[metrics]`
//! configuration over the real binary's stdio (a bad setting only turns metrics off).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::support;

use infinity_matrix::config::{self, ConfigSources, MetricsConfig};
use infinity_matrix::metrics::{
    self, Access, BearerToken, LATENCY_BUCKETS, MAX_CONNECTIONS, Metrics, MetricsError,
    parse_loopback_addr, serve_prometheus, serve_prometheus_with,
};
use serde_json::{Value, json};
use support::{LspClient, file_uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[test]
fn metrics_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Metrics>();
}

#[test]
fn counters_add_up_per_label_set() {
    let m = Metrics::new();
    m.inc(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("provider", "local"), ("outcome", "ok")],
    );
    m.inc(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("outcome", "ok"), ("provider", "local")],
    );
    m.add(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("provider", "local"), ("outcome", "ok")],
        5,
    );
    m.inc(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("provider", "local"), ("outcome", "timeout")],
    );
    // The prefixed name is the same metric.
    m.inc(
        "infinity_matrix_provider_requests_total",
        &[("provider", "local"), ("outcome", "ok")],
    );
    let ok = [("provider", "local"), ("outcome", "ok")];
    assert_eq!(m.counter(metrics::PROVIDER_REQUESTS_TOTAL, &ok), 8);
    assert_eq!(
        m.counter(
            metrics::PROVIDER_REQUESTS_TOTAL,
            &[("outcome", "timeout"), ("provider", "local")]
        ),
        1
    );
    assert_eq!(
        m.counter(metrics::PROVIDER_REQUESTS_TOTAL, &[("provider", "other")]),
        0
    );
    m.add(
        metrics::TOKENS_TOTAL,
        &[("provider", "local"), ("direction", "prompt")],
        u64::MAX,
    );
    m.add(
        metrics::TOKENS_TOTAL,
        &[("provider", "local"), ("direction", "prompt")],
        10,
    );
    assert_eq!(
        m.counter(
            metrics::TOKENS_TOTAL,
            &[("provider", "local"), ("direction", "prompt")]
        ),
        u64::MAX,
        "counters saturate"
    );
}

#[test]
fn gauges_hold_the_last_value() {
    let m = Metrics::new();
    assert_eq!(m.gauge(metrics::TASKS_RUNNING, &[]), None);
    m.set_gauge(metrics::TASKS_RUNNING, &[], 3.0);
    m.set_gauge(metrics::TASKS_RUNNING, &[], 1.0);
    m.set_gauge(
        metrics::CIRCUIT_STATE,
        &[("provider", "claude")],
        metrics::CIRCUIT_OPEN,
    );
    assert_eq!(m.gauge(metrics::TASKS_RUNNING, &[]), Some(1.0));
    assert_eq!(
        m.gauge(metrics::CIRCUIT_STATE, &[("provider", "claude")]),
        Some(2.0)
    );
}

#[test]
fn histograms_bucket_sum_and_count() {
    let m = Metrics::new();
    let labels = [("provider", "local")];
    for v in [0.0003, 0.0005, 0.7, 100.0, -1.0] {
        m.observe(metrics::PROVIDER_LATENCY_SECONDS, &labels, v);
    }
    m.observe(metrics::PROVIDER_LATENCY_SECONDS, &labels, f64::NAN);
    m.observe(metrics::PROVIDER_LATENCY_SECONDS, &labels, f64::INFINITY);
    let h = m
        .histogram(metrics::PROVIDER_LATENCY_SECONDS, &labels)
        .unwrap();
    assert_eq!(h.name, "infinity_matrix_provider_latency_seconds");
    assert_eq!(h.count, 5, "NaN and infinities are ignored");
    assert!((h.sum - (0.0003 + 0.0005 + 0.7 + 100.0)).abs() < 1e-9);
    assert_eq!(h.buckets.len(), LATENCY_BUCKETS.len());
    let at = |le: f64| h.buckets.iter().find(|b| b.le == le).unwrap().count;
    assert_eq!(at(0.0005), 3, "0, 0.0003 and 0.0005 (bounds are inclusive)");
    assert_eq!(at(0.001), 3);
    assert_eq!(at(0.5), 3);
    assert_eq!(at(1.0), 4);
    assert_eq!(at(60.0), 4, "100 s only lands in +Inf");
    assert!(
        h.buckets
            .windows(2)
            .all(|w| w[0].count <= w[1].count && w[0].le < w[1].le)
    );
    assert_eq!(LATENCY_BUCKETS.first(), Some(&0.0005));
    assert_eq!(LATENCY_BUCKETS.last(), Some(&60.0));
    assert!(
        m.histogram(metrics::PROVIDER_TTFT_SECONDS, &labels)
            .is_none()
    );
}

#[test]
fn a_name_keeps_its_first_type() {
    let m = Metrics::new();
    m.inc("mixed", &[]);
    m.set_gauge("mixed", &[], 5.0);
    m.observe("mixed", &[], 1.0);
    let snap = m.snapshot();
    assert_eq!(snap.counters.len(), 1);
    assert!(snap.gauges.is_empty());
    assert!(snap.histograms.is_empty());
}

#[test]
fn snapshot_lists_everything_with_prefixed_names() {
    let m = Metrics::new();
    m.inc(
        metrics::TASKS_TOTAL,
        &[("agent", "explain"), ("state", "succeeded")],
    );
    m.set_gauge(metrics::TASKS_QUEUED, &[], 2.0);
    m.observe(
        metrics::PROVIDER_TTFT_SECONDS,
        &[("provider", "local")],
        0.2,
    );
    let snap = m.snapshot();
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(json["counters"][0]["name"], "infinity_matrix_tasks_total");
    assert_eq!(json["counters"][0]["labels"]["agent"], "explain");
    assert_eq!(json["counters"][0]["value"], 1);
    assert_eq!(json["gauges"][0]["name"], "infinity_matrix_tasks_queued");
    assert_eq!(json["gauges"][0]["value"], 2.0);
    let hist = &json["histograms"][0];
    assert_eq!(hist["name"], "infinity_matrix_provider_ttft_seconds");
    assert_eq!(hist["count"], 1);
    assert_eq!(hist["sum"], 0.2);
    assert_eq!(hist["buckets"][0]["le"], 0.0005);
    assert_eq!(hist["buckets"][0]["count"], 0);
    assert_eq!(hist["buckets"][8]["le"], 0.25);
    assert_eq!(hist["buckets"][8]["count"], 1);
    let back: metrics::MetricsSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back, snap);
}

#[test]
fn exposition_format_line_by_line() {
    let m = Metrics::new();
    m.add(
        metrics::TASKS_TOTAL,
        &[("state", "failed"), ("agent", "fix")],
        2,
    );
    m.inc(
        metrics::TASKS_TOTAL,
        &[("agent", "explain"), ("state", "succeeded")],
    );
    m.set_gauge(metrics::TASKS_RUNNING, &[], 1.5);
    m.observe(
        metrics::PROVIDER_LATENCY_SECONDS,
        &[("provider", "local")],
        0.3,
    );
    m.observe(
        metrics::PROVIDER_LATENCY_SECONDS,
        &[("provider", "local")],
        2.0,
    );
    let text = m.render_prometheus();
    let expected = [
        "# HELP infinity_matrix_provider_latency_seconds Provider call latency in seconds.",
        "# TYPE infinity_matrix_provider_latency_seconds histogram",
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.0005"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.001"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.0025"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.005"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.01"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.025"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.05"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.1"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.25"} 0"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="0.5"} 1"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="1"} 1"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="2.5"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="5"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="10"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="20"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="30"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="60"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_bucket{provider="local",le="+Inf"} 2"#,
        r#"infinity_matrix_provider_latency_seconds_sum{provider="local"} 2.3"#,
        r#"infinity_matrix_provider_latency_seconds_count{provider="local"} 2"#,
        "# HELP infinity_matrix_tasks_running Tasks running now.",
        "# TYPE infinity_matrix_tasks_running gauge",
        "infinity_matrix_tasks_running 1.5",
        "# HELP infinity_matrix_tasks_total Tasks that reached a terminal state, by agent and state.",
        "# TYPE infinity_matrix_tasks_total counter",
        r#"infinity_matrix_tasks_total{agent="explain",state="succeeded"} 1"#,
        r#"infinity_matrix_tasks_total{agent="fix",state="failed"} 2"#,
    ];
    let lines: Vec<&str> = text.lines().collect();
    for (i, (got, want)) in lines.iter().zip(expected.iter()).enumerate() {
        assert_eq!(got, want, "line {}", i + 1);
    }
    assert_eq!(lines.len(), expected.len(), "{text}");
    assert!(text.ends_with('\n'));
    validate_exposition(&text);
}

#[test]
fn label_values_and_help_are_escaped() {
    let m = Metrics::new();
    m.describe("custom_total", "Line one\nback\\slash");
    m.inc("custom_total", &[("path", "a\\b\"c\nd"), ("bad-name", "x")]);
    let text = m.render_prometheus();
    assert!(
        text.contains("# HELP infinity_matrix_custom_total Line one\\nback\\\\slash\n"),
        "{text}"
    );
    assert!(
        text.contains(r#"infinity_matrix_custom_total{bad_name="x",path="a\\b\"c\nd"} 1"#),
        "{text}"
    );
    validate_exposition(&text);
    let parsed = parse_samples(&text);
    assert_eq!(parsed[0].labels["path"], "a\\b\"c\nd");
}

#[test]
fn every_well_known_metric_renders_validly() {
    let m = Metrics::new();
    m.inc(
        metrics::TASKS_TOTAL,
        &[("agent", "a"), ("state", "cancelled")],
    );
    m.set_gauge(metrics::TASKS_RUNNING, &[], 0.0);
    m.set_gauge(metrics::TASKS_QUEUED, &[], 0.0);
    m.inc(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("provider", "p"), ("outcome", "ok")],
    );
    m.observe(
        metrics::PROVIDER_LATENCY_SECONDS,
        &[("provider", "p")],
        0.01,
    );
    m.observe(metrics::PROVIDER_TTFT_SECONDS, &[("provider", "p")], 0.001);
    m.inc(metrics::PROVIDER_RETRIES_TOTAL, &[("provider", "p")]);
    m.inc(
        metrics::FAILOVERS_TOTAL,
        &[("agent", "a"), ("from", "p"), ("to", "q")],
    );
    m.set_gauge(
        metrics::CIRCUIT_STATE,
        &[("provider", "p")],
        metrics::CIRCUIT_HALF_OPEN,
    );
    m.add(
        metrics::TOKENS_TOTAL,
        &[("provider", "p"), ("direction", "completion")],
        42,
    );
    m.set_gauge("weird", &[], f64::NAN);
    m.observe("with_le", &[("le", "x")], 1.0);
    let text = m.render_prometheus();
    validate_exposition(&text);
    for name in [
        metrics::TASKS_TOTAL,
        metrics::TASKS_RUNNING,
        metrics::TASKS_QUEUED,
        metrics::PROVIDER_REQUESTS_TOTAL,
        metrics::PROVIDER_LATENCY_SECONDS,
        metrics::PROVIDER_TTFT_SECONDS,
        metrics::PROVIDER_RETRIES_TOTAL,
        metrics::FAILOVERS_TOTAL,
        metrics::CIRCUIT_STATE,
        metrics::TOKENS_TOTAL,
    ] {
        assert!(metrics::help_for(name).is_some(), "{name}");
        assert!(
            text.contains(&format!("# TYPE infinity_matrix_{name} ")),
            "{name}"
        );
    }
    assert!(text.contains("infinity_matrix_weird NaN\n"));
    assert!(
        text.contains(r#"infinity_matrix_with_le_bucket{le_="x",le="+Inf"} 1"#),
        "{text}"
    );
}

struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
}

/// A strict parser of the sample lines of the text format.
fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name = &line[..name_end];
        assert!(valid_name(name, true), "bad metric name in {line}");
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end;
            loop {
                let (start, _) = *chars.peek().unwrap();
                let eq = body[start..].find('=').unwrap() + start;
                let key = &body[start..eq];
                assert!(valid_name(key, false), "bad label name {key:?} in {line}");
                while chars.peek().unwrap().0 <= eq {
                    chars.next();
                }
                assert_eq!(chars.next().unwrap().1, '"', "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().unwrap().1 {
                        '\\' => match chars.next().unwrap().1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            other => panic!("bad escape \\{other} in {line}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline in {line}"),
                        c => value.push(c),
                    }
                }
                assert!(
                    labels.insert(key.to_owned(), value).is_none(),
                    "duplicate label in {line}"
                );
                match chars.next().unwrap() {
                    (_, ',') => continue,
                    (i, '}') => {
                        end = i;
                        break;
                    }
                    (_, c) => panic!("unexpected {c:?} in {line}"),
                }
            }
            rest = &body[end + 1..];
        }
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before value: {line}"));
        assert!(
            matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok(),
            "bad value {value:?} in {line}"
        );
        out.push(Sample {
            name: name.to_owned(),
            labels,
        });
    }
    out
}

fn valid_name(name: &str, colons: bool) -> bool {
    let mut chars = name.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(ok_first)
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

/// Checks the structure: HELP then TYPE once per family before its samples, families not
/// interleaved, histogram buckets cumulative and ending in +Inf equal to _count.
fn validate_exposition(text: &str) {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut pending_help: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_owned();
            assert!(!typed.contains_key(&name), "second HELP for {name}");
            pending_help = Some(name);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_owned();
            let kind = parts.next().unwrap().to_owned();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind.as_str())
            );
            assert_eq!(
                pending_help.take().as_ref(),
                Some(&name),
                "TYPE without HELP: {line}"
            );
            if let Some(prev) = current.replace(name.clone()) {
                finished.insert(prev);
            }
            assert!(!finished.contains(&name));
            typed.insert(name, kind);
        } else {
            assert!(!line.starts_with('#'), "unknown comment {line}");
            assert!(!line.is_empty(), "empty line");
        }
    }
    let samples = parse_samples(text);
    let mut last_bucket: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut inf_counts: BTreeMap<String, String> = BTreeMap::new();
    for (sample, line) in samples
        .iter()
        .zip(text.lines().filter(|l| !l.starts_with('#')))
    {
        let family = typed
            .keys()
            .find(|f| {
                sample.name == **f
                    || (typed[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| sample.name == format!("{f}{s}")))
            })
            .unwrap_or_else(|| panic!("sample without TYPE: {line}"));
        if sample.name.ends_with("_bucket") && typed[family] == "histogram" {
            let le = &sample.labels["le"];
            let le_v: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            let mut others = sample.labels.clone();
            others.remove("le");
            let key = format!("{family}{others:?}");
            if let Some((prev_le, prev_v)) = last_bucket.get(&key) {
                assert!(
                    le_v > *prev_le && value >= *prev_v,
                    "buckets not cumulative at {line}"
                );
            }
            last_bucket.insert(key.clone(), (le_v, value));
            if le == "+Inf" {
                inf_counts.insert(key, line.rsplit(' ').next().unwrap().to_owned());
            }
        }
        if sample.name.ends_with("_count") && typed[family] == "histogram" {
            let key = format!("{family}{:?}", sample.labels);
            assert_eq!(
                inf_counts.get(&key).map(String::as_str),
                line.rsplit(' ').next(),
                "+Inf bucket differs from _count at {line}"
            );
        }
    }
}

/// Sends `request` raw and returns the whole response.
async fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn split_response(response: &str) -> (&str, Vec<&str>, &str) {
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    (status, lines.collect(), body)
}

#[tokio::test]
async fn http_endpoint_serves_metrics_on_loopback() {
    let m = Arc::new(Metrics::new());
    m.inc(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("provider", "local"), ("outcome", "ok")],
    );
    m.observe(
        metrics::PROVIDER_LATENCY_SECONDS,
        &[("provider", "local")],
        0.2,
    );
    let shutdown = CancellationToken::new();
    let addr = serve_prometheus(Arc::clone(&m), "127.0.0.1:0", shutdown.clone())
        .await
        .unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);

    let response = http(addr, b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let (status, headers, body) = split_response(&response);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&"Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers:?}"
    );
    assert!(headers.contains(&format!("Content-Length: {}", body.len()).as_str()));
    assert!(body.contains(
        "infinity_matrix_provider_requests_total{outcome=\"ok\",provider=\"local\"} 1\n"
    ));
    assert!(
        body.contains("infinity_matrix_provider_latency_seconds_count{provider=\"local\"} 1\n")
    );
    validate_exposition(body);

    // Counters move between scrapes; a query string is ignored.
    m.inc(
        metrics::PROVIDER_REQUESTS_TOTAL,
        &[("provider", "local"), ("outcome", "ok")],
    );
    let response = http(
        addr,
        b"GET /metrics?x=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert!(response.contains("{outcome=\"ok\",provider=\"local\"} 2\n"));

    let response = http(addr, b"GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(split_response(&response).0, "HTTP/1.1 404 Not Found");

    let response = http(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let (status, headers, _) = split_response(&response);
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(headers.contains(&"Allow: GET, HEAD"));

    let response = http(addr, b"HEAD /metrics HTTP/1.1\r\nHost: [::1]\r\n\r\n").await;
    let (status, headers, body) = split_response(&response);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("Content-Length: ") && *h != "Content-Length: 0")
    );
    assert!(body.is_empty());

    let response = http(addr, b"garbage\r\n\r\n").await;
    assert_eq!(split_response(&response).0, "HTTP/1.1 400 Bad Request");

    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    let response = http(addr, &huge).await;
    assert_eq!(
        split_response(&response).0,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    // Shutdown closes the listener.
    shutdown.cancel();
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "the endpoint still accepts connections after shutdown"
    );
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let m = Arc::new(Metrics::new());
    let shutdown = CancellationToken::new();
    let addr = serve_prometheus(m, "localhost:0", shutdown.clone())
        .await
        .unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metr").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut out))
        .await
        .expect("the server should close a silent connection")
        .unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408 Request Timeout"));
    shutdown.cancel();
}

#[tokio::test]
async fn non_loopback_addresses_are_refused() {
    let m = Arc::new(Metrics::new());
    for listen in ["0.0.0.0:0", "[::]:0", "192.168.1.10:9464", "8.8.8.8:80"] {
        let err = serve_prometheus(Arc::clone(&m), listen, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, MetricsError::NotLoopback { .. }),
            "{listen}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains("only loopback addresses"), "{message}");
        assert!(message.contains(listen), "{message}");
    }
    for listen in ["example.com:80", "127.0.0.1", "localhost:99999", ""] {
        let err = serve_prometheus(Arc::clone(&m), listen, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, MetricsError::InvalidListen { .. }),
            "{listen}: {err}"
        );
    }
}

#[test]
fn loopback_addresses_parse() {
    assert_eq!(
        parse_loopback_addr("127.0.0.1:9464").unwrap().to_string(),
        "127.0.0.1:9464"
    );
    assert_eq!(
        parse_loopback_addr("127.1.2.3:1").unwrap().to_string(),
        "127.1.2.3:1"
    );
    assert_eq!(
        parse_loopback_addr("[::1]:9464").unwrap().to_string(),
        "[::1]:9464"
    );
    assert_eq!(
        parse_loopback_addr("LOCALHOST:80").unwrap().to_string(),
        "127.0.0.1:80"
    );
    assert!(parse_loopback_addr("[::ffff:127.0.0.1]:80").is_err());
}

// ---------------------------------------------------------------------------------------------
// Who the endpoint answers: the Host check (DNS rebinding) and the bearer token.

fn metrics_with_data() -> Arc<Metrics> {
    let m = Arc::new(Metrics::new());
    m.inc(
        metrics::TASKS_TOTAL,
        &[("agent", "explain"), ("state", "succeeded")],
    );
    m
}

/// A client that goes straight to 127.0.0.1 (no proxy from the environment), resolving
/// `rebind.attacker.example` to the endpoint as a DNS-rebinding attacker's name server would.
fn reqwest_client(addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .resolve("rebind.attacker.example", addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn requests_not_naming_the_loopback_in_host_get_no_data() {
    let shutdown = CancellationToken::new();
    let addr = serve_prometheus(metrics_with_data(), "127.0.0.1:0", shutdown.clone())
        .await
        .unwrap();
    let port = addr.port();

    // A page at http://rebind.attacker.example:PORT/ whose name now resolves to 127.0.0.1: the
    // browser connects to the endpoint but sends the attacker's name in Host.
    let client = reqwest_client(addr);
    let rebound = client
        .get(format!("http://rebind.attacker.example:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 421);
    let body = rebound.text().await.unwrap();
    assert!(!body.contains("infinity_matrix_"), "{body}");
    // The same client asking for the loopback by address is answered.
    let direct = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 200);
    assert!(
        direct
            .text()
            .await
            .unwrap()
            .contains("infinity_matrix_tasks_total")
    );

    let refused = [
        (format!("Host: rebind.attacker.example:{port}\r\n"), "421"),
        ("Host: rebind.attacker.example\r\n".to_owned(), "421"),
        (format!("Host: 127.0.0.1.nip.io:{port}\r\n"), "421"),
        (
            format!("Host: localhost.attacker.example:{port}\r\n"),
            "421",
        ),
        (format!("Host: 192.168.1.10:{port}\r\n"), "421"),
        (format!("Host: 0.0.0.0:{port}\r\n"), "421"),
        ("Host:\r\n".to_owned(), "421"),
        // No Host at all.
        (String::new(), "421"),
        (
            format!("Host: localhost:{port}\r\nHost: rebind.attacker.example\r\n"),
            "400",
        ),
    ];
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        for (headers, status) in &refused {
            for target in ["/metrics", "/other", "http://localhost/metrics"] {
                let request = format!("GET {target} {version}\r\n{headers}\r\n");
                let response = http(addr, request.as_bytes()).await;
                assert!(
                    response.starts_with(&format!("HTTP/1.1 {status} ")),
                    "{request:?} -> {response}"
                );
                assert!(
                    !response.contains("infinity_matrix_"),
                    "{request:?} -> {response}"
                );
            }
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
        "[::1]".to_owned(),
    ] {
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let response = http(addr, request.as_bytes()).await;
        let (status, _, body) = split_response(&response);
        assert_eq!(status, "HTTP/1.1 200 OK", "{host}");
        assert!(body.contains("infinity_matrix_tasks_total"), "{host}");
    }
    shutdown.cancel();
}

const TOKEN: &str = "im-metrics-token-0123456789abcdef";

#[tokio::test]
async fn a_configured_token_is_required() {
    let shutdown = CancellationToken::new();
    let access = Access::new(Some(BearerToken::new(&format!("{TOKEN}\n")).unwrap()));
    let addr = serve_prometheus_with(
        metrics_with_data(),
        "127.0.0.1:0",
        access.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let host = format!("Host: 127.0.0.1:{}\r\n", addr.port());
    let get = |auth: &str| format!("GET /metrics HTTP/1.1\r\n{host}{auth}\r\n");

    let unauthorized = [
        String::new(),
        "Authorization: Bearer wrong-token\r\n".to_owned(),
        format!("Authorization: Bearer {}\r\n", &TOKEN[..TOKEN.len() - 1]),
        format!("Authorization: Bearer {TOKEN}x\r\n"),
        format!("Authorization: Basic {TOKEN}\r\n"),
        format!("Authorization: {TOKEN}\r\n"),
        "Authorization: Bearer\r\n".to_owned(),
        format!("Authorization: Bearer wrong\r\nAuthorization: Bearer {TOKEN}\r\n"),
    ];
    for auth in &unauthorized {
        let response = http(addr, get(auth).as_bytes()).await;
        let (status, headers, body) = split_response(&response);
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{auth:?}");
        assert!(
            headers
                .iter()
                .any(|h| h.starts_with("WWW-Authenticate: Bearer")),
            "{headers:?}"
        );
        assert!(!body.contains("infinity_matrix_"), "{body}");
        assert!(!response.contains(TOKEN), "the token is never echoed");
    }
    // Other paths and methods are not revealed without the token either.
    let response = http(
        addr,
        format!("GET /other HTTP/1.1\r\n{host}\r\n").as_bytes(),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 401 "), "{response}");
    // A DNS-rebinding page with the right token is still refused.
    let response = http(
        addr,
        format!(
            "GET /metrics HTTP/1.1\r\nHost: rebind.attacker.example\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 421 "), "{response}");

    for auth in [
        format!("Authorization: Bearer {TOKEN}\r\n"),
        format!("authorization: bearer   {TOKEN} \r\n"),
    ] {
        let response = http(addr, get(&auth).as_bytes()).await;
        let (status, _, body) = split_response(&response);
        assert_eq!(status, "HTTP/1.1 200 OK", "{auth:?}");
        assert!(body.contains("infinity_matrix_tasks_total"));
    }
    let client = reqwest_client(addr);
    let url = format!("http://127.0.0.1:{}/metrics", addr.port());
    let ok = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let denied = client.get(&url).send().await.unwrap();
    assert_eq!(denied.status().as_u16(), 401);

    // A reload replaces the token while the endpoint keeps serving.
    access.set_token(Some(BearerToken::new("a-rotated-token-42").unwrap()));
    let old = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(old.status().as_u16(), 401);
    let new = client
        .get(&url)
        .bearer_auth("a-rotated-token-42")
        .send()
        .await
        .unwrap();
    assert_eq!(new.status().as_u16(), 200);
    access.set_token(None);
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        200
    );
    shutdown.cancel();
}

// ---------------------------------------------------------------------------------------------
// Idle connections cannot starve a scrape.

/// Starts the endpoint on its own runtime, so this thread can use blocking sockets.
fn blocking_endpoint() -> (tokio::runtime::Runtime, SocketAddr, CancellationToken) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let addr = rt
        .block_on(serve_prometheus(
            metrics_with_data(),
            "127.0.0.1:0",
            shutdown.clone(),
        ))
        .unwrap();
    (rt, addr, shutdown)
}

/// Opens `n` connections that never finish a request: half send nothing, half the start of
/// a request head.
fn open_idle(addr: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    use std::io::Write;
    (0..n)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            if i % 2 == 1 {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
            }
            s
        })
        .collect()
}

/// Client read timeout of a scrape: generous for a loopback answer, shorter than the
/// server's idle timeout (so waiting for idle connections to time out would fail).
const SCRAPE_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// A real scrape with a bounded wait; panics if it is not answered in time.
fn scrape_blocking(addr: SocketAddr, idle: usize) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(SCRAPE_READ_TIMEOUT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        panic!(
            "the scrape was not answered while {idle} idle connections were open ({e}; got {:?})",
            String::from_utf8_lossy(&out)
        );
    }
    String::from_utf8(out).unwrap()
}

/// True if the server has neither answered nor closed `s` (a read would block).
fn still_open(s: &std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut byte = [0_u8; 1];
    let open = matches!(
        (&*s).read(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    open
}

#[test]
fn forty_idle_connections_do_not_delay_a_scrape() {
    let (rt, addr, shutdown) = blocking_endpoint();
    let idle = open_idle(addr, 40);
    let response = scrape_blocking(addr, idle.len());
    let (status, _, body) = split_response(&response);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("infinity_matrix_tasks_total"));
    // Answered while the idle connections were still open (not after they timed out).
    let open = idle.iter().filter(|s| still_open(s)).count();
    assert_eq!(
        open,
        idle.len(),
        "idle connections were closed before the scrape"
    );
    shutdown.cancel();
    drop(idle);
    rt.shutdown_background();
}

#[test]
fn idle_connections_beyond_the_bound_make_room_for_a_scrape() {
    use std::io::Read;
    let (rt, addr, shutdown) = blocking_endpoint();
    let idle = open_idle(addr, MAX_CONNECTIONS + 36);
    let response = scrape_blocking(addr, idle.len());
    assert_eq!(split_response(&response).0, "HTTP/1.1 200 OK");
    // The bound held: the oldest idle connection was closed to make room, without an answer;
    // the newest is still open.
    let oldest = idle.first().unwrap();
    oldest.set_read_timeout(Some(SCRAPE_READ_TIMEOUT)).unwrap();
    let mut buf = Vec::new();
    match (&*oldest).read_to_end(&mut buf) {
        Ok(_) => assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(still_open(idle.last().unwrap()));
    shutdown.cancel();
    drop(idle);
    rt.shutdown_background();
}

// ---------------------------------------------------------------------------------------------
// Configuration: a bad `[metrics]` setting turns metrics off and keeps the rest.

const PROVIDER: &str = r#"
[providers.live]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "m"

[defaults]
providers = ["live"]
"#;

#[test]
fn bad_metrics_settings_from_any_source_only_turn_metrics_off() {
    let tmp = tempfile::tempdir().unwrap();
    let user_file = tmp.path().join("config.toml");
    let sources = ConfigSources {
        user_file: Some(user_file.clone()),
        workspace_file: None,
        workspace_root: None,
    };
    let bad_in_file = [
        ("listen = \"0.0.0.0:9464\"", "metrics.listen", "loopback"),
        ("listen = 9464", "metrics", "invalid type"),
        ("lissten = \"127.0.0.1:9464\"", "metrics", "lissten"),
        (
            "listen = \"127.0.0.1:9464\"\ntoken_file = \"token.txt\"",
            "metrics.token_file",
            "absolute",
        ),
        (
            "listen = \"127.0.0.1:9464\"\ntoken_env = \"my secret token\"",
            "metrics.token_env",
            "NAME",
        ),
        (
            "listen = \"127.0.0.1:9464\"\ntoken_env = \"A\"\ntoken_file = \"/t\"",
            "metrics.token_env",
            "not both",
        ),
    ];
    for (section, key, word) in bad_in_file {
        std::fs::write(&user_file, format!("{PROVIDER}\n[metrics]\n{section}\n")).unwrap();
        let loaded = config::load(&sources, None)
            .unwrap_or_else(|e| panic!("{section:?} rejected the whole configuration: {e}"));
        assert!(loaded.config.providers.contains_key("live"), "{section}");
        assert_eq!(loaded.config.defaults.providers, ["live"], "{section}");
        assert_eq!(loaded.config.metrics, MetricsConfig::default(), "{section}");
        let warning = loaded.warnings.join("\n");
        let file = user_file.display().to_string();
        for want in [file.as_str(), key, word, "metrics are off"] {
            assert!(
                warning.contains(want),
                "{section:?}: {want:?} not in {warning}"
            );
        }
        assert!(!warning.contains("my secret token"), "{warning}");
    }

    // Client settings: a bad value or a wrong type in `metrics` no longer rejects them.
    std::fs::write(&user_file, "").unwrap();
    for metrics in [
        json!({"listen": "0.0.0.0:9464"}),
        json!({"listen": 9464}),
        json!({"listen": "127.0.0.1:9464", "extra": true}),
        json!("127.0.0.1:9464"),
    ] {
        let settings = json!({
            "providers": {"live": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}},
            "defaults": {"providers": ["live"]},
            "metrics": metrics,
        });
        let client = config::parse_client_settings(&settings)
            .unwrap_or_else(|e| panic!("{metrics} rejected the client settings: {e}"));
        let loaded = config::load(&sources, Some(&client)).unwrap();
        assert!(loaded.config.providers.contains_key("live"), "{metrics}");
        assert_eq!(loaded.config.metrics, MetricsConfig::default(), "{metrics}");
        let warning = loaded.warnings.join("\n");
        assert!(
            warning.contains("client settings (infinityMatrix): metrics"),
            "{warning}"
        );
    }

    // A good section is kept whole, token keys included.
    std::fs::write(
        &user_file,
        "[metrics]\nlisten = \"127.0.0.1:9464\"\ntoken_env = \"IM_METRICS_TOKEN\"\n",
    )
    .unwrap();
    let loaded = config::load(&sources, None).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        loaded.config.metrics.token_env.as_deref(),
        Some("IM_METRICS_TOKEN")
    );
}

fn sse_reply() -> String {
    let chunk = json!({"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": null}]});
    let end = json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    format!("data: {chunk}\n\ndata: {end}\n\ndata: [DONE]\n\n")
}

async fn openai_provider() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse_reply()),
        )
        .mount(&server)
        .await;
    server
}

/// A throw-away workspace, config home and data home for the binary.
struct Workspace {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.py"), "def add(a, b):\n    return a + b\n").unwrap();
    Workspace {
        root,
        data: dir.path().join("data"),
        config: dir.path().join("config"),
        stderr: dir.path().join("stderr.log"),
        _dir: dir,
    }
}

fn spawn_server(w: &Workspace, env: &[(&str, &str)]) -> LspClient {
    let mut all = vec![
        ("XDG_DATA_HOME", w.data.to_str().unwrap()),
        ("XDG_CONFIG_HOME", w.config.to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    LspClient::spawn_logging_to(&all, &w.stderr)
}

fn initialize(c: &mut LspClient, w: &Workspace, config: Value) {
    let uri = file_uri(&w.root);
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri, "workspaceFolders": [{"uri": uri, "name": "ws"}],
               "initializationOptions": {"config": config}, "capabilities": {}}),
    )
    .unwrap();
    c.notify("initialized", json!({}));
}

fn live_provider(url: &str) -> Value {
    json!({"kind": "openai", "base_url": format!("{url}/v1"), "model": "m", "max_attempts": 1})
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs the default agent on a.py and returns the task's final state.
fn run_prompt(c: &mut LspClient, w: &Workspace) -> String {
    let uri = file_uri(&w.root.join("a.py"));
    let text = std::fs::read_to_string(w.root.join("a.py")).unwrap();
    c.open(&uri, "python", &text);
    let r = c
        .request(
            "workspace/executeCommand",
            json!({"command": "infinity-matrix.executePrompt", "arguments": [{"prompt": "x", "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}]}),
        )
        .unwrap_or_else(|e| panic!("executePrompt failed: {e}"));
    let id = r["taskId"].as_str().unwrap().to_owned();
    let n = c.wait_notification(|n| {
        n["method"] == "infinityMatrix/taskEvent"
            && n["params"]["type"] == "state"
            && n["params"]["task"]["id"] == id.as_str()
            && ["succeeded", "failed", "cancelled"]
                .iter()
                .any(|s| n["params"]["task"]["state"] == *s)
    });
    n["params"]["task"]["state"].as_str().unwrap().to_owned()
}

/// GET /metrics on 127.0.0.1:`port`, retried (bounded) while the endpoint is starting.
fn scrape_port(port: u16, auth: Option<&str>) -> String {
    use std::io::{Read, Write};
    for _ in 0..200 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let auth = auth
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            write!(
                s,
                "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}\r\n"
            )
            .unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).unwrap();
            return body;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no metrics endpoint on 127.0.0.1:{port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_metrics_setting_in_client_settings_keeps_the_provider() {
    let server = openai_provider().await;
    for bad in [
        json!({"listen": format!("0.0.0.0:{}", free_port())}),
        json!({"listen": free_port()}),
        json!({"listen": format!("127.0.0.1:{}", free_port()), "lissten": "x"}),
        json!({"listen": format!("127.0.0.1:{}", free_port()), "token_file": "/nonexistent/im-metrics-token"}),
    ] {
        let port = ["listen", "lissten"]
            .iter()
            .find_map(|k| {
                let v = &bad[*k];
                v.as_u64()
                    .or_else(|| v.as_str()?.rsplit(':').next()?.parse().ok())
            })
            .unwrap();
        let w = workspace();
        let mut c = spawn_server(&w, &[]);
        initialize(
            &mut c,
            &w,
            json!({"providers": {"live": live_provider(&server.uri())}, "defaults": {"providers": ["live"]}, "metrics": bad}),
        );
        let message = c.wait_notification(|n| {
            n["method"] == "window/showMessage"
                && n["params"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("metrics"))
        });
        let text = message["params"]["message"].as_str().unwrap();
        assert_eq!(message["params"]["type"], 2, "{bad}: not a warning: {text}");
        assert!(text.contains("metrics are off"), "{bad}: {text}");
        // The provider from the same settings is used.
        let before = server.received_requests().await.unwrap_or_default().len();
        assert_eq!(run_prompt(&mut c, &w), "succeeded", "{bad}");
        let after = server.received_requests().await.unwrap_or_default().len();
        assert_eq!(after, before + 1, "{bad}: the provider was not called");
        let agents = c.request("infinityMatrix/agents", json!(null)).unwrap();
        assert!(agents.to_string().contains("\"live\""), "{agents}");
        // Metrics are off: nothing listens on the port (0.0.0.0 would have answered here).
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).unwrap())).is_err(),
            "{bad}: something listens on {port}"
        );
        c.shutdown();
        let log = std::fs::read_to_string(&w.stderr).unwrap();
        assert!(
            log.contains("metrics are off"),
            "{bad}: stderr lacks the warning:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_token_guards_the_endpoint_over_stdio() {
    let w = workspace();
    let port = free_port();
    std::fs::create_dir_all(w.config.join("infinity-matrix")).unwrap();
    std::fs::write(
        w.config.join("infinity-matrix").join("config.toml"),
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\ntoken_env = \"IM_METRICS_TOKEN\"\n"),
    )
    .unwrap();
    let mut c = spawn_server(
        &w,
        &[
            ("IM_METRICS_TOKEN", TOKEN),
            ("INFINITY_MATRIX_LOG", "debug"),
        ],
    );
    initialize(&mut c, &w, Value::Null);
    assert!(scrape_port(port, None).starts_with("HTTP/1.1 401 "));
    assert!(scrape_port(port, Some("wrong-token")).starts_with("HTTP/1.1 401 "));
    let ok = scrape_port(port, Some(TOKEN));
    assert!(ok.starts_with("HTTP/1.1 200 "), "{ok}");

    // Client settings switch to a token file on the same address: the endpoint keeps serving
    // and now wants that token.
    let token_file = w.data.join("metrics-token");
    std::fs::create_dir_all(&w.data).unwrap();
    std::fs::write(&token_file, "file-token-abcdefgh\n").unwrap();
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"infinityMatrix": {"metrics": {"listen": format!("127.0.0.1:{port}"), "token_file": token_file.to_str().unwrap()}}}}),
    );
    c.wait_notification(|n| {
        n["method"] == "window/logMessage" && n["params"]["message"] == "configuration reloaded"
    });
    assert!(scrape_port(port, Some(TOKEN)).starts_with("HTTP/1.1 401 "));
    assert!(scrape_port(port, Some("file-token-abcdefgh")).starts_with("HTTP/1.1 200 "));
    c.shutdown();
    let log = std::fs::read_to_string(&w.stderr).unwrap();
    assert!(log.contains("metrics"), "debug log expected:\n{log}");
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
    assert!(
        !log.contains("file-token-abcdefgh"),
        "the token reached the log:\n{log}"
    );
}
