#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-16 in their own build dir and runs each one.
# Usage: fuzz/run.sh [--runs N | --seconds S] [target...]
#   make fuzz     = fuzz/run.sh --runs 10000000   (the long run; docs/reliability.md has figures)
#   make fuzz-ci  = fuzz/run.sh --seconds 20      (a short run of every target)
# The seed corpora in fuzz/corpus/<target>/ are read, never written: what a run finds goes to
# $FUZZ_WORK (default build-fuzz/work/<target>/), crashes to build-fuzz/crashes/<target>/.
# Prints one line per target: executions, new inputs, crashes; exits 1 if any target crashed.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD:-build-fuzz}
limit=(-max_total_time=20)
targets=()
while (($#)); do
  case $1 in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=($(ls fuzz/corpus))
fi
if ! command -v clang++-16 >/dev/null; then
  echo "fuzz: clang-16 is missing: run tools/setup-debian.sh (it installs clang-16 and libfuzzer-16-dev)" >&2
  exit 2
fi
if [[ ! -f $build/build.ninja ]]; then
  CC=clang-16 CXX=clang++-16 cmake -S . -B "$build" -G Ninja -DMC_FUZZ=ON -DMC_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
    >/dev/null || exit 2
fi
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}" >/dev/null || exit 2
failed=0
for t in "${targets[@]}"; do
  work=${FUZZ_WORK:-$build/work}/$t
  crashes=$build/crashes/$t
  mkdir -p "$work" "$crashes"
  log=$build/fuzz-$t.log
  "$build/fuzz/fuzz_$t" "${limit[@]}" -print_final_stats=1 -artifact_prefix="$crashes/" \
    -rss_limit_mb=1024 -timeout=10 "$work" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^stat::.*//p' "$log" >/dev/null; grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}')
  found=$(ls "$work" | wc -l)
  if ((rc != 0)); then
    failed=1
    echo "fuzz_$t: CRASH after ${execs:-?} executions; see $log and $crashes/"
    grep -m3 -E 'ERROR|invariant failed|runtime error' "$log"
  else
    echo "fuzz_$t: ${execs:-?} executions in ${secs:-?} s, corpus $found inputs, 0 crashes"
  fi
done
exit $failed
