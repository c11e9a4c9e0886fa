// How the agent runs workers (docs/agent.md "Runtimes"): as OCI containers through podman (or
// docker) — the normal case — or as host processes for development; and what the host offers
// them (GPUs, cgroup limits).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/status.h"

namespace mc::agent {

enum class RuntimeKind { kProcess, kPodman, kDocker };

struct RuntimeOptions {
  RuntimeKind kind = RuntimeKind::kProcess;
  std::string engine;       // the engine program; empty = "podman" / "docker" from PATH
  std::string oci_runtime;  // podman --runtime (e.g. runc); empty = podman's default
  // A private podman store (storage, run and tmp dirs under it); empty = podman's default.
  std::filesystem::path engine_root;
  std::string network = "host";  // --network of worker containers
  // Registries ("host:port") pulled over plain HTTP or without TLS verification.
  std::vector<std::string> insecure_registries;
  std::vector<std::filesystem::path> cdi_spec_dirs{"/etc/cdi", "/var/run/cdi"};
  std::string cdi_kind = "nvidia.com/gpu";
  uint64_t image_capacity = 0;  // bytes of images; 0 = no budget
  std::string skopeo = "skopeo";  // reads manifests for pull totals; "" = do without
  // Enforce WorkerRequest limits; nullopt = when the host has the cgroup controllers.
  std::optional<bool> limits;
};

// Whether the container engine of `options` can run containers here: its version (and OCI
// runtime) when it can; FailedPrecondition with the engine's words when it cannot (NotFound when
// it is not installed). Runs one tiny container (about half a second).
StatusOr<std::string> ProbeRuntime(const RuntimeOptions& options);

// The host's cgroup controllers for worker limits: "" when memory, cpu and pids are all there,
// else the missing ones ("memory, pids").
std::string MissingCgroupControllers();

struct HostGpus {
  int count = 0;
  std::string type;    // the GPU model from nvidia-smi ("NVIDIA A100-SXM4-80GB"); "" if unknown
  std::string source;  // "CDI spec /etc/cdi/nvidia.yaml", "nvidia-smi", or "none"
};
// GPUs of `options.cdi_kind` in the CDI specs, else the lines of `nvidia-smi -L`.
HostGpus DetectGpus(const RuntimeOptions& options);

}  // namespace mc::agent
