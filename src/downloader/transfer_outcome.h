// What to do after a transfer: the rules of pull.h "Retries", "Peers" and "Tokens and redirects"
// as two pure functions, tested without sockets (transfer_outcome_test.cc). Internal to the
// downloader.
//
// - ClassifyExchange: one HTTP exchange of a range, as RangeFetcher saw it (transport error,
//   stall, HTTP status, headers, bytes delivered) → complete, cancelled, retryable, failed (with
//   the hub's error mapping) or a redirect to follow.
// - ClassifyTransfer: one attempt of a range as the fetch engine saw it (the exchange's outcome,
//   bytes written, a local write error, whether the source is a peer, whether the URL was a
//   redirect target) → go on, stop, try the next source, redirect again, retry the same source
//   after a wait (RetryPolicy), or give up with a Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "downloader/range_fetch.h"
#include "downloader/retry_policy.h"
#include "mc/common/status.h"
#include "mc/hub/hub_errors.h"
#include "mc/net/headers.h"

namespace mc::downloader {

// The facts of one HTTP exchange (no libcurl types).
struct ExchangeFacts {
  std::string host;  // "host:port", for messages (never a path: signed URLs carry secrets)
  int hop = 0;       // redirects followed before this exchange
  int max_redirects = 5;
  Status sink_error;           // the sink refused bytes with an error
  Status rejected;             // the answer broke the protocol (Content-Range, length)
  bool range_done = false;     // [begin, end) delivered, or the sink took fewer (a split)
  bool aborted = false;        // our progress callback stopped the transfer
  std::string stalled;         // why it did, if for a stall ("" for a cancel)
  bool cancelled = false;      // the sink says stop
  bool transport_failed = false;  // libcurl failed (not aborted by us): `transport_error` says how
  std::string transport_error;
  int http_status = 0;
  uint64_t delivered = 0;    // bytes given to the sink
  uint64_t range_bytes = 0;  // end - begin
  const net::HeaderMap* headers = nullptr;          // the answer's (Location, Retry-After)
  const hub::HubRequestSubject* subject = nullptr;  // for the hub's error mapping
  bool sent_token = false;
  bool accept_partial = false;  // a swarm member's request
  std::chrono::system_clock::time_point now;  // for a Retry-After date
};

struct ExchangeVerdict {
  enum class Kind { kComplete, kCancelled, kRetryable, kFailed, kRedirect, kPending };
  Kind kind = Kind::kFailed;
  Status error;  // kRetryable, kFailed
  std::optional<std::chrono::milliseconds> retry_after;
  std::string location;  // kRedirect: the Location header, not resolved yet
  uint64_t pending_written = 0;  // kPending: the member's progress (X-Modelcache-Pending)
};

ExchangeVerdict ClassifyExchange(const ExchangeFacts& facts);

// One attempt of a range, as the engine saw it.
struct TransferReport {
  RangeResult::Outcome outcome = RangeResult::Outcome::kFailed;
  Status error;  // the exchange's, for kRetryable and kFailed
  std::optional<std::chrono::milliseconds> retry_after;
  uint64_t bytes = 0;    // written into the blob by this attempt
  Status local_error;    // writing, recording or hashing those bytes failed
  bool from_peer = false;
  bool from_redirect_target = false;  // the URL was a remembered redirect target
  // A swarm member (a peer fetching the commit too): a retryable failure is retried against it
  // up to kMemberAttempts in a row before it is skipped for the blob.
  bool from_member = false;
};

// A stall on a congested link is a packet loss and a TCP back-off, not a dead member (one whose
// process is gone refuses the connection, which is retried as quickly).
constexpr int kMemberAttempts = 3;

enum class TransferAction {
  kContinue,       // the range is done or was shortened: fetch what is left of it, if anything
  kStop,           // cancelled
  kNextSource,     // skip this peer for the blob; the next source continues from the byte reached
  kRedirectAgain,  // from the source's own URL at once (a signed URL may have expired)
  kRetry,          // from the source's own URL after `wait`
  kGiveUp,         // the blob fails with `error`
  kWaitPeer,       // a swarm member has not written the piece yet: ask it again after a poll
};

struct TransferDecision {
  TransferAction action = TransferAction::kGiveUp;
  int failed_attempts = 0;  // failed attempts in a row after this one
  std::chrono::milliseconds wait{0};
  Status error;         // kGiveUp
  std::string message;  // kNextSource, kRetry: what the retry event says
};

// `failed_attempts`: in a row before this attempt (bytes received reset it); `file` names the
// blob in messages; `random01` is the back-off's jitter.
TransferDecision ClassifyTransfer(const TransferReport& report, int failed_attempts,
                                  const RetryPolicy& policy, std::string_view file,
                                  double random01);

}  // namespace mc::downloader
