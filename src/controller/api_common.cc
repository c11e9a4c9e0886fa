#include "controller/api_common.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "mc/net/json_reply.h"

namespace mc::controller {

using json = nlohmann::json;

net::RouteHandler Bind(ApiContext& ctx, ApiHandler handler) {
  return [&ctx, handler](const net::HttpRequest& req, const net::PathParams& params,
                         net::HttpResponse& res) { handler(ctx, req, params, res); };
}

net::RouteHandler AdminOnly(ApiContext& ctx, ApiHandler handler) {
  return [&ctx, handler](const net::HttpRequest& req, const net::PathParams& params,
                         net::HttpResponse& res) {
    if (!Caller(ctx, req).admin()) {
      return net::SetJsonError(
          res, PermissionDeniedError("only an admin key may do this (keys, hosts and fleet "
                                     "metrics are the operators'); ask an operator"));
    }
    handler(ctx, req, params, res);
  };
}

Principal Caller(ApiContext& ctx, const net::HttpRequest& req) {
  auto p = ctx.keys.Identify(req.headers.Get("Authorization").value_or(""));
  if (!p) return Principal{"", "", "none"};
  return *p;
}

Status CheckRole(const Principal& caller, const net::HttpRequest& req) {
  if (caller.may_write() || req.method == "GET" || req.method == "HEAD") return Status::Ok();
  return PermissionDeniedError("this API key is read-only: it may only read (GET)");
}

StatusOr<EndpointRecord> VisibleEndpoint(ApiContext& ctx, const net::HttpRequest& req,
                                         const std::string& id) {
  if (!ValidId(id)) return NotFoundError("no endpoint " + id.substr(0, 80));
  MC_ASSIGN_OR_RETURN(std::optional<EndpointRecord> e, ctx.store.GetEndpoint(id));
  if (!e || !Caller(ctx, req).Sees(e->tenant)) return NotFoundError("no endpoint " + id);
  return *e;
}

int64_t NowMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 120) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool ValidHostId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

Status NoRoute(const net::HttpRequest& req) {
  return NotFoundError("no route " + req.raw_path.substr(0, 200));
}

StatusOr<json> ParseObject(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return InvalidArgumentError("the request body is not valid JSON");
  if (!j.is_object()) return InvalidArgumentError("the request body must be a JSON object");
  return j;
}

Status CheckFields(const json& body, std::initializer_list<const char*> allowed) {
  for (const auto& [key, value] : body.items()) {
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      return InvalidArgumentError("unknown field \"" + key.substr(0, 64) + "\"");
    }
  }
  return Status::Ok();
}

std::chrono::milliseconds WaitMs(const net::HttpRequest& req, int64_t fallback, int64_t lo,
                                 int64_t hi) {
  auto text = req.QueryParam("wait");
  int64_t ms = fallback;
  if (text && !text->empty()) {
    char* end = nullptr;
    const double v = std::strtod(text->c_str(), &end);
    if (end == text->c_str() + text->size() && std::isfinite(v)) ms = static_cast<int64_t>(v);
  }
  return std::chrono::milliseconds(std::clamp(ms, lo, hi));
}

}  // namespace mc::controller
