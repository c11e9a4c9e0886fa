// Autoscaling policy: how many workers an endpoint starts or stops now, as a pure function over a
// snapshot of its queue and workers (design.md §2 "scheduler": no I/O, no threads, no clock of its
// own; `now` comes in). The controller calls DecideScale on every tick and on every job arrival,
// then starts workers through placement.h and stops the named ones; the simulator will call the
// same function. Semantics follow Runpod's endpoint settings (runpod-protocol.md §3).
//
// Counting. Live workers are those initializing (downloading the model), starting, idle or
// running; stopping ones no longer count, towards workers_max or anything else. Low-priority jobs
// (Runpod's `lowPriority` policy) are worked off by the workers there are but never make the
// endpoint grow: scale-up looks at `in_queue_normal` and `oldest_normal_enqueued` only.
//
// Scale up (the largest of these targets wins, capped at workers_max):
//   - workers_min: start enough to reach it, whatever the queue.
//   - Cold start: no live worker and a non-low-priority job queued → one worker at once (a cold
//     start cannot wait for the queue delay on top of the download).
//   - REQUEST_COUNT: ceil((in_queue_normal + in_progress) / scaler_value) workers.
//   - QUEUE_DELAY: one more worker when the oldest non-low-priority job has waited strictly more
//     than scaler_value seconds and no worker is on its way to take it: none idle, starting, or
//     initializing (a worker downloading its model will take the job when ready; without this
//     every tick of a long download would add a worker until workers_max).
//
// Scale down. Idle workers are considered longest idle first (idle_since ascending, ties by id):
//   - above workers_max (the config was lowered): stopped whatever their idle time;
//   - idle strictly longer than idle_timeout_seconds: stopped while the live count stays at or
//     above max(workers_min, keep), where keep is the demand the queue still has for workers:
//     REQUEST_COUNT ceil((in_queue + in_progress) / scaler_value), QUEUE_DELAY in_queue +
//     in_progress (low-priority jobs count here: they keep the workers that will run them).
// Running, starting and initializing workers are never stopped by this policy. A decision never
// both starts and stops.
//
// Errors: InvalidArgument for inconsistent input, checked first: workers_min > workers_max, a
// scaler_value that is not finite or is < 0 (QUEUE_DELAY) or <= 0 (REQUEST_COUNT), an idle
// timeout that is not finite or negative, in_queue_normal > in_queue, duplicate worker ids.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mc/common/status.h"

namespace mc::scheduler {

using TimePoint = std::chrono::system_clock::time_point;

enum class ScalerType {
  kQueueDelay,    // QUEUE_DELAY: scaler_value = seconds a job may wait before a worker is added
  kRequestCount,  // REQUEST_COUNT: scaler_value = jobs per worker
};

struct AutoscaleConfig {  // Runpod's defaults
  uint32_t workers_min = 0;
  uint32_t workers_max = 3;
  ScalerType scaler_type = ScalerType::kQueueDelay;
  double scaler_value = 4;
  double idle_timeout_seconds = 5;
};

struct JobCounts {
  uint32_t in_queue = 0;                  // every queued job, low priority included
  uint32_t in_queue_normal = 0;           // of those, the ones not low priority
  TimePoint oldest_normal_enqueued = {};  // enqueue time of the oldest of those (if any)
  uint32_t in_progress = 0;               // jobs a worker has taken and not finished
};

enum class WorkerPhase { kInitializing, kStarting, kIdle, kRunning, kStopping };

struct WorkerInfo {
  std::string id;  // unique among the endpoint's workers
  WorkerPhase phase = WorkerPhase::kInitializing;
  TimePoint idle_since = {};  // kIdle only: when its last job ended (or it became ready)
};

struct ScaleDecision {
  uint32_t start = 0;             // new workers to place and start
  std::vector<std::string> stop;  // idle worker ids to stop, in this order (longest idle first)
  std::string reason;             // one line for the caller's logs and the console
};

// Decides one endpoint's scaling at `now`. Pure and deterministic; safe to call from any thread.
StatusOr<ScaleDecision> DecideScale(const AutoscaleConfig& config, const JobCounts& jobs,
                                    const std::vector<WorkerInfo>& workers, TimePoint now);

}  // namespace mc::scheduler
