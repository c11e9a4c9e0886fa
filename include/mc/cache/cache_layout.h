// CacheLayout: pure path arithmetic for the Hugging Face hub cache (docs/cache-layout.md,
// hf-hub-protocol.md §1). No I/O. Every path is built from validated ids, so none can leave the
// cache root. Thread-safe (immutable).
#pragma once

#include <filesystem>
#include <string>

#include "mc/common/ids.h"

namespace mc::cache {

class CacheLayout {
 public:
  explicit CacheLayout(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }

  // <root>/models--org--name
  std::filesystem::path RepoDir(const RepoId& repo) const;
  // <root>/models--org--name/blobs
  std::filesystem::path BlobsDir(const RepoId& repo) const;
  // <root>/models--org--name/blobs/<etag>
  std::filesystem::path BlobPath(const RepoId& repo, const Etag& etag) const;
  // <root>/models--org--name/refs/<revision> ("refs/pr/1" -> refs/refs/pr/1).
  // Precondition: !revision.IsCommitSha() (commits have no ref file).
  std::filesystem::path RefPath(const RepoId& repo, const Revision& revision) const;
  // <root>/models--org--name/snapshots/<commit>
  std::filesystem::path SnapshotDir(const RepoId& repo, const CommitSha& commit) const;
  // <root>/models--org--name/snapshots/<commit>/<path>
  std::filesystem::path SnapshotFile(const RepoId& repo, const CommitSha& commit,
                                     const RepoFilePath& path) const;
  // <root>/models--org--name/.no_exist/<commit>/<path>
  std::filesystem::path NoExistFile(const RepoId& repo, const CommitSha& commit,
                                    const RepoFilePath& path) const;
  // <root>/.locks/models--org--name/<etag>.lock
  std::filesystem::path LockFile(const RepoId& repo, const Etag& etag) const;
  // <root>/CACHEDIR.TAG
  std::filesystem::path CacheDirTag() const;

  // The relative symlink target of snapshots/<commit>/<path>: "../../blobs/<etag>" for a top-level
  // file, one more "../" per '/' in the path ("onnx/model.onnx" -> "../../../blobs/<etag>").
  static std::string SymlinkTarget(const Etag& etag, const RepoFilePath& path);

 private:
  std::filesystem::path root_;
};

// The content of CACHEDIR.TAG (standard signature line plus comments, as huggingface_hub writes).
extern const char kCacheDirTagContent[];

}  // namespace mc::cache
