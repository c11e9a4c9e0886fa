// Puller against real MirrorServers on loopback: full pulls, re-pulls, filters, gated repos,
// errors, injected faults (drops, corruption, 503, 429, stalls), peers, resume after a cancel and
// two concurrent pulls. Each test pulls into its own fresh cache; the upstream cache is shared.
#include "mc/downloader/pull.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <thread>

#include "mc/cache/blob_hasher.h"
#include "mc/cache/cache_scan.h"
#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/testing/model_fixture.h"

namespace mc::downloader {
namespace {

namespace fs = std::filesystem;
using mirror::FaultRule;

constexpr char kGatedToken[] = "hf_pull_test_gated_token";
constexpr char kWeights[] = "model-00001-of-00002.safetensors";

void Write(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

std::string Read(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The upstream: a cache with org/model (two ~6 MiB shards and small files) and org/gated.
struct Upstream {
  fs::path root;
  fs::path cache_dir;
  fs::path access;
  cache::ImportResult model{*CommitSha::Parse(std::string(40, '0')), {}, 0};

  Upstream() {
    root = fs::temp_directory_path() / ("mc_pull_test_" + std::to_string(::getpid()));
    fs::remove_all(root);
    cache_dir = root / "upstream";
    const fs::path src = root / "src";
    testing::ModelFixtureOptions fixture;
    fixture.total_weight_bytes = 12 << 20;
    fixture.shards = 2;
    if (!testing::WriteModelFixture(src / "model", fixture).ok()) std::abort();
    Write(src / "model" / "README.md", "# model\n");
    Write(src / "model" / "onnx" / "my model+v2.onnx", std::string(3000, 'x'));
    Write(src / "model" / "empty.txt", "");
    Write(src / "model" / "copy.json", Read(src / "model" / "config.json"));  // shares a blob
    Write(src / "gated" / "config.json", "{\"gated\": true}\n");
    access = root / "access.json";
    Write(access, std::string(R"({"repos": {"org/gated": {"gated": "manual", "tokens": [")") +
                      kGatedToken + R"("]}}})");
    auto store = cache::CacheStore::Open({cache_dir, std::nullopt, true});
    if (!store.ok()) std::abort();
    auto imported = cache::ImportFolder(**store, src / "model", *RepoId::Parse("org/model"),
                                        *Revision::Parse("main"));
    if (!imported.ok()) std::abort();
    model = *imported;
    if (!cache::ImportFolder(**store, src / "gated", *RepoId::Parse("org/gated"),
                             *Revision::Parse("main"))
             .ok()) {
      std::abort();
    }
  }
  ~Upstream() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  const cache::ImportedFile& File(const std::string& path) const {
    const cache::ImportedFile* f = model.Find(path);
    if (f == nullptr) std::abort();
    return *f;
  }
};

Upstream& Up() {
  static Upstream* up = new Upstream();
  return *up;
}

std::unique_ptr<mirror::MirrorServer> Serve(const fs::path& cache_dir,
                                            std::vector<FaultRule> faults = {},
                                            uint64_t per_answer_bytes_per_second = 0) {
  mirror::MirrorOptions options;
  options.cache_dir = cache_dir;
  options.access_config = Up().access;
  options.faults.rules = std::move(faults);
  options.max_bytes_per_second_per_answer = per_answer_bytes_per_second;
  auto server = mirror::MirrorServer::Create(std::move(options));
  if (!server.ok() || !(*server)->Start().ok()) std::abort();
  return std::move(*server);
}

FaultRule Rule(FaultRule::Action action, int64_t count = 1, std::string path = kWeights) {
  FaultRule rule;
  rule.action = std::move(action);
  rule.count = count;
  rule.path_contains = std::move(path);
  return rule;
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Up();
    dir_ = fs::temp_directory_path() /
           ("mc_pull_case_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  PullOptions Options(const mirror::MirrorServer& server, const std::string& repo = "org/model") {
    PullOptions o;
    o.cache_dir = dir_ / "cache";
    o.state_dir = dir_ / "state";
    o.endpoint = *hub::Endpoint::Parse(server.base_url());
    o.repo = *RepoId::Parse(repo);
    o.revision = *Revision::Parse("main");
    o.tuning.connections = 4;
    o.tuning.max_connections = 4;  // no scaling, but in the test of scaling
    o.tuning.cell_size = 256 << 10;
    o.tuning.min_split_size = 1 << 20;
    o.tuning.stall_timeout = std::chrono::seconds(1);
    o.tuning.peer_stall_timeout = std::chrono::seconds(1);
    o.tuning.max_attempts = 4;
    o.sleep = [this](std::chrono::milliseconds d) {
      std::lock_guard<std::mutex> lock(mu_);
      waits_.push_back(d);
    };
    return o;
  }

  StatusOr<PullResult> Pull(PullOptions options) {
    Puller puller(std::move(options));
    return puller.Run([this](const PullEvent& e) {
      if (getenv("PULL_TEST_TRACE") && e.kind != PullEvent::Kind::kProgress) {
        fprintf(stderr, "%lld event %d %s %s %s\n",
                (long long)std::chrono::steady_clock::now().time_since_epoch().count() / 1000000,
                (int)e.kind, e.path.c_str(), e.source.c_str(), e.message.c_str());
      }
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
    });
  }

  // A pull from a mirror that paces every answer on its own at 3 MB/s (one connection is slower
  // than several), starting with `start` connections and scaling up to `most` every 100 ms.
  StatusOr<PullResult> PullOverALimitedLink(int start, int most) {
    auto server = Serve(Up().cache_dir, {}, 3'000'000);
    PullOptions o = Options(*server);
    o.tuning.connections = start;
    o.tuning.max_connections = most;
    o.tuning.scale_window = std::chrono::milliseconds(100);
    return Pull(std::move(o));
  }

  std::unique_ptr<cache::CacheStore> Store(const fs::path& dir) {
    return std::move(*cache::CacheStore::Open({dir, std::nullopt, false}));
  }

  // Every file of the pulled snapshot equals the upstream's, and verify passes.
  void ExpectComplete(const PullResult& r, const fs::path& cache_dir) {
    for (const auto& f : Up().model.files) {
      fs::path got = r.snapshot_dir / f.path;
      ASSERT_TRUE(fs::exists(got)) << f.path;
      EXPECT_EQ(cache::HashFile(got, f.lfs ? cache::HashKind::kSha256 : cache::HashKind::kGitSha1)
                    .value(),
                f.etag)
          << f.path;
    }
    auto store = Store(cache_dir);
    auto report = cache::VerifyCache(*store, std::nullopt, std::nullopt);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->failed, 0);
  }

  fs::path dir_;
  std::mutex mu_;
  std::vector<PullEvent> events_;
  std::vector<std::chrono::milliseconds> waits_;
};

TEST_F(PullTest, FullPullWritesAVerifiedSnapshotAndTheRefLast) {
  auto server = Serve(Up().cache_dir);
  auto r = Pull(Options(*server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->commit, Up().model.commit);
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_EQ(Read(dir_ / "cache" / "models--org--model" / "refs" / "main"), Up().model.commit.str());
  EXPECT_EQ(r->bytes_by_source.at("upstream"), r->bytes_fetched);
  // copy.json shares config.json's blob: fetched once.
  EXPECT_EQ(r->files_fetched, static_cast<int>(Up().model.files.size()) - 1);
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(events_.front().kind, PullEvent::Kind::kPlan);
  EXPECT_EQ(events_.back().kind, PullEvent::Kind::kDone);
  EXPECT_EQ(events_.back().files_done, events_.back().files_total);
  // No temp file or resume record is left behind.
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos) << e.path();
    EXPECT_EQ(e.path().extension(), e.path().extension() == ".resume" ? "" : e.path().extension());
  }
}

TEST_F(PullTest, RePullMakesNoDataRequest) {
  auto server = Serve(Up().cache_dir);
  ASSERT_TRUE(Pull(Options(*server)).ok());
  const uint64_t gets = server->stats().resolve_get;
  auto again = Pull(Options(*server));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(server->stats().resolve_get, gets);
  EXPECT_EQ(again->bytes_fetched, 0u);
  EXPECT_EQ(again->files_fetched, 0);
}

TEST_F(PullTest, IncludeAndExcludeSelectFiles) {
  auto server = Serve(Up().cache_dir);
  PullOptions o = Options(*server);
  o.patterns.include = {"*.json", "onnx/"};
  o.patterns.exclude = {"copy.json"};
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(fs::exists(r->snapshot_dir / "config.json"));
  EXPECT_TRUE(fs::exists(r->snapshot_dir / "onnx" / "my model+v2.onnx"));
  EXPECT_FALSE(fs::exists(r->snapshot_dir / "copy.json"));
  EXPECT_FALSE(fs::exists(r->snapshot_dir / kWeights));
  EXPECT_FALSE(fs::exists(r->snapshot_dir / "README.md"));
}

TEST_F(PullTest, ExactFileSelectionAndUnknownFileIsNotFound) {
  auto server = Serve(Up().cache_dir);
  PullOptions o = Options(*server);
  o.files = {*RepoFilePath::Parse("README.md")};
  auto r = Pull(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->plan.files.size(), 1u);
  o.files = {*RepoFilePath::Parse("nope.bin")};
  auto missing = Pull(o);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.bin"), std::string::npos);
}

TEST_F(PullTest, GatedRepoNeedsTheTokenAndNeverShowsIt) {
  auto server = Serve(Up().cache_dir);
  auto denied = Pull(Options(*server, "org/gated"));
  ASSERT_FALSE(denied.ok());
  EXPECT_TRUE(denied.status().code() == StatusCode::kPermissionDenied ||
              denied.status().code() == StatusCode::kUnauthenticated)
      << denied.status().ToString();
  PullOptions o = Options(*server, "org/gated");
  o.token = hub::Secret(kGatedToken);
  auto ok = Pull(std::move(o));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(Read(ok->snapshot_dir / "config.json"), "{\"gated\": true}\n");
  PullOptions wrong = Options(*server, "org/gated");
  wrong.cache_dir = dir_ / "other-cache";
  wrong.token = hub::Secret("hf_wrong_token_value");
  auto bad = Pull(std::move(wrong));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().ToString().find("hf_wrong_token_value"), std::string::npos);
}

TEST_F(PullTest, UnknownRepoAndRevisionAreNotFound) {
  auto server = Serve(Up().cache_dir);
  EXPECT_EQ(Pull(Options(*server, "org/nothing")).status().code(), StatusCode::kNotFound);
  PullOptions o = Options(*server);
  o.revision = *Revision::Parse("no-such-branch");
  EXPECT_EQ(Pull(std::move(o)).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "models--org--nothing"));
}

TEST_F(PullTest, DryRunWritesNothing) {
  auto server = Serve(Up().cache_dir);
  PullOptions o = Options(*server);
  o.dry_run = true;
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->plan.files.size(), Up().model.files.size());
  EXPECT_GT(r->plan.bytes_to_fetch, 12u << 20);
  EXPECT_FALSE(fs::exists(dir_ / "cache"));
  EXPECT_EQ(server->stats().resolve_get, 0u);
}

TEST_F(PullTest, DroppedConnectionResumesFromTheByteItReached) {
  auto server = Serve(Up().cache_dir, {Rule(FaultRule::DropAfterBytes{300'000}, 2)});
  auto r = Pull(Options(*server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_GE(r->retries, 1);
  // Only the lost in-flight bytes are fetched twice, not the whole file.
  EXPECT_LT(r->bytes_fetched, Up().model.bytes + (2u << 20));
}

TEST_F(PullTest, WrongBytesAreADataLossErrorAndNeverPublished) {
  auto server = Serve(Up().cache_dir, {Rule(FaultRule::CorruptByte{1000}, -1)});
  PullOptions o = Options(*server);
  o.files = {*RepoFilePath::Parse(kWeights)};
  auto r = Pull(std::move(o));
  ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  const auto& f = Up().File(kWeights);
  EXPECT_NE(r.status().message().find(kWeights), std::string::npos);
  EXPECT_NE(r.status().message().find(f.etag), std::string::npos);
  EXPECT_NE(r.status().message().find("got "), std::string::npos);
  const fs::path repo = dir_ / "cache" / "models--org--model";
  EXPECT_FALSE(fs::exists(repo / "blobs" / f.etag));
  EXPECT_FALSE(fs::exists(repo / "blobs" / (f.etag + ".resume.incomplete")));
  EXPECT_FALSE(fs::exists(repo / "snapshots" / Up().model.commit.str() / kWeights));
  EXPECT_FALSE(fs::exists(repo / "refs" / "main"));
}

TEST_F(PullTest, ServiceUnavailableThenSuccessIsRetried) {
  auto server = Serve(Up().cache_dir, {Rule(FaultRule::ErrorStatus{503, std::nullopt}, 2)});
  auto r = Pull(Options(*server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->retries, 2);
  ExpectComplete(*r, dir_ / "cache");
}

TEST_F(PullTest, TooManyRequestsHonoursRetryAfter) {
  auto server = Serve(Up().cache_dir, {Rule(FaultRule::ErrorStatus{429, 7}, 1)});
  auto r = Pull(Options(*server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(waits_.size(), 1u);
  EXPECT_EQ(waits_[0], std::chrono::seconds(7));
}

TEST_F(PullTest, StalledTransferIsRetried) {
  auto server = Serve(Up().cache_dir,
                      {Rule(FaultRule::StallAfterBytes{200'000, std::chrono::seconds(30)}, 1)});
  auto r = Pull(Options(*server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->retries, 1);
  ExpectComplete(*r, dir_ / "cache");
}

TEST_F(PullTest, GivesUpAfterMaxAttemptsWithAClearMessage) {
  auto server = Serve(Up().cache_dir, {Rule(FaultRule::ErrorStatus{503, std::nullopt}, -1)});
  auto r = Pull(Options(*server));
  ASSERT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find(kWeights), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("4 failed attempts"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "models--org--model" / "refs" / "main"));
}

TEST_F(PullTest, PeerIsUsedBeforeTheUpstream) {
  auto upstream = Serve(Up().cache_dir);
  auto peer = Serve(Up().cache_dir);
  PullOptions o = Options(*upstream);
  o.peers = {peer->base_url()};
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(upstream->stats().resolve_get, 0u);
  EXPECT_EQ(r->bytes_by_source.at(peer->base_url()), r->bytes_fetched);
  ExpectComplete(*r, dir_ / "cache");
}

TEST_F(PullTest, PeerThatLacksABlobOrIsDownIsSkipped) {
  // The peer holds only README.md (pulled there first); a second peer is a closed port.
  auto upstream = Serve(Up().cache_dir);
  PullOptions seed = Options(*upstream);
  seed.cache_dir = dir_ / "peer-cache";
  seed.files = {*RepoFilePath::Parse("README.md")};
  ASSERT_TRUE(Pull(std::move(seed)).ok());
  auto peer = Serve(dir_ / "peer-cache");
  std::string dead;
  {
    auto closed = Serve(dir_ / "peer-cache");
    dead = closed->base_url();
    closed->Stop();
  }
  const uint64_t upstream_before = upstream->stats().file_bytes_served;
  PullOptions o = Options(*upstream);
  o.tuning.min_split_size = 1ull << 40;  // exact byte accounting at the upstream (see below)
  o.peers = {dead, peer->base_url()};
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bytes_by_source.at(peer->base_url()), Up().File("README.md").size);
  EXPECT_EQ(upstream->stats().file_bytes_served - upstream_before,
            r->bytes_fetched - Up().File("README.md").size);
  ExpectComplete(*r, dir_ / "cache");
}

TEST_F(PullTest, CorruptPeerBytesAreFetchedAgainFromTheUpstream) {
  auto upstream = Serve(Up().cache_dir);
  auto peer = Serve(Up().cache_dir, {Rule(FaultRule::CorruptByte{5}, -1)});
  PullOptions o = Options(*upstream);
  o.peers = {peer->base_url()};
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_GT(r->bytes_by_source.at("upstream"), 0u);
}

TEST_F(PullTest, CancelledPullResumesWithoutFetchingFinishedCellsAgain) {
  // The big file stalls after 3 MB; cancel once that much is on disk, then pull again.
  const auto& big = Up().File(kWeights);
  auto stalling = Serve(
      Up().cache_dir, {Rule(FaultRule::StallAfterBytes{3'000'000, std::chrono::seconds(60)}, -1)});
  PullOptions o = Options(*stalling);
  o.tuning.connections = 1;  // one range per file: the stall holds the file at 3 MB
  o.tuning.stall_timeout = std::chrono::seconds(60);
  Puller puller(o);
  std::thread canceller([&] {
    const fs::path temp =
        dir_ / "cache" / "models--org--model" / "blobs" / (big.etag + ".resume.incomplete");
    for (int i = 0; i < 3000; ++i) {
      std::error_code ec;
      // The temp file has its full size from the start: watch the bytes served instead.
      if (stalling->stats().file_bytes_served >= 3'000'000 && fs::exists(temp, ec)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    puller.Cancel();
  });
  auto first = puller.Run(nullptr);
  canceller.join();
  ASSERT_EQ(first.status().code(), StatusCode::kCancelled) << first.status().ToString();
  stalling->Stop();

  auto server = Serve(Up().cache_dir);
  PullOptions again = Options(*server);
  auto r = Pull(std::move(again));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_GE(r->bytes_resumed, 2'500'000u);
  EXPECT_LE(server->stats().file_bytes_served + r->bytes_resumed,
            Up().model.bytes - Up().File("copy.json").size + (256u << 10));
}

// Where each connection is capped on its own, two connections are not enough: the engine adds
// workers while a step raises the rate, and the pull is still complete and verified.
TEST_F(PullTest, ConnectionsScaleUpWhereOneIsSlowerThanSeveral) {
  auto r = PullOverALimitedLink(2, 8);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_GT(r->connections, 2);
  EXPECT_LE(r->connections, 8);
}

// With max_connections equal to connections, the count never changes.
TEST_F(PullTest, NoScalingWhenTheMostIsTheStart) {
  auto r = PullOverALimitedLink(3, 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->connections, 3);
}

TEST_F(PullTest, TwoConcurrentPullsFetchEachBlobOnce) {
  auto server = Serve(Up().cache_dir);
  StatusOr<PullResult> a = InternalError("not run"), b = InternalError("not run");
  // No splits: a split abandons the bytes in flight on the shortened request, which the server
  // counts as served; here every served byte must be a byte of exactly one blob fetch.
  PullOptions o = Options(*server);
  o.tuning.min_split_size = 1ull << 40;
  std::thread ta([&] { a = Pull(o); });
  std::thread tb([&] { b = Pull(o); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(server->stats().file_bytes_served, Up().model.bytes - Up().File("copy.json").size);
  ExpectComplete(*a, dir_ / "cache");
}

}  // namespace
}  // namespace mc::downloader
