// Workers: what a worker looks like from outside (its models and image with their progress) and
// the start-up recovery. The lifecycle is in workers.cc.
#include <spdlog/spdlog.h>

#include <sstream>

#include "agent/worker_spec.h"
#include "agent/workers.h"

namespace mc::agent {
namespace {

bool IsLive(const std::string& state) {
  return state == "initializing" || state == "running" || state == "stopping";
}

std::string SnapshotPath(const WorkerRow& row, const std::filesystem::path& cache_dir,
                         const RepoId& repo, const std::string& commit) {
  if (row.runtime != "process") return ContainerSnapshotPath(repo, commit);
  return (cache_dir / repo.FolderName() / "snapshots" / commit).string();
}

}  // namespace

WorkerView Workers::ViewLocked(const WorkerRow& row) const {
  WorkerView view{row, {}, std::nullopt, {}};
  if (auto tail = log_tails_.find(row.id); tail != log_tails_.end()) view.log_tail = tail->second;
  auto p = parts_.find(row.id);
  if (p != parts_.end()) {
    const Parts& pending = p->second;
    for (size_t i = 0; i < pending.request.models.size(); ++i) {
      const EnsureRequest& req = pending.request.models[i];
      WorkerModelView m{req.repo, req.revision.str(), "", "downloading", std::nullopt,
                        std::nullopt, ""};
      if (const auto& ready = pending.models[i]) {
        m.state = "ready";
        m.commit = ready->commit;
        m.hit = ready->hit;
        m.path = SnapshotPath(row, options_.cache_dir, req.repo, ready->commit);
        if (!ready->hit) m.download = ready;  // what the download fetched
      } else if (row.state != "initializing") {
        m.state = "failed";  // or stopped before it was ready
      } else if ((m.download = downloads_.Progress(req))) {
        m.commit = m.download->commit;
      }
      view.models.push_back(std::move(m));
    }
    if (pending.image) {
      view.image = pending.image;
    } else if (!row.image.empty()) {
      if (images_ != nullptr) view.image = images_->Progress(row.image);
      if (!view.image) {
        view.image = ImageState();
        view.image->reference = row.image;
        view.image->started = row.created;
        view.image->phase = row.state == "initializing" ? ImageState::Phase::kPulling
                                                        : ImageState::Phase::kFailed;
      }
    }
    return view;
  }
  // Settled: what the row says.
  std::vector<std::pair<std::string, std::string>> models;
  if (row.commit.empty()) {
    models.emplace_back(row.repo, "");
  } else {
    models.emplace_back(row.repo, row.commit);
    std::istringstream lines(row.extra_models);
    std::string line;
    while (std::getline(lines, line)) {
      size_t at = line.find('@');
      if (at != std::string::npos) models.emplace_back(line.substr(0, at), line.substr(at + 1));
    }
  }
  for (const auto& [folder, commit] : models) {
    auto repo = RepoId::FromFolderName(folder);
    if (!repo.ok()) continue;
    WorkerModelView m{*repo, commit, commit, commit.empty() ? "failed" : "ready", std::nullopt,
                      std::nullopt, ""};
    if (!commit.empty()) m.path = SnapshotPath(row, options_.cache_dir, *repo, commit);
    view.models.push_back(std::move(m));
  }
  if (!row.image.empty()) {
    ImageState image;
    image.reference = row.image;
    image.digest = row.image_digest;
    image.phase = row.started || !row.image_digest.empty() ? ImageState::Phase::kReady
                                                           : ImageState::Phase::kFailed;
    image.hit = row.image_ms && *row.image_ms == 0;
    view.image = image;
  }
  return view;
}

std::optional<WorkerView> Workers::View(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  return ViewLocked(it->second);
}

std::vector<WorkerView> Workers::Views() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerView> out;
  for (const auto& [id, row] : workers_) out.push_back(ViewLocked(row));
  return out;
}

void Workers::Recover() {
  auto rows = db_.ListWorkers();
  if (!rows.ok()) {
    spdlog::warn("agent: read workers: {}", rows.status().ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RecoverItem> live;
  for (WorkerRow row : *rows) {
    workers_[row.id] = row;
    if (!IsLive(row.state)) continue;
    WorkerRow& r = workers_[row.id];
    if (row.state == "initializing") {
      r.state = "failed";
      r.message = "the agent restarted before the model was ready";
      EndLocked(r);
    } else if (row.runtime != runtime_.name()) {
      r.state = "exited";
      r.message = "started under --runtime " + row.runtime + ", and this agent runs " +
                  std::string(runtime_.name()) + ": not re-adopted (pid " +
                  std::to_string(row.pid) + (row.container.empty() ? "" : ", container " + row.container) +
                  " may still run)";
      spdlog::warn("agent: worker {}: {}", row.id, r.message);
      EndLocked(r);
    } else {
      live.push_back({row.id, {row.pid, row.start_ticks, row.container},
                      {row.stdout_path, row.stderr_path}});
    }
  }
  // Also when nothing is live: the runtime stops what it started and no one knows any more.
  const std::set<std::string> adopted = runtime_.Recover(live, options_.stop_grace);
  for (const RecoverItem& item : live) {
    WorkerRow& row = workers_[item.id];
    if (adopted.count(item.id) == 0) {
      row.state = "exited";
      row.message = runtime_.runs_containers()
                        ? "the container was gone when the agent restarted"
                        : "the process was gone when the agent restarted";
      EndLocked(row);
      continue;
    }
    for (int g : ParseGpus(row.gpus)) {
      if (g >= 0 && static_cast<size_t>(g) < gpu_owner_.size()) gpu_owner_[g] = row.id;
    }
    if (images_ != nullptr && !row.image.empty()) images_->Use(row.image, row.id);
    spdlog::info("agent: re-adopted worker {} ({} {})", row.id,
                 row.container.empty() ? "pid" : "container",
                 row.container.empty() ? std::to_string(row.pid) : row.container);
  }
}

}  // namespace mc::agent
