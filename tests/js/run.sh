#!/usr/bin/env bash
# Runs the JS compatibility tests (@huggingface/hub, runpod-sdk) against a built modelcache binary.
#   tests/js/run.sh [node --test options...]
# MODELCACHE_BIN defaults to <repo>/build/src/cli/modelcache. A missing binary fails the tests.
# MODELCACHE_KEEP_TMP=1 keeps the temp dirs for inspection.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run.sh: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 18 )); then
  echo "run.sh: node >= 18 is required (found $(node --version))" >&2
  exit 2
fi

# Install exactly what package-lock.json pins, when node_modules is missing, lacks a dependency or
# holds another version of one.
if ! node -e '
  for (const [name, want] of Object.entries(require("./package.json").dependencies)) {
    const have = require(`./node_modules/${name}/package.json`).version;
    if (want !== have) process.exit(1);
  }' 2>/dev/null; then
  npm ci --no-audit --no-fund
fi

export MODELCACHE_BIN="${MODELCACHE_BIN:-$repo/build/src/cli/modelcache}"
echo "run.sh: testing $MODELCACHE_BIN with $(node -p '
  Object.keys(require("./package.json").dependencies)
    .map((n) => `${n} ${require(`./node_modules/${n}/package.json`).version}`).join(", ")')"
exec node --test "$@"
