// Scanning, verifying and removing cached repos: the operations behind `modelcache ls`,
// `verify` and `rm`. Semantics follow huggingface_hub's scan_cache_dir (hf-hub-protocol.md §1.12).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::cache {

using FileTime = std::chrono::system_clock::time_point;

struct CachedFile {
  std::string path;            // path inside the repo
  std::string blob_name;       // etag, or "" for a regular file (no-symlink mode)
  std::filesystem::path file;  // resolved blob path
  uint64_t size_on_disk = 0;   // st_size of the resolved blob
  FileTime last_accessed;      // atime
  FileTime last_modified;      // mtime
};

struct CachedRevision {
  std::string commit;
  std::vector<std::string> refs;  // sorted
  std::vector<CachedFile> files;  // sorted by path
  uint64_t size_on_disk = 0;      // sum over distinct blobs
  FileTime last_modified;
};

struct CachedRepo {
  RepoId repo;
  std::filesystem::path dir;
  std::vector<CachedRevision> revisions;  // sorted by commit
  uint64_t size_on_disk = 0;              // sum over distinct blobs reachable from snapshots
  size_t nb_files = 0;                    // distinct blobs reachable from snapshots
  FileTime last_accessed;
  FileTime last_modified;
};

struct CacheScan {
  std::vector<CachedRepo> repos;  // sorted by type then id
  uint64_t size_on_disk = 0;
  // One line per problem, as scan_cache_dir's CorruptedCacheException messages.
  std::vector<std::string> warnings;
  std::vector<std::filesystem::path> incomplete_files;  // */blobs/*.incomplete
};

StatusOr<CacheScan> ScanCache(const CacheStore& store);

struct VerifyFileResult {
  std::string repo;  // "org/name"
  std::string commit;
  std::string path;
  std::string expected;  // blob name
  std::string actual;    // computed hash; "" if missing
  enum class Outcome { kOk, kMismatch, kMissing, kUnknownName } outcome = Outcome::kOk;
};

struct VerifyReport {
  std::vector<VerifyFileResult> files;
  uint64_t bytes_hashed = 0;
  int ok = 0, failed = 0;
};

// Recomputes the hash of every blob reachable from the selected snapshots (all when repo is
// nullopt; all revisions of repo when revision is nullopt). Each distinct blob is hashed once.
StatusOr<VerifyReport> VerifyCache(const CacheStore& store, const std::optional<RepoId>& repo,
                                   const std::optional<Revision>& revision);

struct RemoveReport {
  std::vector<std::string> removed_snapshots;  // commits
  std::vector<std::string> removed_refs;
  int blobs_freed = 0;
  uint64_t bytes_freed = 0;
};

// Removes one revision (snapshot dir, refs pointing at it, .no_exist/<commit>) and frees the blobs
// no remaining snapshot references. NotFound if absent. Crash-safe: links go before blobs.
StatusOr<RemoveReport> RemoveRevision(CacheStore& store, const RepoId& repo,
                                      const Revision& revision);
// Removes the whole repo folder and its locks.
StatusOr<RemoveReport> RemoveRepo(CacheStore& store, const RepoId& repo);

}  // namespace mc::cache
