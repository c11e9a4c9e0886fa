// End-to-end tests of the modelcache binary: real processes, real files, temp dirs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mc/testing/modelcache_process.h"

namespace {

namespace fs = std::filesystem;
using mc::testing::ReadAll;
using mc::testing::RunResult;
using mc::testing::SpawnMc;

// Runs modelcache with `args`; stdout and stderr go to temp files (no pipe deadlocks).
RunResult RunMc(const std::vector<std::string>& args) {
  char out_name[] = "/tmp/mc-cli-out.XXXXXX";
  char err_name[] = "/tmp/mc-cli-err.XXXXXX";
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

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mc-cli-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    cache_ = (dir_ / "hub").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a small fixture and imports it as demo/tiny; returns the import JSON.
  nlohmann::json ImportFixture(const std::string& repo = "demo/tiny") {
    auto fixture = RunMc({"fixture", (dir_ / "model").string(), "--size", "2MiB", "--shards", "2"});
    EXPECT_EQ(fixture.exit_code, 0) << fixture.err;
    auto imported = RunMc(
        {"import", (dir_ / "model").string(), "--repo", repo, "--cache-dir", cache_, "--json"});
    EXPECT_EQ(imported.exit_code, 0) << imported.err;
    return nlohmann::json::parse(imported.out, nullptr, false);
  }

  fs::path dir_;
  std::string cache_;
};

TEST_F(CliTest, HelpListsEveryCommand) {
  auto r = RunMc({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"ls", "path", "verify", "rm", "link", "import", "fixture", "serve",
                          "pull", "agent", "pin", "unpin", "pins"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
  }
}

TEST_F(CliTest, EveryCommandHasHelp) {
  for (const char* cmd : {"ls", "path", "verify", "rm", "link", "import", "fixture", "serve",
                          "pull", "agent", "pin", "unpin", "pins"}) {
    auto r = RunMc({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << cmd << r.out;
    if (std::string(cmd) != "fixture") {
      EXPECT_NE(r.out.find("--cache-dir"), std::string::npos) << cmd << r.out;
    }
  }
}

TEST_F(CliTest, UnknownCommandIsAUsageError) {
  auto r = RunMc({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--help"), std::string::npos);
}

TEST_F(CliTest, UnknownCommandWithHelpIsAUsageErrorThatListsTheCommands) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"frobnicate", "--help"}, {"--help", "frobnicate"},
        {"--log-level", "info", "frobnicate", "-h"}, {"frobnicate"}}) {
    auto r = RunMc(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << r.out;
    EXPECT_EQ(r.out, "") << "the top help was printed";
    EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("The commands are: ls, path,"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("pin, unpin, pins"), std::string::npos) << r.err;
  }
}

TEST_F(CliTest, UpHelpExplainsTheDemoUpstreamRate) {
  auto r = RunMc({"up", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--demo-upstream-rate RATE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("For demos and tests"), std::string::npos) << r.out;
}

// A bad --demo-upstream-rate is a usage error before anything starts or is written.
TEST_F(CliTest, UpRejectsABadDemoUpstreamRateBeforeStarting) {
  const std::string data = (dir_ / "up").string();
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--demo-upstream-rate", "1MB"}, "--demo-upstream-rate needs --demo"},
           {{"--demo", "--demo-upstream-rate", "0"}, "more than 0 bytes a second"},
           {{"--demo", "--demo-upstream-rate", "fast"}, "invalid size 'fast'"},
           {{"--demo", "--demo-upstream-rate", "-1MB/s"}, "--demo-upstream-rate"}}) {
    std::vector<std::string> args = {"up", "--data-dir", data, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = RunMc(args);
    EXPECT_EQ(r.exit_code, 2) << c.message << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(data)) << c.message;
  }
}

// serve's rate caps: explained in --help, and a bad one is a usage error before anything listens.
TEST_F(CliTest, ServeRejectsABadRateBeforeListening) {
  auto help = RunMc({"serve", "--help"});
  EXPECT_NE(help.out.find("--max-rate RATE"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--max-rate-per-answer RATE"), std::string::npos) << help.out;
  for (const auto& [flag, value, message] : std::vector<std::array<std::string, 3>>{
           {"--max-rate", "0", "more than 0 bytes a second"},
           {"--max-rate", "fast", "invalid size 'fast'"},
           {"--max-rate-per-answer", "-5MB/s", "--max-rate-per-answer"}}) {
    auto r = RunMc({"serve", "--cache-dir", cache_, "--listen", "127.0.0.1:0", flag, value});
    EXPECT_EQ(r.exit_code, 2) << flag << " " << value << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;
  }
}

TEST_F(CliTest, ImportThenLsShowsTheRepoWithItsSize) {
  auto imported = ImportFixture();
  ASSERT_TRUE(imported.is_object());
  auto ls = RunMc({"ls", "--cache-dir", cache_, "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  auto j = nlohmann::json::parse(ls.out, nullptr, false);
  ASSERT_EQ(j["repos"].size(), 1u);
  EXPECT_EQ(j["repos"][0]["repo"], "demo/tiny");
  EXPECT_EQ(j["repos"][0]["size_on_disk"], imported["bytes"]);
  EXPECT_EQ(j["repos"][0]["refs"][0], "main");
  EXPECT_TRUE(j["warnings"].empty());
  auto table = RunMc({"ls", "--cache-dir", cache_});
  EXPECT_NE(table.out.find("demo/tiny"), std::string::npos);
}

TEST_F(CliTest, ImportIsDeterministic) {
  auto first = ImportFixture();
  auto again = RunMc({"import", (dir_ / "model").string(), "--repo", "demo/tiny", "--cache-dir",
                      cache_, "--json"});
  EXPECT_EQ(nlohmann::json::parse(again.out, nullptr, false)["commit"], first["commit"]);
}

TEST_F(CliTest, PathPrintsSnapshotAndFile) {
  auto imported = ImportFixture();
  auto r = RunMc({"path", "demo/tiny@main", "config.json", "--cache-dir", cache_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string p = r.out.substr(0, r.out.size() - 1);
  EXPECT_TRUE(fs::exists(p));
  EXPECT_NE(p.find(imported["commit"].get<std::string>()), std::string::npos);
}

TEST_F(CliTest, PathOfUncachedModelExitsNotFound) {
  ImportFixture();
  auto r = RunMc({"path", "other/model", "--cache-dir", cache_});
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST_F(CliTest, VerifyPassesThenDetectsCorruption) {
  auto imported = ImportFixture();
  EXPECT_EQ(RunMc({"verify", "--cache-dir", cache_}).exit_code, 0);
  std::string blob;
  for (const auto& f : imported["files"]) {
    if (f["path"] == "config.json") blob = f["etag"];
  }
  fs::path blob_path = fs::path(cache_) / "models--demo--tiny" / "blobs" / blob;
  std::ofstream(blob_path, std::ios::app) << "tampered";
  auto r = RunMc({"verify", "demo/tiny", "--cache-dir", cache_});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
}

TEST_F(CliTest, RmRemovesTheRepo) {
  ImportFixture();
  auto r = RunMc({"rm", "demo/tiny", "--cache-dir", cache_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(fs::path(cache_) / "models--demo--tiny"));
}

TEST_F(CliTest, HostileRepoIdIsRejectedBeforeWriting) {
  RunMc({"fixture", (dir_ / "model").string(), "--size", "1MiB"});
  for (const char* repo : {"a/../b", "--x", "../../etc", "a/b/c"}) {
    auto r = RunMc({"import", (dir_ / "model").string(), "--repo", repo, "--cache-dir", cache_});
    EXPECT_EQ(r.exit_code, 2) << repo << r.err;
    EXPECT_NE(r.err.find("invalid repo id"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir_ / "etc"));
  EXPECT_FALSE(fs::exists(dir_ / "b"));
}

TEST_F(CliTest, LinkPutsFilesIntoAnAppFolder) {
  ImportFixture();
  fs::path app = dir_ / "ComfyUI" / "models" / "checkpoints";
  fs::create_directories(app);
  auto r =
      RunMc({"link", "demo/tiny", app.string(), "--file", "config.json", "--cache-dir", cache_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(app / "config.json"));
  EXPECT_TRUE(fs::exists(app / "config.json"));
}

TEST_F(CliTest, ServePrintsItsUrlAndStopsOnSigterm) {
  ImportFixture();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);  // the child keeps only the write end, as its stdout
  pid_t pid =
      SpawnMc({"serve", "--cache-dir", cache_, "--listen", "127.0.0.1:0"}, nullptr, fds[1], -1);
  ASSERT_GT(pid, 0);
  close(fds[1]);
  std::string line;
  char c;
  while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
  close(fds[0]);
  EXPECT_EQ(line.rfind("listening on http://127.0.0.1:", 0), 0u) << line;
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// SIGKILL of `modelcache import` while a blob is being written: the cache stays consistent (no
// scan warning, every visible blob verifies) and the next import completes.
TEST_F(CliTest, KilledImportLeavesTheCacheConsistent) {
  ASSERT_EQ(RunMc({"fixture", (dir_ / "model").string(), "--size", "256MiB"}).exit_code, 0);
  pid_t pid =
      SpawnMc({"import", (dir_ / "model").string(), "--repo", "demo/big", "--cache-dir", cache_},
              nullptr, -1, -1);
  ASSERT_GT(pid, 0);
  // Kill as soon as a temp blob holds data: the import is mid-file.
  fs::path blobs = fs::path(cache_) / "models--demo--big" / "blobs";
  bool mid_file = false;
  for (int i = 0; i < 2'000'000 && !mid_file; ++i) {
    std::error_code ec;
    for (fs::directory_iterator it(blobs, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".incomplete" && fs::file_size(it->path(), ec) > 0) {
        mid_file = true;
      }
    }
    if (!mid_file) sched_yield();
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(mid_file) << "the import never started writing a blob";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the import finished before it could be killed";

  auto ls = RunMc({"ls", "--cache-dir", cache_, "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  auto j = nlohmann::json::parse(ls.out, nullptr, false);
  EXPECT_TRUE(j["warnings"].empty()) << ls.out;
  for (const auto& repo : j["repos"]) EXPECT_TRUE(repo["refs"].empty()) << "ref before complete";
  EXPECT_EQ(RunMc({"verify", "--cache-dir", cache_}).exit_code, 0);

  auto again =
      RunMc({"import", (dir_ / "model").string(), "--repo", "demo/big", "--cache-dir", cache_});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(RunMc({"verify", "demo/big", "--cache-dir", cache_}).exit_code, 0);
}

}  // namespace
