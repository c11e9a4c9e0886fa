#include "mirror/mirror_core.h"

#include <sys/stat.h>

#include "mirror/json_views.h"

namespace mc::mirror {
namespace {

HubError RouteError(const Status& status) {
  if (status.code() == StatusCode::kNotFound) {
    return HubError{404, "NotFound", "Sorry, we can't find the page you are looking for.",
                    std::nullopt};
  }
  return HubError::BadRequest(status.message());
}

HubError AccessError(AccessDecision decision, const RepoId& repo, bool had_token) {
  switch (decision) {
    case AccessDecision::kDisabled:
      return HubError::Disabled();
    case AccessDecision::kGated:
      return HubError::Gated(repo, had_token);
    default:
      return HubError::RepoNotFound(had_token);
  }
}

// Host header values we are willing to reflect into absolute URLs.
bool IsPlainHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

MirrorCore::MirrorCore(std::unique_ptr<cache::CacheStore> store, AccessConfig access,
                       MirrorOptions options)
    : store_(std::move(store)),
      access_(std::move(access)),
      options_(std::move(options)),
      faults_(options_.faults),
      limiter_(options_.max_bytes_per_second > 0
                   ? std::make_unique<BandwidthLimiter>(options_.max_bytes_per_second)
                   : nullptr),
      router_({.on_error = [this](int status, const net::HttpRequest& req,
                                  net::HttpResponse& res) { AnswerNoRoute(status, req, res); }}) {
  AddMirrorRoutes(router_, [this](const StatusOr<Route>& route, const net::HttpRequest& req,
                                  net::HttpResponse& res) { Serve(route, req, res); });
}

void MirrorCore::Handle(const net::HttpRequest& request, net::HttpResponse& response) {
  router_.Handle(request, response);
}

void MirrorCore::AnswerNoRoute(int status, const net::HttpRequest& request,
                               net::HttpResponse& response) {
  SetHubError(response, status == 405
                            ? HubError{405, "MethodNotAllowed", "Method not allowed", std::nullopt}
                            : RouteError(NotFoundError("no such route")));
  Count(RouteKind::kOther, request, response);
}

void MirrorCore::Serve(const StatusOr<Route>& route, const net::HttpRequest& request,
                       net::HttpResponse& response) {
  if (!route.ok()) {
    SetHubError(response, RouteError(route.status()));
    Count(RouteKind::kOther, request, response);
    return;
  }
  RequestInfo info{request, *route, BearerToken(request.headers.Get("Authorization"))};
  std::optional<HubError> error = Dispatch(info, response);
  if (!error && route->kind == RouteKind::kResolve && request.method == "GET") {
    faults_.Apply(request, response);
    // After the faults, so that a faulted body is paced too (an injected error is not a body).
    if (response.status < 300) {
      Throttle(response, limiter_.get(), options_.max_bytes_per_second_per_answer);
    }
  }
  if (error) SetHubError(response, *error);
  Count(route->kind, request, response);
}

std::optional<HubError> MirrorCore::Dispatch(const RequestInfo& info, net::HttpResponse& response) {
  const RepoId& repo = *info.route.repo;
  AccessDecision decision = access_.Decide(repo, info.route.kind, info.token);
  if (decision != AccessDecision::kAllow) {
    return AccessError(decision, repo, info.token.has_value());
  }
  switch (info.route.kind) {
    case RouteKind::kResolve:
      return HandleResolve(info, response);
    case RouteKind::kRepoInfo:
      return HandleRepoInfo(info, response);
    case RouteKind::kTree:
      return HandleTree(info, response);
    case RouteKind::kPathsInfo:
      return HandlePathsInfo(info, response);
    case RouteKind::kOther:
      break;
  }
  return RouteError(NotFoundError("no such route"));
}

HubOr<CommitSha> MirrorCore::LookUpCommit(const RequestInfo& info) {
  const RepoId& repo = *info.route.repo;
  if (!store_->RepoExists(repo)) return HubError::RepoNotFound(info.token.has_value());
  Revision revision = info.route.revision.value_or(*Revision::Parse("main"));
  if (revision.str() == "HEAD") revision = *Revision::Parse("main");
  StatusOr<CommitSha> commit = store_->ResolveRevision(repo, revision);
  if (commit.ok()) return *commit;
  if (commit.status().code() == StatusCode::kNotFound) return HubError::RevisionNotFound(revision);
  return HubError::Internal(commit.status());
}

HubOr<std::unique_ptr<RepoTree>> MirrorCore::LoadTree(const RepoId& repo, const CommitSha& commit) {
  StatusOr<std::vector<cache::SnapshotEntry>> entries = store_->ListSnapshotFiles(repo, commit);
  if (!entries.ok()) return HubError::Internal(entries.status());
  std::vector<RepoFile> files;
  files.reserve(entries->size());
  for (const cache::SnapshotEntry& entry : *entries) {
    StatusOr<RepoFile> file = describer_.Describe(entry);
    if (!file.ok()) return HubError::Internal(file.status());
    files.push_back(std::move(*file));
  }
  return std::make_unique<RepoTree>(std::move(files));
}

std::string MirrorCore::LastModified(const RepoId& repo, const CommitSha& commit) const {
  struct stat st;
  int64_t seconds = 0;
  if (::stat(store_->layout().SnapshotDir(repo, commit).c_str(), &st) == 0) {
    seconds = st.st_mtim.tv_sec;
  }
  return IsoTime(seconds);
}

std::string MirrorCore::BaseUrl(const net::HttpRequest& request) const {
  if (options_.public_base_url) {
    std::string url = *options_.public_base_url;
    while (url.ends_with('/')) url.pop_back();
    return url;
  }
  std::optional<std::string> host = request.headers.Get("Host");
  if (host && IsPlainHost(*host)) return "http://" + *host;
  MutexLock lock(mu_);
  return fallback_base_url_;
}

void MirrorCore::Count(RouteKind kind, const net::HttpRequest& request,
                       const net::HttpResponse& response) {
  switch (kind) {
    case RouteKind::kResolve:
      if (request.method == "HEAD") {
        ++counters_.resolve_head;
      } else {
        ++counters_.resolve_get;
        if (response.status < 300) counters_.file_bytes_served += response.BodyLength();
      }
      break;
    case RouteKind::kRepoInfo:
      ++counters_.repo_info;
      break;
    case RouteKind::kTree:
      ++counters_.tree;
      break;
    case RouteKind::kPathsInfo:
      ++counters_.paths_info;
      break;
    case RouteKind::kOther:
      ++counters_.other;
      break;
  }
  if (response.status >= 400) ++counters_.errors;
}

MirrorStats MirrorCore::stats() const {
  MirrorStats s;
  s.resolve_head = counters_.resolve_head;
  s.resolve_get = counters_.resolve_get;
  s.repo_info = counters_.repo_info;
  s.tree = counters_.tree;
  s.paths_info = counters_.paths_info;
  s.other = counters_.other;
  s.errors = counters_.errors;
  s.file_bytes_served = counters_.file_bytes_served;
  s.faults_fired = faults_.fired();
  return s;
}

}  // namespace mc::mirror
