// The mirror's routes (hf-hub-protocol.md §2.1, §3, §8) on a net::Router. Each route's handler
// parses and validates every id of the request (RepoId, Revision, RepoFilePath) before anything
// else runs, so that the mirror's handlers never see raw request text and nothing hostile reaches
// the disk.
#pragma once

#include <functional>
#include <optional>

#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/router.h"

namespace mc::mirror {

struct Route {
  RouteKind kind = RouteKind::kOther;
  std::optional<RepoId> repo;
  // nullopt = the default revision (main); "HEAD" is also mapped to main by the handlers.
  std::optional<Revision> revision;
  // kResolve: the file; kTree: the sub-folder (nullopt = root).
  std::optional<RepoFilePath> path;
};

// Called with the validated route, or with what its ids gave: InvalidArgument for hostile or
// malformed ids (400), NotFound for a path that only looks like a route (404, as for no route).
using ServeRoute =
    std::function<void(const StatusOr<Route>&, const net::HttpRequest&, net::HttpResponse&)>;

// Adds the mirror's routes to `router`, narrowest first (the first pattern that matches wins):
//   GET  /{datasets|spaces}/{repo}/resolve/{rev}/{path}      kResolve
//   GET  /{repo}/resolve/{rev}/{path}                         kResolve (a model)
//   GET  /api/{models|datasets|spaces}/{repo}/revision/{rev}  kRepoInfo
//   GET  /api/{type}s/{repo}/tree/{rev}[/{path}]              kTree
//   POST /api/{type}s/{repo}/paths-info/{rev}                 kPathsInfo
//   GET  /api/{type}s/{repo}                                  kRepoInfo
// (HEAD wherever GET is). {repo} is "name" or "org/name", "org/name" tried first. {rev} is
// percent-decoded ("refs%2Fpr%2F1"); in resolve and tree routes an unencoded "refs/pr/<n>" or
// "refs/convert/<x>" is recognised too; revision and paths-info take the whole decoded rest as
// the revision. A model's first segment is never "api", "datasets" or "spaces".
void AddMirrorRoutes(net::Router& router, ServeRoute serve);

}  // namespace mc::mirror
