#!/usr/bin/env bash
# Runs the @huggingface/hub compatibility tests against a built modelcache binary.
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

# Install exactly what package-lock.json pins, when node_modules is missing or holds another version.
if ! node -e '
  const want = require("./package.json").dependencies["@huggingface/hub"];
  const have = require("./node_modules/@huggingface/hub/package.json").version;
  process.exit(want === have ? 0 : 1);' 2>/dev/null; then
  npm ci --no-audit --no-fund
fi

export MODELCACHE_BIN="${MODELCACHE_BIN:-$repo/build/src/cli/modelcache}"
echo "run.sh: testing $MODELCACHE_BIN with @huggingface/hub $(node -p 'require("./node_modules/@huggingface/hub/package.json").version')"
exec node --test "$@"
