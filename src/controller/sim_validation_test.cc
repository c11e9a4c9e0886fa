// The simulator against a real cluster (issue 19's validation): one small scenario,
// examples/sim/validation.json, run by the simulator and for real — an upstream mirror capped at
// the scenario's origin bandwidth, a controller, and one agent per simulated host, whose workers
// are real processes (examples/runpod_worker.py) — with the same job submissions at the same
// times. Cold-start count, miss share and origin bytes (the mirror's file bytes served) must
// agree within 10%.
//
// Deterministic on a loaded machine: every endpoint has workers_max 1, so a cold start happens
// exactly when a job finds no live worker; each group of submissions waits (beyond its scheduled
// time, if need be) until the previous groups' workers have stopped, so a slow worker start or
// stop shifts the schedule but never changes which starts happen, nor where (hosts have one GPU
// each, and the scenario places every first use of a model where exactly one host is free).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "controller/test_cluster.h"
#include "mc/sim/scenario.h"
#include "mc/sim/simulator.h"
#include "mc/testing/eventually.h"

namespace mc::sim {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using controller::Reply;
using controller::TestCluster;
using controller::TestClusterOptions;

constexpr double kTolerance = 0.10;

struct Figures {
  uint64_t cold_starts = 0;
  uint64_t misses = 0;
  uint64_t origin_bytes = 0;
  double miss_share() const { return cold_starts ? double(misses) / double(cold_starts) : 0; }
};

// Within 10% of the simulated value (exactly equal when it is 0).
bool Agrees(double sim, double real) {
  if (sim == 0) return real == 0;
  return std::abs(real - sim) <= kTolerance * std::abs(sim);
}

std::string ModelOf(const Scenario& sc, const Endpoint& e) {
  const std::string& rev = sc.catalogue.revisions[e.revision].id;  // "<model>@<index>"
  return rev.substr(0, rev.rfind('@'));
}

// Replays the scenario's job list on a real cluster and reads back the figures.
Figures RunForReal(const Scenario& sc) {
  TestClusterOptions o;
  o.name = "sim_validation";
  o.models.clear();
  for (const Revision& r : sc.catalogue.revisions) {
    o.models.push_back({r.id.substr(0, r.id.rfind('@')), r.bytes});
  }
  o.upstream_options = [&sc](mirror::MirrorOptions& m) {
    m.max_bytes_per_second = static_cast<uint64_t>(sc.origin_bandwidth);
  };
  uint32_t hosts = 0;
  for (const HostGroup& g : sc.hosts) hosts += g.count;
  o.agents = static_cast<int>(hosts);
  o.agent_options = [&sc](int index, agent::AgentOptions& a) {
    int i = index;
    for (const HostGroup& g : sc.hosts) {
      if (i < static_cast<int>(g.count)) {
        a.gpus = g.gpus;
        a.gpu_type = g.gpu_type;
        a.capacity = g.cache_capacity;
        return;
      }
      i -= static_cast<int>(g.count);
    }
  };
  auto made = TestCluster::Create(std::move(o));
  if (!made.ok()) {
    ADD_FAILURE() << made.status().ToString();
    return {};
  }
  TestCluster& cluster = **made;
  // Bytes served while importing nothing: the mirror counts from its start.
  const uint64_t bytes_before = cluster.upstream().stats().file_bytes_served;

  std::vector<std::string> ids;  // real endpoint id per scenario endpoint
  for (const Endpoint& e : sc.endpoints) {
    json body{{"name", e.id},
              {"model", ModelOf(sc, e)},
              {"workersMin", e.scaler.workers_min},
              {"workersMax", e.scaler.workers_max},
              {"idleTimeout", static_cast<int>(e.scaler.idle_timeout_seconds)},
              {"gpuCount", e.gpus},
              {"command", {"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"}}};
    if (!e.gpu_type.empty()) body["gpuType"] = e.gpu_type;
    Reply r = cluster.Call("POST", "/v1/endpoints", body.dump());
    EXPECT_EQ(r.status, 200) << r.body.dump();
    ids.push_back(r.body.value("id", ""));
  }
  auto live_workers = [&] {
    size_t live = 0;
    for (const json& w : cluster.Call("GET", "/v1/workers").body["workers"]) {
      if (w["phase"] != "stopped") ++live;
    }
    return live;
  };

  // Groups: submissions closer than 5 s to the one before belong to its group.
  const auto start = std::chrono::steady_clock::now();
  std::chrono::duration<double> shift{0};
  std::vector<std::string> jobs;
  double last = -1e9;
  for (const ListedJob& j : sc.workload.jobs) {
    if (j.seconds - last >= 5) {  // a new group: the previous ones' workers are gone first
      EXPECT_TRUE(testing::Eventually([&] { return live_workers() == 0; }, 120s));
      const auto now = std::chrono::steady_clock::now() - start;
      if (now - shift > std::chrono::duration<double>(j.seconds)) {
        shift = now - std::chrono::duration<double>(j.seconds);
      }
    }
    last = j.seconds;
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                    shift + std::chrono::duration<double>(j.seconds)));
    const double exec = j.exec_seconds >= 0 ? j.exec_seconds : sc.endpoints[j.endpoint].execution.a;
    Reply r = cluster.Call("POST", "/v2/" + ids[j.endpoint] + "/run",
                           json{{"input", {{"sleep", exec}}}}.dump());
    EXPECT_EQ(r.status, 200) << r.body.dump();
    jobs.push_back(ids[j.endpoint] + "/status/" + r.body.value("id", ""));
  }
  for (const std::string& job : jobs) {
    Reply status;
    if (!testing::Eventually(
            [&] {
              status = cluster.Call("GET", "/v2/" + job);
              return status.body["status"] == "COMPLETED";
            },
            120s)) {
      ADD_FAILURE() << job << ": " << status.body.dump() << "\n"
                    << cluster.Call("GET", "/v1/workers").body.dump();
      break;
    }
  }

  Figures f;
  for (const std::string& ep : ids) {
    const Reply cold = cluster.Call("GET", "/v1/coldstarts?endpoint=" + ep);
    for (const json& c : cold.body["coldStarts"]) {
      ++f.cold_starts;
      if (!c["cacheHit"].get<bool>()) ++f.misses;
    }
  }
  f.origin_bytes = cluster.upstream().stats().file_bytes_served - bytes_before;
  return f;
}

TEST(SimValidationTest, SimulatorAgreesWithARealClusterOnColdStartsMissesAndOriginBytes) {
  auto sc = LoadScenario(std::string(MC_SOURCE_DIR) + "/examples/sim/validation.json");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  ASSERT_EQ(sc->workload.kind, Workload::kJobs);
  auto simulated = Simulate(*sc);
  ASSERT_TRUE(simulated.ok()) << simulated.status().ToString();
  const Figures sim{simulated->cold_starts, simulated->cold_misses, simulated->origin_bytes};
  const Figures real = RunForReal(*sc);
  std::printf("                 simulated   real\n");
  std::printf("cold starts      %9llu   %llu\n", (unsigned long long)sim.cold_starts,
              (unsigned long long)real.cold_starts);
  std::printf("misses           %9llu   %llu\n", (unsigned long long)sim.misses,
              (unsigned long long)real.misses);
  std::printf("miss share       %9.3f   %.3f\n", sim.miss_share(), real.miss_share());
  std::printf("origin bytes     %9llu   %llu\n", (unsigned long long)sim.origin_bytes,
              (unsigned long long)real.origin_bytes);
  EXPECT_GT(sim.cold_starts, 0u);
  EXPECT_TRUE(Agrees(double(sim.cold_starts), double(real.cold_starts)))
      << sim.cold_starts << " simulated vs " << real.cold_starts << " real";
  EXPECT_TRUE(Agrees(sim.miss_share(), real.miss_share()))
      << sim.miss_share() << " simulated vs " << real.miss_share() << " real";
  EXPECT_TRUE(Agrees(double(sim.origin_bytes), double(real.origin_bytes)))
      << sim.origin_bytes << " simulated vs " << real.origin_bytes << " real";
}

}  // namespace
}  // namespace mc::sim
