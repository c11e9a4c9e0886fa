// Puller: the pull flow of design.md §4 on top of HubClient (metadata), MakeDownloadPlan and the
// FetchEngine (bytes), as the named stages of PullRun: resolve, list, plan, reserve, link, fetch,
// finish (the ref, last).
#include "mc/downloader/pull.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "downloader/fetch_engine.h"
#include "downloader/retry_policy.h"
#include "mc/cache/cache_store.h"
#include "mc/hub/hub_client.h"

namespace mc::downloader {

namespace fs = std::filesystem;

namespace {

std::string Mib(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

PullEvent Event(PullEvent::Kind kind, std::string path = "", std::string etag = "",
                uint64_t size = 0, std::string source = "") {
  PullEvent e;
  e.kind = kind;
  e.path = std::move(path);
  e.etag = std::move(etag);
  e.size = size;
  e.source = std::move(source);
  return e;
}

Status CheckTuning(const FetchTuning& t) {
  if (t.connections < 1 || t.connections > 256 || t.max_connections > 256) {
    return InvalidArgumentError("connections must be between 1 and 256");
  }
  if (t.cell_size < 4096 || t.min_split_size < t.cell_size) {
    return InvalidArgumentError("cell size must be >= 4096 and <= the minimum split size");
  }
  return Status::Ok();
}

// Peers first, the upstream last.
StatusOr<std::vector<Source>> Sources(const PullOptions& o) {
  std::vector<Source> sources;
  for (const std::string& peer : o.peers) {
    MC_ASSIGN_OR_RETURN(hub::Endpoint p, hub::Endpoint::Parse(peer), "peer " + peer);
    sources.push_back(Source{p.url(), p.url(), true});
  }
  // Swarm slots (issue 17): filled by the members given and those that join while it runs.
  if (!o.swarm_self.empty()) {
    MC_RETURN_IF_ERROR(hub::Endpoint::Parse(o.swarm_self).status(), "swarm_self");
    for (const std::string& m : o.swarm) {
      MC_RETURN_IF_ERROR(hub::Endpoint::Parse(m).status(), "swarm member " + m);
    }
    for (int k = 0; k < Puller::kMaxSwarmMembers; ++k) {
      sources.push_back(Source{"", "", true, k});
    }
  }
  sources.push_back(Source{"upstream", o.endpoint.url(), false});
  return sources;
}

// A swarm member's URL as every member writes it (the owners' hash is over this string).
std::string SwarmUrl(const std::string& url) {
  auto e = hub::Endpoint::Parse(url);
  return e.ok() ? e->url() : std::string();
}

// The receive rate over the last few seconds, from samples of the bytes done.
class RateWindow {
 public:
  double Add(Clock::SteadyTime now, uint64_t done) {
    samples_.emplace_back(now, done);
    while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(3)) {
      samples_.pop_front();
    }
    const double span = std::chrono::duration<double>(now - samples_.front().first).count();
    return span > 0 ? static_cast<double>(done - samples_.front().second) / span : 0;
  }

 private:
  std::deque<std::pair<Clock::SteadyTime, uint64_t>> samples_;
};

// Calls `tick` every `interval` of the clock on its own thread, between Start() and Stop().
class Ticker {
 public:
  Ticker(Clock& clock, std::chrono::milliseconds interval, std::function<void()> tick)
      : clock_(clock), interval_(interval), tick_(std::move(tick)) {}
  ~Ticker() { Stop(); }

  void Start() {
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!clock_.WaitFor(cv_, lock, interval_, [this] { return stopping_; })) {
        lock.unlock();
        tick_();
        lock.lock();
      }
    });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  Clock& clock_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> tick_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace

// One run of a pull: Puller::Run's stages in order, and the totals every event carries.
class PullRun {
 public:
  PullRun(Puller& puller, const std::function<void(const PullEvent&)>& observer)
      : puller_(puller),
        o_(puller.options_),
        clock_(*o_.clock),
        observer_(observer),
        started_(clock_.Monotonic()) {}

  StatusOr<PullResult> Run();

 private:
  // The files of the commit that the pull is about, and the patterns still to apply to them.
  struct Selection {
    std::vector<RemoteFile> files;
    FilePatterns patterns;
  };

  StatusOr<CommitSha> Resolve(hub::HubClient& client);
  StatusOr<Selection> List(hub::HubClient& client, const CommitSha& commit);
  StatusOr<PullResult> Plan(const CommitSha& commit, const Selection& selection);
  StatusOr<std::vector<BlobSpec>> Reserve(const DownloadPlan& plan);
  Status LinkPresent(PullResult& result);
  StatusOr<FetchEngine::Counters> Fetch(const CommitSha& commit, std::vector<BlobSpec> blobs);
  PullResult Finish(PullResult result, const FetchEngine::Counters& counters);

  // Retries a metadata call on Unavailable (transport, 5xx, 429) like huggingface_hub's second
  // metadata attempt: back-off with jitter, Retry-After honoured.
  template <typename T, typename Call>
  StatusOr<T> WithRetries(Call call);
  void WaitToRetry(std::chrono::milliseconds wait);
  EngineCallbacks Callbacks();
  void Tick(FetchEngine& engine, RateWindow& rates);
  void Emit(PullEvent e);
  void CountDone(int files);
  double Seconds() const {
    return std::chrono::duration<double>(clock_.Monotonic() - started_).count();
  }
  bool cancelled() const { return puller_.cancelled_.load(); }

  Puller& puller_;
  const PullOptions& o_;
  Clock& clock_;
  const std::function<void(const PullEvent&)>& observer_;
  const Clock::SteadyTime started_;
  std::vector<Source> sources_;
  std::unique_ptr<cache::CacheStore> store_;  // null only for a dry run of a missing cache
  std::mutex event_mu_;
  PullEvent totals_;  // guarded by event_mu_
};

template <typename T, typename Call>
StatusOr<T> PullRun::WithRetries(Call call) {
  const RetryPolicy policy = RetryPolicy::From(o_.tuning);
  std::mt19937_64 rng{std::random_device{}()};
  hub::HubErrorDetail detail;
  for (int attempt = 1;; ++attempt) {
    StatusOr<T> result = call(&detail);
    if (result.ok() || result.status().code() != StatusCode::kUnavailable ||
        !policy.MayRetry(attempt)) {
      return result;
    }
    const std::chrono::milliseconds wait = policy.Wait(
        attempt, detail.retry_after, std::uniform_real_distribution<double>(0, 1)(rng));
    spdlog::warn("metadata request failed ({}); retrying in {} ms", result.status().message(),
                 wait.count());
    WaitToRetry(wait);
    if (cancelled()) return CancelledError("pull cancelled");
  }
}

void PullRun::WaitToRetry(std::chrono::milliseconds wait) {
  if (o_.sleep) {
    o_.sleep(wait);
    return;
  }
  std::unique_lock<std::mutex> lock(puller_.engine_mu_);
  clock_.WaitFor(puller_.cancel_cv_, lock, wait, [this] { return cancelled(); });
}

void PullRun::Emit(PullEvent e) {
  std::lock_guard<std::mutex> lock(event_mu_);
  e.commit = totals_.commit;
  e.files_total = totals_.files_total;
  e.files_to_fetch = totals_.files_to_fetch;
  e.files_done = totals_.files_done;
  e.bytes_total = totals_.bytes_total;
  e.bytes_to_fetch = totals_.bytes_to_fetch;
  if (e.kind != PullEvent::Kind::kProgress) {
    e.bytes_done = totals_.bytes_done;
    e.rate_bytes_per_second = totals_.rate_bytes_per_second;
    std::lock_guard<std::mutex> engine_lock(puller_.engine_mu_);
    if (puller_.engine_ != nullptr) e.bytes_done = puller_.engine_->counters().bytes_done;  // live
  }
  if (observer_) observer_(e);
}

void PullRun::CountDone(int files) {
  std::lock_guard<std::mutex> lock(event_mu_);
  totals_.files_done += files;
}

StatusOr<PullResult> PullRun::Run() {
  MC_RETURN_IF_ERROR(CheckTuning(o_.tuning));
  MC_ASSIGN_OR_RETURN(sources_, Sources(o_));
  MC_ASSIGN_OR_RETURN(auto client,
                      hub::HubClient::Create(hub::HubClientOptions{
                          o_.endpoint, o_.token, o_.tuning.metadata_timeout, o_.user_agent}));
  MC_ASSIGN_OR_RETURN(const CommitSha commit, Resolve(*client));
  if (cancelled()) return CancelledError("pull cancelled");
  MC_ASSIGN_OR_RETURN(const Selection selection, List(*client, commit));
  MC_ASSIGN_OR_RETURN(PullResult result, Plan(commit, selection));
  if (o_.dry_run) {
    result.seconds = Seconds();
    return result;
  }
  if (o_.reserve) MC_RETURN_IF_ERROR(o_.reserve(result.plan));
  MC_ASSIGN_OR_RETURN(std::vector<BlobSpec> blobs, Reserve(result.plan));
  MC_RETURN_IF_ERROR(LinkPresent(result));
  MC_ASSIGN_OR_RETURN(const FetchEngine::Counters counters, Fetch(commit, std::move(blobs)));
  // The ref, last: every selected file is linked now.
  if (result.plan.revision) {
    MC_RETURN_IF_ERROR(store_->WriteRef(o_.repo, *result.plan.revision, commit));
  }
  return Finish(std::move(result), counters);
}

// The revision's commit. A commit sha is used as is (no request), as huggingface_hub does.
StatusOr<CommitSha> PullRun::Resolve(hub::HubClient& client) {
  StatusOr<CommitSha> sha = CommitSha::Parse(o_.revision.str());
  if (sha.ok()) return sha;
  MC_ASSIGN_OR_RETURN(hub::RepoInfo info, WithRetries<hub::RepoInfo>([&](auto* d) {
                        return client.GetRepoInfo(o_.repo, o_.revision, d);
                      }));
  return info.sha;
}

// The commit's files: all of them with the patterns, or exactly `o_.files`.
StatusOr<PullRun::Selection> PullRun::List(hub::HubClient& client, const CommitSha& commit) {
  MC_ASSIGN_OR_RETURN(std::vector<hub::TreeFile> tree,
                      WithRetries<std::vector<hub::TreeFile>>(
                          [&](auto* d) { return client.ListTree(o_.repo, commit, d); }));
  Selection selection{{}, o_.patterns};
  selection.files.reserve(tree.size());
  for (const hub::TreeFile& f : tree) selection.files.push_back({f.path, f.BlobEtag(), f.size});
  if (o_.files.empty()) return selection;
  std::set<std::string> wanted;
  for (const RepoFilePath& f : o_.files) wanted.insert(f.str());
  std::vector<RemoteFile> chosen;
  for (const RemoteFile& f : selection.files) {
    if (wanted.erase(f.path.str()) > 0) chosen.push_back(f);
  }
  if (!wanted.empty()) {
    return NotFoundError("file " + QuoteForMessage(*wanted.begin()) + " is not in " +
                         hub::DescribeRepo(o_.repo) + " at commit " + commit.str());
  }
  return Selection{std::move(chosen), FilePatterns{}};
}

// Opens the cache, plans against it and emits kPlan. A dry run writes nothing, not even the cache
// dir: a missing cache plans as an empty one.
StatusOr<PullResult> PullRun::Plan(const CommitSha& commit, const Selection& selection) {
  cache::CacheOptions cache_options{o_.cache_dir, std::nullopt, !o_.dry_run};
  if (o_.dry_run) cache_options.use_symlinks = true;  // no probe link either
  auto opened = cache::CacheStore::Open(cache_options);
  if (opened.ok()) {
    store_ = std::move(*opened);
  } else if (!o_.dry_run || opened.status().code() != StatusCode::kNotFound) {
    return opened.status();
  }
  const bool by_sha = CommitSha::IsValid(o_.revision.str());
  MC_ASSIGN_OR_RETURN(DownloadPlan plan,
                      MakeDownloadPlan(store_.get(), o_.repo, commit,
                                       by_sha ? std::nullopt : std::optional<Revision>(o_.revision),
                                       selection.files, selection.patterns));
  const fs::path root = store_ ? store_->layout().root() : fs::absolute(o_.cache_dir);
  PullResult result{.repo = o_.repo,
                    .commit = commit,
                    .snapshot_dir = cache::CacheLayout(root).SnapshotDir(o_.repo, commit),
                    .plan = std::move(plan),
                    .bytes_by_source = {}};
  const DownloadPlan& planned = result.plan;
  PullEvent event = Event(PullEvent::Kind::kPlan);
  {
    std::lock_guard<std::mutex> lock(event_mu_);
    totals_.commit = commit.str();
    totals_.files_total = static_cast<int>(planned.files.size());
    totals_.files_to_fetch = planned.files_to_fetch;
    totals_.bytes_total = planned.bytes_total;
    totals_.bytes_to_fetch = planned.bytes_to_fetch;
    for (const PlannedFile& f : planned.files) {
      const bool fetch = f.action == PlannedFile::Action::kFetch;
      if (f.action == PlannedFile::Action::kDone) ++totals_.files_done;
      event.files.push_back({f.file.path.str(), fetch ? 0 : f.file.size, f.file.size});
    }
  }
  Emit(std::move(event));
  return result;
}

// The blobs to fetch (each once, with every path that uses it), after checking that they fit:
// every blob minus what resumable temp files already hold.
StatusOr<std::vector<BlobSpec>> PullRun::Reserve(const DownloadPlan& plan) {
  std::map<std::string, BlobSpec> to_fetch;
  for (const PlannedFile& f : plan.files) {
    if (f.action != PlannedFile::Action::kFetch) continue;
    auto it = to_fetch.find(f.file.etag.str());
    if (it == to_fetch.end()) {
      it = to_fetch.emplace(f.file.etag.str(), BlobSpec{f.file.etag, f.file.size, {}}).first;
    }
    it->second.paths.push_back(f.file.path);
  }
  FileSystem& files = *o_.file_system;
  uint64_t needed = 0;
  for (const auto& [name, spec] : to_fetch) {
    StatusOr<uint64_t> temp = files.FileSize(store_->ResumableBlobPath(o_.repo, spec.etag));
    if (temp.ok() && *temp == spec.size) continue;
    needed += spec.size;
  }
  const fs::path& root = store_->layout().root();
  MC_ASSIGN_OR_RETURN(uint64_t free_bytes, files.FreeBytes(root));
  if (needed > free_bytes) {
    return ResourceExhaustedError(
        "not enough disk space in " + root.string() + ": the pull needs " + Mib(needed) + " (" +
        std::to_string(needed) + " bytes) for " + std::to_string(to_fetch.size()) + " files, " +
        Mib(free_bytes) +
        " are free. Free space, pull fewer files with --include/--exclude, or use another "
        "--cache-dir");
  }
  MC_RETURN_IF_ERROR(store_->EnsureCacheDirTag());
  std::vector<BlobSpec> blobs;
  for (auto& [name, spec] : to_fetch) blobs.push_back(std::move(spec));
  return blobs;
}

// Links the files whose blob is in the cache already.
Status PullRun::LinkPresent(PullResult& result) {
  for (const PlannedFile& f : result.plan.files) {
    if (f.action != PlannedFile::Action::kLink) continue;
    MC_RETURN_IF_ERROR(store_->LinkSnapshotFile(o_.repo, result.commit, f.file.path, f.file.etag),
                       "link " + QuoteForMessage(f.file.path.str()));
    ++result.files_linked;
    CountDone(1);
    Emit(Event(PullEvent::Kind::kFileLinked, f.file.path.str(), f.file.etag.str(), f.file.size));
  }
  return Status::Ok();
}

EngineCallbacks PullRun::Callbacks() {
  EngineCallbacks callbacks;
  callbacks.started = [this](const BlobSpec& spec) {
    Emit(Event(PullEvent::Kind::kFileStarted, spec.paths.front().str(), spec.etag.str(),
               spec.size));
  };
  auto finished = [this](const BlobSpec& spec, PullEvent::Kind kind, const std::string& source) {
    CountDone(static_cast<int>(spec.paths.size()));
    for (const RepoFilePath& path : spec.paths) {
      Emit(Event(kind, path.str(), spec.etag.str(), spec.size, source));
    }
  };
  callbacks.verified = [finished](const BlobSpec& spec, const std::string& source) {
    finished(spec, PullEvent::Kind::kFileVerified, source);
  };
  callbacks.linked = [finished](const BlobSpec& spec) {
    finished(spec, PullEvent::Kind::kFileLinked, "");
  };
  callbacks.retry = [this](const BlobSpec& spec, const std::string& host,
                           const std::string& message, std::chrono::milliseconds wait) {
    PullEvent e = Event(PullEvent::Kind::kRetry, spec.paths.front().str(), "", spec.size, host);
    e.message = message;
    e.wait = wait;
    Emit(std::move(e));
  };
  return callbacks;
}

// A kProgress event: bytes done, the rate over the last 3 seconds, the blobs in flight.
void PullRun::Tick(FetchEngine& engine, RateWindow& rates) {
  const uint64_t done = engine.counters().bytes_done;
  const double rate = rates.Add(clock_.Monotonic(), done);
  {
    std::lock_guard<std::mutex> guard(event_mu_);
    totals_.bytes_done = done;
    totals_.rate_bytes_per_second = rate;
  }
  PullEvent e = Event(PullEvent::Kind::kProgress);
  e.bytes_done = done;
  e.rate_bytes_per_second = rate;
  e.files = engine.InFlight();
  Emit(std::move(e));
}

// Fetches, verifies, publishes and links every blob, with progress events while it runs.
StatusOr<FetchEngine::Counters> PullRun::Fetch(const CommitSha& commit,
                                               std::vector<BlobSpec> blobs) {
  EngineConfig config{o_.state_dir, o_.repo,     commit,  sources_,
                      o_.endpoint,  o_.token,    o_.tuning, o_.user_agent,
                      o_.sleep,     o_.file_system};
  if (!o_.swarm_self.empty()) config.swarm_self = SwarmUrl(o_.swarm_self);
  FetchEngine engine(*store_, clock_, std::move(config), Callbacks());
  {
    std::lock_guard<std::mutex> lock(puller_.engine_mu_);
    for (const std::string& m : o_.swarm) engine.AddSwarmMember(SwarmUrl(m));
    for (const std::string& m : puller_.joined_) engine.AddSwarmMember(m);
    puller_.joined_.clear();
    puller_.engine_ = &engine;
  }
  if (cancelled()) engine.Cancel();
  RateWindow rates;
  Ticker ticker(clock_, o_.progress_interval, [&] { Tick(engine, rates); });
  ticker.Start();
  Status fetched = engine.Run(std::move(blobs));
  ticker.Stop();
  {
    std::lock_guard<std::mutex> lock(puller_.engine_mu_);
    puller_.engine_ = nullptr;
  }
  if (!fetched.ok()) return fetched;
  return engine.counters();
}

// The result and the kDone event.
PullResult PullRun::Finish(PullResult result, const FetchEngine::Counters& counters) {
  result.files_linked += counters.blobs_linked;
  result.files_fetched = counters.blobs_fetched;
  result.bytes_fetched = counters.bytes_fetched;
  result.bytes_resumed = counters.bytes_resumed;
  result.bytes_by_source = counters.bytes_by_source;
  result.retries = counters.retries;
  result.connections = counters.peak_connections;
  result.seconds = Seconds();
  {
    std::lock_guard<std::mutex> lock(event_mu_);
    totals_.bytes_done = counters.bytes_done;
    const double secs = std::max(result.seconds, 1e-9);
    totals_.rate_bytes_per_second = static_cast<double>(counters.bytes_fetched) / secs;
  }
  Emit(Event(PullEvent::Kind::kDone));
  return result;
}

Puller::Puller(PullOptions options) : options_(std::move(options)) {}
Puller::~Puller() = default;

std::optional<BlobExtent> Puller::Extent(const std::string& etag, uint64_t offset) {
  std::lock_guard<std::mutex> lock(engine_mu_);
  if (engine_ == nullptr) return std::nullopt;
  return engine_->Extent(etag, offset);
}

void Puller::JoinSwarm(const std::string& member_url) {
  if (options_.swarm_self.empty()) return;
  const std::string url = SwarmUrl(member_url);
  if (url.empty()) return;
  std::lock_guard<std::mutex> lock(engine_mu_);
  if (engine_ != nullptr) {
    if (engine_->AddSwarmMember(url)) spdlog::debug("pull: swarm member {} joined", url);
  } else if (joined_.size() < static_cast<size_t>(kMaxSwarmMembers)) {
    joined_.push_back(url);
  }
}

void Puller::Cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(engine_mu_);
  cancel_cv_.notify_all();
  if (engine_ != nullptr) engine_->Cancel();
}

StatusOr<PullResult> Puller::Run(const std::function<void(const PullEvent&)>& observer) {
  return PullRun(*this, observer).Run();
}

}  // namespace mc::downloader
