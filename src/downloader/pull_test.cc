// Puller against real MirrorServers on loopback: full pulls, re-pulls, filters, gated repos,
// errors, injected faults (drops, corruption, 503, 429, stalls), peers, resume after a cancel and
// two concurrent pulls. Each test pulls into its own fresh cache; the upstream cache is shared.
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <thread>

#include "downloader/pull_fixture.h"
#include "mc/cache/blob_hasher.h"
#include "mc/cache/cache_scan.h"
#include "mc/common/clock.h"

namespace mc::downloader {
namespace {

namespace fs = std::filesystem;
using mirror::FaultRule;
TEST_F(PullTest, FullPullWritesAVerifiedSnapshotAndTheRefLast) {
  auto server = Serve(Up().cache_dir);
  auto r = Pull(Options(*server));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->commit, Up().model.commit);
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_EQ(ReadTestFile(dir_ / "cache" / "models--org--model" / "refs" / "main"), Up().model.commit.str());
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
  EXPECT_EQ(ReadTestFile(ok->snapshot_dir / "config.json"), "{\"gated\": true}\n");
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
  // The big file stalls after 3 MB; cancel once 2.5 MB of it are written, then pull again.
  auto stalling = Serve(
      Up().cache_dir, {Rule(FaultRule::StallAfterBytes{3'000'000, std::chrono::seconds(60)}, -1)});
  PullOptions o = Options(*stalling);
  o.tuning.connections = 1;  // one range per file: the stall holds the file at 3 MB
  o.tuning.stall_timeout = std::chrono::seconds(60);
  o.progress_interval = std::chrono::milliseconds(5);
  Puller puller(o);
  auto first = puller.Run([&](const PullEvent& e) {
    for (const PullEvent::FileProgress& f : e.files) {
      if (e.kind == PullEvent::Kind::kProgress && f.path == kWeights && f.done >= 2'500'000) {
        puller.Cancel();
      }
    }
  });
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

// Connection scaling on a FakeClock. The test ends each measuring window itself by advancing
// the clock once the engine waits for it, so no window depends on real time or throughput. Which
// rates pay is connection_scaling_test's; here every step pays (scale_gain -1), and what is
// checked is the engine's side: one window per scale_window of the clock, the workers doubled
// after each window but the warm-up, never past the most. The mirror paces every answer (2 MB/s
// each) only so that the transfers outlast the test's windows: a range must be left to split.
class PullScalingTest : public PullTest {
 protected:
  // Pulls with `start` connections (at most `most`) and ends `windows` windows while it runs.
  StatusOr<PullResult> PullEndingWindows(int start, int most, int windows) {
    auto server = Serve(Up().cache_dir, {}, 2'000'000);
    FakeClock clock;
    const std::chrono::milliseconds window(100);
    PullOptions o = Options(*server);
    o.clock = &clock;
    o.tuning.connections = start;
    o.tuning.max_connections = most;
    o.tuning.scale_window = window;
    o.tuning.scale_gain = -1;
    o.progress_interval = std::chrono::hours(1);
    StatusOr<PullResult> result = InternalError("not run");
    std::thread puller([&] { result = Pull(std::move(o)); });
    for (int i = 0; i < windows; ++i) {
      // Waiting on the clock: the progress ticker (its hour is far) and the scaling loop.
      EXPECT_TRUE(clock.AwaitParked(2)) << "window " << i << ": the engine did not wait";
      clock.Advance(window);
    }
    puller.join();
    return result;
  }
};

TEST_F(PullScalingTest, EachWindowAfterTheWarmUpDoublesTheConnectionsUpToTheMost) {
  auto r = PullEndingWindows(2, 8, 5);  // warm-up, 2 → 4, 4 → 8, then 8 stays
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->connections, 8);
  ExpectComplete(*r, dir_ / "cache");
}

TEST_F(PullScalingTest, OneWindowAfterTheWarmUpDoublesOnce) {
  auto r = PullEndingWindows(2, 8, 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->connections, 4);
  ExpectComplete(*r, dir_ / "cache");
}

// With max_connections equal to connections there is no scaling loop: the count never changes.
TEST_F(PullScalingTest, NoScalingWhenTheMostIsTheStart) {
  auto server = Serve(Up().cache_dir);
  FakeClock clock;
  PullOptions o = Options(*server);
  o.clock = &clock;
  o.tuning.connections = 3;
  o.tuning.max_connections = 3;
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->connections, 3);
}

TEST_F(PullTest, TwoConcurrentPullsFetchEachBlobOnce) {
  auto server = Serve(Up().cache_dir);
  StatusOr<PullResult> a = InternalError("not run"), b = InternalError("not run");
  // Splits included: no split throws away bytes requested, so every served byte is a byte of
  // exactly one blob fetch.
  PullOptions o = Options(*server);
  o.tuning.request_size = 512 << 10;
  std::thread ta([&] { a = Pull(o); });
  std::thread tb([&] { b = Pull(o); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(server->stats().file_bytes_served, Up().model.bytes - Up().File("copy.json").size);
  ExpectComplete(*a, dir_ / "cache");
}

// Bounded requests: a split takes only bytes past the request on the wire, so the origin serves
// each byte once (the mirror counts every byte a request asks for) although the connections that
// finish the small files split the two shards.
TEST_F(PullTest, SplitRangesNeverMakeTheOriginServeAByteTwice) {
  // 2 MB/s per answer: the shards are still in flight when the small files are done.
  auto server = Serve(Up().cache_dir, {}, 2'000'000);
  PullOptions o = Options(*server);
  o.tuning.request_size = 512 << 10;
  auto r = Pull(std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectComplete(*r, dir_ / "cache");
  EXPECT_EQ(server->stats().file_bytes_served, Up().model.bytes - Up().File("copy.json").size);
}

}  // namespace
}  // namespace mc::downloader
