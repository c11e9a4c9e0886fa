// JobBoard's indexes (jobs.h): the deadline set that lets Tick() touch due jobs only, the jobs
// each worker holds, and the newest jobs of an endpoint (Recent); and the webhook deliveries a
// final job writes with its status. A real SQLite store in a temp directory and a FakeClock; no
// HTTP, no sleeping.
//
// Measured once by hand (not a test: no timed tests here), -O2 on a busy 2-core machine, a board
// on a store that does nothing, 100 000 jobs (1 000 of them running on 100 workers), nothing
// due: one Tick() took about 40 ms walking every job before the deadline index and under 1 µs
// after it; HeldBy() about 30 ms before and under 1 µs after.
#include "controller/jobs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "controller/store.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int64_t kTtlMs = 3'600'000;        // 1 h
constexpr int64_t kExecutionMs = 10'000;     // 10 s
constexpr auto kRetention = 30min;           // JobBoardOptions default
constexpr auto kSyncRetention = 5min;        // JobBoardOptions default

class JobBoardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mc_jobs_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    auto store = ControllerStore::Open(root_ / "controller.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    endpoint_.id = "ep-aaaaaaaaaaaa";
    endpoint_.ttl_ms = kTtlMs;
    endpoint_.execution_timeout_ms = kExecutionMs;
    other_ = endpoint_;
    other_.id = "ep-bbbbbbbbbbbb";
    board_ = NewBoard();
  }
  void TearDown() override {
    board_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<JobBoard> NewBoard() {
    return std::make_unique<JobBoard>(*store_, clock_, JobBoardOptions{},
                                      [this](const JobRecord& j, const WebhookDelivery* webhook) {
                                        finals_.push_back(j);
                                        if (webhook) hooked_webhooks_.push_back(*webhook);
                                      });
  }
  std::string Submit(const EndpointRecord& e, SubmitRequest r = {}) {
    r.input_json = R"({"n": )" + std::to_string(++submitted_) + "}";
    auto j = board_->Submit(e, r);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? j->id : "";
  }
  std::string Submit() { return Submit(endpoint_); }
  // Takes exactly one queued job of the endpoint for `worker`.
  std::string Take(const std::string& worker, const EndpointRecord& e) {
    auto taken = board_->Take(e.id, worker, 1, 0ms);
    EXPECT_EQ(taken.size(), 1u);
    return taken.empty() ? "" : taken[0].id;
  }
  std::string Take(const std::string& worker) { return Take(worker, endpoint_); }
  void Complete(const std::string& worker, const std::string& id) {
    bool stop_pod = false;
    ASSERT_TRUE(board_->Done(endpoint_.id, worker, id, R"({"output": "ok"})", &stop_pod).ok());
  }
  // The job's status, or "gone" once it is deleted.
  std::string StatusOf(const std::string& id, const EndpointRecord& e) {
    auto j = board_->Get(e.id, id);
    return j.ok() ? j->status : "gone";
  }
  std::string StatusOf(const std::string& id) { return StatusOf(id, endpoint_); }
  // Tick() and how many jobs it looked at.
  uint64_t Tick() {
    const uint64_t before = board_->TickVisits();
    board_->Tick();
    return board_->TickVisits() - before;
  }
  std::vector<std::string> RecentIds(const EndpointRecord& e, int limit) {
    std::vector<std::string> ids;
    for (const JobRecord& j : board_->Recent(e.id, limit)) ids.push_back(j.id);
    return ids;
  }

  fs::path root_;
  FakeClock clock_;
  std::unique_ptr<ControllerStore> store_;
  std::unique_ptr<JobBoard> board_;
  EndpointRecord endpoint_, other_;
  std::vector<JobRecord> finals_;
  std::vector<WebhookDelivery> hooked_webhooks_;  // what the final hook was handed
  int submitted_ = 0;
};

// ---- the deadline index ----

TEST_F(JobBoardTest, TickLooksAtDueJobsOnly) {
  for (int i = 0; i < 500; ++i) Submit();
  SubmitRequest short_ttl;
  short_ttl.ttl_ms = 10'000;
  const std::string brief = Submit(endpoint_, short_ttl);
  EXPECT_EQ(Tick(), 0u);
  clock_.Advance(10s);
  EXPECT_EQ(Tick(), 0u);  // due once the clock is past the deadline, not at it
  clock_.Advance(1ms);
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(brief), "gone");
  EXPECT_EQ(board_->Load(endpoint_.id).in_queue, 500);
  EXPECT_EQ(Tick(), 0u);
}

TEST_F(JobBoardTest, QueuedJobHasNoExecutionTimeout) {
  const std::string id = Submit();
  clock_.Advance(std::chrono::milliseconds(kExecutionMs) * 5);
  EXPECT_EQ(Tick(), 0u);
  EXPECT_EQ(StatusOf(id), kInQueue);
}

TEST_F(JobBoardTest, StartingAJobMovesItsDeadlineToTheExecutionTimeout) {
  const std::string id = Submit();
  clock_.Advance(20s);
  ASSERT_EQ(Take("w-1"), id);
  clock_.Advance(std::chrono::milliseconds(kExecutionMs));
  EXPECT_EQ(Tick(), 0u);
  EXPECT_EQ(StatusOf(id), kInProgress);
  clock_.Advance(1ms);
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(id), kTimedOut);
  ASSERT_EQ(finals_.size(), 1u);
  EXPECT_EQ(finals_[0].status, kTimedOut);
  EXPECT_EQ(board_->TakeStops("w-1", 0ms), std::vector<std::string>{id});
  EXPECT_EQ(board_->HeldBy("w-1"), 0);
}

TEST_F(JobBoardTest, RunningJobStillEndsAtItsTtlWhenThatComesFirst) {
  SubmitRequest r;
  r.ttl_ms = 15'000;
  const std::string id = Submit(endpoint_, r);
  clock_.Advance(10s);
  ASSERT_EQ(Take("w-1"), id);  // execution deadline 20 s, TTL 15 s
  clock_.Advance(5001ms);
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(id), "gone");
  EXPECT_TRUE(finals_.empty());  // a TTL deletes; it is not a final status
  EXPECT_EQ(board_->TakeStops("w-1", 0ms), std::vector<std::string>{id});
  EXPECT_EQ(board_->HeldBy("w-1"), 0);
}

TEST_F(JobBoardTest, FinishingAJobMovesItsDeadlineToTheEndOfRetention) {
  SubmitRequest r;
  r.ttl_ms = 60'000;
  const std::string id = Submit(endpoint_, r);
  ASSERT_EQ(Take("w-1"), id);
  Complete("w-1", id);
  clock_.Advance(61s);  // past the TTL, and past the execution timeout: neither applies now
  EXPECT_EQ(Tick(), 0u);
  EXPECT_EQ(StatusOf(id), kCompleted);
  clock_.Advance(kRetention - 61s);
  EXPECT_EQ(Tick(), 0u);
  clock_.Advance(1ms);
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(id), "gone");
}

TEST_F(JobBoardTest, RunsyncResultsAreKeptForTheShorterRetention) {
  SubmitRequest r;
  r.sync = true;
  const std::string sync = Submit(endpoint_, r);
  const std::string async = Submit();
  ASSERT_TRUE(board_->Cancel(endpoint_.id, sync).ok());
  ASSERT_TRUE(board_->Cancel(endpoint_.id, async).ok());
  clock_.Advance(kSyncRetention + 1ms);
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(sync), "gone");
  EXPECT_EQ(StatusOf(async), kCancelled);
}

TEST_F(JobBoardTest, RequeueMovesTheDeadlineBackToTheTtl) {
  const std::string id = Submit();
  ASSERT_EQ(Take("w-1"), id);
  clock_.Advance(5s);
  board_->RequeueWorker("w-1", "test");
  EXPECT_EQ(StatusOf(id), kInQueue);
  clock_.Advance(10s);  // past the first attempt's execution deadline
  EXPECT_EQ(Tick(), 0u);
  EXPECT_EQ(StatusOf(id), kInQueue);
  ASSERT_EQ(Take("w-2"), id);  // the timeout counts from this start
  clock_.Advance(std::chrono::milliseconds(kExecutionMs));
  EXPECT_EQ(Tick(), 0u);
  clock_.Advance(1ms);
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(id), kTimedOut);
}

TEST_F(JobBoardTest, UnlistedJobRequeuedByAPingLeavesTheWorkersDeadline) {
  const std::string id = Submit();
  ASSERT_EQ(Take("w-1"), id);
  clock_.Advance(JobBoardOptions{}.unlisted_grace);  // longer than the execution timeout
  board_->Ping("w-1", {});
  EXPECT_EQ(StatusOf(id), kInQueue);
  EXPECT_EQ(board_->HeldBy("w-1"), 0);
  EXPECT_EQ(Tick(), 0u);
  EXPECT_EQ(StatusOf(id), kInQueue);
}

TEST_F(JobBoardTest, RetryGivesAFinalJobItsTtlDeadlineAgain) {
  const std::string id = Submit();
  ASSERT_EQ(Take("w-1"), id);
  clock_.Advance(std::chrono::milliseconds(kExecutionMs) + 1ms);
  ASSERT_EQ(Tick(), 1u);
  ASSERT_EQ(StatusOf(id), kTimedOut);
  ASSERT_TRUE(board_->Retry(endpoint_.id, id).ok());
  clock_.Advance(kRetention + 1s);  // a final job would be gone by now; a queued one waits
  EXPECT_EQ(Tick(), 0u);
  EXPECT_EQ(StatusOf(id), kInQueue);
  clock_.Advance(std::chrono::milliseconds(kTtlMs) - kRetention);  // the TTL, from submission
  EXPECT_EQ(Tick(), 1u);
  EXPECT_EQ(StatusOf(id), "gone");
}

TEST_F(JobBoardTest, DeletedJobsLeaveTheIndexes) {
  const std::string purged = Submit();
  const std::string cancelled = Submit();
  ASSERT_TRUE(board_->Cancel(endpoint_.id, cancelled).ok());
  Submit();
  ASSERT_EQ(board_->Purge(endpoint_.id).value(), 2);
  EXPECT_EQ(StatusOf(purged), "gone");
  EXPECT_EQ(StatusOf(cancelled), kCancelled);
  // Forget the endpoint with a running and a finished job in it.
  const std::string held = Submit();
  ASSERT_EQ(Take("w-1"), held);
  const std::string elsewhere = Submit(other_);
  ASSERT_EQ(Take("w-2", other_), elsewhere);
  board_->ForgetEndpoint(endpoint_.id);
  EXPECT_EQ(board_->HeldBy("w-1"), 0);
  EXPECT_TRUE(RecentIds(endpoint_, 10).empty());
  EXPECT_EQ(board_->Counts(endpoint_.id).in_progress, 0u);
  EXPECT_EQ(board_->Load(endpoint_.id).in_progress, 0);
  // Nothing purged or forgotten is ever due; the other endpoint's job still is.
  clock_.Advance(std::chrono::milliseconds(kExecutionMs) + 1ms);
  EXPECT_EQ(Tick(), 1u);  // not `held`
  EXPECT_EQ(StatusOf(elsewhere, other_), kTimedOut);
  EXPECT_EQ(board_->HeldBy("w-2"), 0);
  clock_.Advance(std::chrono::milliseconds(kTtlMs));
  EXPECT_EQ(Tick(), 1u);  // not the purged jobs' TTLs, nor the cancelled job's retention
  EXPECT_EQ(StatusOf(elsewhere, other_), "gone");
  EXPECT_EQ(Tick(), 0u);
}

// ---- the per-worker index ----

TEST_F(JobBoardTest, HeldByCountsTheWorkersRunningJobsOnly) {
  for (int i = 0; i < 5; ++i) Submit();
  const std::string a1 = Take("w-1"), a2 = Take("w-1"), a3 = Take("w-1");
  const std::string b1 = Take("w-2"), b2 = Take("w-2");
  EXPECT_EQ(board_->HeldBy("w-1"), 3);
  EXPECT_EQ(board_->HeldBy("w-2"), 2);
  EXPECT_EQ(board_->HeldBy("w-3"), 0);
  Complete("w-1", a1);
  EXPECT_EQ(board_->HeldBy("w-1"), 2);
  Complete("w-2", a2);  // not its job: ignored
  EXPECT_EQ(board_->HeldBy("w-1"), 2);
  ASSERT_TRUE(board_->Cancel(endpoint_.id, b1).ok());
  EXPECT_EQ(board_->HeldBy("w-2"), 1);
  clock_.Advance(JobBoardOptions{}.unlisted_grace);
  board_->Ping("w-1", {a3});  // a2 is no longer listed: requeued
  EXPECT_EQ(board_->HeldBy("w-1"), 1);
  EXPECT_EQ(StatusOf(a2), kInQueue);
  board_->RequeueWorker("w-1", "test");
  EXPECT_EQ(board_->HeldBy("w-1"), 0);
  EXPECT_EQ(StatusOf(a3), kInQueue);
  EXPECT_EQ(StatusOf(b2), kInProgress);
  EXPECT_EQ(board_->Counts(endpoint_.id).retried, 2u);
}

TEST_F(JobBoardTest, RequeueOrphansAsksAboutHoldersOnly) {
  for (int i = 0; i < 4; ++i) Submit();
  const std::string a = Take("w-live");
  const std::string b = Take("w-dead");
  const std::string c = Take("w-done");
  Complete("w-done", c);
  std::vector<std::string> asked;
  board_->RequeueOrphans([&](const std::string& w) {
    asked.push_back(w);
    return w != "w-dead";
  });
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::string>{"w-dead", "w-live"}));
  EXPECT_EQ(StatusOf(a), kInProgress);
  EXPECT_EQ(StatusOf(b), kInQueue);
  EXPECT_EQ(board_->HeldBy("w-dead"), 0);
}

TEST_F(JobBoardTest, LoadRebuildsEveryIndex) {
  const std::string completed = Submit();
  clock_.Advance(1ms);
  const std::string running = Submit();
  clock_.Advance(1ms);
  const std::string queued = Submit();
  ASSERT_EQ(Take("w-1"), completed);  // FIFO: the oldest first
  ASSERT_EQ(Take("w-1"), running);
  Complete("w-1", completed);
  board_ = NewBoard();  // a restarted controller, same store
  ASSERT_TRUE(board_->Load().ok());
  EXPECT_EQ(board_->HeldBy("w-1"), 1);
  EXPECT_EQ(RecentIds(endpoint_, 10), (std::vector<std::string>{queued, running, completed}));
  EXPECT_EQ(board_->Load(endpoint_.id).in_queue, 1);
  EXPECT_EQ(board_->Load(endpoint_.id).in_progress, 1);
  EXPECT_EQ(Take("w-2"), queued);
  clock_.Advance(std::chrono::milliseconds(kExecutionMs) + 1ms);
  EXPECT_EQ(Tick(), 2u);  // both running jobs time out
  EXPECT_EQ(StatusOf(running), kTimedOut);
  EXPECT_EQ(StatusOf(queued), kTimedOut);
  EXPECT_EQ(board_->HeldBy("w-1"), 0);
  clock_.Advance(kRetention - std::chrono::milliseconds(kExecutionMs));
  EXPECT_EQ(Tick(), 1u);  // the loaded result's retention; the timed-out ones end 10 s later
  EXPECT_EQ(StatusOf(completed), "gone");
}

// ---- stream chunks ----

TEST_F(JobBoardTest, AppendingAStreamChunkReadsNoEarlierChunk) {
  const std::string id = Submit();
  ASSERT_EQ(Take("w-1"), id);
  constexpr int kChunks = 2000;
  for (int i = 0; i < kChunks; ++i) {
    ASSERT_TRUE(board_->Stream(endpoint_.id, "w-1", id, std::to_string(i)).ok()) << i;
  }
  EXPECT_EQ(board_->ChunkRowsRead(), 0u);  // re-reading every earlier one: ~2 million rows
  auto consumed = board_->ConsumeStream(endpoint_.id, id);
  ASSERT_TRUE(consumed.ok()) << consumed.status().ToString();
  ASSERT_EQ(consumed->second.size(), static_cast<size_t>(kChunks));
  for (int i = 0; i < kChunks; ++i) EXPECT_EQ(consumed->second[i], std::to_string(i));
  EXPECT_EQ(board_->ChunkRowsRead(), static_cast<uint64_t>(kChunks));  // each read once
  ASSERT_TRUE(board_->ConsumeStream(endpoint_.id, id).ok());           // nothing new: no store read
  EXPECT_EQ(board_->ChunkRowsRead(), static_cast<uint64_t>(kChunks));
}

TEST_F(JobBoardTest, ALoadedJobsStreamContinuesAfterReadingItsUndeliveredChunksOnce) {
  const std::string id = Submit();
  ASSERT_EQ(Take("w-1"), id);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(board_->Stream(endpoint_.id, "w-1", id, "0").ok());
  ASSERT_TRUE(board_->ConsumeStream(endpoint_.id, id).ok());  // 10 delivered
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(board_->Stream(endpoint_.id, "w-1", id, "1").ok());
  board_ = NewBoard();  // a restarted controller, same store
  ASSERT_TRUE(board_->Load().ok());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(board_->Stream(endpoint_.id, "w-1", id, "2").ok()) << i;
  }
  EXPECT_EQ(board_->ChunkRowsRead(), 5u);  // the undelivered ones, once: the count is known
  auto consumed = board_->ConsumeStream(endpoint_.id, id);
  ASSERT_TRUE(consumed.ok()) << consumed.status().ToString();
  ASSERT_EQ(consumed->second.size(), 105u);
  EXPECT_EQ(consumed->second.front(), "1");
  EXPECT_EQ(consumed->second.back(), "2");
}

// ---- webhook deliveries ----

TEST_F(JobBoardTest, FinalJobWithAWebhookIsStoredWithItsDelivery) {
  SubmitRequest r;
  r.webhook = "http://receiver.invalid/hook?secret=s";
  const std::string id = Submit(endpoint_, r);
  const std::string plain = Submit();
  ASSERT_EQ(Take("w-1"), id);
  Complete("w-1", id);
  ASSERT_TRUE(board_->Cancel(endpoint_.id, plain).ok());  // no webhook: no delivery
  auto stored = store_->ListWebhooks();
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(stored->size(), 1u);
  const WebhookDelivery& d = (*stored)[0];
  EXPECT_GT(d.id, 0);
  EXPECT_EQ(d.job_id, id);
  EXPECT_EQ(d.url, r.webhook);
  EXPECT_EQ(d.tries, 0);
  const JobRecord job = board_->Get(endpoint_.id, id).value();
  EXPECT_EQ(d.body_json, JobStatusObject(job).dump());
  EXPECT_EQ(d.next_attempt_ms, job.completed_ms.value_or(-1));
  // The hook is handed the same delivery, with its outbox id; the job row is final.
  ASSERT_EQ(hooked_webhooks_.size(), 1u);
  EXPECT_EQ(hooked_webhooks_[0].id, d.id);
  EXPECT_EQ(hooked_webhooks_[0].body_json, d.body_json);
  EXPECT_EQ(store_->GetJob(id).value()->status, kCompleted);
  EXPECT_EQ(finals_.size(), 2u);
}

TEST_F(JobBoardTest, EveryWayToEndRecordsADeliveryInOrder) {
  SubmitRequest r;
  r.webhook = "http://receiver.invalid/hook";
  const std::string cancelled = Submit(endpoint_, r);
  const std::string timed_out = Submit(endpoint_, r);
  const std::string failed = Submit(endpoint_, r);
  ASSERT_TRUE(board_->Cancel(endpoint_.id, cancelled).ok());
  ASSERT_EQ(Take("w-1"), timed_out);
  ASSERT_EQ(Take("w-2"), failed);
  bool stop_pod = false;
  ASSERT_TRUE(board_->Done(endpoint_.id, "w-2", failed, R"({"error": "boom"})", &stop_pod).ok());
  clock_.Advance(std::chrono::milliseconds(kExecutionMs) + 1ms);
  ASSERT_EQ(Tick(), 1u);
  std::vector<std::pair<std::string, std::string>> got;  // (job, status in the body)
  const std::vector<WebhookDelivery> stored = store_->ListWebhooks().value();
  for (const WebhookDelivery& d : stored) {
    got.emplace_back(d.job_id, nlohmann::json::parse(d.body_json)["status"].get<std::string>());
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {cancelled, kCancelled}, {failed, kFailed}, {timed_out, kTimedOut}}));
}

TEST_F(JobBoardTest, DeliveryOutlivesItsJobsRetentionAndARetry) {
  SubmitRequest r;
  r.webhook = "http://receiver.invalid/hook";
  const std::string kept = Submit(endpoint_, r);
  const std::string retried = Submit(endpoint_, r);
  ASSERT_TRUE(board_->Cancel(endpoint_.id, kept).ok());
  ASSERT_EQ(Take("w-1"), retried);
  bool stop_pod = false;
  ASSERT_TRUE(board_->Done(endpoint_.id, "w-1", retried, R"({"error": "boom"})", &stop_pod).ok());
  ASSERT_TRUE(board_->Retry(endpoint_.id, retried).ok());  // queued again: its FAILED stays sent
  clock_.Advance(kRetention + 1ms);
  ASSERT_EQ(Tick(), 1u);
  ASSERT_EQ(StatusOf(kept), "gone");
  const auto stored = store_->ListWebhooks().value();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].job_id, kept);
  EXPECT_EQ(nlohmann::json::parse(stored[0].body_json)["status"], kCancelled);
  EXPECT_EQ(stored[1].job_id, retried);
  EXPECT_EQ(nlohmann::json::parse(stored[1].body_json)["status"], kFailed);
}

// ---- Recent ----

TEST_F(JobBoardTest, RecentIsNewestFirstWithinTheLimit) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Submit());  // same millisecond: arrival order counts
  Submit(other_);
  EXPECT_EQ(RecentIds(endpoint_, 3), (std::vector<std::string>{ids[4], ids[3], ids[2]}));
  EXPECT_EQ(RecentIds(endpoint_, 100).size(), 5u);
  EXPECT_TRUE(RecentIds(endpoint_, 0).empty());
  EXPECT_TRUE(RecentIds(endpoint_, -1).empty());
  EXPECT_TRUE(board_->Recent("ep-unknown", 10).empty());
}

TEST_F(JobBoardTest, RecentShowsEveryStatusWithItsFields) {
  const std::string failed = Submit();
  const std::string completed = Submit();
  const std::string cancelled = Submit();
  const std::string running = Submit();
  const std::string queued = Submit();
  ASSERT_EQ(Take("w-1"), failed);
  bool stop_pod = false;
  ASSERT_TRUE(board_->Done(endpoint_.id, "w-1", failed, R"({"error": "boom"})", &stop_pod).ok());
  ASSERT_EQ(Take("w-1"), completed);
  Complete("w-1", completed);
  ASSERT_TRUE(board_->Cancel(endpoint_.id, cancelled).ok());
  ASSERT_EQ(Take("w-1"), running);
  const std::vector<JobRecord> recent = board_->Recent(endpoint_.id, 10);
  ASSERT_EQ(recent.size(), 5u);
  EXPECT_EQ(recent[0].id, queued);
  EXPECT_EQ(recent[0].status, kInQueue);
  EXPECT_EQ(recent[1].status, kInProgress);
  EXPECT_EQ(recent[1].worker_id, "w-1");
  EXPECT_EQ(recent[2].status, kCancelled);
  EXPECT_EQ(recent[3].status, kCompleted);
  EXPECT_EQ(recent[3].output_json.value_or(""), R"("ok")");
  EXPECT_EQ(recent[4].status, kFailed);
  EXPECT_EQ(recent[4].error.value_or(""), "boom");
  EXPECT_EQ(recent[4].input_json, R"({"n": 1})");
}

TEST_F(JobBoardTest, RecentDropsExpiredJobsAndKeepsARetriedJobInItsPlace) {
  const std::string first = Submit();
  clock_.Advance(1s);
  const std::string second = Submit();
  clock_.Advance(1s);
  const std::string third = Submit();
  ASSERT_EQ(Take("w-1"), first);
  bool stop_pod = false;
  ASSERT_TRUE(board_->Done(endpoint_.id, "w-1", first, R"({"error": "x"})", &stop_pod).ok());
  ASSERT_TRUE(board_->Retry(endpoint_.id, first).ok());
  EXPECT_EQ(RecentIds(endpoint_, 10), (std::vector<std::string>{third, second, first}));
  ASSERT_TRUE(board_->Cancel(endpoint_.id, third).ok());
  clock_.Advance(kRetention + 1ms);  // the cancelled job's result expires
  board_->Tick();
  EXPECT_EQ(RecentIds(endpoint_, 10), (std::vector<std::string>{second, first}));
}

// ---- long-polls on the clock ----

TEST_F(JobBoardTest, TakeWithNothingQueuedWaitsTheHoldOnTheClock) {
  std::atomic<bool> done{false};
  std::jthread worker([&] {
    EXPECT_TRUE(board_->Take(endpoint_.id, "w-1", 1, 2s).empty());
    done = true;
  });
  ASSERT_TRUE(clock_.AwaitParked(1));  // the take waits, with its deadline 2 s ahead
  clock_.Advance(1999ms);
  EXPECT_FALSE(done);  // still 1 ms to go (a wait would not end early on its own)
  clock_.Advance(1ms);
  worker.join();
  EXPECT_TRUE(done);
}

TEST_F(JobBoardTest, TakeWaitingForAJobGetsTheOneQueuedDuringItsHold) {
  std::vector<JobRecord> taken;
  std::jthread worker([&] { taken = board_->Take(endpoint_.id, "w-1", 1, 60s); });
  ASSERT_TRUE(clock_.AwaitParked(1));
  const std::string id = Submit();
  worker.join();  // no Advance: the job ends the wait
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, id);
}

TEST_F(JobBoardTest, WaitFinalAnswersTheJobAsItIsWhenTheWaitRunsOut) {
  const std::string id = Submit();
  StatusOr<JobRecord> got = NotFoundError("not yet");
  std::jthread client([&] { got = board_->WaitFinal(endpoint_.id, id, 1s); });
  ASSERT_TRUE(clock_.AwaitParked(1));
  clock_.Advance(1s);
  client.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, kInQueue);
}

// Job ids carry 128 random bits (OpenSSL's CSPRNG): every one of the 32 hex digits varies, none
// is fixed (a UUIDv4 fixes six bits; a 32-bit-seeded generator makes ids predictable).
TEST_F(JobBoardTest, EveryHexDigitOfAJobIdIsRandom) {
  std::vector<std::set<char>> seen(32);
  for (int i = 0; i < 400; ++i) {
    std::string id = Submit();
    ASSERT_TRUE(id.ends_with("-u1")) << id;
    id = id.substr(0, id.size() - 3);
    std::erase(id, '-');
    ASSERT_EQ(id.size(), 32u) << id;
    for (size_t d = 0; d < 32; ++d) seen[d].insert(id[d]);
  }
  for (size_t d = 0; d < 32; ++d) EXPECT_GE(seen[d].size(), 12u) << "hex digit " << d;
}

}  // namespace
}  // namespace mc::controller
