// ActionExecutor: runs the fleet's slow actions (agent calls: start and stop a worker; upstream
// calls: entitlement checks, tree listings) off the scheduling loop, so that the loop never
// waits on another machine.
//
// Actions are queued per lane (a host id for its agent's calls, "upstream" for the hub) and run
// in submission order, at most `per_lane` of a lane at once, each on a thread of its lane that
// exists only while the lane has work. So a host whose agent accepts connections and never
// answers holds at most `per_lane` threads, each until its call's own timeout
// (AgentTimeouts), and its other actions wait behind them; no other lane waits. An action reports
// its result itself (the fleet's closures take the fleet's lock and apply it).
//
// Shutdown() drops what is still queued and joins what runs (each bounded by its call's timeout).
// Thread-safety: all methods may be called from any thread, Submit from within an action too.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mc::controller {

class ActionExecutor {
 public:
  explicit ActionExecutor(int per_lane = 2);
  ~ActionExecutor();  // Shutdown()
  ActionExecutor(const ActionExecutor&) = delete;
  ActionExecutor& operator=(const ActionExecutor&) = delete;

  // Queues `action` on `lane`. False (and `action` is dropped) after Shutdown().
  bool Submit(const std::string& lane, std::function<void()> action);
  // Actions of `lane` running now, and waiting.
  int Running(const std::string& lane) const;
  size_t Queued(const std::string& lane) const;
  // Blocks until no action runs or waits (tests).
  void Drain();
  void Shutdown();

 private:
  struct Lane {
    std::deque<std::function<void()>> queue;
    int running = 0;
  };
  void Run(std::string lane);

  const int per_lane_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool stopped_ = false;
  std::map<std::string, Lane> lanes_;
  int threads_alive_ = 0;
  // Every thread started; finished ones are joined by the next Submit and by Shutdown.
  struct Thread {
    std::thread thread;
    bool done = false;
  };
  std::vector<std::unique_ptr<Thread>> threads_;
};

}  // namespace mc::controller
