#include "controller/worker_phase.h"

#include <array>
#include <utility>

namespace mc::controller {
namespace {

constexpr std::array<std::pair<WorkerPhase, std::string_view>, 7> kNames{{
    {WorkerPhase::kInitializing, "initializing"},
    {WorkerPhase::kStarting, "starting"},
    {WorkerPhase::kIdle, "idle"},
    {WorkerPhase::kRunning, "running"},
    {WorkerPhase::kStopping, "stopping"},
    {WorkerPhase::kStopped, "stopped"},
    {WorkerPhase::kFailed, "failed"},
}};

}  // namespace

std::string_view PhaseName(WorkerPhase phase) {
  for (const auto& [p, name] : kNames) {
    if (p == phase) return name;
  }
  return "failed";
}

std::optional<WorkerPhase> ParsePhase(std::string_view name) {
  for (const auto& [p, n] : kNames) {
    if (n == name) return p;
  }
  return std::nullopt;
}

}  // namespace mc::controller
