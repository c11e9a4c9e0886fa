// RemoveRevision / RemoveRepo. Order keeps the cache valid after a crash at any step: refs first
// (a snapshot without a ref is valid; a ref without a snapshot is not), then the snapshot dir
// (moved out of snapshots/ in one rename, so readers never see it half-deleted), then
// .no_exist/<commit>, and blobs last (no remaining link can point at a removed blob).
#include <sys/stat.h>

#include <set>
#include <system_error>

#include "cache/fs_util.h"
#include "cache/snapshot_walk.h"
#include "mc/cache/cache_scan.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

std::set<Etag> BlobsOf(const CacheStore& store, const RepoId& repo, const CommitSha& commit) {
  std::set<Etag> out;
  auto entries = internal::WalkSnapshot(store.layout().SnapshotDir(repo, commit));
  if (!entries.ok()) return out;
  for (const auto& e : *entries) {
    if (auto etag = internal::BlobEtagOf(e, store.layout().BlobsDir(repo))) out.insert(*etag);
  }
  return out;
}

StatusOr<CommitSha> CommitOfRevision(const CacheStore& store, const RepoId& repo,
                                     const Revision& revision) {
  if (revision.IsCommitSha()) return CommitSha::Parse(revision.str());
  auto content = internal::ReadSmallFile(store.layout().RefPath(repo, revision), 256);
  if (!content.ok()) return NotFoundError("no ref " + QuoteForMessage(revision.str()));
  auto commit = CommitSha::Parse(*content);
  if (!commit.ok()) return FailedPreconditionError("ref " + revision.str() + " is not a commit");
  return *commit;
}

// Removes refs/<name> and then empty parent dirs up to refs/ (refs/refs/pr/1).
Status RemoveRef(const fs::path& refs_dir, const std::string& name) {
  MC_RETURN_IF_ERROR(internal::RemoveIfExists(refs_dir / name));
  for (fs::path p = (refs_dir / name).parent_path(); p != refs_dir; p = p.parent_path()) {
    if (::rmdir(p.c_str()) != 0) break;
  }
  return Status::Ok();
}

Status FreeBlobs(CacheStore& store, const RepoId& repo, const std::set<Etag>& candidates,
                 RemoveReport& report) {
  std::set<Etag> still_used;
  MC_ASSIGN_OR_RETURN(std::vector<CommitSha> remaining, store.ListSnapshots(repo));
  for (const CommitSha& c : remaining) {
    for (const Etag& e : BlobsOf(store, repo, c)) still_used.insert(e);
  }
  for (const Etag& etag : candidates) {
    if (still_used.count(etag)) continue;
    MC_ASSIGN_OR_RETURN(FileLock lock, store.LockBlob(repo, etag));
    fs::path blob = store.layout().BlobPath(repo, etag);
    struct stat st;
    if (!internal::LStat(blob, &st)) continue;
    MC_RETURN_IF_ERROR(internal::RemoveIfExists(blob), "free blob");
    report.blobs_freed += 1;
    report.bytes_freed += static_cast<uint64_t>(st.st_size);
  }
  return Status::Ok();
}

// Blobs in blobs/ (not temps): count and bytes.
void CountBlobs(const fs::path& blobs_dir, RemoveReport& report) {
  std::error_code ec;
  fs::directory_iterator it(blobs_dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (!Etag::Parse(it->path().filename().string()).ok()) continue;
    if (!internal::LStat(it->path(), &st) || !S_ISREG(st.st_mode)) continue;
    report.blobs_freed += 1;
    report.bytes_freed += static_cast<uint64_t>(st.st_size);
  }
}

}  // namespace

StatusOr<RemoveReport> RemoveRepo(CacheStore& store, const RepoId& repo) {
  if (!store.RepoExists(repo)) return NotFoundError("repo not cached: " + repo.id());
  RemoveReport report;
  MC_ASSIGN_OR_RETURN(auto snapshots, store.ListSnapshots(repo));
  for (const CommitSha& c : snapshots) report.removed_snapshots.push_back(c.str());
  MC_ASSIGN_OR_RETURN(auto refs, store.ListRefs(repo));
  for (const auto& [name, commit] : refs) report.removed_refs.push_back(name);
  CountBlobs(store.layout().BlobsDir(repo), report);
  // .locks is skipped by scanners, so the repo can vanish from the root in one rename.
  fs::path locks = store.layout().root() / ".locks";
  MC_RETURN_IF_ERROR(internal::MakeDirs(locks), "remove " + repo.id());
  fs::path trash = locks / (repo.FolderName() + "." + internal::RandomHex8() + ".tmp");
  MC_RETURN_IF_ERROR(internal::RenamePath(store.layout().RepoDir(repo), trash),
                     "remove " + repo.id());
  MC_RETURN_IF_ERROR(internal::RemoveTree(trash), "remove " + repo.id());
  MC_RETURN_IF_ERROR(internal::RemoveTree(locks / repo.FolderName()), "remove " + repo.id());
  return report;
}

StatusOr<RemoveReport> RemoveRevision(CacheStore& store, const RepoId& repo,
                                      const Revision& revision) {
  if (!store.RepoExists(repo)) return NotFoundError("repo not cached: " + repo.id());
  MC_ASSIGN_OR_RETURN(CommitSha commit, CommitOfRevision(store, repo, revision),
                      "remove " + repo.id());
  const fs::path repo_dir = store.layout().RepoDir(repo);
  const fs::path snap = store.layout().SnapshotDir(repo, commit);
  struct stat st;
  bool has_snapshot = internal::Stat(snap, &st) && S_ISDIR(st.st_mode);
  MC_ASSIGN_OR_RETURN(auto refs, store.ListRefs(repo));
  RemoveReport report;
  for (const auto& [name, target] : refs) {
    if (target != commit) continue;
    MC_RETURN_IF_ERROR(RemoveRef(repo_dir / "refs", name), "remove ref " + name);
    report.removed_refs.push_back(name);
  }
  if (!has_snapshot && report.removed_refs.empty()) {
    return NotFoundError("no snapshot " + commit.str() + " of " + repo.id());
  }
  std::set<Etag> candidates = BlobsOf(store, repo, commit);
  if (has_snapshot) {
    fs::path trash = repo_dir / ("snapshot." + internal::RandomHex8() + ".tmp");
    MC_RETURN_IF_ERROR(internal::RenamePath(snap, trash), "remove snapshot");
    MC_RETURN_IF_ERROR(internal::RemoveTree(trash), "remove snapshot");
    report.removed_snapshots.push_back(commit.str());
  }
  MC_RETURN_IF_ERROR(internal::RemoveTree(repo_dir / ".no_exist" / commit.str()));
  MC_RETURN_IF_ERROR(FreeBlobs(store, repo, candidates, report), "remove " + repo.id());
  MC_ASSIGN_OR_RETURN(auto left, store.ListSnapshots(repo));
  MC_ASSIGN_OR_RETURN(auto refs_left, store.ListRefs(repo));
  if (left.empty() && refs_left.empty()) {
    // Like huggingface_hub: a repo with no revision left is removed with its leftovers.
    MC_ASSIGN_OR_RETURN(RemoveReport rest, RemoveRepo(store, repo));
    report.blobs_freed += rest.blobs_freed;
    report.bytes_freed += rest.bytes_freed;
  }
  return report;
}

}  // namespace mc::cache
