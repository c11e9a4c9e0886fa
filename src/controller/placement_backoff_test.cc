// The back-off of an endpoint's placements after failed workers, on a FakeClock's monotonic time.
#include "controller/placement_backoff.h"

#include <gtest/gtest.h>

#include "mc/common/clock.h"

namespace mc::controller {
namespace {

using namespace std::chrono_literals;

PlacementFailure Exit(int code) {
  return PlacementFailure{.worker_id = "w-1", .reason = "exited", .exit_code = code,
                          .log_tail = "boom", .at_ms = 1};
}

TEST(PlacementBackoffTest, DelayDoublesFromOneSecondUpToFiveMinutes) {
  const BackoffPolicy p;
  EXPECT_EQ(BackoffDelay(p, 0), 0ms);
  EXPECT_EQ(BackoffDelay(p, 1), 1s);
  EXPECT_EQ(BackoffDelay(p, 2), 2s);
  EXPECT_EQ(BackoffDelay(p, 5), 16s);
  EXPECT_EQ(BackoffDelay(p, 9), 256s);
  EXPECT_EQ(BackoffDelay(p, 10), 300s);
  EXPECT_EQ(BackoffDelay(p, 1'000'000), 300s);
}

TEST(PlacementBackoffTest, WithoutFailuresEveryWantedStartIsPlaced) {
  FakeClock clock;
  PlacementBackoff b;
  EXPECT_FALSE(b.backing_off());
  EXPECT_EQ(b.Starts(clock.Monotonic(), 3, 2), 3u);
}

TEST(PlacementBackoffTest, AfterAFailureNothingIsPlacedUntilTheDelayHasPassed) {
  FakeClock clock;
  PlacementBackoff b;
  b.Failed(clock.Monotonic(), Exit(2));
  EXPECT_EQ(b.Starts(clock.Monotonic(), 1, 0), 0u);
  clock.Advance(999ms);
  EXPECT_EQ(b.Starts(clock.Monotonic(), 1, 0), 0u);
  clock.Advance(1ms);
  EXPECT_EQ(b.Starts(clock.Monotonic(), 1, 0), 1u);
  b.Failed(clock.Monotonic(), Exit(2));
  EXPECT_EQ(b.retry_at() - clock.Monotonic(), 2s);
  EXPECT_EQ(b.failures(), 2);
}

TEST(PlacementBackoffTest, WhileBackingOffOneWorkerAtATimeIsPlaced) {
  FakeClock clock;
  PlacementBackoff b;
  b.Failed(clock.Monotonic(), Exit(2));
  clock.Advance(1s);
  EXPECT_EQ(b.Starts(clock.Monotonic(), 4, 0), 1u);  // one probe, not four
  EXPECT_EQ(b.Starts(clock.Monotonic(), 4, 1), 0u);  // not while the probe is on its way
}

TEST(PlacementBackoffTest, AReadyWorkerEndsTheBackoff) {
  FakeClock clock;
  PlacementBackoff b;
  for (int i = 0; i < 5; ++i) b.Failed(clock.Monotonic(), Exit(1));
  b.Reset();
  EXPECT_FALSE(b.backing_off());
  EXPECT_EQ(b.Starts(clock.Monotonic(), 2, 1), 2u);
  EXPECT_TRUE(b.last().reason.empty());
  b.Failed(clock.Monotonic(), Exit(1));
  EXPECT_EQ(b.delay(), 1s);  // from the start again
}

TEST(PlacementBackoffTest, KeepsTheLastFailureToShow) {
  FakeClock clock;
  PlacementBackoff b;
  b.Failed(clock.Monotonic(), Exit(2));
  b.Failed(clock.Monotonic(), Exit(3));
  EXPECT_EQ(b.last().exit_code, 3);
  EXPECT_EQ(b.last().log_tail, "boom");
}

// The crash loop: the autoscaler asks every 50 ms and each worker fails 100 ms after its
// placement. Without the back-off that is 200 workers in 30 s.
TEST(PlacementBackoffTest, CrashLoopingEndpointGetsAtMostFiveWorkersInThirtySeconds) {
  FakeClock clock;
  const auto begin = clock.Monotonic();
  PlacementBackoff b;
  int placed = 0;
  std::optional<Clock::SteadyTime> fails_at;  // the live worker's end
  while (clock.Monotonic() - begin < 30s) {
    if (fails_at && clock.Monotonic() >= *fails_at) {
      b.Failed(clock.Monotonic(), Exit(2));
      fails_at.reset();
    }
    if (b.Starts(clock.Monotonic(), 1, fails_at ? 1 : 0) > 0 && !fails_at) {
      ++placed;
      fails_at = clock.Monotonic() + 100ms;
    }
    clock.Advance(50ms);
  }
  EXPECT_GE(placed, 4);  // 0, 1.1, 3.2, 7.3, 15.4 s: still trying
  EXPECT_LE(placed, 5);
}

TEST(RedactSecretsTest, ReplacesEveryOccurrenceOfEachSecret) {
  EXPECT_EQ(RedactSecrets("key=abcd1234 again abcd1234", {"abcd1234"}),
            "key=[redacted] again [redacted]");
  EXPECT_EQ(RedactSecrets("tok hf_x and key k", {"hf_x", "k"}), "tok [redacted] and key k");
}

TEST(RedactSecretsTest, ASecretThatContainsTheMarkDoesNotLoop) {
  EXPECT_EQ(RedactSecrets("[redacted]x", {"[redacted]x"}), "[redacted]");
}

}  // namespace
}  // namespace mc::controller
