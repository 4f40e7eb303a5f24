#!/usr/bin/env bash
# editors-e2e.sh — the real infinity-matrix binary driven by other editors' LSP clients:
# headless Neovim (Debian's neovim, 0.7, built-in LSP client) and Emacs eglot in batch mode
# (Debian's emacs-nox + elpa-eglot). Each editor: initialize, documentSymbol, a code action
# that runs an agent (its answer streams back), an `auto` agent's edit landing in the buffer
# through workspace/applyEdit, and a manual approval answered through
# window/showMessageRequest (the test's handler answers "Apply").
#
# The model is a fake OpenAI-compatible server (tests/vscode/fake-llm.mjs) on 127.0.0.1,
# configured through initializationOptions.config; XDG_CONFIG_HOME / XDG_DATA_HOME point to
# temp dirs so no user configuration or audit log is touched.
#
# Usage: bash scripts/editors-e2e.sh
# Env:   INFINITY_MATRIX_BIN   the server binary to test (default: cargo build, debug profile)
#        PROFILE=release       build and test the release binary instead
#        EDITORS="nvim emacs"  which editors to run
# Prints "N passed, N failed". Works without a display, without stdin and with CI=true.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${INFINITY_MATRIX_CACHE:-$HOME/.cache/infinity-matrix}"
LOGDIR="$CACHE/artifacts/editors-e2e"
mkdir -p "$LOGDIR"
exec </dev/null
log() { printf '[editors-e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; echo "0 passed, 1 failed"; exit 1; }
EDITORS="${EDITORS:-nvim emacs}"

# ------------------------------------------------------------------ 1. Debian packages
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
APT_PKGS=(neovim emacs-nox elpa-eglot)
command -v node >/dev/null || APT_PKGS+=(nodejs)
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
  log "apt: neovim, emacs-nox and elpa-eglot present"
fi
log "$(nvim --version | head -1); $(emacs --version | head -1)"

# ------------------------------------------------------------------ 2. the server
cd "$REPO"
if [ -n "${INFINITY_MATRIX_BIN:-}" ]; then
  BIN="$INFINITY_MATRIX_BIN"
else
  TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
  case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
  if [ "${PROFILE:-debug}" = release ]; then
    log "cargo build --release"
    cargo build --release -p infinity-matrix --bin infinity-matrix >"$LOGDIR/cargo-build.log" 2>&1 \
      || { tail -30 "$LOGDIR/cargo-build.log" >&2; die "cargo build failed"; }
    BIN="$TARGET_DIR/release/infinity-matrix"
  else
    log "cargo build (debug)"
    cargo build -p infinity-matrix --bin infinity-matrix >"$LOGDIR/cargo-build.log" 2>&1 \
      || { tail -30 "$LOGDIR/cargo-build.log" >&2; die "cargo build failed"; }
    BIN="$TARGET_DIR/debug/infinity-matrix"
  fi
fi
[ -x "$BIN" ] || die "server binary not found: $BIN"

# ------------------------------------------------------------------ 3. the fake model
TMP="$(mktemp -d "${TMPDIR:-/tmp}/im-editors-e2e.XXXXXX")"
FAKE_PID=""
cleanup() {
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
  if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$TMP"; else log "kept $TMP"; fi
}
trap cleanup EXIT
node "$REPO/tests/vscode/fake-llm.mjs" --delay-ms 50 --log "$LOGDIR/fake-llm-requests.jsonl" >"$TMP/fake.out" 2>"$LOGDIR/fake-llm.err" &
FAKE_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/fake.out" ] && break; sleep 0.1; done
PORT=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]).port' "$TMP/fake.out") \
  || die "the fake model server did not start (see $LOGDIR/fake-llm.err)"
LLM_URL="http://127.0.0.1:$PORT/v1"
log "fake OpenAI-compatible server at $LLM_URL; server binary $BIN"

# ------------------------------------------------------------------ 4. the editors
RESULTS="$TMP/results.txt"
: >"$RESULTS"
EXPECTED=6   # checks per editor (a crashed editor counts its missing checks as failures)

run_editor() { # name, command...
  local name="$1"; shift
  local ws="$TMP/$name/ws"
  mkdir -p "$ws" "$TMP/$name/config" "$TMP/$name/data" "$TMP/$name/cache"
  cp -r "$REPO/tests/editors/fixture/." "$ws/"
  local before; before=$(grep -c "^[A-Z]* $name:" "$RESULTS" || true)
  log "running $name"
  local rc=0
  # As a stock editor runs it: no log level set (the server's default), its own cache dir
  # (answer files, Neovim's LSP log).
  ( unset INFINITY_MATRIX_LOG RUST_LOG
    cd "$ws" && XDG_CONFIG_HOME="$TMP/$name/config" XDG_DATA_HOME="$TMP/$name/data" XDG_CACHE_HOME="$TMP/$name/cache" \
      IM_SERVER="$BIN" IM_LLM_URL="$LLM_URL" IM_WORKSPACE="$ws" IM_RESULTS="$RESULTS" \
      timeout 300 "$@" ) >"$LOGDIR/$name.log" 2>&1 || rc=$?
  local got; got=$(( $(grep -c "^[A-Z]* $name:" "$RESULTS" || true) - before ))
  if [ "$got" -lt "$EXPECTED" ]; then
    echo "FAIL $name: $(( EXPECTED - got )) check(s) did not run (exit $rc, see $LOGDIR/$name.log)" >>"$RESULTS"
    tail -15 "$LOGDIR/$name.log" >&2
  fi
}

for editor in $EDITORS; do
  case "$editor" in
    nvim) run_editor nvim nvim --headless --clean -u NONE -i NONE -n -c "luafile $REPO/tests/editors/nvim/test.lua" ;;
    emacs) run_editor emacs emacs --batch -q -l "$REPO/tests/editors/emacs/test.el" ;;
    *) die "unknown editor $editor" ;;
  esac
done

# ------------------------------------------------------------------ 5. report
cat "$RESULTS"
passed=$(grep -c '^PASS ' "$RESULTS" || true)
failed=$(grep -c '^FAIL ' "$RESULTS" || true)
log "logs: $LOGDIR"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
