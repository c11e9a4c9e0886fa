#include "mc/scheduler/autoscale.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <utility>

namespace mc::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The fake clock: every time is a fixed instant plus milliseconds.
const TimePoint kNow = std::chrono::sys_days{std::chrono::year{2025} / 1 / 1};

TimePoint SecondsAgo(double seconds) {
  return kNow -
         std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(seconds));
}

WorkerInfo Worker(std::string id, WorkerPhase phase) { return {std::move(id), phase, {}}; }

WorkerInfo Idle(std::string id, double idle_for_seconds) {
  return {std::move(id), WorkerPhase::kIdle, SecondsAgo(idle_for_seconds)};
}

AutoscaleConfig QueueDelay(double seconds) {
  AutoscaleConfig c;
  c.scaler_type = ScalerType::kQueueDelay;
  c.scaler_value = seconds;
  return c;
}

AutoscaleConfig RequestCount(double per_worker) {
  AutoscaleConfig c;
  c.scaler_type = ScalerType::kRequestCount;
  c.scaler_value = per_worker;
  c.workers_max = 100;
  return c;
}

// `n` jobs queued at normal priority, the oldest enqueued `waited` seconds ago.
JobCounts Queued(uint32_t n, double waited = 0) {
  JobCounts j;
  j.in_queue = n;
  j.in_queue_normal = n;
  j.oldest_normal_enqueued = SecondsAgo(waited);
  return j;
}

TEST(AutoscaleTest, StartsWorkersToReachMin) {
  AutoscaleConfig c = QueueDelay(4);
  c.workers_min = 2;
  auto d = DecideScale(c, {}, {Worker("w1", WorkerPhase::kRunning)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 1u);
  EXPECT_THAT(d->stop, IsEmpty());
  EXPECT_THAT(d->reason, HasSubstr("workers_min"));
}

TEST(AutoscaleTest, NeverStartsAboveMax) {
  AutoscaleConfig c = RequestCount(1);
  c.workers_max = 3;
  auto d = DecideScale(c, Queued(10), {Worker("w1", WorkerPhase::kRunning)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 2u);
}

TEST(AutoscaleTest, StartsNothingAtMax) {
  AutoscaleConfig c = RequestCount(1);
  c.workers_max = 2;
  auto d = DecideScale(c, Queued(10),
                       {Worker("w1", WorkerPhase::kRunning), Worker("w2", WorkerPhase::kStarting)},
                       kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 0u);
  EXPECT_THAT(d->reason, HasSubstr("at workers_max 2"));
}

TEST(AutoscaleTest, StoppingWorkersDoNotCountTowardsMax) {
  AutoscaleConfig c = RequestCount(1);
  c.workers_max = 2;
  auto d = DecideScale(c, Queued(10),
                       {Worker("w1", WorkerPhase::kRunning), Worker("w2", WorkerPhase::kStopping)},
                       kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 1u);
}

TEST(AutoscaleTest, RequestCountTargetsCeilingOfJobsPerWorker) {
  // ceil((5 queued + 2 in progress) / 3) = 3 workers; 1 is running.
  JobCounts j = Queued(5);
  j.in_progress = 2;
  auto d = DecideScale(RequestCount(3), j, {Worker("w1", WorkerPhase::kRunning)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 2u);

  j.in_queue = j.in_queue_normal = 4;  // ceil(6 / 3) = 2
  d = DecideScale(RequestCount(3), j, {Worker("w1", WorkerPhase::kRunning)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 1u);
}

TEST(AutoscaleTest, QueueDelayDoesNotScaleBeforeTheDelay) {
  auto d = DecideScale(QueueDelay(4), Queued(3, 4.0), {Worker("w1", WorkerPhase::kRunning)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 0u);
}

TEST(AutoscaleTest, QueueDelayAddsOneWorkerOnceTheDelayHasPassed) {
  auto d = DecideScale(QueueDelay(4), Queued(3, 4.5), {Worker("w1", WorkerPhase::kRunning)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 1u);
  EXPECT_THAT(d->reason, HasSubstr("queue delay"));
}

TEST(AutoscaleTest, QueueDelayWaitsForAWorkerOnItsWay) {
  for (WorkerPhase phase : {WorkerPhase::kStarting, WorkerPhase::kInitializing}) {
    auto d = DecideScale(QueueDelay(4), Queued(3, 60),
                         {Worker("w1", WorkerPhase::kRunning), Worker("w2", phase)}, kNow);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->start, 0u);
  }
}

TEST(AutoscaleTest, ColdStartFromZeroStartsOneAtOnce) {
  for (AutoscaleConfig c : {QueueDelay(4), RequestCount(10)}) {
    auto d = DecideScale(c, Queued(1, 0), {Worker("old", WorkerPhase::kStopping)}, kNow);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->start, 1u);
  }
}

TEST(AutoscaleTest, LowPriorityJobsNeverScaleUp) {
  JobCounts j;
  j.in_queue = 50;  // all low priority, waiting for long
  j.oldest_normal_enqueued = SecondsAgo(3600);
  for (AutoscaleConfig c : {QueueDelay(4), RequestCount(1)}) {
    auto d = DecideScale(c, j, {}, kNow);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->start, 0u);
    d = DecideScale(c, j, {Worker("w1", WorkerPhase::kRunning)}, kNow);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->start, 0u);
  }
}

TEST(AutoscaleTest, StopsIdleWorkersLongestIdleFirst) {
  auto d =
      DecideScale(QueueDelay(4), {},
                  {Idle("recent", 6), Idle("oldest", 60), Worker("busy", WorkerPhase::kRunning),
                   Idle("middle", 30), Idle("fresh", 1)},
                  kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start, 0u);
  EXPECT_THAT(d->stop, ElementsAre("oldest", "middle", "recent"));
}

TEST(AutoscaleTest, KeepsIdleWorkersWithinTheIdleTimeout) {
  auto d = DecideScale(QueueDelay(4), {}, {Idle("a", 5), Idle("b", 0)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_THAT(d->stop, IsEmpty());
  EXPECT_THAT(d->reason, HasSubstr("steady"));
}

TEST(AutoscaleTest, NeverScalesDownBelowMin) {
  AutoscaleConfig c = QueueDelay(4);
  c.workers_min = 2;
  auto d = DecideScale(c, {}, {Idle("a", 100), Idle("b", 200), Idle("c", 300)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_THAT(d->stop, ElementsAre("c"));
}

TEST(AutoscaleTest, KeepsIdleWorkersTheQueueStillNeeds) {
  // Request count 2 per worker: 3 queued (low priority too) + 1 in progress need 2 workers.
  JobCounts j;
  j.in_queue = 3;
  j.in_progress = 1;
  auto d =
      DecideScale(RequestCount(2), j,
                  {Worker("busy", WorkerPhase::kRunning), Idle("a", 100), Idle("b", 200)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_THAT(d->stop, ElementsAre("b"));
}

TEST(AutoscaleTest, StopsIdleWorkersAboveALoweredMax) {
  AutoscaleConfig c = QueueDelay(4);
  c.workers_max = 1;
  auto d =
      DecideScale(c, {}, {Worker("busy", WorkerPhase::kRunning), Idle("a", 1), Idle("b", 2)}, kNow);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_THAT(d->stop, ElementsAre("b", "a"));
  EXPECT_THAT(d->reason, HasSubstr("above workers_max 1"));
}

TEST(AutoscaleTest, RejectsMinAboveMax) {
  AutoscaleConfig c = QueueDelay(4);
  c.workers_min = 4;
  c.workers_max = 3;
  EXPECT_EQ(DecideScale(c, {}, {}, kNow).status().code(), StatusCode::kInvalidArgument);
}

TEST(AutoscaleTest, RejectsZeroJobsPerWorker) {
  EXPECT_EQ(DecideScale(RequestCount(0), {}, {}, kNow).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(AutoscaleTest, RejectsDuplicateWorkerIds) {
  EXPECT_EQ(DecideScale(QueueDelay(4), {}, {Idle("a", 1), Idle("a", 2)}, kNow).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mc::scheduler
