#include "mc/cache/cache_layout.h"

namespace mc::cache {

namespace fs = std::filesystem;

const char kCacheDirTagContent[] =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n";

fs::path CacheLayout::RepoDir(const RepoId& repo) const { return root_ / repo.FolderName(); }

fs::path CacheLayout::BlobsDir(const RepoId& repo) const { return RepoDir(repo) / "blobs"; }

fs::path CacheLayout::BlobPath(const RepoId& repo, const Etag& etag) const {
  return BlobsDir(repo) / etag.str();
}

fs::path CacheLayout::RefPath(const RepoId& repo, const Revision& revision) const {
  // Revision::Parse guarantees '/'-separated safe segments, so appending keeps us inside refs/.
  return RepoDir(repo) / "refs" / revision.str();
}

fs::path CacheLayout::SnapshotDir(const RepoId& repo, const CommitSha& commit) const {
  return RepoDir(repo) / "snapshots" / commit.str();
}

fs::path CacheLayout::SnapshotFile(const RepoId& repo, const CommitSha& commit,
                                   const RepoFilePath& path) const {
  return SnapshotDir(repo, commit) / path.str();
}

fs::path CacheLayout::NoExistFile(const RepoId& repo, const CommitSha& commit,
                                  const RepoFilePath& path) const {
  return RepoDir(repo) / ".no_exist" / commit.str() / path.str();
}

fs::path CacheLayout::LockFile(const RepoId& repo, const Etag& etag) const {
  return root_ / ".locks" / repo.FolderName() / (etag.str() + ".lock");
}

fs::path CacheLayout::CacheDirTag() const { return root_ / "CACHEDIR.TAG"; }

std::string CacheLayout::SymlinkTarget(const Etag& etag, const RepoFilePath& path) {
  std::string target;
  for (int i = 0; i < path.Depth() + 2; ++i) target += "../";
  target += "blobs/";
  target += etag.str();
  return target;
}

}  // namespace mc::cache
