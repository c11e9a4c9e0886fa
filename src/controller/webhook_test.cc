// Webhooks (runpod-protocol.md §1): a job submitted with `webhook` gets its final status object
// POSTed there, retried (webhook_tries in all, webhook_retry_delay apart) until it answers 200.
//
// Real parts on loopback: an upstream MirrorServer with one small model, an in-process agent and
// controller, a worker process that is examples/runpod_worker.py, and a receiver (an HttpServer on
// port 0) that records every POST and answers with a scripted status per path. The test waits on
// the receiver's condition variable, never on a timer. Deliveries are sent one at a time, in
// order, so once a later job's delivery has arrived every earlier one is finished: that is how
// "no further try" is checked without waiting for one that should not come.
//
// The controller runs on a FakeClock (execution timeouts are driven by Advance()); the retry
// delay is real time, made short by the options.
//
// Restarts: the last tests run controllers of their own (no agent: their jobs end by /cancel),
// stop one with a delivery pending and start another on the same database. A long retry delay on
// the first keeps it at one try, whatever the machine's speed: Stop() cuts the wait, and records
// the outcome of a try in flight before it returns.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/test_cluster.h"
#include "mc/net/http_server.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;

constexpr char kHfToken[] = "hf_webhook_test_token_0123456789";
constexpr auto kRetryDelay = 200ms;
constexpr int kTries = 4;  // not Runpod's 3, so that the option is seen honoured

// Records every request by path; answers each path with its script (the last code repeats; 200
// when there is none).
class Receiver {
 public:
  struct Hit {
    std::string method;
    net::HeaderMap headers;
    std::string body;
    std::chrono::steady_clock::time_point at;
  };

  // On `listen` ("127.0.0.1:0": any free port); a receiver started again keeps its hits.
  Status Start(const std::string& listen = "127.0.0.1:0") {
    net::HttpServerOptions o;
    o.listen = listen;
    o.name = "webhook-receiver";
    o.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      int code = 200;
      {
        std::lock_guard<std::mutex> lock(mu_);
        std::vector<Hit>& hits = hits_[req.raw_path];
        const std::vector<int>& script = scripts_[req.raw_path];
        if (!script.empty()) code = script[std::min(hits.size(), script.size() - 1)];
        hits.push_back({req.method, req.headers, req.body, std::chrono::steady_clock::now()});
      }
      changed_.notify_all();
      res.SetText(code, "{}", "application/json");
    };
    auto s = net::HttpServer::Create(std::move(o));
    if (!s.ok()) return s.status();
    server_ = std::move(*s);
    return server_->Start();
  }
  void Stop() {
    if (server_) server_->Stop();
  }
  std::string Url(const std::string& path) const { return server_->base_url() + path; }
  std::string Listen() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  void Script(const std::string& path, std::vector<int> codes) {
    std::lock_guard<std::mutex> lock(mu_);
    scripts_[path] = std::move(codes);
  }
  // The hits of `path` once there are at least `n` (or after 60 s, whatever there are).
  std::vector<Hit> WaitHits(const std::string& path, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, 60s, [&] { return hits_[path].size() >= n; });
    return hits_[path];
  }
  std::vector<Hit> Hits(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_[path];
  }
  std::vector<Hit> AllHits() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Hit> all;
    for (const auto& [path, hits] : hits_) all.insert(all.end(), hits.begin(), hits.end());
    return all;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<Hit>> hits_;
  std::map<std::string, std::vector<int>> scripts_;
  std::unique_ptr<net::HttpServer> server_;
};

// KEY=VALUE lines as `env` prints them.
std::map<std::string, std::string> ParseEnv(const std::string& text) {
  std::map<std::string, std::string> env;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

// The shared TestCluster (org/tiny upstream, one agent "host-a" with one GPU slot, the
// controller on a FakeClock, webhooks tried kTries times kRetryDelay apart), the receiver and
// the endpoint with its one worker, shared by the suite (the worker's start is the slow part).
struct World {
  FakeClock clock;
  Receiver receiver;
  std::unique_ptr<TestCluster> cluster;
  std::string key;         // clients' key; also agent ↔ controller
  std::string endpoint;    // the endpoint's id
  std::string worker_key;  // the worker's RUNPOD_AI_API_KEY

  std::string Build() {
    if (Status s = receiver.Start(); !s.ok()) return "receiver: " + s.ToString();
    TestClusterOptions o;
    o.name = "webhook_test";
    o.controller_options = [this](ControllerOptions& c) {
      c.ping_interval = 10s;  // the worker's pings never fall silent while the clock is advanced
      c.stop_grace = 1s;
      c.webhook_tries = kTries;
      c.webhook_retry_delay = kRetryDelay;
      c.webhook_timeout = 5s;
      c.webhook_allow_private = true;  // the receiver is on loopback
      c.clock = &clock;
    };
    o.agent_options = [](int, agent::AgentOptions& a) {
      a.host_id = "host-a";
      a.gpus = 1;
      a.maintenance_interval = 3600s;
    };
    auto made = TestCluster::Create(std::move(o));
    if (!made.ok()) return made.status().ToString();
    cluster = std::move(*made);
    key = cluster->key();

    // The worker dumps its environment (for its key), then becomes the example worker.
    const fs::path dump = cluster->root() / "worker.env";
    const std::string worker = std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py";
    Reply created = Send("POST", cluster->controller().base_url() + "/v1/endpoints", Bearer(key),
                         json{{"name", "webhooks"},
                              {"model", "org/tiny"},
                              {"hfToken", kHfToken},
                              {"command",
                               {"sh", "-c",
                                "env > \"$ENV_DUMP.tmp\" && mv \"$ENV_DUMP.tmp\" "
                                "\"$ENV_DUMP\" && exec python3 \"$WORKER\""}},
                              {"env", {{"ENV_DUMP", dump.string()}, {"WORKER", worker}}},
                              {"workersMin", 1},
                              {"workersMax", 1}}
                             .dump());
    if (created.status != 200) return "create the endpoint: " + created.text;
    endpoint = created.body["id"].get<std::string>();
    // A job that completes shows that the worker is up and taking jobs.
    Reply first = Send("POST", Base() + "/runsync?wait=60000", Bearer(key), R"({"input": {}})");
    if (first.body.value("status", "") != "COMPLETED") return "first job: " + first.text;
    std::ifstream in(dump);
    const auto env = ParseEnv(std::string(std::istreambuf_iterator<char>(in), {}));
    auto it = env.find("RUNPOD_AI_API_KEY");
    if (it == env.end() || it->second.empty()) return "the worker had no RUNPOD_AI_API_KEY";
    worker_key = it->second;
    return "";
  }

  std::string Base() const { return cluster->controller().base_url() + "/v2/" + endpoint; }

  ~World() {
    cluster.reset();
    receiver.Stop();
  }
};

class WebhookTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new World();
    error_ = world_->Build();
  }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }
  void SetUp() override {
    if (!error_.empty()) GTEST_FAIL() << "no test world: " << error_;
  }

  Receiver& receiver() { return world_->receiver; }
  // POST /run with `input` and a webhook to the receiver's `path`; returns the job id.
  std::string Run(const json& input, const std::string& path, json extra = json::object()) {
    extra["input"] = input;
    extra["webhook"] = receiver().Url(path);
    Reply r = Send("POST", world_->Base() + "/run", Bearer(world_->key), extra.dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body.is_object() ? r.body.value("id", "") : "";
  }
  // The job's status object once it is final (the status-sync long poll).
  json Final(const std::string& id) {
    Reply r =
        Send("GET", world_->Base() + "/status-sync/" + id + "?wait=60000", Bearer(world_->key));
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body;
  }
  json StatusOf(const std::string& id) {
    return Send("GET", world_->Base() + "/status/" + id, Bearer(world_->key)).body;
  }
  // Returns once every delivery queued so far is over: a cancelled job's webhook goes after them.
  void Flush() {
    const std::string path = "/flush-" + std::to_string(++flushes_);
    const std::string id = Run(json::object(), path);
    Send("POST", world_->Base() + "/cancel/" + id, Bearer(world_->key), "");
    ASSERT_EQ(receiver().WaitHits(path, 1).size(), 1u) << "the flush job's webhook never came";
  }

  // A controller of its own on `db`, on the suite's upstream and receiver, with no agent;
  // webhooks are tried kTries times, `retry_delay` apart.
  std::unique_ptr<Controller> StartOwnController(const fs::path& db,
                                                 std::chrono::milliseconds retry_delay) {
    ControllerOptions co;
    co.listen = "127.0.0.1:0";
    co.db_path = db;
    co.upstream = *hub::Endpoint::Parse(world_->cluster->upstream().base_url());
    co.tick = 50ms;
    co.webhook_tries = kTries;
    co.webhook_retry_delay = retry_delay;
    co.webhook_timeout = 5s;
    co.webhook_allow_private = true;  // the receiver is on loopback
    co.clock = &own_clock_;
    auto c = Controller::Create(std::move(co));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return nullptr;
    const Status started = (*c)->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return started.ok() ? std::move(*c) : nullptr;
  }
  // A new database with a key (own_key_) for StartOwnController.
  fs::path NewDatabase(const std::string& name) {
    const fs::path db = world_->cluster->root() / (name + ".db");
    auto key = AddApiKey(db, "restart");
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    own_key_ = key.value_or("");
    return db;
  }
  // An endpoint on `c` (nothing can run its jobs); returns its id.
  std::string CreateOwnEndpoint(const Controller& c) {
    Reply r = Send("POST", c.base_url() + "/v1/endpoints", Bearer(own_key_),
                   json{{"name", "restart"},
                        {"model", "org/tiny"},
                        {"command", {"python3", "never-started.py"}}}
                       .dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body.is_object() ? r.body.value("id", "") : "";
  }
  // Ends a job of `endpoint` on `c` at once (run, then cancel), with a webhook to `url`: once
  // this returns, its delivery is in the outbox. Returns the job's id.
  std::string EndJob(const Controller& c, const std::string& endpoint, const std::string& url) {
    const std::string base = c.base_url() + "/v2/" + endpoint;
    Reply r =
        Send("POST", base + "/run", Bearer(own_key_), json{{"input", {}}, {"webhook", url}}.dump());
    EXPECT_EQ(r.status, 200) << r.text;
    const std::string id = r.body.is_object() ? r.body.value("id", "") : "";
    Reply cancelled = Send("POST", base + "/cancel/" + id, Bearer(own_key_), "");
    EXPECT_EQ(cancelled.body.value("status", ""), "CANCELLED") << cancelled.text;
    return id;
  }
  // Returns once every delivery `c` had before is over (they go in order).
  void FlushOwn(const Controller& c, const std::string& endpoint) {
    const std::string path = "/flush-" + std::to_string(++flushes_);
    EndJob(c, endpoint, receiver().Url(path));
    ASSERT_EQ(receiver().WaitHits(path, 1).size(), 1u) << "the flush job's webhook never came";
  }

  static World* world_;
  static std::string error_;
  static int flushes_;   // each flush has its own path, across the suite
  FakeClock own_clock_;  // for StartOwnController
  std::string own_key_;  // of NewDatabase's database
};
World* WebhookTest::world_ = nullptr;
std::string WebhookTest::error_;
int WebhookTest::flushes_ = 0;

TEST_F(WebhookTest, CompletedJobDeliversOnePostWithTheStatusObject) {
  const std::string id = Run({{"x", 1}}, "/completed");
  const json final = Final(id);
  ASSERT_EQ(final["status"], "COMPLETED") << final.dump();
  auto hits = receiver().WaitHits("/completed", 1);
  ASSERT_EQ(hits.size(), 1u);
  Flush();
  hits = receiver().Hits("/completed");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].method, "POST");
  EXPECT_EQ(hits[0].headers.Get("Content-Type").value_or(""), "application/json");
  const json body = json::parse(hits[0].body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << hits[0].body;
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["status"], "COMPLETED");
  EXPECT_EQ(body["output"]["echo"], json({{"x", 1}})) << body.dump();
  EXPECT_EQ(body["output"]["model"], "org/tiny");
  EXPECT_TRUE(body["delayTime"].is_number_integer()) << body.dump();
  EXPECT_TRUE(body["executionTime"].is_number_integer()) << body.dump();
  EXPECT_EQ(body, StatusOf(id));  // the same object /status answers
}

TEST_F(WebhookTest, FailingReceiverIsTriedAgainUntilItAnswers200) {
  receiver().Script("/flaky", {500, 500, 200});
  const std::string id = Run(json::object(), "/flaky");
  const auto hits = receiver().WaitHits("/flaky", 3);
  ASSERT_EQ(hits.size(), 3u);
  for (const auto& hit : hits) {
    EXPECT_EQ(json::parse(hit.body, nullptr, false)["id"], id);
    EXPECT_EQ(hit.body, hits[0].body);
  }
  EXPECT_GE(hits[1].at - hits[0].at, kRetryDelay);
  EXPECT_GE(hits[2].at - hits[1].at, kRetryDelay);
  Flush();
  EXPECT_EQ(receiver().Hits("/flaky").size(), 3u);  // delivered: no fourth try
}

TEST_F(WebhookTest, ReceiverThatNeverAnswers200GetsTheBoundedTriesOnly) {
  receiver().Script("/down", {503, 404, 201});  // not 200, ever
  Run(json::object(), "/down");
  ASSERT_EQ(receiver().WaitHits("/down", kTries).size(), static_cast<size_t>(kTries));
  Flush();
  EXPECT_EQ(receiver().Hits("/down").size(), static_cast<size_t>(kTries));
}

TEST_F(WebhookTest, FailedJobDeliversItsError) {
  const std::string id = Run({{"fail", "boom"}}, "/failed");
  ASSERT_EQ(Final(id)["status"], "FAILED");
  const auto hits = receiver().WaitHits("/failed", 1);
  ASSERT_EQ(hits.size(), 1u);
  const json body = json::parse(hits[0].body, nullptr, false);
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["status"], "FAILED");
  EXPECT_EQ(body["error"], "boom");
}

TEST_F(WebhookTest, CancelledJobDelivers) {
  const std::string id = Run({{"sleep", 30}}, "/cancelled");
  Reply cancelled = Send("POST", world_->Base() + "/cancel/" + id, Bearer(world_->key), "");
  ASSERT_EQ(cancelled.status, 200) << cancelled.text;
  const auto hits = receiver().WaitHits("/cancelled", 1);
  ASSERT_EQ(hits.size(), 1u);
  const json body = json::parse(hits[0].body, nullptr, false);
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["status"], "CANCELLED");
}

TEST_F(WebhookTest, TimedOutJobDelivers) {
  const std::string id =
      Run({{"sleep", 30}}, "/timed-out", {{"policy", {{"executionTimeout", 5000}}}});
  // The timeout counts from the start: wait (bounded) until the worker has the job.
  Eventually([&] { return StatusOf(id).value("status", "") == "IN_PROGRESS"; });
  ASSERT_EQ(StatusOf(id)["status"], "IN_PROGRESS");
  world_->clock.Advance(5001ms);
  const auto hits = receiver().WaitHits("/timed-out", 1);
  ASSERT_EQ(hits.size(), 1u);
  const json body = json::parse(hits[0].body, nullptr, false);
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["status"], "TIMED_OUT");
  EXPECT_TRUE(body["error"].is_string()) << body.dump();
}

TEST_F(WebhookTest, BodyNeverCarriesTheHfTokenOrAnyKey) {
  const std::string done = Run(json::object(), "/secrets-done");
  const std::string raised = Run({{"raise", "boom"}}, "/secrets-raised");
  ASSERT_EQ(Final(done)["status"], "COMPLETED");
  ASSERT_EQ(Final(raised)["status"], "FAILED");
  ASSERT_EQ(receiver().WaitHits("/secrets-done", 1).size(), 1u);
  ASSERT_EQ(receiver().WaitHits("/secrets-raised", 1).size(), 1u);
  for (const Receiver::Hit& hit : receiver().AllHits()) {
    for (const std::string& secret : {std::string(kHfToken), world_->worker_key, world_->key}) {
      EXPECT_EQ(hit.body.find(secret), std::string::npos) << hit.body;
      for (const auto& [name, value] : hit.headers.fields()) {
        EXPECT_EQ(value.find(secret), std::string::npos) << name;
      }
    }
    EXPECT_FALSE(hit.headers.Get("Authorization").has_value());
  }
}

// ---- restarts ----

TEST_F(WebhookTest, DeliveryPendingAtStopIsSentByTheNextControllerOnTheSameDatabase) {
  // The receiver is down (nothing listens on its address) while the first controller runs; it
  // is stopped once that controller has its own port, so that neither controller can take it.
  Receiver late;
  ASSERT_TRUE(late.Start().ok());
  const std::string listen = late.Listen();
  const fs::path db = NewDatabase("pending");
  auto first = StartOwnController(db, 60s);  // at most one try before Stop()
  ASSERT_NE(first, nullptr);
  late.Stop();
  const std::string endpoint = CreateOwnEndpoint(*first);
  ASSERT_FALSE(endpoint.empty());
  const std::string id = EndJob(*first, endpoint, "http://" + listen + "/late");
  first->Stop();
  first.reset();

  ASSERT_TRUE(late.Start(listen).ok());  // up again, at the same address
  auto second = StartOwnController(db, kRetryDelay);
  ASSERT_NE(second, nullptr);
  const auto hits = late.WaitHits("/late", 1);
  ASSERT_EQ(hits.size(), 1u);
  const json body = json::parse(hits[0].body, nullptr, false);
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["status"], "CANCELLED");
  EXPECT_FALSE(hits[0].headers.Get("Authorization").has_value());
  FlushOwn(*second, endpoint);
  EXPECT_EQ(late.Hits("/late").size(), 1u);  // delivered: not again
  second->Stop();
  late.Stop();
}

TEST_F(WebhookTest, RestartKeepsTheTriesAlreadyMade) {
  receiver().Script("/bounded", {503});  // never 200
  const fs::path db = NewDatabase("bounded");
  auto first = StartOwnController(db, 60s);
  ASSERT_NE(first, nullptr);
  const std::string endpoint = CreateOwnEndpoint(*first);
  ASSERT_FALSE(endpoint.empty());
  EndJob(*first, endpoint, receiver().Url("/bounded"));
  ASSERT_EQ(receiver().WaitHits("/bounded", 1).size(), 1u);
  first->Stop();  // in the 60 s wait: one try made, and recorded
  first.reset();

  auto second = StartOwnController(db, kRetryDelay);
  ASSERT_NE(second, nullptr);
  FlushOwn(*second, endpoint);
  EXPECT_EQ(receiver().Hits("/bounded").size(), static_cast<size_t>(kTries));  // 1 + the rest
  second->Stop();
  second.reset();

  auto third = StartOwnController(db, kRetryDelay);  // given up: not tried again
  ASSERT_NE(third, nullptr);
  FlushOwn(*third, endpoint);
  EXPECT_EQ(receiver().Hits("/bounded").size(), static_cast<size_t>(kTries));
}

TEST_F(WebhookTest, DeliveredWebhookIsNotSentAgainAfterARestart) {
  const fs::path db = NewDatabase("delivered");
  auto first = StartOwnController(db, kRetryDelay);
  ASSERT_NE(first, nullptr);
  const std::string endpoint = CreateOwnEndpoint(*first);
  ASSERT_FALSE(endpoint.empty());
  const std::string id = EndJob(*first, endpoint, receiver().Url("/delivered-once"));
  ASSERT_EQ(receiver().WaitHits("/delivered-once", 1).size(), 1u);
  first->Stop();  // after the try in flight is recorded: the 200 is in the store
  first.reset();

  auto second = StartOwnController(db, kRetryDelay);
  ASSERT_NE(second, nullptr);
  FlushOwn(*second, endpoint);
  const auto hits = receiver().Hits("/delivered-once");
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(json::parse(hits[0].body, nullptr, false)["id"], id);
}

}  // namespace
}  // namespace mc::controller
