// Clang thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html) and a
// mutex the analysis understands (libstdc++'s std::mutex is not annotated).
//
// With clang, `-Wthread-safety` then checks at compile time that every field marked
// MC_GUARDED_BY(mu) is read and written only with `mu` held, and that functions marked
// MC_REQUIRES(mu) are called with it. With GCC the macros are empty. The check:
// `make check-thread-safety` (clang-16, build-tsa/, -DMC_THREAD_SAFETY=ON: -Wthread-safety
// -Werror=thread-safety); docs/reliability.md.
//
// Use:
//   mc::Mutex mu_;
//   mc::CondVar wake_;
//   bool stopping_ MC_GUARDED_BY(mu_) = false;
//   ...
//   mc::MutexLock lock(mu_);
//   while (!stopping_) wake_.Wait(mu_);
// Waits take no predicate: the analysis checks a lambda as a function of its own, which does not
// hold the lock, so the condition is a loop in the annotated function instead.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define MC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MC_THREAD_ANNOTATION(x)
#endif

#define MC_CAPABILITY(x) MC_THREAD_ANNOTATION(capability(x))
#define MC_SCOPED_CAPABILITY MC_THREAD_ANNOTATION(scoped_lockable)
#define MC_GUARDED_BY(x) MC_THREAD_ANNOTATION(guarded_by(x))
#define MC_PT_GUARDED_BY(x) MC_THREAD_ANNOTATION(pt_guarded_by(x))
#define MC_REQUIRES(...) MC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define MC_EXCLUDES(...) MC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define MC_ACQUIRE(...) MC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define MC_RELEASE(...) MC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define MC_TRY_ACQUIRE(...) MC_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define MC_RETURN_CAPABILITY(x) MC_THREAD_ANNOTATION(lock_returned(x))
#define MC_NO_THREAD_SAFETY_ANALYSIS MC_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace mc {

// std::mutex, annotated as a capability.
class MC_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() MC_ACQUIRE() { mu_.lock(); }
  void unlock() MC_RELEASE() { mu_.unlock(); }
  bool try_lock() MC_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope (std::lock_guard, annotated).
class MC_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) MC_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() MC_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// std::condition_variable over a Mutex the caller holds (released while waiting, held again on
// return). Spurious wakeups happen: wait in a loop on the condition.
class CondVar {
 public:
  void Wait(Mutex& mu) MC_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held: the caller's MutexLock releases it
  }
  // False when `deadline` passed.
  template <class ClockT, class Duration>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<ClockT, Duration>& deadline)
      MC_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace mc
