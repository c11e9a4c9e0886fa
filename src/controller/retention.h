// HistoryRetention: deletes ended workers and closed ledger rows once they are older than the
// retention (ControllerStore::PruneHistory), at most once per interval. The controller's loop
// calls Tick() on every timer tick; the first Tick prunes at once (a controller that restarts
// often still prunes), later ones when `interval` has passed on the clock. The ledger's totals
// keep the pruned rows' time, so /metrics does not drop. Not thread-safe: one caller (the loop).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "controller/store.h"
#include "mc/common/clock.h"

namespace mc::controller {

struct RetentionOptions {
  // Ended workers and closed ledger rows older than this are deleted; zero keeps them forever.
  std::chrono::milliseconds retention{std::chrono::hours(24 * 30)};
  std::chrono::milliseconds interval{std::chrono::hours(1)};
};

class HistoryRetention {
 public:
  // `forget` is told the cutoff (Unix ms) after each prune that succeeded, so that the caller
  // drops what it keeps in memory of the same workers.
  HistoryRetention(ControllerStore& store, Clock& clock, RetentionOptions options,
                   std::function<void(int64_t cutoff_ms)> forget = {});

  // Prunes if it is due: what was deleted, or nullopt when it was not due (or retention is off).
  // A failure is logged and tried again at the next interval.
  std::optional<PrunedHistory> Tick();

 private:
  ControllerStore& store_;
  Clock& clock_;
  const RetentionOptions options_;
  std::function<void(int64_t)> forget_;
  std::optional<Clock::TimePoint> last_;
};

}  // namespace mc::controller
