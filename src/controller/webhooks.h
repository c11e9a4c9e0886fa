// WebhookSender: POSTs each final job's status object to its webhook (runpod-protocol.md §1,
// docs/controller.md "Webhooks"), at least once, across controller restarts.
//
// A delivery is recorded in the store's outbox by JobBoard, in the same transaction as the job's
// final status (ControllerStore::PutJobWithWebhook), and handed to Send(). Start() queues what
// the outbox holds from an earlier run first. One thread sends one delivery at a time, in order:
// a try that is not answered 200 within `timeout` fails and is repeated `retry_delay` later, up to
// `tries` tries in all. After each try the outcome is written to the store: the delivery is
// deleted when the receiver answered 200 or its last try failed, else its tries made and the time
// of the next try are kept, so a restart neither resets the bound nor skips the delay (a resumed
// delivery waits what was left of it, never more than retry_delay).
//
// At least once: a delivery whose 200 came but whose deletion was not written (a crash in between,
// a store error) is sent again by the next run. A delivery with id 0 (the job's final write
// failed) is sent from memory only. Stop() lets a try in flight finish (at most `timeout`) and
// records its outcome; the deliveries left stay in the outbox for the next run.
//
// Neither the URL (it may carry a secret) nor the body is logged; the request carries no
// Authorization header.
//
// Thread-safety: Send() may be called from any thread; Start() and Stop() from the owner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/store.h"
#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::net {
class HttpClient;
}

namespace mc::controller {

// The submit-time check of a job's webhook URL: InvalidArgument with the reason when its host is
// a loopback, private or link-local literal (or "localhost") and the policy does not allow it.
// Names are resolved only when the delivery is sent (and checked again then).
Status CheckWebhookTarget(const std::string& url, bool allow_private,
                          const std::vector<std::string>& allowed_hosts);

class WebhookSender {
 public:
  struct Policy {
    int tries = 3;  // in all; at least 1
    std::chrono::milliseconds retry_delay{10'000};
    std::chrono::milliseconds timeout{10'000};  // each try
    // Targets (docs/security.md): without allow_private a URL whose host is, or resolves to, a
    // loopback, private or link-local address is refused, unless its host is in allowed_hosts.
    bool allow_private = false;
    std::vector<std::string> allowed_hosts;
  };

  // `store` and `clock` must outlive the sender. The clock dates the next tries written to the
  // store; the waits themselves are real time.
  WebhookSender(ControllerStore& store, Clock& clock, Policy policy);
  ~WebhookSender();  // Stop()
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Queues the outbox's deliveries, oldest first and ahead of any sent before, then starts the
  // thread. Errors are the store's.
  Status Start();
  // Queues a delivery JobBoard has just recorded (its outbox id, or 0 if the write failed).
  void Send(WebhookDelivery delivery);
  // Joins the thread after the try in flight, if any. Idempotent.
  void Stop();

 private:
  void Loop();
  // Tries `d` until it is done, given up or Stop() is called. `lock` holds mu_, except while
  // posting.
  void Deliver(net::HttpClient& client, WebhookDelivery& d, std::unique_lock<std::mutex>& lock);
  // "" when the receiver answered 200, else what went wrong (never the URL).
  std::string Post(net::HttpClient& client, const WebhookDelivery& d) const;
  // Writes the outcome of a try to the outbox.
  void Record(const WebhookDelivery& d, bool done);
  int64_t NowMs() const;

  ControllerStore& store_;
  Clock& clock_;
  const Policy policy_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;              // guarded by mu_
  std::deque<WebhookDelivery> queue_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace mc::controller
