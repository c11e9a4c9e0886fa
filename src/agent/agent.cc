#include "mc/agent/agent.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "agent/agent_api.h"
#include "agent/container_runtime.h"
#include "agent/controller_link.h"
#include "agent/downloads.h"
#include "agent/engine.h"
#include "agent/images.h"
#include "agent/inventory.h"
#include "agent/process_runtime.h"
#include "agent/state_db.h"
#include "agent/workers.h"
#include "mc/cache/cache_store.h"
#include "mc/common/byte_count.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_server.h"

namespace mc::agent {
namespace fs = std::filesystem;

StatusOr<uint64_t> ResolveCapacity(std::string_view text, const fs::path& dir) {
  std::string t(text);
  double fraction = -1;
  if (!t.empty() && t.back() == '%') {
    char* end = nullptr;
    fraction = std::strtod(t.c_str(), &end) / 100.0;
    if (end != t.c_str() + t.size() - 1) fraction = -1;
  } else if (t.find('.') != std::string::npos && t.find_first_not_of("0123456789.") == t.npos) {
    fraction = std::strtod(t.c_str(), nullptr);
    if (fraction > 1) fraction = -1;  // "1.5" is not a fraction: let ByteCount refuse it
  }
  if (fraction >= 0) {
    if (fraction <= 0 || fraction > 1) {
      return InvalidArgumentError("capacity fraction \"" + t + "\" must be in (0%, 100%]");
    }
    struct statvfs vfs;
    if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoError(errno, "statvfs " + dir.string());
    return static_cast<uint64_t>(static_cast<double>(vfs.f_blocks) *
                                 static_cast<double>(vfs.f_frsize) * fraction);
  }
  auto bytes = ByteCount::Parse(t);
  if (!bytes.ok()) {
    return InvalidArgumentError("capacity \"" + t +
                                "\" is neither a size (800GB, 1.5TiB) nor a fraction of the disk "
                                "(50%, 0.5)");
  }
  if (bytes->bytes() == 0) return InvalidArgumentError("capacity must be more than 0 bytes");
  return bytes->bytes();
}

namespace {

Status CheckOptions(const AgentOptions& o) {
  if (o.cache_dir.empty()) return InvalidArgumentError("agent: --cache-dir is required");
  if (o.state_dir.empty()) return InvalidArgumentError("agent: --state-dir is required");
  if (o.capacity == 0) return InvalidArgumentError("agent: --capacity is required");
  if (!(o.low_watermark > 0 && o.low_watermark <= o.high_watermark && o.high_watermark <= 1)) {
    return InvalidArgumentError("agent: watermarks must satisfy 0 < low <= high <= 100%");
  }
  if (o.gpus < 0 || o.gpus > 1024) return InvalidArgumentError("agent: --gpus must be 0..1024");
  if (o.controller_url && !o.controller_url->starts_with("http://") &&
      !o.controller_url->starts_with("https://")) {
    return InvalidArgumentError("agent: --controller must be an http:// or https:// URL");
  }
  return Status::Ok();
}

// This agent's id among the engine's containers (label modelcache.agent, container names): made
// once per state dir, so that agents sharing an engine never take each other's containers.
StatusOr<std::string> InstanceId(const fs::path& state_dir) {
  const fs::path file = state_dir / "instance-id";
  std::ifstream in(file);
  std::string id;
  if (in >> id && id.size() == 8 && id.find_first_not_of("0123456789abcdef") == id.npos) {
    return id;
  }
  std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  id = std::string(buf, 8);
  // Written durably (fsync, rename, fsync of the directory): an id that a power cut took back
  // would orphan this agent's containers under the old one.
  const fs::path tmp = state_dir / "instance-id.tmp";
  const std::string line = id + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), file.c_str()) == 0;
  const int dir = ok ? ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  ok = ok && dir >= 0 && ::fsync(dir) == 0;
  if (dir >= 0) ::close(dir);
  if (!ok) return ErrnoError(errno, "write " + file.string());
  return id;
}

// The agent's key when none is given: made once per state dir (40 random [a-z0-9] from the
// kernel's CSPRNG) in <state_dir>/api-key, created 0600, so that an agent is never open.
StatusOr<hub::Secret> StateDirKey(const fs::path& state_dir) {
  const fs::path file = state_dir / "api-key";
  {
    std::ifstream in(file);
    std::string key;
    if (in >> key && key.size() >= 16) return hub::Secret(std::move(key));
  }
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string key;
  unsigned char buf[64];
  while (key.size() < 40) {
    if (::getrandom(buf, sizeof buf, 0) != static_cast<ssize_t>(sizeof buf)) {
      return InternalError("agent: no random bytes for a key");
    }
    for (unsigned char b : buf) {
      if (b < 252 && key.size() < 40) key += kChars[b % 36];
    }
  }
  const fs::path tmp = state_dir / "api-key.tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "create " + tmp.string());
  const std::string line = key + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::fchmod(fd, 0600);  // whatever the umask or an older file said
  ::close(fd);
  std::error_code ec;
  if (written) fs::rename(tmp, file, ec);
  if (!written || ec) return InternalError("write " + file.string());
  spdlog::info("agent: no API key given; made one in {} (send it as 'Authorization: Bearer ...')",
               file.string());
  return hub::Secret(std::move(key));
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

class AgentImpl final : public Agent {
 public:
  explicit AgentImpl(AgentOptions options) : o_(std::move(options)), peer_key_(o_.peer_key) {}
  ~AgentImpl() override { Stop(); }

  Status Init() {
    std::error_code ec;
    fs::create_directories(o_.state_dir, ec);
    if (ec) return ErrnoError(ec.value(), "create state dir " + o_.state_dir.string());
    fs::create_directories(o_.cache_dir, ec);
    if (ec) return ErrnoError(ec.value(), "create cache dir " + o_.cache_dir.string());
    if (o_.host_id.empty()) o_.host_id = HostName();
    if (!o_.api_key) {
      MC_ASSIGN_OR_RETURN(o_.api_key, StateDirKey(o_.state_dir));
    }

    MC_ASSIGN_OR_RETURN(db_, StateDb::Open(o_.state_dir / "state.db"), "agent");
    MC_ASSIGN_OR_RETURN(store_, cache::CacheStore::Open({o_.cache_dir, std::nullopt, true}),
                        "agent");
    MC_RETURN_IF_ERROR(store_->EnsureCacheDirTag());
    auto swept = store_->SweepTempFiles(std::chrono::seconds(0));  // no writer runs yet
    if (!swept.ok()) spdlog::warn("agent: sweep temp files: {}", swept.status().ToString());

    MC_ASSIGN_OR_RETURN(scheduler::EvictionPolicy eviction,
                        scheduler::ParseEvictionPolicy(o_.eviction), "agent: --eviction");
    inventory_ = std::make_unique<Inventory>(
        *store_, *db_,
        BudgetOptions{o_.capacity, o_.high_watermark, o_.low_watermark, eviction}, *o_.clock);
    MC_RETURN_IF_ERROR(inventory_->Reconcile(), "agent");
    const BudgetView budget = inventory_->Budget();
    spdlog::info("agent: inventory: {} snapshots, {} used of {}", inventory_->Snapshots().size(),
                 ByteCount(budget.used).ToHuman(), ByteCount(budget.capacity).ToHuman());

    DownloadsOptions d;
    d.cache_dir = o_.cache_dir;
    d.state_dir = o_.state_dir;
    d.upstream = o_.upstream;
    d.tuning = o_.tuning;
    d.ref_ttl = o_.ref_ttl;
    d.sleep = o_.sleep;
    d.on_change = [this] { PokeLink(); };
    d.peer_key = [this] { return peer_key_.Get(); };
    downloads_ = std::make_unique<Downloads>(std::move(d), *inventory_, *db_, *o_.clock);

    MC_RETURN_IF_ERROR(MakeRuntime(), "agent");
    WorkersOptions w;
    w.cache_dir = o_.cache_dir;
    w.state_dir = o_.state_dir;
    w.gpu_count = o_.gpus;
    w.stop_grace = o_.stop_grace;
    w.on_change = [this] { PokeLink(); };
    workers_ = std::make_unique<Workers>(std::move(w), *runtime_, *downloads_, images_.get(),
                                         *inventory_, *db_, *store_, *o_.clock);
    workers_->Recover();

    mirror::MirrorOptions m;
    m.cache_dir = o_.cache_dir;
    MC_ASSIGN_OR_RETURN(mirror_, mirror::MirrorHandler::Create(std::move(m)), "agent");

    api_ = std::make_unique<AgentApi>(
        AgentApi::Parts{o_, *inventory_, *downloads_, *workers_, images_.get(), *db_, *mirror_,
                        *store_, peer_key_});
    net::HttpServerOptions http;
    http.listen = o_.listen;
    http.name = "agent";
    http.max_body_bytes = o_.max_body_bytes;
    http.edge = o_.edge;
    http.tls_cert_file = o_.tls_cert_file;
    http.tls_key_file = o_.tls_key_file;
    AgentApi* api = api_.get();
    http.on_head = [api](const net::HttpRequest& head, net::HeadVerdict& verdict) {
      api->CheckHead(head, verdict);
    };
    http.handler = [api](const net::HttpRequest& req, net::HttpResponse& res) {
      api->Handle(req, res);
    };
    MC_ASSIGN_OR_RETURN(http_, net::HttpServer::Create(std::move(http)), "agent");
    return Status::Ok();
  }

  Status Start() override {
    MC_RETURN_IF_ERROR(http_->Start());
    if (!o_.public_url) o_.public_url = http_->base_url();
    api_->set_public_url(*o_.public_url);
    downloads_->set_self_url(*o_.public_url);
    downloads_->Resume();
    maintenance_ = std::thread([this] { Maintain(); });
    if (o_.controller_url) {
      std::string url = *o_.controller_url;
      while (!url.empty() && url.back() == '/') url.pop_back();
      std::lock_guard<std::mutex> lock(link_mu_);
      ControllerLinkOptions link{url, o_.host_id,
                                 o_.controller_api_key ? o_.controller_api_key : o_.api_key,
                                 o_.heartbeat_interval, o_.ca_file};
      link.on_peer_key = [this](std::string key) { peer_key_.Offer(std::move(key)); };
      link_ = std::make_unique<ControllerLink>(std::move(link),
                                               [this] { return api_->HostDocument(); });
      link_->Start();
    }
    spdlog::info("agent: {} serving on {} (cache {}, capacity {}, {} GPUs, workers as {})",
                 o_.host_id, http_->base_url(), o_.cache_dir.string(),
                 ByteCount(o_.capacity).ToHuman(), o_.gpus,
                 runtime_->runs_containers() ? std::string(runtime_->name()) + " containers"
                                             : "processes");
    return Status::Ok();
  }

  uint16_t port() const override { return http_ ? http_->port() : 0; }
  std::string base_url() const override { return http_ ? http_->base_url() : ""; }

  void StopWorkers(std::chrono::milliseconds grace) override {
    if (workers_) workers_->StopAll(grace);
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (link_) link_->Stop();
    if (maintenance_.joinable()) maintenance_.join();
    if (mirror_) mirror_->StopFaults();
    if (http_) http_->Stop();
    if (downloads_) downloads_->Shutdown();
    if (images_) images_->Shutdown();
    workers_.reset();  // stops watching; the processes and containers live on
    runtime_.reset();
  }

 private:
  void PokeLink() {
    std::lock_guard<std::mutex> lock(link_mu_);
    if (link_) link_->Poke();
  }

  // Processes, or containers through the engine (with the images they need).
  Status MakeRuntime() {
    const RuntimeOptions& r = o_.runtime;
    ProcessSupervisor::Options so;
    so.log_cap_bytes = o_.log_cap_bytes;
    so.clock = o_.clock;
    if (r.kind == RuntimeKind::kProcess) {
      runtime_ = std::make_unique<ProcessRuntime>(so);
      return Status::Ok();
    }
    MC_ASSIGN_OR_RETURN(std::string instance, InstanceId(o_.state_dir));
    engine_ = std::make_unique<Engine>(MakeEngine(r, o_.state_dir / "image-pulls"));
    ContainerRuntimeOptions c;
    c.instance = instance;
    c.network = r.network;
    c.cdi_spec_dirs = r.cdi_spec_dirs;
    c.cdi_kind = r.cdi_kind;
    const std::string missing = MissingCgroupControllers();
    c.limits = r.limits.value_or(missing.empty());
    if (!c.limits) {
      spdlog::warn("agent: worker limits (memory, CPUs, pids) are not enforced: {}",
                   r.limits ? "turned off" : "the host has no cgroup controller for " + missing);
    }
    c.helper_log = o_.state_dir / "engine-helpers.log";
    c.supervisor = so;
    runtime_ = std::make_unique<ContainerRuntime>(std::move(c), *engine_);
    ImagesOptions i;
    i.capacity = r.image_capacity;
    i.on_change = [this] { PokeLink(); };
    images_ = std::make_unique<Images>(std::move(i), *engine_, *db_, *o_.clock);
    images_->Recover();
    return Status::Ok();
  }

  // On a timer: re-read the cache (changes made by hand), then watermark evictions.
  void Maintain() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, o_.maintenance_interval, [&] { return stopped_; })) {
      lock.unlock();
      Status r = inventory_->Reconcile();
      if (!r.ok()) spdlog::warn("agent: cache scan: {}", r.ToString());
      workers_->Prune(o_.clock->Now() - std::chrono::hours(24));  // keep a day of history
      Status s = inventory_->EnforceWatermarks();
      if (!s.ok()) spdlog::warn("agent: watermark check: {}", s.ToString());
      lock.lock();
    }
  }

  AgentOptions o_;
  PeerKey peer_key_;  // the fleet's: checked on the mirror routes, sent to peers
  std::unique_ptr<StateDb> db_;
  std::unique_ptr<cache::CacheStore> store_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<Downloads> downloads_;
  std::unique_ptr<Engine> engine_;            // containers only
  std::unique_ptr<WorkerRuntime> runtime_;
  std::unique_ptr<Images> images_;            // containers only
  std::unique_ptr<Workers> workers_;
  std::unique_ptr<mirror::MirrorHandler> mirror_;
  std::unique_ptr<AgentApi> api_;
  std::unique_ptr<net::HttpServer> http_;
  std::mutex link_mu_;  // link_ is set in Start() while download threads may poke it
  std::unique_ptr<ControllerLink> link_;
  std::thread maintenance_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentOptions options) {
  MC_RETURN_IF_ERROR(CheckOptions(options));
  auto agent = std::make_unique<AgentImpl>(std::move(options));
  MC_RETURN_IF_ERROR(agent->Init());
  return std::unique_ptr<Agent>(std::move(agent));
}

}  // namespace mc::agent
