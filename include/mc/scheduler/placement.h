// Placement policy: which host gets a new worker of an endpoint, as a pure function over a
// snapshot of the fleet (design.md §2 "scheduler" and §4 "placement": no I/O, no threads, no
// clock). The controller builds one HostState per registered host from the agents' heartbeats,
// calls PlaceWorker, then asks the chosen agent to ensure the model (with the peers named here) and
// start the worker; the simulator will call the same function.
//
// Score. Expected time-to-ready = max(download seconds, image_seconds) + the host's queue wait
// (the agent pulls a worker's image while the model downloads), where the download seconds depend
// on what the host holds of the endpoint's model commit:
//   - kComplete:    0 (source kLocal).
//   - kDownloading: remaining_bytes / download_rate (source kJoin: the agent's single-flight ensure
//                   joins the download in flight). A rate of 0 (not yet measured) falls back to
//                   the upstream estimate, remaining_bytes / upstream_bandwidth.
//   - kMissing:     missing_bytes / the best source's bandwidth. Peers are a source only when the
//                   request allows them and another host holds the commit complete; then the
//                   faster of peer_bandwidth and upstream_bandwidth is used (a tie goes to the
//                   peers, which saves upstream egress). Source kPeer or kUpstream.
// Runpod only knows has/hasn't; we count partial and in-flight bytes (missing_bytes is what the
// host lacks: blobs it shares with another revision are not missing).
//
// Filters, in this order; a host is counted under the first it fails (for the error message):
//   1. GPU type: request.gpu_type empty matches any host, otherwise equal strings.
//   2. Free GPUs: gpus_free >= request.gpus.
//   3. Disk (kMissing only; a download in flight already holds its reservation):
//      missing_bytes <= capacity - used - reserved + freeable_bytes, i.e. the model fits once
//      eviction frees what it can (unpinned, not partial snapshots; see eviction.h).
//   4. Bandwidth: a host that must download at a bandwidth of 0 can never be ready.
//
// Choice (PlacementRequest::policy). kTimeToReady, the default: the least expected_seconds wins. Hosts within 1 ms of the best are ties, broken by fewer
// running_workers (spreading load), then by id; so the result never depends on the input order.
//
// Peers. Hosts other than the chosen one holding the commit complete, whatever their GPUs (serving
// blobs needs none), fewest running_workers first (less busy), then by id, at most kMaxPeers.
// Returned only when the chosen host will fetch from peers (source kPeer, or kJoin when peers
// would be the best source should the joined download have to start again): the downloader tries
// peers before the upstream, so naming them when the upstream is faster would slow it down.
//
// Errors.
//   - ResourceExhausted when no host passes the filters; the message counts the hosts per
//     filter, e.g. "no host has 2 free GPUs of type A100 and room for 14.2 GB: 3 hosts have other
//     GPU types, 1 host has fewer than 2 free GPUs, 1 host lacks disk for 14.2 GB" (without
//     model_bytes, the largest missing_bytes of the hosts lacking disk is named). The caller
//     retries later (a worker stops, a download ends, the operator adds a host).
//   - InvalidArgument for inconsistent input, checked before anything is decided: duplicate or
//     empty host ids, a bandwidth, rate or wait that is negative or not finite.
//
// Cost: O(n log n) for n hosts (the peer ranking); allocation-light.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/status.h"

namespace mc::scheduler {

// What a host holds of the endpoint's model commit.
enum class ModelState {
  kMissing,      // not complete and no download in flight (partial bytes count as present)
  kDownloading,  // a download of this commit is in flight on the host
  kComplete,     // every file verified and linked
};

// Where the chosen host's model bytes will come from.
enum class ModelSource {
  kLocal,     // already complete on the host
  kJoin,      // join the download in flight there
  kPeer,      // fetch from the peers named in the decision
  kUpstream,  // fetch from the hub (or HF_ENDPOINT)
};

std::string_view ModelSourceName(ModelSource source);  // "local", "join", "peer", "upstream"

struct HostState {
  std::string id;        // unique among the hosts
  std::string gpu_type;  // e.g. "A100"; compared as a plain string
  uint32_t gpus_free = 0;

  ModelState model = ModelState::kMissing;
  uint64_t remaining_bytes = 0;  // kDownloading: bytes the download still has to fetch
  double download_rate = 0;      // kDownloading: bytes/s measured so far; 0 = not yet known
  uint64_t missing_bytes = 0;    // kMissing: bytes of the commit the host lacks

  double peer_bandwidth = 0;      // bytes/s this host gets from peers
  double upstream_bandwidth = 0;  // bytes/s this host gets from the upstream hub

  uint64_t capacity = 0;        // the cache's byte budget
  uint64_t used_bytes = 0;      // on disk now
  uint64_t reserved_bytes = 0;  // promised to downloads in flight
  uint64_t freeable_bytes = 0;  // what eviction could free (unpinned, not partial snapshots)

  double queue_wait_seconds = 0;  // expected wait before a new worker can start there
  double image_seconds = 0;       // to make the worker's image present there (0: it has it)
  uint32_t running_workers = 0;   // for spreading ties
};

enum class PlacementPolicy { kTimeToReady, kLeastLoaded, kRandom };

// "ttr", "least-loaded", "random"; ParsePlacementPolicy is InvalidArgument for anything else.
std::string_view PlacementPolicyName(PlacementPolicy policy);
StatusOr<PlacementPolicy> ParsePlacementPolicy(std::string_view name);

struct PlacementRequest {
  std::string gpu_type;      // "" = any type
  uint32_t gpus = 1;         // GPUs the worker needs
  uint64_t model_bytes = 0;  // size of the model commit, for messages only; 0 = unknown
  bool allow_peers = true;
  PlacementPolicy policy = PlacementPolicy::kTimeToReady;
  uint64_t random_seed = 0;  // kRandom only
};

struct Placement {
  std::string host_id;
  double expected_seconds = 0;  // download + queue wait
  ModelSource source = ModelSource::kLocal;
  std::vector<std::string> peers;  // host ids to fetch from, best first, at most kMaxPeers
  std::string reason;              // one line for the caller's logs
};

inline constexpr size_t kMaxPeers = 3;
inline constexpr double kTieSeconds = 0.001;

// What a host's agent measured (issue 17 "learned bandwidth"): the rates of its finished
// downloads from the upstream and from peers (0 = not measured yet) and the bytes its downloads in
// flight of other commits still have to fetch.
struct MeasuredHost {
  double upstream_bytes_per_second = 0;
  double peer_bytes_per_second = 0;
  uint64_t bytes_queued = 0;
};

// Sets `h`'s bandwidths from what its agent measured, the defaults where nothing was measured
// yet, and its queue wait: the downloads already in flight there share its link, so a new one
// waits bytes_queued / upstream bandwidth (added to whatever wait `h` had).
void ApplyMeasured(HostState& h, const MeasuredHost& m, double default_upstream,
                   double default_peer);

// Chooses the host for a new worker. Pure and deterministic; safe to call from any thread.
StatusOr<Placement> PlaceWorker(const std::vector<HostState>& hosts,
                                const PlacementRequest& request);

}  // namespace mc::scheduler
