#include "mc/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <queue>
#include <string>
#include <unordered_map>

#include "mc/scheduler/autoscale.h"
#include "mc/scheduler/eviction.h"
#include "mc/scheduler/placement.h"
#include "sim/random.h"
#include "sim/workload.h"

namespace mc::sim {
namespace {

using scheduler::TimePoint;

constexpr int64_t kUs = 1'000'000;

TimePoint At(int64_t us) { return TimePoint{} + std::chrono::microseconds(us); }

// Log-bucketed histogram of durations (2% buckets): quantiles without keeping every sample.
class Histogram {
 public:
  void Add(int64_t us) {
    const size_t b = us < 1000 ? 0 : 1 + static_cast<size_t>(std::log(us / 1000.0) / kStep);
    if (b >= counts_.size()) counts_.resize(b + 1);
    ++counts_[b];
    ++n_;
  }
  Quantiles Get() const { return {At(0.50), At(0.90), At(0.99)}; }

 private:
  static constexpr double kStep = 0.0198026;  // log(1.02)
  double At(double q) const {
    if (n_ == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(std::ceil(q * double(n_)));
    uint64_t seen = 0;
    for (size_t b = 0; b < counts_.size(); ++b) {
      seen += counts_[b];
      if (seen >= rank) return b == 0 ? 0 : 0.001 * std::exp((double(b) - 0.5) * kStep);
    }
    return 0;
  }
  std::vector<uint64_t> counts_;
  uint64_t n_ = 0;
};

enum class Phase { kInitializing, kStarting, kIdle, kRunning, kStopped };

struct Worker {
  uint32_t endpoint = 0;
  uint32_t host = 0;
  Phase phase = Phase::kInitializing;
  int64_t placed_us = 0;
  int64_t ready_us = -1;
  int64_t idle_since_us = 0;
};

struct Job {
  int64_t arrival_us;
  int64_t exec_us;
};

struct EndpointState {
  std::deque<Job> queue;
  std::vector<uint32_t> live;  // worker indices, in start order
  int64_t next_check_us = -1;  // the check event in the heap, -1 = none
};

// What a host holds of one revision.
struct Snap {
  bool partial = false;  // downloading
  uint32_t pins = 0;     // live workers on it
  int64_t last_use_us = 0;
  uint32_t hits = 0;
  bool main_queue = false;
  uint64_t queue_seq = 0;
  int64_t download_done_us = 0;  // partial: when the download ends
  std::vector<uint32_t> waiters;  // partial: workers waiting for it
  bool origin = false;            // partial: counted as an origin download
};

struct BlobUse {
  uint32_t refs = 0;       // snapshots (complete or partial) referencing the blob
  uint32_t kept_refs = 0;  // of those, pinned or partial
};

struct Host {
  const HostGroup* group = nullptr;
  std::string id;
  uint32_t gpus_free = 0;
  uint64_t capacity = 0;
  uint64_t used = 0;        // blobs on disk, downloads in flight counted in full
  uint64_t kept_bytes = 0;  // blobs of pinned or partial snapshots
  uint32_t running_workers = 0;
  std::unordered_map<uint32_t, Snap> snaps;  // by revision
  std::unordered_map<uint32_t, BlobUse> blobs;
  double price = 0;  // $ per GPU-hour of its GPU type
  double gdsf_inflation = 0;
  uint64_t next_seq = 0;
  std::deque<uint32_t> ghost;  // S3-FIFO: revisions recently evicted from the small queue
};

enum class Kind : uint8_t { kArrival, kDownloadDone, kReady, kJobDone, kCheck, kSample };

struct Event {
  int64_t t;
  uint64_t seq;
  Kind kind;
  uint32_t a;
  uint32_t b;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

class Simulation {
 public:
  explicit Simulation(const Scenario& sc) : sc_(sc), cat_(sc.catalogue), rng_(sc.seed) {}

  StatusOr<Result> Run();

 private:
  void Push(int64_t t, Kind kind, uint32_t a = 0, uint32_t b = 0) {
    events_.push(Event{t, seq_++, kind, a, b});
  }

  void OnArrival(const Arrival& a);
  void Check(uint32_t e);
  void ScheduleCheck(uint32_t e);
  bool StartWorker(uint32_t e);
  void StopWorker(uint32_t w);
  void TakeJobs(uint32_t w);
  void OnReady(uint32_t w);
  void OnDownloadDone(uint32_t h, uint32_t rev);
  void OnJobDone(uint32_t w);
  void Sample();

  uint64_t MissingBytes(const Host& h, const Revision& rev) const;
  void SetKept(Host& h, uint32_t rev, bool kept);
  bool Evict(Host& h, uint64_t need);
  void AddSnapshot(Host& h, uint32_t rev, bool partial);
  void RemoveSnapshot(Host& h, uint32_t rev);
  void Touch(Host& h, Snap& s);
  StatusOr<scheduler::Placement> Place(uint32_t rev, const std::string& gpu_type, uint32_t gpus,
                                       bool exclude_complete);
  uint64_t BeginDownload(Host& h, uint32_t rev, scheduler::ModelSource source);
  void Prefetch();
  void Finish();

  const Scenario& sc_;
  const Catalogue& cat_;
  Rng rng_;
  int64_t now_ = 0;
  int64_t end_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<Host> hosts_;
  std::vector<scheduler::HostState> states_;  // reused for every placement
  std::vector<EndpointState> endpoints_;
  std::vector<Worker> workers_;
  uint32_t origin_downloads_ = 0;
  std::vector<std::pair<int64_t, uint32_t>> origin_ends_;  // min-heap of active origin downloads
  uint64_t placements_ = 0;
  Histogram all_waits_, queued_waits_;
  Result r_;
};

uint64_t Simulation::MissingBytes(const Host& h, const Revision& rev) const {
  uint64_t missing = 0;
  for (uint32_t b : rev.blobs) {
    auto it = h.blobs.find(b);
    if (it == h.blobs.end() || it->second.refs == 0) missing += cat_.blob_bytes[b];
  }
  return missing;
}

// Pinned or partial snapshots keep their blobs: their bytes are not freeable.
void Simulation::SetKept(Host& h, uint32_t rev, bool kept) {
  for (uint32_t b : cat_.revisions[rev].blobs) {
    BlobUse& u = h.blobs[b];
    if (kept) {
      if (u.kept_refs++ == 0) h.kept_bytes += cat_.blob_bytes[b];
    } else if (--u.kept_refs == 0) {
      h.kept_bytes -= cat_.blob_bytes[b];
    }
  }
}

void Simulation::AddSnapshot(Host& h, uint32_t rev, bool partial) {
  for (uint32_t b : cat_.revisions[rev].blobs) {
    if (h.blobs[b].refs++ == 0) h.used += cat_.blob_bytes[b];
  }
  Snap& s = h.snaps[rev];
  s.partial = partial;
  s.hits = 0;
  s.last_use_us = now_;
  s.queue_seq = h.next_seq++;
  // S3-FIFO: a revision evicted recently from the small queue comes back into the main one.
  auto ghost = std::find(h.ghost.begin(), h.ghost.end(), rev);
  s.main_queue = ghost != h.ghost.end();
  if (s.main_queue) h.ghost.erase(ghost);
  if (partial) SetKept(h, rev, true);
}

void Simulation::RemoveSnapshot(Host& h, uint32_t rev) {
  for (uint32_t b : cat_.revisions[rev].blobs) {
    auto it = h.blobs.find(b);
    if (--it->second.refs == 0) {
      h.used -= cat_.blob_bytes[b];
      h.blobs.erase(it);
    }
  }
  h.snaps.erase(rev);
}

void Simulation::Touch(Host& h, Snap& s) {
  s.last_use_us = now_;
  s.hits = std::min<uint32_t>(s.hits + 1, sc_.policies.eviction == scheduler::EvictionPolicy::kS3Fifo ? 4 : 1u << 30);
}

// The agent's eviction before a download: scheduler::PlanEviction over the host's snapshots,
// then the plan applied (removals, S3-FIFO moves, the GDSF inflation).
bool Simulation::Evict(Host& h, uint64_t need) {
  scheduler::Disk disk;
  disk.capacity = h.capacity;
  disk.used_bytes = h.used;
  disk.high_watermark = h.group->high_watermark;
  disk.low_watermark = h.group->low_watermark;
  disk.policy = sc_.policies.eviction;
  disk.gdsf_inflation = h.gdsf_inflation;
  disk.gdsf_fixed_cost_bytes = sc_.policies.gdsf_fixed_cost_bytes;
  if (h.used + need <= static_cast<uint64_t>(disk.high_watermark * double(h.capacity))) {
    return true;  // below the trigger: the plan would be empty
  }
  std::unordered_map<uint32_t, uint32_t> local;
  std::vector<scheduler::SnapshotState> states;
  states.reserve(h.snaps.size());
  std::vector<uint32_t> revs;
  for (const auto& [rev, s] : h.snaps) revs.push_back(rev);
  std::sort(revs.begin(), revs.end());  // the input order never depends on the hash map
  for (uint32_t rev : revs) {
    const Snap& s = h.snaps[rev];
    scheduler::SnapshotState st;
    st.id = std::to_string(rev);
    st.last_use = At(s.last_use_us);
    st.pinned = s.pins > 0;
    st.partial = s.partial;
    st.hits = s.hits;
    st.main_queue = s.main_queue;
    st.queue_seq = s.queue_seq;
    for (uint32_t b : cat_.revisions[rev].blobs) {
      auto [it, added] = local.emplace(b, static_cast<uint32_t>(disk.blobs.size()));
      if (added) disk.blobs.push_back(cat_.blob_bytes[b]);
      st.blobs.push_back(it->second);
    }
    states.push_back(std::move(st));
  }
  auto plan = scheduler::PlanEviction(states, disk, need);
  if (!plan.ok()) return false;
  for (const scheduler::Requeue& q : plan->requeue) {
    Snap& s = h.snaps[static_cast<uint32_t>(std::stoul(q.id))];
    s.main_queue = true;
    s.hits = q.hits;
    s.queue_seq = h.next_seq++;
  }
  for (const std::string& id : plan->evict) {
    const uint32_t rev = static_cast<uint32_t>(std::stoul(id));
    if (!h.snaps[rev].main_queue) {
      h.ghost.push_back(rev);
      if (h.ghost.size() > std::max<size_t>(16, h.snaps.size())) h.ghost.pop_front();
    }
    const uint64_t before = h.used;
    RemoveSnapshot(h, rev);
    ++r_.evictions;
    r_.evicted_bytes += before - h.used;
  }
  h.gdsf_inflation = plan->gdsf_inflation;
  return true;
}

StatusOr<scheduler::Placement> Simulation::Place(uint32_t rev, const std::string& gpu_type,
                                                 uint32_t gpus, bool exclude_complete) {
  const Revision& r = cat_.revisions[rev];
  std::vector<scheduler::HostState>& states = states_;
  size_t n = 0;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const Host& h = hosts_[i];
    auto snap = h.snaps.find(rev);
    if (exclude_complete && snap != h.snaps.end()) continue;
    scheduler::HostState& s = states[n++];
    s.id = h.id;
    s.gpu_type = h.group->gpu_type;
    s.gpus_free = h.gpus_free;
    s.model = scheduler::ModelState::kMissing;
    s.remaining_bytes = 0;
    s.download_rate = 0;
    s.missing_bytes = 0;
    if (snap == h.snaps.end()) {
      s.missing_bytes = MissingBytes(h, r);
    } else if (snap->second.partial) {
      s.model = scheduler::ModelState::kDownloading;
      // The remaining bytes at the download's own rate give the remaining seconds exactly.
      s.remaining_bytes = static_cast<uint64_t>(
          std::max<int64_t>(1, snap->second.download_done_us - now_));
      s.download_rate = kUs;
    } else {
      s.model = scheduler::ModelState::kComplete;
    }
    s.peer_bandwidth = sc_.policies.peers ? h.group->peer_bandwidth : 0;
    s.upstream_bandwidth = h.group->download_bandwidth;
    s.capacity = h.capacity;
    s.used_bytes = h.used;
    s.reserved_bytes = 0;
    s.freeable_bytes = h.used - h.kept_bytes;
    s.running_workers = h.running_workers;
  }
  states.resize(n);
  scheduler::PlacementRequest request;
  request.gpu_type = gpu_type;
  request.gpus = gpus;
  request.model_bytes = r.bytes;
  request.allow_peers = sc_.policies.peers;
  request.policy = sc_.policies.placement;
  request.random_seed = sc_.seed * 1'000'003 + placements_++;
  auto placed = scheduler::PlaceWorker(states, request);
  states.resize(hosts_.size());
  return placed;
}

// Starts the download of `rev` on h (eviction done, bytes counted); returns the bytes fetched.
uint64_t Simulation::BeginDownload(Host& h, uint32_t rev, scheduler::ModelSource source) {
  const uint64_t missing = MissingBytes(h, cat_.revisions[rev]);
  AddSnapshot(h, rev, true);
  Snap& s = h.snaps[rev];
  double rate = h.group->download_bandwidth;
  if (source == scheduler::ModelSource::kPeer) {
    rate = h.group->peer_bandwidth;
    r_.peer_bytes += missing;
  } else {
    r_.origin_bytes += missing;
    s.origin = true;
    if (sc_.origin_bandwidth > 0) {
      rate = std::min(rate, sc_.origin_bandwidth / double(origin_downloads_ + 1));
    }
    ++origin_downloads_;
  }
  s.download_done_us = now_ + static_cast<int64_t>(double(missing) / rate * kUs);
  Push(s.download_done_us, Kind::kDownloadDone, static_cast<uint32_t>(&h - hosts_.data()), rev);
  return missing;
}

bool Simulation::StartWorker(uint32_t e) {
  const Endpoint& ep = sc_.endpoints[e];
  auto placed = Place(ep.revision, ep.gpu_type, ep.gpus, false);
  if (!placed.ok()) {
    ++r_.placement_failures;
    return false;
  }
  uint32_t hi = 0;
  while (hosts_[hi].id != placed->host_id) ++hi;
  Host& h = hosts_[hi];
  const uint32_t w = static_cast<uint32_t>(workers_.size());
  workers_.push_back(Worker{e, hi, Phase::kInitializing, now_, -1, 0});
  r_.requested_bytes += cat_.revisions[ep.revision].bytes;
  auto it = h.snaps.find(ep.revision);
  if (it == h.snaps.end()) {
    const uint64_t missing = MissingBytes(h, cat_.revisions[ep.revision]);
    if (!Evict(h, missing)) {
      workers_.pop_back();
      ++r_.placement_failures;
      return false;
    }
    r_.fetched_bytes += BeginDownload(h, ep.revision, placed->source);
    ++r_.cold_misses;
    it = h.snaps.find(ep.revision);
    it->second.waiters.push_back(w);
  } else if (it->second.partial) {
    ++r_.cold_misses;
    ++r_.cold_joins;
    it->second.waiters.push_back(w);
  } else {
    ++r_.cold_hits;
    workers_[w].phase = Phase::kStarting;
    Push(now_ + static_cast<int64_t>(sc_.worker_start_seconds * kUs), Kind::kReady, w);
  }
  Snap& s = it->second;
  if (s.pins++ == 0 && !s.partial) SetKept(h, ep.revision, true);
  Touch(h, s);
  h.gpus_free -= ep.gpus;
  ++h.running_workers;
  ++r_.cold_starts;
  endpoints_[e].live.push_back(w);
  return true;
}

void Simulation::StopWorker(uint32_t w) {
  Worker& wk = workers_[w];
  const Endpoint& ep = sc_.endpoints[wk.endpoint];
  Host& h = hosts_[wk.host];
  const double gpus = ep.gpus;
  const int64_t ready = wk.ready_us >= 0 ? wk.ready_us : now_;
  const double billed = gpus * double(now_ - ready) / kUs;
  const double unbilled = gpus * double(ready - wk.placed_us) / kUs;
  r_.billed_gpu_seconds += billed;
  r_.unbilled_gpu_seconds += unbilled;
  r_.cost_billed += billed / 3600 * h.price;
  r_.cost_unbilled += unbilled / 3600 * h.price;
  wk.phase = Phase::kStopped;
  h.gpus_free += ep.gpus;
  --h.running_workers;
  Snap& s = h.snaps[ep.revision];
  s.last_use_us = now_;
  if (--s.pins == 0 && !s.partial) SetKept(h, ep.revision, false);
  auto& live = endpoints_[wk.endpoint].live;
  live.erase(std::find(live.begin(), live.end(), w));
}

void Simulation::TakeJobs(uint32_t w) {
  Worker& wk = workers_[w];
  EndpointState& es = endpoints_[wk.endpoint];
  if (wk.phase != Phase::kIdle || es.queue.empty()) return;
  const Job job = es.queue.front();
  es.queue.pop_front();
  all_waits_.Add(now_ - job.arrival_us);
  queued_waits_.Add(now_ - job.arrival_us);
  wk.phase = Phase::kRunning;
  Push(now_ + job.exec_us, Kind::kJobDone, w);
}

void Simulation::OnArrival(const Arrival& a) {
  ++r_.jobs;
  EndpointState& es = endpoints_[a.endpoint];
  for (uint32_t w : es.live) {
    if (workers_[w].phase == Phase::kIdle) {
      all_waits_.Add(0);
      workers_[w].phase = Phase::kRunning;
      Push(now_ + a.exec_us, Kind::kJobDone, w);
      return;
    }
  }
  ++r_.queued_jobs;
  es.queue.push_back(Job{a.time_us, a.exec_us});
  Check(a.endpoint);
}

// The controller's tick for one endpoint: scheduler::DecideScale, then the starts and stops.
void Simulation::Check(uint32_t e) {
  const Endpoint& ep = sc_.endpoints[e];
  EndpointState& es = endpoints_[e];
  scheduler::JobCounts counts;
  counts.in_queue = counts.in_queue_normal = static_cast<uint32_t>(es.queue.size());
  if (!es.queue.empty()) counts.oldest_normal_enqueued = At(es.queue.front().arrival_us);
  std::vector<scheduler::WorkerInfo> infos;
  infos.reserve(es.live.size());
  for (uint32_t w : es.live) {
    const Worker& wk = workers_[w];
    scheduler::WorkerInfo info;
    info.id = std::to_string(w);
    switch (wk.phase) {
      case Phase::kInitializing:
        info.phase = scheduler::WorkerPhase::kInitializing;
        break;
      case Phase::kStarting:
        info.phase = scheduler::WorkerPhase::kStarting;
        break;
      case Phase::kIdle:
        info.phase = scheduler::WorkerPhase::kIdle;
        info.idle_since = At(wk.idle_since_us);
        break;
      case Phase::kRunning:
      case Phase::kStopped:
        info.phase = scheduler::WorkerPhase::kRunning;
        ++counts.in_progress;
        break;
    }
    infos.push_back(std::move(info));
  }
  auto decision = scheduler::DecideScale(ep.scaler, counts, infos, At(now_));
  if (decision.ok()) {
    for (uint32_t i = 0; i < decision->start; ++i) {
      if (!StartWorker(e)) break;
    }
    for (const std::string& id : decision->stop) StopWorker(static_cast<uint32_t>(std::stoul(id)));
  }
  ScheduleCheck(e);
}

// The next moment a decision can change without an arrival: the queue's delay threshold (or a
// second later while jobs wait: a failed placement is retried) and the idle timeout.
void Simulation::ScheduleCheck(uint32_t e) {
  const Endpoint& ep = sc_.endpoints[e];
  EndpointState& es = endpoints_[e];
  int64_t next = -1;
  auto consider = [&](int64_t t) {
    t = std::max(t, now_ + 1000);
    if (next < 0 || t < next) next = t;
  };
  if (!es.queue.empty()) {
    const int64_t threshold =
        es.queue.front().arrival_us + static_cast<int64_t>(ep.scaler.scaler_value * kUs) + 1000;
    consider(threshold > now_ ? std::min(threshold, now_ + kUs) : now_ + kUs);
  }
  if (es.live.size() > ep.scaler.workers_min) {
    for (uint32_t w : es.live) {
      if (workers_[w].phase == Phase::kIdle) {
        consider(workers_[w].idle_since_us +
                 static_cast<int64_t>(ep.scaler.idle_timeout_seconds * kUs) + 1000);
      }
    }
  }
  if (next < 0) return;
  if (es.next_check_us >= now_ && es.next_check_us <= next) return;  // an earlier one stands
  es.next_check_us = next;
  Push(next, Kind::kCheck, e);
}

void Simulation::OnDownloadDone(uint32_t hi, uint32_t rev) {
  Host& h = hosts_[hi];
  Snap& s = h.snaps[rev];
  s.partial = false;
  if (s.origin) {
    --origin_downloads_;
    s.origin = false;
  }
  if (s.pins == 0) SetKept(h, rev, false);  // no worker waits any more (cannot happen today)
  for (uint32_t w : s.waiters) {
    if (workers_[w].phase != Phase::kInitializing) continue;
    workers_[w].phase = Phase::kStarting;
    Push(now_ + static_cast<int64_t>(sc_.worker_start_seconds * kUs), Kind::kReady, w);
  }
  s.waiters.clear();
}

void Simulation::OnReady(uint32_t w) {
  Worker& wk = workers_[w];
  if (wk.phase != Phase::kStarting) return;
  wk.phase = Phase::kIdle;
  wk.ready_us = now_;
  wk.idle_since_us = now_;
  TakeJobs(w);
  ScheduleCheck(wk.endpoint);
}

void Simulation::OnJobDone(uint32_t w) {
  Worker& wk = workers_[w];
  ++r_.jobs_done;
  wk.phase = Phase::kIdle;
  wk.idle_since_us = now_;
  TakeJobs(w);
  if (wk.phase == Phase::kIdle) ScheduleCheck(wk.endpoint);
}

void Simulation::Sample() {
  DiskSample d;
  d.seconds = double(now_) / kUs;
  for (const Host& h : hosts_) {
    d.used_bytes += h.used;
    d.capacity_bytes += h.capacity;
    d.fullest_host_fraction =
        std::max(d.fullest_host_fraction, h.capacity ? double(h.used) / double(h.capacity) : 0);
  }
  for (const EndpointState& es : endpoints_) d.live_workers += static_cast<uint32_t>(es.live.size());
  r_.disk.push_back(d);
}

// Cached replicas: before the start, each endpoint's model on `replicas` hosts of its GPU type,
// chosen by the real placement among hosts without it (GPUs not needed), fetched from the origin.
void Simulation::Prefetch() {
  for (uint32_t n = 0; n < sc_.policies.replicas; ++n) {
    for (const Endpoint& ep : sc_.endpoints) {
      auto placed = Place(ep.revision, ep.gpu_type, 0, true);
      if (!placed.ok()) continue;
      uint32_t hi = 0;
      while (hosts_[hi].id != placed->host_id) ++hi;
      Host& h = hosts_[hi];
      const uint64_t missing = MissingBytes(h, cat_.revisions[ep.revision]);
      if (!Evict(h, missing)) continue;
      AddSnapshot(h, ep.revision, false);
      r_.prefetch_bytes += missing;
      r_.origin_bytes += missing;
    }
  }
}

void Simulation::Finish() {
  for (uint32_t w = 0; w < workers_.size(); ++w) {
    if (workers_[w].phase != Phase::kStopped) StopWorker(w);
  }
  r_.run_to_take = all_waits_.Get();
  r_.queued_run_to_take = queued_waits_.Get();
  r_.byte_hit_ratio =
      r_.requested_bytes == 0 ? 1 : 1 - double(r_.fetched_bytes) / double(r_.requested_bytes);
  r_.cost_origin = double(r_.origin_bytes) / 1e9 * sc_.prices.origin_per_gb;
  r_.cost_total = r_.cost_billed + r_.cost_unbilled + r_.cost_origin;
}

StatusOr<Result> Simulation::Run() {
  end_ = static_cast<int64_t>(sc_.duration_seconds * kUs);
  for (const HostGroup& g : sc_.hosts) {
    for (uint32_t i = 0; i < g.count; ++i) {
      Host h;
      h.group = &g;
      h.id = g.name + "-" + std::to_string(i);
      h.gpus_free = g.gpus;
      h.capacity = g.cache_capacity;
      for (const auto& [type, price] : sc_.prices.gpu_hour) {
        if (type == g.gpu_type) h.price = price;
      }
      hosts_.push_back(std::move(h));
    }
  }
  states_.resize(hosts_.size());
  endpoints_.resize(sc_.endpoints.size());
  Prefetch();
  Rng workload_rng(sc_.seed ^ 0x600dcafe);
  MC_ASSIGN_OR_RETURN(std::unique_ptr<ArrivalSource> source,
                      MakeArrivalSource(sc_, workload_rng));
  std::optional<Arrival> next = source->Next();
  if (next) Push(next->time_us, Kind::kArrival);
  // workers_min: the controller starts them at once.
  for (uint32_t e = 0; e < endpoints_.size(); ++e) {
    if (sc_.endpoints[e].scaler.workers_min > 0) Check(e);
  }
  Push(0, Kind::kSample);
  while (!events_.empty()) {
    const Event ev = events_.top();
    if (ev.t > end_) break;
    events_.pop();
    now_ = ev.t;
    ++r_.events;
    switch (ev.kind) {
      case Kind::kArrival:
        OnArrival(*next);
        next = source->Next();
        if (next) Push(next->time_us, Kind::kArrival);
        break;
      case Kind::kDownloadDone:
        OnDownloadDone(ev.a, ev.b);
        break;
      case Kind::kReady:
        OnReady(ev.a);
        break;
      case Kind::kJobDone:
        OnJobDone(ev.a);
        break;
      case Kind::kCheck:
        if (endpoints_[ev.a].next_check_us == now_) {
          endpoints_[ev.a].next_check_us = -1;
          Check(ev.a);
        }
        break;
      case Kind::kSample:
        Sample();
        Push(now_ + static_cast<int64_t>(sc_.sample_seconds * kUs), Kind::kSample);
        break;
    }
  }
  now_ = end_;
  if (r_.disk.empty() || r_.disk.back().seconds < double(end_) / kUs) Sample();
  Finish();
  return r_;
}

}  // namespace

StatusOr<Result> Simulate(const Scenario& scenario) {
  Simulation sim(scenario);
  return sim.Run();
}

}  // namespace mc::sim
