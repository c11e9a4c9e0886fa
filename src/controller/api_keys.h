// Client API keys: stored as SHA-256 only; a request's key is checked against the stored hashes,
// with a cache of the keys seen valid (forgotten when any key is deleted, so a deleted key stops
// working at once). Each key belongs to a tenant and has a role (docs/controller.md, Tenants and
// roles): what the request may do is decided from its Principal, after the key is validated.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "controller/store.h"
#include "mc/common/clock.h"

namespace mc::controller {

// Who a request comes from: its key's id, tenant and role.
struct Principal {
  std::string key_id;
  std::string tenant;
  std::string role;  // admin, member or readonly

  // Admins: every tenant's resources, keys and hosts.
  bool admin() const { return role == "admin"; }
  // Members and admins change things; readonly keys only read.
  bool may_write() const { return role == "admin" || role == "member"; }
  // Whether a resource of `resource_tenant` exists for this caller (others answer 404).
  bool Sees(std::string_view resource_tenant) const {
    return admin() || resource_tenant == tenant;
  }
};

// The roles a key may have, and the form of a tenant name (1-64 of [a-z0-9_-]).
bool ValidRole(std::string_view role);
bool ValidTenant(std::string_view tenant);

class ApiKeys {
 public:
  ApiKeys(ControllerStore& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Checks a client key ("Bearer <key>" or bare) against the stored hashes.
  bool Authorized(const std::string& authorization) { return Identify(authorization).has_value(); }
  // The principal of a client key, or nullopt if the key is unknown.
  std::optional<Principal> Identify(const std::string& authorization);
  // Generates a key of `tenant` with `role`, stores its hash under `name` and returns the key
  // (shown once). InvalidArgument for a bad name, tenant or role.
  StatusOr<std::string> Create(const std::string& name, const std::string& tenant = kDefaultTenant,
                               const std::string& role = "admin");
  // Deletes key `id` (NotFound if there is none) and forgets every cached verdict. A check in
  // flight meanwhile (its store lookup done before the delete) may pass, but never caches the
  // key again: every delete starts a new generation of the cache.
  Status Delete(const std::string& id);

  // Tests only: called by Identify between its store lookup and its cache update.
  void set_after_lookup_for_test(std::function<void()> hook) { after_lookup_ = std::move(hook); }

 private:
  ControllerStore& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Principal> known_;  // by sha256 of keys seen valid; guarded by mu_
  uint64_t generation_ = 0;                 // deletes so far; guarded by mu_
  std::function<void()> after_lookup_;
};

}  // namespace mc::controller
