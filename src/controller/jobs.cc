#include "controller/jobs.h"

#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mc::controller {

using json = nlohmann::json;

bool IsFinal(const std::string& s) {
  return s == kCompleted || s == kFailed || s == kCancelled || s == kTimedOut;
}

json JobStatusObject(const JobRecord& j) {
  json o{{"id", j.id}, {"status", j.status}};
  if (j.started_ms) o["delayTime"] = *j.started_ms - j.created_ms;
  if (j.started_ms && j.completed_ms) o["executionTime"] = *j.completed_ms - *j.started_ms;
  if (j.output_json) {
    json out = json::parse(*j.output_json, nullptr, false);
    if (!out.is_discarded()) o["output"] = out;
  }
  if (j.error) o["error"] = *j.error;
  if (j.retries > 0) o["retries"] = j.retries;
  if (!j.worker_id.empty()) o["workerId"] = j.worker_id;
  return o;
}

namespace {

// A job id's random part: 128 bits from OpenSSL's CSPRNG in the 8-4-4-4-12 hex layout of a
// UUID (all 128 random, no version nibble), so that ids cannot be guessed or predicted.
std::string Uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) std::abort();  // no entropy: never hand out guessable ids
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 15];
  }
  return out;
}

// a + b, kept at the int64 limits (a TTL from the store is not checked against them).
int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

}  // namespace

JobBoard::JobBoard(ControllerStore& store, Clock& clock, JobBoardOptions options,
                   FinalHook on_final)
    : store_(store), clock_(clock), options_(options), on_final_(std::move(on_final)) {}

int64_t JobBoard::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

Status JobBoard::Load() {
  MC_ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, store_.ListJobs("", {}));
  std::lock_guard<std::mutex> lock(mu_);
  for (JobRecord& j : jobs) {  // oldest first: queues stay FIFO, seq follows arrival
    if (j.status == kInQueue) queues_[j.endpoint_id].push_back(j.id);
    AddLocked(std::move(j));
  }
  return Status::Ok();
}

Status JobBoard::SaveLocked(const JobRecord& job) {
  Status s = store_.PutJob(job);
  if (!s.ok()) spdlog::error("controller: save job {}: {}", job.id, s.ToString());
  return s;
}

StatusOr<JobRecord> JobBoard::Submit(const EndpointRecord& endpoint,
                                     const SubmitRequest& request) {
  JobRecord j;
  j.id = request.sync ? "sync-" + Uuid() : Uuid() + "-u1";
  j.endpoint_id = endpoint.id;
  j.tenant = endpoint.tenant;
  j.status = kInQueue;
  j.input_json = request.input_json;
  j.extra_json = request.extra_json;
  j.webhook = request.webhook;
  j.low_priority = request.low_priority;
  j.execution_timeout_ms = request.execution_timeout_ms.value_or(endpoint.execution_timeout_ms);
  j.ttl_ms = request.ttl_ms.value_or(endpoint.ttl_ms);
  j.created_ms = NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    MC_RETURN_IF_ERROR(SaveLocked(j), "queue the job");
    AddLocked(j).chunks = 0;  // a new id: the store has no chunk of it
    queues_[j.endpoint_id].push_back(j.id);
  }
  changed_.notify_all();
  return j;
}

StatusOr<JobBoard::Entry*> JobBoard::FindLocked(const std::string& endpoint_id,
                                                const std::string& job_id) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.job.endpoint_id != endpoint_id) {
    return NotFoundError("no job " + job_id.substr(0, 80) + " on this endpoint");
  }
  return &it->second;
}

StatusOr<JobRecord> JobBoard::Get(const std::string& endpoint_id,
                                  const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.job.endpoint_id != endpoint_id) {
    return NotFoundError("no job " + job_id.substr(0, 80) + " on this endpoint");
  }
  return it->second.job;
}

StatusOr<JobRecord> JobBoard::WaitFinal(const std::string& endpoint_id, const std::string& job_id,
                                        std::chrono::milliseconds wait) const {
  std::unique_lock<std::mutex> lock(mu_);
  // Until the job is final, gone or moved, or the board is woken (shutdown), or the wait is over.
  clock_.WaitFor(changed_, lock, wait, [&] {
    auto it = jobs_.find(job_id);
    return woken_ || it == jobs_.end() || it->second.job.endpoint_id != endpoint_id ||
           IsFinal(it->second.job.status);
  });
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.job.endpoint_id != endpoint_id) {
    return NotFoundError("no job " + job_id.substr(0, 80) + " on this endpoint");
  }
  return it->second.job;
}

std::vector<JobRecord> JobBoard::Take(const std::string& endpoint_id, const std::string& worker_id,
                                      int max, std::chrono::milliseconds hold,
                                      const std::function<bool()>& accepts) {
  std::unique_lock<std::mutex> lock(mu_);
  auto has_job = [&] {
    auto q = queues_.find(endpoint_id);
    return woken_ || (q != queues_.end() && !q->second.empty());
  };
  clock_.WaitFor(changed_, lock, hold, has_job);
  std::vector<JobRecord> taken;
  if (accepts) {
    lock.unlock();  // the fleet has its own lock; never hold both
    const bool ok = accepts();
    lock.lock();
    if (!ok) return taken;
  }
  auto q = queues_.find(endpoint_id);
  while (q != queues_.end() && !q->second.empty() && static_cast<int>(taken.size()) < max) {
    const std::string id = q->second.front();
    q->second.pop_front();
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.job.status != kInQueue) continue;
    MoveLocked(it->second, kInProgress, worker_id);
    if (!SaveLocked(it->second.job).ok()) {  // keep it queued rather than lose it
      MoveLocked(it->second, kInQueue);
      q->second.push_front(id);
      break;
    }
    taken.push_back(it->second.job);
  }
  return taken;
}

void JobBoard::FinishLocked(Entry& e, const std::string& status, std::vector<Final>* finals) {
  MoveLocked(e, status);
  Final& f = finals->emplace_back(Final{e.job, std::nullopt});
  if (e.job.webhook.empty()) {
    SaveLocked(e.job).IgnoreError();
    return;
  }
  // The final status and its delivery in one write. The body is the status object as it is now:
  // a later /retry of the job does not change what this delivery sends.
  WebhookDelivery d;
  d.job_id = e.job.id;
  d.url = e.job.webhook;
  d.body_json = JobStatusObject(e.job).dump();
  d.next_attempt_ms = e.job.completed_ms.value_or(NowMs());
  auto id = store_.PutJobWithWebhook(e.job, d);
  if (id.ok()) {
    d.id = *id;
  } else {  // as SaveLocked: the job is final in memory only, and so is its delivery (id 0)
    spdlog::error("controller: save job {}: {}", e.job.id, id.status().ToString());
  }
  f.webhook = std::move(d);
}

void JobBoard::RunFinalHooks(const std::vector<Final>& finals) {
  changed_.notify_all();
  if (!on_final_) return;
  for (const Final& f : finals) on_final_(f.job, f.webhook ? &*f.webhook : nullptr);
}

Status JobBoard::Done(const std::string& endpoint_id, const std::string& worker_id,
                      const std::string& job_id, const std::string& body, bool* stop_pod) {
  *stop_pod = false;
  // The SDK labels the JSON body application/x-www-form-urlencoded: parse it whatever the type.
  json result = json::parse(body, nullptr, false);
  if (result.is_discarded()) return InvalidArgumentError("the result is not valid JSON");
  if (!result.is_object()) result = json{{"output", result}};
  const auto stop = result.find("stopPod");
  *stop_pod = stop != result.end() && stop->is_boolean() && stop->get<bool>();
  std::vector<Final> finals;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end() || it->second.job.endpoint_id != endpoint_id) return Status::Ok();
    JobRecord& j = it->second.job;
    if (IsFinal(j.status) || j.worker_id != worker_id) return Status::Ok();  // late or foreign
    const auto st = result.find("status");
    if (st != result.end() && st->is_string() && st->get<std::string>() == kInProgress) {
      // A progress update.
      if (result.contains("output")) j.output_json = result["output"].dump();
      return SaveLocked(j);
    }
    const json& error = result.contains("error") ? result["error"] : json();
    const bool failed = !error.is_null() && !(error.is_string() && error.get<std::string>().empty());
    if (result.contains("output")) j.output_json = result["output"].dump();
    if (failed) j.error = error.is_string() ? error.get<std::string>() : error.dump();
    FinishLocked(it->second, failed ? kFailed : kCompleted, &finals);
  }
  RunFinalHooks(finals);
  return Status::Ok();
}

Status JobBoard::Stream(const std::string& endpoint_id, const std::string& worker_id,
                        const std::string& job_id, const std::string& body) {
  json chunk = json::parse(body, nullptr, false);
  if (chunk.is_discarded()) return InvalidArgumentError("the stream chunk is not valid JSON");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.job.endpoint_id != endpoint_id) return Status::Ok();
  Entry& e = it->second;
  if (IsFinal(e.job.status) || e.job.worker_id != worker_id) return Status::Ok();
  const json output = chunk.is_object() && chunk.contains("output") ? chunk["output"] : chunk;
  // O(1): the next seq is the count kept in memory, not a re-read of the earlier chunks.
  MC_ASSIGN_OR_RETURN(int64_t seq, ChunkCountLocked(e));
  MC_RETURN_IF_ERROR(store_.AppendChunk({job_id, seq, output.dump()}));
  e.chunks = seq + 1;
  changed_.notify_all();
  return Status::Ok();
}

StatusOr<std::pair<JobRecord, std::vector<std::string>>> JobBoard::ConsumeStream(
    const std::string& endpoint_id, const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  MC_ASSIGN_OR_RETURN(Entry * e, FindLocked(endpoint_id, job_id));
  std::vector<std::string> out;
  if (e->chunks && *e->chunks <= e->job.stream_delivered) return std::pair(e->job, out);
  MC_ASSIGN_OR_RETURN(std::vector<StreamChunk> chunks,
                      store_.ListChunks(job_id, e->job.stream_delivered));
  chunk_rows_read_ += chunks.size();
  for (StreamChunk& c : chunks) out.push_back(std::move(c.output_json));
  e->chunks = e->job.stream_delivered + static_cast<int64_t>(out.size());
  if (!out.empty()) {
    e->job.stream_delivered += static_cast<int64_t>(out.size());
    MC_RETURN_IF_ERROR(SaveLocked(e->job));
  }
  return std::pair(e->job, std::move(out));
}

// Chunks are numbered 0, 1, ... and those below stream_delivered exist: a job loaded from the
// store needs only its undelivered ones read, once, to know the count.
StatusOr<int64_t> JobBoard::ChunkCountLocked(Entry& e) {
  if (!e.chunks) {
    MC_ASSIGN_OR_RETURN(std::vector<StreamChunk> undelivered,
                        store_.ListChunks(e.job.id, e.job.stream_delivered));
    chunk_rows_read_ += undelivered.size();
    e.chunks = e.job.stream_delivered + static_cast<int64_t>(undelivered.size());
  }
  return *e.chunks;
}

Status JobBoard::SkipUndeliveredChunksLocked(Entry& e) {
  // The attempt's output is cleared (runpod-protocol.md §1): its unread chunks are not served.
  MC_ASSIGN_OR_RETURN(e.job.stream_delivered, ChunkCountLocked(e));
  return Status::Ok();
}

void JobBoard::StopLocked(const JobRecord& job) {
  if (!job.worker_id.empty()) stops_[job.worker_id].insert(job.id);
}

StatusOr<JobRecord> JobBoard::Cancel(const std::string& endpoint_id, const std::string& job_id) {
  std::vector<Final> finals;
  JobRecord out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    MC_ASSIGN_OR_RETURN(Entry * e, FindLocked(endpoint_id, job_id));
    if (!IsFinal(e->job.status)) {
      if (e->job.status == kInProgress) StopLocked(e->job);
      FinishLocked(*e, kCancelled, &finals);
    }
    out = e->job;
  }
  RunFinalHooks(finals);
  return out;
}

StatusOr<JobRecord> JobBoard::Retry(const std::string& endpoint_id, const std::string& job_id) {
  JobRecord out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    MC_ASSIGN_OR_RETURN(Entry * e, FindLocked(endpoint_id, job_id));
    if (e->job.status != kFailed && e->job.status != kTimedOut) {
      return FailedPreconditionError("only FAILED or TIMED_OUT jobs can be retried; job " + job_id +
                                     " is " + e->job.status);
    }
    e->job.output_json.reset();
    e->job.error.reset();
    MoveLocked(*e, kInQueue);
    MC_RETURN_IF_ERROR(SkipUndeliveredChunksLocked(*e));
    ++e->job.retries;
    MC_RETURN_IF_ERROR(SaveLocked(e->job));
    queues_[endpoint_id].push_back(job_id);
    out = e->job;
  }
  changed_.notify_all();
  return out;
}

StatusOr<int> JobBoard::Purge(const std::string& endpoint_id) {
  std::lock_guard<std::mutex> lock(mu_);
  int removed = 0;
  auto q = queues_.find(endpoint_id);
  if (q == queues_.end()) return 0;
  for (const std::string& id : q->second) {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.job.status != kInQueue) continue;
    DeleteLocked(id);
    ++removed;
  }
  q->second.clear();
  return removed;
}

void JobBoard::DeleteLocked(const std::string& id) {
  Status s = store_.DeleteJob(id);
  if (!s.ok()) spdlog::error("controller: delete job {}: {}", id, s.ToString());
  EraseLocked(id);
}

JobBoard::Entry& JobBoard::AddLocked(JobRecord job) {
  if (jobs_.contains(job.id)) EraseLocked(job.id);
  const std::string id = job.id;
  Entry& e = jobs_[id];
  e.job = std::move(job);
  e.seq = next_seq_++;
  by_endpoint_[e.job.endpoint_id].emplace(std::pair(e.job.created_ms, e.seq), id);
  IndexLocked(e);
  return e;
}

void JobBoard::EraseLocked(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Entry& e = it->second;
  UnindexLocked(e);
  auto ep = by_endpoint_.find(e.job.endpoint_id);
  if (ep != by_endpoint_.end()) {
    ep->second.erase(std::pair(e.job.created_ms, e.seq));
    if (ep->second.empty()) by_endpoint_.erase(ep);
  }
  jobs_.erase(it);
}

void JobBoard::MoveLocked(Entry& e, const std::string& status, const std::string& worker_id) {
  UnindexLocked(e);
  JobRecord& j = e.job;
  j.status = status;
  if (status == kInQueue || status == kInProgress) {
    j.worker_id = status == kInProgress ? worker_id : "";
    j.started_ms = status == kInProgress ? std::optional(NowMs()) : std::nullopt;
    j.completed_ms.reset();
    e.unlisted_since_ms.reset();
  } else if (IsFinal(status)) {
    j.completed_ms = NowMs();
  }
  IndexLocked(e);
}

std::optional<int64_t> JobBoard::DeadlineOf(const JobRecord& j) const {
  if (IsFinal(j.status)) {
    if (!j.completed_ms) return std::nullopt;  // kept until the endpoint goes
    const auto keep =
        j.id.starts_with("sync-") ? options_.sync_result_retention : options_.result_retention;
    return SaturatingAdd(*j.completed_ms, keep.count());
  }
  // TTL covers queue and run.
  int64_t deadline = SaturatingAdd(j.created_ms, j.ttl_ms);
  if (j.status == kInProgress && j.started_ms && j.execution_timeout_ms > 0) {
    deadline = std::min(deadline, SaturatingAdd(*j.started_ms, j.execution_timeout_ms));
  }
  return deadline;
}

void JobBoard::IndexLocked(Entry& e) {
  const JobRecord& j = e.job;
  if (j.status == kInQueue) {
    QueuedCount& q = queued_[j.endpoint_id];
    ++q.all;
    q.scaling += j.low_priority ? 0 : 1;
  }
  if (j.status == kInProgress) {
    running_[j.endpoint_id].insert(j.id);
    held_[j.worker_id].insert(j.id);
  }
  e.deadline_ms = DeadlineOf(j);
  if (e.deadline_ms) deadlines_.emplace(*e.deadline_ms, j.id);
}

void JobBoard::UnindexLocked(Entry& e) {
  const JobRecord& j = e.job;
  if (j.status == kInQueue) {
    QueuedCount& q = queued_[j.endpoint_id];
    --q.all;
    q.scaling -= j.low_priority ? 0 : 1;
  }
  if (j.status == kInProgress) {
    auto r = running_.find(j.endpoint_id);
    if (r != running_.end() && r->second.erase(j.id) && r->second.empty()) running_.erase(r);
    auto h = held_.find(j.worker_id);
    if (h != held_.end() && h->second.erase(j.id) && h->second.empty()) held_.erase(h);
  }
  if (e.deadline_ms) deadlines_.erase(std::pair(*e.deadline_ms, j.id));
  e.deadline_ms.reset();
}

std::vector<std::string> JobBoard::TakeStops(const std::string& worker_id,
                                             std::chrono::milliseconds hold) {
  std::unique_lock<std::mutex> lock(mu_);
  clock_.WaitFor(changed_, lock, hold, [&] {
    auto it = stops_.find(worker_id);
    return woken_ || (it != stops_.end() && !it->second.empty());
  });
  std::vector<std::string> out;
  auto it = stops_.find(worker_id);
  if (it != stops_.end()) {
    out.assign(it->second.begin(), it->second.end());
    stops_.erase(it);
  }
  return out;
}

void JobBoard::RequeueLocked(Entry& e, const std::string& reason) {
  spdlog::warn("controller: job {} requeued: {}", e.job.id, reason);
  MoveLocked(e, kInQueue);
  SkipUndeliveredChunksLocked(e).IgnoreError();
  ++e.job.retries;
  ++retried_[e.job.endpoint_id];
  SaveLocked(e.job).IgnoreError();
  queues_[e.job.endpoint_id].push_front(e.job.id);  // it waited already: first in line
}

void JobBoard::Ping(const std::string& worker_id, const std::vector<std::string>& job_ids) {
  const int64_t now = NowMs();
  bool requeued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto held = held_.find(worker_id);
    // A copy: requeues leave the set.
    const std::vector<std::string> ids =
        held == held_.end() ? std::vector<std::string>()
                            : std::vector<std::string>(held->second.begin(), held->second.end());
    for (const std::string& id : ids) {
      Entry& e = jobs_.at(id);
      if (std::find(job_ids.begin(), job_ids.end(), id) != job_ids.end()) {
        e.unlisted_since_ms.reset();
        continue;
      }
      // A take answered just now may not be in the list yet: a job the worker has held for the
      // whole grace and still does not list was lost (e.g. its result post failed).
      const int64_t since = e.job.started_ms.value_or(now);
      if (now - since < options_.unlisted_grace.count()) continue;
      RequeueLocked(e, "worker " + worker_id + " no longer lists it");
      requeued = true;
    }
  }
  if (requeued) changed_.notify_all();
}

void JobBoard::RequeueWorker(const std::string& worker_id, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto held = held_.find(worker_id);
    if (held != held_.end()) {
      const std::vector<std::string> ids(held->second.begin(), held->second.end());
      for (const std::string& id : ids) RequeueLocked(jobs_.at(id), reason);
    }
    stops_.erase(worker_id);
  }
  changed_.notify_all();
}

void JobBoard::Tick() {
  const int64_t now = NowMs();
  std::vector<Final> finals;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> due;  // a copy: what is done below moves or drops deadlines
    for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first < now; ++it) {
      due.push_back(it->second);
    }
    tick_visits_ += due.size();
    for (const std::string& id : due) {
      auto it = jobs_.find(id);
      if (it == jobs_.end()) continue;
      Entry& e = it->second;
      JobRecord& j = e.job;
      // Due and final: the retention ended. Due and past the TTL (which covers queue and run):
      // the job is deleted. Otherwise the execution timeout is what is due.
      if (IsFinal(j.status) || now - j.created_ms > j.ttl_ms) {
        if (j.status == kInProgress) StopLocked(j);
        DeleteLocked(id);
        continue;
      }
      StopLocked(j);
      j.error = "execution timeout: the job ran longer than " +
                std::to_string(j.execution_timeout_ms) + " ms";
      FinishLocked(e, kTimedOut, &finals);
    }
  }
  RunFinalHooks(finals);
}

void JobBoard::RequeueOrphans(const std::function<bool(const std::string&)>& is_live) {
  std::vector<std::string> holders;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [worker, ids] : held_) holders.push_back(worker);
  }
  for (const std::string& w : holders) {
    if (!is_live(w)) RequeueWorker(w, "its worker " + w + " is gone");
  }
}

int JobBoard::HeldBy(const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto held = held_.find(worker_id);
  return held == held_.end() ? 0 : static_cast<int>(held->second.size());
}

std::vector<JobRecord> JobBoard::Recent(const std::string& endpoint_id, int limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<JobRecord> out;
  auto ep = by_endpoint_.find(endpoint_id);
  if (ep == by_endpoint_.end() || limit <= 0) return out;
  for (auto it = ep->second.rbegin();
       it != ep->second.rend() && static_cast<int>(out.size()) < limit; ++it) {
    out.push_back(jobs_.at(it->second).job);
  }
  return out;
}

QueueLoad JobBoard::Load(const std::string& endpoint_id) const {
  // Runs on every autoscaler pass (and a queued job triggers one): counters kept by
  // IndexLocked, and the queue is only walked to its first waiting normal job.
  std::lock_guard<std::mutex> lock(mu_);
  QueueLoad load;
  auto running = running_.find(endpoint_id);
  if (running != running_.end()) load.in_progress = static_cast<int>(running->second.size());
  auto counted = queued_.find(endpoint_id);
  if (counted != queued_.end()) {
    load.in_queue = counted->second.all;
    load.in_queue_scaling = counted->second.scaling;
  }
  auto q = queues_.find(endpoint_id);
  if (q == queues_.end() || load.in_queue_scaling == 0) return load;
  for (const std::string& id : q->second) {  // FIFO (requeued jobs at the front): oldest first
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.job.status != kInQueue || it->second.job.low_priority) {
      continue;
    }
    const int64_t created = it->second.job.created_ms;
    if (!load.oldest_ms || created < *load.oldest_ms) load.oldest_ms = created;
    break;
  }
  return load;
}

JobCounts JobBoard::Counts(const std::string& endpoint_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  JobCounts c;
  auto ep = by_endpoint_.find(endpoint_id);
  if (ep != by_endpoint_.end()) {
    for (const auto& [key, id] : ep->second) {
      const std::string& s = jobs_.at(id).job.status;
      if (s == kCompleted) ++c.completed;
      if (s == kFailed || s == kTimedOut) ++c.failed;
      if (s == kInProgress) ++c.in_progress;
      if (s == kInQueue) ++c.in_queue;
    }
  }
  auto r = retried_.find(endpoint_id);
  c.retried = r == retried_.end() ? 0 : r->second;
  return c;
}

void JobBoard::ForgetEndpoint(const std::string& endpoint_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto ep = by_endpoint_.find(endpoint_id);
  if (ep != by_endpoint_.end()) {
    std::vector<std::string> ids;
    for (const auto& [key, id] : ep->second) ids.push_back(id);
    for (const std::string& id : ids) EraseLocked(id);
  }
  queues_.erase(endpoint_id);
  running_.erase(endpoint_id);
  queued_.erase(endpoint_id);
}

uint64_t JobBoard::ChunkRowsRead() const {
  std::lock_guard<std::mutex> lock(mu_);
  return chunk_rows_read_;
}

uint64_t JobBoard::TickVisits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tick_visits_;
}

void JobBoard::WakeAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  changed_.notify_all();
}

}  // namespace mc::controller
