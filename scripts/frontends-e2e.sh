#!/usr/bin/env bash
# frontends-e2e.sh — end-to-end tests of the MCP and ACP front ends (`infinity-matrix mcp`,
# `infinity-matrix acp`) driven by the official SDKs' clients (@modelcontextprotocol/sdk over
# stdio and Streamable HTTP, @agentclientprotocol/sdk over stdio), against the Python fixture
# project and a mock Ollama provider on 127.0.0.1 (tests/frontends/mock-provider.mjs).
#
# Installs tests/frontends' locked npm packages (npm ci, cached outside the repository),
# builds the debug binary unless INFINITY_MATRIX_BIN names one, then runs node's test runner.
#
# Usage: bash scripts/frontends-e2e.sh [test files] (default: tests/frontends/*.test.mjs)
# Env:   INFINITY_MATRIX_BIN     the server binary to test (default: cargo build, debug profile)
#        XDG_CACHE_HOME          the npm cache goes to $XDG_CACHE_HOME/infinity-matrix/npm
# Works without a display, without stdin and with CI=true; talks only to 127.0.0.1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
exec </dev/null
log() { printf '[frontends-e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; echo "0 passed, 1 failed"; exit 1; }

command -v node >/dev/null || die "node >= 20 is required (Debian: apt-get install nodejs npm)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node >= 20 is required, found $(node -v)"

# ------------------------------------------------------------------ 1. the SDKs
NPM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/infinity-matrix/npm"
mkdir -p "$NPM_CACHE"
log "npm ci in tests/frontends"
npm ci --prefix tests/frontends --no-audit --no-fund --cache "$NPM_CACHE" >&2 \
  || die "npm ci failed in tests/frontends"

# ------------------------------------------------------------------ 2. the server
if [ -z "${INFINITY_MATRIX_BIN:-}" ]; then
  log "cargo build (debug)"
  cargo build --locked -p infinity-matrix --bin infinity-matrix || die "cargo build failed"
  INFINITY_MATRIX_BIN="${CARGO_TARGET_DIR:-target}/debug/infinity-matrix"
fi
case "$INFINITY_MATRIX_BIN" in /*) ;; *) INFINITY_MATRIX_BIN="$REPO/$INFINITY_MATRIX_BIN" ;; esac
[ -x "$INFINITY_MATRIX_BIN" ] || die "server binary not found: $INFINITY_MATRIX_BIN"
export INFINITY_MATRIX_BIN
log "server binary $INFINITY_MATRIX_BIN"

# ------------------------------------------------------------------ 3. the tests
if [ "$#" -gt 0 ]; then
  FILES=("$@")
else
  FILES=(tests/frontends/mcp.test.mjs tests/frontends/acp.test.mjs)
fi
node --test --test-concurrency=1 --test-timeout=120000 "${FILES[@]}"
