#include "agent/workers.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <random>
#include <system_error>

#include "mc/cache/app_links.h"

namespace mc::agent {
namespace fs = std::filesystem;
namespace {

constexpr const char* kInitializing = "initializing";
constexpr const char* kRunning = "running";
constexpr const char* kStopping = "stopping";
constexpr const char* kExited = "exited";
constexpr const char* kFailed = "failed";

bool IsLive(const std::string& state) {
  return state == kInitializing || state == kRunning || state == kStopping;
}

Status CheckId(const std::string& id) {
  if (id.empty() || id.size() > 64) return InvalidArgumentError("worker id must be 1-64 characters");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return InvalidArgumentError("worker id may only contain letters, digits, '-', '_' and '.'");
    }
  }
  if (id == "." || id == "..") return InvalidArgumentError("worker id cannot be . or ..");
  return Status::Ok();
}

Status CheckEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return InvalidArgumentError("bad environment variable name \"" + name + "\"");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return InvalidArgumentError("environment variable names may only contain letters, digits "
                                  "and '_'");
    }
  }
  return Status::Ok();
}

std::string NewId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return std::string("w-") + std::string(buf, 12);
}

}  // namespace

std::string JoinGpus(const std::vector<int>& gpus) {
  std::string out;
  for (int g : gpus) {
    if (!out.empty()) out += ",";
    out += std::to_string(g);
  }
  return out;
}

std::vector<int> ParseGpus(const std::string& text) {
  std::vector<int> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(std::atoi(text.substr(start, comma - start).c_str()));
    start = comma + 1;
  }
  return out;
}

Workers::Workers(WorkersOptions options, Downloads& downloads, Inventory& inventory, StateDb& db,
                 cache::CacheStore& store, Clock& clock)
    : options_(std::move(options)),
      downloads_(downloads),
      inventory_(inventory),
      db_(db),
      store_(store),
      clock_(clock),
      gpu_owner_(static_cast<size_t>(std::max(0, options_.gpu_count))) {
  ProcessSupervisor::Options so;
  so.log_cap_bytes = options_.log_cap_bytes;
  so.log_check_interval = options_.log_check_interval;
  so.clock = &clock_;
  supervisor_ = std::make_unique<ProcessSupervisor>(
      so, [this](const std::string& id, const ProcessExit& exit) { OnExit(id, exit); });
}

Workers::~Workers() { supervisor_.reset(); }

std::vector<int> Workers::TakeGpusLocked(int count) {
  std::vector<int> taken;
  for (size_t i = 0; i < gpu_owner_.size() && static_cast<int>(taken.size()) < count; ++i) {
    if (gpu_owner_[i].empty()) taken.push_back(static_cast<int>(i));
  }
  if (static_cast<int>(taken.size()) < count) return {};
  return taken;
}

int Workers::FreeGpus() const {
  std::lock_guard<std::mutex> lock(mu_);
  int free = 0;
  for (const std::string& owner : gpu_owner_) free += owner.empty() ? 1 : 0;
  return free;
}

void Workers::SaveLocked(const WorkerRow& row) {
  Status s = db_.PutWorker(row);
  if (!s.ok()) spdlog::warn("agent: record worker {}: {}", row.id, s.ToString());
  changed_.notify_all();
  if (options_.on_change) options_.on_change();
}

StatusOr<WorkerRow> Workers::Start(WorkerRequest request) {
  if (request.id.empty()) request.id = NewId();
  MC_RETURN_IF_ERROR(CheckId(request.id));
  if (request.command.empty() || request.command[0].empty()) {
    return InvalidArgumentError("a worker needs a command (a non-empty argv list)");
  }
  for (const auto& [name, value] : request.env) {
    MC_RETURN_IF_ERROR(CheckEnvName(name));
    if (value.find('\0') != std::string::npos) {
      return InvalidArgumentError("environment value of " + name + " contains a NUL byte");
    }
  }
  for (const AppLinkRequest& link : request.links) {
    if (!link.dest.is_absolute()) {
      return InvalidArgumentError("link destinations must be absolute paths");
    }
  }
  if (request.gpus < 0) return InvalidArgumentError("gpus must be >= 0");
  if (!request.cwd.empty() && !request.cwd.is_absolute()) {
    return InvalidArgumentError("cwd must be an absolute path");
  }
  WorkerRow row;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto existing = workers_.find(request.id);
    if (existing != workers_.end() && IsLive(existing->second.state)) {
      return AlreadyExistsError("worker " + request.id + " already exists");
    }
    std::vector<int> gpus = TakeGpusLocked(request.gpus);
    if (request.gpus > 0 && gpus.empty()) {
      int free = 0;
      for (const std::string& owner : gpu_owner_) free += owner.empty() ? 1 : 0;
      return ResourceExhaustedError("worker " + request.id + " needs " +
                                    std::to_string(request.gpus) + " GPUs but " +
                                    std::to_string(free) + " of " +
                                    std::to_string(gpu_owner_.size()) + " are free");
    }
    for (int g : gpus) gpu_owner_[static_cast<size_t>(g)] = request.id;
    const fs::path dir = options_.state_dir / "workers" / request.id;
    row.id = request.id;
    row.repo = request.model.repo.FolderName();
    row.gpus = JoinGpus(gpus);
    row.state = kInitializing;
    row.stdout_path = (dir / "stdout.log").string();
    row.stderr_path = (dir / "stderr.log").string();
    row.created = clock_.Now();
    workers_[row.id] = row;
    pending_[row.id] = request;
    SaveLocked(row);
  }
  const std::string id = request.id;
  downloads_.EnsureThen(request.model, [this, id](const EnsureState& state) {
    if (state.phase == EnsureState::Phase::kReady) {
      Launch(id, state);
    } else {
      Fail(id, "model not ready: " + state.error.ToString());
    }
  });
  std::lock_guard<std::mutex> lock(mu_);
  return workers_.at(id);
}

void Workers::Launch(const std::string& id, const EnsureState& model) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  auto req_it = pending_.find(id);
  if (it == workers_.end() || req_it == pending_.end() || it->second.state != kInitializing) {
    return;  // stopped while the model downloaded
  }
  WorkerRow& row = it->second;
  WorkerRequest request = std::move(req_it->second);
  pending_.erase(req_it);
  row.commit = model.commit;
  auto fail = [&](const std::string& message) {
    row.state = kFailed;
    row.message = message;
    spdlog::warn("agent: worker {} failed: {}", id, message);
    EndLocked(row);
  };
  auto commit = CommitSha::Parse(model.commit);
  if (!commit.ok()) return fail("model has no commit");
  // Pin first: from here on eviction never takes the snapshot away.
  Status pinned = db_.AddPin({row.repo, row.commit, "worker:" + id, clock_.Now()});
  if (!pinned.ok()) return fail("pin the model: " + pinned.ToString());
  for (const AppLinkRequest& link : request.links) {
    auto made = cache::LinkIntoApp(store_, request.model.repo, Revision::Parse(model.commit).value(),
                                   link.file, link.dest);
    if (!made.ok()) return fail("link the model into " + link.dest.string() + ": " +
                                made.status().ToString());
  }
  std::error_code ec;
  fs::create_directories(fs::path(row.stdout_path).parent_path(), ec);
  const fs::path hf_home = options_.state_dir / "hf-home";
  fs::create_directories(hf_home, ec);

  std::map<std::string, std::string> env;
  if (const char* path = std::getenv("PATH")) env["PATH"] = path;
  // A home of its own: the Runpod SDK prefers ~/.runpod/config.toml's key to RUNPOD_AI_API_KEY,
  // and nothing of the agent user's (tokens, configs) should leak into workers.
  const fs::path home = options_.state_dir / "workers" / id / "home";
  fs::create_directories(home, ec);
  env["HOME"] = fs::absolute(home).string();
  for (const auto& [k, v] : request.env) env[k] = v;
  env["HF_HUB_CACHE"] = fs::absolute(options_.cache_dir).string();
  env["HF_HOME"] = hf_home.string();
  env["HF_HUB_OFFLINE"] = "1";
  env["TRANSFORMERS_OFFLINE"] = "1";
  env["MODEL_NAME"] = request.model.repo.id();
  env["MODEL_REVISION"] = model.commit;
  env["MODEL_PATH"] = model.snapshot_dir.string();
  env["CUDA_VISIBLE_DEVICES"] = row.gpus;
  ProcessSpec spec{.argv = request.command,
                   .env = {},
                   .cwd = request.cwd,
                   .stdout_path = row.stdout_path,
                   .stderr_path = row.stderr_path};
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
  auto started = supervisor_->Start(id, spec);
  if (!started.ok()) return fail("start: " + started.status().ToString());
  row.pid = started->pid;
  row.start_ticks = started->start_ticks;
  row.state = kRunning;
  row.started = clock_.Now();
  inventory_.Touch(request.model.repo, *commit);
  spdlog::info("agent: worker {} running (pid {}) on {}@{}", id, row.pid,
               request.model.repo.id(), row.commit);
  SaveLocked(row);
}

void Workers::Fail(const std::string& id, const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end() || it->second.state != kInitializing) return;
  pending_.erase(id);
  it->second.state = kFailed;
  it->second.message = message;
  spdlog::warn("agent: worker {} failed: {}", id, message);
  EndLocked(it->second);
}

void Workers::EndLocked(WorkerRow& row) {
  row.ended = clock_.Now();
  for (std::string& owner : gpu_owner_) {
    if (owner == row.id) owner.clear();
  }
  if (!row.commit.empty()) {
    Status s = db_.RemovePin(row.repo, row.commit, "worker:" + row.id);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      spdlog::warn("agent: unpin for worker {}: {}", row.id, s.ToString());
    }
    auto repo = RepoId::FromFolderName(row.repo);
    auto commit = CommitSha::Parse(row.commit);
    if (repo.ok() && commit.ok()) inventory_.Touch(*repo, *commit);
  }
  SaveLocked(row);
}

void Workers::OnExit(const std::string& id, const ProcessExit& exit) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  WorkerRow& row = it->second;
  row.state = kExited;
  row.exit_code = exit.exit_code;
  row.signal = exit.signal;
  if (exit.unknown) row.message = "exited (re-adopted after an agent restart: exit code unknown)";
  spdlog::info("agent: worker {} exited (code {}, signal {})", id,
               exit.exit_code ? std::to_string(*exit.exit_code) : "-",
               exit.signal ? std::to_string(*exit.signal) : "-");
  EndLocked(row);
}

Status Workers::Stop(const std::string& id, std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return NotFoundError("no worker " + id);
  WorkerRow& row = it->second;
  if (row.state == kInitializing) {
    pending_.erase(id);
    row.state = kExited;
    row.message = "stopped before the model was ready";
    EndLocked(row);
    return Status::Ok();
  }
  if (row.state != kRunning && row.state != kStopping) return Status::Ok();
  row.state = kStopping;
  SaveLocked(row);
  Status s = supervisor_->Stop(id, grace);
  if (s.code() == StatusCode::kNotFound) return Status::Ok();  // exited in between
  return s;
}

std::vector<WorkerRow> Workers::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerRow> out;
  for (const auto& [id, row] : workers_) out.push_back(row);
  return out;
}

std::optional<WorkerRow> Workers::Get(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  return it->second;
}

std::optional<WorkerRow> Workers::WaitFor(const std::string& id,
                                          const std::vector<std::string>& states,
                                          std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  auto in_state = [&] {
    auto it = workers_.find(id);
    if (it == workers_.end()) return true;
    for (const std::string& s : states) {
      if (it->second.state == s) return true;
    }
    return false;
  };
  changed_.wait_for(lock, timeout, in_state);
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  return it->second;
}

void Workers::Recover() {
  auto rows = db_.ListWorkers();
  if (!rows.ok()) {
    spdlog::warn("agent: read workers: {}", rows.status().ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (WorkerRow row : *rows) {
    if (!IsLive(row.state)) {
      workers_[row.id] = row;
      continue;
    }
    if (row.state == kInitializing) {
      row.state = kFailed;
      row.message = "the agent restarted before the model was ready";
      workers_[row.id] = row;
      EndLocked(workers_[row.id]);
      continue;
    }
    Status adopted = supervisor_->Adopt(row.id, {row.pid, row.start_ticks},
                                        {row.stdout_path, row.stderr_path});
    if (adopted.ok()) {
      for (int g : ParseGpus(row.gpus)) {
        if (g >= 0 && static_cast<size_t>(g) < gpu_owner_.size()) gpu_owner_[g] = row.id;
      }
      spdlog::info("agent: re-adopted worker {} (pid {})", row.id, row.pid);
      workers_[row.id] = row;
      continue;
    }
    row.state = kExited;
    row.message = "the process was gone when the agent restarted";
    workers_[row.id] = row;
    EndLocked(workers_[row.id]);
  }
}

void Workers::StopAll(std::chrono::milliseconds grace) {
  std::vector<std::string> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, row] : workers_) {
      if (IsLive(row.state)) live.push_back(id);
    }
  }
  for (const std::string& id : live) {
    Status s = Stop(id, grace);
    if (!s.ok()) spdlog::warn("agent: stop worker {}: {}", id, s.ToString());
  }
  for (const std::string& id : live) {
    WaitFor(id, {kExited, kFailed}, grace + std::chrono::seconds(5));
  }
}

void Workers::Prune(TimePoint before) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(workers_, [&](const auto& kv) {
    return !IsLive(kv.second.state) && kv.second.ended && *kv.second.ended < before;
  });
  Status s = db_.PruneWorkers(before);
  if (!s.ok()) spdlog::warn("agent: prune worker history: {}", s.ToString());
}

std::map<std::string, int> Workers::CountByState() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int> counts;
  for (const char* s : {kInitializing, kRunning, kStopping, kExited, kFailed}) counts[s] = 0;
  for (const auto& [id, row] : workers_) ++counts[row.state];
  return counts;
}

}  // namespace mc::agent
