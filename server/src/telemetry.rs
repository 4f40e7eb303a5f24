//! Logging setup: tracing to stderr (never stdout), redacted, without raw protocol messages.
//!
//! stdout is the LSP channel. The level comes from the environment or configuration and can
//! change at run time; every line passes through the secret redactor.
//!
//! tower-lsp-server traces every message it reads or writes (`tower_lsp_server::codec` and the
//! client's "suppressing message" at TRACE), which would put `infinityMatrix/setSecret` values
//! in the log: those events are dropped whatever filter the user sets. Its "got a … request,
//! but it is not implemented" (answered with MethodNotFound) and "failed to send notification"
//! (the client is gone) are not errors: they are shown as DEBUG, when DEBUG is enabled for
//! their target.

use std::io::Write;
use std::sync::OnceLock;

use tracing::callsite::{Callsite, Identifier};
use tracing::field::FieldSet;
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber, span};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, filter::LevelFilter, reload};

static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The filter from `INFINITY_MATRIX_LOG` (or `RUST_LOG`), if set: it wins over configuration.
fn env_filter() -> Option<EnvFilter> {
    std::env::var("INFINITY_MATRIX_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|s| EnvFilter::try_new(s).ok())
}

/// Installs the stderr subscriber. The level comes from `INFINITY_MATRIX_LOG` (or `RUST_LOG`),
/// e.g. `debug` or `infinity_matrix=trace`, else `default_level` (configuration may change it
/// later through [`set_level`]).
pub fn init(default_level: &str) {
    let filter = env_filter().unwrap_or_else(|| EnvFilter::new(default_level));
    let (filter, handle) = reload::Layer::new(filter);
    if tracing_subscriber::registry()
        .with(stderr_layer(filter, std::io::stderr))
        .try_init()
        .is_ok()
    {
        let _ = LEVEL.set(handle);
    }
}

/// Applies `log_level` from configuration, unless the environment set one.
pub fn set_level(level: &str) -> Result<(), String> {
    if env_filter().is_some() {
        return Ok(());
    }
    let filter = EnvFilter::try_new(level).map_err(|e| format!("log_level {level:?}: {e}"))?;
    match LEVEL.get() {
        Some(handle) => handle.reload(filter).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// The log layer: `filter` (the user's) behind [`Guard`], lines formatted by [`Relevel`] and
/// redacted on their way to `writer`.
fn stderr_layer<S, F, W>(filter: F, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: Filter<S> + 'static,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(Redacting(writer))
        .with_ansi(false)
        .event_format(Relevel(
            tracing_subscriber::fmt::format()
                .with_ansi(false)
                .with_target(false),
        ))
        .with_filter(Guard(filter))
}

/// What the log does with an event, whatever the user's filter says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Treatment {
    /// The user's filter decides.
    AsIs,
    /// Never logged: raw protocol messages.
    Drop,
    /// Logged as DEBUG, when the user's filter enables DEBUG for its target.
    Debug,
}

fn treatment(meta: &Metadata<'_>) -> Treatment {
    let Some(rest) = meta.target().strip_prefix("tower_lsp_server") else {
        return Treatment::AsIs;
    };
    if !(rest.is_empty() || rest.starts_with("::")) {
        return Treatment::AsIs;
    }
    let level = *meta.level();
    if level == Level::TRACE || rest.starts_with("::codec") {
        // Every message in and out, verbatim (secrets included).
        Treatment::Drop
    } else if rest.starts_with("::server") {
        // "got a `…` request, but it is not implemented": answered with MethodNotFound.
        Treatment::Debug
    } else if rest == "::service::client" && level == Level::ERROR {
        // "failed to send notification": the client is gone.
        Treatment::Debug
    } else {
        Treatment::AsIs
    }
}

/// The identity of the DEBUG twins [`Guard`] asks the user's filter about.
struct TwinCallsite;
static TWIN_CALLSITE: TwinCallsite = TwinCallsite;
static TWIN_METADATA: Metadata<'static> = Metadata::new(
    "relevelled event",
    "tower_lsp_server",
    Level::DEBUG,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&TWIN_CALLSITE)),
    Kind::EVENT,
);

impl Callsite for TwinCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &TWIN_METADATA
    }
}

/// The user's filter, except for the events [`treatment`] overrides.
struct Guard<F>(F);

impl<S, F: Filter<S>> Filter<S> for Guard<F> {
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        match treatment(meta) {
            Treatment::AsIs => self.0.enabled(meta, cx),
            Treatment::Drop => false,
            Treatment::Debug => {
                let twin = Metadata::new(
                    meta.name(),
                    meta.target(),
                    Level::DEBUG,
                    meta.file(),
                    meta.line(),
                    meta.module_path(),
                    FieldSet::new(&[], Identifier(&TWIN_CALLSITE)),
                    Kind::EVENT,
                );
                self.0.enabled(&twin, cx)
            }
        }
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match treatment(meta) {
            Treatment::AsIs => self.0.callsite_enabled(meta),
            Treatment::Drop => Interest::never(),
            Treatment::Debug => Interest::sometimes(),
        }
    }

    fn event_enabled(&self, event: &Event<'_>, cx: &Context<'_, S>) -> bool {
        self.0.event_enabled(event, cx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.0.max_level_hint()
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        self.0.on_record(id, values, cx);
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_enter(id, cx);
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        self.0.on_exit(id, cx);
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        self.0.on_close(id, cx);
    }
}

/// The usual line format, with the events [`treatment`] demotes written as DEBUG.
struct Relevel<F>(F);

impl<S, N, F> FormatEvent<S, N> for Relevel<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        cx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if treatment(event.metadata()) != Treatment::Debug {
            return self.0.format_event(cx, writer, event);
        }
        SystemTime.format_time(&mut writer)?;
        write!(writer, " DEBUG ")?;
        cx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Hands each formatted line to the secret redactor before it reaches `M`'s writer.
struct Redacting<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactedLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedLine {
            line: Vec::new(),
            out: self.0.make_writer(),
        }
    }
}

/// One log line, written redacted when it is complete (the formatter drops it after the event).
struct RedactedLine<W: Write> {
    line: Vec<u8>,
    out: W,
}

impl<W: Write> Write for RedactedLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactedLine<W> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = crate::secrets::redact(&String::from_utf8_lossy(&self.line));
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

/// A log sink the test can read.
#[cfg(test)]
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[cfg(test)]
impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
    }
}

/// What `emit` logs (on this thread) under the filter string `filter`, through the same layer
/// as the server's log.
#[cfg(test)]
pub(crate) fn logged_with(filter: &str, emit: impl FnOnce()) -> String {
    let out = Captured::default();
    let subscriber =
        tracing_subscriber::registry().with(stderr_layer(EnvFilter::new(filter), out.clone()));
    tracing::subscriber::with_default(subscriber, emit);
    out.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events tower-lsp-server emits with raw messages, at their targets and levels.
    fn tower_raw_messages(secret: &str) {
        let msg =
            format!(r#"{{"method":"infinityMatrix/setSecret","params":{{"value":"{secret}"}}}}"#);
        tracing::trace!(target: "tower_lsp_server::codec", "<- {}", msg);
        tracing::trace!(target: "tower_lsp_server::codec", "-> {}", msg);
        tracing::trace!(target: "tower_lsp_server::service::client", "server not initialized, supressing message: {}", msg);
        tracing::info!(target: "infinity_matrix::lsp", "still logged");
    }

    #[test]
    fn raw_protocol_messages_are_dropped_whatever_the_filter() {
        let secret = "zz-distinctive-secret-value-42";
        for (filter, others_shown) in [
            ("trace", true),
            ("tower_lsp_server=trace", false),
            ("tower_lsp_server::codec=trace", false),
            ("tower_lsp_server::service::client=trace,info", true),
            (
                "off,tower_lsp_server::service::client=trace,infinity_matrix=info",
                true,
            ),
        ] {
            let text = logged_with(filter, || tower_raw_messages(secret));
            assert!(!text.contains(secret), "{filter}: {text}");
            assert!(!text.contains("setSecret"), "{filter}: {text}");
            assert_eq!(
                text.contains("still logged"),
                others_shown,
                "{filter}: {text}"
            );
        }
    }

    #[test]
    fn registered_secrets_are_redacted_from_every_line() {
        let secret = "zz-registered-secret-for-the-log-0123";
        crate::secrets::register_secret(secret);
        let text = logged_with("info", || tracing::warn!("provider said: {secret}"));
        assert!(text.contains("provider said"), "{text}");
        assert!(!text.contains(secret), "{text}");
    }

    #[test]
    fn tower_not_implemented_and_gone_client_are_debug_not_error() {
        let emit = || {
            tracing::error!(target: "tower_lsp_server::server", "got a `textDocument/hover` request, but it is not implemented");
            tracing::error!(target: "tower_lsp_server::service::client", "failed to send notification");
        };
        let info = logged_with("info", emit);
        assert_eq!(info, "", "hidden at the default level");
        for filter in [
            "debug",
            "tower_lsp_server=debug",
            "info,tower_lsp_server::server=debug,tower_lsp_server::service=debug",
        ] {
            let debug = logged_with(filter, emit);
            assert!(!debug.contains("ERROR"), "{filter}: {debug}");
            assert_eq!(debug.matches(" DEBUG ").count(), 2, "{filter}: {debug}");
            assert!(
                debug.contains("not implemented") && debug.contains("failed to send notification"),
                "{debug}"
            );
        }
        // Other errors keep their level.
        let other = logged_with(
            "info",
            || tracing::error!(target: "tower_lsp_server::transport", "failed to decode message"),
        );
        assert!(other.contains("ERROR"), "{other}");
    }
}
