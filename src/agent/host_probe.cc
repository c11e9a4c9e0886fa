// What the host offers workers: a working container engine, cgroup controllers, GPUs.
#include <spdlog/spdlog.h>

#include <fstream>
#include <set>
#include <sstream>

#include "agent/command_runner.h"
#include "agent/engine.h"
#include "agent/gpus.h"
#include "mc/agent/runtime_options.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

bool Exists(const char* path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace

Engine MakeEngine(const RuntimeOptions& o, const fs::path& work_dir) {
  EngineOptions e;
  e.kind = o.kind == RuntimeKind::kDocker ? EngineKind::kDocker : EngineKind::kPodman;
  e.program = o.engine;
  e.oci_runtime = o.oci_runtime;
  e.root = o.engine_root;
  e.insecure_registries = o.insecure_registries;
  e.work_dir = work_dir;
  e.skopeo = o.skopeo;
  return Engine(std::move(e));
}

StatusOr<std::string> ProbeRuntime(const RuntimeOptions& options) {
  if (options.kind == RuntimeKind::kProcess) return std::string("process");
  Engine engine = MakeEngine(options, fs::temp_directory_path());
  auto probed = engine.Probe();
  if (!probed.ok() && probed.status().code() == StatusCode::kNotFound) {
    return NotFoundError(std::string(engine.name()) + " is not installed (apt-get install " +
                         std::string(engine.name() == "podman" ? "podman runc" : "docker.io") +
                         ")");
  }
  return probed;
}

std::string MissingCgroupControllers() {
  std::set<std::string> have;
  std::ifstream v2("/sys/fs/cgroup/cgroup.controllers");
  if (v2) {
    std::string name;
    while (v2 >> name) have.insert(name);
  } else {
    if (Exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) have.insert("memory");
    if (Exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") ||
        Exists("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")) {
      have.insert("cpu");
    }
    if (Exists("/sys/fs/cgroup/pids")) have.insert("pids");
  }
  std::string missing;
  for (const char* c : {"memory", "cpu", "pids"}) {
    if (have.count(c) == 0) missing += (missing.empty() ? "" : ", ") + std::string(c);
  }
  return missing;
}

HostGpus DetectGpus(const RuntimeOptions& options) {
  HostGpus gpus;
  std::vector<fs::path> specs;
  const std::vector<int> cdi = FindCdiGpus(options.cdi_spec_dirs, options.cdi_kind, &specs);
  CommandOptions c;
  c.argv = {"nvidia-smi", "-L"};
  c.env = {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"};
  c.timeout = std::chrono::seconds(20);
  auto smi = RunCommand(c);
  NvidiaSmiGpus listed;
  if (smi.ok() && smi->ok()) listed = ParseNvidiaSmiList(smi->out);
  if (!cdi.empty()) {
    gpus.count = static_cast<int>(cdi.size());
    gpus.source = "CDI spec " + specs.front().string();
  } else if (listed.count > 0) {
    gpus.count = listed.count;
    gpus.source = "nvidia-smi";
  } else {
    gpus.source = "none";
  }
  gpus.type = listed.model;
  return gpus;
}

}  // namespace mc::agent
