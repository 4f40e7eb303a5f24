#!/usr/bin/env bash
# End-to-end test against the real embedded model: installs SmolLM2-135M-Instruct with
# `infinity-matrix model install` (cached under $XDG_DATA_HOME/infinity-matrix/models, outside
# the clone) and drives `infinity-matrix lsp` over stdio, the server running the model itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p infinity-matrix --bin infinity-matrix
bin="${CARGO_TARGET_DIR:-target}/debug/infinity-matrix"
model=$("$bin" model install)
python3 tests/e2e/local_model_e2e.py "$bin" "$model"
