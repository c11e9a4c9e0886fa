// Inventory: what this host's cache holds, as the agent accounts it, and the disk budget.
//
// In memory: every snapshot (repo, commit) with its distinct blobs and sizes, our last-use time
// and the selections completed on it; the downloads in flight with their reservations and planned
// blobs. Backed by the StateDb (last use, completions, pins survive restarts). Reconcile() makes it
// match a scan of the cache: at start-up, the cache is the truth for which snapshots and blobs
// exist; the database is the truth for our times, completions and pins.
//
// Budget: usage = bytes of the blobs of all snapshots + bytes of partial temp files left by
// interrupted downloads + reservations of downloads in flight. Every byte is counted once: a
// download's own temp files are covered by its reservation (not partial bytes), and a blob it
// fetched that is already linked (a cache scan may see the snapshot before the download records
// it) counts as a snapshot blob and leaves the reservation. Reserve() asks the eviction policy
// (scheduler::PlanEviction: LRU by our last use, never pinned or partial snapshots, shared blobs
// freed with their last user) and removes what it names with cache::RemoveRevision before it
// grants the reservation; if the policy says the request cannot fit, nothing is removed and the
// answer is ResourceExhausted with the numbers.
//
// Thread-safety: one mutex; evictions run under it (they are unlinks), so no download can plan
// against a blob that is being removed while its reservation is decided.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/state_db.h"
#include "mc/cache/cache_store.h"
#include "mc/common/clock.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/scheduler/eviction.h"

namespace mc::agent {

struct BudgetOptions {
  uint64_t capacity = 0;
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  // `agent --eviction` (docs/simulator.md has the study behind the choice). The policy state
  // (uses, S3-FIFO queues, the GDSF inflation) is kept in memory: a restart starts it afresh.
  scheduler::EvictionPolicy policy = scheduler::EvictionPolicy::kLru;
};

struct BlobUse {
  std::string etag;
  uint64_t size = 0;
  bool fetch = false;  // in a reservation: this download fetches the blob (its bytes are reserved)
};

// One snapshot as reported by the API.
struct SnapshotView {
  RepoId repo;
  std::string commit;
  std::vector<std::string> refs;
  uint64_t size = 0;
  int64_t files = 0;
  bool complete = false;  // at least one selection was completed on it by this agent
  std::vector<std::string> completions;
  std::vector<std::string> pins;  // owners
  TimePoint last_use;
};

struct BudgetView {
  uint64_t capacity = 0;
  uint64_t used = 0;       // blobs of snapshots + leftover partial files
  uint64_t partial = 0;    // leftover partial files (interrupted downloads)
  uint64_t reserved = 0;   // downloads in flight
  double high_watermark = 0;
  double low_watermark = 0;
  uint64_t evictions = 0;        // snapshots evicted since start
  uint64_t evicted_bytes = 0;    // bytes freed by them
};

class Inventory {
 public:
  Inventory(cache::CacheStore& store, StateDb& db, BudgetOptions budget, Clock& clock);

  // Scans the cache and makes memory and database match it (see the header comment). At start-up
  // and on the maintenance timer, so that a model removed by hand (`modelcache rm`) or added by
  // `modelcache pull` into the same cache is seen.
  Status Reconcile();

  // True if `filter` (or the whole commit, "") was completed on this commit and its snapshot dir
  // still exists. Metadata only.
  bool IsComplete(const RepoId& repo, const CommitSha& commit, const std::string& filter) const;
  // Our last use := now. No-op for unknown snapshots.
  void Touch(const RepoId& repo, const CommitSha& commit);

  // Reserves `bytes` for download `key` whose plan links `blobs` (so that they are not evicted
  // under it), evicting if the policy says so. ResourceExhausted if it cannot fit.
  Status Reserve(const std::string& key, const RepoId& repo, const CommitSha& commit,
                 uint64_t bytes, std::vector<BlobUse> blobs);
  // Ends the reservation of `key` (download finished or failed).
  void Release(const std::string& key);
  // Records a finished download: the snapshot's blobs (re-read from the cache), the completion of
  // `filter`, last use = now; then releases `key`.
  Status RecordComplete(const std::string& key, const RepoId& repo, const CommitSha& commit,
                        const std::string& filter);
  // The periodic watermark check: evicts down to the low watermark when above the high one.
  Status EnforceWatermarks();
  // Operator or API removal of one snapshot. FailedPrecondition if pinned or downloading.
  Status Evict(const RepoId& repo, const CommitSha& commit);

  std::vector<SnapshotView> Snapshots() const;
  BudgetView Budget() const;
  // The snapshot dir path of a commit.
  std::filesystem::path SnapshotDir(const RepoId& repo, const CommitSha& commit) const;

 private:
  struct Snapshot {
    RepoId repo;
    std::string commit;
    std::vector<BlobUse> blobs;  // distinct
    uint64_t size = 0;
    int64_t files = 0;
    TimePoint last_use;
    TimePoint created;
    std::set<std::string> completions;
    uint32_t hits = 1;        // uses since it came in (eviction policy state, in memory)
    bool main_queue = false;  // S3-FIFO
    uint64_t queue_seq = 0;   // S3-FIFO
  };
  struct Reservation {
    std::string repo_folder;
    std::string commit;
    uint64_t bytes = 0;
    std::vector<BlobUse> blobs;
  };
  using Key = std::pair<std::string, std::string>;  // repo folder, commit

  StatusOr<Snapshot> ReadSnapshot(const RepoId& repo, const CommitSha& commit) const;
  // Plans with the policy and removes what it names. Caller holds mu_.
  Status EvictLocked(uint64_t need_bytes);
  Status RemoveLocked(const Key& key);
  uint64_t UsedLocked() const;
  // The (repo folder, etag) of the blobs of every snapshot.
  std::set<std::pair<std::string, std::string>> SnapshotBlobsLocked() const;
  // (repo folder, etag) of the blobs downloads in flight fetch.
  std::set<std::pair<std::string, std::string>> FetchingLocked() const;
  // Re-measures the temp files of interrupted downloads (blobs/*.incomplete that no download in
  // flight owns: those are covered by its reservation).
  void RefreshPartialLocked();
  // Sum over downloads in flight of their reserved bytes not yet counted as snapshot blobs.
  uint64_t ReservedLocked() const;

  cache::CacheStore& store_;
  StateDb& db_;
  const BudgetOptions budget_;
  Clock& clock_;
  double gdsf_inflation_ = 0;  // GDSF's "L" (mc/scheduler/eviction.h)
  uint64_t next_queue_seq_ = 0;

  mutable std::mutex mu_;
  std::map<Key, Snapshot> snapshots_;
  std::map<std::string, Reservation> reservations_;
  uint64_t partial_bytes_ = 0;  // leftover *.incomplete files, see RefreshPartialLocked()
  uint64_t evictions_ = 0;
  uint64_t evicted_bytes_ = 0;
};

}  // namespace mc::agent
