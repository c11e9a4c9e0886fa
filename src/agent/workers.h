// Workers: processes the agent starts for a model, on distinct GPU slots, only once the model is
// complete in the cache.
//
// Start() validates the request, takes GPU slots and records the worker as `initializing`, then
// ensures the model (Downloads::EnsureThen): on a hit the process is exec'd before Start()
// returns; on a miss it is exec'd on the download's thread when the model is ready, or the worker
// ends `failed` with the download's error. Before exec the snapshot gets a pin owned by
// "worker:<id>" (so eviction never touches it), the optional app links are made, and the process
// gets HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, MODEL_NAME, MODEL_PATH,
// MODEL_REVISION and CUDA_VISIBLE_DEVICES on top of the caller's environment (ours win), with
// stdout and stderr in <state>/workers/<id>/{stdout,stderr}.log, capped.
//
// States: initializing → running → stopping → exited, or initializing → failed. When the process
// exits (or a stop cancels an initializing worker) the pin goes, the GPU slots are freed and the
// snapshot's last use is now.
//
// Restart: workers that were running are re-adopted if their process still lives (pid and start
// time match); their exit is then seen but its code is unknown. Those whose process is gone are
// recorded `exited` with a message and their pins removed; those still initializing are `failed`
// (the controller asks again).
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/downloads.h"
#include "agent/inventory.h"
#include "agent/process_supervisor.h"
#include "agent/state_db.h"

namespace mc::agent {

// GPU slots as stored in WorkerRow::gpus: "0,1" <-> {0, 1}; "" is none.
std::string JoinGpus(const std::vector<int>& gpus);
std::vector<int> ParseGpus(const std::string& text);

struct AppLinkRequest {
  std::optional<RepoFilePath> file;  // one file, or the whole snapshot
  std::filesystem::path dest;        // absolute
};

struct WorkerRequest {
  std::string id;  // empty = generated
  EnsureRequest model;
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;
  int gpus = 0;
  std::vector<AppLinkRequest> links;
  std::filesystem::path cwd;
};

struct WorkersOptions {
  std::filesystem::path cache_dir;
  std::filesystem::path state_dir;
  int gpu_count = 0;
  uint64_t log_cap_bytes = 64ull << 20;
  std::chrono::milliseconds log_check_interval{1000};
  // After a worker changes state (called with the workers' lock held: keep it short; the agent
  // pokes its controller link, so GPU slots and pins reach the controller at once).
  std::function<void()> on_change;
};

class Workers {
 public:
  Workers(WorkersOptions options, Downloads& downloads, Inventory& inventory, StateDb& db,
          cache::CacheStore& store, Clock& clock);
  ~Workers();  // leaves processes running (they are re-adopted by the next agent)

  // InvalidArgument (bad id, empty command, bad env name, relative link dest), AlreadyExists (id
  // in use), ResourceExhausted (not enough free GPU slots: the message gives the numbers).
  StatusOr<WorkerRow> Start(WorkerRequest request);
  // SIGTERM, SIGKILL after `grace`; an initializing worker ends at once. NotFound if unknown;
  // OK (no-op) if it already ended.
  Status Stop(const std::string& id, std::chrono::milliseconds grace);
  std::vector<WorkerRow> List() const;
  std::optional<WorkerRow> Get(const std::string& id) const;
  // Blocks until the worker is in one of `states` or `timeout` passes; returns its row.
  std::optional<WorkerRow> WaitFor(const std::string& id, const std::vector<std::string>& states,
                                   std::chrono::milliseconds timeout) const;
  // After a restart: re-adopt or close the workers the database lists as live.
  void Recover();
  // Forgets workers that ended before `before` (memory and database): history is kept a while,
  // not forever.
  void Prune(TimePoint before);
  // Stop() of every live worker, then waits (up to grace + 5 s each) until each has ended.
  void StopAll(std::chrono::milliseconds grace);
  int gpu_count() const { return options_.gpu_count; }
  int FreeGpus() const;
  std::map<std::string, int> CountByState() const;

 private:
  void Launch(const std::string& id, const EnsureState& model);
  void Fail(const std::string& id, const std::string& message);
  void OnExit(const std::string& id, const ProcessExit& exit);
  // Ends a worker: pin and GPU slots released, last use touched, row saved. Caller holds mu_.
  void EndLocked(WorkerRow& row);
  void SaveLocked(const WorkerRow& row);
  std::vector<int> TakeGpusLocked(int count);

  const WorkersOptions options_;
  Downloads& downloads_;
  Inventory& inventory_;
  StateDb& db_;
  cache::CacheStore& store_;
  Clock& clock_;
  std::unique_ptr<ProcessSupervisor> supervisor_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::map<std::string, WorkerRow> workers_;
  std::map<std::string, WorkerRequest> pending_;  // initializing: what to exec when ready
  std::vector<std::string> gpu_owner_;            // per GPU index: worker id or ""
};

}  // namespace mc::agent
