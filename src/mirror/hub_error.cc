#include "mirror/hub_error.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace mc::mirror {
namespace {

// Header values must be one line of printable ASCII.
std::string HeaderSafe(std::string_view text) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

}  // namespace

HubError HubError::RepoNotFound(bool had_token) {
  return {had_token ? 404 : 401, "RepoNotFound",
          "Repository not found. Check the repo id and your access token.", std::nullopt};
}

HubError HubError::RevisionNotFound(const Revision& revision) {
  return {404, "RevisionNotFound", "Invalid rev id: " + QuoteForMessage(revision.str()),
          std::nullopt};
}

HubError HubError::EntryNotFound(const CommitSha& commit) {
  return {404, "EntryNotFound", "Entry not found", commit.str()};
}

HubError HubError::Gated(const RepoId& repo, bool had_token) {
  std::string message = "Access to " + std::string(RepoTypeName(repo.type())) + " " + repo.id() +
                        " is restricted. You must have access to it and be authenticated to "
                        "access it. Please log in.";
  return {had_token ? 403 : 401, "GatedRepo", std::move(message), std::nullopt};
}

HubError HubError::Disabled() {
  return {403, "DisabledRepo", "Access to this resource is disabled.", std::nullopt};
}

HubError HubError::BadRequest(std::string message) {
  return {400, "BadRequest", std::move(message), std::nullopt};
}

HubError HubError::Internal(const Status& status) {
  spdlog::error("mirror: {}", status.ToString());
  return {500, "InternalError", "Internal error", std::nullopt};
}

void SetHubError(net::HttpResponse& response, const HubError& error) {
  std::string message = HeaderSafe(error.message);
  response.file.reset();
  response.SetText(error.status, nlohmann::json{{"error", message}}.dump(), "application/json");
  response.headers.Set("X-Error-Code", error.code);
  response.headers.Set("X-Error-Message", message);
  if (error.repo_commit) response.headers.Set("X-Repo-Commit", *error.repo_commit);
}

}  // namespace mc::mirror
