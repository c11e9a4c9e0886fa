// The mirror's bandwidth cap (MirrorOptions::max_bytes_per_second): one token bucket shared by
// every connection of the server, so the cap holds for the server as a whole, like one upstream
// link, however many connections and Range requests a client opens.
//
// TokenBucket is the arithmetic alone, over time points the caller passes in (tests drive it with
// made-up times). BandwidthLimiter puts one behind a mutex and makes callers wait, on a condition
// variable, until their bytes are due: no busy waiting, and Stop() wakes every waiter at once.
// Throttle() turns a response's file or stream body into a paced stream: the producer reads at
// most one chunk (<= the burst and <= the HTTP server's block) into the server's own buffer, then
// waits for that chunk's tokens before handing it over, so memory stays one block per connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "mc/common/thread_annotations.h"
#include "mc/net/http_server.h"

namespace mc::mirror {

// A token bucket that lends: Reserve() always takes the bytes, letting the bucket go into debt,
// and says when they may be sent (when the debt is paid at `bytes_per_second`). Reservations are
// thereby served in the order they are made, and a waiting caller never has to come back and
// retry. The bucket starts full and holds at most `burst_bytes` of credit, so over any interval of
// length T the bytes it lets out are at most burst_bytes + bytes_per_second × T. The arithmetic is
// exact (integers in units of 1/bytes_per_second ns); due times are rounded up to the nanosecond.
// Not thread-safe.
class TokenBucket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // bytes_per_second > 0, burst_bytes > 0 (broken invariants otherwise).
  TokenBucket(uint64_t bytes_per_second, uint64_t burst_bytes, TimePoint start);

  // Takes `bytes` at `now`; returns the time they may be sent (`now` when the bucket held them;
  // more than burst_bytes at once is allowed and just waits longer). A `now` earlier than a
  // previous call's counts as that call's time.
  TimePoint Reserve(TimePoint now, uint64_t bytes);

  uint64_t burst_bytes() const { return burst_; }

 private:
  // Time in ticks of 1/rate ns: a nanosecond is `rate_` ticks and a byte costs 10^9 ticks.
  using Ticks = __int128;

  const Ticks rate_;  // bytes per second
  const uint64_t burst_;
  const Ticks burst_ticks_;  // what the full bucket's credit is worth
  Ticks full_at_;            // when the bucket is full again (all debt and credit used repaid)
  TimePoint last_;           // the latest `now` seen
};

// A TokenBucket on the steady clock behind a mutex. Thread-safe.
class BandwidthLimiter {
 public:
  // The burst is a tenth of a second of bytes (at least 1): short enough that a transfer is paced
  // from its first tenth of a second, long enough for whole 64 KiB blocks at rates of 640 KiB/s
  // and above.
  explicit BandwidthLimiter(uint64_t bytes_per_second);

  // The most bytes one Acquire() may ask for.
  uint64_t max_chunk() const { return burst_; }
  // Reserves `bytes` (<= max_chunk()) and waits until they are due. False if Stop() was called
  // before or during the wait (the caller then closes its connection).
  bool Acquire(uint64_t bytes);

  // Wakes every waiter (Acquire returns false) and makes later Acquire calls fail at once, until
  // Resume().
  void Stop();
  void Resume();

 private:
  const uint64_t burst_;
  Mutex mu_;
  CondVar wake_;
  TokenBucket bucket_ MC_GUARDED_BY(mu_);
  bool stopping_ MC_GUARDED_BY(mu_) = false;
};

// Replaces the file or stream body of `response` with a paced stream (a body of another kind, or
// an empty one, is left alone): paced by `shared` (the server's cap; may be null; must outlive
// the body) and, when per_answer_bytes_per_second > 0, by a limiter of this answer's own at that
// rate (MirrorOptions::max_bytes_per_second_per_answer). Both 0/null: nothing changes.
void Throttle(net::HttpResponse& response, BandwidthLimiter* shared,
              uint64_t per_answer_bytes_per_second);

}  // namespace mc::mirror
