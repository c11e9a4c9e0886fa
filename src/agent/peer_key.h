// PeerKey: the fleet's peer key as this agent knows it now (docs/security.md, "Peers").
//
// Every agent of a fleet holds the same key. The agent's mirror routes (what peers and swarm
// members fetch from) answer only requests that carry it (or the agent's own API key) as
// "Authorization: Bearer", and the agent sends it to the peers it fetches from. It comes from
// --peer-key-file (AgentOptions::peer_key), which then stays, else from the controller's answers
// to register and heartbeats (over the enrolled host's authenticated link), which may change it
// (a rotation). Without either, the mirror routes serve API-key holders only.
//
// Thread-safe: the controller link sets it while request threads check it and downloads read it.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "mc/hub/secret.h"

namespace mc::agent {

class PeerKey {
 public:
  explicit PeerKey(std::optional<hub::Secret> fixed)
      : fixed_(fixed.has_value()), key_(std::move(fixed)) {}

  // A key from the controller's answer; ignored when a key file fixed it, or when empty.
  void Offer(std::string key) {
    if (fixed_ || key.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!key_ || !key_->Matches(key)) key_.emplace(std::move(key));
  }

  // The key to send to peers (nullopt: none known yet).
  std::optional<hub::Secret> Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return key_;
  }

  // Whether `given` is the key (constant time in its bytes); false while none is known.
  bool Accepts(std::string_view given) const {
    std::lock_guard<std::mutex> lock(mu_);
    return key_ && !given.empty() && key_->Matches(given);
  }

 private:
  const bool fixed_;
  mutable std::mutex mu_;
  std::optional<hub::Secret> key_;  // guarded by mu_
};

}  // namespace mc::agent
