#include "mc/net/http_server.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "mc/net/http_client.h"

namespace mc::net {
namespace {

namespace fs = std::filesystem;

// Routes of the test handler:
//   /echo...      body = "<method> <raw_path>", headers X-Query-<key> = decoded value,
//                 X-Body-Size = body size, X-Seen-Header = value of X-Probe
//   /file?o=&n=   bytes [o, o+n) of the fixture file (sendfile path)
//   /empty-file   a zero-length file body
//   /stream?piece=&abort_at=   the fixture bytes from a producer, at most `piece` bytes per call;
//                 aborts when asked for offset >= abort_at. Counts producer calls.
class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mc_net_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    file_ = dir_ / "data.bin";
    for (int i = 0; i < 300000; ++i) content_.push_back(static_cast<char>('a' + i % 26));
    std::ofstream(file_, std::ios::binary) << content_;
    HttpServerOptions options;
    options.max_body_bytes = 1024;
    options.handler = [this](const HttpRequest& req, HttpResponse& res) { Handle(req, res); };
    auto server = HttpServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
    client_ = HttpClient::Create();
  }
  void TearDown() override {
    server_->Stop();
    fs::remove_all(dir_);
  }

  void Handle(const HttpRequest& req, HttpResponse& res) {
    if (req.raw_path == "/file") {
      auto fd = ScopedFd::OpenForRead(file_);
      uint64_t offset = std::stoull(req.QueryParam("o").value_or("0"));
      uint64_t length = std::stoull(req.QueryParam("n").value_or(std::to_string(content_.size())));
      res.SetFile(std::move(*fd), offset, length);
      return;
    }
    if (req.raw_path == "/stream") {
      size_t piece = std::stoull(req.QueryParam("piece").value_or("1000"));
      uint64_t abort_at = std::stoull(req.QueryParam("abort_at").value_or("-1"));
      res.SetStream(content_.size(),
                    [this, piece, abort_at](uint64_t offset, char* buf, size_t max) -> ssize_t {
                      ++producer_calls_;
                      if (offset >= abort_at) return kAbortBody;
                      size_t n = std::min({max, piece, static_cast<size_t>(abort_at - offset)});
                      std::memcpy(buf, content_.data() + offset, n);
                      return static_cast<ssize_t>(n);
                    });
      return;
    }
    if (req.raw_path == "/empty-file") {
      res.SetFile(std::move(*ScopedFd::OpenForRead(file_)), 0, 0);
      return;
    }
    res.SetText(200, req.method + " " + req.raw_path);
    for (const auto& [k, v] : req.query) res.headers.Add("X-Query-" + k, v);
    res.headers.Set("X-Body-Size", std::to_string(req.body.size()));
    res.headers.Set("X-Seen-Header", req.headers.Get("x-probe").value_or(""));
    if (req.method == "POST") res.body = req.body;
  }

  std::string Url(const std::string& target) { return server_->base_url() + target; }

  fs::path dir_;
  fs::path file_;
  std::string content_;
  std::atomic<int> producer_calls_{0};
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpServerTest, BindsAnEphemeralPortOnLoopback) {
  EXPECT_NE(server_->port(), 0);
  EXPECT_EQ(server_->base_url(), "http://127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(HttpServerTest, GetReachesHandlerWithMethodAndHeaders) {
  HeaderMap headers;
  headers.Add("X-Probe", "hello");
  auto res = client_->Get(Url("/echo"), headers);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "GET /echo");
  EXPECT_EQ(res->headers.Get("x-seen-header"), "hello");
}

TEST_F(HttpServerTest, RawPathKeepsPercentEscapes) {
  auto res = client_->Get(Url("/echo/refs%2Fpr%2F1/a%20b/%2e%2e"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, "GET /echo/refs%2Fpr%2F1/a%20b/%2e%2e");
}

TEST_F(HttpServerTest, DotSegmentsAreNotNormalized) {
  auto res = client_->Get(Url("/echo/a/../b"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, "GET /echo/a/../b");
}

TEST_F(HttpServerTest, QueryParametersAreDecoded) {
  auto res = client_->Get(Url("/echo?cursor=a%2Fb&flag=x+y"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, "GET /echo");
  EXPECT_EQ(res->headers.Get("X-Query-cursor"), "a/b");
  EXPECT_EQ(res->headers.Get("X-Query-flag"), "x y");
}

TEST_F(HttpServerTest, BadQueryEscapeIsRejectedWith400) {
  auto res = client_->Get(Url("/echo?a=%zz"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 400);
}

TEST_F(HttpServerTest, HeadReportsContentLengthWithoutBody) {
  auto res = client_->Head(Url("/echo/abc"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.Get("Content-Length"), "14");  // "HEAD /echo/abc"
  EXPECT_EQ(res->body_bytes, 0u);
}

TEST_F(HttpServerTest, PostBodyReachesHandler) {
  auto res = client_->Post(Url("/echo"), "paths=a&paths=b", "application/x-www-form-urlencoded");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "paths=a&paths=b");
}

TEST_F(HttpServerTest, OversizedPostBodyGets413) {
  auto res = client_->Post(Url("/echo"), std::string(4096, 'x'), "text/plain");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 413);
}

TEST_F(HttpServerTest, FileBodyIsSentWhole) {
  auto res = client_->Get(Url("/file"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, content_);
}

TEST_F(HttpServerTest, FileBodyHonoursOffsetAndLength) {
  auto res = client_->Get(Url("/file?o=100000&n=12345"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, content_.substr(100000, 12345));
}

TEST_F(HttpServerTest, HeadOfFileBodyReportsFileSize) {
  auto res = client_->Head(Url("/file"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->headers.Get("Content-Length"), std::to_string(content_.size()));
  EXPECT_EQ(res->body_bytes, 0u);
}

TEST_F(HttpServerTest, EmptyFileBodyHasZeroContentLength) {
  auto res = client_->Get(Url("/empty-file"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.Get("Content-Length"), "0");
}

TEST_F(HttpServerTest, BodyCanBeWrittenToAFile) {
  HttpClientRequest req;
  req.url = Url("/file");
  req.sink = BodySink::kFile;
  req.body_file = dir_ / "out.bin";
  auto res = client_->Send(req);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body_bytes, content_.size());
  std::ifstream in(req.body_file, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), content_);
}

TEST_F(HttpServerTest, StreamBodyProducedInPiecesArrivesIntact) {
  auto res = client_->Get(Url("/stream?piece=777"));
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.Get("Content-Length"), std::to_string(content_.size()));
  EXPECT_EQ(res->body, content_);
  EXPECT_GE(producer_calls_.load(), static_cast<int>(content_.size() / 777));
}

TEST_F(HttpServerTest, HeadOfStreamBodyReportsLengthWithoutCallingTheProducer) {
  auto res = client_->Head(Url("/stream"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->headers.Get("Content-Length"), std::to_string(content_.size()));
  EXPECT_EQ(res->body_bytes, 0u);
  EXPECT_EQ(producer_calls_.load(), 0);
}

TEST_F(HttpServerTest, StreamAbortMidBodyGivesTheClientAShortReadAndAnError) {
  HttpClientRequest req;
  req.url = Url("/stream?piece=1000&abort_at=5000");
  req.sink = BodySink::kFile;
  req.body_file = dir_ / "short.bin";
  auto res = client_->Send(req);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  std::ifstream in(req.body_file, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), content_.substr(0, 5000));
}

TEST_F(HttpServerTest, ServerKeepsServingAfterAnAbortedStream) {
  HttpClientRequest req;
  req.url = Url("/stream?abort_at=100");
  EXPECT_FALSE(client_->Send(req).ok());
  auto res = client_->Get(Url("/file?o=0&n=10"));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, content_.substr(0, 10));
}

TEST_F(HttpServerTest, ConcurrentClientsAllGetTheirBytes) {
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto client = HttpClient::Create();
      for (int i = 0; i < 5; ++i) {
        std::string target = "/file?o=" + std::to_string(t * 1000) + "&n=50000";
        auto res = client->Get(Url(target));
        if (res.ok() && res->body == content_.substr(t * 1000, 50000)) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 40);
}

TEST_F(HttpServerTest, AuthorizationHeaderIsNeverLogged) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  HeaderMap headers;
  headers.Add("Authorization", "Bearer hf_super_secret");
  auto res = client_->Get(Url("/echo?x=1"), headers);
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(res.ok());
  EXPECT_NE(captured.str().find("/echo"), std::string::npos);  // the request was logged
  EXPECT_EQ(captured.str().find("hf_super_secret"), std::string::npos);
}

TEST_F(HttpServerTest, ConnectionToStoppedServerFailsAsUnavailable) {
  std::string url = Url("/echo");
  server_->Stop();
  auto res = client_->Get(url);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
}

TEST(HttpServerCreateTest, RejectsBadListenAddress) {
  HttpServerOptions options;
  options.handler = [](const HttpRequest&, HttpResponse&) {};
  options.listen = "127.0.0.1";
  EXPECT_EQ(HttpServer::Create(options).status().code(), StatusCode::kInvalidArgument);
  options.listen = "127.0.0.1:99999";
  EXPECT_EQ(HttpServer::Create(options).status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpServerCreateTest, RejectsMissingHandler) {
  EXPECT_EQ(HttpServer::Create(HttpServerOptions()).status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpServerCreateTest, ThreadPoolModelServesRequests) {
  HttpServerOptions options;
  options.thread_model = ThreadModel::kThreadPool;
  options.thread_pool_size = 2;
  options.handler = [](const HttpRequest&, HttpResponse& res) { res.SetText(200, "pool"); };
  auto server = HttpServer::Create(std::move(options));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  auto res = HttpClient::Create()->Get((*server)->base_url() + "/");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, "pool");
}

TEST(HttpServerCreateTest, SecondServerOnTheSamePortFailsAsUnavailable) {
  HttpServerOptions options;
  options.handler = [](const HttpRequest&, HttpResponse&) {};
  auto first = HttpServer::Create(options);
  ASSERT_TRUE((*first)->Start().ok());
  options.listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HttpServer::Create(options);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->Start().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mc::net
