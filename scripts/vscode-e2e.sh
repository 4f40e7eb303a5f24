#!/usr/bin/env bash
# vscode-e2e.sh — end-to-end test of the VS Code extension in a real VS Code (code-server,
# the VS Code web build) driven by playwright-core in Debian's headless Chromium.
#
# Installs what it needs (idempotent; a second run skips finished steps):
#   - Debian packages: build tools and headers for code-server's native modules, ripgrep,
#     chromium (skipped when present);
#   - code-server 4.100.x (VS Code 1.100) and playwright-core from npm, cached outside the
#     repository under $INFINITY_MATRIX_CACHE/vscode;
#   - the root npm workspace (npm ci) when node_modules is missing or stale;
# builds the release server and the .vsix (npm run package), then runs tests/vscode/e2e.mjs:
# a fake OpenAI-compatible streaming server, code-server with the .vsix installed and a
# fixture workspace, and the checks (Execute Prompt from the palette, the answer streaming
# into its document, the Agents tree and the status bar, code actions, approving edits in
# the diff preview and through the server's Apply notification, an auto-applied edit, the
# context snapshot, the audit log, and a restart with back-off after the server is killed).
#
# Usage: bash scripts/vscode-e2e.sh
# Env:   INFINITY_MATRIX_CACHE   cache root (default ~/.cache/infinity-matrix)
#        INFINITY_MATRIX_E2E_LLM_URL  an OpenAI-compatible base URL (e.g. a llama.cpp server,
#                                 http://127.0.0.1:8765/v1) instead of the fake server
#        CS_VERSION (4.100.3), PW_VERSION (1.65.1), CHROMIUM (/usr/bin/chromium)
#        SKIP_BUILD=1             use the existing release binary and .vsix
#        SETUP_ONLY=1             install the tools and stop
# Prints "N passed, N failed"; screenshots go to $INFINITY_MATRIX_CACHE/artifacts/vscode-e2e/.
# Works without a display, without stdin and with CI=true.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${INFINITY_MATRIX_CACHE:-$HOME/.cache/infinity-matrix}"
VS_CACHE="$CACHE/vscode"
ARTIFACTS="$CACHE/artifacts/vscode-e2e"
CS_VERSION="${CS_VERSION:-4.100.3}"   # newest code-server whose engines allow node 20 (VS Code 1.100.3)
PW_VERSION="${PW_VERSION:-1.65.1}"    # playwright-core: the driver only, the browser is Debian's chromium
CS_DIR="$VS_CACHE/cs"
HARNESS_DIR="$VS_CACHE/harness"
LOGDIR="$VS_CACHE/logs"
mkdir -p "$VS_CACHE" "$LOGDIR" "$ARTIFACTS"
exec </dev/null
log() { printf '[vscode-e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; echo "0 passed, 1 failed"; exit 1; }
t_start=$(date +%s)

# ------------------------------------------------------------------ 1. Debian packages
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
APT_PKGS=(build-essential pkg-config python3 libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev
          ripgrep chromium fonts-dejavu-core ca-certificates)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  as_root apt-get update >"$LOGDIR/apt-update.log" 2>&1 || die "apt-get update failed (see $LOGDIR/apt-update.log)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
    >"$LOGDIR/apt-install.log" 2>&1 || { tail -20 "$LOGDIR/apt-install.log" >&2; die "apt-get install failed"; }
else
  log "apt: all packages present"
fi

# ------------------------------------------------------------------ 2. node toolchain
command -v node >/dev/null || die "node is required (Debian: apt-get install nodejs npm; node 20)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" = 20 ] || die "code-server $CS_VERSION needs node 20, found $(node -v)"
[ -f /usr/include/node/node_version.h ] || die "node headers not found in /usr/include/node (Debian: libnode-dev); node-gyp would try to download them"
export npm_config_nodedir=/usr                 # node-gyp: use the local headers, never download
export npm_config_unsafe_perm=true             # code-server's postinstall as root
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export npm_config_yes=true                     # node-pty's postinstall runs npx non-interactively

# ------------------------------------------------------------------ 3. code-server
CS_BIN="$CS_DIR/node_modules/.bin/code-server"
cs_version() { local d rc=0; d=$(mktemp -d)
  XDG_CONFIG_HOME="$d" XDG_DATA_HOME="$d" XDG_CACHE_HOME="$d" \
    "$CS_BIN" --config "$d/config.yaml" --user-data-dir "$d/ud" --version || rc=$?
  rm -rf "$d"; return $rc; }
if [ -f "$CS_DIR/.install-ok" ] && [ "$(cat "$CS_DIR/.install-ok")" = "$CS_VERSION" ] && cs_version >/dev/null 2>&1; then
  log "code-server $CS_VERSION already installed in $CS_DIR"
else
  t0=$(date +%s)
  rm -rf "$CS_DIR"; mkdir -p "$CS_DIR"
  WORK="$CS_DIR/.prep"; mkdir -p "$WORK"
  # code-server's postinstall runs `npm install` in lib/vscode, where @vscode/ripgrep's
  # postinstall downloads a ripgrep binary from outside the registries. Its download.js first
  # looks for the asset in $TMPDIR/vscode-ripgrep-cache-<version>/: seed that cache with
  # Debian's ripgrep (same upstream release), so no download is attempted.
  log "code-server $CS_VERSION: preparing the ripgrep cache"
  (cd "$WORK" && npm pack "code-server@$CS_VERSION" --silent >/dev/null)
  tar -xzf "$WORK/code-server-$CS_VERSION.tgz" -C "$WORK" package/lib/vscode/npm-shrinkwrap.json
  RG_PKG_VER=$(node -p 'require(process.argv[1]).packages["node_modules/@vscode/ripgrep"].version' \
               "$WORK/package/lib/vscode/npm-shrinkwrap.json")
  (cd "$WORK" && npm pack "@vscode/ripgrep@$RG_PKG_VER" --silent >/dev/null)
  tar -xzf "$WORK/vscode-ripgrep-$RG_PKG_VER.tgz" -C "$WORK" package/lib/postinstall.js package/lib/download.js
  RG_TAG=$(sed -n "s/^const VERSION = '\(.*\)';.*/\1/p" "$WORK/package/lib/postinstall.js")
  grep -q 'vscode-ripgrep-cache-${packageVersion}' "$WORK/package/lib/download.js" \
    && grep -q 'Using cached download' "$WORK/package/lib/download.js" \
    || die "@vscode/ripgrep $RG_PKG_VER no longer has the download cache this script relies on"
  case "$(uname -m)" in
    x86_64) RG_TARGET=x86_64-unknown-linux-musl ;;
    aarch64) RG_TARGET=aarch64-unknown-linux-musl ;;
    *) die "unsupported architecture $(uname -m)" ;;
  esac
  export TMPDIR="$CS_DIR/.tmp"
  RG_CACHE="$TMPDIR/vscode-ripgrep-cache-$RG_PKG_VER"
  mkdir -p "$RG_CACHE" "$WORK/rg"
  install -m 755 "$(command -v rg)" "$WORK/rg/rg"
  tar -czf "$RG_CACHE/ripgrep-$RG_TAG-$RG_TARGET.tar.gz" -C "$WORK/rg" rg
  cat >"$CS_DIR/package.json" <<EOF
{ "name": "infinity-matrix-cs-host", "private": true, "version": "0.0.0",
  "dependencies": { "code-server": "$CS_VERSION" } }
EOF
  log "npm install code-server@$CS_VERSION (compiles native modules: a few minutes on 2 cores)"
  if ! (cd "$CS_DIR" && npm install --foreground-scripts --no-package-lock >"$LOGDIR/npm-code-server.log" 2>&1); then
    tail -40 "$LOGDIR/npm-code-server.log" >&2
    die "code-server install failed, see $LOGDIR/npm-code-server.log"
  fi
  VS="$CS_DIR/node_modules/code-server/lib/vscode"
  for f in "$VS/node_modules/@vscode/ripgrep/bin/rg" \
           "$VS/node_modules/@vscode/spdlog/build/Release/spdlog.node" \
           "$VS/node_modules/node-pty/build/Release/pty.node" \
           "$VS/node_modules/native-watchdog/build/Release/watchdog.node"; do
    [ -f "$f" ] || die "code-server install incomplete: missing $f"
  done
  cs_version >/dev/null || die "code-server does not run"
  rm -rf "$WORK" "$TMPDIR"; unset TMPDIR
  echo "$CS_VERSION" >"$CS_DIR/.install-ok"
  log "code-server installed in $(( $(date +%s) - t0 ))s"
fi

# ------------------------------------------------------------------ 4. playwright-core
if [ -f "$HARNESS_DIR/node_modules/playwright-core/package.json" ] \
   && [ "$(node -p "require('$HARNESS_DIR/node_modules/playwright-core/package.json').version")" = "$PW_VERSION" ]; then
  log "playwright-core $PW_VERSION already installed"
else
  mkdir -p "$HARNESS_DIR"
  cat >"$HARNESS_DIR/package.json" <<EOF
{ "name": "infinity-matrix-e2e-harness", "private": true, "version": "0.0.0",
  "dependencies": { "playwright-core": "$PW_VERSION" } }
EOF
  log "npm install playwright-core@$PW_VERSION"
  (cd "$HARNESS_DIR" && npm install --no-package-lock >"$LOGDIR/npm-harness.log" 2>&1) \
    || { tail -20 "$LOGDIR/npm-harness.log" >&2; die "playwright-core install failed"; }
fi

# ------------------------------------------------------------------ 5. the extension's dependencies
cd "$REPO"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci (root workspace)"
  npm ci >"$LOGDIR/npm-ci.log" 2>&1 || { tail -30 "$LOGDIR/npm-ci.log" >&2; die "npm ci failed"; }
else
  log "node_modules up to date"
fi

if [ -n "${SETUP_ONLY:-}" ]; then log "SETUP_ONLY: tools installed in $(( $(date +%s) - t_start ))s"; exit 0; fi

# ------------------------------------------------------------------ 6. server + .vsix
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
if [ -z "${SKIP_BUILD:-}" ]; then
  log "cargo build --release (the server)"
  cargo build --release -p infinity-matrix --bin infinity-matrix >"$LOGDIR/cargo-build.log" 2>&1 \
    || { tail -30 "$LOGDIR/cargo-build.log" >&2; die "cargo build --release failed"; }
  log "npm run package (the .vsix)"
  rm -f editors/vscode/infinity-matrix-agent-*.vsix
  npm run -w editors/vscode package >"$LOGDIR/package.log" 2>&1 \
    || { tail -30 "$LOGDIR/package.log" >&2; die "packaging the .vsix failed"; }
fi
VSIX=$(ls -t editors/vscode/infinity-matrix-agent-*.vsix 2>/dev/null | head -1 || true)
[ -n "$VSIX" ] || die "no .vsix in editors/vscode (run without SKIP_BUILD)"
log "setup done in $(( $(date +%s) - t_start ))s; running the tests with $VSIX"

# ------------------------------------------------------------------ 7. the test
rm -f "$ARTIFACTS"/*.png
export E2E_CODE_SERVER="$CS_DIR/node_modules/code-server/out/node/entry.js"
export E2E_PLAYWRIGHT="$HARNESS_DIR/node_modules/playwright-core"
export E2E_VSIX="$REPO/$VSIX"
export E2E_ARTIFACTS="$ARTIFACTS"
export E2E_LOGDIR="$LOGDIR"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
rc=0
node tests/vscode/e2e.mjs || rc=$?
log "screenshots and logs: $ARTIFACTS"
exit $rc
