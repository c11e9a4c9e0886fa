// ControllerLink: the agent's side of the controller protocol, in one place (the controller issue
// finishes the protocol; docs/agent.md has the current shape).
//
//   POST {controller}/v1/hosts/register           body: the host document (below)
//   POST {controller}/v1/hosts/{host_id}/heartbeat body: the host document
// The host document is the agent's GET /v1/inventory answer: host id, URL, GPU type and slots,
// disk budget, snapshots, downloads and workers. The answer carries the fleet's peer key
// ({"peerKey": ...}), handed to on_peer_key. Registration is retried every interval until it
// succeeds; a heartbeat answered 404 (the controller forgot us) re-registers.
//
// Runs one thread; Stop() wakes and joins it. Failures are logged once per change of error, not
// every beat.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "mc/hub/secret.h"

namespace mc::agent {

struct ControllerLinkOptions {
  std::string controller_url;  // "http://host:port", no trailing '/'
  std::string host_id;
  std::optional<hub::Secret> api_key;  // sent as Authorization: Bearer
  std::chrono::milliseconds interval{5'000};
  std::string ca_file;  // HTTPS: authorities to trust (empty: the system's)
  // Called with the fleet's peer key when an answer carries one ({"peerKey": ...}).
  std::function<void(std::string)> on_peer_key = nullptr;
};

class ControllerLink {
 public:
  // `document` makes the JSON body of each request (called on the link's thread).
  ControllerLink(ControllerLinkOptions options, std::function<std::string()> document);
  ~ControllerLink();
  void Start();
  void Stop();
  // Sends a heartbeat now rather than at the next interval (the inventory changed: a download
  // ended), so that placement sees the new state at once.
  void Poke();
  // Beats sent successfully so far (tests wait on it with WaitForBeats).
  uint64_t beats() const;
  bool WaitForBeats(uint64_t count, std::chrono::milliseconds timeout) const;

 private:
  void Loop();
  bool Send(const std::string& path, int* status);

  const ControllerLinkOptions options_;
  std::function<std::string()> document_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  bool poked_ = false;
  uint64_t beats_ = 0;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace mc::agent
