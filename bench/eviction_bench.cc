// Micro-benchmark of the eviction policy (include/mc/scheduler/eviction.h): the time of one
// PlanEviction decision on a host with 10k cached snapshots. Goal: well under 1 ms.
//
// The host: 2,000 repos × 5 revisions. Each snapshot references ~10 blobs: 4 small files its repo's
// revisions share (config, tokenizer, ...) and 6 weight shards of its own. Last use is spread over
// 30 days; 2% of snapshots are pinned, 1% partial. The cache is 85% full, between the watermarks
// (0.8 and 0.9). Everything is generated from a fixed seed, so runs compare.
//
// Cases (the counters show what each decision actually did):
//   PeriodicCheckBelowWatermark  need 0 on the 85% full cache: nothing to do, the check alone.
//   EvictOnePercent              a need that evicts ~100 snapshots (1%). Run with low = high =
//                                0.9 so that the plan frees only what the need requires: with the
//                                default watermarks any triggered decision sheds at least 10% of
//                                the capacity, ~1,200 snapshots here, which is the next case.
//   EvictToLowWatermark          the smallest need that crosses the high watermark (default
//                                0.8 / 0.9): the usual decision when a download needs room.
//   EvictHalf                    a need that evicts ~5,000 snapshots (default watermarks).
//
// Usage: build/src/scheduler/eviction_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mc/scheduler/eviction.h"

namespace mc::scheduler {
namespace {

constexpr uint32_t kRepos = 2000;
constexpr uint32_t kRevisions = 5;
constexpr uint32_t kSharedPerRepo = 4;
constexpr uint32_t kShardsPerSnapshot = 6;

struct Host {
  std::vector<SnapshotState> snapshots;
  Disk disk;
};

uint32_t AddBlob(Disk& disk, uint64_t size) {
  disk.blobs.push_back(size);
  disk.used_bytes += size;
  return static_cast<uint32_t>(disk.blobs.size() - 1);
}

void AddRepo(uint32_t repo, std::mt19937_64& rng, Host& host) {
  std::uniform_int_distribution<uint64_t> small(1'000, 10'000'000);
  std::uniform_int_distribution<uint64_t> shard(100'000'000, 5'000'000'000);
  std::uniform_int_distribution<int> minutes(0, 30 * 24 * 60);
  std::uniform_int_distribution<int> percent(0, 99);
  const auto t0 = TimePoint(std::chrono::sys_days{std::chrono::year{2025} / 1 / 1});

  std::vector<uint32_t> shared;
  for (uint32_t i = 0; i < kSharedPerRepo; ++i) shared.push_back(AddBlob(host.disk, small(rng)));
  for (uint32_t rev = 0; rev < kRevisions; ++rev) {
    SnapshotState s;
    s.id = "org/model-" + std::to_string(repo) + "@rev" + std::to_string(rev);
    s.blobs = shared;
    for (uint32_t i = 0; i < kShardsPerSnapshot; ++i) {
      s.blobs.push_back(AddBlob(host.disk, shard(rng)));
    }
    s.last_use = t0 + std::chrono::minutes(minutes(rng));
    const int p = percent(rng);
    s.pinned = p < 2;
    s.partial = p == 2;
    host.snapshots.push_back(std::move(s));
  }
}

const Host& TheHost() {
  static const Host* const host = [] {
    auto* h = new Host;
    std::mt19937_64 rng(42);
    for (uint32_t r = 0; r < kRepos; ++r) AddRepo(r, rng, *h);
    h->disk.capacity = static_cast<uint64_t>(static_cast<double>(h->disk.used_bytes) / 0.85);
    return h;
  }();
  return *host;
}

// The smallest need whose plan on `disk` evicts at least `evictions` snapshots (the count grows
// with the need until the need no longer fits), found by bisection outside the timed loop.
uint64_t NeedThatEvicts(const Disk& disk, size_t evictions) {
  const Host& host = TheHost();
  uint64_t lo = 0, hi = disk.capacity;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    auto plan = PlanEviction(host.snapshots, disk, mid);
    if (plan.ok() && plan->evict.size() < evictions) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

void RunDecisions(benchmark::State& state, const Disk& disk, uint64_t need) {
  const Host& host = TheHost();
  size_t evicted = 0;
  uint64_t freed = 0;
  for (auto _ : state) {
    auto plan = PlanEviction(host.snapshots, disk, need);
    if (!plan.ok()) {
      state.SkipWithError(plan.status().ToString().c_str());
      return;
    }
    evicted = plan->evict.size();
    freed = plan->bytes_freed;
    benchmark::DoNotOptimize(plan);
  }
  size_t refs = 0;
  for (const SnapshotState& s : host.snapshots) refs += s.blobs.size();
  state.counters["snapshots"] = static_cast<double>(host.snapshots.size());
  state.counters["blob_refs"] = static_cast<double>(refs);
  state.counters["evicted"] = static_cast<double>(evicted);
  state.counters["freed_GB"] = static_cast<double>(freed) / 1e9;
}

constexpr size_t kSnapshots = kRepos * kRevisions;

void BM_PeriodicCheckBelowWatermark(benchmark::State& state) {
  RunDecisions(state, TheHost().disk, 0);
}

void BM_EvictOnePercent(benchmark::State& state) {
  static const Disk disk = [] {
    Disk d = TheHost().disk;
    d.low_watermark = d.high_watermark;
    return d;
  }();
  static const uint64_t need = NeedThatEvicts(disk, kSnapshots / 100);
  RunDecisions(state, disk, need);
}

void BM_EvictToLowWatermark(benchmark::State& state) {
  static const uint64_t need = NeedThatEvicts(TheHost().disk, 1);
  RunDecisions(state, TheHost().disk, need);
}

void BM_EvictHalf(benchmark::State& state) {
  static const uint64_t need = NeedThatEvicts(TheHost().disk, kSnapshots / 2);
  RunDecisions(state, TheHost().disk, need);
}

BENCHMARK(BM_PeriodicCheckBelowWatermark)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EvictOnePercent)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EvictToLowWatermark)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EvictHalf)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mc::scheduler

BENCHMARK_MAIN();
