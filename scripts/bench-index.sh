#!/usr/bin/env bash
# Times indexing a large real tree (the sources of this project's dependencies that
# `cargo fetch` leaves in the cargo registry) against Universal Ctags on the same files.
# Usage: scripts/bench-index.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v ctags >/dev/null || { apt-get update -qq && apt-get install -y -qq universal-ctags >/dev/null; }
cargo fetch --locked >/dev/null 2>&1 || true
tree="${1:-$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -n 1)}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p infinity-matrix >/dev/null 2>&1
bin="$target/release/infinity-matrix"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
# Warm the page cache for both tools alike.
"$bin" symbols "$tree" --stats --files-to "$list" >/dev/null
echo "tree: $tree ($(wc -l <"$list") source files in the supported languages)"
echo "infinity-matrix (parallel walk + lexical tag scanner, symbols kept in memory):"
/usr/bin/time -f "  wall %e s, peak RSS %M KiB" "$bin" symbols "$tree" --stats
lines=$(xargs -a "$list" -d '\n' cat | wc -l)
echo "ctags on the same $(wc -l <"$list") files ($lines lines):"
/usr/bin/time -f "  wall %e s, peak RSS %M KiB" ctags -f /dev/null -L "$list"
