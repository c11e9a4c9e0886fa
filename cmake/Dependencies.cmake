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
if(MC_BUILD_TESTS)
  find_package(GTest REQUIRED)            # libgtest-dev, libgmock-dev
endif()
