// LinkIntoApp: absolute symlinks from an application's model folder into a snapshot.
#include "mc/cache/app_links.h"

#include <sys/stat.h>

#include <system_error>

#include "cache/fs_util.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

// AlreadyExists unless `link` is absent or already a symlink (which we may replace).
Status CheckDestination(const fs::path& link) {
  struct stat st;
  if (!internal::LStat(link, &st) || S_ISLNK(st.st_mode)) return Status::Ok();
  return AlreadyExistsError("refusing to replace " + link.string() +
                            ": it exists and is not a symlink");
}

Status CreateLink(const AppLink& l) {
  MC_RETURN_IF_ERROR(internal::MakeDirs(l.link.parent_path()));
  fs::path temp = l.link;
  temp += "." + internal::RandomHex8() + ".tmp";
  return internal::SymlinkAtomic(l.target.string(), l.link, temp);
}

bool IsDir(const fs::path& p) {
  struct stat st;
  return internal::Stat(p, &st) && S_ISDIR(st.st_mode);
}

StatusOr<std::vector<AppLink>> PlanLinks(const CacheStore& store, const RepoId& repo,
                                         const CommitSha& commit,
                                         const std::optional<RepoFilePath>& file,
                                         const fs::path& dest) {
  std::vector<AppLink> plan;
  if (file.has_value()) {
    MC_RETURN_IF_ERROR(store.StatSnapshotFile(repo, commit, *file));
    fs::path link = IsDir(dest) ? dest / fs::path(file->str()).filename() : dest;
    plan.push_back({link, store.layout().SnapshotFile(repo, commit, *file)});
    return plan;
  }
  struct stat st;
  if (internal::LStat(dest, &st) && !S_ISDIR(st.st_mode)) {
    return InvalidArgumentError("destination must be a directory: " + dest.string());
  }
  MC_ASSIGN_OR_RETURN(auto files, store.ListSnapshotFiles(repo, commit));
  for (const SnapshotEntry& e : files) {
    plan.push_back({dest / e.path.str(), store.layout().SnapshotFile(repo, commit, e.path)});
  }
  return plan;
}

}  // namespace

StatusOr<std::vector<AppLink>> LinkIntoApp(const CacheStore& store, const RepoId& repo,
                                           const Revision& revision,
                                           const std::optional<RepoFilePath>& file,
                                           const fs::path& dest) {
  MC_ASSIGN_OR_RETURN(CommitSha commit, store.ResolveRevision(repo, revision), "link into app");
  std::error_code ec;
  fs::path abs_dest = fs::absolute(dest, ec).lexically_normal();
  if (ec) return internal::ErrorFromEc(ec, "resolve " + dest.string());
  MC_ASSIGN_OR_RETURN(std::vector<AppLink> plan, PlanLinks(store, repo, commit, file, abs_dest),
                      "link into app");
  // Check every destination before creating any link, so a conflict changes nothing.
  for (const AppLink& l : plan) MC_RETURN_IF_ERROR(CheckDestination(l.link), "link into app");
  for (const AppLink& l : plan) MC_RETURN_IF_ERROR(CreateLink(l), "link into app");
  return plan;
}

}  // namespace mc::cache
