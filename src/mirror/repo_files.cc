#include "mirror/repo_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "mc/cache/blob_hasher.h"
#include "mc/cache/git_objects.h"
#include "mc/cache/importer.h"

namespace mc::mirror {
namespace {

StatusOr<std::string> ReadHead(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open " + file.string());
  std::string head(cache::kLfsSniffBytes, '\0');
  size_t got = 0;
  while (got < head.size()) {
    ssize_t n = ::read(fd, head.data() + got, head.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  head.resize(got);
  return head;
}

std::string_view Parent(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

}  // namespace

std::string RepoFile::TreeOid() const {
  if (!lfs) return etag;
  StatusOr<Etag> sha = Etag::Parse(etag);
  return sha.ok() ? cache::GitBlobSha1(cache::LfsPointer(*sha, size)) : etag;
}

uint64_t RepoFile::PointerSize() const {
  StatusOr<Etag> sha = Etag::Parse(etag);
  return sha.ok() ? cache::LfsPointer(*sha, size).size() : 0;
}

StatusOr<RepoFile> FileDescriber::Describe(const cache::SnapshotEntry& entry) {
  RepoFile f{entry.path.str(), entry.size, "", false, entry.file};
  if (entry.etag) {
    f.etag = entry.etag->str();
    f.lfs = entry.etag->IsSha256();
    return f;
  }
  struct stat st;
  if (::stat(entry.file.c_str(), &st) != 0) return ErrnoError(errno, "stat " + entry.file.string());
  const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  {
    MutexLock lock(mu_);
    auto it = memo_.find(entry.file.string());
    if (it != memo_.end() && it->second.size == size && it->second.mtime_ns == mtime_ns) {
      f.etag = it->second.etag;
      f.lfs = it->second.lfs;
      f.size = size;
      return f;
    }
  }
  MC_ASSIGN_OR_RETURN(std::string head, ReadHead(entry.file));
  f.size = size;
  f.lfs = cache::IsLfsFile(f.path, size, head);
  MC_ASSIGN_OR_RETURN(f.etag, cache::HashFile(entry.file, f.lfs ? cache::HashKind::kSha256
                                                                : cache::HashKind::kGitSha1));
  MutexLock lock(mu_);
  if (memo_.size() >= kMaxMemo) memo_.clear();
  memo_[entry.file.string()] = Memo{size, mtime_ns, f.etag, f.lfs};
  return f;
}

RepoTree::RepoTree(std::vector<RepoFile> files) : files_(std::move(files)) {
  for (const RepoFile& f : files_) {
    entries_[f.path] = TreeEntry{false, f.path, f.TreeOid(), f.size, &f};
    for (std::string_view dir = Parent(f.path); !dir.empty(); dir = Parent(dir)) {
      auto [it, added] = entries_.try_emplace(std::string(dir));
      if (!added) break;  // its ancestors were added with it
      it->second.is_dir = true;
      it->second.path = std::string(dir);
    }
  }
  ComputeDirectoryOids();
}

void RepoTree::ComputeDirectoryOids() {
  std::vector<cache::GitTreeFile> listing;
  listing.reserve(files_.size());
  for (const RepoFile& f : files_) listing.push_back({f.path, f.TreeOid()});
  std::map<std::string, std::string> dir_oids = cache::GitTreeShas(listing);
  for (auto& [path, entry] : entries_) {
    if (entry.is_dir) entry.oid = dir_oids[path];
  }
}

StatusOr<std::vector<const TreeEntry*>> RepoTree::List(std::string_view dir, bool recursive) const {
  if (!dir.empty()) {
    auto it = entries_.find(dir);
    if (it == entries_.end() || !it->second.is_dir) return NotFoundError("no such directory");
  }
  std::string prefix = dir.empty() ? "" : std::string(dir) + "/";
  std::vector<const TreeEntry*> out;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.starts_with(prefix); ++it) {
    if (recursive || it->first.find('/', prefix.size()) == std::string::npos) {
      out.push_back(&it->second);
    }
  }
  return out;
}

const TreeEntry* RepoTree::Find(std::string_view path) const {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

}  // namespace mc::mirror
