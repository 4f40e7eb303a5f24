#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit, property and end-to-end tests
# (LSP over stdio, CLI, MCP and ACP through their official SDKs' clients, wiremock providers,
# and the real embedded model).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --locked --all-targets -- -D warnings

log "the embedded model (installed once, kept outside the clone in \$XDG_DATA_HOME/infinity-matrix/models)"
cargo build --locked -p infinity-matrix --bin infinity-matrix
INFINITY_MATRIX_EMBEDDED_MODEL=$("${CARGO_TARGET_DIR:-target}/debug/infinity-matrix" model install)
export INFINITY_MATRIX_EMBEDDED_MODEL
echo "embedded model: $INFINITY_MATRIX_EMBEDDED_MODEL (tests/embedded_model.rs runs it)" >&2

log "cargo tests (unit, property, LSP end-to-end over stdio, CLI, providers, orchestrator, audit, embedded model)"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

log "end-to-end against the real embedded model (SmolLM2-135M-Instruct in the server)"
bash scripts/e2e-local-model.sh

log "MCP and ACP front ends driven by the official SDKs' clients (mcp over stdio and HTTP, acp)"
INFINITY_MATRIX_BIN="${CARGO_TARGET_DIR:-target}/debug/infinity-matrix" bash scripts/frontends-e2e.sh

log "VS Code extension: npm ci, eslint, typecheck, unit tests, bundle"
bash scripts/vscode-check.sh

log "VS Code extension end to end in a real VS Code (code-server + headless Chromium)"
bash scripts/vscode-e2e.sh

log "Neovim and Emacs (eglot) driving the real server"
bash scripts/editors-e2e.sh
