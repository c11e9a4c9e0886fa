// Hub HTTP error answers -> mc::Status, keyed on headers first as huggingface_hub does
// (hf-hub-protocol.md §2.6). This is the only place that maps a Hub answer to a Status; the hub
// client and (later) the downloader both use it. Pure functions, thread-safe.
//
// Mapping (first match wins):
//   X-Error-Code RepoNotFound       -> NotFound "model org/x not found (or private: check your
//   token)" X-Error-Code RevisionNotFound   -> NotFound naming the revision X-Error-Code
//   EntryNotFound      -> NotFound naming the file and the commit (X-Repo-Commit is
//                                      also returned in HubErrorDetail::repo_commit)
//   X-Error-Code GatedRepo          -> PermissionDenied: without a token "accept its terms on the
//   Hub
//                                      and provide a token"; with one "token not accepted"
//   X-Error-Message "Access to this resource is disabled." -> PermissionDenied
//   429                             -> Unavailable; Retry-After (seconds) in HubErrorDetail
//   408, 5xx                        -> Unavailable
//   401 (no code)                   -> Unauthenticated
//   403 (no code)                   -> PermissionDenied
//   404 (no code)                   -> NotFound
//   400 and other 4xx               -> InvalidArgument (400) / FailedPrecondition (others)
// Messages name the repo, revision and file and say what to do next. Server text (X-Error-Message)
// is quoted with QuoteForMessage; no message ever contains a token.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/net/headers.h"

namespace mc::hub {

// What a request was about, for error messages.
struct HubRequestSubject {
  RepoId repo;
  std::optional<std::string> revision;  // as the caller named it (branch, tag, sha)
  std::optional<RepoFilePath> file;
  bool sent_token = false;  // an Authorization header went with the request
};

// Machine-readable facts about a failed Hub answer, for callers that act on them (the downloader
// honours retry_after and writes .no_exist/<commit>/<path> from repo_commit).
struct HubErrorDetail {
  int http_status = 0;                   // 0 when no HTTP answer was received (transport error)
  std::string error_code;                // X-Error-Code, "" if absent
  std::optional<CommitSha> repo_commit;  // X-Repo-Commit when valid
  std::optional<std::chrono::seconds> retry_after;  // 429/503 Retry-After (delta seconds)
};

// The Status for an HTTP answer. OK for statuses below 400. When `detail` is non-null it is
// filled (also for OK answers).
Status HubErrorFromResponse(int http_status, const net::HeaderMap& headers,
                            const HubRequestSubject& subject, HubErrorDetail* detail = nullptr);

// "model org/x", "dataset org/d": how messages name a repo.
std::string DescribeRepo(const RepoId& repo);

}  // namespace mc::hub
