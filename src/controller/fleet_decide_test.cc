// The fleet's decision pass (fleet_decide.h) on plain values: no store, no sockets, no threads,
// no sleeping. Each test builds a snapshot (hosts, workers, endpoints) and reads the actions.
#include "controller/fleet_decide.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace mc::controller {
namespace {

using namespace std::chrono_literals;

const std::string kCommit(40, 'c');
const std::string kOtherCommit(40, 'd');
constexpr int64_t kNow = 1'700'000'000'000;  // ms
constexpr uint64_t kModelBytes = 10'000'000'000;  // 100 s from the upstream at the default rate

class DecideTest : public ::testing::Test {
 protected:
  DecideTest() {
    options_.ping_interval = 10s;
    options_.job_stop_grace = 30s;
    options_.host_timeout = 30s;
    files_[kCommit] = {"org/m", {{"etag-1", kModelBytes}}, kModelBytes};
  }

  HostView& AddHost(const std::string& id, int gpus = 1, const std::string& gpu_type = "g") {
    HostView h;
    h.id = id;
    h.url = "http://" + id;
    h.gpu_type = gpu_type;
    h.gpus_total = h.gpus_free = gpus;
    h.capacity = 1'000'000'000'000;
    h.last_seen_ms = kNow;
    return hosts_[id] = h;
  }
  EndpointFacts& AddEndpoint(const std::string& id, int queued = 1) {
    EndpointFacts f;
    f.record.id = id;
    f.record.repo = "org/m";
    f.record.commit = kCommit;
    f.record.gpu_type = "g";
    f.record.workers_max = 3;
    f.load.in_queue = f.load.in_queue_scaling = queued;
    if (queued > 0) f.load.oldest_ms = kNow - 2'000;
    f.entitlement = Status::Ok();
    endpoints_.push_back(f);
    return endpoints_.back();
  }
  WorkerFacts& AddWorker(const std::string& id, const std::string& endpoint,
                         const std::string& host, WorkerPhase phase) {
    workers_.push_back({id, endpoint, host, phase, kNow, kNow, std::nullopt});
    return workers_.back();
  }
  Decision Run() {
    FleetSnapshot s;
    s.now_ms = kNow;
    s.mono = mono_;
    s.hosts = &hosts_;
    s.schedules = &schedules_;
    s.model_files = &files_;
    s.tree_failed_at = &tree_failed_at_;
    s.workers = workers_;
    s.endpoints = endpoints_;
    return Decide(s, options_);
  }
  static bool Stops(const Decision& d, const std::string& worker) {
    return std::any_of(d.stops.begin(), d.stops.end(),
                       [&](const StopAction& a) { return a.worker_id == worker; });
  }

  FleetOptions options_;
  Clock::SteadyTime mono_{std::chrono::hours(1)};
  std::map<std::string, HostView> hosts_;
  std::map<std::string, std::string> schedules_;
  std::map<std::string, CommitFiles> files_;
  std::map<std::string, int64_t> tree_failed_at_;
  std::vector<WorkerFacts> workers_;
  std::vector<EndpointFacts> endpoints_;
};

TEST_F(DecideTest, ColdStartIsPlacedOnTheHostThatHoldsTheCommit) {
  AddHost("h1");
  AddHost("h2").snapshots.push_back({"org/m", kCommit, kModelBytes, true, {}, 1, ""});
  AddEndpoint("ep-a");
  Decision d = Run();
  ASSERT_EQ(d.places.size(), 1u);
  EXPECT_EQ(d.places[0].host_id, "h2");
  EXPECT_TRUE(d.places[0].cache_hit);
  EXPECT_EQ(d.places[0].queue_ms, 2'000);
  EXPECT_EQ(d.throttled["ep-a"], 0);
}

TEST_F(DecideTest, DuringARolloutStartsGoOnlyToHostsHoldingTheCommit) {
  AddHost("h1", 4);  // free, without the commit: the autoscaler's usual second choice
  AddHost("h2", 1).snapshots.push_back({"org/m", kCommit, kModelBytes, true, {}, 1, ""});
  EndpointFacts& e = AddEndpoint("ep-a", 8);  // enough queued for more than one worker
  e.rollout_active = true;
  e.rollout_starts = 1;
  Decision d = Run();
  ASSERT_EQ(d.places.size(), 1u);  // h2's one GPU; none on h1, where it would be a miss
  EXPECT_EQ(d.places[0].host_id, "h2");
  EXPECT_TRUE(d.places[0].cache_hit);
  endpoints_.back().rollout_active = false;  // after the rollout, h1 takes workers again
  EXPECT_GT(Run().places.size(), 1u);
}

TEST_F(DecideTest, NothingQueuedPlacesNothing) {
  AddHost("h1");
  AddEndpoint("ep-a", 0);
  Decision d = Run();
  EXPECT_TRUE(d.places.empty());
  EXPECT_TRUE(d.entitlement_checks.empty());
}

TEST_F(DecideTest, WorkerThatStoppedPingingIsStoppedAndItsJobsRequeued) {
  AddHost("h1");
  AddEndpoint("ep-a", 0);
  AddWorker("w-silent", "ep-a", "h1", WorkerPhase::kIdle).last_ping_ms = kNow - 31'000;
  AddWorker("w-fine", "ep-a", "h1", WorkerPhase::kIdle).last_ping_ms = kNow - 29'000;
  Decision d = Run();
  ASSERT_TRUE(Stops(d, "w-silent"));
  EXPECT_TRUE(d.stops[0].requeue);
  EXPECT_FALSE(Stops(d, "w-fine"));
}

TEST_F(DecideTest, RunningWorkerThatIgnoresAJobStopIsStoppedAfterTheGrace) {
  AddHost("h1");
  AddEndpoint("ep-a", 0);
  AddWorker("w-deaf", "ep-a", "h1", WorkerPhase::kRunning).jobless_since_ms = kNow - 31'000;
  AddWorker("w-soon", "ep-a", "h1", WorkerPhase::kRunning).jobless_since_ms = kNow - 29'000;
  Decision d = Run();
  EXPECT_TRUE(Stops(d, "w-deaf"));
  EXPECT_FALSE(Stops(d, "w-soon"));
}

TEST_F(DecideTest, DrainingHostStopsIdleWorkersAndCordonedHostTakesNone) {
  AddHost("h1");
  AddHost("h2");
  schedules_["h1"] = "draining";
  schedules_["h2"] = "cordoned";
  AddEndpoint("ep-a");
  AddWorker("w-idle", "ep-a", "h1", WorkerPhase::kIdle);
  AddWorker("w-busy", "ep-a", "h1", WorkerPhase::kRunning);
  Decision d = Run();
  EXPECT_TRUE(Stops(d, "w-idle"));
  EXPECT_FALSE(Stops(d, "w-busy"));
  EXPECT_TRUE(d.places.empty()) << "no host may take a new worker";
}

TEST_F(DecideTest, StartsWaitForTheEntitlementVerdict) {
  AddHost("h1");
  AddEndpoint("ep-a").entitlement.reset();
  Decision d = Run();
  EXPECT_TRUE(d.places.empty());
  EXPECT_EQ(d.entitlement_checks, std::vector<std::string>{"ep-a"});
  EXPECT_FALSE(d.throttled.contains("ep-a")) << "waiting for a check is not throttling";

  endpoints_[0].entitlement_checking = true;  // in flight: not asked twice
  EXPECT_TRUE(Run().entitlement_checks.empty());
}

TEST_F(DecideTest, RefusedEntitlementPlacesNothing) {
  AddHost("h1");
  AddEndpoint("ep-a").entitlement = PermissionDeniedError("gated");
  Decision d = Run();
  EXPECT_TRUE(d.places.empty());
  EXPECT_EQ(d.throttled["ep-a"], 1);
  EXPECT_EQ(d.warnings.size(), 1u);
}

TEST_F(DecideTest, StartsWaitForTheTreeListingsPlacementNeeds) {
  AddHost("h1").snapshots.push_back({"org/m", kOtherCommit, kModelBytes, true, {}, 1, ""});
  AddEndpoint("ep-a");
  Decision d = Run();
  EXPECT_TRUE(d.places.empty());
  ASSERT_EQ(d.tree_fetches.size(), 1u);
  EXPECT_EQ(d.tree_fetches[0].commits, std::vector<std::string>{kOtherCommit});

  endpoints_[0].trees_fetching = true;
  d = Run();
  EXPECT_TRUE(d.places.empty());
  EXPECT_TRUE(d.tree_fetches.empty());

  endpoints_[0].trees_fetching = false;  // the listing failed a moment ago: placed without it
  tree_failed_at_[kOtherCommit] = kNow - 1'000;
  EXPECT_EQ(Run().places.size(), 1u);
}

TEST_F(DecideTest, BackOffHoldsStartsThenAllowsOneProbe) {
  AddHost("h1", 4);
  EndpointFacts& e = AddEndpoint("ep-a", 3);
  e.record.scaler_type = "REQUEST_COUNT";
  e.record.scaler_value = 1;
  PlacementBackoff backoff;  // 1 s after the first failure
  backoff.Failed(mono_, {});
  e.backoff = backoff;
  mono_ += 500ms;
  Decision d = Run();
  EXPECT_TRUE(d.places.empty());
  EXPECT_EQ(d.throttled["ep-a"], 3);
  mono_ += 600ms;
  d = Run();
  EXPECT_EQ(d.places.size(), 1u) << "one probe at a time";
}

TEST_F(DecideTest, APlacementTakesTheHostsGpusForTheNextEndpoint) {
  AddHost("h1", 1);
  AddEndpoint("ep-a");
  AddEndpoint("ep-b");
  Decision d = Run();
  ASSERT_EQ(d.places.size(), 1u);
  EXPECT_EQ(d.places[0].endpoint_id, "ep-a");
  EXPECT_EQ(d.throttled["ep-b"], 1);
}

TEST_F(DecideTest, ImageWorkersGoOnlyToHostsThatRunContainers) {
  AddHost("proc");
  AddHost("podman").containers = true;
  AddEndpoint("ep-img").record.image = "registry.example/worker:1";
  AddEndpoint("ep-cmd");
  Decision d = Run();
  ASSERT_EQ(d.places.size(), 2u);
  EXPECT_EQ(d.places[0].host_id, "podman");
  EXPECT_EQ(d.places[1].host_id, "proc");
}

TEST_F(DecideTest, LostHostTakesNoWorker) {
  AddHost("h1").last_seen_ms = kNow - 31'000;
  AddEndpoint("ep-a");
  Decision d = Run();
  EXPECT_TRUE(d.places.empty());
  EXPECT_EQ(d.throttled["ep-a"], 1);
}

TEST_F(DecideTest, IdleWorkerPastItsTimeoutIsStopped) {
  AddHost("h1");
  AddEndpoint("ep-a", 0).record.idle_timeout_s = 5;
  AddWorker("w-old", "ep-a", "h1", WorkerPhase::kIdle).idle_since_ms = kNow - 6'000;
  AddWorker("w-new", "ep-a", "h1", WorkerPhase::kIdle).idle_since_ms = kNow - 1'000;
  Decision d = Run();
  EXPECT_TRUE(Stops(d, "w-old"));
  EXPECT_FALSE(Stops(d, "w-new"));
}

}  // namespace
}  // namespace mc::controller
