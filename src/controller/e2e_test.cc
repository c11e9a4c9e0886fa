// End to end, on loopback: an upstream mirror, two agents and the controller in this process, and
// workers that are real processes (examples/runpod_worker.py, which speaks the Runpod worker
// protocol as runpod-python does). Cold start by download then by cache hit, the ledger's unbilled
// download, idle scale-down, placement away from a host without room, gated models and a worker
// killed mid-job.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "controller/test_cluster.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;

constexpr char kGatedToken[] = "hf_e2e_gated_token";

// The shared TestCluster with demo/a, demo/gated (gated, kGatedToken) and demo/b upstream and
// one agent per capacity (bytes), and the helpers these tests share.
class Cluster {
 public:
  explicit Cluster(const std::string& name, std::vector<uint64_t> capacities,
                   const std::function<void(ControllerOptions&)>& tweak = {}) {
    TestClusterOptions o;
    o.name = "e2e_" + name;
    o.models = {{"demo/a", 2 << 20}, {"demo/gated", 2 << 20}, {"demo/b", 2 << 20}};
    o.access_json = std::string(R"({"repos": {"demo/gated": {"gated": "manual", "tokens": [")") +
                    kGatedToken + R"("]}}})";
    o.controller_options = tweak;
    o.agents = static_cast<int>(capacities.size());
    o.agent_options = [capacities](int i, agent::AgentOptions& a) { a.capacity = capacities[i]; };
    auto made = TestCluster::Create(std::move(o));
    if (!made.ok()) {
      std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
      std::abort();
    }
    cluster_ = std::move(*made);
  }
  const fs::path& root() const { return cluster_->root(); }
  std::vector<std::unique_ptr<agent::Agent>>& agents() { return cluster_->agents(); }
  // `target` is a path on the controller, or with `absolute` a whole URL (an agent's).
  Reply Call(const std::string& method, const std::string& target, const std::string& body = "",
             bool absolute = false) {
    if (!absolute) return cluster_->Call(method, target, body);
    return Send(method, target, Bearer(cluster_->key()),
                body.empty() ? std::nullopt : std::optional<std::string>(body));
  }
  std::string CreateEndpoint(json fields) {
    fields["command"] = {"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"};
    if (!fields.contains("name")) fields["name"] = "e2e";
    Reply r = Call("POST", "/v1/endpoints", fields.dump());
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body.value("id", "");
  }
  std::vector<json> Workers(const std::string& endpoint) {
    std::vector<json> out;
    const Reply r = Call("GET", "/v1/workers?endpoint=" + endpoint);  // outlives the loop
    for (const json& w : r.body["workers"]) out.push_back(w);
    return out;
  }

 private:
  std::unique_ptr<TestCluster> cluster_;
};

TEST(ControllerE2eTest, MissDownloadsUnbilledThenScalesDownThenHitsTheCache) {
  Cluster c("miss_hit", {1ull << 30, 1ull << 30});
  const std::string ep = c.CreateEndpoint({{"model", "https://huggingface.co/demo/a:main"},
                                           {"idleTimeout", 1},
                                           {"workersMax", 1}});
  Reply first = c.Call("POST", "/v2/" + ep + "/runsync?wait=60000", R"({"input": {"x": 1}})");
  ASSERT_EQ(first.body["status"], "COMPLETED") << first.body.dump();
  EXPECT_EQ(first.body["output"]["model"], "demo/a");
  EXPECT_TRUE(first.body.contains("delayTime") && first.body.contains("executionTime"));
  auto workers = c.Workers(ep);
  ASSERT_EQ(workers.size(), 1u) << c.Call("GET", "/v1/workers").body.dump();
  const std::string host = workers[0]["hostId"];
  EXPECT_FALSE(workers[0]["cacheHit"].get<bool>());

  // The ledger: the download was the unbilled "initializing" phase.
  Reply ledger = c.Call("GET", "/v1/ledger?endpoint=" + ep);
  bool unbilled_download = false, billed_start = false;
  for (const json& row : ledger.body["ledger"]) {
    if (row["phase"] == "initializing" && !row["billed"].get<bool>() && row["end"].is_number()) {
      unbilled_download = true;
    }
    if (row["phase"] == "starting" && row["billed"].get<bool>()) billed_start = true;
  }
  EXPECT_TRUE(unbilled_download) << ledger.body.dump();
  EXPECT_TRUE(billed_start) << ledger.body.dump();

  // Idle for longer than idleTimeout: the worker is stopped.
  ASSERT_TRUE(Eventually([&] { return c.Workers(ep)[0]["phase"] == "stopped"; }))
      << c.Workers(ep)[0].dump();

  // The next request is placed where the model is: a cold start without download.
  Reply second = c.Call("POST", "/v2/" + ep + "/runsync?wait=60000", R"({"input": {"x": 2}})");
  ASSERT_EQ(second.body["status"], "COMPLETED") << second.body.dump();
  workers = c.Workers(ep);
  ASSERT_EQ(workers.size(), 2u);
  const json& hit = workers[0]["id"] == first.body["workerId"] ? workers[1] : workers[0];
  EXPECT_EQ(hit["hostId"], host);
  EXPECT_TRUE(hit["cacheHit"].get<bool>());
  Reply shown = c.Call("GET", "/v1/endpoints/" + ep);
  EXPECT_EQ(shown.body["coldStarts"]["miss"]["count"], 1) << shown.body.dump();
  EXPECT_EQ(shown.body["coldStarts"]["hit"]["count"], 1);
  EXPECT_GT(shown.body["seconds"]["unbilled"].get<double>(), 0);
  EXPECT_FALSE(shown.body.contains("hfToken"));
}

TEST(ControllerE2eTest, HostWithoutRoomForTheModelIsSkipped) {
  // host-1 cannot hold the model at all; every worker goes to host-2.
  Cluster c("no_room", {64 << 10, 1ull << 30});
  const std::string ep = c.CreateEndpoint({{"model", "demo/a"}, {"workersMin", 1}});
  ASSERT_TRUE(Eventually([&] {
    auto w = c.Workers(ep);
    return !w.empty() && w[0]["phase"] == "idle";
  }));
  for (const json& w : c.Workers(ep)) EXPECT_EQ(w["hostId"], "host-2");
}

TEST(ControllerE2eTest, WorkerNoHostCanTakeIsCountedThrottled) {
  // One host with 2 GPU slots; the endpoint needs 4 per worker.
  Cluster c("throttled", {1ull << 30});
  const std::string ep = c.CreateEndpoint({{"model", "demo/a"}, {"workersMin", 1}, {"gpuCount", 4}});
  ASSERT_TRUE(Eventually(
      [&] { return c.Call("GET", "/v2/" + ep + "/health").body["workers"]["throttled"] == 1; }));
  EXPECT_TRUE(c.Workers(ep).empty());
}

TEST(ControllerE2eTest, HostWhoseDiskIsFullOfPinnedModelsIsSkipped) {
  // host-1 has room for one model, and holds demo/b pinned by its operator: demo/a cannot fit
  // there even after eviction, so its worker goes to host-2, and demo/b stays.
  Cluster c("pinned_full", {3 << 20, 1ull << 30});
  const std::string host1 = c.agents()[0]->base_url();
  ASSERT_EQ(c.Call("POST", host1 + "/v1/ensure?wait=60", R"({"model": "demo/b"})", true).status,
            200);
  ASSERT_EQ(c.Call("POST", host1 + "/v1/pins", R"({"model": "demo/b"})", true).status, 200);
  // The controller's view of host-1 shows the pinned snapshot (a heartbeat follows every change).
  ASSERT_TRUE(Eventually([&] {
    const Reply hosts = c.Call("GET", "/v1/hosts");
    for (const json& h : hosts.body["hosts"]) {
      if (h["id"] == "host-1" && !h["snapshots"].empty() && h["snapshots"][0]["pinned"] == true) {
        return true;
      }
    }
    return false;
  }));
  const std::string ep = c.CreateEndpoint({{"model", "demo/a"}, {"workersMin", 1}});
  ASSERT_TRUE(Eventually([&] {
    auto w = c.Workers(ep);
    return !w.empty() && w[0]["phase"] == "idle";
  }));
  for (const json& w : c.Workers(ep)) EXPECT_EQ(w["hostId"], "host-2");
  const Reply inventory = c.Call("GET", host1 + "/v1/inventory", "", true);
  ASSERT_EQ(inventory.body["snapshots"].size(), 1u);
  EXPECT_EQ(inventory.body["snapshots"][0]["model"], "demo/b");
}

TEST(ControllerE2eTest, GatedModelNeedsTheEndpointsOwnToken) {
  Cluster c("gated", {1ull << 30});
  json fields{{"name", "gated"}, {"model", "demo/gated"},
              {"command", {"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"}}};
  Reply none = c.Call("POST", "/v1/endpoints", fields.dump());
  EXPECT_TRUE(none.status == 401 || none.status == 403) << none.body.dump();
  fields["hfToken"] = "hf_wrong";
  Reply wrong = c.Call("POST", "/v1/endpoints", fields.dump());
  EXPECT_EQ(wrong.status, 403) << wrong.body.dump();
  EXPECT_EQ(wrong.body.dump().find("hf_wrong"), std::string::npos);
  fields["hfToken"] = kGatedToken;
  Reply right = c.Call("POST", "/v1/endpoints", fields.dump());
  ASSERT_EQ(right.status, 200) << right.body.dump();
  EXPECT_EQ(right.body.dump().find(kGatedToken), std::string::npos);
  // Changing to a token the upstream refuses is refused, and the endpoint keeps its own.
  Reply update = c.Call("PATCH", "/v1/endpoints/" + right.body["id"].get<std::string>(),
                        R"({"hfToken": "hf_wrong"})");
  EXPECT_EQ(update.status, 403) << update.body.dump();
  EXPECT_TRUE(c.Workers(right.body["id"]).empty());
}

TEST(ControllerE2eTest, WorkerKilledMidJobHasItsJobRequeuedAndCompleted) {
  Cluster c("killed", {1ull << 30, 1ull << 30});
  const std::string ep = c.CreateEndpoint({{"model", "demo/a"}, {"workersMax", 2}});
  Reply run = c.Call("POST", "/v2/" + ep + "/run", R"({"input": {"sleep": 3}})");
  const std::string job = run.body["id"];
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/status/" + job).body["status"] == "IN_PROGRESS";
  }));
  const std::string worker = c.Call("GET", "/v2/" + ep + "/status/" + job).body["workerId"];
  // Kill the worker process the hard way, as a crash would.
  int pid = 0;
  for (auto& a : c.agents()) {
    Reply w = c.Call("GET", a->base_url() + "/v1/workers/" + worker, "", true);
    if (w.status == 200) pid = w.body["pid"].get<int>();
  }
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  Reply done = c.Call("GET", "/v2/" + ep + "/status-sync/" + job + "?wait=90000");
  ASSERT_TRUE(Eventually(
      [&] { return c.Call("GET", "/v2/" + ep + "/status/" + job).body["status"] == "COMPLETED"; },
      60s));
  Reply status = c.Call("GET", "/v2/" + ep + "/status/" + job);
  EXPECT_GE(status.body.value("retries", 0), 1) << status.body.dump();
  EXPECT_NE(status.body["workerId"], worker);
  EXPECT_GE(c.Call("GET", "/v2/" + ep + "/health").body["jobs"]["retried"].get<int>(), 1);
}

TEST(ControllerE2eTest, ModelPreviewOfAGatedRepoSaysATokenIsNeeded) {
  Cluster c("preview", {1ull << 30});
  Reply none = c.Call("POST", "/v1/models/resolve", R"({"model": "demo/gated"})");
  EXPECT_TRUE(none.status == 401 || none.status == 403) << none.body.dump();
  EXPECT_NE(none.body.value("error", "").find("give an access token"), std::string::npos)
      << none.body.dump();
  Reply wrong = c.Call("POST", "/v1/models/resolve",
                       R"({"model": "demo/gated", "hfToken": "hf_wrong_one"})");
  EXPECT_EQ(wrong.status, 403) << wrong.body.dump();
  EXPECT_EQ(wrong.body.dump().find("hf_wrong_one"), std::string::npos);
  Reply right = c.Call("POST", "/v1/models/resolve",
                       json{{"model", "demo/gated"}, {"hfToken", kGatedToken}}.dump());
  ASSERT_EQ(right.status, 200) << right.body.dump();
  EXPECT_EQ(right.body["gated"], true);
  EXPECT_EQ(right.body.dump().find(kGatedToken), std::string::npos);
}

TEST(ControllerE2eTest, WorkerThatIgnoresAJobStopIsStopped) {
  // The job times out after 5 s; the worker is told on its job-stop channel but its handler
  // blocks (like a synchronous SDK handler): 1 s later the controller stops the worker.
  Cluster c("deaf", {1ull << 30}, [](ControllerOptions& o) { o.job_stop_grace = 1s; });
  const std::string ep = c.CreateEndpoint({{"model", "demo/a"}, {"workersMax", 1}});
  Reply run = c.Call("POST", "/v2/" + ep + "/run",
                     R"({"input": {"busy": 120}, "policy": {"executionTimeout": 5000}})");
  ASSERT_EQ(run.status, 200) << run.body.dump();
  const std::string job = run.body["id"];
  ASSERT_TRUE(Eventually(
      [&] { return c.Call("GET", "/v2/" + ep + "/status/" + job).body["status"] == "TIMED_OUT"; },
      60s));
  ASSERT_TRUE(Eventually([&] {
    auto w = c.Workers(ep);
    return !w.empty() && (w[0]["phase"] == "stopping" || w[0]["phase"] == "stopped");
  }));
  const json w = c.Workers(ep)[0];
  EXPECT_NE(w["message"].get<std::string>().find("after its job was stopped"), std::string::npos)
      << w.dump();
}

TEST(ControllerE2eTest, PlacementCountsBlobsAHostHasFromAnotherRevision) {
  // host-2 holds demo/a at main. A new revision v2 changes one small file: host-2 lacks a few
  // bytes of it, host-1 all of it, so the worker goes to host-2 (without counting shared blobs
  // the two would tie, and the tie goes to host-1).
  Cluster c("shared_blobs", {1ull << 30, 1ull << 30});
  const std::string host2 = c.agents()[1]->base_url();
  ASSERT_EQ(c.Call("POST", host2 + "/v1/ensure?wait=60", R"({"model": "demo/a"})", true).status,
            200);
  {
    std::ofstream(c.root() / "src" / "demo/a" / "config.json") << R"({"model_type": "v2"})";
    auto store = *cache::CacheStore::Open({c.root() / "upstream", std::nullopt, true});
    ASSERT_TRUE(cache::ImportFolder(*store, c.root() / "src" / "demo/a", *RepoId::Parse("demo/a"),
                                    *Revision::Parse("v2"))
                    .ok());
  }
  const std::string ep =
      c.CreateEndpoint({{"model", "https://huggingface.co/demo/a:v2"}, {"workersMin", 1}});
  ASSERT_TRUE(Eventually([&] {
    auto w = c.Workers(ep);
    return !w.empty() && w[0]["phase"] == "idle";
  }));
  const auto workers = c.Workers(ep);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0]["hostId"], "host-2");
}

// A worker command that fails at once (the issue's `python3 /nonexistent/worker.py`): the
// controller backs off instead of starting and losing a worker every tick, and the endpoint says
// why (exit code, the log's last lines without the secrets the worker was given). The
// controller runs on a FakeClock, so the back-off's seconds pass only when the test says.
TEST(ControllerE2eTest, WorkerThatFailsAtStartBacksOffAndTheEndpointSaysWhy) {
  FakeClock clock;
  TestClusterOptions o;
  o.name = "e2e_crash_loop";
  o.models = {{"demo/a", 64 << 10}};
  o.controller_options = [&](ControllerOptions& co) { co.clock = &clock; };
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  json fields{{"name", "broken"},
              {"model", "https://huggingface.co/demo/a:main"},
              {"workersMax", 3},
              {"env", {{"MY_API_KEY", "sekrit-value-123"}}},
              {"command",
               {"sh", "-c",
                "echo \"given $MY_API_KEY and $RUNPOD_AI_API_KEY\" >&2; "
                "exec python3 /nonexistent/worker.py"}}};
  Reply created = c.Call("POST", "/v1/endpoints", fields.dump());
  ASSERT_EQ(created.status, 200) << created.body.dump();
  const std::string ep = created.body["id"];
  auto endpoint = [&] { return c.Call("GET", "/v1/endpoints/" + ep).body; };
  auto workers = [&] { return c.Call("GET", "/v1/workers?endpoint=" + ep).body["workers"]; };
  auto failures = [&] {
    const json b = endpoint()["placementBackoff"];
    return b.is_object() ? b["failures"].get<int>() : 0;
  };

  // The job kicks the autoscaler: one worker, which exits with code 2.
  ASSERT_EQ(c.Call("POST", "/v2/" + ep + "/run", R"({"input": {}})").status, 200);
  ASSERT_TRUE(Eventually([&] { return failures() == 1; })) << endpoint().dump();
  json backoff = endpoint()["placementBackoff"];
  EXPECT_EQ(backoff["exitCode"], 2) << backoff.dump();
  EXPECT_EQ(backoff["delayMs"], 1000);
  EXPECT_EQ(backoff["retryAt"].get<int64_t>() - backoff["failedAt"].get<int64_t>(), 1000);
  const std::string tail = backoff["logTail"];
  EXPECT_NE(tail.find("/nonexistent/worker.py"), std::string::npos) << tail;
  EXPECT_NE(tail.find("given [redacted] and [redacted]"), std::string::npos) << tail;
  EXPECT_EQ(tail.find("sekrit"), std::string::npos) << tail;
  json list = workers();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0]["phase"], "stopped");
  EXPECT_EQ(list[0]["exitCode"], 2);
  EXPECT_EQ(list[0]["message"], "exited with code 2");

  // More jobs run the autoscaler again, and it wants a worker (counted throttled) but places
  // none: no time has passed on the controller's clock.
  ASSERT_EQ(c.Call("POST", "/v2/" + ep + "/run", R"({"input": {}})").status, 200);
  ASSERT_TRUE(Eventually([&] {
    return c.Call("GET", "/v2/" + ep + "/health").body["workers"]["throttled"] == 1;
  })) << c.Call("GET", "/v2/" + ep + "/health").body.dump();
  EXPECT_EQ(workers().size(), 1u);

  // A second later one more worker is tried; it fails too and the wait doubles.
  clock.Advance(1s);
  ASSERT_TRUE(Eventually([&] { return failures() == 2; })) << endpoint().dump();
  EXPECT_EQ(endpoint()["placementBackoff"]["delayMs"], 2000);
  EXPECT_EQ(workers().size(), 2u);

  // Fixing the endpoint ends the back-off at once: the next pass places a worker.
  ASSERT_EQ(c.Call("PATCH", "/v1/endpoints/" + ep,
                   json{{"command", {"python3", std::string(MC_SOURCE_DIR) +
                                                    "/examples/runpod_worker.py"}}}
                       .dump())
                .status,
            200);
  ASSERT_EQ(c.Call("POST", "/v2/" + ep + "/run", R"({"input": {}})").status, 200);
  ASSERT_TRUE(Eventually([&] { return workers().size() >= 3u; })) << workers().dump();
}

}  // namespace
}  // namespace mc::controller
