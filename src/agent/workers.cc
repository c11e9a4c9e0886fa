#include "agent/workers.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <random>
#include <sstream>
#include <system_error>

#include "agent/worker_spec.h"
#include "mc/common/text_tail.h"

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

Status CheckName(const std::string& id, const char* what) {
  if (id.empty() || id.size() > 64) return InvalidArgumentError(std::string(what) + " must be 1-64 characters");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return InvalidArgumentError(std::string(what) +
                                  " may only contain letters, digits, '-', '_' and '.'");
    }
  }
  if (id == "." || id == "..") return InvalidArgumentError(std::string(what) + " cannot be . or ..");
  return Status::Ok();
}

Status CheckEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return InvalidArgumentError("bad environment variable name \"" + name.substr(0, 64) + "\"");
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

int64_t MillisBetween(TimePoint from, TimePoint to) {
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count());
}

// (repo folder, commit) of every model a row pins: the base, then extra_models' lines.
std::vector<std::pair<std::string, std::string>> PinnedModels(const WorkerRow& row) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!row.commit.empty()) out.emplace_back(row.repo, row.commit);
  std::istringstream lines(row.extra_models);
  std::string line;
  while (std::getline(lines, line)) {
    size_t at = line.find('@');
    if (at != std::string::npos) out.emplace_back(line.substr(0, at), line.substr(at + 1));
  }
  return out;
}

// The last lines of an ended worker's log: stderr (where a failing program says why), or stdout
// when stderr has nothing.
std::string LogTail(const WorkerRow& row) {
  constexpr size_t kLines = 20, kBytes = 4096;
  for (const std::string& path : {row.stderr_path, row.stdout_path}) {
    if (path.empty()) continue;
    auto tail = ReadFileTail(path, kLines, kBytes);
    if (!tail.ok()) {
      spdlog::warn("agent: log of worker {}: {}", row.id, tail.status().ToString());
    } else if (!tail->empty()) {
      return *tail;
    }
  }
  return "";
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

Workers::Workers(WorkersOptions options, WorkerRuntime& runtime, Downloads& downloads,
                 Images* images, Inventory& inventory, StateDb& db, cache::CacheStore& store,
                 Clock& clock)
    : options_(std::move(options)),
      runtime_(runtime),
      downloads_(downloads),
      images_(images),
      inventory_(inventory),
      db_(db),
      store_(store),
      clock_(clock),
      gpu_owner_(static_cast<size_t>(std::max(0, options_.gpu_count))) {
  runtime_.SetExitCallback(
      [this](const std::string& id, const ProcessExit& exit, const std::string& detail) {
        OnExit(id, exit, detail);
      });
}

Workers::~Workers() { runtime_.SetExitCallback(nullptr); }

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

Status Workers::Validate(const WorkerRequest& request) const {
  MC_RETURN_IF_ERROR(CheckName(request.id, "worker id"));
  if (!request.endpoint.empty()) MC_RETURN_IF_ERROR(CheckName(request.endpoint, "endpoint id"));
  if (request.models.empty()) return InvalidArgumentError("a worker needs a model");
  const bool containers = runtime_.runs_containers();
  if (containers && !request.image) {
    return InvalidArgumentError(
        "this agent runs workers as containers (--runtime " + std::string(runtime_.name()) +
        "): give the worker an \"image\" (an OCI reference such as registry/org/app:tag)");
  }
  if (!containers && request.image) {
    return InvalidArgumentError("this agent runs workers as processes (--runtime process): it "
                                "cannot run the image " + request.image->str() +
                                "; start the agent with --runtime podman");
  }
  if (!containers && (request.command.empty() || request.command[0].empty())) {
    return InvalidArgumentError("a worker needs a command (a non-empty argv list)");
  }
  if (!containers && !request.args.empty()) {
    return InvalidArgumentError("\"args\" is for image workers; put the arguments in \"command\"");
  }
  for (const auto& [name, value] : request.env) {
    MC_RETURN_IF_ERROR(CheckEnvName(name));
    if (value.find('\0') != std::string::npos ||
        (containers && value.find_first_of("\r\n") != std::string::npos)) {
      return InvalidArgumentError("environment value of " + name +
                                  (containers ? " contains a NUL byte or a line break"
                                              : " contains a NUL byte"));
    }
  }
  if (request.gpus < 0) return InvalidArgumentError("gpus must be >= 0");
  return CheckLinks(request, containers);
}

StatusOr<WorkerRow> Workers::Start(WorkerRequest request) {
  if (request.id.empty()) request.id = NewId();
  MC_RETURN_IF_ERROR(Validate(request));
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
    row.endpoint = request.endpoint;
    row.runtime = std::string(runtime_.name());
    row.image = request.image ? request.image->str() : "";
    row.repo = request.models[0].repo.FolderName();
    row.gpus = JoinGpus(gpus);
    row.state = kInitializing;
    row.stdout_path = (dir / "stdout.log").string();
    row.stderr_path = (dir / "stderr.log").string();
    row.created = clock_.Now();
    workers_[row.id] = row;
    parts_[row.id] = Parts{request, std::vector<std::optional<EnsureState>>(request.models.size()),
                           std::nullopt};
    SaveLocked(row);
  }
  // Every part at once: each callback may run right here (a hit) or on a download's thread.
  const std::string id = request.id;
  bool pulling = false;  // the engine pulls the image now: the downloads yield it the CPU
  if (request.image) {
    const ImageState image = images_->EnsureThen(
        *request.image, request.registry_auth, [this, id](const ImageState& s) { OnImage(id, s); });
    pulling = image.phase == ImageState::Phase::kPulling && !image.hit;
  }
  for (size_t i = 0; i < request.models.size(); ++i) {
    EnsureRequest model = request.models[i];
    model.yield_cpu = pulling;
    downloads_.EnsureThen(model, [this, id, i](const EnsureState& s) { OnModel(id, i, s); });
  }
  std::lock_guard<std::mutex> lock(mu_);
  return workers_.at(id);
}

void Workers::OnModel(const std::string& id, size_t index, const EnsureState& state) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  auto p = parts_.find(id);
  if (it == workers_.end() || p == parts_.end() || it->second.state != kInitializing) return;
  if (state.phase != EnsureState::Phase::kReady) {
    return FailLocked(it->second, "model " + p->second.request.models[index].repo.id() +
                                      " not ready: " + state.error.ToString());
  }
  p->second.models[index] = state;
  bool all = true;
  for (const auto& m : p->second.models) all = all && m.has_value();
  if (all) it->second.download_ms = MillisBetween(it->second.created, clock_.Now());
  LaunchIfReadyLocked(id);
}

void Workers::OnImage(const std::string& id, const ImageState& state) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  auto p = parts_.find(id);
  if (it == workers_.end() || p == parts_.end() || it->second.state != kInitializing) return;
  p->second.image = state;
  if (state.phase != ImageState::Phase::kReady) {
    return FailLocked(it->second, "image " + state.reference + ": " + state.error.ToString());
  }
  it->second.image_digest = state.digest;
  it->second.image_ms = state.hit ? 0 : MillisBetween(it->second.created, clock_.Now());
  LaunchIfReadyLocked(id);
}

void Workers::LaunchIfReadyLocked(const std::string& id) {
  WorkerRow& row = workers_.at(id);
  Parts& parts = parts_.at(id);
  for (const auto& m : parts.models) {
    if (!m) return;
  }
  if (parts.request.image && !parts.image) return;
  const WorkerRequest& request = parts.request;
  const std::vector<std::optional<EnsureState>>& states = parts.models;
  std::vector<ReadyModel> models;
  for (size_t i = 0; i < states.size(); ++i) {
    auto commit = CommitSha::Parse(states[i]->commit);
    if (!commit.ok()) return FailLocked(row, "model " + request.models[i].repo.id() + " has no commit");
    models.push_back({request.models[i].repo, commit->str(), states[i]->snapshot_dir});
  }
  row.commit = models[0].commit;
  row.extra_models.clear();
  for (size_t i = 1; i < models.size(); ++i) {
    row.extra_models += models[i].repo.FolderName() + "@" + models[i].commit + "\n";
  }
  // Pins first: from here on eviction never takes a snapshot away.
  for (const ReadyModel& m : models) {
    Status pinned = db_.AddPin({m.repo.FolderName(), m.commit, "worker:" + id, clock_.Now()});
    if (!pinned.ok()) return FailLocked(row, "pin the model: " + pinned.ToString());
  }
  std::error_code ec;
  fs::create_directories(fs::path(row.stdout_path).parent_path(), ec);
  SpecContext context{options_.cache_dir, options_.state_dir, runtime_.runs_containers(), &store_};
  auto spec = BuildWorkerSpec(request, models, ParseGpus(row.gpus), row, context);
  if (!spec.ok()) return FailLocked(row, spec.status().ToString());
  auto started = runtime_.Start(*spec);
  if (!started.ok()) return FailLocked(row, "start: " + started.status().ToString());
  row.pid = started->pid;
  row.start_ticks = started->start_ticks;
  row.container = started->container;
  row.state = kRunning;
  row.started = clock_.Now();
  if (images_ != nullptr && !row.image.empty()) images_->Use(row.image, id);
  for (const ReadyModel& m : models) inventory_.Touch(m.repo, CommitSha::Parse(m.commit).value());
  SettleLocked(id);
  spdlog::info("agent: worker {} running ({} pid {}{}) on {}@{}", id, runtime_.name(), row.pid,
               row.container.empty() ? "" : ", container " + row.container,
               models[0].repo.id(), row.commit);
  SaveLocked(row);
}

void Workers::SettleLocked(const std::string& id) {
  auto p = parts_.find(id);
  if (p == parts_.end()) return;
  p->second.request.registry_auth.reset();
  for (EnsureRequest& m : p->second.request.models) m.token.reset();
  p->second.request.env.clear();
}

void Workers::FailLocked(WorkerRow& row, const std::string& message) {
  SettleLocked(row.id);
  row.state = kFailed;
  row.message = message;
  spdlog::warn("agent: worker {} failed: {}", row.id, message);
  EndLocked(row);
}

void Workers::EndLocked(WorkerRow& row) {
  row.ended = clock_.Now();
  for (std::string& owner : gpu_owner_) {
    if (owner == row.id) owner.clear();
  }
  for (const auto& [folder, commit_text] : PinnedModels(row)) {
    Status s = db_.RemovePin(folder, commit_text, "worker:" + row.id);
    if (!s.ok() && s.code() != StatusCode::kNotFound) {
      spdlog::warn("agent: unpin for worker {}: {}", row.id, s.ToString());
    }
    auto repo = RepoId::FromFolderName(folder);
    auto commit = CommitSha::Parse(commit_text);
    if (repo.ok() && commit.ok()) inventory_.Touch(*repo, *commit);
  }
  if (images_ != nullptr && !row.image.empty() && row.started) images_->Unuse(row.image, row.id);
  SaveLocked(row);
}

void Workers::OnExit(const std::string& id, const ProcessExit& exit, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  WorkerRow& row = it->second;
  row.state = kExited;
  row.exit_code = exit.exit_code;
  row.signal = exit.signal;
  if (exit.unknown) row.message = "exited (re-adopted after an agent restart: exit code unknown)";
  if (!detail.empty()) {
    row.message = detail;
    // The engine could not run a known image: it is gone from its store, pull it next time.
    if (images_ != nullptr && detail.find("image not known") != std::string::npos) {
      images_->Forget(row.image);
    }
  }
  log_tails_[id] = LogTail(row);
  spdlog::info("agent: worker {} exited (code {}, signal {}){}", id,
               exit.exit_code ? std::to_string(*exit.exit_code) : "-",
               exit.signal ? std::to_string(*exit.signal) : "-", detail.empty() ? "" : ": " + detail);
  EndLocked(row);
}

Status Workers::Stop(const std::string& id, std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = workers_.find(id);
  if (it == workers_.end()) return NotFoundError("no worker " + id);
  WorkerRow& row = it->second;
  if (row.state == kInitializing) {
    SettleLocked(id);
    row.state = kExited;
    row.message = "stopped before the model was ready";
    EndLocked(row);
    return Status::Ok();
  }
  if (row.state != kRunning && row.state != kStopping) return Status::Ok();
  row.state = kStopping;
  SaveLocked(row);
  Status s = runtime_.Stop(id, grace);
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
    const bool old = !IsLive(kv.second.state) && kv.second.ended && *kv.second.ended < before;
    if (old) {
      parts_.erase(kv.first);
      log_tails_.erase(kv.first);
    }
    return old;
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
