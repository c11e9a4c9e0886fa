// The entitlement checks' memory and the origin-outage rules (docs/controller.md, "Origin
// outage"). Before a worker of an endpoint is placed, the endpoint's own token must have been
// accepted by the upstream for its repo; this decides what a check's answer is worth and for
// how long, without I/O (times are passed in, so it is tested without a clock or a Hub):
//
// - an acceptance is trusted for `ttl` (10 min) before the upstream is asked again;
// - a refusal (401, 403, 404, ...) is asked again after `retry` (30 s): a token granted access a
//   moment ago works at once, and a failed check is not kept for the whole ttl;
// - when the upstream cannot be reached (Unavailable, DeadlineExceeded), the endpoint passes if
//   its repo was public at its last successful check, or if it has no token (an endpoint without
//   a token was created against a public repo), or if its last successful check is within `grace`
//   (`controller --entitlement-grace`, 24 h); otherwise it is refused with the reason. The answer
//   is kept `retry` long, and UpstreamDown() is true until the upstream answers again (placement
//   then takes only hosts that hold the commit complete: nothing can be downloaded).
//
// Thread-safety: none; the caller serializes (Fleet holds its mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "mc/common/status.h"

namespace mc::controller {

struct EntitlementPolicy {
  std::chrono::milliseconds ttl{600'000};
  std::chrono::milliseconds retry{30'000};
  std::chrono::milliseconds grace{24LL * 3'600'000};
};

// Whether `s` says the upstream could not be reached (as opposed to an answer).
bool UpstreamUnreachable(const Status& s);

class EntitlementCache {
 public:
  explicit EntitlementCache(EntitlementPolicy policy) : policy_(policy) {}

  // The verdict to use now without asking the upstream, or nullopt: ask it.
  std::optional<Status> Cached(const std::string& endpoint_id, int64_t now_ms) const;
  // Records the upstream's answer for the endpoint (`public_repo`: the repo was neither gated nor
  // private, known only with an OK answer) and returns the verdict to use.
  Status Record(const std::string& endpoint_id, bool has_token, const Status& answer,
                bool public_repo, int64_t now_ms);
  // The latest check found the upstream unreachable.
  bool UpstreamDown() const { return upstream_down_; }
  void Forget(const std::string& endpoint_id) { entries_.erase(endpoint_id); }

 private:
  struct Entry {
    Status verdict;
    int64_t verdict_ms = 0;
    int64_t valid_ms = 0;  // how long the verdict is kept
    std::optional<int64_t> success_ms;
    bool public_repo = false;
  };
  EntitlementPolicy policy_;
  std::map<std::string, Entry> entries_;
  bool upstream_down_ = false;
};

}  // namespace mc::controller
