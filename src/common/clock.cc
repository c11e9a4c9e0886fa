#include "mc/common/clock.h"

#include <iterator>
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
  auto parked = parked_.insert(deadline);
  advanced_.notify_all();
  advanced_.wait(lock, [&] { return steady_ >= deadline; });
  parked_.erase(parked);
  --sleepers_;
}

int FakeClock::sleepers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sleepers_;
}

int FakeClock::ParkedLocked() const {
  return static_cast<int>(std::distance(parked_.upper_bound(steady_), parked_.end()));
}

int FakeClock::parked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ParkedLocked();
}

bool FakeClock::AwaitParked(int n, std::chrono::milliseconds real_limit) {
  std::unique_lock<std::mutex> lock(mu_);
  return advanced_.wait_for(lock, real_limit, [&] { return ParkedLocked() >= n; });
}

void FakeClock::Park(SteadyTime deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    parked_.insert(deadline);
  }
  advanced_.notify_all();
}

void FakeClock::Unpark(SteadyTime deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    parked_.erase(parked_.find(deadline));
  }
  advanced_.notify_all();
}

bool FakeClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          SteadyTime deadline, const Predicate& pred) {
  // The caller's lock is held here, then the clock's: never the other way round.
  Park(deadline);
  bool result = true;
  while (!pred()) {
    if (Monotonic() >= deadline) {
      result = pred();
      break;
    }
    cv.wait_for(lock, kFakeWaitSlice);
  }
  Unpark(deadline);
  return result;
}

int64_t ToUnixSeconds(Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace mc
