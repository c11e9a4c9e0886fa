// MirrorCore: the request handling of MirrorServer, independent of the HTTP server wiring.
// Handle() routes the request (mirror/route.h: its ids validated, 400 before any disk access; 404
// and 405 as Hub errors), applies access control, resolves the revision and dispatches to one
// handler per route kind. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "mc/cache/cache_store.h"
#include "mc/common/thread_annotations.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_server.h"
#include "mc/net/router.h"
#include "mirror/access_control.h"
#include "mirror/bandwidth_limiter.h"
#include "mirror/fault_injector.h"
#include "mirror/hub_error.h"
#include "mirror/repo_files.h"
#include "mirror/route.h"

namespace mc::mirror {

struct RequestInfo {
  const net::HttpRequest& http;
  const Route& route;
  std::optional<std::string> token;
};

class MirrorCore {
 public:
  MirrorCore(std::unique_ptr<cache::CacheStore> store, AccessConfig access, MirrorOptions options);

  void Handle(const net::HttpRequest& request, net::HttpResponse& response);
  MirrorStats stats() const;
  // Wakes every body that waits (fault stalls and delays, the bandwidth cap) and makes later
  // waits end at once, until ResumeWaits(); the server calls it before joining its threads.
  void StopWaits() {
    faults_.Stop();
    if (limiter_) limiter_->Stop();
  }
  void ResumeWaits() {
    faults_.Resume();
    if (limiter_) limiter_->Resume();
  }
  // The server's own base URL, used for absolute links when neither public_base_url nor a usable
  // Host header is available.
  void set_fallback_base_url(std::string url) {
    MutexLock lock(mu_);
    fallback_base_url_ = std::move(url);
  }

 private:
  // A route's validated ids (or the error they gave) -> the answer.
  void Serve(const StatusOr<Route>& route, const net::HttpRequest& request,
             net::HttpResponse& response);
  // The router's 404 and 405, as Hub errors.
  void AnswerNoRoute(int status, const net::HttpRequest& request, net::HttpResponse& response);
  std::optional<HubError> Dispatch(const RequestInfo& info, net::HttpResponse& response);
  // The commit a route's revision names (default main; "HEAD" = main).
  HubOr<CommitSha> LookUpCommit(const RequestInfo& info);
  HubOr<std::unique_ptr<RepoTree>> LoadTree(const RepoId& repo, const CommitSha& commit);
  std::string LastModified(const RepoId& repo, const CommitSha& commit) const;
  std::string BaseUrl(const net::HttpRequest& request) const;

  // resolve_handler.cc
  std::optional<HubError> HandleResolve(const RequestInfo& info, net::HttpResponse& response);
  // api_handlers.cc
  std::optional<HubError> HandleRepoInfo(const RequestInfo& info, net::HttpResponse& response);
  std::optional<HubError> HandleTree(const RequestInfo& info, net::HttpResponse& response);
  std::optional<HubError> HandlePathsInfo(const RequestInfo& info, net::HttpResponse& response);

  void Count(RouteKind kind, const net::HttpRequest& request, const net::HttpResponse& response);

  std::unique_ptr<cache::CacheStore> store_;
  const AccessConfig access_;
  const MirrorOptions options_;
  mutable Mutex mu_;
  std::string fallback_base_url_ MC_GUARDED_BY(mu_);
  FileDescriber describer_;
  FaultInjector faults_;
  const std::unique_ptr<BandwidthLimiter> limiter_;  // null without max_bytes_per_second
  net::Router router_;

  struct Counters {
    std::atomic<uint64_t> resolve_head{0}, resolve_get{0}, repo_info{0}, tree{0}, paths_info{0},
        other{0}, errors{0}, file_bytes_served{0};
  };
  Counters counters_;
};

}  // namespace mc::mirror
