#include "mc/controller/controller.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "controller/api.h"
#include "controller/api_common.h"
#include "controller/endpoint_secrets.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/keys.h"
#include "controller/replicas.h"
#include "controller/retention.h"
#include "controller/store.h"
#include "controller/webhooks.h"
#include "mc/net/http_server.h"
#include "mc/common/secret_box.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

std::optional<std::string> Revealed(const std::optional<hub::Secret>& s) {
  return s ? std::optional<std::string>(std::string(s->Reveal())) : std::nullopt;
}

}  // namespace

StatusOr<std::filesystem::path> SecretKeyFileFor(const ControllerOptions& o) {
  if (!o.secret_key_file.empty()) return std::filesystem::absolute(o.secret_key_file);
  std::optional<std::filesystem::path> db =
      o.db.empty() ? std::optional<std::filesystem::path>(std::filesystem::absolute(o.db_path))
                   : SqlitePathOf(o.db);
  if (!db) {
    return FailedPreconditionError(
        "controller: pass --secret-key-file FILE: with a PostgreSQL store the key that seals "
        "stored secrets has no default place, and every controller sharing the database needs "
        "the same file (it is created, 0600, if missing)");
  }
  return db->parent_path() / "controller-secret.key";
}

namespace {

StatusOr<std::unique_ptr<ControllerStore>> OpenStore(const ControllerOptions& o) {
  if (o.db.empty()) return ControllerStore::Open(o.db_path);
  return ControllerStore::OpenDb(o.db, Revealed(o.db_password));
}

class ControllerImpl final : public Controller {
 public:
  explicit ControllerImpl(ControllerOptions options) : o_(std::move(options)) {}
  ~ControllerImpl() override { Stop(); }

  Status Init() {
    MC_ASSIGN_OR_RETURN(store_, OpenStore(o_), "controller");
    MC_ASSIGN_OR_RETURN(const std::filesystem::path key_file, SecretKeyFileFor(o_));
    MC_ASSIGN_OR_RETURN(SecretBox box, SecretBox::FromKeyFile(key_file), "controller");
    secrets_ = std::make_shared<const SecretBox>(box);
    MC_ASSIGN_OR_RETURN(int sealed, SealStoredSecrets(*store_, *secrets_), "controller");
    if (sealed > 0) {
      spdlog::info("controller: sealed the secrets of {} endpoint(s) stored in clear with {}",
                   sealed, key_file.string());
    }
    webhooks_ = std::make_unique<WebhookSender>(
        *store_, *o_.clock,
        WebhookSender::Policy{o_.webhook_tries, o_.webhook_retry_delay, o_.webhook_timeout,
                              o_.webhook_allow_private, o_.webhook_allowed_hosts});
    JobBoardOptions jo;
    jo.unlisted_grace = o_.requeue_unlisted_after;
    // The delivery is in the store already (with the final status): the sender gets it to send.
    jobs_ = std::make_unique<JobBoard>(*store_, *o_.clock, jo,
                                       [this](const JobRecord&, const WebhookDelivery* webhook) {
                                         if (webhook) webhooks_->Send(*webhook);
                                       });
    MC_RETURN_IF_ERROR(jobs_->Load(), "controller: load jobs");
    net::HttpServerOptions http;
    http.listen = o_.listen;
    http.name = "controller";
    http.max_body_bytes = o_.max_body_bytes;
    http.connection_limit = 4096;
    http.edge = o_.edge;
    http.tls_cert_file = o_.tls_cert_file;
    http.tls_key_file = o_.tls_key_file;
    http.on_head = [this](const net::HttpRequest& head, net::HeadVerdict& verdict) {
      if (ready_) api_->CheckHead(head, verdict);
    };
    http.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      if (!ready_) {  // between binding and loading the fleet
        net::SetJsonError(res, UnavailableError("starting"));
        return;
      }
      api_->Handle(req, res);
    };
    MC_ASSIGN_OR_RETURN(http_, net::HttpServer::Create(std::move(http)), "controller");
    return Status::Ok();
  }

  Status Start() override {
    // The deliveries an earlier run left go first: no job can end before the server and the
    // loop start.
    MC_RETURN_IF_ERROR(webhooks_->Start(), "controller: webhook outbox");
    MC_RETURN_IF_ERROR(http_->Start());
    FleetOptions f;
    f.public_url = o_.public_url.value_or(http_->base_url());
    f.upstream = o_.upstream;
    f.agent_api_key = o_.agent_api_key;
    f.secrets = secrets_;
    f.ca_file = o_.ca_file;
    f.ping_interval = o_.ping_interval;
    f.host_timeout = o_.host_timeout;
    f.entitlement_grace = o_.entitlement_grace;
    f.entitlement_ttl = o_.entitlement_ttl;
    f.stop_grace = o_.stop_grace;
    f.job_stop_grace = o_.job_stop_grace;
    MC_ASSIGN_OR_RETURN(f.placement, scheduler::ParsePlacementPolicy(o_.placement),
                        "controller: --placement");
    fleet_ = std::make_unique<Fleet>(*store_, *jobs_, *o_.clock, std::move(f));
    MC_RETURN_IF_ERROR(fleet_->Load(), "controller: load workers");
    retention_ = std::make_unique<HistoryRetention>(
        *store_, *o_.clock, RetentionOptions{o_.history_retention, o_.history_prune_interval},
        [this](int64_t cutoff_ms) { fleet_->ForgetEndedBefore(cutoff_ms); });
    api_ = std::make_unique<ControllerApi>(o_, *store_, *jobs_, *fleet_, *secrets_);
    api_->set_kick([this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        kicked_ = true;
      }
      cv_.notify_all();
    });
    replicas_ =
        std::make_unique<ReplicaKeeper>(*store_, *fleet_, *o_.clock, secrets_, ReplicaOptions{});
    ready_ = true;
    loop_ = std::thread([this] { Loop(); });
    replicas_->Start();
    spdlog::info("controller: serving on {}", http_->base_url());
    return Status::Ok();
  }

  uint16_t port() const override { return http_ ? http_->port() : 0; }
  std::string base_url() const override { return http_ ? http_->base_url() : ""; }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (loop_.joinable()) loop_.join();
    if (replicas_) replicas_->Stop();
    if (jobs_) jobs_->WakeAll();  // long-polls return, so the server can join its threads
    if (http_) http_->Stop();
    if (fleet_) fleet_->Shutdown();
    // Last: deliveries go on while the rest stops; what is left stays in the outbox.
    if (webhooks_) webhooks_->Stop();
  }

  StatusOr<std::string> CreateApiKey(const std::string& name) override {
    if (!api_) return FailedPreconditionError("start the controller first");
    return api_->CreateApiKey(name);
  }

 private:
  // Every `tick`: TTLs, timeouts and retention, then the autoscaler. A queued job runs the
  // autoscaler at once (a cold start should not wait for the timer), at most once per
  // kMinKickGap so that a burst of submissions does not turn into a busy loop.
  //
  // The timer runs on the injected clock (a test on a FakeClock gets a pass per Advance past a
  // tick, or per kick). The gap after a pass is real time on purpose: it only keeps a burst of
  // kicks from spinning the CPU, and on a FakeClock it must not wait for the test to advance.
  void Loop() {
    constexpr auto kMinKickGap = std::chrono::milliseconds(5);
    Clock& clock = *o_.clock;
    auto last_timer = clock.Monotonic() - o_.tick;  // the first pass at once (after a restart)
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      clock.WaitUntil(cv_, lock, last_timer + o_.tick, [&] { return stopped_ || kicked_; });
      if (stopped_) return;
      kicked_ = false;
      const auto now = clock.Monotonic();
      const bool timer = now >= last_timer + o_.tick;
      lock.unlock();
      if (timer) {
        jobs_->Tick();
        retention_->Tick();  // at most once per history_prune_interval
        last_timer = now;
      }
      auto endpoints = store_->ListEndpoints();
      if (endpoints.ok()) {
        fleet_->Tick(*endpoints);
      } else {
        spdlog::error("controller: list endpoints: {}", endpoints.status().ToString());
      }
      lock.lock();
      cv_.wait_for(lock, kMinKickGap, [&] { return stopped_; });
    }
  }

  ControllerOptions o_;
  std::unique_ptr<ControllerStore> store_;
  std::shared_ptr<const SecretBox> secrets_;
  std::unique_ptr<WebhookSender> webhooks_;
  std::unique_ptr<JobBoard> jobs_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<HistoryRetention> retention_;
  std::unique_ptr<ReplicaKeeper> replicas_;  // cached replicas, on their own thread
  std::unique_ptr<ControllerApi> api_;
  std::unique_ptr<net::HttpServer> http_;
  std::atomic<bool> ready_{false};
  std::thread loop_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool kicked_ = false;  // a job was queued: run the autoscaler now
};

}  // namespace

StatusOr<std::string> AddApiKey(const std::filesystem::path& db_path, const std::string& name) {
  MC_ASSIGN_OR_RETURN(auto store, ControllerStore::Open(db_path));
  return NewApiKey(*store, name, NowMs(Clock::Real()));
}

StatusOr<std::string> AddApiKey(const std::string& db, const std::optional<hub::Secret>& password,
                                const std::string& name, const std::string& tenant,
                                const std::string& role) {
  MC_ASSIGN_OR_RETURN(auto store, ControllerStore::OpenDb(db, Revealed(password)));
  return NewApiKey(*store, name, NowMs(Clock::Real()), tenant, role);
}

StatusOr<bool> HasApiKey(const std::string& db, const std::optional<hub::Secret>& password,
                         const hub::Secret& key) {
  MC_ASSIGN_OR_RETURN(auto store, ControllerStore::OpenDb(db, Revealed(password)));
  return store->HasApiKeySha256(Sha256Hex(key.Reveal()));
}

StatusOr<std::unique_ptr<Controller>> Controller::Create(ControllerOptions options) {
  if (options.db_path.empty() && options.db.empty()) {
    return InvalidArgumentError("controller: --db is required");
  }
  auto c = std::make_unique<ControllerImpl>(std::move(options));
  MC_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Controller>(std::move(c));
}

}  // namespace mc::controller
