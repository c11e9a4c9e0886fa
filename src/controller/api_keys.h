// Client API keys: stored as SHA-256 only; a request's key is checked against the stored hashes,
// with a cache of the hashes seen valid (forgotten when any key is deleted, so a deleted key
// stops working at once). Thread-safe.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "controller/store.h"
#include "mc/common/clock.h"

namespace mc::controller {

class ApiKeys {
 public:
  ApiKeys(ControllerStore& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Checks a client key ("Bearer <key>" or bare) against the stored hashes.
  bool Authorized(const std::string& authorization);
  // Generates a key, stores its hash under `name` and returns the key (shown once).
  StatusOr<std::string> Create(const std::string& name);
  // Deletes key `id` (NotFound if there is none) and forgets every cached verdict.
  Status Delete(const std::string& id);

 private:
  ControllerStore& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::set<std::string> known_;  // sha256 of keys seen valid; guarded by mu_
};

}  // namespace mc::controller
