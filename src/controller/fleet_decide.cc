#include "controller/fleet_decide.h"

#include <algorithm>
#include <set>

#include "mc/common/ids.h"
#include "mc/scheduler/autoscale.h"
#include "mc/scheduler/placement.h"

namespace mc::controller {
namespace {

scheduler::WorkerPhase ToScalerPhase(WorkerPhase p) {
  switch (p) {
    case WorkerPhase::kStarting:
      return scheduler::WorkerPhase::kStarting;
    case WorkerPhase::kIdle:
      return scheduler::WorkerPhase::kIdle;
    case WorkerPhase::kRunning:
      return scheduler::WorkerPhase::kRunning;
    case WorkerPhase::kStopping:
      return scheduler::WorkerPhase::kStopping;
    default:
      return scheduler::WorkerPhase::kInitializing;
  }
}

// The autoscaler's view of an endpoint's settings and of its queue.
scheduler::AutoscaleConfig ScalerConfig(const EndpointRecord& e) {
  scheduler::AutoscaleConfig config;
  config.workers_min = static_cast<uint32_t>(std::max(0, e.workers_min));
  config.workers_max = static_cast<uint32_t>(std::max(0, e.workers_max));
  config.scaler_type = e.scaler_type == "REQUEST_COUNT" ? scheduler::ScalerType::kRequestCount
                                                        : scheduler::ScalerType::kQueueDelay;
  config.scaler_value = e.scaler_value;
  config.idle_timeout_seconds = e.idle_timeout_s;
  return config;
}

scheduler::JobCounts ScalerCounts(const QueueLoad& load) {
  scheduler::JobCounts counts;
  counts.in_queue = static_cast<uint32_t>(load.in_queue);
  counts.in_queue_normal = static_cast<uint32_t>(load.in_queue_scaling);
  if (load.oldest_ms) {
    counts.oldest_normal_enqueued = Clock::TimePoint(std::chrono::milliseconds(*load.oldest_ms));
  }
  counts.in_progress = static_cast<uint32_t>(load.in_progress);
  return counts;
}

Clock::TimePoint WallTime(int64_t ms) { return Clock::TimePoint(std::chrono::milliseconds(ms)); }

// Expected seconds to make `image` present on `h`: 0 when it has it, what is left of a pull in
// flight, else its size (as any host reports it, or unknown_image_bytes) from the registry.
double ImageSeconds(const std::map<std::string, HostView>& hosts, const HostView& h,
                    const std::string& image, const FleetOptions& o) {
  if (image.empty()) return 0;
  const double rate = std::max(o.registry_bytes_per_second, 1.0);
  for (const HostView::Image& i : h.images) {
    if (i.reference != image) continue;
    if (!i.pulling) return 0;
    return i.total > i.done ? static_cast<double>(i.total - i.done) / rate : 0;
  }
  uint64_t size = o.unknown_image_bytes;
  for (const auto& [id, other] : hosts) {
    for (const HostView::Image& i : other.images) {
      if (i.reference == image && !i.pulling && i.size > 0) size = i.size;
    }
  }
  return static_cast<double>(size) / rate;
}

// Bytes of the endpoint's commit the host lacks: the whole commit, less the blobs it holds
// through complete snapshots of other revisions, or less what a partial snapshot of this commit
// already holds, whichever is more (the two can overlap, so they are not added).
uint64_t MissingBytes(const std::map<std::string, CommitFiles>& files, const HostView& h,
                      const EndpointRecord& e) {
  auto target = files.find(e.commit);
  if (target == files.end()) return 0;  // unknown: placement sees every host alike
  const CommitFiles& want = target->second;
  uint64_t partial = 0;
  std::vector<const CommitFiles*> held;
  for (const auto& snap : h.snapshots) {
    if (snap.model != e.repo) continue;
    if (snap.commit == e.commit) {
      partial = std::max(partial, snap.size);
      continue;
    }
    auto other = files.find(snap.commit);
    if (snap.complete && other != files.end()) held.push_back(&other->second);
  }
  uint64_t shared = 0;
  if (!held.empty()) {
    for (const ModelBlob& b : want.blobs) {
      for (const CommitFiles* m : held) {
        auto it = std::lower_bound(
            m->blobs.begin(), m->blobs.end(), b.etag,
            [](const ModelBlob& x, const std::string& etag) { return x.etag < etag; });
        if (it != m->blobs.end() && it->etag == b.etag) {
          shared += b.size;
          break;
        }
      }
    }
  }
  const uint64_t present = std::min(want.bytes, std::max(shared, partial));
  return want.bytes - present;
}

bool HostLive(const FleetSnapshot& s, const FleetOptions& o, const HostView& h) {
  return s.now_ms - h.last_seen_ms <= o.host_timeout.count();
}

// The tree listings placement lacks for `e`: its commit (after a restart) and the other
// revisions of its model that live hosts hold complete; a failed listing is not retried for a
// minute; at most tree_fetches_per_pass.
std::vector<std::string> TreesWanted(const FleetSnapshot& s, const FleetOptions& o,
                                     const EndpointRecord& e) {
  std::vector<std::string> wanted;
  auto want = [&](const std::string& commit) {
    if (s.model_files->contains(commit) ||
        std::find(wanted.begin(), wanted.end(), commit) != wanted.end()) {
      return;
    }
    auto failed = s.tree_failed_at->find(commit);
    if (failed != s.tree_failed_at->end() && s.now_ms - failed->second < 60'000) return;
    if (static_cast<int>(wanted.size()) < o.tree_fetches_per_pass) wanted.push_back(commit);
  };
  want(e.commit);
  for (const auto& [hid, h] : *s.hosts) {
    if (!HostLive(s, o, h)) continue;
    for (const auto& snap : h.snapshots) {
      if (snap.model == e.repo && snap.complete && CommitSha::IsValid(snap.commit)) {
        want(snap.commit);
      }
    }
  }
  return wanted;
}

// Step 1 of the pass (see the header): stops that do not depend on an endpoint's queue.
void StopUnhealthy(const FleetSnapshot& s, const FleetOptions& o, Decision& d) {
  const int64_t ping_limit = std::max<int64_t>(3 * o.ping_interval.count(), 30'000);
  for (const WorkerFacts& w : s.workers) {
    const bool serving = w.phase == WorkerPhase::kIdle || w.phase == WorkerPhase::kRunning;
    if (serving && w.last_ping_ms && s.now_ms - *w.last_ping_ms > ping_limit) {
      d.stops.push_back({w.id, "stopped pinging", true});
      continue;
    }
    // A worker still running with no job left (it timed out, expired or was cancelled, and the
    // job-stop channel told it) that does not come back for work within job_stop_grace ignores
    // the stop: it is stopped, so that it neither burns billed time nor holds GPUs.
    if (w.phase == WorkerPhase::kRunning && w.jobless_since_ms &&
        s.now_ms - *w.jobless_since_ms > o.job_stop_grace.count()) {
      d.stops.push_back({w.id,
                         "kept running " + std::to_string(o.job_stop_grace.count() / 1000) +
                             " s after its job was stopped (execution timeout, TTL or cancel)",
                         false});
      continue;
    }
    // A draining host's idle workers stop (busy ones finish their jobs first, then are idle).
    auto schedule = s.schedules->find(w.host_id);
    if (w.phase == WorkerPhase::kIdle && schedule != s.schedules->end() &&
        schedule->second == "draining") {
      d.stops.push_back({w.id, "its host is draining", false});
    }
  }
}

}  // namespace

std::vector<scheduler::HostState> HostStatesFor(const FleetSnapshot& s, const FleetOptions& o,
                                                const EndpointRecord& e) {
  std::vector<scheduler::HostState> states;
  for (const auto& [hid, h] : *s.hosts) {
    if (!HostLive(s, o, h)) continue;
    // An image worker needs a host that runs containers; a command worker, processes.
    if (h.containers == e.image.empty()) continue;
    if (s.schedules->contains(hid)) continue;  // cordoned or draining: no new workers
    scheduler::HostState st;
    st.id = hid;
    st.gpu_type = h.gpu_type;
    st.gpus_free = static_cast<uint32_t>(std::max(0, h.gpus_free));
    st.missing_bytes = MissingBytes(*s.model_files, h, e);
    for (const auto& snap : h.snapshots) {
      if (snap.commit == e.commit && snap.complete) st.model = scheduler::ModelState::kComplete;
    }
    scheduler::MeasuredHost measured{h.upstream_rate, h.peer_rate, 0};
    for (const auto& dl : h.downloads) {
      if (dl.commit == e.commit && st.model != scheduler::ModelState::kComplete) {
        st.model = scheduler::ModelState::kDownloading;
        st.remaining_bytes = dl.total > dl.done ? dl.total - dl.done : 0;
        st.download_rate = dl.rate;
      } else if (dl.commit != e.commit) {
        measured.bytes_queued += dl.total > dl.done ? dl.total - dl.done : 0;
      }
    }
    // Origin outage (entitlements.h): nothing can be downloaded, only hosts holding the commit.
    if (s.upstream_down && st.model != scheduler::ModelState::kComplete) continue;
    st.image_seconds = ImageSeconds(*s.hosts, h, e.image, o);
    scheduler::ApplyMeasured(st, measured, o.upstream_bytes_per_second, o.peer_bytes_per_second);
    st.capacity = h.capacity;
    st.used_bytes = h.used;
    st.reserved_bytes = h.reserved;
    st.freeable_bytes = h.freeable;
    for (const WorkerFacts& w : s.workers) {
      if (w.host_id == hid) ++st.running_workers;
    }
    states.push_back(std::move(st));
  }
  return states;
}

// Long: the pass's steps for one endpoint after another (scale, the gates of trees, back-off and
// entitlement, then each placement), which share the pass's state (stops made, GPUs taken).
Decision Decide(const FleetSnapshot& s, const FleetOptions& o) {
  Decision d;
  StopUnhealthy(s, o, d);
  std::set<std::string> stopped;
  for (const StopAction& a : d.stops) stopped.insert(a.worker_id);
  std::map<std::string, int> gpus_taken;  // host → GPUs this pass's placements took

  for (const EndpointFacts& ef : s.endpoints) {
    const EndpointRecord& e = ef.record;
    std::vector<scheduler::WorkerInfo> infos;
    int unready = 0;
    for (const WorkerFacts& w : s.workers) {
      if (w.endpoint_id != e.id) continue;
      const WorkerPhase phase = stopped.contains(w.id) ? WorkerPhase::kStopping : w.phase;
      infos.push_back({w.id, ToScalerPhase(phase), WallTime(w.idle_since_ms.value_or(s.now_ms))});
      if (phase == WorkerPhase::kInitializing || phase == WorkerPhase::kStarting) ++unready;
    }
    scheduler::AutoscaleConfig config = ScalerConfig(e);
    config.workers_max += static_cast<uint32_t>(std::max(0, ef.rollout_room));
    auto scale = scheduler::DecideScale(config, ScalerCounts(ef.load), infos, WallTime(s.now_ms));
    if (!scale.ok()) {
      d.warnings.push_back("autoscale " + e.id + ": " + scale.status().ToString());
      continue;
    }
    scale->start += static_cast<uint32_t>(std::max(0, ef.rollout_starts));  // rollout.h
    for (const std::string& id : scale->stop) {
      if (stopped.insert(id).second) d.stops.push_back({id, "idle timeout", false});
    }
    if (scale->start == 0) {
      d.throttled[e.id] = 0;
      continue;
    }
    // The blob lists placement compares: fetched first (the endpoint's starts wait for them).
    if (ef.trees_fetching) continue;
    std::vector<std::string> trees = TreesWanted(s, o, e);
    if (!trees.empty()) {
      d.tree_fetches.push_back({e.id, std::move(trees)});
      continue;
    }
    const uint32_t allowed =
        ef.backoff ? ef.backoff->Starts(s.mono, scale->start, unready) : scale->start;
    if (allowed > 0) {
      if (!ef.entitlement) {  // none yet, or too old: checked off the loop first
        if (!ef.entitlement_checking) d.entitlement_checks.push_back(e.id);
        continue;
      }
      if (!ef.entitlement->ok()) {
        d.warnings.push_back(e.id + ": the endpoint's token is not accepted for " + e.repo +
                             "; no worker");
        d.throttled[e.id] = static_cast<int>(scale->start);
        continue;
      }
    }
    if (allowed == 0) {  // backing off: the autoscaler's wish is counted, not placed
      d.throttled[e.id] = static_cast<int>(scale->start);
      continue;
    }
    std::vector<scheduler::HostState> states = HostStatesFor(s, o, e);
    if (ef.rollout_active) {  // cache hits only while the commit rolls out (rollout.h)
      std::erase_if(states, [](const scheduler::HostState& st) {
        return st.model != scheduler::ModelState::kComplete;
      });
    }
    for (auto& st : states) {
      const int taken = gpus_taken[st.id];
      st.gpus_free = static_cast<uint32_t>(std::max<int64_t>(0, int64_t{st.gpus_free} - taken));
    }
    scheduler::PlacementRequest request;
    request.gpu_type = e.gpu_type;
    request.gpus = static_cast<uint32_t>(std::max(0, e.gpu_count));
    auto files = s.model_files->find(e.commit);
    request.model_bytes = files == s.model_files->end() ? 0 : files->second.bytes;
    request.policy = o.placement;
    request.random_seed = static_cast<uint64_t>(s.now_ms);
    uint32_t placed = 0;
    for (; placed < allowed; ++placed) {
      auto place = scheduler::PlaceWorker(states, request);
      if (!place.ok()) {
        if (ef.throttled_before == 0) {  // once per episode, not every pass
          d.warnings.push_back(e.id + ": cannot place a worker: " + place.status().message());
        }
        break;
      }
      auto host = std::find_if(states.begin(), states.end(),
                               [&](const auto& st) { return st.id == place->host_id; });
      PlaceAction a{e.id, place->host_id, place->peers,
                    host != states.end() && host->model == scheduler::ModelState::kComplete,
                    ef.load.oldest_ms ? s.now_ms - *ef.load.oldest_ms : 0};
      if (host != states.end()) {  // its GPUs are taken, for the next start and endpoint
        host->gpus_free -= std::min(host->gpus_free, request.gpus);
        ++host->running_workers;
      }
      gpus_taken[place->host_id] += static_cast<int>(request.gpus);
      d.places.push_back(std::move(a));
    }
    d.throttled[e.id] = static_cast<int>(scale->start - placed);
  }
  return d;
}

}  // namespace mc::controller
