// ControllerApi: the controller's HTTP routes (see include/mc/controller/controller.h and
// docs/controller.md): management /v1, the Runpod job API and worker protocol under /v2. Bodies
// are validated before anything changes; errors are {"error": ..., "code": ...} with the status
// from mc::ToHttpStatus. The endpoint's HF token is write-only: accepted on create and update,
// never returned or logged.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/store.h"
#include "mc/controller/controller.h"
#include "mc/net/http_server.h"

namespace mc::controller {

// Generates an API key, stores its hash under `name` and returns the key (shown once).
StatusOr<std::string> NewApiKey(ControllerStore& store, const std::string& name, int64_t now_ms);

class ControllerApi {
 public:
  ControllerApi(const ControllerOptions& options, ControllerStore& store, JobBoard& jobs,
                Fleet& fleet);
  void Handle(const net::HttpRequest& request, net::HttpResponse& response);
  // Checks a client key ("Bearer <key>" or bare) against the stored hashes (cached).
  bool Authorized(const std::string& authorization);
  StatusOr<std::string> CreateApiKey(const std::string& name);
  // Called after a job is queued, so that the autoscaler runs at once rather than at the next
  // tick (a cold start should not wait for the timer).
  void set_kick(std::function<void()> kick) { kick_ = std::move(kick); }

 private:
  void Management(const net::HttpRequest& req, net::HttpResponse& res,
                  const std::vector<std::string>& parts);
  void JobApi(const net::HttpRequest& req, net::HttpResponse& res,
              const std::vector<std::string>& parts);
  void WorkerApi(const net::HttpRequest& req, net::HttpResponse& res,
                 const std::vector<std::string>& parts);

  void CreateEndpoint(const net::HttpRequest& req, net::HttpResponse& res);
  void UpdateEndpoint(const net::HttpRequest& req, net::HttpResponse& res, const std::string& id);
  void ShowEndpoint(net::HttpResponse& res, const std::string& id);
  void Submit(const net::HttpRequest& req, net::HttpResponse& res, const EndpointRecord& e,
              bool sync);
  void Hosts(const net::HttpRequest& req, net::HttpResponse& res,
             const std::vector<std::string>& parts);
  void Metrics(net::HttpResponse& res);

  // What the upstream says of a model text (any model-ref form) with `token`: the repo, revision
  // and commit, files and bytes; the file list is noted for placement. For a gated or private
  // repo the token must be accepted (Unauthenticated / PermissionDenied otherwise).
  struct ModelFacts {
    std::string repo, revision, commit;
    size_t files = 0;
    uint64_t bytes = 0;
    bool gated = false, is_private = false;
  };
  StatusOr<ModelFacts> InspectModel(const std::string& model,
                                    const std::optional<std::string>& token);
  // Sets repo, revision and commit of `e` from InspectModel(e.model, e.hf_token).
  Status ResolveModel(EndpointRecord& e);

  const ControllerOptions& options_;
  ControllerStore& store_;
  JobBoard& jobs_;
  Fleet& fleet_;
  std::function<void()> kick_;
  std::mutex keys_mu_;
  std::set<std::string> known_keys_;  // sha256 of keys seen valid
};

}  // namespace mc::controller
