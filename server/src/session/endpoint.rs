//! The session's Prometheus endpoint: started, kept, re-keyed or stopped as `[metrics]` says.

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Notice, Session};
use crate::config::MetricsConfig;
use crate::metrics::{Access, MetricsError};
use crate::secrets::redact;

/// The running endpoint: its `listen`, its token, and what stops it.
#[derive(Default)]
pub(super) struct Endpoint {
    running: Mutex<Option<(String, Access, CancellationToken)>>,
}

impl Endpoint {
    pub(super) fn stop(&self) {
        if let Some((_, _, token)) = self.running.lock().take() {
            token.cancel();
        }
    }
}

impl Session {
    /// Starts, keeps, re-keys or stops the Prometheus endpoint. A setting that cannot be used
    /// (token file unreadable, port taken, ...) turns metrics off with a warning.
    pub(super) async fn apply_metrics(&self, config: &MetricsConfig) {
        let settings = match crate::metrics::endpoint_settings(config) {
            Ok(settings) => settings,
            Err(e) => {
                self.endpoint.stop();
                self.warn_metrics_off(&e).await;
                return;
            }
        };
        let Some(settings) = settings else {
            self.endpoint.stop();
            return;
        };
        if let Some((listen, access, _)) = self.endpoint.running.lock().as_ref()
            && *listen == settings.listen
        {
            access.set_token(settings.token);
            return;
        }
        self.endpoint.stop();
        let access = Access::new(settings.token);
        let token = CancellationToken::new();
        match crate::metrics::serve_prometheus_with(
            self.metrics.clone(),
            &settings.listen,
            access.clone(),
            token.clone(),
        )
        .await
        {
            Ok(addr) => {
                tracing::info!("metrics at http://{addr}/metrics");
                *self.endpoint.running.lock() = Some((settings.listen, access, token));
            }
            Err(e) => self.warn_metrics_off(&e).await,
        }
    }

    /// Tells the user (and stderr) that metrics are off.
    async fn warn_metrics_off(&self, e: &MetricsError) {
        let message = format!(
            "Infinity Matrix: {}: {}; metrics are off",
            e.key(),
            redact(&e.to_string())
        );
        tracing::warn!("{message}");
        self.host.notify(Notice::Warning(message)).await;
    }
}
