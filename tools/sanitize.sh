#!/usr/bin/env bash
# Builds test binaries with sanitizers (clang-16, in build dirs of their own) and runs them.
#   tools/sanitize.sh asan [target...]   AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   tools/sanitize.sh tsan [target...]   ThreadSanitizer (build-tsan/)
# Without targets: asan builds and runs every C++ test binary; tsan the concurrent suites
# (downloader, pull, agent, controller jobs). `make test-sanitize` runs both. Prints the build and
# test times; exits non-zero on any sanitizer report (halt_on_error) or test failure.
# -O1 -g0 keeps the builds small and fast on 2 cores; a report still names the function and line
# (-gline-tables-only).
set -uo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
shift || true
case $kind in
  asan)
    build=${SANITIZE_BUILD:-build-asan}
    flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    default_targets=(common_test net_test hub_test hub_client_test cache_test mirror_test
                     downloader_test pull_test scheduler_test agent_state_test agent_test
                     controller_store_test controller_test controller_jobs_test
                     controller_webhook_test testing_test)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    ;;
  tsan)
    build=${SANITIZE_BUILD:-build-tsan}
    flags="-fsanitize=thread -fno-omit-frame-pointer"
    default_targets=(downloader_test pull_test agent_test controller_jobs_test)
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    ;;
  *)
    sed -n 2,9p "$0"
    exit 2
    ;;
esac
targets=("$@")
((${#targets[@]})) || targets=("${default_targets[@]}")
if ! command -v clang++-16 >/dev/null; then
  echo "sanitize: clang-16 is missing: run tools/setup-debian.sh" >&2
  exit 2
fi
if [[ ! -f $build/build.ninja ]]; then
  CC=clang-16 CXX=clang++-16 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_SHARED_LINKER_FLAGS="$flags" \
    -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null || exit 2
fi
start=$(date +%s)
extra=()
# Suites that spawn the modelcache binary need it built with the same sanitizer.
[[ " ${targets[*]} " =~ (cli_test|controller|agent_container) ]] && extra=(modelcache)
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${extra[@]}" "${targets[@]}" || exit 2
built=$(date +%s)
echo "sanitize $kind: built ${#targets[@]} test binaries in $((built - start)) s"

# ctest names tests by suite, not by binary: run the binaries' tests through their labels-free
# listing, one binary at a time.
failed=0
for t in "${targets[@]}"; do
  bin=$(find "$build/src" -name "$t" -type f -perm -u+x | head -1)
  [[ -n $bin ]] || { echo "sanitize: $t not built" >&2; failed=1; continue; }
  t0=$(date +%s)
  (cd "$(dirname "$bin")" && MC_SANITIZER=$kind "./$t" --gtest_brief=1 >"$OLDPWD/$build/$t.log" 2>&1)
  rc=$?
  echo "sanitize $kind: $t $( ((rc == 0)) && echo passed || echo FAILED) in $(($(date +%s) - t0)) s"
  ((rc == 0)) || { failed=1; grep -m5 -E 'ERROR: |runtime error|WARNING: ThreadSanitizer|FAILED' "$build/$t.log"; }
done
echo "sanitize $kind: tests ran in $(($(date +%s) - built)) s"
exit $failed
