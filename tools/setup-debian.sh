#!/usr/bin/env bash
# Installs the Debian 12 packages modelcache needs to build, test and benchmark, and only those
# that are missing. Safe to run again. Usage: tools/setup-debian.sh [--bench]
set -euo pipefail

packages=(
  build-essential make cmake ninja-build pkg-config git curl ca-certificates bc
  libssl-dev libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libmicrohttpd-dev libsqlite3-dev libpq-dev libgtest-dev libgmock-dev python3
  postgresql-15  # the PostgreSQL store's tests run a throwaway server (src/postgres/postgres_for_test.h)
  chromium  # the web console's browser tests (tests/browser)
  # Workers as containers (the agent's default runtime) and their tests: the engine, the OCI
  # runtime that works on our VMs, manifests for pull totals, a loopback registry, a static
  # busybox for images built FROM scratch, htpasswd for the registry with auth.
  podman runc skopeo docker-registry busybox-static apache2-utils
  # The reliability checks (docs/reliability.md): libFuzzer targets built with clang (fuzz/).
  # libclang-rt-16-dev: the sanitizer runtimes the fuzz build links (-fsanitize=address,undefined).
  clang-16 libfuzzer-16-dev libclang-rt-16-dev
  # deploy/check.sh: systemd-analyze verify on the units, PyYAML for the Kubernetes manifests.
  systemd python3-yaml
  # The swarm test on network namespaces (tests/swarm, bench/swarm_netns.py): ip netns, tc tbf.
  iproute2
)
# Benchmark-only peers, installed by `make bench` (not by `make test`, so CI does not pay for them):
# nginx (mirror_vs_nginx.sh), aria2 and GNU time's /usr/bin/time (pull_vs_peers.sh), Google
# Benchmark (eviction_bench), wrk (coldstart.sh's /run throughput).
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nginx-light aria2 time libbenchmark-dev wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm run the compatibility tests with the official @huggingface/hub client. Any
# Node >= 18 works; install Debian's only when none is present (npm ships with some Node builds).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# PostgreSQL refuses to run as root: the tests' throwaway servers run as this unprivileged system
# user when the tests run as root (CI does). No home, no login shell, no password.
if [[ $(id -u) -eq 0 ]] && ! getent passwd modelcache-test >/dev/null; then
  echo "setup: creating the system user modelcache-test (runs the tests' PostgreSQL servers)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    modelcache-test
fi
