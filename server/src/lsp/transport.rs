//! Guarded stdio framing: every incoming frame is decoded as tower-lsp-server would before it sees it.
//!
//! tower-lsp-server's reader stops for good after one undecodable frame (its `FramedRead`
//! ends on the first decode error), so a single bad message would end the session. This
//! layer reads Content-Length frames from stdin on its own thread and decodes each body with
//! exactly what tower-lsp-server decodes it with (UTF-8, then its untagged `Message` over the
//! public `jsonrpc::{Response, Request}`): frames that decode are forwarded to the server as a
//! byte stream, the rest are answered here with a JSON-RPC error (`-32700` parse error,
//! `-32600` invalid request; the request's id when it can be read), written between the
//! server's own frames.
//!
//! A wrong `Content-Length` does not desynchronise the stream: a body that does not decode but
//! holds a whole JSON value followed by more bytes (the length was too large) is cut after the
//! value and the rest read again as the next header; a body that does not decode and holds a
//! `Content-Length:` header is cut before it; stray bytes before a `Content-Length:` header
//! (the rest of a body whose length was too small) are skipped, also on the header's own line.
//! A body that stops arriving for [`STALL`] (or at the end of input) is taken as it is.

use std::io::Read;
use std::sync::mpsc as std_mpsc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc::{Request, Response};

/// The reader's buffer: a pipe hands over at most 64 KiB per read.
const READ_BUFFER: usize = 128 * 1024;
/// Chunks read ahead of the framer (at most this many [`READ_BUFFER`]s in flight).
const CHUNKS_IN_FLIGHT: usize = 8;

/// How many outgoing frames may wait for the stdout writer. When a client stops reading, the
/// server's writes wait here instead of queueing without bound.
pub const OUTPUT_QUEUE_FRAMES: usize = 256;

/// Largest message accepted (a 20 MB file in didOpen fits comfortably).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
/// Header lines longer than this are cut (real ones are a few dozen bytes).
const MAX_HEADER_LINE: usize = 8 * 1024;
/// A body is allocated up to this size before its bytes arrive (a wrong length costs no more).
const INITIAL_BODY: usize = 1024 * 1024;
/// The header name every frame needs, matched without regard to case.
const CONTENT_LENGTH: &[u8] = b"content-length:";

/// When a frame's body is incomplete and no byte arrives for this long, what arrived is taken
/// as the body (a client writes a frame in one go; a stall means its length was wrong).
const STALL: Duration = Duration::from_secs(2);

/// What tower-lsp-server decodes every frame into (its `jsonrpc::Message` is private): the same
/// untagged enum over the same public types, so a body decodes here exactly when it decodes
/// there.
#[derive(Deserialize)]
#[serde(untagged)]
enum Message {
    #[allow(dead_code)]
    Response(Response),
    Request(Request),
}

/// Why a body is answered here instead of forwarded.
struct Rejection {
    code: i64,
    message: String,
}

/// Decodes `body` as tower-lsp-server's codec does (`str::from_utf8`, then `serde_json::from_str`
/// into its message type). `Ok(Some(body))` is a replacement body (see [`normalize`]).
fn decode(body: &[u8]) -> Result<Option<Vec<u8>>, Rejection> {
    let text = std::str::from_utf8(body).map_err(|e| Rejection {
        code: -32700,
        message: format!("parse error: invalid UTF-8 at byte {}", e.valid_up_to()),
    })?;
    match serde_json::from_str::<Message>(text) {
        Ok(Message::Request(request)) if request.method() == "workspace/executeCommand" => {
            Ok(normalize(request))
        }
        Ok(_) => Ok(None),
        // The codes tower-lsp-server itself would answer with.
        Err(e) if e.is_data() => Err(Rejection {
            code: -32600,
            message: format!(
                "invalid request: not a JSON-RPC 2.0 request, notification or response ({})",
                request_error(text).unwrap_or_else(|| e.to_string())
            ),
        }),
        Err(e) => Err(Rejection {
            code: -32700,
            message: format!("parse error: {e}"),
        }),
    }
}

/// Why `text` is not a request, when it looks like one (a clearer reason than the untagged
/// enum's "did not match any variant").
fn request_error(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    value.get("method")?;
    serde_json::from_value::<Request>(value)
        .err()
        .map(|e| e.to_string())
}

/// Client quirks that ls_types would reject: eglot sends `"arguments": null` for a command
/// without arguments. Returns the rewritten body when the request was changed.
fn normalize(request: Request) -> Option<Vec<u8>> {
    let needs = request
        .params()
        .and_then(|p| p.get("arguments"))
        .is_some_and(Value::is_null);
    if !needs {
        return None;
    }
    let (method, id, params) = request.into_parts();
    let mut params = params?;
    params.as_object_mut()?.remove("arguments");
    let mut builder = Request::build(method).params(params);
    if let Some(id) = id {
        builder = builder.id(id);
    }
    serde_json::to_vec(&builder.finish()).ok()
}

/// True when the key is there, whatever its value (including `null`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    <serde::de::IgnoredAny as Deserialize>::deserialize(d).map(|_| true)
}

/// The id to answer a rejected body with: a request's own id, verbatim, when it can be read
/// (also one tower-lsp-server cannot take, such as `1.5`, 2^64 or `1.2e29`, so the client
/// can match the error to its request). Notifications, responses and unreadable ids get `null`.
fn answer_id(body: &[u8]) -> Option<Box<RawValue>> {
    /// Only the id and whether there is a method: string contents elsewhere are not checked.
    #[derive(Deserialize)]
    struct Lenient<'a> {
        #[serde(default, borrow)]
        id: Option<&'a RawValue>,
        #[serde(default, deserialize_with = "present")]
        method: bool,
    }
    let lenient: Lenient<'_> = serde_json::from_slice(body).ok()?;
    let id = lenient.id.filter(|_| lenient.method)?;
    let text = id.get();
    let scalar = text.starts_with(['"', '-']) || text.starts_with(|c: char| c.is_ascii_digit());
    (scalar && serde_json::from_str::<Value>(text).is_ok()).then(|| id.to_owned())
}

/// A JSON-RPC error response, framed.
fn error_frame(id: Option<&RawValue>, code: i64, message: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct ErrorBody<'a> {
        code: i64,
        message: &'a str,
    }
    #[derive(serde::Serialize)]
    struct ErrorResponse<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RawValue>,
        error: ErrorBody<'a>,
    }
    let body = serde_json::to_vec(&ErrorResponse {
        jsonrpc: "2.0",
        id,
        error: ErrorBody { code, message },
    })
    .unwrap_or_default();
    framed(&body)
}

/// `body` with its Content-Length header.
fn framed(body: &[u8]) -> Vec<u8> {
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    let mut frame = Vec::with_capacity(header.len() + body.len());
    frame.extend_from_slice(header.as_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Where a `Content-Length:` header name starts in `bytes`, ignoring case.
fn find_content_length(bytes: &[u8]) -> Option<usize> {
    memchr::memmem::find(&bytes.to_ascii_lowercase(), CONTENT_LENGTH)
}

/// The value of a `Content-Length` header line that starts with the name.
fn content_length_of(line: &[u8]) -> Option<usize> {
    let value = line.get(CONTENT_LENGTH.len()..)?;
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Where a body that does not decode should be cut because its declared length was wrong:
/// after a first whole JSON value that more bytes follow (too large: the rest is the next
/// frame's start), else before a `Content-Length:` header inside it or the start of one at its
/// end (the body runs into the next frame). A body that is one whole value is not cut (its
/// length was right).
fn cut_point(body: &[u8]) -> Option<usize> {
    let mut values =
        serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => {
            let end = values.byte_offset();
            let rest = body.get(end..).unwrap_or_default();
            rest.iter().any(|b| !b.is_ascii_whitespace()).then_some(end)
        }
        _ => find_content_length(body).or_else(|| {
            // The body ends inside the next header's name: put that part back.
            (1..CONTENT_LENGTH.len())
                .rev()
                .map(|n| body.len().saturating_sub(n))
                .find(|&at| {
                    let tail = body.get(at..).unwrap_or_default();
                    !tail.is_empty()
                        && CONTENT_LENGTH
                            .get(..tail.len())
                            .is_some_and(|name| tail.eq_ignore_ascii_case(name))
                })
        }),
    }
}

/// How waiting for input ended.
enum Fill {
    More,
    Ended,
    Stalled,
}

/// The bytes of the input, read on a thread of their own (so the framer can stop waiting for
/// a body that stalls), with a buffer that bytes can be put back into.
struct Input {
    chunks: std_mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Input {
    fn spawn(mut input: impl Read + Send + 'static) -> std::io::Result<Input> {
        let (tx, chunks) = std_mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
        std::thread::Builder::new()
            .name("lsp-stdin-read".into())
            .spawn(move || {
                let mut buf = vec![0; READ_BUFFER];
                loop {
                    match input.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            let chunk = buf.get(..n).unwrap_or_default().to_vec();
                            if tx.send(chunk).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::error!("reading stdin failed: {e}");
                            return;
                        }
                    }
                }
            })?;
        Ok(Input {
            chunks,
            buf: Vec::new(),
            pos: 0,
            ended: false,
        })
    }

    fn available(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Waits for more bytes, at most `stall` when given.
    fn fill(&mut self, stall: Option<Duration>) -> Fill {
        if self.ended {
            return Fill::Ended;
        }
        let chunk = match stall {
            None => self.chunks.recv().ok(),
            Some(limit) => match self.chunks.recv_timeout(limit) {
                Ok(chunk) => Some(chunk),
                Err(std_mpsc::RecvTimeoutError::Timeout) => return Fill::Stalled,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => None,
            },
        };
        let Some(chunk) = chunk else {
            self.ended = true;
            return Fill::Ended;
        };
        if self.pos >= self.buf.len() {
            self.buf = chunk;
        } else {
            self.buf.drain(..self.pos);
            self.buf.extend_from_slice(&chunk);
        }
        self.pos = 0;
        Fill::More
    }

    /// The next line with its newline, or at most `max` bytes of one (`true`: cut, no
    /// newline); `None` at the end of input.
    fn read_line(&mut self, max: usize) -> Option<(Vec<u8>, bool)> {
        loop {
            let available = self.available();
            let window = available
                .get(..available.len().min(max))
                .unwrap_or_default();
            if let Some(i) = memchr::memchr(b'\n', window) {
                let line = window.get(..=i).unwrap_or_default().to_vec();
                self.pos += line.len();
                return Some((line, false));
            }
            if available.len() >= max {
                let line = window.to_vec();
                self.pos += line.len();
                return Some((line, true));
            }
            if let Fill::Ended = self.fill(None) {
                let rest = self.available().to_vec();
                self.pos += rest.len();
                return (!rest.is_empty()).then_some((rest, true));
            }
        }
    }

    /// Up to `len` bytes; fewer (and why) when the input ends or stalls first.
    fn read_body(&mut self, len: usize) -> (Vec<u8>, Option<Fill>) {
        let mut body = Vec::with_capacity(len.min(INITIAL_BODY));
        loop {
            let available = self.available();
            let take = available.len().min(len - body.len());
            body.extend_from_slice(available.get(..take).unwrap_or_default());
            self.pos += take;
            if body.len() == len {
                return (body, None);
            }
            match self.fill(Some(STALL)) {
                Fill::More => {}
                short => return (body, Some(short)),
            }
        }
    }

    /// Skips up to `len` bytes (stops early when the input ends or stalls).
    fn skip(&mut self, len: usize) {
        let mut left = len;
        loop {
            let take = self.available().len().min(left);
            self.pos += take;
            left -= take;
            if left == 0 || !matches!(self.fill(Some(STALL)), Fill::More) {
                return;
            }
        }
    }

    /// Puts `bytes` back in front of what is still to be read.
    fn unread(&mut self, bytes: &[u8]) {
        let mut buf = Vec::with_capacity(bytes.len() + self.available().len());
        buf.extend_from_slice(bytes);
        buf.extend_from_slice(self.available());
        self.buf = buf;
        self.pos = 0;
    }
}

/// A frame's header block.
enum Header {
    Length(usize),
    /// Header lines without a valid `Content-Length`.
    Missing,
    End,
}

/// Reads header lines up to the blank line that ends them. Stray bytes before a
/// `Content-Length:` header (also on its own line) are skipped, so the stream finds its step
/// again after a body whose declared length was too small.
fn read_header(input: &mut Input) -> Header {
    let mut length = None;
    let mut saw_line = false;
    loop {
        let Some((line, cut)) = input.read_line(MAX_HEADER_LINE) else {
            return Header::End;
        };
        match find_content_length(&line) {
            Some(0) => {
                length = content_length_of(&line);
                saw_line = true;
            }
            Some(at) => {
                tracing::warn!("{at} stray bytes before a Content-Length header skipped");
                input.unread(line.get(at..).unwrap_or_default());
                saw_line = true;
            }
            None if cut => {
                // A header name cut in two is found whole in the next piece.
                let keep = CONTENT_LENGTH.len() - 1;
                if line.len() > keep {
                    input.unread(line.get(line.len() - keep..).unwrap_or_default());
                }
                saw_line = true;
            }
            None => {
                let blank = line.iter().all(|b| matches!(b, b'\r' | b'\n'));
                if blank && saw_line {
                    break;
                }
                saw_line |= !blank;
            }
        }
    }
    match length {
        Some(len) => Header::Length(len),
        None => Header::Missing,
    }
}

/// Reads frames from `input` on the calling (dedicated) thread until end of input (or until
/// the server stops taking them); frames that decode go to `to_server` whole, one frame per
/// item; the rest are answered through `errors` (the stdout writer's queue). The bytes are
/// read on a second thread with a large buffer: a 200 KB didOpen arrives in a few `read`
/// calls and is decoded here while the server handles the message before it.
pub fn read_frames(
    input: impl Read + Send + 'static,
    to_server: mpsc::UnboundedSender<std::io::Result<Bytes>>,
    errors: mpsc::Sender<Outgoing>,
) {
    let mut input = match Input::spawn(input) {
        Ok(input) => input,
        Err(e) => {
            tracing::error!("could not start the stdin reader: {e}");
            return;
        }
    };
    let answer = |id: Option<&RawValue>, code: i64, message: &str| {
        let _ = errors.blocking_send(Outgoing::Frame(error_frame(id, code, message)));
    };
    loop {
        let len = match read_header(&mut input) {
            Header::End => return,
            Header::Missing => {
                tracing::warn!("frame without a valid Content-Length header ignored");
                answer(
                    None,
                    -32700,
                    "message without a valid Content-Length header ignored",
                );
                continue;
            }
            Header::Length(len) if len > MAX_MESSAGE_BYTES => {
                // Too large to take: skip its body so the next frame is read in step.
                tracing::warn!("message of {len} bytes ignored (limit {MAX_MESSAGE_BYTES})");
                input.skip(len);
                answer(
                    None,
                    -32600,
                    &format!(
                        "message of {len} bytes ignored: over the {MAX_MESSAGE_BYTES}-byte limit"
                    ),
                );
                continue;
            }
            Header::Length(len) => len,
        };
        let (mut body, short) = input.read_body(len);
        match short {
            Some(Fill::Stalled) => tracing::warn!(
                "frame body incomplete: {} of {len} bytes, then nothing for {} s; taken as it is",
                body.len(),
                STALL.as_secs()
            ),
            Some(_) => tracing::warn!(
                "frame body incomplete: {} of {len} bytes, then the input ended",
                body.len()
            ),
            None => {}
        }
        let decoded = decode(&body).or_else(|rejection| match cut_point(&body) {
            Some(at) => {
                tracing::warn!(
                    "frame body of {} bytes does not decode; cut at byte {at}, the rest read as the next frame",
                    body.len()
                );
                input.unread(body.get(at..).unwrap_or_default());
                body.truncate(at);
                decode(&body)
            }
            None => Err(rejection),
        });
        match decoded {
            Ok(replacement) => {
                let frame = framed(replacement.as_deref().unwrap_or(&body));
                if to_server.send(Ok(Bytes::from(frame))).is_err() {
                    return;
                }
            }
            Err(rejection) => {
                tracing::warn!("message not taken: {}", rejection.message);
                answer(
                    answer_id(&body).as_deref(),
                    rejection.code,
                    &rejection.message,
                );
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
mod tests;
