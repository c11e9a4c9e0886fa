// FetchEngine: downloads a set of blobs into a cache with a pool of worker threads, dynamic
// range splitting, in-order hashing, resume records, per-blob locks, sources with fallback and
// retries; publishes each verified blob and links its snapshot paths. The algorithm is described
// in mc/downloader/pull.h; this is its implementation, internal to the downloader.
//
// Time comes from the Clock it is given (connection-scaling windows, retry and lock waits, stall
// detection), file system calls on temp files and resume records from EngineConfig::file_system,
// so that tests run it on a FakeClock and a disk that fills up.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/common/clock.h"
#include "mc/common/file_system.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/downloader/pull.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"

namespace mc::downloader {

// One blob to fetch and the snapshot paths that link to it.
struct BlobSpec {
  Etag etag;
  uint64_t size = 0;
  std::vector<RepoFilePath> paths;  // sorted; the first names the blob in messages
};

// Where bytes come from: peers first, the upstream last.
struct Source {
  std::string name;      // "upstream" or the peer's base URL
  std::string base_url;  // without trailing '/'
  bool is_peer = false;
  // A swarm slot (>= 0: its index among the slots); -1: a complete peer or the upstream. A slot's
  // name and base_url are empty until a member fills it (FetchEngine::AddSwarmMember).
  int swarm_member = -1;
};

struct EngineConfig {
  std::filesystem::path state_dir;
  RepoId repo;
  CommitSha commit;
  std::vector<Source> sources;  // the last one is the upstream
  hub::Endpoint endpoint;       // the token's origin
  std::optional<hub::Secret> token;
  FetchTuning tuning;
  std::string user_agent;
  std::function<void(std::chrono::milliseconds)> sleep;  // retry waits; null: on the clock
  FileSystem* file_system = &FileSystem::Real();         // temp files and resume records
  // This host's URL as swarm members know it; empty: no swarm (the sources have no slots).
  std::string swarm_self;
};

// Called from worker threads, serialized by the engine.
struct EngineCallbacks {
  std::function<void(const BlobSpec&)> started;
  std::function<void(const BlobSpec&, const std::string& source)> verified;
  std::function<void(const BlobSpec&)> linked;  // present already (another process fetched it)
  std::function<void(const BlobSpec&, const std::string& host, const std::string& message,
                     std::chrono::milliseconds wait)>
      retry;
};

struct RangeRequest;
struct TransferDecision;
struct RangeResult;

class FetchEngine {
 public:
  // `store` and `clock` are borrowed and must outlive the engine.
  FetchEngine(cache::CacheStore& store, Clock& clock, EngineConfig config,
              EngineCallbacks callbacks);
  ~FetchEngine();
  FetchEngine(const FetchEngine&) = delete;
  FetchEngine& operator=(const FetchEngine&) = delete;

  // Fetches every blob (largest first); returns the first error (and stops the others), or OK
  // when all are published and linked.
  Status Run(std::vector<BlobSpec> blobs);
  void Cancel();

  struct Counters {
    uint64_t bytes_done = 0;     // written to temp files (resumed bytes included)
    uint64_t bytes_fetched = 0;  // received from the network
    uint64_t bytes_resumed = 0;
    int blobs_fetched = 0;
    int blobs_linked = 0;
    int retries = 0;
    int peak_connections = 0;  // workers started (scaling only adds)
    std::map<std::string, uint64_t> bytes_by_source;
  };
  Counters counters() const;
  // Blobs in flight: first path, bytes written, size.
  std::vector<PullEvent::FileProgress> InFlight() const;
  // What is written of blob `etag` from `offset` (Puller::Extent).
  std::optional<BlobExtent> Extent(const std::string& etag, uint64_t offset) const;
  // A swarm member (normalized base URL) joins: it fills the next free slot. False when it is this
  // host, known already, or every slot is taken. From any thread.
  bool AddSwarmMember(const std::string& url);

 private:
  struct Blob;
  struct Segment;
  struct Worker;
  class Sink;

  void WorkerLoop(int id);
  // Connection scaling (FetchTuning::max_connections): measures a window of the clock at a time
  // on the calling thread and calls grow(n) to have n workers, until the workers are done.
  void Scale(int workers, int most, const std::function<void(int)>& grow);
  // Every worker busy and a range left to split (or a blob not started). `mu_` held.
  bool RoomForMoreWorkers() const;
  // The next range to fetch, activating queued blobs and splitting ranges as needed; nullptr
  // when there is nothing left to do. `lock` holds mu_.
  std::shared_ptr<Segment> NextSegment(std::unique_lock<std::mutex>& lock, Worker& worker);
  // Activates the first queued blob (or, with `wait_for_lock`, the first one deferred because
  // another process holds its lock); false if there is none. `lock` holds mu_.
  bool ActivateNext(std::unique_lock<std::mutex>& lock, Worker& worker, bool wait_for_lock);
  std::shared_ptr<Segment> ClaimHole(Blob& blob);
  std::shared_ptr<Segment> SplitLargest();
  // A range with `left` bytes to go is worth splitting: both halves get at least min_split_size.
  bool CanSplit(uint64_t left) const { return left >= 2 * config_.tuning.min_split_size; }
  // Opens a blob for fetching (lock, temp file, resume record, prefix hash). Called without mu_.
  enum class Activation { kActive, kDeferred, kPresent, kFailed };
  Activation Activate(Blob& blob, bool wait_for_lock, Worker& worker);
  // Takes the blob's lock into `lock`, waiting for another process if `wait_for_lock`; when it
  // is left empty, the result says why (kDeferred or kFailed).
  Activation TakeLock(Blob& blob, bool wait_for_lock, std::optional<cache::FileLock>& lock);
  // Links the paths of a blob another process published.
  Activation LinkPresent(Blob& blob);
  // Opens the temp file and the resume record and sets the blob up for fetching.
  Status OpenTemp(Blob& blob, cache::FileLock lock);
  // Fetches what is left of `segment`, across sources, retries and redirects.
  void FetchSegment(Blob& blob, const std::shared_ptr<Segment>& segment, Worker& worker);
  // Fills `request` for what is left of `segment` from the first source not skipped for the
  // blob (the upstream last); false when nothing is left.
  bool PrepareRequest(Blob& blob, Segment& segment, RangeRequest& request, size_t& source);
  // Carries out what ClassifyTransfer decided; false when the segment's loop ends.
  bool Apply(Blob& blob, Segment& segment, size_t source, const RangeRequest& request,
             const RangeResult& result, const TransferDecision& decision);
  // Swarm: the source of the piece at `segment.pos` (its owner, or the upstream) and the end of
  // the request. Called with blob.mu held, when no complete peer is left for the blob.
  size_t SwarmSource(const Blob& blob, Segment& segment, uint64_t& end) const;
  // The source of `piece` of `blob`: its owner's slot, or the upstream when it is this host's.
  // blob.mu held.
  size_t SwarmOwner(const Blob& blob, uint64_t piece) const;
  // Members in the swarm slots now (acquire: their slots are filled).
  size_t SwarmMembers() const { return swarm_count_.load(std::memory_order_acquire); }
  // Hashes what is contiguous past the hash frontier; `data` (at `offset`) is used when it covers
  // the frontier. Returns true when this call hashed the last byte.
  StatusOr<bool> AdvanceHash(Blob& blob, const char* data, uint64_t offset, size_t size,
                             Worker& worker);
  std::string ResolveUrl(size_t source, const Blob& blob) const;
  // After the last byte is hashed: publish and link, or handle a hash mismatch.
  void Finalize(Blob& blob);
  void Publish(Blob& blob);
  // Fetches the blob again from scratch, upstream only (bytes from an earlier run or a peer
  // were wrong); false if that is not allowed (again) and the mismatch is final.
  bool Restart(Blob& blob);
  void Fail(Blob& blob, Status status);
  bool Stopping() const { return cancelled_.load() || failed_.load(); }
  // A retry wait: the sleep hook, or the clock (ended early by Cancel or a failure).
  void Wait(std::chrono::milliseconds duration);
  // Calls a callback, one at a time.
  template <typename Callback, typename... Args>
  void Notify(const Callback& callback, Args&&... args);

  cache::CacheStore& store_;
  Clock& clock_;
  // Const but for the swarm slots of `sources`, each filled once by AddSwarmMember under
  // swarm_mu_ before swarm_count_ publishes it; a slot is read only after that.
  EngineConfig config_;
  FileSystem& fs_;
  const EngineCallbacks callbacks_;

  mutable std::mutex mu_;  // blob states and the queue; taken before any Blob::mu
  std::condition_variable changed_;
  std::vector<std::unique_ptr<Blob>> blobs_;  // largest first
  Status error_;                              // guarded by mu_
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> failed_{false};

  std::mutex callback_mu_;  // serializes callbacks

  std::atomic<uint64_t> bytes_done_{0};
  std::atomic<uint64_t> bytes_fetched_{0};
  std::atomic<uint64_t> bytes_resumed_{0};
  std::atomic<int> blobs_fetched_{0};
  std::atomic<int> blobs_linked_{0};
  std::atomic<int> retries_{0};
  int live_workers_ = 0;  // guarded by mu_: started and not finished
  int idle_workers_ = 0;  // guarded by mu_: waiting in NextSegment for work to appear
  std::atomic<int> peak_connections_{0};
  std::mutex swarm_mu_;                 // serializes AddSwarmMember
  size_t swarm_first_ = 0;              // index of the first swarm slot in config_.sources
  size_t swarm_slots_ = 0;              // how many slots there are
  std::atomic<size_t> swarm_count_{0};  // slots filled
  std::vector<uint64_t> swarm_hash_;    // per slot: hash of its URL (filled with the slot)
  uint64_t self_hash_ = 0;              // hash of config_.swarm_self
  mutable std::mutex source_mu_;
  std::map<std::string, uint64_t> bytes_by_source_;  // guarded by source_mu_
};

}  // namespace mc::downloader
