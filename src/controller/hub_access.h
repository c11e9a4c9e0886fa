// What the controller asks the upstream hub on an endpoint's behalf, with the endpoint's own token:
// one client recipe and one entitlement check, shared by endpoint creation (api.cc) and the
// re-check before placement (fleet.cc).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/hub_client.h"

namespace mc::controller {

// A client of `upstream` that sends `token` (when set) to it and nowhere else, trusting the
// authorities of `ca_file` (the controller's --ca-file; empty: the system's).
StatusOr<std::unique_ptr<hub::HubClient>> UpstreamClient(const hub::Endpoint& upstream,
                                                         const std::optional<std::string>& token,
                                                         const std::string& ca_file);

// For a gated or private repo (per `info`), the client's token must be accepted for one of its
// files at `commit`; public repos pass at once. The upstream's error otherwise
// (Unauthenticated / PermissionDenied).
Status CheckFileAccess(hub::HubClient& client, const RepoId& repo, const CommitSha& commit,
                       const hub::RepoInfo& info);

}  // namespace mc::controller
