#!/usr/bin/env bash
# Boots the systemd units for real: a container running systemd as PID 1 (Debian 12, the base
# that deploy/image/build.sh makes), the binary under test, the controller unit on SQLite (an
# override drops the db-password credential) and the agent unit with --runtime process. Checks
# that both start under all their hardening, that the controller answers /health and an API
# call, and that the agent registers with it using the credential the units load. Not part of
# deploy/check.sh or CI: it takes a minute or two and needs podman and the Debian mirror.
# Usage: deploy/systemd-smoke.sh [BINARY]   (default build/src/cli/modelcache)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-build/src/cli/modelcache}
base=localhost/modelcache-base:bookworm
name=mc-systemd-smoke-$$
run=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
[[ -x "$binary" ]] || { echo "systemd-smoke: no binary at $binary" >&2; exit 2; }
podman image exists "$base" ||
  { echo "systemd-smoke: no $base: run deploy/image/build.sh once (it makes the base)" >&2; exit 2; }

ctx=$(mktemp -d)
trap 'podman rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$ctx"' EXIT
cp "$binary" "$ctx/modelcache"
cp "$here"/systemd/*.service "$here/systemd/modelcache.sysusers.conf" "$ctx/"
cat >"$ctx/Containerfile" <<'CONTAINERFILE'
ARG BASE
FROM ${BASE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      systemd systemd-sysv dbus curl ca-certificates libcurl4 libmicrohttpd12 libsqlite3-0 libpq5 \
      libssl3 libspdlog1.10 libfmt9 && rm -rf /var/lib/apt/lists/*
COPY modelcache /usr/local/bin/modelcache
COPY modelcache-controller.service modelcache-agent.service /etc/systemd/system/
COPY modelcache.sysusers.conf /etc/sysusers.d/modelcache.conf
RUN mkdir -p /etc/modelcache/credentials /etc/systemd/system/modelcache-controller.service.d \
 && printf 'MC_LISTEN=127.0.0.1:18932\nMC_DB=sqlite:/var/lib/modelcache/controller.db\nMC_PUBLIC_URL=\nMC_UPSTREAM=\nMC_CONTROLLER_FLAGS=\n' \
      >/etc/modelcache/controller.env \
 && printf 'MC_LISTEN=127.0.0.1:18933\nMC_CONTROLLER=http://127.0.0.1:18932\nMC_PUBLIC_URL=http://127.0.0.1:18933\nMC_UPSTREAM=http://127.0.0.1:9\nMC_CAPACITY=1GB\nMC_GPUS=2\nMC_AGENT_FLAGS=--runtime process --host-id smoke-host\n' \
      >/etc/modelcache/agent.env \
 && printf '[Service]\nLoadCredential=\nLoadCredential=agent-key:/etc/modelcache/credentials/agent-key\nExecStart=\nExecStart=/usr/local/bin/modelcache controller --listen ${MC_LISTEN} --db ${MC_DB} --agent-key-file %%d/agent-key $MC_CONTROLLER_FLAGS\n' \
      >/etc/systemd/system/modelcache-controller.service.d/sqlite.conf
CMD ["/sbin/init"]
CONTAINERFILE
echo "systemd-smoke: building the image" >&2
podman build --network host "${run[@]}" --build-arg "BASE=$base" -t localhost/mc-systemd-smoke "$ctx" >"$ctx/build.log" 2>&1 ||
  { cat "$ctx/build.log" >&2; exit 1; }
podman run -d --name "$name" "${run[@]}" --systemd=always --network host localhost/mc-systemd-smoke >/dev/null

inside() { podman exec "$name" sh -c "$1"; }
for _ in $(seq 60); do
  state=$(inside 'systemctl is-system-running' 2>/dev/null || true)
  [[ "$state" == running || "$state" == degraded ]] && break
  sleep 0.5
done
as_modelcache='setpriv --reuid=modelcache --regid=modelcache --clear-groups'
# The agents' key: a controller API key, made before the controller starts (it reads the file),
# in the state directory systemd would make at the first start.
inside "install -d -o modelcache -g modelcache -m 0700 /var/lib/modelcache && umask 077 && $as_modelcache modelcache keys create --db sqlite:/var/lib/modelcache/controller.db \
    --name agents 2>/dev/null >/etc/modelcache/credentials/agent-key"
inside 'systemctl start modelcache-controller modelcache-agent'
ok=0
for _ in $(seq 60); do
  if inside 'K=$(cat /etc/modelcache/credentials/agent-key);
         curl -fsS -H "Authorization: Bearer $K" http://127.0.0.1:18932/v1/hosts' 2>/dev/null |
       grep -q '"id":"smoke-host"'; then
    ok=1
    break
  fi
  sleep 0.5
done
inside 'systemctl status --no-pager modelcache-controller modelcache-agent | grep -E "●|Active:"' || true
if ((ok)); then
  echo "systemd-smoke: PASS: both units run under systemd with their hardening, the agent registered"
else
  inside 'journalctl --no-pager -u modelcache-controller -u modelcache-agent | tail -30' || true
  echo "systemd-smoke: FAIL" >&2
  exit 1
fi
