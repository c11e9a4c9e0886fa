#include "controller/retention.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace mc::controller {

HistoryRetention::HistoryRetention(ControllerStore& store, Clock& clock, RetentionOptions options,
                                   std::function<void(int64_t)> forget)
    : store_(store), clock_(clock), options_(options), forget_(std::move(forget)) {}

std::optional<PrunedHistory> HistoryRetention::Tick() {
  if (options_.retention <= std::chrono::milliseconds::zero()) return std::nullopt;
  const Clock::TimePoint now = clock_.Now();
  if (last_ && now - *last_ < options_.interval) return std::nullopt;
  last_ = now;
  const int64_t cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                             now.time_since_epoch() - options_.retention)
                             .count();
  StatusOr<PrunedHistory> pruned = store_.PruneHistory(cutoff);
  if (!pruned.ok()) {
    spdlog::error("controller: history retention: {}", pruned.status().ToString());
    return std::nullopt;
  }
  if (forget_) forget_(cutoff);
  if (pruned->workers > 0 || pruned->ledger_rows > 0) {
    spdlog::info("controller: history retention: deleted {} ended workers and {} ledger rows",
                 pruned->workers, pruned->ledger_rows);
  }
  return *pruned;
}

}  // namespace mc::controller
