#!/usr/bin/env bash
# Benchmark: cold starts and job submission of the controller (issue 5), on `modelcache up --demo`.
#   1. 100 cold starts that are cache hits: time from /run to the new worker's first job-take
#      (goals p50 <= 50 ms, p99 <= 200 ms), with the controller's breakdown. The worker is
#      bench/coldstart_worker.sh (bash, /dev/tcp): it speaks the Runpod worker protocol and boots
#      in milliseconds, so the numbers are the platform's, not a Python interpreter's.
#   2. Cold starts that must download a model first (the gated demo model, BENCH_MODEL_SIZE each),
#      side by side with `modelcache pull` of the same model from the same upstream into a fresh
#      cache, ROUNDS rounds alternating, each on a fresh `up`: the ratio miss / pull (goal <= 1.1).
#   3. /run throughput with a warm controller: wrk for 10 s over WRK_CONNECTIONS keep-alive
#      connections against an endpoint without workers (goals >= 2000 jobs/s, p99 <= 20 ms).
# Usage: bench/coldstart.sh [path/to/modelcache]
# Env:   HITS=100 ROUNDS=3 BENCH_MODEL_SIZE=256MiB WRK_CONNECTIONS=8
#        WRK_DELAY_MS=3 paces each connection (8 connections, 3 ms: about 2,500 jobs/s offered)
#        instead of sending as fast as answers come (the saturation rate)
#        (without wrk: a Python client, JOBS=20000 THREADS=4)
set -euo pipefail

MC=$(readlink -f "${1:-build/src/cli/modelcache}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
HITS=${HITS:-100}
ROUNDS=${ROUNDS:-3}
SIZE=${BENCH_MODEL_SIZE:-256MiB}
JOBS=${JOBS:-20000}
THREADS=${THREADS:-4}
CONNS=${WRK_CONNECTIONS:-8}
DELAY_MS=${WRK_DELAY_MS:-}
WORKER=$HERE/coldstart_worker.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mc_coldstart.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$ROOT"  # up's demo worker path is relative to the repository

# Starts `up --demo` in $1 (extra args after), waits for its demo job; sets URL and UPSTREAM.
start_up() {
  local dir=$1
  shift
  "$MC" up --demo --data-dir "$dir" --listen 127.0.0.1:0 --agents 1 --gpus 8 "$@" \
    >"$dir.out" 2>"$dir.err" &
  UP_PID=$!
  pids+=("$UP_PID")
  for _ in $(seq 1 1200); do
    grep -q '^endpoint ' "$dir.out" 2>/dev/null && break
    kill -0 "$UP_PID" 2>/dev/null || { cat "$dir.err" >&2; exit 1; }
    sleep 0.1
  done
  URL=$(sed -n 's/^controller listening on //p' "$dir.out")
  UPSTREAM=$(sed -n 's/^up: demo upstream \(http[^ ]*\) .*/\1/p' "$dir.err")
}
stop_up() {
  kill -TERM "$UP_PID"
  wait "$UP_PID" || true
}

echo "== 1. cache-hit cold starts ($HITS)"
start_up "$WORK/hits"
python3 "$HERE/coldstart.py" hits "$URL" "$(cat "$WORK/hits/api-key")" "$WORKER" "$HITS"
echo
KEY=$(cat "$WORK/hits/api-key")
if command -v wrk >/dev/null; then
  echo "== 3. /run throughput (wrk: 2 threads, $CONNS connections, 10 s${DELAY_MS:+, $DELAY_MS ms between requests})"
  EP=$(python3 "$HERE/coldstart.py" endpoint "$URL" "$KEY")
  cat >"$WORK/run.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"input": {"prompt": "hi"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
  if [[ -n "$DELAY_MS" ]]; then  # paced: each connection waits DELAY_MS between its requests
    echo "function delay() return $DELAY_MS end" >>"$WORK/run.lua"
  fi
  wrk -t2 -c"$CONNS" -d10s --latency -s "$WORK/run.lua" "$URL/v2/$EP/run" | tee "$WORK/wrk.out"
  python3 "$HERE/coldstart.py" drop "$URL" "$KEY" "$EP"
  rate=$(awk '/Requests\/sec/ {print int($2)}' "$WORK/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
  echo "/run: $rate jobs/s, p99 $p99"
  p99_ms=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) sub(/ms/,"",v); else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$WORK/wrk.out")
  echo "goal >= 2000 jobs/s: $([[ $rate -ge 2000 ]] && echo PASS || echo MISS); goal p99 <= 20 ms: $([[ $(echo "$p99_ms <= 20" | bc) == 1 ]] && echo PASS || echo MISS)"
else
  echo "== 3. /run throughput ($JOBS jobs, $THREADS connections; install wrk for a faster client)"
  python3 "$HERE/coldstart.py" run "$URL" "$KEY" "$JOBS" "$THREADS"
fi
stop_up

echo
echo "== 2. cold start with download vs modelcache pull ($SIZE model, $ROUNDS rounds)"
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  start_up "$WORK/miss$r" --demo-model-size "$SIZE"
  token=$WORK/miss$r/demo-hf-token
  # pull first on odd rounds, the cold start first on even ones
  run_pull() {
    local t0 t1
    t0=$(date +%s%N)
    "$MC" pull demo/gated-llama --endpoint "$UPSTREAM" --cache-dir "$WORK/pull$r" \
      --token-file "$token" >/dev/null 2>&1
    t1=$(date +%s%N)
    PULL_MS=$(((t1 - t0) / 1000000))
  }
  run_miss() {
    MISS_LINE=$(python3 "$HERE/coldstart.py" miss "$URL" "$(cat "$WORK/miss$r/api-key")" \
      "$WORKER" demo/gated-llama "$token")
    MISS_MS=$(awk '{print $2}' <<<"$MISS_LINE")
  }
  if ((r % 2)); then run_pull; run_miss; else run_miss; run_pull; fi
  ratio=$(echo "scale=3; $MISS_MS / $PULL_MS" | bc)
  ratios+=("$ratio")
  echo "round $r: cold start with download ${MISS_MS} ms ($MISS_LINE) | modelcache pull ${PULL_MS} ms | ratio $ratio"
  stop_up
  rm -rf "$WORK/pull$r" "$WORK/miss$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median ratio miss / pull: $median"
echo "goal miss <= 1.1 x pull: $([[ $(echo "$median <= 1.1" | bc) == 1 ]] && echo PASS || echo MISS)"
