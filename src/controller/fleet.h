// Fleet: the hosts (agents) and the workers the controller runs on them.
//
// Hosts register and heartbeat with their inventory document (the agent's GET /v1/inventory).
// Each tick the decision pass (fleet_decide.h: scheduler::DecideScale per endpoint, then
// scheduler::PlaceWorker for each start: minimum expected time-to-ready over hosts with free GPU
// slots of the right type and room for the model) says which workers to stop and where to
// start new ones; a start is sent to that host's agent as POST /v1/workers with the Runpod worker
// variables, through AgentClient on the ActionExecutor (never on the loop thread). The
// agent ensures the model first (peers that hold it are passed along) and execs the worker only
// when it is complete.
//
// Phases and the ledger: initializing (placed, model downloading: not billed) → starting
// (process exec'd: billing starts) → idle / running (first job-take; running while it holds
// jobs) → stopping → stopped (process gone: billing ends), or failed. One ledger row per phase.
// A cold start records queue (oldest job's wait before placement), download (placed → exec'd)
// and start (exec'd → first job-take) durations; download's two parallel parts, the image pull and
// the model download, come from the agent's worker document.
//
// Image workers: an endpoint with an image is placed only on hosts whose agent runs containers
// (one without, only on hosts that run processes); a host lacking the image counts its estimated
// pull time in time-to-ready (the pull overlaps the model download).
//
// A watcher thread per worker long-polls its agent for the state changes. A worker that exits,
// or whose host stops sending heartbeats, is stopped and its jobs are requeued.
//
// Crash loops: a worker that ends before it becomes ready (exits or fails while initializing or
// starting), and a start the agent refuses, count as failed placements of the endpoint: its next
// placement backs off (placement_backoff.h: 1 s doubling to 5 min, one worker at a time, reset
// by a worker's first job-take or a change to the endpoint). Backoff() shows why: the exit code
// and the last lines of the worker's log, as its agent reported them, with the secrets the
// controller gave the worker redacted.
//
// Gated and private models: before a worker of an endpoint is placed, the endpoint's own token
// must have been accepted by the upstream for that repo within the last `entitlement_ttl`.
//
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "controller/action_executor.h"
#include "controller/agent_client.h"
#include "controller/entitlements.h"
#include "controller/jobs.h"
#include "controller/placement_backoff.h"
#include "controller/rollout.h"
#include "controller/store.h"
#include "controller/worker_phase.h"
#include "mc/common/clock.h"
#include "mc/common/secret_box.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"
#include "mc/scheduler/placement.h"

namespace mc::controller {

struct FleetOptions {
  std::string public_url;  // how workers reach the controller (webhook URLs)
  hub::Endpoint upstream = hub::Endpoint::Parse(hub::kDefaultEndpoint).value();
  std::optional<hub::Secret> agent_api_key;  // sent to agents
  // Opens the endpoints' sealed secrets (HF token, secret env) where they are used. Required.
  std::shared_ptr<const SecretBox> secrets;
  // HTTPS to agents and the upstream's metadata: authorities to trust (empty: the system's).
  std::string ca_file;
  std::chrono::milliseconds ping_interval{10'000};  // RUNPOD_PING_INTERVAL given to workers
  std::chrono::milliseconds host_timeout{30'000};   // no heartbeat for this long: host lost
  std::chrono::milliseconds stop_grace{10'000};
  // A worker still "running" this long after its last job was taken from it (execution timeout,
  // TTL, cancel: the job-stop channel told it) without asking for more work is stopped.
  std::chrono::milliseconds job_stop_grace{30'000};
  std::chrono::milliseconds entitlement_ttl{600'000};
  // The upstream unreachable: a gated or private repo's last successful check stays valid this
  // long (entitlements.h; public repos pass whatever its age).
  std::chrono::milliseconds entitlement_grace{24LL * 3'600'000};
  // Upstream tree listings fetched per autoscaler pass to learn which blobs other revisions of a
  // model share with an endpoint's commit (placement counts them as present).
  int tree_fetches_per_pass = 4;
  double upstream_bytes_per_second = 100e6;  // placement estimates before any measurement
  double peer_bytes_per_second = 1e9;
  BackoffPolicy placement_backoff;  // after workers that fail before they are ready
  double registry_bytes_per_second = 100e6;  // image pulls, for placement
  uint64_t unknown_image_bytes = 1'000'000'000;  // an image no host has pulled yet, for placement
  scheduler::PlacementPolicy placement = scheduler::PlacementPolicy::kTimeToReady;
  // The agents' API (null: HTTP, trusting ca_file); tests pass a fake (fake_agent_client.h).
  std::shared_ptr<AgentClient> agents;
  // Agent calls (start, stop) in flight per host at once; the rest of a host's wait in order.
  int agent_calls_per_host = 2;
  // The entitlement check run on the executor (null: CheckEntitlement, against `upstream`);
  // tests pass their own so that no socket is opened.
  std::function<Status(const EndpointRecord&)> check_entitlement;
  // Called (from an executor thread, no lock held) when an action's result may let the loop do
  // more now (an entitlement verdict, a tree listing): the controller runs a pass at once.
  std::function<void()> wake;
  // The leadership epoch (leadership.h) sent with every request to an agent (header
  // X-Modelcache-Epoch: the agent refuses an older one) and written on worker rows. Empty or 0:
  // not fenced (SQLite's one controller).
  std::function<int64_t()> epoch;
};

struct HostView {
  std::string id;
  std::string url;
  std::string gpu_type;
  int gpus_total = 0;
  int gpus_free = 0;
  uint64_t capacity = 0, used = 0, reserved = 0, freeable = 0;
  uint64_t high_watermark = 0, low_watermark = 0;  // bytes; eviction starts above high
  struct Snapshot {
    std::string model, commit;
    uint64_t size = 0;
    bool complete = false;
    std::vector<std::string> pinned_by;  // pin owners: "operator", "worker:<id>"
    bool pinned() const { return !pinned_by.empty(); }
    int files = 0;
    std::string last_use;  // ISO 8601, as the agent sends it
  };
  std::vector<Snapshot> snapshots;
  struct Download {
    std::string model, commit;
    uint64_t done = 0, total = 0;
    double rate = 0;
  };
  std::vector<Download> downloads;
  // The worker runtime (inventory "runtime"): containers (podman, docker) take only image
  // workers, processes only command workers.
  std::string runtime = "process";
  bool containers = false;
  struct Image {
    std::string reference, digest;  // reference as ImageRef::str() normalizes it
    uint64_t size = 0;
    bool pulling = false;           // a pull in flight
    uint64_t done = 0, total = 0;   // its bytes
  };
  std::vector<Image> images;  // inventory "images": items, then pulls
  // Learned by the agent from its finished downloads (bytes/s); 0 = not measured yet.
  double upstream_rate = 0, peer_rate = 0;
  int64_t last_seen_ms = 0;
  bool lost = false;
  bool enrolled = false;  // an operator enrolled it (modelcache hosts enroll)
  std::string schedule;   // "", "cordoned" (no new workers) or "draining" (and idle ones stop)
};

// A blob of a model commit (from its tree listing), and a commit's blobs: what placement counts
// as present on a host that holds another revision sharing them.
struct ModelBlob {
  std::string etag;
  uint64_t size = 0;
};
struct CommitFiles {
  std::string model;
  std::vector<ModelBlob> blobs;  // sorted by etag, distinct
  uint64_t bytes = 0;            // their sizes' sum
};

struct ColdStart {
  std::string worker_id;
  bool cache_hit = false;
  int64_t queue_ms = 0, download_ms = 0, start_ms = 0, total_ms = 0;
  // The parallel parts of download_ms (the unbilled initializing phase), as the agent measured
  // them: the image made present, the models downloaded. Unknown: nullopt.
  std::optional<int64_t> image_part_ms, download_part_ms;
};

// An endpoint whose placements back off, and why (GET /v1/endpoints/{id}, "placementBackoff").
struct BackoffView {
  int failures = 0;                  // in a row, since the last ready worker
  int64_t delay_ms = 0;              // the current wait
  int64_t retry_ms = 0;              // wall time: no placement before
  PlacementFailure last;
};

// How a worker ended, as its agent said (kept in memory while the controller runs).
struct WorkerExit {
  std::optional<int> exit_code;
  std::optional<int> signal;
};

class Fleet {
 public:
  Fleet(ControllerStore& store, JobBoard& jobs, Clock& clock, FleetOptions options);
  ~Fleet();  // joins watcher threads

  // Loads hosts and live workers after a restart (their watchers restart).
  Status Load();
  // A host's register or heartbeat body. InvalidArgument for a malformed document.
  Status Heartbeat(const std::string& body);
  std::vector<HostView> Hosts() const;

  // Model facts for placement: the blobs (etag, size) of a commit of `model` (the repo as hosts
  // name it, e.g. "org/name"), from its tree listing. Trees of a commit never change.
  using Blob = ModelBlob;
  void NoteModelFiles(const std::string& model, const std::string& commit, std::vector<Blob> blobs);
  // Enrolled hosts. The controller authenticates to a host's agent with that host's own
  // credential (its enrollment's), else with agent_api_key (hosts registered before enrollment
  // existed). SetHostCredential records a credential (enroll, a verified heartbeat);
  // SetSchedule a host's scheduling state ("", "cordoned", "draining"; the caller stores it).
  void SetHostCredential(const std::string& host_id, const hub::Secret& credential);
  void SetSchedule(const std::string& host_id, const std::string& schedule);
  void ForgetHost(const std::string& host_id);
  // Sends `method path` with a JSON `body` to a host's agent (its /v1 API, with the agent key):
  // the status code and body it answered. NotFound for an unknown host, Unavailable when the
  // agent cannot be reached.
  StatusOr<std::pair<int, std::string>> AgentRequest(const std::string& host_id,
                                                     const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body);
  // Checks (cached) that `token` gives access to the repo's files at `commit`; with the
  // upstream unreachable, the origin-outage rules of entitlements.h. Blocking: the loop never
  // calls it; it reads the verdict cached by EntitlementLocked, which queues this on the executor.
  Status CheckEntitlement(const EndpointRecord& e);
  // The latest entitlement check found the upstream unreachable: placement takes only hosts
  // that hold the commit complete.
  bool UpstreamDown() const;
  // Blocks until no agent or upstream action is queued or running (tests).
  void DrainActions();

  // The autoscaler and health pass over every endpoint.
  void Tick(const std::vector<EndpointRecord>& endpoints);

  // Worker protocol hooks. Authenticate checks the worker's raw key; NotFound / Unauthenticated.
  StatusOr<WorkerRecord> Authenticate(const std::string& endpoint_id, const std::string& worker_id,
                                      const std::string& authorization) const;
  void OnTake(const std::string& worker_id, size_t jobs_taken);
  void OnJobDone(const std::string& worker_id, bool stop_pod);
  // A ping; `unhealthy` when the worker says so (?status=unhealthy), until a healthy ping.
  void OnPing(const std::string& worker_id, bool unhealthy);
  // For /health: live workers of the endpoint that say they are unhealthy, and workers the
  // autoscaler wanted in its last pass but could not place (no host with room: Runpod's
  // "throttled").
  int Unhealthy(const std::string& endpoint_id) const;
  int Throttled(const std::string& endpoint_id) const;
  // True while the worker may be given jobs (not stopping or ended).
  bool AcceptsJobs(const std::string& worker_id) const;
  // True unless the worker has ended (stopped or failed) or is unknown.
  bool IsLive(const std::string& worker_id) const;

  std::vector<WorkerRecord> Workers(const std::string& endpoint_id) const;
  std::vector<ColdStart> ColdStarts(const std::string& endpoint_id) const;
  // The exits of the endpoint's ended workers (all endpoints' for ""), by worker id.
  std::map<std::string, WorkerExit> Exits(const std::string& endpoint_id) const;
  // Set while the endpoint's placements back off after failed workers.
  std::optional<BackoffView> Backoff(const std::string& endpoint_id) const;
  // The endpoint's latest rollout (its workers moved to a new commit, rollout.h), if any.
  std::optional<RolloutView> Rollout(const std::string& endpoint_id) const;
  // Drops the workers that ended (stopped or failed) before `cutoff_ms` from memory, as history
  // retention deletes them from the store (retention.h).
  void ForgetEndedBefore(int64_t cutoff_ms);
  // Stops every worker of an endpoint (deleted or scaled to zero by an update).
  void StopEndpoint(const std::string& endpoint_id);
  // Stops watchers (shutdown); workers keep running on their hosts.
  void Shutdown();

 private:
  struct Live;
  // Records the worker (initializing) and queues its start on its host's lane of the executor;
  // FinishStart applies the agent's answer.
  Status StartWorker(const EndpointRecord& e, const HostView& host,
                     const std::vector<std::string>& peers, int64_t queue_ms, bool hit);
  void FinishStart(const std::shared_ptr<Live>& live, const std::string& host_id,
                   int64_t endpoint_updated_ms, bool hit, const StatusOr<AgentReply>& res);
  // Marks the worker stopping and queues the agent's DELETE on its host's lane.
  void StopWorker(const std::string& worker_id, const std::string& reason);
  void SubmitStopLocked(const Live& w);
  // Queues the endpoint's entitlement check on the executor's "upstream" lane (one per endpoint
  // at a time); its verdict is cached in entitlements_ and the loop woken. Caller holds mu_.
  void QueueEntitlementCheckLocked(const EndpointRecord& e, int64_t now);
  std::set<std::string> entitlement_checks_;  // endpoints whose check is in flight
  std::set<std::string> tree_fetches_;        // endpoints whose tree listings are in flight
  void Wake();
  AgentTarget TargetLocked(const std::string& host_id, const std::string& url) const;
  std::optional<hub::Secret> AgentKeyLocked(const std::string& host_id) const;
  // URLs of the hosts but `except_host` that fetch `commit` now (issue 17 swarm). mu_ held.
  std::vector<std::string> SwarmLocked(const std::string& commit,
                                       const std::string& except_host) const;
  void Watch(std::string worker_id);
  // What Watch does with the agent's document of the worker: "running" (the process started:
  // starting, billed) and "exited" / "failed" (its phase, message and exit). Caller holds mu_.
  void WorkerRunningLocked(Live& w, const nlohmann::json& doc);
  void WorkerEndedLocked(Live& w, const std::string& state, const nlohmann::json& doc);
  void SetPhaseLocked(Live& w, WorkerPhase phase);
  void SaveLocked(const WorkerRecord& w);
  int64_t NowMs() const;
  std::optional<HostView> HostLocked(const std::string& id) const;
  std::optional<hub::Secret> AgentKey(const std::string& host_id) const;
  std::map<std::string, hub::Secret> host_keys_;     // host id → its credential
  std::map<std::string, std::string> schedules_;     // host id → "cordoned" / "draining"

  ControllerStore& store_;
  JobBoard& jobs_;
  Clock& clock_;
  const FleetOptions options_;

  mutable std::mutex mu_;
  std::condition_variable stopping_cv_;
  bool stopping_ = false;
  std::map<std::string, HostView> hosts_;
  std::map<std::string, CommitFiles> model_files_;  // by commit
  std::map<std::string, int64_t> tree_failed_at_;   // commit → when its listing last failed
  std::map<std::string, int64_t> jobless_since_;    // running workers holding no job, since
  std::map<std::string, int> throttled_;            // endpoint → starts not placed last pass
  // Queues the listings of `commits` for `e` on the "upstream" lane (one batch per endpoint at a
  // time: its placement waits for them). Caller holds mu_.
  void QueueTreeFetchLocked(const EndpointRecord& e, const std::vector<std::string>& commits);
  void FetchTrees(const EndpointRecord& e, const std::vector<std::string>& commits);
  std::map<std::string, std::shared_ptr<Live>> workers_;  // live and recently ended
  EntitlementCache entitlements_;                         // by endpoint (entitlements.h)
  // One watcher thread per worker; finished ones are joined when the next one starts.
  struct Watcher {
    std::shared_ptr<std::atomic<bool>> done;
    std::thread thread;
  };
  void StartWatcherLocked(const std::string& worker_id);
  std::vector<Watcher> watchers_;
  std::shared_ptr<AgentClient> agents_;
  // Slow actions off the loop (agent calls per host, upstream calls); Shutdown() joins them.
  std::unique_ptr<ActionExecutor> executor_;

  // Placement back-off per endpoint (the end of fleet.cc), with the endpoint's updated_ms as
  // its failed workers were placed: a change to the endpoint (a fixed command) ends it.
  struct EndpointBackoff {
    PlacementBackoff backoff;
    int64_t endpoint_updated_ms = 0;
  };
  std::map<std::string, EndpointBackoff> backoff_;
  // A worker ended: a failed placement if it had not become ready and nobody stopped it.
  void NoteWorkerEndLocked(Live& w, WorkerPhase phase_before, const nlohmann::json& doc);
  void NoteFailureLocked(const std::string& endpoint_id, int64_t endpoint_updated_ms,
                         PlacementFailure failure);
  // Rollouts (rollout.{h,cc}): one step for the endpoint (drains, stops of drained idle workers);
  // returns the workers to start for it (0 or 1). Call without mu_.
  uint32_t RolloutPass(const EndpointRecord& e);
  struct RolloutState {
    RolloutView view;
    int surge_target = 0;
  };
  std::map<std::string, RolloutState> rollouts_;  // by endpoint
  std::set<std::string> draining_;  // workers a rollout replaced: no new jobs, stopped when idle
};

}  // namespace mc::controller
