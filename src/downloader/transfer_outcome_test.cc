// The rules of retries, peers and redirects without sockets: ClassifyExchange (one HTTP exchange
// → complete / cancelled / retryable / failed / redirect), ClassifyTransfer (one attempt of a
// range → go on / stop / next source / redirect again / retry after a wait / give up) and
// RetryPolicy.
#include "downloader/transfer_outcome.h"

#include <gtest/gtest.h>

namespace mc::downloader {
namespace {

using std::chrono::milliseconds;
using Kind = ExchangeVerdict::Kind;
using Outcome = RangeResult::Outcome;

// An exchange that got `status` and no body.
ExchangeFacts Answer(int status, net::HeaderMap* headers = nullptr) {
  ExchangeFacts f;
  f.host = "hub.test:443";
  f.http_status = status;
  f.range_bytes = 1000;
  f.headers = headers;
  f.now = std::chrono::system_clock::from_time_t(1'700'000'000);
  return f;
}

bool Contains(const Status& s, std::string_view text) {
  return s.message().find(text) != std::string::npos;
}

TEST(ClassifyExchangeTest, TheWholeRangeDeliveredIsComplete) {
  ExchangeFacts f = Answer(206);
  f.range_done = true;
  EXPECT_EQ(ClassifyExchange(f).kind, Kind::kComplete);
}

TEST(ClassifyExchangeTest, ServerErrorsAndTooManyRequestsAreRetryableWithRetryAfter) {
  net::HeaderMap headers;
  headers.Set("Retry-After", "7");
  for (int status : {408, 429, 500, 503}) {
    ExchangeVerdict v = ClassifyExchange(Answer(status, &headers));
    EXPECT_EQ(v.kind, Kind::kRetryable) << status;
    EXPECT_EQ(v.error.code(), StatusCode::kUnavailable) << status;
    EXPECT_EQ(v.retry_after, milliseconds(7000)) << status;
  }
  EXPECT_EQ(ClassifyExchange(Answer(502)).retry_after, std::nullopt);
}

TEST(ClassifyExchangeTest, NotFoundAndGatedAreFailuresWithTheHubsMapping) {
  net::HeaderMap headers;
  const hub::HubRequestSubject subject{*RepoId::Parse("org/model"), "main",
                                       *RepoFilePath::Parse("a.bin"), false};
  ExchangeFacts f = Answer(404, &headers);
  f.subject = &subject;
  ExchangeVerdict v = ClassifyExchange(f);
  EXPECT_EQ(v.kind, Kind::kFailed);
  EXPECT_EQ(v.error.code(), StatusCode::kNotFound) << v.error.ToString();
  f.http_status = 401;
  EXPECT_EQ(ClassifyExchange(f).kind, Kind::kFailed);
  EXPECT_EQ(ClassifyExchange(Answer(416)).kind, Kind::kFailed);
}

TEST(ClassifyExchangeTest, ABodyThatEndsBeforeTheRangeIsRetryableAndSaysHowFarItGot) {
  ExchangeFacts f = Answer(206);
  f.delivered = 300;
  ExchangeVerdict v = ClassifyExchange(f);
  EXPECT_EQ(v.kind, Kind::kRetryable);
  EXPECT_TRUE(Contains(v.error, "after 300 of 1000 bytes")) << v.error.message();
}

TEST(ClassifyExchangeTest, TransportErrorsAndStallsAreRetryableButACancelIsNot) {
  ExchangeFacts broken = Answer(0);
  broken.transport_failed = true;
  broken.transport_error = "Connection refused";
  ExchangeVerdict v = ClassifyExchange(broken);
  EXPECT_EQ(v.kind, Kind::kRetryable);
  EXPECT_TRUE(Contains(v.error, "hub.test:443: Connection refused")) << v.error.message();

  ExchangeFacts stalled = Answer(206);
  stalled.transport_failed = stalled.aborted = true;
  stalled.stalled = "stalled: no byte for 30000 ms";
  EXPECT_EQ(ClassifyExchange(stalled).kind, Kind::kRetryable);
  stalled.cancelled = true;  // a cancel during a stall is a cancel
  EXPECT_EQ(ClassifyExchange(stalled).kind, Kind::kCancelled);

  ExchangeFacts cancelled = Answer(206);
  cancelled.transport_failed = cancelled.aborted = true;
  EXPECT_EQ(ClassifyExchange(cancelled).kind, Kind::kCancelled);
}

TEST(ClassifyExchangeTest, ARedirectNeedsALocationAndAtMostFiveHops) {
  net::HeaderMap headers;
  EXPECT_EQ(ClassifyExchange(Answer(302, &headers)).kind, Kind::kFailed);  // no Location
  headers.Set("Location", "https://cdn.test/x");
  ExchangeFacts f = Answer(302, &headers);
  ExchangeVerdict v = ClassifyExchange(f);
  EXPECT_EQ(v.kind, Kind::kRedirect);
  EXPECT_EQ(v.location, "https://cdn.test/x");
  f.hop = 5;
  v = ClassifyExchange(f);
  EXPECT_EQ(v.kind, Kind::kFailed);
  EXPECT_TRUE(Contains(v.error, "more than 5 redirects")) << v.error.message();
}

TEST(ClassifyExchangeTest, ARefusedAnswerOrASinkErrorFailsWhateverTheStatus) {
  ExchangeFacts f = Answer(503);
  f.rejected = InvalidArgumentError("bad Content-Range");
  EXPECT_EQ(ClassifyExchange(f).error.code(), StatusCode::kInvalidArgument);
  ExchangeFacts g = Answer(206);
  g.sink_error = ResourceExhaustedError("disk full");
  EXPECT_EQ(ClassifyExchange(g).kind, Kind::kFailed);
  EXPECT_EQ(ClassifyExchange(g).error.code(), StatusCode::kResourceExhausted);
}

const RetryPolicy kPolicy{4, milliseconds(250), milliseconds(10'000), milliseconds(120'000)};

TransferReport Report(Outcome outcome, Status error = Status::Ok()) {
  TransferReport r;
  r.outcome = outcome;
  r.error = std::move(error);
  return r;
}

TEST(ClassifyExchangeTest, SwarmMemberThatHasNotWrittenThePieceIsPendingWithItsProgress) {
  net::HeaderMap headers;
  headers.Set("X-Modelcache-Pending", "12345");
  ExchangeFacts f = Answer(416, &headers);
  f.accept_partial = true;
  ExchangeVerdict v = ClassifyExchange(f);
  EXPECT_EQ(v.kind, Kind::kPending);
  EXPECT_EQ(v.pending_written, 12345u);
  // Not a swarm request, or no progress header: an ordinary 416 (a failure).
  f.accept_partial = false;
  EXPECT_EQ(ClassifyExchange(f).kind, Kind::kFailed);
  net::HeaderMap none;
  ExchangeFacts g = Answer(416, &none);
  g.accept_partial = true;
  EXPECT_EQ(ClassifyExchange(g).kind, Kind::kFailed);
}

TEST(ClassifyTransferTest, PendingSwarmMemberIsWaitedForWithoutCountingAFailure) {
  TransferReport r = Report(Outcome::kPending);
  r.from_peer = true;
  TransferDecision d = ClassifyTransfer(r, 2, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kWaitPeer);
  EXPECT_EQ(d.failed_attempts, 2);
}

TEST(ClassifyTransferTest, SwarmMemberThatStallsIsAskedAgainBeforeItIsSkipped) {
  TransferReport r = Report(Outcome::kRetryable, UnavailableError("h: stalled: no byte"));
  r.from_peer = true;
  r.from_member = true;
  TransferDecision d = ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kRetry);
  EXPECT_EQ(d.failed_attempts, 1);
  d = ClassifyTransfer(r, kMemberAttempts - 1, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kNextSource);
  // A complete peer gets one chance; a member's non-retryable failure (a 404) skips it at once.
  r.from_member = false;
  EXPECT_EQ(ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5).action, TransferAction::kNextSource);
  TransferReport missing = Report(Outcome::kFailed, NotFoundError("h: HTTP 404"));
  missing.from_peer = true;
  missing.from_member = true;
  EXPECT_EQ(ClassifyTransfer(missing, 0, kPolicy, "a.bin", 0.5).action,
            TransferAction::kNextSource);
}

TEST(ClassifyTransferTest, ARetryableFailureIsRetriedFromTheSameSourceAfterABackOff) {
  TransferDecision d =
      ClassifyTransfer(Report(Outcome::kRetryable, UnavailableError("h: HTTP 503")), 0, kPolicy,
                       "a.bin", 1.0);
  EXPECT_EQ(d.action, TransferAction::kRetry);
  EXPECT_EQ(d.failed_attempts, 1);
  EXPECT_EQ(d.wait, milliseconds(250));
  EXPECT_EQ(d.message, "h: HTTP 503");
  d = ClassifyTransfer(Report(Outcome::kRetryable, UnavailableError("x")), 2, kPolicy, "a.bin",
                       0.0);
  EXPECT_EQ(d.wait, milliseconds(500));  // third attempt: 1000 ms, half of it fixed
}

TEST(ClassifyTransferTest, RetryAfterIsHonouredAndCapped) {
  TransferReport r = Report(Outcome::kRetryable, UnavailableError("h answered HTTP 429"));
  r.retry_after = milliseconds(7000);
  EXPECT_EQ(ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5).wait, milliseconds(7000));
  r.retry_after = std::chrono::hours(1);
  EXPECT_EQ(ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5).wait, milliseconds(120'000));
}

TEST(ClassifyTransferTest, GivesUpAfterMaxAttemptsInARowNamingTheFileAndTheLastError) {
  TransferDecision d = ClassifyTransfer(
      Report(Outcome::kRetryable, UnavailableError("h answered HTTP 503")), 3, kPolicy, "a.bin",
      0.5);
  EXPECT_EQ(d.action, TransferAction::kGiveUp);
  EXPECT_EQ(d.error.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(d.error, "'a.bin'")) << d.error.message();
  EXPECT_TRUE(Contains(d.error, "4 failed attempts in a row")) << d.error.message();
  EXPECT_TRUE(Contains(d.error, "h answered HTTP 503")) << d.error.message();
}

TEST(ClassifyTransferTest, BytesReceivedResetTheFailedAttempts) {
  TransferReport r = Report(Outcome::kRetryable, UnavailableError("h: connection closed"));
  r.bytes = 1;
  TransferDecision d = ClassifyTransfer(r, 3, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kRetry);
  EXPECT_EQ(d.failed_attempts, 1);
}

TEST(ClassifyTransferTest, AFailingPeerIsSkippedForTheNextSourceWithoutAWait) {
  for (Outcome outcome : {Outcome::kRetryable, Outcome::kFailed}) {
    TransferReport r = Report(outcome, NotFoundError("peer: HTTP 404"));
    r.from_peer = true;
    TransferDecision d = ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5);
    EXPECT_EQ(d.action, TransferAction::kNextSource);
    EXPECT_EQ(d.wait, milliseconds(0));
    EXPECT_EQ(d.message, "peer skipped: peer: HTTP 404");
  }
}

TEST(ClassifyTransferTest, ARefusedRedirectTargetIsRedirectedAgainOnceThenFails) {
  TransferReport r = Report(Outcome::kFailed, PermissionDeniedError("cdn: HTTP 403"));
  r.from_redirect_target = true;
  TransferDecision d = ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kRedirectAgain);
  EXPECT_EQ(d.failed_attempts, 1);
  d = ClassifyTransfer(r, d.failed_attempts, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kGiveUp);
  EXPECT_EQ(d.error.code(), StatusCode::kPermissionDenied);
}

TEST(ClassifyTransferTest, AFailureOfTheSourcesOwnUrlFailsAtOnceWithTheFileName) {
  TransferDecision d = ClassifyTransfer(Report(Outcome::kFailed, NotFoundError("not there")), 0,
                                        kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kGiveUp);
  EXPECT_EQ(d.error.code(), StatusCode::kNotFound);
  EXPECT_EQ(d.error.message(), "'a.bin': not there");
}

TEST(ClassifyTransferTest, ALocalWriteErrorGivesUpEvenFromAPeer) {
  TransferReport r = Report(Outcome::kFailed, ResourceExhaustedError("disk full"));
  r.local_error = ResourceExhaustedError("disk full");
  r.from_peer = true;
  TransferDecision d = ClassifyTransfer(r, 0, kPolicy, "a.bin", 0.5);
  EXPECT_EQ(d.action, TransferAction::kGiveUp);
  EXPECT_EQ(d.error.code(), StatusCode::kResourceExhausted);
}

TEST(ClassifyTransferTest, CompleteGoesOnAndCancelledStops) {
  EXPECT_EQ(ClassifyTransfer(Report(Outcome::kComplete), 2, kPolicy, "a.bin", 0.5).action,
            TransferAction::kContinue);
  TransferReport cancelled = Report(Outcome::kCancelled);
  cancelled.from_peer = true;
  EXPECT_EQ(ClassifyTransfer(cancelled, 0, kPolicy, "a.bin", 0.5).action, TransferAction::kStop);
}

TEST(RetryPolicyTest, TheTuningsLimitsAreThePolicys) {
  FetchTuning tuning;
  tuning.max_attempts = 3;
  tuning.max_retry_after = milliseconds(5);
  const RetryPolicy policy = RetryPolicy::From(tuning);
  EXPECT_TRUE(policy.MayRetry(2));
  EXPECT_FALSE(policy.MayRetry(3));
  EXPECT_EQ(policy.Wait(1, milliseconds(60'000), 0.5), milliseconds(5));
}

}  // namespace
}  // namespace mc::downloader
