//! A minimal HTTP/1.1 endpoint serving `GET /metrics` on a loopback address only.
//!
//! Who is answered: only requests whose `Host` names the loopback — `localhost`, a
//! 127.0.0.0/8 address or `[::1]`, with any port — so a web page that rebinds its own DNS
//! name to 127.0.0.1 (it still sends its own name) gets `421 Misdirected Request` and no data;
//! a request without `Host` gets the same. When a bearer token is configured, a request
//! without `Authorization: Bearer <token>` gets `401`; the token is kept only as its SHA-256
//! digest, compared in constant time, and never logged.
//!
//! Connections: each one is served by a task of its own, a client has [`READ_TIMEOUT`] to send
//! its request head, and at most [`MAX_CONNECTIONS`] are open at once. A new connection at
//! that bound closes the oldest one that is idle (still without a complete request, or
//! lingering after its response), so idle connections can never keep a scrape waiting.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::config::MetricsConfig;
use crate::config::metrics::{
    MetricsError, check_config, parse_loopback_addr, setting, token_file_path,
};

/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head accepted (request line plus headers).
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long to keep discarding a client's unread input after responding.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// The most unread input discarded after responding.
const MAX_DRAIN_BYTES: usize = 256 * 1024;
/// Connections open at once. At the bound, a new connection closes the oldest idle one.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest token file read (it should hold the token and perhaps a newline).
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// A checked `[metrics]` configuration: where to listen and the token to require.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// `listen` as configured (a reload with the same text keeps the running listener).
    pub listen: String,
    pub addr: SocketAddr,
    pub token: Option<BearerToken>,
}

/// Resolves `[metrics]`: `None` without `listen`; otherwise the address and the token, read
/// now from its file or environment variable (and registered with the redactor).
pub fn endpoint_settings(config: &MetricsConfig) -> Result<Option<EndpointSettings>, MetricsError> {
    check_config(config)?;
    let Some(listen) = &config.listen else {
        return Ok(None);
    };
    let addr = parse_loopback_addr(listen)?;
    let token = match (&config.token_file, &config.token_env) {
        (Some(file), _) => Some(read_token_file(file)?),
        (None, Some(name)) => Some(read_token_env(name)?),
        (None, None) => None,
    };
    Ok(Some(EndpointSettings {
        listen: listen.clone(),
        addr,
        token,
    }))
}

fn read_token_file(file: &str) -> Result<BearerToken, MetricsError> {
    const KEY: &str = "metrics.token_file";
    let path = token_file_path(file)?;
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| setting(KEY, format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(setting(
            KEY,
            format!(
                "{} is larger than {MAX_TOKEN_FILE_BYTES} bytes; it should hold only the token",
                path.display()
            ),
        ));
    }
    BearerToken::new(&text).map_err(|why| setting(KEY, format!("{}: {why}", path.display())))
}

fn read_token_env(name: &str) -> Result<BearerToken, MetricsError> {
    const KEY: &str = "metrics.token_env";
    let value = std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            setting(
                KEY,
                format!("the environment variable {name} is not set or empty"),
            )
        })?;
    BearerToken::new(&value).map_err(|why| setting(KEY, format!("{name}: {why}")))
}

/// A bearer token the endpoint requires, kept only as its SHA-256 digest (so comparing takes
/// the same time whatever is presented, and nothing can print it).
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([REDACTED])")
    }
}

impl BearerToken {
    /// A token from its text (surrounding whitespace, such as a file's last newline, is
    /// dropped): one run of visible ASCII characters. It is registered with the redactor.
    pub fn new(text: &str) -> Result<BearerToken, &'static str> {
        let token = text.trim();
        if token.is_empty() {
            return Err("the token is empty");
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be one line of visible ASCII characters without spaces");
        }
        crate::secrets::register_secret(token);
        Ok(BearerToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    fn matches(&self, presented: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let diff = self
            .digest
            .iter()
            .zip(other.iter())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// Who may read the endpoint: the bearer token it requires, if any. Clones share it, so a
/// configuration reload can replace the token while the endpoint keeps serving.
#[derive(Clone, Default)]
pub struct Access {
    token: Arc<RwLock<Option<BearerToken>>>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("token_required", &self.token.read().is_some())
            .finish()
    }
}

impl Access {
    pub fn new(token: Option<BearerToken>) -> Access {
        Access {
            token: Arc::new(RwLock::new(token)),
        }
    }

    /// Replaces the token requests must carry (`None`: no token needed).
    pub fn set_token(&self, token: Option<BearerToken>) {
        *self.token.write() = token;
    }

    /// Whether the request's `Authorization` headers satisfy the token (exactly one header,
    /// `Bearer <token>`). The MCP endpoint checks its clients with it too.
    pub fn allows(&self, authorizations: &[&str]) -> bool {
        let guard = self.token.read();
        let Some(token) = guard.as_ref() else {
            return true;
        };
        match authorizations {
            [value] => bearer_credentials(value).is_some_and(|c| token.matches(c)),
            _ => false,
        }
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (scheme case-insensitive).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once([' ', '\t'])?;
    let credentials = rest.trim_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

/// Whether a `Host` header value names the loopback: `localhost`, an IPv4 loopback address or
/// `[::1]`, optionally with a port. Any other name (as a DNS-rebinding page sends) is refused.
fn is_loopback_host(value: &str) -> bool {
    let port_ok = |rest: &str| match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(port) => {
            port.is_empty()
                || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok())
        }
    };
    if let Some(rest) = value.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        return inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()) && port_ok(after);
    }
    let (host, after) = match value.find(':') {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    port_ok(after)
        && (host.eq_ignore_ascii_case("localhost")
            || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Binds `listen` (loopback only; port 0 picks a free port) and serves `GET /metrics` with the
/// Prometheus text of `metrics` until `shutdown` fires, to anyone who names the loopback in
/// `Host`. See [`serve_prometheus_with`].
pub async fn serve_prometheus(
    metrics: Arc<Metrics>,
    listen: &str,
    shutdown: CancellationToken,
) -> Result<SocketAddr, MetricsError> {
    serve_prometheus_with(metrics, listen, Access::default(), shutdown).await
}

/// Binds `listen` (loopback only; port 0 picks a free port) and serves `GET /metrics` with the
/// Prometheus text of `metrics` until `shutdown` fires. A request whose `Host` does not name
/// the loopback gets 421, one without the token `access` requires 401, other paths 404, other
/// methods on `/metrics` 405. Returns the bound address once listening; serving continues in
/// a task.
pub async fn serve_prometheus_with(
    metrics: Arc<Metrics>,
    listen: &str,
    access: Access,
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
    let ctx = Arc::new(Served {
        metrics,
        access,
        idle: Idle::default(),
    });
    tokio::spawn(accept_loop(listener, ctx, shutdown));
    Ok(bound)
}

/// What every connection of one endpoint shares.
struct Served {
    metrics: Arc<Metrics>,
    access: Access,
    idle: Idle,
}

/// Connections that may be closed to make room, oldest first: those still waiting for a
/// complete request head, and those lingering after their response.
#[derive(Default)]
struct Idle(Mutex<BTreeMap<u64, CancellationToken>>);

impl Idle {
    fn insert(&self, id: u64, cancel: &CancellationToken) {
        self.0.lock().insert(id, cancel.clone());
    }

    fn remove(&self, id: u64) {
        self.0.lock().remove(&id);
    }

    /// Closes the oldest idle connection; false if there is none.
    fn close_oldest(&self) -> bool {
        let oldest = self.0.lock().pop_first();
        oldest.map(|(_, cancel)| cancel.cancel()).is_some()
    }
}

/// Takes a connection off the idle list when its task ends, however it ends.
struct Registered<'a> {
    idle: &'a Idle,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.idle.remove(self.id);
    }
}

async fn accept_loop(listener: TcpListener, served: Arc<Served>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut next_id = 0_u64;
    loop {
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
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // At the bound: make room by closing the connection idle the longest. If every
                // connection is busy writing its response, wait for one (writes are bounded).
                if served.idle.close_oldest() {
                    tracing::debug!(
                        "metrics endpoint: {MAX_CONNECTIONS} connections open, closed the oldest idle one"
                    );
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = Arc::clone(&slots).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let id = next_id;
        next_id = next_id.wrapping_add(1);
        let cancel = shutdown.child_token();
        served.idle.insert(id, &cancel);
        let served = Arc::clone(&served);
        tokio::spawn(async move {
            let _permit = permit;
            let _registered = Registered {
                idle: &served.idle,
                id,
            };
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = handle_connection(stream, &served, id, &cancel) => {}
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

fn respond(head: &[u8], served: &Served) -> Response {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or("");
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
    let mut hosts = Vec::new();
    let mut authorizations = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Response::plain("400 Bad Request", "malformed header line");
        };
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Response::plain("400 Bad Request", "malformed header name");
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("host") {
            hosts.push(value);
        } else if name.eq_ignore_ascii_case("authorization") {
            authorizations.push(value);
        }
    }
    match hosts.as_slice() {
        [host] if is_loopback_host(host) => {}
        [_, _, ..] => return Response::plain("400 Bad Request", "more than one Host header"),
        _ => {
            return Response::plain(
                "421 Misdirected Request",
                "this endpoint answers only requests for Host localhost, 127.0.0.1 or [::1]",
            );
        }
    }
    if !served.access.allows(&authorizations) {
        return Response {
            extra_headers: "WWW-Authenticate: Bearer realm=\"infinity-matrix metrics\"\r\n",
            ..Response::plain(
                "401 Unauthorized",
                "a bearer token is required (Authorization: Bearer <token>)",
            )
        };
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
            body: served.metrics.render_prometheus(),
            head_only: method == "HEAD",
        },
        _ => Response {
            extra_headers: "Allow: GET, HEAD\r\n",
            ..Response::plain("405 Method Not Allowed", "method not allowed; use GET")
        },
    }
}

async fn handle_connection(
    mut stream: TcpStream,
    served: &Served,
    id: u64,
    cancel: &CancellationToken,
) {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await;
    // Being answered: no longer idle, so never closed to make room.
    served.idle.remove(id);
    let response = match head {
        Err(_) => Response::plain("408 Request Timeout", "request timeout"),
        Ok(Head::Gone) => return,
        Ok(Head::TooLarge) => {
            Response::plain("431 Request Header Fields Too Large", "request too large")
        }
        Ok(Head::Complete(head)) => respond(&head, served),
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
    // closes its side; meanwhile the connection is idle again and may be closed to make room.
    served.idle.insert(id, cancel);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_accepted() {
        for ok in [
            "localhost",
            "LocalHost:9464",
            "localhost:",
            "127.0.0.1",
            "127.0.0.1:9464",
            "127.3.2.1:80",
            "[::1]",
            "[::1]:9464",
            "[0:0:0:0:0:0:0:1]:1",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example:9464",
            "evil.example",
            "localhost.evil.example",
            "localhost.",
            "127.0.0.1.nip.io:9464",
            "10.0.0.1:9464",
            "0.0.0.0:9464",
            "::1",
            "[::1",
            "[::2]:80",
            "[::ffff:127.0.0.1]:80",
            "localhost:99999",
            "localhost:80:80",
            "localhost:+80",
            "127.0.0.1 :80",
            "localhost@evil.example",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn bearer_credentials_are_parsed() {
        assert_eq!(bearer_credentials("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("bearer \t abc "), Some("abc"));
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearer"), None);
        assert_eq!(bearer_credentials("Bearer   "), None);
        assert_eq!(bearer_credentials("Bearerabc"), None);
    }

    #[test]
    fn tokens_compare_by_digest_and_never_print() {
        let token = BearerToken::new("  s3cret-token-value\n").unwrap();
        assert!(token.matches("s3cret-token-value"));
        assert!(!token.matches("s3cret-token-valuf"));
        assert!(!token.matches("s3cret-token-value "));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "BearerToken([REDACTED])");
        assert!(BearerToken::new(" \n").is_err());
        assert!(BearerToken::new("two words").is_err());
        assert!(BearerToken::new("caf\u{e9}").is_err());
        let access = Access::new(Some(token));
        assert!(!format!("{access:?}").contains("s3cret"));
        assert!(access.allows(&["Bearer s3cret-token-value"]));
        assert!(!access.allows(&[]));
        assert!(!access.allows(&["Bearer wrong"]));
        assert!(!access.allows(&["Bearer s3cret-token-value", "Bearer s3cret-token-value"]));
        access.set_token(None);
        assert!(access.allows(&[]));
    }
}
