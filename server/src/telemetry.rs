//! Logging setup: tracing to stderr (never stdout, which is the LSP channel), with a level
//! that configuration can change at run time.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

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
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
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
