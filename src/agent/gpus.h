// GPU discovery for the agent: CDI specs (as `nvidia-ctk cdi generate` writes them) and
// `nvidia-smi -L`.
//
// A CDI spec names a device kind ("nvidia.com/gpu") and its devices ("0", "1", "GPU-<uuid>",
// "all"); a container gets one with `--device nvidia.com/gpu=0`. The agent uses the devices whose
// names are GPU indices. Specs are JSON or YAML; the YAML reader understands the block style
// nvidia-ctk writes (top-level `kind:`, a `devices:` list of mappings with `name:`), nothing more.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/status.h"

namespace mc::agent {

struct CdiSpec {
  std::string kind;                  // "vendor/class"
  std::vector<std::string> devices;  // names, in file order
};

// InvalidArgument when the text has no kind or is neither JSON nor the YAML subset above.
StatusOr<CdiSpec> ParseCdiSpec(std::string_view text);

// The GPU indices (device names that are decimal numbers), sorted, of every spec of `kind` in
// `dirs` (*.json, *.yaml, *.yml; unreadable or malformed files are skipped with a debug log).
// `spec_files` receives the files that contributed.
std::vector<int> FindCdiGpus(const std::vector<std::filesystem::path>& dirs,
                             const std::string& kind,
                             std::vector<std::filesystem::path>* spec_files = nullptr);

struct NvidiaSmiGpus {
  int count = 0;
  std::string model;  // of GPU 0, "NVIDIA A100-SXM4-80GB"; "" if none
};
// Parses `nvidia-smi -L` ("GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-...)" per line).
NvidiaSmiGpus ParseNvidiaSmiList(std::string_view text);

}  // namespace mc::agent
