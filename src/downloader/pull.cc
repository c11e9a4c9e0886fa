// Puller: the pull flow of design.md §4 on top of HubClient (metadata), MakeDownloadPlan and the
// FetchEngine (bytes).
#include "mc/downloader/pull.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "downloader/fetch_engine.h"
#include "downloader/range_fetch.h"
#include "mc/cache/cache_store.h"
#include "mc/hub/hub_client.h"

namespace mc::downloader {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Retries a metadata call on Unavailable (transport, 5xx, 429) like huggingface_hub's second
// metadata attempt: backoff with jitter, Retry-After honoured.
template <typename T, typename Call>
StatusOr<T> WithRetries(const PullOptions& options, const std::atomic<bool>& cancelled, Call call) {
  std::mt19937_64 rng{std::random_device{}()};
  hub::HubErrorDetail detail;
  for (int attempt = 1;; ++attempt) {
    StatusOr<T> result = call(&detail);
    if (result.ok() || result.status().code() != StatusCode::kUnavailable ||
        attempt >= options.tuning.max_attempts) {
      return result;
    }
    std::chrono::milliseconds wait =
        detail.retry_after
            ? std::min<std::chrono::milliseconds>(*detail.retry_after,
                                                  options.tuning.max_retry_after)
            : BackoffDelay(attempt, options.tuning.backoff_base, options.tuning.backoff_max,
                           std::uniform_real_distribution<double>(0, 1)(rng));
    spdlog::warn("metadata request failed ({}); retrying in {} ms", result.status().message(),
                 wait.count());
    if (options.sleep) {
      options.sleep(wait);
    } else {
      const auto until = Clock::now() + wait;
      while (!cancelled && Clock::now() < until) {
        std::this_thread::sleep_for(
            std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(50)));
      }
    }
    if (cancelled) return CancelledError("pull cancelled");
  }
}

// Bytes free for an unprivileged writer on the filesystem holding `dir`.
StatusOr<uint64_t> FreeBytes(const fs::path& dir) {
  struct statvfs vfs;
  if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoError(errno, "statvfs " + dir.string());
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

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

}  // namespace

Puller::Puller(PullOptions options) : options_(std::move(options)) {}
Puller::~Puller() = default;

void Puller::Cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(engine_mu_);
  if (engine_ != nullptr) engine_->Cancel();
}

StatusOr<PullResult> Puller::Run(const std::function<void(const PullEvent&)>& observer) {
  const auto started = Clock::now();
  const PullOptions& o = options_;
  if (o.tuning.connections < 1 || o.tuning.connections > 256 || o.tuning.max_connections > 256) {
    return InvalidArgumentError("connections must be between 1 and 256");
  }
  if (o.tuning.cell_size < 4096 || o.tuning.min_split_size < o.tuning.cell_size) {
    return InvalidArgumentError("cell size must be >= 4096 and <= the minimum split size");
  }
  std::vector<Source> sources;
  for (const std::string& peer : o.peers) {
    MC_ASSIGN_OR_RETURN(hub::Endpoint p, hub::Endpoint::Parse(peer), "peer " + peer);
    sources.push_back(Source{p.url(), p.url(), true});
  }
  sources.push_back(Source{"upstream", o.endpoint.url(), false});

  std::mutex event_mu;
  PullEvent totals;
  auto emit = [&](PullEvent e) {
    std::lock_guard<std::mutex> lock(event_mu);
    e.commit = totals.commit;
    e.files_total = totals.files_total;
    e.files_to_fetch = totals.files_to_fetch;
    e.files_done = totals.files_done;
    e.bytes_total = totals.bytes_total;
    e.bytes_to_fetch = totals.bytes_to_fetch;
    if (e.kind != PullEvent::Kind::kProgress) {
      e.bytes_done = totals.bytes_done;
      e.rate_bytes_per_second = totals.rate_bytes_per_second;
      std::lock_guard<std::mutex> engine_lock(engine_mu_);
      if (engine_ != nullptr) e.bytes_done = engine_->counters().bytes_done;  // live
    }
    if (observer) observer(e);
  };

  // 1. Resolve and list.
  MC_ASSIGN_OR_RETURN(auto client,
                      hub::HubClient::Create(hub::HubClientOptions{
                          o.endpoint, o.token, o.tuning.metadata_timeout, o.user_agent}));
  // A commit sha is used as is (no request), as huggingface_hub does.
  StatusOr<CommitSha> resolved = CommitSha::Parse(o.revision.str());
  if (!resolved.ok()) {
    StatusOr<hub::RepoInfo> info = WithRetries<hub::RepoInfo>(
        o, cancelled_, [&](auto* d) { return client->GetRepoInfo(o.repo, o.revision, d); });
    if (!info.ok()) return info.status();
    resolved = info->sha;
  }
  const CommitSha commit = *resolved;
  if (cancelled_) return CancelledError("pull cancelled");
  MC_ASSIGN_OR_RETURN(std::vector<hub::TreeFile> tree,
                      WithRetries<std::vector<hub::TreeFile>>(o, cancelled_, [&](auto* d) {
                        return client->ListTree(o.repo, commit, d);
                      }));
  std::vector<RemoteFile> listing;
  listing.reserve(tree.size());
  for (const hub::TreeFile& f : tree) listing.push_back({f.path, f.BlobEtag(), f.size});
  FilePatterns patterns = o.patterns;
  if (!o.files.empty()) {
    std::set<std::string> wanted;
    for (const RepoFilePath& f : o.files) wanted.insert(f.str());
    std::vector<RemoteFile> selected;
    for (const RemoteFile& f : listing) {
      if (wanted.erase(f.path.str()) > 0) selected.push_back(f);
    }
    if (!wanted.empty()) {
      return NotFoundError("file " + QuoteForMessage(*wanted.begin()) + " is not in " +
                           hub::DescribeRepo(o.repo) + " at commit " + commit.str());
    }
    listing = std::move(selected);
    patterns = FilePatterns{};
  }

  // 2. Plan against the cache.
  // A dry run writes nothing, not even the cache dir: a missing cache plans as an empty one.
  std::unique_ptr<cache::CacheStore> store;
  {
    cache::CacheOptions cache_options{o.cache_dir, std::nullopt, !o.dry_run};
    if (o.dry_run) cache_options.use_symlinks = true;  // no probe link either
    auto opened = cache::CacheStore::Open(cache_options);
    if (opened.ok()) {
      store = std::move(*opened);
    } else if (!o.dry_run || opened.status().code() != StatusCode::kNotFound) {
      return opened.status();
    }
  }
  StatusOr<DownloadPlan> plan_or = MakeDownloadPlan(
      store.get(), o.repo, commit,
      CommitSha::IsValid(o.revision.str()) ? std::nullopt : std::optional<Revision>(o.revision),
      listing, patterns);
  MC_RETURN_IF_ERROR(plan_or.status());
  DownloadPlan plan = std::move(*plan_or);

  PullResult result{
      .repo = o.repo,
      .commit = commit,
      .snapshot_dir = cache::CacheLayout(store ? store->layout().root() : fs::absolute(o.cache_dir))
                          .SnapshotDir(o.repo, commit),
      .plan = std::move(plan),
      .bytes_by_source = {}};
  const DownloadPlan& planned = result.plan;
  {
    std::lock_guard<std::mutex> lock(event_mu);
    totals.commit = commit.str();
    totals.files_total = static_cast<int>(planned.files.size());
    totals.files_to_fetch = planned.files_to_fetch;
    totals.bytes_total = planned.bytes_total;
    totals.bytes_to_fetch = planned.bytes_to_fetch;
    for (const PlannedFile& f : planned.files) {
      if (f.action == PlannedFile::Action::kDone) ++totals.files_done;
    }
  }
  PullEvent plan_event = Event(PullEvent::Kind::kPlan);
  for (const PlannedFile& f : planned.files) {
    plan_event.files.push_back({f.file.path.str(),
                                f.action == PlannedFile::Action::kFetch ? 0 : f.file.size,
                                f.file.size});
  }
  emit(std::move(plan_event));
  if (o.dry_run) {
    result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return result;
  }

  if (o.reserve) MC_RETURN_IF_ERROR(o.reserve(planned));

  // 3. Free space: every blob to fetch, minus what resumable temp files already hold.
  std::map<std::string, BlobSpec> to_fetch;
  for (const PlannedFile& f : planned.files) {
    if (f.action != PlannedFile::Action::kFetch) continue;
    auto it = to_fetch.find(f.file.etag.str());
    if (it == to_fetch.end()) {
      it = to_fetch.emplace(f.file.etag.str(), BlobSpec{f.file.etag, f.file.size, {}}).first;
    }
    it->second.paths.push_back(f.file.path);
  }
  uint64_t needed = 0;
  for (const auto& [name, spec] : to_fetch) {
    struct stat st;
    const fs::path temp = store->ResumableBlobPath(o.repo, spec.etag);
    if (::stat(temp.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == spec.size) continue;
    needed += spec.size;
  }
  MC_ASSIGN_OR_RETURN(uint64_t free_bytes, FreeBytes(store->layout().root()));
  if (needed > free_bytes) {
    return ResourceExhaustedError(
        "not enough disk space in " + store->layout().root().string() + ": the pull needs " +
        Mib(needed) + " (" + std::to_string(needed) + " bytes) for " +
        std::to_string(to_fetch.size()) + " files, " + Mib(free_bytes) +
        " are free. Free space, pull fewer files with --include/--exclude, or use another "
        "--cache-dir");
  }
  MC_RETURN_IF_ERROR(store->EnsureCacheDirTag());

  // 4. Link what is already there.
  for (const PlannedFile& f : planned.files) {
    if (f.action != PlannedFile::Action::kLink) continue;
    MC_RETURN_IF_ERROR(store->LinkSnapshotFile(o.repo, commit, f.file.path, f.file.etag),
                       "link " + QuoteForMessage(f.file.path.str()));
    ++result.files_linked;
    {
      std::lock_guard<std::mutex> lock(event_mu);
      ++totals.files_done;
    }
    emit(Event(PullEvent::Kind::kFileLinked, f.file.path.str(), f.file.etag.str(), f.file.size));
  }

  // 5. Fetch.
  EngineConfig config{o.state_dir, o.repo,   commit,       sources, o.endpoint,
                      o.token,     o.tuning, o.user_agent, o.sleep};
  EngineCallbacks callbacks;
  callbacks.started = [&](const BlobSpec& spec) {
    emit(
        Event(PullEvent::Kind::kFileStarted, spec.paths.front().str(), spec.etag.str(), spec.size));
  };
  auto finished = [&](const BlobSpec& spec, PullEvent::Kind kind, const std::string& source) {
    {
      std::lock_guard<std::mutex> lock(event_mu);
      totals.files_done += static_cast<int>(spec.paths.size());
    }
    for (const RepoFilePath& path : spec.paths) {
      emit(Event(kind, path.str(), spec.etag.str(), spec.size, source));
    }
  };
  callbacks.verified = [&](const BlobSpec& spec, const std::string& source) {
    finished(spec, PullEvent::Kind::kFileVerified, source);
  };
  callbacks.linked = [&](const BlobSpec& spec) {
    finished(spec, PullEvent::Kind::kFileLinked, "");
  };
  callbacks.retry = [&](const BlobSpec& spec, const std::string& host, const std::string& message,
                        std::chrono::milliseconds wait) {
    PullEvent e = Event(PullEvent::Kind::kRetry, spec.paths.front().str(), "", spec.size, host);
    e.message = message;
    e.wait = wait;
    emit(std::move(e));
  };
  FetchEngine engine(*store, std::move(config), std::move(callbacks));
  {
    std::lock_guard<std::mutex> lock(engine_mu_);
    engine_ = &engine;
  }
  if (cancelled_) engine.Cancel();

  // Progress ticker: rate over the last 3 seconds.
  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool ticking = true;
  std::thread ticker([&] {
    std::deque<std::pair<Clock::time_point, uint64_t>> samples;
    std::unique_lock<std::mutex> lock(tick_mu);
    while (!tick_cv.wait_for(lock, o.progress_interval, [&] { return !ticking; })) {
      const auto now = Clock::now();
      const uint64_t done = engine.counters().bytes_done;
      samples.emplace_back(now, done);
      while (samples.size() > 2 && now - samples.front().first > std::chrono::seconds(3)) {
        samples.pop_front();
      }
      double rate = 0;
      const double span = std::chrono::duration<double>(now - samples.front().first).count();
      if (span > 0) rate = static_cast<double>(done - samples.front().second) / span;
      {
        std::lock_guard<std::mutex> guard(event_mu);
        totals.bytes_done = done;
        totals.rate_bytes_per_second = rate;
      }
      PullEvent e = Event(PullEvent::Kind::kProgress);
      e.bytes_done = done;
      e.rate_bytes_per_second = rate;
      e.files = engine.InFlight();
      emit(std::move(e));
    }
  });
  Status fetched = engine.Run(std::vector<BlobSpec>([&] {
    std::vector<BlobSpec> v;
    for (auto& [name, spec] : to_fetch) v.push_back(spec);
    return v;
  }()));
  {
    std::lock_guard<std::mutex> lock(tick_mu);
    ticking = false;
  }
  tick_cv.notify_all();
  ticker.join();
  {
    std::lock_guard<std::mutex> lock(engine_mu_);
    engine_ = nullptr;
  }
  const FetchEngine::Counters counters = engine.counters();
  if (!fetched.ok()) return fetched;

  // 6. The ref, last: every selected file is linked now.
  if (planned.revision) MC_RETURN_IF_ERROR(store->WriteRef(o.repo, *planned.revision, commit));

  result.files_linked += counters.blobs_linked;
  result.files_fetched = counters.blobs_fetched;
  result.bytes_fetched = counters.bytes_fetched;
  result.bytes_resumed = counters.bytes_resumed;
  result.bytes_by_source = counters.bytes_by_source;
  result.retries = counters.retries;
  result.connections = counters.peak_connections;
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  {
    std::lock_guard<std::mutex> lock(event_mu);
    totals.bytes_done = counters.bytes_done;
    const double secs = std::max(result.seconds, 1e-9);
    totals.rate_bytes_per_second = static_cast<double>(counters.bytes_fetched) / secs;
  }
  emit(Event(PullEvent::Kind::kDone));
  return result;
}

}  // namespace mc::downloader
