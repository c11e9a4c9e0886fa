// `modelcache sim`, `sim compare`, and the policy flags of `agent` and `controller`, through the
// real binary: real files in a temp dir.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mc/testing/modelcache_process.h"

namespace {

namespace fs = std::filesystem;
using mc::testing::ReadAll;
using mc::testing::RunResult;
using mc::testing::SpawnMc;

RunResult RunMc(const std::vector<std::string>& args) {
  char out_name[] = "/tmp/mc-sim-out.XXXXXX";
  char err_name[] = "/tmp/mc-sim-err.XXXXXX";
  int out_fd = mkstemp(out_name), err_fd = mkstemp(err_name);
  RunResult r;
  pid_t pid = SpawnMc(args, nullptr, out_fd, err_fd);
  if (pid > 0) {
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  lseek(out_fd, 0, SEEK_SET);
  lseek(err_fd, 0, SEEK_SET);
  r.out = ReadAll(out_fd);
  r.err = ReadAll(err_fd);
  close(out_fd);
  close(err_fd);
  unlink(out_name);
  unlink(err_name);
  return r;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class SimCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mc-sim-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    scenario_ = dir_ / "s.json";
    std::ofstream(scenario_) << R"({
      "seed": 5, "duration_hours": 1,
      "hosts": [{"name": "h", "count": 10, "gpus": 4, "cache_fraction": 0.2}],
      "catalogue": {"generate": {"models": 30, "tail_max_bytes": "30GB"}},
      "endpoints": {"generate": {"gpu_type": "A100", "idle_timeout_seconds": 20}},
      "workload": {"type": "zipf", "jobs_per_second": 3}
    })";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, scenario_;
};

TEST_F(SimCliTest, ARunWritesTheSameFilesTwice) {
  RunResult a = RunMc({"sim", scenario_.string(), "--out", (dir_ / "a").string()});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("cold starts"), std::string::npos) << a.out;
  RunResult b = RunMc({"sim", scenario_.string(), "--out", (dir_ / "b").string()});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  for (const char* f : {"result.json", "result.csv", "disk.csv", "disk.svg"}) {
    const std::string first = Slurp(dir_ / "a" / f);
    EXPECT_FALSE(first.empty()) << f;
    EXPECT_EQ(first, Slurp(dir_ / "b" / f)) << f;
  }
}

TEST_F(SimCliTest, ABadScenarioIsAUsageErrorNamingTheFieldAndNothingIsWritten) {
  RunResult r = RunMc({"sim", scenario_.string(), "--set", "hosts[0].cache_fracton=0.2", "--out",
                       (dir_ / "out").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("hosts[0].cache_fracton: unknown field"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(SimCliTest, CompareRunsTheGridAndPrintsOneTable) {
  RunResult r = RunMc({"sim", "compare", scenario_.string(), "--eviction", "lru,gdsf",
                       "--cache-fraction", "0.2,0.3", "--out", (dir_ / "c").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t rows = 0;
  for (size_t p = r.out.find("\n"); p != std::string::npos; p = r.out.find("\n", p + 1)) ++rows;
  EXPECT_EQ(rows, 5u) << r.out;  // header + 2 × 2
  EXPECT_NE(r.out.find("gdsf"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir_ / "c" / "compare.csv"));
  EXPECT_TRUE(fs::exists(dir_ / "c" / "byte_hit_ratio.svg"));
}

TEST_F(SimCliTest, AnUnknownEvictionPolicyIsRefusedByTheAgent) {
  RunResult r = RunMc({"agent", "--cache-dir", (dir_ / "cache").string(), "--state-dir",
                       (dir_ / "state").string(), "--capacity", "1GB", "--eviction", "arc"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--eviction"), std::string::npos) << r.err;
}

TEST_F(SimCliTest, AnUnknownPlacementPolicyIsRefusedByTheController) {
  RunResult r = RunMc({"controller", "--db", "sqlite:" + (dir_ / "c.db").string(), "--placement",
                       "nearest"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--placement"), std::string::npos) << r.err;
}

}  // namespace
