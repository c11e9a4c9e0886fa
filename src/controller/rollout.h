// Commit updates without cold starts (issue 17, docs/controller.md "Rollouts"). When an
// endpoint's commit changes (PATCH of its model or revision), its workers on the old commit are
// replaced one at a time: the new commit is first made complete on a host that can take a worker
// (the cached replicas prefetch it, replicas.h), then one worker is started on it (placement
// prefers the host holding the commit: a cache hit), and once that worker is ready one old worker
// drains (it takes no new job, finishes the one it runs, then stops). The next pair follows.
//
// PlanRollout is the pure step (tested alone); Fleet::RolloutPass (rollout.cc) applies it each
// tick and keeps the state that GET /v1/endpoints/{id} shows as "rollout".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mc::controller {

struct RolloutWorker {
  std::string id;
  std::string commit;
  std::string phase;  // a live phase: initializing, starting, idle, running, stopping
  bool draining = false;
};

// A rollout as the API shows it.
struct RolloutView {
  std::string from, to;  // commits
  int replaced = 0, total = 0;
  // "prefetching" (waiting for the new commit on a host that can take a worker), "starting" (a
  // worker on the new commit is on its way to ready), "draining" (an old worker finishes its job),
  // "done".
  std::string state;
};

struct RolloutStep {
  bool start = false;              // start one worker (on the new commit)
  std::vector<std::string> drain;  // old workers to drain now
  std::string state;               // as RolloutView::state
};

// The next step towards `commit` for the endpoint's live workers. `surge_target` (0: none): the
// number of workers on `commit` that must be ready before the next old one drains (the caller sets
// it to the ready count + 1 when it starts a worker, and back to 0 when one drains);
// `commit_ready`: some host that can take a worker holds `commit` complete. A started worker that
// is lost before it is ready is started again. Idle old workers drain before running ones.
RolloutStep PlanRollout(const std::string& commit, const std::vector<RolloutWorker>& live,
                        int surge_target, bool commit_ready);

}  // namespace mc::controller
