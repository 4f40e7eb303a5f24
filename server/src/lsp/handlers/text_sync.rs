//! Text synchronisation handlers: open, change, save, close and watched files, as session file events.

use tower_lsp_server::ls_types::*;

use super::super::from_proto;
use super::super::server::Backend;
use crate::documents::TextChange;
use crate::session::FileChange;

impl Backend {
    pub(in crate::lsp) fn open_document(&self, params: DidOpenTextDocumentParams) {
        let Ok(session) = self.session() else { return };
        let doc = params.text_document;
        session.open_document(doc.uri.as_str(), &doc.language_id, doc.version, &doc.text);
    }

    pub(in crate::lsp) fn change_document(&self, params: DidChangeTextDocumentParams) {
        // Applied synchronously, before any await: later messages see this edit.
        let Ok(session) = self.session() else { return };
        let changes: Vec<TextChange> = params
            .content_changes
            .into_iter()
            .map(from_proto::text_change)
            .collect();
        let uri = params.text_document.uri.as_str();
        if let Err(e) = session.change_document(uri, params.text_document.version, &changes) {
            tracing::warn!("{e}");
            self.log_to_client(MessageType::WARNING, e.to_string());
        }
    }

    pub(in crate::lsp) async fn save_document(&self, params: DidSaveTextDocumentParams) {
        if let Ok(session) = self.session() {
            session
                .document_saved(params.text_document.uri.as_str())
                .await;
        }
    }

    pub(in crate::lsp) fn close_document(&self, params: DidCloseTextDocumentParams) {
        if let Ok(session) = self.session() {
            session.close_document(params.text_document.uri.as_str());
        }
    }

    pub(in crate::lsp) async fn watched_files_changed(&self, params: DidChangeWatchedFilesParams) {
        let Ok(session) = self.session() else { return };
        let events = params
            .changes
            .into_iter()
            .map(|c| {
                let change = match c.typ {
                    FileChangeType::DELETED => FileChange::Deleted,
                    FileChangeType::CREATED => FileChange::Created,
                    _ => FileChange::Changed,
                };
                (c.uri.as_str().to_string(), change)
            })
            .collect();
        session.files_changed(events).await;
    }
}
