// PlacementBackoff: the controller's patience with an endpoint whose workers keep failing before
// they become ready (its command exits at once, its image cannot be pulled, the agent refuses the
// start). Without it the autoscaler would place a replacement every tick, starting and losing
// workers twice a second.
//
// After a failure the next placement of the endpoint waits: `initial` (1 s) after the first
// failure, doubling with each further one up to `cap` (5 min). While it backs off the endpoint
// gets one worker at a time (a probe), and only when none of its workers is still on its way to
// ready. A worker that becomes ready (its first job-take) or a change to the endpoint ends the
// back-off. The last failure is kept to show why (the endpoint's document, the console).
//
// Pure: no clock and no lock. The fleet keeps one per endpoint under its lock and passes the
// monotonic time in, so the policy is tested on plain time points (placement_backoff_test.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mc::controller {

struct BackoffPolicy {
  std::chrono::milliseconds initial{1'000};
  std::chrono::milliseconds cap{300'000};
};

// The wait after `failures` failures in a row: initial × 2^(failures − 1), at most `cap`; zero
// for none.
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int failures);

// Why a placement failed, as the endpoint shows it.
struct PlacementFailure {
  std::string worker_id;  // empty when no worker was made (the agent refused the start)
  std::string reason;     // one line, e.g. "worker w-… exited with code 2 before it was ready"
  std::optional<int> exit_code;
  std::string log_tail;  // the last lines of the worker's log (capped; secrets redacted)
  int64_t at_ms = 0;     // wall time of the failure, ms since the epoch
};

// The caps of a log tail the controller keeps and shows.
inline constexpr size_t kLogTailLines = 20;
inline constexpr size_t kLogTailBytes = 4096;

class PlacementBackoff {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  explicit PlacementBackoff(BackoffPolicy policy = {}) : policy_(policy) {}

  // A failure at `now`: the next placement waits BackoffDelay(failures) from now.
  void Failed(SteadyTime now, PlacementFailure failure);
  // A worker became ready, or the endpoint changed: placements go ahead at once again.
  void Reset();
  // How many of the `wanted` starts may be placed at `now`, with `unready` workers of the
  // endpoint on their way to ready (placed, not yet taking jobs): all of them while nothing
  // failed; while backing off one, once the wait is over and no other worker is on its way.
  uint32_t Starts(SteadyTime now, uint32_t wanted, int unready) const;

  bool backing_off() const { return failures_ > 0; }
  int failures() const { return failures_; }
  std::chrono::milliseconds delay() const { return BackoffDelay(policy_, failures_); }
  SteadyTime retry_at() const { return retry_at_; }
  const PlacementFailure& last() const { return last_; }

 private:
  BackoffPolicy policy_;
  int failures_ = 0;
  SteadyTime retry_at_{};
  PlacementFailure last_;
};

// `text` with every occurrence of each of `secrets` (those of at least 4 characters) replaced by
// "[redacted]": what a worker printed may hold the key and token it was given.
std::string RedactSecrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace mc::controller
