// The fleet's decision pass: from a snapshot of the fleet (hosts, live workers, endpoints with
// their queue loads, placement back-offs, entitlement verdicts and tree listings) it returns what
// to do now: workers to stop (and whose jobs to requeue), workers to place (endpoint → host, with
// peers), entitlement checks and tree listings to fetch, and how many wanted starts each
// endpoint could not have (Runpod's "throttled").
//
// Pure: no I/O, no lock, no clock (the time is in the snapshot); the fleet builds the snapshot
// under its lock, calls Decide, and carries the actions out itself: phases and ledger rows at
// once, agent and upstream calls on its executor (action_executor.h), never on the loop.
// fleet_decide_test.cc tests it on plain values.
//
// What it decides, in order:
//   1. Stops: a live idle or running worker that has not pinged for max(3 × ping interval, 30 s)
//      (its jobs are requeued); a running worker that has held no job for job_stop_grace (it
//      ignores a job-stop); an idle worker of a draining host.
//   2. Per endpoint, scheduler::DecideScale over its workers (those stopped in 1 count as
//      stopping): idle workers to stop; starts wanted. The starts wait while tree listings the
//      placement needs are missing (a FetchTrees action) or in flight, then are capped by the
//      endpoint's placement back-off, then wait for a fresh entitlement verdict (a Check action;
//      a refused one places nothing). Each start is placed by scheduler::PlaceWorker over the live,
//      schedulable hosts that run the endpoint's kind of worker; a placement takes the host's
//      GPUs for the rest of the pass (for this endpoint and the next).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/placement_backoff.h"
#include "controller/store.h"
#include "controller/worker_phase.h"
#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::controller {

// A live worker as the pass sees it.
struct WorkerFacts {
  std::string id, endpoint_id, host_id;
  WorkerPhase phase = WorkerPhase::kInitializing;
  std::optional<int64_t> last_ping_ms;
  std::optional<int64_t> idle_since_ms;
  // Running and holding no job since (the fleet's bookkeeping, from JobBoard::HeldBy).
  std::optional<int64_t> jobless_since_ms;
};

struct EndpointFacts {
  EndpointRecord record;
  QueueLoad load;
  std::optional<PlacementBackoff> backoff;  // while its placements back off
  std::optional<Status> entitlement;        // a verdict younger than entitlement_ttl
  bool entitlement_checking = false;        // a check in flight
  bool trees_fetching = false;              // tree listings in flight
  int throttled_before = 0;                 // the last pass's count (logs once per episode)
  int rollout_starts = 0;  // a commit update's worker to start now (rollout.h), beyond scaling
  int rollout_room = 0;    // workers a rollout may have above workersMax (rollout.h)
  // A rollout is under way (not done): the endpoint's starts go only to hosts that hold its
  // commit complete, so that no worker of the new commit is a miss.
  bool rollout_active = false;
};

// The fleet's maps are passed by pointer (the fleet holds its lock while Decide runs), so that a
// pass copies no host documents or blob lists; every pointer must be set.
struct FleetSnapshot {
  int64_t now_ms = 0;        // wall time
  Clock::SteadyTime mono{};  // monotonic time (back-off)
  const std::map<std::string, HostView>* hosts = nullptr;
  const std::map<std::string, std::string>* schedules = nullptr;  // "cordoned" / "draining"
  const std::map<std::string, CommitFiles>* model_files = nullptr;  // by commit
  const std::map<std::string, int64_t>* tree_failed_at = nullptr;   // commit → last failure
  // The latest entitlement check found the upstream unreachable (entitlements.h): placement
  // takes only hosts that hold the endpoint's commit complete.
  bool upstream_down = false;
  std::vector<WorkerFacts> workers;  // live ones
  std::vector<EndpointFacts> endpoints;
};

struct StopAction {
  std::string worker_id;
  std::string reason;
  bool requeue = false;  // its jobs go back to the queue first (it stopped pinging)
};

struct PlaceAction {
  std::string endpoint_id;
  std::string host_id;
  std::vector<std::string> peers;  // host ids that hold the commit, best first
  bool cache_hit = false;          // the host has the commit complete
  int64_t queue_ms = 0;            // the oldest job's wait
};

struct FetchTreesAction {
  std::string endpoint_id;
  std::vector<std::string> commits;
};

struct Decision {
  std::vector<StopAction> stops;
  std::vector<PlaceAction> places;
  std::vector<std::string> entitlement_checks;  // endpoint ids
  std::vector<FetchTreesAction> tree_fetches;
  // Endpoint → starts the autoscaler wanted and placement could not have; absent: unchanged
  // (its starts wait for a check or a listing).
  std::map<std::string, int> throttled;
  std::vector<std::string> warnings;  // one line each, for the log
};

Decision Decide(const FleetSnapshot& snapshot, const FleetOptions& options);

// Placement's view of every live, schedulable host for a worker of `e` (exposed for tests).
std::vector<scheduler::HostState> HostStatesFor(const FleetSnapshot& s, const FleetOptions& o,
                                                const EndpointRecord& e);

}  // namespace mc::controller
