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

# node >= 18 and npm, and node_modules as package-lock.json pins it.
source "$repo/tests/lib/node-deps.sh"
if [[ ! -x /usr/bin/chromium ]]; then
  echo "run.sh: /usr/bin/chromium is missing; tools/setup-debian.sh installs it (Debian's chromium)" >&2
  exit 2  # playwright-core downloads no browser: the tests use Debian's
fi

export MODELCACHE_BIN="${MODELCACHE_BIN:-$repo/build/src/cli/modelcache}"
echo "run.sh: testing $MODELCACHE_BIN with $(/usr/bin/chromium --version 2>/dev/null) and" \
  "playwright-core $(node -p 'require("./node_modules/playwright-core/package.json").version')"
exec node --test --test-concurrency=1 "$@"
