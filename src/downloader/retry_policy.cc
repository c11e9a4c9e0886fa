#include "downloader/retry_policy.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "mc/net/headers.h"

namespace mc::downloader {

RetryPolicy RetryPolicy::From(const FetchTuning& tuning) {
  return RetryPolicy{tuning.max_attempts, tuning.backoff_base, tuning.backoff_max,
                     tuning.max_retry_after};
}

std::chrono::milliseconds RetryPolicy::Wait(int failed,
                                            std::optional<std::chrono::milliseconds> retry_after,
                                            double random01) const {
  if (retry_after) return std::min(*retry_after, max_retry_after);
  return BackoffDelay(failed, backoff_base, backoff_max, random01);
}

std::chrono::milliseconds BackoffDelay(int attempt, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double random01) {
  double full = static_cast<double>(base.count()) * std::pow(2.0, std::max(0, attempt - 1));
  full = std::min(full, static_cast<double>(max.count()));
  double wait = full / 2 + full / 2 * std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(wait));
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(
    const std::string& value, std::chrono::system_clock::time_point now) {
  std::string_view v = net::TrimHeaderWhitespace(value);
  uint64_t seconds = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (!v.empty() && ec == std::errc() && end == v.data() + v.size()) {
    return std::chrono::milliseconds(std::min<uint64_t>(seconds, 86400) * 1000);
  }
  time_t when = curl_getdate(std::string(v).c_str(), nullptr);
  if (when < 0) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(when);
  if (at <= now) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

}  // namespace mc::downloader
