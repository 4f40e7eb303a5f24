//! A minimal HTTP/1.1 endpoint serving `GET /metrics` on a loopback address only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head accepted (request line plus headers).
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long to keep discarding a client's unread input after responding.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// The most unread input discarded after responding.
const MAX_DRAIN_BYTES: usize = 256 * 1024;
/// Connections served at once; further ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

/// Errors from starting the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid metrics listen address {listen:?}: {reason} (expected e.g. 127.0.0.1:9464)")]
    InvalidListen { listen: String, reason: String },
    #[error(
        "refusing to serve metrics on {addr} (from {listen:?}): only loopback addresses \
         (127.0.0.0/8, ::1 or localhost) are allowed"
    )]
    NotLoopback { listen: String, addr: SocketAddr },
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `listen` (`IP:PORT`, `[::1]:PORT` or `localhost:PORT`, which means 127.0.0.1) and
/// refuses anything that is not a loopback address.
pub fn parse_loopback_addr(listen: &str) -> Result<SocketAddr, MetricsError> {
    let text = listen.trim();
    let invalid = |reason: &str| MetricsError::InvalidListen {
        listen: listen.to_owned(),
        reason: reason.to_owned(),
    };
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let (host, port) = text.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("the port is not a number 0-65535"))?;
            if host.eq_ignore_ascii_case("localhost") {
                SocketAddr::from((Ipv4Addr::LOCALHOST, port))
            } else {
                return Err(invalid("the host must be an IP address or localhost"));
            }
        }
    };
    if !addr.ip().is_loopback() {
        return Err(MetricsError::NotLoopback {
            listen: listen.to_owned(),
            addr,
        });
    }
    Ok(addr)
}

/// Binds `listen` (loopback only; port 0 picks a free port) and serves `GET /metrics` with the
/// Prometheus text of `metrics` until `shutdown` fires. Other paths get 404, other methods on
/// `/metrics` 405. Returns the bound address once listening; serving continues in a task.
pub async fn serve_prometheus(
    metrics: Arc<Metrics>,
    listen: &str,
    shutdown: CancellationToken,
) -> Result<SocketAddr, MetricsError> {
    let addr = parse_loopback_addr(listen)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    tracing::info!(%bound, "serving Prometheus metrics at http://{bound}/metrics");
    tokio::spawn(accept_loop(listener, metrics, shutdown));
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = Arc::clone(&metrics);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = handle_connection(stream, &metrics) => {}
            }
        });
    }
    tracing::debug!("metrics endpoint stopped");
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    /// The client closed the connection or sent nothing usable in time.
    Gone,
}

async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Head::Gone,
            Ok(n) => n,
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(end) = find_head_end(&buf) {
            buf.truncate(end);
            return Head::Complete(buf);
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Head::TooLarge;
        }
    }
}

/// The end of the request head: the first blank line (CRLF CRLF, or LF LF from lax clients).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    extra_headers: &'static str,
    body: String,
    /// HEAD: send the headers (with the body's length) but not the body.
    head_only: bool,
}

impl Response {
    fn plain(status: &'static str, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_headers: "",
            body: format!("{body}\n"),
            head_only: false,
        }
    }
}

fn respond(head: &[u8], metrics: &Metrics) -> Response {
    let text = String::from_utf8_lossy(head);
    let request_line = text.lines().next().unwrap_or("");
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::plain("400 Bad Request", "malformed request line");
    };
    if !version.starts_with("HTTP/1.") {
        return Response::plain(
            "505 HTTP Version Not Supported",
            "only HTTP/1.x is supported",
        );
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path != "/metrics" {
        return Response::plain("404 Not Found", "not found; metrics are at /metrics");
    }
    match method {
        "GET" | "HEAD" => Response {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            extra_headers: "",
            body: metrics.render_prometheus(),
            head_only: method == "HEAD",
        },
        _ => Response {
            extra_headers: "Allow: GET, HEAD\r\n",
            ..Response::plain("405 Method Not Allowed", "method not allowed; use GET")
        },
    }
}

async fn handle_connection(mut stream: TcpStream, metrics: &Metrics) {
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Response::plain("408 Request Timeout", "request timeout"),
        Ok(Head::Gone) => return,
        Ok(Head::TooLarge) => {
            Response::plain("431 Request Header Fields Too Large", "request too large")
        }
        Ok(Head::Complete(head)) => respond(&head, metrics),
    };
    let mut bytes = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        response.extra_headers,
    )
    .into_bytes();
    if !response.head_only {
        bytes.extend_from_slice(response.body.as_bytes());
    }
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%error, "metrics endpoint: write failed");
            return;
        }
        Err(_) => {
            tracing::debug!("metrics endpoint: write timed out");
            return;
        }
    }
    // Lingering close: closing with unread input would send a TCP reset, which can destroy the
    // response before the client reads it. Discard what is left (bounded) until the client
    // closes its side.
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain(&mut stream)).await;
}

async fn drain(stream: &mut TcpStream) {
    let mut chunk = [0_u8; 4096];
    let mut total = 0_usize;
    while total < MAX_DRAIN_BYTES {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
