// VerifyCache: recomputes the hash of every blob reachable from the selected snapshots. Distinct
// blobs are hashed once each, by a few threads in parallel (hashing is CPU-bound).
#include <algorithm>
#include <atomic>
#include <map>
#include <system_error>
#include <thread>

#include "cache/snapshot_walk.h"
#include "mc/cache/blob_hasher.h"
#include "mc/cache/cache_scan.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

struct PendingFile {
  VerifyFileResult result;
  std::optional<Etag> etag;
  fs::path blob;
};

struct HashJob {
  fs::path blob;
  HashKind kind;
  uint64_t size = 0;
  StatusOr<std::string> actual = InternalError("not hashed");
};

StatusOr<std::vector<CommitSha>> SelectCommits(const CacheStore& store, const RepoId& repo,
                                               const std::optional<Revision>& revision) {
  if (!revision.has_value()) return store.ListSnapshots(repo);
  MC_ASSIGN_OR_RETURN(CommitSha commit, store.ResolveRevision(repo, *revision));
  return std::vector<CommitSha>{commit};
}

Status CollectRepo(const CacheStore& store, const RepoId& repo,
                   const std::optional<Revision>& revision, std::vector<PendingFile>& files) {
  MC_ASSIGN_OR_RETURN(std::vector<CommitSha> commits, SelectCommits(store, repo, revision));
  fs::path blobs_dir = store.layout().BlobsDir(repo);
  for (const CommitSha& commit : commits) {
    MC_ASSIGN_OR_RETURN(auto entries,
                        internal::WalkSnapshot(store.layout().SnapshotDir(repo, commit)));
    for (const auto& e : entries) {
      PendingFile f;
      f.result.repo = repo.id();
      f.result.commit = commit.str();
      f.result.path = e.rel;
      f.etag = internal::BlobEtagOf(e, blobs_dir);
      f.result.expected = f.etag ? f.etag->str() : e.resolved.filename().string();
      f.blob = e.resolved;
      if (!e.exists) {
        f.result.outcome = VerifyFileResult::Outcome::kMissing;
      } else if (!f.etag) {
        f.result.outcome = VerifyFileResult::Outcome::kUnknownName;
      }
      files.push_back(std::move(f));
    }
  }
  return Status::Ok();
}

void RunJobs(std::vector<HashJob>& jobs) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      jobs[i].actual = HashFile(jobs[i].blob, jobs[i].kind);
      std::error_code ec;
      uint64_t size = fs::file_size(jobs[i].blob, ec);
      if (!ec && jobs[i].actual.ok()) jobs[i].size = size;
    }
  };
  size_t n = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 4);
  n = std::min(n, jobs.size());
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
}

}  // namespace

StatusOr<VerifyReport> VerifyCache(const CacheStore& store, const std::optional<RepoId>& repo,
                                   const std::optional<Revision>& revision) {
  std::vector<RepoId> repos;
  if (repo.has_value()) {
    if (!store.RepoExists(*repo)) return NotFoundError("repo not cached: " + repo->id());
    repos.push_back(*repo);
  } else {
    MC_ASSIGN_OR_RETURN(repos, store.ListRepos());
  }
  std::vector<PendingFile> files;
  for (const RepoId& r : repos) {
    MC_RETURN_IF_ERROR(CollectRepo(store, r, repo ? revision : std::nullopt, files),
                       "verify " + r.id());
  }
  std::map<fs::path, size_t> job_of;
  std::vector<HashJob> jobs;
  for (const PendingFile& f : files) {
    if (f.result.outcome != VerifyFileResult::Outcome::kOk) continue;
    if (job_of.emplace(f.blob, jobs.size()).second) {
      jobs.push_back({f.blob, HashKindOf(*f.etag)});
    }
  }
  RunJobs(jobs);
  VerifyReport report;
  for (const HashJob& job : jobs) report.bytes_hashed += job.size;
  for (PendingFile& f : files) {
    auto& r = f.result;
    if (r.outcome == VerifyFileResult::Outcome::kOk) {
      const HashJob& job = jobs[job_of[f.blob]];
      if (!job.actual.ok() && job.actual.status().code() != StatusCode::kNotFound) {
        return job.actual.status().WithContext("verify " + r.repo + " " + r.path);
      }
      r.actual = job.actual.value_or("");
      if (!job.actual.ok())
        r.outcome = VerifyFileResult::Outcome::kMissing;
      else if (r.actual != r.expected)
        r.outcome = VerifyFileResult::Outcome::kMismatch;
    }
    if (r.outcome == VerifyFileResult::Outcome::kOk) ++report.ok;
    if (r.outcome == VerifyFileResult::Outcome::kMismatch ||
        r.outcome == VerifyFileResult::Outcome::kMissing) {
      ++report.failed;
    }
    report.files.push_back(std::move(r));
  }
  return report;
}

}  // namespace mc::cache
