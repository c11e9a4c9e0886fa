// AgentApi: the agent's HTTP routes (docs/agent.md), JSON in and out, over the agent's parts.
// Every body is validated before anything changes: bad JSON, unknown model forms, wrong types
// and unknown fields are 400 with {"error": ..., "code": "invalid_argument"}. Tokens given in
// ensure and worker bodies are used and never echoed or logged.
#pragma once

#include <mutex>
#include <string>

#include "agent/downloads.h"
#include "agent/images.h"
#include "agent/inventory.h"
#include "agent/state_db.h"
#include "agent/workers.h"
#include "mc/agent/agent.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_server.h"

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
  };
  explicit AgentApi(Parts parts) : p_(parts) {}

  void Handle(const net::HttpRequest& request, net::HttpResponse& response);
  // The GET /v1/inventory document (also the controller heartbeat body).
  std::string HostDocument() const;
  void set_public_url(std::string url) {
    std::lock_guard<std::mutex> lock(mu_);
    public_url_ = std::move(url);
  }

 private:
  void Route(const net::HttpRequest& request, net::HttpResponse& response);
  void Ensure(const net::HttpRequest& request, net::HttpResponse& response);
  void Pin(const net::HttpRequest& request, net::HttpResponse& response, bool add);
  void Evict(const net::HttpRequest& request, net::HttpResponse& response);
  void StartWorker(const net::HttpRequest& request, net::HttpResponse& response);
  void GetWorker(const net::HttpRequest& request, net::HttpResponse& response,
                 const std::string& id);
  void Metrics(net::HttpResponse& response) const;

  Parts p_;
  mutable std::mutex mu_;
  std::string public_url_;
};

}  // namespace mc::agent
