// Cached replicas (issue 17, docs/controller.md "Cached replicas"): the controller keeps the
// commit of each endpoint complete on hosts that need no worker to hold it.
//
// - An endpoint with cachedReplicas N > 0 keeps its commit complete on at least N live hosts of its
//   GPU type (and of its kind: containers for an image endpoint, processes for a command one),
//   even at zero workers. The copies are prefetched (the agent's ensure) as soon as the endpoint
//   exists or its commit changes, and pinned on the agent with the owner "fleet"
//   (mc/agent/pins.h kFleetPinOwner), which the agent never evicts.
// - Every endpoint, N = 0 too, keeps the fleet's last copy of its commit: one live host holding it
//   complete is pinned "fleet" (nothing is downloaded for that).
// - A replica host that stops sending heartbeats (lost) no longer counts: another host gets a copy.
// - While an endpoint's workers on an old commit are replaced (rollout.h), the hosts they run on
//   get the new commit too.
// - A fleet pin that no endpoint needs any more (its commit changed, the endpoint went, a lost
//   host came back and made one too many) is released.
//
// PlanReplicas is the pure decision (no I/O, tested alone); ReplicaKeeper runs it on its own
// thread every `interval` against the fleet's hosts and the store's endpoints, and sends the pins,
// ensures and releases to the agents (through Fleet::AgentRequest).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "controller/fleet.h"
#include "controller/store.h"
#include "mc/common/clock.h"
#include "mc/common/secret_box.h"

namespace mc::controller {

// The pin owner of the controller's copies on the agents (the agent's kFleetPinOwner,
// mc/agent/pins.h; the controller does not depend on the agent's code).
inline constexpr char kFleetPinOwner[] = "fleet";

// The most cachedReplicas an endpoint may ask for.
inline constexpr int kMaxCachedReplicas = 64;

// What the plan needs of one endpoint.
struct ReplicaWant {
  std::string endpoint_id;
  std::string repo, commit;  // the base model (the copy that is kept)
  std::string gpu_type;      // "" = any
  bool containers = false;   // an image endpoint: only hosts that run containers
  int replicas = 0;          // cachedReplicas; 0 keeps the last copy only
  // Hosts running workers of the endpoint on another commit (its commit changed): each gets the
  // new commit too, so that their replacements start as cache hits (rollout.h).
  std::vector<std::string> rollout_hosts;
};

struct ReplicaAction {
  enum class Kind {
    kAdd,      // pin "fleet" and ensure (prefetch)
    kEnsure,   // pinned but not complete, nothing in flight: ensure again
    kRelease,  // unpin "fleet"
  };
  Kind kind = Kind::kAdd;
  std::string host_id, repo, commit;
  std::string endpoint_id;  // the endpoint it is for (kAdd, kEnsure)
  bool operator==(const ReplicaAction&) const = default;
};

// A fleet pin: (host id, commit) → repo.
using FleetPins = std::map<std::pair<std::string, std::string>, std::string>;

// The pins, ensures and releases that bring the fleet to `wants`. `pins` are the fleet pins the
// controller knows of (its own record, and those the hosts' heartbeats show); `hosts` as
// Fleet::Hosts() (with lost and schedule). Lost hosts are neither counted nor chosen, and
// nothing is released on them (they cannot be reached; their pins are released once they are
// back, if they are then one too many). New copies go first to hosts that hold the commit
// complete, then to those downloading it, then to those with the most room (free + freeable
// bytes), then by id; draining hosts are not chosen.
std::vector<ReplicaAction> PlanReplicas(const std::vector<ReplicaWant>& wants,
                                        const std::vector<HostView>& hosts, const FleetPins& pins);

// The wants of the store's endpoints.
std::vector<ReplicaWant> ReplicaWants(const std::vector<EndpointRecord>& endpoints);

// The fleet pins the hosts' heartbeats show (live and lost hosts).
FleetPins HeartbeatPins(const std::vector<HostView>& hosts);

struct ReplicaOptions {
  std::chrono::milliseconds interval{1'000};
  // A kept copy that is not complete and not downloading is ensured again after this long.
  std::chrono::milliseconds ensure_retry{10'000};
  std::chrono::milliseconds request_timeout{10'000};
};

class ReplicaKeeper {
 public:
  // `secrets` opens the endpoints' tokens for the prefetches of gated models.
  ReplicaKeeper(ControllerStore& store, Fleet& fleet, Clock& clock,
                std::shared_ptr<const SecretBox> secrets, ReplicaOptions options);
  ~ReplicaKeeper();  // Stop()
  void Start();
  void Stop();
  // One pass (the thread's body; tests may call it).
  void Pass();

 private:
  void Apply(const ReplicaAction& a, const std::map<std::string, EndpointRecord>& endpoints,
             const std::vector<HostView>& hosts);

  ControllerStore& store_;
  Fleet& fleet_;
  Clock& clock_;
  std::shared_ptr<const SecretBox> secrets_;
  const ReplicaOptions options_;
  // The pins this controller set (known before a heartbeat shows them) and when each copy was
  // last ensured (monotonic ms).
  FleetPins pinned_;
  std::map<std::pair<std::string, std::string>, int64_t> ensured_at_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace mc::controller
