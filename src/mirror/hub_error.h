// Hub-style error answers: status + X-Error-Code + X-Error-Message + {"error": "..."}
// (hf-hub-protocol.md §8.4). huggingface_hub maps these codes to its exception classes.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "mc/common/ids.h"
#include "mc/net/http_server.h"

namespace mc::mirror {

struct HubError {
  int status = 500;
  std::string code;     // X-Error-Code
  std::string message;  // X-Error-Message; never contains raw request text or tokens
  std::optional<std::string> repo_commit;  // X-Repo-Commit (EntryNotFound)

  // 401 without a token (the Hub does not tell anonymous callers whether a repo exists), else 404.
  static HubError RepoNotFound(bool had_token);
  static HubError RevisionNotFound(const Revision& revision);
  static HubError EntryNotFound(const CommitSha& commit);
  // 401 without a token, 403 with a token that is not accepted.
  static HubError Gated(const RepoId& repo, bool had_token);
  static HubError Disabled();
  static HubError BadRequest(std::string message);
  static HubError Internal(const Status& status);
};

// A value or the HubError to answer with.
template <typename T>
class HubOr {
 public:
  HubOr(T value) : v_(std::move(value)) {}         // NOLINT
  HubOr(HubError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() { return std::get<T>(v_); }
  const HubError& error() const { return std::get<HubError>(v_); }

 private:
  std::variant<HubError, T> v_;
};

// Fills `response` with the error (replacing any body).
void SetHubError(net::HttpResponse& response, const HubError& error);

}  // namespace mc::mirror
