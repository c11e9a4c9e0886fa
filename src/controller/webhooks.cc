#include "controller/webhooks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "mc/net/address_policy.h"
#include "mc/net/http_client.h"

namespace mc::controller {

WebhookSender::WebhookSender(ControllerStore& store, Clock& clock, Policy policy)
    : store_(store), clock_(clock), policy_(policy) {}

WebhookSender::~WebhookSender() { Stop(); }

int64_t WebhookSender::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
      .count();
}

Status WebhookSender::Start() {
  MC_ASSIGN_OR_RETURN(std::vector<WebhookDelivery> pending, store_.ListWebhooks());
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Those of the last run first; one sent before Start() is in the outbox too: queued once.
    std::set<int64_t> queued;
    for (const WebhookDelivery& d : queue_) queued.insert(d.id);
    std::erase_if(pending, [&](const WebhookDelivery& d) { return queued.contains(d.id); });
    queue_.insert(queue_.begin(), std::make_move_iterator(pending.begin()),
                  std::make_move_iterator(pending.end()));
    if (!queue_.empty()) {
      spdlog::info("controller: {} webhook deliveries pending", queue_.size());
    }
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void WebhookSender::Send(WebhookDelivery delivery) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(delivery));
  }
  cv_.notify_all();
}

void WebhookSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WebhookSender::Loop() {
  auto client = net::HttpClient::Create();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    WebhookDelivery d = std::move(queue_.front());
    queue_.pop_front();
    Deliver(*client, d, lock);
  }
}

void WebhookSender::Deliver(net::HttpClient& client, WebhookDelivery& d,
                            std::unique_lock<std::mutex>& lock) {
  const int tries = std::max(policy_.tries, 1);
  // A delivery resumed from the outbox waits what was left of its delay (a clock that jumped
  // cannot make that longer than the delay); one tried in this run waits the whole delay.
  std::chrono::milliseconds wait{0};
  if (d.tries > 0) {
    wait = std::chrono::milliseconds(
        std::clamp<int64_t>(d.next_attempt_ms - NowMs(), 0, policy_.retry_delay.count()));
  }
  while (d.tries < tries) {
    // Stopping: the outbox keeps the delivery for the next run.
    if (cv_.wait_for(lock, wait, [&] { return stopping_; })) return;
    lock.unlock();
    const std::string outcome = Post(client, d);
    ++d.tries;
    d.next_attempt_ms = NowMs() + policy_.retry_delay.count();
    Record(d, outcome.empty());
    lock.lock();
    if (outcome.empty()) return;
    // Neither the URL (it may carry a secret) nor the body is logged.
    spdlog::warn("controller: webhook of job {}, try {} of {}: {}", d.job_id, d.tries, tries,
                 outcome);
    wait = policy_.retry_delay;
  }
}

namespace {

bool HostAllowed(const std::string& host, const std::vector<std::string>& allowed_hosts) {
  return std::find(allowed_hosts.begin(), allowed_hosts.end(), host) != allowed_hosts.end();
}

}  // namespace

Status CheckWebhookTarget(const std::string& url, bool allow_private,
                          const std::vector<std::string>& allowed_hosts) {
  if (allow_private) return Status::Ok();
  const std::string host = net::UrlHost(url);
  if (host.empty()) return InvalidArgumentError("webhook: the URL has no host");
  if (net::HostIsNonPublicLiteral(host) && !HostAllowed(host, allowed_hosts)) {
    return InvalidArgumentError(
        "webhook: " + host.substr(0, 64) +
        " is a loopback, private or link-local address, which webhooks may not reach (an "
        "operator can allow it: modelcache controller --webhook-allow-private, or "
        "--webhook-allow-host " + host.substr(0, 64) + ")");
  }
  return Status::Ok();
}

std::string WebhookSender::Post(net::HttpClient& client, const WebhookDelivery& d) const {
  net::HttpClientRequest req;
  req.method = "POST";
  req.url = d.url;
  req.body = d.body_json;
  req.headers.Set("Content-Type", "application/json");
  req.timeout = policy_.timeout;
  req.sink = net::BodySink::kDiscard;  // the receiver's answer is not read
  req.max_body_bytes = 64 << 10;         // nor let run on: more than this fails the try
  // Checked on the address actually connected to, after DNS: a public-looking name that
  // resolves to loopback or a private network is refused too.
  req.public_addresses_only =
      !policy_.allow_private && !HostAllowed(net::UrlHost(d.url), policy_.allowed_hosts);
  auto res = client.Send(req);
  // The client's messages name the URL: only the code is told.
  if (!res.ok() && res.status().code() == StatusCode::kPermissionDenied) {
    return "refused: the URL resolves to a loopback, private or link-local address "
           "(--webhook-allow-private or --webhook-allow-host allow it)";
  }
  if (!res.ok()) return std::string(StatusCodeName(res.status().code()));
  return res->status == 200 ? "" : "answered " + std::to_string(res->status);
}

void WebhookSender::Record(const WebhookDelivery& d, bool done) {
  if (d.id == 0) return;  // never recorded: memory only
  const bool last = done || d.tries >= std::max(policy_.tries, 1);
  Status s =
      last ? store_.DeleteWebhook(d.id) : store_.UpdateWebhook(d.id, d.tries, d.next_attempt_ms);
  // Not fatal: a deletion that failed means one more delivery after a restart, an update that
  // failed one more try.
  if (!s.ok()) spdlog::error("controller: webhook of job {}: {}", d.job_id, s.ToString());
}

}  // namespace mc::controller
