#include "mc/scheduler/placement.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>
#include <tuple>
#include <utility>

#include "mc/common/byte_count.h"

namespace mc::scheduler {
namespace {

std::string Human(uint64_t bytes) { return ByteCount(bytes).ToHuman(); }

std::string Rate(double bytes_per_second) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<uint64_t>::max());
  return Human(static_cast<uint64_t>(std::min(bytes_per_second, kMax))) + "/s";
}

std::string Seconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  return buf;
}

// "1 host has" / "3 hosts have".
std::string Hosts(size_t n, std::string_view one_verb, std::string_view many_verb) {
  return std::to_string(n) + (n == 1 ? " host " : " hosts ") +
         std::string(n == 1 ? one_verb : many_verb);
}

// Written so that NaN fails too.
bool Valid(double v) { return v >= 0 && std::isfinite(v); }

Status CheckHost(const HostState& h) {
  if (h.id.empty()) return InvalidArgumentError("a host has an empty id");
  const std::pair<const char*, double> values[] = {{"download_rate", h.download_rate},
                                                   {"peer_bandwidth", h.peer_bandwidth},
                                                   {"upstream_bandwidth", h.upstream_bandwidth},
                                                   {"queue_wait_seconds", h.queue_wait_seconds},
                                                   {"image_seconds", h.image_seconds}};
  for (const auto& [name, value] : values) {
    if (!Valid(value)) {
      return InvalidArgumentError("host " + h.id + ": " + name + " must be finite and >= 0, got " +
                                  std::to_string(value));
    }
  }
  return Status::Ok();
}

Status CheckInput(const std::vector<HostState>& hosts) {
  std::vector<std::string_view> ids;
  ids.reserve(hosts.size());
  for (const HostState& h : hosts) {
    MC_RETURN_IF_ERROR(CheckHost(h));
    ids.push_back(h.id);
  }
  std::sort(ids.begin(), ids.end());
  if (auto dup = std::adjacent_find(ids.begin(), ids.end()); dup != ids.end()) {
    return InvalidArgumentError("host id " + std::string(*dup) + " appears twice");
  }
  return Status::Ok();
}

// Why a host cannot take the worker; the order is the order of the checks.
enum Verdict { kWrongType, kTooFewGpus, kNoDisk, kNoBandwidth, kFits, kVerdicts };

// Where a host's missing bytes would come from, and how fast.
struct Estimate {
  ModelSource source = ModelSource::kLocal;
  uint64_t bytes = 0;    // still to fetch
  double bandwidth = 0;  // bytes/s
  double seconds = 0;    // time-to-ready: max(download, image pull) + queue wait
};

// Peers beat the upstream when usable and at least as fast (a tie saves upstream egress).
bool PeersAreBest(const HostState& h, bool peers_usable) {
  return peers_usable && h.peer_bandwidth > 0 && h.peer_bandwidth >= h.upstream_bandwidth;
}

Estimate Estimated(const HostState& h, bool peers_usable) {
  Estimate e;
  switch (h.model) {
    case ModelState::kComplete:
      break;
    case ModelState::kDownloading:
      e.source = ModelSource::kJoin;
      e.bytes = h.remaining_bytes;
      e.bandwidth = h.download_rate > 0 ? h.download_rate : h.upstream_bandwidth;
      break;
    case ModelState::kMissing: {
      const bool peers = PeersAreBest(h, peers_usable);
      e.source = peers ? ModelSource::kPeer : ModelSource::kUpstream;
      e.bytes = h.missing_bytes;
      e.bandwidth = peers ? h.peer_bandwidth : h.upstream_bandwidth;
      break;
    }
  }
  const double download = e.bytes == 0 ? 0 : static_cast<double>(e.bytes) / e.bandwidth;
  e.seconds = std::max(download, h.image_seconds) + h.queue_wait_seconds;
  return e;
}

// missing <= capacity - used - reserved + freeable, in 128 bits so that nothing wraps.
bool FitsOnDisk(const HostState& h) {
  using U128 = unsigned __int128;
  return U128{h.used_bytes} + h.reserved_bytes + h.missing_bytes <=
         U128{h.capacity} + h.freeable_bytes;
}

Verdict Judge(const HostState& h, const PlacementRequest& request, const Estimate& e) {
  if (!request.gpu_type.empty() && h.gpu_type != request.gpu_type) return kWrongType;
  if (h.gpus_free < request.gpus) return kTooFewGpus;
  if (h.model == ModelState::kMissing && !FitsOnDisk(h)) return kNoDisk;
  if (e.bytes > 0 && e.bandwidth <= 0) return kNoBandwidth;
  return kFits;
}

// "no host has 2 free GPUs of type A100 and room for 14.2 GB: 3 hosts have other GPU types, ...".
// `largest_missing` is the most any host lacking disk lacks, named when the model size is unknown.
Status NoHostFits(size_t host_count, const PlacementRequest& request,
                  const std::array<size_t, kVerdicts>& counts, uint64_t largest_missing) {
  const uint64_t model = request.model_bytes > 0 ? request.model_bytes : largest_missing;
  const std::string gpus =
      std::to_string(request.gpus) + (request.gpus == 1 ? " free GPU" : " free GPUs");
  std::string msg = "no host has " + gpus;
  if (!request.gpu_type.empty()) msg += " of type " + request.gpu_type;
  if (model > 0) msg += " and room for " + Human(model);
  if (host_count == 0) return ResourceExhaustedError(msg + ": there are no hosts");

  std::vector<std::string> why;
  if (size_t n = counts[kWrongType]; n > 0)
    why.push_back(Hosts(n, "has", "have") + " other GPU types");
  if (size_t n = counts[kTooFewGpus]; n > 0) {
    why.push_back(Hosts(n, "has", "have") +
                  (request.gpus <= 1 ? " no free GPU" : " fewer than " + gpus));
  }
  if (size_t n = counts[kNoDisk]; n > 0) {
    why.push_back(Hosts(n, "lacks", "lack") + " disk for " + Human(model));
  }
  if (size_t n = counts[kNoBandwidth]; n > 0) {
    why.push_back(Hosts(n, "has", "have") + " no bandwidth to download from");
  }
  for (size_t i = 0; i < why.size(); ++i) msg += (i == 0 ? ": " : ", ") + why[i];
  return ResourceExhaustedError(msg);
}

// Hosts other than `chosen` holding the commit complete: least busy first, then by id.
std::vector<std::string> RankPeers(const std::vector<HostState>& hosts, size_t chosen) {
  std::vector<const HostState*> complete;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (i != chosen && hosts[i].model == ModelState::kComplete) complete.push_back(&hosts[i]);
  }
  auto better = [](const HostState* a, const HostState* b) {
    if (a->running_workers != b->running_workers) return a->running_workers < b->running_workers;
    return a->id < b->id;
  };
  const size_t n = std::min(complete.size(), kMaxPeers);
  std::partial_sort(complete.begin(), complete.begin() + n, complete.end(), better);
  std::vector<std::string> peers;
  peers.reserve(n);
  for (size_t i = 0; i < n; ++i) peers.push_back(complete[i]->id);
  return peers;
}

struct Candidate {
  size_t host;  // index into the hosts
  Estimate estimate;
};

// The least expected time wins; within kTieSeconds of it, fewest running workers, then id. Taking
// the minimum first and the tie window from it (rather than comparing pairwise with a tolerance,
// which is not transitive) keeps the choice independent of the input order.
const Candidate& Choose(const std::vector<HostState>& hosts,
                        const std::vector<Candidate>& candidates) {
  double best = std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates) best = std::min(best, c.estimate.seconds);
  const Candidate* chosen = nullptr;
  for (const Candidate& c : candidates) {
    if (c.estimate.seconds > best + kTieSeconds) continue;
    if (chosen == nullptr) {
      chosen = &c;
      continue;
    }
    const HostState& a = hosts[c.host];
    const HostState& b = hosts[chosen->host];
    if (a.running_workers < b.running_workers ||
        (a.running_workers == b.running_workers && a.id < b.id)) {
      chosen = &c;
    }
  }
  return *chosen;
}

// kLeastLoaded: fewest running workers, then most free GPUs, then id.
const Candidate& LeastLoaded(const std::vector<HostState>& hosts,
                             const std::vector<Candidate>& candidates) {
  const Candidate* chosen = &candidates.front();
  for (const Candidate& c : candidates) {
    const HostState& a = hosts[c.host];
    const HostState& b = hosts[chosen->host];
    if (std::tie(a.running_workers, b.gpus_free, a.id) <
        std::tie(b.running_workers, a.gpus_free, b.id)) {
      chosen = &c;
    }
  }
  return *chosen;
}

// kRandom: a hash of the seed picks among the candidates sorted by id (input order never matters).
const Candidate& Random(const std::vector<HostState>& hosts,
                       const std::vector<Candidate>& candidates, uint64_t seed) {
  std::vector<const Candidate*> sorted;
  sorted.reserve(candidates.size());
  for (const Candidate& c : candidates) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [&hosts](const Candidate* a, const Candidate* b) {
    return hosts[a->host].id < hosts[b->host].id;
  });
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return *sorted[z % sorted.size()];
}

std::string Explain(const HostState& h, const Estimate& e, size_t fitting, size_t total) {
  std::string what;
  switch (e.source) {
    case ModelSource::kLocal:
      what = "holds the model";
      break;
    case ModelSource::kJoin:
      what = "joins the download in flight, " + Human(e.bytes) + " left at " + Rate(e.bandwidth);
      break;
    case ModelSource::kPeer:
    case ModelSource::kUpstream:
      what = "fetches " + Human(e.bytes) + " from " +
             (e.source == ModelSource::kPeer ? "peers" : "upstream") + " at " + Rate(e.bandwidth);
      break;
  }
  return "host " + h.id + " " + what + ", queue " + Seconds(h.queue_wait_seconds) + ": ready in " +
         Seconds(e.seconds) + " (" + std::to_string(fitting) + " of " + std::to_string(total) +
         " hosts fit)";
}

}  // namespace

std::string_view ModelSourceName(ModelSource source) {
  switch (source) {
    case ModelSource::kLocal:
      return "local";
    case ModelSource::kJoin:
      return "join";
    case ModelSource::kPeer:
      return "peer";
    case ModelSource::kUpstream:
      return "upstream";
  }
  return "unknown";
}

std::string_view PlacementPolicyName(PlacementPolicy policy) {
  switch (policy) {
    case PlacementPolicy::kTimeToReady:
      return "ttr";
    case PlacementPolicy::kLeastLoaded:
      return "least-loaded";
    case PlacementPolicy::kRandom:
      return "random";
  }
  return "unknown";
}

StatusOr<PlacementPolicy> ParsePlacementPolicy(std::string_view name) {
  for (PlacementPolicy p : {PlacementPolicy::kTimeToReady, PlacementPolicy::kLeastLoaded,
                            PlacementPolicy::kRandom}) {
    if (name == PlacementPolicyName(p)) return p;
  }
  return InvalidArgumentError("unknown placement policy '" + std::string(name) +
                              "': use ttr, least-loaded or random");
}

StatusOr<Placement> PlaceWorker(const std::vector<HostState>& hosts,
                                const PlacementRequest& request) {
  MC_RETURN_IF_ERROR(CheckInput(hosts));
  const bool peers_usable =
      request.allow_peers && std::any_of(hosts.begin(), hosts.end(), [](const HostState& h) {
        return h.model == ModelState::kComplete;
      });

  std::array<size_t, kVerdicts> counts{};
  uint64_t largest_missing = 0;
  std::vector<Candidate> candidates;
  candidates.reserve(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    // A host that is itself complete needs no source, so "another host" needs no special case.
    const Estimate e = Estimated(hosts[i], peers_usable);
    const Verdict v = Judge(hosts[i], request, e);
    ++counts[v];
    if (v == kNoDisk) largest_missing = std::max(largest_missing, hosts[i].missing_bytes);
    if (v == kFits) candidates.push_back({i, e});
  }
  if (candidates.empty()) return NoHostFits(hosts.size(), request, counts, largest_missing);

  const Candidate& c =
      request.policy == PlacementPolicy::kLeastLoaded ? LeastLoaded(hosts, candidates)
      : request.policy == PlacementPolicy::kRandom    ? Random(hosts, candidates, request.random_seed)
                                                      : Choose(hosts, candidates);
  const HostState& h = hosts[c.host];
  Placement placement;
  placement.host_id = h.id;
  placement.expected_seconds = c.estimate.seconds;
  placement.source = c.estimate.source;
  if (c.estimate.source == ModelSource::kPeer ||
      (c.estimate.source == ModelSource::kJoin && PeersAreBest(h, peers_usable))) {
    placement.peers = RankPeers(hosts, c.host);
  }
  placement.reason = Explain(h, c.estimate, candidates.size(), hosts.size());
  return placement;
}

void ApplyMeasured(HostState& h, const MeasuredHost& m, double default_upstream,
                   double default_peer) {
  h.upstream_bandwidth = m.upstream_bytes_per_second > 0 ? m.upstream_bytes_per_second
                                                         : default_upstream;
  h.peer_bandwidth = m.peer_bytes_per_second > 0 ? m.peer_bytes_per_second : default_peer;
  if (m.bytes_queued > 0 && h.upstream_bandwidth > 0) {
    h.queue_wait_seconds += static_cast<double>(m.bytes_queued) / h.upstream_bandwidth;
  }
}

}  // namespace mc::scheduler
