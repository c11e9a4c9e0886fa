// PlanReplicas (replicas.h), the pure decision of which hosts keep an endpoint's commit, and
// PlanRollout (rollout.h), the pure step of a commit update.
#include "controller/replicas.h"

#include <gtest/gtest.h>

#include "controller/rollout.h"

namespace mc::controller {
namespace {

using Kind = ReplicaAction::Kind;

const std::string kC(40, 'c');
const std::string kD(40, 'd');

HostView Host(const std::string& id, uint64_t free_bytes = 1000) {
  HostView h;
  h.id = id;
  h.gpu_type = "a100";
  h.capacity = 10'000;
  h.used = 10'000 - free_bytes;
  return h;
}

void Holds(HostView& h, const std::string& commit, bool complete, bool fleet_pin) {
  HostView::Snapshot s;
  s.model = "org/m";
  s.commit = commit;
  s.complete = complete;
  if (fleet_pin) s.pinned_by.push_back("fleet");
  h.snapshots.push_back(s);
}

ReplicaWant Want(int replicas, const std::string& commit = kC) {
  return {"ep-1", "org/m", commit, "a100", false, replicas};
}

std::vector<std::pair<Kind, std::string>> Summary(const std::vector<ReplicaAction>& actions) {
  std::vector<std::pair<Kind, std::string>> out;
  for (const ReplicaAction& a : actions)
    out.emplace_back(a.kind, a.host_id + "@" + a.commit.substr(0, 1));
  return out;
}

TEST(PlanReplicasTest, NewEndpointPrefetchesOnTheHostsWithTheMostRoom) {
  std::vector<HostView> hosts = {Host("h1", 100), Host("h2", 900), Host("h3", 500)};
  auto plan = PlanReplicas({Want(2)}, hosts, {});
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h2@c"},
                                                                      {Kind::kAdd, "h3@c"}}));
}

TEST(PlanReplicasTest, HostsHoldingTheCommitAreChosenFirstAndOtherGpuTypesNever) {
  std::vector<HostView> hosts = {Host("h1", 100), Host("h2", 900), Host("h3", 900)};
  Holds(hosts[0], kC, true, false);
  hosts[2].gpu_type = "h100";
  auto plan = PlanReplicas({Want(2)}, hosts, {});
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h1@c"},
                                                                      {Kind::kAdd, "h2@c"}}));
}

TEST(PlanReplicasTest, EnoughCopiesMeanNothingToDo) {
  std::vector<HostView> hosts = {Host("h1"), Host("h2"), Host("h3")};
  Holds(hosts[0], kC, true, true);
  Holds(hosts[1], kC, true, true);
  EXPECT_TRUE(PlanReplicas({Want(2)}, hosts, HeartbeatPins(hosts)).empty());
}

TEST(PlanReplicasTest, ALostReplicaHostIsReplacedAndItsPinLeftAlone) {
  std::vector<HostView> hosts = {Host("h1"), Host("h2"), Host("h3")};
  Holds(hosts[0], kC, true, true);
  Holds(hosts[1], kC, true, true);
  hosts[1].lost = true;
  auto plan = PlanReplicas({Want(2)}, hosts, HeartbeatPins(hosts));
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h3@c"}}));
  // Back again: one too many, the incomplete one goes.
  hosts[1].lost = false;
  hosts[2].snapshots.clear();
  Holds(hosts[2], kC, false, true);
  hosts[2].downloads.push_back({"org/m", kC, 1, 2, 0});
  plan = PlanReplicas({Want(2)}, hosts, HeartbeatPins(hosts));
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kRelease, "h3@c"}}));
}

TEST(PlanReplicasTest, ANewCommitIsPrefetchedAndTheOldPinsReleased) {
  std::vector<HostView> hosts = {Host("h1"), Host("h2")};
  Holds(hosts[0], kC, true, true);
  Holds(hosts[1], kC, true, true);
  auto plan = PlanReplicas({Want(2, kD)}, hosts, HeartbeatPins(hosts));
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h1@d"},
                                                                      {Kind::kAdd, "h2@d"},
                                                                      {Kind::kRelease, "h1@c"},
                                                                      {Kind::kRelease, "h2@c"}}));
}

TEST(PlanReplicasTest, AKeptCopyThatStoppedDownloadingIsEnsuredAgain) {
  std::vector<HostView> hosts = {Host("h1")};
  FleetPins pins = {{{"h1", kC}, "org/m"}};  // pinned by us, nothing on disk yet
  auto plan = PlanReplicas({Want(1)}, hosts, pins);
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kEnsure, "h1@c"}}));
  hosts[0].downloads.push_back({"org/m", kC, 1, 2, 0});
  EXPECT_TRUE(PlanReplicas({Want(1)}, hosts, pins).empty());
}

TEST(PlanReplicasTest, WithoutReplicasTheLastCopyStaysPinnedAndNothingIsFetched) {
  std::vector<HostView> hosts = {Host("h1"), Host("h2")};
  EXPECT_TRUE(PlanReplicas({Want(0)}, hosts, {}).empty());  // no copy anywhere: none made
  Holds(hosts[1], kC, true, false);
  auto plan = PlanReplicas({Want(0)}, hosts, {});
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h2@c"}}));
  // Pinned: kept, even when another host holds one too.
  hosts[1].snapshots[0].pinned_by = {"fleet"};
  Holds(hosts[0], kC, true, false);
  EXPECT_TRUE(PlanReplicas({Want(0)}, hosts, HeartbeatPins(hosts)).empty());
  // The endpoint is gone: the pin goes.
  plan = PlanReplicas({}, hosts, HeartbeatPins(hosts));
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kRelease, "h2@c"}}));
}

TEST(PlanReplicasTest, WithoutReplicasACopyAWorkerPinsNeedsNoFleetPin) {
  std::vector<HostView> hosts = {Host("h1")};
  Holds(hosts[0], kC, true, false);
  hosts[0].snapshots[0].pinned_by = {"worker:w-1"};
  EXPECT_TRUE(PlanReplicas({Want(0)}, hosts, {}).empty());
}

TEST(PlanReplicasTest, HostsRunningWorkersOnTheOldCommitGetTheNewOne) {
  std::vector<HostView> hosts = {Host("h1", 900), Host("h2", 100)};
  ReplicaWant w = Want(0, kD);
  w.rollout_hosts = {"h2"};
  auto plan = PlanReplicas({w}, hosts, {});
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h2@d"}}));
  Holds(hosts[1], kD, true, true);
  EXPECT_TRUE(PlanReplicas({w}, hosts, HeartbeatPins(hosts)).empty());
}

TEST(PlanReplicasTest, DrainingHostsAreNotChosenAndImageEndpointsNeedContainers) {
  std::vector<HostView> hosts = {Host("h1", 900), Host("h2", 100), Host("h3", 500)};
  hosts[0].schedule = "draining";
  hosts[2].containers = true;
  auto plan = PlanReplicas({Want(1)}, hosts, {});
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h2@c"}}));
  ReplicaWant image = Want(1);
  image.containers = true;
  plan = PlanReplicas({image}, hosts, {});
  EXPECT_EQ(Summary(plan), (std::vector<std::pair<Kind, std::string>>{{Kind::kAdd, "h3@c"}}));
}

// ---- rollouts ----

TEST(PlanRolloutTest, WaitsForTheNewCommitThenStartsOneWorker) {
  std::vector<RolloutWorker> live = {{"w1", kC, "idle", false}, {"w2", kC, "running", false}};
  RolloutStep step = PlanRollout(kD, live, 0, /*commit_ready=*/false);
  EXPECT_FALSE(step.start);
  EXPECT_EQ(step.state, "prefetching");
  step = PlanRollout(kD, live, 0, true);
  EXPECT_TRUE(step.start);
  EXPECT_TRUE(step.drain.empty());
}

TEST(PlanRolloutTest, DrainsOneOldWorkerOnlyOnceTheNewOneIsReadyIdleOnesFirst) {
  std::vector<RolloutWorker> live = {
      {"w1", kC, "running", false}, {"w2", kC, "idle", false}, {"w3", kD, "initializing", false}};
  RolloutStep step = PlanRollout(kD, live, 1, true);
  EXPECT_FALSE(step.start);
  EXPECT_TRUE(step.drain.empty());
  EXPECT_EQ(step.state, "starting");
  live[2].phase = "idle";
  step = PlanRollout(kD, live, 1, true);
  EXPECT_EQ(step.drain, (std::vector<std::string>{"w2"}));
  // While it drains, nothing else moves.
  live[1].draining = true;
  step = PlanRollout(kD, live, 0, true);
  EXPECT_FALSE(step.start);
  EXPECT_TRUE(step.drain.empty());
  EXPECT_EQ(step.state, "draining");
  // Gone: the next pair.
  live.erase(live.begin() + 1);
  step = PlanRollout(kD, live, 0, true);
  EXPECT_TRUE(step.start);
}

TEST(PlanRolloutTest, AStartedWorkerLostBeforeReadyIsStartedAgainAndNoOldOneDrains) {
  std::vector<RolloutWorker> live = {{"w1", kC, "idle", false}};
  RolloutStep step = PlanRollout(kD, live, 1, true);  // its worker failed: none on kD
  EXPECT_TRUE(step.start);
  EXPECT_TRUE(step.drain.empty());
}

TEST(PlanRolloutTest, NoOldWorkerLeftIsDone) {
  RolloutStep step = PlanRollout(kD, {{"w3", kD, "idle", false}}, 0, true);
  EXPECT_EQ(step.state, "done");
  EXPECT_FALSE(step.start);
}

}  // namespace
}  // namespace mc::controller
