#include "controller/rollout.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "controller/fleet.h"

namespace mc::controller {

namespace {

bool Ready(const std::string& phase) { return phase == "idle" || phase == "running"; }
bool OnTheWay(const std::string& phase) { return phase == "initializing" || phase == "starting"; }

}  // namespace

RolloutStep PlanRollout(const std::string& commit, const std::vector<RolloutWorker>& live,
                        int surge_target, bool commit_ready) {
  std::vector<const RolloutWorker*> old;
  int ready_new = 0, pending_new = 0;
  for (const RolloutWorker& w : live) {
    if (w.commit != commit) {
      old.push_back(&w);
    } else if (Ready(w.phase)) {
      ++ready_new;
    } else if (OnTheWay(w.phase)) {
      ++pending_new;
    }
  }
  RolloutStep step;
  if (old.empty()) {
    step.state = "done";
    return step;
  }
  if (std::any_of(old.begin(), old.end(),
                  [](const RolloutWorker* w) { return w->draining || w->phase == "stopping"; })) {
    step.state = "draining";  // one at a time
    return step;
  }
  if (surge_target > 0) {
    if (ready_new >= surge_target) {
      auto idle = std::find_if(old.begin(), old.end(),
                               [](const RolloutWorker* w) { return w->phase != "running"; });
      step.drain.push_back((idle != old.end() ? *idle : old.front())->id);
      step.state = "draining";
      return step;
    }
    if (pending_new > 0) {
      step.state = "starting";
      return step;
    }
    // The started worker is gone before it was ready: start another.
  }
  if (!commit_ready) {
    step.state = "prefetching";
    return step;
  }
  if (pending_new > 0 && surge_target == 0) {  // a start of the autoscaler's is on its way
    step.state = "starting";
    return step;
  }
  step.start = true;
  step.state = "starting";
  return step;
}

// ---- the fleet's side (fleet.h) ----

// Long: gathers the endpoint's workers and hosts, runs the step under the lock with the rollout's
// state, and stops the drained workers that are idle; the parts share the same few values.
uint32_t Fleet::RolloutPass(const EndpointRecord& e) {
  std::vector<WorkerRecord> records = Workers(e.id);
  bool commit_ready = false;
  for (const HostView& h : Hosts()) {
    if (h.lost || !h.schedule.empty() || h.containers == e.image.empty()) continue;
    if (!e.gpu_type.empty() && h.gpu_type != e.gpu_type) continue;
    if (h.gpus_free < e.gpu_count) continue;
    for (const HostView::Snapshot& s : h.snapshots)
      commit_ready |= s.commit == e.commit && s.complete;
  }
  std::vector<std::string> stop;
  RolloutStep step;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<RolloutWorker> live;
    std::set<std::string> live_ids;
    for (const WorkerRecord& w : records) {
      if (w.phase == "stopped" || w.phase == "failed") continue;
      live_ids.insert(w.id);
      live.push_back({w.id, w.commit, w.phase, draining_.contains(w.id)});
      if (draining_.contains(w.id) && w.phase == "idle" && jobs_.HeldBy(w.id) == 0) {
        stop.push_back(w.id);
      }
    }
    RolloutState& st = rollouts_[e.id];
    const bool has_old = std::any_of(live.begin(), live.end(),
                                     [&](const RolloutWorker& w) { return w.commit != e.commit; });
    if (st.view.to != e.commit) {
      if (!has_old) {  // nothing to replace: no rollout
        rollouts_.erase(e.id);
        return 0;
      }
      auto first_old = std::find_if(live.begin(), live.end(),
                                    [&](const RolloutWorker& w) { return w.commit != e.commit; });
      st = RolloutState{};
      st.view.from = first_old->commit;
      st.view.to = e.commit;
      st.view.total = static_cast<int>(std::count_if(
          live.begin(), live.end(), [&](const RolloutWorker& w) { return w.commit != e.commit; }));
      spdlog::info("controller: {}: rollout of {} worker(s) from {} to {}", e.id, st.view.total,
                   st.view.from, st.view.to);
    }
    step = PlanRollout(e.commit, live, st.surge_target, commit_ready);
    st.view.state = step.state;
    if (step.start) {
      st.surge_target =
          1 + static_cast<int>(std::count_if(live.begin(), live.end(), [&](const RolloutWorker& w) {
            return w.commit == e.commit && Ready(w.phase);
          }));
    }
    for (const std::string& id : step.drain) {
      draining_.insert(id);
      st.surge_target = 0;
      ++st.view.replaced;
      auto w = std::find_if(live.begin(), live.end(),
                            [&](const RolloutWorker& x) { return x.id == id; });
      if (w != live.end() && w->phase == "idle" && jobs_.HeldBy(id) == 0) stop.push_back(id);
    }
    std::erase_if(draining_, [&](const std::string& id) {
      auto w = std::find_if(records.begin(), records.end(),
                            [&](const WorkerRecord& r) { return r.id == id; });
      return w != records.end() && !live_ids.contains(id);
    });
  }
  for (const std::string& id : stop) {
    StopWorker(id, "replaced by a worker on commit " + e.commit.substr(0, 12));
  }
  return step.start ? 1 : 0;
}

std::optional<RolloutView> Fleet::Rollout(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rollouts_.find(endpoint_id);
  if (it == rollouts_.end()) return std::nullopt;
  return it->second.view;
}

}  // namespace mc::controller
