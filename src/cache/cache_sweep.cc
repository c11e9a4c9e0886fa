// SweepTempFiles: removes temp files left by crashed writers.
#include <sys/stat.h>

#include <chrono>
#include <system_error>

#include "cache/fs_util.h"
#include "mc/cache/cache_store.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

bool OldEnough(const struct stat& st, std::chrono::seconds min_age) {
  auto age = std::chrono::system_clock::now() - internal::ToFileTime(st.st_mtim);
  return age >= min_age;
}

std::vector<fs::path> Children(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) out.push_back(it->path());
  return out;
}

// "<etag>.<8 hex>.incomplete" -> the etag, if the prefix is one.
std::optional<Etag> EtagOfTemp(const std::string& name) {
  size_t dot = name.find('.');
  if (dot == std::string::npos) return std::nullopt;
  auto etag = Etag::Parse(name.substr(0, dot));
  if (!etag.ok() || etag->str() != name.substr(0, dot)) return std::nullopt;
  return *etag;
}

}  // namespace

StatusOr<int> CacheStore::SweepTempFiles(std::chrono::seconds min_age) {
  int removed = 0;
  auto sweep = [&](const fs::path& p) -> Status {
    struct stat st;
    if (!internal::LStat(p, &st) || !OldEnough(st, min_age)) return Status::Ok();
    MC_RETURN_IF_ERROR(internal::RemoveTree(p), "sweep");
    ++removed;
    return Status::Ok();
  };
  MC_ASSIGN_OR_RETURN(std::vector<RepoId> repos, ListRepos());
  for (const RepoId& repo : repos) {
    for (const fs::path& p : Children(layout_.BlobsDir(repo))) {
      std::string name = p.filename().string();
      if (!internal::HasTempSuffix(name, ".incomplete")) continue;
      std::optional<FileLock> lock;
      if (auto etag = EtagOfTemp(name)) {
        auto held = FileLock::TryAcquire(layout_.LockFile(repo, *etag));
        if (!held.ok()) continue;  // a writer is busy with this blob
        lock.emplace(std::move(*held));
      }
      MC_RETURN_IF_ERROR(sweep(p));
    }
    for (const fs::path& p : Children(layout_.RepoDir(repo))) {
      if (internal::HasTempSuffix(p.filename().string(), ".tmp")) MC_RETURN_IF_ERROR(sweep(p));
    }
  }
  for (const fs::path& p : Children(layout_.root() / ".locks")) {
    if (internal::HasTempSuffix(p.filename().string(), ".tmp")) MC_RETURN_IF_ERROR(sweep(p));
  }
  return removed;
}

}  // namespace mc::cache
