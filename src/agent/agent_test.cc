// The agent in-process against a real upstream MirrorServer on loopback: single-flight ensures,
// peer fetches, eviction under a byte budget with pins, workers that read the model offline,
// restart with an interrupted download, the controller link, metrics and input validation.
// Time in the agent is a FakeClock, so LRU order is set by the test, not by the scheduler.
#include "mc/agent/agent.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "mc/cache/cache_scan.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_client.h"
#include "mc/net/http_server.h"
#include "mc/testing/model_fixture.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr uint64_t kModelBytes = 512 << 10;  // weights per small model

fs::path TempRoot(const std::string& name) {
  fs::path root = fs::temp_directory_path() /
                  ("mc_agent_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(root);
  fs::create_directories(root);
  return root;
}

// The upstream: org/m0..org/m4 (about kModelBytes each, distinct seeds), org/big (larger than
// any budget used here).
struct Upstream {
  fs::path root;
  fs::path cache_dir;
  std::map<std::string, cache::ImportResult> repos;
  std::unique_ptr<mirror::MirrorServer> server;

  explicit Upstream(std::vector<mirror::FaultRule> faults = {}) {
    root = TempRoot("upstream");
    cache_dir = root / "cache";
    auto store = cache::CacheStore::Open({cache_dir, std::nullopt, true});
    if (!store.ok()) std::abort();
    for (int i = 0; i < 5; ++i) Add(**store, "org/m" + std::to_string(i), kModelBytes, i + 1);
    Add(**store, "org/big", 8 << 20, 99);
    mirror::MirrorOptions o;
    o.cache_dir = cache_dir;
    o.faults.rules = std::move(faults);
    server = *mirror::MirrorServer::Create(std::move(o));
    if (!server->Start().ok()) std::abort();
  }
  void Add(cache::CacheStore& store, const std::string& id, uint64_t bytes, uint64_t seed) {
    testing::ModelFixtureOptions f;
    f.total_weight_bytes = bytes;
    f.seed = seed;
    const fs::path src = root / "src" / id;
    if (!testing::WriteModelFixture(src, f).ok()) std::abort();
    auto imported = cache::ImportFolder(store, src, *RepoId::Parse(id), *Revision::Parse("main"));
    if (!imported.ok()) std::abort();
    repos.emplace(id, *imported);
  }
  ~Upstream() {
    server->Stop();
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  size_t Blobs(const std::string& id) const {
    std::set<std::string> etags;
    for (const auto& f : repos.at(id).files) etags.insert(f.etag);
    return etags.size();
  }
  uint64_t Bytes(const std::string& id) const {
    uint64_t total = 0;
    std::set<std::string> etags;
    for (const auto& f : repos.at(id).files) {
      if (etags.insert(f.etag).second) total += f.size;
    }
    return total;
  }
};

struct Reply {
  int status = 0;
  json body;
};

constexpr char kAgentKey[] = "agent-test-key-0123456789";
constexpr char kPeerKey[] = "fleet-peer-key-abcdefghij";  // every test agent's (--peer-key-file)

Reply Call(const std::string& method, const std::string& url, const std::string& body = "") {
  static thread_local auto client = net::HttpClient::Create();
  net::HttpClientRequest req;
  req.method = method;
  req.url = url;
  if (!body.empty() || method == "POST") {
    req.body = body;
    req.headers.Set("Content-Type", "application/json");
  }
  // The agent's key (every test agent has it) and the JSON type its /v1 requires.
  req.headers.Set("Authorization", std::string("Bearer ") + kAgentKey);
  req.headers.Set("Content-Type", "application/json");
  req.timeout = 120s;
  auto res = client->Send(req);
  if (!res.ok()) return Reply{0, json{{"transport", res.status().ToString()}}};
  return Reply{res->status, json::parse(res->body, nullptr, false)};
}

class AgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { upstream_ = new Upstream(); }
  static void TearDownTestSuite() {
    delete upstream_;
    upstream_ = nullptr;
  }

  AgentOptions Options(const std::string& name) {
    const fs::path dir = TempRoot(name);
    dirs_.push_back(dir);
    AgentOptions o;
    o.api_key = hub::Secret(kAgentKey);
    o.peer_key = hub::Secret(kPeerKey);
    o.cache_dir = dir / "cache";
    o.state_dir = dir / "state";
    o.capacity = 1ull << 30;
    o.gpus = 2;
    o.gpu_type = "test-gpu";
    o.upstream = *hub::Endpoint::Parse(upstream_->server->base_url());
    o.clock = &clock_;
    o.sleep = [](std::chrono::milliseconds) {};
    o.maintenance_interval = 3600s;
    o.tuning.stall_timeout = 2s;
    return o;
  }
  std::unique_ptr<Agent> StartAgent(AgentOptions o) {
    auto agent = Agent::Create(std::move(o));
    EXPECT_TRUE(agent.ok()) << agent.status().ToString();
    if (!agent.ok()) return nullptr;
    EXPECT_TRUE((*agent)->Start().ok());
    return std::move(*agent);
  }
  Reply Ensure(Agent& agent, const std::string& model, const std::string& extra = "",
               int wait = 60) {
    std::string body = R"({"model":")" + model + "\"" + extra + "}";
    return Call("POST", agent.base_url() + "/v1/ensure?wait=" + std::to_string(wait), body);
  }
  ~AgentTest() override {
    for (const fs::path& d : dirs_) {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  }

  static Upstream* upstream_;
  FakeClock clock_;
  std::vector<fs::path> dirs_;
};
Upstream* AgentTest::upstream_ = nullptr;

std::set<std::string> CachedModels(Agent& agent) {
  std::set<std::string> out;
  Reply inv = Call("GET", agent.base_url() + "/v1/inventory");
  for (const json& s : inv.body["snapshots"]) out.insert(s["model"].get<std::string>());
  return out;
}

TEST_F(AgentTest, SixteenConcurrentEnsuresShareOneDownload) {
  auto agent = StartAgent(Options("single_flight"));
  ASSERT_TRUE(agent);
  const uint64_t gets_before = upstream_->server->stats().resolve_get;
  std::vector<Reply> replies(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] { replies[i] = Ensure(*agent, "org/m0"); });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> paths;
  for (const Reply& r : replies) {
    ASSERT_EQ(r.status, 200) << r.body.dump();
    EXPECT_EQ(r.body["state"], "ready");
    paths.insert(r.body["snapshot_path"].get<std::string>());
  }
  EXPECT_EQ(paths.size(), 1u);
  // Each blob was served once: one data request per distinct blob (none is big enough to split).
  EXPECT_EQ(upstream_->server->stats().resolve_get - gets_before, upstream_->Blobs("org/m0"));
  // Later ensures are hits: no download, no request at all.
  const auto stats_before = upstream_->server->stats();
  Reply again = Ensure(*agent, "org/m0@" + upstream_->repos.at("org/m0").commit.str(), "", 0);
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(again.body["hit"].get<bool>());
  EXPECT_EQ(upstream_->server->stats().resolve_get, stats_before.resolve_get);
  EXPECT_EQ(upstream_->server->stats().repo_info, stats_before.repo_info);
}

TEST_F(AgentTest, EnsureWithoutWaitAnswersDownloadingThenReady) {
  auto agent = StartAgent(Options("no_wait"));
  ASSERT_TRUE(agent);
  Reply first = Ensure(*agent, "org/m1", "", 0);
  ASSERT_TRUE(first.status == 202 || first.status == 200) << first.body.dump();
  if (first.status == 202) {
    EXPECT_EQ(first.body["state"], "downloading");
    EXPECT_TRUE(first.body.contains("progress"));
  }
  Reply done = Ensure(*agent, "org/m1");
  EXPECT_EQ(done.status, 200);
  const fs::path snap = done.body["snapshot_path"].get<std::string>();
  EXPECT_TRUE(fs::exists(snap / "config.json"));
}

TEST_F(AgentTest, PeerAgentServesTheBlobsAndTheUpstreamNone) {
  auto a = StartAgent(Options("peer_a"));
  auto b = StartAgent(Options("peer_b"));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(Ensure(*a, "org/m2").status, 200);
  const uint64_t upstream_bytes = upstream_->server->stats().file_bytes_served;
  Reply r = Ensure(*b, "org/m2", R"(,"peers":[")" + a->base_url() + "\"]");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(upstream_->server->stats().file_bytes_served, upstream_bytes);
  ASSERT_TRUE(r.body.contains("bytes_by_source")) << r.body.dump();
  EXPECT_EQ(r.body["bytes_by_source"].value(a->base_url(), uint64_t{0}),
            upstream_->Bytes("org/m2"));
}

// The swarm (issue 17): agents that fetch the same commit at the same time, behind an origin
// capped at 4 MB/s in total. Small pieces (256 KiB cells) so that org/big (8 MiB) has many.
class SwarmTest : public AgentTest {
 protected:
  void SetUp() override {
    mirror::MirrorOptions mo;
    mo.cache_dir = upstream_->cache_dir;
    mo.max_bytes_per_second = 4'000'000;
    origin_ = *mirror::MirrorServer::Create(std::move(mo));
    ASSERT_TRUE(origin_->Start().ok());
  }
  void TearDown() override { origin_->Stop(); }
  AgentOptions SwarmOptions(const std::string& name) {
    AgentOptions o = Options(name);
    o.upstream = *hub::Endpoint::Parse(origin_->base_url());
    o.tuning.cell_size = 256 << 10;
    o.tuning.min_split_size = 512 << 10;
    o.tuning.request_size = 1 << 20;
    o.tuning.connections = 4;
    o.tuning.max_connections = 4;
    // The swarm's "not written yet" polls wait in real time (the origin's cap is real time).
    o.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
    return o;
  }
  static std::string SwarmOf(const Agent& other) {
    return R"(,"swarm":[")" + other.base_url() + "\"]";
  }
  void ExpectVerified(const AgentOptions& o) {
    auto store = cache::CacheStore::Open({o.cache_dir, std::nullopt, true});
    ASSERT_TRUE(store.ok());
    auto report = cache::VerifyCache(**store, std::nullopt, std::nullopt);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->failed, 0);
    EXPECT_GT(report->ok, 0);
  }
  std::unique_ptr<mirror::MirrorServer> origin_;
};

TEST_F(SwarmTest, TwoAgentsStartingTogetherGetTheModelFromTheOriginOnce) {
  const AgentOptions oa = SwarmOptions("swarm_a"), ob = SwarmOptions("swarm_b");
  auto a = StartAgent(oa);
  auto b = StartAgent(ob);
  ASSERT_TRUE(a && b);
  Reply ra, rb;
  std::thread ta([&] { ra = Ensure(*a, "org/big", SwarmOf(*b), 120); });
  std::thread tb([&] { rb = Ensure(*b, "org/big", SwarmOf(*a), 120); });
  ta.join();
  tb.join();
  ASSERT_EQ(ra.status, 200) << ra.body.dump();
  ASSERT_EQ(rb.status, 200) << rb.body.dump();
  const uint64_t model = upstream_->Bytes("org/big");
  EXPECT_LE(origin_->stats().file_bytes_served, model + model / 20);  // <= 1.05x
  ExpectVerified(oa);
  ExpectVerified(ob);
}

// What the controller sends when it places three workers one after another: each host is told
// only of the hosts placed before it (the first of none). Members learn of each other from their
// piece requests, so the origin still sends the model about once.
TEST_F(SwarmTest, HostsToldOnlyOfEarlierHostsLearnOfEachOtherAndShareTheOrigin) {
  const AgentOptions oa = SwarmOptions("swarm_nest_a"), ob = SwarmOptions("swarm_nest_b"),
                     oc = SwarmOptions("swarm_nest_c");
  auto a = StartAgent(oa);
  auto b = StartAgent(ob);
  auto c = StartAgent(oc);
  ASSERT_TRUE(a && b && c);
  const std::string a_url = a->base_url(), b_url = b->base_url();
  Reply ra, rb, rc;
  std::thread ta([&] { ra = Ensure(*a, "org/big", "", 120); });
  std::thread tb([&] { rb = Ensure(*b, "org/big", R"(,"swarm":[")" + a_url + "\"]", 120); });
  std::thread tc([&] {
    rc = Ensure(*c, "org/big", R"(,"swarm":[")" + a_url + "\",\"" + b_url + "\"]", 120);
  });
  ta.join();
  tb.join();
  tc.join();
  ASSERT_EQ(ra.status, 200) << ra.body.dump();
  ASSERT_EQ(rb.status, 200) << rb.body.dump();
  ASSERT_EQ(rc.status, 200) << rc.body.dump();
  const uint64_t model = upstream_->Bytes("org/big");
  // The bytes the hosts took from the origin: the model once, plus what a host fetched alone
  // before the others' first requests reached it and what it had received of a piece whose owner
  // changed under it (a host joined). On this 8 MiB model (32 pieces, a 4 MB/s origin) that
  // start-up skew is up to ~10%; on 64 and 512 MiB models 0.4% and 0.04% (bench/swarm_netns.py).
  // Without joining it is 1 + 1/2 + 1/3 = 1.83x, which the bounds below refuse.
  uint64_t from_origin = 0, a_from_peers = 0;
  for (const Reply* r : {&ra, &rb, &rc}) {
    from_origin += r->body["bytes_by_source"].value("upstream", uint64_t{0});
  }
  EXPECT_LE(from_origin, model + model / 5);  // <= 1.2x
  // The origin's own count is of whole answers, the stopped ones included.
  EXPECT_LE(origin_->stats().file_bytes_served, model + model / 2);
  // The first host, told of nobody, got pieces from the later ones.
  for (const auto& [source, bytes] : ra.body["bytes_by_source"].items()) {
    if (source != "upstream") a_from_peers += bytes.get<uint64_t>();
  }
  EXPECT_GT(a_from_peers, 0u) << ra.body.dump();
  ExpectVerified(oa);
  ExpectVerified(ob);
  ExpectVerified(oc);
}

TEST_F(SwarmTest, MemberKilledMidTransferLeavesTheOtherToFinishVerified) {
  const AgentOptions oa = SwarmOptions("swarm_kill_a"), ob = SwarmOptions("swarm_kill_b");
  auto a = StartAgent(oa);
  auto b = StartAgent(ob);
  ASSERT_TRUE(a && b);
  const std::string a_url = a->base_url();
  Reply ra;
  std::thread ta([&] { ra = Ensure(*a, "org/big", SwarmOf(*b), 120); });
  // b starts too, then dies once the origin has sent it (or a) a quarter of the model.
  Reply rb = Ensure(*b, "org/big", R"(,"swarm":[")" + a_url + "\"]", 0);
  EXPECT_EQ(rb.status, 202) << rb.body.dump();
  const uint64_t model = upstream_->Bytes("org/big");
  while (origin_->stats().file_bytes_served < model / 4) std::this_thread::sleep_for(20ms);
  b.reset();
  ta.join();
  ASSERT_EQ(ra.status, 200) << ra.body.dump();
  ExpectVerified(oa);
}

TEST_F(AgentTest, EvictsLeastRecentlyUsedUnpinnedModelToMakeRoom) {
  AgentOptions o = Options("evict");
  // Room for three models: the fourth must evict exactly one.
  o.capacity = upstream_->Bytes("org/m0") * 3 + upstream_->Bytes("org/m0") / 5;
  o.high_watermark = 1.0;
  o.low_watermark = 0.95;
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  for (const char* m : {"org/m0", "org/m1", "org/m2"}) {
    ASSERT_EQ(Ensure(*agent, m).status, 200) << m;
    clock_.Advance(10s);
  }
  // m0 is pinned by the operator, m1 used again: m2 is now the least recently used unpinned.
  ASSERT_EQ(Call("POST", agent->base_url() + "/v1/pins", R"({"model":"org/m0"})").status, 200);
  ASSERT_EQ(Ensure(*agent, "org/m1").status, 200);
  clock_.Advance(10s);
  Reply fourth = Ensure(*agent, "org/m3");
  ASSERT_EQ(fourth.status, 200) << fourth.body.dump();
  EXPECT_EQ(CachedModels(*agent), (std::set<std::string>{"org/m0", "org/m1", "org/m3"}));
  // The next one evicts m1 (m0 is still pinned even though it is the oldest).
  clock_.Advance(10s);
  ASSERT_EQ(Ensure(*agent, "org/m4").status, 200);
  EXPECT_EQ(CachedModels(*agent), (std::set<std::string>{"org/m0", "org/m3", "org/m4"}));
  Reply inv = Call("GET", agent->base_url() + "/v1/inventory");
  EXPECT_LE(inv.body["disk"]["used_bytes"].get<uint64_t>(), o.capacity);
}

// The controller's pins (owner "fleet", its cached replicas) hold like the operator's, are
// apart from them, and a pin may come before the download it protects.
TEST_F(AgentTest, FleetPinKeepsTheModelAndIsApartFromTheOperators) {
  AgentOptions o = Options("fleet_pin");
  o.capacity = upstream_->Bytes("org/m0") * 3 + upstream_->Bytes("org/m0") / 5;
  o.high_watermark = 1.0;
  o.low_watermark = 0.95;
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  const std::string m0 = upstream_->repos.at("org/m0").commit.str();
  const std::string pin = json{{"model", "org/m0"}, {"revision", m0}, {"owner", "fleet"}}.dump();
  Reply pinned = Call("POST", agent->base_url() + "/v1/pins", pin);  // before the download
  ASSERT_EQ(pinned.status, 200) << pinned.body.dump();
  EXPECT_EQ(pinned.body["owner"], "fleet");
  ASSERT_EQ(Ensure(*agent, "org/m0").status, 200);
  clock_.Advance(10s);
  for (const char* m : {"org/m1", "org/m2", "org/m3"}) {  // m0 is the oldest: not evicted
    ASSERT_EQ(Ensure(*agent, m).status, 200) << m;
    clock_.Advance(10s);
  }
  EXPECT_TRUE(CachedModels(*agent).contains("org/m0"));
  EXPECT_EQ(Call("POST", agent->base_url() + "/v1/evict", R"({"model":"org/m0"})").status, 409);
  // The operator's unpin leaves the fleet's pin; another owner cannot be named.
  EXPECT_EQ(Call("DELETE", agent->base_url() + "/v1/pins", R"({"model":"org/m0"})").status, 404);
  EXPECT_EQ(
      Call("POST", agent->base_url() + "/v1/pins", R"({"model":"org/m0","owner":"worker:w1"})")
          .status,
      400);
  ASSERT_EQ(Call("DELETE", agent->base_url() + "/v1/pins", pin).status, 200);
  EXPECT_EQ(Call("POST", agent->base_url() + "/v1/evict", R"({"model":"org/m0"})").status, 200);
}

TEST_F(AgentTest, RequestLargerThanTheBudgetFailsAndChangesNothing) {
  AgentOptions o = Options("too_big");
  o.capacity = upstream_->Bytes("org/m0") * 3;
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  ASSERT_EQ(Ensure(*agent, "org/m0").status, 200);
  Reply big = Ensure(*agent, "org/big");
  EXPECT_EQ(big.body["code"], "resource_exhausted") << big.body.dump();
  EXPECT_GE(big.status, 400);
  EXPECT_NE(big.body["error"].get<std::string>().find("capacity"), std::string::npos);
  EXPECT_EQ(CachedModels(*agent), (std::set<std::string>{"org/m0"}));
  EXPECT_FALSE(fs::exists(o.cache_dir / "models--org--big" / "snapshots" /
                          upstream_->repos.at("org/big").commit.str()));
  // The error is reported once; the same request then tries again (and fails the same way).
  Reply again = Ensure(*agent, "org/big");
  EXPECT_EQ(again.body["code"], "resource_exhausted");
}

// Fencing (docs/controller.md, "Several controllers"): a start or stop that carries an older
// leadership epoch than one the agent has seen is refused with 409, before anything is done.
TEST_F(AgentTest, AStartOrStopFromAnOlderLeadershipEpochIsRefused) {
  auto agent = StartAgent(Options("fence"));
  ASSERT_NE(agent, nullptr);
  auto send = [&](const std::string& method, const std::string& path,
                  std::optional<int64_t> epoch) {
    static thread_local auto client = net::HttpClient::Create();
    net::HttpClientRequest req;
    req.method = method;
    req.url = agent->base_url() + path;
    req.headers.Set("Authorization", std::string("Bearer ") + kAgentKey);
    req.headers.Set("Content-Type", "application/json");
    if (epoch) req.headers.Set("X-Modelcache-Epoch", std::to_string(*epoch));
    if (method == "POST") req.body = R"({"id":"w-fenced","model":"org/m0","command":["true"]})";
    auto res = client->Send(req);
    return res.ok() ? std::pair(res->status, res->body) : std::pair(0, res.status().ToString());
  };
  // The leader of epoch 5 speaks first (no such worker: 404, past the fence).
  EXPECT_EQ(send("DELETE", "/v1/workers/w-none", 5).first, 404);
  // A deposed leader of epoch 4, late: refused, and says why.
  auto late_stop = send("DELETE", "/v1/workers/w-none", 4);
  EXPECT_EQ(late_stop.first, 409);
  EXPECT_NE(late_stop.second.find("fenced"), std::string::npos) << late_stop.second;
  auto late_start = send("POST", "/v1/workers", 4);
  EXPECT_EQ(late_start.first, 409) << late_start.second;
  EXPECT_FALSE(Call("GET", agent->base_url() + "/v1/workers").body["workers"].size() > 0);
  // The same epoch and newer ones pass; then the old one is refused still.
  EXPECT_EQ(send("DELETE", "/v1/workers/w-none", 5).first, 404);
  EXPECT_EQ(send("DELETE", "/v1/workers/w-none", 7).first, 404);
  EXPECT_EQ(send("DELETE", "/v1/workers/w-none", 6).first, 409);
  // Without an epoch (a controller on SQLite): not fenced.
  EXPECT_EQ(send("DELETE", "/v1/workers/w-none", std::nullopt).first, 404);
  EXPECT_EQ(send("DELETE", "/v1/workers/w-none", -1).first, 400);
}

TEST_F(AgentTest, WorkerSeesTheModelOfflineAndItsGpus) {
  AgentOptions o = Options("worker");
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  const std::string script = std::string(MC_SOURCE_DIR) + "/examples/print_model_files.py";
  Reply started = Call("POST", agent->base_url() + "/v1/workers",
                       json{{"id", "w1"}, {"model", "org/m1"}, {"command", {"python3", script}},
                            {"env", {{"EXTRA", "1"}, {"HF_HUB_OFFLINE", "0"}}}, {"gpus", 2}}
                           .dump());
  ASSERT_EQ(started.status, 202) << started.body.dump();
  Reply exited = Call("GET", agent->base_url() + "/v1/workers/w1?wait=60&until=exited,failed");
  ASSERT_EQ(exited.body["state"], "exited") << exited.body.dump();
  EXPECT_EQ(exited.body["exit_code"], 0) << exited.body.dump();
  std::ifstream log(exited.body["logs"]["stdout"].get<std::string>());
  const std::string out(std::istreambuf_iterator<char>(log), {});
  for (const auto& f : upstream_->repos.at("org/m1").files) {
    EXPECT_NE(out.find(f.path + " " + std::to_string(f.size)), std::string::npos) << out;
  }
  EXPECT_NE(out.find("gpus [0,1]"), std::string::npos) << out;
}

TEST_F(AgentTest, RunningWorkerPinsItsModelUntilStopped) {
  auto agent = StartAgent(Options("worker_pin"));
  ASSERT_TRUE(agent);
  const std::string script = std::string(MC_SOURCE_DIR) + "/examples/print_model_files.py";
  ASSERT_EQ(Call("POST", agent->base_url() + "/v1/workers",
                 json{{"id", "w2"}, {"model", "org/m2"}, {"command", {"python3", script, "--serve"}},
                      {"gpus", 1}}
                     .dump())
                .status,
            202);
  Reply running = Call("GET", agent->base_url() + "/v1/workers/w2?wait=60&until=running,failed");
  ASSERT_EQ(running.body["state"], "running") << running.body.dump();
  Reply pins = Call("GET", agent->base_url() + "/v1/pins");
  ASSERT_EQ(pins.body["pins"].size(), 1u);
  EXPECT_EQ(pins.body["pins"][0]["owner"], "worker:w2");
  // A pinned model is not evicted, even by hand.
  EXPECT_EQ(Call("POST", agent->base_url() + "/v1/evict", R"({"model":"org/m2"})").status, 409);
  // Another worker needing two GPUs does not fit on the one left.
  Reply no_gpu = Call("POST", agent->base_url() + "/v1/workers",
                      json{{"model", "org/m2"}, {"command", {"true"}}, {"gpus", 2}}.dump());
  EXPECT_EQ(no_gpu.body["code"], "resource_exhausted") << no_gpu.body.dump();

  ASSERT_EQ(Call("DELETE", agent->base_url() + "/v1/workers/w2?grace=5").status, 202);
  Reply exited = Call("GET", agent->base_url() + "/v1/workers/w2?wait=60&until=exited");
  EXPECT_EQ(exited.body["state"], "exited");
  EXPECT_TRUE(Call("GET", agent->base_url() + "/v1/pins").body["pins"].empty());
  EXPECT_EQ(Call("POST", agent->base_url() + "/v1/evict", R"({"model":"org/m2"})").status, 200);
}

TEST_F(AgentTest, WorkerWaitsForItsModelBeforeItStarts) {
  auto agent = StartAgent(Options("worker_wait"));
  ASSERT_TRUE(agent);
  Reply started = Call("POST", agent->base_url() + "/v1/workers",
                       json{{"id", "w3"}, {"model", "org/m3"},
                            {"command", {"sh", "-c", "test -f \"$MODEL_PATH/config.json\""}}}
                           .dump());
  ASSERT_EQ(started.status, 202);
  Reply exited = Call("GET", agent->base_url() + "/v1/workers/w3?wait=60&until=exited,failed");
  EXPECT_EQ(exited.body["state"], "exited") << exited.body.dump();
  EXPECT_EQ(exited.body["exit_code"], 0);
}

TEST_F(AgentTest, ExitedWorkerShowsTheLastLinesOfItsLog) {
  auto agent = StartAgent(Options("worker_tail"));
  ASSERT_TRUE(agent);
  // 30 lines on stderr: the document keeps the last 20, in order.
  Reply started = Call("POST", agent->base_url() + "/v1/workers",
                       json{{"id", "w5"}, {"model", "org/m3"},
                            {"command", {"sh", "-c",
                                         "echo to-stdout; for i in $(seq 1 30); do echo line $i >&2; "
                                         "done; exit 3"}}}
                           .dump());
  ASSERT_EQ(started.status, 202) << started.body.dump();
  Reply exited = Call("GET", agent->base_url() + "/v1/workers/w5?wait=60&until=exited,failed");
  ASSERT_EQ(exited.body["state"], "exited") << exited.body.dump();
  EXPECT_EQ(exited.body["exit_code"], 3);
  std::string want;
  for (int i = 11; i <= 30; ++i) want += (i > 11 ? "\n" : "") + std::string("line ") + std::to_string(i);
  EXPECT_EQ(exited.body["log_tail"], want) << exited.body.dump();
}

TEST_F(AgentTest, WorkerOfAnUnknownModelFails) {
  auto agent = StartAgent(Options("worker_unknown"));
  ASSERT_TRUE(agent);
  ASSERT_EQ(Call("POST", agent->base_url() + "/v1/workers",
                 json{{"id", "w4"}, {"model", "org/nope"}, {"command", {"true"}}}.dump())
                .status,
            202);
  Reply failed = Call("GET", agent->base_url() + "/v1/workers/w4?wait=60&until=failed,exited");
  EXPECT_EQ(failed.body["state"], "failed");
  EXPECT_NE(failed.body["message"].get<std::string>().find("not_found"), std::string::npos)
      << failed.body.dump();
}

TEST_F(AgentTest, RestartKeepsInventoryAndPins) {
  AgentOptions o = Options("restart");
  {
    auto agent = StartAgent(o);
    ASSERT_TRUE(agent);
    ASSERT_EQ(Ensure(*agent, "org/m4").status, 200);
    ASSERT_EQ(Call("POST", agent->base_url() + "/v1/pins", R"({"model":"org/m4"})").status, 200);
  }
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  EXPECT_EQ(CachedModels(*agent), (std::set<std::string>{"org/m4"}));
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/pins").body["pins"].size(), 1u);
  const uint64_t gets = upstream_->server->stats().resolve_get;
  Reply hit = Ensure(*agent, "org/m4@" + upstream_->repos.at("org/m4").commit.str(), "", 0);
  EXPECT_EQ(hit.status, 200);
  EXPECT_TRUE(hit.body["hit"].get<bool>());
  EXPECT_EQ(upstream_->server->stats().resolve_get, gets);
}

TEST_F(AgentTest, NextAgentResumesAnInterruptedDownload) {
  // A second server over the upstream's cache that stalls every answer for the big file after
  // 2 MiB: the first agent gets part of it and is stopped mid-download.
  mirror::MirrorOptions mo;
  mo.cache_dir = upstream_->cache_dir;
  mo.faults.rules.push_back(mirror::FaultRule{
      .path_contains = "model.safetensors",
      .only_ranged = false,
      .count = -1,
      .action = mirror::FaultRule::StallAfterBytes{.bytes = 2 << 20, .duration = 60s}});
  auto stalling = *mirror::MirrorServer::Create(std::move(mo));
  ASSERT_TRUE(stalling->Start().ok());
  AgentOptions o = Options("resume");
  o.tuning.connections = 1;
  {
    AgentOptions first = o;
    first.upstream = *hub::Endpoint::Parse(stalling->base_url());
    auto agent = StartAgent(first);
    ASSERT_TRUE(agent);
    ASSERT_EQ(Ensure(*agent, "org/big", "", 0).status, 202);
    // Wait (bounded) until a resume record covers some bytes: progress counts written bytes.
    bool partway = false;
    for (int i = 0; i < 1500 && !partway; ++i) {
      Reply d = Call("GET", agent->base_url() + "/v1/downloads");
      partway = !d.body["downloads"].empty() &&
                d.body["downloads"][0]["progress"]["bytes_done"].get<uint64_t>() >= (1 << 20);
      if (!partway) std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(partway);
  }  // the agent stops: its download is cancelled and stays recorded
  stalling->Stop();
  const uint64_t served = upstream_->server->stats().file_bytes_served;
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  // The new agent restarted the download by itself; this ensure joins it.
  Reply done = Ensure(*agent, "org/big");
  ASSERT_EQ(done.status, 200) << done.body.dump();
  const uint64_t big = upstream_->Bytes("org/big");
  EXPECT_LT(upstream_->server->stats().file_bytes_served - served, big - (1 << 20));
  auto store = cache::CacheStore::Open({o.cache_dir, std::nullopt, false});
  ASSERT_TRUE(store.ok());
  auto report = cache::VerifyCache(**store, std::nullopt, std::nullopt);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 0);
  EXPECT_GT(report->ok, 0);
}

TEST_F(AgentTest, NextAgentReadoptsARunningWorker) {
  AgentOptions o = Options("readopt");
  const std::string script = std::string(MC_SOURCE_DIR) + "/examples/print_model_files.py";
  int pid = 0;
  {
    auto agent = StartAgent(o);
    ASSERT_TRUE(agent);
    ASSERT_EQ(Call("POST", agent->base_url() + "/v1/workers",
                   json{{"id", "w5"}, {"model", "org/m0"},
                        {"command", {"python3", script, "--serve"}}, {"gpus", 1}}
                       .dump())
                  .status,
              202);
    Reply running = Call("GET", agent->base_url() + "/v1/workers/w5?wait=60&until=running,failed");
    ASSERT_EQ(running.body["state"], "running") << running.body.dump();
    pid = running.body["pid"].get<int>();
  }  // the agent stops; the worker does not
  ASSERT_EQ(::kill(pid, 0), 0);
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  Reply adopted = Call("GET", agent->base_url() + "/v1/workers/w5");
  EXPECT_EQ(adopted.body["state"], "running");
  EXPECT_EQ(adopted.body["gpus"], json::array({0}));
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/pins").body["pins"].size(), 1u);
  ASSERT_EQ(Call("DELETE", agent->base_url() + "/v1/workers/w5?grace=5").status, 202);
  Reply exited = Call("GET", agent->base_url() + "/v1/workers/w5?wait=60&until=exited");
  EXPECT_EQ(exited.body["state"], "exited");
  EXPECT_TRUE(Call("GET", agent->base_url() + "/v1/pins").body["pins"].empty());
  ::waitpid(pid, nullptr, WNOHANG);  // not ours to reap (init's), but harmless
}

TEST_F(AgentTest, InvalidRequestsAreRefusedAndChangeNothing) {
  AgentOptions o = Options("invalid");
  o.max_body_bytes = 4096;
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  const std::string url = agent->base_url() + "/v1/ensure";
  struct Case {
    std::string body;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"{not json", 400},
           {"[]", 400},
           {R"({"model":"https://github.com/org/m0"})", 400},
           {R"({"model":"org/../etc"})", 400},
           {R"({"model":"org/m0","revision":"refs/../x"})", 400},
           {R"({"model":"org/m0","include":"*.json"})", 400},
           {R"({"model":"org/m0","surprise":1})", 400},
           {R"({"model":42})", 400},
           {R"({"model":"org/m0","peers":["ftp://x"]})", 400},
           {std::string(8192, ' '), 413},
       }) {
    Reply r = Call("POST", url, c.body);
    EXPECT_EQ(r.status, c.status) << c.body.substr(0, 80);
    if (c.status == 400) {
      EXPECT_TRUE(r.body.contains("error")) << c.body;
    }
  }
  Reply bad_worker = Call("POST", agent->base_url() + "/v1/workers",
                          json{{"id", "../x"}, {"model", "org/m0"}, {"command", {"true"}}}.dump());
  EXPECT_EQ(bad_worker.status, 400);
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/workers/nope").status, 404);
  EXPECT_TRUE(CachedModels(*agent).empty());
  EXPECT_TRUE(Call("GET", agent->base_url() + "/v1/workers").body["workers"].empty());
}

TEST_F(AgentTest, WorkerRequestsThatTheRuntimeCannotRunAreRefusedWithTheReason) {
  auto agent = StartAgent(Options("worker_invalid"));  // processes: the default runtime
  ASSERT_TRUE(agent);
  struct Case {
    json body;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{{"model", "org/m0"}, {"image", "Registry.example/App:1"}}, "lowercase"},
           {{{"model", "org/m0"}, {"image", "r.example/a@sha256:abc"}}, "64 hex digits"},
           {{{"model", "org/m0"}, {"image", "r.example/a:1"}, {"command", {"true"}}},
            "--runtime process"},
           {{{"model", "org/m0"}, {"command", {"true"}}, {"registryAuth", {{"username", "u"},
                                                                            {"password", "p"}}}},
            "registryAuth"},
           {{{"model", "org/m0"}, {"models", {{{"model", "org/m1"}}}}, {"command", {"true"}}},
            "either"},
           {{{"models", json::array()}, {"command", {"true"}}}, "1 to 16"},
           {{{"model", "org/m0"}, {"command", {"true"}}, {"limits", {{"memory", "lots"}}}},
            "memory"},
           {{{"model", "org/m0"}, {"command", {"true"}}, {"links", {{{"dest", "/x"}, {"model", "org/zz"}}}}},
            "not one of the worker's models"},
       }) {
    Reply r = Call("POST", agent->base_url() + "/v1/workers", c.body.dump());
    EXPECT_EQ(r.status, 400) << c.body.dump();
    EXPECT_NE(r.body.value("error", "").find(c.says), std::string::npos)
        << c.body.dump() << " -> " << r.body.dump();
  }
  EXPECT_TRUE(Call("GET", agent->base_url() + "/v1/workers").body["workers"].empty());
}

// A GET of a mirror (peer) route with `key` as its bearer ("" = no Authorization).
int MirrorGet(const std::string& url, const std::string& key) {
  auto client = net::HttpClient::Create();
  net::HttpClientRequest get;
  get.url = url;
  if (!key.empty()) get.headers.Set("Authorization", "Bearer " + key);
  auto res = client->Send(get);
  return res.ok() ? res->status : 0;
}

TEST_F(AgentTest, ServesItsCacheThroughTheMirrorRoutes) {
  auto agent = StartAgent(Options("mirror_routes"));
  ASSERT_TRUE(agent);
  ASSERT_EQ(Ensure(*agent, "org/m0").status, 200);
  auto client = net::HttpClient::Create();
  net::HttpClientRequest get;
  get.url = agent->base_url() + "/org/m0/resolve/main/config.json";
  get.headers.Set("Authorization", std::string("Bearer ") + kPeerKey);
  auto res = client->Send(get);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->headers.Has("X-Repo-Commit"));
  net::HttpClientRequest put;
  put.method = "PUT";
  put.url = agent->base_url() + "/org/m0/resolve/main/config.json";
  put.headers.Set("Authorization", std::string("Bearer ") + kPeerKey);
  put.body = "x";
  auto refused = client->Send(put);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 400);
}

// docs/security.md, "Peers": the mirror routes serve the whole cache (gated and private repos
// included) only to the fleet's peer key or the agent's own key; the peer key opens no /v1 route.
TEST_F(AgentTest, MirrorRoutesNeedTheFleetsPeerKeyOrTheAgentsKey) {
  auto agent = StartAgent(Options("peer_key"));
  ASSERT_TRUE(agent);
  ASSERT_EQ(Ensure(*agent, "org/m0").status, 200);
  const std::string file = agent->base_url() + "/org/m0/resolve/main/config.json";
  const std::string info = agent->base_url() + "/api/models/org/m0/revision/main";
  for (const std::string& url : {file, info}) {
    EXPECT_EQ(MirrorGet(url, ""), 401) << url;
    EXPECT_EQ(MirrorGet(url, "fleet-peer-key-abcdefghiX"), 401) << url;  // one byte off
    EXPECT_EQ(MirrorGet(url, kPeerKey), 200) << url;
    EXPECT_EQ(MirrorGet(url, kAgentKey), 200) << url;
  }
  EXPECT_EQ(MirrorGet(agent->base_url() + "/v1/inventory", kPeerKey), 401);
  EXPECT_EQ(MirrorGet(agent->base_url() + "/health", ""), 200);
  // An agent with no peer key (no --peer-key-file, no controller) serves its agent key only.
  AgentOptions alone = Options("peer_key_none");
  alone.peer_key.reset();
  auto lone = StartAgent(alone);
  ASSERT_TRUE(lone);
  ASSERT_EQ(Ensure(*lone, "org/m0").status, 200);
  const std::string lone_file = lone->base_url() + "/org/m0/resolve/main/config.json";
  EXPECT_EQ(MirrorGet(lone_file, ""), 401);
  EXPECT_EQ(MirrorGet(lone_file, kPeerKey), 401);
  EXPECT_EQ(MirrorGet(lone_file, kAgentKey), 200);
}

// A peer that does not hold the fleet's key is skipped like one that lacks the blob: the bytes
// come from the upstream, and the download succeeds.
TEST_F(AgentTest, APeerThatRefusesOurPeerKeyIsSkippedForTheUpstream) {
  AgentOptions other = Options("peer_other_fleet_a");
  other.peer_key = hub::Secret("another-fleets-peer-key-0001");
  auto a = StartAgent(other);
  auto b = StartAgent(Options("peer_other_fleet_b"));
  ASSERT_TRUE(a && b);
  ASSERT_EQ(Ensure(*a, "org/m3").status, 200);
  Reply r = Ensure(*b, "org/m3", R"(,"peers":[")" + a->base_url() + "\"]");
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["bytes_by_source"].value(a->base_url(), uint64_t{0}), 0u) << r.body.dump();
  EXPECT_EQ(r.body["bytes_by_source"].value("upstream", uint64_t{0}), upstream_->Bytes("org/m3"));
}

TEST_F(AgentTest, WrongMethodOnTheApiIs405WithTheAllowedMethods) {
  auto agent = StartAgent(Options("wrong_method"));
  ASSERT_TRUE(agent);
  auto client = net::HttpClient::Create();
  net::HttpClientRequest put;
  put.method = "PUT";
  put.url = agent->base_url() + "/v1/pins";
  put.headers.Set("Authorization", std::string("Bearer ") + kAgentKey);
  put.headers.Set("Content-Type", "application/json");
  auto res = client->Send(put);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->headers.Get("Allow"), "GET, HEAD, POST, DELETE");
  EXPECT_EQ(json::parse(res->body, nullptr, false)["code"], "invalid_argument") << res->body;
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/ensure").status, 405);
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/nosuchroute").status, 404);
}

TEST_F(AgentTest, ApiKeyGuardsTheApiButNotHealth) {
  AgentOptions o = Options("api_key");
  o.api_key = hub::Secret("agent-secret");
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/inventory").status, 401);
  EXPECT_EQ(Call("GET", agent->base_url() + "/health").status, 200);
  auto client = net::HttpClient::Create();
  auto ok = client->Get(agent->base_url() + "/v1/inventory",
                        [] {
                          net::HeaderMap h;
                          h.Set("Authorization", "Bearer agent-secret");
                          return h;
                        }());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

// docs/security.md, "Agent": no agent is ever open. Without a key given, one is made in the state
// dir (0600) and required like a given one.
TEST_F(AgentTest, WithoutAGivenKeyTheAgentMakesOneInItsStateDir) {
  AgentOptions o = Options("made_key");
  o.api_key.reset();
  const fs::path key_file = o.state_dir / "api-key";
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  struct stat st {};
  ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string key;
  std::ifstream(key_file) >> key;
  EXPECT_GE(key.size(), 32u);
  auto client = net::HttpClient::Create();
  auto refused = client->Get(agent->base_url() + "/v1/inventory");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 401);
  net::HeaderMap h;
  h.Set("Authorization", "Bearer " + key);
  auto ok = client->Get(agent->base_url() + "/v1/inventory", h);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  // The same key on the next start.
  agent->Stop();
  agent.reset();
  agent = StartAgent(o);
  ASSERT_TRUE(agent);
  auto again = client->Get(agent->base_url() + "/v1/inventory", h);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200);
}

// What a web page can make a browser send: a "simple" text/plain POST (no preflight), a request
// from a foreign Origin, or (DNS rebinding) one whose Host is the attacker's name. All refused,
// even with the key, before anything starts.
TEST_F(AgentTest, CrossSiteAndRebindingRequestsAreRefused) {
  auto agent = StartAgent(Options("csrf"));
  ASSERT_TRUE(agent);
  auto client = net::HttpClient::Create();
  const fs::path marker = TempRoot("csrf_marker");
  dirs_.push_back(marker);
  auto send = [&](const std::string& method, const std::string& path, const std::string& type,
                  const std::string& header = "", const std::string& value = "") {
    net::HttpClientRequest req;
    req.method = method;
    req.url = agent->base_url() + path;
    req.headers.Set("Authorization", std::string("Bearer ") + kAgentKey);
    if (!type.empty()) req.headers.Set("Content-Type", type);
    if (!header.empty()) req.headers.Set(header, value);
    if (method == "POST") {
      req.body = json{{"model", "org/m0"}, {"command", {"touch", (marker / "x").string()}}}.dump();
    }
    auto res = client->Send(req);
    return res.ok() ? res->status : 0;
  };
  EXPECT_EQ(send("POST", "/v1/workers", "text/plain"), 415);
  EXPECT_EQ(send("POST", "/v1/workers", "application/x-www-form-urlencoded"), 415);
  EXPECT_EQ(send("POST", "/v1/workers", ""), 415);
  EXPECT_EQ(send("POST", "/v1/workers", "application/json", "Origin", "http://evil.example"), 403);
  EXPECT_EQ(send("GET", "/v1/inventory", "", "Host", "evil.example:8766"), 403);
  EXPECT_EQ(send("GET", "/v1/inventory", "", "Origin", "https://evil.example"), 403);
  EXPECT_TRUE(agent->base_url().starts_with("http://127.0.0.1:"));
  EXPECT_EQ(send("GET", "/v1/inventory", "", "Origin", agent->base_url()), 200);
  EXPECT_EQ(send("GET", "/v1/inventory", "", "Host", "localhost"), 200);
  EXPECT_EQ(Call("GET", agent->base_url() + "/v1/workers").body["workers"].size(), 0u);
  EXPECT_FALSE(fs::exists(marker / "x"));
}

TEST_F(AgentTest, MetricsCountHitsMissesAndBytes) {
  auto agent = StartAgent(Options("metrics"));
  ASSERT_TRUE(agent);
  ASSERT_EQ(Ensure(*agent, "org/m0").status, 200);
  ASSERT_EQ(Ensure(*agent, "org/m0@" + upstream_->repos.at("org/m0").commit.str()).status, 200);
  auto res = net::HttpClient::Create()->Get(agent->base_url() + "/metrics");
  ASSERT_TRUE(res.ok());
  const std::string& text = res->body;
  EXPECT_NE(text.find("modelcache_agent_ensure_total{result=\"hit\"} 1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("modelcache_agent_ensure_total{result=\"miss\"} 1"), std::string::npos);
  EXPECT_NE(text.find("modelcache_agent_download_bytes_total{source=\"upstream\"} " +
                      std::to_string(upstream_->Bytes("org/m0"))),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("modelcache_agent_capacity_bytes 1073741824"), std::string::npos);
  EXPECT_NE(text.find("modelcache_agent_workers{state=\"running\"} 0"), std::string::npos);
}

// A controller stand-in that records what the agent posts.
struct FakeController {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, json>> posts;
  std::unique_ptr<net::HttpServer> server;

  FakeController() {
    net::HttpServerOptions o;
    o.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      {
        std::lock_guard<std::mutex> lock(mu);
        posts.emplace_back(req.raw_path, json::parse(req.body, nullptr, false));
      }
      cv.notify_all();
      res.SetText(200, "{}", "application/json");
    };
    server = *net::HttpServer::Create(std::move(o));
    if (!server->Start().ok()) std::abort();
  }
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 30s, [&] { return posts.size() >= n; });
  }
};

TEST_F(AgentTest, RegistersWithTheControllerThenSendsHeartbeats) {
  FakeController controller;
  AgentOptions o = Options("controller");
  o.controller_url = controller.server->base_url();
  o.host_id = "host-a";
  o.heartbeat_interval = 20ms;
  auto agent = StartAgent(o);
  ASSERT_TRUE(agent);
  ASSERT_TRUE(controller.WaitFor(3));
  std::lock_guard<std::mutex> lock(controller.mu);
  EXPECT_EQ(controller.posts[0].first, "/v1/hosts/register");
  EXPECT_EQ(controller.posts[1].first, "/v1/hosts/host-a/heartbeat");
  const json& doc = controller.posts[0].second;
  EXPECT_EQ(doc["host_id"], "host-a");
  EXPECT_EQ(doc["gpu_type"], "test-gpu");
  EXPECT_EQ(doc["gpus"]["total"], 2);
  EXPECT_EQ(doc["url"], agent->base_url());
  EXPECT_EQ(doc["disk"]["capacity_bytes"], o.capacity);
}

TEST(ResolveCapacityTest, SizesAndFractions) {
  EXPECT_EQ(*ResolveCapacity("800GB", "/"), 800'000'000'000ull);
  EXPECT_EQ(*ResolveCapacity("1GiB", "/"), 1ull << 30);
  EXPECT_GT(*ResolveCapacity("50%", "/"), 0u);
  EXPECT_EQ(*ResolveCapacity("0.5", "/"), *ResolveCapacity("50%", "/"));
  EXPECT_FALSE(ResolveCapacity("150%", "/").ok());
  EXPECT_FALSE(ResolveCapacity("lots", "/").ok());
  EXPECT_FALSE(ResolveCapacity("0", "/").ok());
}

}  // namespace
}  // namespace mc::agent
