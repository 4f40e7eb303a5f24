//! Guarded stdio framing: validates every incoming message before tower-lsp-server sees it.
//!
//! tower-lsp-server's reader stops for good after one undecodable frame (its `FramedRead`
//! ends on the first decode error), so a single malformed message would end the session.
//! This layer reads Content-Length frames from stdin on its own thread, forwards well-formed
//! JSON-RPC messages to the server as a byte stream, and answers the rest itself with a JSON-RPC error
//! (`-32700` parse error, `-32600` invalid request), written between the server's own frames.

use std::io::{BufRead, Read};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

/// The reader's buffer: a pipe hands over at most 64 KiB per read.
const READ_BUFFER: usize = 128 * 1024;

/// How many outgoing frames may wait for the stdout writer. When a client stops reading, the
/// server's writes wait here instead of queueing without bound.
pub const OUTPUT_QUEUE_FRAMES: usize = 256;

/// Largest message accepted (a 20 MB file in didOpen fits comfortably).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Header lines longer than this are cut (real ones are a few dozen bytes).
const MAX_HEADER_LINE: u64 = 8 * 1024;

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

/// Reads frames from `input` on the calling (dedicated) thread until end of input; valid ones
/// go to `to_server` whole, one frame per item; invalid ones are answered through `errors`
/// (the stdout writer's queue). A plain blocking reader
/// with a large buffer: a 200 KB didOpen arrives in a few `read` calls with no hand-off to the
/// runtime between them, and is checked here while the server handles the message before it.
pub fn read_frames(
    input: impl std::io::Read,
    to_server: mpsc::UnboundedSender<std::io::Result<Bytes>>,
    errors: mpsc::Sender<Outgoing>,
) {
    let mut reader = std::io::BufReader::with_capacity(READ_BUFFER, input);
    loop {
        let mut content_length: Option<usize> = None;
        let mut saw_header = false;
        loop {
            // Bytes, not `read_line`: a header that is not UTF-8 is a bad header, not the
            // end of the session. A line longer than any header is cut (the rest reads as
            // further lines).
            let mut raw = Vec::new();
            match (&mut reader)
                .take(MAX_HEADER_LINE)
                .read_until(b'\n', &mut raw)
            {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("reading stdin failed: {e}");
                    return;
                }
            }
            let line = String::from_utf8_lossy(&raw);
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
            if let Some(len) = content_length {
                // Too large to take: skip its body so the next frame is read in step.
                tracing::warn!("message of {len} bytes ignored (limit {MAX_MESSAGE_BYTES})");
                let skip = u64::try_from(len).unwrap_or(u64::MAX);
                if std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink()).is_err() {
                    return;
                }
                let _ = errors.blocking_send(Outgoing::Frame(error_frame(
                    -32600,
                    &format!(
                        "message of {len} bytes ignored: over the {MAX_MESSAGE_BYTES}-byte limit"
                    ),
                )));
                continue;
            }
            tracing::warn!("frame without a valid Content-Length header ignored");
            let _ = errors.blocking_send(Outgoing::Frame(error_frame(
                -32700,
                "message without a valid Content-Length header ignored",
            )));
            continue;
        };
        let header = format!("Content-Length: {len}\r\n\r\n");
        let mut frame = Vec::with_capacity(header.len() + len);
        frame.extend_from_slice(header.as_bytes());
        frame.resize(header.len() + len, 0);
        let Some(body) = frame.get_mut(header.len()..) else {
            return;
        };
        if reader.read_exact(body).is_err() {
            return;
        }
        match classify(body) {
            Body::Valid(needs_normalizing) => {
                if needs_normalizing
                    && let Ok(mut value) = serde_json::from_slice::<Value>(body)
                    && normalize(&mut value)
                {
                    let body = value.to_string();
                    frame = format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
                }
                if to_server.send(Ok(Bytes::from(frame))).is_err() {
                    return;
                }
            }
            Body::Invalid => {
                tracing::warn!("invalid JSON-RPC message ignored");
                let _ = errors.blocking_send(Outgoing::Frame(error_frame(
                    -32600,
                    "invalid request: not a JSON-RPC 2.0 request, notification or response",
                )));
            }
            Body::Malformed(e) => {
                tracing::warn!("malformed JSON ignored: {e}");
                let _ = errors.blocking_send(Outgoing::Frame(error_frame(
                    -32700,
                    &format!("parse error: {e}"),
                )));
            }
        }
    }
}

/// The server's input: the frames [`read_frames`] let through, as one byte stream.
pub fn server_input(
    mut frames: mpsc::UnboundedReceiver<std::io::Result<Bytes>>,
) -> impl AsyncRead + Unpin {
    tokio_util::io::StreamReader::new(futures_util::stream::poll_fn(move |cx| {
        frames.poll_recv(cx)
    }))
}

/// What the stdout writer thread receives: a whole frame, or the end of the session.
pub enum Outgoing {
    Frame(Vec<u8>),
    End,
}

/// Writes whole frames to `output` on the calling (dedicated) thread, in the order they were
/// queued — the server's responses and the reader's error answers alike, never interleaved
/// inside a frame — until [`Outgoing::End`].
pub fn write_frames(mut output: impl std::io::Write, mut frames: mpsc::Receiver<Outgoing>) {
    while let Some(Outgoing::Frame(frame)) = frames.blocking_recv() {
        if output
            .write_all(&frame)
            .and_then(|()| output.flush())
            .is_err()
        {
            return;
        }
    }
}

/// The server's output: each write is queued whole for the writer thread. tower-lsp-server
/// encodes every message completely into its buffer before writing, and a write here always
/// takes the whole buffer, so a queued item holds whole frames only (errors go between them).
/// A write waits (without blocking the runtime) while [`OUTPUT_QUEUE_FRAMES`] frames are queued.
pub struct ServerOutput(tokio_util::sync::PollSender<Outgoing>);

impl ServerOutput {
    pub fn new(queue: mpsc::Sender<Outgoing>) -> ServerOutput {
        ServerOutput(tokio_util::sync::PollSender::new(queue))
    }
}

impl tokio::io::AsyncWrite for ServerOutput {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let closed = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        if ready!(self.0.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(closed()));
        }
        Poll::Ready(match self.0.send_item(Outgoing::Frame(buf.to_vec())) {
            Ok(()) => Ok(buf.len()),
            Err(_) => Err(closed()),
        })
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn frames_are_checked_and_answered_in_order() {
        let valid = r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        let eglot = r#"{"jsonrpc":"2.0","id":2,"method":"workspace/executeCommand","params":{"command":"x","arguments":null}}"#;
        let input = [
            frame(valid),
            frame("{not json"),
            frame(r#"{"id":3}"#),
            "X-Other: 1\r\n\r\n".to_string(),
            frame(eglot),
        ]
        .concat();
        let (forwarded, codes) = read_all(input.as_bytes());
        assert_eq!(forwarded.len(), 2);
        assert_eq!(forwarded.first(), Some(&frame(valid)));
        let normalized = forwarded.get(1).cloned().unwrap_or_default();
        assert!(normalized.starts_with("Content-Length: "));
        assert!(!normalized.contains("arguments"), "{normalized}");
        assert_eq!(codes, [-32700, -32600, -32700]);
    }

    /// The frames forwarded and the error codes answered for `input`.
    fn read_all(input: impl Read) -> (Vec<String>, Vec<i64>) {
        let (to_server, mut server_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::channel(OUTPUT_QUEUE_FRAMES);
        read_frames(input, to_server, out_tx);
        let mut forwarded = Vec::new();
        while let Ok(Ok(bytes)) = server_rx.try_recv() {
            forwarded.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        let codes = std::iter::from_fn(|| out_rx.try_recv().ok())
            .filter_map(|o| match o {
                Outgoing::Frame(f) => {
                    let text = String::from_utf8(f).ok()?;
                    let (_, body) = text.split_once("\r\n\r\n")?;
                    serde_json::from_str::<Value>(body).ok()?["error"]["code"].as_i64()
                }
                Outgoing::End => None,
            })
            .collect();
        (forwarded, codes)
    }

    #[test]
    fn a_header_that_is_not_utf8_is_a_bad_frame_not_the_end() {
        let valid = r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        let mut input = b"X-Bad: \xff\xfe\r\n\r\n".to_vec();
        input.extend_from_slice(frame(valid).as_bytes());
        let (forwarded, codes) = read_all(input.as_slice());
        assert_eq!(forwarded, [frame(valid)]);
        assert_eq!(codes, [-32700]);
    }

    #[test]
    fn an_oversized_message_is_skipped_and_the_next_one_read_in_step() {
        let valid = r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        let len = MAX_MESSAGE_BYTES + 1;
        let header = format!("Content-Length: {len}\r\n\r\n");
        let next = frame(valid);
        let input = header
            .as_bytes()
            .chain(std::io::repeat(b' ').take(len as u64))
            .chain(next.as_bytes());
        let (forwarded, codes) = read_all(input);
        assert_eq!(forwarded, [frame(valid)]);
        assert_eq!(codes, [-32600]);
    }

    #[test]
    fn the_writer_sends_whole_queued_frames_and_stops_at_the_end() {
        let (tx, rx) = mpsc::channel(8);
        for frame in [&b"one"[..], b"two"] {
            tx.try_send(Outgoing::Frame(frame.to_vec())).ok();
        }
        tx.try_send(Outgoing::End).ok();
        tx.try_send(Outgoing::Frame(b"late".to_vec())).ok();
        let mut out = Vec::new();
        write_frames(&mut out, rx);
        assert_eq!(out, b"onetwo");
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_server_wait_instead_of_growing() {
        use futures_util::FutureExt;
        use tokio::io::AsyncWriteExt;
        let (tx, mut rx) = mpsc::channel(2);
        let mut out = ServerOutput::new(tx);
        out.write_all(b"one").await.ok();
        out.write_all(b"two").await.ok();
        // the writer has taken nothing: the third frame waits
        let mut third = Box::pin(out.write_all(b"three"));
        assert!((&mut third).now_or_never().is_none());
        let first = rx.recv().await;
        assert!(matches!(first, Some(Outgoing::Frame(f)) if f == b"one"));
        assert!(third.await.is_ok());
        drop(out);
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| match rx.try_recv() {
            Ok(Outgoing::Frame(f)) => Some(f),
            _ => None,
        })
        .collect();
        assert_eq!(rest, [b"two".to_vec(), b"three".to_vec()]);
    }

    #[tokio::test]
    async fn writes_after_the_writer_stopped_are_a_broken_pipe() {
        use tokio::io::AsyncWriteExt;
        let (tx, rx) = mpsc::channel(2);
        drop(rx);
        let mut out = ServerOutput::new(tx);
        let err = out.write_all(b"x").await.err().map(|e| e.kind());
        assert_eq!(err, Some(std::io::ErrorKind::BrokenPipe));
    }
}
