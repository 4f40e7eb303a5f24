//! LSP handlers by area; `server.rs` keeps the lifecycle and dispatches to them.

mod agents;
mod ext;
mod symbols;
mod text_sync;
