// Clock: time is injected so that tests advance a fake clock instead of sleeping.
//
// Two kinds of time: wall time (Now(): what is stored, shown and compared with other machines)
// and monotonic time (Monotonic(): what deadlines, rates and timeouts are measured in; it never
// goes back). Code that waits for a deadline waits through the clock (SleepUntil, WaitUntil), so
// that on a FakeClock the wait ends when the test advances the clock, not when real time passes.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>

namespace mc {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;
  using Predicate = std::function<bool()>;
  virtual ~Clock() = default;

  // Wall time.
  virtual TimePoint Now() const = 0;
  // Monotonic time: deadlines, rates, timeouts.
  virtual SteadyTime Monotonic() const = 0;
  // Blocks the calling thread until Monotonic() >= deadline.
  virtual void SleepUntil(SteadyTime deadline) = 0;
  // As std::condition_variable::wait_until(lock, deadline, pred) on this clock: `lock` (held on
  // entry and on return) guards what `pred` reads; returns pred() as last evaluated. Notifying
  // `cv` wakes the wait; on a FakeClock so does advancing the clock past `deadline`.
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         SteadyTime deadline, const Predicate& pred) = 0;

  void SleepFor(std::chrono::nanoseconds d) { SleepUntil(Monotonic() + d); }
  bool WaitFor(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
               std::chrono::nanoseconds d, const Predicate& pred) {
    return WaitUntil(cv, lock, Monotonic() + d, pred);
  }

  // The process-wide real clock.
  static Clock& Real();
};

// A clock that moves only when told: Advance() moves wall and monotonic time together and ends
// the sleeps and waits whose deadline it passes.
//
// A wait on a FakeClock re-checks the clock at least every millisecond of real time (it cannot
// share a lock with the waiter's condition variable without risking lock-order inversions), so a
// waiter notices an Advance within about a millisecond; tests still never sleep for the time they
// simulate. SleepUntil wakes at once on Advance.
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)))
      : now_(start) {}
  TimePoint Now() const override;
  SteadyTime Monotonic() const override;
  void SleepUntil(SteadyTime deadline) override;
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 SteadyTime deadline, const Predicate& pred) override;

  void Advance(std::chrono::nanoseconds d);
  // Threads blocked in SleepUntil right now (tests use it to know a sleeper is parked).
  int sleepers() const;
  // Threads blocked in SleepUntil or WaitUntil whose deadline is still ahead of the clock: those
  // that the next Advance can wake. A thread whose deadline has passed but that has not returned
  // yet is not counted, so after Advance(d) a test can wait for a loop to park again.
  int parked() const;
  // Blocks until parked() >= n (true), or until `real_limit` of real time has passed (false: the
  // test fails instead of hanging). A test calls it before Advance, so that the time it adds
  // reaches a thread that is really waiting for it.
  bool AwaitParked(int n, std::chrono::milliseconds real_limit = std::chrono::seconds(60));

 private:
  int ParkedLocked() const;  // mu_ held
  void Park(SteadyTime deadline);
  void Unpark(SteadyTime deadline);

  mutable std::mutex mu_;
  std::condition_variable advanced_;  // Advance, and every park and unpark
  TimePoint now_;
  // Monotonic time starts at an arbitrary point, well away from zero.
  SteadyTime steady_{std::chrono::hours(1)};
  int sleepers_ = 0;
  std::multiset<SteadyTime> parked_;  // deadlines of the threads in SleepUntil and WaitUntil
};

// Seconds since the Unix epoch.
int64_t ToUnixSeconds(Clock::TimePoint t);

}  // namespace mc
