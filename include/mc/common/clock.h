// Clock: time is injected so that tests advance a fake clock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace mc {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // The process-wide real clock. Thread-safe.
  static Clock& Real();
};

// A clock that moves only when told. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)))
      : now_(start) {}
  TimePoint Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += std::chrono::duration_cast<TimePoint::duration>(d);
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_;
};

// Seconds since the Unix epoch.
int64_t ToUnixSeconds(Clock::TimePoint t);

}  // namespace mc
