#include "downloader/transfer_outcome.h"

#include <charconv>

namespace mc::downloader {

namespace {

using Kind = ExchangeVerdict::Kind;

ExchangeVerdict Verdict(Kind kind, Status error = Status::Ok()) {
  ExchangeVerdict v;
  v.kind = kind;
  v.error = std::move(error);
  return v;
}

std::string AfterBytes(const ExchangeFacts& f) {
  return " (after " + std::to_string(f.delivered) + " bytes of the range)";
}

// An HTTP answer that is neither a 2xx body nor a redirect.
ExchangeVerdict ClassifyStatus(const ExchangeFacts& f) {
  const std::string status = std::to_string(f.http_status);
  if (f.http_status == 408 || f.http_status == 429 || f.http_status >= 500) {
    ExchangeVerdict v = Verdict(Kind::kRetryable, UnavailableError(f.host + " answered HTTP " + status));
    if (f.headers != nullptr) {
      if (auto ra = f.headers->Get("Retry-After")) v.retry_after = ParseRetryAfter(*ra, f.now);
    }
    return v;
  }
  Status mapped = InvalidArgumentError(f.host + ": HTTP " + status);
  if (f.subject != nullptr && f.headers != nullptr) {
    hub::HubRequestSubject subject = *f.subject;
    subject.sent_token = f.sent_token;
    mapped = hub::HubErrorFromResponse(f.http_status, *f.headers, subject);
  }
  if (mapped.ok()) mapped = InvalidArgumentError(f.host + ": unexpected HTTP " + status);
  return Verdict(Kind::kFailed, mapped);
}

}  // namespace

ExchangeVerdict ClassifyExchange(const ExchangeFacts& f) {
  if (!f.sink_error.ok()) return Verdict(Kind::kFailed, f.sink_error);
  if (!f.rejected.ok()) return Verdict(Kind::kFailed, f.rejected);
  if (f.range_done) return Verdict(Kind::kComplete);
  if (f.aborted && !f.stalled.empty() && !f.cancelled) {
    return Verdict(Kind::kRetryable, UnavailableError(f.host + ": " + f.stalled + AfterBytes(f)));
  }
  if (f.aborted || f.cancelled) return Verdict(Kind::kCancelled, CancelledError("download cancelled"));
  if (f.transport_failed) {
    return Verdict(Kind::kRetryable,
                   UnavailableError(f.host + ": " + f.transport_error + AfterBytes(f)));
  }
  if (f.http_status >= 300 && f.http_status < 400) {
    const std::string status = std::to_string(f.http_status);
    std::optional<std::string> location;
    if (f.headers != nullptr) location = f.headers->Get("Location");
    if (!location) {
      return Verdict(Kind::kFailed, InvalidArgumentError(f.host + ": HTTP " + status +
                                                         " without a Location header"));
    }
    if (f.hop >= f.max_redirects) {
      return Verdict(Kind::kFailed,
                     InvalidArgumentError(f.host + ": more than " +
                                          std::to_string(f.max_redirects) + " redirects"));
    }
    ExchangeVerdict v = Verdict(Kind::kRedirect);
    v.location = *location;
    return v;
  }
  if (f.http_status == 416 && f.accept_partial && f.headers != nullptr) {
    if (auto pending = f.headers->Get("X-Modelcache-Pending")) {
      uint64_t written = 0;
      const std::string_view v = net::TrimHeaderWhitespace(*pending);
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), written);
      if (ec == std::errc() && end == v.data() + v.size()) {
        ExchangeVerdict verdict = Verdict(Kind::kPending);
        verdict.pending_written = written;
        return verdict;
      }
    }
  }
  if (f.http_status == 200 || f.http_status == 206) {
    // The body ended before the range did.
    return Verdict(Kind::kRetryable, UnavailableError(f.host + ": connection closed after " +
                                                      std::to_string(f.delivered) + " of " +
                                                      std::to_string(f.range_bytes) +
                                                      " bytes of the range"));
  }
  return ClassifyStatus(f);
}

TransferDecision ClassifyTransfer(const TransferReport& r, int failed_attempts,
                                  const RetryPolicy& policy, std::string_view file,
                                  double random01) {
  using Outcome = RangeResult::Outcome;
  const std::string name = QuoteForMessage(file);
  TransferDecision d;
  d.failed_attempts = r.bytes > 0 ? 0 : failed_attempts;  // progress resets the count
  auto give_up = [&](Status error) {
    d.action = TransferAction::kGiveUp;
    d.error = std::move(error);
    return d;
  };
  if (!r.local_error.ok()) return give_up(r.local_error.WithContext(name));
  if (r.outcome == Outcome::kComplete) {
    d.action = TransferAction::kContinue;
    return d;
  }
  if (r.outcome == Outcome::kCancelled) {
    d.action = TransferAction::kStop;
    return d;
  }
  if (r.outcome == Outcome::kPending) {
    d.action = TransferAction::kWaitPeer;  // the engine gives up on a member that stops moving
    return d;
  }
  const bool member_again = r.from_member && r.outcome == Outcome::kRetryable &&
                            d.failed_attempts + 1 < kMemberAttempts;
  if (r.from_peer && !member_again) {
    // A peer gets one chance per blob: it lacks the blob, fails or is too slow.
    d.action = TransferAction::kNextSource;
    d.message = "peer skipped: " + r.error.message();
    return d;
  }
  if (r.outcome == Outcome::kFailed) {
    if (r.from_redirect_target && d.failed_attempts == 0) {
      // A redirect target (a signed URL) refused us, perhaps expired: redirect again, once.
      d.action = TransferAction::kRedirectAgain;
      d.failed_attempts = 1;
      return d;
    }
    return give_up(r.error.WithContext(name));
  }
  ++d.failed_attempts;
  if (!policy.MayRetry(d.failed_attempts)) {
    return give_up(UnavailableError(
        name + ": giving up after " + std::to_string(d.failed_attempts) +
        " failed attempts in a row; last error: " + r.error.message() +
        ". Run the pull again later: it resumes where it stopped"));
  }
  d.action = TransferAction::kRetry;
  d.wait = policy.Wait(d.failed_attempts, r.retry_after, random01);
  d.message = r.error.message();
  return d;
}

}  // namespace mc::downloader
