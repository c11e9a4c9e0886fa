// FaultInjector: applies MirrorOptions::faults (tests and benchmarks only) to resolve answers.
// Apply() picks the first rule that matches the request and has fires left, counts the fire and
// rewrites the response: an error answer, or a stream over the blob whose producer drops, corrupts,
// stalls or delays bytes. Stalls and delays wait on a condition variable that Stop() wakes, so the
// HTTP server's Stop() (which joins connection threads) never waits for them.
// Thread-safe. Producers it hands out borrow the injector, which must outlive the HTTP server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "mc/common/status.h"
#include "mc/common/thread_annotations.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_server.h"

namespace mc::mirror {

// InvalidArgument naming the rule for count < -1, an ErrorStatus code outside 400..599 or a
// negative duration.
Status ValidateFaultOptions(const FaultOptions& options);

class FaultInjector {
 public:
  explicit FaultInjector(FaultOptions options);

  // For a resolve GET whose `response` carries a file body: applies the first matching rule with
  // fires left. Returns whether one fired. Other responses are left alone.
  bool Apply(const net::HttpRequest& request, net::HttpResponse& response);
  // How often each rule fired, in rule order.
  std::vector<uint64_t> fired() const;

  // Wakes every stall and delay (they then close their connection) and makes later ones end at
  // once, until Resume().
  void Stop();
  void Resume();
  // Waits up to `duration`; false if stopped (before or during the wait).
  bool Wait(std::chrono::milliseconds duration);

 private:
  // The rule to apply, or nullptr; counts the fire.
  const FaultRule* Take(const net::HttpRequest& request);

  const FaultOptions options_;
  mutable Mutex mu_;
  CondVar wake_;
  std::vector<int64_t> left_ MC_GUARDED_BY(mu_);  // fires left per rule (-1 = unlimited)
  std::vector<uint64_t> fired_ MC_GUARDED_BY(mu_);
  bool stopping_ MC_GUARDED_BY(mu_) = false;
};

}  // namespace mc::mirror
