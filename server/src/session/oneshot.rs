//! One-shot work for commands that need no running session: a root's configuration, provider checks, the audit log, context of a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::agents::effective_providers;
use crate::audit::{AuditEntry, AuditError, AuditLog, AuditQuery, audit_dir, database_file_in};
use crate::config::{Config, ConfigError, ConfigSources, LoadedConfig, ProviderConfig};
use crate::context::{ContextRequest, ContextSnapshot};
use crate::documents::{Position, PositionEncoding, Range};
use crate::engine::{Engine, EngineError, path_to_uri};
use crate::providers::{HealthReport, ProviderHandle};
use crate::secrets::{SecretStore, redact};

/// How long a provider check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration for a workspace root: the user file and the root's workspace file.
pub fn load_config(root: &Path) -> Result<LoadedConfig, ConfigError> {
    crate::config::load(&ConfigSources::for_root(Some(root)), None)
}

/// How one configured provider answered a check.
#[derive(Debug, Clone)]
pub enum ProviderCheck {
    /// It could not be built from its configuration (the error, redacted).
    Unusable(String),
    /// It did not answer within the time allowed.
    NoAnswer,
    /// Its report (the detail redacted).
    Report(HealthReport),
}

/// Checks every provider in effect (reachable, authorised, model present), one at a time.
pub async fn check_providers(config: &Config) -> Vec<(String, ProviderConfig, ProviderCheck)> {
    let secrets = Arc::new(SecretStore::new());
    let mut out = Vec::new();
    for (name, cfg) in effective_providers(config) {
        let check = match ProviderHandle::from_config(&name, &cfg, secrets.clone()) {
            Err(e) => ProviderCheck::Unusable(redact(&e.to_string())),
            Ok(h) => match tokio::time::timeout(CHECK_TIMEOUT, h.provider.check()).await {
                Ok(mut report) => {
                    report.detail = redact(&report.detail);
                    ProviderCheck::Report(report)
                }
                Err(_) => ProviderCheck::NoAnswer,
            },
        };
        out.push((name, cfg, check));
    }
    out
}

/// Errors reading a root's audit log.
#[derive(Debug, thiserror::Error)]
pub enum ReadAuditError {
    #[error("no audit log for {} yet ({} does not exist)", root.display(), path.display())]
    NoLog { root: PathBuf, path: PathBuf },
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Entries of the audit log of a workspace root (an existing log only; nothing is created).
pub fn read_audit(root: &Path, query: &AuditQuery) -> Result<Vec<AuditEntry>, ReadAuditError> {
    let path = database_file_in(&audit_dir(), Some(root));
    if !path.exists() {
        return Err(ReadAuditError::NoLog {
            root: root.to_path_buf(),
            path,
        });
    }
    let log = AuditLog::open(&path, false)?;
    Ok(log.query(query)?)
}

/// The context snapshot of a file on disk (UTF-8 columns): the workspace at `root` is indexed,
/// the file's `text` opened as a document, and the snapshot built at `position` / `range`.
pub fn context_of_file(
    root: PathBuf,
    file: &Path,
    text: &str,
    position: Position,
    range: Option<Range>,
    budget_tokens: usize,
) -> Result<ContextSnapshot, EngineError> {
    let engine = Engine::new();
    engine.set_encoding(PositionEncoding::Utf8);
    engine.set_roots(vec![root]);
    engine.index_workspace(&|_| {});
    let uri = path_to_uri(file);
    engine.open_document(&uri, Some(file.to_path_buf()), "", 1, text);
    let snap = engine
        .snapshot(&uri)
        .ok_or_else(|| EngineError::NotOpen(uri.clone()))?;
    let req = ContextRequest {
        position,
        range,
        budget_tokens,
        diagnostics: Vec::new(),
        encoding: PositionEncoding::Utf8,
        exclude: None,
        enclosing_percent: crate::context::DEFAULT_ENCLOSING_PERCENT,
    };
    engine.context(&snap, &req)
}
