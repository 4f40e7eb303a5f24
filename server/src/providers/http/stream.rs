//! Streamed replies: SSE and NDJSON framing, the stall and total-time limits while a reply streams, and the loop that feeds a parser's chunks to the task.

use super::*;

/// One unit of a streamed reply: an SSE event (`event` is its type, "message" by default) or an
/// NDJSON line (`event` is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub event: String,
    pub data: String,
}

/// A classified failure before it is attributed to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub class: ErrorClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }

    pub fn protocol(what: &str, data: &str, err: &dyn std::fmt::Display) -> Self {
        Failure::new(
            ErrorClass::Protocol,
            format!(
                "malformed {what}: {err}; data: {}",
                truncate_chars(data.trim(), 200)
            ),
        )
    }
}

/// What a parser wants after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The end marker arrived: the reply is complete.
    Done,
}

/// Turns frames of one wire protocol into text, usage and a finish reason.
pub(crate) trait StreamParser: Send {
    fn frame(&mut self, frame: &Frame, out: &mut StreamOut<'_>) -> Result<Flow, Failure>;
    /// The body ended before [`Flow::Done`] (after at least one frame): Ok if the reply is
    /// nevertheless complete.
    fn eof(&mut self, out: &StreamOut<'_>) -> Result<(), Failure>;
}

/// What a parser produces while a reply streams.
pub(crate) struct StreamOut<'a> {
    on_chunk: ChunkSink<'a>,
    start: Instant,
    pub text: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    pub time_to_first_token: Option<Duration>,
}

impl<'a> StreamOut<'a> {
    fn new(on_chunk: ChunkSink<'a>, start: Instant) -> Self {
        StreamOut {
            on_chunk,
            start,
            text: String::new(),
            usage: Usage::default(),
            finish_reason: None,
            time_to_first_token: None,
        }
    }

    /// Appends a text chunk and passes it on at once.
    pub fn push_text(&mut self, chunk: &str) {
        if chunk.is_empty() {
            return;
        }
        if self.time_to_first_token.is_none() {
            self.time_to_first_token = Some(self.start.elapsed());
        }
        self.text.push_str(chunk);
        (self.on_chunk)(chunk);
    }
}

/// A token count from JSON (absent, negative or too large counts are `None`).
pub(crate) fn count(v: Option<u64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

/// How a reply body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Sse,
    Ndjson,
}

pub(super) type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, Failure>> + Send>>;

pub(super) fn broken(err: &reqwest::Error) -> Failure {
    let class = match classify_reqwest_error(err, true) {
        ErrorClass::Timeout => ErrorClass::Timeout,
        _ => ErrorClass::StreamBroken,
    };
    Failure::new(
        class,
        format!("the connection broke mid-stream: {}", describe_error(err)),
    )
}

/// What feeds the SSE parser: the body's bytes, or why they stopped.
#[derive(Debug)]
pub(super) enum SseSource {
    Transport(reqwest::Error),
    /// More than [`MAX_LINE_BYTES`] arrived without completing an event.
    EventTooLong,
}

impl std::fmt::Display for SseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseSource::Transport(e) => write!(f, "{}", describe_error(e)),
            SseSource::EventTooLong => {
                write!(f, "an SSE event is longer than {MAX_LINE_BYTES} bytes")
            }
        }
    }
}

/// SSE events over a response body. Comments (`: ping`) and events without data are dropped by
/// the parser; event types are left to the adapter. The parser buffers an event until it is
/// complete, so more than [`MAX_LINE_BYTES`] without one is a protocol error (an endless line
/// must not grow memory without bound).
pub(crate) fn sse_frames(response: reqwest::Response) -> FrameStream {
    let pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fed = Arc::clone(&pending);
    let body = response.bytes_stream().map(move |item| match item {
        Ok(bytes) => {
            let total = fed
                .fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed)
                .saturating_add(bytes.len());
            if total > MAX_LINE_BYTES {
                Err(SseSource::EventTooLong)
            } else {
                Ok(bytes)
            }
        }
        Err(e) => Err(SseSource::Transport(e)),
    });
    Box::pin(body.eventsource().map(move |item| match item {
        Ok(event) => {
            pending.store(0, std::sync::atomic::Ordering::Relaxed);
            Ok(Frame {
                event: event.event,
                data: event.data,
            })
        }
        Err(EventStreamError::Transport(SseSource::Transport(e))) => Err(broken(&e)),
        Err(EventStreamError::Transport(e @ SseSource::EventTooLong)) => {
            Err(Failure::new(ErrorClass::Protocol, e.to_string()))
        }
        Err(EventStreamError::Utf8(e)) => Err(Failure::new(
            ErrorClass::Protocol,
            format!("the SSE stream is not valid UTF-8: {e}"),
        )),
        Err(EventStreamError::Parser(e)) => Err(Failure::new(
            ErrorClass::Protocol,
            format!("malformed SSE line: {e}"),
        )),
    }))
}

/// NDJSON lines over a byte stream (blank lines skipped; a last line without a newline counts).
pub(crate) fn ndjson_frames<S, B>(body: S) -> FrameStream
where
    S: Stream<Item = Result<B, reqwest::Error>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    struct State<S> {
        body: Pin<Box<S>>,
        buf: Vec<u8>,
        ended: bool,
    }
    let state = State {
        body: Box::pin(body),
        buf: Vec::new(),
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(pos) = st.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = st.buf.drain(..=pos).collect();
                if let Some(frame) = line_frame(&line) {
                    return Some((frame, st));
                }
                continue;
            }
            if st.ended {
                if st.buf.is_empty() {
                    return None;
                }
                let line = std::mem::take(&mut st.buf);
                match line_frame(&line) {
                    Some(frame) => return Some((frame, st)),
                    None => return None,
                }
            }
            if st.buf.len() > MAX_LINE_BYTES {
                st.buf.clear();
                st.ended = true;
                let failure = Failure::new(
                    ErrorClass::Protocol,
                    format!("an NDJSON line is longer than {MAX_LINE_BYTES} bytes"),
                );
                return Some((Err(failure), st));
            }
            match st.body.next().await {
                Some(Ok(bytes)) => st.buf.extend_from_slice(bytes.as_ref()),
                Some(Err(e)) => {
                    st.ended = true;
                    st.buf.clear();
                    return Some((Err(broken(&e)), st));
                }
                None => st.ended = true,
            }
        }
    }))
}

pub(super) fn line_frame(line: &[u8]) -> Option<Result<Frame, Failure>> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim(),
        Err(e) => {
            return Some(Err(Failure::new(
                ErrorClass::Protocol,
                format!("an NDJSON line is not valid UTF-8: {e}"),
            )));
        }
    };
    if text.is_empty() {
        return None;
    }
    Some(Ok(Frame {
        event: String::new(),
        data: text.to_string(),
    }))
}

/// `at + wait`, saturating at a year from `at` (configured timeouts can be absurdly large).
pub(super) fn later(at: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    at.checked_add(wait.min(FAR)).unwrap_or(at)
}

/// Which deadline a wait runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    FirstToken,
    Stall,
    Total,
}

pub(super) fn wait_failure(
    wait: Wait,
    limits: &CallLimits,
    out: &StreamOut<'_>,
    stage: &str,
) -> Failure {
    match wait {
        Wait::FirstToken => Failure::new(
            ErrorClass::FirstTokenTimeout,
            format!(
                "no text within the first-token timeout of {} ms ({stage})",
                limits.first_token.as_millis()
            ),
        ),
        Wait::Stall => Failure::new(
            ErrorClass::Timeout,
            format!(
                "the stream stalled: nothing received for {} ms after {} chars of text",
                limits.first_token.as_millis(),
                out.text.chars().count()
            ),
        ),
        Wait::Total => Failure::new(
            ErrorClass::Timeout,
            format!(
                "the call exceeded the total timeout of {} ms ({stage})",
                limits.total.as_millis()
            ),
        ),
    }
}

/// Sends a streaming request and drives the reply through `parser`: chunks go to `on_chunk` as
/// they arrive; the first-token, stall and total timeouts apply; `cancel` aborts at once (the
/// response is dropped, which closes the connection).
pub(crate) async fn run_chat<P: StreamParser>(
    core: &ProviderCore,
    url: &str,
    request: reqwest::RequestBuilder,
    framing: Framing,
    mut parser: P,
    on_chunk: ChunkSink<'_>,
    cancel: CancellationToken,
) -> Result<ChatOutcome, ProviderError> {
    if cancel.is_cancelled() {
        return Err(core.error(
            ErrorClass::Cancelled,
            "cancelled before the request was sent",
        ));
    }
    let start = Instant::now();
    let mut out = StreamOut::new(on_chunk, start);
    tracing::debug!(provider = %core.name, url = %redact(url), "sending streaming chat request");
    let result = {
        let work = drive(
            core,
            url,
            request,
            framing,
            &mut parser,
            &mut out,
            start,
            &cancel,
        );
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(Failure::new(
                ErrorClass::Cancelled,
                format!("cancelled by the caller after {} ms", start.elapsed().as_millis()),
            )),
            r = work => r,
        }
    };
    let result = match result {
        Ok(Some(rest)) => {
            drain(rest).await;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(f) => Err(f),
    };
    let result = match result {
        Ok(()) if out.text.is_empty() => {
            let why = match &out.finish_reason {
                Some(reason) => format!("the reply held no text (finish reason {reason})"),
                None => "the reply held no text".to_string(),
            };
            Err(Failure::new(ErrorClass::EmptyReply, why))
        }
        other => other,
    };
    match result {
        Ok(()) => {
            tracing::debug!(
                provider = %core.name,
                chars = out.text.len(),
                ttft_ms = out.time_to_first_token.map(|d| d.as_millis() as u64),
                "chat reply complete"
            );
            Ok(ChatOutcome {
                text: out.text,
                usage: out.usage,
                finish_reason: out.finish_reason,
                time_to_first_token: out.time_to_first_token,
            })
        }
        Err(failure) => {
            let err = core.failure(failure, out.text);
            tracing::debug!(provider = %core.name, class = err.class.name(), "chat failed: {}", err.message);
            Err(err)
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call's parts, borrowed from run_chat for the call"
)]
pub(super) async fn drive<P: StreamParser>(
    core: &ProviderCore,
    url: &str,
    request: reqwest::RequestBuilder,
    framing: Framing,
    parser: &mut P,
    out: &mut StreamOut<'_>,
    start: Instant,
    cancel: &CancellationToken,
) -> Result<Option<FrameStream>, Failure> {
    let limits = core.limits;
    let total_deadline = later(start, limits.total);
    let first_deadline = later(start, limits.first_token);
    let (before_text, before_text_wait) = if first_deadline <= total_deadline {
        (first_deadline, Wait::FirstToken)
    } else {
        (total_deadline, Wait::Total)
    };

    let response = match tokio::time::timeout_at(before_text, request.send()).await {
        Err(_) => {
            return Err(wait_failure(
                before_text_wait,
                &limits,
                out,
                "waiting for the response",
            ));
        }
        Ok(Err(e)) => {
            let class = classify_reqwest_error(&e, false);
            let what = match class {
                ErrorClass::ConnectTimeout => format!(
                    "could not connect to {} at {url} within {} ms",
                    core.kind_name(),
                    limits.connect.as_millis()
                ),
                _ => format!("request to {} at {url} failed", core.kind_name()),
            };
            return Err(Failure::new(
                class,
                format!("{what}: {}", describe_error(&e)),
            ));
        }
        Ok(Ok(r)) => r,
    };
    if !response.status().is_success() {
        return match tokio::time::timeout_at(
            total_deadline,
            failure_from_response(core, url, response),
        )
        .await
        {
            Ok(f) => Err(f),
            Err(_) => Err(wait_failure(
                Wait::Total,
                &limits,
                out,
                "reading an error reply",
            )),
        };
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if framing == Framing::Sse && (content_type.contains("json") || content_type.contains("html")) {
        let mut response = response;
        let body = tokio::time::timeout_at(
            total_deadline,
            read_bounded(&mut response, MAX_ERROR_BODY_BYTES),
        )
        .await
        .unwrap_or_default();
        return Err(Failure::new(
            ErrorClass::Protocol,
            format!(
                "expected an SSE stream from {} at {url} but got {content_type}: {}",
                core.kind_name(),
                error_detail(&body)
            ),
        ));
    }

    let mut frames = match framing {
        Framing::Sse => sse_frames(response),
        Framing::Ndjson => ndjson_frames(response.bytes_stream()),
    };
    let mut any_frame = false;
    let mut last_activity = Instant::now();
    loop {
        let (deadline, wait) = if out.time_to_first_token.is_none() {
            (before_text, before_text_wait)
        } else {
            let stall = later(last_activity, limits.first_token);
            if stall < total_deadline {
                (stall, Wait::Stall)
            } else {
                (total_deadline, Wait::Total)
            }
        };
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Err(_) => return Err(wait_failure(wait, &limits, out, "while streaming")),
            Ok(None) => {
                if !any_frame {
                    return Err(Failure::new(
                        ErrorClass::EmptyReply,
                        format!("{} at {url} answered with an empty body", core.kind_name()),
                    ));
                }
                return parser.eof(out).map(|()| None);
            }
            Ok(Some(Err(failure))) => return Err(failure),
            Ok(Some(Ok(frame))) => {
                any_frame = true;
                last_activity = Instant::now();
                if parser.frame(&frame, out)? == Flow::Done {
                    return Ok(Some(frames));
                }
                // A fast stream may never leave this loop pending, so the caller's select
                // would not see the token: check it after every frame (e.g. the reply cap).
                if cancel.is_cancelled() {
                    return Err(Failure::new(
                        ErrorClass::Cancelled,
                        format!(
                            "cancelled by the caller after {} ms",
                            start.elapsed().as_millis()
                        ),
                    ));
                }
            }
        }
    }
}

/// Reads what is left of a finished reply (ignoring it) so the connection goes back to the pool:
/// briefly inline, then in the background; a server that keeps streaming is cut off.
pub(super) async fn drain(mut frames: FrameStream) {
    let mut rest = Box::pin(async move { while frames.next().await.is_some() {} });
    if tokio::time::timeout(DRAIN_INLINE, &mut rest).await.is_err()
        && let Ok(handle) = tokio::runtime::Handle::try_current()
    {
        handle.spawn(async move {
            let _ = tokio::time::timeout(DRAIN_BACKGROUND, rest).await;
        });
    }
}
