#include <CLI/CLI.hpp>

#include "commands.h"
#include "mc/hub/hub_config.h"

namespace mc::cli {

void AddCacheDirOption(CLI::App& cmd, std::string& value) {
  cmd.add_option("--cache-dir", value,
                 "The Hugging Face cache dir (default: $HF_HUB_CACHE, else $HF_HOME/hub, else\n"
                 "~/.cache/huggingface/hub, exactly as the official clients choose it)");
}

StatusOr<std::filesystem::path> CacheDirOrDefault(const std::string& flag) {
  if (!flag.empty()) return std::filesystem::path(flag);
  return hub::ResolveHubCacheDir(hub::Env::Real());
}

}  // namespace mc::cli
