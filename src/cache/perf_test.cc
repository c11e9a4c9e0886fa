// Manual performance check (disabled by default; run with --gtest_also_run_disabled_tests):
// writes a 2 GiB fixture, imports it and verifies it, printing the time of each step.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "cache/test_util.h"
#include "mc/cache/cache_scan.h"
#include "mc/cache/importer.h"
#include "mc/testing/model_fixture.h"

namespace mc::cache {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(PerfTest, DISABLED_TwoGibFixtureImportAndVerify) {
  auto tmp = test::NewTempDir();
  auto t = std::chrono::steady_clock::now();
  ASSERT_TRUE(testing::WriteModelFixture(tmp / "src", {.total_weight_bytes = 2ull << 30,
                                                        .shards = 2}).ok());
  std::printf("fixture: %.2f s\n", SecondsSince(t));
  auto store = test::OpenStore(tmp / "cache");
  t = std::chrono::steady_clock::now();
  auto r = ImportFolder(*store, tmp / "src", test::Repo(), test::R("main"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("import: %.2f s (%.0f MB/s)\n", SecondsSince(t), r->bytes / 1e6 / SecondsSince(t));
  t = std::chrono::steady_clock::now();
  auto v = VerifyCache(*store, std::nullopt, std::nullopt);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->failed, 0);
  std::printf("verify: %.2f s (%.0f MB/s)\n", SecondsSince(t),
              v->bytes_hashed / 1e6 / SecondsSince(t));
  std::filesystem::remove_all(tmp);
}

}  // namespace
}  // namespace mc::cache
