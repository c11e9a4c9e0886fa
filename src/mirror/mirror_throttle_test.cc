// The bandwidth caps of MirrorServer (MirrorOptions::max_bytes_per_second for the server,
// max_bytes_per_second_per_answer for each answer) over real loopback HTTP. Timing is asserted only
// from below: a capped transfer of S bytes at rate R cannot end before (S - burst) / R, the burst
// being a tenth of a second of bytes. (The arithmetic itself is checked on made-up time in
// bandwidth_limiter_test.cc.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include "mc/net/http_client.h"
#include "mirror/mirror_test_env.h"

namespace mc::mirror {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kWeights[] = "/org/model/resolve/main/model.safetensors";

// The least time `bytes` can take at `rate` with the cap's burst of rate / 10.
std::chrono::duration<double> Least(uint64_t bytes, uint64_t rate) {
  const double burst = static_cast<double>(rate / 10);
  return std::chrono::duration<double>((static_cast<double>(bytes) - burst) / rate);
}

class MirrorThrottleTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
    for (int i = 0; i < 8; ++i) {
      std::error_code ec;
      fs::remove(Out(i), ec);
    }
  }

  void Serve(uint64_t bytes_per_second, std::vector<FaultRule> rules = {},
             uint64_t per_answer = 0) {
    MirrorOptions options;
    options.cache_dir = testenv::Get().cache_dir;
    options.max_bytes_per_second = bytes_per_second;
    options.max_bytes_per_second_per_answer = per_answer;
    options.faults.rules = std::move(rules);
    auto server = MirrorServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
  }

  fs::path Out(int i) const {
    return fs::temp_directory_path() /
           ("mc_throttle_test_" + std::to_string(::getpid()) + "_" + std::to_string(i) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  // GET into file `i` with a client of its own (one per thread).
  StatusOr<net::HttpClientResponse> Fetch(
      int i, const std::string& range = "",
      std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    net::HttpClientRequest req;
    req.url = server_->base_url() + kWeights;
    if (!range.empty()) req.range = range;
    req.timeout = timeout;
    req.sink = net::BodySink::kFile;
    req.body_file = Out(i);
    return net::HttpClient::Create()->Send(req);
  }
  std::string Received(int i) const {
    std::ifstream in(Out(i), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static std::string Weights() { return testenv::Get().Source("model", "model.safetensors"); }

  std::unique_ptr<MirrorServer> server_;
};

TEST_F(MirrorThrottleTest, ACappedFileTakesAtLeastItsSizeOverTheRate) {
  const std::string weights = Weights();
  const uint64_t rate = weights.size() * 2;  // about half a second
  Serve(rate);
  const auto start = Clock::now();
  auto res = Fetch(0);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->headers.Get("Content-Length"), std::to_string(weights.size()));
  EXPECT_EQ(Received(0), weights);
  EXPECT_GE(took, Least(weights.size(), rate));
  EXPECT_EQ(server_->stats().file_bytes_served, weights.size());
}

TEST_F(MirrorThrottleTest, ACappedRangeIsExactAndPaced) {
  const std::string weights = Weights();
  const uint64_t first = 1000, length = weights.size() / 2;
  const uint64_t rate = length * 3;  // about a third of a second
  Serve(rate);
  const auto start = Clock::now();
  auto res = Fetch(0, "bytes=" + std::to_string(first) + "-" + std::to_string(first + length - 1));
  const auto took = Clock::now() - start;
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(Received(0), weights.substr(first, length));
  EXPECT_GE(took, Least(length, rate));
}

// The cap is the server's, not each connection's: four transfers at once take as long as their
// sum would alone, and each arrives whole.
TEST_F(MirrorThrottleTest, ConcurrentConnectionsShareOneCap) {
  const std::string weights = Weights();
  constexpr int kConnections = 4;
  const uint64_t rate = weights.size() * kConnections;  // all together about a second
  Serve(rate);
  std::vector<StatusOr<net::HttpClientResponse>> results(kConnections, InternalError("not run"));
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < kConnections; ++i) {
    // Ranged and unranged alike draw from the one bucket.
    threads.emplace_back([&, i] { results[i] = Fetch(i, i % 2 ? "bytes=0-" : ""); });
  }
  for (std::thread& t : threads) t.join();
  const auto took = Clock::now() - start;
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(Received(i), weights) << i;
  }
  EXPECT_GE(took, Least(kConnections * weights.size(), rate));
}

TEST_F(MirrorThrottleTest, AFaultStillAppliesUnderTheCap) {
  FaultRule drop;
  drop.action = FaultRule::DropAfterBytes{300'000};
  const uint64_t rate = 1'000'000;
  Serve(rate, {drop});
  const auto start = Clock::now();
  auto res = Fetch(0);
  const auto took = Clock::now() - start;
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Received(0), Weights().substr(0, 300'000));
  EXPECT_GE(took, Least(300'000, rate));
  EXPECT_EQ(server_->stats().faults_fired, std::vector<uint64_t>{1});
}

// A client that gives up gets a prefix of the file; the server then stops (TearDown) although
// the rest of the transfer would take minutes.
TEST_F(MirrorThrottleTest, AnAbandonedCappedTransferLeavesAPrefix) {
  Serve(10'000);
  auto res = Fetch(0, "", std::chrono::milliseconds(300));
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  const std::string got = Received(0);
  EXPECT_LT(got.size(), Weights().size());
  EXPECT_EQ(got, Weights().substr(0, got.size()));
}

// The per-answer cap paces each answer on its own: two transfers at once each take at least their
// own size over the rate (the server as a whole is not capped), and a Range answer is paced too.
TEST_F(MirrorThrottleTest, EachAnswerIsPacedOnItsOwn) {
  const std::string weights = Weights();
  const uint64_t rate = weights.size() * 3;  // about a third of a second per answer
  Serve(0, {}, rate);
  std::vector<StatusOr<net::HttpClientResponse>> results(2, InternalError("not run"));
  std::vector<Clock::duration> took(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      const auto start = Clock::now();
      results[i] = Fetch(i, i == 1 ? "bytes=0-" : "");
      took[i] = Clock::now() - start;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(Received(i), weights) << i;
    EXPECT_GE(took[i], Least(weights.size(), rate)) << i;
  }
  EXPECT_EQ(results[1]->status, 206);
}

// With both caps, both apply: here the server's is the slower one and sets the pace.
TEST_F(MirrorThrottleTest, PerAnswerAndServerCapsBothApply) {
  const std::string weights = Weights();
  const uint64_t server_rate = weights.size() * 3;
  Serve(server_rate, {}, server_rate * 4);
  const auto start = Clock::now();
  auto res = Fetch(0);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(Received(0), weights);
  EXPECT_GE(took, Least(weights.size(), server_rate));
}

}  // namespace
}  // namespace mc::mirror
