// Workers: what the agent runs for a model: OCI containers (podman or docker) or, in development,
// processes; on distinct GPU slots, and only once every model (and the image) is in place.
//
// Start() validates the request, takes GPU slots and records the worker as `initializing`, then
// ensures each of its models (Downloads::EnsureThen) and its image (Images::EnsureThen), all at
// once: the image pull and the model downloads run in parallel, and both are part of the unbilled
// cold start. When the last part is ready the worker is started through the WorkerRuntime (on the
// thread that finished last; before Start() returns when everything was a hit); when any part
// fails the worker ends `failed` with that part's error. Before the start each model's snapshot
// gets a pin owned by "worker:<id>" (so eviction never touches it) and the links are made.
//
// What a worker sees (docs/agent.md): containers get each model's repo folder bind-mounted
// read-only at /runpod-volume/huggingface-cache/hub/<folder> and nothing else of the host (not the
// other repos, not the state dir), HF_HUB_CACHE/HF_HOME pointing there, links as read-only file
// mounts, GPUs renumbered 0..n-1 in CUDA_VISIBLE_DEVICES. Processes get the host paths: the whole
// cache as HF_HUB_CACHE, links as symlinks, the host GPU indices.
//
// States: initializing → running → stopping → exited, or initializing → failed. When the worker
// exits (or a stop cancels an initializing one) the pins go, the GPU slots are freed, the image is
// no longer in use and the snapshots' last use is now.
//
// Restart: Recover() hands the live workers to the runtime, which re-adopts those still running;
// the others are recorded `exited` (or `failed` if they were initializing) and their pins removed.
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
#include "agent/images.h"
#include "agent/inventory.h"
#include "agent/state_db.h"
#include "agent/worker_runtime.h"
#include "mc/common/image_ref.h"

namespace mc::agent {

// GPU slots as stored in WorkerRow::gpus: "0,1" <-> {0, 1}; "" is none.
std::string JoinGpus(const std::vector<int>& gpus);
std::vector<int> ParseGpus(const std::string& text);

struct AppLinkRequest {
  std::optional<RepoId> model;       // one of the worker's models; default the first
  std::optional<RepoFilePath> file;  // one file, or the whole snapshot
  std::filesystem::path dest;        // absolute: on the host (processes) or in the container
};

struct WorkerRequest {
  std::string id;        // empty = generated
  std::string endpoint;  // the controller's endpoint id (a container label); may be empty
  // At least one. The first is the base model (MODEL_NAME, MODEL_PATH); the others (adapters)
  // are mounted and pinned the same way and listed in MODEL_PATHS.
  std::vector<EnsureRequest> models;
  std::optional<ImageRef> image;  // required by container runtimes, refused by the process one
  std::optional<RegistryAuth> registry_auth;
  // Processes: the argv (required). Containers: replaces the image's ENTRYPOINT (optional).
  std::vector<std::string> command;
  std::vector<std::string> args;  // containers: replaces the image's CMD
  std::vector<std::pair<std::string, std::string>> env;
  int gpus = 0;
  WorkerLimits limits;
  std::vector<AppLinkRequest> links;
  std::filesystem::path cwd;
};

// One model of a worker, as the API shows it.
struct WorkerModelView {
  RepoId repo;
  std::string revision;
  std::string commit;  // once known
  std::string state;   // "downloading", "ready", "failed"
  std::optional<bool> hit;
  std::optional<EnsureState> download;  // while downloading
  std::string path;                     // the snapshot as the worker sees it, once ready
};

struct WorkerView {
  WorkerRow row;
  std::vector<WorkerModelView> models;
  std::optional<ImageState> image;  // the pull (or hit) of the image; nullopt for processes
  // Once it has exited: the last lines of its log (stderr, or stdout when stderr is empty), at
  // most 20 lines and 4 KiB, so that a worker that fails at start says why. Kept in memory.
  std::string log_tail;
};

struct WorkersOptions {
  std::filesystem::path cache_dir;
  std::filesystem::path state_dir;
  int gpu_count = 0;
  // The grace of the stops that Recover() makes of containers this agent no longer knows.
  std::chrono::milliseconds stop_grace{10'000};
  // After a worker changes state (called with the workers' lock held: keep it short; the agent
  // pokes its controller link, so GPU slots and pins reach the controller at once).
  std::function<void()> on_change;
};

class Workers {
 public:
  // `images` may be null when the runtime runs processes.
  Workers(WorkersOptions options, WorkerRuntime& runtime, Downloads& downloads, Images* images,
          Inventory& inventory, StateDb& db, cache::CacheStore& store, Clock& clock);
  ~Workers();  // leaves workers running (they are re-adopted by the next agent)

  // InvalidArgument (bad id or endpoint, no model, a command or image this runtime cannot run,
  // bad env name, relative link dest or cwd), AlreadyExists (id in use), ResourceExhausted (not
  // enough free GPU slots: the message gives the numbers).
  StatusOr<WorkerRow> Start(WorkerRequest request);
  // The runtime's stop (SIGTERM, SIGKILL after `grace`); an initializing worker ends at once.
  // NotFound if unknown; OK (no-op) if it already ended.
  Status Stop(const std::string& id, std::chrono::milliseconds grace);
  std::vector<WorkerRow> List() const;
  std::optional<WorkerRow> Get(const std::string& id) const;
  // The row with its models and image, and their progress while initializing.
  std::optional<WorkerView> View(const std::string& id) const;
  std::vector<WorkerView> Views() const;
  // Blocks until the worker is in one of `states` or `timeout` passes; returns its row.
  std::optional<WorkerRow> WaitFor(const std::string& id, const std::vector<std::string>& states,
                                   std::chrono::milliseconds timeout) const;
  // After a restart: re-adopt or close the workers the database lists as live; the runtime stops
  // what it started earlier and no one knows any more.
  void Recover();
  // Forgets workers that ended before `before` (memory and database): history is kept a while,
  // not forever.
  void Prune(TimePoint before);
  // Stop() of every live worker, then waits (up to grace + 5 s each) until each has ended.
  void StopAll(std::chrono::milliseconds grace);
  int gpu_count() const { return options_.gpu_count; }
  int FreeGpus() const;
  std::map<std::string, int> CountByState() const;
  const WorkerRuntime& runtime() const { return runtime_; }

 private:
  // A worker's request and the final states of its parts (models, image) as they arrive; kept
  // after the start for the view (hits, bytes) until the worker is pruned, its secrets (tokens,
  // registry auth) dropped once the parts are settled.
  struct Parts {
    WorkerRequest request;
    std::vector<std::optional<EnsureState>> models;
    std::optional<ImageState> image;
  };
  // Drops the request's secrets: the parts no longer need them. Caller holds mu_.
  void SettleLocked(const std::string& id);
  Status Validate(const WorkerRequest& request) const;
  void OnModel(const std::string& id, size_t index, const EnsureState& state);
  void OnImage(const std::string& id, const ImageState& state);
  // Starts the worker if every part is ready. Caller holds mu_.
  void LaunchIfReadyLocked(const std::string& id);
  void FailLocked(WorkerRow& row, const std::string& message);
  void OnExit(const std::string& id, const ProcessExit& exit, const std::string& detail);
  // Ends a worker: pins and GPU slots released, image unused, last use touched, row saved.
  // Caller holds mu_.
  void EndLocked(WorkerRow& row);
  void SaveLocked(const WorkerRow& row);
  std::vector<int> TakeGpusLocked(int count);
  WorkerView ViewLocked(const WorkerRow& row) const;

  const WorkersOptions options_;
  WorkerRuntime& runtime_;
  Downloads& downloads_;
  Images* const images_;
  Inventory& inventory_;
  StateDb& db_;
  cache::CacheStore& store_;
  Clock& clock_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::map<std::string, WorkerRow> workers_;
  std::map<std::string, Parts> parts_;
  std::map<std::string, std::string> log_tails_;  // ended workers': WorkerView::log_tail
  std::vector<std::string> gpu_owner_;      // per GPU index: worker id or ""
};

}  // namespace mc::agent
