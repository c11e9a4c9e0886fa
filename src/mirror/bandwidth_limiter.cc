#include "mirror/bandwidth_limiter.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <optional>
#include <type_traits>

namespace mc::mirror {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
static_assert(std::is_same_v<TokenBucket::TimePoint::duration, std::chrono::nanoseconds>);

// A body that `limiter` paces: the file range, or the stream it replaces (a faulted answer).
struct PacedBody {
  std::optional<net::FileBody> file;  // set, or `inner` is
  net::BodyProducer inner;
  BandwidthLimiter* shared = nullptr;     // the server's cap, or null
  std::unique_ptr<BandwidthLimiter> own;  // this answer's cap, or null

  ssize_t Produce(uint64_t pos, char* buf, size_t max);
};

ssize_t PacedBody::Produce(uint64_t pos, char* buf, size_t max) {
  if (shared) max = static_cast<size_t>(std::min<uint64_t>(max, shared->max_chunk()));
  if (own) max = static_cast<size_t>(std::min<uint64_t>(max, own->max_chunk()));
  ssize_t n;
  if (inner) {
    n = inner(pos, buf, max);
    if (n <= 0) return net::kAbortBody;  // the fault ended the body: nothing to pace
  } else {
    do {
      n = ::pread(file->fd.get(), buf, max, static_cast<off_t>(file->offset + pos));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return net::kAbortBody;  // read error or the file shrank under Content-Length
  }
  // Read first, then wait for the tokens: the wait holds no more than the server's own block.
  // This answer's own cap first: its wait is short (a tenth of a second at most) and is not
  // woken by Stop(), the shared one's is.
  if (own && !own->Acquire(static_cast<uint64_t>(n))) return net::kAbortBody;
  if (shared && !shared->Acquire(static_cast<uint64_t>(n))) return net::kAbortBody;
  return n;
}

}  // namespace

TokenBucket::TokenBucket(uint64_t bytes_per_second, uint64_t burst_bytes, TimePoint start)
    : rate_(bytes_per_second),
      burst_(burst_bytes),
      burst_ticks_(static_cast<Ticks>(burst_bytes) * kNanosPerSecond),
      full_at_(static_cast<Ticks>(start.time_since_epoch().count()) * rate_),
      last_(start) {
  if (bytes_per_second == 0 || burst_bytes == 0) std::abort();  // callers check the options
}

TokenBucket::TimePoint TokenBucket::Reserve(TimePoint now, uint64_t bytes) {
  last_ = std::max(last_, now);
  const Ticks now_ticks = static_cast<Ticks>(last_.time_since_epoch().count()) * rate_;
  // Credit beyond a full bucket is not kept: a bucket full in the past is full now.
  full_at_ = std::max(full_at_, now_ticks) + static_cast<Ticks>(bytes) * kNanosPerSecond;
  // The bytes may go once the debt beyond the bucket's credit is repaid.
  const Ticks due = full_at_ - burst_ticks_;
  if (due <= now_ticks) return last_;
  Ticks ns = due / rate_;
  if (ns * rate_ < due) ++ns;  // rounded up: never a nanosecond early
  return TimePoint(std::chrono::nanoseconds(static_cast<int64_t>(ns)));
}

BandwidthLimiter::BandwidthLimiter(uint64_t bytes_per_second)
    : burst_(std::max<uint64_t>(1, bytes_per_second / 10)),
      bucket_(bytes_per_second, burst_, std::chrono::steady_clock::now()) {}

bool BandwidthLimiter::Acquire(uint64_t bytes) {
  MutexLock lock(mu_);
  if (stopping_) return false;
  const TokenBucket::TimePoint due = bucket_.Reserve(std::chrono::steady_clock::now(), bytes);
  // Sleeps without the lock until due (or Stop()); the loop absorbs spurious wakeups.
  while (!stopping_ && wake_.WaitUntil(mu_, due)) {
  }
  return !stopping_;
}

void BandwidthLimiter::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.NotifyAll();
}

void BandwidthLimiter::Resume() {
  MutexLock lock(mu_);
  stopping_ = false;
}

void Throttle(net::HttpResponse& response, BandwidthLimiter* shared,
              uint64_t per_answer_bytes_per_second) {
  if (shared == nullptr && per_answer_bytes_per_second == 0) return;
  auto body = std::make_shared<PacedBody>();
  body->shared = shared;
  if (per_answer_bytes_per_second > 0) {
    body->own = std::make_unique<BandwidthLimiter>(per_answer_bytes_per_second);
  }
  uint64_t length = 0;
  if (response.stream) {
    length = response.stream->length;
    if (length == 0) return;
    body->inner = std::move(response.stream->produce);
  } else if (response.file) {
    length = response.file->length;
    if (length == 0) return;
    body->file = std::move(*response.file);
  } else {
    return;
  }
  response.SetStream(
      length, [body](uint64_t pos, char* buf, size_t max) { return body->Produce(pos, buf, max); });
}

}  // namespace mc::mirror
