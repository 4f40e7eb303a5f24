//! Logging setup: tracing to stderr (never stdout, which is the LSP channel).

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. The level comes from `INFINITY_MATRIX_LOG` (or `RUST_LOG`),
/// e.g. `debug` or `infinity_matrix=trace`, else `default_level`.
pub fn init(default_level: &str) {
    let filter = std::env::var("INFINITY_MATRIX_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
