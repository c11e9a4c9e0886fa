# Targets behind ./dev (the README's two commands are ./dev run and ./dev test):
#   make run    installs what is missing, builds, and runs the demo (a generated model served by
#               the hub-compatible mirror from an HF cache)
#   make test   installs what is missing, builds, and runs every test (C++, the official JS clients,
#               the web console in headless Chromium)
BUILD ?= build
JOBS ?= $(shell nproc)
MODELCACHE := $(BUILD)/src/cli/modelcache

.PHONY: all setup build run test test-cpp test-js test-browser test-deploy bench format clean

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
