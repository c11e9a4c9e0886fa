// Walks snapshots/<commit>/ without trusting it: every regular file or symlink below it, with its
// link target and whether that target exists. Shared by the store, scan, verify and remove.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::cache::internal {

struct RawSnapshotEntry {
  std::string rel;             // '/'-separated path below the snapshot dir
  std::filesystem::path path;  // the entry itself
  bool is_symlink = false;
  std::string link_target;         // readlink() text when is_symlink
  std::filesystem::path resolved;  // lexically normalized target (== path for regular files)
  bool exists = false;             // the resolved target exists and is a regular file
  struct stat st {};               // stat() of the resolved target when exists
};

// Describes one entry (lstat, readlink, stat of the target).
RawSnapshotEntry DescribeSnapshotEntry(const std::filesystem::path& path, std::string rel);

// Sorted by rel. NotFound if the dir is missing.
StatusOr<std::vector<RawSnapshotEntry>> WalkSnapshot(const std::filesystem::path& snapshot_dir);

// The blob an entry points to when its target is <blobs_dir>/<valid etag>.
std::optional<Etag> BlobEtagOf(const RawSnapshotEntry& entry,
                               const std::filesystem::path& blobs_dir);

// All files below `dir` (recursive, not following symlinked dirs), as '/'-separated relative
// paths, sorted. Missing dir = empty.
std::vector<std::string> ListFilesRecursive(const std::filesystem::path& dir);

}  // namespace mc::cache::internal
