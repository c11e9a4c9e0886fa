// /v1/keys: client API keys (create, list, delete) and the check every keyed request passes.
#include "controller/api_keys.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "controller/api.h"
#include "controller/api_common.h"
#include "controller/keys.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

// Keys and hosts are the admins': other keys get 403 on them (RequireAdmin in api.cc).
void CreateKey(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
               net::HttpResponse& res) {
  auto body = ParseObject(req.body.empty() ? "{}" : req.body);
  if (!body.ok()) return net::SetJsonError(res, body.status());
  Status s = CheckFields(*body, {"name", "tenant", "role"});
  for (const char* field : {"name", "tenant", "role"}) {
    if (s.ok() && body->contains(field) && !(*body)[field].is_string()) {
      s = InvalidArgumentError(std::string(field) + " must be a string");
    }
  }
  if (!s.ok()) return net::SetJsonError(res, s);
  const Principal caller = Caller(ctx, req);
  auto key = ctx.keys.Create(body->value("name", "unnamed"), body->value("tenant", caller.tenant),
                             body->value("role", "member"));
  if (!key.ok()) return net::SetJsonError(res, key.status());
  net::SetJson(res, 200, json{{"key", *key}}.dump());
}

void ListKeys(ApiContext& ctx, const net::HttpRequest&, const net::PathParams&,
              net::HttpResponse& res) {
  auto keys = ctx.store.ListApiKeys();
  if (!keys.ok()) return net::SetJsonError(res, keys.status());
  json out = json::array();
  for (const ApiKeyRecord& k : *keys) {
    out.push_back(json{{"id", k.id}, {"name", k.name}, {"tenant", k.tenant}, {"role", k.role},
                       {"createdAt", k.created_ms}});
  }
  net::SetJson(res, 200, json{{"keys", out}}.dump());
}

void DeleteKey(ApiContext& ctx, const net::HttpRequest&, const net::PathParams& params,
               net::HttpResponse& res) {
  const std::string& id = params.Get("id");
  Status s = ctx.keys.Delete(id);
  if (!s.ok()) return net::SetJsonError(res, s);
  net::SetJson(res, 200, json{{"id", id}, {"deleted", true}}.dump());
}

// Who the caller is: any key may ask (the console shows only what the key may see).
void WhoAmI(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
            net::HttpResponse& res) {
  const Principal p = Caller(ctx, req);
  net::SetJson(res, 200,
               json{{"keyId", p.key_id}, {"tenant", p.tenant}, {"role", p.role}}.dump());
}

}  // namespace

bool ValidRole(std::string_view role) {
  return role == "admin" || role == "member" || role == "readonly";
}

bool ValidTenant(std::string_view tenant) {
  if (tenant.empty() || tenant.size() > 64) return false;
  return std::all_of(tenant.begin(), tenant.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::optional<Principal> ApiKeys::Identify(const std::string& authorization) {
  std::string key = authorization;
  if (key.starts_with("Bearer ")) key = key.substr(7);
  if (key.empty()) return std::nullopt;
  const std::string hash = Sha256Hex(key);
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = known_.find(hash);
    if (it != known_.end()) return it->second;
    generation = generation_;
  }
  auto found = store_.FindApiKeySha256(hash);
  if (after_lookup_) after_lookup_();
  if (!found.ok() || !*found) return std::nullopt;
  Principal p{(*found)->id, (*found)->tenant, (*found)->role};
  std::lock_guard<std::mutex> lock(mu_);
  // A delete since the lookup: the answer may be stale, so it is not cached.
  if (generation == generation_) known_[hash] = p;
  return p;
}

StatusOr<std::string> ApiKeys::Create(const std::string& name, const std::string& tenant,
                                      const std::string& role) {
  return NewApiKey(store_, name, NowMs(clock_), tenant, role);
}

Status ApiKeys::Delete(const std::string& id) {
  MC_RETURN_IF_ERROR(store_.DeleteApiKey(id));
  std::lock_guard<std::mutex> lock(mu_);
  known_.clear();  // forget cached verdicts: the deleted key must stop working now
  ++generation_;   // and lookups in flight must not cache it again
  return Status::Ok();
}

StatusOr<std::string> NewApiKey(ControllerStore& store, const std::string& name, int64_t now_ms,
                                const std::string& tenant, const std::string& role) {
  if (name.empty() || name.size() > 100) {
    return InvalidArgumentError("a key name is 1-100 characters");
  }
  if (!ValidTenant(tenant)) {
    return InvalidArgumentError("a tenant is 1-64 of a-z, 0-9, '-' and '_'");
  }
  if (!ValidRole(role)) return InvalidArgumentError("role must be admin, member or readonly");
  const std::string key = "mc_" + RandomAlnum(40);
  MC_RETURN_IF_ERROR(store.AddApiKey(
      {"key-" + RandomAlnum(8), name, Sha256Hex(key), now_ms, tenant, role}));
  return key;
}

void AddKeyRoutes(net::Router& keyed, ApiContext& ctx) {
  keyed.Add("GET", "/v1/keys", AdminOnly(ctx, ListKeys));
  keyed.Add("POST", "/v1/keys", AdminOnly(ctx, CreateKey));
  keyed.Add("DELETE", "/v1/keys/{id}", AdminOnly(ctx, DeleteKey));
  keyed.Add("GET", "/v1/whoami", Bind(ctx, WhoAmI));
}

}  // namespace mc::controller
