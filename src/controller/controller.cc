#include "mc/controller/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "controller/api.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/store.h"
#include "mc/net/http_client.h"
#include "mc/net/http_server.h"

namespace mc::controller {
namespace {

// Webhooks: POST the final status object to the job's webhook; if it does not answer 200, try
// again (runpod-protocol.md §1: two more tries, 10 s apart; ControllerOptions::webhook_*). One
// thread, one delivery at a time, in order. The queue is memory only: a delivery not done when the
// controller stops or dies is lost (docs/controller.md).
class Webhooks {
 public:
  struct Policy {
    int tries = 3;
    std::chrono::milliseconds retry_delay{10'000};
    std::chrono::milliseconds timeout{10'000};  // each try
  };

  explicit Webhooks(Policy policy) : policy_(policy), thread_([this] { Loop(); }) {}
  ~Webhooks() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Send(std::string job_id, std::string url, std::string body) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back({std::move(job_id), std::move(url), std::move(body)});
    }
    cv_.notify_all();
  }

 private:
  struct Delivery {
    std::string job_id, url, body;
  };

  void Loop() {
    auto client = net::HttpClient::Create();
    const int tries = std::max(policy_.tries, 1);
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      const Delivery d = std::move(queue_.front());
      queue_.pop_front();
      for (int attempt = 1; attempt <= tries; ++attempt) {
        if (attempt > 1 && cv_.wait_for(lock, policy_.retry_delay, [&] { return stopping_; })) {
          return;
        }
        lock.unlock();
        const std::string outcome = Post(*client, d);
        lock.lock();
        if (outcome.empty()) break;
        // Neither the URL (it may carry a secret) nor the body is logged.
        spdlog::warn("controller: webhook of job {}, try {} of {}: {}", d.job_id, attempt, tries,
                     outcome);
      }
    }
  }

  // "" when the receiver answered 200, else what went wrong.
  std::string Post(net::HttpClient& client, const Delivery& d) {
    net::HttpClientRequest req;
    req.method = "POST";
    req.url = d.url;
    req.body = d.body;
    req.headers.Set("Content-Type", "application/json");
    req.timeout = policy_.timeout;
    req.sink = net::BodySink::kDiscard;  // the receiver's answer is not read
    auto res = client.Send(req);
    // The client's messages name the URL: only the code is told.
    if (!res.ok()) return std::string(StatusCodeName(res.status().code()));
    return res->status == 200 ? "" : "answered " + std::to_string(res->status);
  }

  const Policy policy_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<Delivery> queue_;
  std::thread thread_;  // last: it starts once the rest is built
};

class ControllerImpl final : public Controller {
 public:
  explicit ControllerImpl(ControllerOptions options) : o_(std::move(options)) {}
  ~ControllerImpl() override { Stop(); }

  Status Init() {
    MC_ASSIGN_OR_RETURN(store_, ControllerStore::Open(o_.db_path), "controller");
    webhooks_ = std::make_unique<Webhooks>(Webhooks::Policy{
        o_.webhook_tries, o_.webhook_retry_delay, o_.webhook_timeout});
    JobBoardOptions jo;
    jo.unlisted_grace = o_.requeue_unlisted_after;
    jobs_ = std::make_unique<JobBoard>(*store_, *o_.clock, jo,
                                       [this](const JobRecord& j) { OnFinal(j); });
    MC_RETURN_IF_ERROR(jobs_->Load(), "controller: load jobs");
    net::HttpServerOptions http;
    http.listen = o_.listen;
    http.name = "controller";
    http.max_body_bytes = o_.max_body_bytes;
    http.connection_limit = 4096;
    http.handler = [this](const net::HttpRequest& req, net::HttpResponse& res) {
      if (!ready_) {  // between binding and loading the fleet
        res.SetText(503, R"({"error": "starting", "code": "unavailable"})", "application/json");
        return;
      }
      api_->Handle(req, res);
    };
    MC_ASSIGN_OR_RETURN(http_, net::HttpServer::Create(std::move(http)), "controller");
    return Status::Ok();
  }

  Status Start() override {
    MC_RETURN_IF_ERROR(http_->Start());
    FleetOptions f;
    f.public_url = o_.public_url.value_or(http_->base_url());
    f.upstream = o_.upstream;
    f.agent_api_key = o_.agent_api_key;
    f.ping_interval = o_.ping_interval;
    f.host_timeout = o_.host_timeout;
    f.stop_grace = o_.stop_grace;
    f.job_stop_grace = o_.job_stop_grace;
    fleet_ = std::make_unique<Fleet>(*store_, *jobs_, *o_.clock, std::move(f));
    MC_RETURN_IF_ERROR(fleet_->Load(), "controller: load workers");
    api_ = std::make_unique<ControllerApi>(o_, *store_, *jobs_, *fleet_);
    api_->set_kick([this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        kicked_ = true;
      }
      cv_.notify_all();
    });
    ready_ = true;
    loop_ = std::thread([this] { Loop(); });
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
    if (jobs_) jobs_->WakeAll();  // long-polls return, so the server can join its threads
    if (http_) http_->Stop();
    if (fleet_) fleet_->Shutdown();
  }

  StatusOr<std::string> CreateApiKey(const std::string& name) override {
    if (!api_) return FailedPreconditionError("start the controller first");
    return api_->CreateApiKey(name);
  }

 private:
  void OnFinal(const JobRecord& j) {
    if (j.webhook.empty()) return;
    webhooks_->Send(j.id, j.webhook, JobStatusObject(j).dump());
  }

  // Every `tick`: TTLs, timeouts and retention, then the autoscaler. A queued job runs the
  // autoscaler at once (a cold start should not wait for the timer), at most once per
  // kMinKickGap so that a burst of submissions does not turn into a busy loop.
  void Loop() {
    constexpr auto kMinKickGap = std::chrono::milliseconds(5);
    auto last_timer = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait_until(lock, last_timer + o_.tick, [&] { return stopped_ || kicked_; });
      if (stopped_) return;
      kicked_ = false;
      const auto now = std::chrono::steady_clock::now();
      const bool timer = now >= last_timer + o_.tick;
      lock.unlock();
      if (timer) {
        jobs_->Tick();
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
  std::unique_ptr<Webhooks> webhooks_;
  std::unique_ptr<JobBoard> jobs_;
  std::unique_ptr<Fleet> fleet_;
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
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return NewApiKey(*store, name, now);
}

StatusOr<std::unique_ptr<Controller>> Controller::Create(ControllerOptions options) {
  if (options.db_path.empty()) return InvalidArgumentError("controller: --db is required");
  auto c = std::make_unique<ControllerImpl>(std::move(options));
  MC_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Controller>(std::move(c));
}

}  // namespace mc::controller
