// RetryPolicy: how many times a failing request is tried and how long to wait in between
// (pull.h "Retries"). Pure: the jitter is a number the caller draws, so tests fix it. Internal to
// the downloader; used by the fetch engine for ranges and by the Puller for metadata requests.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "mc/downloader/pull.h"

namespace mc::downloader {

struct RetryPolicy {
  int max_attempts = 6;  // failed attempts in a row before giving up
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{10'000};
  std::chrono::milliseconds max_retry_after{120'000};

  static RetryPolicy From(const FetchTuning& tuning);

  // After `failed` failed attempts in a row, whether one more is allowed.
  bool MayRetry(int failed) const { return failed < max_attempts; }
  // The wait before the next attempt after `failed` (>= 1) failed attempts: the server's
  // Retry-After when it sent one (capped at max_retry_after), else BackoffDelay with `random01`.
  std::chrono::milliseconds Wait(int failed, std::optional<std::chrono::milliseconds> retry_after,
                                 double random01) const;
};

// The wait before retry number `attempt` (1-based): base * 2^(attempt-1), capped at `max`, with
// "equal jitter": half of it fixed, half uniformly random from `random01` in [0, 1).
std::chrono::milliseconds BackoffDelay(int attempt, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double random01);

// Retry-After: delta seconds (capped at a day) or an HTTP date (relative to `now`, wall time);
// nullopt if unparsable.
std::optional<std::chrono::milliseconds> ParseRetryAfter(
    const std::string& value, std::chrono::system_clock::time_point now);

}  // namespace mc::downloader
