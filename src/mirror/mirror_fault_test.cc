// Fault injection of MirrorServer (MirrorOptions::faults) over real loopback HTTP. Each test starts
// its own faulty server over the shared test cache.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>

#include "mc/net/http_client.h"
#include "mirror/mirror_test_env.h"

namespace mc::mirror {
namespace {

namespace fs = std::filesystem;
using Rule = FaultRule;

// Rules and actions built field by field (aggregate initialization with omitted fields warns).
Rule MakeRule(Rule::Action action, int64_t count = 1) {
  Rule rule;
  rule.action = std::move(action);
  rule.count = count;
  return rule;
}
Rule::ErrorStatus Error(int code, std::optional<int> retry_after = std::nullopt) {
  Rule::ErrorStatus error;
  error.code = code;
  error.retry_after_seconds = retry_after;
  return error;
}

constexpr char kWeights[] = "/org/model/resolve/main/model.safetensors";
constexpr char kConfig[] = "/org/model/resolve/main/config.json";

class MirrorFaultTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
    std::error_code ec;
    fs::remove(out_, ec);
  }

  void Serve(std::vector<Rule> rules) {
    MirrorOptions options;
    options.cache_dir = testenv::Get().cache_dir;
    options.faults.rules = std::move(rules);
    auto server = MirrorServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
  }

  // GET into a file, so the bytes that arrived before a transport error can be inspected.
  StatusOr<net::HttpClientResponse> Fetch(
      const std::string& target, const std::string& range = "",
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    net::HttpClientRequest req;
    req.url = server_->base_url() + target;
    if (!range.empty()) req.range = range;
    req.timeout = timeout;
    req.sink = net::BodySink::kFile;
    req.body_file = out_;
    return client_->Send(req);
  }
  std::string Received() const {
    std::ifstream in(out_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string Weights() const { return testenv::Get().Source("model", "model.safetensors"); }
  uint64_t Fired(size_t rule) const { return server_->stats().faults_fired.at(rule); }

  fs::path out_ =
      fs::temp_directory_path() / ("mc_fault_test_" + std::to_string(::getpid()) + "_" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::unique_ptr<MirrorServer> server_;
  std::unique_ptr<net::HttpClient> client_ = net::HttpClient::Create();
};

TEST_F(MirrorFaultTest, DropGivesTheClientExactlyNBytesThenAnError) {
  Serve({MakeRule(Rule::DropAfterBytes{100000})});
  auto res = Fetch(kWeights);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Received(), Weights().substr(0, 100000));
  EXPECT_EQ(Fired(0), 1u);
}

TEST_F(MirrorFaultTest, DropAfterZeroBytesStillSendsTheHeaders) {
  Serve({MakeRule(Rule::DropAfterBytes{0})});
  net::HttpClientRequest req;
  req.url = server_->base_url() + kWeights;
  req.sink = net::BodySink::kFile;
  req.body_file = out_;
  auto res = client_->Send(req);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  // curl says "partial file" only after it got headers with a Content-Length ("Empty reply from
  // server" if the connection closed before them).
  EXPECT_NE(res.status().message().find("partial file"), std::string::npos)
      << res.status().ToString();
  EXPECT_EQ(Received(), "");
}

TEST_F(MirrorFaultTest, DropAppliesToTheRangeBody) {
  Serve({MakeRule(Rule::DropAfterBytes{500})});
  auto res = Fetch(kWeights, "bytes=1000-9999");
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Received(), Weights().substr(1000, 500));
}

TEST_F(MirrorFaultTest, CorruptByteChangesExactlyThatByte) {
  Serve({MakeRule(Rule::CorruptByte{123456})});
  auto res = Fetch(kWeights);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  std::string expected = Weights();
  expected[123456] = static_cast<char>(expected[123456] ^ 0xff);
  EXPECT_EQ(Received(), expected);
}

TEST_F(MirrorFaultTest, CorruptByteIsAtItsFileOffsetInARange) {
  Serve({MakeRule(Rule::CorruptByte{2000})});
  auto res = Fetch(kWeights, "bytes=1000-2999");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 206);
  std::string expected = Weights().substr(1000, 2000);
  expected[1000] = static_cast<char>(expected[1000] ^ 0xff);
  EXPECT_EQ(Received(), expected);
}

TEST_F(MirrorFaultTest, ServiceUnavailableOnceThenTheFile) {
  Serve({MakeRule(Error(503), 1)});
  auto first = Fetch(kWeights);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 503);
  EXPECT_TRUE(first->headers.Has("X-Error-Message"));
  EXPECT_FALSE(first->headers.Has("X-Error-Code"));
  EXPECT_FALSE(first->headers.Has("X-Repo-Commit"));
  auto second = Fetch(kWeights);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(Received(), Weights());
  EXPECT_EQ(Fired(0), 1u);
}

TEST_F(MirrorFaultTest, TooManyRequestsCarriesRetryAfter) {
  Serve({MakeRule(Error(429, 7))});
  auto res = Fetch(kWeights);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->headers.Get("Retry-After"), "7");
}

TEST_F(MirrorFaultTest, StallTimesTheClientOutAndStopReturnsPromptly) {
  Serve({MakeRule(Rule::StallAfterBytes{1000, std::chrono::minutes(10)})});
  auto res = Fetch(kWeights, "", std::chrono::milliseconds(300));
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Received(), Weights().substr(0, 1000));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(MirrorFaultTest, RuleStopsFiringAfterItsCount) {
  Serve({MakeRule(Rule::DropAfterBytes{10}, 2)});
  EXPECT_FALSE(Fetch(kWeights).ok());
  EXPECT_FALSE(Fetch(kWeights).ok());
  auto third = Fetch(kWeights);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(Received(), Weights());
  EXPECT_EQ(Fired(0), 2u);
}

TEST_F(MirrorFaultTest, RuleWithCountMinusOneAlwaysFires) {
  Serve({MakeRule(Error(500), -1)});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Fetch(kWeights)->status, 500);
  EXPECT_EQ(Fired(0), 3u);
}

TEST_F(MirrorFaultTest, NextRuleAppliesWhenTheFirstIsUsedUp) {
  Serve({MakeRule(Error(503), 1), MakeRule(Rule::DropAfterBytes{10}, 1)});
  EXPECT_EQ(Fetch(kWeights)->status, 503);
  EXPECT_FALSE(Fetch(kWeights).ok());
  EXPECT_TRUE(Fetch(kWeights).ok());
  EXPECT_EQ(server_->stats().faults_fired, (std::vector<uint64_t>{1, 1}));
}

TEST_F(MirrorFaultTest, PathFilterLeavesOtherFilesAlone) {
  Serve({Rule{.path_contains = "model.safetensors",
              .only_ranged = false,
              .count = -1,
              .action = Error(503)}});
  auto res = Fetch(kConfig);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Fetch(kWeights)->status, 503);
  EXPECT_EQ(Fired(0), 1u);
}

TEST_F(MirrorFaultTest, RangedOnlyRuleLeavesFullRequestsAlone) {
  Serve({Rule{.path_contains = "", .only_ranged = true, .count = -1, .action = Error(503)}});
  EXPECT_EQ(Fetch(kWeights)->status, 200);
  EXPECT_EQ(Fetch(kWeights, "bytes=0-9")->status, 503);
  EXPECT_EQ(Fired(0), 1u);
}

TEST_F(MirrorFaultTest, HeadAndApiAnswersAreNeverFaulted) {
  Serve({MakeRule(Error(503), -1)});
  net::HttpClientRequest head;
  head.method = "HEAD";
  head.url = server_->base_url() + kWeights;
  auto res = client_->Send(head);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.Get("Content-Length"), std::to_string(Weights().size()));
  auto info = client_->Get(server_->base_url() + "/api/models/org/model");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->status, 200);
  EXPECT_EQ(Fired(0), 0u);
}

TEST_F(MirrorFaultTest, MissingFilesAreAnsweredWithoutFault) {
  Serve({MakeRule(Error(503), -1)});
  EXPECT_EQ(Fetch("/org/model/resolve/main/nope.bin")->status, 404);
  EXPECT_EQ(Fired(0), 0u);
}

TEST_F(MirrorFaultTest, DelayedFirstByteStillDeliversTheWholeBody) {
  Serve({MakeRule(Rule::DelayFirstByte{std::chrono::milliseconds(20)})});
  auto res = Fetch(kWeights);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(Received(), Weights());
  EXPECT_EQ(Fired(0), 1u);
}

TEST_F(MirrorFaultTest, UnfaultedServerReportsNoFires) {
  Serve({});
  EXPECT_TRUE(Fetch(kWeights).ok());
  EXPECT_TRUE(server_->stats().faults_fired.empty());
}

TEST(MirrorFaultOptionsTest, InvalidRulesAreRejected) {
  MirrorOptions options;
  options.cache_dir = testenv::Get().cache_dir;
  options.faults.rules = {MakeRule(Rule::DropAfterBytes{0}, -2)};
  EXPECT_EQ(MirrorServer::Create(options).status().code(), StatusCode::kInvalidArgument);
  options.faults.rules = {MakeRule(Error(200))};
  EXPECT_EQ(MirrorServer::Create(options).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mc::mirror
