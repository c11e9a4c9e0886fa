// Download planning: which files of a commit to fetch, which are already in the cache.
// Pure logic over a file listing and the cache's current contents; no network. The first stage of
// `modelcache pull` (design.md §4 "pull": resolve → list → filter → plan → fetch → publish).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::downloader {

// One file of the remote commit, as the tree listing gives it (already validated).
struct RemoteFile {
  RepoFilePath path;
  Etag etag;  // blob name in the cache: sha256 for LFS files, git sha1 otherwise
  uint64_t size = 0;
};

// Allow/ignore patterns with huggingface_hub's semantics (hf-hub-protocol.md §3): a path is kept
// when `include` is empty or any include pattern matches, then dropped when any exclude pattern
// matches. Patterns are Python-fnmatch globs over the whole repo path: '*' also matches '/',
// '?', '[seq]', '[!seq]'; no escapes. A pattern ending in '/' gets '*' appended; '\' becomes '/'
// in patterns. Matching is case-sensitive (huggingface_hub 1.x).
struct FilePatterns {
  std::vector<std::string> include;
  std::vector<std::string> exclude;
};

bool PatternMatches(const std::string& pattern, const std::string& path);
bool IsSelected(const FilePatterns& patterns, const std::string& path);

struct PlannedFile {
  enum class Action {
    kDone,   // the snapshot already links this path to the right blob: nothing to do
    kLink,   // the blob is in the cache with the right size: only the link is missing
    kFetch,  // the blob must be downloaded
  };
  RemoteFile file;
  Action action = Action::kFetch;
};

struct DownloadPlan {
  RepoId repo;
  CommitSha commit;
  std::optional<Revision> revision;  // the ref to write last, unless it is the commit itself
  std::vector<PlannedFile> files;    // sorted by path
  uint64_t bytes_total = 0;          // all selected files
  uint64_t bytes_to_fetch = 0;       // kFetch files only (distinct blobs counted once)
  int files_to_fetch = 0;            // distinct blobs to download
};

// Filters `listing` with `patterns` and classifies each selected file against the cache; a null
// `store` stands for a cache that does not exist yet (every file is fetched). Duplicate paths in
// the listing are InvalidArgument. A listing that selects nothing is fine (an empty plan).
StatusOr<DownloadPlan> MakeDownloadPlan(const cache::CacheStore* store, const RepoId& repo,
                                        const CommitSha& commit,
                                        const std::optional<Revision>& revision,
                                        const std::vector<RemoteFile>& listing,
                                        const FilePatterns& patterns);

}  // namespace mc::downloader
