// LearnRate: the agent's running estimate of a source's download rate (reported to the
// controller for its time-to-ready).
#include <gtest/gtest.h>

#include "agent/downloads.h"

namespace mc::agent {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(LearnRateTest, FirstSampleIsTheEstimate) {
  EXPECT_DOUBLE_EQ(LearnRate(0, 100 * kMiB, 2.0), 50.0 * kMiB);
}

TEST(LearnRateTest, LaterSamplesAreAveragedWithTheEstimate) {
  EXPECT_DOUBLE_EQ(LearnRate(50.0 * kMiB, 100 * kMiB, 1.0), 75.0 * kMiB);
}

TEST(LearnRateTest, SmallDownloadsAndZeroTimeLeaveTheEstimate) {
  EXPECT_DOUBLE_EQ(LearnRate(42, kMiB - 1, 0.001), 42);
  EXPECT_DOUBLE_EQ(LearnRate(42, 100 * kMiB, 0), 42);
  EXPECT_DOUBLE_EQ(LearnRate(0, 0, 1), 0);
}

}  // namespace
}  // namespace mc::agent
