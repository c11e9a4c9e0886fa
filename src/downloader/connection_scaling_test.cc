// Connection scaling's decision as a function of the measured windows' rates: no sockets, no time.
#include "downloader/connection_scaling.h"

#include <gtest/gtest.h>

#include <vector>

namespace mc::downloader {
namespace {

constexpr bool kRoom = true;

// Feeds `rates` (bytes/s, one per window, all with room) and returns the workers after each.
std::vector<int> Workers(ScaleState state, const std::vector<double>& rates) {
  std::vector<int> out;
  for (double rate : rates) {
    state = NextScaleStep(state, rate, kRoom).state;
    out.push_back(state.workers);
  }
  return out;
}

TEST(ConnectionScalingTest, TheFirstWindowIsOnlyAWarmUp) {
  ScaleStep step = NextScaleStep(StartScaling(8, 32, 0.10), 1e9, kRoom);
  EXPECT_EQ(step.state.workers, 8);
  EXPECT_TRUE(step.state.scaling);
}

TEST(ConnectionScalingTest, DoublesWhileEachStepRaisesTheRateByTheGain) {
  // Warm-up, then 8 → 16 (base 100), 16 → 32 (+50%), 32 is the most.
  EXPECT_EQ(Workers(StartScaling(8, 32, 0.10), {50, 100, 150, 300}),
            (std::vector<int>{8, 16, 32, 32}));
}

TEST(ConnectionScalingTest, TheFirstStepThatDoesNotPayEndsTheScalingForGood) {
  ScaleState state = StartScaling(8, 64, 0.10);
  // 8 → 16 at 100; 16 brings 109 (< 110): stop; later rises change nothing.
  EXPECT_EQ(Workers(state, {50, 100, 109, 1000, 5000}), (std::vector<int>{8, 16, 16, 16, 16}));
  for (double rate : {50.0, 100.0, 109.0}) state = NextScaleStep(state, rate, kRoom).state;
  EXPECT_FALSE(state.scaling);
}

TEST(ConnectionScalingTest, AStepOfExactlyTheGainPays) {
  EXPECT_EQ(Workers(StartScaling(2, 8, 0.5), {1, 100, 150}), (std::vector<int>{2, 4, 8}));
}

TEST(ConnectionScalingTest, NeverGoesPastTheMost) {
  EXPECT_EQ(Workers(StartScaling(8, 12, 0.10), {1, 100, 1000, 10000}),
            (std::vector<int>{8, 12, 12, 12}));
}

TEST(ConnectionScalingTest, NoScalingWhenTheMostIsTheStart) {
  EXPECT_FALSE(StartScaling(8, 8, 0.10).scaling);
  EXPECT_EQ(Workers(StartScaling(8, 8, 0.10), {1, 100, 1000}), (std::vector<int>{8, 8, 8}));
}

TEST(ConnectionScalingTest, AWindowWithoutRoomTriesNothingAndIsMeasuredAgain) {
  ScaleState state = StartScaling(4, 32, 0.10);
  state = NextScaleStep(state, 10, kRoom).state;                  // warm-up
  state = NextScaleStep(state, 100, kRoom).state;                 // 4 → 8, base 100
  ScaleStep idle = NextScaleStep(state, 200, /*room=*/false);     // paid, but nothing to split
  EXPECT_EQ(idle.state.workers, 8);
  EXPECT_LT(idle.state.base, 0);  // the next window is a new baseline, not compared with 200
  state = NextScaleStep(idle.state, 150, kRoom).state;            // 150 < 220 would stop: no base
  EXPECT_EQ(state.workers, 16);
  EXPECT_TRUE(state.scaling);
}

TEST(ConnectionScalingTest, AGainOfMinusOneMakesEveryStepPay) {
  EXPECT_EQ(Workers(StartScaling(2, 16, -1), {0, 0, 0, 0, 0}), (std::vector<int>{2, 4, 8, 16, 16}));
}

}  // namespace
}  // namespace mc::downloader
