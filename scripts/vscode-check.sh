#!/usr/bin/env bash
# vscode-check.sh — the VS Code extension's static checks and unit tests, for CI:
#   npm ci (root workspace) → lint (eslint, tsc --noEmit, settings vs. docs/config.schema.json)
#   → unit tests (vitest: tree model, status bar, protocol types, server lookup, manifest).
# npm keeps its download cache outside the repository (its default, ~/.npm).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
command -v node >/dev/null || { echo "node (20+) is required" >&2; exit 1; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ -n "${CI:-}" ]; then
  echo "== npm ci" >&2
  npm ci
fi
echo "== lint (eslint, tsc, settings schema)" >&2
npm run -w editors/vscode lint
echo "== unit tests (vitest)" >&2
npm run -w editors/vscode test
echo "== bundle (esbuild)" >&2
npm run -w editors/vscode build
