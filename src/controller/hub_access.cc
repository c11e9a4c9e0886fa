#include "controller/hub_access.h"

namespace mc::controller {

StatusOr<std::unique_ptr<hub::HubClient>> UpstreamClient(const hub::Endpoint& upstream,
                                                         const std::optional<std::string>& token,
                                                         const std::string& ca_file) {
  hub::HubClientOptions o{upstream, std::nullopt, std::chrono::milliseconds(10'000),
                          "modelcache-controller/0.1", ca_file};
  if (token) o.token = hub::Secret(*token);
  return hub::HubClient::Create(std::move(o));
}

Status CheckFileAccess(hub::HubClient& client, const RepoId& repo, const CommitSha& commit,
                       const hub::RepoInfo& info) {
  if ((!info.gated && !info.is_private) || info.siblings.empty()) return Status::Ok();
  MC_ASSIGN_OR_RETURN(RepoFilePath file, RepoFilePath::Parse(info.siblings.front()));
  MC_ASSIGN_OR_RETURN(Revision revision, Revision::Parse(commit.str()));
  return client.GetFileMetadata(repo, revision, file).status();
}

}  // namespace mc::controller
