// The fleet simulator: a discrete-event simulation on a simulated clock of a fleet running a
// scenario (scenario.h). It calls the real scheduler library for every decision the controller
// and the agents make — scheduler::DecideScale for each endpoint, scheduler::PlaceWorker for every
// worker start and cached replica, scheduler::PlanEviction before every download — and models the
// rest: job queues, downloads at the hosts' bandwidths (the origin's shared), worker start,
// execution. docs/simulator.md describes the model and its simplifications.
//
// Deterministic: the same scenario (seed included) gives the same Result and the same output
// bytes. Single-threaded; no I/O except reading an Azure trace named by the scenario.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mc/common/status.h"
#include "mc/sim/scenario.h"

namespace mc::sim {

struct Quantiles {
  double p50 = 0, p90 = 0, p99 = 0;  // seconds
};

struct DiskSample {
  double seconds = 0;                // simulated time
  uint64_t used_bytes = 0;           // whole fleet
  uint64_t capacity_bytes = 0;       // whole fleet
  double fullest_host_fraction = 0;  // used / capacity of the fullest host
  uint32_t live_workers = 0;
};

struct Result {
  uint64_t jobs = 0;            // arrived
  uint64_t jobs_done = 0;       // finished before the end
  uint64_t cold_starts = 0;     // workers started
  uint64_t cold_hits = 0;       // ... on a host holding the model complete
  uint64_t cold_misses = 0;     // ... that had to wait for bytes (download or join)
  uint64_t cold_joins = 0;      // of the misses, those joining a download in flight
  uint64_t placement_failures = 0;
  Quantiles run_to_take;         // /run → a worker takes the job, every job taken
  Quantiles queued_run_to_take;  // same, jobs that found no idle worker
  uint64_t queued_jobs = 0;
  uint64_t requested_bytes = 0;  // model bytes of every worker start
  uint64_t fetched_bytes = 0;    // bytes downloaded for worker starts (origin + peers)
  uint64_t origin_bytes = 0;     // everything from the origin, prefetch included
  uint64_t peer_bytes = 0;
  uint64_t prefetch_bytes = 0;   // cached replicas before the start
  double byte_hit_ratio = 0;     // 1 - fetched / requested
  uint64_t evictions = 0;
  uint64_t evicted_bytes = 0;
  double billed_gpu_seconds = 0;    // worker ready → stop
  double unbilled_gpu_seconds = 0;  // worker placed → ready (download and start)
  double cost_billed = 0, cost_unbilled = 0, cost_origin = 0, cost_total = 0;
  std::vector<DiskSample> disk;
  uint64_t events = 0;  // simulation events processed
};

StatusOr<Result> Simulate(const Scenario& scenario);

// Outputs, byte-for-byte deterministic for a Result.
std::string ResultJson(const Scenario& scenario, const Result& result);
std::string ResultCsv(const Scenario& scenario, const Result& result);  // header + one row
std::string DiskCsv(const Result& result);
std::string DiskSvg(const Result& result);  // disk use over time, a line chart

// A bar chart of one metric over labelled runs (the compare grid).
std::string BarsSvg(const std::string& title, const std::string& unit,
                    const std::vector<std::pair<std::string, double>>& bars);

}  // namespace mc::sim
