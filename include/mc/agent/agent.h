// Agent: the daemon that owns one host's model cache, its disk budget and its worker processes
// (design.md §2-§4; the HTTP API and the operator's view are in docs/agent.md).
//
// One HTTP server answers, on one port:
//   /health, /metrics (Prometheus text)          open
//   /v1/...  inventory, ensure, pins, evict, workers, downloads   API key when one is set
//   every other GET/HEAD: the hub mirror routes over the cache (read-only), so that other hosts'
//   agents (and `modelcache pull --peer`) fetch blobs from this one     the fleet's peer key
//
// Create() opens the state dir (SQLite), reconciles the inventory with a scan of the cache,
// sets up the worker runtime (options.runtime: containers through podman or docker, or
// processes), re-adopts the workers an earlier run left running (and stops containers of ours
// that no worker owns) and restarts interrupted downloads that need
// no token. Start() binds and serves, and starts the maintenance loop (watermark evictions) and,
// with a controller URL, the controller link (register, then heartbeats). Stop() is the graceful
// SIGTERM path: it stops serving, cancels downloads (their bytes stay for the resume) and leaves
// worker processes running for the next agent to re-adopt.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mc/agent/runtime_options.h"
#include "mc/common/clock.h"
#include "mc/common/status.h"
#include "mc/downloader/pull.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"
#include "mc/net/edge_limits.h"

namespace mc::agent {

struct AgentOptions {
  std::filesystem::path cache_dir;  // the hub cache (created if missing)
  std::filesystem::path state_dir;  // ours: state.db, resume records, worker logs
  uint64_t capacity = 0;            // byte budget of the cache (see ResolveCapacity)
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  std::string eviction = "lru";  // lru, gdsf or s3fifo (mc/scheduler/eviction.h)
  int gpus = 0;
  std::string gpu_type = "none";
  std::string listen = "127.0.0.1:0";
  std::optional<std::string> controller_url;
  std::string host_id;                     // empty = the host name
  std::optional<std::string> public_url;   // how others reach us; default base_url()
  hub::Endpoint upstream = hub::Endpoint::Parse(hub::kDefaultEndpoint).value();
  // Required on /v1. Unset: the key in <state_dir>/api-key, made there (0600) on first start,
  // so an agent is never open to whoever reaches its port.
  std::optional<hub::Secret> api_key;
  // Host names (besides addresses, localhost, host_id and public_url's host) that requests to
  // /v1 may carry in Host and Origin; others are refused (DNS rebinding, cross-site requests).
  std::vector<std::string> allowed_hosts;
  // Sent to the controller as "Authorization: Bearer"; unset = api_key. The host's credential
  // from `modelcache hosts enroll`: the controller presents it back on /v1, where it is accepted
  // beside api_key.
  std::optional<hub::Secret> controller_api_key;
  // The fleet's peer key (--peer-key-file): required on our mirror routes (besides api_key) and
  // sent to the peers we fetch from. Unset: the one the controller hands us when we register
  // and heartbeat; an agent with neither serves its mirror routes to api_key holders only.
  std::optional<hub::Secret> peer_key;
  downloader::FetchTuning tuning;
  std::chrono::milliseconds heartbeat_interval{5'000};
  std::chrono::milliseconds maintenance_interval{30'000};
  std::chrono::seconds ref_ttl{300};
  uint64_t log_cap_bytes = 64ull << 20;    // per worker log file
  std::chrono::milliseconds stop_grace{10'000};  // default SIGTERM → SIGKILL wait
  RuntimeOptions runtime;                  // containers or processes (default: processes)
  size_t max_body_bytes = 1 << 20;
  net::EdgeLimits edge;  // per-client connections, read deadlines, JSON depth
  // HTTPS on our port (PEM certificate chain and key; both or neither), and the authorities to
  // trust when we call the controller and peers (empty: the system's). docs/security.md.
  std::filesystem::path tls_cert_file, tls_key_file;
  std::string ca_file;
  Clock* clock = &Clock::Real();
  std::function<void(std::chrono::milliseconds)> sleep;  // download retries; tests inject
};

// "800GB", "1.5TiB", "500000000" (bytes) or "50%" / "0.5" (that fraction of the size of the
// filesystem holding `dir`, which must exist). InvalidArgument otherwise.
StatusOr<uint64_t> ResolveCapacity(std::string_view text, const std::filesystem::path& dir);

class Agent {
 public:
  static StatusOr<std::unique_ptr<Agent>> Create(AgentOptions options);
  virtual ~Agent() = default;
  virtual Status Start() = 0;
  virtual uint16_t port() const = 0;
  virtual std::string base_url() const = 0;
  virtual void Stop() = 0;
  // Stops every live worker (SIGTERM to its group, SIGKILL after `grace`) and waits until each
  // has ended. For owners of their workers (`modelcache up`, tests); Stop() leaves them running.
  virtual void StopWorkers(std::chrono::milliseconds grace) = 0;
};

}  // namespace mc::agent
