#include "mc/sim/scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace mc::sim {
namespace {

using ::testing::HasSubstr;

// A small valid scenario; tests break one field each.
std::string Valid() {
  return R"({
    "seed": 7,
    "duration_seconds": 600,
    "hosts": [{"name": "a", "count": 2, "gpu_type": "A100", "gpus": 4,
               "cache_capacity": "100GB", "download_bandwidth": "1GB/s"}],
    "catalogue": {"models": [{"id": "org/m", "bytes": "12GB", "revisions": 2}]},
    "endpoints": {"list": [{"id": "e", "model": "org/m", "gpu_type": "A100",
                            "execution": {"distribution": "fixed", "seconds": 2}}]},
    "workload": {"type": "zipf", "jobs_per_second": 1}
  })";
}

Status ParseError(const std::string& json) {
  auto sc = ParseScenario(json, ".");
  EXPECT_FALSE(sc.ok()) << "parsed: " << json;
  return sc.ok() ? Status::Ok() : sc.status();
}

std::string With(const std::string& override_text) {
  auto text = ApplyOverrides(Valid(), {override_text});
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return *text;
}

TEST(ScenarioTest, AValidScenarioParsesWithItsRevisionsSharingBlobs) {
  auto sc = ParseScenario(Valid(), ".");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  ASSERT_EQ(sc->catalogue.revisions.size(), 2u);
  const Revision& r0 = sc->catalogue.revisions[0];
  const Revision& r1 = sc->catalogue.revisions[1];
  EXPECT_EQ(r0.bytes, 12'000'000'000u);
  EXPECT_EQ(r1.bytes, r0.bytes);
  size_t shared = 0;
  for (uint32_t b : r1.blobs) shared += std::count(r0.blobs.begin(), r0.blobs.end(), b);
  EXPECT_GT(shared, 0u);
  EXPECT_LT(shared, r0.blobs.size());
  EXPECT_EQ(sc->hosts[0].cache_capacity, 100'000'000'000u);
  EXPECT_DOUBLE_EQ(sc->hosts[0].download_bandwidth, 1e9);
}

TEST(ScenarioTest, AnUnknownFieldIsRefusedByItsPath) {
  Status s = ParseError(With("hosts[0].cache_capcity=\"1TB\""));
  EXPECT_THAT(s.message(), HasSubstr("hosts[0].cache_capcity: unknown field"));
}

TEST(ScenarioTest, AnUnknownTopLevelFieldIsRefused) {
  Status s = ParseError(With("workers=3"));
  EXPECT_THAT(s.message(), HasSubstr("workers: unknown field"));
}

TEST(ScenarioTest, ANegativeSizeIsRefusedByItsPath) {
  EXPECT_THAT(ParseError(With("catalogue.models[0].bytes=-5")).message(),
              HasSubstr("catalogue.models[0].bytes: must be a size >= 0"));
  EXPECT_THAT(ParseError(With("hosts[0].cache_capacity=\"-1GB\"")).message(),
              HasSubstr("hosts[0].cache_capacity"));
}

TEST(ScenarioTest, AModelLargerThanEveryDiskIsRefused) {
  Status s = ParseError(With("catalogue.models[0].bytes=\"150GB\""));
  EXPECT_THAT(s.message(), HasSubstr("catalogue.models[0].bytes"));
  EXPECT_THAT(s.message(), HasSubstr("larger than every host's cache"));
}

TEST(ScenarioTest, AnEndpointOfAnUnknownModelIsRefused) {
  Status s = ParseError(With("endpoints.list[0].model=\"org/other\""));
  EXPECT_THAT(s.message(), HasSubstr("endpoints.list[0].model: \"org/other\" is not in the catalogue"));
}

TEST(ScenarioTest, AnEndpointNeedingGpusNoHostHasIsRefused) {
  Status s = ParseError(With("endpoints.list[0].gpus=8"));
  EXPECT_THAT(s.message(), HasSubstr("no host group has them"));
}

TEST(ScenarioTest, AnUnknownPolicyIsRefused) {
  Status s = ParseError(With("policies={\"eviction\":\"arc\"}"));
  EXPECT_THAT(s.message(), HasSubstr("policies.eviction: must be one of lru, gdsf, s3fifo"));
}

TEST(ScenarioTest, WatermarksOutOfOrderAreRefused) {
  Status s = ParseError(With("hosts[0].low_watermark=0.95"));
  EXPECT_THAT(s.message(), HasSubstr("hosts[0].low_watermark"));
}

TEST(ScenarioTest, TheGeneratorMakesHubLikeSizesDeterministically) {
  auto text = ApplyOverrides(Valid(), {"catalogue={\"generate\":{\"models\":400,\"revisions\":2}}",
                                       "hosts[0].cache_capacity=\"2TB\"",
                                       "endpoints={\"generate\":{\"gpu_type\":\"A100\"}}"});
  ASSERT_TRUE(text.ok());
  auto a = ParseScenario(*text, ".");
  auto b = ParseScenario(*text, ".");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->endpoints.size(), 800u);
  size_t small = 0, tail = 0;
  uint64_t largest = 0;
  for (const Model& m : a->catalogue.models) {
    const uint64_t bytes = a->catalogue.revisions[m.revisions[0]].bytes;
    if (bytes >= 1'000'000'000 && bytes <= 20'000'000'000) ++small;
    if (bytes > 20'000'000'000) ++tail;
    largest = std::max(largest, bytes);
  }
  EXPECT_GT(small, 300u);  // mostly 1–20 GB
  EXPECT_GT(tail, 10u);    // a tail
  EXPECT_LE(largest, 150'000'000'000u);
  for (size_t i = 0; i < a->endpoints.size(); ++i) {
    EXPECT_EQ(a->endpoints[i].revision, b->endpoints[i].revision);
  }
}

TEST(ScenarioTest, CacheFractionIsAShareOfTheCatalogue) {
  auto sc = ParseScenario(With("hosts[0]={\"cache_fraction\":2.5}"), ".");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->hosts[0].cache_capacity,
            static_cast<uint64_t>(2.5 * double(sc->catalogue.distinct_bytes)));
}

TEST(ScenarioTest, AJobListNamingAnUnknownEndpointIsRefusedByItsPath) {
  const Status st = ParseError(With(
      R"(workload={"type": "jobs", "jobs": [{"at": 0, "endpoint": "e"}, {"at": 1, "endpoint": "x"}]})"));
  EXPECT_THAT(st.message(), HasSubstr("workload.jobs[1].endpoint: no endpoint 'x'"));
}

TEST(ScenarioTest, AJobListOutOfTimeOrderIsRefused) {
  const Status st = ParseError(With(
      R"(workload={"type": "jobs", "jobs": [{"at": 5, "endpoint": "e"}, {"at": 1, "endpoint": "e"}]})"));
  EXPECT_THAT(st.message(), HasSubstr("workload.jobs[1].at"));
}

TEST(ScenarioTest, InvalidJsonIsRefused) {
  EXPECT_THAT(ParseError("{\"seed\": ").message(), HasSubstr("not valid JSON"));
}

}  // namespace
}  // namespace mc::sim
