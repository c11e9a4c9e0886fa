#include "mc/common/clock.h"

#include <thread>

namespace mc {
namespace {

class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  SteadyTime Monotonic() const override { return std::chrono::steady_clock::now(); }
  void SleepUntil(SteadyTime deadline) override { std::this_thread::sleep_until(deadline); }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 SteadyTime deadline, const Predicate& pred) override {
    return cv.wait_until(lock, deadline, pred);
  }
};

// How often a FakeClock wait looks at the clock again (real time).
constexpr std::chrono::milliseconds kFakeWaitSlice{1};

}  // namespace

Clock& Clock::Real() {
  static RealClock clock;
  return clock;
}

Clock::TimePoint FakeClock::Now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

Clock::SteadyTime FakeClock::Monotonic() const {
  std::lock_guard<std::mutex> lock(mu_);
  return steady_;
}

void FakeClock::Advance(std::chrono::nanoseconds d) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += std::chrono::duration_cast<TimePoint::duration>(d);
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(d);
  }
  advanced_.notify_all();
}

void FakeClock::SleepUntil(SteadyTime deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  ++sleepers_;
  advanced_.wait(lock, [&] { return steady_ >= deadline; });
  --sleepers_;
}

int FakeClock::sleepers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sleepers_;
}

bool FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          SteadyTime deadline, const Predicate& pred) {
  while (!pred()) {
    if (Monotonic() >= deadline) return pred();
    cv.wait_for(lock, kFakeWaitSlice);
  }
  return true;
}

int64_t ToUnixSeconds(Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace mc
