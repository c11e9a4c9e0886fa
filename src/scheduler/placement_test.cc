#include "mc/scheduler/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <utility>

namespace mc::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kGB = 1'000'000'000;
constexpr double kMBps = 1'000'000;  // bytes per second
constexpr double kGBps = 1'000'000'000;

// A host with 8 free A100s, 1 TB of empty cache, 100 MB/s from the upstream and 1 GB/s from
// peers, lacking the whole 10 GB model.
HostState Host(std::string id) {
  HostState h;
  h.id = std::move(id);
  h.gpu_type = "A100";
  h.gpus_free = 8;
  h.model = ModelState::kMissing;
  h.missing_bytes = 10 * kGB;
  h.upstream_bandwidth = 100 * kMBps;
  h.peer_bandwidth = 1 * kGBps;
  h.capacity = 1000 * kGB;
  return h;
}

HostState Complete(HostState h) {
  h.model = ModelState::kComplete;
  h.missing_bytes = 0;
  return h;
}

HostState Downloading(HostState h, uint64_t remaining, double rate) {
  h.model = ModelState::kDownloading;
  h.missing_bytes = 0;
  h.remaining_bytes = remaining;
  h.download_rate = rate;
  return h;
}

HostState NoGpus(HostState h) {
  h.gpus_free = 0;
  return h;
}

PlacementRequest Request() {
  PlacementRequest r;
  r.gpu_type = "A100";
  r.gpus = 1;
  r.model_bytes = 10 * kGB;
  return r;
}

TEST(PlacementTest, CompleteHostWinsOverMissingHostWithFasterBandwidth) {
  HostState fast = Host("fast");
  fast.upstream_bandwidth = 100 * kGBps;  // 0.1 s for 10 GB, still slower than none
  auto p = PlaceWorker({fast, Complete(Host("holder"))}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "holder");
  EXPECT_EQ(p->source, ModelSource::kLocal);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 0);
  EXPECT_THAT(p->peers, IsEmpty());
}

TEST(PlacementTest, AddsQueueWaitToTimeToReady) {
  HostState busy = Complete(Host("busy"));
  busy.queue_wait_seconds = 200;  // longer than 10 GB from peers at 1 GB/s
  auto p = PlaceWorker({busy, Host("empty")}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "empty");
  EXPECT_EQ(p->source, ModelSource::kPeer);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 10);
}

TEST(PlacementTest, HostWithTheImageAndTheModelBeatsOneWithOnlyTheModel) {
  HostState model_only = Complete(Host("model-only"));
  model_only.image_seconds = 3;  // its image must be pulled first
  auto p = PlaceWorker({model_only, Complete(Host("both"))}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "both");
  EXPECT_DOUBLE_EQ(p->expected_seconds, 0);
}

TEST(PlacementTest, ImagePullOverlapsTheDownloadSoTheLongerOneCounts) {
  // 10 GB from peers at 1 GB/s = 10 s; an image pull of 4 s runs meanwhile, one of 30 s does not
  // fit in it.
  HostState short_pull = Host("short-pull");
  short_pull.image_seconds = 4;
  auto p = PlaceWorker({short_pull, Complete(Host("peer"))}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "peer");
  HostState long_pull = Complete(Host("long-pull"));
  long_pull.image_seconds = 30;
  HostState b = Host("b");
  b.image_seconds = 4;
  p = PlaceWorker({long_pull, b}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "b");
  EXPECT_DOUBLE_EQ(p->expected_seconds, 10);
}

TEST(PlacementTest, JoinsDownloadInFlight) {
  // 1 GB left at 200 MB/s = 5 s against 10 GB at 100 MB/s = 100 s.
  auto p = PlaceWorker({Host("cold"), Downloading(Host("warm"), 1 * kGB, 200 * kMBps)}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "warm");
  EXPECT_EQ(p->source, ModelSource::kJoin);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 5);
  EXPECT_THAT(p->reason, HasSubstr("joins the download"));
}

TEST(PlacementTest, DownloadWithUnknownRateUsesUpstreamEstimate) {
  auto p = PlaceWorker({Downloading(Host("warm"), 2 * kGB, 0)}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, ModelSource::kJoin);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 20);  // 2 GB at the upstream's 100 MB/s
}

TEST(PlacementTest, FetchesFromPeersWhenAnotherHostHoldsTheModel) {
  // The holder has no free GPU but can still serve blobs.
  auto p = PlaceWorker({NoGpus(Complete(Host("holder"))), Host("new")}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "new");
  EXPECT_EQ(p->source, ModelSource::kPeer);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 10);  // 10 GB at 1 GB/s
  EXPECT_THAT(p->peers, ElementsAre("holder"));
}

TEST(PlacementTest, FetchesFromUpstreamWhenNoHostHoldsTheModel) {
  auto p = PlaceWorker({Host("a")}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, ModelSource::kUpstream);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 100);  // 10 GB at 100 MB/s
  EXPECT_THAT(p->peers, IsEmpty());
}

TEST(PlacementTest, FetchesFromUpstreamWhenPeersAreNotAllowed) {
  PlacementRequest r = Request();
  r.allow_peers = false;
  auto p = PlaceWorker({NoGpus(Complete(Host("holder"))), Host("new")}, r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, ModelSource::kUpstream);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 100);
  EXPECT_THAT(p->peers, IsEmpty());
}

TEST(PlacementTest, FetchesFromUpstreamWhenItIsFasterThanPeers) {
  HostState h = Host("new");
  h.upstream_bandwidth = 2 * kGBps;
  auto p = PlaceWorker({NoGpus(Complete(Host("holder"))), h}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, ModelSource::kUpstream);
  EXPECT_DOUBLE_EQ(p->expected_seconds, 5);
  EXPECT_THAT(p->peers, IsEmpty());  // the downloader would try them first
}

TEST(PlacementTest, NamesAtMostThreePeersLeastBusyFirst) {
  std::vector<HostState> hosts = {Host("new")};
  for (auto [id, running] : {std::pair{"p1", 3u}, {"p2", 1u}, {"p3", 0u}, {"p4", 1u}}) {
    HostState h = NoGpus(Complete(Host(id)));
    h.running_workers = running;
    hosts.push_back(h);
  }
  auto p = PlaceWorker(hosts, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_THAT(p->peers, ElementsAre("p3", "p2", "p4"));
}

TEST(PlacementTest, SkipsHostsWithOtherGpuTypes) {
  HostState h100 = Complete(Host("h100"));
  h100.gpu_type = "H100";
  auto p = PlaceWorker({h100, Host("a100")}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "a100");
}

TEST(PlacementTest, EmptyGpuTypeMatchesAnyHost) {
  HostState h100 = Complete(Host("h100"));
  h100.gpu_type = "H100";
  PlacementRequest r = Request();
  r.gpu_type = "";
  auto p = PlaceWorker({h100, Host("a100")}, r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "h100");
}

TEST(PlacementTest, SkipsHostsWithTooFewFreeGpus) {
  HostState one = Complete(Host("one"));
  one.gpus_free = 1;
  PlacementRequest r = Request();
  r.gpus = 2;
  auto p = PlaceWorker({one, Host("eight")}, r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "eight");
}

TEST(PlacementTest, ExcludesHostWhereModelDoesNotFitAfterEviction) {
  // 20 GB cache, 15 used, 2 reserved, 6 freeable: room for 9 GB, the model needs 10.
  HostState full = Host("full");
  full.upstream_bandwidth = 10 * kGBps;
  full.capacity = 20 * kGB;
  full.used_bytes = 15 * kGB;
  full.reserved_bytes = 2 * kGB;
  full.freeable_bytes = 6 * kGB;
  auto p = PlaceWorker({full, Host("roomy")}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "roomy");

  full.freeable_bytes = 7 * kGB;  // now exactly 10 GB fit
  p = PlaceWorker({full, Host("roomy")}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "full");
}

TEST(PlacementTest, BreaksTiesWithinOneMillisecondByFewerRunningWorkers) {
  HostState a = Complete(Host("a"));
  a.running_workers = 2;
  HostState b = Complete(Host("b"));
  b.running_workers = 1;
  b.queue_wait_seconds = 0.0009;  // within 1 ms of a: still a tie
  auto p = PlaceWorker({a, b}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "b");
}

TEST(PlacementTest, BreaksTiesInRunningWorkersById) {
  HostState a = Complete(Host("a"));
  HostState b = Complete(Host("b"));
  auto p = PlaceWorker({b, a}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "a");
}

TEST(PlacementTest, FasterHostBeyondOneMillisecondWinsOverLessBusyOne) {
  HostState busy = Complete(Host("busy"));
  busy.running_workers = 5;
  HostState idle = Complete(Host("idle"));
  idle.queue_wait_seconds = 0.002;
  auto p = PlaceWorker({idle, busy}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "busy");
}

TEST(PlacementTest, NoHostFitsSaysWhyPerReason) {
  HostState h100 = Host("h100");
  h100.gpu_type = "H100";
  HostState busy1 = Host("busy1");
  busy1.gpus_free = 1;
  HostState busy2 = busy1;
  busy2.id = "busy2";
  HostState full = Host("full");
  full.capacity = 5 * kGB;
  HostState offline = Host("offline");
  offline.upstream_bandwidth = 0;
  PlacementRequest r = Request();
  r.gpus = 2;
  r.model_bytes = 14'200'000'000;
  auto p = PlaceWorker({h100, busy1, busy2, full, offline}, r);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(p.status().message(),
            "no host has 2 free GPUs of type A100 and room for 14.2 GB: 1 host has other GPU "
            "types, 2 hosts have fewer than 2 free GPUs, 1 host lacks disk for 14.2 GB, 1 host "
            "has no bandwidth to download from");
}

TEST(PlacementTest, NoHostsIsResourceExhausted) {
  auto p = PlaceWorker({}, Request());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(p.status().message(), HasSubstr("there are no hosts"));
}

TEST(PlacementTest, ResultDoesNotDependOnHostOrder) {
  std::vector<HostState> hosts = {Host("d"), Complete(Host("c")), Host("b"), Complete(Host("a"))};
  auto first = PlaceWorker(hosts, Request());
  std::reverse(hosts.begin(), hosts.end());
  auto second = PlaceWorker(hosts, Request());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->host_id, "a");
  EXPECT_EQ(second->host_id, "a");
}

TEST(PlacementTest, RejectsDuplicateHostIds) {
  auto p = PlaceWorker({Host("a"), Host("a")}, Request());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
}

TEST(PlacementTest, RejectsNegativeOrNonFiniteBandwidth) {
  HostState h = Host("a");
  h.peer_bandwidth = -1;
  EXPECT_EQ(PlaceWorker({h}, Request()).status().code(), StatusCode::kInvalidArgument);
  h.peer_bandwidth = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(PlaceWorker({h}, Request()).status().code(), StatusCode::kInvalidArgument);
  h = Host("a");
  h.image_seconds = -1;
  EXPECT_EQ(PlaceWorker({h}, Request()).status().code(), StatusCode::kInvalidArgument);
}

TEST(PlacementTest, NamesLargestMissingBytesWhenModelSizeIsUnknown) {
  HostState small = Host("small");
  small.capacity = 5 * kGB;
  HostState tiny = Host("tiny");
  tiny.capacity = 1 * kGB;
  tiny.missing_bytes = 7 * kGB;  // shares 3 GB with a revision it holds
  PlacementRequest r = Request();
  r.model_bytes = 0;
  auto p = PlaceWorker({small, tiny}, r);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "no host has 1 free GPU of type A100 and room for 10.0 GB: 2 hosts lack disk for "
            "10.0 GB");
}

TEST(PlacementPolicyTest, LeastLoadedIgnoresTheModelAndTakesTheLeastBusyHost) {
  HostState busy = Complete(Host("a"));
  busy.running_workers = 3;
  HostState idle = Host("b");
  PlacementRequest r = Request();
  r.policy = PlacementPolicy::kLeastLoaded;
  auto p = PlaceWorker({busy, idle}, r);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "b");
  EXPECT_EQ(p->source, ModelSource::kPeer);
}

TEST(PlacementPolicyTest, LeastLoadedBreaksTiesByMoreFreeGpus) {
  HostState a = Host("a");
  a.gpus_free = 2;
  HostState b = Host("b");
  b.gpus_free = 5;
  PlacementRequest r = Request();
  r.policy = PlacementPolicy::kLeastLoaded;
  auto p = PlaceWorker({a, b}, r);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->host_id, "b");
}

TEST(PlacementPolicyTest, RandomDependsOnTheSeedButNotOnTheInputOrder) {
  std::vector<HostState> hosts;
  for (int i = 0; i < 8; ++i) hosts.push_back(Host("h" + std::to_string(i)));
  std::vector<HostState> reversed(hosts.rbegin(), hosts.rend());
  PlacementRequest r = Request();
  r.policy = PlacementPolicy::kRandom;
  std::set<std::string> chosen;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    r.random_seed = seed;
    auto a = PlaceWorker(hosts, r);
    auto b = PlaceWorker(reversed, r);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->host_id, b->host_id);
    chosen.insert(a->host_id);
  }
  EXPECT_GT(chosen.size(), 4u);  // the seeds spread over the hosts
}

TEST(PlacementPolicyTest, RandomOnlyChoosesHostsThatFit) {
  PlacementRequest r = Request();
  r.policy = PlacementPolicy::kRandom;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    r.random_seed = seed;
    auto p = PlaceWorker({NoGpus(Host("a")), Host("b"), NoGpus(Host("c"))}, r);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->host_id, "b");
  }
}

TEST(PlacementPolicyTest, NamesParseBackAndUnknownNamesAreRefused) {
  for (PlacementPolicy p : {PlacementPolicy::kTimeToReady, PlacementPolicy::kLeastLoaded,
                            PlacementPolicy::kRandom}) {
    auto parsed = ParsePlacementPolicy(PlacementPolicyName(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = ParsePlacementPolicy("fastest");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("ttr, least-loaded or random"));
}

TEST(PlacementTest, MeasuredRatesReplaceTheDefaults) {
  HostState h = Host("a");
  ApplyMeasured(h, MeasuredHost{.upstream_bytes_per_second = 40 * kMBps,
                                .peer_bytes_per_second = 300 * kMBps, .bytes_queued = 0},
                100 * kMBps, 1 * kGBps);
  EXPECT_EQ(h.upstream_bandwidth, 40 * kMBps);
  EXPECT_EQ(h.peer_bandwidth, 300 * kMBps);
  EXPECT_EQ(h.queue_wait_seconds, 0);
}

TEST(PlacementTest, UnmeasuredRatesFallBackToTheDefaults) {
  HostState h = Host("a");
  ApplyMeasured(h, MeasuredHost{}, 100 * kMBps, 1 * kGBps);
  EXPECT_EQ(h.upstream_bandwidth, 100 * kMBps);
  EXPECT_EQ(h.peer_bandwidth, 1 * kGBps);
}

TEST(PlacementTest, DownloadsInFlightAddTheirTimeToTheQueueWait) {
  HostState h = Host("a");
  h.queue_wait_seconds = 1;
  ApplyMeasured(h, MeasuredHost{.upstream_bytes_per_second = 50 * kMBps,
                                .peer_bytes_per_second = 0, .bytes_queued = 5 * kGB},
                100 * kMBps, 1 * kGBps);
  EXPECT_DOUBLE_EQ(h.queue_wait_seconds, 1 + 100);  // 5 GB at 50 MB/s
}

TEST(PlacementTest, HostThatMeasuredAFasterUpstreamWinsOverTheDefaultEstimate) {
  HostState slow = Host("a"), fast = Host("b");
  ApplyMeasured(slow, MeasuredHost{.upstream_bytes_per_second = 20 * kMBps}, 100 * kMBps, 0);
  ApplyMeasured(fast, MeasuredHost{.upstream_bytes_per_second = 400 * kMBps}, 100 * kMBps, 0);
  auto p = PlaceWorker({slow, fast}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "b");
  EXPECT_DOUBLE_EQ(p->expected_seconds, 10 * kGB / (400 * kMBps));
}

TEST(PlacementTest, BusyDownloadLinkLosesToAnIdleHostOfTheSameRate) {
  HostState busy = Host("a"), idle = Host("b");
  ApplyMeasured(busy, MeasuredHost{.upstream_bytes_per_second = 100 * kMBps, .bytes_queued = 20 * kGB},
                100 * kMBps, 0);
  ApplyMeasured(idle, MeasuredHost{.upstream_bytes_per_second = 100 * kMBps}, 100 * kMBps, 0);
  auto p = PlaceWorker({busy, idle}, Request());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->host_id, "b");
}

}  // namespace
}  // namespace mc::scheduler
