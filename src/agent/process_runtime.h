// ProcessRuntime: workers as processes on the host (`--runtime process`, for development), over a
// ProcessSupervisor: posix_spawn in a session of their own, logs capped, stop = SIGTERM to the
// group then SIGKILL, re-adopted by pid and start time after an agent restart (docs/agent.md).
// Images, mounts and limits are not available: Start() refuses a spec that names an image or
// mounts, and limits are not enforced.
#pragma once

#include <memory>

#include "agent/worker_runtime.h"

namespace mc::agent {

class ProcessRuntime final : public WorkerRuntime {
 public:
  explicit ProcessRuntime(ProcessSupervisor::Options options);
  ~ProcessRuntime() override;  // leaves the processes running

  std::string_view name() const override { return "process"; }
  bool runs_containers() const override { return false; }
  bool enforces_limits() const override { return false; }
  void SetExitCallback(ExitCallback on_exit) override { on_exit_ = std::move(on_exit); }
  StatusOr<RuntimeRecord> Start(const WorkerSpec& spec) override;
  Status Stop(const std::string& id, std::chrono::milliseconds grace) override;
  std::set<std::string> Recover(const std::vector<RecoverItem>& live,
                                std::chrono::milliseconds grace) override;

 private:
  ExitCallback on_exit_;
  std::unique_ptr<ProcessSupervisor> supervisor_;
};

}  // namespace mc::agent
