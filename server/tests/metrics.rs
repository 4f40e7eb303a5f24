//! Tests of the metrics registry, the Prometheus exposition format and the loopback HTTP endpoint.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infinity_matrix::metrics::{
    self, LATENCY_BUCKETS, Metrics, MetricsError, parse_loopback_addr, serve_prometheus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

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
    let response = http(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(response.contains("{outcome=\"ok\",provider=\"local\"} 2\n"));

    let response = http(addr, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(split_response(&response).0, "HTTP/1.1 404 Not Found");

    let response = http(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    let (status, headers, _) = split_response(&response);
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(headers.contains(&"Allow: GET, HEAD"));

    let response = http(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
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
