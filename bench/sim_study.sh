#!/usr/bin/env bash
# The simulator study of issue 19 (docs/simulator.md), Zipf(0.9), caches of 10-25% of the
# catalogue per host, 600 model revisions from the Hub-like generator, 6 simulated hours:
#   1. eviction (examples/sim/eviction-study.json: one 64-GPU host, so every cold start is a
#      request to the one cache the policy manages): LRU, GDSF, S3-FIFO byte hit ratio
#      (goal: best - LRU >= 5 points)
#   2. placement (examples/sim/study.json: 10 hosts of 8 GPUs): time-to-ready vs random vs
#      least-loaded, peers on and off (goals: ttr origin bytes <= 50% of random's, miss cold
#      starts <= 70% of random's)
#   3. cached replicas 0, 1, 2 (study.json, 15%)
# Tables on stdout; compare.csv and SVG bar charts under OUT (default docs/sim).
#
# Usage: bench/sim_study.sh [BUILD_DIR] [OUT]
set -euo pipefail
build=${1:-build}
out=${2:-docs/sim}
bin="$build/src/cli/modelcache"
[ -x "$bin" ] || { echo "build first: cmake --build $build --target modelcache" >&2; exit 2; }
echo "== eviction (one host, placement ttr)"
"$bin" sim compare examples/sim/eviction-study.json --eviction lru,gdsf,s3fifo \
  --cache-fraction 0.1,0.15,0.2,0.25 --out "$out/eviction"
echo "== placement (10 hosts, eviction lru, peers on)"
"$bin" sim compare examples/sim/study.json --placement ttr,least-loaded,random \
  --cache-fraction 0.1,0.25 --out "$out/placement"
echo "== placement (10 hosts, eviction lru, peers off: every fetch from the origin)"
"$bin" sim compare examples/sim/study.json --set policies.peers=false \
  --placement ttr,least-loaded,random --cache-fraction 0.1,0.25 --out "$out/placement-nopeers"
echo "== cached replicas (10 hosts, ttr, lru, 15%)"
"$bin" sim compare examples/sim/study.json --replicas 0,1,2 --cache-fraction 0.15 \
  --out "$out/replicas"
