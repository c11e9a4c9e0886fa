// agent: runs mc::agent::Agent, the daemon that owns this host's cache, its disk budget and its
// worker processes. This file turns flags and the environment into AgentOptions, prints the one
// stdout line scripts wait for, and turns SIGTERM/SIGINT into Agent::Stop().
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "mc/agent/agent.h"
#include "mc/common/byte_count.h"
#include "mc/common/ids.h"
#include "mc/common/logging.h"
#include "mc/hub/hub_config.h"

namespace mc::cli {

StatusOr<agent::RuntimeKind> ParseRuntimeKind(const std::string& flag) {
  if (flag == "process") return agent::RuntimeKind::kProcess;
  if (flag == "podman" || flag == "auto") return agent::RuntimeKind::kPodman;
  if (flag == "docker") return agent::RuntimeKind::kDocker;
  return InvalidArgumentError("--runtime " + QuoteForMessage(flag) +
                              " must be podman, docker, process or auto");
}

// --runtime auto: podman when it runs a container here (with runc when the default OCI runtime
// cannot), else processes; podman and docker must work. Says on stderr which it is.
Status ResolveWorkerRuntime(const std::string& flag, agent::RuntimeOptions& r,
                            const std::string& who) {
  namespace fs = std::filesystem;
  if (r.kind == agent::RuntimeKind::kProcess) {
    std::cerr << who << ": workers run as processes on this host (--runtime process)" << std::endl;
    return Status::Ok();
  }
  StatusOr<std::string> probed = agent::ProbeRuntime(r);
  std::error_code ec;
  if (!probed.ok() && r.kind == agent::RuntimeKind::kPodman && r.oci_runtime.empty() &&
      (fs::exists("/usr/sbin/runc", ec) || fs::exists("/usr/bin/runc", ec))) {
    agent::RuntimeOptions with_runc = r;
    with_runc.oci_runtime = "runc";
    if (auto again = agent::ProbeRuntime(with_runc); again.ok()) {
      r = with_runc;
      probed = again;
    }
  }
  if (probed.ok()) {
    std::cerr << who + ": workers run as containers: " << *probed << std::endl;
    return Status::Ok();
  }
  if (flag == "auto") {
    std::cerr << who + ": workers run as processes on this host: "
              << probed.status().message() << std::endl;
    r.kind = agent::RuntimeKind::kProcess;
    return Status::Ok();
  }
  return FailedPreconditionError("--runtime " + flag + ": " + probed.status().message() +
                                 ". Fix the engine (try `podman run --rm busybox true` as this "
                                 "user), or pass --runtime process");
}

namespace {

namespace fs = std::filesystem;

struct AgentArgs {
  std::string cache_dir, state_dir, capacity, high_watermark = "90%", low_watermark = "80%";
  std::string eviction = "lru";
  std::string gpu_type = "none", listen = "127.0.0.1:8766", controller, host_id, upstream;
  std::string public_url, api_key_file, log_cap = "64MiB";
  std::vector<std::string> allowed_hosts;
  std::string host_credential_file;
  std::string peer_key_file;
  TlsArgs tls;
  double maintenance_seconds = 30, stop_grace_seconds = 10;
  std::string gpus = "0";
  std::string runtime = "auto", engine, oci_runtime, engine_root, network = "host";
  std::string cdi_kind = "nvidia.com/gpu", image_capacity;
  std::vector<std::string> insecure_registries, cdi_spec_dirs;
  int connections = 8;
  double heartbeat_seconds = 5;
};

// "90%" or "0.9" → 0.9, in (0, 1].
StatusOr<double> ParseWatermark(const std::string& text, const std::string& flag) {
  const bool percent = !text.empty() && text.back() == '%';
  const std::string number = percent ? text.substr(0, text.size() - 1) : text;
  char* end = nullptr;
  errno = 0;
  double value = number.empty() ? NAN : std::strtod(number.c_str(), &end);
  const bool parsed = !number.empty() && errno == 0 && end == number.c_str() + number.size() &&
                      std::isfinite(value) &&
                      number.find_first_not_of("0123456789.") == number.npos;
  if (parsed && percent) value /= 100.0;
  if (!parsed || value <= 0 || value > 1) {
    return InvalidArgumentError(flag + " " + QuoteForMessage(text) +
                                " must be a percentage like 90% or a fraction like 0.9 (above 0, "
                                "at most 100%)");
  }
  return value;
}

// --api-key-file (trailing newline and surrounding spaces trimmed), else $MODELCACHE_API_KEY.
StatusOr<std::optional<hub::Secret>> ResolveApiKey(const std::string& file, const hub::Env& env) {
  std::string key;
  if (!file.empty()) {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return ErrnoError(errno, "--api-key-file " + QuoteForMessage(file));
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && key.size() < (64u << 10)) {
      key.append(buf, n);
    }
    std::fclose(f);
  } else if (auto value = env.get("MODELCACHE_API_KEY")) {
    key = *value;
  }
  const size_t begin = key.find_first_not_of(" \t\r\n");
  const size_t end = key.find_last_not_of(" \t\r\n");
  key = begin == std::string::npos ? "" : key.substr(begin, end - begin + 1);
  if (key.empty()) {
    if (!file.empty()) {
      return InvalidArgumentError("--api-key-file " + QuoteForMessage(file) + " holds no key");
    }
    return std::optional<hub::Secret>();
  }
  return std::optional<hub::Secret>(hub::Secret(std::move(key)));
}

Status MakeRuntimeOptions(const AgentArgs& args, agent::RuntimeOptions& r) {
  MC_ASSIGN_OR_RETURN(r.kind, ParseRuntimeKind(args.runtime));
  r.engine = args.engine;
  r.oci_runtime = args.oci_runtime;
  r.engine_root = args.engine_root;
  r.network = args.network;
  r.insecure_registries = args.insecure_registries;
  if (!args.cdi_spec_dirs.empty()) {
    r.cdi_spec_dirs.assign(args.cdi_spec_dirs.begin(), args.cdi_spec_dirs.end());
  }
  r.cdi_kind = args.cdi_kind;
  if (r.cdi_kind.find('/') == std::string::npos || r.cdi_kind.find('=') != std::string::npos) {
    return InvalidArgumentError("--cdi-kind " + QuoteForMessage(r.cdi_kind) +
                                " must be vendor/class, like nvidia.com/gpu");
  }
  if (!args.image_capacity.empty()) {
    MC_ASSIGN_OR_RETURN(ByteCount cap, ByteCount::Parse(args.image_capacity), "--image-capacity");
    if (cap.bytes() == 0) return InvalidArgumentError("--image-capacity must be more than 0");
    r.image_capacity = cap.bytes();
  }
  return Status::Ok();
}

Status ResolveRuntime(const std::string& flag, agent::RuntimeOptions& r) {
  return ResolveWorkerRuntime(flag, r, "modelcache agent");
}

// --gpus auto: the CDI spec's GPUs, else nvidia-smi's; their model is the GPU type unless
// --gpu-type says otherwise.
void ResolveGpus(const AgentArgs& args, agent::AgentOptions& o) {
  if (args.gpus != "auto") return;
  const agent::HostGpus found = agent::DetectGpus(o.runtime);
  o.gpus = found.count;
  if (o.gpu_type == "none" && !found.type.empty()) o.gpu_type = found.type;
  std::cerr << "modelcache agent: --gpus auto: " << found.count << " GPUs ("
            << (found.type.empty() ? "model unknown" : found.type) << ") from " << found.source
            << std::endl;
}

StatusOr<agent::AgentOptions> MakeAgentOptions(const AgentArgs& args, const hub::Env& env) {
  agent::AgentOptions o;
  MC_ASSIGN_OR_RETURN(o.cache_dir, CacheDirOrDefault(args.cache_dir));
  o.state_dir = AgentStateDirOrDefault(args.state_dir, o.cache_dir);
  MC_ASSIGN_OR_RETURN(o.high_watermark, ParseWatermark(args.high_watermark, "--high-watermark"));
  MC_ASSIGN_OR_RETURN(o.low_watermark, ParseWatermark(args.low_watermark, "--low-watermark"));
  o.eviction = args.eviction;
  if (o.low_watermark > o.high_watermark) {
    return InvalidArgumentError("--low-watermark (" + args.low_watermark +
                                ") must not be above --high-watermark (" + args.high_watermark +
                                ")");
  }
  if (args.upstream.empty()) {
    MC_ASSIGN_OR_RETURN(o.upstream, hub::ResolveEndpoint(env));
  } else {
    MC_ASSIGN_OR_RETURN(o.upstream, hub::Endpoint::Parse(args.upstream), "--upstream");
  }
  if (!args.controller.empty()) {
    MC_ASSIGN_OR_RETURN(hub::Endpoint controller, hub::Endpoint::Parse(args.controller),
                        "--controller");
    o.controller_url = controller.url();
  }
  if (!args.public_url.empty()) {
    MC_ASSIGN_OR_RETURN(hub::Endpoint url, hub::Endpoint::Parse(args.public_url), "--public-url");
    o.public_url = url.url();
  }
  MC_ASSIGN_OR_RETURN(o.api_key, ResolveApiKey(args.api_key_file, env));
  if (!args.host_credential_file.empty()) {
    // The same file rules as the key's; there is no environment fallback.
    auto credential = ResolveApiKey(args.host_credential_file, hub::Env::FromMap({}));
    if (!credential.ok()) {
      return Status(credential.status().code(),
                    "--host-credential-file " + QuoteForMessage(args.host_credential_file) +
                        ": cannot read a credential from it");
    }
    o.controller_api_key = std::move(*credential);
  }
  if (!args.peer_key_file.empty()) {
    auto peer_key = ResolveApiKey(args.peer_key_file, hub::Env::FromMap({}));
    if (!peer_key.ok()) {
      return Status(peer_key.status().code(), "--peer-key-file " +
                                                  QuoteForMessage(args.peer_key_file) +
                                                  ": cannot read a key from it");
    }
    o.peer_key = std::move(*peer_key);
  }
  MC_RETURN_IF_ERROR(MakeRuntimeOptions(args, o.runtime));
  if (args.gpus != "auto") {
    char* end = nullptr;
    const long n = std::strtol(args.gpus.c_str(), &end, 10);
    if (args.gpus.empty() || *end != '\0' || n < 0 || n > 1024) {
      return InvalidArgumentError("--gpus " + QuoteForMessage(args.gpus) +
                                  " must be a number from 0 to 1024, or auto");
    }
    o.gpus = static_cast<int>(n);
  }
  o.gpu_type = args.gpu_type;
  o.listen = args.listen;
  o.host_id = args.host_id;
  o.allowed_hosts = args.allowed_hosts;
  o.tls_cert_file = args.tls.cert;
  o.tls_key_file = args.tls.key;
  o.ca_file = args.tls.ca;
  o.tuning.ca_file = args.tls.ca;
  o.tuning.connections = args.connections;
  o.heartbeat_interval = std::chrono::milliseconds(std::llround(args.heartbeat_seconds * 1000));
  o.maintenance_interval =
      std::chrono::milliseconds(std::llround(args.maintenance_seconds * 1000));
  o.stop_grace = std::chrono::milliseconds(std::llround(args.stop_grace_seconds * 1000));
  MC_ASSIGN_OR_RETURN(ByteCount log_cap, ByteCount::Parse(args.log_cap), "--log-cap");
  if (log_cap.bytes() < 4096) return InvalidArgumentError("--log-cap must be at least 4KiB");
  o.log_cap_bytes = log_cap.bytes();
  // A fraction of the disk is measured on the filesystem that will hold the cache.
  std::error_code ec;
  fs::create_directories(o.cache_dir, ec);
  if (ec) return ErrnoError(ec.value(), "create cache dir " + o.cache_dir.string());
  MC_ASSIGN_OR_RETURN(o.capacity, agent::ResolveCapacity(args.capacity, o.cache_dir), "--capacity");
  return o;
}

Status RunAgent(const AgentArgs& args) {
  MC_ASSIGN_OR_RETURN(agent::AgentOptions options, MakeAgentOptions(args, hub::Env::Real()));
  if (!options.api_key) {
    // Agent::Create makes one there (0600) if there is none yet.
    std::cerr << "modelcache agent: no --api-key-file or MODELCACHE_API_KEY: /v1 takes the key in "
              << (options.state_dir / "api-key").string() << std::endl;
  }
  MC_RETURN_IF_ERROR(ResolveRuntime(args.runtime, options.runtime));
  ResolveGpus(args, options);
  const sigset_t stop_signals = BlockStopSignals();  // before any agent thread starts

  const fs::path cache_dir = options.cache_dir, state_dir = options.state_dir;
  const std::string listen = options.listen;
  MC_ASSIGN_OR_RETURN(std::unique_ptr<agent::Agent> agent, agent::Agent::Create(std::move(options)),
                      "start the agent");
  Status started = agent->Start();
  if (started.code() == StatusCode::kUnavailable) {  // the only way binding fails
    return UnavailableError("cannot listen on " + listen +
                            ": the address is in use or not on this host; choose another --listen "
                            "port (127.0.0.1:0 picks a free one)");
  }
  MC_RETURN_IF_ERROR(started, "start the agent");
  std::cout << "agent listening on " << agent->base_url() << std::endl;
  std::cerr << "modelcache agent: cache " << cache_dir.string() << ", state " << state_dir.string()
            << ".\nTry: curl -X POST '" << agent->base_url()
            << "/v1/ensure?wait=600' -d '{\"model\": \"org/name\"}'\nStop with Ctrl-C or SIGTERM."
            << std::endl;

  WaitForStopSignal(stop_signals);  // a second signal exits at once
  std::cerr << "modelcache agent: stopping; downloads in flight resume at the next start, "
               "workers keep running"
            << std::endl;
  agent->Stop();
  return Status::Ok();
}

constexpr const char* kAgentDescription =
    "Run the host agent: the daemon that owns this host's model cache, its disk budget and its\n"
    "GPU workers. Over HTTP it downloads models on request into the cache (verified, resumable,\n"
    "one download per model however many ask), keeps the cache under --capacity by evicting the\n"
    "least recently used snapshots that no one pinned and no worker uses, runs workers as OCI\n"
    "containers through podman (the image pulled while the model downloads, only that model\n"
    "mounted, read-only, GPUs as CDI devices) or, for development, as processes, and serves its\n"
    "cache to other hosts like 'modelcache serve'. Prints 'agent listening on <url>' on stdout\n"
    "when ready.\n"
    "Example: modelcache agent --capacity 800GB --gpus auto --image-capacity 200GB";

constexpr const char* kAgentFooter =
    "The HTTP API (JSON in and out):\n"
    "  GET  /health, /metrics                  open, no key\n"
    "  POST /v1/ensure?wait=S                  {\"model\": \"org/name\", \"revision\": \"main\"}:\n"
    "                                          200 ready (with snapshot_path) or 202 downloading\n"
    "  POST /v1/workers                        {\"model\": .., \"image\": \"registry/org/app:tag\",\n"
    "                                          \"env\": {..}, \"gpus\": N}: pull the image and\n"
    "                                          download the model (in parallel), then run the\n"
    "                                          container with only that model mounted at\n"
    "                                          /runpod-volume/huggingface-cache/hub (process\n"
    "                                          mode: \"command\": [argv] instead of an image)\n"
    "  GET  /v1/workers/ID?wait=S&until=running,exited    DELETE /v1/workers/ID?grace=S\n"
    "  GET  /v1/inventory, /v1/downloads       what the cache holds, what is downloading\n"
    "  POST/DELETE /v1/pins, POST /v1/evict    {\"model\": .., \"revision\": ..}\n"
    "Every other GET is the Hugging Face hub API over this cache, for peers: it needs the\n"
    "fleet's peer key or the API key (HF_ENDPOINT=<url> HF_TOKEN=<key> works).\n"
    "\n"
    "Stopping: SIGTERM or Ctrl-C stops gracefully and exits 0: downloads in flight are cancelled\n"
    "and their bytes kept, and the next start resumes them by itself; worker processes keep\n"
    "running and the next agent on the same --state-dir takes them over. A second signal exits\n"
    "at once. A crash or SIGKILL loses nothing either: the next start resumes the same way\n"
    "(except downloads that needed a token, which is never stored: they resume at the next\n"
    "ensure that brings it).\n"
    "\n"
    "Examples:\n"
    "  modelcache agent --capacity 800GB\n"
    "  modelcache agent --capacity 90% --gpus 8 --gpu-type H100 --listen 0.0.0.0:8766 \\\n"
    "      --api-key-file /etc/modelcache/api-key --controller http://controller:8080\n"
    "  modelcache agent --cache-dir /tmp/hub --capacity 20GiB --upstream http://127.0.0.1:8765\n"
    "  curl -X POST 'http://127.0.0.1:8766/v1/ensure?wait=600' -d '{\"model\": "
    "\"Qwen/Qwen3-0.6B\"}'\n"
    "\n"
    "Environment:\n"
    "  HF_ENDPOINT           the upstream Hub when --upstream is not given\n"
    "  HF_HUB_CACHE          the cache dir (else $HF_HOME/hub, else ~/.cache/huggingface/hub)\n"
    "  MODELCACHE_API_KEY    the API key when --api-key-file is not given. There is no --api-key\n"
    "                        flag on purpose: argv is visible to every user of the host.\n"
    "\n"
    "The whole story (state dir, eviction rules, worker environment, restart): docs/agent.md.\n"
    "\n"
    "Exit codes: 0 stopped by a signal, 1 internal error, 2 bad arguments (--capacity,\n"
    "watermarks, URLs), 3 a file named by a flag is missing, 4 permission denied, 7 the --listen\n"
    "address is in use or not local, 8 the state database or cache is not usable.";

}  // namespace

// Long: the agent's flags, each with its help text; a list reads best in one place.
void AddAgentCommand(CLI::App& app, CommandResult& result) {
  auto* cmd = app.add_subcommand("agent", kAgentDescription);
  cmd->footer(kAgentFooter);
  auto args = std::make_shared<AgentArgs>();
  AddCacheDirOption(*cmd, args->cache_dir);
  cmd->add_option("--state-dir", args->state_dir,
                  "The agent's own state, outside the cache: state.db (pins, access times,\n"
                  "workers, downloads in flight), resume records and worker logs (default: next\n"
                  "to the cache dir, named modelcache-state, e.g. ~/.cache/huggingface/\n"
                  "modelcache-state). 'modelcache pin' writes pins here");
  cmd->add_option("--capacity", args->capacity,
                  "Disk budget of the cache: a size (800GB, 1.5TiB, bytes) or a fraction of the\n"
                  "filesystem holding the cache dir (50% or 0.5). Required")
      ->required();
  cmd->add_option("--high-watermark", args->high_watermark,
                  "When the cache fills past this share of --capacity, evict down to the low\n"
                  "watermark (default 90%; 90% or 0.9)");
  cmd->add_option("--low-watermark", args->low_watermark, "Where evictions stop (default 80%)");
  cmd->add_option("--eviction", args->eviction,
                  "Which snapshots go first when the cache must make room: lru (least recently\n"
                  "used), gdsf (size- and frequency-aware) or s3fifo (default lru; the\n"
                  "simulator study in docs/simulator.md compares them)")
      ->check(CLI::IsMember({"lru", "gdsf", "s3fifo"}));
  cmd->add_option("--gpus", args->gpus,
                  "GPU slots the agent hands out to workers, numbered 0..N-1 (default 0), or\n"
                  "auto: the GPUs of the CDI spec (--cdi-kind), else of nvidia-smi -L, whose\n"
                  "model then becomes the --gpu-type");
  cmd->add_option("--gpu-type", args->gpu_type,
                  "A label for the GPU model reported to the controller, e.g. H100 (default none)");
  cmd->add_option("--listen", args->listen,
                  "Address and port of the HTTP API (default 127.0.0.1:8766; port 0 picks a free\n"
                  "one; 0.0.0.0:8766 for other hosts)");
  cmd->add_option("--controller", args->controller,
                  "URL of a fleet controller to register with and send heartbeats to (optional)");
  cmd->add_option("--host-id", args->host_id,
                  "This host's name towards the controller (default: the host name)");
  cmd->add_option("--upstream", args->upstream,
                  "The Hub to download from (default: $HF_ENDPOINT, else https://huggingface.co),\n"
                  "e.g. a 'modelcache serve' mirror: http://mirror:8765");
  cmd->add_option("--public-url", args->public_url,
                  "How other hosts reach this agent, sent to the controller (default: the\n"
                  "listening address)");
  cmd->add_option(
      "--api-key-file", args->api_key_file,
      "File holding the key that /v1/... requests must send as 'Authorization:\n"
      "Bearer <key>' (trailing newline ignored; else $MODELCACHE_API_KEY; else the key\n"
      "in <state-dir>/api-key, made there (0600) on the first start)");
  cmd->add_option(
      "--host-credential-file", args->host_credential_file,
      "File holding this host's credential from 'modelcache hosts enroll --host-id ID' on\n"
      "the controller: sent to --controller to register and heartbeat as --host-id, and\n"
      "accepted on /v1 from the controller (which presents it back)")
      ->type_name("FILE");
  cmd->add_option(
      "--peer-key-file", args->peer_key_file,
      "File holding the fleet's peer key: required (as 'Authorization: Bearer') on this\n"
      "agent's mirror routes, which serve its whole cache, gated models included, to\n"
      "other agents, and sent to the peers it fetches from. Give every agent the same one.\n"
      "Default: the key the --controller hands enrolled agents; with neither, the mirror\n"
      "routes serve --api-key-file holders only")
      ->type_name("FILE");
  cmd->add_option("--connections", args->connections,
                  "Parallel HTTP connections per download, 1 to 64 (default 8)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--allowed-host", args->allowed_hosts,
                  "A host name clients may use for this agent (repeatable). /v1 requests whose\n"
                  "Host or Origin names another host are refused (DNS rebinding, cross-site\n"
                  "pages); addresses, localhost, --host-id and --public-url's host always pass")
      ->type_name("HOST");
  AddTlsOptions(*cmd, args->tls, /*client_side=*/true);
  cmd->add_option("--log-cap", args->log_cap,
                  "Size at which a worker's stdout or stderr log is rotated to <log>.1\n"
                  "(default 64MiB; at most about twice this per file)");
  cmd->add_option("--maintenance-interval", args->maintenance_seconds,
                  "Seconds between re-reads of the cache and watermark checks (default 30)")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--stop-grace", args->stop_grace_seconds,
                  "Seconds a stopped worker gets between SIGTERM and SIGKILL when the request\n"
                  "gives no ?grace= (default 10)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--runtime", args->runtime,
                  "How workers run: podman (OCI containers, the normal case), docker (the same\n"
                  "through the docker CLI), process (host processes, for development) or auto\n"
                  "(default: podman when it can run a container here, else process; said at\n"
                  "start)");
  cmd->add_option("--engine", args->engine,
                  "The container engine program (default podman or docker from PATH)");
  cmd->add_option("--oci-runtime", args->oci_runtime,
                  "podman's --runtime for worker containers, e.g. runc (default podman's own;\n"
                  "auto falls back to runc when the default cannot run containers here)");
  cmd->add_option("--engine-root", args->engine_root,
                  "A private podman store for worker images and containers (storage/, run/,\n"
                  "tmp/ under it; default podman's own)");
  cmd->add_option("--network", args->network,
                  "Network of worker containers (default host: they reach the controller as\n"
                  "the agent does)");
  cmd->add_option("--insecure-registry", args->insecure_registries,
                  "A registry (host:port) to pull from over plain HTTP or without TLS\n"
                  "verification, e.g. a registry on loopback; repeatable");
  cmd->add_option("--cdi-spec-dir", args->cdi_spec_dirs,
                  "Where CDI specs are (nvidia-ctk cdi generate writes them); repeatable\n"
                  "(default /etc/cdi and /var/run/cdi). GPUs listed there are given to\n"
                  "containers as CDI devices, others as /dev/nvidia<N>");
  cmd->add_option("--cdi-kind", args->cdi_kind,
                  "The CDI device kind of GPUs (default nvidia.com/gpu)");
  cmd->add_option("--image-capacity", args->image_capacity,
                  "Disk budget of worker images (e.g. 200GB): least recently used images the\n"
                  "agent pulled and no worker uses are removed to stay under it (default none)");
  cmd->add_option("--heartbeat-interval", args->heartbeat_seconds,
                  "Seconds between heartbeats to the controller (default 5)")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->callback([args, cmd, &result] {
    // The agent is a daemon: its log (stderr) says what it does unless --log-level says otherwise.
    if (cmd->get_parent()->get_option("--log-level")->count() == 0) SetUpLogging("info");
    result.status = RunAgent(*args);
  });
}

}  // namespace mc::cli
