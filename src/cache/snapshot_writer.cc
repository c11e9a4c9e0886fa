// Snapshot links, refs, .no_exist markers, locks and CACHEDIR.TAG. Staged files live directly in
// the repo folder (outside refs/ and snapshots/, which readers walk) and are renamed into place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "cache/fs_util.h"
#include "mc/cache/cache_store.h"

namespace mc::cache {

namespace fs = std::filesystem;

fs::path CacheStore::RepoTempPath(const RepoId& repo, std::string_view stem) const {
  return layout_.RepoDir(repo) / (std::string(stem) + "." + internal::RandomHex8() + ".tmp");
}

Status CacheStore::EnsureRepoDir(const RepoId& repo) {
  fs::path dir = layout_.RepoDir(repo);
  struct stat st;
  if (internal::Stat(dir / "snapshots", &st) && S_ISDIR(st.st_mode)) return Status::Ok();
  if (internal::Stat(dir, &st)) {
    return internal::MakeDirs(dir / "snapshots");  // repo folder from another writer
  }
  // Staged in .locks/ (skipped by scanners), then renamed into the root.
  fs::path staged =
      layout_.root() / ".locks" / (repo.FolderName() + "." + internal::RandomHex8() + ".tmp");
  MC_RETURN_IF_ERROR(internal::MakeDirs(staged / "snapshots"));
  if (::rename(staged.c_str(), dir.c_str()) != 0) {
    int err = errno;
    internal::RemoveTree(staged).IgnoreError();
    if (err != EEXIST && err != ENOTEMPTY) return ErrnoError(err, "create " + dir.string());
    return internal::MakeDirs(dir / "snapshots");  // lost a race with another creator
  }
  return internal::FsyncDir(layout_.root());
}

namespace {

// True if `link` already is a symlink whose text is `target`.
bool LinkAlreadyPoints(const fs::path& link, const std::string& target) {
  std::error_code ec;
  fs::path current = fs::read_symlink(link, ec);
  return !ec && current.string() == target;
}

Status RejectNonLink(const fs::path& dest) {
  struct stat st;
  if (internal::LStat(dest, &st) && S_ISDIR(st.st_mode)) {
    return FailedPreconditionError("a directory is in the way of " + dest.string());
  }
  return Status::Ok();
}

}  // namespace

Status CacheStore::CopyIntoSnapshot(const fs::path& blob, const fs::path& dest,
                                    const RepoId& repo) {
  fs::path temp = RepoTempPath(repo, "copy");
  std::error_code ec;
  fs::copy_file(blob, temp, fs::copy_options::none, ec);
  if (ec) {
    internal::RemoveIfExists(temp).IgnoreError();
    return internal::ErrorFromEc(ec, "copy " + blob.string());
  }
  internal::ScopedFd fd(::open(temp.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    Status s = ErrnoError(errno, "fsync " + temp.string());
    internal::RemoveIfExists(temp).IgnoreError();
    return s;
  }
  Status s = internal::RenamePath(temp, dest);
  if (!s.ok()) {
    internal::RemoveIfExists(temp).IgnoreError();
    return s;
  }
  return internal::FsyncDir(dest.parent_path());
}

Status CacheStore::LinkSnapshotFile(const RepoId& repo, const CommitSha& commit,
                                    const RepoFilePath& path, const Etag& etag) {
  fs::path blob = layout_.BlobPath(repo, etag);
  if (!HasBlob(repo, etag, std::nullopt)) {
    return FailedPreconditionError("cannot link " + path.str() + ": blob " + etag.str() +
                                   " is missing");
  }
  fs::path dest = layout_.SnapshotFile(repo, commit, path);
  MC_RETURN_IF_ERROR(EnsureRepoDir(repo), "link " + path.str());
  MC_RETURN_IF_ERROR(RejectNonLink(dest), "link " + path.str());
  MC_RETURN_IF_ERROR(internal::MakeDirs(dest.parent_path()), "link " + path.str());
  if (!use_symlinks_) {
    MC_RETURN_IF_ERROR(CopyIntoSnapshot(blob, dest, repo), "link " + path.str());
    return Status::Ok();
  }
  std::string target = CacheLayout::SymlinkTarget(etag, path);
  if (LinkAlreadyPoints(dest, target)) return Status::Ok();
  MC_RETURN_IF_ERROR(internal::SymlinkAtomic(target, dest, RepoTempPath(repo, "link")),
                     "link " + path.str());
  return Status::Ok();
}

Status CacheStore::WriteRef(const RepoId& repo, const Revision& revision, const CommitSha& commit) {
  if (revision.IsCommitSha()) return Status::Ok();
  fs::path ref = layout_.RefPath(repo, revision);
  auto current = internal::ReadSmallFile(ref, 256);
  if (current.ok() && *current == commit.str()) return Status::Ok();
  MC_RETURN_IF_ERROR(EnsureRepoDir(repo), "write ref " + revision.str());
  MC_RETURN_IF_ERROR(RejectNonLink(ref), "write ref " + revision.str());
  MC_RETURN_IF_ERROR(internal::MakeDirs(ref.parent_path()), "write ref " + revision.str());
  MC_RETURN_IF_ERROR(internal::WriteFileAtomic(ref, RepoTempPath(repo, "ref"), commit.str()),
                     "write ref " + revision.str());
  return Status::Ok();
}

Status CacheStore::MarkNoExist(const RepoId& repo, const CommitSha& commit,
                               const RepoFilePath& path) {
  fs::path marker = layout_.NoExistFile(repo, commit, path);
  MC_RETURN_IF_ERROR(EnsureRepoDir(repo), "mark no-exist " + path.str());
  MC_RETURN_IF_ERROR(internal::MakeDirs(marker.parent_path()), "mark no-exist " + path.str());
  // Empty is the final content, so a plain create is already atomic enough.
  internal::ScopedFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666));
  if (!fd.valid()) return ErrnoError(errno, "create " + marker.string());
  return Status::Ok();
}

StatusOr<FileLock> CacheStore::LockBlob(const RepoId& repo, const Etag& etag) const {
  return FileLock::Acquire(layout_.LockFile(repo, etag));
}

Status CacheStore::EnsureCacheDirTag() {
  fs::path tag = layout_.CacheDirTag();
  struct stat st;
  if (internal::LStat(tag, &st)) return Status::Ok();
  fs::path locks = layout_.root() / ".locks";
  MC_RETURN_IF_ERROR(internal::MakeDirs(locks), "write CACHEDIR.TAG");
  fs::path temp = locks / ("CACHEDIR.TAG." + internal::RandomHex8() + ".tmp");
  MC_RETURN_IF_ERROR(internal::WriteFileAtomic(tag, temp, kCacheDirTagContent),
                     "write CACHEDIR.TAG");
  return Status::Ok();
}

}  // namespace mc::cache
