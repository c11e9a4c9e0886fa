// CacheStore: reads and writes one Hugging Face hub cache directory exactly as the official
// clients do (docs/cache-layout.md). Nothing of ours is written inside the cache root: the only
// entries we create are those huggingface_hub itself creates (repo folders, .locks/, CACHEDIR.TAG).
//
// Crash safety: every write is a temp file + rename (blobs, refs) or a symlink created under a
// temp name and renamed over the final name, so a crash at any moment leaves the old or the new
// state, never a partial blob or a broken snapshot link. Blob temps are
// "blobs/<etag>.<8 hex>.incomplete" (as huggingface_hub >= 1.18 names them; "import.<8 hex>..."
// while an import does not know the hash yet). Links, refs and removed snapshots are staged as
// "<repo folder>/<stem>.<8 hex>.tmp", outside refs/ and snapshots/ which readers walk; a new repo
// folder and removed repos are staged in .locks/, which scanners skip. SweepTempFiles() removes
// what a crash left behind. A repo folder always has snapshots/ (scanners require it).
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
#include <string_view>
#include <utility>
#include <vector>

#include "mc/cache/blob_hasher.h"
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
// removed by the destructor unless published. Bytes given to Append() are hashed on the way (for
// sha256 etags and content writers), so PublishBlob(verify_hash=true) need not re-read the file;
// if the fd is written directly instead, PublishBlob falls back to re-reading it.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  int fd() const { return fd_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  // Precondition: the etag is known (NewBlobWriter, or FinishContentHash() was called).
  const Etag& etag() const;
  bool has_etag() const { return etag_.has_value(); }
  // Appends bytes (handles short writes). ResourceExhausted on ENOSPC.
  Status Append(const void* data, size_t size);
  // Content writers only: ends the hash of the appended bytes and makes it this writer's etag.
  // InvalidArgument if the byte count differs from the size given at creation.
  StatusOr<Etag> FinishContentHash();

 private:
  friend class CacheStore;
  BlobWriter(int fd, std::filesystem::path temp_path, std::optional<Etag> etag, RepoId repo,
             unsigned mode, std::unique_ptr<BlobHasher> hasher, uint64_t content_size)
      : fd_(fd),
        temp_path_(std::move(temp_path)),
        etag_(std::move(etag)),
        repo_(std::move(repo)),
        mode_(mode),
        hasher_(std::move(hasher)),
        content_size_(content_size) {}
  void Discard();
  int fd_ = -1;
  std::filesystem::path temp_path_;
  std::optional<Etag> etag_;
  RepoId repo_;
  unsigned mode_ = 0644;  // mode of the freshly created temp file (umask / default ACL)
  std::unique_ptr<BlobHasher> hasher_;  // null once finished, or for git-sha1 etag writers
  uint64_t content_size_ = 0;           // declared size (content writers)
  uint64_t appended_ = 0;
  std::optional<std::string> digest_;  // finished hash of the appended bytes
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
  // For content whose hash is known only after writing (imports): a temp file
  // "blobs/import.<8 hex>.incomplete" hashed with `kind` while appending exactly `size` bytes.
  // Call FinishContentHash(), take LockBlob(etag), then PublishBlob.
  StatusOr<BlobWriter> NewContentBlobWriter(const RepoId& repo, HashKind kind, uint64_t size);
  // Resumable downloads use one stable temp name per blob, blobs/<etag>.resume.incomplete, so that
  // the next process can continue it. Only touch it while holding LockBlob(etag).
  std::filesystem::path ResumableBlobPath(const RepoId& repo, const Etag& etag) const;
  // Opens (creating if missing, never truncating) the resumable temp file for reading and writing
  // with pread/pwrite. The caller owns the fd.
  StatusOr<int> OpenResumableBlob(const RepoId& repo, const Etag& etag);
  // Publishes the resumable temp file whose content the caller has verified against the etag:
  // checks the size (DataLoss if it differs), fsyncs, renames it to blobs/<etag> and fsyncs the
  // directory. `fd` stays the caller's to close. If the blob already exists, the temp is removed.
  Status PublishResumableBlob(const RepoId& repo, const Etag& etag, int fd, uint64_t size);
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
  // Removes our temp files older than `min_age`: blobs/*.incomplete (skipped while their blob lock
  // is held), <repo>/*.<8 hex>.tmp (staged links, refs, removed snapshots) and .locks/*.tmp.
  // Returns the number removed. Only call with min_age 0 when no writer runs on this cache.
  StatusOr<int> SweepTempFiles(std::chrono::seconds min_age);

 private:
  // Creates <repo>/snapshots/ (and the repo folder) in one rename if missing: scanners flag a
  // repo folder without snapshots/, so one must never be visible, even after a crash.
  Status EnsureRepoDir(const RepoId& repo);
  // A unique temp path in the repo folder (outside refs/ and snapshots/, which readers walk).
  std::filesystem::path RepoTempPath(const RepoId& repo, std::string_view stem) const;
  Status CopyIntoSnapshot(const std::filesystem::path& blob, const std::filesystem::path& dest,
                          const RepoId& repo);

  CacheStore(CacheLayout layout, bool use_symlinks)
      : layout_(std::move(layout)), use_symlinks_(use_symlinks) {}
  CacheLayout layout_;
  bool use_symlinks_;
};

}  // namespace mc::cache
