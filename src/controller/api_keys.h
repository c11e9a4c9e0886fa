// Client API keys: stored as SHA-256 only; a request's key is checked against the stored hashes,
// with a cache of the hashes seen valid (forgotten when any key is deleted, so a deleted key
// stops working at once). Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
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
  // Deletes key `id` (NotFound if there is none) and forgets every cached verdict. A check in
  // flight meanwhile (its store lookup done before the delete) may pass, but never caches the
  // key again: every delete starts a new generation of the cache.
  Status Delete(const std::string& id);

  // Tests only: called by Authorized between its store lookup and its cache update.
  void set_after_lookup_for_test(std::function<void()> hook) { after_lookup_ = std::move(hook); }

 private:
  ControllerStore& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::set<std::string> known_;  // sha256 of keys seen valid; guarded by mu_
  uint64_t generation_ = 0;      // deletes so far; guarded by mu_
  std::function<void()> after_lookup_;
};

}  // namespace mc::controller
