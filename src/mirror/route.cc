#include "mirror/route.h"

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "mc/net/url.h"

namespace mc::mirror {
namespace {

using Segments = std::vector<std::string_view>;

Segments Split(std::string_view path) {
  Segments out;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string Join(std::span<const std::string_view> segments) {
  std::string out;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out += segments[i];
  }
  return out;
}

StatusOr<RepoId> ParseRepo(std::string_view raw, RepoType type) {
  MC_ASSIGN_OR_RETURN(std::string id, net::PercentDecode(raw), "repo id");
  return RepoId::Parse(id, type);
}

StatusOr<Revision> ParseRevisionText(std::string_view raw) {
  MC_ASSIGN_OR_RETURN(std::string rev, net::PercentDecode(raw), "revision");
  return Revision::Parse(rev);
}

// Splits "{rev}/{path...}" where rev is one encoded segment or an unencoded refs/pr/<n> or
// refs/convert/<x>. Returns the number of segments the revision used.
StatusOr<std::pair<Revision, size_t>> ParseRevisionSegments(
    std::span<const std::string_view> rest) {
  if (rest.empty() || rest[0].empty()) return InvalidArgumentError("missing revision");
  if (rest[0] == "refs" && rest.size() >= 3 && (rest[1] == "pr" || rest[1] == "convert")) {
    MC_ASSIGN_OR_RETURN(Revision rev, ParseRevisionText(Join(rest.subspan(0, 3))));
    return std::make_pair(std::move(rev), size_t{3});
  }
  MC_ASSIGN_OR_RETURN(Revision rev, ParseRevisionText(rest[0]));
  return std::make_pair(std::move(rev), size_t{1});
}

StatusOr<RepoFilePath> ParseFilePath(std::span<const std::string_view> segments) {
  MC_ASSIGN_OR_RETURN(std::string path, net::PercentDecode(Join(segments)), "file path");
  return RepoFilePath::Parse(path);
}

Status UnknownRoute() { return NotFoundError("no such route"); }

// "org/name" from the pattern's {org} and {name}, or "name" from {name} alone.
std::string RepoText(const net::PathParams& p, bool two_parts) {
  return two_parts ? p.Get("org") + "/" + p.Get("name") : p.Get("name");
}

StatusOr<Route> ParseResolve(RepoType type, std::string_view repo, std::string_view rest_text) {
  Route route;
  route.kind = RouteKind::kResolve;
  MC_ASSIGN_OR_RETURN(route.repo, ParseRepo(repo, type));
  const Segments segments = Split(rest_text);
  std::span<const std::string_view> rest(segments);
  MC_ASSIGN_OR_RETURN(auto rev, ParseRevisionSegments(rest));
  route.revision = std::move(rev.first);
  auto file = rest.subspan(rev.second);
  if (file.empty()) return InvalidArgumentError("missing file path after the revision");
  MC_ASSIGN_OR_RETURN(route.path, ParseFilePath(file));
  return route;
}

// `verb` is "revision", "tree", "paths-info", or "" for repo info without a revision.
StatusOr<Route> ParseApi(RepoType type, std::string_view repo, std::string_view verb,
                         std::string_view rest_text) {
  Route route;
  MC_ASSIGN_OR_RETURN(route.repo, ParseRepo(repo, type));
  if (verb.empty()) {
    route.kind = RouteKind::kRepoInfo;
    return route;
  }
  if (verb == "revision" || verb == "paths-info") {
    route.kind = verb == "revision" ? RouteKind::kRepoInfo : RouteKind::kPathsInfo;
    if (rest_text.empty()) return InvalidArgumentError("missing revision");
    MC_ASSIGN_OR_RETURN(route.revision, ParseRevisionText(rest_text));
    return route;
  }
  route.kind = RouteKind::kTree;
  const Segments segments = Split(rest_text);
  std::span<const std::string_view> rest(segments);
  MC_ASSIGN_OR_RETURN(auto rev, ParseRevisionSegments(rest));
  route.revision = std::move(rev.first);
  auto sub = rest.subspan(rev.second);
  while (!sub.empty() && sub.back().empty()) sub = sub.first(sub.size() - 1);  // trailing '/'
  if (!sub.empty()) {
    MC_ASSIGN_OR_RETURN(route.path, ParseFilePath(sub));
  }
  return route;
}

using Parse = std::function<StatusOr<Route>(const net::PathParams&)>;

void AddRoute(net::Router& router, const char* method, const std::string& pattern, Parse parse,
              const ServeRoute& serve) {
  router.Add(method, pattern,
             [parse = std::move(parse), serve](const net::HttpRequest& req,
                                               const net::PathParams& params,
                                               net::HttpResponse& res) {
               serve(parse(params), req, res);
             });
}

void AddResolveRoutes(net::Router& router, const ServeRoute& serve) {
  for (RepoType type : {RepoType::kDataset, RepoType::kSpace}) {
    for (bool two : {true, false}) {
      const std::string pattern = "/" + std::string(RepoTypePlural(type)) +
                                  (two ? "/{org}/{name}" : "/{name}") + "/resolve/{rest...}";
      AddRoute(router, "GET", pattern, [type, two](const net::PathParams& p) {
        return ParseResolve(type, RepoText(p, two), p.Get("rest"));
      }, serve);
    }
  }
  for (bool two : {true, false}) {
    const std::string pattern = std::string(two ? "/{org}/{name}" : "/{name}") + "/resolve/{rest...}";
    AddRoute(router, "GET", pattern, [two](const net::PathParams& p) -> StatusOr<Route> {
      // A path under /api, /datasets or /spaces that none of their routes took.
      const std::string& first = p.Get(two ? "org" : "name");
      if (first == "api" || first == "datasets" || first == "spaces") return UnknownRoute();
      return ParseResolve(RepoType::kModel, RepoText(p, two), p.Get("rest"));
    }, serve);
  }
}

void AddApiRoutes(net::Router& router, const ServeRoute& serve) {
  for (RepoType type : {RepoType::kModel, RepoType::kDataset, RepoType::kSpace}) {
    const std::string base = "/api/" + std::string(RepoTypePlural(type));
    for (bool two : {true, false}) {
      const std::string repo = base + (two ? "/{org}/{name}" : "/{name}");
      for (const char* verb : {"revision", "tree", "paths-info"}) {
        const char* method = std::string_view(verb) == "paths-info" ? "POST" : "GET";
        AddRoute(router, method, repo + "/" + verb + "/{rev...}",
                 [type, two, verb](const net::PathParams& p) {
                   return ParseApi(type, RepoText(p, two), verb, p.Get("rev"));
                 }, serve);
      }
    }
    for (bool two : {true, false}) {
      AddRoute(router, "GET", base + (two ? "/{org}/{name}" : "/{name}"),
               [type, two](const net::PathParams& p) {
                 return ParseApi(type, RepoText(p, two), "", "");
               }, serve);
    }
  }
}

}  // namespace

void AddMirrorRoutes(net::Router& router, ServeRoute serve) {
  AddResolveRoutes(router, serve);
  AddApiRoutes(router, serve);
}

}  // namespace mc::mirror
