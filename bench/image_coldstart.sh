#!/usr/bin/env bash
# Benchmark (issue 14): cold starts of image workers, ours side by side with the engine alone.
#
#  hit   Image and model already on the host. POST /v1/workers -> the worker's first output line,
#        through the agent, against a bare `podman run` of the same image (same store, same
#        --network host, --ulimit and log flags) -> its first output line. RUNS of each,
#        alternating; prints both p50s, the difference and the ratio. Goal: within 100 ms.
#  miss  A IMAGE_MB image on a loopback registry and a MODEL_MB model on a loopback
#        `modelcache serve`, neither on the host. POST -> the worker `running`, against each
#        pull alone (podman pull into an empty store; modelcache pull into an empty cache).
#        MISS_RUNS of each; prints the p50s and the agent's time over the longer pull.
#        Goal: <= 1.1x (the two pulls overlap).
#
# Real parts only: podman with runc and private stores under a temp dir, Debian's
# docker-registry, busybox-static images built FROM scratch, `modelcache serve`.
# Usage: bench/image_coldstart.sh [path/to/modelcache]
# Env:   RUNS=15 MISS_RUNS=3 IMAGE_MB=100 MODEL_MB=1024 OCI_RUNTIME=runc
set -euo pipefail

MC=$(readlink -f "${1:-build/src/cli/modelcache}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNS=${RUNS:-15}
MISS_RUNS=${MISS_RUNS:-3}
IMAGE_MB=${IMAGE_MB:-100}
MODEL_MB=${MODEL_MB:-1024}
OCI_RUNTIME=${OCI_RUNTIME:-runc}
for tool in podman docker-registry busybox python3; do
  command -v "$tool" >/dev/null || { echo "image_coldstart: $tool missing (tools/setup-debian.sh)" >&2; exit 2; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mc_image_coldstart.XXXXXX")
pids=()
podman_in() {  # podman_in STORE args...: podman on a private store under $WORK
  local store=$WORK/$1
  shift
  podman --root "$store/storage" --runroot "$store/run" --tmpdir "$store/tmp" --runtime "$OCI_RUNTIME" "$@"
}
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for store in "$WORK"/*/storage; do
    [[ -d $store ]] || continue
    local s=${store%/storage}
    podman --root "$s/storage" --runroot "$s/run" --tmpdir "$s/tmp" rm -af -t 0 >/dev/null 2>&1 || true
    podman --root "$s/storage" --runroot "$s/run" --tmpdir "$s/tmp" rmi -af >/dev/null 2>&1 || true
    umount -l "$s/storage/overlay" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_line() {  # wait_line FILE PATTERN: the first match, once the file has it
  for _ in $(seq 1 600); do
    if grep -q -o -m1 "$2" "$1" 2>/dev/null; then grep -o -m1 "$2" "$1"; return; fi
    sleep 0.05
  done
  echo "image_coldstart: '$2' never appeared in $1:" >&2; cat "$1" >&2; exit 1
}

echo "image_coldstart: work dir $WORK"
# A loopback registry.
mkdir -p "$WORK/registry"
cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log: {level: info}
storage: {filesystem: {rootdirectory: $WORK/registry/data}}
http: {addr: "127.0.0.1:0"}
EOF
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
pids+=($!)
REGISTRY=$(wait_line "$WORK/registry/log" 'listening on 127.0.0.1:[0-9]*' | sed 's/listening on //')

# Images FROM scratch: busybox (the hit), busybox + IMAGE_MB of random bytes (the miss).
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/tmp"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
ln -s busybox "$WORK/rootfs/bin/sh"
tar -C "$WORK/rootfs" -cf "$WORK/small.tar" .
head -c $((IMAGE_MB * 1000 * 1000)) /dev/urandom >"$WORK/rootfs/payload"
tar -C "$WORK/rootfs" -cf "$WORK/big.tar" .
rm "$WORK/rootfs/payload"
for name in small big; do
  podman_in builder import -q "$WORK/$name.tar" "localhost/bench-$name:1" >/dev/null
  podman_in builder push -q --tls-verify=false "localhost/bench-$name:1" "$REGISTRY/bench/$name:1"
done
rm -f "$WORK"/*.tar

# Models on a loopback upstream.
"$MC" fixture "$WORK/src/small" --size 1MiB --shards 1 >/dev/null
"$MC" fixture "$WORK/src/big" --size "${MODEL_MB}MiB" --shards 4 >/dev/null
"$MC" import "$WORK/src/small" --repo bench/small --cache-dir "$WORK/upstream" >/dev/null
"$MC" import "$WORK/src/big" --repo bench/big --cache-dir "$WORK/upstream" >/dev/null
rm -rf "$WORK/src"
"$MC" serve --cache-dir "$WORK/upstream" --listen 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
pids+=($!)
UPSTREAM=$(wait_line "$WORK/serve.out" 'http://[0-9.:]*')
echo "image_coldstart: registry $REGISTRY, upstream $UPSTREAM, runtime $OCI_RUNTIME"

python3 "$HERE/image_coldstart.py" --mc "$MC" --work "$WORK" --registry "$REGISTRY" \
  --upstream "$UPSTREAM" --oci-runtime "$OCI_RUNTIME" --runs "$RUNS" --miss-runs "$MISS_RUNS"
