// /v1/hosts: operators enroll hosts (a credential per host id), list them, cordon, drain or
// uncordon them and pin, unpin or evict a snapshot on one of them (through its agent); agents
// register and send heartbeats with their inventory document, authenticated with their host's
// credential (never a client key: no key can speak for a host it is not).
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "controller/api_common.h"
#include "controller/endpoint_secrets.h"
#include "controller/fleet.h"
#include "controller/keys.h"
#include "mc/common/constant_time.h"
#include "mc/common/ids.h"
#include "mc/hub/model_ref.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

// What the default fleet peer key is derived for from the secret key (SecretBox::Derive).
constexpr std::string_view kPeerKeyLabel = "modelcache fleet peer key v1";

// The credential of enrolled host `host_id` if `authorization` carries it ("Bearer <cred>" or
// bare); Unauthenticated, with the same answer, for a host not enrolled and a wrong credential.
StatusOr<std::string> VerifyHost(ApiContext& ctx, const std::string& host_id,
                                 const std::string& authorization) {
  std::string given = authorization;
  if (given.starts_with("Bearer ")) given = given.substr(7);
  MC_ASSIGN_OR_RETURN(std::optional<HostEnrollment> enrolled, ctx.store.GetHostEnrollment(host_id));
  const Status refused = UnauthenticatedError(
      "host " + host_id + " is not enrolled, or this is not its credential: enroll it with "
      "'modelcache hosts enroll --host-id " + host_id + "' and give its agent the credential "
      "that prints (--host-credential-file)");
  if (!enrolled) return refused;
  MC_ASSIGN_OR_RETURN(std::string credential,
                      ctx.secrets.Open(enrolled->credential, HostCredentialContext(host_id)),
                      "host " + host_id);
  if (given.empty() || !ConstantTimeEquals(given, credential)) return refused;
  return credential;
}

// A register or heartbeat: the document's host_id (and the path's, for a heartbeat) must be the
// host whose credential the request carries.
void HostDocument(ApiContext& ctx, const net::HttpRequest& req, const std::string& path_host,
                  net::HttpResponse& res) {
  const json doc = json::parse(req.body, nullptr, false);
  const auto id = doc.is_object() ? doc.find("host_id") : doc.end();
  if (!doc.is_object() || id == doc.end() || !id->is_string() ||
      !ValidHostId(id->get<std::string>())) {
    return net::SetJsonError(res, InvalidArgumentError("a host document needs a host_id"));
  }
  const std::string host_id = id->get<std::string>();
  auto credential = VerifyHost(ctx, host_id, req.headers.Get("Authorization").value_or(""));
  if (!credential.ok()) return net::SetJsonError(res, credential.status());
  if (!path_host.empty() && path_host != host_id) {
    return net::SetJsonError(
        res, PermissionDeniedError("a heartbeat to /v1/hosts/" + path_host + " names host " +
                                   host_id + ": a host speaks only for itself"));
  }
  Status s = ctx.fleet.Heartbeat(req.body);
  if (!s.ok()) return net::SetJsonError(res, s);
  ctx.fleet.SetHostCredential(host_id, hub::Secret(std::move(*credential)));
  // The fleet's peer key, to this enrolled host only (its agent checks it on its mirror routes
  // and sends it to its peers). Never logged; no other route returns it.
  std::string peer_key = ctx.options.peer_key ? std::string(ctx.options.peer_key->Reveal())
                                              : ctx.secrets.Derive(kPeerKeyLabel);
  net::SetJson(res, 200, json{{"peerKey", peer_key}}.dump());
  std::fill(peer_key.begin(), peer_key.end(), '\0');
}

void Register(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
              net::HttpResponse& res) {
  HostDocument(ctx, req, "", res);
}

void Heartbeat(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
               net::HttpResponse& res) {
  if (!ValidHostId(params.Get("host"))) return net::SetJsonError(res, NoRoute(req));
  HostDocument(ctx, req, params.Get("host"), res);
}

// POST /v1/hosts/enroll {"hostId": H}: a new credential for H (shown once, stored sealed); an
// enrolled host gets a new one (the old one stops working) and keeps its schedule.
void Enroll(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
            net::HttpResponse& res) {
  auto body = ParseObject(req.body);
  Status s = body.ok() ? CheckFields(*body, {"hostId"}) : body.status();
  if (s.ok() && !(body->contains("hostId") && (*body)["hostId"].is_string() &&
                  ValidHostId((*body)["hostId"].get<std::string>()))) {
    s = InvalidArgumentError("hostId is required: 1-128 of A-Z a-z 0-9 . _ -");
  }
  if (!s.ok()) return net::SetJsonError(res, s);
  const std::string host_id = (*body)["hostId"];
  auto existing = ctx.store.GetHostEnrollment(host_id);
  if (!existing.ok()) return net::SetJsonError(res, existing.status());
  const std::string credential = "mch_" + RandomAlnum(40);
  HostEnrollment e{host_id, ctx.secrets.Seal(credential, HostCredentialContext(host_id)),
                   *existing ? (*existing)->schedule : "", NowMs(*ctx.options.clock)};
  s = ctx.store.PutHostEnrollment(e);
  if (!s.ok()) return net::SetJsonError(res, s);
  ctx.fleet.SetHostCredential(host_id, hub::Secret(credential));
  spdlog::info("controller: host {} enrolled{}", host_id, *existing ? " again (new credential)" : "");
  net::SetJson(res, 200, json{{"hostId", host_id}, {"credential", credential}}.dump());
}

// DELETE /v1/hosts/{host}: the host's enrollment goes; its agent can no longer register.
void Unenroll(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
              net::HttpResponse& res) {
  const std::string& host = params.Get("host");
  if (!ValidHostId(host)) return net::SetJsonError(res, NoRoute(req));
  Status s = ctx.store.DeleteHostEnrollment(host);
  if (!s.ok()) return net::SetJsonError(res, s);
  ctx.fleet.ForgetHost(host);
  net::SetJson(res, 200, json{{"hostId", host}, {"enrolled", false}}.dump());
}

// POST /v1/hosts/{host}/cordon | drain | uncordon: the host's scheduling state, kept with its
// enrollment. Cordoned: no new workers; draining: also its idle workers stop.
void SetSchedule(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                 net::HttpResponse& res, const std::string& schedule) {
  const std::string& host = params.Get("host");
  if (!ValidHostId(host)) return net::SetJsonError(res, NoRoute(req));
  auto enrolled = ctx.store.GetHostEnrollment(host);
  if (!enrolled.ok()) return net::SetJsonError(res, enrolled.status());
  if (!*enrolled) {
    return net::SetJsonError(res, NotFoundError("host " + host + " is not enrolled"));
  }
  HostEnrollment e = **enrolled;
  e.schedule = schedule;
  Status s = ctx.store.PutHostEnrollment(e);
  if (!s.ok()) return net::SetJsonError(res, s);
  ctx.fleet.SetSchedule(host, schedule);
  spdlog::info("controller: host {} {}", host, schedule.empty() ? "uncordoned" : schedule);
  net::SetJson(res, 200, json{{"hostId", host}, {"schedule", schedule}}.dump());
}

void Cordon(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
            net::HttpResponse& res) {
  SetSchedule(ctx, req, params, res, "cordoned");
}

void Drain(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
           net::HttpResponse& res) {
  SetSchedule(ctx, req, params, res, "draining");
}

void Uncordon(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
              net::HttpResponse& res) {
  SetSchedule(ctx, req, params, res, "");
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
              {"lastSeen", h.last_seen_ms}, {"lost", h.lost}, {"enrolled", h.enrolled},
              {"schedule", h.schedule}};
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

void AddHostRoutes(net::Router& public_routes, net::Router& keyed, ApiContext& ctx) {
  // Agents: their host's credential, checked by the handler (no client key).
  public_routes.Add("POST", "/v1/hosts/register", Bind(ctx, Register));
  public_routes.Add("POST", "/v1/hosts/{host}/heartbeat", Bind(ctx, Heartbeat));
  // The fleet is the operators': admin keys only.
  keyed.Add("GET", "/v1/hosts", AdminOnly(ctx, ListHosts));
  keyed.Add("POST", "/v1/hosts/enroll", AdminOnly(ctx, Enroll));
  keyed.Add("DELETE", "/v1/hosts/{host}", AdminOnly(ctx, Unenroll));
  keyed.Add("POST", "/v1/hosts/{host}/cordon", AdminOnly(ctx, Cordon));
  keyed.Add("POST", "/v1/hosts/{host}/drain", AdminOnly(ctx, Drain));
  keyed.Add("POST", "/v1/hosts/{host}/uncordon", AdminOnly(ctx, Uncordon));
  keyed.Add("POST", "/v1/hosts/{host}/pins", AdminOnly(ctx, Pins));
  keyed.Add("DELETE", "/v1/hosts/{host}/pins", AdminOnly(ctx, Pins));
  keyed.Add("POST", "/v1/hosts/{host}/evict", AdminOnly(ctx, Evict));
}

}  // namespace mc::controller
