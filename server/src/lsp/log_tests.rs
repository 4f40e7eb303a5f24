//! tower-lsp-server's own log events, emitted by the real library, through the server's log layer.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{InitializeParams, InitializeResult, MessageType};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

struct Minimal {
    client: Client,
    keep: Arc<Mutex<Option<Client>>>,
}

impl LanguageServer for Minimal {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        if let Ok(mut keep) = self.keep.lock() {
            *keep = Some(self.client.clone());
        }
        Ok(InitializeResult::default())
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

fn frame(body: &str) -> Vec<u8> {
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// A session that initializes, sends a hover request (not implemented), and ends its input;
/// then the server logs a message to the gone client — as the initial index does when it
/// finishes after the editor closed.
fn session() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let keep = Arc::new(Mutex::new(None));
        let kept = keep.clone();
        let (service, socket) = LspService::new(move |client| Minimal { client, keep: kept });
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 16);
        let client = tokio::spawn(async move {
            // Each request only once the one before is answered (tower-lsp-server checks the
            // state when it reads a request).
            let mut seen = Vec::new();
            let requests = [
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#,
                r#"{"jsonrpc":"2.0","id":2,"method":"textDocument/hover","params":{"textDocument":{"uri":"file:///a.rs"},"position":{"line":0,"character":0}}}"#,
            ];
            for (n, request) in requests.iter().enumerate() {
                let _ = client_in.write_all(&frame(request)).await;
                if n == 0 {
                    let _ = client_in
                        .write_all(&frame(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#))
                        .await;
                }
                let answer = format!(r#""id":{}"#, n + 1);
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&seen).contains(&answer) {
                    match client_out.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => seen.extend_from_slice(buf.get(..k).unwrap_or_default()),
                    }
                }
            }
            drop(client_in);
            let _ = client_out.read_to_end(&mut seen).await;
        });
        Server::new(server_in, server_out, socket).serve(service).await;
        let gone = keep.lock().ok().and_then(|mut k| k.take());
        if let Some(gone) = gone {
            gone.log_message(MessageType::INFO, "indexed 3 files").await;
        }
        let _ = client.await;
    });
}

#[test]
fn not_implemented_and_client_gone_are_not_errors() {
    let at_info = crate::telemetry::logged_with("info", session);
    assert!(!at_info.contains("ERROR"), "{at_info}");
    assert_eq!(at_info, "", "nothing worth a line at the default level");
    let at_debug = crate::telemetry::logged_with("debug", session);
    assert!(!at_debug.contains("ERROR"), "{at_debug}");
    assert!(
        at_debug.contains("DEBUG got a `textDocument/hover` request, but it is not implemented"),
        "{at_debug}"
    );
    assert!(
        at_debug.contains("DEBUG failed to send notification"),
        "{at_debug}"
    );
}

#[test]
fn raw_messages_never_reach_the_log() {
    for filter in [
        "trace",
        "tower_lsp_server=trace",
        "tower_lsp_server::codec=trace",
    ] {
        let text = crate::telemetry::logged_with(filter, session);
        assert!(!text.contains("textDocument/hover\""), "{filter}: {text}");
        assert!(!text.contains("file:///a.rs"), "{filter}: {text}");
        assert!(!text.contains("indexed 3 files"), "{filter}: {text}");
    }
}
