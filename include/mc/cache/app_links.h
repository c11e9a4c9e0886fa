// Links from a snapshot into an application's directory, ComfyUI style:
//   models/checkpoints/x.safetensors -> <cache>/models--org--name/snapshots/<sha>/x.safetensors
// Links are absolute (the app dir is anywhere), created atomically (temp name + rename). An
// existing non-link file at the destination is never overwritten (AlreadyExists).
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::cache {

struct AppLink {
  std::filesystem::path link;    // created path
  std::filesystem::path target;  // snapshot file it points to
};

// Links one file (`file` set: `dest` is the link path, or an existing directory to put it in) or
// every file of the snapshot (`file` nullopt: `dest` is a directory; nested paths are recreated).
StatusOr<std::vector<AppLink>> LinkIntoApp(const CacheStore& store, const RepoId& repo,
                                           const Revision& revision,
                                           const std::optional<RepoFilePath>& file,
                                           const std::filesystem::path& dest);

}  // namespace mc::cache
