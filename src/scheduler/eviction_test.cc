#include "mc/scheduler/eviction.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <utility>

namespace mc::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The fake clock: every time is a fixed instant plus whole minutes.
const TimePoint kT0 = std::chrono::sys_days{std::chrono::year{2025} / 1 / 1};

SnapshotState Snap(std::string id, std::vector<uint32_t> blobs, int minutes_after_t0) {
  SnapshotState s;
  s.id = std::move(id);
  s.blobs = std::move(blobs);
  s.last_use = kT0 + std::chrono::minutes(minutes_after_t0);
  return s;
}

SnapshotState Pinned(SnapshotState s) {
  s.pinned = true;
  return s;
}

SnapshotState Partial(SnapshotState s) {
  s.partial = true;
  return s;
}

// A cache of 100 bytes (watermarks 0.9 and 0.8, so eviction starts above 90 and goes down to 80)
// holding every blob in `blobs`, nothing reserved.
Disk Disk100(std::vector<uint64_t> blobs) {
  Disk d;
  d.capacity = 100;
  d.used_bytes = std::accumulate(blobs.begin(), blobs.end(), uint64_t{0});
  d.blobs = std::move(blobs);
  return d;
}

TEST(EvictionTest, EvictsLeastRecentlyUsedFirst) {
  // used 80 + need 40 = 120: 40 bytes must go, two snapshots.
  Disk disk = Disk100({20, 20, 20, 20});
  std::vector<SnapshotState> snaps = {Snap("c", {0}, 0), Snap("a", {1}, 2), Snap("d", {2}, 1),
                                      Snap("b", {3}, 3)};
  auto plan = PlanEviction(snaps, disk, 40);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("c", "d"));
  EXPECT_EQ(plan->bytes_freed, 40u);
  EXPECT_EQ(plan->used_after, 40u);
  EXPECT_TRUE(plan->triggered);
}

TEST(EvictionTest, BreaksTiesInLastUseById) {
  Disk disk = Disk100({20, 20, 20, 20});
  std::vector<SnapshotState> snaps = {Snap("c", {0}, 0), Snap("a", {1}, 0), Snap("d", {2}, 0),
                                      Snap("b", {3}, 0)};
  auto plan = PlanEviction(snaps, disk, 40);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a", "b"));
}

TEST(EvictionTest, NeverEvictsPinnedSnapshot) {
  Disk disk = Disk100({20, 20, 20, 20});
  std::vector<SnapshotState> snaps = {Pinned(Snap("oldest", {0}, 0)), Snap("a", {1}, 1),
                                      Snap("b", {2}, 2), Snap("c", {3}, 3)};
  auto plan = PlanEviction(snaps, disk, 40);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a", "b"));
}

TEST(EvictionTest, NeverEvictsPartialSnapshotAndKeepsItsBlobs) {
  // Blob 0 (30 bytes) is shared by the partial download and the oldest complete snapshot.
  Disk disk = Disk100({30, 10, 20, 20});
  std::vector<SnapshotState> snaps = {Partial(Snap("partial", {0}, 0)), Snap("a", {0, 1}, 1),
                                      Snap("b", {2}, 2), Snap("c", {3}, 3)};
  auto plan = PlanEviction(snaps, disk, 15);  // 95: shed 15
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a", "b"));
  EXPECT_EQ(plan->bytes_freed, 30u);  // 10 + 20; the shared 30 stays for the partial
}

TEST(EvictionTest, EvictingOneOfTwoSnapshotsSharingABlobKeepsTheBlob) {
  // a and b share blob 0 (30 bytes); a alone also holds blob 1 (20).
  Disk disk = Disk100({30, 20, 10, 20});
  std::vector<SnapshotState> snaps = {Snap("a", {0, 1}, 0), Snap("b", {0, 2}, 1),
                                      Snap("c", {3}, 2)};
  auto plan = PlanEviction(snaps, disk, 12);  // 92: shed 12
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a"));
  EXPECT_EQ(plan->bytes_freed, 20u);
}

TEST(EvictionTest, SharedBlobIsFreedOnceWhenBothSnapshotsGo) {
  Disk disk = Disk100({30, 10, 10, 30});
  std::vector<SnapshotState> snaps = {Snap("a", {0, 1}, 0), Snap("b", {0, 2}, 1),
                                      Snap("c", {3}, 2)};
  auto plan = PlanEviction(snaps, disk, 40);  // 120: shed 40
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a", "b"));
  EXPECT_EQ(plan->bytes_freed, 50u);  // 10 + 10 + the shared 30 once
  EXPECT_EQ(plan->used_after, 30u);
}

TEST(EvictionTest, EvictsNothingAtOrBelowHighWatermark) {
  Disk disk = Disk100({20, 20, 20, 20});
  std::vector<SnapshotState> snaps = {Snap("a", {0}, 0), Snap("b", {1}, 1), Snap("c", {2}, 2),
                                      Snap("d", {3}, 3)};
  auto plan = PlanEviction(snaps, disk, 10);  // 90 is not above 0.9 × 100
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_FALSE(plan->triggered);
  EXPECT_THAT(plan->evict, IsEmpty());
  EXPECT_EQ(plan->bytes_freed, 0u);
  EXPECT_EQ(plan->used_after, 80u);
}

TEST(EvictionTest, OnceTriggeredEvictsDownToLowWatermarkNotJustBelowHigh) {
  Disk disk = Disk100({10, 10, 10, 10, 10, 10, 10, 10, 10});
  std::vector<SnapshotState> snaps;
  for (uint32_t i = 0; i < 9; ++i) snaps.push_back(Snap("s" + std::to_string(i), {i}, i));
  // 95: one eviction would reach 85 (below high), two reach 75 (below low).
  auto plan = PlanEviction(snaps, disk, 5);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("s0", "s1"));
  EXPECT_EQ(plan->used_after, 70u);
}

TEST(EvictionTest, PeriodicCheckWithZeroNeedEvictsDownToLowWatermark) {
  Disk disk = Disk100({40, 30, 25});  // 95 on disk
  std::vector<SnapshotState> snaps = {Snap("a", {0}, 2), Snap("b", {1}, 0), Snap("c", {2}, 1)};
  auto plan = PlanEviction(snaps, disk, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->triggered);
  EXPECT_THAT(plan->evict, ElementsAre("b"));
  EXPECT_EQ(plan->used_after, 65u);
}

TEST(EvictionTest, ReservedBytesCountTowardTheTrigger) {
  Disk disk = Disk100({30, 30});
  disk.reserved_bytes = 25;  // 60 + 25 + 10 = 95; without the reservation 70
  std::vector<SnapshotState> snaps = {Snap("a", {0}, 0), Snap("b", {1}, 1)};
  auto plan = PlanEviction(snaps, disk, 10);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->triggered);
  EXPECT_THAT(plan->evict, ElementsAre("a"));
}

TEST(EvictionTest, ReservedBytesCountTowardFitting) {
  Disk disk = Disk100({60});
  disk.reserved_bytes = 35;  // 60 pinned + 35 + 10 = 105 > 100
  std::vector<SnapshotState> snaps = {Pinned(Snap("a", {0}, 0))};
  auto plan = PlanEviction(snaps, disk, 10);
  EXPECT_EQ(plan.status().code(), StatusCode::kResourceExhausted);
}

TEST(EvictionTest, NeedAboveCapacityIsResourceExhausted) {
  Disk disk = Disk100({});
  auto plan = PlanEviction({}, disk, 101);
  EXPECT_EQ(plan.status().code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(), HasSubstr("need 101 B"));
  EXPECT_THAT(plan.status().message(), HasSubstr("capacity is only 100 B"));
}

TEST(EvictionTest, NeedThatCannotFitAfterEvictingAllIsResourceExhaustedWithTheNumbers) {
  // The example of the header: 3.1 GB evictable, 14.9 GB pinned, 2 GB reserved, need 12 GB.
  constexpr uint64_t kGB = 1'000'000'000;
  Disk disk;
  disk.capacity = 20 * kGB;
  disk.blobs = {3'100'000'000, 14'900'000'000};
  disk.used_bytes = 18 * kGB;
  disk.reserved_bytes = 2 * kGB;
  std::vector<SnapshotState> snaps = {Snap("old", {0}, 0), Pinned(Snap("live", {1}, 1))};
  auto plan = PlanEviction(snaps, disk, 12 * kGB);
  ASSERT_FALSE(plan.ok());  // no plan: the caller changes nothing
  EXPECT_EQ(plan.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(plan.status().message(),
            "need 12.0 GB but only 3.1 GB can be freed: capacity 20.0 GB, used 18.0 GB, "
            "reserved 2.0 GB, pinned or partial 14.9 GB");
}

TEST(EvictionTest, NeedThatFitsOnlyByEvictingEverythingSucceeds) {
  Disk disk = Disk100({20, 20, 20, 20});
  std::vector<SnapshotState> snaps = {Snap("a", {0}, 0), Snap("b", {1}, 1), Snap("c", {2}, 2),
                                      Snap("d", {3}, 3)};
  auto plan = PlanEviction(snaps, disk, 100);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(plan->used_after, 0u);
}

TEST(EvictionTest, SucceedsAboveLowWatermarkWhenTheNeedFitsTheCapacity) {
  Disk disk = Disk100({75, 10});
  std::vector<SnapshotState> snaps = {Pinned(Snap("live", {0}, 0)), Snap("a", {1}, 1)};
  auto plan = PlanEviction(snaps, disk, 10);  // 95, at best 85: above 80 but fits 100
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a"));
  EXPECT_EQ(plan->used_after, 75u);
}

TEST(EvictionTest, DoesNotEvictSnapshotsThatWouldFreeNothing) {
  // "shares" is evictable but its only blob is held by the pinned snapshot.
  Disk disk = Disk100({70, 10});
  std::vector<SnapshotState> snaps = {Pinned(Snap("live", {0}, 5)), Snap("old", {1}, 0),
                                      Snap("shares", {0}, 1)};
  auto plan = PlanEviction(snaps, disk, 15);  // 95, at best 85
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("old"));
}

TEST(EvictionTest, DuplicateBlobIndexWithinASnapshotCountsOnce) {
  Disk disk = Disk100({20, 30, 10, 20});
  std::vector<SnapshotState> snaps = {Snap("a", {0, 0, 1, 0}, 0), Snap("b", {1, 2, 2}, 1),
                                      Snap("c", {3}, 2)};
  auto plan = PlanEviction(snaps, disk, 12);  // 92: shed 12
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("a"));
  EXPECT_EQ(plan->bytes_freed, 20u);  // blob 0 once; blob 1 stays for b
}

TEST(EvictionTest, BlobIndexOutOfRangeIsInvalidArgument) {
  Disk disk = Disk100({10, 10});
  std::vector<SnapshotState> snaps = {Snap("a", {0}, 0), Snap("org/b@1", {1, 2}, 1)};
  auto plan = PlanEviction(snaps, disk, 0);
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("org/b@1 references blob 2"));
}

TEST(EvictionTest, BadWatermarksAreInvalidArgument) {
  const std::pair<double, double> kBad[] = {{0, 0.9},    {-0.1, 0.9}, {0.95, 0.9},
                                            {0.8, 1.01}, {NAN, 0.9},  {0.8, NAN}};
  for (auto [low, high] : kBad) {
    SCOPED_TRACE(testing::Message() << "low " << low << " high " << high);
    Disk disk = Disk100({});
    disk.low_watermark = low;
    disk.high_watermark = high;
    EXPECT_EQ(PlanEviction({}, disk, 0).status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(EvictionTest, EvictableBlobsLargerThanUsedAreInvalidArgument) {
  Disk disk = Disk100({50, 50});
  disk.used_bytes = 60;  // the inventory says 100 bytes of complete blobs
  std::vector<SnapshotState> snaps = {Snap("a", {0}, 0), Snap("b", {1}, 1)};
  EXPECT_EQ(PlanEviction(snaps, disk, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(EvictionTest, OverflowingByteCountsAreInvalidArgument) {
  Disk disk = Disk100({});
  disk.used_bytes = UINT64_MAX - 5;
  disk.reserved_bytes = 10;
  EXPECT_EQ(PlanEviction({}, disk, 0).status().code(), StatusCode::kInvalidArgument);
}

SnapshotState Used(SnapshotState s, uint32_t hits) {
  s.hits = hits;
  return s;
}

TEST(GdsfEvictionTest, KeepsTheFrequentlyUsedSnapshotThatLruWouldEvict) {
  // "a" is the oldest but used 5 times; "b" newer, used once. LRU evicts "a", GDSF "b".
  Disk disk = Disk100({40, 40});
  std::vector<SnapshotState> snaps = {Used(Snap("a", {0}, 0), 5), Used(Snap("b", {1}, 1), 1)};
  auto lru = PlanEviction(snaps, disk, 20);
  ASSERT_TRUE(lru.ok());
  EXPECT_THAT(lru->evict, ElementsAre("a"));
  disk.policy = EvictionPolicy::kGdsf;
  auto gdsf = PlanEviction(snaps, disk, 20);
  ASSERT_TRUE(gdsf.ok()) << gdsf.status().ToString();
  EXPECT_THAT(gdsf->evict, ElementsAre("b"));
}

TEST(GdsfEvictionTest, PrefersToEvictTheLargerSnapshotAtEqualUse) {
  // Equal hits: the fixed cost per download makes a small snapshot worth more per byte.
  Disk disk = Disk100({10, 70});
  disk.policy = EvictionPolicy::kGdsf;
  disk.gdsf_fixed_cost_bytes = 50;
  std::vector<SnapshotState> snaps = {Snap("small", {0}, 0), Snap("large", {1}, 1)};
  auto plan = PlanEviction(snaps, disk, 15);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->evict, ElementsAre("large"));
}

TEST(GdsfEvictionTest, RaisesTheInflationToTheLastVictimsPriority) {
  Disk disk = Disk100({45, 45});
  disk.policy = EvictionPolicy::kGdsf;
  disk.gdsf_fixed_cost_bytes = 45;
  disk.gdsf_inflation = 1;
  std::vector<SnapshotState> snaps = {Used(Snap("a", {0}, 0), 1), Used(Snap("b", {1}, 1), 3)};
  auto plan = PlanEviction(snaps, disk, 5);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->evict, ElementsAre("a"));
  EXPECT_DOUBLE_EQ(plan->gdsf_inflation, 1 + 1 * (45.0 + 45) / 45);  // L + hits × cost / size
}

TEST(GdsfEvictionTest, KeepsTheInflationWhenNothingIsEvicted) {
  Disk disk = Disk100({10});
  disk.policy = EvictionPolicy::kGdsf;
  disk.gdsf_inflation = 7;
  auto plan = PlanEviction({Snap("a", {0}, 0)}, disk, 0);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->triggered);
  EXPECT_DOUBLE_EQ(plan->gdsf_inflation, 7);
}

SnapshotState Queued(SnapshotState s, bool main, uint64_t seq, uint32_t hits) {
  s.main_queue = main;
  s.queue_seq = seq;
  s.hits = hits;
  return s;
}

TEST(S3FifoEvictionTest, EvictsOneHitWondersFromTheSmallQueueFirst) {
  // Small queue limit 10% of 100 = 10 bytes; it holds 40, so its head goes first even though the
  // main queue's snapshot is older.
  Disk disk = Disk100({20, 20, 40});
  disk.policy = EvictionPolicy::kS3Fifo;
  std::vector<SnapshotState> snaps = {Queued(Snap("new1", {0}, 5), false, 1, 1),
                                      Queued(Snap("new2", {1}, 6), false, 2, 1),
                                      Queued(Snap("old", {2}, 0), true, 0, 0)};
  auto plan = PlanEviction(snaps, disk, 20);  // 80 + 20 = 100 > 90; down to 80: 20 to free
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_THAT(plan->evict, ElementsAre("new1"));
  EXPECT_THAT(plan->requeue, IsEmpty());
}

TEST(S3FifoEvictionTest, PromotesASmallQueueSnapshotUsedAgain) {
  Disk disk = Disk100({20, 20, 40});
  disk.policy = EvictionPolicy::kS3Fifo;
  std::vector<SnapshotState> snaps = {Queued(Snap("reused", {0}, 5), false, 1, 2),
                                      Queued(Snap("once", {1}, 6), false, 2, 0),
                                      Queued(Snap("old", {2}, 0), true, 0, 0)};
  auto plan = PlanEviction(snaps, disk, 20);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->evict, ElementsAre("once"));
  ASSERT_EQ(plan->requeue.size(), 1u);
  EXPECT_EQ(plan->requeue[0].id, "reused");
  EXPECT_EQ(plan->requeue[0].hits, 1u);
}

TEST(S3FifoEvictionTest, GivesMainQueueSnapshotsWithHitsASecondChance) {
  Disk disk = Disk100({40, 40});
  disk.policy = EvictionPolicy::kS3Fifo;
  std::vector<SnapshotState> snaps = {Queued(Snap("hot", {0}, 0), true, 1, 2),
                                      Queued(Snap("cold", {1}, 1), true, 2, 1)};
  auto plan = PlanEviction(snaps, disk, 20);
  ASSERT_TRUE(plan.ok());
  EXPECT_THAT(plan->evict, ElementsAre("cold"));
  ASSERT_EQ(plan->requeue.size(), 1u);
  EXPECT_EQ(plan->requeue[0].id, "hot");
  EXPECT_EQ(plan->requeue[0].hits, 1u);
}

TEST(EvictionPolicyTest, NeverEvictsPinnedSnapshotsWhateverThePolicy) {
  for (EvictionPolicy p : {EvictionPolicy::kLru, EvictionPolicy::kGdsf, EvictionPolicy::kS3Fifo}) {
    Disk disk = Disk100({40, 40});
    disk.policy = p;
    std::vector<SnapshotState> snaps = {Pinned(Snap("pinned", {0}, 0)), Snap("free", {1}, 1)};
    auto plan = PlanEviction(snaps, disk, 20);
    ASSERT_TRUE(plan.ok()) << EvictionPolicyName(p);
    EXPECT_THAT(plan->evict, ElementsAre("free")) << EvictionPolicyName(p);
  }
}

TEST(EvictionPolicyTest, NamesParseBackAndUnknownNamesAreRefused) {
  for (EvictionPolicy p : {EvictionPolicy::kLru, EvictionPolicy::kGdsf, EvictionPolicy::kS3Fifo}) {
    auto parsed = ParseEvictionPolicy(EvictionPolicyName(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  auto bad = ParseEvictionPolicy("arc");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("lru, gdsf or s3fifo"));
}

}  // namespace
}  // namespace mc::scheduler
