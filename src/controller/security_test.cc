// The controller's trust boundaries (docs/security.md, "Tenants, roles, hosts and secrets"), each
// test one property, on a real controller, agents and upstream on loopback (TestCluster):
// secrets at rest, tenants and roles, enrolled hosts, cordon and drain.
#include <dirent.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/store.h"
#include "controller/test_cluster.h"
#include "mc/common/secret_box.h"
#include "mc/net/http_server.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;

constexpr char kToken[] = "hf_sealedToken7Qx2Lp9Vw";
constexpr char kSecretValue[] = "worker-secret-Zk48Rn1Tj";

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool FileHolds(const fs::path& path, const std::string& needle) {
  return ReadAll(path).find(needle) != std::string::npos;
}

// The command lines of every process of the machine that we may read (what `ps` shows).
std::string AllCommandLines() {
  std::string all;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return all;
  while (dirent* d = ::readdir(proc)) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    all += ReadAll(fs::path("/proc") / d->d_name / "cmdline") + "\n";
  }
  ::closedir(proc);
  return all;
}

unsigned Mode(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 07777;
  return st.st_mode & 0777;
}

// Captures what the default logger writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
    spdlog::set_level(spdlog::level::trace);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return log_.str(); }

 private:
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
};

TestClusterOptions GatedCluster(const std::string& name) {
  TestClusterOptions o;
  o.name = "security_" + name;
  o.models = {{"demo/gated", 1 << 20}};
  o.access_json = std::string(R"({"repos": {"demo/gated": {"gated": "manual", "tokens": [")") +
                  kToken + R"("]}}})";
  return o;
}

json HostDoc(const std::string& id, const std::string& url) {
  return json{{"host_id", id}, {"url", url}, {"gpu_type", "test-gpu"},
              {"gpus", {{"total", 8}, {"free", 8}}},
              {"disk", {{"capacity_bytes", 1ull << 40}, {"used_bytes", 0}}}};
}

json WorkerCommand() {
  return json::array({"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"});
}

// ---- secrets at rest ----

TEST(ControllerSecurityTest, TheTokenAndSecretEnvAreNowhereInTheDbWalLogsApiAnswersOrPs) {
  LogCapture logs;
  auto made = TestCluster::Create(GatedCluster("at_rest"));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  std::string answers;
  Reply created = c.Call("POST", "/v1/endpoints",
                         json{{"name", "gated"},
                              {"model", "demo/gated"},
                              {"hfToken", kToken},
                              {"secretEnv", {{"WORKER_SECRET", kSecretValue}}},
                              {"command", WorkerCommand()}}
                             .dump());
  ASSERT_EQ(created.status, 200) << created.text;
  answers += created.text;
  const std::string ep = created.body["id"];
  EXPECT_EQ(created.body["hasHfToken"], true);
  EXPECT_EQ(created.body["hasSecretEnv"], true);
  // The token still works where it is needed: the agent downloads the gated model with it.
  Reply run = c.Call("POST", "/v2/" + ep + "/run", R"({"input": {"sleep": 20}})");
  ASSERT_EQ(run.status, 200) << run.text;
  const std::string job = run.body["id"];
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/status/" + job).body["status"] == "IN_PROGRESS";
  }, 90s));
  const std::string worker = c.Call("GET", "/v2/" + ep + "/status/" + job).body["workerId"];
  Reply listed = c.Call("GET", "/v1/workers?endpoint=" + ep);
  Reply w = Send("GET", c.agents()[0]->base_url() + "/v1/workers/" + worker, Bearer(c.key()));
  ASSERT_EQ(w.status, 200) << w.text;
  const int pid = w.body["pid"];
  // The worker got its secret env, in its environment (not its argv).
  EXPECT_NE(ReadAll("/proc/" + std::to_string(pid) + "/environ")
                .find(std::string("WORKER_SECRET=") + kSecretValue),
            std::string::npos);
  const std::string ps = AllCommandLines();
  EXPECT_EQ(ps.find(kToken), std::string::npos);
  EXPECT_EQ(ps.find(kSecretValue), std::string::npos);
  for (const char* path : {"/v1/endpoints", "/v1/jobs", "/v1/workers", "/v1/hosts"}) {
    answers += c.Call("GET", path).text;
  }
  answers += c.Call("GET", "/v1/endpoints/" + ep).text;
  answers += c.Call("PATCH", "/v1/endpoints/" + ep, R"({"workersMax": 2})").text;
  answers += listed.text;
  EXPECT_EQ(answers.find(kToken), std::string::npos);
  EXPECT_EQ(answers.find(kSecretValue), std::string::npos);
  // The database, its WAL and shared memory while the controller runs...
  const fs::path db = c.db_path();
  for (const std::string suffix : {"", "-wal", "-shm"}) {
    EXPECT_FALSE(FileHolds(db.string() + suffix, kToken)) << suffix;
    EXPECT_FALSE(FileHolds(db.string() + suffix, kSecretValue)) << suffix;
  }
  EXPECT_EQ(Mode(db), 0600u);
  EXPECT_EQ(Mode(db.string() + "-wal"), 0600u);
  const fs::path key_file = db.parent_path() / "controller-secret.key";
  EXPECT_EQ(Mode(key_file), 0600u);
  c.Call("POST", "/v2/" + ep + "/cancel/" + job);
  c.controller().Stop();  // ...and after it stopped
  c.StopWorkers();
  for (const std::string suffix : {"", "-wal"}) {
    EXPECT_FALSE(FileHolds(db.string() + suffix, kToken)) << suffix;
  }
  const std::string logged = logs.text();
  EXPECT_EQ(logged.find(kToken), std::string::npos);
  EXPECT_EQ(logged.find(kSecretValue), std::string::npos);
  EXPECT_NE(logged.find("placed on host-1"), std::string::npos);  // the capture saw the run
}

// Registry credentials are sealed like the token: the password is in neither the database nor
// its WAL, and no answer carries it.
TEST(ControllerSecurityTest, TheRegistryPasswordIsNowhereInTheDbWalOrApiAnswers) {
  constexpr char kPassword[] = "registry-pass-Wq83Lz0Pd";
  auto made = TestCluster::Create(GatedCluster("registry_at_rest"));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  Reply created = c.Call("POST", "/v1/endpoints",
                         json{{"name", "image"},
                              {"model", "demo/gated"},
                              {"hfToken", kToken},
                              {"image", "127.0.0.1:5000/org/worker:1"},
                              {"registryAuth", {{"username", "robot"}, {"password", kPassword}}}}
                             .dump());
  ASSERT_EQ(created.status, 200) << created.text;
  EXPECT_EQ(created.body["hasRegistryAuth"], true);
  const std::string ep = created.body["id"];
  std::string answers = created.text + c.Call("GET", "/v1/endpoints/" + ep).text +
                        c.Call("GET", "/v1/endpoints").text +
                        c.Call("PATCH", "/v1/endpoints/" + ep, R"({"workersMax": 2})").text;
  EXPECT_EQ(answers.find(kPassword), std::string::npos);
  for (const std::string suffix : {"", "-wal"}) {
    EXPECT_FALSE(FileHolds(c.db_path().string() + suffix, kPassword)) << suffix;
  }
}

TEST(ControllerSecurityTest, ATokenStoredInClearBeforeSealingIsSealedWhenTheControllerOpens) {
  TestClusterOptions o = GatedCluster("migrate");
  o.start_controller = false;
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  {  // what an older controller wrote: the token in clear
    auto store = ControllerStore::Open(c.db_path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EndpointRecord e;
    e.id = "epold";
    e.name = "old";
    e.model = e.repo = "demo/gated";
    e.revision = "main";
    e.commit = std::string(40, 'a');
    e.hf_token = kToken;
    e.command_json = WorkerCommand().dump();
    ASSERT_TRUE((*store)->PutEndpoint(e).ok());
  }
  ASSERT_TRUE(FileHolds(c.db_path(), kToken));  // the test sees a clear token when there is one
  ControllerOptions co;
  co.listen = "127.0.0.1:0";
  co.db_path = c.db_path();
  co.upstream = *hub::Endpoint::Parse(c.upstream().base_url());
  {
    auto ctl = Controller::Create(co);
    ASSERT_TRUE(ctl.ok()) << ctl.status().ToString();
  }
  for (const std::string suffix : {"", "-wal"}) {
    EXPECT_FALSE(FileHolds(c.db_path().string() + suffix, kToken)) << suffix;
  }
  auto store = ControllerStore::Open(c.db_path());
  ASSERT_TRUE(store.ok());
  auto e = (*store)->GetEndpoint("epold");
  ASSERT_TRUE(e.ok() && e->has_value());
  ASSERT_TRUE((*e)->hf_token.has_value());
  auto box = SecretBox::FromKeyFile(c.db_path().parent_path() / "controller-secret.key");
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(box->Open(*(*e)->hf_token, "endpoint epold hfToken").value(), kToken);
}

// ---- tenants and roles ----

// A cluster with keys of two tenants: alpha's member and readonly keys, beta's member key.
class TenantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TestClusterOptions o;
    o.name = std::string("tenants_") +
             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    o.agents = 0;
    auto made = TestCluster::Create(std::move(o));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    cluster_ = std::move(*made);
    alpha_ = NewKey("alpha", "member");
    alpha_reader_ = NewKey("alpha", "readonly");
    beta_ = NewKey("beta", "member");
  }
  std::string NewKey(const std::string& tenant, const std::string& role) {
    Reply r = cluster_->Call("POST", "/v1/keys",
                             json{{"name", tenant + "-" + role}, {"tenant", tenant}, {"role", role}}
                                 .dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body.value("key", "");
  }
  Reply As(const std::string& key, const std::string& method, const std::string& path,
           const std::string& body = "") {
    return Send(method, cluster_->controller().base_url() + path, Bearer(key),
                body.empty() ? std::nullopt : std::optional<std::string>(body));
  }
  // An endpoint of alpha that never starts a worker (workersMax 0), with one queued job.
  std::pair<std::string, std::string> AlphaEndpointWithAJob() {
    Reply e = As(alpha_, "POST", "/v1/endpoints",
                 json{{"name", "alpha-ep"}, {"model", "org/tiny"}, {"workersMax", 0},
                      {"command", WorkerCommand()}}
                     .dump());
    EXPECT_EQ(e.status, 200) << e.text;
    const std::string ep = e.body.value("id", "");
    Reply job = As(alpha_, "POST", "/v2/" + ep + "/run", R"({"input": {}})");
    EXPECT_EQ(job.status, 200) << job.text;
    return {ep, job.body.value("id", "")};
  }
  std::unique_ptr<TestCluster> cluster_;
  std::string alpha_, alpha_reader_, beta_;
};

TEST_F(TenantsTest, AnotherTenantsEndpointAndJobsAnswer404ForReadWriteCancelAndDelete) {
  const auto [ep, job] = AlphaEndpointWithAJob();
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"GET", "/v1/endpoints/" + ep},          {"PATCH", "/v1/endpoints/" + ep},
      {"DELETE", "/v1/endpoints/" + ep},       {"POST", "/v2/" + ep + "/run"},
      {"POST", "/v2/" + ep + "/runsync"},      {"GET", "/v2/" + ep + "/status/" + job},
      {"GET", "/v2/" + ep + "/stream/" + job}, {"POST", "/v2/" + ep + "/cancel/" + job},
      {"POST", "/v2/" + ep + "/retry/" + job}, {"POST", "/v2/" + ep + "/purge-queue"},
      {"GET", "/v2/" + ep + "/health"},        {"GET", "/v1/jobs?endpoint=" + ep}};
  const std::string missing = "epmissing00000";
  for (const auto& [method, path] : requests) {
    const std::string body = method == "GET" || method == "DELETE" ? "" : R"({"input": {}})";
    Reply theirs = As(beta_, method, path, body);
    EXPECT_EQ(theirs.status, 404) << method << " " << path << ": " << theirs.text;
    // The very answer an id that does not exist gets: nothing tells the endpoint exists.
    std::string other = path;
    other.replace(other.find(ep), ep.size(), missing);
    Reply none = As(beta_, method, other, body);
    EXPECT_EQ(none.status, 404);
    std::string expected = none.text;
    expected.replace(expected.find(missing), missing.size(), ep);
    EXPECT_EQ(theirs.text, expected) << method << " " << path;
  }
  EXPECT_TRUE(As(beta_, "GET", "/v1/endpoints").body["endpoints"].empty());
  EXPECT_TRUE(As(beta_, "GET", "/v1/workers").body["workers"].empty());
  EXPECT_TRUE(As(beta_, "GET", "/v1/ledger").body["ledger"].empty());
  // Nothing of alpha's changed: the job is still queued and the endpoint still there.
  EXPECT_EQ(As(alpha_, "GET", "/v2/" + ep + "/status/" + job).body["status"], "IN_QUEUE");
  EXPECT_EQ(As(alpha_, "GET", "/v1/endpoints").body["endpoints"].size(), 1u);
  // An admin sees every tenant's.
  EXPECT_EQ(cluster_->Call("GET", "/v1/endpoints/" + ep).status, 200);
}

TEST_F(TenantsTest, AMemberCannotCreateKeysOrRegisterOrListHosts) {
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/keys"},
           {"GET", "/v1/keys"},
           {"DELETE", "/v1/keys/key-aaaaaaaa"},
           {"GET", "/v1/hosts"},
           {"POST", "/v1/hosts/enroll"},
           {"POST", "/v1/hosts/h1/cordon"},
           {"GET", "/metrics"}}) {
    const std::string body =
        method == "POST" ? json{{"name", "x"}, {"tenant", "alpha"}, {"role", "admin"}}.dump()
                         : "";
    Reply r = As(alpha_, method, path, body);
    EXPECT_EQ(r.status, 403) << method << " " << path << ": " << r.text;
  }
  // Registering takes a host's credential, which no client key is (EnrolledHostsTest).
  for (const std::string path : {"/v1/hosts/register", "/v1/hosts/h1/heartbeat"}) {
    Reply r = As(alpha_, "POST", path, HostDoc("h1", "http://127.0.0.1:9").dump());
    EXPECT_EQ(r.status, 401) << path << ": " << r.text;
  }
  Reply keys = cluster_->Call("GET", "/v1/keys");
  EXPECT_EQ(keys.body["keys"].size(), 4u);  // the cluster's and the three of SetUp, no more
}

TEST_F(TenantsTest, AReadonlyKeyReadsItsTenantButCannotChangeAnything) {
  const auto [ep, job] = AlphaEndpointWithAJob();
  EXPECT_EQ(As(alpha_reader_, "GET", "/v1/endpoints/" + ep).status, 200);
  EXPECT_EQ(As(alpha_reader_, "GET", "/v2/" + ep + "/status/" + job).status, 200);
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v1/endpoints"},
           {"PATCH", "/v1/endpoints/" + ep},
           {"DELETE", "/v1/endpoints/" + ep},
           {"POST", "/v2/" + ep + "/run"},
           {"POST", "/v2/" + ep + "/cancel/" + job},
           {"POST", "/v2/" + ep + "/purge-queue"}}) {
    Reply r = As(alpha_reader_, method, path, method == "DELETE" ? "" : R"({"input": {}})");
    EXPECT_EQ(r.status, 403) << method << " " << path << ": " << r.text;
  }
  EXPECT_EQ(As(alpha_, "GET", "/v2/" + ep + "/status/" + job).body["status"], "IN_QUEUE");
  Reply me = As(alpha_reader_, "GET", "/v1/whoami");
  EXPECT_EQ(me.body["tenant"], "alpha");
  EXPECT_EQ(me.body["role"], "readonly");
}

// ---- enrolled hosts, cordon and drain ----

// An HTTP server that answers 202 to everything and keeps every request it got (a fake agent).
class Recorder {
 public:
  Recorder() {
    net::HttpServerOptions o;
    o.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_ += req.method + " " + req.raw_path + " " +
               req.headers.Get("Authorization").value_or("") + " " + req.body + "\n";
      res.status = 202;
      res.body = "{}";
    };
    server_ = std::move(*net::HttpServer::Create(std::move(o)));
    EXPECT_TRUE(server_->Start().ok());
  }
  std::string url() const { return server_->base_url(); }
  std::string seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::string seen_;
  std::unique_ptr<net::HttpServer> server_;
};

TEST(EnrolledHostsTest, AClientKeyCannotRegisterOrImpersonateAHost) {
  auto made = TestCluster::Create(GatedCluster("impersonate"));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  const std::string base = c.controller().base_url();
  const std::string real_url = c.Call("GET", "/v1/hosts").body["hosts"][0]["url"];
  // Even an admin key is not a host.
  EXPECT_EQ(Send("POST", base + "/v1/hosts/register", Bearer(c.key()),
                 HostDoc("evil", "http://127.0.0.1:9").dump())
                .status,
            401);
  EXPECT_EQ(Send("POST", base + "/v1/hosts/host-1/heartbeat", Bearer(c.key()),
                 HostDoc("host-1", "http://127.0.0.1:9").dump())
                .status,
            401);
  EXPECT_EQ(Send("POST", base + "/v1/hosts/register", net::HeaderMap(),
                 HostDoc("evil", "http://127.0.0.1:9").dump())
                .status,
            401);
  const Reply hosts = c.Call("GET", "/v1/hosts");
  ASSERT_EQ(hosts.body["hosts"].size(), 1u);
  EXPECT_EQ(hosts.body["hosts"][0]["url"], real_url);
  EXPECT_EQ(hosts.body["hosts"][0]["enrolled"], true);
}

TEST(EnrolledHostsTest, AHostCredentialSpeaksOnlyForItsOwnHost) {
  TestClusterOptions o = GatedCluster("own_host");
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  const std::string base = c.controller().base_url();
  Reply enrolled = c.Call("POST", "/v1/hosts/enroll", R"({"hostId": "host-x"})");
  ASSERT_EQ(enrolled.status, 200) << enrolled.text;
  const std::string x = enrolled.body["credential"];
  EXPECT_EQ(Send("POST", base + "/v1/hosts/register", Bearer(x),
                 HostDoc("host-1", "http://127.0.0.1:9").dump())
                .status,
            401);
  EXPECT_EQ(Send("POST", base + "/v1/hosts/host-1/heartbeat", Bearer(x),
                 HostDoc("host-x", "http://127.0.0.1:9").dump())
                .status,
            403);
  EXPECT_EQ(Send("POST", base + "/v1/hosts/register", Bearer(x),
                 HostDoc("host-x", "http://127.0.0.1:9").dump())
                .status,
            200);
  // Enrolling again replaces the credential: the old one stops working.
  ASSERT_EQ(c.Call("POST", "/v1/hosts/enroll", R"({"hostId": "host-x"})").status, 200);
  EXPECT_EQ(Send("POST", base + "/v1/hosts/host-x/heartbeat", Bearer(x),
                 HostDoc("host-x", "http://127.0.0.1:9").dump())
                .status,
            401);
}

TEST(EnrolledHostsTest, AFakeHostNeverReceivesTheToken) {
  TestClusterOptions o = GatedCluster("fake_host");
  o.agents = 0;  // no real host: placement has only what registered
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  Recorder fake;
  // The attacker holds a client key (even an admin one) but no host credential.
  Send("POST", c.controller().base_url() + "/v1/hosts/register", Bearer(c.key()),
       HostDoc("fake", fake.url()).dump());
  Reply created = c.Call("POST", "/v1/endpoints",
                         json{{"name", "gated"}, {"model", "demo/gated"}, {"hfToken", kToken},
                              {"workersMin", 1}, {"command", WorkerCommand()}}
                             .dump());
  ASSERT_EQ(created.status, 200) << created.text;
  const std::string ep = created.body["id"];
  // The autoscaler wanted a worker and found no host for it.
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/health").body["workers"]["throttled"].get<int>() >= 1;
  }));
  EXPECT_EQ(fake.seen().find(kToken), std::string::npos);
  EXPECT_EQ(fake.seen(), "");
}

TEST(EnrolledHostsTest, TheControllerTalksToEachAgentWithThatHostsCredential) {
  TestClusterOptions o = GatedCluster("agent_auth");
  // No fleet-wide key: the agent's own /v1 key is one the controller never sees.
  o.controller_options = [](ControllerOptions& co) { co.agent_api_key.reset(); };
  o.agent_options = [](int, agent::AgentOptions& a) {
    a.api_key = hub::Secret("agent-private-key-not-shared");
  };
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  // Through the controller to the agent's /v1/pins: the agent accepts the controller.
  Reply pin = c.Call("POST", "/v1/hosts/host-1/pins",
                     json{{"model", "demo/gated"}, {"commit", std::string(40, 'a')}}.dump());
  EXPECT_NE(pin.status, 401) << pin.text;
  EXPECT_LT(pin.status, 300) << pin.text;
}

// docs/security.md, "Peers": an agent's mirror routes serve its whole cache, gated repos
// included, so they answer only the fleet's peer key, which the controller hands to enrolled
// hosts alone (in the answer to their register and heartbeats); agents send it to each other, so
// peers still share.
TEST(PeerKeyTest, AgentsServeAGatedModelOnlyToThePeerKeyAndPeersStillShare) {
  TestClusterOptions o = GatedCluster("peer_key");
  o.agents = 2;
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  const std::string holder = c.agents()[0]->base_url();
  Reply ensured = Send("POST", holder + "/v1/ensure?wait=60", Bearer(c.key()),
                       json{{"model", "demo/gated"}, {"token", kToken}}.dump());
  ASSERT_EQ(ensured.status, 200) << ensured.text;
  const std::string file = holder + "/demo/gated/resolve/main/config.json";

  // An enrolled host learns the peer key when it registers; nobody else gets it.
  Reply enrolled = c.Call("POST", "/v1/hosts/enroll", R"({"hostId": "host-x"})");
  ASSERT_EQ(enrolled.status, 200) << enrolled.text;
  Reply registered = Send("POST", c.controller().base_url() + "/v1/hosts/register",
                          Bearer(enrolled.body["credential"]),
                          HostDoc("host-x", "http://127.0.0.1:9").dump());
  ASSERT_EQ(registered.status, 200) << registered.text;
  ASSERT_TRUE(registered.body.contains("peerKey")) << registered.text;
  const std::string peer_key = registered.body["peerKey"];
  EXPECT_GE(peer_key.size(), 32u);
  for (const char* path : {"/v1/hosts", "/v1/endpoints", "/v1/whoami"}) {
    EXPECT_EQ(c.Call("GET", path).text.find(peer_key), std::string::npos) << path;
  }

  auto mirror_get = [&](const std::string& bearer) {
    net::HeaderMap h;
    if (!bearer.empty()) h.Set("Authorization", "Bearer " + bearer);
    return Send("GET", file, h);
  };
  EXPECT_EQ(mirror_get("").status, 401);
  EXPECT_EQ(mirror_get("not-the-peer-key").status, 401);
  EXPECT_EQ(mirror_get(std::string(kToken)).status, 401);  // the HF token is no peer key
  Reply served = mirror_get(peer_key);
  EXPECT_EQ(served.status, 200) << served.text;
  EXPECT_TRUE(served.body.is_object()) << served.text;  // config.json
  // The peer key opens no /v1 route of an agent.
  EXPECT_EQ(Send("GET", holder + "/v1/inventory", Bearer(peer_key)).status, 401);

  // The other agent got the key from the controller too: it fetches every byte from its peer.
  Reply shared = Send("POST", c.agents()[1]->base_url() + "/v1/ensure?wait=60", Bearer(c.key()),
                      json{{"model", "demo/gated"}, {"token", kToken}, {"peers", {holder}}}.dump());
  ASSERT_EQ(shared.status, 200) << shared.text;
  EXPECT_GT(shared.body["bytes_by_source"].value(holder, uint64_t{0}), 0u) << shared.text;
  EXPECT_EQ(shared.body["bytes_by_source"].value("upstream", uint64_t{0}), 0u) << shared.text;
}

TEST(EnrolledHostsTest, ACordonedHostGetsNoWorkersAndADrainedOneLosesItsIdleOnes) {
  TestClusterOptions o;
  o.name = "security_cordon";
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  ASSERT_EQ(c.Call("POST", "/v1/hosts/host-1/cordon").status, 200);
  EXPECT_EQ(c.Call("GET", "/v1/hosts").body["hosts"][0]["schedule"], "cordoned");
  Reply created = c.Call("POST", "/v1/endpoints",
                         json{{"name", "e"}, {"model", "org/tiny"}, {"idleTimeout", 600},
                              {"command", WorkerCommand()}}
                             .dump());
  ASSERT_EQ(created.status, 200) << created.text;
  const std::string ep = created.body["id"];
  Reply run = c.Call("POST", "/v2/" + ep + "/run", R"({"input": {}})");
  const std::string job = run.body["id"];
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/health").body["workers"]["throttled"].get<int>() >= 1;
  }));
  EXPECT_TRUE(c.Call("GET", "/v1/workers?endpoint=" + ep).body["workers"].empty());
  EXPECT_EQ(c.Call("GET", "/v2/" + ep + "/status/" + job).body["status"], "IN_QUEUE");
  ASSERT_EQ(c.Call("POST", "/v1/hosts/host-1/uncordon").status, 200);
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/status/" + job).body["status"] == "COMPLETED";
  }, 90s));
  ASSERT_TRUE(Eventually([&] {
    Reply w = c.Call("GET", "/v1/workers?endpoint=" + ep);
    return w.body["workers"].size() == 1 && w.body["workers"][0]["phase"] == "idle";
  }));
  ASSERT_EQ(c.Call("POST", "/v1/hosts/host-1/drain").status, 200);
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v1/workers?endpoint=" + ep).body["workers"][0]["phase"] == "stopped";
  }, 60s));
  // Drained, the host is cordoned too: a new job waits.
  Reply again = c.Call("POST", "/v2/" + ep + "/run", R"({"input": {}})");
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/health").body["workers"]["throttled"].get<int>() >= 1;
  }));
  EXPECT_EQ(c.Call("GET", "/v2/" + ep + "/status/" + again.body["id"].get<std::string>())
                .body["status"],
            "IN_QUEUE");
}

}  // namespace
}  // namespace mc::controller
