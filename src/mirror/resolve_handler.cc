// HEAD/GET /{repo}/resolve/{rev}/{path}: the file bytes, answered directly (no redirect) with the
// headers huggingface_hub reads (hf-hub-protocol.md §2.3, §8.2-8.3).
#include <sys/stat.h>

#include "mirror/byte_range.h"
#include "mirror/mirror_core.h"

namespace mc::mirror {
namespace {

std::string ContentTypeFor(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".json")) return "application/json";
  if (ends(".txt") || ends(".md") || ends(".py") || ends(".yaml") || ends(".yml") ||
      ends(".jinja") || ends(".gitattributes")) {
    return "text/plain; charset=utf-8";
  }
  return "application/octet-stream";
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

void SetFileHeaders(net::HttpResponse& response, const CommitSha& commit, const RepoFile& file,
                    uint64_t size) {
  response.headers.Set("X-Repo-Commit", commit.str());
  response.headers.Set("ETag", Quoted(file.etag));
  if (file.lfs) {
    response.headers.Set("X-Linked-Etag", Quoted(file.etag));
    response.headers.Set("X-Linked-Size", std::to_string(size));
  }
  response.headers.Set("Accept-Ranges", "bytes");
  response.headers.Set("Content-Type", ContentTypeFor(file.path));
}

}  // namespace

std::optional<HubError> MirrorCore::HandleResolve(const RequestInfo& info,
                                                  net::HttpResponse& response) {
  const RepoId& repo = *info.route.repo;
  HubOr<CommitSha> commit = LookUpCommit(info);
  if (!commit.ok()) return commit.error();
  StatusOr<cache::SnapshotEntry> entry =
      store_->StatSnapshotFile(repo, commit.value(), *info.route.path);
  if (!entry.ok()) {
    if (entry.status().code() == StatusCode::kNotFound) {
      return HubError::EntryNotFound(commit.value());
    }
    return HubError::Internal(entry.status());
  }
  StatusOr<RepoFile> file = describer_.Describe(*entry);
  if (!file.ok()) return HubError::Internal(file.status());
  // Size from the descriptor we send from, so headers and body cannot disagree.
  StatusOr<net::ScopedFd> fd = net::ScopedFd::OpenForRead(entry->file);
  struct stat st;
  if (!fd.ok()) return HubError::Internal(fd.status());
  if (::fstat(fd->get(), &st) != 0) return HubError::Internal(ErrnoError(errno, "fstat"));
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  SetFileHeaders(response, commit.value(), *file, size);
  RangeRequest range = ParseRangeHeader(info.http.headers.Get("Range"), size);
  switch (range.outcome) {
    case RangeOutcome::kFull:
      response.status = 200;
      response.SetFile(std::move(*fd), 0, size);
      return std::nullopt;
    case RangeOutcome::kPartial:
      response.status = 206;
      response.headers.Set("Content-Range", ContentRange(range, size));
      response.SetFile(std::move(*fd), range.first, range.length());
      return std::nullopt;
    case RangeOutcome::kUnsatisfiable:
    case RangeOutcome::kMalformed:
      response.headers.Set("Content-Range", ContentRange(range, size));
      return HubError{416, "RangeNotSatisfiable", range.message, commit.value().str()};
  }
  return std::nullopt;
}

}  // namespace mc::mirror
