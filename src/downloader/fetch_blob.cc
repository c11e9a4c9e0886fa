// FetchEngine, one blob at a time: activating it (lock, temp file, resume record), fetching a
// range of it across sources and retries, writing and recording what arrives, hashing in file
// order, and publishing it (or fetching it again after a hash mismatch).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "downloader/fetch_engine.h"
#include "downloader/fetch_engine_parts.h"
#include "downloader/retry_policy.h"
#include "downloader/transfer_outcome.h"

namespace mc::downloader {

namespace {

// How often a worker looks again at a blob lock another process holds.
constexpr std::chrono::milliseconds kLockPoll{50};

// Empties the temp file and gives it its final size, sparse. Not fallocate(2): on ext4 the
// unwritten extents it creates cost more CPU at writeback than the early ENOSPC is worth (the
// plan's free-space check runs first; a disk that fills up later fails a write with
// ResourceExhausted, and the pull resumes once space is freed).
Status Presize(FileSystem& fs, int fd, uint64_t size) {
  MC_RETURN_IF_ERROR(fs.Truncate(fd, 0), "empty blob temp file");
  MC_RETURN_IF_ERROR(fs.Truncate(fd, size), "size blob temp file");
  return Status::Ok();
}

// A failed write of a download (its temp file or resume record), said so that the user knows
// what to do; `st` names the file.
Status DownloadWriteError(const Status& st) {
  if (st.code() == StatusCode::kResourceExhausted) {
    return ResourceExhaustedError("disk full while writing the download (" + st.message() +
                                  "): free space, then run the pull again: it resumes where it "
                                  "stopped");
  }
  return st.WithContext("write the download");
}

}  // namespace

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
    if (HandOver(offset)) return 0;  // the piece's owner is another member now: ask it instead
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
    Status st = WriteAllAt(blob_.fs, blob_.fd, data, take, offset);
    if (!st.ok()) {
      st = st.WithContext(engine_.store_.ResumableBlobPath(engine_.config_.repo, blob_.spec.etag)
                              .string());
    }
    if (st.ok()) st = Record(offset, take);
    if (!st.ok()) {
      error_ = DownloadWriteError(st);
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

  // Counts [offset, offset + take) as written in the resume record (blob_.mu held).
  Status Record(uint64_t offset, size_t take) {
    ResumeRecord& record = *blob_.record;
    const uint64_t cell_size = record.cell_size();
    for (size_t c = offset / cell_size; c * cell_size < offset + take; ++c) {
      const uint64_t begin = record.CellBegin(c);
      const uint64_t now = std::min(begin + record.CellLength(c), offset + take) - begin;
      if (begin + record.written(c) < offset || now <= record.written(c)) continue;
      MC_RETURN_IF_ERROR(record.SetWritten(c, now));
      // Start writeback of a finished cell now, so the fsync before publication is short.
      if (record.CellFull(c)) blob_.fs.StartWriteback(blob_.fd, begin, record.CellLength(c));
    }
    return Status::Ok();
  }

  // Swarm: a request to the upstream stops at `offset` when the piece there is owned by another
  // member (one joined since the request started, or the request runs into the next piece) and
  // at least a quarter of the piece is still to come; the worker then asks the owner for the
  // rest. Looked at when a piece starts or a member joins, not for every write.
  bool HandOver(uint64_t offset) {
    const size_t upstream = engine_.config_.sources.size() - 1;
    if (segment_.source != upstream || engine_.config_.swarm_self.empty()) return false;
    const size_t members = engine_.SwarmMembers();
    const uint64_t cell = blob_.record->cell_size();
    const uint64_t piece = offset / cell;
    if (members == 0 || (members == checked_members_ && piece == checked_piece_)) return false;
    checked_members_ = members;
    checked_piece_ = piece;
    const uint64_t piece_end = std::min((piece + 1) * cell, blob_.spec.size);
    if (piece_end - offset < cell / 4) return false;
    std::lock_guard<std::mutex> lock(blob_.mu);
    return engine_.SwarmOwner(blob_, piece) != upstream;
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
  size_t checked_members_ = 0;  // HandOver looked at this many members
  uint64_t checked_piece_ = UINT64_MAX;  // and at this piece
};

FetchEngine::Activation FetchEngine::Activate(Blob& blob, bool wait_for_lock, Worker& worker) {
  std::optional<cache::FileLock> lock;
  const Activation locked = TakeLock(blob, wait_for_lock, lock);
  if (!lock) return locked;
  // Another process may have published it while we planned or waited (the lock is held while
  // its paths are linked).
  if (store_.HasBlob(config_.repo, blob.spec.etag, blob.spec.size)) return LinkPresent(blob);
  Status st = OpenTemp(blob, std::move(*lock));
  if (!st.ok()) {
    Fail(blob, DownloadWriteError(st).WithContext(QuoteForMessage(blob.name())));
    return Activation::kFailed;
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
    Finalize(blob);
  }
  return Activation::kActive;
}

FetchEngine::Activation FetchEngine::TakeLock(Blob& blob, bool wait_for_lock,
                                              std::optional<cache::FileLock>& lock) {
  const auto lock_path = store_.layout().LockFile(config_.repo, blob.spec.etag);
  StatusOr<cache::FileLock> taken = cache::FileLock::TryAcquire(lock_path);
  while (!taken.ok() && taken.status().code() == StatusCode::kUnavailable) {
    if (!wait_for_lock) return Activation::kDeferred;
    {
      std::unique_lock<std::mutex> guard(mu_);
      clock_.WaitFor(changed_, guard, kLockPoll, [this] { return Stopping(); });
    }
    if (Stopping()) return Activation::kFailed;
    taken = cache::FileLock::TryAcquire(lock_path);
  }
  if (!taken.ok()) {
    Fail(blob, taken.status().WithContext("lock blob of " + QuoteForMessage(blob.name())));
    return Activation::kFailed;
  }
  lock.emplace(std::move(*taken));
  return Activation::kActive;
}

FetchEngine::Activation FetchEngine::LinkPresent(Blob& blob) {
  Status st;
  for (const RepoFilePath& path : blob.spec.paths) {
    if (st.ok()) st = store_.LinkSnapshotFile(config_.repo, config_.commit, path, blob.spec.etag);
  }
  if (!st.ok()) {
    Fail(blob, st);
    return Activation::kFailed;
  }
  ++blobs_linked_;
  Notify(callbacks_.linked, blob.spec);
  return Activation::kPresent;
}

Status FetchEngine::OpenTemp(Blob& blob, cache::FileLock lock) {
  const RepoId& repo = config_.repo;
  const Etag& etag = blob.spec.etag;
  MC_ASSIGN_OR_RETURN(int fd, store_.OpenResumableBlob(repo, etag));
  bool resumed = false;
  StatusOr<ResumeRecord> record =
      ResumeRecord::Open(fs_, ResumeRecordPath(config_.state_dir, store_.layout().root(), repo, etag),
                         etag, blob.spec.size, config_.tuning.cell_size, fd, &resumed);
  Status st = record.status();
  if (st.ok() && !resumed) st = Presize(fs_, fd, blob.spec.size);
  if (!st.ok()) {
    fs_.Close(fd);
    return st;
  }
  {
    std::lock_guard<std::mutex> guard(blob.mu);
    blob.lock.emplace(std::move(lock));
    blob.fd = fd;
    blob.record.emplace(std::move(*record));
    blob.hasher = cache::BlobHasher::Create(cache::HashKindOf(etag), blob.spec.size);
    blob.hash_pos = 0;
    blob.hashed_all = false;
    blob.written = blob.record->TotalWritten();
    blob.resumed = resumed;
    blob.bad_source.assign(config_.sources.size(), false);
    blob.bytes_from.assign(config_.sources.size(), 0);
    blob.urls.clear();
    // A swarm slot's URL is made when it is first used (it may not be filled yet).
    for (size_t i = 0; i < config_.sources.size(); ++i) {
      blob.urls.push_back(config_.sources[i].swarm_member >= 0 ? std::string()
                                                                : ResolveUrl(i, blob));
    }
  }
  if (resumed) {
    bytes_done_ += blob.written;
    bytes_resumed_ += blob.written;
  }
  return Status::Ok();
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
      st = ReadAllAt(fs_, blob.fd, worker.scratch.data(), static_cast<size_t>(piece), from);
      if (!st.ok()) st = st.WithContext("read back blob temp file");
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
  const RetryPolicy policy = RetryPolicy::From(config_.tuning);
  const hub::HubRequestSubject subject{config_.repo, config_.commit.str(), blob.spec.paths.front(),
                                       false};
  int failed = 0;  // failed attempts in a row
  while (!Stopping()) {
    RangeRequest request;
    size_t source = 0;
    if (!PrepareRequest(blob, *segment, request, source)) break;
    request.subject = &subject;
    Sink sink(*this, blob, *segment, worker);
    RangeResult result = worker.fetcher.Fetch(request, sink);
    sink.Flush();
    const Source& src = config_.sources[source];
    if (sink.bytes() > 0) {
      std::lock_guard<std::mutex> lock(source_mu_);
      bytes_by_source_[src.name] += sink.bytes();
    }
    const TransferReport report{result.outcome, result.error,     result.retry_after,
                                sink.bytes(),   sink.error(),     src.is_peer,
                                request.url != ResolveUrl(source, blob), src.swarm_member >= 0};
    const TransferDecision decision =
        ClassifyTransfer(report, failed, policy, blob.name(), worker.Jitter());
    failed = decision.failed_attempts;
    if (!Apply(blob, *segment, source, request, result, decision)) break;
  }
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    auto& segs = blob.segments;
    segs.erase(std::remove(segs.begin(), segs.end(), segment), segs.end());
  }
  std::lock_guard<std::mutex> lock(mu_);
  changed_.notify_all();
}

bool FetchEngine::PrepareRequest(Blob& blob, Segment& segment, RangeRequest& request,
                                 size_t& source) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    if (segment.pos >= segment.end) return false;
    source = 0;
    // Complete peers first; swarm members only for the pieces they own (SwarmSource).
    while (source + 1 < config_.sources.size() &&
           (blob.bad_source[source] || config_.sources[source].swarm_member >= 0)) {
      ++source;
    }
    request.begin = segment.pos;
    request.end = segment.end;
    const uint64_t most = config_.tuning.request_size;
    if (most > 0 && request.end - request.begin > most) request.end = request.begin + most;
    if (source + 1 == config_.sources.size() && SwarmMembers() > 0) {
      source = SwarmSource(blob, segment, request.end);
      request.accept_partial = config_.sources[source].swarm_member >= 0;
      if (blob.urls[source].empty()) blob.urls[source] = ResolveUrl(source, blob);
    }
    segment.source = source;
    request.url = blob.urls[source];
    segment.wire_end = request.end;
    first = !blob.started_event;
    blob.started_event = true;
  }
  if (first) Notify(callbacks_.started, blob.spec);
  const FetchTuning& tuning = config_.tuning;
  const Source& src = config_.sources[source];
  request.blob_size = blob.spec.size;
  if (!src.is_peer && config_.token) {
    request.token_origin = &config_.endpoint;
    request.token = &*config_.token;
  } else if (src.is_peer && src.origin && config_.peer_key) {
    request.token_origin = &*src.origin;  // the peer key, to that peer only
    request.token = &*config_.peer_key;
  }
  request.user_agent = config_.user_agent;
  if (request.accept_partial) request.swarm_self = &config_.swarm_self;  // the owner learns of us
  request.connect_timeout = src.is_peer ? tuning.peer_connect_timeout : tuning.connect_timeout;
  request.ca_file = tuning.ca_file;
  request.stall_timeout = src.is_peer ? tuning.peer_stall_timeout : tuning.stall_timeout;
  // A member's answer is what it has written, sent at once: its rate is the links', not the
  // member's (and on a congested link a slow answer is no reason to skip it).
  request.min_bytes_per_second =
      src.is_peer && src.swarm_member < 0 ? tuning.peer_min_bytes_per_second : 1;
  return true;
}

size_t FetchEngine::SwarmSource(const Blob& blob, Segment& segment, uint64_t& end) const {
  // Pieces are the resume cells, so that splits (on cell boundaries) never cut one.
  const uint64_t piece_size = blob.record->cell_size();
  const uint64_t piece = segment.pos / piece_size;
  end = std::min(end, (piece + 1) * piece_size);
  return SwarmOwner(blob, piece);
}

size_t FetchEngine::SwarmOwner(const Blob& blob, uint64_t piece) const {
  // The member (this host included) with the highest score for (blob, piece); members skipped
  // for this blob do not compete, so a dead owner's pieces go to one survivor, not to everyone.
  const uint64_t salt = SwarmHash(blob.spec.etag.str());
  const size_t upstream = config_.sources.size() - 1;
  size_t owner = upstream;
  uint64_t best = SwarmScore(self_hash_, salt, piece);
  const size_t members = SwarmMembers();
  for (size_t k = 0; k < members; ++k) {
    const size_t s = swarm_first_ + k;
    if (blob.bad_source[s]) continue;
    const uint64_t score = SwarmScore(swarm_hash_[k], salt, piece);
    if (score > best) {
      best = score;
      owner = s;
    }
  }
  return owner;
}

bool FetchEngine::Apply(Blob& blob, Segment& segment, size_t source, const RangeRequest& request,
                        const RangeResult& result, const TransferDecision& decision) {
  const std::string& name = config_.sources[source].name;
  auto use_url = [&](const std::string& url) {
    std::lock_guard<std::mutex> lock(blob.mu);
    blob.urls[source] = url;
  };
  switch (decision.action) {
    case TransferAction::kContinue:
      // Later ranges of the blob skip the redirect.
      if (result.effective_url != request.url) use_url(result.effective_url);
      return true;
    case TransferAction::kStop:
      return false;
    case TransferAction::kGiveUp:
      Fail(blob, decision.error);
      return false;
    case TransferAction::kNextSource:
      {
        std::lock_guard<std::mutex> lock(blob.mu);
        blob.bad_source[source] = true;
      }
      Notify(callbacks_.retry, blob.spec, name, decision.message, std::chrono::milliseconds(0));
      return true;
    case TransferAction::kRedirectAgain:
      use_url(ResolveUrl(source, blob));
      return true;
    case TransferAction::kWaitPeer: {
      // The owner fetches the blob and has not written this piece yet: wait for it as long as
      // its progress moves; a member stuck for kMemberAttempts x peer_stall_timeout is skipped
      // for the blob (a busy host may write nothing of this blob for a few seconds).
      const auto now = clock_.Monotonic();
      bool skip = false;
      {
        std::lock_guard<std::mutex> lock(blob.mu);
        if (result.pending_written != segment.pending_written) {
          segment.pending_written = result.pending_written;
          segment.pending_since = now;
        } else if (now - segment.pending_since >
                   config_.tuning.peer_stall_timeout * kMemberAttempts) {
          blob.bad_source[source] = true;
          skip = true;
        }
      }
      if (skip) {
        Notify(callbacks_.retry, blob.spec, name, std::string("swarm member made no progress"),
               std::chrono::milliseconds(0));
        return true;
      }
      Wait(config_.tuning.swarm_poll);
      return true;
    }
    case TransferAction::kRetry:
      ++retries_;
      Notify(callbacks_.retry, blob.spec, name, decision.message, decision.wait);
      // A redirect target (a signed URL) may have expired: take the redirect again.
      use_url(ResolveUrl(source, blob));
      Wait(decision.wait);
      return true;
  }
  return false;
}

void FetchEngine::Finalize(Blob& blob) {
  const Etag& etag = blob.spec.etag;
  const std::string actual = blob.hasher->Finish();
  if (actual == etag.str()) {
    Publish(blob);
    return;
  }
  if (Restart(blob)) return;
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    blob.CloseFd();
    Status removed = fs_.Remove(store_.ResumableBlobPath(config_.repo, etag));
    if (!removed.ok()) spdlog::warn("pull: {}", removed.ToString());
    blob.record->Remove();
    blob.lock.reset();
  }
  const char* kind = etag.IsSha256() ? "sha256" : "git-sha1";
  Fail(blob, DataLossError(QuoteForMessage(blob.name()) +
                           ": the downloaded bytes do not match the hub's hash: expected " + kind +
                           " " + etag.str() + ", got " + actual +
                           "; the bad bytes were removed. Run the pull again; if this "
                           "repeats, the server sends corrupt data"));
}

bool FetchEngine::Restart(Blob& blob) {
  std::unique_lock<std::mutex> lock(blob.mu);
  if (!(blob.resumed || blob.used_peer) || blob.restarted) return false;
  // Bytes from an earlier run or a peer were wrong: fetch it all again, upstream only.
  blob.restarted = true;
  blob.resumed = false;
  Status st = blob.record->Reset();
  if (st.ok()) st = Presize(fs_, blob.fd, blob.spec.size);
  bytes_done_ -= blob.written;
  blob.written = 0;
  blob.hasher = cache::BlobHasher::Create(cache::HashKindOf(blob.spec.etag), blob.spec.size);
  blob.hash_pos = 0;
  blob.hashed_all = false;
  for (size_t i = 0; i + 1 < blob.bad_source.size(); ++i) blob.bad_source[i] = true;
  lock.unlock();
  if (!st.ok()) {
    Fail(blob, st);
    return true;
  }
  std::lock_guard<std::mutex> guard(mu_);
  changed_.notify_all();
  return true;
}

void FetchEngine::Publish(Blob& blob) {
  const RepoId& repo = config_.repo;
  const Etag& etag = blob.spec.etag;
  Status st = store_.PublishResumableBlob(repo, etag, blob.fd, blob.spec.size);
  std::string main_source;
  {
    std::lock_guard<std::mutex> lock(blob.mu);
    blob.CloseFd();
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
  Notify(callbacks_.verified, blob.spec, main_source);
  std::lock_guard<std::mutex> guard(mu_);
  blob.state = Blob::State::kDone;
  changed_.notify_all();
}

}  // namespace mc::downloader
