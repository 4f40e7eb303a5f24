//! Infinity Matrix: a language server that captures code context and dispatches AI agents.
//!
//! The engine (`documents`, `analysis`, `index`, `context`, `providers`, `agents`, `policy`,
//! `audit`, `metrics`, `config`, `engine`, `secrets`, `uri`) knows nothing about LSP;
//! `session` owns its running parts; `lsp` and `cli` are thin front ends over the session.
//! See docs/ARCHITECTURE.md.

pub mod acp;
pub mod agents;
pub mod analysis;
pub mod audit;
pub mod cli;
pub mod config;
pub mod context;
pub mod documents;
pub mod engine;
pub mod index;
#[cfg(test)]
mod layering;
pub mod line_diff;
pub mod lsp;
pub mod mcp;
pub mod metrics;
pub mod policy;
pub mod process;
pub mod providers;
pub mod secrets;
pub mod session;
pub mod telemetry;
pub mod uri;
