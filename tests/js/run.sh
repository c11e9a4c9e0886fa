#!/usr/bin/env bash
# Runs the JS compatibility tests (@huggingface/hub, runpod-sdk) against a built modelcache binary.
#   tests/js/run.sh [node --test options...]
# MODELCACHE_BIN defaults to <repo>/build/src/cli/modelcache. A missing binary fails the tests.
# MODELCACHE_KEEP_TMP=1 keeps the temp dirs for inspection.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

# node >= 18 and npm, and node_modules as package-lock.json pins it.
source "$repo/tests/lib/node-deps.sh"

export MODELCACHE_BIN="${MODELCACHE_BIN:-$repo/build/src/cli/modelcache}"
echo "run.sh: testing $MODELCACHE_BIN with $(node -p '
  Object.keys(require("./package.json").dependencies)
    .map((n) => `${n} ${require(`./node_modules/${n}/package.json`).version}`).join(", ")')"
exec node --test "$@"
