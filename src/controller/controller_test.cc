// Contract tests of the controller's Runpod surfaces (runpod-protocol.md §1, §2, §7) with real
// parts on loopback: an upstream MirrorServer holding one small model, one in-process agent that
// registers itself with an in-process controller, and one endpoint whose worker process only
// dumps its environment and sleeps. The test then plays that worker over real HTTP, sending the
// requests runpod-python 1.12 sends (raw key, "&job_in_progress=0", JSON results labelled
// application/x-www-form-urlencoded, ...), so the real routes are exercised without the SDK.
//
// The controller runs on a FakeClock: delays, TTLs, execution timeouts and the unlisted-job
// grace are driven by Advance(), never by sleeping. So are the long-polls (job-take, job-stop,
// runsync wait): a take with nothing queued answers once the test has advanced past the hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "controller/test_cluster.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;

constexpr char kSdkUserAgent[] =
    "RunPod-Python-SDK/1.12.0 (Linux 6.1.0; x86_64) Language/Python 3.11.2";
constexpr auto kTakeHold = 2s;

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

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

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The shared TestCluster (org/tiny upstream, one agent "host-a" with 4 GPU slots, the
// controller on a FakeClock) and the endpoint with its one worker, shared by the suite (the
// worker's start is the slow part).
struct World {
  FakeClock clock;
  std::unique_ptr<TestCluster> cluster;
  Controller* controller = nullptr;
  std::string key;       // clients' key; also agent → controller and controller → agent
  std::string endpoint;  // the endpoint's id
  std::map<std::string, std::string> env;  // what the worker process was given
  std::string error;                       // why the world could not be built; empty when it was

  net::HeaderMap Bearer() const { return controller::Bearer(key); }

  std::string Build() {
    TestClusterOptions o;
    o.name = "controller_test";
    o.controller_options = [this](ControllerOptions& c) {
      c.take_hold = kTakeHold;
      c.host_timeout = 30s;
      c.stop_grace = 1s;
      // The suite's one worker is played by the test and often left "running" without a job
      // while the fake clock jumps: it must never be stopped for ignoring a job-stop (e2e tests
      // that).
      c.job_stop_grace = 24h;
      c.max_body_bytes = 64 << 10;
      c.max_run_body_bytes = 64 << 10;
      c.clock = &clock;
    };
    o.agent_options = [](int, agent::AgentOptions& a) {
      a.host_id = "host-a";
      a.gpus = 4;
      a.maintenance_interval = 3600s;
      a.sleep = [](std::chrono::milliseconds) {};
    };
    auto made = TestCluster::Create(std::move(o));
    if (!made.ok()) return made.status().ToString();
    cluster = std::move(*made);
    controller = &cluster->controller();
    key = cluster->key();

    const fs::path dump = cluster->root() / "worker.env";
    Reply created = Send("POST", controller->base_url() + "/v1/endpoints", Bearer(),
                         json{{"name", "contract"},
                              {"model", "org/tiny"},
                              {"command", {"sh", "-c", "env > \"$ENV_DUMP\"; exec sleep 600"}},
                              {"env", {{"ENV_DUMP", dump.string()}}},
                              {"workersMin", 1},
                              {"workersMax", 1}}
                             .dump());
    if (created.status != 200) return "create the endpoint: " + created.text;
    endpoint = created.body["id"].get<std::string>();
    // The worker is placed, its model fetched and its process started: wait for its env dump.
    Eventually([&] {
      const std::string text = fs::exists(dump) ? ReadFile(dump) : "";
      if (!text.ends_with('\n') || text.find("RUNPOD_WEBHOOK_GET_JOB=") == std::string::npos ||
          text.find("MODEL_PATH=") == std::string::npos) {
        return false;
      }
      env = ParseEnv(text);
      return true;
    });
    if (env.empty()) return "the worker did not write its environment within 30 s";
    return "";
  }
};

class ControllerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    world_ = new World();
    world_->error = world_->Build();
  }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }

  void SetUp() override {
    if (!world_->error.empty()) GTEST_FAIL() << "no test world: " << world_->error;
  }
  // Leaves the endpoint as the test found it: running jobs finished by the worker, queue empty.
  void TearDown() override {
    if (!world_->error.empty()) return;
    for (const std::string& id : jobs_) {
      Reply s = Client("GET", "/status/" + id);
      if (s.status == 200 && s.body["status"] == "IN_PROGRESS" &&
          s.body.value("workerId", "") == WorkerId()) {
        PostOutput(id, R"({"output": "cleanup"})");
      }
    }
    Client("POST", "/purge-queue");
  }

  // ---- the client side (/v2/{endpoint}/...) ----

  Reply Client(const std::string& method, const std::string& op, const std::string& body = "") {
    return Send(method, Base() + op, world_->Bearer(),
                method == "POST" ? std::optional<std::string>(body) : std::nullopt);
  }
  std::string Base() const { return world_->controller->base_url() + "/v2/" + world_->endpoint; }
  // POST /run; the job is finished or purged after the test.
  std::string Run(const json& body) {
    Reply r = Client("POST", "/run", body.dump());
    EXPECT_EQ(r.status, 200) << r.text;
    if (r.status != 200 || !r.body.contains("id")) return "";
    Track(r.body["id"].get<std::string>());
    return r.body["id"].get<std::string>();
  }
  void Track(const std::string& id) { jobs_.insert(id); }
  json JobStatus(const std::string& id) {
    Reply r = Client("GET", "/status/" + id);
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body;
  }
  // Polls /status (the controller's tick runs every 50 ms) until `pred` holds; bounded.
  template <typename Pred>
  Reply WaitStatus(const std::string& id, Pred pred) {
    Reply r;
    Eventually([&] {
      r = Client("GET", "/status/" + id);
      return pred(r);
    });
    return r;
  }

  // ---- the worker side, as runpod-python sends it (§2) ----

  const std::map<std::string, std::string>& Env() const { return world_->env; }
  std::string EnvVar(const std::string& name) const {
    auto it = world_->env.find(name);
    return it == world_->env.end() ? "" : it->second;
  }
  std::string WorkerId() const { return EnvVar("RUNPOD_POD_ID"); }
  net::HeaderMap WorkerHeaders(const std::string& key) const {
    net::HeaderMap h;
    h.Set("Authorization", key);  // raw, no "Bearer"
    h.Set("User-Agent", kSdkUserAgent);
    return h;
  }
  net::HeaderMap WorkerHeaders() const { return WorkerHeaders(EnvVar("RUNPOD_AI_API_KEY")); }
  // GET {GET_JOB}&job_in_progress=0; a job taken is tracked for the cleanup.
  Reply Take(const net::HeaderMap& headers) {
    const std::string url = ReplaceAll(EnvVar("RUNPOD_WEBHOOK_GET_JOB"), "$ID", WorkerId());
    Reply r = Send("GET", url + "&job_in_progress=0", headers);
    if (r.status == 200 && r.body.is_object() && r.body.contains("id")) {
      Track(r.body["id"].get<std::string>());
    }
    return r;
  }
  Reply Take() { return Take(WorkerHeaders()); }
  std::string TakeId() {
    Reply r = Take();
    EXPECT_EQ(r.status, 200) << r.text;
    return r.status == 200 ? r.body.value("id", "") : "";
  }
  Reply TakeBatch(int n) {
    std::string url = ReplaceAll(EnvVar("RUNPOD_WEBHOOK_GET_JOB"), "$ID", WorkerId());
    url = ReplaceAll(url, "/job-take/", "/job-take-batch/");
    Reply r = Send("GET", url + "&batch_size=" + std::to_string(n) + "&job_in_progress=0",
                   WorkerHeaders());
    if (r.status == 200 && r.body.is_array()) {
      for (const json& j : r.body) Track(j.value("id", ""));
    }
    return r;
  }
  Reply Stops() {
    std::string url = ReplaceAll(EnvVar("RUNPOD_WEBHOOK_GET_JOB"), "$ID", WorkerId());
    return Send("GET", ReplaceAll(url, "/job-take/", "/job-stop/"), WorkerHeaders());
  }
  // POST {template with $RUNPOD_POD_ID, then $ID, replaced}&isStream=..., the JSON text labelled
  // form-urlencoded, with the SDK's odd extra headers.
  Reply PostTo(const std::string& var, const std::string& job, const std::string& body,
               bool is_stream) {
    std::string url = ReplaceAll(EnvVar(var), "$RUNPOD_POD_ID", WorkerId());
    url = ReplaceAll(url, "$ID", job) + (is_stream ? "&isStream=true" : "&isStream=false");
    net::HeaderMap h = WorkerHeaders();
    h.Set("Content-Type", "application/x-www-form-urlencoded");
    h.Set("charset", "utf-8");
    h.Set("X-Request-ID", job);
    return Send("POST", url, h, body);
  }
  Reply PostOutput(const std::string& job, const std::string& body, bool is_stream = false) {
    return PostTo("RUNPOD_WEBHOOK_POST_OUTPUT", job, body, is_stream);
  }
  Reply PostStream(const std::string& job, const std::string& body) {
    return PostTo("RUNPOD_WEBHOOK_POST_STREAM", job, body, false);
  }
  // GET {PING}?job_id=<ids, comma-separated, as requests encodes them>&runpod_version=...
  Reply Ping(const std::vector<std::string>& job_ids) {
    std::string url = ReplaceAll(EnvVar("RUNPOD_WEBHOOK_PING"), "$RUNPOD_POD_ID", WorkerId());
    std::string ids;
    for (const std::string& id : job_ids) ids += (ids.empty() ? "" : "%2C") + id;
    url += url.find('?') == std::string::npos ? "?" : "&";
    if (!ids.empty()) url += "job_id=" + ids + "&";
    url += "runpod_version=1.12.0";
    return Send("GET", url, WorkerHeaders());
  }
  // Moves the controller's clock, the worker pinging (with `listed`) before and after each step
  // of at most 20 s, so that it never looks silent (the fleet's limit is 30 s).
  void Advance(std::chrono::milliseconds d, const std::vector<std::string>& listed) {
    EXPECT_EQ(Ping(listed).status, 200);
    while (d > 0ms) {
      const auto step = std::min<std::chrono::milliseconds>(d, 20s);
      world_->clock.Advance(step);
      EXPECT_EQ(Ping(listed).status, 200);
      d -= step;
    }
  }

  static World* world_;
  std::set<std::string> jobs_;
};
World* ControllerTest::world_ = nullptr;

// ---- the worker's environment (§2) ----

TEST_F(ControllerTest, KeyMadeByTheRunningControllerIsAccepted) {
  auto made = world_->controller->CreateApiKey("made-while-running");
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  const std::string url = world_->controller->base_url() + "/v1/endpoints";
  EXPECT_EQ(Send("GET", url, Bearer(*made)).status, 200);
  EXPECT_EQ(Send("GET", url, Bearer(*made + "x")).status, 401);
}

TEST_F(ControllerTest, WorkerEnvironmentFollowsTheSdkContract) {
  for (const char* var :
       {"RUNPOD_WEBHOOK_GET_JOB", "RUNPOD_WEBHOOK_POST_OUTPUT", "RUNPOD_WEBHOOK_POST_STREAM",
        "RUNPOD_WEBHOOK_PING", "RUNPOD_AI_API_KEY", "RUNPOD_POD_ID", "RUNPOD_PING_INTERVAL",
        "HF_HUB_OFFLINE", "MODEL_PATH"}) {
    EXPECT_FALSE(EnvVar(var).empty()) << var;
  }
  // The SDK appends "&..." to every template but PING, which gets requests params.
  for (const char* var :
       {"RUNPOD_WEBHOOK_GET_JOB", "RUNPOD_WEBHOOK_POST_OUTPUT", "RUNPOD_WEBHOOK_POST_STREAM"}) {
    EXPECT_NE(EnvVar(var).find('?'), std::string::npos) << var << "=" << EnvVar(var);
  }
  EXPECT_NE(EnvVar("RUNPOD_WEBHOOK_GET_JOB").find("/job-take/"), std::string::npos);
  EXPECT_NE(EnvVar("RUNPOD_WEBHOOK_POST_OUTPUT").find("$ID"), std::string::npos);
  EXPECT_NE(EnvVar("RUNPOD_WEBHOOK_POST_STREAM").find("$ID"), std::string::npos);
  // Only $ID is replaced in GET_JOB: the worker id must already be in it.
  EXPECT_NE(EnvVar("RUNPOD_WEBHOOK_GET_JOB").find(WorkerId()), std::string::npos);
  EXPECT_EQ(EnvVar("RUNPOD_WEBHOOK_GET_JOB").find("$RUNPOD_POD_ID"), std::string::npos);
  EXPECT_NE(EnvVar("RUNPOD_WEBHOOK_PING").find(WorkerId()), std::string::npos);
  EXPECT_EQ(EnvVar("RUNPOD_PING_INTERVAL"), "1000");
  EXPECT_EQ(EnvVar("HF_HUB_OFFLINE"), "1");
  EXPECT_EQ(EnvVar("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"), "true");
  EXPECT_EQ(EnvVar("RUNPOD_ENDPOINT_ID"), world_->endpoint);
  EXPECT_TRUE(fs::exists(fs::path(EnvVar("MODEL_PATH")) / "config.json")) << EnvVar("MODEL_PATH");
  EXPECT_NE(EnvVar("RUNPOD_AI_API_KEY"), world_->key);  // its own key, not the client's
}

TEST_F(ControllerTest, WorkerDoesNotShareTheHostsHome) {
  // runpod-python takes its key from ~/.runpod/config.toml when that file exists, before
  // RUNPOD_AI_API_KEY (§7): a worker given the host's HOME would authenticate with the wrong key.
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == 0) GTEST_SKIP() << "HOME is not set here";
  EXPECT_NE(EnvVar("HOME"), home);
}

// ---- submit and take ----

TEST_F(ControllerTest, RunAnswersIdAndInQueue) {
  Reply r = Client("POST", "/run", R"({"input": {"prompt": "hi"}})");
  ASSERT_EQ(r.status, 200) << r.text;
  Track(r.body.value("id", ""));
  EXPECT_EQ(r.body.size(), 2u) << r.text;
  EXPECT_EQ(r.body["status"], "IN_QUEUE");
  EXPECT_TRUE(r.body["id"].get<std::string>().ends_with("-u1")) << r.text;
  EXPECT_EQ(JobStatus(r.body["id"])["status"], "IN_QUEUE");
}

TEST_F(ControllerTest, TakeGivesIdInputAndPassesExtraTopLevelKeysThrough) {
  const json s3 = {{"accessId", "a"},
                   {"accessSecret", "s"},
                   {"bucketName", "b"},
                   {"endpointUrl", "https://s3.example"}};
  const std::string id = Run({{"input", {{"prompt", "hi"}, {"n", 2}}},
                              {"s3Config", s3},
                              {"policy", {{"executionTimeout", 60000}}}});
  Reply r = Take();
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_TRUE(r.content_type.starts_with("application/json")) << r.content_type;
  ASSERT_TRUE(r.body.is_object()) << r.text;
  EXPECT_EQ(r.body["id"], id);
  EXPECT_EQ(r.body["input"], (json{{"prompt", "hi"}, {"n", 2}}));
  EXPECT_EQ(r.body["s3Config"], s3);
  EXPECT_FALSE(r.body.contains("policy")) << r.text;
  EXPECT_EQ(JobStatus(id)["status"], "IN_PROGRESS");
  EXPECT_EQ(JobStatus(id)["workerId"], WorkerId());
}

TEST_F(ControllerTest, TakeWithNothingQueuedAnswers204AfterTheHold) {
  // The hold is on the controller's clock: the take answers once the test has moved it on.
  std::atomic<bool> done{false};
  Reply r;
  std::jthread worker([&] {
    r = Take();
    done = true;
  });
  ASSERT_TRUE(Eventually([&] {
    if (!done) Advance(500ms, {});
    return done.load();
  }));
  worker.join();
  EXPECT_EQ(r.status, 204) << r.text;
  EXPECT_TRUE(r.text.empty());
}

TEST_F(ControllerTest, BatchTakeAnswersAList) {
  const std::string a = Run({{"input", 1}});
  const std::string b = Run({{"input", 2}});
  Reply r = TakeBatch(2);
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_TRUE(r.content_type.starts_with("application/json")) << r.content_type;
  ASSERT_TRUE(r.body.is_array()) << r.text;
  ASSERT_EQ(r.body.size(), 2u) << r.text;
  EXPECT_EQ(r.body[0]["id"], a);
  EXPECT_EQ(r.body[0]["input"], 1);
  EXPECT_EQ(r.body[1]["id"], b);
  EXPECT_EQ(r.body[1]["input"], 2);
}

// ---- results ----

TEST_F(ControllerTest, FormLabelledResultCompletesTheJobWithItsTimes) {
  const std::string id = Run({{"input", "x"}});
  Advance(1500ms, {});
  ASSERT_EQ(TakeId(), id);
  Advance(700ms, {id});
  Reply done = PostOutput(id, R"({"output": {"text": "hello"}})");
  EXPECT_EQ(done.status, 200) << done.text;
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "COMPLETED") << s.dump();
  EXPECT_EQ(s["output"], (json{{"text", "hello"}}));
  EXPECT_EQ(s["delayTime"], 1500) << s.dump();
  EXPECT_EQ(s["executionTime"], 700) << s.dump();
  EXPECT_FALSE(s.contains("error")) << s.dump();
}

TEST_F(ControllerTest, ResultWithErrorFailsTheJob) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostOutput(id, R"({"error": "CUDA out of memory"})").status, 200);
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "FAILED") << s.dump();
  EXPECT_EQ(s["error"], "CUDA out of memory");
}

TEST_F(ControllerTest, DuplicateOrLateResultAnswers200AndChangesNothing) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostOutput(id, R"({"output": "first"})").status, 200);
  // The SDK retries a result post; late ones must never get 4xx (§7).
  EXPECT_EQ(PostOutput(id, R"({"output": "first"})").status, 200);
  EXPECT_EQ(PostOutput(id, R"({"output": "second"})").status, 200);
  EXPECT_EQ(PostOutput(id, R"({"error": "late failure"})").status, 200);
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "COMPLETED");
  EXPECT_EQ(s["output"], "first");
  EXPECT_FALSE(s.contains("error")) << s.dump();
  // A result for a job nobody knows is accepted and dropped too.
  EXPECT_EQ(PostOutput("00000000-0000-4000-8000-000000000000-u1", R"({"output": 1})").status, 200);
}

TEST_F(ControllerTest, ProgressUpdateSetsOutputAndKeepsInProgress) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostOutput(id, R"({"status": "IN_PROGRESS", "output": "x"})").status, 200);
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "IN_PROGRESS") << s.dump();
  EXPECT_EQ(s["output"], "x");
}

TEST_F(ControllerTest, ProgressAfterTheFinalResultIsIgnored) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostOutput(id, R"({"output": "done"})").status, 200);
  EXPECT_EQ(PostOutput(id, R"({"status": "IN_PROGRESS", "output": "50%"})").status, 200);
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "COMPLETED") << s.dump();
  EXPECT_EQ(s["output"], "done");
}

TEST_F(ControllerTest, ResultFieldsOfUnexpectedTypesDoNotFailThePost) {
  // A 5xx makes the SDK retry and then drop the result (§7): a result the board can read must
  // be answered 2xx whatever the types of the fields it only peeks at.
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  Reply r = PostOutput(id, R"({"output": 1, "stopPod": "no"})");
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(JobStatus(id)["status"], "COMPLETED");
}

// ---- runsync ----

TEST_F(ControllerTest, RunsyncAnswersTheFullStatusWhenTheJobEndsInTime) {
  Reply sync;
  std::jthread client([&] {
    sync = Send("POST", Base() + "/runsync?wait=20000", world_->Bearer(), R"({"input": {"q": 1}})");
  });
  Reply taken;
  for (int i = 0; i < 3 && taken.status != 200; ++i) taken = Take();
  ASSERT_EQ(taken.status, 200) << taken.text;
  const std::string id = taken.body["id"];
  EXPECT_TRUE(id.starts_with("sync-")) << id;
  EXPECT_EQ(taken.body["input"], (json{{"q", 1}}));
  ASSERT_EQ(PostOutput(id, R"({"output": [1, 2, 3]})").status, 200);
  client.join();
  ASSERT_EQ(sync.status, 200) << sync.text;
  EXPECT_EQ(sync.body["id"], id);
  EXPECT_EQ(sync.body["status"], "COMPLETED");
  EXPECT_EQ(sync.body["output"], json::array({1, 2, 3}));
  EXPECT_TRUE(sync.body.contains("delayTime")) << sync.text;
  EXPECT_TRUE(sync.body.contains("executionTime")) << sync.text;
}

TEST_F(ControllerTest, RunsyncAnswersIdAndStatusWhenTheWaitRunsOut) {
  // The wait is on the controller's clock: runsync answers once the test has moved it 1 s on.
  std::atomic<bool> done{false};
  Reply r;
  std::jthread client([&] {
    r = Client("POST", "/runsync?wait=1000", R"({"input": "slow"})");
    done = true;
  });
  ASSERT_TRUE(Eventually([&] {
    if (!done) Advance(250ms, {});
    return done.load();
  }));
  client.join();
  ASSERT_EQ(r.status, 200) << r.text;
  Track(r.body.value("id", ""));
  EXPECT_EQ(r.body.size(), 2u) << r.text;
  EXPECT_EQ(r.body["status"], "IN_QUEUE");
  EXPECT_TRUE(r.body["id"].get<std::string>().starts_with("sync-"));
}

// ---- stream ----

TEST_F(ControllerTest, StreamReturnsEachChunkOnceAndAlwaysHasTheStreamKey) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  Reply empty = Client("GET", "/stream/" + id);
  ASSERT_EQ(empty.status, 200) << empty.text;
  EXPECT_EQ(empty.body["status"], "IN_PROGRESS");
  EXPECT_EQ(empty.body["stream"], json::array()) << empty.text;
  ASSERT_EQ(PostStream(id, R"({"output": "a"})").status, 200);
  ASSERT_EQ(PostStream(id, R"({"output": {"token": "b"}})").status, 200);
  Reply first = Client("GET", "/stream/" + id);
  EXPECT_EQ(first.body["stream"],
            (json::array({{{"output", "a"}}, {{"output", {{"token", "b"}}}}})))
      << first.text;
  EXPECT_EQ(Client("GET", "/stream/" + id).body["stream"], json::array());
  ASSERT_EQ(PostStream(id, R"({"output": "c"})").status, 200);
  EXPECT_EQ(Client("GET", "/stream/" + id).body["stream"], json::array({{{"output", "c"}}}));
  // The SDK's final post after a generator: {"output": []} with isStream=true.
  ASSERT_EQ(PostOutput(id, R"({"output": []})", /*is_stream=*/true).status, 200);
  Reply last = Client("GET", "/stream/" + id);
  EXPECT_EQ(last.body["status"], "COMPLETED") << last.text;
  EXPECT_EQ(last.body["stream"], json::array());
}

// ---- cancel, retry, purge ----

TEST_F(ControllerTest, CancelledQueuedJobIsNeverHandedOut) {
  const std::string cancelled = Run({{"input", "no"}});
  const std::string next = Run({{"input", "yes"}});
  Reply r = Client("POST", "/cancel/" + cancelled);
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body, (json{{"id", cancelled}, {"status", "CANCELLED"}}));
  EXPECT_EQ(TakeId(), next);
  EXPECT_EQ(JobStatus(cancelled)["status"], "CANCELLED");
}

TEST_F(ControllerTest, CancelOfARunningJobReachesTheWorkersStopChannel) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  Reply r = Client("POST", "/cancel/" + id);
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["status"], "CANCELLED");
  Reply stops = Stops();
  ASSERT_EQ(stops.status, 200) << stops.text;
  EXPECT_EQ(stops.body, (json{{"jobsToStop", {id}}}));
  // The SDK posts nothing for a stopped job; an older one might: ignored.
  EXPECT_EQ(PostOutput(id, R"({"output": "too late"})").status, 200);
  EXPECT_EQ(JobStatus(id)["status"], "CANCELLED");
}

TEST_F(ControllerTest, RetryRequeuesAFailedJobWithTheSameIdAndInput) {
  const std::string id = Run({{"input", {{"seed", 7}}}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostOutput(id, R"({"error": "boom"})").status, 200);
  Reply r = Client("POST", "/retry/" + id);
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body, (json{{"id", id}, {"status", "IN_QUEUE"}}));
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "IN_QUEUE");
  EXPECT_FALSE(s.contains("error")) << s.dump();
  EXPECT_FALSE(s.contains("output")) << s.dump();
  Reply again = Take();
  ASSERT_EQ(again.status, 200) << again.text;
  EXPECT_EQ(again.body["id"], id);
  EXPECT_EQ(again.body["input"], (json{{"seed", 7}}));
}

TEST_F(ControllerTest, RetryStartsWithAnEmptyStream) {
  // "Old output cleared" (§1): chunks of the failed attempt are not the retried job's output.
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostStream(id, R"({"output": "attempt 1"})").status, 200);
  ASSERT_EQ(PostOutput(id, R"({"error": "boom"})").status, 200);
  ASSERT_EQ(Client("POST", "/retry/" + id).status, 200);
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostStream(id, R"({"output": "attempt 2"})").status, 200);
  Reply r = Client("GET", "/stream/" + id);
  EXPECT_EQ(r.body["stream"], json::array({{{"output", "attempt 2"}}})) << r.text;
}

TEST_F(ControllerTest, RetryOfACompletedJobIsRefused) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  ASSERT_EQ(PostOutput(id, R"({"output": "ok"})").status, 200);
  Reply r = Client("POST", "/retry/" + id);
  EXPECT_GE(r.status, 400) << r.text;
  EXPECT_LT(r.status, 500) << r.text;
  EXPECT_TRUE(r.body.contains("error")) << r.text;
  EXPECT_EQ(JobStatus(id)["status"], "COMPLETED");
}

TEST_F(ControllerTest, PurgeQueueRemovesQueuedJobsAndRunningOnesContinue) {
  const std::string running = Run({{"input", 0}});
  ASSERT_EQ(TakeId(), running);
  const std::string a = Run({{"input", 1}});
  const std::string b = Run({{"input", 2}});
  Reply r = Client("POST", "/purge-queue");
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body, (json{{"removed", 2}, {"status", "completed"}}));
  EXPECT_EQ(Client("GET", "/status/" + a).status, 404);
  EXPECT_EQ(Client("GET", "/status/" + b).status, 404);
  EXPECT_EQ(JobStatus(running)["status"], "IN_PROGRESS");
  ASSERT_EQ(PostOutput(running, R"({"output": "still here"})").status, 200);
  EXPECT_EQ(JobStatus(running)["status"], "COMPLETED");
}

// ---- health and lookups ----

TEST_F(ControllerTest, HealthHasTheJobAndWorkerCounters) {
  Reply r = Client("GET", "/health");
  ASSERT_EQ(r.status, 200) << r.text;
  for (const char* k : {"completed", "failed", "inProgress", "inQueue", "retried"}) {
    ASSERT_TRUE(r.body["jobs"].contains(k)) << k << " " << r.text;
    EXPECT_TRUE(r.body["jobs"][k].is_number_integer()) << k;
  }
  int workers = 0;
  for (const char* k : {"idle", "initializing", "ready", "running", "throttled", "unhealthy"}) {
    ASSERT_TRUE(r.body["workers"].contains(k)) << k << " " << r.text;
    ASSERT_TRUE(r.body["workers"][k].is_number_integer()) << k;
    workers += r.body["workers"][k].get<int>();
  }
  EXPECT_EQ(workers, 1) << r.text;
}

TEST_F(ControllerTest, StatusOfAnUnknownJobIs404) {
  Reply r = Client("GET", "/status/00000000-0000-4000-8000-000000000000-u1");
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.body.contains("error")) << r.text;
}

// ---- time: TTL, execution timeout, unlisted jobs ----

TEST_F(ControllerTest, JobPastItsTtlIsGoneAndStatusAnswers404) {
  const std::string id = Run({{"input", "x"}, {"policy", {{"ttl", 10000}}}});
  Advance(9000ms, {});
  EXPECT_EQ(JobStatus(id)["status"], "IN_QUEUE");
  Advance(1001ms, {});
  Reply r = WaitStatus(id, [](const Reply& s) { return s.status == 404; });
  EXPECT_EQ(r.status, 404) << r.text;
}

TEST_F(ControllerTest, ExecutionTimeoutEndsTheJobTimedOutAndStopsIt) {
  const std::string id = Run({{"input", "x"}, {"policy", {{"executionTimeout", 5000}}}});
  ASSERT_EQ(TakeId(), id);
  Advance(5001ms, {id});
  Reply r =
      WaitStatus(id, [](const Reply& s) { return s.body.value("status", "") != "IN_PROGRESS"; });
  EXPECT_EQ(r.body["status"], "TIMED_OUT") << r.text;
  EXPECT_TRUE(r.body.contains("error")) << r.text;
  Reply stops = Stops();
  ASSERT_EQ(stops.status, 200) << stops.text;
  EXPECT_EQ(stops.body, (json{{"jobsToStop", {id}}}));
}

TEST_F(ControllerTest, PingListingTheJobKeepsItWithTheWorker) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  Reply ping = Ping({id});
  EXPECT_EQ(ping.status, 200) << ping.text;
  Advance(80s, {id});
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "IN_PROGRESS") << s.dump();
  EXPECT_FALSE(s.contains("retries")) << s.dump();
}

TEST_F(ControllerTest, JobTheWorkerStopsListingIsRequeuedAfterTheGrace) {
  const std::string id = Run({{"input", "x"}});
  ASSERT_EQ(TakeId(), id);
  const int64_t retried_before = Client("GET", "/health").body["jobs"].value("retried", 0);
  // 30 s grace after the take, then 30 s of omissions (JobBoardOptions::unlisted_grace).
  Advance(80s, {});
  json s = JobStatus(id);
  EXPECT_EQ(s["status"], "IN_QUEUE") << s.dump();
  EXPECT_GE(s.value("retries", 0), 1) << s.dump();
  EXPECT_EQ(Client("GET", "/health").body["jobs"].value("retried", int64_t{0}), retried_before + 1);
  EXPECT_EQ(TakeId(), id);
}

// ---- authentication and bad requests ----

TEST_F(ControllerTest, WorkerRoutesCheckTheWorkersOwnKey) {
  EXPECT_EQ(Take(WorkerHeaders("wrong-key")).status, 401);
  EXPECT_EQ(Take(WorkerHeaders(world_->key)).status, 401);  // a client key is not a worker key
  const std::string url =
      ReplaceAll(EnvVar("RUNPOD_WEBHOOK_GET_JOB"), WorkerId(), "w-nosuchworker");
  EXPECT_EQ(Send("GET", url + "&job_in_progress=0", WorkerHeaders()).status, 404);
}

TEST_F(ControllerTest, JobApiNeedsAKeyAndAcceptsItBare) {
  EXPECT_EQ(Send("GET", Base() + "/health", {}).status, 401);
  net::HeaderMap wrong;
  wrong.Set("Authorization", "Bearer mc_wrong");
  EXPECT_EQ(Send("GET", Base() + "/health", wrong).status, 401);
  net::HeaderMap bare;
  bare.Set("Authorization", world_->key);
  EXPECT_EQ(Send("GET", Base() + "/health", bare).status, 200);
}

TEST_F(ControllerTest, WrongMethodIs405WithTheAllowedMethods) {
  const std::string base = world_->controller->base_url();
  Reply put = Send("PUT", base + "/v1/endpoints", world_->Bearer(), "{}");
  EXPECT_EQ(put.status, 405) << put.text;
  EXPECT_EQ(put.allow, "GET, HEAD, POST");
  EXPECT_EQ(put.body.value("code", ""), "invalid_argument") << put.text;
  Reply get_run = Client("GET", "/run");
  EXPECT_EQ(get_run.status, 405) << get_run.text;
  EXPECT_EQ(get_run.allow, "POST");
  EXPECT_EQ(Send("POST", base + "/health", {}, "").status, 405);
  EXPECT_EQ(Send("GET", base + "/v1/hosts/register", world_->Bearer()).allow, "POST");
}

TEST_F(ControllerTest, KeyIsCheckedBeforeTheRouteIsLookedUp) {
  const std::string base = world_->controller->base_url();
  EXPECT_EQ(Send("GET", base + "/v1/nosuchroute", {}).status, 401);
  EXPECT_EQ(Send("PUT", base + "/v1/endpoints", {}, "{}").status, 401);
  Reply unknown = Send("GET", base + "/v1/nosuchroute", world_->Bearer());
  EXPECT_EQ(unknown.status, 404) << unknown.text;
  EXPECT_EQ(unknown.body.value("code", ""), "not_found") << unknown.text;
}

TEST_F(ControllerTest, DoubledAndTrailingSlashesNameTheSameRoute) {
  Reply r = Send("GET", world_->controller->base_url() + "/v1//endpoints/", world_->Bearer());
  EXPECT_EQ(r.status, 200) << r.text;
  EXPECT_TRUE(r.body.contains("endpoints")) << r.text;
}

TEST_F(ControllerTest, BadSubmissionsAreRefusedWithAnError) {
  struct Case {
    std::string body;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"{not json", 400},
           {"[1, 2]", 400},
           {R"({"inpt": 1})", 400},
           {R"({"input": 1, "policy": {"ttl": 5}})", 400},
           {R"({"input": 1, "policy": {"executionTimeout": "soon"}})", 400},
           {R"({"input": 1, "webhook": "ftp://x"})", 400},
       }) {
    Reply r = Client("POST", "/run", c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    EXPECT_TRUE(r.body.is_object() && r.body.contains("error")) << c.body << " -> " << r.text;
    if (r.body.is_object() && r.body.contains("id")) Track(r.body["id"]);
  }
  EXPECT_EQ(Client("GET", "/health").body["jobs"]["inQueue"], 0);
}

TEST_F(ControllerTest, NonBooleanLowPriorityIsABadRequest) {
  Reply r = Client("POST", "/run", R"({"input": 1, "policy": {"lowPriority": "yes"}})");
  if (r.body.is_object() && r.body.contains("id")) Track(r.body["id"]);
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_TRUE(r.body.is_object() && r.body.contains("error")) << r.text;
}

TEST_F(ControllerTest, BodyOverTheLimitIs413) {
  const std::string big = json{{"input", std::string(100 << 10, 'x')}}.dump();
  EXPECT_EQ(Client("POST", "/run", big).status, 413);
}

TEST_F(ControllerTest, UnknownEndpointIs404) {
  Reply r = Send("POST", world_->controller->base_url() + "/v2/nosuchendpoint/run",
                 world_->Bearer(), R"({"input": 1})");
  EXPECT_EQ(r.status, 404) << r.text;
  EXPECT_TRUE(r.body.contains("error")) << r.text;
  EXPECT_EQ(
      Send("GET", world_->controller->base_url() + "/v2/nosuchendpoint/status/x", world_->Bearer())
          .status,
      404);
}

// ---- management: model preview, hosts, metrics ----

TEST_F(ControllerTest, ModelResolveShowsRepoCommitFilesAndSize) {
  Reply r = Send("POST", world_->controller->base_url() + "/v1/models/resolve", world_->Bearer(),
                 R"({"model": "https://huggingface.co/org/tiny:main"})");
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["repo"], "org/tiny");
  EXPECT_EQ(r.body["revision"], "main");
  EXPECT_EQ(r.body["commit"].get<std::string>().size(), 40u);
  EXPECT_GT(r.body["files"].get<int>(), 1);
  EXPECT_GE(r.body["sizeBytes"].get<uint64_t>(), 256u << 10);
  EXPECT_EQ(r.body["gated"], false);
  EXPECT_EQ(r.body["private"], false);
}

TEST_F(ControllerTest, ModelResolveRefusesBadLinksAndUnknownRepos) {
  const std::string url = world_->controller->base_url() + "/v1/models/resolve";
  for (const char* bad : {R"({"model": "https://example.com/org/tiny"})",
                          R"({"model": "../../etc/passwd"})", R"({"model": ""})",
                          R"({"model": 7})", R"({"model": "org/tiny", "extra": 1})", "[1]"}) {
    Reply r = Send("POST", url, world_->Bearer(), bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.text;
    EXPECT_TRUE(r.body.contains("error")) << r.text;
  }
  Reply missing = Send("POST", url, world_->Bearer(), R"({"model": "org/nosuchmodel"})");
  EXPECT_EQ(missing.status, 404) << missing.text;
  Reply revision = Send("POST", url, world_->Bearer(), R"({"model": "org/tiny:nosuchbranch"})");
  EXPECT_EQ(revision.status, 404) << revision.text;
  EXPECT_EQ(Send("POST", url, net::HeaderMap(), R"({"model": "org/tiny"})").status, 401);
}

TEST_F(ControllerTest, HostsShowWatermarksAndEachModelsFilesAndLastUse) {
  // The worker's pin reaches the controller with the agent's next heartbeat (every 100 ms).
  Reply r;
  Eventually([&] {
    r = Send("GET", world_->controller->base_url() + "/v1/hosts", world_->Bearer());
    return r.status != 200 || r.text.find(R"("pins":1)") != std::string::npos;
  });
  ASSERT_EQ(r.status, 200) << r.text;
  ASSERT_EQ(r.body["hosts"].size(), 1u) << r.text;
  const json& h = r.body["hosts"][0];
  EXPECT_EQ(h["disk"]["capacityBytes"], 1ull << 30);
  EXPECT_GT(h["disk"]["highWatermarkBytes"].get<uint64_t>(), 0u);
  EXPECT_LT(h["disk"]["lowWatermarkBytes"].get<uint64_t>(),
            h["disk"]["highWatermarkBytes"].get<uint64_t>());
  ASSERT_EQ(h["snapshots"].size(), 1u) << r.text;
  const json& s = h["snapshots"][0];
  EXPECT_EQ(s["model"], "org/tiny");
  EXPECT_GT(s["files"].get<int>(), 1);
  EXPECT_TRUE(s["lastUse"].is_string()) << r.text;
  EXPECT_GE(s["pins"].get<int>(), 1) << "the running worker pins its model: " << r.text;
  EXPECT_EQ(s["pinnedBy"], json::array({"worker:" + WorkerId()})) << r.text;
}

TEST_F(ControllerTest, PinUnpinAndEvictGoThroughTheControllerToTheHost) {
  const std::string base = world_->controller->base_url() + "/v1/hosts/host-a";
  Reply hosts = Send("GET", world_->controller->base_url() + "/v1/hosts", world_->Bearer());
  ASSERT_EQ(hosts.status, 200);
  const json target{{"model", "org/tiny"},
                    {"commit", hosts.body["hosts"][0]["snapshots"][0]["commit"]}};
  auto pins_of_tiny = [&] {
    Reply h = Send("GET", world_->controller->base_url() + "/v1/hosts", world_->Bearer());
    return h.body["hosts"][0]["snapshots"][0]["pins"].get<int>();
  };
  const int before = pins_of_tiny();
  Reply pin = Send("POST", base + "/pins", world_->Bearer(), target.dump());
  ASSERT_EQ(pin.status, 200) << pin.text;
  EXPECT_EQ(pin.body["pinned"], true);
  EXPECT_EQ(pins_of_tiny(), before + 1) << "the host list shows the pin at once";
  Reply unpin = Send("DELETE", base + "/pins", world_->Bearer(), target.dump());
  ASSERT_EQ(unpin.status, 200) << unpin.text;
  EXPECT_EQ(pins_of_tiny(), before);
  // The running worker pins its model: the agent refuses, and the refusal is passed on.
  Reply evict = Send("POST", base + "/evict", world_->Bearer(), target.dump());
  EXPECT_GE(evict.status, 400) << evict.text;
  EXPECT_TRUE(evict.body.contains("error")) << evict.text;
  EXPECT_EQ(pins_of_tiny(), before);
}

TEST_F(ControllerTest, HostActionsRefuseBadInputBeforeReachingTheHost) {
  const std::string base = world_->controller->base_url() + "/v1/hosts/";
  const std::string commit(40, 'a');
  EXPECT_EQ(Send("POST", base + "nosuchhost/pins", world_->Bearer(),
                 json{{"model", "org/tiny"}, {"commit", commit}}.dump())
                .status,
            404);
  for (const std::string& bad :
       {json{{"model", "org/tiny"}}.dump(), json{{"model", "org/tiny"}, {"commit", "main"}}.dump(),
        json{{"model", "../x"}, {"commit", commit}}.dump(),
        json{{"model", "org/tiny"}, {"commit", commit}, {"x", 1}}.dump(), std::string("{")}) {
    Reply r = Send("POST", base + "host-a/evict", world_->Bearer(), bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.text;
  }
  EXPECT_EQ(Send("POST", base + "host-a/evict", net::HeaderMap(),
                 json{{"model", "org/tiny"}, {"commit", commit}}.dump())
                .status,
            401);
}

TEST_F(ControllerTest, MetricsNeedAKeyAndCountJobsWorkersAndHosts) {
  const std::string url = world_->controller->base_url() + "/metrics";
  EXPECT_EQ(Send("GET", url, net::HeaderMap()).status, 401);
  const std::string job = Run({{"input", "metrics"}});
  EXPECT_EQ(TakeId(), job);  // the worker's first take ends its cold start
  Reply r = Send("GET", url, world_->Bearer());
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_TRUE(r.content_type.starts_with("text/plain")) << r.content_type;
  for (const std::string& line : std::vector<std::string>{
           "# TYPE modelcache_controller_jobs gauge",
        "modelcache_controller_jobs{endpoint=\"" + world_->endpoint + "\",status=\"IN_QUEUE\"} ",
        "modelcache_controller_host_up{host=\"host-a\"} 1",
        "modelcache_controller_host_gpus{host=\"host-a\",kind=\"total\"} 4",
        "modelcache_controller_cold_starts_total{endpoint=\"" + world_->endpoint +
            "\",cache=\"miss\"} 1",
        "modelcache_controller_worker_seconds_total{endpoint=\"" + world_->endpoint +
            "\",billed=\"false\"} "}) {
    EXPECT_NE(r.text.find(line), std::string::npos) << line << "\n" << r.text;
  }
  EXPECT_EQ(Send("GET", world_->controller->base_url() + "/v1/metrics", world_->Bearer()).text,
            r.text);
}

TEST_F(ControllerTest, JobListShowsTheNewestJobsFirstWithoutTheirData) {
  const std::string first = Run({{"input", {{"secret_input", 1}}}});
  const std::string second = Run({{"input", 2}});
  const std::string url = world_->controller->base_url() + "/v1/jobs?endpoint=" + world_->endpoint;
  Reply r = Send("GET", url + "&limit=2", world_->Bearer());
  ASSERT_EQ(r.status, 200) << r.text;
  ASSERT_EQ(r.body["jobs"].size(), 2u) << r.text;
  EXPECT_EQ(r.body["jobs"][0]["id"], second);
  EXPECT_EQ(r.body["jobs"][1]["id"], first);
  EXPECT_EQ(r.body["jobs"][0]["status"], "IN_QUEUE");
  EXPECT_TRUE(r.body["jobs"][0]["createdAt"].is_number_integer());
  EXPECT_EQ(r.text.find("secret_input"), std::string::npos) << r.text;
  EXPECT_EQ(Send("GET", world_->controller->base_url() + "/v1/jobs", world_->Bearer()).status, 400);
  EXPECT_EQ(Send("GET", url, net::HeaderMap()).status, 401);
}

TEST_F(ControllerTest, WorkerPingingUnhealthyIsCountedUnhealthyUntilItPingsHealthy) {
  std::string url = ReplaceAll(EnvVar("RUNPOD_WEBHOOK_PING"), "$RUNPOD_POD_ID", WorkerId());
  url += url.find('?') == std::string::npos ? "?" : "&";
  ASSERT_EQ(Send("GET", url + "status=unhealthy&check=gpu", WorkerHeaders()).status, 200);
  EXPECT_EQ(Client("GET", "/health").body["workers"]["unhealthy"], 1);
  ASSERT_EQ(Ping({}).status, 200);
  EXPECT_EQ(Client("GET", "/health").body["workers"]["unhealthy"], 0);
}

// ---- endpoints with images (issue 14) ----

TEST_F(ControllerTest, ImageEndpointShowsItsFieldsButNeverItsRegistryPasswordNorLogsIt) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
  spdlog::default_logger()->sinks().push_back(ring);
  const std::string url = world_->controller->base_url() + "/v1/endpoints";
  const std::string password = "registry-pass-7f3c1a";
  json body{{"name", "image"},
            {"models", {{{"model", "org/tiny"}, {"include", {"*.json", "*.safetensors"}}}}},
            {"image", "127.0.0.1:5000/org/worker:1"},
            {"args", {"--port", "8000"}},
            {"env", {{"A", "1"}}},
            {"registryAuth", {{"username", "robot"}, {"password", password}}},
            {"links", {{{"dest", "/app/models/config.json"}, {"file", "config.json"}}}}};
  Reply created = Send("POST", url, world_->Bearer(), body.dump());
  ASSERT_EQ(created.status, 200) << created.text;
  const std::string id = created.body["id"];
  EXPECT_EQ(created.body["image"], "127.0.0.1:5000/org/worker:1");
  EXPECT_EQ(created.body["args"], json({"--port", "8000"}));
  EXPECT_EQ(created.body["command"], json::array());  // the image's own entrypoint
  EXPECT_EQ(created.body["hasRegistryAuth"], true);
  EXPECT_EQ(created.body["model"], "org/tiny");
  ASSERT_EQ(created.body["models"].size(), 1u);
  EXPECT_EQ(created.body["models"][0]["repo"], "org/tiny");
  EXPECT_EQ(created.body["models"][0]["commit"], created.body["commit"]);
  EXPECT_EQ(created.body["models"][0]["include"], json({"*.json", "*.safetensors"}));
  EXPECT_EQ(created.body["links"][0]["dest"], "/app/models/config.json");
  Reply shown = Send("GET", url + "/" + id, world_->Bearer());
  Reply listed = Send("GET", url, world_->Bearer());
  for (const Reply* r : {&created, &shown, &listed}) {
    EXPECT_EQ(r->text.find(password), std::string::npos) << r->text;
    EXPECT_EQ(r->text.find("registryAuth\""), std::string::npos) << r->text;
  }
  // A short name is normalized as the engines read it; null clears the credentials.
  Reply updated = Send("PATCH", url + "/" + id, world_->Bearer(),
                       R"({"image": "worker", "registryAuth": null})");
  ASSERT_EQ(updated.status, 200) << updated.text;
  EXPECT_EQ(updated.body["image"], "docker.io/library/worker:latest");
  EXPECT_EQ(updated.body["hasRegistryAuth"], false);
  EXPECT_EQ(updated.body["models"][0]["include"], json({"*.json", "*.safetensors"}));
  EXPECT_EQ(Send("DELETE", url + "/" + id, world_->Bearer()).status, 200);
  spdlog::default_logger()->sinks().pop_back();
  for (const std::string& line : ring->last_formatted()) {
    EXPECT_EQ(line.find(password), std::string::npos) << line;
  }
}

TEST_F(ControllerTest, MalformedImageReferenceIs400WithTheReasonAtCreateAndUpdate) {
  const std::string url = world_->controller->base_url() + "/v1/endpoints";
  json body{{"name", "bad image"}, {"model", "org/tiny"}, {"image", "Registry:5000/Org/App:1"}};
  Reply bad = Send("POST", url, world_->Bearer(), body.dump());
  EXPECT_EQ(bad.status, 400) << bad.text;
  EXPECT_NE(bad.body.value("error", "").find("must be lowercase"), std::string::npos) << bad.text;
  for (const json& image : {json("a:b:c"), json("org/app@sha256:123"), json(7)}) {
    body["image"] = image;
    Reply r = Send("POST", url, world_->Bearer(), body.dump());
    EXPECT_EQ(r.status, 400) << image << " " << r.text;
    EXPECT_NE(r.body.value("error", "").find("image"), std::string::npos) << r.text;
  }
  body["image"] = "registry.example/org/app:1";
  Reply good = Send("POST", url, world_->Bearer(), body.dump());
  ASSERT_EQ(good.status, 200) << good.text;
  const std::string id = good.body["id"];
  Reply update = Send("PATCH", url + "/" + id, world_->Bearer(), R"({"image": "UPPER/case"})");
  EXPECT_EQ(update.status, 400) << update.text;
  EXPECT_EQ(Send("GET", url + "/" + id, world_->Bearer()).body["image"],
            "registry.example/org/app:1");  // unchanged
  EXPECT_EQ(Send("DELETE", url + "/" + id, world_->Bearer()).status, 200);
}

TEST_F(ControllerTest, BadImageFieldsAreRefusedWithAnError) {
  const std::string url = world_->controller->base_url() + "/v1/endpoints";
  const json base{{"name", "x"}, {"model", "org/tiny"}, {"image", "r.example/a:1"}};
  const std::vector<json> bad = {
      {{"name", "x"}, {"model", "org/tiny"}},  // neither image nor command
      {{"registryAuth", {{"username", "u"}}}},
      {{"registryAuth", {{"username", "u:x"}, {"password", "p"}}}},
      {{"registryAuth", "user:pass"}},
      {{"args", "--port 8000"}},
      {{"models", json::array()}},
      {{"models", {{{"model", "org/tiny"}, {"quant", "q4"}}}}},
      {{"model", nullptr}, {"models", {{{"model", "org/tiny"}}}}},
      {{"links", {{{"dest", "relative/path"}}}}},
      {{"links", {{{"dest", "/app/x"}, {"model", "org/other"}}}}},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    json body = i == 0 ? bad[i] : base;
    if (i > 0) body.update(bad[i]);
    Reply r = Send("POST", url, world_->Bearer(), body.dump());
    EXPECT_EQ(r.status, 400) << body.dump() << " " << r.text;
    EXPECT_TRUE(r.body.contains("error")) << r.text;
  }
  EXPECT_EQ(Send("POST", url, world_->Bearer(),
                 json{{"name", "x"}, {"model", "org/tiny"}, {"command", {"true"}},
                      {"registryAuth", {{"username", "u"}, {"password", "p"}}}}
                     .dump())
                .status,
            400);  // credentials without an image
}

}  // namespace
}  // namespace mc::controller
