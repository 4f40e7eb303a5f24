//! Symbol handlers: textDocument/documentSymbol and workspace/symbol.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::super::convert;
use super::super::server::{Backend, session_error};
use crate::engine::DocumentSymbolInfo;

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
            .map(to_document_symbol)
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
                    kind: convert::symbol_kind(h.kind),
                    tags: None,
                    deprecated: None,
                    location: Location {
                        uri,
                        range: convert::to_lsp_range(h.range),
                    },
                    container_name: h.container,
                })
            })
            .collect();
        Ok(Some(WorkspaceSymbolResponse::Flat(symbols)))
    }
}

fn to_document_symbol(s: DocumentSymbolInfo) -> DocumentSymbol {
    #[allow(deprecated)]
    DocumentSymbol {
        name: if s.name.is_empty() {
            "<anonymous>".into()
        } else {
            s.name
        },
        detail: Some(s.detail),
        kind: convert::symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range: convert::to_lsp_range(s.range),
        selection_range: convert::to_lsp_range(s.selection_range),
        children: Some(s.children.into_iter().map(to_document_symbol).collect()),
    }
}
