#include "mirror/route.h"

#include <span>
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

StatusOr<RepoId> ParseRepo(std::span<const std::string_view> segments, RepoType type) {
  MC_ASSIGN_OR_RETURN(std::string id, net::PercentDecode(Join(segments)), "repo id");
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

// The number of segments of the repo id before `verb` ("org/name/verb" -> 2, "name/verb" -> 1),
// or 0 if `verb` is not where a repo id of one or two parts would end.
size_t RepoLengthBefore(const Segments& s, size_t start, bool (*is_verb)(std::string_view)) {
  if (s.size() > start + 2 && is_verb(s[start + 2])) return 2;
  if (s.size() > start + 1 && is_verb(s[start + 1])) return 1;
  return 0;
}

bool IsResolve(std::string_view s) { return s == "resolve"; }
bool IsApiVerb(std::string_view s) { return s == "revision" || s == "tree" || s == "paths-info"; }

Status UnknownRoute() { return NotFoundError("no such route"); }

StatusOr<Route> ParseResolve(const Segments& s) {
  RepoType type = RepoType::kModel;
  size_t start = 0;
  if (s[0] == "datasets" || s[0] == "spaces") {
    type = s[0] == "datasets" ? RepoType::kDataset : RepoType::kSpace;
    start = 1;
  }
  size_t repo_len = RepoLengthBefore(s, start, &IsResolve);
  if (repo_len == 0) return UnknownRoute();
  Route route;
  route.kind = RouteKind::kResolve;
  std::span<const std::string_view> all(s);
  MC_ASSIGN_OR_RETURN(route.repo, ParseRepo(all.subspan(start, repo_len), type));
  auto rest = all.subspan(start + repo_len + 1);
  MC_ASSIGN_OR_RETURN(auto rev, ParseRevisionSegments(rest));
  route.revision = std::move(rev.first);
  auto file = rest.subspan(rev.second);
  if (file.empty()) return InvalidArgumentError("missing file path after the revision");
  MC_ASSIGN_OR_RETURN(route.path, ParseFilePath(file));
  return route;
}

Status FillApiVerb(Route& route, std::string_view verb, std::span<const std::string_view> rest) {
  if (verb == "revision" || verb == "paths-info") {
    route.kind = verb == "revision" ? RouteKind::kRepoInfo : RouteKind::kPathsInfo;
    if (rest.empty() || Join(rest).empty()) return InvalidArgumentError("missing revision");
    MC_ASSIGN_OR_RETURN(route.revision, ParseRevisionText(Join(rest)));
    return Status::Ok();
  }
  route.kind = RouteKind::kTree;
  MC_ASSIGN_OR_RETURN(auto rev, ParseRevisionSegments(rest));
  route.revision = std::move(rev.first);
  auto sub = rest.subspan(rev.second);
  while (!sub.empty() && sub.back().empty()) sub = sub.first(sub.size() - 1);  // trailing '/'
  if (!sub.empty()) {
    MC_ASSIGN_OR_RETURN(route.path, ParseFilePath(sub));
  }
  return Status::Ok();
}

StatusOr<Route> ParseApi(const Segments& s) {
  if (s.size() < 3) return UnknownRoute();
  StatusOr<RepoType> type = ParseRepoType(s[1]);
  if (!type.ok() || !s[1].ends_with('s')) return UnknownRoute();
  std::span<const std::string_view> all(s);
  Route route;
  size_t repo_len = RepoLengthBefore(s, 2, &IsApiVerb);
  if (repo_len == 0) {
    if (s.size() > 4) return UnknownRoute();
    route.kind = RouteKind::kRepoInfo;
    MC_ASSIGN_OR_RETURN(route.repo, ParseRepo(all.subspan(2), *type));
    return route;
  }
  MC_ASSIGN_OR_RETURN(route.repo, ParseRepo(all.subspan(2, repo_len), *type));
  MC_RETURN_IF_ERROR(FillApiVerb(route, s[2 + repo_len], all.subspan(3 + repo_len)));
  return route;
}

}  // namespace

StatusOr<Route> ParseRoute(std::string_view raw_path) {
  if (raw_path.size() < 2 || raw_path.front() != '/') return UnknownRoute();
  Segments s = Split(raw_path.substr(1));
  if (s[0] == "api") return ParseApi(s);
  return ParseResolve(s);
}

bool MethodAllowed(RouteKind kind, std::string_view method) {
  switch (kind) {
    case RouteKind::kResolve:
    case RouteKind::kRepoInfo:
    case RouteKind::kTree:
      return method == "GET" || method == "HEAD";
    case RouteKind::kPathsInfo:
      return method == "POST";
    case RouteKind::kOther:
      return false;
  }
  return false;
}

}  // namespace mc::mirror
