// AgentClient: every call the controller makes to a host's agent (its /v1 API, docs/agent.md),
// behind one interface, so that the fleet is tested with a fake agent (fake_agent_client.h) and a
// FakeClock, without sockets, and runs on the real one (HttpAgentClient) in production.
//
// Each call is blocking and bounded by its own timeout (AgentTimeouts); the fleet never makes one
// on the scheduling loop: starts and stops go through the ActionExecutor (action_executor.h),
// watches run on the worker's watcher thread, operator requests (pin, evict) on the HTTP handler
// thread that asked.
//
// An HTTP status is a result (OK with the status); Unavailable is a transport failure (refused,
// reset, timed out).
//
// Thread-safety: implementations may be called from any thread at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "mc/common/status.h"
#include "mc/hub/secret.h"

namespace mc::controller {

// Which agent, and how the controller authenticates to it.
struct AgentTarget {
  std::string host_id;
  std::string url;                 // the agent's base URL, as its latest heartbeat says
  std::optional<hub::Secret> key;  // sent as "Authorization: Bearer"
  // The leadership epoch (leadership.h), sent as X-Modelcache-Epoch: the agent refuses a start
  // or stop from a deposed leader. 0: not fenced (SQLite's one controller).
  int64_t epoch = 0;
};

struct AgentReply {
  int status = 0;
  std::string body;
};

struct AgentTimeouts {
  std::chrono::milliseconds start{30'000};    // POST /v1/workers (answers 202 at once)
  std::chrono::milliseconds stop{10'000};     // DELETE /v1/workers/{id}
  std::chrono::milliseconds watch{15'000};    // GET /v1/workers/{id}?wait=1 (a long-poll)
  std::chrono::milliseconds request{30'000};  // any other /v1 call (pin, unpin, evict, inventory)
};

class AgentClient {
 public:
  virtual ~AgentClient() = default;

  // POST /v1/workers with the worker document `body` (JSON); the agent answers 202 when it takes
  // the worker.
  virtual StatusOr<AgentReply> StartWorker(const AgentTarget& agent, const std::string& body) = 0;
  // DELETE /v1/workers/{id}?grace=<seconds>: SIGTERM, then SIGKILL after `grace`.
  virtual StatusOr<AgentReply> StopWorker(const AgentTarget& agent, const std::string& worker_id,
                                          std::chrono::milliseconds grace) = 0;
  // GET /v1/workers/{id}?wait=1&until=<states>: the worker's document once its state is one of
  // `until` (comma-separated), or after the agent's own wait; 404 for a worker it does not know.
  virtual StatusOr<AgentReply> WatchWorker(const AgentTarget& agent, const std::string& worker_id,
                                           const std::string& until) = 0;
  // `method path` (under /v1) with a JSON `body` (none when empty).
  virtual StatusOr<AgentReply> Request(const AgentTarget& agent, const std::string& method,
                                       const std::string& path, const std::string& body) = 0;
};

// The agent's HTTP API: HTTPS trusts `ca_file` (empty: the system's authorities); replies are
// capped at 16 MiB (an agent's inventory lists every cached model).
std::unique_ptr<AgentClient> NewHttpAgentClient(std::string ca_file, AgentTimeouts timeouts = {});

}  // namespace mc::controller
