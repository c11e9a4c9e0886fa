#include "mc/sim/simulator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "mc/sim/scenario.h"

namespace mc::sim {
namespace {

using ::testing::HasSubstr;

// 20 hosts with room for ~15% of a 60-model catalogue each, Zipf(0.9) over its revisions.
std::string Fleet() {
  return R"({
    "seed": 3,
    "duration_hours": 2,
    "worker_start_seconds": 5,
    "hosts": [{"name": "h", "count": 20, "gpu_type": "A100", "gpus": 4, "cache_fraction": 0.15,
               "download_bandwidth": "1GB/s", "peer_bandwidth": "2GB/s"}],
    "catalogue": {"generate": {"models": 60, "revisions": 2, "tail_max_bytes": "60GB"}},
    "endpoints": {"generate": {"gpu_type": "A100", "workers_max": 3, "idle_timeout_seconds": 30,
                               "execution": {"distribution": "lognormal", "median_seconds": 2,
                                             "p99_seconds": 20}}},
    "workload": {"type": "zipf", "jobs_per_second": 5, "exponent": 0.9,
                 "diurnal": {"amplitude": 0.5}, "bursts": [{"start_hour": 1, "minutes": 5, "factor": 4}]},
    "prices": {"gpu_hour": {"A100": 2.0}, "origin_per_gb": 0.01}
  })";
}

Scenario Load(const std::vector<std::string>& overrides = {}) {
  auto text = ApplyOverrides(Fleet(), overrides);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  auto sc = ParseScenario(*text, MC_SOURCE_DIR);
  EXPECT_TRUE(sc.ok()) << sc.status().ToString();
  return *sc;
}

std::string RunJson(const Scenario& sc) {
  auto r = Simulate(sc);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return ResultJson(sc, *r) + ResultCsv(sc, *r) + DiskCsv(*r) + DiskSvg(*r);
}

TEST(SimulatorTest, TheSameSeedGivesByteIdenticalOutput) {
  const Scenario sc = Load();
  EXPECT_EQ(RunJson(sc), RunJson(sc));
}

TEST(SimulatorTest, AnotherSeedGivesAnotherRun) {
  EXPECT_NE(RunJson(Load()), RunJson(Load({"seed=4"})));
}

TEST(SimulatorTest, CountsAddUp) {
  const Scenario sc = Load();
  auto r = Simulate(sc);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->jobs, 20000u);
  EXPECT_LE(r->jobs_done, r->jobs);
  EXPECT_GT(r->jobs_done, r->jobs * 9 / 10);
  EXPECT_EQ(r->cold_hits + r->cold_misses, r->cold_starts);
  EXPECT_GT(r->cold_misses, 0u);
  EXPECT_GT(r->cold_hits, 0u);
  EXPECT_EQ(r->fetched_bytes, r->origin_bytes + r->peer_bytes - r->prefetch_bytes);
  EXPECT_GT(r->evictions, 0u);  // the caches are small: eviction ran
  EXPECT_GT(r->billed_gpu_seconds, 0);
  EXPECT_GT(r->unbilled_gpu_seconds, 0);
  EXPECT_NEAR(r->cost_billed, r->billed_gpu_seconds / 3600 * 2.0, 1e-6);
  EXPECT_LE(r->run_to_take.p50, r->run_to_take.p90);
  EXPECT_LE(r->run_to_take.p90, r->run_to_take.p99);
  for (const DiskSample& d : r->disk) EXPECT_LE(d.fullest_host_fraction, 1.0);
}

TEST(SimulatorTest, TheEvictionPolicyChangesTheOutcome) {
  auto lru = Simulate(Load());
  auto gdsf = Simulate(Load({"policies={\"eviction\":\"gdsf\"}"}));
  auto s3 = Simulate(Load({"policies={\"eviction\":\"s3fifo\"}"}));
  ASSERT_TRUE(lru.ok() && gdsf.ok() && s3.ok());
  EXPECT_NE(lru->fetched_bytes, gdsf->fetched_bytes);
  EXPECT_NE(lru->fetched_bytes, s3->fetched_bytes);
}

TEST(SimulatorTest, WithoutPeersEveryFetchIsFromTheOrigin) {
  auto r = Simulate(Load({"policies={\"peers\":false}"}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->peer_bytes, 0u);
  EXPECT_GT(r->origin_bytes, 0u);
}

TEST(SimulatorTest, CachedReplicasArePrefetchedAndTurnMissesIntoHits) {
  auto none = Simulate(Load());
  auto two = Simulate(Load({"policies={\"replicas\":2}"}));
  ASSERT_TRUE(none.ok() && two.ok());
  EXPECT_EQ(none->prefetch_bytes, 0u);
  EXPECT_GT(two->prefetch_bytes, 0u);
  EXPECT_GT(two->cold_hits, none->cold_hits);
}

TEST(SimulatorTest, TheShippedAzureFormatTraceDrivesTheEndpoints) {
  auto sc = Load({"workload={\"type\":\"azure\",\"invocations\":\"examples/sim/"
                  "azure-invocations.csv\",\"durations\":\"examples/sim/azure-durations.csv\"}"});
  auto r = Simulate(sc);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->jobs, 100u);
  EXPECT_GT(r->jobs_done, 0u);
}

TEST(SimulatorTest, AJobListIsReplayedAtItsTimes) {
  auto sc = LoadScenario(std::string(MC_SOURCE_DIR) + "/examples/sim/validation.json");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  auto r = Simulate(*sc);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->jobs, sc->workload.jobs.size());
  EXPECT_EQ(r->jobs_done, r->jobs);
  // Twelve worker starts, one per endpoint in each group of submissions (workers_max 1, gaps
  // past the idle timeout); the first use of each of the four models downloads it.
  EXPECT_EQ(r->cold_starts, 12u);
  EXPECT_EQ(r->cold_misses, 4u);
  EXPECT_EQ(r->origin_bytes, 4u * (4u << 20));
}

TEST(SimulatorTest, AMissingTraceFileIsAClearError) {
  auto sc = Load({"workload={\"type\":\"azure\",\"invocations\":\"no/such.csv\"}"});
  auto r = Simulate(sc);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("workload.invocations: cannot read"));
}

}  // namespace
}  // namespace mc::sim
