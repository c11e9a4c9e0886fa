// FakeAgentClient: an AgentClient for unit tests, with no sockets. Every agent takes every start
// (202) and stop (200); a worker's watch answers its state once the test sets one in `until`.
// A host can be stalled: its calls block, as an agent that accepts connections and never
// answers, until the test releases it (Release, or the destructor). Tests only.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "controller/agent_client.h"

namespace mc::controller {

class FakeAgentClient final : public AgentClient {
 public:
  struct Call {
    std::string method;  // "start", "stop", "watch", or the request's method
    std::string host_id;
    std::string path;  // the worker id, or the request's path
    std::string body;
  };

  ~FakeAgentClient() override { ReleaseAll(); }

  // From now on, calls to `host_id` block until Release(host_id).
  void Stall(const std::string& host_id) {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_.insert(host_id);
  }
  void Release(const std::string& host_id) {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_.erase(host_id);
    changed_.notify_all();
  }
  void ReleaseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_.clear();
    released_all_ = true;
    changed_.notify_all();
  }
  // Calls blocked on a stalled host now.
  int Blocked(const std::string& host_id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocked_.find(host_id);
    return it == blocked_.end() ? 0 : it->second;
  }
  // What a worker's watch answers once its state is in `until` (e.g. "running", "exited").
  void SetWorkerState(const std::string& worker_id, const std::string& state) {
    std::lock_guard<std::mutex> lock(mu_);
    states_[worker_id] = state;
    changed_.notify_all();
  }
  std::vector<Call> Calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<Call> Calls(const std::string& method) const {
    std::vector<Call> out;
    for (const Call& c : Calls()) {
      if (c.method == method) out.push_back(c);
    }
    return out;
  }

  StatusOr<AgentReply> StartWorker(const AgentTarget& agent, const std::string& body) override {
    Enter({"start", agent.host_id, "", body});
    return AgentReply{202, R"({"state":"initializing"})"};
  }
  StatusOr<AgentReply> StopWorker(const AgentTarget& agent, const std::string& worker_id,
                                  std::chrono::milliseconds grace) override {
    Enter({"stop", agent.host_id, worker_id, ""});
    SetWorkerState(worker_id, "exited");
    return AgentReply{200, "{}"};
  }
  StatusOr<AgentReply> WatchWorker(const AgentTarget& agent, const std::string& worker_id,
                                   const std::string& until) override {
    Enter({"watch", agent.host_id, worker_id, until});
    std::unique_lock<std::mutex> lock(mu_);
    // The agent's long-poll, shortened: its state in `until`, or a 200 with the state as it is.
    changed_.wait_for(lock, std::chrono::milliseconds(50), [&] {
      auto it = states_.find(worker_id);
      return released_all_ || (it != states_.end() && InList(until, it->second));
    });
    auto it = states_.find(worker_id);
    const std::string state = it == states_.end() ? "initializing" : it->second;
    return AgentReply{200, R"({"state":")" + state + R"("})"};
  }
  StatusOr<AgentReply> Request(const AgentTarget& agent, const std::string& method,
                               const std::string& path, const std::string& body) override {
    Enter({method, agent.host_id, path, body});
    return AgentReply{200, "{}"};
  }

 private:
  static bool InList(const std::string& list, const std::string& state) {
    std::stringstream in(list);
    for (std::string s; std::getline(in, s, ',');) {
      if (s == state) return true;
    }
    return false;
  }
  // Records the call; blocks while its host is stalled.
  void Enter(Call call) {
    std::unique_lock<std::mutex> lock(mu_);
    const std::string host = call.host_id;
    calls_.push_back(std::move(call));
    if (!stalled_.contains(host)) return;
    ++blocked_[host];
    changed_.notify_all();
    changed_.wait(lock, [&] { return !stalled_.contains(host); });
    --blocked_[host];
  }

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::set<std::string> stalled_;
  bool released_all_ = false;
  std::map<std::string, int> blocked_;
  std::map<std::string, std::string> states_;
  std::vector<Call> calls_;
};

}  // namespace mc::controller
