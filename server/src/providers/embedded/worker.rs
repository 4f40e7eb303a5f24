//! The embedded model's worker: one dedicated thread per loaded model that runs queued replies one at a time, loads the model on first use and drops it after an idle time.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::providers::{ChatMessage, ErrorClass};

/// What one step of generation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A token that is part of the reply, as bytes (a character may span tokens).
    Token(Vec<u8>),
    /// The template's end token (or EOS): the reply is complete.
    End,
    /// The context is full: no room for another token.
    ContextFull,
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 (or less) picks the most likely token every time.
    pub temperature: f32,
    pub seed: u64,
}

/// A generation failure: the error class and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
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
}

/// A loaded model as the worker drives it: one reply at a time.
pub trait Session: Send {
    /// Prepares a reply to `messages` (feeds the prompt); returns the prompt's token count.
    /// `cancelled` is polled between pieces of the prompt.
    fn begin(
        &mut self,
        messages: &[ChatMessage],
        sampling: Sampling,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<usize, Failure>;
    /// Produces the next token.
    fn next(&mut self) -> Result<Step, Failure>;
}

/// Loads the model (called on the worker thread, on first use and after an idle unload).
pub type Loader = Arc<dyn Fn() -> Result<Box<dyn Session>, Failure> + Send + Sync>;

/// One reply to generate.
pub struct Job {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    pub sampling: Sampling,
    /// Checked before the job starts, between prompt pieces and between tokens.
    pub cancel: CancellationToken,
    pub events: tokio::sync::mpsc::UnboundedSender<Event>,
}

/// What the worker reports about a job, in order: `Started`, any `Text`, then `Done` or
/// `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The job left the queue; `load` is set when the model had to be loaded for it.
    Started {
        load: Option<Duration>,
    },
    Text(String),
    Done {
        prompt_tokens: usize,
        completion_tokens: usize,
        /// "stop" (end token) or "length" (max_tokens or the context).
        finish_reason: &'static str,
        /// Time to feed the prompt, and to generate the reply after it.
        prompt_time: Duration,
        generation_time: Duration,
    },
    Failed(Failure),
}

struct State {
    /// The queue into the running worker thread (None: no thread runs).
    sender: Option<mpsc::Sender<Job>>,
    loaded: bool,
    loads: u64,
}

/// One model's queue and worker. Jobs run one at a time in submission order.
pub struct Engine {
    loader: Loader,
    idle: Duration,
    thread_name: String,
    state: Mutex<State>,
}

impl Engine {
    pub fn new(loader: Loader, idle: Duration, thread_name: &str) -> Arc<Engine> {
        Arc::new(Engine {
            loader,
            idle,
            thread_name: thread_name.to_string(),
            state: Mutex::new(State {
                sender: None,
                loaded: false,
                loads: 0,
            }),
        })
    }

    /// Whether the model is in memory now.
    pub fn is_loaded(&self) -> bool {
        self.state.lock().loaded
    }

    /// How many times the model was loaded.
    pub fn loads(&self) -> u64 {
        self.state.lock().loads
    }

    /// Queues `job`, starting the worker thread if none runs. Fails only when no thread can
    /// be started.
    pub fn submit(self: &Arc<Self>, job: Job) -> Result<(), Failure> {
        let mut state = self.state.lock();
        let job = match state.sender.as_ref() {
            Some(sender) => match sender.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (sender, receiver) = mpsc::channel();
        let weak = Arc::downgrade(self);
        let loader = self.loader.clone();
        let idle = self.idle;
        std::thread::Builder::new()
            .name(self.thread_name.clone())
            .spawn(move || worker(weak, loader, idle, receiver))
            .map_err(|e| {
                Failure::new(
                    ErrorClass::Internal,
                    format!("cannot start the model thread: {e}"),
                )
            })?;
        // The receiver is alive (the thread owns it), so this send cannot fail.
        let _ = sender.send(job);
        state.sender = Some(sender);
        Ok(())
    }
}

/// The worker thread: runs jobs; after `idle` without one, drops the model and exits.
fn worker(engine: Weak<Engine>, loader: Loader, idle: Duration, jobs: mpsc::Receiver<Job>) {
    let mut session: Option<Box<dyn Session>> = None;
    loop {
        let job = match jobs.recv_timeout(idle) {
            Ok(job) => job,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let Some(engine) = engine.upgrade() else {
                    break;
                };
                let mut state = engine.state.lock();
                // Senders only send under this lock: a job sent before it is in the queue now.
                match jobs.try_recv() {
                    Ok(job) => {
                        drop(state);
                        job
                    }
                    Err(_) => {
                        state.sender = None;
                        state.loaded = false;
                        drop(state);
                        if session.take().is_some() {
                            tracing::info!(
                                "embedded model unloaded after {} s idle",
                                idle.as_secs()
                            );
                        }
                        break;
                    }
                }
            }
        };
        run_job(&engine, &loader, &mut session, job);
    }
    drop(session);
    if let Some(engine) = engine.upgrade() {
        engine.state.lock().loaded = false;
    }
    crate::process::release_memory();
}

fn set_loaded(engine: &Weak<Engine>, loaded: bool) {
    if let Some(engine) = engine.upgrade() {
        let mut state = engine.state.lock();
        state.loaded = loaded;
        if loaded {
            state.loads += 1;
        }
    }
}

fn run_job(
    engine: &Weak<Engine>,
    loader: &Loader,
    session: &mut Option<Box<dyn Session>>,
    job: Job,
) {
    if job.cancel.is_cancelled() || job.events.is_closed() {
        let _ = job.events.send(Event::Failed(Failure::new(
            ErrorClass::Cancelled,
            "cancelled while queued for the model",
        )));
        return;
    }
    let mut load = None;
    if session.is_none() {
        let started = Instant::now();
        match std::panic::catch_unwind(AssertUnwindSafe(|| loader())) {
            Ok(Ok(loaded)) => {
                *session = Some(loaded);
                load = Some(started.elapsed());
                set_loaded(engine, true);
                tracing::info!(
                    "embedded model loaded in {} ms",
                    started.elapsed().as_millis()
                );
            }
            Ok(Err(failure)) => {
                let _ = job.events.send(Event::Failed(failure));
                return;
            }
            Err(_) => {
                let _ = job.events.send(Event::Failed(Failure::new(
                    ErrorClass::Internal,
                    "loading the model panicked",
                )));
                return;
            }
        }
    }
    let Some(model) = session.as_mut() else {
        return;
    };
    let _ = job.events.send(Event::Started { load });
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| generate(model.as_mut(), &job)));
    match outcome {
        Ok(Ok(done)) => {
            let _ = job.events.send(done);
        }
        Ok(Err(failure)) => {
            let _ = job.events.send(Event::Failed(failure));
        }
        Err(_) => {
            // The model's state (its KV cache) is suspect: load it afresh next time.
            *session = None;
            set_loaded(engine, false);
            let _ = job.events.send(Event::Failed(Failure::new(
                ErrorClass::Internal,
                "generation panicked; the model will be loaded again",
            )));
        }
    }
}

/// Feeds the prompt and streams tokens until the end token, `max_tokens`, the context's end,
/// or cancellation (checked before every token).
fn generate(model: &mut dyn Session, job: &Job) -> Result<Event, Failure> {
    let cancelled = || job.cancel.is_cancelled() || job.events.is_closed();
    let started = Instant::now();
    let prompt_tokens = model.begin(&job.messages, job.sampling, &cancelled)?;
    let prompt_time = started.elapsed();
    let mut text = super::tokenizer::Utf8Stream::default();
    let mut completion_tokens = 0usize;
    let mut finish_reason = "length";
    while completion_tokens < job.max_tokens as usize {
        if cancelled() {
            return Err(Failure::new(ErrorClass::Cancelled, "cancelled"));
        }
        match model.next()? {
            Step::Token(bytes) => {
                completion_tokens += 1;
                let piece = text.push(&bytes);
                if !piece.is_empty() && job.events.send(Event::Text(piece)).is_err() {
                    return Err(Failure::new(ErrorClass::Cancelled, "the caller left"));
                }
            }
            Step::End => {
                finish_reason = "stop";
                break;
            }
            Step::ContextFull => break,
        }
    }
    let tail = text.finish();
    if !tail.is_empty() {
        let _ = job.events.send(Event::Text(tail));
    }
    Ok(Event::Done {
        prompt_tokens,
        completion_tokens,
        finish_reason,
        prompt_time,
        generation_time: started.elapsed().saturating_sub(prompt_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Role;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A model that answers with `script` (then ends), `delay` per token.
    struct Scripted {
        script: Vec<Step>,
        at: usize,
        delay: Duration,
        calls: Arc<AtomicUsize>,
        /// "begin <content>" and "next <content>" in the order the model saw them.
        log: Arc<Mutex<Vec<String>>>,
        current: String,
    }

    impl Session for Scripted {
        fn begin(
            &mut self,
            messages: &[ChatMessage],
            _s: Sampling,
            _c: &dyn Fn() -> bool,
        ) -> Result<usize, Failure> {
            self.at = 0;
            self.current = messages
                .first()
                .map(|m| m.content.clone())
                .unwrap_or_default();
            self.log.lock().push(format!("begin {}", self.current));
            if messages.iter().any(|m| m.content == "too long") {
                return Err(Failure::new(
                    ErrorClass::BadRequest { status: 400 },
                    "too long",
                ));
            }
            Ok(messages.len())
        }
        fn next(&mut self) -> Result<Step, Failure> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.log.lock().push(format!("next {}", self.current));
            std::thread::sleep(self.delay);
            let step = self.script.get(self.at).cloned().unwrap_or(Step::End);
            self.at += 1;
            Ok(step)
        }
    }

    fn engine(
        script: Vec<Step>,
        delay: Duration,
        idle: Duration,
    ) -> (Arc<Engine>, Arc<AtomicUsize>) {
        let (engine, calls, _) = logged_engine(script, delay, idle);
        (engine, calls)
    }

    fn logged_engine(
        script: Vec<Step>,
        delay: Duration,
        idle: Duration,
    ) -> (Arc<Engine>, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (c, l) = (calls.clone(), log.clone());
        let loader: Loader = Arc::new(move || {
            Ok(Box::new(Scripted {
                script: script.clone(),
                at: 0,
                delay,
                calls: c.clone(),
                log: l.clone(),
                current: String::new(),
            }) as Box<dyn Session>)
        });
        (Engine::new(loader, idle, "test-model"), calls, log)
    }

    fn tokens(words: &[&str]) -> Vec<Step> {
        words
            .iter()
            .map(|w| Step::Token(w.as_bytes().to_vec()))
            .collect()
    }

    fn job(
        content: &str,
        max_tokens: u32,
    ) -> (
        Job,
        tokio::sync::mpsc::UnboundedReceiver<Event>,
        CancellationToken,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let job = Job {
            messages: vec![ChatMessage {
                role: Role::User,
                content: content.into(),
            }],
            max_tokens,
            sampling: Sampling {
                temperature: 0.0,
                seed: 1,
            },
            cancel: cancel.clone(),
            events: tx,
        };
        (job, rx, cancel)
    }

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = rx.blocking_recv() {
            let last = matches!(e, Event::Done { .. } | Event::Failed(_));
            out.push(e);
            if last {
                break;
            }
        }
        out
    }

    fn text(events: &[Event]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    fn finish(events: &[Event]) -> Option<(&'static str, usize)> {
        events.iter().find_map(|e| match e {
            Event::Done {
                finish_reason,
                completion_tokens,
                ..
            } => Some((*finish_reason, *completion_tokens)),
            _ => None,
        })
    }

    #[test]
    fn stops_at_the_end_token_or_max_tokens_or_a_full_context() {
        let mut script = tokens(&["Hel", "lo", "!"]);
        script.push(Step::End);
        script.extend(tokens(&["never"]));
        let (engine, _) = engine(script, Duration::ZERO, Duration::from_secs(5));
        let (j, mut rx, _) = job("hi", 100);
        engine.submit(j).unwrap();
        let events = drain(&mut rx);
        assert!(matches!(
            events.first(),
            Some(Event::Started { load: Some(_) })
        ));
        assert_eq!(text(&events), "Hello!");
        assert_eq!(finish(&events), Some(("stop", 3)));

        let (j, mut rx, _) = job("hi", 2);
        engine.submit(j).unwrap();
        let events = drain(&mut rx);
        assert!(
            matches!(events.first(), Some(Event::Started { load: None })),
            "loaded once"
        );
        assert_eq!(text(&events), "Hello");
        assert_eq!(finish(&events), Some(("length", 2)));

        let (full, _) = self::engine(
            vec![Step::Token(b"a".to_vec()), Step::ContextFull],
            Duration::ZERO,
            Duration::from_secs(5),
        );
        let (j, mut rx, _) = job("hi", 100);
        full.submit(j).unwrap();
        assert_eq!(finish(&drain(&mut rx)), Some(("length", 1)));
    }

    #[test]
    fn a_character_split_across_tokens_is_sent_whole() {
        let e = "é".as_bytes();
        let script = vec![Step::Token(e[..1].to_vec()), Step::Token(e[1..].to_vec())];
        let (engine, _) = engine(script, Duration::ZERO, Duration::from_secs(5));
        let (j, mut rx, _) = job("hi", 10);
        engine.submit(j).unwrap();
        let events = drain(&mut rx);
        let pieces: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::Text(_)))
            .collect();
        assert_eq!(pieces, [&Event::Text("é".into())]);
    }

    #[test]
    fn cancellation_stops_generation_between_tokens() {
        let script = tokens(&["x"; 1000]);
        let (engine, calls) = engine(script, Duration::from_millis(5), Duration::from_secs(5));
        let (j, mut rx, cancel) = job("hi", 1000);
        engine.submit(j).unwrap();
        // Wait for the first token, then cancel.
        loop {
            if let Some(Event::Text(_)) = rx.blocking_recv() {
                break;
            }
        }
        cancel.cancel();
        let events = drain(&mut rx);
        assert!(
            matches!(events.last(), Some(Event::Failed(f)) if f.class == ErrorClass::Cancelled),
            "{events:?}"
        );
        let after = calls.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            after,
            "no token after the cancel"
        );
        assert!(after < 100, "stopped early: {after} tokens");
        // The model is free again.
        let (j, mut rx, _) = job("hi", 2);
        engine.submit(j).unwrap();
        assert_eq!(finish(&drain(&mut rx)), Some(("length", 2)));
    }

    #[test]
    fn a_job_cancelled_while_queued_never_runs() {
        let (engine, calls) = engine(
            tokens(&["x"; 20]),
            Duration::from_millis(5),
            Duration::from_secs(5),
        );
        let (first, mut rx1, _) = job("first", 20);
        let (second, mut rx2, cancel2) = job("second", 20);
        engine.submit(first).unwrap();
        engine.submit(second).unwrap();
        cancel2.cancel();
        assert_eq!(finish(&drain(&mut rx1)), Some(("length", 20)));
        let events = drain(&mut rx2);
        assert!(
            matches!(events.as_slice(), [Event::Failed(f)] if f.class == ErrorClass::Cancelled)
        );
        assert_eq!(calls.load(Ordering::SeqCst), 20);
    }

    #[test]
    fn jobs_queue_and_run_one_at_a_time_in_order() {
        let (engine, _, log) = logged_engine(
            tokens(&["a", "b", "c"]),
            Duration::from_millis(10),
            Duration::from_secs(5),
        );
        let receivers: Vec<_> = (0..3)
            .map(|i| {
                let (j, r, _) = job(&format!("job{i}"), 3);
                engine.submit(j).unwrap();
                r
            })
            .collect();
        // Submitted while the first runs: the others wait, then run whole, in order.
        for mut r in receivers {
            assert_eq!(finish(&drain(&mut r)), Some(("length", 3)));
        }
        let expected: Vec<String> = (0..3)
            .flat_map(|i| {
                std::iter::once(format!("begin job{i}"))
                    .chain(std::iter::repeat_n(format!("next job{i}"), 3))
            })
            .collect();
        assert_eq!(*log.lock(), expected);
        assert_eq!(engine.loads(), 1, "one model for all jobs");
    }

    #[test]
    fn the_model_is_dropped_after_the_idle_time_and_loaded_again_on_use() {
        let (engine, _) = engine(tokens(&["a"]), Duration::ZERO, Duration::from_millis(100));
        assert!(
            !engine.is_loaded(),
            "nothing is loaded before the first use"
        );
        let (j, mut rx, _) = job("hi", 1);
        engine.submit(j).unwrap();
        drain(&mut rx);
        assert!(engine.is_loaded());
        let deadline = Instant::now() + Duration::from_secs(5);
        while engine.is_loaded() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!engine.is_loaded(), "unloaded after the idle time");
        let (j, mut rx, _) = job("hi", 1);
        engine.submit(j).unwrap();
        let events = drain(&mut rx);
        assert!(matches!(
            events.first(),
            Some(Event::Started { load: Some(_) })
        ));
        assert_eq!(engine.loads(), 2);
    }

    #[test]
    fn failures_are_reported_with_their_class() {
        let (engine, _) = engine(tokens(&["a"]), Duration::ZERO, Duration::from_secs(5));
        let (j, mut rx, _) = job("too long", 1);
        engine.submit(j).unwrap();
        let events = drain(&mut rx);
        assert!(
            matches!(events.last(), Some(Event::Failed(f)) if f.class == ErrorClass::BadRequest { status: 400 })
        );
        let failing: Loader = Arc::new(|| Err(Failure::new(ErrorClass::Config, "no such file")));
        let engine = Engine::new(failing, Duration::from_secs(5), "test-model");
        let (j, mut rx, _) = job("hi", 1);
        engine.submit(j).unwrap();
        assert!(
            matches!(drain(&mut rx).as_slice(), [Event::Failed(f)] if f.class == ErrorClass::Config)
        );
        let panicking: Loader = Arc::new(|| panic!("boom"));
        let engine = Engine::new(panicking, Duration::from_secs(5), "test-model");
        let (j, mut rx, _) = job("hi", 1);
        engine.submit(j).unwrap();
        assert!(
            matches!(drain(&mut rx).as_slice(), [Event::Failed(f)] if f.class == ErrorClass::Internal)
        );
    }
}
