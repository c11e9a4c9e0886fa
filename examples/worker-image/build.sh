#!/usr/bin/env bash
# Builds the example Runpod worker (examples/runpod_worker.py, Python standard library only) as an
# OCI image without reaching any registry: FROM scratch, on a root filesystem made of this host's
# Debian python3 packages (the files dpkg installed for python3.11-minimal, libpython3.11-minimal,
# libpython3.11-stdlib and python3-minimal, plus the shared libraries python3.11 and its
# extension modules load, found with ldd). Why this and not debootstrap: it needs no network and
# no Debian mirror, takes seconds instead of minutes, and the python3 it packs is the very one
# our tests already run on the host (setup-debian.sh installs it). The root filesystem is cached
# under $CACHE_DIR, keyed by the package versions, so a rebuild only copies the worker script.
#
# Usage: examples/worker-image/build.sh [TAG]      (default localhost/modelcache-example-worker:latest)
# Env:   ENGINE        podman (default) or docker
#        ENGINE_ARGS   global engine flags, e.g. "--root /tmp/store --runroot /tmp/run --runtime runc"
#        CACHE_DIR     where the root filesystem is kept (default ~/.cache/modelcache/worker-image)
# Prints the tag on stdout when done. Try it:
#   podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
#     localhost/modelcache-example-worker --test_input '{"input": {}}'   # exits 1: no model mounted
set -euo pipefail

TAG=${1:-localhost/modelcache-example-worker:latest}
ENGINE=${ENGINE:-podman}
read -r -a ENGINE_FLAGS <<<"${ENGINE_ARGS:-}"
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/modelcache/worker-image}
HERE=$(cd "$(dirname "$0")" && pwd)
WORKER="$HERE/../runpod_worker.py"
PACKAGES=(python3-minimal python3.11-minimal libpython3.11-minimal libpython3.11-stdlib)

for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "build.sh: Debian package $p is not installed (apt-get install python3)" >&2
    exit 2
  fi
done
command -v "$ENGINE" >/dev/null || { echo "build.sh: $ENGINE not found (apt-get install podman)" >&2; exit 2; }

KEY=$( (dpkg-query -W "${PACKAGES[@]}" libc6; echo "rootfs-v1") | sha256sum | cut -c1-16)
BASE="$CACHE_DIR/$KEY"
if [[ ! -d "$BASE/rootfs" ]]; then
  echo "build.sh: making the root filesystem in $BASE (once per python3 version)" >&2
  mkdir -p "$CACHE_DIR"
  TMP=$(mktemp -d "$CACHE_DIR/tmp.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  ROOT="$TMP/rootfs"
  mkdir -p "$ROOT"/{tmp,etc,app,root}
  chmod 1777 "$ROOT/tmp"
  # The packages' own files (no docs or manuals), symlinks kept as they are; parent dirs 0755.
  dpkg -L "${PACKAGES[@]}" | grep -v -E '^/usr/share/(doc|man|lintian|binfmts)' | sort -u |
    while read -r f; do if [[ -f "$f" || -L "$f" ]]; then echo "${f#/}"; fi; done >"$TMP/files"
  tar -C / --no-recursion -cf - -T "$TMP/files" | tar -C "$ROOT" -xf -
  # The shared libraries they load, each under the name the loader asks for (-h: the file itself).
  { ldd /usr/bin/python3.11; find /usr/lib/python3.11/lib-dynload -name '*.so' -exec ldd {} \; ; } |
    awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u | sed 's|^/||' >"$TMP/libs"
  tar -C / -chf - -T "$TMP/libs" | tar -C "$ROOT" -xf -
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
  printf 'root:x:0:\n' >"$ROOT/etc/group"
  cat >"$TMP/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
COPY runpod_worker.py /app/runpod_worker.py
ENV PATH=/usr/local/bin:/usr/bin:/bin PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
ENTRYPOINT ["/usr/bin/python3", "/app/runpod_worker.py"]
CONTAINERFILE
  rm -rf "$BASE"
  mv "$TMP" "$BASE"
  trap - EXIT
fi
cp "$WORKER" "$BASE/runpod_worker.py"
"$ENGINE" "${ENGINE_FLAGS[@]}" build -q -t "$TAG" -f "$BASE/Containerfile" "$BASE" >/dev/null
echo "$TAG"
