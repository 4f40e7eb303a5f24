#!/usr/bin/env bash
# Times the embedded model (SmolLM2-135M-Instruct, Q4_0, in the server's process) beside the
# external llama.cpp server (scripts/local-model.sh: llama-cpp-python with the wheel's Q4_1
# file) on the same prompt: the context snapshot of examples/sample/inventory.py:25 plus a
# question, greedy, 128 tokens. Prints one JSON line per run: load, first token, tokens/s,
# peak RSS. The llama.cpp half needs scripts/local-model.sh install (a long build); set
# WITH_LLAMA_CPP=0 to skip it. RUNS (default 3) runs of each.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-3}"
bin="${CARGO_TARGET_DIR:-target}/release/infinity-matrix"
[ -x "$bin" ] || cargo build --release --locked -p infinity-matrix
model=$("$bin" model install 2>/dev/null)
prompt=$(mktemp)
trap 'rm -f "$prompt"' EXIT
{
  "$bin" context examples/sample/inventory.py:25:13 --root examples/sample --budget 1024
  echo
  echo "What does total_value compute?"
} >"$prompt"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores" >&2
for _ in $(seq "$runs"); do
  printf 'embedded  '
  "$bin" model bench --model "$model" --prompt-file "$prompt" --max-tokens 128 | python3 -c '
import json, sys
d = json.loads(sys.stdin.read()); d.pop("text"); d.pop("model"); print(json.dumps(d))'
done
[ "${WITH_LLAMA_CPP:-1}" = 1 ] || exit 0
port="${BENCH_LLAMA_PORT:-8799}"
trap 'rm -f "$prompt"; bash scripts/local-model.sh stop "$port" >/dev/null 2>&1 || true' EXIT
for _ in $(seq "$runs"); do
  bash scripts/local-model.sh stop "$port" >/dev/null 2>&1 || true
  start=$(date +%s%N)
  url=$(bash scripts/local-model.sh start "$port" 2>/dev/null)
  load_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  pid=$(cat "${INFINITY_MATRIX_CACHE:-$HOME/.cache/infinity-matrix}/llama-server-$port.pid")
  printf 'llama.cpp '
  python3 - "$url" "$prompt" "$pid" "$load_ms" <<'PY'
import json, sys, time, urllib.request
url, prompt_file, pid, load_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
body = {"model": "smollm2", "stream": True, "max_tokens": 128, "temperature": 0.0,
        "messages": [{"role": "user", "content": open(prompt_file).read()}]}
req = urllib.request.Request(url + "/chat/completions", json.dumps(body).encode(),
                             {"Content-Type": "application/json"})
sent = time.time(); times = []
with urllib.request.urlopen(req, timeout=300) as r:
    for line in r:
        line = line.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        choice = json.loads(line[5:])["choices"][0]
        if choice.get("delta", {}).get("content"):
            times.append(time.time())
hwm = [l for l in open("/proc/%s/status" % pid) if l.startswith("VmHWM:")][0].split()[1]
rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0
print(json.dumps({"load_ms": load_ms, "first_token_ms": round((times[0] - sent) * 1000) if times else None,
                  "tokens": len(times), "tokens_per_second": round(rate, 1),
                  "peak_rss_mib": round(int(hwm) / 1024)}))
PY
done
