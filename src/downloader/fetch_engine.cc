#include "downloader/fetch_engine.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "downloader/range_fetch.h"
#include "downloader/resume_record.h"
#include "mc/cache/blob_hasher.h"
#include "mc/cache/file_lock.h"
#include "mc/net/url.h"

namespace mc::downloader {

namespace {

// The unit of work of the write path: libcurl's receive buffer (range_fetch.cc), the write
// buffer and the hash read-back buffer. Small on purpose: each piece is received, written and
// hashed while it is still in the core's L2 cache. With 1 MiB pieces the kernel's copy into the
// page cache read from memory and cost the pull about a third more CPU (docs/pull.md, "Writes").
constexpr size_t kPieceBytes = 64 << 10;

Status PwriteAll(int fd, const char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC || errno == EDQUOT) {
        return ResourceExhaustedError(
            "disk full while writing a blob: free space and run the "
            "pull again (it resumes)");
      }
      return ErrnoError(errno, "write blob temp file");
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status PreadAll(int fd, char* data, size_t size, uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read blob temp file");
    if (n == 0) return DataLossError("blob temp file is shorter than expected");
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// Empties the temp file and gives it its final size, sparse. Not fallocate(2): on ext4 the
// unwritten extents it creates cost more CPU at writeback than the early ENOSPC is worth (the
// plan's free-space check runs first; a disk that fills up later fails a pwrite with
// ResourceExhausted, and the pull resumes once space is freed).
Status Presize(int fd, uint64_t size) {
  if (::ftruncate(fd, 0) != 0) return ErrnoError(errno, "truncate blob temp file");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return ErrnoError(errno, "size blob temp file");
  }
  return Status::Ok();
}

}  // namespace

struct FetchEngine::Segment {
  Blob* blob = nullptr;
  uint64_t pos = 0;  // next byte to write; guarded by blob->mu
  // One past the last byte; lowered by splits. Written under blob->mu, read by the sink without.
  std::atomic<uint64_t> end{0};
  size_t source = 0;
};

struct FetchEngine::Blob {
  enum class State { kQueued, kActivating, kDeferred, kWaitingLock, kActive, kDone, kFailed };

  explicit Blob(BlobSpec s) : spec(std::move(s)) {}
  ~Blob() {
    if (fd >= 0) ::close(fd);
  }

  const BlobSpec spec;
  State state = State::kQueued;  // guarded by the engine's mu_

  // Set up by Activate (before the blob is kActive), then guarded by mu.
  std::mutex mu;
  std::optional<cache::FileLock> lock;
  int fd = -1;
  std::optional<ResumeRecord> record;
  std::unique_ptr<cache::BlobHasher> hasher;  // used only by the thread with hashing = true
  uint64_t hash_pos = 0;
  bool hashing = false;
  bool hashed_all = false;
  std::vector<std::shared_ptr<Segment>> segments;
  std::vector<bool> bad_source;
  std::vector<std::string> urls;     // per source; the upstream's may become a redirect target
  std::vector<uint64_t> bytes_from;  // per source
  uint64_t written = 0;
  bool resumed = false;
  bool used_peer = false;
  bool restarted = false;
  bool started_event = false;

  const std::string& name() const { return spec.paths.front().str(); }
};

struct FetchEngine::Worker {
  RangeFetcher fetcher;
  std::vector<char> scratch = std::vector<char>(kPieceBytes);  // hash read-back
  std::vector<char> wbuf = std::vector<char>(kPieceBytes);     // Sink's write buffer
  size_t wlen = 0;
  uint64_t woffset = 0;
  std::mt19937_64 rng{std::random_device{}()};
  Blob* finalize = nullptr;  // this worker hashed the last byte of it
};

// Writes the bytes of one segment into the blob's temp file, records them and advances the hash.
// A piece of at least half of kPieceBytes (what libcurl hands over on a fast link) is committed
// straight from libcurl's buffer; smaller ones (a slow link) are gathered in the worker's buffer
// first, so that a record update and a hash step cover at least that much. A kill loses at most
// the gathered bytes; Flush() must run after every transfer.
class FetchEngine::Sink : public RangeSink {
 public:
  Sink(FetchEngine& engine, Blob& blob, Segment& segment, Worker& worker)
      : engine_(engine), blob_(blob), segment_(segment), worker_(worker) {}

  size_t Write(uint64_t offset, const char* data, size_t size) override {
    const uint64_t end = segment_.end.load();
    if (offset >= end) return 0;  // split: the rest belongs to another worker
    const size_t take = static_cast<size_t>(std::min<uint64_t>(size, end - offset));
    if (worker_.wlen == 0 && take >= worker_.wbuf.size() / 2) {
      return Commit(offset, data, take) ? take : 0;
    }
    if (worker_.wlen == 0) worker_.woffset = offset;
    size_t done = 0;
    while (done < take) {
      const size_t n = std::min(take - done, worker_.wbuf.size() - worker_.wlen);
      std::memcpy(worker_.wbuf.data() + worker_.wlen, data + done, n);
      worker_.wlen += n;
      done += n;
      if (worker_.wlen == worker_.wbuf.size() && !Flush()) return 0;
    }
    return take;
  }

  // Commits the gathered bytes. False (and error() set) on failure.
  bool Flush() {
    if (worker_.wlen == 0) return error_.ok();
    const size_t len = worker_.wlen;
    worker_.wlen = 0;
    const uint64_t offset = worker_.woffset;
    worker_.woffset += len;
    return Commit(offset, worker_.wbuf.data(), len);
  }

  // Writes [offset, offset + len) (what is still inside the segment after a split), records it
  // and advances the hash. False (and error() set) on failure.
  bool Commit(uint64_t offset, const char* data, size_t len) {
    std::unique_lock<std::mutex> lock(blob_.mu);
    const uint64_t end = segment_.end.load();
    const size_t take =
        offset >= end ? 0 : static_cast<size_t>(std::min<uint64_t>(len, end - offset));
    if (take == 0) return true;
    Status st = PwriteAll(blob_.fd, data, take, offset);
    ResumeRecord& record = *blob_.record;
    const uint64_t cell_size = record.cell_size();
    for (size_t c = offset / cell_size; st.ok() && c * cell_size < offset + take; ++c) {
      const uint64_t begin = record.CellBegin(c);
      const uint64_t now = std::min(begin + record.CellLength(c), offset + take) - begin;
      if (begin + record.written(c) < offset || now <= record.written(c)) continue;
      st = record.SetWritten(c, now);
      if (st.ok() && record.CellFull(c)) {
        // Start writeback of the finished cell now, so the fsync before publication is short.
        ::sync_file_range(blob_.fd, static_cast<off_t>(begin),
                          static_cast<off_t>(record.CellLength(c)), SYNC_FILE_RANGE_WRITE);
      }
    }
    if (!st.ok()) {
      error_ = st;
      return false;
    }
    segment_.pos = offset + take;
    blob_.written += take;
    blob_.bytes_from[segment_.source] += take;
    if (engine_.config_.sources[segment_.source].is_peer) blob_.used_peer = true;
    lock.unlock();
    engine_.bytes_done_ += take;
    engine_.bytes_fetched_ += take;
    bytes_ += take;
    StatusOr<bool> done = engine_.AdvanceHash(blob_, data, offset, take, worker_);
    if (!done.ok()) {
      error_ = done.status();
      return false;
    }
    if (*done) worker_.finalize = &blob_;
    return true;
  }

  uint64_t bytes() const { return bytes_; }  // flushed into the blob
  Status error() const override { return error_; }
  bool Cancelled() const override { return engine_.Stopping(); }

 private:
  FetchEngine& engine_;
  Blob& blob_;
  Segment& segment_;
  Worker& worker_;
  Status error_;
  uint64_t bytes_ = 0;
};

FetchEngine::FetchEngine(cache::CacheStore& store, EngineConfig config, EngineCallbacks callbacks)
    : store_(store), config_(std::move(config)), callbacks_(std::move(callbacks)) {}

FetchEngine::~FetchEngine() = default;

void FetchEngine::Cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  changed_.notify_all();
}

Status FetchEngine::Run(std::vector<BlobSpec> specs) {
  std::stable_sort(specs.begin(), specs.end(),
                   [](const BlobSpec& a, const BlobSpec& b) { return a.size > b.size; });
  for (BlobSpec& s : specs) blobs_.push_back(std::make_unique<Blob>(std::move(s)));
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
  Worker worker;
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
      Finalize(*done, worker);
    }
    lock.lock();
  }
  --live_workers_;
  changed_.notify_all();
}

std::shared_ptr<FetchEngine::Segment> FetchEngine::NextSegment(std::unique_lock<std::mutex>& lock,
                                                               Worker& worker) {
  using State = Blob::State;
  auto apply = [&](Blob& blob, Activation a) {
    switch (a) {
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
  };
  while (true) {
    if (Stopping()) return nullptr;
    // 1. A range of an active blob that nobody fetches (a new blob, a resumed one, a restart).
    for (auto& b : blobs_) {
      if (b->state != State::kActive) continue;
      if (auto s = ClaimHole(*b)) return s;
    }
    // 2. Start the next blob.
    auto queued = std::find_if(blobs_.begin(), blobs_.end(),
                               [](const auto& b) { return b->state == State::kQueued; });
    if (queued != blobs_.end()) {
      Blob& blob = **queued;
      blob.state = State::kActivating;
      lock.unlock();
      Activation a = Activate(blob, /*wait_for_lock=*/false, worker);
      lock.lock();
      if (blob.state == State::kActivating) apply(blob, a);
      continue;
    }
    // 3. Help with the largest range in flight.
    if (auto s = SplitLargest()) return s;
    // 4. Blobs another process is fetching: wait for its lock, then link or fetch.
    auto deferred = std::find_if(blobs_.begin(), blobs_.end(),
                                 [](const auto& b) { return b->state == State::kDeferred; });
    if (deferred != blobs_.end()) {
      Blob& blob = **deferred;
      blob.state = State::kWaitingLock;
      lock.unlock();
      Activation a = Activate(blob, /*wait_for_lock=*/true, worker);
      lock.lock();
      if (blob.state == State::kWaitingLock) apply(blob, a);
      continue;
    }
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

void FetchEngine::Scale(int workers, int most, const std::function<void(int)>& grow) {
  const FetchTuning& tuning = config_.tuning;
  const double window = std::chrono::duration<double>(tuning.scale_window).count();
  uint64_t before = bytes_fetched_;
  double base = -1;  // bytes/s of the last window, with `workers` workers
  int windows = 0;
  bool scaling = true;  // after that, the rate is only logged (--log-level debug)
  std::unique_lock<std::mutex> lock(mu_);
  while (!changed_.wait_for(lock, tuning.scale_window,
                            [this] { return live_workers_ == 0 || Stopping(); })) {
    const uint64_t now = bytes_fetched_;
    const double rate = static_cast<double>(now - before) / window;
    before = now;
    // The first window has the connections' start in it: it is the baseline's warm-up only.
    if (++windows == 1 || !scaling) {
      spdlog::debug("pull: {} connections: {:.1f} MB/s", workers, rate / 1e6);
      continue;
    }
    if (base >= 0 && rate < base * (1 + tuning.scale_gain)) {  // that step did not pay
      spdlog::debug("pull: {} connections: {:.1f} MB/s, not {:.0f}% more than before: no more",
                    workers, rate / 1e6, tuning.scale_gain * 100);
      scaling = false;
      continue;
    }
    base = rate;
    // More workers help only when all are busy and there is a range left to split.
    bool splittable = false;
    for (const auto& b : blobs_) {
      if (b->state == Blob::State::kQueued) splittable = true;
      if (b->state != Blob::State::kActive || splittable) continue;
      std::lock_guard<std::mutex> guard(b->mu);
      for (const auto& seg : b->segments) {
        if (CanSplit(seg->end - seg->pos)) splittable = true;
      }
    }
    if (idle_workers_ > 0 || !splittable) {
      spdlog::debug("pull: {} connections: {:.1f} MB/s; {} idle, {} range to split", workers,
                    rate / 1e6, idle_workers_, splittable ? "a" : "no");
      base = -1;  // nothing was tried: measure again before the next step
      continue;
    }
    const int next = std::min(most, 2 * workers);
    spdlog::debug("pull: {} connections: {:.1f} MB/s; trying {}", workers, rate / 1e6, next);
    workers = next;
    scaling = workers < most;
    lock.unlock();
    grow(workers);
    lock.lock();
  }
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
      if (s->end - s->pos > best_left) {
        best_left = s->end - s->pos;
        best = s;
        best_blob = b.get();
      }
    }
  }
  if (!best || !CanSplit(best_left)) return nullptr;
  std::lock_guard<std::mutex> lock(best_blob->mu);
  const uint64_t cell = best_blob->record->cell_size();
  if (best->pos >= best->end) return nullptr;  // it may have moved since the scan
  const uint64_t left = best->end - best->pos;
  uint64_t mid = best->pos + left / 2;
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

FetchEngine::Activation FetchEngine::Activate(Blob& blob, bool wait_for_lock, Worker& worker) {
  const RepoId& repo = config_.repo;
  const Etag& etag = blob.spec.etag;
  const auto lock_path = store_.layout().LockFile(repo, etag);
  StatusOr<cache::FileLock> lock = cache::FileLock::TryAcquire(lock_path);
  while (!lock.ok() && lock.status().code() == StatusCode::kUnavailable) {
    if (!wait_for_lock) return Activation::kDeferred;
    if (Stopping()) return Activation::kFailed;
    Wait(std::chrono::milliseconds(50));
    lock = cache::FileLock::TryAcquire(lock_path);
  }
  if (!lock.ok()) {
    Fail(blob, lock.status().WithContext("lock blob of " + QuoteForMessage(blob.name())));
    return Activation::kFailed;
  }
  if (store_.HasBlob(repo, etag, blob.spec.size)) {
    // Another process published it while we planned or waited.
    Status st;
    for (const RepoFilePath& path : blob.spec.paths) {
      if (st.ok()) st = store_.LinkSnapshotFile(repo, config_.commit, path, etag);
    }
    if (!st.ok()) {
      Fail(blob, st);
      return Activation::kFailed;
    }
    ++blobs_linked_;
    std::lock_guard<std::mutex> cb(callback_mu_);
    if (callbacks_.linked) callbacks_.linked(blob.spec);
    return Activation::kPresent;
  }

  Status st;
  StatusOr<int> fd = store_.OpenResumableBlob(repo, etag);
  if (!fd.ok()) {
    Fail(blob, fd.status());
    return Activation::kFailed;
  }
  bool resumed = false;
  StatusOr<ResumeRecord> record =
      ResumeRecord::Open(ResumeRecordPath(config_.state_dir, store_.layout().root(), repo, etag),
                         etag, blob.spec.size, config_.tuning.cell_size, *fd, &resumed);
  if (record.ok() && !resumed) st = Presize(*fd, blob.spec.size);
  if (!record.ok()) st = record.status();
  if (!st.ok()) {
    ::close(*fd);
    Fail(blob, st.WithContext(QuoteForMessage(blob.name())));
    return Activation::kFailed;
  }
  {
    std::lock_guard<std::mutex> guard(blob.mu);
    blob.lock.emplace(std::move(*lock));
    blob.fd = *fd;
    blob.record.emplace(std::move(*record));
    blob.hasher = cache::BlobHasher::Create(cache::HashKindOf(etag), blob.spec.size);
    blob.hash_pos = 0;
    blob.hashed_all = false;
    blob.written = blob.record->TotalWritten();
    blob.resumed = resumed;
    blob.bad_source.assign(config_.sources.size(), false);
    blob.bytes_from.assign(config_.sources.size(), 0);
    blob.urls.clear();
    for (size_t i = 0; i < config_.sources.size(); ++i) blob.urls.push_back(ResolveUrl(i, blob));
  }
  if (resumed) {
    bytes_done_ += blob.written;
    bytes_resumed_ += blob.written;
  }
  // Hash what an earlier run wrote (from disk, once); an empty or complete blob ends here.
  StatusOr<bool> done = AdvanceHash(blob, nullptr, 0, 0, worker);
  if (!done.ok()) {
    Fail(blob, done.status());
    return Activation::kFailed;
  }
  if (*done) {
    {
      std::lock_guard<std::mutex> guard(mu_);
      blob.state = Blob::State::kActive;
    }
    Finalize(blob, worker);
  }
  return Activation::kActive;
}

StatusOr<bool> FetchEngine::AdvanceHash(Blob& blob, const char* data, uint64_t offset, size_t size,
                                        Worker& worker) {
  std::unique_lock<std::mutex> lock(blob.mu);
  if (blob.hashing || blob.hashed_all) return false;
  blob.hashing = true;
  const ResumeRecord& record = *blob.record;
  while (true) {
    // The end of the bytes written contiguously from the frontier.
    uint64_t avail = blob.spec.size;
    for (size_t c = blob.hash_pos / record.cell_size(); c < record.cells(); ++c) {
      if (!record.CellFull(c)) {
        avail = record.CellBegin(c) + record.written(c);
        break;
      }
    }
    const uint64_t from = blob.hash_pos;
    if (avail <= from) break;
    const char* src = nullptr;
    uint64_t piece = 0;
    if (data != nullptr && offset <= from && from < offset + size) {
      piece = std::min<uint64_t>(avail, offset + size) - from;
      src = data + (from - offset);
    } else {
      piece = std::min<uint64_t>(avail - from, worker.scratch.size());
    }
    lock.unlock();
    Status st;
    if (src == nullptr) {
      st = PreadAll(blob.fd, worker.scratch.data(), static_cast<size_t>(piece), from);
      src = worker.scratch.data();
    }
    if (st.ok()) blob.hasher->Update(src, static_cast<size_t>(piece));
    lock.lock();
    if (!st.ok()) {
      blob.hashing = false;
      return st;
    }
    blob.hash_pos += piece;
  }
  blob.hashing = false;
  if (blob.hash_pos == blob.spec.size) {
    blob.hashed_all = true;
    return true;
  }
  return false;
}

void FetchEngine::FetchSegment(Blob& blob, const std::shared_ptr<Segment>& segment,
                               Worker& worker) {
  const FetchTuning& tuning = config_.tuning;
  int attempts = 0;
  std::string last_error;
  while (!Stopping()) {
    RangeRequest request;
    size_t source = 0;
    bool first = false;
    {
      std::lock_guard<std::mutex> lock(blob.mu);
      if (segment->pos >= segment->end) break;
      while (source + 1 < config_.sources.size() && blob.bad_source[source]) ++source;
      segment->source = source;
      request.url = blob.urls[source];
      request.begin = segment->pos;
      request.end = segment->end;
      first = !blob.started_event;
      blob.started_event = true;
    }
    if (first) {
      std::lock_guard<std::mutex> cb(callback_mu_);
      if (callbacks_.started) callbacks_.started(blob.spec);
    }
    const Source& src = config_.sources[source];
    request.blob_size = blob.spec.size;
    if (!src.is_peer && config_.token) {
      request.token_origin = &config_.endpoint;
      request.token = &*config_.token;
    }
    request.user_agent = config_.user_agent;
    request.connect_timeout = src.is_peer ? tuning.peer_connect_timeout : tuning.connect_timeout;
    request.stall_timeout = src.is_peer ? tuning.peer_stall_timeout : tuning.stall_timeout;
    request.min_bytes_per_second = src.is_peer ? tuning.peer_min_bytes_per_second : 1;
    const hub::HubRequestSubject subject{config_.repo, config_.commit.str(),
                                         blob.spec.paths.front(), false};
    request.subject = &subject;

    Sink sink(*this, blob, *segment, worker);
    RangeResult result = worker.fetcher.Fetch(request, sink);
    sink.Flush();
    if (sink.bytes() > 0) {
      attempts = 0;
      std::lock_guard<std::mutex> lock(source_mu_);
      bytes_by_source_[src.name] += sink.bytes();
    }
    if (!sink.error().ok()) {
      Fail(blob, sink.error().WithContext(QuoteForMessage(blob.name())));
      break;
    }
    if (result.outcome == RangeResult::Outcome::kComplete) {
      if (result.effective_url != request.url) {
        std::lock_guard<std::mutex> lock(blob.mu);
        blob.urls[source] = result.effective_url;  // later ranges skip the redirect
      }
      continue;
    }
    if (result.outcome == RangeResult::Outcome::kCancelled) break;
    if (src.is_peer) {
      // A peer gets one chance per blob: it lacks the blob, fails or is too slow.
      {
        std::lock_guard<std::mutex> lock(blob.mu);
        blob.bad_source[source] = true;
      }
      std::lock_guard<std::mutex> cb(callback_mu_);
      if (callbacks_.retry) {
        callbacks_.retry(blob.spec, src.name,
                         "peer skipped: " + std::string(result.error.message()),
                         std::chrono::milliseconds(0));
      }
      continue;
    }
    if (result.outcome == RangeResult::Outcome::kFailed &&
        request.url != ResolveUrl(source, blob) && attempts == 0) {
      // A redirect target (a signed URL) refused us, perhaps expired: redirect again, once.
      ++attempts;
      std::lock_guard<std::mutex> lock(blob.mu);
      blob.urls[source] = ResolveUrl(source, blob);
      continue;
    }
    if (result.outcome == RangeResult::Outcome::kFailed) {
      Fail(blob, result.error.WithContext(QuoteForMessage(blob.name())));
      break;
    }
    ++attempts;
    last_error = std::string(result.error.message());
    if (attempts >= tuning.max_attempts) {
      Fail(blob, UnavailableError(QuoteForMessage(blob.name()) + ": giving up after " +
                                  std::to_string(attempts) +
                                  " failed attempts in a row; last error: " + last_error +
                                  ". Run the pull again later: it resumes where it stopped"));
      break;
    }
    std::chrono::milliseconds wait =
        result.retry_after ? std::min(*result.retry_after, tuning.max_retry_after)
                           : BackoffDelay(attempts, tuning.backoff_base, tuning.backoff_max,
                                          std::uniform_real_distribution<double>(0, 1)(worker.rng));
    ++retries_;
    {
      std::lock_guard<std::mutex> cb(callback_mu_);
      if (callbacks_.retry) callbacks_.retry(blob.spec, src.name, last_error, wait);
    }
    {
      // A redirect target (a signed URL) may have expired: take the redirect again.
      std::lock_guard<std::mutex> lock(blob.mu);
      blob.urls[source] = ResolveUrl(source, blob);
    }
    Wait(wait);
  }
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    auto& segs = blob.segments;
    segs.erase(std::remove(segs.begin(), segs.end(), segment), segs.end());
  }
  std::lock_guard<std::mutex> lock(mu_);
  changed_.notify_all();
}

void FetchEngine::Finalize(Blob& blob, Worker& /*worker*/) {
  const RepoId& repo = config_.repo;
  const Etag& etag = blob.spec.etag;
  const std::string actual = blob.hasher->Finish();
  if (actual != etag.str()) {
    std::unique_lock<std::mutex> lock(blob.mu);
    if ((blob.resumed || blob.used_peer) && !blob.restarted) {
      // Bytes from an earlier run or a peer were wrong: fetch it all again, upstream only.
      blob.restarted = true;
      blob.resumed = false;
      Status st = blob.record->Reset();
      if (st.ok()) st = Presize(blob.fd, blob.spec.size);
      bytes_done_ -= blob.written;
      blob.written = 0;
      blob.hasher = cache::BlobHasher::Create(cache::HashKindOf(etag), blob.spec.size);
      blob.hash_pos = 0;
      blob.hashed_all = false;
      for (size_t i = 0; i + 1 < blob.bad_source.size(); ++i) blob.bad_source[i] = true;
      lock.unlock();
      if (!st.ok()) {
        Fail(blob, st);
        return;
      }
      std::lock_guard<std::mutex> guard(mu_);
      changed_.notify_all();
      return;
    }
    ::close(blob.fd);
    blob.fd = -1;
    ::unlink(store_.ResumableBlobPath(repo, etag).c_str());
    blob.record->Remove();
    blob.lock.reset();
    lock.unlock();
    const char* kind = etag.IsSha256() ? "sha256" : "git-sha1";
    Fail(blob, DataLossError(QuoteForMessage(blob.name()) +
                             ": the downloaded bytes do not match the hub's hash: expected " +
                             kind + " " + etag.str() + ", got " + actual +
                             "; the bad bytes were removed. Run the pull again; if this "
                             "repeats, the server sends corrupt data"));
    return;
  }
  Status st = store_.PublishResumableBlob(repo, etag, blob.fd, blob.spec.size);
  std::string main_source;
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    ::close(blob.fd);
    blob.fd = -1;
    if (st.ok()) blob.record->Remove();
    uint64_t most = 0;
    for (size_t i = 0; i < blob.bytes_from.size(); ++i) {
      if (blob.bytes_from[i] >= most && blob.bytes_from[i] > 0) {
        most = blob.bytes_from[i];
        main_source = config_.sources[i].name;
      }
    }
    if (main_source.empty() && blob.resumed) main_source = "resumed";  // all from an earlier run
  }
  for (const RepoFilePath& path : blob.spec.paths) {
    if (st.ok()) st = store_.LinkSnapshotFile(repo, config_.commit, path, etag);
  }
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    blob.lock.reset();
  }
  if (!st.ok()) {
    Fail(blob, st.WithContext("publish " + QuoteForMessage(blob.name())));
    return;
  }
  ++blobs_fetched_;
  {
    std::lock_guard<std::mutex> cb(callback_mu_);
    if (callbacks_.verified) callbacks_.verified(blob.spec, main_source);
  }
  std::lock_guard<std::mutex> guard(mu_);
  blob.state = Blob::State::kDone;
  changed_.notify_all();
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
  changed_.wait_for(lock, duration, [this] { return Stopping(); });
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
