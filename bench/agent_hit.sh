#!/usr/bin/env bash
# Benchmark: the agent's cache-hit paths (issue 4). A host whose cache holds 20 repos of 50 files
# each, all ensured through the agent from a local upstream (`modelcache serve`); then, over one
# keep-alive connection, 1000 GET /health (the HTTP floor), 1000 POST /v1/ensure of cached commits
# (must answer `ready` from metadata alone) and 200 POST /v1/workers with command `true` (ensure
# hit → pin → exec). Prints p50/p90/p99 per path, the ratios to the floor and PASS/MISS for the
# goals: ensure p50 <= 2 ms and p99 <= 20 ms; worker start p50 <= 20 ms. The eviction decision
# for 10k snapshots is measured by the eviction_bench binary (Google Benchmark), run at the end
# when it was built.
#
# Usage: bench/agent_hit.sh [path/to/modelcache]     Env: BENCH_REPOS=20 BENCH_FILES=50 CALLS=1000
set -euo pipefail

MC=$(readlink -f "${1:-build/src/cli/modelcache}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
REPOS=${BENCH_REPOS:-20}
FILES=${BENCH_FILES:-50}
CALLS=${CALLS:-1000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mc_agent_hit.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Reads the URL a daemon prints on its first stdout line ("... on <url>").
wait_url() {
  local file=$1
  for _ in $(seq 1 200); do
    if [[ -s $file ]]; then awk '{print $NF; exit}' "$file"; return; fi
    sleep 0.05
  done
  echo "daemon did not start; its log:" >&2; cat "$file" "$file.err" >&2; exit 1
}

echo "agent_hit: $REPOS repos x $FILES files in $WORK"
for r in $(seq 1 "$REPOS"); do
  src=$WORK/src/repo$r
  mkdir -p "$src/sub"
  for f in $(seq 1 "$FILES"); do
    if ((f % 10 == 0)); then
      head -c $((64 * 1024 + r)) /dev/urandom >"$src/sub/weights-$f.bin"
    else
      printf '{"repo": %d, "file": %d}\n' "$r" "$f" >"$src/file-$f.json"
    fi
  done
  "$MC" import "$src" --cache-dir "$WORK/upstream" --repo "bench/repo$r" >/dev/null
done

"$MC" serve --cache-dir "$WORK/upstream" --listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.out.err" &
pids+=($!)
UPSTREAM=$(wait_url "$WORK/serve.out")
# The agent's API key (agents always require one), in a file only we can read.
export MC_AGENT_KEY="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
(umask 077 && echo "$MC_AGENT_KEY" >"$WORK/agent-key")
"$MC" agent --cache-dir "$WORK/cache" --state-dir "$WORK/state" --capacity 10GB --gpus 0 --runtime process \
  --upstream "$UPSTREAM" --listen 127.0.0.1:0 --api-key-file "$WORK/agent-key" \
  >"$WORK/agent.out" 2>"$WORK/agent.out.err" &
pids+=($!)
AGENT=$(wait_url "$WORK/agent.out")

echo "[" >"$WORK/models.json"
for r in $(seq 1 "$REPOS"); do
  reply=$(curl -sf -X POST "$AGENT/v1/ensure?wait=120" -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $MC_AGENT_KEY" \
    -d "{\"model\":\"bench/repo$r\"}")
  commit=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["commit"])' <<<"$reply")
  sep=","; ((r == REPOS)) && sep=""
  echo "{\"model\":\"bench/repo$r\",\"commit\":\"$commit\"}$sep" >>"$WORK/models.json"
done
echo "]" >>"$WORK/models.json"
echo "agent_hit: $REPOS repos cached through the agent; measuring"
python3 "$HERE/agent_hit.py" "$AGENT" "$WORK/models.json" "$CALLS" 200

bench_bin=$(dirname "$MC")/../scheduler/eviction_bench
if [[ -x $bench_bin ]]; then
  echo "eviction decision, 10k snapshots (Google Benchmark, CPU time per decision):"
  "$bench_bin" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true 2>/dev/null |
    awk '/_median/ {printf "  %-44s %s %s\n", $1, $4, $5}'
else
  echo "eviction_bench not built (make bench installs Google Benchmark); skipped"
fi
