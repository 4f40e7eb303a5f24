//! The LSP front end: the only module that speaks `tower_lsp_server` and `ls_types`.

mod answers;
mod convert;
pub mod ext;
mod handlers;
mod host;
#[cfg(test)]
mod log_tests;
mod server;
mod transport;

pub use server::{Backend, run_stdio};
