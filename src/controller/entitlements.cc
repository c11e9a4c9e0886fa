#include "controller/entitlements.h"

namespace mc::controller {

bool UpstreamUnreachable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

std::optional<Status> EntitlementCache::Cached(const std::string& endpoint_id,
                                               int64_t now_ms) const {
  auto it = entries_.find(endpoint_id);
  if (it == entries_.end() || now_ms - it->second.verdict_ms >= it->second.valid_ms) {
    return std::nullopt;
  }
  return it->second.verdict;
}

Status EntitlementCache::Record(const std::string& endpoint_id, bool has_token,
                                const Status& answer, bool public_repo, int64_t now_ms) {
  Entry& e = entries_[endpoint_id];
  e.verdict_ms = now_ms;
  if (answer.ok()) {
    upstream_down_ = false;
    e.verdict = Status::Ok();
    e.valid_ms = policy_.ttl.count();
    e.success_ms = now_ms;
    e.public_repo = public_repo;
    return e.verdict;
  }
  e.valid_ms = policy_.retry.count();
  if (!UpstreamUnreachable(answer)) {
    upstream_down_ = false;
    e.verdict = answer;
    return e.verdict;
  }
  upstream_down_ = true;
  if (e.public_repo || !has_token ||
      (e.success_ms && now_ms - *e.success_ms <= policy_.grace.count())) {
    e.verdict = Status::Ok();
  } else {
    const std::string last = e.success_ms ? "its last successful check was " +
                                                std::to_string((now_ms - *e.success_ms) / 1000) +
                                                " s ago, past the grace period of " +
                                                std::to_string(policy_.grace.count() / 1000) + " s"
                                          : "it has not been checked since the controller started";
    e.verdict = UnavailableError("the upstream cannot be reached to check the token's access (" +
                                 answer.message() + ") and " + last);
  }
  return e.verdict;
}

}  // namespace mc::controller
