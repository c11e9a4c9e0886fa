// ControllerApi: the controller's HTTP routes (see include/mc/controller/controller.h and
// docs/controller.md): management /v1, the Runpod job API and worker protocol under /v2, health
// and metrics. Thin wiring: each resource adds its routes to a net::Router in its own file
// (api_endpoints.cc, api_jobs.cc, api_worker_protocol.cc, api_hosts.cc, api_keys.cc,
// api_metrics.cc; shared pieces in api_common.h). Bodies are validated before anything changes;
// errors are {"error": ..., "code": ...} with the status from mc::ToHttpStatus; a path no route
// has is 404, a route asked with a method it does not have is 405 with Allow. The endpoint's HF
// token is write-only: accepted on create and update, never returned or logged.
//
// Authentication: the web console's files, /health and the worker protocol (each worker's own
// key) are public; every other request needs a client API key, checked before its route is
// looked up (so without a key, an unknown path is 401, not 404).
#pragma once

#include <functional>
#include <string>

#include "controller/api_common.h"
#include "controller/api_keys.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/store.h"
#include "mc/controller/controller.h"
#include "mc/net/http_server.h"
#include "mc/net/router.h"

namespace mc::controller {

// Generates an API key of `tenant` with `role`, stores its hash under `name` and returns the key
// (shown once). InvalidArgument for a bad name, tenant or role.
StatusOr<std::string> NewApiKey(ControllerStore& store, const std::string& name, int64_t now_ms,
                                const std::string& tenant = kDefaultTenant,
                                const std::string& role = "admin");

class ControllerApi {
 public:
  ControllerApi(const ControllerOptions& options, ControllerStore& store, JobBoard& jobs,
                Fleet& fleet, const SecretBox& secrets);
  void Handle(const net::HttpRequest& request, net::HttpResponse& response);
  // The edge check of a request's head, before its body is read (net::HeadHandler): a keyed
  // route without a valid client key, or a worker-protocol post without its worker's key, is
  // answered 401 at once; otherwise the route's body cap is set (/run, /runsync and the worker's
  // job results: their own caps; everything else: ControllerOptions::max_body_bytes).
  void CheckHead(const net::HttpRequest& head, net::HeadVerdict& verdict);
  // Checks a client key ("Bearer <key>" or bare) against the stored hashes (cached).
  bool Authorized(const std::string& authorization) { return keys_.Authorized(authorization); }
  StatusOr<std::string> CreateApiKey(const std::string& name) { return keys_.Create(name); }
  // Called after a job is queued, so that the autoscaler runs at once rather than at the next
  // tick (a cold start should not wait for the timer).
  void set_kick(std::function<void()> kick) { ctx_.kick = std::move(kick); }

 private:
  ApiKeys keys_;
  ApiContext ctx_;
  net::Router public_routes_;  // no client key: /health, the worker protocol
  net::Router keyed_routes_;   // everything else
};

}  // namespace mc::controller
