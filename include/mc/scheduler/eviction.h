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
//   - Once triggered, evict in the policy's order (Disk::policy, below; ties by id, so the result
//     is deterministic) until used + reserved + need <= low_watermark × capacity, or nothing more
//     can be freed: snapshots at the end of the order whose blobs all stay anyway (held by pinned
//     or partial ones) are not evicted for nothing.
//
// Policies (the fleet simulator, docs/simulator.md, compares them on traces):
//   - kLru (the default): oldest last_use first.
//   - kGdsf, Greedy-Dual-Size-Frequency: lowest priority first, priority = inflation + hits ×
//     cost / size, where size is the snapshot's blob bytes, cost = size + gdsf_fixed_cost_bytes
//     (a download has a fixed price besides its bytes: worker start, verification) and hits its
//     uses since it entered the cache (0 counts as 1). Ties by older last_use. The inflation
//     ("L") is the caller's state: start at 0, store plan.gdsf_inflation after applying a plan
//     (the priority of the last snapshot evicted), so that old popular snapshots age out.
//   - kS3Fifo, S3-FIFO (Yang et al., SOSP'23) over snapshots: a small FIFO queue for new
//     snapshots (main_queue false) of at most s3fifo_small_fraction × capacity bytes, a main FIFO
//     (main_queue true), FIFO order by queue_seq. While the small queue is over its size (or the
//     main queue has nothing evictable) its head is taken: used again since it came in (hits >=
//     2: hits counts the use that brought it in) it moves to the main queue with hits 1, else
//     it is evicted (the caller remembers it in a ghost list
//     and inserts it straight into the main queue when it comes back). Otherwise the main head
//     is taken: with hits > 1 it goes back to the tail with hits - 1, else it is evicted. Moves
//     are returned in plan.requeue, in order; the caller applies them (main_queue = true, hits =
//     the given value, queue_seq = its next sequence number). hits is capped at 4 by the caller.
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
#include <string_view>
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
  // Policy state (kGdsf, kS3Fifo); kLru ignores it.
  uint32_t hits = 0;        // uses since it entered the cache (or its queue, S3-FIFO), that one
                            // included: 1 = used once
  bool main_queue = false;  // S3-FIFO: in the main queue (else the small one)
  uint64_t queue_seq = 0;   // S3-FIFO: position in its queue, lower = nearer the head
};

enum class EvictionPolicy { kLru, kGdsf, kS3Fifo };

// "lru", "gdsf", "s3fifo"; ParseEvictionPolicy is InvalidArgument for anything else.
std::string_view EvictionPolicyName(EvictionPolicy policy);
StatusOr<EvictionPolicy> ParseEvictionPolicy(std::string_view name);

struct Disk {
  uint64_t capacity = 0;        // the byte budget of the cache
  uint64_t used_bytes = 0;      // on disk now
  uint64_t reserved_bytes = 0;  // promised to downloads in flight, not yet on disk
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  std::vector<uint64_t> blobs;  // size of each distinct blob, by index
  EvictionPolicy policy = EvictionPolicy::kLru;
  double gdsf_inflation = 0;                   // kGdsf: the caller's "L" (see above)
  double gdsf_fixed_cost_bytes = 1e9;          // kGdsf: a download's fixed cost, in bytes
  double s3fifo_small_fraction = 0.1;          // kS3Fifo: small queue share of capacity
};

// An S3-FIFO move: the snapshot goes to the tail of the main queue with `hits` uses left.
struct Requeue {
  std::string id;
  uint32_t hits = 0;
};

struct EvictionPlan {
  std::vector<std::string> evict;  // snapshot ids, in the order to remove them
  uint64_t bytes_freed = 0;        // by removing them (blobs no longer referenced)
  uint64_t used_after = 0;         // used_bytes - bytes_freed
  bool triggered = false;          // the high watermark was crossed
  double gdsf_inflation = 0;       // kGdsf: the caller's new "L" (unchanged if nothing evicted)
  std::vector<Requeue> requeue;    // kS3Fifo: moves to apply, in order
};

// Decides which snapshots to evict so that `need_bytes` more can be reserved. need_bytes = 0 is
// the periodic watermark check.
StatusOr<EvictionPlan> PlanEviction(const std::vector<SnapshotState>& snapshots, const Disk& disk,
                                    uint64_t need_bytes);

}  // namespace mc::scheduler
