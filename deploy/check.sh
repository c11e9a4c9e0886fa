#!/usr/bin/env bash
# Checks deploy/ without a cluster: `systemd-analyze verify` on the systemd units, then
# deploy/check_deploy.py (unit and manifest rules, flags against the binary's --help; its
# docstring lists what is validated). Prints "ok"/"not ok" lines and ends with "# pass N" and
# "# fail M" (tools/run-tests.sh counts them). Exits 0 when all pass.
# Usage: deploy/check.sh [PATH_TO_MODELCACHE]   (without it, no flag is checked against --help)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-}
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! command -v systemd-analyze >/dev/null; then
  echo "deploy/check.sh: systemd-analyze is missing: apt-get install systemd" >&2
  exit 2
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "deploy/check.sh: python3's yaml module is missing: apt-get install python3-yaml" >&2
  exit 2
fi

# verify checks that ExecStart's program exists: point copies of the units at the binary under
# test (or at /bin/true without one). Any message, even a warning about an unknown key or a bad
# value (which verify reports but still exits 0 for), is a failure.
exe=${binary:-/bin/true}
exe=$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")
for unit in "$here"/systemd/*.service; do
  name=$(basename "$unit")
  sed "s|/usr/local/bin/modelcache|$exe|" "$unit" >"$tmp/$name"
  out=$(cd "$tmp" && systemd-analyze verify --man=no --generators=no "./$name" 2>&1)
  rc=$?
  if ((rc == 0)) && [[ -z "$out" ]]; then
    echo "ok - systemd-analyze verify $name"
    passed=$((passed + 1))
  else
    echo "not ok - systemd-analyze verify $name (exit $rc)"
    sed 's/^/    /' <<<"$out"
    failed=$((failed + 1))
  fi
done

python3 "$here/check_deploy.py" ${binary:+--binary "$binary"} >"$tmp/py.log" 2>&1
py_rc=$?
grep -v '^# ' "$tmp/py.log"
py_passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tmp/py.log")
py_failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tmp/py.log")
passed=$((passed + ${py_passed:-0}))
failed=$((failed + ${py_failed:-1}))
if ((py_rc != 0)) && ((${py_failed:-0} == 0)); then failed=$((failed + 1)); fi
echo "deploy: $passed passed, $failed failed"
echo "# pass $passed"
echo "# fail $failed"
((failed == 0))
