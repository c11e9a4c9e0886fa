#include "agent/downloads.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <set>

namespace mc::agent {
namespace {

// This thread, and the threads it starts (Linux: nice is per thread and inherited), kYieldNice
// nicer. Never undone: an unprivileged process cannot raise a priority again; the thread ends
// with its download.
void YieldCpu() {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return;
  if (::setpriority(PRIO_PROCESS, tid, std::min(19, now + kYieldNice)) != 0) {
    spdlog::debug("agent: lower a download's CPU priority: errno {}", errno);
  }
}

}  // namespace

using json = nlohmann::json;

std::string EnsureRequest::Filter() const {
  if (patterns.include.empty() && patterns.exclude.empty()) return "";
  std::vector<std::string> include = patterns.include, exclude = patterns.exclude;
  std::sort(include.begin(), include.end());
  std::sort(exclude.begin(), exclude.end());
  return json{{"include", include}, {"exclude", exclude}}.dump();
}

std::string EnsureRequest::Key() const {
  return repo.FolderName() + "@" + revision.str() + "#" + Filter();
}

struct Downloads::Download {
  std::string key;
  EnsureRequest request;
  std::string filter;
  std::unique_ptr<downloader::Puller> puller;
  Clock::SteadyTime t0;
  std::atomic<bool> exited{false};  // the thread has returned (safe to join)
  // From the plan: snapshot path -> blob name, for serving swarm members. Guarded by mu.
  std::map<std::string, std::string> blob_of_path;

  std::mutex mu;
  std::condition_variable cv;
  EnsureState state;  // guarded by mu
  bool done = false;  // guarded by mu
  std::vector<ReadyCallback> callbacks;  // guarded by mu
};

Downloads::Downloads(DownloadsOptions options, Inventory& inventory, StateDb& db, Clock& clock)
    : options_(std::move(options)), inventory_(inventory), db_(db), clock_(clock) {}

Downloads::~Downloads() { Shutdown(); }

EnsureState Downloads::Snapshot(const Download& d) { return d.state; }

std::optional<EnsureState> Downloads::TryHit(const EnsureRequest& request) {
  std::optional<CommitSha> commit;
  if (CommitSha::IsValid(request.revision.str())) {
    commit = CommitSha::Parse(request.revision.str()).value();
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = confirmed_refs_.find({request.repo.FolderName(), request.revision.str()});
    if (it != confirmed_refs_.end() && clock_.Now() - it->second.second < options_.ref_ttl) {
      commit = it->second.first;
    }
  }
  if (!commit || !inventory_.IsComplete(request.repo, *commit, request.Filter())) {
    return std::nullopt;
  }
  inventory_.Touch(request.repo, *commit);
  EnsureState s;
  s.phase = EnsureState::Phase::kReady;
  s.repo = request.repo;
  s.revision = request.revision.str();
  s.commit = commit->str();
  s.snapshot_dir = inventory_.SnapshotDir(request.repo, *commit);
  s.hit = true;
  s.files_done = s.files_total = 0;
  return s;
}

EnsureState Downloads::Lookup(const EnsureRequest& request, std::shared_ptr<Download>* joined,
                              bool* fresh_failure) {
  if (auto hit = TryHit(request)) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.hits;
    return *hit;
  }
  const std::string key = request.Key();
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.misses;
  auto failed = failures_.find(key);
  if (failed != failures_.end()) {
    EnsureState s = failed->second.first;
    const bool fresh = clock_.Now() - failed->second.second < options_.failure_ttl;
    failures_.erase(failed);
    if (fresh) {
      *fresh_failure = true;
      return s;
    }
  }
  if (shutting_down_) {
    EnsureState s;
    s.phase = EnsureState::Phase::kFailed;
    s.repo = request.repo;
    s.revision = request.revision.str();
    s.error = UnavailableError("the agent is shutting down");
    *fresh_failure = true;
    return s;
  }
  auto it = active_.find(key);
  std::shared_ptr<Download> d = it != active_.end() ? it->second : StartLocked(request);
  *joined = d;
  std::lock_guard<std::mutex> dlock(d->mu);
  return Snapshot(*d);
}

EnsureState Downloads::Ensure(const EnsureRequest& request, std::chrono::milliseconds wait) {
  std::shared_ptr<Download> d;
  bool failure = false;
  EnsureState s = Lookup(request, &d, &failure);
  if (!d || wait.count() <= 0) return s;
  std::unique_lock<std::mutex> lock(d->mu);
  d->cv.wait_for(lock, wait, [&] { return d->done; });
  return Snapshot(*d);
}

EnsureState Downloads::EnsureThen(const EnsureRequest& request, ReadyCallback on_done) {
  std::shared_ptr<Download> d;
  bool failure = false;
  EnsureState s = Lookup(request, &d, &failure);
  if (d) {
    std::unique_lock<std::mutex> lock(d->mu);
    if (!d->done) {
      d->callbacks.push_back(std::move(on_done));
      return Snapshot(*d);
    }
    s = Snapshot(*d);
  }
  on_done(s);
  return s;
}

std::shared_ptr<Downloads::Download> Downloads::StartLocked(const EnsureRequest& request) {
  // Join the threads of downloads that have ended.
  std::erase_if(threads_, [](auto& entry) {
    if (!entry.first->exited) return false;
    entry.second.join();
    return true;
  });
  auto d = std::make_shared<Download>();
  d->key = request.Key();
  d->request = request;
  d->filter = request.Filter();
  d->t0 = clock_.Monotonic();
  d->state.repo = request.repo;
  d->state.revision = request.revision.str();
  d->state.started = clock_.Now();
  if (CommitSha::IsValid(request.revision.str())) d->state.commit = request.revision.str();
  active_[d->key] = d;
  ++stats_.started;
  spdlog::info("agent: download {}@{} started", request.repo.id(), request.revision.str());
  threads_.emplace_back(d, std::thread([this, d] {
    if (d->request.yield_cpu) YieldCpu();
    Run(d);
    d->exited = true;
  }));
  return d;
}

namespace {

std::vector<BlobUse> PlanBlobs(const downloader::DownloadPlan& plan) {
  std::vector<BlobUse> blobs;
  std::set<std::string> seen;
  for (const downloader::PlannedFile& f : plan.files) {
    if (seen.insert(f.file.etag.str()).second) {
      blobs.push_back({f.file.etag.str(), f.file.size,
                       f.action == downloader::PlannedFile::Action::kFetch});
    }
  }
  return blobs;
}

std::string SelectionJson(const EnsureRequest& r) {
  return json{{"revision", r.revision.str()},
              {"include", r.patterns.include},
              {"exclude", r.patterns.exclude},
              {"peers", r.peers},
              {"swarm", r.swarm}}
      .dump();
}

}  // namespace

// One download's life in order: the puller's options, the reserve hook (record the download, then
// reserve its bytes), progress into the shared state, and the outcome with its records.
// Long: the hooks are lambdas over `d` that only make sense beside the Run that owns it; split
// out, each would need the same half-dozen members passed in.
void Downloads::Run(std::shared_ptr<Download> d) {
  const EnsureRequest& r = d->request;
  downloader::PullOptions o;
  o.cache_dir = options_.cache_dir;
  o.state_dir = options_.state_dir;
  o.endpoint = options_.upstream;
  o.token = r.token;
  o.repo = r.repo;
  o.revision = r.revision;
  o.patterns = r.patterns;
  o.peers = r.peers;
  o.swarm = r.swarm;
  if (options_.peer_key) o.peer_key = options_.peer_key();
  {
    std::lock_guard<std::mutex> lock(mu_);
    o.swarm_self = self_url_;
  }
  o.tuning = options_.tuning;
  o.user_agent = "modelcache-agent/0.1";
  o.sleep = options_.sleep;
  o.reserve = [this, d](const downloader::DownloadPlan& plan) -> Status {
    {
      std::lock_guard<std::mutex> lock(d->mu);
      d->state.commit = plan.commit.str();
      for (const downloader::PlannedFile& f : plan.files) {
        d->blob_of_path[f.file.path.str()] = f.file.etag.str();
      }
    }
    DownloadRow row{.repo = d->request.repo.FolderName(),
                    .commit = plan.commit.str(),
                    .revision = d->request.revision.str(),
                    .filter = d->filter,
                    .selection = SelectionJson(d->request),
                    .needs_token = d->request.token.has_value(),
                    .started = clock_.Now()};
    MC_RETURN_IF_ERROR(db_.PutDownload(row), "record the download");
    return inventory_.Reserve(d->key, d->request.repo, plan.commit, plan.bytes_to_fetch,
                              PlanBlobs(plan));
  };
  {
    std::lock_guard<std::mutex> lock(mu_);  // Shutdown() reads d->puller under mu_
    d->puller = std::make_unique<downloader::Puller>(std::move(o));
    if (shutting_down_) d->puller->Cancel();
  }
  auto observe = [d](const downloader::PullEvent& e) {
    if (e.kind == downloader::PullEvent::Kind::kRetry) {  // a retry, a peer or member skipped
      spdlog::info("agent: download {}: {} from {}: {}", d->request.repo.id(), e.path, e.source,
                   e.message);
    }
    if (e.kind != downloader::PullEvent::Kind::kPlan &&
        e.kind != downloader::PullEvent::Kind::kProgress &&
        e.kind != downloader::PullEvent::Kind::kFileLinked) {
      return;
    }
    std::lock_guard<std::mutex> lock(d->mu);
    EnsureState& s = d->state;
    if (!e.commit.empty()) s.commit = e.commit;
    s.bytes_done = e.bytes_done;
    s.bytes_total = e.bytes_to_fetch;
    s.files_done = e.files_done;
    s.files_total = e.files_total;
    s.rate = e.rate_bytes_per_second;
    if (s.rate > 0 && s.bytes_total >= s.bytes_done) {
      s.eta_seconds = static_cast<double>(s.bytes_total - s.bytes_done) / s.rate;
    }
  };
  StatusOr<downloader::PullResult> result = d->puller->Run(observe);

  EnsureState final_state;
  {
    std::lock_guard<std::mutex> lock(d->mu);
    final_state = d->state;
  }
  if (result.ok()) {
    Status recorded = inventory_.RecordComplete(d->key, r.repo, result->commit, d->filter);
    if (recorded.ok()) {
      final_state.phase = EnsureState::Phase::kReady;
      final_state.commit = result->commit.str();
      final_state.snapshot_dir = result->snapshot_dir;
      final_state.bytes_done = result->bytes_fetched + result->bytes_resumed;
      final_state.bytes_total = result->plan.bytes_to_fetch;
      final_state.files_done = final_state.files_total =
          static_cast<int>(result->plan.files.size());
      final_state.eta_seconds = 0;
      final_state.bytes_by_source = result->bytes_by_source;
      std::lock_guard<std::mutex> lock(mu_);
      confirmed_refs_.insert_or_assign({r.repo.FolderName(), r.revision.str()},
                                       std::pair(result->commit, clock_.Now()));
    } else {
      final_state.phase = EnsureState::Phase::kFailed;
      final_state.error = recorded;
    }
    Status s = db_.DeleteDownload(r.repo.FolderName(), result->commit.str(), d->filter);
    if (!s.ok()) spdlog::warn("agent: {}", s.ToString());
  } else {
    inventory_.Release(d->key);
    final_state.phase = EnsureState::Phase::kFailed;
    final_state.error = result.status();
    // A cancelled download (shutdown) keeps its row: the next start resumes it.
    if (result.status().code() != StatusCode::kCancelled && !final_state.commit.empty()) {
      Status s = db_.DeleteDownload(r.repo.FolderName(), final_state.commit, d->filter);
      if (!s.ok()) spdlog::warn("agent: {}", s.ToString());
    }
  }
  final_state.rate = 0;
  Finish(d, std::move(final_state));
}

double LearnRate(double old_rate, uint64_t bytes, double seconds) {
  if (bytes < (1u << 20) || !(seconds > 0)) return old_rate;
  const double sample = static_cast<double>(bytes) / seconds;
  return old_rate > 0 ? (old_rate + sample) / 2 : sample;
}

void Downloads::Finish(const std::shared_ptr<Download>& d, EnsureState final_state) {
  const double seconds =
      std::chrono::duration<double>(clock_.Monotonic() - d->t0).count();
  if (final_state.phase == EnsureState::Phase::kReady) {
    spdlog::info("agent: download {}@{} ready in {:.2f}s", d->request.repo.id(),
                 final_state.commit, seconds);
  } else {
    spdlog::warn("agent: download {}@{} failed: {}", d->request.repo.id(),
                 d->request.revision.str(), final_state.error.ToString());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(d->key);
    stats_.seconds += seconds;
    if (final_state.phase == EnsureState::Phase::kReady) {
      ++stats_.succeeded;
      uint64_t upstream = 0, peers = 0;
      for (const auto& [source, bytes] : final_state.bytes_by_source) {
        stats_.bytes_by_source[source] += bytes;
        (source == "upstream" ? upstream : peers) += bytes;
      }
      // Each source's bytes over the whole download's time: a lower bound when both were used.
      stats_.upstream_bytes_per_second =
          LearnRate(stats_.upstream_bytes_per_second, upstream, seconds);
      stats_.peer_bytes_per_second = LearnRate(stats_.peer_bytes_per_second, peers, seconds);
    } else {
      ++stats_.failed;
      if (final_state.error.code() != StatusCode::kCancelled) {
        failures_[d->key] = {final_state, clock_.Now()};
      }
    }
  }
  std::vector<ReadyCallback> callbacks;
  {
    std::lock_guard<std::mutex> lock(d->mu);
    d->state = final_state;
    d->done = true;
    callbacks.swap(d->callbacks);
  }
  d->cv.notify_all();
  if (options_.on_change) options_.on_change();
  for (ReadyCallback& cb : callbacks) cb(final_state);
}

std::vector<EnsureState> Downloads::Active() const {
  std::vector<std::shared_ptr<Download>> list;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, d] : active_) list.push_back(d);
  }
  std::vector<EnsureState> out;
  for (const auto& d : list) {
    std::lock_guard<std::mutex> lock(d->mu);
    out.push_back(Snapshot(*d));
  }
  return out;
}

std::optional<EnsureState> Downloads::Progress(const EnsureRequest& request) const {
  std::shared_ptr<Download> d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(request.Key());
    if (it == active_.end()) return std::nullopt;
    d = it->second;
  }
  std::lock_guard<std::mutex> lock(d->mu);
  return Snapshot(*d);
}

std::optional<Downloads::PartialFile> Downloads::Partial(const RepoId& repo,
                                                         const std::string& commit,
                                                         const std::string& path,
                                                         uint64_t offset) const {
  std::vector<std::shared_ptr<Download>> list;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, d] : active_) {
      if (d->request.repo == repo) list.push_back(d);
    }
  }
  for (const auto& d : list) {
    std::string etag;
    {
      std::lock_guard<std::mutex> lock(d->mu);
      // Not planned yet (the revision is being resolved): nothing written, but the asker knows
      // this host fetches the commit, so it waits for it rather than skipping it for the blob.
      if (d->state.commit.empty()) return PartialFile{"", downloader::BlobExtent{0, offset, 0}};
      if (d->state.commit != commit) continue;
      auto it = d->blob_of_path.find(path);
      if (it == d->blob_of_path.end()) continue;
      etag = it->second;
    }
    downloader::Puller* puller = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);  // Run() sets d->puller under mu_
      puller = d->puller.get();
    }
    // The puller lives as long as `d`; before its engine runs (or for a blob it only links)
    // there is nothing written yet.
    std::optional<downloader::BlobExtent> extent;
    if (puller != nullptr) extent = puller->Extent(etag, offset);
    PartialFile out{etag, extent.value_or(downloader::BlobExtent{0, offset, 0})};
    return out;
  }
  return std::nullopt;
}

void Downloads::JoinSwarm(const RepoId& repo, const std::string& commit,
                          const std::string& member_url) {
  std::vector<std::shared_ptr<Download>> list;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, d] : active_) {
      if (d->request.repo == repo) list.push_back(d);
    }
  }
  for (const auto& d : list) {
    {
      std::lock_guard<std::mutex> lock(d->mu);
      if (d->state.commit != commit) continue;
    }
    downloader::Puller* puller = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);  // Run() sets d->puller under mu_
      puller = d->puller.get();
    }
    if (puller != nullptr) puller->JoinSwarm(member_url);
  }
}

void Downloads::set_self_url(std::string url) {
  std::lock_guard<std::mutex> lock(mu_);
  self_url_ = std::move(url);
}

DownloadStats Downloads::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Downloads::Resume() {
  auto rows = db_.ListDownloads();
  if (!rows.ok()) {
    spdlog::warn("agent: read interrupted downloads: {}", rows.status().ToString());
    return;
  }
  for (const DownloadRow& row : *rows) {
    if (row.needs_token) {
      spdlog::info("agent: interrupted download {}@{} needs a token: its bytes wait for the next "
                   "ensure",
                   row.repo, row.commit);
      continue;
    }
    json sel = json::parse(row.selection, nullptr, false);
    auto repo = RepoId::FromFolderName(row.repo);
    auto rev = Revision::Parse(row.revision);
    if (sel.is_discarded() || !sel.is_object() || !repo.ok() || !rev.ok()) {
      spdlog::warn("agent: dropping unreadable download record {}@{}", row.repo, row.commit);
      Status s = db_.DeleteDownload(row.repo, row.commit, row.filter);
      continue;
    }
    EnsureRequest r;
    r.repo = *repo;
    r.revision = *rev;
    auto strings = [&](const char* name) {
      std::vector<std::string> out;
      if (sel.contains(name) && sel[name].is_array()) {
        for (const auto& v : sel[name]) {
          if (v.is_string()) out.push_back(v.get<std::string>());
        }
      }
      return out;
    };
    r.patterns.include = strings("include");
    r.patterns.exclude = strings("exclude");
    r.peers = strings("peers");
    r.swarm = strings("swarm");
    spdlog::info("agent: resuming interrupted download {}@{}", r.repo.id(), row.revision);
    Ensure(r);
  }
}

void Downloads::Shutdown() {
  std::vector<std::pair<std::shared_ptr<Download>, std::thread>> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    for (const auto& [key, d] : active_) {
      if (d->puller) d->puller->Cancel();
    }
    threads.swap(threads_);
  }
  for (auto& [d, t] : threads) {
    if (t.joinable()) t.join();
  }
}

}  // namespace mc::agent
