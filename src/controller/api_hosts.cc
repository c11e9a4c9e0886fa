// /v1/hosts: agents register and send heartbeats with their inventory document; operators list
// the hosts and pin, unpin or evict a snapshot on one of them (through its agent).
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "controller/api_common.h"
#include "controller/fleet.h"
#include "mc/common/ids.h"
#include "mc/hub/model_ref.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

void Register(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
              net::HttpResponse& res) {
  Status s = ctx.fleet.Heartbeat(req.body);
  if (!s.ok()) return net::SetJsonError(res, s);
  net::SetJson(res, 200, "{}");
}

void Heartbeat(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
               net::HttpResponse& res) {
  if (!ValidHostId(params.Get("host"))) return net::SetJsonError(res, NoRoute(req));
  Register(ctx, req, params, res);
}

json HostJson(const HostView& h) {
  json snaps = json::array();
  for (const auto& s : h.snapshots) {
    snaps.push_back(json{{"model", s.model}, {"commit", s.commit}, {"sizeBytes", s.size},
                         {"files", s.files}, {"complete", s.complete}, {"pinned", s.pinned()},
                         {"pins", s.pinned_by.size()}, {"pinnedBy", s.pinned_by},
                         {"lastUse", s.last_use.empty() ? json(nullptr) : json(s.last_use)}});
  }
  json downloads = json::array();
  for (const auto& d : h.downloads) {
    downloads.push_back(json{{"model", d.model}, {"commit", d.commit},
                             {"bytesDone", d.done}, {"bytesTotal", d.total},
                             {"bytesPerSecond", d.rate}});
  }
  return json{{"id", h.id}, {"url", h.url}, {"gpuType", h.gpu_type},
              {"gpus", {{"total", h.gpus_total}, {"free", h.gpus_free}}},
              {"disk", {{"capacityBytes", h.capacity}, {"usedBytes", h.used},
                        {"reservedBytes", h.reserved},
                        {"highWatermarkBytes", h.high_watermark},
                        {"lowWatermarkBytes", h.low_watermark}}},
              {"snapshots", snaps}, {"downloads", downloads},
              {"lastSeen", h.last_seen_ms}, {"lost", h.lost}};
}

void ListHosts(ApiContext& ctx, const net::HttpRequest&, const net::PathParams&,
               net::HttpResponse& res) {
  json out = json::array();
  for (const HostView& h : ctx.fleet.Hosts()) out.push_back(HostJson(h));
  net::SetJson(res, 200, json{{"hosts", out}}.dump());
}

// A pin, unpin or evict body: {"model": <a model ref>, "commit": <40 hex>}, nothing else.
StatusOr<json> ParseSnapshotBody(const std::string& text) {
  MC_ASSIGN_OR_RETURN(json body, ParseObject(text));
  MC_RETURN_IF_ERROR(CheckFields(body, {"model", "commit"}));
  if (!(body.contains("model") && body["model"].is_string() && body.contains("commit") &&
        body["commit"].is_string())) {
    return InvalidArgumentError("the body needs \"model\" and \"commit\" strings");
  }
  MC_RETURN_IF_ERROR(hub::ParseModelRef(body["model"].get<std::string>()).status());
  if (!CommitSha::IsValid(body["commit"].get<std::string>())) {
    return InvalidArgumentError("commit must be 40 hex characters");
  }
  return body;
}

// Pin, unpin and evict on one host: checked here, then sent to its agent, whose answer is passed
// on; the host's inventory is fetched again at once so that lists show the change.
void SnapshotAction(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                    net::HttpResponse& res, const char* agent_path) {
  const std::string& host = params.Get("host");
  if (!ValidHostId(host)) return net::SetJsonError(res, NoRoute(req));
  auto body = ParseSnapshotBody(req.body);
  if (!body.ok()) return net::SetJsonError(res, body.status());
  const std::string& m = req.method;
  const json agent_body{{"model", (*body)["model"]}, {"revision", (*body)["commit"]}};
  auto answer = ctx.fleet.AgentRequest(host, m, agent_path, agent_body.dump());
  if (!answer.ok()) return net::SetJsonError(res, answer.status());
  auto inventory = ctx.fleet.AgentRequest(host, "GET", "/v1/inventory", "");
  if (inventory.ok() && inventory->first == 200) {
    Status refreshed = ctx.fleet.Heartbeat(inventory->second);
    if (!refreshed.ok()) spdlog::warn("controller: host {}: {}", host, refreshed.ToString());
  }
  const bool evict = std::string_view(agent_path) == "/v1/evict";
  spdlog::info("controller: {} {}@{} on host {}: HTTP {}",
               evict ? "evict" : (m == "POST" ? "pin" : "unpin"),
               (*body)["model"].get<std::string>(), (*body)["commit"].get<std::string>(), host,
               answer->first);
  net::SetJson(res, answer->first, answer->second);
}

void Pins(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
          net::HttpResponse& res) {
  SnapshotAction(ctx, req, params, res, "/v1/pins");
}

void Evict(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
           net::HttpResponse& res) {
  SnapshotAction(ctx, req, params, res, "/v1/evict");
}

}  // namespace

void AddHostRoutes(net::Router& keyed, ApiContext& ctx) {
  keyed.Add("GET", "/v1/hosts", Bind(ctx, ListHosts));
  keyed.Add("POST", "/v1/hosts/register", Bind(ctx, Register));
  keyed.Add("POST", "/v1/hosts/{host}/heartbeat", Bind(ctx, Heartbeat));
  keyed.Add("POST", "/v1/hosts/{host}/pins", Bind(ctx, Pins));
  keyed.Add("DELETE", "/v1/hosts/{host}/pins", Bind(ctx, Pins));
  keyed.Add("POST", "/v1/hosts/{host}/evict", Bind(ctx, Evict));
}

}  // namespace mc::controller
