// Import: turns a plain folder into a cached repo, as if it had been downloaded from the Hub.
// Files that the Hub stores in LFS (size >= 10 MiB, binary content, or an LFS extension such as
// .safetensors/.bin/.gguf/.onnx) become sha256 blobs; other files git-sha1 blobs. The commit sha
// is deterministic: a git tree/commit computed from the listing with fixed metadata, so importing
// the same content twice gives the same commit. Writes blobs (atomic), snapshot links, the ref.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
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

  // The imported file at `path`, or nullptr.
  const ImportedFile* Find(std::string_view path) const;
};

// Progress of an import, reported from the importing thread. The ref is written last, so a crash
// before kRefWritten leaves blobs and links that no ref points to (and nothing broken).
struct ImportProgress {
  enum class Stage { kCopied, kPublished, kLinked, kRefWritten } stage = Stage::kCopied;
  std::string path;         // repo file ("" for kRefWritten)
  uint64_t bytes_done = 0;  // of this file (kCopied)
};

struct ImportOptions {
  size_t chunk_bytes = 4 << 20;  // read/write unit; each file is read exactly once
  std::function<void(const ImportProgress&)> on_progress;  // optional
};

// How many leading bytes IsLfsFile looks at for a NUL byte (git's binary heuristic).
inline constexpr size_t kLfsSniffBytes = 8000;

// True when a file of this path/size/content prefix is stored as LFS on the Hub. `head` is the
// first kLfsSniffBytes bytes of the file (or all of it if shorter).
bool IsLfsFile(const std::string& path, uint64_t size, std::string_view head);

// Imports `dir` (regular files only; symlinks and special files are rejected, hidden ".git"
// skipped) as `repo` at `revision` (a branch/tag name; a commit sha is rejected: commits are
// computed). The whole listing is validated before anything is written: InvalidArgument names the
// first symlink, special file or file name that is not a valid RepoFilePath. Each file is read
// once, hashed while copied into a temp blob, published atomically and linked; the ref comes last.
// The commit is sha1 of a git commit object (fixed author/committer "modelcache
// <modelcache@localhost> 0 +0000", message "Imported by modelcache\n") whose tree lists every
// file with mode 100644; an LFS file's tree entry is the git blob id of LfsPointer().
// FailedPrecondition if a file changes while being read. Not safe against a concurrent
// RemoveRevision of the same repo.
StatusOr<ImportResult> ImportFolder(CacheStore& store, const std::filesystem::path& dir,
                                    const RepoId& repo, const Revision& revision,
                                    const ImportOptions& options = {});

}  // namespace mc::cache
