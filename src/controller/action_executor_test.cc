// ActionExecutor (action_executor.h): lanes run their actions in order, at most `per_lane` at
// once, and a lane that never finishes holds back no other lane. Real threads, no sleeping for
// the property: actions block on latches the test opens.
#include "controller/action_executor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mc::controller {
namespace {

using namespace std::chrono_literals;

// A gate actions wait on until the test opens it.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits (real time, bounded) until `n` actions wait at the gate.
  bool AwaitWaiting(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

TEST(ActionExecutorTest, AStuckLaneHoldsBackNoOtherLane) {
  ActionExecutor executor(2);
  Gate stuck;
  for (int i = 0; i < 5; ++i) executor.Submit("stuck-host", [&] { stuck.Wait(); });
  ASSERT_TRUE(stuck.AwaitWaiting(2));
  EXPECT_EQ(executor.Running("stuck-host"), 2) << "at most 2 of a lane at once";
  EXPECT_EQ(executor.Queued("stuck-host"), 3u);

  std::mutex mu;
  std::condition_variable cv;
  bool ran = false;
  executor.Submit("other-host", [&] {
    std::lock_guard<std::mutex> lock(mu);
    ran = true;
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return ran; })) << "the other lane waited";
  }
  stuck.Open();
  executor.Drain();
  EXPECT_EQ(executor.Running("stuck-host"), 0);
}

TEST(ActionExecutorTest, ALaneRunsItsActionsInOrderOneAtATimeWithOnePerLane) {
  ActionExecutor executor(1);
  std::mutex mu;
  std::vector<int> order;
  for (int i = 0; i < 20; ++i) {
    executor.Submit("h", [&, i] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    });
  }
  executor.Drain();
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
}

TEST(ActionExecutorTest, ShutdownDropsWhatIsQueuedAndRefusesMore) {
  ActionExecutor executor(1);
  Gate gate;
  int ran = 0;
  executor.Submit("h", [&] { gate.Wait(); });
  executor.Submit("h", [&] { ++ran; });  // queued behind the first
  ASSERT_TRUE(gate.AwaitWaiting(1));
  ASSERT_EQ(executor.Queued("h"), 1u);
  std::thread opener([&] {  // once Shutdown has dropped the queue, the running action ends
    while (executor.Queued("h") != 0) std::this_thread::sleep_for(1ms);
    gate.Open();
  });
  executor.Shutdown();
  opener.join();
  EXPECT_EQ(ran, 0) << "a queued action ran after Shutdown";
  EXPECT_FALSE(executor.Submit("h", [&] { ++ran; }));
}

}  // namespace
}  // namespace mc::controller
