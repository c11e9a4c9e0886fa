# Targets behind ./dev (the README's two commands are ./dev run and ./dev test):
#   make run    installs what is missing, builds, and runs the demo (a generated model served by
#               the hub-compatible mirror from an HF cache)
#   make test   installs what is missing, builds, and runs every test (C++, the official JS clients,
#               the web console in headless Chromium)
BUILD ?= build
JOBS ?= $(shell nproc)
MODELCACHE := $(BUILD)/src/cli/modelcache

.PHONY: all setup build run test test-cpp test-js test-browser test-crash test-chaos test-faults test-sanitize test-deploy fuzz fuzz-ci bench format clean

all: build

setup:
	@tools/setup-debian.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@tools/demo.sh $(MODELCACHE)

test: build
	@tools/run-tests.sh $(BUILD)

test-cpp:
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-js:
	@MODELCACHE_BIN=$(abspath $(MODELCACHE)) tests/js/run.sh

test-browser:
	@MODELCACHE_BIN=$(abspath $(MODELCACHE)) tests/browser/run.sh

# The power-loss crash-consistency check in full: every crash state at every fsync boundary of
# import and pull, every distinct one re-run to recovery (CTest runs a sample). docs/reliability.md
test-crash: build
	@python3 tests/crash/crashcheck.py --modelcache $(MODELCACHE) \
	  --shim $(BUILD)/tests/crash/libfstrace.so --recover -1

# Chaos under load: a controller, two agents, an origin mirror and example workers, with
# controllers, agents, workers and pulls SIGKILLed at random moments (CHAOS_KILLS, default 200 here;
# CHAOS_SEED repeats a run). CI runs a short one (tools/run-tests.sh). docs/reliability.md
test-chaos: build
	@CHAOS_KILLS=$${CHAOS_KILLS:-200} python3 tests/chaos/chaos.py --modelcache $(MODELCACHE)

# The fault proxy between `modelcache pull` and an origin, every case (CTest runs the quick ones;
# the slow ones wait out the client's timeouts, several minutes). docs/reliability.md
test-faults: build
	@python3 tests/chaos/faults.py --modelcache $(MODELCACHE)

# The C++ suites under AddressSanitizer + UndefinedBehaviorSanitizer, and the concurrent ones under
# ThreadSanitizer (clang-16, build-asan/ and build-tsan/). Not in `make test`: too long for CI on
# 2 cores (docs/reliability.md has the times).
test-sanitize: setup
	@tools/sanitize.sh asan && tools/sanitize.sh tsan

# libFuzzer targets (clang-16, own build dir build-fuzz/): 10 million executions each, or a
# short run of each (fuzz-ci). docs/reliability.md records the figures.
fuzz: setup
	@fuzz/run.sh --runs 10000000

fuzz-ci: setup
	@fuzz/run.sh --seconds 20
test-deploy:
	@deploy/check.sh $(abspath $(MODELCACHE))

# The bench packages first, so that the configure step finds Google Benchmark.
bench: setup
	@tools/setup-debian.sh --bench
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@bench/agent_hit.sh $(MODELCACHE)
	@bench/mirror_vs_nginx.sh $(MODELCACHE)
	@bench/verify_and_import.sh $(MODELCACHE)
	@bench/pull_vs_peers.sh $(MODELCACHE)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
