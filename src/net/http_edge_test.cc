// The HttpServer's edge options (mc/net/edge_limits.h, HeadHandler) on a bare server: what is
// decided before the body is read, the JSON depth check, the per-client cap and the deadlines.
// The clients are raw sockets (mc/testing/raw_http.h). The controller's own edge is tested end to
// end in src/controller/security_edge_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <string>

#include "mc/net/http_client.h"
#include "mc/net/http_server.h"
#include "mc/net/json_reply.h"
#include "mc/net/router.h"
#include "mc/testing/raw_http.h"

namespace mc::net {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using namespace mc::testing;

class HttpEdgeTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    options.handler = [this](const HttpRequest& req, HttpResponse& res) {
      ++handled_;
      res.SetText(200, "got " + std::to_string(req.body.size()));
    };
    auto server = HttpServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::string Raw(const std::string& request, const std::string& source = "127.0.0.1") {
    int fd = ConnectFrom(source, server_->port());
    if (fd < 0) return "";
    std::string answer = SendAll(fd, request) ? ReadAnswer(fd, 10s) : "";
    ::close(fd);
    return answer;
  }
  static std::string Post(const std::string& path, const std::string& body,
                          const std::string& extra_headers = "") {
    return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + extra_headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

TEST(JsonDepthTest, CountsNestingOutsideStrings) {
  EXPECT_FALSE(JsonDeeperThan("[[[]]]", 3));
  EXPECT_TRUE(JsonDeeperThan("[[[[]]]]", 3));
  EXPECT_TRUE(JsonDeeperThan("{\"a\": {\"b\": [1]}}", 2));
  EXPECT_FALSE(JsonDeeperThan("{\"a\": \"[[[[[[\"}", 1));
  EXPECT_FALSE(JsonDeeperThan("{\"a\": \"\\\"[[[[[[\"}", 1));  // an escaped quote
  EXPECT_FALSE(JsonDeeperThan("[] [] [] []", 1));               // siblings are not nesting
}

TEST_F(HttpEdgeTest, ARejectedHeadIsAnsweredWithoutReadingTheBody) {
  HttpServerOptions o;
  o.on_head = [](const HttpRequest& head, HeadVerdict& verdict) {
    if (!head.headers.Get("Authorization")) {
      verdict.reject.emplace();
      verdict.reject->SetText(401, "no key");
    }
  };
  Start(std::move(o));
  // Announces a body it never sends: the answer comes anyway.
  int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"));
  EXPECT_EQ(StatusOf(ReadAnswer(fd, 10s)), 401);
  ::close(fd);
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(StatusOf(Raw(Post("/x", "hi", "Authorization: k\r\n"))), 200);
}

TEST_F(HttpEdgeTest, TheHeadHandlerSetsEachRequestsBodyCap) {
  Router router;
  router.Add("POST", "/big", [](const HttpRequest&, const PathParams&, HttpResponse&) {}, 5000);
  router.Add("POST", "/small", [](const HttpRequest&, const PathParams&, HttpResponse&) {});
  EXPECT_EQ(router.BodyLimit("POST", "/big"), 5000u);
  EXPECT_EQ(router.BodyLimit("POST", "/small"), std::nullopt);
  EXPECT_EQ(router.BodyLimit("GET", "/big"), std::nullopt);
  HttpServerOptions o;
  o.max_body_bytes = 100;
  o.on_head = [&router](const HttpRequest& head, HeadVerdict& verdict) {
    verdict.max_body_bytes =
        router.BodyLimit(head.method, head.raw_path).value_or(verdict.max_body_bytes);
  };
  Start(std::move(o));
  EXPECT_EQ(StatusOf(Raw(Post("/big", std::string(4000, 'x')))), 200);
  EXPECT_EQ(StatusOf(Raw(Post("/big", std::string(6000, 'x')))), 413);
  EXPECT_EQ(StatusOf(Raw(Post("/small", std::string(200, 'x')))), 413);
  EXPECT_EQ(StatusOf(Raw(Post("/small", std::string(50, 'x')))), 200);
}

TEST_F(HttpEdgeTest, DeepJsonBodiesAre400BeforeTheHandler) {
  HttpServerOptions o;
  o.max_body_bytes = 1 << 20;
  o.edge.max_json_depth = 10;
  Start(std::move(o));
  EXPECT_EQ(StatusOf(Raw(Post("/x", std::string(11, '[') + std::string(11, ']')))), 400);
  EXPECT_EQ(handled_, 0);
  EXPECT_EQ(StatusOf(Raw(Post("/x", std::string(10, '[') + std::string(10, ']')))), 200);
  // Not JSON (does not open with a bracket): not checked.
  EXPECT_EQ(StatusOf(Raw(Post("/x", "x" + std::string(11, '[')))), 200);
}

TEST_F(HttpEdgeTest, ConnectionsOverThePerClientCapAreClosedAtOnce) {
  HttpServerOptions o;
  o.edge.per_client_connections = 4;
  Start(std::move(o));
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(ConnectFrom("127.0.0.1", server_->port()));
  int extra = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(extra, 0);
  EXPECT_TRUE(ClosedByPeer(extra, 10s));
  ::close(extra);
  // Another address is another client.
  EXPECT_EQ(StatusOf(Raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "127.0.0.2")), 200);
  for (int fd : held) ::close(fd);
}

TEST_F(HttpEdgeTest, HeadersNotInByTheDeadlineCloseTheConnection) {
  HttpServerOptions o;
  o.edge.header_deadline = 300ms;
  Start(std::move(o));
  int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "GET / HTTP/1.1\r\nHo"));
  // A byte every 50 ms: never idle, never done.
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {
    ::send(fd, "s", 1, MSG_NOSIGNAL);
    closed = ClosedByPeer(fd, 50ms);
  }
  EXPECT_TRUE(closed);
  ::close(fd);
  EXPECT_GE(server_->deadline_drops(), 1u);
  EXPECT_EQ(StatusOf(Raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), 200);
}

TEST_F(HttpEdgeTest, ABodyNotInByTheDeadlineClosesTheConnection) {
  HttpServerOptions o;
  o.edge.body_deadline = 300ms;
  Start(std::move(o));
  int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"));
  bool closed = false;
  for (int i = 0; i < 200 && !closed; ++i) {
    ::send(fd, "b", 1, MSG_NOSIGNAL);
    closed = ClosedByPeer(fd, 50ms);
  }
  EXPECT_TRUE(closed);
  ::close(fd);
  EXPECT_EQ(handled_, 0);
}

// Replies the system reads (agents, webhooks, the Hub) are capped per call, and by default.
TEST_F(HttpEdgeTest, ReplyBodiesOverTheCapFailWithAClearError) {
  HttpServerOptions o;
  o.handler = [](const HttpRequest& req, HttpResponse& res) {
    const uint64_t length = std::stoull(req.QueryParam("n").value_or("0"));
    res.SetStream(length, [](uint64_t, char* buf, size_t max) -> ssize_t {
      std::memset(buf, 'z', max);
      return static_cast<ssize_t>(max);
    });
  };
  auto server = HttpServer::Create(std::move(o));
  ASSERT_TRUE(server.ok());
  server_ = std::move(*server);
  ASSERT_TRUE(server_->Start().ok());
  auto client = HttpClient::Create();
  HttpClientRequest req;
  req.url = server_->base_url() + "/?n=5000";
  req.max_body_bytes = 4000;
  auto capped = client->Send(req);
  ASSERT_FALSE(capped.ok());
  EXPECT_NE(capped.status().message().find("cap of 4000 bytes"), std::string::npos)
      << capped.status().ToString();
  req.max_body_bytes = 5000;
  EXPECT_TRUE(client->Send(req).ok());
  // No cap given: the default one (a hostile server's endless body is not all read).
  for (BodySink sink : {BodySink::kMemory, BodySink::kDiscard}) {
    HttpClientRequest unset;
    unset.url = server_->base_url() + "/?n=" + std::to_string(kDefaultMaxReplyBytes + 1);
    unset.sink = sink;
    auto big = client->Send(unset);
    ASSERT_FALSE(big.ok());
    EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument) << big.status().ToString();
  }
}

// A CA and a server certificate for 127.0.0.1 signed by it, and a second CA that signed
// nothing of ours, made with the openssl CLI in `dir`.
bool MakeTestCertificates(const fs::path& dir) {
  const std::string d = dir.string();
  const std::string script =
      "set -e; cd '" + d + "'; "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "  -subj /CN=mc-test-ca 2>/dev/null; "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 "
      "  -subj /CN=mc-other-ca 2>/dev/null; "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
      "  -subj /CN=127.0.0.1 2>/dev/null; "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "  -out server.pem -days 2 -extfile san.ext 2>/dev/null";
  return std::system(("sh -c \"" + script + "\"").c_str()) == 0;
}

TEST(HttpsTest, AClientTrustingTheCaIsServedAndAWrongCaIsRefused) {
  const fs::path dir = fs::temp_directory_path() / ("mc_tls_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ASSERT_TRUE(MakeTestCertificates(dir));
  HttpServerOptions o;
  o.tls_cert_file = dir / "server.pem";
  o.tls_key_file = dir / "server.key";
  o.handler = [](const HttpRequest& req, HttpResponse& res) {
    res.SetText(200, "secure " + req.method);
  };
  auto server = HttpServer::Create(std::move(o));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_TRUE((*server)->base_url().starts_with("https://127.0.0.1:")) << (*server)->base_url();
  auto client = HttpClient::Create();
  HttpClientRequest req;
  req.url = (*server)->base_url() + "/x";
  req.ca_file = dir / "ca.pem";
  auto ok = client->Send(req);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "secure GET");
  req.ca_file = dir / "other.pem";  // a CA that did not sign the server's certificate
  auto refused = HttpClient::Create()->Send(req);
  EXPECT_FALSE(refused.ok());
  req.ca_file.clear();  // the system's authorities do not know the test CA either
  EXPECT_FALSE(HttpClient::Create()->Send(req).ok());
  (*server)->Stop();
  fs::remove_all(dir);
}

TEST(HttpServerCreateTest, TlsNeedsBothCertificateAndKey) {
  HttpServerOptions o;
  o.handler = [](const HttpRequest&, HttpResponse&) {};
  o.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_EQ(HttpServer::Create(std::move(o)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mc::net
