// JobBoard: the jobs of every endpoint, as Runpod's /v2 API and worker protocol see them
// (runpod-protocol.md §1-§2). Every change is written to the store before it is visible, so a
// controller restart loses no queued job and no result; memory holds an index for long-polls.
//
// Lifecycle: IN_QUEUE (submit, retry, requeue) → IN_PROGRESS (taken by a worker) → COMPLETED |
// FAILED (the worker's result) | CANCELLED (/cancel) | TIMED_OUT (execution timeout). A job past
// its TTL, queued or running, is deleted (a running one is told to stop; status then answers 404),
// as is a final job once its result retention ends. A job with a webhook that becomes final is
// written together with its webhook delivery (ControllerStore::PutJobWithWebhook), in one
// transaction, so a final job whose delivery is not recorded is never seen, across a crash either.
//
// Worker side: Take() long-polls for queued jobs; Done() is idempotent and never refuses a late
// or duplicate result (answering 4xx would make the SDK lose it): results of jobs that are final,
// unknown or taken over by another worker are ignored. Progress updates ({"status":
// "IN_PROGRESS", "output": ...}) set the output of a running job only. Cancel, execution timeout
// and TTL put the job on its worker's stop list (the SDK's job-stop channel). A worker whose ping
// stops listing a job it holds, or that is lost, gets the job requeued (counted in `retries`).
//
// Indexes: besides the FIFO queues, memory keeps, per job, only what its fields call for: queued
// counts and running ids per endpoint, the jobs each worker holds, one deadline (the TTL, or the
// earlier of TTL and execution timeout while it runs, or the end of result retention once final)
// in one ordered set, and every job of an endpoint by arrival. So Tick() touches the due jobs
// only, HeldBy() and Ping() the worker's own jobs, Recent() `limit` jobs.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "controller/store.h"
#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::controller {

inline constexpr const char* kInQueue = "IN_QUEUE";
inline constexpr const char* kInProgress = "IN_PROGRESS";
inline constexpr const char* kCompleted = "COMPLETED";
inline constexpr const char* kFailed = "FAILED";
inline constexpr const char* kCancelled = "CANCELLED";
inline constexpr const char* kTimedOut = "TIMED_OUT";

bool IsFinal(const std::string& status);

// The Runpod status object of a job (runpod-protocol.md §1): id and status, then delayTime,
// executionTime, output, error, retries and workerId when they are known. What a webhook
// receives (and what /status answers).
nlohmann::json JobStatusObject(const JobRecord& job);

struct SubmitRequest {
  std::string input_json;
  std::string extra_json = "{}";
  std::string webhook;
  bool low_priority = false;
  std::optional<int64_t> execution_timeout_ms;  // policy; else the endpoint's
  std::optional<int64_t> ttl_ms;                // policy; else the endpoint's
  bool sync = false;                            // runsync: id "sync-<uuid>"
};

struct QueueLoad {
  int in_queue = 0;
  int in_queue_scaling = 0;  // not low priority
  std::optional<int64_t> oldest_ms;  // enqueue time of the oldest scaling job
  int in_progress = 0;
};

struct JobCounts {
  uint64_t completed = 0, failed = 0, in_progress = 0, in_queue = 0, retried = 0;
};

struct JobBoardOptions {
  std::chrono::milliseconds result_retention{30 * 60 * 1000};
  std::chrono::milliseconds sync_result_retention{5 * 60 * 1000};
  // A job a worker holds but its pings stop listing is requeued after this long.
  std::chrono::milliseconds unlisted_grace{30'000};
};

class JobBoard {
 public:
  // Called (outside locks) when a job reaches a final state: webhooks, metrics. `webhook` is
  // null unless the job has one; then it is the delivery that was written to the store's outbox
  // in the same transaction as the final status (its id is 0 if that write failed: the job is
  // final in memory only, and so is its delivery).
  using FinalHook = std::function<void(const JobRecord& job, const WebhookDelivery* webhook)>;

  JobBoard(ControllerStore& store, Clock& clock, JobBoardOptions options, FinalHook on_final);

  // Loads non-final and retained jobs after a restart.
  Status Load();

  StatusOr<JobRecord> Submit(const EndpointRecord& endpoint, const SubmitRequest& request);
  // NotFound for unknown, expired or another endpoint's jobs.
  StatusOr<JobRecord> Get(const std::string& endpoint_id, const std::string& job_id) const;
  // Waits until the job is final or `wait` passes; returns it as it is then.
  StatusOr<JobRecord> WaitFinal(const std::string& endpoint_id, const std::string& job_id,
                                std::chrono::milliseconds wait) const;
  // Takes up to `max` queued jobs for `worker_id`, waiting up to `hold` (on the clock) for one.
  // Empty = none.
  // `accepts` is asked right before jobs are handed out: a worker that is being stopped while its
  // take waits gets none (its client may be gone, and the job would be lost with it).
  std::vector<JobRecord> Take(const std::string& endpoint_id, const std::string& worker_id,
                              int max, std::chrono::milliseconds hold,
                              const std::function<bool()>& accepts = {});
  // A worker's result or progress update (raw JSON body). Sets *stop_pod when the result asks to
  // recycle the worker. Always OK for results it ignores (see the header comment).
  Status Done(const std::string& endpoint_id, const std::string& worker_id,
              const std::string& job_id, const std::string& body, bool* stop_pod);
  Status Stream(const std::string& endpoint_id, const std::string& worker_id,
                const std::string& job_id, const std::string& body);
  // The chunks not yet delivered (consume-on-read) and the job.
  StatusOr<std::pair<JobRecord, std::vector<std::string>>> ConsumeStream(
      const std::string& endpoint_id, const std::string& job_id);
  StatusOr<JobRecord> Cancel(const std::string& endpoint_id, const std::string& job_id);
  // FAILED or TIMED_OUT jobs only (FailedPrecondition otherwise).
  StatusOr<JobRecord> Retry(const std::string& endpoint_id, const std::string& job_id);
  StatusOr<int> Purge(const std::string& endpoint_id);
  // Job ids `worker_id` must stop, waiting up to `hold` for one.
  std::vector<std::string> TakeStops(const std::string& worker_id, std::chrono::milliseconds hold);
  // A heartbeat listing the jobs the worker runs; jobs it holds but no longer lists are requeued
  // after the grace.
  void Ping(const std::string& worker_id, const std::vector<std::string>& job_ids);
  // The worker is gone: its jobs go back to the queue.
  void RequeueWorker(const std::string& worker_id, const std::string& reason);
  // TTLs, execution timeouts, retention. Called by the controller's loop.
  void Tick();
  // Requeues running jobs whose worker `is_live` says is gone (a take answered to a worker that
  // died meanwhile). Called by the controller's loop.
  void RequeueOrphans(const std::function<bool(const std::string& worker_id)>& is_live);
  // Jobs a worker holds (for the fleet's idle/running phase).
  int HeldBy(const std::string& worker_id) const;
  // The newest `limit` jobs of an endpoint (by submission; a retried job keeps its place), any
  // status, finished ones while their result is retained; newest first. Empty for an unknown
  // endpoint or limit <= 0. Records are whole (input and output included).
  std::vector<JobRecord> Recent(const std::string& endpoint_id, int limit) const;
  QueueLoad Load(const std::string& endpoint_id) const;
  JobCounts Counts(const std::string& endpoint_id) const;
  // Drops an endpoint's jobs from memory (the store deletes them with the endpoint).
  void ForgetEndpoint(const std::string& endpoint_id);
  // Wakes every long-poll (shutdown).
  void WakeAll();
  // Jobs Tick() has looked at since construction: the due ones only (tests check that a tick
  // does not walk every job).
  uint64_t TickVisits() const;
  // Stream chunks read from the store since construction: /stream's undelivered ones, and a
  // loaded job's undelivered ones once (to learn its count). Appending a chunk reads none (tests
  // check that a chunk is appended in O(1), not after re-reading every earlier one).
  uint64_t ChunkRowsRead() const;

 private:
  struct Entry {
    // job.status, worker_id, started_ms and completed_ms change only in MoveLocked(), so that
    // the indexes below always match them.
    JobRecord job;
    uint64_t seq = 0;  // arrival order (Submit; store order at Load): ties in by_endpoint_
    std::optional<int64_t> unlisted_since_ms;  // held, but the worker's pings omit it
    std::optional<int64_t> deadline_ms;        // its key in deadlines_, while it has one
    // Stream chunks the store holds for the job (the next one's seq): known from submission,
    // or read once after a restart (ChunkCountLocked).
    std::optional<int64_t> chunks;
  };
  // A job that reached a final state, for the hooks.
  struct Final {
    JobRecord job;
    std::optional<WebhookDelivery> webhook;
  };
  Status SaveLocked(const JobRecord& job);
  void FinishLocked(Entry& e, const std::string& status, std::vector<Final>* finals);
  void RequeueLocked(Entry& e, const std::string& reason);
  void StopLocked(const JobRecord& job);
  // The index maintenance, in one place. AddLocked inserts a job (as its record says) and
  // EraseLocked forgets one; MoveLocked is every status change: IN_QUEUE clears the worker and
  // times, IN_PROGRESS sets worker_id and started_ms, a final status sets completed_ms.
  Entry& AddLocked(JobRecord job);
  void EraseLocked(const std::string& id);
  void MoveLocked(Entry& e, const std::string& status, const std::string& worker_id = "");
  void IndexLocked(Entry& e);
  void UnindexLocked(Entry& e);
  // When Tick() must look at the job next (it acts once the clock is past it), if ever.
  std::optional<int64_t> DeadlineOf(const JobRecord& job) const;
  Status SkipUndeliveredChunksLocked(Entry& e);
  StatusOr<int64_t> ChunkCountLocked(Entry& e);
  void DeleteLocked(const std::string& id);  // the store's row and the memory
  StatusOr<Entry*> FindLocked(const std::string& endpoint_id, const std::string& job_id);
  void RunFinalHooks(const std::vector<Final>& finals);
  int64_t NowMs() const;

  ControllerStore& store_;
  Clock& clock_;
  const JobBoardOptions options_;
  FinalHook on_final_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::map<std::string, Entry> jobs_;                           // by id
  std::map<std::string, std::deque<std::string>> queues_;       // endpoint → queued ids, FIFO
  std::map<std::string, std::set<std::string>> stops_;          // worker → job ids to stop
  // Indexes (IndexLocked / UnindexLocked only):
  std::map<std::string, std::set<std::string>> running_;        // endpoint → IN_PROGRESS ids
  std::map<std::string, std::set<std::string>> held_;           // worker → IN_PROGRESS ids
  std::set<std::pair<int64_t, std::string>> deadlines_;         // (deadline ms, id)
  struct QueuedCount {
    int all = 0;
    int scaling = 0;  // not low priority
  };
  std::map<std::string, QueuedCount> queued_;  // endpoint → IN_QUEUE counts
  // endpoint → every job by (created_ms, seq) (AddLocked / EraseLocked).
  std::map<std::string, std::map<std::pair<int64_t, uint64_t>, std::string>> by_endpoint_;
  std::map<std::string, uint64_t> retried_;                     // endpoint → requeues
  uint64_t next_seq_ = 0;
  uint64_t tick_visits_ = 0;
  uint64_t chunk_rows_read_ = 0;
  bool woken_ = false;
};

}  // namespace mc::controller
