// A worker's phase (docs/controller.md, "Workers, phases and the ledger"), typed: the fleet and
// its decision pass compare enum values; the name is written only at the edges (the store's
// worker and ledger rows, the API's JSON).
//
//   initializing (placed, model downloading: not billed) → starting (process exec'd: billed)
//   → idle / running (first job-take; running while it holds jobs) → stopping → stopped, or failed.
#pragma once

#include <optional>
#include <string_view>

namespace mc::controller {

enum class WorkerPhase { kInitializing, kStarting, kIdle, kRunning, kStopping, kStopped, kFailed };

// "initializing", "starting", "idle", "running", "stopping", "stopped", "failed".
std::string_view PhaseName(WorkerPhase phase);
// nullopt for any other text (a row written by a newer controller).
std::optional<WorkerPhase> ParsePhase(std::string_view name);
// Not ended (stopped or failed).
inline bool IsLivePhase(WorkerPhase p) {
  return p != WorkerPhase::kStopped && p != WorkerPhase::kFailed;
}

}  // namespace mc::controller
