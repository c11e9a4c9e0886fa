// Import: turns a plain folder into a cached repo, as if it had been downloaded from the Hub.
// Files that the Hub stores in LFS (size >= 10 MiB, binary content, or an LFS extension such as
// .safetensors/.bin/.gguf/.onnx) become sha256 blobs; other files git-sha1 blobs. The commit sha
// is deterministic: a git tree/commit computed from the listing with fixed metadata, so importing
// the same content twice gives the same commit. Writes blobs (atomic), snapshot links, the ref.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::cache {

struct ImportedFile {
  std::string path;
  std::string etag;  // blob name
  uint64_t size = 0;
  bool lfs = false;
};

struct ImportResult {
  CommitSha commit;
  std::vector<ImportedFile> files;  // sorted by path
  uint64_t bytes = 0;
};

// True when a file of this path/size/content prefix is stored as LFS on the Hub.
bool IsLfsFile(const std::string& path, uint64_t size, std::string_view head);

// Imports `dir` (regular files only; symlinks and special files are rejected, hidden ".git" skipped)
// as `repo` at `revision` (a branch/tag name; a commit sha is rejected: commits are computed).
StatusOr<ImportResult> ImportFolder(CacheStore& store, const std::filesystem::path& dir,
                                    const RepoId& repo, const Revision& revision);

}  // namespace mc::cache
