//! A session's configuration sources (files, client settings) and hot reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::{Notice, Session};
use crate::agents::OrchestratorConfig;
use crate::config::{Config, ConfigSources};
use crate::secrets::redact;

/// How often the configuration files are checked for changes (hot reload).
const CONFIG_POLL: Duration = Duration::from_secs(2);

/// Where configuration comes from: the user and workspace files and the client.
pub(super) struct ConfigState {
    sources: ConfigSources,
    /// Settings the client gave at start (LSP: `initializationOptions.config`).
    initial: Option<Config>,
    /// The latest settings the client sent since (LSP: the `infinityMatrix` section of
    /// workspace/configuration, replaced on each pull).
    latest: Mutex<Option<Config>>,
}

impl ConfigState {
    pub(super) fn new(sources: ConfigSources, initial: Option<Config>) -> ConfigState {
        ConfigState {
            sources,
            initial,
            latest: Mutex::new(None),
        }
    }

    /// The client's settings at start with the latest ones over them.
    fn client_settings(&self) -> Option<Config> {
        let latest = self.latest.lock().clone();
        match (self.initial.clone(), latest) {
            (Some(mut base), Some(over)) => {
                crate::config::overlay(&mut base, over);
                Some(base)
            }
            (base, over) => over.or(base),
        }
    }

    fn stamps(&self) -> Vec<Option<SystemTime>> {
        self.sources
            .files()
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    }
}

impl Session {
    /// Replaces the client's latest settings (applied by the next [`Session::reload_config`]).
    pub fn set_client_settings(&self, config: Config) {
        *self.config.latest.lock() = Some(config);
    }

    /// The configuration files the session reads (a change to one calls for a reload).
    pub fn config_files(&self) -> Vec<PathBuf> {
        self.config.sources.files()
    }

    pub(super) fn is_config_file(&self, path: &Path) -> bool {
        self.config.sources.files().iter().any(|f| f == path)
    }

    /// Loads configuration from every source and applies it (agents, providers, log level,
    /// metrics endpoint). On error the previous configuration stays in force and the user is
    /// told. `announce` also tells the user that it was reloaded.
    pub async fn reload_config(&self, announce: bool) {
        let client = self.config.client_settings();
        match crate::config::load(&self.config.sources, client.as_ref()) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                    self.host
                        .notify(Notice::Warning(format!("Infinity Matrix: {w}")))
                        .await;
                }
                self.orch.reconfigure(OrchestratorConfig {
                    config: loaded.config.clone(),
                    workspace_roots: self.engine.roots(),
                });
                if let Some(level) = &loaded.config.log_level
                    && let Err(e) = crate::telemetry::set_level(level)
                {
                    self.host
                        .notify(Notice::Warning(format!("Infinity Matrix: {e}")))
                        .await;
                }
                self.apply_metrics(&loaded.config.metrics).await;
                self.host.status_changed();
                if announce {
                    self.host
                        .notify(Notice::Info("configuration reloaded".into()))
                        .await;
                }
            }
            Err(e) => {
                let message = format!(
                    "Infinity Matrix configuration error, keeping the previous configuration: {}",
                    redact(&e.to_string())
                );
                tracing::error!("{message}");
                self.host.notify(Notice::Error(message)).await;
            }
        }
    }

    /// Polls the configuration files and reloads when one changes, until the session ends.
    pub fn watch_config(self: &Arc<Self>) {
        let session = Arc::downgrade(self);
        let mut stamps = self.config.stamps();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CONFIG_POLL).await;
                let Some(session) = session.upgrade() else {
                    return;
                };
                if session.is_shutting_down() {
                    return;
                }
                let now = session.config.stamps();
                if now != stamps {
                    stamps = now;
                    session.reload_config(true).await;
                }
            }
        });
    }
}
