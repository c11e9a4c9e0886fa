// What the mirror knows about the files of one snapshot: blob names (etags), LFS-ness, and the
// git-like tree with directory object ids that the tree / paths-info APIs report.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/status.h"
#include "mc/common/thread_annotations.h"

namespace mc::mirror {

struct RepoFile {
  std::string path;
  uint64_t size = 0;
  std::string etag;  // blob name: sha256 (LFS) or git blob sha1
  bool lfs = false;
  std::filesystem::path file;  // what to read

  // The tree "oid": the git blob id of the content, or of the LFS pointer for LFS files.
  std::string TreeOid() const;
  // Size of the canonical LFS pointer text (LFS files only).
  uint64_t PointerSize() const;
};

// Turns snapshot entries into RepoFiles. Entries of no-symlink snapshots have no blob name; it is
// computed by hashing (sha256 when the importer's LFS rule applies, else git sha1) and memoized
// by (file, size, mtime). Thread-safe.
class FileDescriber {
 public:
  StatusOr<RepoFile> Describe(const cache::SnapshotEntry& entry);

 private:
  struct Memo {
    uint64_t size;
    int64_t mtime_ns;
    std::string etag;
    bool lfs;
  };
  static constexpr size_t kMaxMemo = 100'000;
  Mutex mu_;
  std::unordered_map<std::string, Memo> memo_ MC_GUARDED_BY(mu_);
};

struct TreeEntry {
  bool is_dir = false;
  std::string path;
  std::string oid;
  uint64_t size = 0;               // 0 for directories
  const RepoFile* file = nullptr;  // files only
};

// The directory tree of a snapshot. Directory oids are git tree ids over the entries below them
// (files as mode 100644 with their TreeOid), so they change exactly when the content does.
class RepoTree {
 public:
  explicit RepoTree(std::vector<RepoFile> files);
  RepoTree(const RepoTree&) = delete;  // entries point into files_
  RepoTree& operator=(const RepoTree&) = delete;

  // The entries below directory `dir` ("" = root), sorted by path: immediate children, or every
  // descendant when `recursive`. NotFound if `dir` is not a directory of this tree.
  StatusOr<std::vector<const TreeEntry*>> List(std::string_view dir, bool recursive) const;
  // A file or directory by path; nullptr if absent.
  const TreeEntry* Find(std::string_view path) const;
  const std::vector<RepoFile>& files() const { return files_; }

 private:
  void ComputeDirectoryOids();
  std::vector<RepoFile> files_;
  std::map<std::string, TreeEntry, std::less<>> entries_;  // by path; dirs and files
};

}  // namespace mc::mirror
