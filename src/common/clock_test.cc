#include "mc/common/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace mc {
namespace {

using std::chrono::seconds;

TEST(FakeClockTest, AdvanceMovesWallAndMonotonicTimeTogether) {
  FakeClock clock;
  const auto wall = clock.Now();
  const auto mono = clock.Monotonic();
  clock.Advance(seconds(5));
  EXPECT_EQ(clock.Now() - wall, seconds(5));
  EXPECT_EQ(clock.Monotonic() - mono, seconds(5));
}

TEST(FakeClockTest, SleepEndsOnlyWhenTheClockPassesItsDeadline) {
  FakeClock clock;
  std::atomic<bool> woke{false};
  const auto deadline = clock.Monotonic() + seconds(10);
  std::thread sleeper([&] {
    clock.SleepUntil(deadline);
    woke = true;
  });
  while (clock.sleepers() == 0) std::this_thread::yield();
  clock.Advance(seconds(9));
  // Still parked: the deadline is a second away.
  EXPECT_FALSE(woke);
  clock.Advance(seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke);
}

TEST(FakeClockTest, WaitEndsWhenTheClockPassesItsDeadline) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> result{-1};
  const auto deadline = clock.Monotonic() + seconds(30);
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.WaitUntil(cv, lock, deadline, [] { return false; }) ? 1 : 0;
  });
  clock.Advance(seconds(30));
  waiter.join();
  EXPECT_EQ(result, 0);
}

TEST(FakeClockTest, WaitEndsWhenNotifiedAndThePredicateHolds) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.WaitFor(cv, lock, seconds(30), [&] { return ready; }) ? 1 : 0;
  });
  {
    std::lock_guard<std::mutex> lock(mu);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_EQ(result, 1);
}

TEST(FakeClockTest, ParkedCountsOnlyWaitsTheNextAdvanceCanEnd) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  EXPECT_EQ(clock.parked(), 0);
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    clock.WaitFor(cv, lock, seconds(10), [] { return false; });
  });
  ASSERT_TRUE(clock.AwaitParked(1));
  EXPECT_EQ(clock.parked(), 1);
  clock.Advance(seconds(10));
  // Its deadline has passed: no longer parked, even before the thread has returned.
  EXPECT_EQ(clock.parked(), 0);
  waiter.join();
}

TEST(FakeClockTest, AwaitParkedGivesUpAfterItsRealTimeLimit) {
  FakeClock clock;
  EXPECT_FALSE(clock.AwaitParked(1, std::chrono::milliseconds(1)));
}

TEST(FakeClockTest, ALoopThatWaitsAgainIsSeenParkedAfterEachAdvance) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> rounds{0};
  std::thread loop([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (rounds < 3) {
      clock.WaitFor(cv, lock, seconds(1), [] { return false; });
      ++rounds;
    }
  });
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(clock.AwaitParked(1));
    clock.Advance(seconds(1));
    while (rounds < i) std::this_thread::yield();
    EXPECT_EQ(rounds, i);  // one round per advance, none lost
  }
  loop.join();
}

TEST(RealClockTest, WaitWithAPastDeadlineReturnsThePredicate) {
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  Clock& clock = Clock::Real();
  EXPECT_FALSE(clock.WaitUntil(cv, lock, clock.Monotonic(), [] { return false; }));
  EXPECT_TRUE(clock.WaitUntil(cv, lock, clock.Monotonic(), [] { return true; }));
}

}  // namespace
}  // namespace mc
