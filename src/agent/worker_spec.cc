#include "agent/worker_spec.h"

#include <cstdlib>
#include <map>
#include <set>

#include "mc/cache/app_links.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxLinkMounts = 1000;

Status CheckContainerPath(const fs::path& p, const std::string& what) {
  const std::string s = p.string();
  if (!p.is_absolute()) return InvalidArgumentError(what + " must be an absolute path");
  if (s.find_first_of(":,\n") != std::string::npos) {
    return InvalidArgumentError(what + " " + s + ": ':', ',' and line breaks are not allowed");
  }
  for (const auto& part : p) {
    if (part == "." || part == "..") {
      return InvalidArgumentError(what + " " + s + " must not have '.' or '..' parts");
    }
  }
  if (s == "/") return InvalidArgumentError(what + " cannot be /");
  for (const char* reserved : {"/runpod-volume", "/proc", "/sys", "/dev"}) {
    if (s == reserved || s.starts_with(std::string(reserved) + "/")) {
      return InvalidArgumentError(what + " " + s + " is under " + reserved +
                                  ", which the agent or the engine manages");
    }
  }
  return Status::Ok();
}

bool Under(const fs::path& path, const fs::path& dir) {
  const std::string p = path.string(), d = dir.string();
  return p.size() > d.size() && p.starts_with(d) && p[d.size()] == '/';
}

// One file of the snapshot: the blob it resolves to, which must lie in the repo's folder.
StatusOr<fs::path> ResolveInRepo(const fs::path& file, const fs::path& repo_dir) {
  std::error_code ec;
  fs::path real = fs::canonical(file, ec);
  if (ec) return NotFoundError(file.string() + " is not in the model: " + ec.message());
  if (!Under(real, repo_dir)) {
    return InvalidArgumentError(file.string() + " resolves outside its repo folder");
  }
  return real;
}

// A container link: read-only file mounts of one file, or of every file of the snapshot.
StatusOr<std::vector<WorkerMount>> LinkMounts(const AppLinkRequest& link, const ReadyModel& model,
                                              const fs::path& cache_dir) {
  std::error_code ec;
  const fs::path repo_dir = fs::canonical(cache_dir / model.repo.FolderName(), ec);
  if (ec) return NotFoundError("repo folder of " + model.repo.id() + ": " + ec.message());
  std::vector<WorkerMount> mounts;
  if (link.file) {
    MC_ASSIGN_OR_RETURN(fs::path host, ResolveInRepo(model.snapshot_dir / link.file->str(), repo_dir));
    mounts.push_back({host, link.dest.string()});
    return mounts;
  }
  for (auto it = fs::recursive_directory_iterator(model.snapshot_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory()) continue;
    if (mounts.size() >= kMaxLinkMounts) {
      return InvalidArgumentError("a link of the whole snapshot of " + model.repo.id() +
                                  " would take more than 1000 mounts: link files one by one");
    }
    MC_ASSIGN_OR_RETURN(fs::path host, ResolveInRepo(it->path(), repo_dir));
    fs::path rel = it->path().lexically_relative(model.snapshot_dir);
    mounts.push_back({host, (link.dest / rel).string()});
  }
  if (ec) return ErrnoError(ec.value(), "list " + model.snapshot_dir.string());
  return mounts;
}

const ReadyModel& ModelOf(const AppLinkRequest& link, const std::vector<ReadyModel>& models) {
  if (link.model) {
    for (const ReadyModel& m : models) {
      if (m.repo.FolderName() == link.model->FolderName()) return m;
    }
  }
  return models.front();  // CheckLinks refused links to other models
}

std::string ContainerGpus(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + std::to_string(i);
  return out;
}

}  // namespace

std::string ContainerSnapshotPath(const RepoId& repo, const std::string& commit) {
  return std::string(kVolumeHub) + "/" + repo.FolderName() + "/snapshots/" + commit;
}

Status CheckLinks(const WorkerRequest& request, bool containers) {
  for (const AppLinkRequest& link : request.links) {
    if (!link.dest.is_absolute()) {
      return InvalidArgumentError("link destinations must be absolute paths");
    }
    if (containers) MC_RETURN_IF_ERROR(CheckContainerPath(link.dest, "link destination"));
    if (!link.model) continue;
    bool found = false;
    for (const EnsureRequest& m : request.models) {
      found = found || m.repo.FolderName() == link.model->FolderName();
    }
    if (!found) {
      return InvalidArgumentError("link names model " + link.model->id() +
                                  ", which is not one of the worker's models");
    }
  }
  if (!request.cwd.empty() && !request.cwd.is_absolute()) {
    return InvalidArgumentError("cwd must be an absolute path");
  }
  if (containers && request.cwd.string().find_first_of(":,\n") != std::string::npos) {
    return InvalidArgumentError("cwd must not contain ':', ',' or line breaks");
  }
  return Status::Ok();
}

StatusOr<WorkerSpec> BuildWorkerSpec(const WorkerRequest& request,
                                     const std::vector<ReadyModel>& models,
                                     const std::vector<int>& gpus, const WorkerRow& row,
                                     const SpecContext& context) {
  WorkerSpec spec{.id = request.id,
                  .endpoint = request.endpoint,
                  .image = request.image ? request.image->str() : "",
                  .command = request.command,
                  .args = request.args,
                  .env = {},
                  .mounts = {},
                  .gpus = gpus,
                  .limits = request.limits,
                  .cwd = request.cwd,
                  .stdout_path = row.stdout_path,
                  .stderr_path = row.stderr_path};
  std::map<std::string, std::string> env;
  std::error_code ec;
  if (!context.containers) {
    if (const char* path = std::getenv("PATH")) env["PATH"] = path;
    // A home of its own: the Runpod SDK prefers ~/.runpod/config.toml's key to RUNPOD_AI_API_KEY,
    // and nothing of the agent user's (tokens, configs) should leak into workers.
    const fs::path home = context.state_dir / "workers" / request.id / "home";
    fs::create_directories(home, ec);
    env["HOME"] = fs::absolute(home).string();
  }
  for (const auto& [k, v] : request.env) env[k] = v;
  std::string paths;
  for (const ReadyModel& m : models) {
    const std::string path = context.containers ? ContainerSnapshotPath(m.repo, m.commit)
                                                : m.snapshot_dir.string();
    paths += (paths.empty() ? "" : ":") + path;
  }
  if (context.containers) {
    env["HF_HUB_CACHE"] = kVolumeHub;
    env["HF_HOME"] = kVolumeHome;
    env["MODEL_PATH"] = ContainerSnapshotPath(models[0].repo, models[0].commit);
    env["CUDA_VISIBLE_DEVICES"] = ContainerGpus(gpus.size());  // the container sees only its GPUs
    std::set<std::string> mounted;
    for (const ReadyModel& m : models) {
      if (!mounted.insert(m.repo.FolderName()).second) continue;
      spec.mounts.push_back({fs::absolute(context.cache_dir / m.repo.FolderName()),
                             std::string(kVolumeHub) + "/" + m.repo.FolderName()});
    }
    for (const AppLinkRequest& link : request.links) {
      MC_ASSIGN_OR_RETURN(auto mounts, LinkMounts(link, ModelOf(link, models), context.cache_dir),
                          "link into " + link.dest.string());
      spec.mounts.insert(spec.mounts.end(), mounts.begin(), mounts.end());
    }
  } else {
    const fs::path hf_home = context.state_dir / "hf-home";
    fs::create_directories(hf_home, ec);
    env["HF_HUB_CACHE"] = fs::absolute(context.cache_dir).string();
    env["HF_HOME"] = fs::absolute(hf_home).string();
    env["MODEL_PATH"] = models[0].snapshot_dir.string();
    env["CUDA_VISIBLE_DEVICES"] = JoinGpus(gpus);
    for (const AppLinkRequest& link : request.links) {
      const ReadyModel& m = ModelOf(link, models);
      auto made = cache::LinkIntoApp(*context.store, m.repo, Revision::Parse(m.commit).value(),
                                     link.file, link.dest);
      if (!made.ok()) return made.status().WithContext("link the model into " + link.dest.string());
    }
  }
  env["HF_HUB_OFFLINE"] = "1";
  env["TRANSFORMERS_OFFLINE"] = "1";
  env["MODEL_NAME"] = models[0].repo.id();
  env["MODEL_REVISION"] = models[0].commit;
  env["MODEL_PATHS"] = paths;
  for (auto& [k, v] : env) spec.env.emplace_back(k, v);
  return spec;
}

}  // namespace mc::agent
