// Image workers end to end with real parts: podman (runc, private stores), Debian's
// docker-registry on loopback (one open, one with htpasswd auth), the agent in-process (and as a
// `modelcache agent` process for the SIGKILL test) against a hub mirror on loopback. Images are
// busybox-static FROM scratch (PodmanTestEnv). Every test skips, saying why, only when podman
// cannot run a container on this machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "agent/command_runner.h"
#include "mc/agent/podman_test_env.h"
#include "mc/agent/agent.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_client.h"
#include "mc/testing/model_fixture.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

struct Reply {
  int status = 0;
  json body;
};

constexpr char kAgentKey[] = "agent-test-key-0123456789";

Reply Call(const std::string& method, const std::string& url, const json& body = nullptr) {
  static thread_local auto client = net::HttpClient::Create();
  net::HttpClientRequest req;
  req.method = method;
  req.url = url;
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.Set("Content-Type", "application/json");
  }
  // The agent's key (every test agent has it) and the JSON type its /v1 requires.
  req.headers.Set("Authorization", std::string("Bearer ") + kAgentKey);
  req.headers.Set("Content-Type", "application/json");
  req.timeout = 180s;
  auto res = client->Send(req);
  if (!res.ok()) return Reply{0, json{{"transport", res.status().ToString()}}};
  return Reply{res->status, json::parse(res->body, nullptr, false)};
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Until a worker's log says `text` (its container has started): an event of another process.
bool WaitForLog(const fs::path& log, const std::string& text) {
  for (int i = 0; i < 6000; ++i) {
    if (ReadFile(log).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// The models: org/base and org/other (to prove a worker cannot see it) and org/lora (an adapter).
struct Upstream {
  fs::path root;
  std::unique_ptr<mirror::MirrorServer> server;
  std::unique_ptr<mirror::MirrorServer> slow;  // the same cache at 1 MB/s

  Upstream() {
    root = fs::temp_directory_path() / ("mc_container_up_" + std::to_string(::getpid()));
    fs::remove_all(root);
    auto store = cache::CacheStore::Open({root / "cache", std::nullopt, true});
    if (!store.ok()) std::abort();
    int seed = 1;
    for (const char* id : {"org/base", "org/other", "org/lora", "org/slow"}) {
      testing::ModelFixtureOptions f;
      f.total_weight_bytes = std::string(id) == "org/slow" ? (2u << 20) : (256u << 10);
      f.seed = seed++;
      const fs::path src = root / "src" / id;
      if (!testing::WriteModelFixture(src, f).ok()) std::abort();
      if (!cache::ImportFolder(**store, src, *RepoId::Parse(id), *Revision::Parse("main")).ok()) {
        std::abort();
      }
    }
    for (auto* s : {&server, &slow}) {
      mirror::MirrorOptions o;
      o.cache_dir = root / "cache";
      if (s == &slow) o.max_bytes_per_second = 1'000'000;
      *s = *mirror::MirrorServer::Create(std::move(o));
      if (!(*s)->Start().ok()) std::abort();
    }
  }
  ~Upstream() {
    server->Stop();
    slow->Stop();
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

// Stops the registries and removes the stores when the test binary ends.
class PodmanCleanup : public ::testing::Environment {
 public:
  void TearDown() override { PodmanTestEnv::Shutdown(); }
};
::testing::Environment* const kCleanup = ::testing::AddGlobalTestEnvironment(new PodmanCleanup);

class ContainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { upstream_ = new Upstream(); }
  static void TearDownTestSuite() {
    delete upstream_;
    upstream_ = nullptr;
  }

  void SetUp() override {
    std::string why;
    env_ = PodmanTestEnv::Get(&why);
    if (env_ == nullptr) {
      GTEST_SKIP() << "SKIPPED LOUDLY: podman cannot run containers on this machine, so this "
                      "container test did not run: "
                   << why;
    }
  }
  void TearDown() override {
    for (auto& a : agents_) {
      a->StopWorkers(2s);
      a->Stop();
    }
    agents_.clear();
    for (const fs::path& d : dirs_) {
      if (env_ != nullptr) env_->RemoveStore(d / "engine");
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }

  AgentOptions Options(const std::string& name) {
    const fs::path dir = env_->dir() / ("t_" + name);
    fs::remove_all(dir);
    dirs_.push_back(dir);
    AgentOptions o;
    o.api_key = hub::Secret(kAgentKey);
    o.cache_dir = dir / "cache";
    o.state_dir = dir / "state";
    o.capacity = 1ull << 30;
    o.upstream = *hub::Endpoint::Parse(upstream_->server->base_url());
    o.maintenance_interval = 3600s;
    o.stop_grace = 2s;
    o.runtime.kind = RuntimeKind::kPodman;
    o.runtime.oci_runtime = "runc";
    o.runtime.engine_root = dir / "engine";
    o.runtime.insecure_registries = {env_->registry(), env_->auth_registry()};
    o.runtime.cdi_spec_dirs = {dir / "no-cdi"};
    return o;
  }
  Agent* StartAgent(AgentOptions o) {
    auto agent = Agent::Create(std::move(o));
    EXPECT_TRUE(agent.ok()) << agent.status().ToString();
    if (!agent.ok()) return nullptr;
    EXPECT_TRUE((*agent)->Start().ok());
    agents_.push_back(std::move(*agent));
    return agents_.back().get();
  }
  // Starts a worker and waits until it is in one of `until`.
  Reply Run(Agent* agent, json body, const std::string& until = "exited,failed") {
    Reply started = Call("POST", agent->base_url() + "/v1/workers", body);
    EXPECT_EQ(started.status, 202) << started.body.dump();
    return Call("GET", agent->base_url() + "/v1/workers/" + body["id"].get<std::string>() +
                           "?wait=120&until=" + until);
  }

  static Upstream* upstream_;
  PodmanTestEnv* env_ = nullptr;
  std::vector<fs::path> dirs_;
  std::vector<std::unique_ptr<Agent>> agents_;
};
Upstream* ContainerTest::upstream_ = nullptr;

TEST_F(ContainerTest, WorkerSeesOnlyItsOwnRepoReadOnlyAndNothingOfTheAgent) {
  AgentOptions o = Options("isolation");
  const fs::path state = o.state_dir, cache = o.cache_dir;
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  // Another repo is in the cache too.
  ASSERT_EQ(Call("POST", agent->base_url() + "/v1/ensure?wait=60", json{{"model", "org/other"}})
                .status,
            200);
  const std::string hub = "/runpod-volume/huggingface-cache/hub";
  const std::string script =
      "ls " + hub + "; echo ---; ls $MODEL_PATH; echo ---; "
      "test -e " + hub + "/models--org--other && echo OTHER-VISIBLE; "
      "test -e " + cache.string() + " && echo CACHE-VISIBLE; "
      "test -e " + state.string() + " && echo STATE-VISIBLE; "
      "touch $MODEL_PATH/new 2>/dev/null && echo WROTE-MODEL; "
      "echo x >> $MODEL_PATH/config.json 2>/dev/null && echo WROTE-FILE; "
      "echo HF=$HF_HUB_CACHE OFFLINE=$HF_HUB_OFFLINE NAME=$MODEL_NAME; echo done";
  Reply done = Run(agent, json{{"id", "iso"}, {"endpoint", "ep-iso"}, {"model", "org/base"},
                               {"image", env_->Image("bb")},
                               {"command", {"/bin/sh", "-c", script}}});
  ASSERT_EQ(done.body["state"], "exited") << done.body.dump();
  EXPECT_EQ(done.body["exit_code"], 0);
  EXPECT_EQ(done.body["runtime"], "podman");
  EXPECT_EQ(done.body["endpoint"], "ep-iso");
  const std::string out = ReadFile(done.body["logs"]["stdout"].get<std::string>());
  EXPECT_THAT(out, HasSubstr("models--org--base\n---\n"));  // the hub dir lists only its repo
  EXPECT_THAT(out, HasSubstr("config.json"));
  EXPECT_THAT(out, HasSubstr("HF=" + hub + " OFFLINE=1 NAME=org/base"));
  EXPECT_THAT(out, HasSubstr("done"));
  for (const char* leak : {"OTHER-VISIBLE", "CACHE-VISIBLE", "STATE-VISIBLE", "WROTE-MODEL",
                           "WROTE-FILE"}) {
    EXPECT_THAT(out, Not(HasSubstr(leak))) << out;
  }
}

TEST_F(ContainerTest, FirstWorkerPullsTheImageWhileTheModelDownloadsAndTheNextIsAHit) {
  AgentOptions o = Options("coldstart");
  o.upstream = *hub::Endpoint::Parse(upstream_->slow->base_url());  // about 2 s for org/slow
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  const std::string image = env_->Image("bb");
  const int manifests_before = env_->RegistryLogLines("/v2/mctest/bb/manifests/1");
  Reply first = Call("POST", agent->base_url() + "/v1/workers",
                     json{{"id", "c1"}, {"model", "org/slow"}, {"image", image},
                          {"command", {"/bin/sh", "-c", "echo ready"}}});
  ASSERT_EQ(first.status, 202) << first.body.dump();
  // Both parts of the cold start are under way at once, unbilled (initializing).
  EXPECT_EQ(first.body["state"], "initializing");
  EXPECT_EQ(first.body["image"]["state"], "pulling");
  EXPECT_EQ(first.body["models"][0]["state"], "downloading");
  Reply c1 = Call("GET", agent->base_url() + "/v1/workers/c1?wait=120&until=exited,failed");
  ASSERT_EQ(c1.body["state"], "exited") << c1.body.dump();
  EXPECT_EQ(c1.body["image"]["hit"], false);
  EXPECT_EQ(c1.body["image"]["progress"]["layers_total"], 1);
  EXPECT_EQ(c1.body["image"]["progress"]["layers_done"], 1);
  EXPECT_GT(c1.body["image"]["progress"]["bytes_total"].get<uint64_t>(), 500'000u);
  EXPECT_EQ(c1.body["image"]["progress"]["bytes_done"], c1.body["image"]["progress"]["bytes_total"]);
  EXPECT_EQ(c1.body["models"][0]["hit"], false);
  EXPECT_GT(c1.body["cold_start"]["image_ms"].get<int64_t>(), 0);
  EXPECT_GT(c1.body["cold_start"]["download_ms"].get<int64_t>(), 0);
  const int manifests_after_pull = env_->RegistryLogLines("/v2/mctest/bb/manifests/1");
  EXPECT_GT(manifests_after_pull, manifests_before);

  Reply c2 = Run(agent, json{{"id", "c2"}, {"model", "org/slow"}, {"image", image},
                             {"command", {"/bin/sh", "-c", "echo ready"}}});
  ASSERT_EQ(c2.body["state"], "exited") << c2.body.dump();
  EXPECT_EQ(c2.body["image"]["hit"], true);
  EXPECT_EQ(c2.body["cold_start"]["image_ms"], 0);
  EXPECT_EQ(c2.body["models"][0]["hit"], true);
  EXPECT_EQ(env_->RegistryLogLines("/v2/mctest/bb/manifests/1"), manifests_after_pull);

  Reply inventory = Call("GET", agent->base_url() + "/v1/inventory");
  ASSERT_EQ(inventory.body["images"]["items"].size(), 1u) << inventory.body.dump();
  const json& item = inventory.body["images"]["items"][0];
  EXPECT_EQ(item["reference"], image);
  EXPECT_THAT(item["digest"].get<std::string>(), HasSubstr("sha256:"));
  EXPECT_GT(item["size_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(item["in_use"], 0);
  EXPECT_EQ(inventory.body["runtime"]["kind"], "podman");
}

// The nice value of each thread of this process (the agent runs in it).
std::vector<int> ThreadNices() {
  std::vector<int> nices;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/self/task", ec)) {
    const std::string stat = ReadFile(task.path() / "stat");
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 1));
    std::string field;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
      if (i == 19) nices.push_back(std::stoi(field));  // proc(5): field 19 is nice
    }
  }
  return nices;
}

// On a host with few cores the download's threads would starve the engine's pull, a mostly
// serial pipeline: while both run, the download's threads are nicer.
TEST_F(ContainerTest, ModelDownloadBesideAnImagePullYieldsItTheCpu) {
  AgentOptions o = Options("yield");
  o.upstream = *hub::Endpoint::Parse(upstream_->slow->base_url());  // about 2 s for org/slow
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  const int base = ::getpriority(PRIO_PROCESS, 0);
  auto yielding = [&] {
    for (int nice : ThreadNices()) {
      if (nice >= std::min(19, base + 10)) return true;
    }
    return false;
  };
  ASSERT_FALSE(yielding());
  Reply started = Call("POST", agent->base_url() + "/v1/workers",
                       json{{"id", "y1"}, {"model", "org/slow"}, {"image", env_->Image("bb2")},
                            {"command", {"/bin/sh", "-c", "echo ready"}}});
  ASSERT_EQ(started.status, 202) << started.body.dump();
  ASSERT_EQ(started.body["models"][0]["state"], "downloading") << started.body.dump();
  bool seen = false;
  for (int i = 0; i < 400 && !seen; ++i) {  // the download's threads: another thread's event
    seen = yielding();
    if (!seen) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(seen) << "no thread of the agent runs nicer while the model downloads";
  Reply done = Call("GET", agent->base_url() + "/v1/workers/y1?wait=120&until=exited,failed");
  EXPECT_EQ(done.body["state"], "exited") << done.body.dump();
}

TEST_F(ContainerTest, UnknownImageFailsTheWorkerOnceWithoutAPullStorm) {
  Agent* agent = StartAgent(Options("unknown"));
  ASSERT_NE(agent, nullptr);
  const std::string image = env_->registry() + "/mctest/nope:1";
  Reply w1 = Run(agent, json{{"id", "u1"}, {"model", "org/base"}, {"image", image}});
  ASSERT_EQ(w1.body["state"], "failed") << w1.body.dump();
  EXPECT_THAT(w1.body["message"].get<std::string>(), HasSubstr("not found"));
  EXPECT_EQ(w1.body["image"]["code"], "not_found");
  const int asked = env_->RegistryLogLines("/v2/mctest/nope/manifests/1");
  EXPECT_GE(asked, 1);
  // The next workers of that image within the minute get the same error at once.
  for (const char* id : {"u2", "u3"}) {
    Reply again = Run(agent, json{{"id", id}, {"model", "org/base"}, {"image", image}});
    EXPECT_EQ(again.body["state"], "failed");
    EXPECT_EQ(again.body["message"], w1.body["message"]);
  }
  EXPECT_EQ(env_->RegistryLogLines("/v2/mctest/nope/manifests/1"), asked);
}

TEST_F(ContainerTest, RegistryRefusingTheCredentialsFailsTheWorkerAndNeverShowsThem) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
  spdlog::default_logger()->sinks().push_back(ring);
  Agent* agent = StartAgent(Options("auth"));
  ASSERT_NE(agent, nullptr);
  const std::string image = env_->auth_registry() + "/mctest/bb:1";
  const std::string wrong = "wrong-password-9d2e";
  Reply refused = Run(agent, json{{"id", "a1"}, {"model", "org/base"}, {"image", image},
                                  {"registryAuth", {{"username", PodmanTestEnv::kUser},
                                                    {"password", wrong}}}});
  ASSERT_EQ(refused.body["state"], "failed") << refused.body.dump();
  EXPECT_EQ(refused.body["image"]["code"], "permission_denied");
  EXPECT_THAT(refused.body["message"].get<std::string>(), HasSubstr("registryAuth"));
  Reply none = Run(agent, json{{"id", "a2"}, {"model", "org/base"}, {"image", image}});
  EXPECT_EQ(none.body["image"]["code"], "permission_denied") << none.body.dump();
  // The right credentials are not held back by the failure of other ones.
  Reply right = Run(agent, json{{"id", "a3"}, {"model", "org/base"}, {"image", image},
                                {"registryAuth", {{"username", PodmanTestEnv::kUser},
                                                  {"password", PodmanTestEnv::kPassword}}},
                                {"command", {"/bin/sh", "-c", "cat /variant"}}});
  ASSERT_EQ(right.body["state"], "exited") << right.body.dump();
  EXPECT_EQ(right.body["exit_code"], 0);
  std::string logs;
  for (const std::string& line : ring->last_formatted()) logs += line;
  spdlog::default_logger()->sinks().pop_back();
  const std::string everything = logs + refused.body.dump() + right.body.dump() +
                                 Call("GET", agent->base_url() + "/v1/inventory").body.dump() +
                                 Call("GET", agent->base_url() + "/v1/workers").body.dump();
  EXPECT_THAT(everything, Not(HasSubstr(wrong)));
  EXPECT_THAT(everything, Not(HasSubstr(PodmanTestEnv::kPassword)));
}

// The engine's store is shared by every endpoint on the host: a private image pulled with one
// endpoint's credentials runs for another only if the registry lets that one read it too.
TEST_F(ContainerTest, PrivateImageInTheStoreRunsOnlyForWorkersTheRegistryLetsReadIt) {
  Agent* agent = StartAgent(Options("entitled"));
  ASSERT_NE(agent, nullptr);
  const std::string image = env_->auth_registry() + "/mctest/bb:1";
  const std::string manifest = "/v2/mctest/bb/manifests/1";
  auto worker = [&](const std::string& id, std::optional<std::pair<std::string, std::string>> auth) {
    json body{{"id", id}, {"endpoint", "ep-" + id}, {"model", "org/base"}, {"image", image},
              {"command", {"/bin/sh", "-c", "cat /variant"}}};
    if (auth) body["registryAuth"] = {{"username", auth->first}, {"password", auth->second}};
    return Run(agent, body);
  };
  // Endpoint A pulls the private image with its credentials.
  Reply a = worker("pa", std::pair{PodmanTestEnv::kUser, PodmanTestEnv::kPassword});
  ASSERT_EQ(a.body["state"], "exited") << a.body.dump();
  EXPECT_EQ(a.body["image"]["hit"], false);
  const int asked_after_pull = env_->RegistryLogLines(manifest, true);

  // Endpoint B names the same image without credentials: the image is here, but the registry
  // would not give it to B, so B does not run it.
  Reply b = worker("pb", std::nullopt);
  ASSERT_EQ(b.body["state"], "failed") << b.body.dump();
  EXPECT_EQ(b.body["image"]["code"], "permission_denied") << b.body.dump();
  const std::string message = b.body["message"];
  EXPECT_THAT(message, HasSubstr("refused to serve it without credentials")) << message;
  EXPECT_THAT(message, HasSubstr("registryAuth")) << message;
  EXPECT_GT(env_->RegistryLogLines(manifest, true), asked_after_pull);  // the registry was asked
  // So does one with wrong credentials; and a second try within the minute is refused at once.
  Reply wrong = worker("pw", std::pair{PodmanTestEnv::kUser2, std::string("not-the-password")});
  ASSERT_EQ(wrong.body["state"], "failed") << wrong.body.dump();
  EXPECT_EQ(wrong.body["image"]["code"], "permission_denied");
  const int asked = env_->RegistryLogLines(manifest, true);
  Reply b2 = worker("pb2", std::nullopt);
  EXPECT_EQ(b2.body["message"], b.body["message"]);
  EXPECT_EQ(env_->RegistryLogLines(manifest, true), asked);

  // Endpoint C with its own valid credentials runs it from the store (no pull), after one
  // question to the registry; A's next worker is not asked about again.
  Reply c = worker("pc", std::pair{PodmanTestEnv::kUser2, PodmanTestEnv::kPassword2});
  ASSERT_EQ(c.body["state"], "exited") << c.body.dump();
  EXPECT_EQ(c.body["exit_code"], 0);
  EXPECT_EQ(c.body["image"]["hit"], true);
  const int asked_for_c = env_->RegistryLogLines(manifest, true);
  EXPECT_GT(asked_for_c, asked);
  Reply a2 = worker("pa2", std::pair{PodmanTestEnv::kUser, PodmanTestEnv::kPassword});
  ASSERT_EQ(a2.body["state"], "exited") << a2.body.dump();
  EXPECT_EQ(env_->RegistryLogLines(manifest, true), asked_for_c);
}

// A local image whose registry does not answer runs only for credentials (or none) that the
// registry said yes to before: here it never did, so the worker fails "try later".
TEST_F(ContainerTest, LocalImageOfARegistryThatDoesNotAnswerIsNotRunUnconfirmed) {
  AgentOptions o = Options("unreachable");
  const fs::path engine = o.runtime.engine_root;
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  Reply pulled = Run(agent, json{{"id", "u0"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                                 {"command", {"/bin/sh", "-c", "true"}}});
  ASSERT_EQ(pulled.body["state"], "exited") << pulled.body.dump();
  // The same image under the name of a registry nobody listens on (a port just closed).
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  const std::string gone = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/mctest/bb:1";
  auto tagged = env_->Podman(engine, {"tag", env_->Image("bb"), gone});
  ASSERT_TRUE(tagged.ok() && tagged->ok()) << (tagged.ok() ? tagged->err : tagged.status().ToString());
  Reply w = Run(agent, json{{"id", "u1"}, {"model", "org/base"}, {"image", gone},
                            {"command", {"/bin/sh", "-c", "echo RAN"}}});
  ASSERT_EQ(w.body["state"], "failed") << w.body.dump();
  EXPECT_EQ(w.body["image"]["code"], "unavailable") << w.body.dump();
  EXPECT_THAT(w.body["message"].get<std::string>(), HasSubstr("try later"));
}

TEST_F(ContainerTest, ImageLargerThanTheImageBudgetFailsTheWorker) {
  AgentOptions o = Options("too_large");
  o.runtime.image_capacity = 100'000;  // busybox alone is about 1 MB
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  Reply w = Run(agent, json{{"id", "big"}, {"model", "org/base"}, {"image", env_->Image("bb")}});
  ASSERT_EQ(w.body["state"], "failed") << w.body.dump();
  EXPECT_EQ(w.body["image"]["code"], "resource_exhausted");
  EXPECT_THAT(w.body["message"].get<std::string>(), HasSubstr("image budget"));
  EXPECT_TRUE(Call("GET", agent->base_url() + "/v1/inventory").body["images"]["items"].empty());
}

TEST_F(ContainerTest, ImageBudgetRemovesTheLeastRecentlyUsedImageButNeverOneInUse) {
  AgentOptions o = Options("gc");
  o.runtime.image_capacity = 3'000'000;  // one busybox image fits (about 2 MB), two do not
  const fs::path engine_root = o.runtime.engine_root;
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  auto exists = [&](const std::string& image) {
    auto r = env_->Podman(engine_root, {"image", "exists", image});
    return r.ok() && r->ok();
  };
  Reply one = Run(agent, json{{"id", "g1"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                              {"command", {"/bin/sh", "-c", "true"}}});
  ASSERT_EQ(one.body["state"], "exited") << one.body.dump();
  Reply two = Run(agent, json{{"id", "g2"}, {"model", "org/base"}, {"image", env_->Image("bb2")},
                              {"command", {"/bin/sh", "-c", "sleep 300"}}},
                  "running,exited,failed");
  ASSERT_EQ(two.body["state"], "running") << two.body.dump();
  EXPECT_FALSE(exists(env_->Image("bb")));  // least recently used, and no worker on it
  EXPECT_TRUE(exists(env_->Image("bb2")));
  // bb comes back while bb2 is in use: bb2 stays although both no longer fit.
  Reply three = Run(agent, json{{"id", "g3"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                                {"command", {"/bin/sh", "-c", "true"}}});
  ASSERT_EQ(three.body["state"], "exited") << three.body.dump();
  EXPECT_TRUE(exists(env_->Image("bb2")));
  json items = Call("GET", agent->base_url() + "/v1/inventory").body["images"]["items"];
  ASSERT_EQ(items.size(), 2u) << items.dump();
}

TEST_F(ContainerTest, TwoGpuWorkerSeesExactlyItsTwoCdiDevices) {
  AgentOptions o = Options("gpus");
  // A fake CDI spec (podman reads /var/run/cdi) whose four GPUs are device nodes made here.
  const fs::path devs = env_->dir() / "t_gpus_devs";
  fs::create_directories(devs);
  const std::string kind = "mctest" + std::to_string(::getpid()) + ".example/gpu";
  json devices = json::array();
  for (int i = 0; i < 4; ++i) {
    const fs::path node = devs / ("fake" + std::to_string(i));
    ASSERT_EQ(::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << std::strerror(errno);
    devices.push_back({{"name", std::to_string(i)},
                       {"containerEdits",
                        {{"deviceNodes", {{{"path", "/dev/nvidia" + std::to_string(i)},
                                           {"hostPath", node.string()}}}}}}});
  }
  const fs::path spec = fs::path("/var/run/cdi") / ("modelcache-test-" + std::to_string(::getpid()) + ".json");
  fs::create_directories(spec.parent_path());
  std::ofstream(spec) << json{{"cdiVersion", "0.5.0"}, {"kind", kind}, {"devices", devices}}.dump();
  struct RemoveSpec {
    fs::path p;
    ~RemoveSpec() { std::error_code ec; fs::remove(p, ec); }
  } remove_spec{spec};
  o.gpus = 4;
  o.runtime.cdi_spec_dirs = {spec.parent_path()};
  o.runtime.cdi_kind = kind;
  Agent* agent = StartAgent(o);
  ASSERT_NE(agent, nullptr);
  const std::string script = "ls /dev | grep nvidia; echo CUDA=$CUDA_VISIBLE_DEVICES";
  Reply first = Run(agent, json{{"id", "gpu1"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                                {"gpus", 2}, {"command", {"/bin/sh", "-c", script + "; sleep 300"}}},
                    "running,exited,failed");
  ASSERT_EQ(first.body["state"], "running") << first.body.dump();
  Reply second = Run(agent, json{{"id", "gpu2"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                                 {"gpus", 2}, {"command", {"/bin/sh", "-c", script}}});
  ASSERT_EQ(second.body["state"], "exited") << second.body.dump();
  EXPECT_EQ(second.body["gpus"], json({2, 3}));
  EXPECT_EQ(ReadFile(second.body["logs"]["stdout"].get<std::string>()),
            "nvidia2\nnvidia3\nCUDA=0,1\n");
  ASSERT_EQ(Call("DELETE", agent->base_url() + "/v1/workers/gpu1?grace=0").status, 202);
  Reply stopped = Call("GET", agent->base_url() + "/v1/workers/gpu1?wait=60&until=exited");
  EXPECT_EQ(ReadFile(stopped.body["logs"]["stdout"].get<std::string>()),
            "nvidia0\nnvidia1\nCUDA=0,1\n");
}

TEST_F(ContainerTest, LimitsReachTheContainerAndAStopGivesTheGraceThenKills) {
  Agent* agent = StartAgent(Options("limits"));
  ASSERT_NE(agent, nullptr);
  if (!Call("GET", agent->base_url() + "/v1/inventory").body["runtime"]["limits"].get<bool>()) {
    GTEST_SKIP() << "SKIPPED LOUDLY: this host has no cgroup controllers for limits";
  }
  const std::string script =
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max "
      "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; "
      "trap '' TERM; echo armed; while true; do sleep 1; done";
  Reply w = Run(agent, json{{"id", "lim"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                            {"limits", {{"memory", "64MiB"}, {"pids", 50}, {"cpus", 0.5}}},
                            {"command", {"/bin/sh", "-c", script}}},
                "running,exited,failed");
  ASSERT_EQ(w.body["state"], "running") << w.body.dump();
  ASSERT_EQ(Call("DELETE", agent->base_url() + "/v1/workers/lim?grace=1").status, 202);
  Reply stopped = Call("GET", agent->base_url() + "/v1/workers/lim?wait=60&until=exited");
  ASSERT_EQ(stopped.body["state"], "exited") << stopped.body.dump();
  EXPECT_EQ(stopped.body["exit_code"], 137);  // it ignored SIGTERM: SIGKILL after the grace
  const std::string out = ReadFile(stopped.body["logs"]["stdout"].get<std::string>());
  EXPECT_THAT(out, HasSubstr(std::to_string(64u << 20) + "\n50\n"));
}

TEST_F(ContainerTest, AdapterModelsAndLinksAreMountedReadOnlyWhereTheAppLooks) {
  Agent* agent = StartAgent(Options("links"));
  ASSERT_NE(agent, nullptr);
  const std::string script =
      "echo PATHS=$MODEL_PATHS; ls /runpod-volume/huggingface-cache/hub; "
      "ls /app/models/loras; ls /app/models/base; "
      "cmp /app/models/loras/config.json /runpod-volume/huggingface-cache/hub/models--org--lora/"
      "snapshots/*/config.json && echo SAME; "
      "echo x >> /app/models/loras/config.json 2>/dev/null && echo WROTE";
  Reply w = Run(agent, json{{"id", "lk"}, {"image", env_->Image("bb")},
                            {"models", {{{"model", "org/base"}},
                                        {{"model", "org/lora"}, {"include", {"*.json"}}}}},
                            {"links", {{{"model", "org/lora"}, {"file", "config.json"},
                                        {"dest", "/app/models/loras/config.json"}},
                                       {{"dest", "/app/models/base"}}}},
                            {"command", {"/bin/sh", "-c", script}}});
  ASSERT_EQ(w.body["state"], "exited") << w.body.dump();
  ASSERT_EQ(w.body["models"].size(), 2u);
  const std::string out = ReadFile(w.body["logs"]["stdout"].get<std::string>());
  EXPECT_THAT(out, HasSubstr("models--org--base\nmodels--org--lora\n"));
  EXPECT_THAT(out, HasSubstr(w.body["models"][0]["path"].get<std::string>() + ":" +
                             w.body["models"][1]["path"].get<std::string>()));
  EXPECT_THAT(out, HasSubstr("config.json\n"));
  EXPECT_THAT(out, HasSubstr("generation_config.json"));  // the whole base snapshot, nested too
  EXPECT_THAT(out, HasSubstr("original"));
  EXPECT_THAT(out, HasSubstr("SAME"));
  EXPECT_THAT(out, Not(HasSubstr("WROTE")));
}

TEST_F(ContainerTest, ExampleRunpodWorkerImageLoadsItsModelOffline) {
  auto image = env_->ExampleWorkerImage();
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  Agent* agent = StartAgent(Options("example_worker"));
  ASSERT_NE(agent, nullptr);
  Reply w = Run(agent, json{{"id", "rp"}, {"model", "org/base"}, {"image", *image},
                            {"args", {"--test_input", R"({"input": {"hello": "world"}})"}}});
  ASSERT_EQ(w.body["state"], "exited") << w.body.dump();
  const std::string out = ReadFile(w.body["logs"]["stdout"].get<std::string>());
  EXPECT_EQ(w.body["exit_code"], 0) << out << ReadFile(w.body["logs"]["stderr"].get<std::string>());
  json result = json::parse(out, nullptr, false);
  ASSERT_TRUE(result.is_object()) << out;
  EXPECT_EQ(result["output"]["model"], "org/base");
  EXPECT_EQ(result["output"]["revision"], w.body["commit"]);
  EXPECT_FALSE(result["output"]["tensors"].empty()) << out;
  EXPECT_EQ(result["output"]["echo"]["hello"], "world");
}

// The agent as a process, SIGKILLed with a container running, then started again.
TEST_F(ContainerTest, AgentKilledWithContainersRunningReadoptsThemAndStopsUnknownOnes) {
  AgentOptions o = Options("sigkill");
  const std::string binary = std::string(MC_BINARY_DIR) + "/src/cli/modelcache";
  fs::create_directories(o.state_dir);
  const std::string key_file = (o.state_dir.parent_path() / "agent-key").string();
  {
    std::ofstream(key_file) << kAgentKey << "\n";  // the key Call() sends
  }
  auto start_agent = [&](const fs::path& out) -> std::pair<pid_t, std::string> {
    pid_t pid = fork();
    if (pid == 0) {
      freopen(out.c_str(), "w", stdout);
      freopen((out.string() + ".err").c_str(), "w", stderr);
      setsid();
      execl(binary.c_str(), binary.c_str(), "agent", "--cache-dir", o.cache_dir.c_str(),
            "--state-dir", o.state_dir.c_str(), "--capacity", "1GB", "--listen", "127.0.0.1:0",
            "--upstream", upstream_->server->base_url().c_str(), "--runtime", "podman",
            "--oci-runtime", "runc", "--engine-root", o.runtime.engine_root.c_str(),
            "--insecure-registry", env_->registry().c_str(), "--stop-grace", "2",
            "--api-key-file", key_file.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 3000; ++i) {  // until it says where it listens
      const std::string text = ReadFile(out);
      if (size_t at = text.find("http://"); at != std::string::npos && text.back() == '\n') {
        return {pid, text.substr(at, text.find('\n', at) - at)};
      }
      std::this_thread::sleep_for(10ms);  // a process starting, not a test's timing
    }
    return {pid, ""};
  };
  fs::create_directories(o.state_dir);
  auto [pid1, url1] = start_agent(o.state_dir.parent_path() / "agent1.out");
  ASSERT_FALSE(url1.empty());
  const json body{{"id", "k1"}, {"model", "org/base"}, {"image", env_->Image("bb")},
                  {"command", {"/bin/sh", "-c", "echo up; sleep 300"}}};
  ASSERT_EQ(Call("POST", url1 + "/v1/workers", body).status, 202);
  Reply k1 = Call("GET", url1 + "/v1/workers/k1?wait=120&until=running,exited,failed");
  ASSERT_EQ(k1.body["state"], "running") << k1.body.dump();
  const std::string container = k1.body["container"].get<std::string>();
  ASSERT_TRUE(WaitForLog(k1.body["logs"]["stdout"].get<std::string>(), "up"));
  auto id_of = [&](const std::string& name) {
    auto r = env_->Podman(o.runtime.engine_root, {"inspect", "--format", "{{.Id}}", name});
    return r.ok() && r->ok() ? r->out : "";
  };
  const std::string container_id = id_of(container);
  ASSERT_FALSE(container_id.empty());
  // A container labelled as this agent's that its state does not know.
  const std::string instance = ReadFile(o.state_dir / "instance-id").substr(0, 8);
  const std::string stray = "mc-" + instance + "-stray";
  auto made = env_->Podman(o.runtime.engine_root,
                           {"run", "-d", "--rm", "--name", stray, "--label",
                            "modelcache.agent=" + instance, "--label", "modelcache.worker=stray",
                            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                            env_->Image("bb"), "/bin/busybox", "sleep", "300"});
  ASSERT_TRUE(made.ok() && made->ok()) << (made.ok() ? made->err : made.status().ToString());

  ASSERT_EQ(kill(pid1, SIGKILL), 0);
  waitpid(pid1, nullptr, 0);
  auto [pid2, url2] = start_agent(o.state_dir.parent_path() / "agent2.out");
  ASSERT_FALSE(url2.empty());
  Reply adopted = Call("GET", url2 + "/v1/workers/k1");
  EXPECT_EQ(adopted.body["state"], "running") << adopted.body.dump();
  EXPECT_EQ(id_of(container), container_id);  // the same container, never restarted
  // The stray one is stopped (and so removed): `podman wait` returns once it has ended.
  (void)env_->Podman(o.runtime.engine_root, {"wait", stray});
  EXPECT_EQ(id_of(stray), "");
  ASSERT_EQ(Call("DELETE", url2 + "/v1/workers/k1?grace=0").status, 202);
  Reply ended = Call("GET", url2 + "/v1/workers/k1?wait=60&until=exited");
  EXPECT_EQ(ended.body["state"], "exited") << ended.body.dump();
  kill(pid2, SIGTERM);
  waitpid(pid2, nullptr, 0);
}

}  // namespace
}  // namespace mc::agent
