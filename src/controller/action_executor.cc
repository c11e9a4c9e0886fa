#include "controller/action_executor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <memory>

namespace mc::controller {

ActionExecutor::ActionExecutor(int per_lane) : per_lane_(std::max(1, per_lane)) {}

ActionExecutor::~ActionExecutor() { Shutdown(); }

bool ActionExecutor::Submit(const std::string& lane, std::function<void()> action) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return false;
  Lane& l = lanes_[lane];
  l.queue.push_back(std::move(action));
  if (l.running >= per_lane_) return true;  // a thread of the lane takes it when one is free
  ++l.running;
  ++threads_alive_;
  // Threads that have returned are joined here (at once: they have nothing left to do).
  for (auto it = threads_.begin(); it != threads_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto t = std::make_unique<Thread>();
  Thread* self = t.get();
  t->thread = std::thread([this, lane, self] {
    Run(lane);
    std::lock_guard<std::mutex> done_lock(mu_);
    self->done = true;
    --threads_alive_;
    idle_.notify_all();
  });
  threads_.push_back(std::move(t));
  return true;
}

void ActionExecutor::Run(std::string lane) {
  while (true) {
    std::function<void()> action;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Lane& l = lanes_[lane];
      if (l.queue.empty() || stopped_) {
        --l.running;
        if (l.running == 0 && l.queue.empty()) lanes_.erase(lane);
        return;
      }
      action = std::move(l.queue.front());
      l.queue.pop_front();
    }
    try {
      action();
    } catch (const std::exception& e) {  // an action reports its own errors; this is a bug
      spdlog::error("controller: action on {} threw: {}", lane, e.what());
    }
  }
}

int ActionExecutor::Running(const std::string& lane) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lanes_.find(lane);
  return it == lanes_.end() ? 0 : it->second.running;
}

size_t ActionExecutor::Queued(const std::string& lane) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = lanes_.find(lane);
  return it == lanes_.end() ? 0 : it->second.queue.size();
}

void ActionExecutor::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [&] { return threads_alive_ == 0; });
}

void ActionExecutor::Shutdown() {
  std::vector<std::unique_ptr<Thread>> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    for (auto& [name, lane] : lanes_) lane.queue.clear();
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (t->thread.joinable()) t->thread.join();
  }
}

}  // namespace mc::controller
