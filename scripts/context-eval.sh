#!/usr/bin/env bash
# Context-quality benchmark: scores `infinity-matrix context` snapshots on use sites of real
# open-source projects (Python, Rust, TypeScript, Java; pinned in scripts/context_eval/projects.json)
# whose definitions are in another file, with ground truth from each language's own resolver
# (jedi, rust-analyzer, the TypeScript language service, javac through the JDK's compiler API). Prints a Markdown table and writes
# every case with its result to DIR/results.json.
#
# Usage: scripts/context-eval.sh [--bin PATH] [--langs python,rust,typescript,java] [--out DIR]
#                                [--subset] [--case ID] [--budget N] [--rebuild-cases] [--no-diagnose]
#
# Without --bin the release binary of this tree is built and scored. Everything fetched or
# built (projects, venv with jedi, the typescript package, case sets, results) is cached in
# ${INFINITY_MATRIX_CACHE:-~/.cache/infinity-matrix}/context-eval; a second run only scores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
cache="${INFINITY_MATRIX_CACHE:-$HOME/.cache/infinity-matrix}/context-eval"
mkdir -p "$cache"

have_bin=0
for a in "$@"; do
  case "$a" in --bin|--bin=*) have_bin=1 ;; -h|--help) have_bin=1 ;; esac
done
extra=()
if [ "$have_bin" = 0 ]; then
  (cd "$repo" && cargo build --release --locked -p infinity-matrix >&2)
  extra=(--bin "${CARGO_TARGET_DIR:-$repo/target}/release/infinity-matrix")
fi

# The harness's Python: a venv in the cache with the pinned jedi (the Python resolver).
venv="$cache/venv"
pins="$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["tools"]; print("jedi==%s parso==%s" % (t["jedi"], t["parso"]))' "$here/context_eval/projects.json")"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # the pins are two words
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $pins >&2
  echo "$pins" >"$venv/.pins"
fi

export INFINITY_MATRIX_CACHE="${INFINITY_MATRIX_CACHE:-$HOME/.cache/infinity-matrix}"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the clone
exec "$venv/bin/python" "$here/context_eval/main.py" "${extra[@]}" "$@"
