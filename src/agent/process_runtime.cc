#include "agent/process_runtime.h"

#include <spdlog/spdlog.h>

namespace mc::agent {

ProcessRuntime::ProcessRuntime(ProcessSupervisor::Options options) {
  supervisor_ = std::make_unique<ProcessSupervisor>(
      options, [this](const std::string& id, const ProcessExit& exit) {
        if (on_exit_) on_exit_(id, exit, "");
      });
}

ProcessRuntime::~ProcessRuntime() { supervisor_.reset(); }

StatusOr<RuntimeRecord> ProcessRuntime::Start(const WorkerSpec& spec) {
  if (!spec.image.empty() || !spec.mounts.empty()) {
    return InvalidArgumentError("this agent runs workers as processes (--runtime process): it "
                                "cannot run images; start it with --runtime podman");
  }
  ProcessSpec p{.argv = spec.command,
                .env = {},
                .cwd = spec.cwd,
                .stdout_path = spec.stdout_path,
                .stderr_path = spec.stderr_path};
  for (const auto& [k, v] : spec.env) p.env.push_back(k + "=" + v);
  MC_ASSIGN_OR_RETURN(ProcessRecord record, supervisor_->Start(spec.id, p));
  return RuntimeRecord{record.pid, record.start_ticks, ""};
}

Status ProcessRuntime::Stop(const std::string& id, std::chrono::milliseconds grace) {
  return supervisor_->Stop(id, grace);
}

std::set<std::string> ProcessRuntime::Recover(const std::vector<RecoverItem>& live,
                                              std::chrono::milliseconds grace) {
  std::set<std::string> adopted;
  for (const RecoverItem& item : live) {
    Status s = supervisor_->Adopt(item.id, {item.record.pid, item.record.start_ticks}, item.logs);
    if (s.ok()) {
      adopted.insert(item.id);
    } else {
      spdlog::info("agent: worker {} not re-adopted: {}", item.id, s.ToString());
    }
  }
  return adopted;
}

}  // namespace mc::agent
