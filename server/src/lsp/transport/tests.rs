//! Tests of the stdio transport: framing, decoding as tower-lsp-server does, resynchronisation.

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
    let reader = std::thread::spawn(move || read_frames(Pipe(rx, Vec::new()), to_server, out_tx));
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
