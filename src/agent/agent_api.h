// AgentApi: the agent's HTTP routes (docs/agent.md), JSON in and out, over the agent's parts.
// Every body is validated before anything changes: bad JSON, unknown model forms, wrong types
// and unknown fields are 400 with {"error": ..., "code": "invalid_argument"}. Tokens given in
// ensure and worker bodies are used and never echoed or logged.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "agent/downloads.h"
#include "agent/images.h"
#include "agent/inventory.h"
#include "agent/peer_key.h"
#include "agent/state_db.h"
#include "agent/workers.h"
#include "mc/agent/agent.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_server.h"
#include "mc/net/router.h"

namespace mc::agent {

class AgentApi {
 public:
  struct Parts {
    const AgentOptions& options;
    Inventory& inventory;
    Downloads& downloads;
    Workers& workers;
    Images* images;  // null when workers are processes
    StateDb& db;
    mirror::MirrorHandler& mirror;
    cache::CacheStore& store;
    const PeerKey& peer_key;  // the fleet's: required on the mirror routes
  };
  explicit AgentApi(Parts parts);

  // /v1/... (behind the API key), /health and /metrics on the router; anything else is a mirror
  // route (GET and HEAD, and POST paths-info: they are read-only), behind the fleet's peer key
  // (or the API key).
  void Handle(const net::HttpRequest& request, net::HttpResponse& response);
  // The edge check before a request's body is read (net::HeadHandler): a /v1 request without
  // the key, or a mirror request without the peer key, is answered 401 at once.
  void CheckHead(const net::HttpRequest& head, net::HeadVerdict& verdict) const;
  // The GET /v1/inventory document (also the controller heartbeat body).
  std::string HostDocument() const;
  void set_public_url(std::string url) {
    std::lock_guard<std::mutex> lock(mu_);
    public_url_ = std::move(url);
  }

 private:
  // Writes the 401 and returns true if `req` is a /v1 request without the agent's key (or its
  // host's credential), or a mirror (peer) request with neither the peer key nor the agent's key.
  bool KeyMissing(const net::HttpRequest& req, net::HttpResponse& res) const;
  // Writes the 403/415 and returns true if `req` is a /v1 request a browser could have been
  // tricked into sending (docs/security.md, "Agent"): an Origin or a Host that is not this
  // agent's (cross-site requests, DNS rebinding), or a state-changing request without a JSON
  // Content-Type (the "simple" cross-site POST of a web page).
  bool BrowserForgery(const net::HttpRequest& req, net::HttpResponse& res) const;
  // Route handlers (the table is in the constructor).
  using Params = net::PathParams;
  void Health(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void ServePartial(const net::HttpRequest& req, net::HttpResponse& res);
  void Metrics(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void Inventory(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void Ensure(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void Downloads(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void ListPins(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void AddPin(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void RemovePin(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void Evict(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void ListWorkers(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void StartWorker(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void GetWorker(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void StopWorker(const net::HttpRequest& req, const Params& params, net::HttpResponse& res);
  void Pin(const net::HttpRequest& req, net::HttpResponse& res, bool add);
  // Fencing (docs/controller.md, "Several controllers"): every /v1 request of a controller on
  // PostgreSQL carries its leadership epoch (header X-Modelcache-Epoch). The agent remembers the
  // highest it has seen (in memory) and refuses a change (any method but GET and HEAD: worker
  // starts and stops, pins, evictions) with a lower one with 409, so that a deposed leader's late
  // start or stop does nothing. A request without the header (a controller on SQLite, or from
  // before fencing) is not fenced. Writes the answer and returns true if refused.
  bool Fenced(const net::HttpRequest& req, net::HttpResponse& res);

  Parts p_;
  net::Router router_;
  mutable std::mutex mu_;
  std::string public_url_;
  std::atomic<int64_t> highest_epoch_{0};
};

}  // namespace mc::agent
