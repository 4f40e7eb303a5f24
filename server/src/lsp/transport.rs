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
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    const SHUTDOWN: &str = r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;

    #[test]
    fn frames_are_checked_and_answered_in_order() {
        let valid = SHUTDOWN;
        let eglot = r#"{"jsonrpc":"2.0","id":2,"method":"workspace/executeCommand","params":{"command":"x","arguments":null}}"#;
        let input = [
            frame(valid),
            frame("{not json"),
            frame(r#"{"id":3}"#),
            "X-Other: 1\r\n\r\n".to_string(),
            frame(eglot),
        ]
        .concat();
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert_eq!(forwarded.len(), 2);
        assert_eq!(forwarded.first(), Some(&frame(valid)));
        let normalized = forwarded.get(1).cloned().unwrap_or_default();
        assert!(normalized.starts_with("Content-Length: "));
        assert!(!normalized.contains("arguments"), "{normalized}");
        assert!(normalized.contains(r#""id":2"#), "{normalized}");
        assert_eq!(codes, [-32700, -32600, -32700]);
    }

    /// The frames forwarded and the error answers (code, id) for `input`.
    fn read_answers(input: impl Read + Send + 'static) -> (Vec<String>, Vec<(i64, Value)>) {
        let (to_server, mut server_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::channel(OUTPUT_QUEUE_FRAMES);
        read_frames(input, to_server, out_tx);
        let mut forwarded = Vec::new();
        while let Ok(Ok(bytes)) = server_rx.try_recv() {
            forwarded.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        let answers = std::iter::from_fn(|| out_rx.try_recv().ok())
            .filter_map(|o| match o {
                Outgoing::Frame(f) => {
                    let text = String::from_utf8(f).ok()?;
                    let (_, body) = text.split_once("\r\n\r\n")?;
                    let v = serde_json::from_str::<Value>(body).ok()?;
                    Some((v["error"]["code"].as_i64()?, v["id"].clone()))
                }
                Outgoing::End => None,
            })
            .collect();
        (forwarded, answers)
    }

    /// The frames forwarded and the error codes answered for `input`.
    fn read_all(input: impl Read + Send + 'static) -> (Vec<String>, Vec<i64>) {
        let (forwarded, answers) = read_answers(input);
        (
            forwarded,
            answers.into_iter().map(|(code, _)| code).collect(),
        )
    }

    #[test]
    fn a_header_that_is_not_utf8_is_a_bad_frame_not_the_end() {
        let valid = SHUTDOWN;
        let mut input = b"X-Bad: \xff\xfe\r\n\r\n".to_vec();
        input.extend_from_slice(frame(valid).as_bytes());
        let (forwarded, codes) = read_all(Cursor::new(input));
        assert_eq!(forwarded, [frame(valid)]);
        assert_eq!(codes, [-32700]);
    }

    #[test]
    fn an_oversized_message_is_skipped_and_the_next_one_read_in_step() {
        let valid = SHUTDOWN;
        let len = MAX_MESSAGE_BYTES + 1;
        let header = format!("Content-Length: {len}\r\n\r\n");
        let next = frame(valid);
        let input = Cursor::new(header.into_bytes())
            .chain(std::io::repeat(b' ').take(len as u64))
            .chain(Cursor::new(next.into_bytes()));
        let (forwarded, codes) = read_all(input);
        assert_eq!(forwarded, [frame(valid)]);
        assert_eq!(codes, [-32600]);
    }

    /// Bodies that pass a JSON check but that tower-lsp-server's decoder rejects: each is
    /// answered (with the request's id when it can be read) and not forwarded.
    #[test]
    fn bodies_tower_cannot_decode_are_answered_here_with_their_id() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"x","params":{}0{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let mut bad_utf8 = br#"{"jsonrpc":"2.0","id":3,"method":"x","params":{"s":""#.to_vec();
        bad_utf8.extend_from_slice(b"\xff\xfe\"}}");
        let cases: Vec<(Vec<u8>, i64, Value)> = vec![
            (bad_utf8, -32700, json!(3)),
            (
                br#"{"jsonrpc":"2.0","id":4,"method":"x","params":{"s":"\ud800"}}"#.to_vec(),
                -32700,
                json!(4),
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#.to_vec(),
                -32600,
                json!(1.5),
            ),
            (
                br#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"x"}"#.to_vec(),
                -32600,
                serde_json::from_str("18446744073709551616").unwrap(),
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.2e29,"method":"x"}"#.to_vec(),
                -32600,
                json!(1.2e29),
            ),
            (deep.into_bytes(), -32700, json!(9)),
            (
                br#"{"jsonrpc":"2.0","method":"n","params":{"s":"\udc00"}}"#.to_vec(),
                -32700,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#.to_vec(),
                -32600,
                Value::Null,
            ),
            (
                br#"{"jsonrpc":"2.0","id":1.5,"result":null}"#.to_vec(),
                -32600,
                Value::Null,
            ),
        ];
        for (body, code, id) in cases {
            let mut input = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
            input.extend_from_slice(&body);
            input.extend_from_slice(frame(SHUTDOWN).as_bytes());
            let shown = String::from_utf8_lossy(&body).into_owned();
            let (forwarded, answers) = read_answers(Cursor::new(input));
            assert_eq!(forwarded, [frame(SHUTDOWN)], "{shown}");
            assert_eq!(answers, [(code, id)], "{shown}");
        }
    }

    fn request(id: i64) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"workspace/symbol","params":{{"query":"abc"}}}}"#
        )
    }

    /// A frame whose declared length is `delta` bytes off its body's.
    fn misframed(body: &str, delta: i64) -> String {
        let len = body.len() as i64 + delta;
        format!("Content-Length: {len}\r\n\r\n{body}")
    }

    #[test]
    fn a_length_five_too_small_is_answered_and_the_next_frame_read() {
        let input = [misframed(&request(1), -5), frame(&request(2))].concat();
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert_eq!(forwarded, [frame(&request(2))]);
        assert_eq!(codes, [-32700]);
    }

    #[test]
    fn a_length_five_too_large_keeps_the_message_and_the_next_frame() {
        let input = [misframed(&request(1), 5), frame(&request(2))].concat();
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert_eq!(forwarded, [frame(&request(1)), frame(&request(2))]);
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn a_length_far_too_large_keeps_every_frame_it_swallowed() {
        let input = [
            misframed(&request(1), 200),
            frame(&request(2)),
            frame(&request(3)),
            frame(&request(4)),
        ]
        .concat();
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        let want: Vec<String> = (1..=4).map(|i| frame(&request(i))).collect();
        assert_eq!(forwarded, want);
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn garbage_before_a_header_on_its_line_or_lines_before_is_skipped() {
        let input = [
            "}}garbage\r\nmore garbage ".to_string(),
            frame(&request(1)),
            "\"tail of something\"".to_string(),
            frame(&request(2)),
        ]
        .concat();
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert_eq!(forwarded, [frame(&request(1)), frame(&request(2))]);
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn a_body_that_ends_inside_the_next_header_name_gives_it_back() {
        // Garbage whose declared length runs 4 bytes into the next frame ("Cont").
        let garbage = "{not json";
        let input = [misframed_str(garbage, 4), frame(&request(1))].concat();
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert_eq!(forwarded, [frame(&request(1))]);
        assert_eq!(codes, [-32700]);
    }

    fn misframed_str(body: &str, delta: i64) -> String {
        misframed(body, delta)
    }

    #[test]
    fn a_header_name_cut_by_the_line_limit_is_still_found() {
        for pad in [
            MAX_HEADER_LINE - 3,
            MAX_HEADER_LINE - 10,
            3 * MAX_HEADER_LINE + 1,
        ] {
            let input = ["x".repeat(pad), frame(&request(1))].concat();
            let (forwarded, _) = read_all(Cursor::new(input.into_bytes()));
            assert_eq!(forwarded, [frame(&request(1))], "padding {pad}");
        }
    }

    #[test]
    fn a_body_cut_short_by_the_end_of_input_is_answered() {
        let input = misframed(&request(1), 200);
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert_eq!(forwarded, [frame(&request(1))]);
        assert!(codes.is_empty());
        let input = misframed(r#"{"jsonrpc":"2.0","id":1,"meth"#, 50);
        let (forwarded, codes) = read_all(Cursor::new(input.into_bytes()));
        assert!(forwarded.is_empty());
        assert_eq!(codes, [-32700]);
    }

    /// Input that hands over what the test sends and blocks until the test drops its end.
    struct Pipe(std_mpsc::Receiver<Vec<u8>>, Vec<u8>);

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                match self.0.recv() {
                    Ok(bytes) => self.1 = bytes,
                    Err(_) => return Ok(0),
                }
            }
            let n = self.1.len().min(buf.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_body_that_stalls_is_taken_as_it_is_while_the_input_stays_open() {
        let (tx, rx) = std_mpsc::channel();
        let (to_server, mut server_rx) = mpsc::unbounded_channel();
        let (out_tx, _out_rx) = mpsc::channel(OUTPUT_QUEUE_FRAMES);
        let reader =
            std::thread::spawn(move || read_frames(Pipe(rx, Vec::new()), to_server, out_tx));
        // 200 bytes too large, and the client then waits for the answer without closing.
        tx.send(
            [misframed(&request(1), 200), frame(&request(2))]
                .concat()
                .into_bytes(),
        )
        .unwrap();
        // Bounded waits (generous: the stall itself is 2 s).
        let mut next = || {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                match server_rx.try_recv() {
                    Ok(Ok(bytes)) => return Some(String::from_utf8_lossy(&bytes).into_owned()),
                    Ok(Err(_)) | Err(mpsc::error::TryRecvError::Disconnected) => return None,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            None
        };
        let got = [next(), next()];
        assert_eq!(got, [Some(frame(&request(1))), Some(frame(&request(2)))]);
        // Still reading: a later frame goes through.
        tx.send(frame(&request(3)).into_bytes()).unwrap();
        assert_eq!(next(), Some(frame(&request(3))));
        drop(tx);
        reader.join().unwrap();
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
