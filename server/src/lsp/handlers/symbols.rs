//! Symbol handlers: textDocument/documentSymbol and workspace/symbol.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::super::server::{Backend, session_error};
use super::super::to_proto;

impl Backend {
    pub(in crate::lsp) async fn document_symbols(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        let symbols = self
            .session()?
            .document_symbols(params.text_document.uri.as_str())
            .await
            .map_err(session_error)?
            .into_iter()
            .map(to_proto::document_symbol)
            .collect();
        Ok(Some(DocumentSymbolResponse::Nested(symbols)))
    }

    pub(in crate::lsp) async fn workspace_symbols(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        let hits = self
            .session()?
            .workspace_symbols(params.query, 256)
            .await
            .map_err(session_error)?;
        #[allow(deprecated)]
        let symbols = hits
            .into_iter()
            .filter_map(|h| {
                let uri: Uri = crate::engine::path_to_uri(&h.path).parse().ok()?;
                Some(SymbolInformation {
                    name: h.name,
                    kind: to_proto::symbol_kind(h.kind),
                    tags: None,
                    deprecated: None,
                    location: Location {
                        uri,
                        range: to_proto::range(h.range),
                    },
                    container_name: h.container,
                })
            })
            .collect();
        Ok(Some(WorkspaceSymbolResponse::Flat(symbols)))
    }
}
