#!/usr/bin/env bash
# Benchmark: hashing speed of `modelcache verify` and `modelcache import` against the standard
# tools doing the same work on the same bytes: `sha256sum` (coreutils) and `openssl dgst -sha256`
# (the same OpenSSL as ours, one file after another) over the blobs, and `cp` + `openssl dgst` for
# an import (copy then hash, the naive two-pass way). RUNS runs each,
# alternating; page cache warm. Prints medians and ratios (peer time / our time: > 1 = we are faster).
#
# Usage: bench/verify_and_import.sh [path/to/modelcache]      Env: SIZE=2GiB SHARDS=4 RUNS=5
set -euo pipefail

MC=$(readlink -f "${1:-build/src/cli/modelcache}")
SIZE=${SIZE:-2GiB}
SHARDS=${SHARDS:-4}
RUNS=${RUNS:-5}
work=$(mktemp -d /tmp/mc-bench-verify.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$MC" fixture "$work/model" --size "$SIZE" --shards "$SHARDS" >/dev/null
"$MC" import "$work/model" --repo bench/model --cache-dir "$work/cache" >/dev/null
cat "$work"/model/* >/dev/null 2>&1 || true

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {printf "%.6f\n", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

ours_verify=() peer_verify=() ossl_verify=() ours_import=() peer_import=() sync_import=()
for run in $(seq "$RUNS"); do
  v1=$(secs "$MC" verify --cache-dir "$work/cache")
  v2=$(secs sh -c "sha256sum $work/cache/models--bench--model/blobs/* >/dev/null")
  v3=$(secs sh -c "openssl dgst -sha256 $work/cache/models--bench--model/blobs/* >/dev/null")
  rm -rf "$work/c2" "$work/copy"
  sync  # start each import timing with no dirty pages of an earlier step
  i1=$(secs "$MC" import "$work/model" --repo bench/model --cache-dir "$work/c2")
  i2=$(secs sh -c "cp -r $work/model $work/copy && openssl dgst -sha256 $work/copy/* >/dev/null")
  rm -rf "$work/copy"
  sync
  # The same, made durable like our import (which fsyncs every blob before publishing it).
  i3=$(secs sh -c "cp -r $work/model $work/copy && openssl dgst -sha256 $work/copy/* >/dev/null && sync")
  if ((run % 2 == 0)); then  # alternate the order of the pair
    v2=$(secs sh -c "sha256sum $work/cache/models--bench--model/blobs/* >/dev/null")
    v1=$(secs "$MC" verify --cache-dir "$work/cache")
  fi
  ours_verify+=("$v1"); peer_verify+=("$v2"); ossl_verify+=("$v3"); ours_import+=("$i1"); peer_import+=("$i2"); sync_import+=("$i3")
  echo "# run $run/$RUNS done"
done
mv_=$(printf '%s\n' "${ours_verify[@]}" | median)
pv_=$(printf '%s\n' "${peer_verify[@]}" | median)
ov_=$(printf '%s\n' "${ossl_verify[@]}" | median)
mi_=$(printf '%s\n' "${ours_import[@]}" | median)
pi_=$(printf '%s\n' "${peer_import[@]}" | median)
si_=$(printf '%s\n' "${sync_import[@]}" | median)
echo
echo "$SIZE of weights in $SHARDS shards; $RUNS runs; medians in seconds"
echo
echo "| task | modelcache s | peer | peer s | peer / modelcache |"
echo "|---|---|---|---|---|"
printf '| verify every blob | %.2f | sha256sum of the blobs | %.2f | %.2f |\n' "$mv_" "$pv_" \
  "$(echo "$pv_ / $mv_" | bc -l)"
printf '| verify every blob | %.2f | openssl dgst -sha256 of the blobs | %.2f | %.2f |\n' "$mv_" \
  "$ov_" "$(echo "$ov_ / $mv_" | bc -l)"
printf '| import (copy + hash + publish) | %.2f | cp -r, then openssl dgst -sha256 | %.2f | %.2f |\n' "$mi_" \
  "$pi_" "$(echo "$pi_ / $mi_" | bc -l)"
printf '| import (copy + hash + publish) | %.2f | cp -r, openssl dgst -sha256, sync | %.2f | %.2f |\n' \
  "$mi_" "$si_" "$(echo "$si_ / $mi_" | bc -l)"
