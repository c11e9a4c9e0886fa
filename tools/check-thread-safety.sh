#!/usr/bin/env bash
# Clang's thread-safety analysis (-Wthread-safety, as errors) over the libraries whose shared state
# is annotated (include/mc/common/thread_annotations.h): common, net, cache, mirror. It takes the
# exact compile commands of an existing CMake build (any compiler) and re-runs them with clang-16
# in -fsyntax-only mode: nothing is built or linked, so it takes a minute, not a clang build.
# Usage: tools/check-thread-safety.sh [build-dir]      (make check-thread-safety)
# docs/reliability.md, "Thread-safety annotations".
set -euo pipefail
build=${1:-build}
clang=${CLANG:-clang++-16}
command -v "$clang" >/dev/null || { echo "check-thread-safety: $clang not found (tools/setup-debian.sh installs clang-16)" >&2; exit 2; }
[[ -f $build/build.ninja ]] || { echo "check-thread-safety: $build is not a configured build (cmake -S . -B $build -G Ninja)" >&2; exit 2; }
failed=0
checked=0
while IFS= read -r cmd; do
  # "ccache /usr/bin/c++ <flags> -MD -MT x -MF y -o z -c file.cc" -> clang, no outputs.
  read -ra words <<<"$cmd"
  args=()
  skip=0
  for w in "${words[@]}"; do
    if ((skip)); then skip=0; continue; fi
    case $w in
      ccache|*/c++|*/g++|c++|g++) ;;
      -MD) ;;
      -MT|-MF|-o) skip=1 ;;
      -c) ;;
      *) args+=("$w") ;;
    esac
  done
  src=${args[-1]}
  if ! out=$(cd "$build" && "$clang" -fsyntax-only -Wthread-safety -Werror=thread-safety \
               "${args[@]}" 2>&1); then
    echo "$out" >&2
    echo "check-thread-safety: $src fails" >&2
    failed=1
  fi
  checked=$((checked + 1))
done < <(ninja -C "$build" -t commands mc_common mc_net mc_cache mc_mirror | grep -E ' -c [^ ]*/src/(common|net|cache|mirror)/[^ ]+\.cc$' | sort -u)
echo "check-thread-safety: $checked files of common, net, cache, mirror checked"
exit $failed
