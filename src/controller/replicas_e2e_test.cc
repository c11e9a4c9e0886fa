// Cached replicas (replicas.h) end to end, on loopback: an upstream mirror, three real agents and
// the controller in this process. An endpoint with cachedReplicas 2 and no workers gets its commit
// on two hosts; filling every host's disk with other models leaves both copies; a replica host
// that stops is replaced by the third.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "controller/test_cluster.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;

constexpr uint64_t kWeights = 1 << 20;

// The hosts whose inventory holds `commit` complete with a fleet pin, by host id.
std::set<std::string> FleetCopies(TestCluster& c, const std::string& commit) {
  std::set<std::string> hosts;
  for (auto& a : c.agents()) {
    Reply inv = Send("GET", a->base_url() + "/v1/inventory", Bearer(c.key()));
    for (const json& s : inv.body.value("snapshots", json::array())) {
      if (s.value("commit", "") != commit || !s.value("complete", false)) continue;
      const json pins = s.value("pins", json::array());
      if (std::find(pins.begin(), pins.end(), "fleet") != pins.end()) {
        hosts.insert(inv.body.value("host_id", ""));
      }
    }
  }
  return hosts;
}

TEST(ReplicasE2eTest, CopiesSurviveFullDisksAtZeroWorkersAndALostHostIsReplaced) {
  TestClusterOptions o;
  o.name = "replicas";
  o.models = {{"demo/kept", kWeights},
              {"demo/f1", kWeights},
              {"demo/f2", kWeights},
              {"demo/f3", kWeights},
              {"demo/f4", kWeights}};
  o.agents = 3;
  // Room for about three of the models: filling a disk evicts.
  o.agent_options = [](int, agent::AgentOptions& a) { a.capacity = 3 * kWeights + kWeights / 2; };
  o.controller_options = [](ControllerOptions& c) { c.host_timeout = 1500ms; };
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;

  Reply created = c.Call("POST", "/v1/endpoints",
                         json{{"name", "kept"},
                              {"model", "https://huggingface.co/demo/kept:main"},
                              {"command", {"python3", "-c", "pass"}},
                              {"workersMin", 0},
                              {"cachedReplicas", 2}}
                             .dump());
  ASSERT_EQ(created.status, 200) << created.body.dump();
  EXPECT_EQ(created.body["cachedReplicas"], 2);
  const std::string ep = created.body["id"];
  const std::string commit = created.body["commit"];

  // Prefetched at creation, with no worker.
  ASSERT_TRUE(Eventually([&] { return FleetCopies(c, commit).size() == 2; }))
      << c.Call("GET", "/v1/endpoints/" + ep).body.dump();
  const std::set<std::string> first = FleetCopies(c, commit);
  EXPECT_TRUE(c.Call("GET", "/v1/workers?endpoint=" + ep).body["workers"].empty());

  // Every host's disk filled with other models, one after another: the copies stay.
  for (auto& a : c.agents()) {
    for (const char* m : {"demo/f1", "demo/f2", "demo/f3", "demo/f4"}) {
      Reply r = Send("POST", a->base_url() + "/v1/ensure?wait=60", Bearer(c.key()),
                     json{{"model", m}}.dump());
      EXPECT_EQ(r.status, 200) << m << " " << r.body.dump();
    }
  }
  EXPECT_EQ(FleetCopies(c, commit), first);
  Reply shown = c.Call("GET", "/v1/endpoints/" + ep);
  ASSERT_EQ(shown.body["replicas"].size(), 2u) << shown.body.dump();
  EXPECT_TRUE(shown.body["replicas"][0]["complete"].get<bool>());

  // A replica host stops (its heartbeats end): the third host gets a copy.
  const std::string lost = *first.begin();
  for (auto& a : c.agents()) {
    if (Send("GET", a->base_url() + "/v1/inventory", Bearer(c.key())).body["host_id"] == lost) {
      a->Stop();
    }
  }
  std::set<std::string> live_copies;
  ASSERT_TRUE(Eventually([&] {
    live_copies = FleetCopies(c, commit);  // a stopped agent does not answer
    return live_copies.size() == 2 && !live_copies.contains(lost);
  })) << shown.body.dump();
}

constexpr char kToken[] = "hf_replicas_gated_token";

// Origin outage: with the upstream stopped, a public and a gated endpoint (within its grace)
// still scale up, on the hosts that hold their commits, and creating an endpoint says plainly why
// it cannot.
TEST(ReplicasE2eTest, UpstreamStoppedEndpointsScaleOnHostsHoldingTheirCommit) {
  TestClusterOptions o;
  o.name = "outage";
  o.models = {{"demo/pub", kWeights}, {"demo/gated", kWeights}};
  o.access_json = std::string(R"({"repos": {"demo/gated": {"gated": "manual", "tokens": [")") +
                  kToken + R"("]}}})";
  o.agents = 2;
  // Accepted checks expire fast, so that the scale-up below asks the stopped upstream.
  o.controller_options = [](ControllerOptions& c) { c.entitlement_ttl = 200ms; };
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  auto create = [&](const std::string& repo, bool token) {
    json body{{"name", repo},
              {"model", "https://huggingface.co/" + repo + ":main"},
              {"command", {"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"}},
              {"cachedReplicas", 1}};
    if (token) body["hfToken"] = kToken;
    return c.Call("POST", "/v1/endpoints", body.dump());
  };
  Reply pub = create("demo/pub", false);
  Reply gated = create("demo/gated", true);
  ASSERT_EQ(pub.status, 200) << pub.body.dump();
  ASSERT_EQ(gated.status, 200) << gated.body.dump();
  ASSERT_TRUE(Eventually([&] {
    return FleetCopies(c, pub.body["commit"]).size() == 1 &&
           FleetCopies(c, gated.body["commit"]).size() == 1;
  }));

  c.upstream().Stop();
  std::this_thread::sleep_for(300ms);  // past the accepted checks' ttl: the next one fails
  for (const Reply* ep : {&pub, &gated}) {
    const std::string id = ep->body["id"];
    Reply done = c.Call("POST", "/v2/" + id + "/runsync?wait=60000", R"({"input": {"x": 1}})");
    ASSERT_EQ(done.body["status"], "COMPLETED") << id << " " << done.body.dump();
    Reply workers = c.Call("GET", "/v1/workers?endpoint=" + id);
    ASSERT_EQ(workers.body["workers"].size(), 1u) << workers.body.dump();
    const json& w = workers.body["workers"][0];
    EXPECT_TRUE(w["cacheHit"].get<bool>()) << w.dump();
    EXPECT_TRUE(FleetCopies(c, ep->body["commit"]).contains(w["hostId"].get<std::string>()));
    EXPECT_FALSE(c.Call("GET", "/v1/endpoints/" + id).body["upstreamReachable"].get<bool>());
  }

  Reply refused = create("demo/pub", false);
  EXPECT_EQ(refused.status, 503) << refused.body.dump();
  EXPECT_NE(refused.text.find("cannot be reached"), std::string::npos) << refused.text;
}

// A commit update under load: the endpoint's branch moves upstream, a PATCH resolves it again,
// and the two workers are replaced one at a time by workers on the new commit, each a cache hit
// (the replicas prefetched it); no job fails meanwhile.
TEST(ReplicasE2eTest, CommitUpdateUnderLoadReplacesWorkersWithoutAMissOrAFailedJob) {
  TestClusterOptions o;
  o.name = "rollout";
  o.models = {{"demo/app", kWeights}};
  o.agents = 2;
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  const std::string link = "https://huggingface.co/demo/app:main";
  Reply created = c.Call(
      "POST", "/v1/endpoints",
      json{{"name", "app"},
           {"model", link},
           {"command", {"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"}},
           {"workersMin", 2},
           {"workersMax", 2},
           {"idleTimeout", 600},
           {"cachedReplicas", 2}}
          .dump());
  ASSERT_EQ(created.status, 200) << created.body.dump();
  const std::string ep = created.body["id"];
  const std::string old_commit = created.body["commit"];
  auto ready_on = [&](const std::string& commit) {
    int n = 0;
    const Reply workers = c.Call("GET", "/v1/workers?endpoint=" + ep);
    for (const json& w : workers.body["workers"]) {
      n += w["commit"] == commit && (w["phase"] == "idle" || w["phase"] == "running");
    }
    return n;
  };
  ASSERT_TRUE(Eventually([&] { return ready_on(old_commit) == 2; }))
      << c.Call("GET", "/v1/workers?endpoint=" + ep).body.dump();

  // Load: two clients sending jobs back to back.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> statuses;
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] {
      while (!stop) {
        Reply r =
            c.Call("POST", "/v2/" + ep + "/runsync?wait=60000", R"({"input": {"sleep": 0.2}})");
        std::lock_guard<std::mutex> lock(mu);
        statuses.push_back(r.body.is_object() ? r.body.value("status", "?") : "?");
      }
    });
  }

  // The branch moves upstream; the PATCH resolves the model again.
  {
    std::ofstream(c.root() / "src" / "demo/app" / "config.json") << R"({"model_type": "v2"})";
    auto store = *cache::CacheStore::Open({c.root() / "upstream", std::nullopt, true});
    ASSERT_TRUE(cache::ImportFolder(*store, c.root() / "src" / "demo/app",
                                    *RepoId::Parse("demo/app"), *Revision::Parse("main"))
                    .ok());
  }
  Reply patched = c.Call("PATCH", "/v1/endpoints/" + ep, json{{"model", link}}.dump());
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  const std::string new_commit = patched.body["commit"];
  ASSERT_NE(new_commit, old_commit);

  Reply shown;
  const bool done = Eventually(
      [&] {
        shown = c.Call("GET", "/v1/endpoints/" + ep);
        return shown.body["rollout"].is_object() && shown.body["rollout"]["state"] == "done";
      },
      std::chrono::seconds(60));
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(done) << shown.body.dump();
  EXPECT_EQ(shown.body["rollout"]["from"], old_commit);
  EXPECT_EQ(shown.body["rollout"]["to"], new_commit);
  EXPECT_EQ(shown.body["rollout"]["replaced"], 2) << shown.body.dump();
  EXPECT_EQ(shown.body["rollout"]["total"], 2);
  EXPECT_EQ(ready_on(new_commit), 2);
  ASSERT_FALSE(statuses.empty());
  for (const std::string& s : statuses) EXPECT_EQ(s, "COMPLETED");
  // Every worker on the new commit started as a cache hit.
  const Reply workers = c.Call("GET", "/v1/workers?endpoint=" + ep);
  for (const json& w : workers.body["workers"]) {
    if (w["commit"] == new_commit) {
      EXPECT_TRUE(w["cacheHit"].get<bool>()) << w.dump();
    }
  }
}

}  // namespace
}  // namespace mc::controller
