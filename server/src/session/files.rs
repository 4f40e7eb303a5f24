//! File events of a session: open buffers win over the disk; edits re-index once typing pauses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::Session;
use crate::config::Trigger;
use crate::documents::TextChange;
use crate::engine::{EngineError, uri_to_path};

/// How long after a document opens its background parse starts.
const OPEN_PARSE_DELAY: Duration = Duration::from_millis(50);

/// How long after the last keystroke an open document is re-indexed.
const REINDEX_DEBOUNCE: Duration = Duration::from_millis(300);

/// What happened to a file on disk (a watcher's event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Created,
    Changed,
    Deleted,
}

/// Per-URI generation for debounced re-indexing: only the latest scheduled run does the work.
#[derive(Default)]
pub(super) struct Reindex {
    generation: Arc<Mutex<HashMap<String, u64>>>,
}

impl Session {
    /// A document was opened: mirrored now, parsed and indexed a moment later (requests that
    /// follow at once and do not need the tree are not slowed; ones that do parse on demand).
    pub fn open_document(&self, uri: &str, language_id: &str, version: i32, text: &str) {
        self.engine
            .open_document(uri, uri_to_path(uri), language_id, version, text);
        self.schedule_reindex(uri.to_string(), OPEN_PARSE_DELAY);
    }

    /// Applies edits to an open document, synchronously (call it before any `.await`: later
    /// messages see the edit); re-indexes it once edits pause.
    pub fn change_document(
        &self,
        uri: &str,
        version: i32,
        changes: &[TextChange],
    ) -> Result<(), EngineError> {
        self.engine.change_document(uri, version, changes)?;
        self.schedule_reindex(uri.to_string(), REINDEX_DEBOUNCE);
        Ok(())
    }

    /// A document was saved: save-triggered agents run on it (if the walk would index it),
    /// and the index catches up (from the buffer if open, else from the disk).
    pub async fn document_saved(&self, uri: &str) {
        if self.engine.is_workspace_file(uri) {
            let prepare = self.prepare_for_uri();
            let target = uri.to_string();
            self.orch.fire_trigger(
                Trigger::OnSave,
                uri,
                Arc::new(move |agent: &crate::agents::AgentDef| prepare(agent, &target)),
            );
        }
        if self.engine.is_document_open(uri) {
            self.schedule_reindex(uri.to_string(), Duration::ZERO);
        } else if let Some(path) = uri_to_path(uri) {
            let engine = self.engine.clone();
            let _ = tokio::task::spawn_blocking(move || engine.file_changed_on_disk(&path)).await;
        }
    }

    /// A document was closed: the file on disk is the truth again.
    pub fn close_document(&self, uri: &str) {
        self.engine.close_document(uri);
        self.reindex.generation.lock().remove(uri);
        if let Some(path) = uri_to_path(uri) {
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.file_changed_on_disk(&path));
        }
    }

    /// Files changed on disk (a watcher): a configuration file reloads the configuration; the
    /// index follows every other change except of files open as documents (the buffer wins).
    pub async fn files_changed(&self, events: Vec<(String, FileChange)>) {
        if events
            .iter()
            .any(|(uri, _)| uri_to_path(uri).is_some_and(|p| self.is_config_file(&p)))
        {
            self.reload_config(true).await;
        }
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (uri, change) in events {
                let Some(path) = uri_to_path(&uri) else {
                    continue;
                };
                if engine.is_document_open(&uri) {
                    continue; // the open buffer wins over the disk
                }
                if change == FileChange::Deleted {
                    engine.file_deleted(&path);
                } else {
                    engine.file_changed_on_disk(&path);
                }
            }
        })
        .await;
    }

    /// Parses and re-indexes a document in the background once edits pause.
    fn schedule_reindex(&self, uri: String, delay: Duration) {
        let generation = {
            let mut map = self.reindex.generation.lock();
            let g = map.entry(uri.clone()).or_insert(0);
            *g += 1;
            *g
        };
        let engine = self.engine.clone();
        let generations = self.reindex.generation.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if generations.lock().get(&uri) != Some(&generation) {
                return; // a newer edit rescheduled it
            }
            let Ok(pending) = engine.pending_snapshot(&uri) else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                let snap = pending.resolve();
                engine.reindex_open_document(&snap);
            })
            .await;
            crate::process::release_memory_when_idle();
        });
    }
}
