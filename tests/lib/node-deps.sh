# Sourced by tests/js/run.sh and tests/browser/run.sh, from the folder of the suite's
# package.json: checks node and npm, then installs exactly what package-lock.json pins when
# node_modules lacks a dependency or holds another version of one.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run.sh: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 18)); then
  echo "run.sh: node >= 18 is required (found $(node --version))" >&2
  exit 2
fi
if ! node -e '
  for (const [name, want] of Object.entries(require("./package.json").dependencies)) {
    const have = require(`./node_modules/${name}/package.json`).version;
    if (want !== have) process.exit(1);
  }' 2>/dev/null; then
  npm ci --no-audit --no-fund
fi
