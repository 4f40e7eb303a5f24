//! The LSP front end: the only module that speaks `tower_lsp_server` and `ls_types`.

mod answers;
pub mod ext;
mod from_proto;
mod handlers;
mod host;
#[cfg(test)]
mod log_tests;
mod server;
mod to_proto;
mod transport;

pub use server::{Backend, run_stdio};
