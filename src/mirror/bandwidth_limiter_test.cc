// TokenBucket over made-up time points (no waiting), and BandwidthLimiter's Stop().
#include "mirror/bandwidth_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace mc::mirror {
namespace {

using std::chrono::milliseconds;
using TimePoint = TokenBucket::TimePoint;

const TimePoint kStart = TimePoint(std::chrono::hours(1));

TEST(TokenBucketTest, AFullBucketLetsTheBurstGoAtOnce) {
  TokenBucket bucket(1000, 100, kStart);
  EXPECT_EQ(bucket.Reserve(kStart, 60), kStart);
  EXPECT_EQ(bucket.Reserve(kStart, 40), kStart);
}

TEST(TokenBucketTest, BytesBeyondTheBurstAreDueWhenTheRatePaysForThem) {
  TokenBucket bucket(1000, 100, kStart);
  bucket.Reserve(kStart, 100);
  EXPECT_EQ(bucket.Reserve(kStart, 500), kStart + milliseconds(500));
  // Reservations queue behind each other: the next 100 bytes come 100 ms after those.
  EXPECT_EQ(bucket.Reserve(kStart, 100), kStart + milliseconds(600));
}

TEST(TokenBucketTest, IdleTimeEarnsAtMostTheBurst) {
  TokenBucket bucket(1000, 100, kStart);
  bucket.Reserve(kStart, 100);
  const TimePoint later = kStart + std::chrono::seconds(10);  // 10 s idle earn 100 bytes, not 10000
  EXPECT_EQ(bucket.Reserve(later, 100), later);
  EXPECT_EQ(bucket.Reserve(later, 1000), later + milliseconds(1000));
}

TEST(TokenBucketTest, DebtIsPaidOffByTheTimeThatPasses) {
  TokenBucket bucket(1000, 100, kStart);
  bucket.Reserve(kStart, 100);
  EXPECT_EQ(bucket.Reserve(kStart, 300), kStart + milliseconds(300));
  // At +200 ms 100 bytes of the debt are still open: 50 more bytes are due at +350 ms.
  EXPECT_EQ(bucket.Reserve(kStart + milliseconds(200), 50), kStart + milliseconds(350));
}

TEST(TokenBucketTest, AClockThatGoesBackCountsAsThePreviousCall) {
  TokenBucket bucket(1000, 100, kStart + milliseconds(50));
  bucket.Reserve(kStart + milliseconds(50), 100);
  EXPECT_EQ(bucket.Reserve(kStart, 100), kStart + milliseconds(150));
}

TEST(TokenBucketTest, DueTimesAreRoundedUpNeverEarly) {
  TokenBucket bucket(3, 1, kStart);
  bucket.Reserve(kStart, 1);
  // 1 byte at 3 bytes/s is 333333333.3 ns: due at the next whole nanosecond.
  EXPECT_EQ(bucket.Reserve(kStart, 1), kStart + std::chrono::nanoseconds(333'333'334));
}

// Many connections asking for blocks of varied size at varied times: by any time T, the bytes
// due are at most burst + rate × (T - start), and each block is due no earlier than its ask.
TEST(TokenBucketTest, NeverLetsOutMoreThanBurstPlusRateTimesElapsed) {
  constexpr uint64_t kRate = 1'000'000, kBurst = 100'000;
  TokenBucket bucket(kRate, kBurst, kStart);
  struct Grant {
    TimePoint due;
    uint64_t bytes;
  };
  std::vector<Grant> grants;
  TimePoint now = kStart;
  uint64_t seed = 12345;
  for (int i = 0; i < 2000; ++i) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    const uint64_t bytes = 1 + (seed >> 33) % 65536;
    now += std::chrono::microseconds((seed >> 20) % 40000);
    const TimePoint due = bucket.Reserve(now, bytes);
    ASSERT_GE(due, now);
    grants.push_back({due, bytes});
  }
  for (const Grant& g : grants) {
    uint64_t by_then = 0;
    for (const Grant& other : grants) {
      if (other.due <= g.due) by_then += other.bytes;
    }
    const double elapsed = std::chrono::duration<double>(g.due - kStart).count();
    EXPECT_LE(static_cast<double>(by_then), kBurst + kRate * elapsed + 1.0);
  }
}

TEST(BandwidthLimiterTest, StopWakesAWaiterAndFailsLaterAcquires) {
  BandwidthLimiter limiter(10);  // 1 byte of burst, then a byte every 100 ms
  ASSERT_TRUE(limiter.Acquire(1));
  bool acquired = true;
  std::thread waiter([&] { acquired = limiter.Acquire(1'000'000); });  // due in ~28 hours
  limiter.Stop();
  waiter.join();
  EXPECT_FALSE(acquired);
  EXPECT_FALSE(limiter.Acquire(1));
  limiter.Resume();
}

TEST(BandwidthLimiterTest, TheBurstIsATenthOfASecondOfBytes) {
  EXPECT_EQ(BandwidthLimiter(8'000'000).max_chunk(), 800'000u);
  EXPECT_EQ(BandwidthLimiter(5).max_chunk(), 1u);
}

}  // namespace
}  // namespace mc::mirror
