#include "controller/agent_client.h"

#include "mc/net/http_client.h"

namespace mc::controller {
namespace {

// The largest answer read from an agent (its host document lists every cached model).
constexpr uint64_t kMaxAgentReplyBytes = 16ull << 20;

class HttpAgentClient final : public AgentClient {
 public:
  HttpAgentClient(std::string ca_file, AgentTimeouts timeouts)
      : ca_file_(std::move(ca_file)), timeouts_(timeouts) {}

  StatusOr<AgentReply> StartWorker(const AgentTarget& agent, const std::string& body) override {
    return Send(agent, "POST", "/v1/workers", body, timeouts_.start);
  }

  StatusOr<AgentReply> StopWorker(const AgentTarget& agent, const std::string& worker_id,
                                  std::chrono::milliseconds grace) override {
    return Send(agent, "DELETE",
                "/v1/workers/" + worker_id + "?grace=" + std::to_string(grace.count() / 1000.0),
                "", timeouts_.stop);
  }

  StatusOr<AgentReply> WatchWorker(const AgentTarget& agent, const std::string& worker_id,
                                   const std::string& until) override {
    return Send(agent, "GET", "/v1/workers/" + worker_id + "?wait=1&until=" + until, "",
                timeouts_.watch);
  }

  StatusOr<AgentReply> Request(const AgentTarget& agent, const std::string& method,
                               const std::string& path, const std::string& body) override {
    return Send(agent, method, path, body, timeouts_.request);
  }

 private:
  StatusOr<AgentReply> Send(const AgentTarget& agent, const std::string& method,
                            const std::string& path, const std::string& body,
                            std::chrono::milliseconds timeout) {
    // One client per thread (HttpClient is not shared between threads); it keeps its connection.
    thread_local std::unique_ptr<net::HttpClient> client = net::HttpClient::Create();
    net::HttpClientRequest req;
    req.method = method;
    req.url = agent.url + path;
    req.headers.Set("Content-Type", "application/json");
    if (agent.key) req.headers.Set("Authorization", "Bearer " + std::string(agent.key->Reveal()));
    if (agent.epoch > 0) req.headers.Set("X-Modelcache-Epoch", std::to_string(agent.epoch));
    req.ca_file = ca_file_;  // agents with --tls-cert from a private CA
    if (!body.empty()) req.body = body;
    req.timeout = timeout;
    req.max_body_bytes = kMaxAgentReplyBytes;
    MC_ASSIGN_OR_RETURN(net::HttpClientResponse res, client->Send(req));
    return AgentReply{res.status, std::move(res.body)};
  }

  const std::string ca_file_;
  const AgentTimeouts timeouts_;
};

}  // namespace

std::unique_ptr<AgentClient> NewHttpAgentClient(std::string ca_file, AgentTimeouts timeouts) {
  return std::make_unique<HttpAgentClient>(std::move(ca_file), timeouts);
}

}  // namespace mc::controller
