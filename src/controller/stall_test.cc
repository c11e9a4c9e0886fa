// Issue 16's must-show on loopback: a host whose "agent" accepts connections and never answers
// (a raw TCP listener that reads nothing and writes nothing) delays no other endpoint's TTL by
// more than 1 s, and does not stop the other endpoint's scaling. A real controller (its own
// loop, real clock, tick 50 ms) and a real agent with its upstream mirror (TestCluster).
//
// Before the executor (action_executor.h) the loop sent the start to the stuck host itself and
// waited up to 30 s for its answer: the other endpoint's job (TTL 10 s, submitted just after
// the stuck start was sent) was deleted when that start timed out, ~20 s late.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "controller/test_cluster.h"
#include "mc/testing/eventually.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using mc::testing::Eventually;

// Listens on 127.0.0.1 (port 0), accepts every connection and never reads or answers it. The
// destructor closes them all (so that a controller's call in flight ends at once).
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        accepted_.push_back(c);
      }
    });
  }
  ~SilentListener() { Close(); }
  void Close() {
    if (stop_.exchange(true)) return;
    thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : accepted_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(accepted_.size());
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<int> accepted_;
  std::thread thread_;
};

TEST(ControllerStallTest, SilentAgentDelaysNoOtherEndpointsTtlByMoreThanOneSecond) {
  TestClusterOptions o;
  o.name = "controller_stall_test";
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  TestCluster& cluster = **made;
  SilentListener silent;
  const std::string base = cluster.controller().base_url();

  // The silent host: enrolled and registered like any agent, with the GPU type endpoint A needs.
  Reply enrolled = cluster.Call("POST", "/v1/hosts/enroll", json{{"hostId", "stuck"}}.dump());
  ASSERT_EQ(enrolled.status, 200) << enrolled.text;
  net::HeaderMap host_auth = Bearer(enrolled.body["credential"].get<std::string>());
  const json doc{{"host_id", "stuck"},
                 {"url", "http://127.0.0.1:" + std::to_string(silent.port())},
                 {"gpu_type", "stuck-gpu"},
                 {"gpus", {{"total", 1}, {"free", 1}}},
                 {"disk", {{"capacity_bytes", 1ull << 40}}},
                 {"runtime", {{"kind", "process"}, {"containers", false}}}};
  Reply registered = Send("POST", base + "/v1/hosts/register", host_auth, doc.dump());
  ASSERT_EQ(registered.status, 200) << registered.text;

  auto create = [&](const std::string& name, const std::string& gpu) {
    Reply r = cluster.Call("POST", "/v1/endpoints",
                           json{{"name", name},
                                {"model", "org/tiny"},
                                {"gpuType", gpu},
                                {"command", {"sleep", "600"}},  // never takes a job
                                {"workersMax", 1}}
                               .dump());
    EXPECT_EQ(r.status, 200) << r.text;
    return r.body.value("id", "");
  };
  const std::string a = create("on-the-silent-host", "stuck-gpu");
  const std::string b = create("on-the-agent", "test-gpu");

  // A's job places a worker on the silent host: the start is sent and never answered.
  ASSERT_EQ(cluster.Call("POST", "/v2/" + a + "/run", R"({"input": {}})").status, 200);
  ASSERT_TRUE(Eventually([&] { return silent.accepted() >= 1; }, 10s));

  // B's job (TTL 10 s, the shortest the API takes) waits in the queue: its worker never takes it. The TTL must still fire on
  // time, and B's worker must still be placed on the real agent.
  const auto submitted = std::chrono::steady_clock::now();
  Reply run = cluster.Call("POST", "/v2/" + b + "/run", R"({"input": {}, "policy": {"ttl": 10000}})");
  ASSERT_EQ(run.status, 200) << run.text;
  const std::string job = run.body["id"];
  ASSERT_TRUE(Eventually(
      [&] { return cluster.Call("GET", "/v2/" + b + "/status/" + job).status == 404; }, 40s));
  const auto late = std::chrono::steady_clock::now() - submitted - 10'000ms;
  std::printf("the TTL fired %lld ms after its time\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(late).count()));
  EXPECT_LT(late, 1s) << "the TTL fired "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(late).count()
                      << " ms late";
  Reply workers = cluster.Call("GET", "/v1/workers?endpoint=" + b);
  ASSERT_EQ(workers.status, 200);
  ASSERT_EQ(workers.body["workers"].size(), 1u) << workers.text;
  EXPECT_EQ(workers.body["workers"][0].value("hostId", ""), "host-1");
  silent.Close();  // the stuck start ends (connection closed) before the cluster stops
}

}  // namespace
}  // namespace mc::controller
