#include "mc/scheduler/eviction.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <sstream>
#include <utility>

#include "mc/common/byte_count.h"

namespace mc::scheduler {
namespace {

// A blob's reference count when a pinned or partial snapshot holds it: such a blob is never freed,
// so counting its other references would only cost time.
constexpr uint32_t kKept = std::numeric_limits<uint32_t>::max();

std::string Human(uint64_t bytes) { return ByteCount(bytes).ToHuman(); }

Status CheckWatermarks(const Disk& disk) {
  // Written so that NaN fails too.
  if (0 < disk.low_watermark && disk.low_watermark <= disk.high_watermark &&
      disk.high_watermark <= 1) {
    return Status::Ok();
  }
  std::ostringstream msg;
  msg << "watermarks must satisfy 0 < low <= high <= 1, got low " << disk.low_watermark
      << " and high " << disk.high_watermark;
  return InvalidArgumentError(msg.str());
}

// floor(fraction × capacity): with integer demand, "demand > fraction × capacity" is exactly
// "demand > Limit(...)". A fraction of 1 is the capacity itself, which double cannot always hold.
uint64_t Limit(double fraction, uint64_t capacity) {
  if (fraction >= 1) return capacity;
  return static_cast<uint64_t>(std::floor(fraction * static_cast<double>(capacity)));
}

// One evictable snapshot in the LRU order. The time is copied in so that the heap's comparisons
// stay within this small array instead of reaching into the snapshots (most of a decision's time).
struct HeapEntry {
  TimePoint last_use;
  uint32_t snapshot;  // index into the snapshots
};

// What one decision knows about the blobs and the evictable snapshots, built in one pass over
// every blob reference.
struct Inventory {
  // Per blob: references from evictable snapshots (duplicates included, so that releasing a
  // snapshot reference by reference balances), or kKept.
  std::vector<uint32_t> refs;
  std::vector<HeapEntry> evictable;
  uint64_t max_freeable = 0;  // bytes freed by evicting every evictable snapshot
};

StatusOr<Inventory> TakeInventory(const std::vector<SnapshotState>& snapshots, const Disk& disk) {
  Inventory inv;
  inv.refs.assign(disk.blobs.size(), 0);
  inv.evictable.reserve(snapshots.size());
  for (size_t s = 0; s < snapshots.size(); ++s) {
    const SnapshotState& snap = snapshots[s];
    const bool keep = snap.pinned || snap.partial;
    if (!keep) inv.evictable.push_back({snap.last_use, static_cast<uint32_t>(s)});
    for (uint32_t b : snap.blobs) {
      if (b >= inv.refs.size()) {
        return InvalidArgumentError("snapshot " + snap.id + " references blob " +
                                    std::to_string(b) + " but there are only " +
                                    std::to_string(inv.refs.size()) + " blobs");
      }
      // A kept snapshot seen after evictable ones overwrites their count: the blob stays anyway.
      if (keep) {
        inv.refs[b] = kKept;
      } else if (inv.refs[b] != kKept) {
        ++inv.refs[b];
      }
    }
  }
  for (size_t b = 0; b < inv.refs.size(); ++b) {
    if (inv.refs[b] == 0 || inv.refs[b] == kKept) continue;
    if (__builtin_add_overflow(inv.max_freeable, disk.blobs[b], &inv.max_freeable)) {
      return InvalidArgumentError("blob sizes overflow 64 bits");
    }
  }
  return inv;
}

// used + reserved + need, the bytes the cache would hold if nothing were evicted.
StatusOr<uint64_t> Demand(const Disk& disk, uint64_t need_bytes) {
  uint64_t demand = 0;
  if (__builtin_add_overflow(disk.used_bytes, disk.reserved_bytes, &demand) ||
      __builtin_add_overflow(demand, need_bytes, &demand)) {
    return InvalidArgumentError("used + reserved + need bytes overflow 64 bits");
  }
  return demand;
}

Status NotEnoughRoom(const Disk& disk, uint64_t need_bytes, uint64_t max_freeable) {
  return ResourceExhaustedError("need " + Human(need_bytes) + " but only " + Human(max_freeable) +
                                " can be freed: capacity " + Human(disk.capacity) + ", used " +
                                Human(disk.used_bytes) + ", reserved " +
                                Human(disk.reserved_bytes) + ", pinned or partial " +
                                Human(disk.used_bytes - max_freeable));
}

// Drops one snapshot's references; returns the bytes of the blobs nothing references any more.
uint64_t Release(const SnapshotState& snap, const Disk& disk, std::vector<uint32_t>& refs) {
  uint64_t freed = 0;
  for (uint32_t b : snap.blobs) {
    if (refs[b] != kKept && --refs[b] == 0) freed += disk.blobs[b];
  }
  return freed;
}

// Evicts least recently used first until `demand - freed <= target`. A heap rather than a sort:
// a decision usually evicts a few snapshots out of thousands.
EvictionPlan EvictLeastRecentlyUsed(const std::vector<SnapshotState>& snapshots, const Disk& disk,
                                    Inventory& inv, uint64_t demand, uint64_t target) {
  // "Newer" as the heap's less-than puts the oldest on top; ties by id, then by position, so
  // that the plan never depends on the heap's internal order.
  auto newer = [&snapshots](const HeapEntry& a, const HeapEntry& b) {
    if (a.last_use != b.last_use) return a.last_use > b.last_use;
    if (int c = snapshots[a.snapshot].id.compare(snapshots[b.snapshot].id); c != 0) return c > 0;
    return a.snapshot > b.snapshot;
  };
  std::vector<HeapEntry>& heap = inv.evictable;
  std::make_heap(heap.begin(), heap.end(), newer);

  EvictionPlan plan;
  plan.triggered = true;
  // Stopping once max_freeable is reached keeps snapshots whose eviction would free nothing
  // (their blobs are held by pinned or partial ones) at the end of the LRU order.
  while (demand - plan.bytes_freed > target && plan.bytes_freed < inv.max_freeable &&
         !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), newer);
    const SnapshotState& victim = snapshots[heap.back().snapshot];
    heap.pop_back();
    plan.evict.push_back(victim.id);
    plan.bytes_freed += Release(victim, disk, inv.refs);
  }
  plan.used_after = disk.used_bytes - plan.bytes_freed;
  return plan;
}

// The blob bytes a snapshot references (its size for GDSF and the S3-FIFO queue sizes).
uint64_t SnapshotBytes(const SnapshotState& snap, const Disk& disk) {
  uint64_t bytes = 0;
  for (uint32_t b : snap.blobs) bytes += disk.blobs[b];
  return bytes;
}

// Greedy-Dual-Size-Frequency: lowest priority first (eviction.h).
EvictionPlan EvictGdsf(const std::vector<SnapshotState>& snapshots, const Disk& disk,
                       Inventory& inv, uint64_t demand, uint64_t target) {
  struct Entry {
    double priority;
    TimePoint last_use;
    uint32_t snapshot;
  };
  std::vector<Entry> heap;
  heap.reserve(inv.evictable.size());
  for (const HeapEntry& e : inv.evictable) {
    const SnapshotState& snap = snapshots[e.snapshot];
    const double size = std::max<double>(1, static_cast<double>(SnapshotBytes(snap, disk)));
    const double hits = std::max<uint32_t>(1, snap.hits);
    const double priority =
        disk.gdsf_inflation + hits * (size + std::max(0.0, disk.gdsf_fixed_cost_bytes)) / size;
    heap.push_back({priority, e.last_use, e.snapshot});
  }
  auto after = [&snapshots](const Entry& a, const Entry& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (a.last_use != b.last_use) return a.last_use > b.last_use;
    if (int c = snapshots[a.snapshot].id.compare(snapshots[b.snapshot].id); c != 0) return c > 0;
    return a.snapshot > b.snapshot;
  };
  std::make_heap(heap.begin(), heap.end(), after);
  EvictionPlan plan;
  plan.triggered = true;
  plan.gdsf_inflation = disk.gdsf_inflation;
  while (demand - plan.bytes_freed > target && plan.bytes_freed < inv.max_freeable &&
         !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), after);
    const Entry victim = heap.back();
    heap.pop_back();
    plan.evict.push_back(snapshots[victim.snapshot].id);
    plan.bytes_freed += Release(snapshots[victim.snapshot], disk, inv.refs);
    plan.gdsf_inflation = std::max(plan.gdsf_inflation, victim.priority);
  }
  plan.used_after = disk.used_bytes - plan.bytes_freed;
  return plan;
}

// S3-FIFO over snapshots: a small and a main FIFO queue (eviction.h).
EvictionPlan EvictS3Fifo(const std::vector<SnapshotState>& snapshots, const Disk& disk,
                         Inventory& inv, uint64_t demand, uint64_t target) {
  struct Entry {
    uint64_t seq;
    uint32_t snapshot;
    uint32_t hits;
  };
  std::vector<Entry> small_sorted, main_sorted;
  uint64_t small_bytes = 0;  // every snapshot of the small queue, kept ones included
  for (const SnapshotState& snap : snapshots) {
    if (!snap.main_queue) small_bytes += SnapshotBytes(snap, disk);
  }
  for (const HeapEntry& e : inv.evictable) {
    const SnapshotState& snap = snapshots[e.snapshot];
    (snap.main_queue ? main_sorted : small_sorted).push_back({snap.queue_seq, e.snapshot, snap.hits});
  }
  auto before = [&snapshots](const Entry& a, const Entry& b) {
    if (a.seq != b.seq) return a.seq < b.seq;
    if (int c = snapshots[a.snapshot].id.compare(snapshots[b.snapshot].id); c != 0) return c < 0;
    return a.snapshot < b.snapshot;
  };
  std::sort(small_sorted.begin(), small_sorted.end(), before);
  std::sort(main_sorted.begin(), main_sorted.end(), before);
  std::deque<Entry> small(small_sorted.begin(), small_sorted.end());
  std::deque<Entry> main(main_sorted.begin(), main_sorted.end());
  const uint64_t small_limit =
      Limit(std::clamp(disk.s3fifo_small_fraction, 0.0, 1.0), disk.capacity);

  EvictionPlan plan;
  plan.triggered = true;
  auto evict = [&](const Entry& e) {
    plan.evict.push_back(snapshots[e.snapshot].id);
    plan.bytes_freed += Release(snapshots[e.snapshot], disk, inv.refs);
  };
  while (demand - plan.bytes_freed > target && plan.bytes_freed < inv.max_freeable &&
         !(small.empty() && main.empty())) {
    if (!small.empty() && (small_bytes > small_limit || main.empty())) {
      Entry e = small.front();
      small.pop_front();
      small_bytes -= std::min(small_bytes, SnapshotBytes(snapshots[e.snapshot], disk));
      if (e.hits >= 2) {  // used again while in the small queue: promote
        plan.requeue.push_back({snapshots[e.snapshot].id, 1});
        main.push_back({0, e.snapshot, 1});
      } else {
        evict(e);
      }
    } else {
      Entry e = main.front();
      main.pop_front();
      if (e.hits > 1) {  // a second chance, one use fewer
        plan.requeue.push_back({snapshots[e.snapshot].id, e.hits - 1});
        main.push_back({0, e.snapshot, e.hits - 1});
      } else {
        evict(e);
      }
    }
  }
  plan.used_after = disk.used_bytes - plan.bytes_freed;
  return plan;
}

}  // namespace

StatusOr<EvictionPlan> PlanEviction(const std::vector<SnapshotState>& snapshots, const Disk& disk,
                                    uint64_t need_bytes) {
  MC_RETURN_IF_ERROR(CheckWatermarks(disk));
  MC_ASSIGN_OR_RETURN(uint64_t demand, Demand(disk, need_bytes));
  MC_ASSIGN_OR_RETURN(Inventory inv, TakeInventory(snapshots, disk));
  // Evictable blobs are complete and on disk, so they are part of used_bytes; more means the
  // caller's inventory and its byte count disagree, and used_after would wrap.
  if (inv.max_freeable > disk.used_bytes) {
    return InvalidArgumentError("evictable snapshots hold " + Human(inv.max_freeable) +
                                " of blobs but used is only " + Human(disk.used_bytes));
  }
  if (need_bytes > disk.capacity) {
    return ResourceExhaustedError("need " + Human(need_bytes) + " but the capacity is only " +
                                  Human(disk.capacity));
  }
  if (demand <= Limit(disk.high_watermark, disk.capacity)) {
    EvictionPlan plan;
    plan.used_after = disk.used_bytes;
    plan.gdsf_inflation = disk.gdsf_inflation;
    return plan;
  }
  // Decided before evicting anything: if even evicting everything evictable does not fit, the
  // caller must change nothing, so no partial plan is worth building.
  if (demand - inv.max_freeable > disk.capacity) {
    return NotEnoughRoom(disk, need_bytes, inv.max_freeable);
  }
  const uint64_t target = Limit(disk.low_watermark, disk.capacity);
  switch (disk.policy) {
    case EvictionPolicy::kGdsf:
      return EvictGdsf(snapshots, disk, inv, demand, target);
    case EvictionPolicy::kS3Fifo:
      return EvictS3Fifo(snapshots, disk, inv, demand, target);
    case EvictionPolicy::kLru:
      break;
  }
  return EvictLeastRecentlyUsed(snapshots, disk, inv, demand, target);
}

std::string_view EvictionPolicyName(EvictionPolicy policy) {
  switch (policy) {
    case EvictionPolicy::kLru:
      return "lru";
    case EvictionPolicy::kGdsf:
      return "gdsf";
    case EvictionPolicy::kS3Fifo:
      return "s3fifo";
  }
  return "unknown";
}

StatusOr<EvictionPolicy> ParseEvictionPolicy(std::string_view name) {
  for (EvictionPolicy p : {EvictionPolicy::kLru, EvictionPolicy::kGdsf, EvictionPolicy::kS3Fifo}) {
    if (name == EvictionPolicyName(p)) return p;
  }
  return InvalidArgumentError("unknown eviction policy '" + std::string(name) +
                              "': use lru, gdsf or s3fifo");
}

}  // namespace mc::scheduler
