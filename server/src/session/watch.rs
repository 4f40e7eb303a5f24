//! The workspace watched without an editor (MCP, ACP): file events on disk keep the index and
//! the configuration current, under the walk's ignore rules.

use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{FileChange, Session};
use crate::engine::path_to_uri;

/// How long events gather before the index takes them (a save writes several).
const SETTLE: Duration = Duration::from_millis(150);

/// Watches the session's roots while it lives.
pub struct WorkspaceWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// A session without an editor (MCP, ACP): the index built in the background and kept current
/// by watching the workspace while this lives.
pub struct Headless {
    pub session: Arc<Session>,
    _watcher: Option<WorkspaceWatcher>,
}

impl Session {
    /// Starts a session on `root` (the current directory when `None`) for a front end without
    /// an editor: UTF-8 columns, the configuration's warnings logged, the workspace indexed in
    /// the background and watched. Call it on a tokio runtime.
    pub fn start_headless(
        root: Option<&std::path::Path>,
        front_end: super::FrontEnd,
        host: Arc<dyn super::TaskHost>,
    ) -> Result<Headless, super::SessionError> {
        let given = root.map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        );
        let root = std::fs::canonicalize(&given).map_err(|e| {
            super::SessionError::Invalid(format!(
                "cannot open the workspace {}: {e}",
                given.display()
            ))
        })?;
        let settings = super::ClientSettings {
            front_end,
            encoding: crate::documents::PositionEncoding::Utf8,
            ..super::ClientSettings::default()
        };
        let started = Session::start(
            vec![root],
            settings,
            super::OnConfigError::UseDefaults,
            host,
        )
        .map_err(|e| super::SessionError::Invalid(crate::secrets::redact(&e.to_string())))?;
        for w in &started.warnings {
            tracing::warn!("{w}");
        }
        let session = started.session;
        tokio::spawn(session.index_workspace(|_| {}));
        let watcher = session
            .watch_workspace()
            .map_err(|e| {
                tracing::warn!("the workspace is not watched ({e}); the index may go stale")
            })
            .ok();
        Ok(Headless {
            session,
            _watcher: watcher,
        })
    }

    /// Starts watching the workspace roots (recursively); changes reach [`Session::files_changed`]
    /// in batches. Call it on a tokio runtime.
    pub fn watch_workspace(self: &Arc<Self>) -> notify::Result<WorkspaceWatcher> {
        let (tx, mut rx) = mpsc::unbounded_channel::<notify::Event>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let _ = tx.send(event);
                }
                Err(error) => tracing::warn!("workspace watcher: {error}"),
            })?;
        for root in self.roots() {
            watcher.watch(&root, RecursiveMode::Recursive)?;
        }
        let session = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                tokio::time::sleep(SETTLE).await;
                let mut events = vec![first];
                while let Ok(more) = rx.try_recv() {
                    events.push(more);
                }
                let Some(session) = session.upgrade() else {
                    return;
                };
                if session.is_shutting_down() {
                    return;
                }
                let changes = session.relevant_changes(events);
                if !changes.is_empty() {
                    session.files_changed(changes).await;
                }
            }
        });
        Ok(WorkspaceWatcher { _watcher: watcher })
    }

    /// The events on files the walk would index or on configuration files, one per file (the
    /// file's state now decides: gone means deleted).
    fn relevant_changes(&self, events: Vec<notify::Event>) -> Vec<(String, FileChange)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for event in events {
            if matches!(event.kind, EventKind::Access(_)) {
                continue;
            }
            for path in event.paths {
                if !seen.insert(path.clone()) {
                    continue;
                }
                let relevant = self.is_config_file(&path) || self.engine.would_index(&path);
                if !relevant {
                    continue;
                }
                let change = if !path.exists() {
                    FileChange::Deleted
                } else if matches!(event.kind, EventKind::Create(_)) {
                    FileChange::Created
                } else {
                    FileChange::Changed
                };
                out.push((path_to_uri(&path), change));
            }
        }
        out
    }
}
