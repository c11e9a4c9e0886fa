// End-to-end tests of `modelcache pull`: the real binary, spawned against an in-process
// MirrorServer on loopback (port 0) over an upstream cache of generated models, into temp dirs.
// The children get a hermetic environment: no HF_* or MODELCACHE_* variable of the caller, and
// HF_HOME inside the test's temp dir (so no real token file is ever read).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/testing/model_fixture.h"
#include "mc/testing/modelcache_process.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace cache = mc::cache;
namespace mirror = mc::mirror;
using namespace std::chrono_literals;

using mc::testing::McBinary;
using mc::testing::ReadAll;
using mc::testing::RunResult;
using mc::testing::SpawnMc;
using mc::testing::WaitExit;
constexpr char kToken[] = "hf_PullCliTestGatedToken0123456789abcd";
constexpr uint64_t kCell = 4ull << 20;  // FetchTuning::cell_size
constexpr uint64_t kBigBytes = 40ull << 20;

// ---- the upstream: a cache with generated repos, built once per test process ----

struct Upstream {
  fs::path root;  // temp dir: cache/, src/, access.json
  fs::path cache_dir;
  std::map<std::string, cache::ImportResult> repos;  // repo id → what was imported
  std::unique_ptr<mirror::MirrorServer> server;      // no faults, access config applied

  ~Upstream() {
    if (server) server->Stop();
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  const cache::ImportResult& Repo(const std::string& id) const { return repos.at(id); }
  std::string url() const { return server->base_url(); }
  fs::path Blob(const std::string& repo, const std::string& etag) const {
    return cache_dir /
           ("models--" + repo.substr(0, repo.find('/')) + "--" + repo.substr(repo.find('/') + 1)) /
           "blobs" / etag;
  }
};

template <typename T>
T Must(mc::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) {
    ADD_FAILURE() << what << ": " << value.status().ToString();
    std::abort();
  }
  return std::move(*value);
}

void WriteFile(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

std::unique_ptr<Upstream> BuildUpstream() {
  auto up = std::make_unique<Upstream>();
  char tmpl[] = "/tmp/mc-pull-upstream.XXXXXX";
  up->root = mkdtemp(tmpl);
  up->cache_dir = up->root / "cache";
  const fs::path src = up->root / "src";
  mc::testing::ModelFixtureOptions model;
  model.total_weight_bytes = 6 << 20;
  model.shards = 2;
  Must(mc::testing::WriteModelFixture(src / "model", model), "fixture model");
  mc::testing::ModelFixtureOptions big;
  big.total_weight_bytes = kBigBytes;
  big.seed = 7;
  Must(mc::testing::WriteModelFixture(src / "big", big), "fixture big");
  WriteFile(src / "gated" / "config.json", "{\"gated\": true}\n");
  WriteFile(src / "gated" / "weights.bin", std::string(4096, '\1'));
  auto store = Must(cache::CacheStore::Open({up->cache_dir, std::nullopt, true}), "open cache");
  for (const char* name : {"model", "big", "gated"}) {
    std::string id = std::string("demo/") + name;
    up->repos.emplace(id, Must(cache::ImportFolder(*store, src / name, *mc::RepoId::Parse(id),
                                                   *mc::Revision::Parse("main")),
                               "import " + id));
  }
  WriteFile(up->root / "access.json", std::string(R"({"repos": {"demo/gated": {"gated": "manual",
    "tokens": [")") + kToken + R"("]}}})");
  mirror::MirrorOptions options;
  options.cache_dir = up->cache_dir;
  options.access_config = up->root / "access.json";
  up->server = Must(mirror::MirrorServer::Create(options), "create mirror");
  mc::Status started = up->server->Start();
  EXPECT_TRUE(started.ok()) << started.ToString();
  return up;
}

Upstream& GetUpstream() {
  static std::unique_ptr<Upstream> upstream = BuildUpstream();
  return *upstream;
}

// ---- running the binary ----

// The caller's environment without anything that would change what pull does, plus `extra`.
std::vector<std::string> HermeticEnv(const fs::path& hf_home,
                                     const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string var = *e;
    std::string name = var.substr(0, var.find('='));
    if (name.rfind("HF_", 0) == 0 || name.rfind("HUGGING_FACE_", 0) == 0 ||
        name.rfind("MODELCACHE_", 0) == 0 || name == "XDG_STATE_HOME" ||
        name == "TRANSFORMERS_OFFLINE" || name == "HUGGINGFACE_HUB_CACHE") {
      continue;
    }
    env.push_back(var);
  }
  env.push_back("HF_HOME=" + hf_home.string());
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// A child whose stdout and stderr go to temp files.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    char out_name[] = "/tmp/mc-pull-out.XXXXXX";
    char err_name[] = "/tmp/mc-pull-err.XXXXXX";
    out_fd_ = mkstemp(out_name);
    err_fd_ = mkstemp(err_name);
    unlink(out_name);
    unlink(err_name);
    pid_ = SpawnMc(args, &env, out_fd_, err_fd_);
    EXPECT_GT(pid_, 0) << "cannot start " << McBinary();
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_fd_);
    close(err_fd_);
  }
  pid_t pid() const { return pid_; }

  // Polls `condition` until it holds (true) or the child exits or `timeout` passes (false).
  bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool ok = false;
    while (!(ok = condition()) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{pidfd, POLLIN, 0};
      if (poll(&p, 1, 5) > 0) break;  // the child exited
    }
    close(pidfd);
    return ok || condition();
  }

  RunResult Finish(std::chrono::milliseconds timeout = 120s) {
    RunResult r;
    r.exit_code = WaitExit(pid_, timeout);
    exited_ = true;
    lseek(out_fd_, 0, SEEK_SET);
    lseek(err_fd_, 0, SEEK_SET);
    r.out = ReadAll(out_fd_);
    r.err = ReadAll(err_fd_);
    return r;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool exited_ = false;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Bytes of `partial` that already hold the bytes of `source` at the same offset, among the first
// `limit` bytes, counted in whole 64 KiB blocks (a block still being written counts as missing;
// sparse holes read as zero and the source's random tensor bytes are never a zero block).
uint64_t WrittenBytes(const fs::path& partial, const fs::path& source, uint64_t limit = ~0ull) {
  std::ifstream a(partial, std::ios::binary), b(source, std::ios::binary);
  std::vector<char> x(64 << 10), y(64 << 10);
  uint64_t written = 0;
  for (uint64_t offset = 0; offset < limit && (b.read(y.data(), y.size()) || b.gcount() > 0);
       offset += y.size()) {
    auto n = static_cast<size_t>(b.gcount());
    a.read(x.data(), n);
    bool zero = std::all_of(y.begin(), y.begin() + n, [](char c) { return c == 0; });
    if (static_cast<size_t>(a.gcount()) == n && !zero &&
        std::equal(y.begin(), y.begin() + n, x.begin())) {
      written += n;
    }
  }
  return written;
}

class PullCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    up_ = &GetUpstream();
    char tmpl[] = "/tmp/mc-pull-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    cache_ = dir_ / "hub";
    state_ = dir_ / "state";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> Env(const std::map<std::string, std::string>& extra = {}) const {
    return HermeticEnv(dir_ / "hf-home", extra);
  }
  // `modelcache pull <args> --endpoint <url> --cache-dir ... --state-dir ... --connections N`.
  std::vector<std::string> PullArgs(std::vector<std::string> args, const std::string& endpoint = "",
                                    int connections = 2) const {
    std::vector<std::string> full = {"--log-level", "debug", "pull"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"--endpoint", endpoint.empty() ? up_->url() : endpoint, "--cache-dir",
                             cache_.string(), "--state-dir", state_.string(), "--connections",
                             std::to_string(connections)});
    return full;
  }
  RunResult Pull(std::vector<std::string> args,
                 const std::map<std::string, std::string>& env = {}) const {
    return Child(PullArgs(std::move(args)), Env(env)).Finish();
  }
  RunResult Mc(const std::vector<std::string>& args) const { return Child(args, Env()).Finish(); }

  fs::path RepoDir(const std::string& name) const { return cache_ / ("models--demo--" + name); }
  fs::path Snapshot(const std::string& repo) const {
    return RepoDir(repo.substr(repo.find('/') + 1)) / "snapshots" / up_->Repo(repo).commit.str();
  }
  // Relative paths of the files in a snapshot.
  static std::set<std::string> SnapshotFiles(const fs::path& snapshot) {
    std::set<std::string> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(snapshot, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (!it->is_directory()) files.insert(it->path().lexically_relative(snapshot).string());
    }
    return files;
  }
  // Every pulled file has the upstream's bytes.
  void ExpectSameBytes(const std::string& repo, const std::set<std::string>& only = {}) const {
    for (const auto& f : up_->Repo(repo).files) {
      if (!only.empty() && !only.count(f.path)) continue;
      EXPECT_EQ(ReadFile(Snapshot(repo) / f.path), ReadFile(up_->Blob(repo, f.etag))) << f.path;
    }
  }
  // Regular files and symlinks under `dir`.
  static std::vector<std::string> FilesUnder(const fs::path& dir) {
    std::vector<std::string> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_directory() || it->is_symlink()) files.push_back(it->path().string());
    }
    return files;
  }

  Upstream* up_ = nullptr;
  fs::path dir_, cache_, state_;
};

TEST_F(PullCliTest, FullPullPrintsTheSnapshotPathAndVerifies) {
  auto r = Pull({"demo/model"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Snapshot("demo/model").string() + "\n");
  std::set<std::string> all;
  for (const auto& f : up_->Repo("demo/model").files) all.insert(f.path);
  EXPECT_EQ(SnapshotFiles(Snapshot("demo/model")), all);
  ExpectSameBytes("demo/model");
  EXPECT_EQ(ReadFile(RepoDir("model") / "refs" / "main"), up_->Repo("demo/model").commit.str());
  auto verify = Mc({"verify", "--cache-dir", cache_.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  // Not a terminal: plain lines, a summary, no ANSI escapes.
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fetched  config.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Pulled demo/model"), std::string::npos) << r.err;
}

TEST_F(PullCliTest, RepullMakesNoDataRequest) {
  ASSERT_EQ(Pull({"demo/model"}).exit_code, 0);
  uint64_t gets = up_->server->stats().resolve_get;
  auto again = Pull({"demo/model"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, Snapshot("demo/model").string() + "\n");
  EXPECT_EQ(up_->server->stats().resolve_get, gets);
}

TEST_F(PullCliTest, TwoProcessesPullingAtOnceBothSucceedAndFetchEachBlobOnce) {
  // --connections 1: no range is ever split, so the server's byte count is exact.
  const uint64_t served = up_->server->stats().file_bytes_served;
  Child a(PullArgs({"demo/model"}, "", 1), Env());
  Child b(PullArgs({"demo/model"}, "", 1), Env());
  auto ra = a.Finish();
  auto rb = b.Finish();
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_EQ(ra.out, rb.out);
  std::set<std::string> etags;
  uint64_t blob_bytes = 0;
  for (const auto& f : up_->Repo("demo/model").files) {
    if (etags.insert(f.etag).second) blob_bytes += f.size;
  }
  EXPECT_EQ(up_->server->stats().file_bytes_served - served, blob_bytes);
  ExpectSameBytes("demo/model");
}

TEST_F(PullCliTest, IncludeAndExcludeSelectTheFiles) {
  auto r = Pull({"demo/model", "--include", "*.json", "--exclude", "original/*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> expected;
  for (const auto& f : up_->Repo("demo/model").files) {
    if (f.path.ends_with(".json") && f.path.rfind("original/", 0) != 0) expected.insert(f.path);
  }
  ASSERT_GE(expected.size(), 3u);
  EXPECT_EQ(SnapshotFiles(Snapshot("demo/model")), expected);
  ExpectSameBytes("demo/model", expected);
}

TEST_F(PullCliTest, RepeatedIncludesAddUp) {
  auto r = Pull({"--include", "config.json", "--include", "*.safetensors", "demo/model"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> expected = {"config.json"};
  for (const auto& f : up_->Repo("demo/model").files) {
    if (f.path.ends_with(".safetensors")) expected.insert(f.path);
  }
  EXPECT_EQ(SnapshotFiles(Snapshot("demo/model")), expected);
}

TEST_F(PullCliTest, ResolveUrlPullsExactlyThatFile) {
  auto r = Pull({"https://huggingface.co/demo/model/resolve/main/config.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(SnapshotFiles(Snapshot("demo/model")), std::set<std::string>{"config.json"});
  ExpectSameBytes("demo/model", {"config.json"});
}

TEST_F(PullCliTest, GatedRepoNeedsAToken) {
  fs::path token_file = dir_ / "token.txt";
  WriteFile(token_file, std::string("  ") + kToken + " \n");
  std::vector<RunResult> runs;
  runs.push_back(Pull({"demo/gated"}));
  EXPECT_EQ(runs.back().exit_code, 4) << runs.back().err;
  EXPECT_NE(runs.back().err.find("HF_TOKEN or --token-file"), std::string::npos) << runs.back().err;
  EXPECT_FALSE(fs::exists(RepoDir("gated") / "refs" / "main"));

  runs.push_back(Pull({"demo/gated"}, {{"HF_TOKEN", "hf_wrongwrongwrongwrongwrong00000"}}));
  EXPECT_EQ(runs.back().exit_code, 4) << runs.back().err;

  runs.push_back(Pull({"demo/gated"}, {{"HF_TOKEN", kToken}}));
  EXPECT_EQ(runs.back().exit_code, 0) << runs.back().err;
  ExpectSameBytes("demo/gated");

  fs::remove_all(cache_);
  runs.push_back(Pull({"demo/gated", "--token-file", token_file.string()}));
  EXPECT_EQ(runs.back().exit_code, 0) << runs.back().err;
  ExpectSameBytes("demo/gated");

  fs::remove_all(cache_);
  WriteFile(dir_ / "hf-home" / "token", kToken);  // where 'hf auth login' puts it
  runs.push_back(Pull({"demo/gated"}));
  EXPECT_EQ(runs.back().exit_code, 0) << runs.back().err;

  fs::remove_all(cache_);
  runs.push_back(Pull({"demo/gated", "--json"}, {{"HF_TOKEN", kToken}}));
  EXPECT_EQ(runs.back().exit_code, 0) << runs.back().err;

  for (const auto& r : runs) {
    EXPECT_EQ(r.out.find(kToken), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(kToken), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("wrongwrongwrong"), std::string::npos) << r.err;
  }
}

TEST_F(PullCliTest, TokenIsNeverAcceptedInArgv) {
  auto r = Pull({"demo/gated", "--token", kToken});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(PullCliTest, MissingTokenFileIsAnError) {
  auto r = Pull({"demo/gated", "--token-file", (dir_ / "nope").string()});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
}

TEST_F(PullCliTest, UnknownRepoRevisionOrFileExitsNotFound) {
  auto repo = Pull({"demo/nope"});
  EXPECT_EQ(repo.exit_code, 3) << repo.err;
  EXPECT_NE(repo.err.find("demo/nope"), std::string::npos) << repo.err;
  auto revision = Pull({"demo/model@no-such-branch"});
  EXPECT_EQ(revision.exit_code, 3) << revision.err;
  EXPECT_NE(revision.err.find("no-such-branch"), std::string::npos) << revision.err;
  auto file = Pull({"https://huggingface.co/demo/model/resolve/main/nope.bin"});
  EXPECT_EQ(file.exit_code, 3) << file.err;
  EXPECT_NE(file.err.find("nope.bin"), std::string::npos) << file.err;
  EXPECT_FALSE(fs::exists(RepoDir("model") / "refs" / "main"));
  for (const auto* r : {&repo, &revision, &file}) EXPECT_EQ(r->out, "");
}

TEST_F(PullCliTest, RevisionGivenTwiceDifferentlyIsAUsageError) {
  auto r = Pull({"demo/model@main", "--revision", "v2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--revision"), std::string::npos) << r.err;
}

TEST_F(PullCliTest, MaxConnectionsBelowConnectionsIsAUsageError) {
  auto r = Child(PullArgs({"demo/model", "--max-connections", "4"}, "", 8), Env()).Finish();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--max-connections 4 is less than --connections 8"), std::string::npos)
      << r.err;
}

// An explicit --connections is the exact count: the done event says how many there were.
TEST_F(PullCliTest, ExplicitConnectionsAreTheCount) {
  auto r = Child(PullArgs({"demo/model", "--json"}, "", 3), Env()).Finish();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto last = nlohmann::json::parse(Lines(r.out).back(), nullptr, false);
  EXPECT_EQ(last["event"], "done") << r.out;
  EXPECT_EQ(last["connections"], 3) << r.out;
}

TEST_F(PullCliTest, JsonEmitsOneEventPerLineEndingInDone) {
  auto r = Pull({"demo/model", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;
  std::multiset<std::string> kinds;
  nlohmann::json last;
  for (const auto& line : lines) {
    last = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(last.is_object()) << line;
    kinds.insert(last["event"].get<std::string>());
  }
  EXPECT_EQ(nlohmann::json::parse(lines.front())["event"], "plan");
  EXPECT_EQ(last["event"], "done");
  EXPECT_EQ(last["snapshot_path"], Snapshot("demo/model").string());
  EXPECT_EQ(last["commit"], up_->Repo("demo/model").commit.str());
  EXPECT_EQ(kinds.count("file_verified"), up_->Repo("demo/model").files.size()) << r.out;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos);
}

TEST_F(PullCliTest, JsonFailureEndsWithAnErrorEvent) {
  auto r = Pull({"demo/nope", "--json"});
  EXPECT_EQ(r.exit_code, 3);
  auto lines = Lines(r.out);
  ASSERT_FALSE(lines.empty());
  auto last = nlohmann::json::parse(lines.back(), nullptr, false);
  EXPECT_EQ(last["event"], "error") << r.out;
  EXPECT_EQ(last["code"], "NotFound");
  EXPECT_EQ(last["exit_code"], 3);
  EXPECT_NE(last["message"].get<std::string>().find("demo/nope"), std::string::npos);
}

TEST_F(PullCliTest, DryRunShowsThePlanAndWritesNothing) {
  auto r = Pull({"demo/model", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& f : up_->Repo("demo/model").files) {
    EXPECT_NE(r.out.find(f.path), std::string::npos) << f.path << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("fetch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was written"), std::string::npos) << r.out;
  EXPECT_EQ(FilesUnder(cache_), std::vector<std::string>{});
  EXPECT_EQ(FilesUnder(state_), std::vector<std::string>{});

  auto json = Pull({"demo/model", "--dry-run", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto lines = Lines(json.out);
  ASSERT_EQ(lines.size(), 2u) << json.out;
  auto plan = nlohmann::json::parse(lines[0], nullptr, false);
  EXPECT_EQ(plan["event"], "plan");
  EXPECT_EQ(plan["files"].size(), up_->Repo("demo/model").files.size());
  EXPECT_EQ(plan["files"][0]["action"], "fetch");
  EXPECT_EQ(nlohmann::json::parse(lines[1], nullptr, false)["event"], "done");
  EXPECT_EQ(FilesUnder(cache_), std::vector<std::string>{});
}

TEST_F(PullCliTest, DryRunAfterAPullShowsEverythingPresent) {
  ASSERT_EQ(Pull({"demo/model", "--include", "*.json"}).exit_code, 0);
  auto r = Pull({"demo/model", "--dry-run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto plan = nlohmann::json::parse(Lines(r.out).at(0), nullptr, false);
  for (const auto& f : plan["files"]) {
    std::string path = f["path"];
    EXPECT_EQ(f["action"], path.ends_with(".json") ? "present" : "fetch") << path;
  }
}

TEST_F(PullCliTest, OfflineFailsBeforeAnyRequest) {
  auto before = up_->server->stats();
  auto r = Pull({"demo/model"}, {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE"), std::string::npos) << r.err;
  auto after = up_->server->stats();
  EXPECT_EQ(after.repo_info, before.repo_info);
  EXPECT_EQ(after.tree, before.tree);
  EXPECT_EQ(after.resolve_get + after.resolve_head, before.resolve_get + before.resolve_head);
  EXPECT_FALSE(fs::exists(cache_));
}

TEST_F(PullCliTest, StateDirComesFromTheEnvironment) {
  std::vector<std::string> args = {"pull",     "demo/model",  "--endpoint",
                                   up_->url(), "--cache-dir", cache_.string()};
  auto r = Child(args, Env({{"MODELCACHE_STATE_DIR", (dir_ / "from-env").string()}})).Finish();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "from-env")) << r.err;
  fs::remove_all(cache_);  // so that there is something to fetch again
  auto xdg = Child(args, Env({{"XDG_STATE_HOME", (dir_ / "xdg").string()}})).Finish();
  ASSERT_EQ(xdg.exit_code, 0) << xdg.err;
  EXPECT_TRUE(fs::exists(dir_ / "xdg" / "modelcache")) << xdg.err;
}

TEST_F(PullCliTest, HelpExplainsEnvironmentStateAndExitCodes) {
  auto r = Mc({"pull", "--help"});
  ASSERT_EQ(r.exit_code, 0);
  for (const char* text :
       {"HF_TOKEN", "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "MODELCACHE_STATE_DIR", "--state-dir",
        "resume", "Exit codes", "--token-file", "--include", "Examples", "130"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
  }
  auto main_help = Mc({"--help"});
  EXPECT_NE(main_help.out.find("modelcache pull"), std::string::npos) << main_help.out;
}

// ---- interrupted pulls: a mirror that stalls in the middle of the big file ----

class StalledPullTest : public PullCliTest {
 protected:
  void SetUp() override {
    PullCliTest::SetUp();
    mirror::MirrorOptions options;
    options.cache_dir = up_->cache_dir;
    mirror::FaultRule stall;
    stall.path_contains = "model.safetensors";
    stall.count = -1;
    stall.action = mirror::FaultRule::StallAfterBytes{6ull << 20, std::chrono::minutes(2)};
    options.faults.rules.push_back(stall);
    stalling_ = Must(mirror::MirrorServer::Create(options), "create stalling mirror");
    ASSERT_TRUE(stalling_->Start().ok());
  }
  void TearDown() override {
    stalling_->Stop();
    PullCliTest::TearDown();
  }

  const cache::ImportedFile& BigFile() const {
    const cache::ImportedFile* f = up_->Repo("demo/big").Find("model.safetensors");
    if (f == nullptr) std::abort();
    return *f;
  }
  fs::path Partial() const {
    return RepoDir("big") / "blobs" / (BigFile().etag + ".resume.incomplete");
  }
  // True once the big file's temp file holds its first 5 MiB (of the 6 the mirror sends before
  // it stalls): more than one cell, so a rerun that resumes fetches less than the whole file.
  bool MidFile() const {
    constexpr uint64_t kPrefix = 5ull << 20;
    return WrittenBytes(Partial(), up_->Blob("demo/big", BigFile().etag), kPrefix) == kPrefix;
  }
  // What the next run still has to fetch: every file not yet published, minus what its temp file
  // already holds, plus one cell per temp file (bytes received after the last resume record).
  uint64_t BytesLeftPlusACellPerPartial() const {
    uint64_t left = 0;
    for (const auto& f : up_->Repo("demo/big").files) {
      fs::path blobs = RepoDir("big") / "blobs";
      if (fs::exists(blobs / f.etag)) continue;
      fs::path partial = blobs / (f.etag + ".resume.incomplete");
      if (fs::exists(partial)) {
        left += f.size - WrittenBytes(partial, up_->Blob("demo/big", f.etag)) + kCell;
      } else {
        left += f.size;
      }
    }
    return left;
  }

  std::unique_ptr<mirror::MirrorServer> stalling_;
};

TEST_F(StalledPullTest, SigkillMidFileThenRerunFetchesOnlyWhatIsMissing) {
  Child first(PullArgs({"demo/big"}, stalling_->base_url()), Env());
  ASSERT_TRUE(first.WaitUntil([&] { return MidFile(); }, 60s))
      << "the pull never wrote the first bytes of " << Partial();
  kill(first.pid(), SIGKILL);
  RunResult killed = first.Finish();
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  EXPECT_FALSE(fs::exists(RepoDir("big") / "refs" / "main"));
  EXPECT_FALSE(fs::exists(Snapshot("demo/big") / "model.safetensors"));
  uint64_t allowed = BytesLeftPlusACellPerPartial();

  // One connection: the mirror counts every requested range in full, and a split (a second
  // connection taking over the end of an open-ended range) would count those bytes twice although
  // the first connection stops before them.
  uint64_t served_before = up_->server->stats().file_bytes_served;
  auto second = Child(PullArgs({"demo/big", "--json"}, "", 1), Env()).Finish();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  uint64_t served = up_->server->stats().file_bytes_served - served_before;
  EXPECT_LE(served, allowed) << "the resumed pull fetched again what the first one had written";
  EXPECT_LT(served, kBigBytes);
  auto done = nlohmann::json::parse(Lines(second.out).back(), nullptr, false);
  ASSERT_EQ(done["event"], "done") << second.out;
  EXPECT_LE(done["bytes_fetched"].get<uint64_t>(), allowed);
  EXPECT_GT(done["bytes_resumed"].get<uint64_t>(), kCell);
  ExpectSameBytes("demo/big");
  auto verify = Mc({"verify", "--cache-dir", cache_.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST_F(StalledPullTest, SigintCancelsWithExit130AndTheRerunCompletes) {
  Child first(PullArgs({"demo/big"}, stalling_->base_url()), Env());
  ASSERT_TRUE(first.WaitUntil([&] { return MidFile(); }, 60s));
  kill(first.pid(), SIGINT);
  RunResult cancelled = first.Finish(20s);
  EXPECT_EQ(cancelled.exit_code, 130) << cancelled.err;
  EXPECT_NE(cancelled.err.find("run the same command again to resume"), std::string::npos)
      << cancelled.err;
  EXPECT_EQ(cancelled.out, "");
  EXPECT_FALSE(fs::exists(RepoDir("big") / "refs" / "main"));

  auto second = Pull({"demo/big"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, Snapshot("demo/big").string() + "\n");
  ExpectSameBytes("demo/big");
}

}  // namespace
