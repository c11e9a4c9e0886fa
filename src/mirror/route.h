// Parsing of mirror request targets into validated routes (hf-hub-protocol.md §2.1, §3, §8).
// Every id is validated here (RepoId, Revision, RepoFilePath) so that handlers never see raw
// request text and nothing hostile reaches the disk.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/mirror/mirror_server.h"

namespace mc::mirror {

struct Route {
  RouteKind kind = RouteKind::kOther;
  std::optional<RepoId> repo;
  // nullopt = the default revision (main); "HEAD" is also mapped to main by the handlers.
  std::optional<Revision> revision;
  // kResolve: the file; kTree: the sub-folder (nullopt = root).
  std::optional<RepoFilePath> path;
};

// Parses `raw_path` (percent-encoded, as sent):
//   [/datasets|/spaces]/{repo}/resolve/{rev}/{path}              kResolve   (GET, HEAD)
//   /api/{models|datasets|spaces}/{repo}                          kRepoInfo  (GET, HEAD)
//   /api/{type}s/{repo}/revision/{rev}                            kRepoInfo
//   /api/{type}s/{repo}/tree/{rev}[/{path}]                       kTree
//   /api/{type}s/{repo}/paths-info/{rev}                          kPathsInfo (POST)
// {repo} is "name" or "org/name". {rev} is percent-decoded ("refs%2Fpr%2F1"); an unencoded
// "refs/pr/<n>" or "refs/convert/<x>" is recognised in resolve and tree routes. Revision routes
// take the whole decoded rest as the revision.
// NotFound for an unknown route; InvalidArgument for hostile or malformed ids.
StatusOr<Route> ParseRoute(std::string_view raw_path);

// True if `method` is allowed on `kind` (HEAD wherever GET is).
bool MethodAllowed(RouteKind kind, std::string_view method);

}  // namespace mc::mirror
