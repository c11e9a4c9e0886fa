// The controller and the agents as real processes (`modelcache controller`, `modelcache agent`),
// SIGKILLed in the middle of traffic and started again on the same database, state and address:
// every job reaches one final status, and a job runs more than once only as a counted retry. The
// judge is a log outside the system: the workers (examples/runpod_worker.py) append a line per
// job start and end to EXAMPLE_WORKER_JOB_LOG. Also: the ledger has no open row for a worker that
// is gone, and a webhook whose delivery was in flight is delivered by the restarted process. The
// upstream and the webhook receiver run in this process. docs/reliability.md.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
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

// Reads the child's stdout until "<what> listening on <url>" (bounded by the pipe closing).
std::string WaitForUrl(int fd, const std::string& what) {
  std::string seen;
  char buf[256];
  const std::string prefix = what + " listening on ";
  while (seen.find(prefix) == std::string::npos ||
         seen.find('\n', seen.find(prefix)) == seen.npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  auto at = seen.find(prefix);
  if (at == std::string::npos) return "";
  return seen.substr(at + prefix.size(), seen.find('\n', at) - at - prefix.size());
}

// `modelcache controller` or `modelcache agent` as a child; its stderr goes to `log` (appended,
// so a restarted process adds to it). The destructor SIGKILLs what is still running.
struct McProcess {
  pid_t pid = -1;
  int out = -1;
  std::string url;
  McProcess(const std::vector<std::string>& args, const std::string& what, const fs::path& log) {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    int err = log.empty() ? -1 : ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    pid = SpawnMc(args, nullptr, fds[1], err);
    ::close(fds[1]);
    if (err >= 0) ::close(err);
    out = fds[0];
    url = WaitForUrl(out, what);
  }
  ~McProcess() {
    if (pid > 0) Kill();
    if (out >= 0) ::close(out);
  }
  void Kill() {
    ::kill(pid, SIGKILL);
    WaitExit(pid, 10s);
    pid = -1;
  }
};

// The shared TestCluster without a controller in this process: an upstream with the model
// demo/a, a controller database with a key (also in the file root/key), agents added once the
// controller runs, and the arguments of `modelcache controller` on that database.
struct Rig {
  std::unique_ptr<TestCluster> cluster;
  std::vector<std::string> args;
  fs::path key_file;

  // "" or what went wrong.
  std::string Build(const std::string& name) {
    TestClusterOptions o;
    o.name = name;
    o.models = {{"demo/a", 1 << 20}};
    o.start_controller = false;
    auto made = TestCluster::Create(std::move(o));
    if (!made.ok()) return made.status().ToString();
    cluster = std::move(*made);
    key_file = cluster->root() / "key";
    std::ofstream(key_file) << cluster->key() << "\n";
    // clang-format off
    args = {"controller", "--db", "sqlite:" + cluster->db_path().string(),
            "--listen", "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort()),
            "--upstream", cluster->upstream().base_url(),
            "--agent-key-file", key_file.string()};
    // clang-format on
    return "";
  }

  // The arguments of `modelcache agent` host-<n> (enrolled with the controller at `base`, its
  // credential in root/host-<n>.credential): process workers, 2 GPU slots, fast heartbeats.
  std::vector<std::string> AgentArgs(int n, const std::string& base) {
    const std::string host = "host-" + std::to_string(n);
    const fs::path dir = cluster->root() / host;
    const fs::path credential = cluster->root() / (host + ".credential");
    if (!fs::exists(credential)) {
      Reply r = Send("POST", base + "/v1/hosts/enroll", Bearer(cluster->key()),
                     json{{"hostId", host}}.dump(), 30s);
      std::ofstream(credential) << r.body.value("credential", "") << "\n";
    }
    // clang-format off
    return {"agent", "--cache-dir", (dir / "hub").string(), "--state-dir", (dir / "state").string(),
            "--capacity", "1GiB", "--gpus", "2", "--gpu-type", "test-gpu",
            "--listen", "127.0.0.1:0", "--controller", base, "--host-id", host,
            "--host-credential-file", credential.string(), "--api-key-file", key_file.string(),
            "--upstream", cluster->upstream().base_url(), "--runtime", "process",
            "--heartbeat-interval", "0.2"};
    // clang-format on
  }
};

// One line of the workers' job log (examples/runpod_worker.py, EXAMPLE_WORKER_JOB_LOG).
struct LogLine {
  std::string event, job, worker, status;
  int pid = 0;
  bool posted = false;
};

std::vector<LogLine> ReadJobLog(const fs::path& path) {
  std::vector<LogLine> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object()) continue;  // never happens: one write(2) per line, O_APPEND
    out.push_back({j.value("event", ""), j.value("job", ""), j.value("worker", ""),
                   j.value("status", ""), j.value("pid", 0), j.value("posted", false)});
  }
  return out;
}

int CountDone(const fs::path& path) {
  int n = 0;
  for (const LogLine& l : ReadJobLog(path)) n += l.event == "done";
  return n;
}

// The pid of a worker that is running a job now (a start line with no done line after it), or 0.
int BusyWorkerPid(const fs::path& path) {
  std::map<std::string, int> running;  // job -> pid
  for (const LogLine& l : ReadJobLog(path)) {
    if (l.event == "start") running[l.job] = l.pid;
    if (l.event == "done") running.erase(l.job);
  }
  for (const auto& [job, pid] : running) {
    if (::kill(pid, 0) == 0) return pid;
  }
  return 0;
}

// Long: one scenario, told in order (kills at five moments, then the checks against the workers'
// own log); split up it would read worse.
TEST(ControllerRestartTest, KillsOfControllerAgentsAndAWorkerRunEveryJobOnceOrCountItsRetries) {
  // The contract (Runpod's, docs/reliability.md): every job reaches exactly one final status;
  // a job runs once per attempt, and an attempt after the first is a requeue counted in
  // `retries` (a worker lost, or its result lost with the controller): a worker's own log may
  // show a job started at most retries + 1 times.
  Rig rig;
  ASSERT_EQ(rig.Build("restart"), "");
  const fs::path root = rig.cluster->root();
  const fs::path job_log = root / "jobs.log";
  const std::string& key = rig.cluster->key();
  std::vector<std::string> args = rig.args;
  args.insert(args.end(), {"--requeue-after", "3"});
  auto controller = std::make_unique<McProcess>(args, "controller", root / "controller.log");
  ASSERT_FALSE(controller->url.empty());
  const std::string base = controller->url;
  std::vector<std::unique_ptr<McProcess>> agents;
  for (int n = 1; n <= 2; ++n) {
    agents.push_back(std::make_unique<McProcess>(rig.AgentArgs(n, base), "agent",
                                                 root / ("host-" + std::to_string(n) + ".log")));
    ASSERT_FALSE(agents.back()->url.empty()) << "agent " << n << ": see " << root;
  }
  net::HeaderMap bare;
  bare.Set("Authorization", key);  // the bare form Runpod accepts too
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    return Send(method, base + path, bare,
                body.empty() ? std::nullopt : std::optional<std::string>(body), 90s)
        .body;
  };
  json ep =
      call("POST", "/v1/endpoints",
           json{{"name", "restart"},
                {"model", "demo/a"},
                {"workersMax", 3},
                {"scalerType", "REQUEST_COUNT"},
                {"scalerValue", 5},
                {"env", {{"EXAMPLE_WORKER_JOB_LOG", job_log.string()}}},
                {"command", {"python3", std::string(MC_SOURCE_DIR) + "/examples/runpod_worker.py"}}}
               .dump());
  const std::string id = ep.value("id", "");
  ASSERT_FALSE(id.empty()) << ep.dump();
  constexpr int kJobs = 40;
  std::vector<std::string> jobs;
  for (int i = 0; i < kJobs; ++i) {
    json r = call("POST", "/v2/" + id + "/run", json{{"input", {{"sleep", 0.3}, {"i", i}}}}.dump());
    ASSERT_TRUE(r.contains("id")) << r.dump();
    jobs.push_back(r["id"]);
  }
  auto restart_controller = [&] {
    controller = std::make_unique<McProcess>(args, "controller", root / "controller.log");
    ASSERT_EQ(controller->url, base);
  };
  auto restart_agent = [&](int n) {
    agents[n - 1] = std::make_unique<McProcess>(rig.AgentArgs(n, base), "agent",
                                                root / ("host-" + std::to_string(n) + ".log"));
    ASSERT_FALSE(agents[n - 1]->url.empty()) << "agent " << n << " restart: see " << root;
  };
  // Each moment is a count of jobs the workers finished (their log: the controller may be down).
  auto at = [&](int done) {
    ASSERT_TRUE(Eventually([&] { return CountDone(job_log) >= done; }, 120s))
        << CountDone(job_log) << " jobs done, waiting for " << done << "; see " << root;
  };
  // 1. The controller, mid-traffic, restarted at once.
  at(4);
  controller->Kill();
  restart_controller();
  // 2. An agent (its workers keep running and are re-adopted).
  at(10);
  agents[0]->Kill();
  restart_agent(1);
  // 3. A worker in the middle of a job: the job is requeued (a retry) and runs again elsewhere.
  at(16);
  int victim = 0;
  ASSERT_TRUE(Eventually([&] { return (victim = BusyWorkerPid(job_log)) != 0; }, 60s));
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  // 4. The controller, down while results come in: a result post that fails is lost, and its job
  //    is requeued once the worker stops listing it (--requeue-after 3).
  at(22);
  controller->Kill();
  Eventually(
      [&] {  // a worker's result post fails against the dead controller (not asserted)
        for (const LogLine& l : ReadJobLog(job_log)) {
          if (l.event == "done" && !l.posted) return true;
        }
        return false;
      },
      5s);
  restart_controller();
  // 5. The controller and an agent at once.
  at(28);
  controller->Kill();
  agents[1]->Kill();
  restart_controller();
  restart_agent(2);

  // Every job ends COMPLETED with its own output, exactly once.
  std::map<std::string, json> finals;
  for (int i = 0; i < kJobs; ++i) {
    const std::string& j = jobs[static_cast<size_t>(i)];
    json s = call("GET", "/v2/" + id + "/status-sync/" + j + "?wait=60000", "");
    for (int k = 0; k < 10 && s.value("status", "") != "COMPLETED"; ++k) {
      s = call("GET", "/v2/" + id + "/status-sync/" + j + "?wait=60000", "");
    }
    ASSERT_EQ(s.value("status", ""), "COMPLETED") << s.dump();
    EXPECT_EQ(s["output"]["echo"]["i"], i) << s.dump();
    finals[j] = s;
  }
  // The workers' own log against the final statuses.
  std::map<std::string, std::vector<LogLine>> runs;
  for (const LogLine& l : ReadJobLog(job_log)) runs[l.job].push_back(l);
  int retries = 0, reruns = 0;
  for (const std::string& j : jobs) {
    const json& s = finals[j];
    const int r = s.value("retries", 0);
    retries += r;
    int starts = 0;
    bool final_worker_ran_it = false;
    for (const LogLine& l : runs[j]) {
      if (l.event != "start") continue;
      ++starts;
      final_worker_ran_it |= l.worker == s.value("workerId", "");
    }
    reruns += starts > 1;
    EXPECT_GE(starts, 1) << j << ": COMPLETED, but no worker's log shows it ran";
    EXPECT_LE(starts, r + 1) << j << " ran " << starts << " times, counted as " << r
                             << " retries: a run the controller did not count";
    EXPECT_LE(r, 3) << j << ": retries not bounded";
    EXPECT_TRUE(final_worker_ran_it) << j << ": the final status names worker "
                                     << s.value("workerId", "") << ", which never started it";
  }
  EXPECT_GE(retries, 1) << "the killed worker's job must have been retried";
  std::cout << "[ figures ] " << kJobs << " jobs, 5 kill moments (3 controller, 2 agent, 1 worker "
            << "process), " << retries << " retries, " << reruns << " jobs run more than once\n";

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
  // Tear down: the endpoint goes (the controller stops its workers through the agents), then
  // any worker process still alive (the log has their pids) is killed, then the agents.
  call("DELETE", "/v1/endpoints/" + id, "");
  Eventually(
      [&] {
        for (const json& w : call("GET", "/v1/workers?endpoint=" + id, "")["workers"]) {
          if (w["phase"] != "stopped" && w["phase"] != "failed") return false;
        }
        return true;
      },
      20s);
  for (const LogLine& l : ReadJobLog(job_log)) {
    std::ifstream cmdline("/proc/" + std::to_string(l.pid) + "/cmdline");
    std::string c((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    if (c.find("runpod_worker.py") != std::string::npos) ::kill(l.pid, SIGKILL);
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
  auto controller = std::make_unique<McProcess>(args, "controller", fs::path());
  ASSERT_FALSE(controller->url.empty());
  const std::string base = controller->url;
  auto call = [&](const std::string& path, const std::string& body) {
    return Send("POST", base + path, Bearer(rig.cluster->key()), body, 30s).body;
  };
  // No agent: the job never runs; cancelling it ends it, and its webhook goes out.
  json ep =
      call("/v1/endpoints",
           json{{"name", "hook"}, {"model", "demo/a"}, {"command", {"python3", "never-started.py"}}}
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
  controller = std::make_unique<McProcess>(args, "controller", fs::path());
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
