// ContainerRuntime: one OCI container per worker, through the engine's CLI (podman; docker has
// the same command shape).
//
// Start() spawns `<engine> run --rm --name mc-<instance>-<worker> --pull never ...` as a
// supervised process (ProcessSupervisor): the engine client lives as long as the container and
// exits with its exit code, so a container's end is seen like a process's. With podman the
// container's stdout and stderr are the worker's log files themselves (--log-driver passthrough:
// conmon hands our fds to the container, so logging goes on if the client or the agent dies, and
// the supervisor's size cap applies); docker's client copies the streams instead. The container:
//   - labels modelcache.agent=<instance> (unique per state dir), modelcache.worker, and
//     modelcache.endpoint;
//   - --network host by default (workers reach the controller), or the configured network;
//   - the environment from `--env-file /dev/stdin` (an in-memory file: neither argv nor disk
//     sees values such as the worker's API key); the agent's own limits as --ulimit;
//   - the spec's read-only bind mounts (-v host:path:ro) and nothing else of the host;
//   - GPUs as CDI devices (<cdi kind>=<index>) when a CDI spec lists them, else the device nodes
//     /dev/nvidia<index> with the control nodes that exist;
//   - --memory, --cpus and --pids-limit when the host has the cgroup controllers for them.
// Stop() runs the engine's stop with the grace period (`stop -t <seconds, rounded up>`), which
// sends SIGTERM and then SIGKILL. A worker is `running` once its engine client runs, a moment
// before the engine has made the container: a stop that finds no container yet is tried again
// (up to 30 times, each try an engine call), then the client is signalled instead; and when a
// stopped worker's client exits, a `rm -f` makes sure no container is left. Recover() lists the containers labelled with our instance: each
// live worker whose container still runs is watched again (through its engine client if that
// still runs, else `<engine> wait`), and every other container of ours is stopped with the grace
// (and so removed: --rm) or, if it no longer runs, removed. Stops and removals run as supervised helper processes, so no call blocks.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/engine.h"
#include "agent/worker_runtime.h"

namespace mc::agent {

struct ContainerRuntimeOptions {
  std::string instance;  // [a-z0-9]{1,16}; label modelcache.agent and part of container names
  std::string network = "host";
  std::vector<std::filesystem::path> cdi_spec_dirs{"/etc/cdi", "/var/run/cdi"};
  std::string cdi_kind = "nvidia.com/gpu";
  bool limits = true;                   // the host has the cgroup controllers
  std::filesystem::path helper_log;     // output of stop and rm helpers
  ProcessSupervisor::Options supervisor;
};

class ContainerRuntime final : public WorkerRuntime {
 public:
  ContainerRuntime(ContainerRuntimeOptions options, const Engine& engine);
  ~ContainerRuntime() override;  // leaves the containers running

  std::string_view name() const override { return engine_.name(); }
  bool runs_containers() const override { return true; }
  bool enforces_limits() const override { return options_.limits; }
  void SetExitCallback(ExitCallback on_exit) override { on_exit_ = std::move(on_exit); }
  StatusOr<RuntimeRecord> Start(const WorkerSpec& spec) override;
  Status Stop(const std::string& id, std::chrono::milliseconds grace) override;
  std::set<std::string> Recover(const std::vector<RecoverItem>& live,
                                std::chrono::milliseconds grace) override;

  std::string ContainerName(const std::string& worker) const;
  // The engine arguments after the global flags (`run ...`) for `spec`. InvalidArgument for a
  // mount path the engine's -v syntax cannot carry (':' or ','), FailedPrecondition for a GPU
  // with neither a CDI device nor a device node.
  StatusOr<std::vector<std::string>> RunArgs(const WorkerSpec& spec) const;
  // The --env-file text for `spec`. InvalidArgument for a value with a newline.
  static StatusOr<std::string> EnvFile(const WorkerSpec& spec);

 private:
  void OnExit(const std::string& id, const ProcessExit& exit);
  // `worker`: the worker a stop helper stops ("" for other helpers).
  void StartHelper(const std::string& what, const std::vector<std::string>& args,
                   const std::string& worker = "");
  void StartStop(const std::string& worker);
  void OnHelperExit(const std::string& id, const ProcessExit& exit);
  StatusOr<std::vector<std::string>> GpuArgs(const std::vector<int>& gpus) const;

  const ContainerRuntimeOptions options_;
  const Engine& engine_;
  ExitCallback on_exit_;
  std::unique_ptr<ProcessSupervisor> supervisor_;

  std::mutex mu_;
  std::map<std::string, std::filesystem::path> stderr_logs_;  // live workers' stderr
  std::set<std::string> waits_;                                // watched by `<engine> wait`
  struct Helper {
    std::string what;
    std::string worker;  // stops: whom
  };
  std::map<std::string, Helper> helpers_;  // by helper id
  struct Stopping {
    std::chrono::milliseconds grace{0};
    int attempts = 0;
  };
  std::map<std::string, Stopping> stopping_;  // workers asked to stop
  uint64_t next_helper_ = 0;
};

}  // namespace mc::agent
