#include "mc/downloader/download_plan.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>

namespace mc::downloader {
namespace {

std::string Normalize(std::string pattern) {
  std::replace(pattern.begin(), pattern.end(), '\\', '/');
  if (!pattern.empty() && pattern.back() == '/') pattern += '*';
  return pattern;
}

PlannedFile::Action Classify(const cache::CacheStore* store, const RepoId& repo,
                             const CommitSha& commit, const RemoteFile& file) {
  if (store == nullptr || !store->HasBlob(repo, file.etag, file.size)) {
    return PlannedFile::Action::kFetch;
  }
  StatusOr<cache::SnapshotEntry> linked = store->StatSnapshotFile(repo, commit, file.path);
  if (linked.ok() && linked->etag == file.etag && linked->size == file.size) {
    return PlannedFile::Action::kDone;
  }
  return PlannedFile::Action::kLink;
}

}  // namespace

bool PatternMatches(const std::string& pattern, const std::string& path) {
  // Without FNM_PATHNAME '*' matches '/', and FNM_NOESCAPE makes '\' literal: Python's fnmatch.
  return ::fnmatch(Normalize(pattern).c_str(), path.c_str(), FNM_NOESCAPE) == 0;
}

bool IsSelected(const FilePatterns& patterns, const std::string& path) {
  auto any = [&](const std::vector<std::string>& list) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& p) { return PatternMatches(p, path); });
  };
  if (!patterns.include.empty() && !any(patterns.include)) return false;
  return !any(patterns.exclude);
}

StatusOr<DownloadPlan> MakeDownloadPlan(const cache::CacheStore* store, const RepoId& repo,
                                        const CommitSha& commit,
                                        const std::optional<Revision>& revision,
                                        const std::vector<RemoteFile>& listing,
                                        const FilePatterns& patterns) {
  DownloadPlan plan{repo, commit, revision, {}, 0, 0, 0};
  if (plan.revision && plan.revision->IsCommitSha()) plan.revision.reset();
  std::set<std::string> seen_paths;
  std::set<std::string> fetched_blobs;
  for (const RemoteFile& file : listing) {
    if (!seen_paths.insert(file.path.str()).second) {
      return InvalidArgumentError("the file listing names " + QuoteForMessage(file.path.str()) +
                                  " twice");
    }
    if (!IsSelected(patterns, file.path.str())) continue;
    PlannedFile planned{file, Classify(store, repo, commit, file)};
    plan.bytes_total += file.size;
    if (planned.action == PlannedFile::Action::kFetch &&
        fetched_blobs.insert(file.etag.str()).second) {
      plan.bytes_to_fetch += file.size;
      ++plan.files_to_fetch;
    }
    plan.files.push_back(std::move(planned));
  }
  std::sort(plan.files.begin(), plan.files.end(),
            [](const PlannedFile& a, const PlannedFile& b) { return a.file.path < b.file.path; });
  return plan;
}

}  // namespace mc::downloader
