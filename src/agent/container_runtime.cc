#include "agent/container_runtime.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "agent/gpus.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHelperPrefix = "helper/";

bool MountSafe(const std::string& path) {
  return path.find_first_of(":,\n") == std::string::npos;
}

// The last line of a log that the engine wrote about a failure to run the container.
std::string EngineError(const fs::path& log) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 4096);
  in.seekg(from);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream lines(tail);
  std::string line, found;
  while (std::getline(lines, line)) {
    if (line.starts_with("Error: ") || line.find("docker: ") != std::string::npos) found = line;
  }
  return found.substr(0, 500);
}

std::string Seconds(std::chrono::milliseconds grace) {
  return std::to_string((std::max<int64_t>(0, grace.count()) + 999) / 1000);
}

}  // namespace

ContainerRuntime::ContainerRuntime(ContainerRuntimeOptions options, const Engine& engine)
    : options_(std::move(options)), engine_(engine) {
  supervisor_ = std::make_unique<ProcessSupervisor>(
      options_.supervisor,
      [this](const std::string& id, const ProcessExit& exit) { OnExit(id, exit); });
}

ContainerRuntime::~ContainerRuntime() { supervisor_.reset(); }

std::string ContainerRuntime::ContainerName(const std::string& worker) const {
  return "mc-" + options_.instance + "-" + worker;
}

StatusOr<std::string> ContainerRuntime::EnvFile(const WorkerSpec& spec) {
  std::string text;
  for (const auto& [k, v] : spec.env) {
    if (v.find_first_of("\r\n") != std::string::npos) {
      return InvalidArgumentError("environment value of " + k +
                                  " has a line break, which a container's environment file "
                                  "cannot carry");
    }
    text += k + "=" + v + "\n";
  }
  return text;
}

StatusOr<std::vector<std::string>> ContainerRuntime::GpuArgs(const std::vector<int>& gpus) const {
  std::vector<std::string> args;
  if (gpus.empty()) return args;
  const std::vector<int> cdi = FindCdiGpus(options_.cdi_spec_dirs, options_.cdi_kind);
  bool control_nodes = false;
  for (int g : gpus) {
    if (std::find(cdi.begin(), cdi.end(), g) != cdi.end()) {
      args.push_back("--device");
      args.push_back(options_.cdi_kind + "=" + std::to_string(g));
      continue;
    }
    const std::string node = "/dev/nvidia" + std::to_string(g);
    std::error_code ec;
    if (!fs::exists(node, ec)) {
      return FailedPreconditionError("GPU " + std::to_string(g) + " has no CDI device " +
                                     options_.cdi_kind + "=" + std::to_string(g) +
                                     " (nvidia-ctk cdi generate writes one) and no " + node);
    }
    args.push_back("--device");
    args.push_back(node);
    if (!control_nodes) {
      control_nodes = true;
      for (const char* n : {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                            "/dev/nvidia-modeset"}) {
        if (fs::exists(n, ec)) {
          args.push_back("--device");
          args.push_back(n);
        }
      }
    }
  }
  return args;
}

StatusOr<std::vector<std::string>> ContainerRuntime::RunArgs(const WorkerSpec& spec) const {
  if (spec.image.empty()) {
    return InvalidArgumentError("this agent runs workers as containers (--runtime " +
                                std::string(engine_.name()) +
                                "): a worker needs an image (\"image\": \"registry/org/app:tag\")");
  }
  const bool podman = engine_.options().kind == EngineKind::kPodman;
  std::vector<std::string> a{"run", "--rm", "--name", ContainerName(spec.id), "--pull", "never"};
  if (podman) a.insert(a.end(), {"--log-driver", "passthrough"});
  a.insert(a.end(), {"--label", "modelcache.agent=" + options_.instance, "--label",
                     "modelcache.worker=" + spec.id});
  if (!spec.endpoint.empty()) a.insert(a.end(), {"--label", "modelcache.endpoint=" + spec.endpoint});
  a.insert(a.end(), {"--network", options_.network, "--env-file", "/dev/stdin"});
  for (const std::string& f : Engine::UlimitFlags()) a.push_back(f);
  if (options_.limits) {
    if (spec.limits.memory_bytes) a.insert(a.end(), {"--memory", std::to_string(*spec.limits.memory_bytes)});
    if (spec.limits.cpus) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3f", *spec.limits.cpus);
      a.insert(a.end(), {"--cpus", buf});
    }
    if (spec.limits.pids) a.insert(a.end(), {"--pids-limit", std::to_string(*spec.limits.pids)});
  }
  MC_ASSIGN_OR_RETURN(std::vector<std::string> gpus, GpuArgs(spec.gpus));
  a.insert(a.end(), gpus.begin(), gpus.end());
  for (const WorkerMount& m : spec.mounts) {
    if (!MountSafe(m.host.string()) || !MountSafe(m.container)) {
      return InvalidArgumentError("cannot mount " + m.host.string() + " at " + m.container +
                                  ": paths with ':' or ',' cannot be given to the engine");
    }
    a.insert(a.end(), {"-v", m.host.string() + ":" + m.container + ":ro"});
  }
  if (!spec.cwd.empty()) a.insert(a.end(), {"--workdir", spec.cwd.string()});
  if (!spec.command.empty()) a.insert(a.end(), {"--entrypoint", spec.command[0]});
  a.push_back(spec.image);
  if (spec.command.size() > 1) a.insert(a.end(), spec.command.begin() + 1, spec.command.end());
  a.insert(a.end(), spec.args.begin(), spec.args.end());
  return a;
}

StatusOr<RuntimeRecord> ContainerRuntime::Start(const WorkerSpec& spec) {
  MC_ASSIGN_OR_RETURN(std::vector<std::string> args, RunArgs(spec));
  MC_ASSIGN_OR_RETURN(std::string env_file, EnvFile(spec));
  ProcessSpec p{.argv = engine_.Argv(args),
                .env = engine_.Env(),
                .cwd = {},
                .stdout_path = spec.stdout_path,
                .stderr_path = spec.stderr_path,
                .stdin_data = std::move(env_file)};
  {
    std::lock_guard<std::mutex> lock(mu_);
    stderr_logs_[spec.id] = spec.stderr_path;
    waits_.erase(spec.id);
  }
  auto started = supervisor_->Start(spec.id, p);
  if (!started.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    stderr_logs_.erase(spec.id);
    return started.status();
  }
  return RuntimeRecord{started->pid, started->start_ticks, ContainerName(spec.id)};
}

void ContainerRuntime::StartHelper(const std::string& what, const std::vector<std::string>& args,
                                   const std::string& worker) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = kHelperPrefix + std::to_string(++next_helper_);
    helpers_[id] = Helper{what, worker};
  }
  ProcessSpec p{.argv = engine_.Argv(args),
                .env = engine_.Env(),
                .cwd = {},
                .stdout_path = {},
                .stderr_path = options_.helper_log,
                .stdin_data = std::nullopt};
  auto started = supervisor_->Start(id, p);
  if (!started.ok()) {
    spdlog::warn("agent: {}: {}", what, started.status().ToString());
    std::lock_guard<std::mutex> lock(mu_);
    helpers_.erase(id);
  }
}

void ContainerRuntime::StartStop(const std::string& worker) {
  std::chrono::milliseconds grace;
  {
    std::lock_guard<std::mutex> lock(mu_);
    grace = stopping_[worker].grace;
  }
  StartHelper("stop container " + ContainerName(worker),
              {"stop", "-t", Seconds(grace), ContainerName(worker)}, worker);
}

Status ContainerRuntime::Stop(const std::string& id, std::chrono::milliseconds grace) {
  if (!supervisor_->IsLive(id)) return NotFoundError("stop " + id + ": no such live container");
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_[id] = Stopping{grace, 0};
  }
  StartStop(id);
  return Status::Ok();
}

void ContainerRuntime::OnHelperExit(const std::string& id, const ProcessExit& exit) {
  Helper helper;
  {
    std::lock_guard<std::mutex> lock(mu_);
    helper = helpers_[id];
    helpers_.erase(id);
  }
  if (exit.exit_code.value_or(-1) == 0) return;
  if (helper.worker.empty() || !supervisor_->IsLive(helper.worker)) {
    spdlog::info("agent: {} ended with code {} (see {})", helper.what, exit.exit_code.value_or(-1),
                 options_.helper_log.string());
    return;
  }
  // The container may not exist yet (its client has just started): try again, then signal.
  std::chrono::milliseconds grace{0};
  bool again = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stopping_.find(helper.worker);
    if (it == stopping_.end()) return;
    again = ++it->second.attempts < 30;
    grace = it->second.grace;
  }
  if (again) return StartStop(helper.worker);
  spdlog::warn("agent: {} keeps failing (see {}): signalling its engine client instead",
               helper.what, options_.helper_log.string());
  supervisor_->Stop(helper.worker, grace).IgnoreError();
}

void ContainerRuntime::OnExit(const std::string& id, const ProcessExit& exit) {
  if (id.starts_with(kHelperPrefix)) return OnHelperExit(id, exit);
  ProcessExit reported = exit;
  fs::path log;
  bool stopped = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waits_.erase(id) > 0) {
      reported = ProcessExit{.exit_code = std::nullopt, .signal = std::nullopt, .unknown = true,
                             .at = exit.at};
    }
    log = stderr_logs_[id];
    stderr_logs_.erase(id);
    stopped = stopping_.erase(id) > 0;
  }
  // --rm removes the container with its client; after a stop make sure nothing is left.
  if (stopped) {
    std::vector<std::string> rm{"rm", "-f", ContainerName(id)};
    if (engine_.options().kind == EngineKind::kPodman) rm.insert(rm.begin() + 2, "--ignore");
    StartHelper("remove container " + ContainerName(id), rm);
  }
  std::string detail;
  if (!reported.unknown && reported.exit_code && *reported.exit_code >= 125 &&
      *reported.exit_code <= 127) {
    const std::string error = EngineError(log);
    if (!error.empty()) detail = std::string(engine_.name()) + " could not run the container: " + error;
  }
  if (on_exit_) on_exit_(id, reported, detail);
}

std::set<std::string> ContainerRuntime::Recover(const std::vector<RecoverItem>& live,
                                                std::chrono::milliseconds grace) {
  std::set<std::string> adopted;
  auto containers = engine_.ListContainers("modelcache.agent=" + options_.instance);
  if (!containers.ok()) {
    spdlog::warn("agent: cannot list our containers, so none is re-adopted: {}",
                 containers.status().ToString());
    return adopted;
  }
  std::map<std::string, const ContainerInfo*> by_name;
  for (const ContainerInfo& c : *containers) by_name[c.name] = &c;
  for (const RecoverItem& item : live) {
    const std::string name = ContainerName(item.id);
    auto it = by_name.find(name);
    if (it == by_name.end() || !it->second->running) continue;
    by_name.erase(it);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!item.logs.empty()) stderr_logs_[item.id] = item.logs.back();
    }
    if (supervisor_->Adopt(item.id, {item.record.pid, item.record.start_ticks}, item.logs).ok()) {
      adopted.insert(item.id);
      continue;
    }
    // The engine client is gone but the container runs: watch it with `wait`.
    {
      std::lock_guard<std::mutex> lock(mu_);
      waits_.insert(item.id);
    }
    ProcessSpec wait{.argv = engine_.Argv({"wait", name}), .env = engine_.Env(), .cwd = {},
                     .stdout_path = {}, .stderr_path = options_.helper_log,
                     .stdin_data = std::nullopt};
    auto watched = supervisor_->Start(item.id, wait);
    if (watched.ok()) {
      adopted.insert(item.id);
    } else {
      spdlog::warn("agent: watch container {}: {}", name, watched.status().ToString());
    }
  }
  for (const auto& [name, info] : by_name) {
    spdlog::info("agent: removing container {} (worker {}): this agent no longer knows it", name,
                 info->worker);
    if (engine_.options().kind == EngineKind::kPodman) {  // stop with the grace, then remove
      StartHelper("remove container " + name, {"rm", "-f", "-t", Seconds(grace), name});
    } else if (info->running) {  // ours have --rm: a stop removes them
      StartHelper("stop container " + name, {"stop", "-t", Seconds(grace), name});
    } else {
      StartHelper("remove container " + name, {"rm", "-f", name});
    }
  }
  return adopted;
}

}  // namespace mc::agent
