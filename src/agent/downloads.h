// Downloads: single-flight `ensure` of a model on this host.
//
// Ensure() answers at once: ready (the selection of that commit is complete and verified in the
// cache), downloading (with progress), or the error of a download that just failed. Every ensure
// of the same (repo, revision, selection) while a download runs joins it; a download is started
// only by the first. The download is a downloader::Puller run in-process on its own thread; its
// reserve hook takes the bytes from the Inventory's budget (evicting if needed) before anything is
// written. Distinct keys that share blobs (two revisions, "main" and its sha) are still fetched
// once: the puller locks each blob across threads and processes.
//
// A revision that is a name ("main", a tag) is answered from the local ref when that ref was
// confirmed with the upstream less than `ref_ttl` ago; otherwise a download (which costs metadata
// requests only when nothing changed) runs to confirm it. Controllers pass commits.
//
// A failed download's error is kept for `failure_ttl`; the next ensure of the key receives it once
// and the one after starts again. Downloads in flight are recorded in the StateDb; after a crash
// Resume() restarts those that need no token (the token is never stored) and leaves the others'
// partial bytes for the next ensure, which resumes them.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/inventory.h"
#include "agent/state_db.h"
#include "mc/common/clock.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/downloader/download_plan.h"
#include "mc/downloader/pull.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"

namespace mc::agent {

// How much nicer a download that yields the CPU runs (EnsureRequest::yield_cpu).
inline constexpr int kYieldNice = 10;

struct EnsureRequest {
  RepoId repo = RepoId::Parse("unset/unset").value();
  Revision revision = Revision::Parse("main").value();
  downloader::FilePatterns patterns;
  std::vector<std::string> peers;
  // Agents fetching the same commit now (issue 17 swarm): pieces are shared with them while they
  // download (PullOptions::swarm). This agent's own URL is added by Downloads.
  std::vector<std::string> swarm;
  std::optional<hub::Secret> token;
  // Run the download's threads at a lower CPU priority (nice +kYieldNice, for its whole life):
  // set by a worker whose image is pulled at the same time, so that the engine's pull, a mostly
  // serial pipeline, is not starved by the download's many threads on a host with few cores
  // (docs/benchmarks.md, image cold starts). Not part of the key: a download is shared as is.
  bool yield_cpu = false;

  // Canonical text of the selection: "" for every file, else a JSON of the sorted patterns.
  std::string Filter() const;
  // "<repo folder>@<revision>#<filter>".
  std::string Key() const;
};

struct EnsureState {
  enum class Phase { kReady, kDownloading, kFailed };
  Phase phase = Phase::kDownloading;
  RepoId repo = RepoId::Parse("unset/unset").value();
  std::string revision;
  std::string commit;  // once known
  std::filesystem::path snapshot_dir;  // ready
  bool hit = false;    // ready without any download by this call
  Status error;        // failed
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;  // to fetch
  int files_done = 0;
  int files_total = 0;
  double rate = 0;  // bytes per second
  std::optional<double> eta_seconds;
  TimePoint started;
  std::map<std::string, uint64_t> bytes_by_source;  // finished downloads
};

struct DownloadsOptions {
  std::filesystem::path cache_dir;
  std::filesystem::path state_dir;  // resume records
  hub::Endpoint upstream = hub::Endpoint::Parse(hub::kDefaultEndpoint).value();
  downloader::FetchTuning tuning;
  std::chrono::seconds ref_ttl{300};
  std::chrono::seconds failure_ttl{60};
  std::function<void(std::chrono::milliseconds)> sleep;  // retries; tests inject
  std::function<void()> on_change;  // after a download ends (the agent pokes its controller link)
};

// Totals since start, for /metrics.
struct DownloadStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // ensures that started or joined a download
  uint64_t started = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  double seconds = 0;  // summed over finished downloads
  std::map<std::string, uint64_t> bytes_by_source;
  // Learned rates (issue 17), reported to the controller for its time-to-ready: bytes per second
  // of finished downloads from the upstream and from peers (LearnRate); 0 until measured.
  double upstream_bytes_per_second = 0;
  double peer_bytes_per_second = 0;
};

// The next estimate of a source's rate after a download got `bytes` from it in `seconds`: the
// mean of the old estimate and this sample (the sample alone at first). Downloads of less than
// 1 MiB measure latency more than bandwidth and leave the estimate as it was.
double LearnRate(double old_rate, uint64_t bytes, double seconds);

class Downloads {
 public:
  using ReadyCallback = std::function<void(const EnsureState&)>;

  Downloads(DownloadsOptions options, Inventory& inventory, StateDb& db, Clock& clock);
  ~Downloads();  // cancels and joins every download (their partial bytes stay for a resume)

  // The state now; starts a download if none runs. `wait` > 0 blocks until ready or failed or the
  // wait is over. InvalidArgument-style problems are returned as a failed state too.
  EnsureState Ensure(const EnsureRequest& request, std::chrono::milliseconds wait = {});
  // Like Ensure(), and calls `on_done` once with the final state (ready or failed): at once if it
  // is already final, else on the download's thread when it ends.
  EnsureState EnsureThen(const EnsureRequest& request, ReadyCallback on_done);
  // Downloads in flight.
  std::vector<EnsureState> Active() const;
  // The download in flight for `request`'s key, if any (never starts one).
  std::optional<EnsureState> Progress(const EnsureRequest& request) const;
  DownloadStats Stats() const;
  // What a download in flight has written of `path` of repo@commit, from `offset` (served to
  // swarm members); nullopt when no download in flight fetches that file.
  struct PartialFile {
    std::string etag;
    downloader::BlobExtent extent;
  };
  std::optional<PartialFile> Partial(const RepoId& repo, const std::string& commit,
                                     const std::string& path, uint64_t offset) const;
  // A host fetching repo@commit too asked this agent for a piece: it becomes a swarm member of
  // this agent's downloads of that commit (downloader::Puller::JoinSwarm).
  void JoinSwarm(const RepoId& repo, const std::string& commit, const std::string& member_url);
  // This agent's URL as other hosts reach it (swarm membership). Set once it listens.
  void set_self_url(std::string url);
  // Restarts downloads left by a crash (those that need no token).
  void Resume();
  // Cancels every download and joins their threads. Idempotent.
  void Shutdown();

 private:
  struct Download;
  EnsureState Lookup(const EnsureRequest& request, std::shared_ptr<Download>* joined,
                     bool* fresh_failure);
  std::optional<EnsureState> TryHit(const EnsureRequest& request);
  std::shared_ptr<Download> StartLocked(const EnsureRequest& request);
  void Run(std::shared_ptr<Download> d);
  void Finish(const std::shared_ptr<Download>& d, EnsureState final_state);
  static EnsureState Snapshot(const Download& d);

  const DownloadsOptions options_;
  Inventory& inventory_;
  StateDb& db_;
  Clock& clock_;

  mutable std::mutex mu_;
  bool shutting_down_ = false;
  std::map<std::string, std::shared_ptr<Download>> active_;
  std::map<std::string, std::pair<EnsureState, TimePoint>> failures_;
  // (repo folder, revision name) -> (commit, when the upstream confirmed it)
  std::map<std::pair<std::string, std::string>, std::pair<CommitSha, TimePoint>> confirmed_refs_;
  // Each download's thread, joined once it has returned (or at Shutdown()).
  std::vector<std::pair<std::shared_ptr<Download>, std::thread>> threads_;
  DownloadStats stats_;
  std::string self_url_;
};

}  // namespace mc::agent
