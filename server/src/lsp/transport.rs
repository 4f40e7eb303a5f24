//! Guarded stdio framing: validates every incoming message before tower-lsp-server sees it.
//!
//! tower-lsp-server's reader stops for good after one undecodable frame (its `FramedRead`
//! ends on the first decode error), so a single malformed message would end the session.
//! This layer reads Content-Length frames from stdin, forwards well-formed JSON-RPC messages
//! to the server through an in-memory pipe, and answers the rest itself with a JSON-RPC error
//! (`-32700` parse error, `-32600` invalid request), written between the server's own frames.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Largest message accepted (a 20 MB file in didOpen fits comfortably).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The envelope of a JSON-RPC 2.0 message, checked without building a tree of the params
/// (a didOpen may carry megabytes).
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    jsonrpc: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    params: bool,
    /// Present even when `null` (a response's result often is).
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// True when the key is there, whatever its value (including `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| true)
}

/// How a frame's body looks.
enum Body {
    /// A request, notification or response tower-lsp-server can decode; `true` when it needs
    /// [`normalize`].
    Valid(bool),
    /// JSON, but not a JSON-RPC 2.0 message.
    Invalid,
    /// Not JSON.
    Malformed(String),
}

fn classify(body: &[u8]) -> Body {
    match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(env) => {
            let id_ok = env
                .id
                .as_ref()
                .is_none_or(|id| id.is_number() || id.is_string() || id.is_null());
            let shape_ok = match &env.method {
                Some(_) => !env.result && env.error.is_none(),
                None => {
                    env.id.is_some()
                        && (env.result || env.error.as_ref().is_some_and(|e| e.is_object()))
                }
            };
            let _ = env.params;
            if env.jsonrpc == "2.0" && id_ok && shape_ok {
                Body::Valid(env.method.as_deref() == Some("workspace/executeCommand"))
            } else {
                Body::Invalid
            }
        }
        Err(e) => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Body::Invalid,
            Err(_) => Body::Malformed(e.to_string()),
        },
    }
}

/// The value of a `Content-Length` header line, if this is one.
fn content_length_of(line: &str) -> Option<usize> {
    let (name, value) = line.split_once(':')?;
    if name.trim().eq_ignore_ascii_case("content-length") {
        value.trim().parse().ok()
    } else {
        None
    }
}

/// Client quirks that ls_types would reject: eglot sends `"arguments": null` for a command
/// without arguments. Returns true when the message was changed.
fn normalize(value: &mut Value) -> bool {
    if value.get("method").and_then(Value::as_str) != Some("workspace/executeCommand") {
        return false;
    }
    match value.get_mut("params").and_then(Value::as_object_mut) {
        Some(params) if params.get("arguments").is_some_and(Value::is_null) => {
            params.remove("arguments");
            true
        }
        _ => false,
    }
}

fn error_frame(code: i64, message: &str) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}})
        .to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Reads frames from `input`; valid ones go to `to_server`, errors to `errors`.
pub async fn filter_input<R, W>(input: R, mut to_server: W, errors: mpsc::UnboundedSender<Vec<u8>>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(input);
    loop {
        let mut content_length: Option<usize> = None;
        let mut saw_header = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("reading stdin failed: {e}");
                    return;
                }
            }
            let trimmed = line.trim_end_matches(['\r', '\n']);
            if trimmed.is_empty() {
                if saw_header {
                    break;
                }
                continue;
            }
            saw_header = true;
            if let Some(len) = content_length_of(trimmed) {
                content_length = Some(len);
            }
        }
        let Some(len) = content_length.filter(|l| *l <= MAX_MESSAGE_BYTES) else {
            tracing::warn!("frame without a valid Content-Length header ignored");
            let _ = errors.send(error_frame(
                -32700,
                "message without a valid Content-Length header ignored",
            ));
            continue;
        };
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        match classify(&body) {
            Body::Valid(needs_normalizing) => {
                if needs_normalizing
                    && let Ok(mut value) = serde_json::from_slice::<Value>(&body)
                    && normalize(&mut value)
                {
                    body = value.to_string().into_bytes();
                }
                let header = format!("Content-Length: {}\r\n\r\n", body.len());
                if to_server.write_all(header.as_bytes()).await.is_err()
                    || to_server.write_all(&body).await.is_err()
                {
                    return;
                }
                let _ = to_server.flush().await;
            }
            Body::Invalid => {
                tracing::warn!("invalid JSON-RPC message ignored");
                let _ = errors.send(error_frame(
                    -32600,
                    "invalid request: not a JSON-RPC 2.0 request, notification or response",
                ));
            }
            Body::Malformed(e) => {
                tracing::warn!("malformed JSON ignored: {e}");
                let _ = errors.send(error_frame(-32700, &format!("parse error: {e}")));
            }
        }
    }
}

/// Copies the server's frames to `output`, interleaving injected error frames between them.
pub async fn merge_output<R, W>(
    from_server: R,
    mut output: W,
    mut errors: mpsc::UnboundedReceiver<Vec<u8>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(from_server);
    loop {
        tokio::select! {
            frame = read_frame(&mut reader) => {
                let Some(frame) = frame else { return };
                if output.write_all(&frame).await.is_err() { return; }
                let _ = output.flush().await;
            }
            Some(err) = errors.recv() => {
                if output.write_all(&err).await.is_err() { return; }
                let _ = output.flush().await;
            }
        }
    }
}

/// One whole frame (headers and body) as bytes.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.extend_from_slice(line.as_bytes());
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        if let Some(l) = content_length_of(trimmed) {
            len = l;
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.ok()?;
    head.extend_from_slice(&body);
    Some(head)
}
