#!/usr/bin/env bash
# The README's main job: the whole product on this machine, offline. `modelcache up --demo` starts
# a local upstream hub with generated demo models, the controller and two host agents (data in
# ./demo-data/up), creates a demo endpoint whose workers run examples/runpod_worker.py (as an image
# built by examples/worker-image/build.sh when podman works here, else as processes: `up` says
# which; DEMO_RUNTIME=process forces processes), sends one job through it (the first one
# downloads the model onto a host: unbilled) and serves until Ctrl-C.
# Usage: tools/demo.sh [path/to/modelcache] [--check]   (--check: exit after the test job)
set -euo pipefail

MC=${1:-build/src/cli/modelcache}
CHECK=${2:-}
DATA=${DEMO_DATA:-demo-data}/up
LISTEN=${DEMO_LISTEN:-127.0.0.1:8080}

echo "== modelcache up --demo --data-dir $DATA --listen $LISTEN --runtime ${DEMO_RUNTIME:-auto}"
args=(up --demo --data-dir "$DATA" --listen "$LISTEN" --runtime "${DEMO_RUNTIME:-auto}")
[[ $CHECK == --check ]] && args+=(--check)
exec "$MC" "${args[@]}"
