//! MCP over Streamable HTTP: loopback only, every request carrying the bearer token.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::tools::McpServer;
use crate::metrics::{Access, BearerToken};

/// The endpoint's path.
const PATH: &str = "/mcp";

/// Parses `--http`'s address (`IP:PORT`, `localhost:PORT`) and refuses one that is not
/// loopback, as the metrics endpoint does: no other machine may reach the workspace.
pub fn loopback_address(s: &str) -> Result<SocketAddr> {
    crate::metrics::parse_loopback_addr(s).map_err(|e| anyhow!("--http: {e}"))
}

/// Who may call the endpoint: the bearer token clients must send (kept as its digest, as the
/// metrics endpoint keeps its own), and the token's text when it was made here, to print once.
pub struct Token {
    access: Access,
    made: Option<String>,
}

impl Token {
    /// The token in `file`, else a new random one (256 bits, hex).
    pub fn new(file: Option<&Path>) -> Result<Token> {
        let (text, made) = match file {
            Some(file) => (
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read the token file {}", file.display()))?,
                false,
            ),
            None => {
                let bytes: [u8; 32] = rand::Rng::random(&mut rand::rng());
                (bytes.iter().map(|b| format!("{b:02x}")).collect(), true)
            }
        };
        let token = BearerToken::new(&text).map_err(|why| anyhow!("the bearer token: {why}"))?;
        Ok(Token {
            access: Access::new(Some(token)),
            made: made.then_some(text),
        })
    }

    fn allows(&self, req: &Request<Incoming>) -> bool {
        let given = req.headers().get_all(hyper::header::AUTHORIZATION);
        let given: Vec<&str> = given.iter().filter_map(|v| v.to_str().ok()).collect();
        self.access.allows(&given)
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<BoxBody<Bytes, Infallible>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Serves MCP on `addr` until the process is stopped (Ctrl-C or SIGTERM).
pub async fn serve(server: McpServer, addr: SocketAddr, token: Token) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!("infinity-matrix mcp: listening on http://{local}{PATH}");
    if let Some(text) = &token.made {
        eprintln!(
            "infinity-matrix mcp: bearer token (shown once; --token-file chooses it): {text}"
        );
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let token = Arc::new(token);
    let stop = crate::process::stop_signal();
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!("mcp: accept failed: {e}");
                    continue;
                }
            },
            _ = &mut stop => return Ok(()),
        };
        let service = service.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req: Request<Incoming>| {
                let service = service.clone();
                let token = token.clone();
                async move {
                    if req.uri().path() != PATH {
                        return Ok::<_, Infallible>(plain(StatusCode::NOT_FOUND, "not found\n"));
                    }
                    if !token.allows(&req) {
                        return Ok(plain(
                            StatusCode::UNAUTHORIZED,
                            "a bearer token is required\n",
                        ));
                    }
                    Ok(service.handle(req).await)
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!("mcp: connection ended: {e}");
            }
        });
    }
}
