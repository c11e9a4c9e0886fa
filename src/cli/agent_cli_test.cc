// End-to-end tests of `modelcache agent`, `pin`, `unpin` and `pins`: the real binary, spawned
// against in-process MirrorServers on loopback (port 0) over an upstream cache of generated files,
// into temp dirs. The agent's URL is read from the "agent listening on <url>" line on its stdout;
// nothing waits by sleeping: the tests poll the agent's own API with a bound, or long-poll it
// (POST /v1/ensure?wait=S). The children get a hermetic environment (no HF_* or MODELCACHE_*
// variable of the caller, HF_HOME inside the test's temp dir).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_client.h"
#include "mc/testing/model_fixture.h"
#include "mc/testing/modelcache_process.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace cache = mc::cache;
namespace mirror = mc::mirror;
using json = nlohmann::json;
using namespace std::chrono_literals;

using mc::testing::McBinary;
using mc::testing::ReadAll;
using mc::testing::RunResult;
using mc::testing::SpawnMc;
using mc::testing::WaitExit;

constexpr char kRepo[] = "demo/model";
constexpr char kBigFile[] = "weights-big.bin";  // a name no other path contains
constexpr uint64_t kBigBytes = 24ull << 20;
// The faulty upstream stalls after these bytes of an answer: less than one request
// (FetchTuning::request_size, 8 MiB), or every answer would end before its stall.
constexpr uint64_t kStallAfter = 6ull << 20;
constexpr uint64_t kRequest = 8ull << 20;  // FetchTuning::request_size
constexpr uint64_t kCell = 4ull << 20;        // FetchTuning::cell_size: resume granularity

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

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- the upstream: demo/model = the small files of a generated model + one 24 MiB file ----

struct Upstream {
  fs::path root, src, cache_dir;
  cache::ImportResult repo{*mc::CommitSha::Parse(std::string(40, '0')), {}, 0};

  ~Upstream() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  const cache::ImportedFile& Big() const { return *repo.Find(kBigFile); }
  int SmallFiles() const { return static_cast<int>(repo.files.size()) - 1; }
  fs::path Blob(const std::string& etag) const {
    return cache_dir / "models--demo--model" / "blobs" / etag;
  }
};

std::unique_ptr<Upstream> BuildUpstream() {
  auto up = std::make_unique<Upstream>();
  char tmpl[] = "/tmp/mc-agent-upstream.XXXXXX";
  up->root = mkdtemp(tmpl);
  up->src = up->root / "src" / "model";
  up->cache_dir = up->root / "cache";
  mc::testing::ModelFixtureOptions model;
  model.total_weight_bytes = 512 << 10;
  Must(mc::testing::WriteModelFixture(up->src, model), "fixture");
  std::mt19937_64 random(42);
  std::string big(kBigBytes, '\0');
  for (size_t i = 0; i + 8 <= big.size(); i += 8) {
    uint64_t v = random() | 0x0101010101010101ull;  // never a zero byte (see WrittenBytes)
    std::memcpy(&big[i], &v, 8);
  }
  WriteFile(up->src / kBigFile, big);
  auto store = Must(cache::CacheStore::Open({up->cache_dir, std::nullopt, true}), "open upstream");
  up->repo = Must(
      cache::ImportFolder(*store, up->src, *mc::RepoId::Parse(kRepo), *mc::Revision::Parse("main")),
      "import");
  return up;
}

const Upstream& GetUpstream() {
  static std::unique_ptr<Upstream> upstream = BuildUpstream();
  return *upstream;
}

std::unique_ptr<mirror::MirrorServer> Serve(std::vector<mirror::FaultRule> faults = {}) {
  mirror::MirrorOptions options;
  options.cache_dir = GetUpstream().cache_dir;
  options.faults.rules = std::move(faults);
  auto server = Must(mirror::MirrorServer::Create(std::move(options)), "create mirror");
  mc::Status started = server->Start();
  EXPECT_TRUE(started.ok()) << started.ToString();
  return server;
}

// Bytes of `partial` that already hold the bytes of `source` at the same offset, among the first
// `limit`, in whole 64 KiB blocks (holes read as zero; the source never has a zero block).
uint64_t WrittenBytes(const fs::path& partial, const fs::path& source, uint64_t limit) {
  std::ifstream a(partial, std::ios::binary), b(source, std::ios::binary);
  std::vector<char> x(64 << 10), y(64 << 10);
  uint64_t written = 0;
  for (uint64_t offset = 0; offset < limit && (b.read(y.data(), y.size()) || b.gcount() > 0);
       offset += y.size()) {
    auto n = static_cast<size_t>(b.gcount());
    a.read(x.data(), n);
    if (static_cast<size_t>(a.gcount()) == n && std::equal(y.begin(), y.begin() + n, x.begin())) {
      written += n;
    }
  }
  return written;
}

// ---- running the binary ----

std::vector<std::string> HermeticEnv(const fs::path& hf_home) {
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
  return env;
}

// A modelcache child: stdout into a pipe (read line by line), stderr into a temp file.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    char err_name[] = "/tmp/mc-agent-err.XXXXXX";
    err_fd_ = mkstemp(err_name);
    unlink(err_name);
    pid_ = SpawnMc(args, &env, fds[1], err_fd_);
    close(fds[1]);
    out_fd_ = fds[0];
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

  // The next line on stdout, or "" when stdout ends or `timeout` passes first.
  std::string ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (size_t nl = out_.find('\n'); nl != std::string::npos) {
        std::string line = out_.substr(0, nl);
        out_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) return "";
      out_.append(buf, n);
    }
  }

  RunResult Finish(std::chrono::milliseconds timeout = 60s) {
    RunResult r;
    r.exit_code = WaitExit(pid_, timeout);
    exited_ = true;
    r.out = out_ + ReadAll(out_fd_);
    r.err = Stderr();
    return r;
  }
  std::string Stderr() const {
    lseek(err_fd_, 0, SEEK_SET);
    return ReadAll(err_fd_);
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool exited_ = false;
  std::string out_;
};

struct Reply {
  int status = 0;
  std::string text;
  json body;  // discarded if not JSON
};

constexpr char kCliAgentKey[] = "agent-cli-test-key-0123456789";

Reply Call(const std::string& method, const std::string& url,
           std::optional<std::string> body = std::nullopt) {
  auto client = mc::net::HttpClient::Create();
  mc::net::HttpClientRequest request;
  request.method = method;
  request.url = url;
  request.timeout = 120s;
  // The agents' key (MODELCACHE_API_KEY in Env()) and the JSON type their /v1 requires.
  request.headers.Set("Authorization", std::string("Bearer ") + kCliAgentKey);
  request.headers.Set("Content-Type", "application/json");
  if (body) request.body = std::move(body);
  auto response = client->Send(request);
  if (!response.ok()) {
    ADD_FAILURE() << method << " " << url << ": " << response.status().ToString();
    return {};
  }
  return {response->status, response->body, json::parse(response->body, nullptr, false)};
}

// Calls `condition` every 20 ms until it holds (true) or `timeout` passes (false).
bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);  // a poll interval, not a synchronization
  }
  return true;
}

class AgentCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    up_ = &GetUpstream();
    char tmpl[] = "/tmp/mc-agent-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    cache_ = dir_ / "hub";
    state_ = dir_ / "state";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::vector<std::string> Env() const {
    std::vector<std::string> env = HermeticEnv(dir_ / "hf-home");
    env.push_back(std::string("MODELCACHE_API_KEY=") + kCliAgentKey);
    return env;
  }
  RunResult Mc(const std::vector<std::string>& args) const { return Child(args, Env()).Finish(); }
  std::vector<std::string> AgentArgs(const std::string& upstream,
                                     std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {
        "agent", "--cache-dir", cache_.string(), "--state-dir", state_.string(), "--capacity",
        "1GB",   "--listen",    "127.0.0.1:0",   "--upstream",  upstream,        "--connections",
        "2",     "--runtime",   "process"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  // Starts an agent and returns its base URL ("" and a test failure if it never said it).
  std::string StartAgent(Child& agent) {
    std::string line = agent.ReadLine(60s);
    const std::string prefix = "agent listening on ";
    EXPECT_TRUE(line.starts_with(prefix)) << "stdout: " << line << "\nstderr: " << agent.Stderr();
    return line.starts_with(prefix) ? line.substr(prefix.size()) : "";
  }
  // The local cache holds demo/model (imported, as a finished download would leave it).
  void ImportIntoLocalCache() const {
    auto store = Must(cache::CacheStore::Open({cache_, std::nullopt, true}), "open cache");
    Must(cache::ImportFolder(*store, up_->src, *mc::RepoId::Parse(kRepo),
                             *mc::Revision::Parse("main")),
         "import");
  }
  json Pins() const {
    RunResult r =
        Mc({"pins", "--json", "--cache-dir", cache_.string(), "--state-dir", state_.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object() && j["pins"].is_array()) << r.out;
    return j.is_object() ? j["pins"] : json::array();
  }
  fs::path Partial() const {
    return cache_ / "models--demo--model" / "blobs" / (up_->Big().etag + ".resume.incomplete");
  }
  fs::path Snapshot() const {
    return cache_ / "models--demo--model" / "snapshots" / up_->repo.commit.str();
  }
  // The inventory entry of demo/model's commit, or null.
  static json InventoryEntry(const std::string& url, const std::string& commit) {
    Reply r = Call("GET", url + "/v1/inventory");
    if (r.status != 200 || !r.body.is_object()) return nullptr;
    for (const json& s : r.body["snapshots"]) {
      if (s.value("commit", "") == commit) return s;
    }
    return nullptr;
  }

  const Upstream* up_ = nullptr;
  fs::path dir_, cache_, state_;
};

// ---- a: flags and start-up errors ----

TEST_F(AgentCliTest, HelpExplainsTheAgentItsFlagsAndStopping) {
  RunResult r = Mc({"agent", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text :
       {"--capacity", "--state-dir", "modelcache-state", "--upstream", "--api-key-file",
        "MODELCACHE_API_KEY", "SIGTERM", "/v1/ensure", "Example"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\n" << r.out;
  }
}

TEST_F(AgentCliTest, MissingOrBadCapacityIsAUsageErrorNamingTheFlag) {
  RunResult missing = Mc({"agent", "--cache-dir", cache_.string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--capacity"), std::string::npos) << missing.err;
  for (const char* bad : {"lots", "150%", "0", "-5GB"}) {
    RunResult r = Mc({"agent", "--cache-dir", cache_.string(), "--state-dir", state_.string(),
                      "--capacity", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--capacity"), std::string::npos) << bad << ": " << r.err;
    EXPECT_EQ(r.out, "") << bad;
  }
}

TEST_F(AgentCliTest, BadWatermarksAreUsageErrorsNamingTheFlag) {
  struct Case {
    std::vector<std::string> flags;
    std::string named;
  };
  for (const Case& c : std::vector<Case>{{{"--high-watermark", "95"}, "--high-watermark"},
                                         {{"--low-watermark", "abc%"}, "--low-watermark"},
                                         {{"--low-watermark", "0%"}, "--low-watermark"},
                                         {{"--high-watermark", "50%"}, "--low-watermark"}}) {
    std::vector<std::string> args = {"agent",       "--cache-dir",   cache_.string(),
                                     "--state-dir", state_.string(), "--capacity",
                                     "1GB"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    RunResult r = Mc(args);
    EXPECT_EQ(r.exit_code, 2) << c.flags[1] << ": " << r.err;
    EXPECT_NE(r.err.find(c.named), std::string::npos) << r.err;
  }
}

TEST_F(AgentCliTest, PortInUseIsAClearError) {
  auto taken = Serve();
  const std::string listen = "127.0.0.1:" + std::to_string(taken->port());
  RunResult r = Mc({"agent", "--cache-dir", cache_.string(), "--state-dir", state_.string(),
                    "--capacity", "1GB", "--listen", listen});
  EXPECT_EQ(r.exit_code, 7) << r.err;  // Unavailable
  EXPECT_NE(r.err.find(listen), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("agent listening on"), std::string::npos) << r.out;
}

TEST_F(AgentCliTest, ApiKeyIsNeverAcceptedInArgv) {
  RunResult r = Mc({"agent", "--capacity", "1GB", "--api-key", "secret"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// No key given, even on an address other hosts reach: the agent makes one in its state dir
// (0600), says where, and requires it.
TEST_F(AgentCliTest, WithoutAGivenKeyTheAgentRequiresOneMadeInItsStateDir) {
  Child agent({"agent", "--cache-dir", cache_.string(), "--state-dir", state_.string(),
               "--capacity", "1GB", "--listen", "0.0.0.0:0", "--upstream", "http://127.0.0.1:1"},
              HermeticEnv(dir_ / "hf-home"));
  const std::string url = StartAgent(agent);
  ASSERT_FALSE(url.empty());
  const fs::path key_file = state_ / "api-key";
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(agent.Stderr().find(key_file.string()), std::string::npos) << agent.Stderr();
  std::string key;
  std::ifstream(key_file) >> key;
  EXPECT_EQ(Call("GET", url + "/v1/inventory").status, 401);
  mc::net::HeaderMap auth;
  auth.Set("Authorization", "Bearer " + key);
  auto with_key = mc::net::HttpClient::Create()->Get(url + "/v1/inventory", auth);
  ASSERT_TRUE(with_key.ok());
  EXPECT_EQ(with_key->status, 200) << with_key->body;
  EXPECT_EQ(agent.Stderr().find(key), std::string::npos) << "the key is never logged";
}

// ---- b: start, serve, stop ----

TEST_F(AgentCliTest, StartsServesHealthAndExitsZeroOnSigterm) {
  // No --state-dir: the default is the cache dir's sibling "modelcache-state".
  Child agent({"agent", "--cache-dir", cache_.string(), "--capacity", "50%", "--listen",
               "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"},
              Env());
  const std::string url = StartAgent(agent);
  ASSERT_FALSE(url.empty());
  EXPECT_TRUE(url.starts_with("http://127.0.0.1:")) << url;
  Reply health = Call("GET", url + "/health");
  EXPECT_EQ(health.status, 200) << health.text;
  EXPECT_EQ(health.body.value("status", ""), "ok") << health.text;
  EXPECT_TRUE(fs::exists(dir_ / "modelcache-state" / "state.db"));
  // 50% of the filesystem: a real number of bytes, not 0.
  Reply inventory = Call("GET", url + "/v1/inventory");
  ASSERT_EQ(inventory.status, 200) << inventory.text;
  EXPECT_GT(inventory.body["disk"].value("capacity_bytes", 0ull), 0ull) << inventory.text;

  kill(agent.pid(), SIGTERM);
  RunResult stopped = agent.Finish(30s);
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(stopped.out, "") << "only the one 'listening' line goes to stdout";
  // --runtime auto says what it chose (containers where podman works here, else processes).
  EXPECT_NE(stopped.err.find("modelcache agent: workers run as "), std::string::npos) << stopped.err;
}

TEST_F(AgentCliTest, GpusAutoCountsTheGpusOfACdiSpec) {
  fs::create_directories(dir_ / "cdi");
  WriteFile(dir_ / "cdi" / "nvidia.yaml",
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n"
            "  containerEdits: {}\n- name: \"1\"\n  containerEdits: {}\n- name: all\n"
            "  containerEdits: {}\n");
  Child agent(AgentArgs("http://127.0.0.1:1", {"--gpus", "auto", "--cdi-spec-dir",
                                               (dir_ / "cdi").string()}),
              Env());
  const std::string url = StartAgent(agent);
  ASSERT_FALSE(url.empty());
  Reply inventory = Call("GET", url + "/v1/inventory");
  EXPECT_EQ(inventory.body["gpus"]["total"], 2) << inventory.text;
  EXPECT_EQ(inventory.body["runtime"]["kind"], "process") << inventory.text;
  kill(agent.pid(), SIGTERM);
  RunResult stopped = agent.Finish(30s);
  EXPECT_NE(stopped.err.find("--gpus auto: 2 GPUs"), std::string::npos) << stopped.err;
}

TEST_F(AgentCliTest, UnknownRuntimeIsAUsageError) {
  RunResult r = Mc({"agent", "--cache-dir", cache_.string(), "--state-dir", state_.string(),
                    "--capacity", "1GB", "--runtime", "kubernetes"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--runtime 'kubernetes' must be podman, docker, process or auto"),
            std::string::npos)
      << r.err;
}

TEST_F(AgentCliTest, ApiKeyFromAFileGuardsTheApiButNotHealth) {
  WriteFile(dir_ / "key", "s3cret-key\n");
  Child agent(AgentArgs("http://127.0.0.1:1", {"--api-key-file", (dir_ / "key").string()}), Env());
  const std::string url = StartAgent(agent);
  ASSERT_FALSE(url.empty());
  EXPECT_EQ(Call("GET", url + "/health").status, 200);
  EXPECT_EQ(Call("GET", url + "/v1/inventory").status, 401);
  auto client = mc::net::HttpClient::Create();
  mc::net::HeaderMap auth;
  auth.Set("Authorization", "Bearer s3cret-key");  // the newline was trimmed
  auto with_key = client->Get(url + "/v1/inventory", auth);
  ASSERT_TRUE(with_key.ok());
  EXPECT_EQ(with_key->status, 200) << with_key->body;
  EXPECT_EQ(agent.Stderr().find("s3cret"), std::string::npos);
}

// ---- c: pins ----

TEST_F(AgentCliTest, PinListAndUnpinWithoutAnAgent) {
  ImportIntoLocalCache();
  const std::string sha = up_->repo.commit.str();
  RunResult pin = Mc({"pin", std::string(kRepo) + "@" + sha, "--cache-dir", cache_.string(),
                      "--state-dir", state_.string()});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_EQ(pin.out, "pinned demo/model@" + sha + "\n");

  json pins = Pins();
  ASSERT_EQ(pins.size(), 1u) << pins;
  EXPECT_EQ(pins[0]["model"], kRepo);
  EXPECT_EQ(pins[0]["commit"], sha);
  EXPECT_EQ(pins[0]["owner"], "operator");

  // "main" resolves through the local ref to the same commit: pinning again changes nothing.
  RunResult again = Mc({"pin", kRepo, "--revision", "main", "--cache-dir", cache_.string(),
                        "--state-dir", state_.string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "pinned demo/model@" + sha + "\n");
  EXPECT_EQ(Pins().size(), 1u);

  RunResult unpin =
      Mc({"unpin", kRepo, "--cache-dir", cache_.string(), "--state-dir", state_.string()});
  ASSERT_EQ(unpin.exit_code, 0) << unpin.err;
  EXPECT_EQ(unpin.out, "unpinned demo/model@" + sha + "\n");
  EXPECT_TRUE(Pins().empty());

  RunResult twice =
      Mc({"unpin", kRepo, "--cache-dir", cache_.string(), "--state-dir", state_.string()});
  EXPECT_EQ(twice.exit_code, 3) << twice.err;
  EXPECT_NE(twice.err.find("no operator pin"), std::string::npos) << twice.err;
}

TEST_F(AgentCliTest, PinOfAnUncachedNameFailsButACommitShaIsAccepted) {
  ImportIntoLocalCache();
  RunResult absent =
      Mc({"pin", "demo/absent", "--cache-dir", cache_.string(), "--state-dir", state_.string()});
  EXPECT_EQ(absent.exit_code, 3) << absent.err;
  EXPECT_NE(absent.err.find("not in the cache; pin a commit sha or ensure the model first"),
            std::string::npos)
      << absent.err;
  RunResult tag =
      Mc({"pin", "demo/model@v9", "--cache-dir", cache_.string(), "--state-dir", state_.string()});
  EXPECT_EQ(tag.exit_code, 3) << tag.err;
  RunResult no_cache = Mc({"pin", "demo/model", "--cache-dir", (dir_ / "nowhere").string(),
                           "--state-dir", state_.string()});
  EXPECT_EQ(no_cache.exit_code, 3) << no_cache.err;
  EXPECT_TRUE(Pins().empty());

  const std::string ahead(40, 'a');
  RunResult sha = Mc({"pin", "demo/later@" + ahead, "--cache-dir", cache_.string(), "--state-dir",
                      state_.string()});
  EXPECT_EQ(sha.exit_code, 0) << sha.err;
  ASSERT_EQ(Pins().size(), 1u);
  EXPECT_EQ(Pins()[0]["commit"], ahead);
}

TEST_F(AgentCliTest, PinsWithNoStateDatabaseListNothingAndCreateNothing) {
  RunResult r = Mc({"pins", "--cache-dir", cache_.string(), "--state-dir", state_.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(fs::exists(state_));
}

TEST_F(AgentCliTest, RunningAgentSeesPinsTheCliWrites) {
  ImportIntoLocalCache();
  Child agent(AgentArgs("http://127.0.0.1:1"), Env());
  const std::string url = StartAgent(agent);
  ASSERT_FALSE(url.empty());
  const std::string sha = up_->repo.commit.str();
  RunResult pin =
      Mc({"pin", kRepo, "--cache-dir", cache_.string(), "--state-dir", state_.string()});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;

  Reply pins = Call("GET", url + "/v1/pins");
  ASSERT_EQ(pins.status, 200) << pins.text;
  ASSERT_EQ(pins.body["pins"].size(), 1u) << pins.text;
  EXPECT_EQ(pins.body["pins"][0]["commit"], sha);
  Reply evict = Call("POST", url + "/v1/evict", json{{"model", kRepo}}.dump());
  EXPECT_EQ(evict.status, 409) << evict.text;
  EXPECT_TRUE(fs::exists(Snapshot()));

  ASSERT_EQ(Mc({"unpin", kRepo, "--cache-dir", cache_.string(), "--state-dir", state_.string()})
                .exit_code,
            0);
  evict = Call("POST", url + "/v1/evict", json{{"model", kRepo}}.dump());
  EXPECT_EQ(evict.status, 200) << evict.text;
  EXPECT_FALSE(fs::exists(Snapshot()));
}

// ---- d: a download interrupted by SIGKILL or SIGTERM resumes when the agent starts again ----

class AgentRestartTest : public AgentCliTest, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    AgentCliTest::SetUp();
    mirror::FaultRule stall;
    stall.path_contains = kBigFile;
    stall.count = -1;
    stall.action = mirror::FaultRule::StallAfterBytes{.bytes = kStallAfter, .duration = 60s};
    faulty_ = Serve({stall});
    clean_ = Serve();
  }
  void TearDown() override {
    faulty_->Stop();
    clean_->Stop();
    AgentCliTest::TearDown();
  }
  std::unique_ptr<mirror::MirrorServer> faulty_, clean_;
};

TEST_P(AgentRestartTest, InterruptedDownloadResumesByItselfWithoutRefetchingFinishedFiles) {
  const int stop_signal = GetParam();
  const std::string sha = up_->repo.commit.str();
  {
    Child first(AgentArgs(faulty_->base_url()), Env());
    const std::string url = StartAgent(first);
    ASSERT_FALSE(url.empty());
    Reply started = Call("POST", url + "/v1/ensure", json{{"model", kRepo}}.dump());
    ASSERT_EQ(started.status, 202) << started.text;
    EXPECT_EQ(started.body["state"], "downloading") << started.text;

    // Every small file done, and the big one holding the bytes the upstream sent before stalling.
    int files_done = 0;
    const bool mid_download = PollUntil(
        [&] {
          Reply d = Call("GET", url + "/v1/downloads");
          if (d.status != 200 || d.body["downloads"].size() != 1) return false;
          files_done = d.body["downloads"][0]["progress"].value("files_done", 0);
          return files_done >= up_->SmallFiles() &&
                 WrittenBytes(Partial(), up_->Blob(up_->Big().etag), kStallAfter) == kStallAfter;
        },
        30s);
    ASSERT_TRUE(mid_download) << "files_done " << files_done << " of " << up_->SmallFiles()
                              << " small files; " << first.Stderr();
    kill(first.pid(), stop_signal);
    RunResult stopped = first.Finish(20s);
    EXPECT_EQ(stopped.exit_code, stop_signal == SIGKILL ? 128 + SIGKILL : 0) << stopped.err;
  }
  EXPECT_FALSE(fs::exists(Snapshot() / kBigFile));
  EXPECT_TRUE(fs::exists(Partial()));

  // The restart, against a clean upstream. No ensure yet: the agent resumes on its own.
  Child second(AgentArgs(clean_->base_url()), Env());
  const std::string url = StartAgent(second);
  ASSERT_FALSE(url.empty());
  const bool completed = PollUntil(
      [&] {
        json entry = InventoryEntry(url, sha);
        return entry.is_object() && entry.value("complete", false);
      },
      60s);
  ASSERT_TRUE(completed) << "the interrupted download was not resumed: " << second.Stderr();

  Reply ready = Call("POST", url + "/v1/ensure?wait=60", json{{"model", kRepo}}.dump());
  ASSERT_EQ(ready.status, 200) << ready.text;
  EXPECT_EQ(ready.body["state"], "ready");
  EXPECT_EQ(ready.body["commit"], sha);
  EXPECT_EQ(ready.body["snapshot_path"], Snapshot().string());

  // Finished files were not fetched again, and the big file continued where it stopped: its rest
  // in requests of at most kRequest bytes (one more if a range was split or retried) for less
  // than the whole big file.
  const mirror::MirrorStats stats = clean_->stats();
  const uint64_t rest_requests = (kBigBytes - kStallAfter + kRequest - 1) / kRequest;
  EXPECT_GE(stats.resolve_get, 1u);
  EXPECT_LE(stats.resolve_get, rest_requests + 1) << "finished files were fetched again";
  EXPECT_LE(stats.file_bytes_served, kBigBytes - kStallAfter + kCell)
      << "the big file did not continue where it stopped";
  EXPECT_LT(stats.file_bytes_served, kBigBytes);
  for (const auto& f : up_->repo.files) {
    EXPECT_EQ(ReadFile(Snapshot() / f.path), ReadFile(up_->Blob(f.etag))) << f.path;
  }
  json entry = InventoryEntry(url, sha);
  ASSERT_TRUE(entry.is_object());
  EXPECT_TRUE(entry.value("complete", false)) << entry;
  EXPECT_EQ(entry.value("files", 0), static_cast<int>(up_->repo.files.size())) << entry;
  Reply downloads = Call("GET", url + "/v1/downloads");
  EXPECT_TRUE(downloads.body["downloads"].empty()) << downloads.text;

  kill(second.pid(), SIGTERM);
  EXPECT_EQ(second.Finish(30s).exit_code, 0);
  RunResult verify = Mc({"verify", "--cache-dir", cache_.string()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

INSTANTIATE_TEST_SUITE_P(Signals, AgentRestartTest, ::testing::Values(SIGKILL, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == SIGKILL ? "Sigkill" : "Sigterm");
                         });

// ---- e: API input validation through the real binary ----

TEST_F(AgentCliTest, EnsureRejectsBadInputAndLeavesNoTrace) {
  auto upstream = Serve();
  Child agent(AgentArgs(upstream->base_url()), Env());
  const std::string url = StartAgent(agent);
  ASSERT_FALSE(url.empty());

  Reply not_json = Call("POST", url + "/v1/ensure", std::string("{\"model\": "));
  EXPECT_EQ(not_json.status, 400) << not_json.text;
  EXPECT_TRUE(not_json.body.is_object() && not_json.body.contains("error")) << not_json.text;

  Reply github = Call("POST", url + "/v1/ensure", json{{"model", "https://github.com/x/y"}}.dump());
  EXPECT_EQ(github.status, 400) << github.text;
  EXPECT_TRUE(github.body.is_object() && github.body.contains("error")) << github.text;

  Reply traversal = Call("POST", url + "/v1/ensure", json{{"model", "../../etc"}}.dump());
  EXPECT_EQ(traversal.status, 400) << traversal.text;

  Reply unknown =
      Call("POST", url + "/v1/ensure", json{{"model", kRepo}, {"revison", "main"}}.dump());
  EXPECT_EQ(unknown.status, 400) << unknown.text;

  Reply bad_wait = Call("POST", url + "/v1/ensure?wait=soon", json{{"model", kRepo}}.dump());
  EXPECT_EQ(bad_wait.status, 400) << bad_wait.text;

  std::string huge = json{{"model", kRepo}, {"include", {std::string(1100 << 10, 'x')}}}.dump();
  Reply too_big = Call("POST", url + "/v1/ensure", huge);
  EXPECT_EQ(too_big.status, 413) << too_big.text.substr(0, 200);

  Reply inventory = Call("GET", url + "/v1/inventory");
  ASSERT_EQ(inventory.status, 200) << inventory.text;
  EXPECT_TRUE(inventory.body["snapshots"].empty()) << inventory.text;
  EXPECT_TRUE(inventory.body["downloads"].empty()) << inventory.text;
  EXPECT_EQ(upstream->stats().resolve_get, 0u);
  EXPECT_FALSE(fs::exists(cache_ / "models--demo--model"));
  EXPECT_EQ(agent.Stderr().find("xxxxxxxxxxxxxxxxxxxxxxxx"), std::string::npos)
      << "the oversized body was logged";
}

}  // namespace
