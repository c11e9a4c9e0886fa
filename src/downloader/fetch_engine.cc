#include "downloader/fetch_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "downloader/connection_scaling.h"
#include "downloader/fetch_engine_parts.h"
#include "mc/net/url.h"

namespace mc::downloader {

FetchEngine::FetchEngine(cache::CacheStore& store, Clock& clock, EngineConfig config,
                         EngineCallbacks callbacks)
    : store_(store),
      clock_(clock),
      config_(std::move(config)),
      fs_(*config_.file_system),
      callbacks_(std::move(callbacks)) {
  for (size_t i = 0; i < config_.sources.size(); ++i) {
    if (config_.sources[i].swarm_member < 0) continue;
    if (swarm_slots_ == 0) swarm_first_ = i;
    ++swarm_slots_;
  }
  swarm_hash_.assign(swarm_slots_, 0);
  self_hash_ = SwarmHash(config_.swarm_self);
}

bool FetchEngine::AddSwarmMember(const std::string& url) {
  std::lock_guard<std::mutex> lock(swarm_mu_);
  const size_t n = swarm_count_.load(std::memory_order_relaxed);
  if (url.empty() || url == config_.swarm_self || n >= swarm_slots_) return false;
  for (size_t k = 0; k < n; ++k) {
    if (config_.sources[swarm_first_ + k].base_url == url) return false;
  }
  Source& slot = config_.sources[swarm_first_ + n];
  slot.name = url;
  slot.base_url = url;
  swarm_hash_[n] = SwarmHash(url);
  swarm_count_.store(n + 1, std::memory_order_release);
  return true;
}

FetchEngine::~FetchEngine() = default;

void FetchEngine::Cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  changed_.notify_all();
}

Status FetchEngine::Run(std::vector<BlobSpec> specs) {
  std::stable_sort(specs.begin(), specs.end(),
                   [](const BlobSpec& a, const BlobSpec& b) { return a.size > b.size; });
  for (BlobSpec& s : specs) blobs_.push_back(std::make_unique<Blob>(std::move(s), fs_));
  const int start = std::clamp(config_.tuning.connections, 1, 256);
  const int most = std::clamp(config_.tuning.max_connections, start, 256);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(most));
  auto grow = [&](int n) {
    while (static_cast<int>(threads.size()) < n) {
      const int id = static_cast<int>(threads.size());
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++live_workers_;
      }
      threads.emplace_back([this, id] { WorkerLoop(id); });
    }
    peak_connections_ = static_cast<int>(threads.size());
  };
  grow(start);
  if (most > start) Scale(start, most, grow);
  for (std::thread& t : threads) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.ok()) return error_;
  if (cancelled_) return CancelledError("pull cancelled; run it again to resume");
  return Status::Ok();
}

void FetchEngine::WorkerLoop(int /*id*/) {
  Worker worker(clock_);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    std::shared_ptr<Segment> segment = NextSegment(lock, worker);
    if (!segment) break;
    Blob& blob = *segment->blob;
    lock.unlock();
    FetchSegment(blob, segment, worker);
    if (worker.finalize != nullptr) {
      Blob* done = worker.finalize;
      worker.finalize = nullptr;
      Finalize(*done);
    }
    lock.lock();
  }
  --live_workers_;
  changed_.notify_all();
}

std::shared_ptr<FetchEngine::Segment> FetchEngine::NextSegment(std::unique_lock<std::mutex>& lock,
                                                               Worker& worker) {
  using State = Blob::State;
  while (true) {
    if (Stopping()) return nullptr;
    // 1. A range of an active blob that nobody fetches (a new blob, a resumed one, a restart).
    for (auto& b : blobs_) {
      if (b->state != State::kActive) continue;
      if (auto s = ClaimHole(*b)) return s;
    }
    // 2. Start the next blob.
    if (ActivateNext(lock, worker, /*wait_for_lock=*/false)) continue;
    // 3. Help with the largest range in flight.
    if (auto s = SplitLargest()) return s;
    // 4. Blobs another process is fetching: wait for its lock, then link or fetch.
    if (ActivateNext(lock, worker, /*wait_for_lock=*/true)) continue;
    // 5. Done when no blob can produce work any more.
    bool busy = std::any_of(blobs_.begin(), blobs_.end(), [](const auto& b) {
      return b->state == State::kActivating || b->state == State::kWaitingLock ||
             b->state == State::kActive;
    });
    if (!busy) return nullptr;
    ++idle_workers_;
    changed_.wait(lock);
    --idle_workers_;
  }
}

bool FetchEngine::ActivateNext(std::unique_lock<std::mutex>& lock, Worker& worker,
                               bool wait_for_lock) {
  using State = Blob::State;
  const State from = wait_for_lock ? State::kDeferred : State::kQueued;
  const State during = wait_for_lock ? State::kWaitingLock : State::kActivating;
  auto it = std::find_if(blobs_.begin(), blobs_.end(),
                         [from](const auto& b) { return b->state == from; });
  if (it == blobs_.end()) return false;
  Blob& blob = **it;
  blob.state = during;
  lock.unlock();
  const Activation activation = Activate(blob, wait_for_lock, worker);
  lock.lock();
  if (blob.state != during) return true;  // it failed or finished meanwhile
  switch (activation) {
    case Activation::kActive:
      blob.state = State::kActive;
      break;
    case Activation::kDeferred:
      blob.state = State::kDeferred;
      break;
    case Activation::kPresent:
      blob.state = State::kDone;
      break;
    case Activation::kFailed:
      blob.state = State::kFailed;
      break;
  }
  changed_.notify_all();
  return true;
}

void FetchEngine::Scale(int workers, int most, const std::function<void(int)>& grow) {
  const std::chrono::milliseconds window = config_.tuning.scale_window;
  ScaleState state = StartScaling(workers, most, config_.tuning.scale_gain);
  uint64_t before = bytes_fetched_;
  Clock::SteadyTime measured_from = clock_.Monotonic();
  Clock::SteadyTime deadline = measured_from + window;
  std::unique_lock<std::mutex> lock(mu_);
  while (!clock_.WaitUntil(changed_, lock, deadline,
                           [this] { return live_workers_ == 0 || Stopping(); })) {
    const Clock::SteadyTime now = clock_.Monotonic();
    const uint64_t bytes = bytes_fetched_;
    const double seconds = std::chrono::duration<double>(now - measured_from).count();
    const double rate = seconds > 0 ? static_cast<double>(bytes - before) / seconds : 0;
    before = bytes;
    measured_from = now;
    // Windows follow each other on a fixed grid; after a hiccup, the next starts from now.
    deadline = std::max(deadline + window, now);
    ScaleStep step = NextScaleStep(state, rate, RoomForMoreWorkers());
    spdlog::debug("pull: {}", step.note);
    const int had = state.workers;
    state = step.state;
    if (state.workers > had) {
      lock.unlock();
      grow(state.workers);
      lock.lock();
    }
  }
}

bool FetchEngine::RoomForMoreWorkers() const {
  if (idle_workers_ > 0) return false;
  for (const auto& b : blobs_) {
    if (b->state == Blob::State::kQueued) return true;
    if (b->state != Blob::State::kActive) continue;
    std::lock_guard<std::mutex> guard(b->mu);
    for (const auto& seg : b->segments) {
      if (CanSplit(seg->Stealable())) return true;
    }
  }
  return false;
}

std::shared_ptr<FetchEngine::Segment> FetchEngine::ClaimHole(Blob& blob) {
  std::lock_guard<std::mutex> lock(blob.mu);
  if (blob.hashed_all || !blob.record) return nullptr;
  const ResumeRecord& record = *blob.record;
  for (size_t c = 0; c < record.cells(); ++c) {
    if (record.CellFull(c)) continue;
    const uint64_t p = record.CellBegin(c) + record.written(c);
    bool covered = false;
    uint64_t end = blob.spec.size;
    for (const auto& s : blob.segments) {
      if (s->pos <= p && p < s->end) covered = true;
      if (s->pos > p) end = std::min(end, s->pos);
    }
    if (covered) continue;
    for (size_t j = c + 1; j < record.cells() && record.CellBegin(j) < end; ++j) {
      if (record.written(j) > 0) {
        end = record.CellBegin(j);
        break;
      }
    }
    auto segment = std::make_shared<Segment>();
    segment->blob = &blob;
    segment->pos = p;
    segment->end = end;
    blob.segments.push_back(segment);
    return segment;
  }
  return nullptr;
}

std::shared_ptr<FetchEngine::Segment> FetchEngine::SplitLargest() {
  Blob* best_blob = nullptr;
  std::shared_ptr<Segment> best;
  uint64_t best_left = 0;
  for (auto& b : blobs_) {
    if (b->state != Blob::State::kActive) continue;
    std::lock_guard<std::mutex> lock(b->mu);
    for (const auto& s : b->segments) {
      if (s->Stealable() > best_left) {
        best_left = s->Stealable();
        best = s;
        best_blob = b.get();
      }
    }
  }
  if (!best || !CanSplit(best_left)) return nullptr;
  std::lock_guard<std::mutex> lock(best_blob->mu);
  const uint64_t cell = best_blob->record->cell_size();
  // It may have moved since the scan. Only bytes past the request on the wire are taken.
  const uint64_t left = best->Stealable();
  const uint64_t from = std::max(best->pos, best->wire_end);
  uint64_t mid = from + left / 2;
  mid = (mid + cell - 1) / cell * cell;
  if (!CanSplit(left) || mid >= best->end) return nullptr;
  auto segment = std::make_shared<Segment>();
  segment->blob = best_blob;
  segment->pos = mid;
  segment->end = best->end.load();
  best->end = mid;
  best_blob->segments.push_back(segment);
  return segment;
}

std::string FetchEngine::ResolveUrl(size_t source, const Blob& blob) const {
  const RepoId& repo = config_.repo;
  return config_.sources[source].base_url + "/" + std::string(repo.UrlPrefix()) + repo.id() +
         "/resolve/" + config_.commit.str() + "/" + net::PercentEncodePath(blob.name());
}

void FetchEngine::Fail(Blob& blob, Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = std::move(status);
  failed_ = true;
  blob.state = Blob::State::kFailed;
  changed_.notify_all();
}

void FetchEngine::Wait(std::chrono::milliseconds duration) {
  if (config_.sleep) {
    config_.sleep(duration);
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  clock_.WaitFor(changed_, lock, duration, [this] { return Stopping(); });
}

FetchEngine::Counters FetchEngine::counters() const {
  Counters c;
  c.bytes_done = bytes_done_;
  c.bytes_fetched = bytes_fetched_;
  c.bytes_resumed = bytes_resumed_;
  c.blobs_fetched = blobs_fetched_;
  c.blobs_linked = blobs_linked_;
  c.retries = retries_;
  c.peak_connections = peak_connections_;
  std::lock_guard<std::mutex> lock(source_mu_);
  c.bytes_by_source = bytes_by_source_;
  return c;
}

std::optional<BlobExtent> FetchEngine::Extent(const std::string& etag, uint64_t offset) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& b : blobs_) {
    if (b->spec.etag.str() != etag) continue;
    BlobExtent e{.size = b->spec.size, .available_end = offset, .written = 0};
    if (b->state == Blob::State::kDone) e.written = b->spec.size;  // published: being linked
    if (b->state != Blob::State::kActive) return e;
    std::lock_guard<std::mutex> guard(b->mu);
    if (!b->record) return e;
    e.written = b->written;
    const ResumeRecord& record = *b->record;
    // Bytes written contiguously from `offset`, cell after cell.
    for (size_t c = offset / record.cell_size(); c < record.cells(); ++c) {
      const uint64_t written_end = record.CellBegin(c) + record.written(c);
      if (written_end <= e.available_end) break;
      e.available_end = written_end;
      if (!record.CellFull(c)) break;
    }
    return e;
  }
  return std::nullopt;
}

std::vector<PullEvent::FileProgress> FetchEngine::InFlight() const {
  std::vector<PullEvent::FileProgress> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& b : blobs_) {
    if (b->state != Blob::State::kActive) continue;
    std::lock_guard<std::mutex> guard(b->mu);
    out.push_back({b->name(), b->written, b->spec.size});
  }
  return out;
}

}  // namespace mc::downloader
