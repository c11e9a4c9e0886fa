// Logging setup. Code logs through spdlog directly (spdlog::info, ...); this only configures the
// process-wide logger once, from the CLI. Never log a token: see docs/architecture.md "Secrets".
#pragma once

#include <string_view>

namespace mc {

// Logs to stderr at `level` ("trace", "debug", "info", "warn", "error", "off").
void SetUpLogging(std::string_view level);

}  // namespace mc
