#include "mc/scheduler/autoscale.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace mc::scheduler {
namespace {

std::string Seconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  return buf;
}

std::string Number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

double SecondsBetween(TimePoint from, TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

Status CheckInput(const AutoscaleConfig& config, const JobCounts& jobs,
                  const std::vector<WorkerInfo>& workers) {
  if (config.workers_min > config.workers_max) {
    return InvalidArgumentError("workers_min " + std::to_string(config.workers_min) +
                                " is above workers_max " + std::to_string(config.workers_max));
  }
  const bool per_worker = config.scaler_type == ScalerType::kRequestCount;
  // Written so that NaN fails too.
  if (!(std::isfinite(config.scaler_value) &&
        (per_worker ? config.scaler_value > 0 : config.scaler_value >= 0))) {
    return InvalidArgumentError(std::string("scaler_value must be finite and ") +
                                (per_worker ? "> 0" : ">= 0") + ", got " +
                                Number(config.scaler_value));
  }
  if (!(std::isfinite(config.idle_timeout_seconds) && config.idle_timeout_seconds >= 0)) {
    return InvalidArgumentError("idle_timeout_seconds must be finite and >= 0, got " +
                                Number(config.idle_timeout_seconds));
  }
  if (jobs.in_queue_normal > jobs.in_queue) {
    return InvalidArgumentError(std::to_string(jobs.in_queue_normal) +
                                " jobs queued at normal priority but only " +
                                std::to_string(jobs.in_queue) + " queued in all");
  }
  std::unordered_set<std::string_view> ids;
  for (const WorkerInfo& w : workers) {
    if (!ids.insert(w.id).second)
      return InvalidArgumentError("worker id " + w.id + " appears twice");
  }
  return Status::Ok();
}

struct Census {
  uint32_t live = 0;                    // initializing, starting, idle, running
  uint32_t on_the_way = 0;              // initializing or starting
  std::vector<const WorkerInfo*> idle;  // longest idle first, ties by id
};

Census Count(const std::vector<WorkerInfo>& workers) {
  Census c;
  for (const WorkerInfo& w : workers) {
    if (w.phase == WorkerPhase::kStopping) continue;
    ++c.live;
    if (w.phase == WorkerPhase::kInitializing || w.phase == WorkerPhase::kStarting) ++c.on_the_way;
    if (w.phase == WorkerPhase::kIdle) c.idle.push_back(&w);
  }
  std::sort(c.idle.begin(), c.idle.end(), [](const WorkerInfo* a, const WorkerInfo* b) {
    if (a->idle_since != b->idle_since) return a->idle_since < b->idle_since;
    return a->id < b->id;
  });
  return c;
}

// ceil(jobs / per_worker) workers, in 64 bits (the caller caps it at workers_max).
uint64_t WorkersFor(uint64_t jobs, double per_worker) {
  const double n = std::ceil(static_cast<double>(jobs) / per_worker);
  return n >= 1e18 ? uint64_t{1'000'000'000'000'000'000} : static_cast<uint64_t>(n);
}

// The number of live workers scale-up asks for (before the workers_max cap), and why.
struct Target {
  uint64_t workers = 0;
  std::string why;
  void Raise(uint64_t n, std::string because) {
    if (n <= workers) return;
    workers = n;
    why = std::move(because);
  }
};

Target ScaleUpTarget(const AutoscaleConfig& config, const JobCounts& jobs, const Census& census,
                     TimePoint now) {
  Target t{census.live, ""};
  t.Raise(config.workers_min, "below workers_min " + std::to_string(config.workers_min));
  const std::string queued = std::to_string(jobs.in_queue_normal) + " queued";
  if (census.live == 0 && jobs.in_queue_normal > 0) {
    t.Raise(1, "cold start: " + queued + " and no live worker");
  }
  if (config.scaler_type == ScalerType::kRequestCount) {
    const uint64_t demand = uint64_t{jobs.in_queue_normal} + jobs.in_progress;
    t.Raise(WorkersFor(demand, config.scaler_value),
            "request count: " + queued + " + " + std::to_string(jobs.in_progress) +
                " in progress at " + Number(config.scaler_value) + " per worker");
  } else if (jobs.in_queue_normal > 0 && census.on_the_way == 0 && census.idle.empty()) {
    const double waited = SecondsBetween(jobs.oldest_normal_enqueued, now);
    if (waited > config.scaler_value) {
      t.Raise(uint64_t{census.live} + 1, "queue delay: oldest job waited " + Seconds(waited) +
                                             " > " + Seconds(config.scaler_value));
    }
  }
  return t;
}

// Idle workers to stop, longest idle first; the census's live count is what remains.
std::vector<std::string> ScaleDown(const AutoscaleConfig& config, const JobCounts& jobs,
                                   const Census& census, TimePoint now, std::string& reason) {
  const uint64_t queued_and_running = uint64_t{jobs.in_queue} + jobs.in_progress;
  const uint64_t keep = config.scaler_type == ScalerType::kRequestCount
                            ? WorkersFor(queued_and_running, config.scaler_value)
                            : queued_and_running;
  const uint64_t floor = std::max<uint64_t>(config.workers_min, keep);
  std::vector<std::string> stop;
  uint64_t live = census.live;
  size_t over_max = 0;
  for (const WorkerInfo* w : census.idle) {
    const bool timed_out = SecondsBetween(w->idle_since, now) > config.idle_timeout_seconds;
    if (live > config.workers_max) {
      ++over_max;
    } else if (!(timed_out && live > floor)) {
      break;  // later ones have been idle for less time
    }
    stop.push_back(w->id);
    --live;
  }
  if (stop.empty()) return stop;
  const size_t timed_out = stop.size() - over_max;
  reason = "stopping " + std::to_string(stop.size()) + " of " + std::to_string(census.idle.size()) +
           " idle workers:";
  if (over_max > 0) {
    reason += " " + std::to_string(over_max) + " above workers_max " +
              std::to_string(config.workers_max) + (timed_out > 0 ? "," : "");
  }
  if (timed_out > 0) {
    reason += " " + std::to_string(timed_out) + " idle longer than " +
              Seconds(config.idle_timeout_seconds) + " (keeping at least " + std::to_string(floor) +
              " live)";
  }
  return stop;
}

std::string Steady(const JobCounts& jobs, const Census& census) {
  return "steady: " + std::to_string(census.live) + " live (" + std::to_string(census.idle.size()) +
         " idle), " + std::to_string(jobs.in_queue) + " queued (" +
         std::to_string(jobs.in_queue - jobs.in_queue_normal) + " low priority), " +
         std::to_string(jobs.in_progress) + " in progress";
}

}  // namespace

StatusOr<ScaleDecision> DecideScale(const AutoscaleConfig& config, const JobCounts& jobs,
                                    const std::vector<WorkerInfo>& workers, TimePoint now) {
  MC_RETURN_IF_ERROR(CheckInput(config, jobs, workers));
  const Census census = Count(workers);
  ScaleDecision decision;

  const Target up = ScaleUpTarget(config, jobs, census, now);
  if (up.workers > census.live && census.live < config.workers_max) {
    const uint64_t want = std::min<uint64_t>(up.workers, config.workers_max);
    decision.start = static_cast<uint32_t>(want - census.live);
    decision.reason = "starting " + std::to_string(decision.start) + ": " + up.why;
    if (want < up.workers) {
      decision.reason += " (capped at workers_max " + std::to_string(config.workers_max) + ")";
    }
    return decision;
  }
  // Scale-up wanted more only if capped; then the keep floor (>= the scale-up target) leaves
  // nothing to stop but workers above a lowered workers_max.
  decision.stop = ScaleDown(config, jobs, census, now, decision.reason);
  if (!decision.stop.empty()) return decision;
  decision.reason = up.workers > census.live
                        ? "at workers_max " + std::to_string(config.workers_max) + ": " + up.why
                        : Steady(jobs, census);
  return decision;
}

}  // namespace mc::scheduler
