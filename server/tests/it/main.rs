//! All integration tests in one binary, so the grammars, SQLite and reqwest are linked once:
//! each module is one area (see docs/ARCHITECTURE.md, "Tests and benchmarks").

mod common;
mod support;

mod audit;
mod cli;
mod config;
mod embedded_model;
mod lsp;
mod lsp_agents;
mod lsp_extensions_doc;
mod lsp_transport;
mod metrics;
mod mirror_proptest;
mod orchestrator;
mod providers;
mod syntax_segments;
mod token_estimate;
