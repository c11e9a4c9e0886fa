#include "cache/snapshot_walk.h"

#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "cache/fs_util.h"

namespace mc::cache::internal {

namespace fs = std::filesystem;

RawSnapshotEntry DescribeSnapshotEntry(const fs::path& path, std::string rel) {
  RawSnapshotEntry e;
  e.rel = std::move(rel);
  e.path = path;
  e.resolved = path;
  struct stat lst;
  if (LStat(path, &lst) && S_ISLNK(lst.st_mode)) {
    e.is_symlink = true;
    std::error_code ec;
    fs::path target = fs::read_symlink(path, ec);
    if (!ec) {
      e.link_target = target.string();
      e.resolved = target.is_absolute() ? target.lexically_normal()
                                        : (path.parent_path() / target).lexically_normal();
    }
  }
  e.exists = Stat(path, &e.st) && S_ISREG(e.st.st_mode);
  return e;
}

StatusOr<std::vector<RawSnapshotEntry>> WalkSnapshot(const fs::path& snapshot_dir) {
  struct stat st;
  if (!Stat(snapshot_dir, &st) || !S_ISDIR(st.st_mode)) {
    return NotFoundError("no snapshot dir " + snapshot_dir.string());
  }
  std::vector<RawSnapshotEntry> out;
  for (const std::string& rel : ListFilesRecursive(snapshot_dir)) {
    out.push_back(DescribeSnapshotEntry(snapshot_dir / rel, rel));
  }
  return out;
}

std::optional<Etag> BlobEtagOf(const RawSnapshotEntry& entry, const fs::path& blobs_dir) {
  if (!entry.is_symlink) return std::nullopt;
  if (entry.resolved.parent_path() != blobs_dir.lexically_normal()) return std::nullopt;
  auto etag = Etag::Parse(entry.resolved.filename().string());
  // Etag::Parse lowercases and strips quotes; only an exact name counts.
  if (!etag.ok() || etag->str() != entry.resolved.filename().string()) return std::nullopt;
  return *etag;
}

std::vector<std::string> ListFilesRecursive(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  fs::recursive_directory_iterator end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    fs::file_status s = it->symlink_status(type_ec);
    if (type_ec || fs::is_directory(s)) continue;
    out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mc::cache::internal
