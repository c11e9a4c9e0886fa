// /v1/keys: client API keys (create, list, delete) and the check every keyed request passes.
#include "controller/api_keys.h"

#include <nlohmann/json.hpp>

#include "controller/api.h"
#include "controller/api_common.h"
#include "controller/keys.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

void CreateKey(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
               net::HttpResponse& res) {
  auto body = ParseObject(req.body.empty() ? "{}" : req.body);
  if (!body.ok()) return net::SetJsonError(res, body.status());
  if (body->contains("name") && !(*body)["name"].is_string()) {
    return net::SetJsonError(res, InvalidArgumentError("name must be a string"));
  }
  auto key =
      ctx.keys.Create(body->contains("name") ? (*body)["name"].get<std::string>() : "unnamed");
  if (!key.ok()) return net::SetJsonError(res, key.status());
  net::SetJson(res, 200, json{{"key", *key}}.dump());
}

void ListKeys(ApiContext& ctx, const net::HttpRequest&, const net::PathParams&,
              net::HttpResponse& res) {
  auto keys = ctx.store.ListApiKeys();
  if (!keys.ok()) return net::SetJsonError(res, keys.status());
  json out = json::array();
  for (const ApiKeyRecord& k : *keys) {
    out.push_back(json{{"id", k.id}, {"name", k.name}, {"createdAt", k.created_ms}});
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

}  // namespace

bool ApiKeys::Authorized(const std::string& authorization) {
  std::string key = authorization;
  if (key.starts_with("Bearer ")) key = key.substr(7);
  if (key.empty()) return false;
  const std::string hash = Sha256Hex(key);
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (known_.contains(hash)) return true;
    generation = generation_;
  }
  auto found = store_.HasApiKeySha256(hash);
  if (after_lookup_) after_lookup_();
  if (!found.ok() || !*found) return false;
  std::lock_guard<std::mutex> lock(mu_);
  // A delete since the lookup: the answer may be stale, so it is not cached.
  if (generation == generation_) known_.insert(hash);
  return true;
}

StatusOr<std::string> ApiKeys::Create(const std::string& name) {
  return NewApiKey(store_, name, NowMs(clock_));
}

Status ApiKeys::Delete(const std::string& id) {
  MC_RETURN_IF_ERROR(store_.DeleteApiKey(id));
  std::lock_guard<std::mutex> lock(mu_);
  known_.clear();  // forget cached verdicts: the deleted key must stop working now
  ++generation_;   // and lookups in flight must not cache it again
  return Status::Ok();
}

StatusOr<std::string> NewApiKey(ControllerStore& store, const std::string& name, int64_t now_ms) {
  if (name.empty() || name.size() > 100) {
    return InvalidArgumentError("a key name is 1-100 characters");
  }
  const std::string key = "mc_" + RandomAlnum(40);
  MC_RETURN_IF_ERROR(store.AddApiKey({"key-" + RandomAlnum(8), name, Sha256Hex(key), now_ms}));
  return key;
}

void AddKeyRoutes(net::Router& keyed, ApiContext& ctx) {
  keyed.Add("GET", "/v1/keys", Bind(ctx, ListKeys));
  keyed.Add("POST", "/v1/keys", Bind(ctx, CreateKey));
  keyed.Add("DELETE", "/v1/keys/{id}", Bind(ctx, DeleteKey));
}

}  // namespace mc::controller
