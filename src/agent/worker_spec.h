// BuildWorkerSpec: what a worker gets once its models are ready: environment, mounts or links,
// GPUs, for a container or a process (the rules are in workers.h and docs/agent.md).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "agent/state_db.h"
#include "agent/worker_runtime.h"
#include "agent/workers.h"
#include "mc/cache/cache_store.h"

namespace mc::agent {

// Where a container finds the models: the layout of Runpod's cached models.
inline constexpr const char* kVolumeHome = "/runpod-volume/huggingface-cache";
inline constexpr const char* kVolumeHub = "/runpod-volume/huggingface-cache/hub";

struct ReadyModel {
  RepoId repo;
  std::string commit;
  std::filesystem::path snapshot_dir;  // on the host
};

struct SpecContext {
  std::filesystem::path cache_dir;
  std::filesystem::path state_dir;
  bool containers = false;
  const cache::CacheStore* store = nullptr;  // processes: app links are made through it
};

// The snapshot dir of `repo`@`commit` as a container sees it.
std::string ContainerSnapshotPath(const RepoId& repo, const std::string& commit);

// InvalidArgument for links and cwd the runtime cannot honour: relative paths; in containers
// also paths with "." or ".." parts, ':' or ',', or under /runpod-volume, /proc, /sys or /dev;
// a link naming a model the worker does not have.
Status CheckLinks(const WorkerRequest& request, bool containers);

// The spec to start, with `models` ready in request order. For processes the app links are made
// on the host here (symlinks); for containers they become read-only file mounts. The stdout and
// stderr paths come from `row`.
StatusOr<WorkerSpec> BuildWorkerSpec(const WorkerRequest& request,
                                     const std::vector<ReadyModel>& models,
                                     const std::vector<int>& gpus, const WorkerRow& row,
                                     const SpecContext& context);

}  // namespace mc::agent
