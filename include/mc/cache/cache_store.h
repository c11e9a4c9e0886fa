// CacheStore: reads and writes one Hugging Face hub cache directory exactly as the official
// clients do (docs/cache-layout.md). Nothing of ours is written inside the cache root: the only
// entries we create are those huggingface_hub itself creates (repo folders, .locks/, CACHEDIR.TAG).
//
// Crash safety: every write is a temp file + rename (blobs, refs) or a symlink created under a
// temp name and renamed over the final name, so a crash at any moment leaves the old or the new
// state, never a partial blob or a broken snapshot link. Temp names end in ".incomplete" (blobs)
// or ".tmp" and are swept by SweepTempFiles().
//
// Thread-safety: all methods may be called concurrently from several threads and processes; blob
// publication is serialized per etag by a FileLock in .locks/, like huggingface_hub.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mc/cache/cache_layout.h"
#include "mc/cache/file_lock.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::cache {

struct CacheOptions {
  std::filesystem::path root;  // the hub cache dir (HF_HUB_CACHE)
  // nullopt = probe once whether relative symlinks work under root (and honour
  // HF_HUB_DISABLE_SYMLINKS=1); false = no-symlink mode (hf-hub-protocol.md §1.10).
  std::optional<bool> use_symlinks;
  bool create_if_missing = true;
};

// One file of a snapshot as found on disk.
struct SnapshotEntry {
  RepoFilePath path;
  // The blob the snapshot link points to. nullopt when the entry is a regular file
  // (no-symlink mode) whose blob name is unknown; callers that need it hash the file.
  std::optional<Etag> etag;
  uint64_t size = 0;
  std::filesystem::path file;  // the resolved file to read (blob or regular file)
};

// A temp file inside blobs/ that becomes blobs/<etag> by PublishBlob. Owns the fd; the temp file is
// removed by the destructor unless published.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  int fd() const { return fd_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  const Etag& etag() const { return etag_; }
  // Appends bytes (handles short writes). ResourceExhausted on ENOSPC.
  Status Append(const void* data, size_t size);

 private:
  friend class CacheStore;
  BlobWriter(int fd, std::filesystem::path temp_path, Etag etag, RepoId repo)
      : fd_(fd), temp_path_(std::move(temp_path)), etag_(std::move(etag)), repo_(std::move(repo)) {}
  void Discard();
  int fd_ = -1;
  std::filesystem::path temp_path_;
  Etag etag_;
  RepoId repo_;
};

class CacheStore {
 public:
  static StatusOr<std::unique_ptr<CacheStore>> Open(CacheOptions options);

  const CacheLayout& layout() const { return layout_; }
  bool use_symlinks() const { return use_symlinks_; }

  // ---- Reading ----
  // Repos present in the cache (folders that parse as repo folder names), sorted.
  StatusOr<std::vector<RepoId>> ListRepos() const;
  bool RepoExists(const RepoId& repo) const;
  // A commit sha resolves to itself if snapshots/<sha> exists; a ref name through refs/<name>.
  // NotFound if the ref or snapshot is missing (message says which).
  StatusOr<CommitSha> ResolveRevision(const RepoId& repo, const Revision& revision) const;
  // All refs of a repo (walked recursively: "main", "refs/pr/1"), sorted by name.
  StatusOr<std::vector<std::pair<std::string, CommitSha>>> ListRefs(const RepoId& repo) const;
  // Commits that have a snapshots/<sha> dir.
  StatusOr<std::vector<CommitSha>> ListSnapshots(const RepoId& repo) const;
  // Every file of a snapshot (recursive), sorted by path. Entries whose link is broken or whose
  // name is not a valid RepoFilePath are skipped with a warning log.
  StatusOr<std::vector<SnapshotEntry>> ListSnapshotFiles(const RepoId& repo,
                                                         const CommitSha& commit) const;
  // One file of a snapshot. NotFound if absent (or link broken).
  StatusOr<SnapshotEntry> StatSnapshotFile(const RepoId& repo, const CommitSha& commit,
                                           const RepoFilePath& path) const;
  // True if blobs/<etag> exists with `size` bytes (any size if nullopt).
  bool HasBlob(const RepoId& repo, const Etag& etag, std::optional<uint64_t> size) const;

  // ---- Writing ----
  // Creates a unique temp file "blobs/<etag>.<8 hex>.incomplete" for writing a blob.
  StatusOr<BlobWriter> NewBlobWriter(const RepoId& repo, const Etag& etag);
  // fsyncs, verifies size (and the hash when `verify_hash`), applies umask permissions and renames
  // the temp file to blobs/<etag> (atomic). DataLoss on hash/size mismatch (temp removed). If the
  // blob already exists, the temp file is dropped and OK is returned.
  Status PublishBlob(BlobWriter&& writer, uint64_t expected_size, bool verify_hash);
  // Creates or replaces snapshots/<commit>/<path> -> relative link to blobs/<etag> (atomically:
  // link under a temp name, then rename). In no-symlink mode, copies the blob instead.
  // FailedPrecondition if the blob is missing.
  Status LinkSnapshotFile(const RepoId& repo, const CommitSha& commit, const RepoFilePath& path,
                          const Etag& etag);
  // Writes refs/<revision> = commit (40 bytes, no newline) atomically, only if it changed.
  // No-op for a commit-sha revision.
  Status WriteRef(const RepoId& repo, const Revision& revision, const CommitSha& commit);
  // Creates the empty marker .no_exist/<commit>/<path>.
  Status MarkNoExist(const RepoId& repo, const CommitSha& commit, const RepoFilePath& path);
  // Takes the per-blob lock .locks/<repo folder>/<etag>.lock.
  StatusOr<FileLock> LockBlob(const RepoId& repo, const Etag& etag) const;
  // Writes CACHEDIR.TAG if missing.
  Status EnsureCacheDirTag();

  // ---- Maintenance ----
  // Removes temp files (blobs/*.incomplete, *.tmp) older than `min_age` whose blob lock is free.
  // Returns the number removed.
  StatusOr<int> SweepTempFiles(std::chrono::seconds min_age);

 private:
  CacheStore(CacheLayout layout, bool use_symlinks)
      : layout_(std::move(layout)), use_symlinks_(use_symlinks) {}
  CacheLayout layout_;
  bool use_symlinks_;
};

}  // namespace mc::cache
