#!/usr/bin/env bash
# Simulator speed: simulated jobs per CPU-minute on one core, for a day of a 1,000-host fleet
# (examples/sim/fleet-1000.json: 1,000 hosts, 2,000 endpoints, ~10M jobs), against the goal of
# 1M jobs per CPU-minute (issue 19). No other fleet simulator drives this scheduler, so the
# ratio printed is against the goal. CPU time is the process's own (getrusage via /usr/bin/time
# is not needed: `modelcache sim` prints its CPU seconds on stderr).
#
# Usage: bench/sim_speed.sh [BUILD_DIR] [SCENARIO]
set -euo pipefail
build=${1:-build}
scenario=${2:-examples/sim/fleet-1000.json}
bin="$build/src/cli/modelcache"
[ -x "$bin" ] || { echo "build first: cmake --build $build --target modelcache" >&2; exit 2; }
goal=1000000
for policy in lru gdsf; do
  line=$("$bin" sim "$scenario" --set "policies.eviction=$policy" 2>&1 >/dev/null | grep 'jobs per CPU-minute')
  rate=$(echo "$line" | sed -E 's/.*: ([0-9]+) jobs per CPU-minute/\1/')
  echo "eviction=$policy  $line"
  awk -v r="$rate" -v g="$goal" 'BEGIN { printf "  ratio to the 1M jobs/CPU-minute goal: %.1fx\n", r / g }'
done
