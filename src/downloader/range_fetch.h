// RangeFetcher: one HTTP GET of a byte range of a blob, on a reused libcurl easy handle, with
// every check the engine relies on. Internal to the downloader.
//
// - Sends "Range: bytes=begin-(end-1)". A 206 must carry Content-Range starting at `begin` with
//   the blob's size as total; a 200 (range ignored) is accepted and its first `begin` bytes are
//   skipped. Bytes beyond `end` are never delivered: the transfer stops there.
// - Redirects are followed here, not by libcurl (at most 5): a relative Location is resolved
//   against the current URL, only http(s) targets are allowed, and the Authorization header goes
//   only to URLs on the token's origin (hub::SameOrigin): never to another host, port or scheme.
//   The final URL is reported so that later ranges of the blob go straight there.
// - Outcomes are classified for retry (ClassifyExchange, transfer_outcome.h): transport errors,
//   timeouts, stalls (no byte for `stall_timeout`, or fewer than `min_bytes_per_second` over a
//   `stall_timeout` window, measured on the fetcher's Clock), 408, 429 and 5xx are kRetryable
//   (with Retry-After when the server sent one); other answers are kFailed with the hub's error
//   mapping (NotFound, gated...).
//
// libcurl's headers stay in range_fetch.cc: the easy handle lives behind a pointer to an
// incomplete type.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "mc/common/clock.h"
#include "mc/common/status.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/hub_errors.h"
#include "mc/hub/secret.h"

namespace mc::downloader {

struct ExchangeVerdict;  // transfer_outcome.h

// Receives the bytes of a range in order. Called on the fetching thread.
class RangeSink {
 public:
  virtual ~RangeSink() = default;
  // Bytes [offset, offset + size) of the blob. Returns how many were taken; fewer than `size`
  // ends the transfer without error (the range was shortened by a split). A sink that fails sets
  // its own error, returns 0 and is asked for it with error().
  virtual size_t Write(uint64_t offset, const char* data, size_t size) = 0;
  virtual Status error() const { return Status::Ok(); }
  // Polled during the transfer (also while no byte arrives): true stops it (kCancelled).
  virtual bool Cancelled() const = 0;
};

struct RangeRequest {
  std::string url;
  uint64_t begin = 0;
  uint64_t end = 0;                             // one past the last byte wanted
  uint64_t blob_size = 0;                       // the total a 206 must report
  const hub::Endpoint* token_origin = nullptr;  // with `token`: where it may be sent
  const hub::Secret* token = nullptr;
  std::string user_agent;
  std::string ca_file;  // HTTPS: authorities to trust instead of the system's (empty: those)
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds stall_timeout{30'000};
  uint64_t min_bytes_per_second = 1;
  const hub::HubRequestSubject* subject = nullptr;  // for messages and the hub error mapping
  // A swarm member's request (X-Modelcache-Partial: 1): a 206 may end before `end` (the member
  // sent what it has written), and a 416 with X-Modelcache-Pending means "not written yet".
  bool accept_partial = false;
  // With accept_partial: this host's URL, sent as X-Modelcache-Swarm-Member so that the owner
  // counts it as a member of its own download (Puller::JoinSwarm). Borrowed.
  const std::string* swarm_self = nullptr;
};

struct RangeResult {
  enum class Outcome {
    kComplete,   // every byte of [begin, end) was delivered (or the sink took fewer: split)
    kCancelled,  // the sink said so
    kRetryable,  // try again (maybe later: retry_after)
    kFailed,     // do not retry this source: `error` says why
    kPending,    // a swarm member has not written the first byte yet (`pending_written`)
  };
  Outcome outcome = Outcome::kFailed;
  Status error;  // for kRetryable and kFailed
  int http_status = 0;
  std::optional<std::chrono::milliseconds> retry_after;
  uint64_t bytes = 0;         // bytes delivered to the sink
  uint64_t pending_written = 0;  // kPending: the member's progress on the blob
  std::string effective_url;  // after redirects
};

class RangeFetcher {
 public:
  // `clock` (borrowed, must outlive the fetcher) measures stalls and dates Retry-After.
  explicit RangeFetcher(Clock& clock);
  ~RangeFetcher();
  RangeFetcher(const RangeFetcher&) = delete;
  RangeFetcher& operator=(const RangeFetcher&) = delete;

  RangeResult Fetch(const RangeRequest& request, RangeSink& sink);

 private:
  struct Handle;  // the libcurl easy handle (range_fetch.cc)
  struct Transfer;
  // One GET of the range at `url` (hop number `hop`), classified; adds to result's bytes.
  ExchangeVerdict Exchange(const RangeRequest& request, const std::string& url, int hop,
                           RangeSink& sink, RangeResult& result);
  Clock& clock_;
  std::unique_ptr<Handle> handle_;
};

}  // namespace mc::downloader
