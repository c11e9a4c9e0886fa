#include "mc/hub/hub_errors.h"

#include <charconv>

namespace mc::hub {
namespace {

constexpr std::string_view kDisabledMessage = "Access to this resource is disabled.";
constexpr std::string_view kTokenHint = "provide a token (HF_TOKEN or --token-file)";

std::optional<std::chrono::seconds> ParseRetryAfter(const net::HeaderMap& headers) {
  std::optional<std::string> value = headers.Get("Retry-After");
  if (!value || value->empty() || value->size() > 9) return std::nullopt;
  long seconds = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), seconds);
  if (ec != std::errc() || end != value->data() + value->size() || seconds < 0) {
    return std::nullopt;  // HTTP-date form: the caller falls back to its own backoff
  }
  return std::chrono::seconds(seconds);
}

std::string WhatFile(const HubRequestSubject& s) {
  std::string what = DescribeRepo(s.repo);
  if (s.revision) what += " at revision " + QuoteForMessage(*s.revision);
  if (s.file) what = "file " + QuoteForMessage(s.file->str()) + " of " + what;
  return what;
}

std::string ServerSaid(const net::HeaderMap& headers) {
  std::optional<std::string> message = headers.Get("X-Error-Message");
  return message ? " (hub said: " + QuoteForMessage(*message) + ")" : "";
}

Status FromErrorCode(std::string_view code, int http, const net::HeaderMap& headers,
                     const HubRequestSubject& s, const std::optional<CommitSha>& commit) {
  std::string repo = DescribeRepo(s.repo);
  if (code == "RepoNotFound") {
    return NotFoundError(repo + " not found (or private: check your token" +
                         std::string(s.sent_token ? "" : "; none was sent") + ")");
  }
  if (code == "RevisionNotFound") {
    return NotFoundError("revision " + QuoteForMessage(s.revision.value_or("")) + " not found in " +
                         repo + ": check the branch, tag or commit name");
  }
  if (code == "EntryNotFound") {
    std::string where =
        commit ? commit->str() : "revision " + QuoteForMessage(s.revision.value_or(""));
    std::string file = s.file ? QuoteForMessage(s.file->str()) : "entry";
    return NotFoundError("file " + file + " not found in " + repo + " at " + where);
  }
  if (code == "GatedRepo") {
    if (!s.sent_token) {
      return PermissionDeniedError(repo + " is gated: accept its terms on the Hub and " +
                                   std::string(kTokenHint));
    }
    return PermissionDeniedError(repo + " is gated and the token was not accepted: accept its " +
                                 "terms on the Hub with the account of this token");
  }
  return Status();  // not a code we key on
}

Status FromHttpStatus(int http, const net::HeaderMap& headers, const HubRequestSubject& s) {
  std::string what = WhatFile(s);
  std::string said = ServerSaid(headers);
  std::string http_text = " (HTTP " + std::to_string(http) + ")";
  if (http == 429) {
    std::optional<std::chrono::seconds> after = ParseRetryAfter(headers);
    return UnavailableError("rate limited by the hub for " + what + ": retry " +
                            (after ? "after " + std::to_string(after->count()) + " s" : "later"));
  }
  if (http == 408 || http >= 500) {
    return UnavailableError("hub unavailable for " + what + http_text + said + ": retry later");
  }
  if (http == 401) {
    return UnauthenticatedError(
        what + " requires authentication" + said + ": " +
        (s.sent_token ? std::string("the token was rejected") : std::string(kTokenHint)));
  }
  if (http == 403) {
    return PermissionDeniedError("access to " + what + " denied" + said +
                                 ": check that your token has access");
  }
  if (http == 404) return NotFoundError(what + " not found" + said);
  if (http == 400) return InvalidArgumentError("hub rejected the request for " + what + said);
  return FailedPreconditionError("hub refused the request for " + what + http_text + said);
}

}  // namespace

std::string DescribeRepo(const RepoId& repo) {
  return std::string(RepoTypeName(repo.type())) + " " + repo.id();
}

Status HubErrorFromResponse(int http_status, const net::HeaderMap& headers,
                            const HubRequestSubject& subject, HubErrorDetail* detail) {
  std::string code = headers.Get("X-Error-Code").value_or("");
  std::optional<CommitSha> commit;
  if (std::optional<std::string> c = headers.Get("X-Repo-Commit")) {
    if (StatusOr<CommitSha> parsed = CommitSha::Parse(*c); parsed.ok()) commit = *parsed;
  }
  if (detail != nullptr) {
    *detail = HubErrorDetail{http_status, code, commit, std::nullopt};
    if (http_status == 429 || http_status == 503) detail->retry_after = ParseRetryAfter(headers);
  }
  if (http_status < 400) return Status();
  Status status = FromErrorCode(code, http_status, headers, subject, commit);
  if (!status.ok()) return status;
  if (headers.Get("X-Error-Message") == kDisabledMessage) {
    return PermissionDeniedError(DescribeRepo(subject.repo) +
                                 " is disabled on the hub (Access to this resource is disabled.)");
  }
  return FromHttpStatus(http_status, headers, subject);
}

}  // namespace mc::hub
