#!/usr/bin/env bash
# Builds the modelcache image (deploy/image/Containerfile) without a container registry:
#   1. the base, a minimal Debian 12 root filesystem made by debootstrap from a Debian mirror and
#      imported as localhost/modelcache-base:bookworm (once; skipped when it exists);
#   2. the image: the runtime packages from the mirror, and the binary of an existing build.
# The binary must come from a Debian 12 build (cmake ... && cmake --build build --target
# modelcache): the image has the same library versions.
#
# Usage: deploy/image/build.sh [BINARY] [TAG]
#          BINARY  default build/src/cli/modelcache;  TAG  default localhost/modelcache:latest
# Env:   MIRROR       Debian mirror (default http://deb.debian.org/debian)
#        ENGINE_ARGS  global podman flags, e.g. "--root /tmp/store --runroot /tmp/run"
# Needs: root (debootstrap), podman, debootstrap (apt-get install debootstrap podman runc).
# Takes a few minutes the first time (the base), about a minute after.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-build/src/cli/modelcache}
tag=${2:-localhost/modelcache:latest}
mirror=${MIRROR:-http://deb.debian.org/debian}
base=localhost/modelcache-base:bookworm
read -r -a engine <<<"${ENGINE_ARGS:-}"

[[ -x "$binary" ]] || { echo "build.sh: no binary at $binary: build it first (CONTRIBUTING.md)" >&2; exit 2; }
command -v podman >/dev/null || { echo "build.sh: podman is missing: apt-get install podman runc" >&2; exit 2; }

if ! podman "${engine[@]}" image exists "$base"; then
  command -v debootstrap >/dev/null ||
    { echo "build.sh: debootstrap is missing: apt-get install debootstrap" >&2; exit 2; }
  [[ $(id -u) -eq 0 ]] || { echo "build.sh: debootstrap needs root for the base image" >&2; exit 2; }
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  echo "build.sh: making the Debian 12 base from $mirror (once)" >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman "${engine[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$base" >&2
fi

context=$(mktemp -d)
trap 'rm -rf "$context" ${rootfs:+"$rootfs"}' EXIT
cp "$here/Containerfile" "$context/"
cp "$binary" "$context/modelcache"
podman "${engine[@]}" build --network host --runtime runc \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --build-arg "BASE=$base" -t "$tag" "$context" >&2
echo "$tag"
