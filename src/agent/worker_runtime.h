// WorkerRuntime: how the agent runs a worker once its model (and image) are in place. Two
// implementations: ProcessRuntime (a process on the host, for development: `--runtime process`)
// and ContainerRuntime (one OCI container per worker through the podman or docker CLI).
//
// Workers (workers.h) owns the lifecycle and the state rows; a runtime only starts, watches,
// stops and, after an agent restart, re-adopts what it started. Exits are reported through the
// callback given to SetExitCallback(), once per start or adoption, on a runtime thread and never
// while a runtime lock is held (the callback may call Stop() but must not destroy the runtime).
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/process_supervisor.h"
#include "mc/common/status.h"

namespace mc::agent {

// A read-only bind mount: a host file or directory at an absolute path inside the container.
struct WorkerMount {
  std::filesystem::path host;
  std::string container;
};

struct WorkerLimits {
  std::optional<uint64_t> memory_bytes;
  std::optional<double> cpus;
  std::optional<int64_t> pids;
  bool any() const { return memory_bytes || cpus || pids; }
};

struct WorkerSpec {
  std::string id;
  std::string endpoint;  // label only; may be empty
  std::string image;     // normalized reference (containers); empty for processes
  // Processes: the argv. Containers: replaces the image's ENTRYPOINT when not empty.
  std::vector<std::string> command;
  std::vector<std::string> args;  // containers: replaces the image's CMD when not empty
  std::vector<std::pair<std::string, std::string>> env;  // the whole environment we set
  std::vector<WorkerMount> mounts;                        // containers only
  std::vector<int> gpus;                                  // host GPU indices
  WorkerLimits limits;
  std::filesystem::path cwd;  // processes: the working dir; containers: --workdir
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
};

// What identifies a started worker across agent restarts (saved in its state row).
struct RuntimeRecord {
  pid_t pid = 0;             // the process, or the engine client watching the container
  uint64_t start_ticks = 0;  // of that pid (see ProcessSupervisor)
  std::string container;     // the container's name; empty for processes
};

// A worker the state says is live, to re-adopt after a restart.
struct RecoverItem {
  std::string id;
  RuntimeRecord record;
  std::vector<std::filesystem::path> logs;
};

class WorkerRuntime {
 public:
  // `detail`: how it ended when the runtime knows more than the exit status (the engine's own
  // error when it could not start the container); empty otherwise.
  using ExitCallback =
      std::function<void(const std::string& id, const ProcessExit& exit, const std::string& detail)>;

  virtual ~WorkerRuntime() = default;
  virtual std::string_view name() const = 0;  // "process", "podman", "docker"
  virtual bool runs_containers() const = 0;
  // Whether WorkerSpec::limits are enforced (cgroups available to the engine).
  virtual bool enforces_limits() const = 0;
  // Set once, before the first Start() or Recover().
  virtual void SetExitCallback(ExitCallback on_exit) = 0;
  // Starts the worker and returns at once (the exit comes through the callback). InvalidArgument
  // for a spec this runtime cannot run; NotFound for a missing program; other codes as the
  // failure says.
  virtual StatusOr<RuntimeRecord> Start(const WorkerSpec& spec) = 0;
  // Asks the worker to stop: SIGTERM (or the engine's stop), SIGKILL after `grace`. NotFound if
  // it is not live. Returns at once.
  virtual Status Stop(const std::string& id, std::chrono::milliseconds grace) = 0;
  // After an agent restart: watches again each of `live` that still runs (its exit is then
  // reported with unknown = true) and returns their ids; stops what this agent started earlier
  // and no longer knows (containers labelled as ours that are not in `live`).
  virtual std::set<std::string> Recover(const std::vector<RecoverItem>& live,
                                        std::chrono::milliseconds grace) = 0;
};

}  // namespace mc::agent
