// The controller as a real process (`modelcache controller`), SIGKILLed in the middle of traffic
// and started again on the same database and address: no job is lost, every job ends COMPLETED
// once, and the ledger has no open row for a worker that is gone; a webhook whose delivery was in
// flight is delivered by the restarted process. Agents, the upstream and the webhook receiver run
// in this process; workers are examples/runpod_worker.py.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "controller/test_cluster.h"
#include "mc/net/http_server.h"
#include "mc/testing/eventually.h"
#include "mc/testing/modelcache_process.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Eventually;
using testing::SpawnMc;
using testing::WaitExit;

// A port nobody listens on now (bound and released; the controller binds it right after).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Reads the child's stdout until "controller listening on <url>" (bounded by the pipe closing).
std::string WaitForUrl(int fd) {
  std::string seen;
  char buf[256];
  while (seen.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  const std::string prefix = "controller listening on ";
  auto at = seen.find(prefix);
  if (at == std::string::npos) return "";
  return seen.substr(at + prefix.size(), seen.find('\n', at) - at - prefix.size());
}

struct ControllerProcess {
  pid_t pid = -1;
  int out = -1;
  std::string url;
  ControllerProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    pid = SpawnMc(args, nullptr, fds[1], -1);
    ::close(fds[1]);
    out = fds[0];
    url = WaitForUrl(out);
  }
  ~ControllerProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      WaitExit(pid, 10s);
    }
    if (out >= 0) ::close(out);
  }
};

// The shared TestCluster without a controller in this process: an upstream with the model
// demo/a, a controller database with a key (also in the file root/key), agents added once the
// controller runs, and the arguments of `modelcache controller` on that database.
struct Rig {
  std::unique_ptr<TestCluster> cluster;
  std::vector<std::string> args;

  // "" or what went wrong.
  std::string Build(const std::string& name) {
    TestClusterOptions o;
    o.name = name;
    o.models = {{"demo/a", 1 << 20}};
    o.start_controller = false;
    auto made = TestCluster::Create(std::move(o));
    if (!made.ok()) return made.status().ToString();
    cluster = std::move(*made);
    const fs::path key_file = cluster->root() / "key";
    std::ofstream(key_file) << cluster->key() << "\n";
    args = {"controller", "--db", "sqlite:" + cluster->db_path().string(), "--listen",
            "127.0.0.1:" + std::to_string(FreePort()), "--upstream",
            cluster->upstream().base_url(), "--agent-key-file", key_file.string()};
    return "";
  }
};

TEST(ControllerRestartTest, SigkillMidTrafficLosesNoJobAndKeepsTheLedgerConsistent) {
  Rig rig;
  ASSERT_EQ(rig.Build("restart"), "");
  const std::string& key = rig.cluster->key();
  std::vector<std::string> args = rig.args;
  args.insert(args.end(), {"--requeue-after", "3"});
  auto controller = std::make_unique<ControllerProcess>(args);
  ASSERT_FALSE(controller->url.empty());
  const std::string base = controller->url;
  // Two agents; the controller process is killed before the cluster stops their workers.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(rig.cluster->AddAgent(base).ok());
  net::HeaderMap bare;
  bare.Set("Authorization", key);  // the bare form Runpod accepts too
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    return Send(method, base + path, bare,
                body.empty() ? std::nullopt : std::optional<std::string>(body), 90s)
        .body;
  };
  json ep = call("POST", "/v1/endpoints",
                 json{{"name", "restart"}, {"model", "demo/a"}, {"workersMax", 2},
                      {"scalerType", "REQUEST_COUNT"}, {"scalerValue", 5},
                      {"command", {"python3", std::string(MC_SOURCE_DIR) +
                                                  "/examples/runpod_worker.py"}}}
                     .dump());
  const std::string id = ep.value("id", "");
  ASSERT_FALSE(id.empty()) << ep.dump();
  std::vector<std::string> jobs;
  for (int i = 0; i < 30; ++i) {
    json r = call("POST", "/v2/" + id + "/run", json{{"input", {{"sleep", 0.1}, {"i", i}}}}.dump());
    ASSERT_TRUE(r.contains("id")) << r.dump();
    jobs.push_back(r["id"]);
  }
  // Some jobs done, some running, some queued: kill the controller the hard way.
  auto completed = [&] {
    int n = 0;
    for (const std::string& j : jobs) {
      n += call("GET", "/v2/" + id + "/status/" + j, "").value("status", "") == "COMPLETED";
    }
    return n;
  };
  Eventually([&] { return completed() >= 5; });
  ASSERT_EQ(::kill(controller->pid, SIGKILL), 0);
  WaitExit(controller->pid, 10s);
  controller->pid = -1;
  controller = std::make_unique<ControllerProcess>(args);
  ASSERT_EQ(controller->url, base);

  // Every job ends COMPLETED with its own output, exactly once.
  std::set<int> seen;
  for (const std::string& j : jobs) {
    json s = call("GET", "/v2/" + id + "/status-sync/" + j + "?wait=60000", "");
    for (int i = 0; i < 10 && s.value("status", "") != "COMPLETED"; ++i) {
      s = call("GET", "/v2/" + id + "/status-sync/" + j + "?wait=60000", "");
    }
    ASSERT_EQ(s.value("status", ""), "COMPLETED") << s.dump();
    EXPECT_TRUE(seen.insert(s["output"]["echo"]["i"].get<int>()).second) << s.dump();
  }
  EXPECT_EQ(seen.size(), 30u);
  // The ledger: an open row only for a worker that is still live.
  json workers = call("GET", "/v1/workers?endpoint=" + id, "");
  std::set<std::string> live;
  for (const json& w : workers["workers"]) {
    if (w["phase"] != "stopped" && w["phase"] != "failed") live.insert(w["id"]);
  }
  json ledger = call("GET", "/v1/ledger?endpoint=" + id, "");
  for (const json& row : ledger["ledger"]) {
    if (row["end"].is_null()) {
      EXPECT_TRUE(live.contains(row["workerId"])) << row.dump();
    }
  }
}

// A webhook receiver that leaves the first POST unanswered until Release() (the controller dies
// with that delivery in flight) and answers 200 to the others. Records every body.
class HoldingReceiver {
 public:
  Status Start() {
    net::HttpServerOptions o;
    o.name = "webhook-receiver";
    o.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      std::unique_lock<std::mutex> lock(mu_);
      bodies_.push_back(req.body);
      changed_.notify_all();
      if (bodies_.size() == 1) changed_.wait_for(lock, 60s, [&] { return released_; });
      res.SetText(200, "{}", "application/json");
    };
    auto s = net::HttpServer::Create(std::move(o));
    if (!s.ok()) return s.status();
    server_ = std::move(*s);
    return server_->Start();
  }
  ~HoldingReceiver() {
    Release();
    if (server_) server_->Stop();
  }
  std::string Url(const std::string& path) const { return server_->base_url() + path; }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    changed_.notify_all();
  }
  // The bodies once there are `n` (or after 60 s, whatever there are).
  std::vector<std::string> WaitBodies(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, 60s, [&] { return bodies_.size() >= n; });
    return bodies_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> bodies_;
  bool released_ = false;
  std::unique_ptr<net::HttpServer> server_;
};

TEST(ControllerRestartTest, WebhookInFlightAtSigkillIsDeliveredAfterTheRestart) {
  Rig rig;
  ASSERT_EQ(rig.Build("restart_webhook"), "");
  HoldingReceiver receiver;
  ASSERT_TRUE(receiver.Start().ok());
  std::vector<std::string> args = rig.args;
  args.push_back("--webhook-allow-private");  // the receiver is on loopback
  auto controller = std::make_unique<ControllerProcess>(args);
  ASSERT_FALSE(controller->url.empty());
  const std::string base = controller->url;
  auto call = [&](const std::string& path, const std::string& body) {
    return Send("POST", base + path, Bearer(rig.cluster->key()), body, 30s).body;
  };
  // No agent: the job never runs; cancelling it ends it, and its webhook goes out.
  json ep = call("/v1/endpoints", json{{"name", "hook"},
                                       {"model", "demo/a"},
                                       {"command", {"python3", "never-started.py"}}}
                                      .dump());
  const std::string endpoint = ep.value("id", "");
  ASSERT_FALSE(endpoint.empty()) << ep.dump();
  json run = call("/v2/" + endpoint + "/run",
                  json{{"input", {}}, {"webhook", receiver.Url("/hook")}}.dump());
  const std::string id = run.value("id", "");
  ASSERT_FALSE(id.empty()) << run.dump();
  ASSERT_EQ(call("/v2/" + endpoint + "/cancel/" + id, "").value("status", ""), "CANCELLED");
  ASSERT_EQ(receiver.WaitBodies(1).size(), 1u);  // the POST is in flight, unanswered

  ASSERT_EQ(::kill(controller->pid, SIGKILL), 0);
  WaitExit(controller->pid, 10s);
  controller->pid = -1;
  receiver.Release();
  controller = std::make_unique<ControllerProcess>(args);
  ASSERT_EQ(controller->url, base);

  const auto bodies = receiver.WaitBodies(2);
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[1], bodies[0]);  // the same status object, from the outbox
  const json body = json::parse(bodies[1], nullptr, false);
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["status"], "CANCELLED");
}

}  // namespace
}  // namespace mc::controller
