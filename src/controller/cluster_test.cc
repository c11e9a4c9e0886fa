// Several controllers on one PostgreSQL database (docs/controller.md, "Several controllers"), in
// this process: a leader and a follower behind a TCP load balancer, an agent and an example
// worker on loopback. The follower answers every request (it forwards it to the leader), takes
// over within 5 s when the leader stops, carries on with the worker the old leader started, and
// the agent refuses the old leader's epoch from then on.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "controller/test_cluster.h"
#include "mc/testing/eventually.h"
#include "postgres/postgres_for_test.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;

// A string field of a JSON answer, "" when the answer is not an object (no answer, not JSON).
std::string Field(const json& body, const char* name) {
  if (!body.is_object()) return "";
  auto it = body.find(name);
  return it != body.end() && it->is_string() ? it->get<std::string>() : "";
}

Reply Health(const std::string& base) { return Send("GET", base + "/health", {}); }

TEST(ControllerClusterTest, AFollowerForwardsEveryRequestAndTakesOverWhenTheLeaderStops) {
  auto pg = postgres::PostgresForTest::Shared();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  auto db = (*pg)->CreateDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto lb = TcpBalancer::Start({});
  ASSERT_TRUE(lb.ok()) << lb.status().ToString();
  const std::string lb_url = (*lb)->url();

  TestClusterOptions o;
  o.name = "cluster";
  o.db = (*pg)->Uri(*db);
  o.agents = 0;  // added behind the balancer below
  // Workers reach whichever controller the balancer picks.
  o.controller_options = [&](ControllerOptions& co) { co.public_url = lb_url; };
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& c = **made;
  Controller& a = c.controller();  // started first: the leader
  ControllerOptions bo = c.DefaultControllerOptions();
  bo.public_url = lb_url;
  auto b = Controller::Create(bo);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_TRUE((*b)->Start().ok());
  const std::string b_url = (*b)->base_url();
  (*lb)->SetBackends({a.base_url(), b_url});

  Reply ha = Health(a.base_url());
  EXPECT_EQ(ha.body["role"], "leader") << ha.text;
  EXPECT_EQ(ha.body["epoch"], 1);
  Reply hb = Health(b_url);
  EXPECT_EQ(hb.body["role"], "follower") << hb.text;
  EXPECT_EQ(hb.body["leader"], a.base_url());

  ASSERT_TRUE(c.AddAgent(lb_url).ok());  // registers and heartbeats through either controller
  const net::HeaderMap key = Bearer(c.key());
  // Each controller's /metrics: the fleet (the leader's), and its own leadership.
  Reply ma = Send("GET", a.base_url() + "/metrics", key);
  EXPECT_NE(ma.text.find("\nmodelcache_controller_leader 1\n"), std::string::npos) << ma.text;
  EXPECT_NE(ma.text.find("\nmodelcache_controller_leader_epoch 1\n"), std::string::npos);
  Reply mb = Send("GET", b_url + "/metrics", key);
  EXPECT_NE(mb.text.find("\nmodelcache_controller_leader 0\n"), std::string::npos) << mb.text;
  EXPECT_NE(mb.text.find("modelcache_controller_jobs"), std::string::npos);
  ASSERT_TRUE(Eventually([&] { return Send("GET", b_url + "/v1/hosts", key).body["hosts"].size() == 1; }));
  // Everything through the follower: it forwards to the leader.
  Reply ep = Send("POST", b_url + "/v1/endpoints", key,
                  json{{"name", "cluster"}, {"model", "org/tiny"}, {"workersMax", 1},
                       {"idleTimeout", 600},
                       {"command", {"python3", std::string(MC_SOURCE_DIR) +
                                                   "/examples/runpod_worker.py"}}}
                      .dump());
  ASSERT_EQ(ep.status, 200) << ep.text;
  const std::string id = Field(ep.body, "id");
  Reply first = Send("POST", b_url + "/v2/" + id + "/runsync?wait=120000", key,
                     json{{"input", {{"n", 1}}}}.dump(), 150s);
  ASSERT_EQ(Field(first.body, "status"), "COMPLETED") << first.text;
  Reply workers = Send("GET", a.base_url() + "/v1/workers?endpoint=" + id, key);
  ASSERT_EQ(workers.body["workers"].size(), 1u) << workers.text;
  const std::string worker = workers.body["workers"][0].value("id", "");

  // The leader goes; the follower leads within 5 s (its next try after the lock is released).
  const auto stopped_at = std::chrono::steady_clock::now();
  a.Stop();
  (*lb)->SetBackends({b_url});
  ASSERT_TRUE(Eventually([&] { return Field(Health(b_url).body, "role") == "leader"; }));
  const auto failover = std::chrono::steady_clock::now() - stopped_at;
  EXPECT_LE(failover, 5s) << std::chrono::duration_cast<std::chrono::milliseconds>(failover).count()
                          << " ms";
  EXPECT_EQ(Health(b_url).body["epoch"], 2);

  // The worker the old leader started goes on under the new one.
  Reply second = Send("POST", lb_url + "/v2/" + id + "/runsync?wait=120000", key,
                      json{{"input", {{"n", 2}}}}.dump(), 150s);
  ASSERT_EQ(Field(second.body, "status"), "COMPLETED") << second.text;
  EXPECT_EQ(Field(second.body, "workerId"), worker);

  // The new leader's epoch has reached the agent (its watcher): the deposed leader's late stop of
  // that worker is refused, and the worker goes on.
  net::HeaderMap old = Bearer(c.key());
  old.Set("X-Modelcache-Epoch", "1");
  Reply late = Send("DELETE", c.agents()[0]->base_url() + "/v1/workers/" + worker, old);
  EXPECT_EQ(late.status, 409) << late.text;
  EXPECT_NE(late.text.find("fenced"), std::string::npos) << late.text;
  Reply w = Send("GET", c.agents()[0]->base_url() + "/v1/workers/" + worker, key);
  EXPECT_EQ(Field(w.body, "state"), "running") << w.text;
  (*b)->Stop();
}

}  // namespace
}  // namespace mc::controller
