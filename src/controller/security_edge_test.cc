// The controller's HTTP edge against hostile clients (docs/security.md, "The HTTP edge"): keys
// checked before a body is read, per-route body caps, a JSON depth limit, a per-client connection
// cap and read deadlines. A real controller on loopback with the upstream of a TestCluster (no
// agent: nothing here needs a worker); the hostile clients are raw sockets
// (mc/testing/raw_http.h), so they send exactly the bytes a test gives them, from the source
// address it gives (127.0.0.2 is a second client).
#include <gtest/gtest.h>

#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "controller/test_cluster.h"
#include "mc/net/http_server.h"
#include "mc/testing/raw_http.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace mc::testing;

constexpr auto kHeaderDeadline = 1500ms;

class SecurityEdgeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestClusterOptions o;
    o.name = "security_edge_test";
    o.agents = 0;
    o.controller_options = [](ControllerOptions& c) {
      c.edge.header_deadline = kHeaderDeadline;
      c.edge.body_deadline = kHeaderDeadline;
      c.edge.per_client_connections = 256;
      c.webhook_tries = 1;
      c.webhook_allowed_hosts = {"127.0.0.1"};  // the receiver of the allowed deliveries
    };
    auto made = TestCluster::Create(std::move(o));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    cluster_ = std::move(*made).release();
    Reply created = cluster_->Call("POST", "/v1/endpoints",
                                   json{{"name", "edge"},
                                        {"model", "org/tiny"},
                                        {"command", {"sleep", "600"}},
                                        {"workersMax", 0}}
                                       .dump());
    ASSERT_EQ(created.status, 200) << created.text;
    endpoint_ = created.body["id"].get<std::string>();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static uint16_t port() { return cluster_->controller().port(); }
  static std::string url(const std::string& path) {
    return cluster_->controller().base_url() + path;
  }

  // One raw request from `source`; the answer's status (0: none within `wait`).
  static int RawStatus(const std::string& source, const std::string& request,
                       std::chrono::milliseconds wait = 10s) {
    int fd = ConnectFrom(source, port());
    if (fd < 0) return 0;
    int status = SendAll(fd, request) ? StatusOf(ReadAnswer(fd, wait)) : 0;
    ::close(fd);
    return status;
  }

  static inline TestCluster* cluster_ = nullptr;
  static inline std::string endpoint_;
};

TEST_F(SecurityEdgeTest, UnauthenticatedUploadsAreRefusedBeforeTheirBodiesAreRead) {
  constexpr int kClients = 100;
  constexpr size_t kBody = 20u << 20;
  static const std::string chunk(64 << 10, 'x');
  const std::string head = "POST /v2/" + endpoint_ +
                           "/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           "Content-Length: " + std::to_string(kBody) + "\r\n\r\n";
  ResetPeakRss();
  const uint64_t before = RssBytes();
  std::vector<int> statuses(kClients, -1);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      int fd = ConnectFrom("127.0.0.1", port());
      if (fd < 0) return;
      // The body follows at once, as a client that does not wait for 100-continue sends it,
      // until the server answers or stops reading.
      bool open = SendAll(fd, head);
      for (size_t sent = 0; open && sent < kBody && !Readable(fd, 0ms); sent += chunk.size()) {
        open = SendAll(fd, chunk);
      }
      statuses[i] = StatusOf(ReadAnswer(fd, 30s));
      ::close(fd);
    });
  }
  for (auto& t : clients) t.join();
  const uint64_t growth = PeakRssBytes() - before;
  std::printf("[ measured ] %d unauthenticated 20 MiB uploads: peak RSS growth %.1f MiB\n",
              kClients, growth / 1048576.0);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 401), kClients);
  EXPECT_LT(growth, 64u << 20);
  EXPECT_EQ(Send("GET", url("/health"), {}).status, 200);
}

TEST_F(SecurityEdgeTest, DeeplyNestedJsonIs400AndTheServerStillAnswers) {
  constexpr int kDepth = 200'000;
  const std::string body =
      "{\"input\": " + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
  Reply r = Send("POST", url("/v2/" + endpoint_ + "/run"), Bearer(cluster_->key()), body);
  EXPECT_EQ(r.status, 400) << r.text;
  EXPECT_NE(r.text.find("deeper"), std::string::npos) << r.text;
  EXPECT_EQ(Send("GET", url("/health"), {}).status, 200);
  // Depth within the limit is an ordinary body.
  Reply ok = Send("POST", url("/v2/" + endpoint_ + "/run"), Bearer(cluster_->key()),
                  "{\"input\": " + std::string(100, '[') + std::string(100, ']') + "}");
  EXPECT_EQ(ok.status, 200) << ok.text;
  if (ok.body.contains("id")) {
    cluster_->Call("POST", "/v2/" + endpoint_ + "/cancel/" + ok.body["id"].get<std::string>());
  }
}

TEST_F(SecurityEdgeTest, BodyCapsArePerRoute) {
  auto input = [](size_t bytes) { return json{{"input", std::string(bytes, 'x')}}.dump(); };
  // Management routes: 1 MiB.
  EXPECT_EQ(cluster_->Call("POST", "/v1/endpoints", input(1100u << 10)).status, 413);
  // /run: 10 MB; /runsync: 20 MB (Runpod's).
  EXPECT_EQ(cluster_->Call("POST", "/v2/" + endpoint_ + "/run", input(10'100'000)).status, 413);
  Reply run = cluster_->Call("POST", "/v2/" + endpoint_ + "/run", input(9'000'000));
  EXPECT_EQ(run.status, 200) << run.text.substr(0, 200);
  if (run.body.contains("id")) {
    cluster_->Call("POST", "/v2/" + endpoint_ + "/cancel/" + run.body["id"].get<std::string>());
  }
  EXPECT_EQ(cluster_->Call("POST", "/v2/" + endpoint_ + "/runsync", input(20'100'000)).status,
            413);
  Reply sync = cluster_->Call("POST", "/v2/" + endpoint_ + "/runsync?wait=1000",
                              input(15'000'000));
  EXPECT_EQ(sync.status, 200) << sync.text.substr(0, 200);
  if (sync.body.contains("id")) {
    cluster_->Call("POST", "/v2/" + endpoint_ + "/cancel/" + sync.body["id"].get<std::string>());
  }
}

// 1,000 connections from 127.0.0.1 that send half a request line and then a byte now and then:
// the per-client cap closes all but 256 at once, the header deadline drops the rest, and a
// second client (127.0.0.2) is answered throughout.
TEST_F(SecurityEdgeTest, SlowlorisConnectionsFromOneAddressDoNotStarveAnother) {
  constexpr int kSlow = 1000;
  // /health from 127.0.0.2 on a machine as loaded as it is now, without the slow connections: the
  // p99 below may exceed issue 15's 100 ms only by what the machine's own load costs.
  const auto health_ms = [&](int n) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const int status = RawStatus("127.0.0.2", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
      ms.push_back(status != 200 ? 1e9
                                 : std::chrono::duration<double, std::milli>(
                                       std::chrono::steady_clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms;
  };
  const std::vector<double> idle = health_ms(200);
  const double idle_p99 = idle[idle.size() * 99 / 100];
  const uint64_t rss_before = RssBytes();
  std::vector<int> slow;
  for (int i = 0; i < kSlow; ++i) {
    int fd = ConnectFrom("127.0.0.1", port());
    if (fd >= 0 && SendAll(fd, "GET /health HTTP/1.1\r\nHost: 1")) slow.push_back(fd);
    else if (fd >= 0) ::close(fd);
  }
  // Trickle: one header byte per 200 ms keeps an idle timeout from ever firing.
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop) {
      for (int fd : slow) ::send(fd, "2", 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(200ms);
    }
  });

  std::vector<double> ms;
  for (int i = 0; i < 200; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const int status = RawStatus("127.0.0.2", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           start).count());
    ASSERT_EQ(status, 200) << "request " << i;
  }
  std::sort(ms.begin(), ms.end());
  const uint64_t rss_during = RssBytes();

  // Every slow connection is closed by the server: at once (over the cap) or at the deadline.
  int closed = 0;
  const auto until = std::chrono::steady_clock::now() + kHeaderDeadline * 4;
  for (int fd : slow) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    closed += ClosedByPeer(fd, std::max(left, 1ms)) ? 1 : 0;
  }
  stop = true;
  trickle.join();
  for (int fd : slow) ::close(fd);
  std::printf("[ measured ] /health from 127.0.0.2 beside %d slowloris connections: p50 %.2f ms, "
              "p99 %.2f ms (%.2f ms without them), max %.2f ms; RSS %+.1f MiB\n",
              kSlow, ms[ms.size() / 2], ms[ms.size() * 99 / 100], idle_p99, ms.back(),
              (static_cast<double>(rss_during) - static_cast<double>(rss_before)) / 1048576.0);
  EXPECT_EQ(closed, static_cast<int>(slow.size()));
  // Issue 15: p99 <= 100 ms (about 4 ms on an idle machine), plus the load's own p99.
  EXPECT_LE(ms[ms.size() * 99 / 100], 100.0 + idle_p99) << "p99 without them: " << idle_p99;
  EXPECT_LT(rss_during - std::min(rss_during, rss_before), 256u << 20);
}

// A job whose webhook names a loopback, private or link-local address is refused at submit.
TEST_F(SecurityEdgeTest, WebhooksToPrivateAddressesAreRefusedAtSubmit) {
  for (const char* url :
       {"http://127.0.0.2:9/hook", "http://[::1]:9/hook", "http://169.254.169.254/latest",
        "http://10.1.2.3/hook", "http://192.168.1.1/hook", "http://localhost:9/hook",
        "http://2130706433/hook", "https://user@[::ffff:127.0.0.1]:8443/hook"}) {
    Reply r = cluster_->Call("POST", "/v2/" + endpoint_ + "/run",
                             json{{"input", 1}, {"webhook", url}}.dump());
    EXPECT_EQ(r.status, 400) << url << ": " << r.text;
    EXPECT_NE(r.text.find("--webhook-allow-private"), std::string::npos) << r.text;
  }
  // An allowed host passes.
  Reply ok = cluster_->Call("POST", "/v2/" + endpoint_ + "/run",
                            json{{"input", 1}, {"webhook", "http://127.0.0.1:9/hook"}}.dump());
  EXPECT_EQ(ok.status, 200) << ok.text;
  if (ok.body.contains("id")) {
    cluster_->Call("POST", "/v2/" + endpoint_ + "/cancel/" + ok.body["id"].get<std::string>());
  }
}

// A name that passes the submit check but resolves to loopback (this machine's host name) is
// refused when the delivery is sent, after DNS. Deliveries go one at a time, in order: once a
// later (allowed) delivery has arrived, the refused one is finished.
TEST_F(SecurityEdgeTest, WebhooksResolvingToPrivateAddressesAreRefusedAtSend) {
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  addrinfo* found = nullptr;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  if (::getaddrinfo(name, nullptr, &hints, &found) != 0 || found == nullptr) {
    GTEST_SKIP() << "this machine's host name " << name << " does not resolve";
  }
  const bool loopback =
      (ntohl(reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr.s_addr) >> 24) == 127;
  ::freeaddrinfo(found);
  if (!loopback) GTEST_SKIP() << "host name " << name << " does not resolve to loopback";

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> hits;
  net::HttpServerOptions o;
  o.listen = "0.0.0.0:0";  // reachable as 127.0.0.1 and as the host name
  o.handler = [&](const net::HttpRequest& req, net::HttpResponse& res) {
    {
      std::lock_guard<std::mutex> lock(mu);
      hits.push_back(req.raw_path);
    }
    cv.notify_all();
    res.SetText(200, "{}", "application/json");
  };
  auto receiver = net::HttpServer::Create(std::move(o));
  ASSERT_TRUE(receiver.ok());
  ASSERT_TRUE((*receiver)->Start().ok());
  const std::string port = std::to_string((*receiver)->port());

  for (const std::string& url : {"http://" + std::string(name) + ":" + port + "/refused",
                                 "http://127.0.0.1:" + port + "/allowed"}) {
    Reply r = cluster_->Call("POST", "/v2/" + endpoint_ + "/run",
                             json{{"input", 1}, {"webhook", url}}.dump());
    ASSERT_EQ(r.status, 200) << r.text;
    cluster_->Call("POST", "/v2/" + endpoint_ + "/cancel/" + r.body["id"].get<std::string>());
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 60s, [&] {
    return std::find(hits.begin(), hits.end(), "/allowed") != hits.end();
  }));
  EXPECT_EQ(std::count(hits.begin(), hits.end(), "/refused"), 0);
}

// An env name no agent would start (nor a NUL in a value) is refused when the endpoint is made,
// not found out by a placement failing on every tick.
TEST_F(SecurityEdgeTest, WorkerEnvTheAgentsRefuseIs400AtCreate) {
  for (const json& env : {json{{"1BAD", "x"}}, json{{"A-B", "x"}}, json{{"", "x"}},
                          json{{"A B", "x"}}, json{{"OK", std::string("a\0b", 3)}}}) {
    Reply r = cluster_->Call("POST", "/v1/endpoints",
                             json{{"name", "env"},
                                  {"model", "org/tiny"},
                                  {"command", {"sleep", "600"}},
                                  {"workersMax", 0},
                                  {"env", env}}
                                 .dump());
    EXPECT_EQ(r.status, 400) << env.dump() << ": " << r.text;
    if (r.body.contains("id")) cluster_->Call("DELETE", "/v1/endpoints/" + r.body["id"].get<std::string>());
  }
  Reply ok = cluster_->Call("POST", "/v1/endpoints",
                            json{{"name", "env-ok"},
                                 {"model", "org/tiny"},
                                 {"command", {"sleep", "600"}},
                                 {"workersMax", 0},
                                 {"env", {{"_GOOD_1", "multi\nline"}}}}
                                .dump());
  EXPECT_EQ(ok.status, 200) << ok.text;
  if (ok.body.contains("id")) cluster_->Call("DELETE", "/v1/endpoints/" + ok.body["id"].get<std::string>());
}

}  // namespace
}  // namespace mc::controller
