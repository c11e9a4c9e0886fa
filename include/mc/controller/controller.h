// Controller: Runpod-compatible serverless endpoints with cached models (docs/controller.md).
//
// One HTTP server:
//   /health                                    open
//   /v1/...   management: endpoints, hosts (agents register and heartbeat here), workers,
//             ledger, cold starts, API keys                       API key
//   /v2/{endpoint}/run|runsync|status|status-sync|stream|cancel|retry|purge-queue|health
//             the Runpod job API                                  API key
//   /v2/{endpoint}/job-take|job-take-batch|job-done|job-stream|job-stop|ping/{worker}/...
//             the Runpod worker protocol                          the worker's own key
// Keys go in "Authorization: Bearer <key>" or bare, as Runpod accepts both.
//
// State lives in a ControllerStore (SQLite or PostgreSQL); Start() loads it, so a restart loses no
// queued job, result, endpoint, ledger row or webhook delivery (those left are sent again, at least
// once). A loop (every `tick`) runs TTLs and timeouts, the autoscaler and placement.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/clock.h"
#include "mc/common/status.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"
#include "mc/net/edge_limits.h"

namespace mc::controller {

struct ControllerOptions {
  std::string listen = "127.0.0.1:8080";
  std::filesystem::path db_path;               // the SQLite file (its directory must exist)
  // Or the store as --db names it ("sqlite:PATH", "postgresql://..."); used when not empty.
  std::string db;
  std::optional<hub::Secret> db_password;      // PostgreSQL's, from a file (never argv)
  // The key that seals the secrets the store holds (HF tokens, secret env, host credentials):
  // its own file, 0600, created on first use. Default: controller-secret.key beside a SQLite
  // file; required with PostgreSQL (every controller sharing the database needs the same file).
  std::filesystem::path secret_key_file;
  // The fleet's peer key: handed to every enrolled agent in the answer to its register and
  // heartbeats; agents require it on their mirror (peer) routes and send it to their peers
  // (docs/security.md). Unset: derived from the secret key (the same on every controller sharing
  // that file, stored nowhere). Set it (--peer-key-file) to rotate it without a new secret key.
  std::optional<hub::Secret> peer_key;
  std::optional<std::string> public_url;       // how workers reach us; default base_url()
  // Several controllers on one PostgreSQL database (docs/controller.md): how the others reach
  // this one when it leads (default base_url()), and how often a follower tries to take the
  // lead and the leader checks it still has it.
  std::optional<std::string> advertise_url;
  std::chrono::milliseconds leader_retry{1000};
  hub::Endpoint upstream = hub::Endpoint::Parse(hub::kDefaultEndpoint).value();
  std::optional<hub::Secret> agent_api_key;    // sent to agents' /v1
  std::chrono::milliseconds tick{250};
  std::string placement = "ttr";  // ttr, least-loaded or random (mc/scheduler/placement.h)
  std::chrono::milliseconds take_hold{20'000};      // job-take long-poll (SDK gives up at 90 s)
  std::chrono::milliseconds ping_interval{10'000};  // RUNPOD_PING_INTERVAL
  std::chrono::milliseconds runsync_wait{90'000};   // default /runsync hold
  std::chrono::milliseconds host_timeout{30'000};
  // The upstream unreachable: a gated or private model's last accepted token check stays valid
  // this long (--entitlement-grace; docs/controller.md, "Origin outage").
  std::chrono::milliseconds entitlement_grace{24LL * 3'600'000};
  std::chrono::milliseconds entitlement_ttl{600'000};  // an accepted check is trusted this long
  std::chrono::milliseconds stop_grace{10'000};
  // A worker that keeps running this long after its job was stopped (timeout, TTL, cancel) is
  // stopped.
  std::chrono::milliseconds job_stop_grace{30'000};
  // A job a worker has held this long but does not list in its pings is requeued.
  std::chrono::milliseconds requeue_unlisted_after{30'000};
  // Request body caps (docs/security.md): management routes; /run and /runsync (Runpod's 10 MB
  // and 20 MB), a worker's job-done and job-stream take the /runsync cap. A larger body gets 413
  // before it is read.
  size_t max_body_bytes = 1u << 20;
  size_t max_run_body_bytes = 10'000'000;
  size_t max_runsync_body_bytes = 20'000'000;
  // Per-client connections, read deadlines, JSON depth (mc/net/edge_limits.h).
  net::EdgeLimits edge;
  // HTTPS on our port (PEM certificate chain and key; both or neither), and the authorities to
  // trust when we call agents (empty: the system's). docs/security.md.
  std::filesystem::path tls_cert_file, tls_key_file;
  std::string ca_file;
  // A job's webhook gets its final status object; a try not answered 200 is repeated, this many
  // tries in all, this far apart (Runpod: 3 tries, 10 s apart). Each try waits at most
  // webhook_timeout.
  int webhook_tries = 3;
  std::chrono::milliseconds webhook_retry_delay{10'000};
  std::chrono::milliseconds webhook_timeout{10'000};
  // History retention: workers that ended and ledger rows that closed longer ago than this are
  // deleted (checked every history_prune_interval); the ledger's totals, which /metrics
  // reports, keep their time. Zero keeps them forever.
  std::chrono::milliseconds history_retention{std::chrono::hours(24 * 30)};
  std::chrono::milliseconds history_prune_interval{std::chrono::hours(1)};
  // Webhook targets (docs/security.md): loopback, private and link-local addresses are refused
  // (at submit for literals, at send time after DNS) unless allowed here, all or by host name.
  bool webhook_allow_private = false;
  std::vector<std::string> webhook_allowed_hosts;
  Clock* clock = &Clock::Real();
};

class Controller {
 public:
  static StatusOr<std::unique_ptr<Controller>> Create(ControllerOptions options);
  virtual ~Controller() = default;
  virtual Status Start() = 0;
  virtual uint16_t port() const = 0;
  virtual std::string base_url() const = 0;
  // Stops serving and joins every thread; a webhook try in flight is finished first (at most
  // webhook_timeout), and deliveries not done stay in the store for the next Start().
  virtual void Stop() = 0;
  // Creates an API key named `name`; returns the key (shown once, stored hashed).
  virtual StatusOr<std::string> CreateApiKey(const std::string& name) = 0;
};

// The secret key file `options` means (secret_key_file, or the default beside a SQLite store).
// FailedPrecondition, saying what to pass, for a PostgreSQL store without one.
StatusOr<std::filesystem::path> SecretKeyFileFor(const ControllerOptions& options);

// Adds an API key to the controller database at `db_path` (the controller may be running) and
// returns it. For `modelcache keys create`.
StatusOr<std::string> AddApiKey(const std::filesystem::path& db_path, const std::string& name);
// The same for the store `db` names (ControllerOptions::db), for `tenant` with `role` (admin,
// member or readonly; docs/controller.md, Tenants and roles). InvalidArgument for a bad one.
StatusOr<std::string> AddApiKey(const std::string& db, const std::optional<hub::Secret>& password,
                                const std::string& name, const std::string& tenant = "default",
                                const std::string& role = "admin");
// Whether the store `db` names knows `key` (for `up`, whose data dir keeps its key in a file).
StatusOr<bool> HasApiKey(const std::string& db, const std::optional<hub::Secret>& password,
                         const hub::Secret& key);

}  // namespace mc::controller
