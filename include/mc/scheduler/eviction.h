// Eviction policy: which cached snapshots a host gives up to make room, as a pure function over a
// snapshot of the host's disk state (design.md §2 "scheduler": no I/O, no threads, no clock of its
// own). The agent builds the input from its inventory, calls PlanEviction, then removes what the
// plan names; the simulator will call the same function.
//
// Accounting. `used_bytes` is what the cache holds now (distinct blobs of complete snapshots plus
// bytes of partial downloads on disk); `reserved_bytes` is space promised to downloads in flight
// and not yet written. A blob belongs to the repo folder it sits in, so blobs are identified by
// index into `Disk::blobs` (the caller interns "<repo folder>/<etag>"). Evicting a snapshot frees
// exactly the blobs that no remaining snapshot (evictable or not) references, as RemoveRevision in
// the cache does.
//
// Rules.
//   - Never evict a snapshot that is pinned (operator pin, or a worker starting or running on it)
//     or partial (a download in flight or interrupted): such snapshots also keep their blobs.
//   - Trigger: (used + reserved + need) > high_watermark × capacity. Below it nothing is evicted.
//   - Once triggered, evict in LRU order (oldest last_use first; ties by id, so the result is
//     deterministic) until used + reserved + need <= low_watermark × capacity, or nothing more
//     can be freed: snapshots at the end of the order whose blobs all stay anyway (held by pinned
//     or partial ones) are not evicted for nothing.
//   - Success iff the end state fits the capacity: used + reserved + need <= capacity.
//     Otherwise ResourceExhausted whose message gives need, capacity, used, reserved and the bytes
//     that eviction could free at most ("need 12.0 GB but only 3.1 GB can be freed: capacity
//     20.0 GB, used 18.0 GB, reserved 2.0 GB, pinned or partial 14.9 GB"); the caller then changes
//     nothing. need > capacity is ResourceExhausted at once.
//   - InvalidArgument for inconsistent input (blob index out of range, watermarks not
//     0 < low <= high <= 1, used + reserved + need beyond 64 bits, blobs of evictable snapshots
//     adding up to more than used_bytes). The input is checked before anything is decided.
//
// Cost: O(total blob references + k log n) for k evictions among n snapshots; 10k snapshots must
// be decided in well under 1 ms (bench/eviction_bench.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mc/common/status.h"

namespace mc::scheduler {

using TimePoint = std::chrono::system_clock::time_point;

struct SnapshotState {
  std::string id;                    // "org/name@<commit>" (any unique key; used in the plan)
  std::vector<uint32_t> blobs;       // indices into Disk::blobs; duplicates allowed
  TimePoint last_use;                // our own access time (ensure, worker start/stop)
  bool pinned = false;               // operator pin or a live worker
  bool partial = false;              // download in flight or interrupted
};

struct Disk {
  uint64_t capacity = 0;        // the byte budget of the cache
  uint64_t used_bytes = 0;      // on disk now
  uint64_t reserved_bytes = 0;  // promised to downloads in flight, not yet on disk
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  std::vector<uint64_t> blobs;  // size of each distinct blob, by index
};

struct EvictionPlan {
  std::vector<std::string> evict;  // snapshot ids, in the order to remove them
  uint64_t bytes_freed = 0;        // by removing them (blobs no longer referenced)
  uint64_t used_after = 0;         // used_bytes - bytes_freed
  bool triggered = false;          // the high watermark was crossed
};

// Decides which snapshots to evict so that `need_bytes` more can be reserved. need_bytes = 0 is
// the periodic watermark check.
StatusOr<EvictionPlan> PlanEviction(const std::vector<SnapshotState>& snapshots, const Disk& disk,
                                    uint64_t need_bytes);

}  // namespace mc::scheduler
