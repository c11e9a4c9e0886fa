#!/usr/bin/env bash
# Runs the web console's browser tests: headless Debian Chromium (/usr/bin/chromium) driven by
# playwright-core (pinned in package.json / package-lock.json) against a real `modelcache up`.
#   tests/browser/run.sh [node --test options...]
# MODELCACHE_BIN defaults to <repo>/build/src/cli/modelcache; screenshots go to
# ${MODELCACHE_TEST_OUT:-<repo>/build/test-output}/console. MODELCACHE_KEEP_TMP=1 keeps temp dirs.
# Nothing is skipped: a missing browser, node or binary fails the run with what to do.
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
if [[ ! -x /usr/bin/chromium ]]; then
  echo "run.sh: /usr/bin/chromium is missing; tools/setup-debian.sh installs it (Debian's chromium)" >&2
  exit 2
fi

# Install exactly what package-lock.json pins when node_modules lacks a dependency or holds
# another version of one. playwright-core downloads no browser: the tests use Debian's.
if ! node -e '
  for (const [name, want] of Object.entries(require("./package.json").dependencies)) {
    const have = require(`./node_modules/${name}/package.json`).version;
    if (want !== have) process.exit(1);
  }' 2>/dev/null; then
  npm ci --no-audit --no-fund
fi

export MODELCACHE_BIN="${MODELCACHE_BIN:-$repo/build/src/cli/modelcache}"
echo "run.sh: testing $MODELCACHE_BIN with $(/usr/bin/chromium --version 2>/dev/null) and" \
  "playwright-core $(node -p 'require("./node_modules/playwright-core/package.json").version')"
exec node --test --test-concurrency=1 "$@"
