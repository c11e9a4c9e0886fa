#include "controller/placement_backoff.h"

#include <algorithm>

namespace mc::controller {

std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int failures) {
  if (failures <= 0) return std::chrono::milliseconds(0);
  std::chrono::milliseconds delay = policy.initial;
  // Doubling stops at the cap, so that a long run of failures cannot overflow.
  for (int i = 1; i < failures && delay < policy.cap; ++i) delay *= 2;
  return std::min(delay, policy.cap);
}

void PlacementBackoff::Failed(SteadyTime now, PlacementFailure failure) {
  if (failures_ < 1'000'000) ++failures_;
  retry_at_ = now + delay();
  last_ = std::move(failure);
}

void PlacementBackoff::Reset() {
  failures_ = 0;
  retry_at_ = {};
  last_ = {};
}

uint32_t PlacementBackoff::Starts(SteadyTime now, uint32_t wanted, int unready) const {
  if (!backing_off()) return wanted;
  if (now < retry_at_ || unready > 0) return 0;
  return std::min<uint32_t>(wanted, 1);
}

std::string RedactSecrets(std::string text, const std::vector<std::string>& secrets) {
  constexpr std::string_view kMark = "[redacted]";
  for (const std::string& secret : secrets) {
    if (secret.size() < 4) continue;  // too short to be a secret; replacing it garbles the text
    for (size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + kMark.size())) {
      text.replace(at, secret.size(), kMark);
    }
  }
  return text;
}

}  // namespace mc::controller
