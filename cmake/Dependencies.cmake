# The only place that finds third-party packages. Every package here is a Debian 12 package
# installed by `make setup` (see tools/setup-debian.sh) and explained in docs/dependencies.md.
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)            # libssl-dev: SHA-256 / SHA-1 through EVP
find_package(CURL REQUIRED)               # libcurl4-openssl-dev: HTTP client
find_package(nlohmann_json 3.11 REQUIRED) # nlohmann-json3-dev: JSON
find_package(CLI11 REQUIRED)              # libcli11-dev: command line
find_package(spdlog REQUIRED)             # libspdlog-dev: logging
find_package(PkgConfig REQUIRED)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)  # libmicrohttpd-dev: HTTP server
find_package(SQLite3 REQUIRED)            # libsqlite3-dev: the agent's state dir
find_package(PostgreSQL 15 REQUIRED)      # libpq-dev: the controller's PostgreSQL store
if(MC_BUILD_TESTS)
  find_package(GTest REQUIRED)            # libgtest-dev, libgmock-dev
endif()
# Google Benchmark (libbenchmark-dev) for the micro-benchmarks in bench/; installed by
# `tools/setup-debian.sh --bench`. Optional: without it those targets are skipped.
find_package(benchmark QUIET)
if(NOT benchmark_FOUND)
  message(STATUS "Google Benchmark not found: micro-benchmarks skipped (make bench installs it)")
endif()
