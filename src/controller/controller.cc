#include "mc/controller/controller.h"

#include <spdlog/spdlog.h>

#include <strings.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "controller/api.h"
#include "controller/api_common.h"
#include "controller/endpoint_secrets.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/keys.h"
#include "controller/leadership.h"
#include "controller/replicas.h"
#include "controller/retention.h"
#include "controller/store.h"
#include "controller/webhooks.h"
#include "mc/net/http_client.h"
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

// What the leader runs (docs/controller.md, "Several controllers"): the job board, the fleet,
// the webhook sender, retention, the API over them and the scheduling loop. Built when this
// controller is elected (from what the store holds then) and torn down when it is deposed or
// stopped; a follower has none and forwards requests to the leader.
struct Term {
  int64_t epoch = 0;
  std::unique_ptr<WebhookSender> webhooks;
  std::unique_ptr<JobBoard> jobs;
  std::unique_ptr<Fleet> fleet;
  std::unique_ptr<HistoryRetention> retention;
  std::unique_ptr<ReplicaKeeper> replicas;  // cached replicas, on their own thread
  std::unique_ptr<ControllerApi> api;
  std::thread loop;
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;
  bool kicked = false;  // a job was queued: run the autoscaler now
};

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
    net::HttpServerOptions http;
    http.listen = o_.listen;
    http.name = "controller";
    http.max_body_bytes = o_.max_body_bytes;
    http.connection_limit = 4096;
    http.edge = o_.edge;
    http.tls_cert_file = o_.tls_cert_file;
    http.tls_key_file = o_.tls_key_file;
    http.on_head = [this](const net::HttpRequest& head, net::HeadVerdict& verdict) {
      if (std::shared_ptr<Term> t = CurrentTerm()) return t->api->CheckHead(head, verdict);
      // A follower forwards the body to the leader, which checks the key and the route's cap.
      verdict.max_body_bytes = std::max({o_.max_body_bytes, o_.max_run_body_bytes,
                                         o_.max_runsync_body_bytes});
    };
    http.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) { Serve(req, res); };
    MC_ASSIGN_OR_RETURN(http_, net::HttpServer::Create(std::move(http)), "controller");
    return Status::Ok();
  }

  Status Start() override {
    MC_RETURN_IF_ERROR(http_->Start());
    std::unique_ptr<Leadership> leadership;
    const std::string advertise = o_.advertise_url.value_or(http_->base_url());
    if (SqlitePathOf(o_.db.empty() ? "sqlite:" + o_.db_path.string() : o_.db)) {
      leadership = SoleLeadership();
    } else {
      PostgresLeadershipOptions lo;
      lo.uri = o_.db;
      lo.password = Revealed(o_.db_password);
      lo.advertise_url = advertise;
      lo.retry = o_.leader_retry;
      lo.clock = o_.clock;
      MC_ASSIGN_OR_RETURN(leadership, PostgresLeadership(std::move(lo)), "controller");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);  // the server's threads read them from now on
      advertise_url_ = advertise;
      leadership_ = std::move(leadership);
    }
    // SQLite: elected at once (an error is Start's); PostgreSQL: campaigning from now on.
    MC_RETURN_IF_ERROR(
        leadership_->Start([this](int64_t epoch) { return BecomeLeader(epoch); },
                           [this](const std::string& why) { StepDown(why); }));
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
    if (Leadership* lead = Lead()) lead->Stop();  // no election or deposition after this
    std::shared_ptr<Term> t = TakeTerm();
    if (t) StopLoop(*t);
    if (http_) http_->Stop();
    if (t) StopRest(*t);
  }

  StatusOr<std::string> CreateApiKey(const std::string& name) override {
    if (!http_) return FailedPreconditionError("start the controller first");
    return NewApiKey(*store_, name, NowMs(*o_.clock));
  }

 private:
  // Set once in Start(), then kept until the controller is destroyed.
  Leadership* Lead() const {
    std::lock_guard<std::mutex> lock(mu_);
    return leadership_.get();
  }
  std::shared_ptr<Term> CurrentTerm() const {
    std::lock_guard<std::mutex> lock(mu_);
    return term_;
  }
  std::shared_ptr<Term> TakeTerm() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(term_, nullptr);
  }

  // Builds the leader's whole state in order (each part needs the ones before it), as
  // Init and Start did when there was only ever one controller.
  Status BecomeLeader(int64_t epoch) {
    auto t = std::make_shared<Term>();
    t->epoch = epoch;
    t->webhooks = std::make_unique<WebhookSender>(
        *store_, *o_.clock,
        WebhookSender::Policy{o_.webhook_tries, o_.webhook_retry_delay, o_.webhook_timeout,
                              o_.webhook_allow_private, o_.webhook_allowed_hosts});
    JobBoardOptions jo;
    jo.unlisted_grace = o_.requeue_unlisted_after;
    // The delivery is in the store already (with the final status): the sender gets it to send.
    WebhookSender* sender = t->webhooks.get();
    t->jobs = std::make_unique<JobBoard>(*store_, *o_.clock, jo,
                                         [sender](const JobRecord&, const WebhookDelivery* w) {
                                           if (w) sender->Send(*w);
                                         });
    MC_RETURN_IF_ERROR(t->jobs->Load(), "controller: load jobs");
    // The deliveries an earlier leader left go first: no job can end before the loop and the
    // API of this term start.
    MC_RETURN_IF_ERROR(t->webhooks->Start(), "controller: webhook outbox");
    FleetOptions f;
    f.public_url = o_.public_url.value_or(http_->base_url());
    f.upstream = o_.upstream;
    f.agent_api_key = o_.agent_api_key;
    f.secrets = secrets_;
    f.ca_file = o_.ca_file;
    f.ping_interval = o_.ping_interval;
    f.host_timeout = o_.host_timeout;
    f.stop_grace = o_.stop_grace;
    f.job_stop_grace = o_.job_stop_grace;
    f.entitlement_grace = o_.entitlement_grace;
    f.entitlement_ttl = o_.entitlement_ttl;
    // This term's epoch, also after it is deposed: a late action then carries the old epoch,
    // which agents and the store refuse.
    f.epoch = [epoch] { return epoch; };
    // An entitlement verdict or tree listing came (off the loop): this term's loop runs a pass.
    f.wake = [term = t.get()] {
      {
        std::lock_guard<std::mutex> lock(term->mu);
        term->kicked = true;
      }
      term->cv.notify_all();
    };
    MC_ASSIGN_OR_RETURN(f.placement, scheduler::ParsePlacementPolicy(o_.placement),
                        "controller: --placement");
    t->fleet = std::make_unique<Fleet>(*store_, *t->jobs, *o_.clock, std::move(f));
    MC_RETURN_IF_ERROR(t->fleet->Load(), "controller: load workers");
    Fleet* fleet = t->fleet.get();
    t->retention = std::make_unique<HistoryRetention>(
        *store_, *o_.clock, RetentionOptions{o_.history_retention, o_.history_prune_interval},
        [fleet](int64_t cutoff_ms) { fleet->ForgetEndedBefore(cutoff_ms); });
    t->api = std::make_unique<ControllerApi>(o_, *store_, *t->jobs, *t->fleet, *secrets_);
    Term* raw = t.get();
    t->api->set_kick([raw] {
      {
        std::lock_guard<std::mutex> lock(raw->mu);
        raw->kicked = true;
      }
      raw->cv.notify_all();
    });
    t->replicas = std::make_unique<ReplicaKeeper>(*store_, *t->fleet, *o_.clock, secrets_,
                                                  ReplicaOptions{});
    t->loop = std::thread([this, raw] { Loop(*raw); });
    t->replicas->Start();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stopped_) {
        term_ = t;
        t = nullptr;
      }
    }
    if (t) {  // stopped meanwhile
      StopLoop(*t);
      StopRest(*t);
    }
    return Status::Ok();
  }

  void StepDown(const std::string& why) {
    spdlog::error("controller: no longer the leader ({}): following", why);
    std::shared_ptr<Term> t = TakeTerm();
    if (!t) return;
    StopLoop(*t);
    StopRest(*t);
  }

  static void StopLoop(Term& t) {
    {
      std::lock_guard<std::mutex> lock(t.mu);
      t.stopped = true;
    }
    t.cv.notify_all();
    if (t.loop.joinable()) t.loop.join();
    if (t.replicas) t.replicas->Stop();
    t.jobs->WakeAll();  // long-polls return, so the server can join its threads
  }
  static void StopRest(Term& t) {
    t.fleet->Shutdown();
    // Last: deliveries go on while the rest stops; what is left stays in the outbox.
    t.webhooks->Stop();
  }

  void Serve(const net::HttpRequest& req, net::HttpResponse& res) {
    const bool health = req.raw_path == "/health" && (req.method == "GET" || req.method == "HEAD");
    if (health) return Health(res);
    std::shared_ptr<Term> t = CurrentTerm();
    if (t) {
      t->api->Handle(req, res);
      if (res.status == 200 && (req.raw_path == "/metrics" || req.raw_path == "/v1/metrics")) {
        AppendLeaderMetrics(res);
      }
      return;
    }
    Leadership* lead = Lead();
    if (!lead || lead->Info().sole) {  // between binding and loading the store
      return net::SetJsonError(res, UnavailableError("starting"));
    }
    Forward(req, res);
    if (res.status == 200 && (req.raw_path == "/metrics" || req.raw_path == "/v1/metrics")) {
      // The fleet's metrics are the leader's; the leader gauge is this controller's own.
      const std::string leader = "\nmodelcache_controller_leader 1\n";
      if (auto at = res.body.find(leader); at != std::string::npos) {
        res.body.replace(at, leader.size(), "\nmodelcache_controller_leader 0\n");
      }
    }
  }

  // /health: this controller's role, and the leader's epoch and URL.
  void Health(net::HttpResponse& res) const {
    Leadership* lead = Lead();
    const LeaderInfo i = lead ? lead->Info() : LeaderInfo{};
    nlohmann::json body{{"status", "ok"},
                        {"role", i.leader && CurrentTerm() ? "leader" : "follower"},
                        {"epoch", i.epoch}};
    if (!i.sole) body["leader"] = i.leader_url;
    net::SetJson(res, 200, body.dump());
  }

  void AppendLeaderMetrics(net::HttpResponse& res) const {
    const LeaderInfo i = Lead()->Info();
    res.body += "# HELP modelcache_controller_leader 1 if this controller runs the scheduling loop.\n"
                "# TYPE modelcache_controller_leader gauge\n"
                "modelcache_controller_leader " + std::string(i.leader ? "1" : "0") + "\n" +
                "# HELP modelcache_controller_leader_epoch The leadership epoch (fencing token).\n"
                "# TYPE modelcache_controller_leader_epoch gauge\n"
                "modelcache_controller_leader_epoch " + std::to_string(i.epoch) + "\n";
  }

  // A follower's answer: the leader's, for the same request. One hop only: a request another
  // controller forwarded is not forwarded again (that controller thought we lead; the election
  // moved on, and the client retries).
  void Forward(const net::HttpRequest& req, net::HttpResponse& res) {
    const LeaderInfo i = Lead()->Info();
    if (req.headers.Has(kForwardedHeader) || i.leader_url.empty() ||
        i.leader_url == advertise_url_) {
      res.headers.Set("Retry-After", "1");
      return net::SetJsonError(
          res, UnavailableError("no controller leads right now (an election takes up to a few "
                                "seconds): retry"));
    }
    net::HttpClientRequest f;
    f.method = req.method;
    f.url = i.leader_url + req.raw_path + (req.raw_query.empty() ? "" : "?" + req.raw_query);
    for (const auto& [name, value] : req.headers.fields()) {
      if (!HopByHop(name)) f.headers.Add(name, value);
    }
    f.headers.Set(kForwardedHeader, advertise_url_);
    if (req.method != "GET" && req.method != "HEAD") f.body = req.body;
    f.timeout = kForwardTimeout;
    f.ca_file = o_.ca_file;
    thread_local std::unique_ptr<net::HttpClient> client = net::HttpClient::Create();
    auto answer = client->Send(f);
    if (!answer.ok()) {
      res.headers.Set("Retry-After", "1");
      return net::SetJsonError(
          res, UnavailableError("the leader (epoch " + std::to_string(i.epoch) + ", " +
                                i.leader_url + ") did not answer: " + answer.status().message() +
                                "; a new leader takes over within seconds: retry"));
    }
    res.status = answer->status;
    for (const auto& [name, value] : answer->headers.fields()) {
      if (!HopByHop(name)) res.headers.Add(name, value);
    }
    res.body = std::move(answer->body);
  }

  static bool HopByHop(const std::string& name) {
    for (const char* h : {"Host", "Content-Length", "Connection", "Transfer-Encoding",
                          "Keep-Alive", "Expect", "Upgrade", "TE", "Trailer",
                          "Proxy-Connection"}) {
      if (strcasecmp(name.c_str(), h) == 0) return true;
    }
    return false;
  }

  // Every `tick`: TTLs, timeouts and retention, then the autoscaler. A queued job runs the
  // autoscaler at once (a cold start should not wait for the timer), at most once per
  // kMinKickGap so that a burst of submissions does not turn into a busy loop.
  //
  // The timer runs on the injected clock (a test on a FakeClock gets a pass per Advance past a
  // tick, or per kick). The gap after a pass is real time on purpose: it only keeps a burst of
  // kicks from spinning the CPU, and on a FakeClock it must not wait for the test to advance.
  void Loop(Term& t) {
    constexpr auto kMinKickGap = std::chrono::milliseconds(5);
    Clock& clock = *o_.clock;
    auto last_timer = clock.Monotonic() - o_.tick;  // the first pass at once (after a restart)
    std::unique_lock<std::mutex> lock(t.mu);
    while (true) {
      clock.WaitUntil(t.cv, lock, last_timer + o_.tick, [&] { return t.stopped || t.kicked; });
      if (t.stopped) return;
      t.kicked = false;
      const auto now = clock.Monotonic();
      const bool timer = now >= last_timer + o_.tick;
      lock.unlock();
      if (timer) {
        t.jobs->Tick();
        t.retention->Tick();  // at most once per history_prune_interval
        last_timer = now;
      }
      auto endpoints = store_->ListEndpoints();
      if (endpoints.ok()) {
        t.fleet->Tick(*endpoints);
      } else {
        spdlog::error("controller: list endpoints: {}", endpoints.status().ToString());
      }
      lock.lock();
      t.cv.wait_for(lock, kMinKickGap, [&] { return t.stopped; });
    }
  }

  static constexpr const char* kForwardedHeader = "X-Modelcache-Forwarded-By";
  // Longer than any long-poll a request may ask for (runsync's ?wait= is at most 300 s).
  static constexpr std::chrono::milliseconds kForwardTimeout{330'000};

  ControllerOptions o_;
  std::unique_ptr<ControllerStore> store_;
  std::shared_ptr<const SecretBox> secrets_;
  std::unique_ptr<net::HttpServer> http_;
  std::unique_ptr<Leadership> leadership_;
  std::string advertise_url_;
  mutable std::mutex mu_;
  std::shared_ptr<Term> term_;  // set while this controller leads
  bool stopped_ = false;
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
