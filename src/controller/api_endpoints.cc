// /v1/endpoints (create, list, show, update, delete), /v1/models/resolve (what an endpoint would
// get) and the per-endpoint views of the fleet: /v1/workers, /v1/ledger, /v1/coldstarts.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "controller/api_common.h"
#include "controller/endpoint_secrets.h"
#include "controller/entitlements.h"
#include "controller/fleet.h"
#include "controller/hub_access.h"
#include "controller/jobs.h"
#include "controller/keys.h"
#include "controller/replicas.h"
#include "controller/store.h"
#include "mc/common/image_ref.h"
#include "mc/hub/hub_client.h"
#include "mc/hub/model_ref.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

// The endpoint's models as the API shows them: every model, the base first.
json ModelsJson(const EndpointRecord& e) {
  json models = json::parse(e.models_json, nullptr, false);
  if (models.is_array() && !models.empty()) return models;
  return json::array({json{{"model", e.model}, {"repo", e.repo}, {"revision", e.revision},
                           {"commit", e.commit}, {"include", json::array()},
                           {"exclude", json::array()}}});
}

json EndpointJson(const EndpointRecord& e) {
  return json{{"id", e.id},
              {"name", e.name},
              {"model", e.model},
              {"repo", e.repo},
              {"revision", e.revision},
              {"commit", e.commit},
              {"hasHfToken", e.hf_token.has_value()},
              {"hasSecretEnv", e.secret_env.has_value()},
              {"command", json::parse(e.command_json, nullptr, false)},
              {"env", json::parse(e.env_json, nullptr, false)},
              {"gpuType", e.gpu_type},
              {"gpuCount", e.gpu_count},
              {"workersMin", e.workers_min},
              {"workersMax", e.workers_max},
              {"cachedReplicas", e.cached_replicas},
              {"idleTimeout", e.idle_timeout_s},
              {"scalerType", e.scaler_type},
              {"scalerValue", e.scaler_value},
              {"executionTimeoutMs", e.execution_timeout_ms},
              {"ttlMs", e.ttl_ms},
              {"createdAt", e.created_ms},
              {"updatedAt", e.updated_ms},
              {"image", e.image.empty() ? json(nullptr) : json(e.image)},
              {"args", json::parse(e.args_json, nullptr, false)},
              {"hasRegistryAuth", e.registry_auth.has_value()},
              {"models", ModelsJson(e)},
              {"links", json::parse(e.links_json, nullptr, false)}};
}

json WorkerJson(const WorkerRecord& w, const WorkerExit* exit) {
  auto opt = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  return json{{"id", w.id},
              {"endpointId", w.endpoint_id},
              {"hostId", w.host_id},
              {"commit", w.commit},
              {"phase", w.phase},
              {"message", w.message},
              {"cacheHit", w.cache_hit},
              {"createdAt", w.created_ms},
              {"startedAt", opt(w.started_ms)},
              {"firstTakeAt", opt(w.first_take_ms)},
              {"stoppedAt", opt(w.stopped_ms)},
              {"lastPingAt", opt(w.last_ping_ms)},
              {"exitCode", exit ? opt(exit->exit_code) : json(nullptr)},
              {"signal", exit ? opt(exit->signal) : json(nullptr)},
              {"coldStart", json{{"imageMs", opt(w.image_ms)}, {"downloadMs", opt(w.download_ms)}}}};
}

// Why the endpoint's placements wait (Fleet::Backoff), or null.
json BackoffJson(const std::optional<BackoffView>& b) {
  if (!b) return nullptr;
  const PlacementFailure& f = b->last;
  return json{{"failures", b->failures},
              {"delayMs", b->delay_ms},
              {"retryAt", b->retry_ms},
              {"reason", f.reason},
              {"workerId", f.worker_id.empty() ? json(nullptr) : json(f.worker_id)},
              {"exitCode", f.exit_code ? json(*f.exit_code) : json(nullptr)},
              {"logTail", f.log_tail},
              {"failedAt", f.at_ms}};
}

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return static_cast<double>(v[std::min(k, v.size() - 1)]);
}

json PercentilesJson(const std::vector<int64_t>& v) {
  return json{{"count", v.size()},
              {"p50", Percentile(v, 50)},
              {"p90", Percentile(v, 90)},
              {"p99", Percentile(v, 99)}};
}

// A list of at most `max` strings, or InvalidArgument naming `what`.
StatusOr<json> StringList(const json& v, const std::string& what, size_t max) {
  if (!v.is_array() || v.size() > max ||
      !std::all_of(v.begin(), v.end(), [](const json& s) { return s.is_string(); })) {
    return InvalidArgumentError(what + " must be a list of at most " + std::to_string(max) +
                                " strings");
  }
  return v;
}

// registryAuth: {"username", "password"} (null or {} clears it). The password is never quoted
// back, in an answer or an error.
Status ApplyRegistryAuth(const json& b, EndpointRecord& e) {
  if (!b.contains("registryAuth")) return Status::Ok();
  const json& a = b["registryAuth"];
  if (a.is_null() || (a.is_object() && a.empty())) {
    e.registry_auth.reset();
    return Status::Ok();
  }
  const Status malformed = InvalidArgumentError(
      "registryAuth must be {\"username\": \"...\", \"password\": \"...\"} (null clears it)");
  if (!a.is_object() || a.size() != 2 || !a.contains("username") || !a.contains("password") ||
      !a["username"].is_string() || !a["password"].is_string()) {
    return malformed;
  }
  const std::string user = a["username"].get<std::string>();
  if (user.empty() || user.size() > 256 || user.find_first_of(":\n\r") != std::string::npos) {
    return InvalidArgumentError("registryAuth username must be 1 to 256 characters without ':' "
                                "or line breaks");
  }
  e.registry_auth = json{{"username", user}, {"password", a["password"]}}.dump();
  return Status::Ok();
}

// models: [{"model", "revision"?, "include"?, "exclude"?}], 1 to 16, the first is the base;
// instead of "model". Kept unresolved here (ResolveModel fills repo, revision and commit).
Status ApplyModels(const json& b, EndpointRecord& e) {
  if (b.contains("model") && b.contains("models")) {
    return InvalidArgumentError("give either model or models, not both");
  }
  if (b.contains("model")) e.models_json = "[]";  // one whole model again
  if (!b.contains("models")) return Status::Ok();
  const json& list = b["models"];
  if (!list.is_array() || list.empty() || list.size() > 16) {
    return InvalidArgumentError("models must be a list of 1 to 16 models, the base first");
  }
  json out = json::array();
  for (const json& m : list) {
    if (!m.is_object() || !m.contains("model") || !m["model"].is_string()) {
      return InvalidArgumentError("each of models needs a \"model\" (a Hugging Face link or "
                                  "org/name)");
    }
    for (const auto& [k, v] : m.items()) {
      if (k != "model" && k != "revision" && k != "include" && k != "exclude") {
        return InvalidArgumentError("unknown field \"" + k.substr(0, 64) +
                                    "\" in models (model, revision, include, exclude)");
      }
    }
    json entry{{"model", m["model"]}, {"include", json::array()}, {"exclude", json::array()}};
    if (m.contains("revision")) {
      if (!m["revision"].is_string()) return InvalidArgumentError("a model's revision must be a string");
      entry["revision"] = m["revision"];
    }
    for (const char* k : {"include", "exclude"}) {
      if (m.contains(k)) {
        MC_ASSIGN_OR_RETURN(entry[k], StringList(m[k], std::string("a model's ") + k, 64));
      }
    }
    out.push_back(std::move(entry));
  }
  e.model = out[0]["model"].get<std::string>();
  e.models_json = out.dump();
  return Status::Ok();
}

// links: [{"dest": absolute path in the container, "file"?, "model"?}] (the agent's shape).
Status ApplyLinks(const json& b, EndpointRecord& e) {
  if (!b.contains("links")) return Status::Ok();
  const json& list = b["links"];
  if (list.is_null()) {
    e.links_json = "[]";
    return Status::Ok();
  }
  if (!list.is_array() || list.size() > 64) {
    return InvalidArgumentError("links must be a list of at most 64 {\"dest\", \"file\", "
                                "\"model\"}");
  }
  for (const json& l : list) {
    if (!l.is_object() || !l.contains("dest") || !l["dest"].is_string() ||
        !l["dest"].get<std::string>().starts_with("/")) {
      return InvalidArgumentError("each link needs a \"dest\": an absolute path in the worker");
    }
    for (const auto& [k, v] : l.items()) {
      if ((k != "dest" && k != "file" && k != "model") || !v.is_string()) {
        return InvalidArgumentError("a link has the strings dest, file (a path in the model) and "
                                    "model (one of the endpoint's models; default the base)");
      }
    }
  }
  e.links_json = list.dump();
  return Status::Ok();
}

// The container fields: image (validated and normalized; "" or null: a process worker), args,
// registryAuth, models and links.
Status ApplyImageFields(const json& b, EndpointRecord& e) {
  if (b.contains("image")) {
    const json& i = b["image"];
    if (i.is_null() || (i.is_string() && i.get<std::string>().empty())) {
      e.image.clear();
    } else if (!i.is_string()) {
      return InvalidArgumentError("image must be a string (an OCI reference such as "
                                  "registry.example:5000/org/worker:1)");
    } else {
      MC_ASSIGN_OR_RETURN(ImageRef ref, ImageRef::Parse(i.get<std::string>()));
      e.image = ref.str();
    }
  }
  if (b.contains("args")) {
    if (b["args"].is_null()) {
      e.args_json = "[]";
    } else {
      MC_ASSIGN_OR_RETURN(json args, StringList(b["args"], "args", 256));
      e.args_json = args.dump();
    }
  }
  MC_RETURN_IF_ERROR(ApplyRegistryAuth(b, e));
  MC_RETURN_IF_ERROR(ApplyModels(b, e));
  MC_RETURN_IF_ERROR(ApplyLinks(b, e));
  if (e.image.empty() && e.registry_auth) {
    return InvalidArgumentError("registryAuth is for pulling the endpoint's image; it has none");
  }
  if (e.image.empty() && e.args_json != "[]") {
    return InvalidArgumentError("args replace the image's CMD; without an image put the whole "
                                "argv in command");
  }
  return Status::Ok();
}

// An env entry the agents accept (their check, src/agent/workers.cc), so that a name no agent
// would start is a 400 now, not a placement that fails on every tick.
Status CheckWorkerEnvEntry(const std::string& name, const std::string& value) {
  const bool ok_name =
      !name.empty() && name.size() <= 256 && !std::isdigit(static_cast<unsigned char>(name[0])) &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
      });
  if (!ok_name) {
    return InvalidArgumentError("env: bad variable name " + net::JsonQuote(name.substr(0, 64)) +
                                " (letters, digits and '_', not starting with a digit)");
  }
  if (value.find('\0') != std::string::npos) {
    return InvalidArgumentError("env: the value of " + name + " contains a NUL byte");
  }
  return Status::Ok();
}

// The text fields of a create/update body: name, model, gpuType, scalerType, hfToken, command
// and env.
Status ApplyEndpointText(const json& b, EndpointRecord& e) {
  auto str = [&](const char* k, std::string& out) -> Status {
    if (!b.contains(k)) return Status::Ok();
    if (!b[k].is_string()) return InvalidArgumentError(std::string(k) + " must be a string");
    out = b[k].get<std::string>();
    return Status::Ok();
  };
  MC_RETURN_IF_ERROR(str("name", e.name));
  if (e.name.size() > 200) return InvalidArgumentError("name is longer than 200 characters");
  MC_RETURN_IF_ERROR(str("model", e.model));
  MC_RETURN_IF_ERROR(str("gpuType", e.gpu_type));
  MC_RETURN_IF_ERROR(str("scalerType", e.scaler_type));
  if (e.scaler_type != "QUEUE_DELAY" && e.scaler_type != "REQUEST_COUNT") {
    return InvalidArgumentError("scalerType must be QUEUE_DELAY or REQUEST_COUNT");
  }
  if (b.contains("hfToken")) {
    if (b["hfToken"].is_null()) {
      e.hf_token.reset();
    } else if (!b["hfToken"].is_string()) {
      return InvalidArgumentError("hfToken must be a string");
    } else {
      e.hf_token = b["hfToken"].get<std::string>();
      if (e.hf_token->empty()) e.hf_token.reset();
    }
  }
  if (b.contains("command")) {
    const json& c = b["command"];
    if (c.is_null() || (c.is_array() && c.empty())) {  // cleared: the image's own ENTRYPOINT
      e.command_json = "[]";
    } else if (!c.is_array() ||
               !std::all_of(c.begin(), c.end(), [](const json& v) { return v.is_string(); })) {
      return InvalidArgumentError("command must be a list of strings (the worker's argv, or the "
                                  "image's entrypoint replaced)");
    } else {
      e.command_json = c.dump();
    }
  }
  if (b.contains("env")) {
    const json& env = b["env"];
    if (!env.is_object()) return InvalidArgumentError("env must be an object of strings");
    for (const auto& [k, v] : env.items()) {
      if (!v.is_string()) return InvalidArgumentError("env values must be strings");
      MC_RETURN_IF_ERROR(CheckWorkerEnvEntry(k, v.get<std::string>()));
    }
    e.env_json = env.dump();
  }
  if (b.contains("secretEnv")) {  // write-only: stored sealed, given to workers, never shown
    const json& env = b["secretEnv"];
    if (env.is_null() || (env.is_object() && env.empty())) {
      e.secret_env.reset();
    } else if (!env.is_object()) {
      return InvalidArgumentError("secretEnv must be an object of strings");
    } else {
      for (const auto& [k, v] : env.items()) {
        if (!v.is_string()) return InvalidArgumentError("secretEnv values must be strings");
        MC_RETURN_IF_ERROR(CheckWorkerEnvEntry(k, v.get<std::string>()));
      }
      e.secret_env = env.dump();
    }
  }
  return ApplyImageFields(b, e);
}

// The numeric fields of a create/update body, each within its range.
Status ApplyEndpointNumbers(const json& b, EndpointRecord& e) {
  auto integer = [&](const char* k, auto& out, int64_t lo, int64_t hi) -> Status {
    if (!b.contains(k)) return Status::Ok();
    if (!b[k].is_number_integer()) return InvalidArgumentError(std::string(k) + " must be an integer");
    const int64_t v = b[k].get<int64_t>();
    if (v < lo || v > hi) {
      return InvalidArgumentError(std::string(k) + " must be in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(v);
    return Status::Ok();
  };
  MC_RETURN_IF_ERROR(integer("gpuCount", e.gpu_count, 0, 64));
  MC_RETURN_IF_ERROR(integer("workersMin", e.workers_min, 0, 1000));
  MC_RETURN_IF_ERROR(integer("workersMax", e.workers_max, 0, 1000));
  MC_RETURN_IF_ERROR(integer("cachedReplicas", e.cached_replicas, 0, kMaxCachedReplicas));
  MC_RETURN_IF_ERROR(integer("idleTimeout", e.idle_timeout_s, 1, 3600));
  MC_RETURN_IF_ERROR(integer("executionTimeoutMs", e.execution_timeout_ms, kMinExecutionMs,
                             kMaxPolicyMs));
  MC_RETURN_IF_ERROR(integer("ttlMs", e.ttl_ms, kMinTtlMs, kMaxPolicyMs));
  if (b.contains("scalerValue")) {
    if (!b["scalerValue"].is_number() || b["scalerValue"].get<double>() <= 0) {
      return InvalidArgumentError("scalerValue must be a positive number");
    }
    e.scaler_value = b["scalerValue"].get<double>();
  }
  if (e.workers_min > e.workers_max) {
    return InvalidArgumentError("workersMin must not exceed workersMax");
  }
  return Status::Ok();
}

// Applies the optional fields of a create/update body to `e`. Validation only; no I/O.
Status ApplyEndpointFields(const json& b, EndpointRecord& e) {
  MC_RETURN_IF_ERROR(ApplyEndpointText(b, e));
  return ApplyEndpointNumbers(b, e);
}

constexpr std::initializer_list<const char*> kEndpointFields = {
    "name",       "model",      "hfToken",     "command",     "env",       "secretEnv",
    "gpuType",    "gpuCount",   "workersMin",  "workersMax",  "idleTimeout",
    "scalerType", "scalerValue", "executionTimeoutMs", "ttlMs", "image", "args",
    "registryAuth", "models",     "links",     "cachedReplicas"};


struct ModelFacts {
  std::string repo, revision, commit;
  size_t files = 0;
  uint64_t bytes = 0;
  bool gated = false, is_private = false;
};

// What the upstream says of a model text (any model-ref form) with `token`: the repo, revision
// and commit, files and bytes; the file list is noted for placement. For a gated or private repo
// the token must be accepted (Unauthenticated / PermissionDenied otherwise).
StatusOr<ModelFacts> InspectModel(ApiContext& ctx, const std::string& model,
                                  const std::optional<std::string>& token,
                                  const std::optional<std::string>& revision_text = std::nullopt) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(model), "model");
  if (ref.file) return InvalidArgumentError("model names a file; give the repo");
  ModelFacts facts;
  facts.repo = std::string(ref.repo.UrlPrefix()) + ref.repo.id();
  if (revision_text) {
    MC_ASSIGN_OR_RETURN(ref.revision, Revision::Parse(*revision_text), "revision of " + model);
  }
  const Revision revision = ref.revision.value_or(Revision::Parse("main").value());
  facts.revision = revision.str();
  MC_ASSIGN_OR_RETURN(auto client,
                      UpstreamClient(ctx.options.upstream, token, ctx.options.ca_file));
  StatusOr<hub::RepoInfo> asked = client->GetRepoInfo(ref.repo, revision);
  if (!asked.ok() && UpstreamUnreachable(asked.status())) {  // origin outage: say so plainly
    return UnavailableError("the Hub at " + ctx.options.upstream.url() +
                            " cannot be reached: " + asked.status().message() +
                            ". Try again when it is back; endpoints that exist keep running on "
                            "hosts that hold their models");
  }
  MC_ASSIGN_OR_RETURN(hub::RepoInfo info, std::move(asked), "model");
  facts.commit = info.sha.str();
  facts.gated = info.gated;
  facts.is_private = info.is_private;
  MC_ASSIGN_OR_RETURN(std::vector<hub::TreeFile> tree, client->ListTree(ref.repo, info.sha),
                      "model");
  std::vector<Fleet::Blob> blobs;
  std::set<std::string> seen;
  for (const hub::TreeFile& f : tree) {
    blobs.push_back({f.BlobEtag().str(), f.size});
    if (seen.insert(f.BlobEtag().str()).second) facts.bytes += f.size;
  }
  facts.files = tree.size();
  ctx.fleet.NoteModelFiles(facts.repo, facts.commit, std::move(blobs));
  Status access = CheckFileAccess(*client, ref.repo, info.sha, info);
  if (!access.ok()) {
    const std::string kind = info.gated ? "gated" : "private";
    if (!token) {
      return Status(access.code(), facts.repo + " is " + kind +
                                       ": give an access token (hfToken) that has been granted "
                                       "access to it");
    }
    return Status(access.code(), "the access token is not accepted for " + facts.repo + " (" +
                                     kind + "): " + access.message());
  }
  return facts;
}

// Sets repo, revision and commit of `e` (and of each of its models) from InspectModel with
// e.hf_token. A link must name one of the models.
Status ResolveModel(ApiContext& ctx, EndpointRecord& e) {
  json models = json::parse(e.models_json, nullptr, false);
  if (!models.is_array() || models.empty()) {
    MC_ASSIGN_OR_RETURN(ModelFacts facts, InspectModel(ctx, e.model, e.hf_token));
    e.repo = facts.repo;
    e.revision = facts.revision;
    e.commit = facts.commit;
    models = ModelsJson(e);
  } else {
    for (size_t i = 0; i < models.size(); ++i) {
      json& m = models[i];
      std::optional<std::string> revision;
      if (m.contains("revision") && !m.contains("commit")) revision = m["revision"];  // as given
      MC_ASSIGN_OR_RETURN(ModelFacts facts,
                          InspectModel(ctx, m["model"].get<std::string>(), e.hf_token, revision),
                          "models[" + std::to_string(i) + "]");
      m["repo"] = facts.repo;
      m["revision"] = facts.revision;
      m["commit"] = facts.commit;
      if (i == 0) {
        e.repo = facts.repo;
        e.revision = facts.revision;
        e.commit = facts.commit;
      }
    }
    e.models_json = models.dump();
  }
  const json links = json::parse(e.links_json, nullptr, false);
  for (const json& l : links.is_array() ? links : json::array()) {
    if (!l.contains("model")) continue;
    auto ref = hub::ParseModelRef(l["model"].get<std::string>());
    const std::string repo =
        ref.ok() ? std::string(ref->repo.UrlPrefix()) + ref->repo.id() : std::string();
    if (std::none_of(models.begin(), models.end(),
                     [&](const json& m) { return m.value("repo", "") == repo; })) {
      return InvalidArgumentError("the link to " + l["dest"].get<std::string>().substr(0, 200) +
                                  " names a model the endpoint does not have");
    }
  }
  return Status::Ok();
}

// The endpoint a /v1/endpoints/{id} route names: NotFound for an id of the wrong form (no such
// route), an unknown endpoint or another tenant's.
StatusOr<EndpointRecord> EndpointOf(ApiContext& ctx, const net::HttpRequest& req,
                                    const net::PathParams& params) {
  const std::string& id = params.Get("id");
  if (!ValidId(id)) return NoRoute(req);
  return VisibleEndpoint(ctx, req, id);
}

// The endpoints the caller sees (all for an admin), oldest first.
StatusOr<std::vector<EndpointRecord>> VisibleEndpoints(ApiContext& ctx,
                                                       const net::HttpRequest& req) {
  MC_ASSIGN_OR_RETURN(std::vector<EndpointRecord> all, ctx.store.ListEndpoints());
  const Principal caller = Caller(ctx, req);
  std::erase_if(all, [&](const EndpointRecord& e) { return !caller.Sees(e.tenant); });
  return all;
}

// The endpoint ids a ?endpoint= filter stands for: that one if the caller sees it (none
// otherwise), or with no filter every endpoint for an admin (empty = all), the caller's own
// endpoints for others.
StatusOr<std::vector<std::string>> EndpointFilter(ApiContext& ctx, const net::HttpRequest& req) {
  const std::string filter = req.QueryParam("endpoint").value_or("");
  if (!filter.empty()) {
    if (!VisibleEndpoint(ctx, req, filter).ok()) return std::vector<std::string>{};
    return std::vector<std::string>{filter};
  }
  if (Caller(ctx, req).admin()) return std::vector<std::string>{""};
  MC_ASSIGN_OR_RETURN(std::vector<EndpointRecord> mine, VisibleEndpoints(ctx, req));
  std::vector<std::string> ids;
  for (const EndpointRecord& e : mine) ids.push_back(e.id);
  return ids;
}

void CreateEndpoint(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                    net::HttpResponse& res) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return net::SetJsonError(res, body.status());
  Status s = CheckFields(*body, kEndpointFields);
  EndpointRecord e;
  if (s.ok()) s = ApplyEndpointFields(*body, e);
  if (s.ok() && e.name.empty()) s = InvalidArgumentError("name is required");
  if (s.ok() && e.model.empty()) s = InvalidArgumentError("model is required (a Hugging Face link)");
  if (s.ok() && e.command_json == "[]" && e.image.empty()) {
    s = InvalidArgumentError("image or command is required: the worker's OCI image (e.g. "
                             "\"registry.example:5000/org/worker:1\"), or for hosts that run "
                             "processes the worker program, e.g. [\"python3\", "
                             "\"examples/runpod_worker.py\"]");
  }
  if (s.ok()) s = ResolveModel(ctx, e);
  if (!s.ok()) return net::SetJsonError(res, s);
  e.id = RandomAlnum(14);
  e.tenant = Caller(ctx, req).tenant;
  e.created_ms = e.updated_ms = NowMs(*ctx.options.clock);
  SealEndpointSecrets(ctx.secrets, e);
  s = ctx.store.PutEndpoint(e);
  if (!s.ok()) return net::SetJsonError(res, s);
  spdlog::info("controller: endpoint {} ({}) created for {}@{}", e.id, e.name, e.repo, e.commit);
  if (ctx.kick) ctx.kick();  // its workersMin start now, not at the next tick
  net::SetJson(res, 200, EndpointJson(e).dump());
}

void UpdateEndpoint(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                    net::HttpResponse& res) {
  auto existing = EndpointOf(ctx, req, params);
  if (!existing.ok()) return net::SetJsonError(res, existing.status());
  auto body = ParseObject(req.body);
  if (!body.ok()) return net::SetJsonError(res, body.status());
  EndpointRecord e = *existing;
  Status s = OpenEndpointSecrets(ctx.secrets, e);  // the token, if the model is resolved again
  if (s.ok()) s = CheckFields(*body, kEndpointFields);
  if (s.ok()) s = ApplyEndpointFields(*body, e);
  if (s.ok() && e.command_json == "[]" && e.image.empty()) {
    s = InvalidArgumentError("an endpoint needs an image or a command");
  }
  // The models are resolved again (a branch may have moved), with the token as it is now.
  if (s.ok() && (body->contains("model") || body->contains("models") ||
                 body->contains("hfToken") || body->contains("links"))) {
    if (!body->contains("models")) {  // resolve each model from its text again
      json models = json::parse(e.models_json, nullptr, false);
      for (json& m : models.is_array() ? models : json::array()) m.erase("commit");
      if (models.is_array() && !models.empty()) e.models_json = models.dump();
    }
    s = ResolveModel(ctx, e);
  }
  if (!s.ok()) return net::SetJsonError(res, s);
  e.updated_ms = NowMs(*ctx.options.clock);
  SealEndpointSecrets(ctx.secrets, e);
  s = ctx.store.PutEndpoint(e);
  if (!s.ok()) return net::SetJsonError(res, s);
  if (ctx.kick) ctx.kick();  // new sizes, or a fixed command after failed starts: act now
  net::SetJson(res, 200, EndpointJson(e).dump());
}

// The hosts keeping the endpoint's commit for the fleet (replicas.h): each with whether its copy
// is complete, and whether the host is lost.
json ReplicasJson(const EndpointRecord& e, const std::vector<HostView>& hosts) {
  json list = json::array();
  for (const auto& [key, repo] : HeartbeatPins(hosts)) {
    if (key.second != e.commit) continue;
    for (const HostView& h : hosts) {
      if (h.id != key.first) continue;
      bool complete = false;
      for (const HostView::Snapshot& s : h.snapshots)
        complete |= s.commit == e.commit && s.complete;
      list.push_back(json{{"hostId", h.id}, {"complete", complete}, {"lost", h.lost}});
    }
  }
  return list;
}

void ShowEndpoint(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                  net::HttpResponse& res) {
  auto e = EndpointOf(ctx, req, params);
  if (!e.ok()) return net::SetJsonError(res, e.status());
  const std::string& id = e->id;
  json out = EndpointJson(*e);
  std::map<std::string, int> phases;
  for (const WorkerRecord& w : ctx.fleet.Workers(id)) ++phases[w.phase];
  out["workers"] = phases;
  const QueueLoad load = ctx.jobs.Load(id);
  out["queue"] = json{{"inQueue", load.in_queue}, {"inProgress", load.in_progress}};
  std::vector<int64_t> hit, miss;
  for (const ColdStart& c : ctx.fleet.ColdStarts(id)) (c.cache_hit ? hit : miss).push_back(c.total_ms);
  out["coldStarts"] = json{{"hit", PercentilesJson(hit)}, {"miss", PercentilesJson(miss)}};
  double billed = 0, unbilled = 0;
  auto rows = ctx.store.ListLedger(id);
  const int64_t now = NowMs(*ctx.options.clock);
  if (rows.ok()) {
    for (const LedgerRow& r : *rows) {
      const double s = static_cast<double>(r.end_ms.value_or(now) - r.start_ms) / 1000.0;
      (r.billed ? billed : unbilled) += s;
    }
  }
  out["seconds"] = json{{"billed", billed}, {"unbilled", unbilled}};
  out["placementBackoff"] = BackoffJson(ctx.fleet.Backoff(id));
  out["replicas"] = ReplicasJson(*e, ctx.fleet.Hosts());
  // Origin outage (entitlements.h): workers go only to hosts that hold their commit.
  out["upstreamReachable"] = !ctx.fleet.UpstreamDown();
  // A commit update replacing the workers one at a time (rollout.h); null when there is none.
  if (auto r = ctx.fleet.Rollout(id)) {
    out["rollout"] = json{{"from", r->from},
                          {"to", r->to},
                          {"replaced", r->replaced},
                          {"total", r->total},
                          {"state", r->state}};
  } else {
    out["rollout"] = nullptr;
  }
  net::SetJson(res, 200, out.dump());
}

void ListEndpoints(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                   net::HttpResponse& res) {
  auto list = VisibleEndpoints(ctx, req);
  if (!list.ok()) return net::SetJsonError(res, list.status());
  json out = json::array();
  for (const EndpointRecord& e : *list) out.push_back(EndpointJson(e));
  net::SetJson(res, 200, json{{"endpoints", out}}.dump());
}

void DeleteEndpoint(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                    net::HttpResponse& res) {
  auto e = EndpointOf(ctx, req, params);
  if (!e.ok()) return net::SetJsonError(res, e.status());
  const std::string& id = e->id;
  ctx.fleet.StopEndpoint(id);
  Status s = ctx.store.DeleteEndpoint(id);
  if (!s.ok()) return net::SetJsonError(res, s);
  ctx.jobs.ForgetEndpoint(id);
  net::SetJson(res, 200, json{{"id", id}, {"deleted", true}}.dump());
}

void ResolveModelRoute(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                       net::HttpResponse& res) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return net::SetJsonError(res, body.status());
  Status s = CheckFields(*body, {"model", "hfToken"});
  EndpointRecord e;  // the same field rules as an endpoint's
  if (s.ok()) s = ApplyEndpointFields(*body, e);
  if (s.ok() && e.model.empty()) s = InvalidArgumentError("model is required (a Hugging Face link)");
  if (!s.ok()) return net::SetJsonError(res, s);
  auto facts = InspectModel(ctx, e.model, e.hf_token);
  if (!facts.ok()) return net::SetJsonError(res, facts.status());
  net::SetJson(res, 200,
               json{{"model", e.model}, {"repo", facts->repo}, {"revision", facts->revision},
                    {"commit", facts->commit}, {"files", facts->files},
                    {"sizeBytes", facts->bytes}, {"gated", facts->gated},
                    {"private", facts->is_private}}
                   .dump());
}

void ListWorkers(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                 net::HttpResponse& res) {
  auto endpoints = EndpointFilter(ctx, req);
  if (!endpoints.ok()) return net::SetJsonError(res, endpoints.status());
  json out = json::array();
  const std::map<std::string, WorkerExit> exits = ctx.fleet.Exits("");
  for (const std::string& ep : *endpoints) {
    for (const WorkerRecord& w : ctx.fleet.Workers(ep)) {
      auto exit = exits.find(w.id);
      out.push_back(WorkerJson(w, exit == exits.end() ? nullptr : &exit->second));
    }
  }
  net::SetJson(res, 200, json{{"workers", out}}.dump());
}

void ListLedger(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                net::HttpResponse& res) {
  // By the rows' own tenant: they outlive their endpoint.
  const Principal caller = Caller(ctx, req);
  const std::string filter = req.QueryParam("endpoint").value_or("");
  auto rows = ctx.store.ListLedger(filter);
  if (!rows.ok()) return net::SetJsonError(res, rows.status());
  // An initializing row shows its two parallel parts (image pull, model download), unbilled.
  std::map<std::string, WorkerRecord> workers;
  for (WorkerRecord& w : ctx.fleet.Workers(req.QueryParam("endpoint").value_or(""))) {
    workers[w.id] = std::move(w);
  }
  auto opt = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
  json out = json::array();
  for (const LedgerRow& r : *rows) {
    if (!caller.Sees(r.tenant)) continue;
    json row{{"workerId", r.worker_id}, {"endpointId", r.endpoint_id},
             {"phase", r.phase}, {"start", r.start_ms},
             {"end", r.end_ms ? json(*r.end_ms) : json(nullptr)},
             {"billed", r.billed}};
    auto w = workers.find(r.worker_id);
    if (r.phase == "initializing" && w != workers.end()) {
      row["parts"] = json{{"imageMs", opt(w->second.image_ms)},
                          {"downloadMs", opt(w->second.download_ms)}};
    }
    out.push_back(std::move(row));
  }
  net::SetJson(res, 200, json{{"ledger", out}}.dump());
}

void ListColdStarts(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                    net::HttpResponse& res) {
  auto endpoints = EndpointFilter(ctx, req);
  if (!endpoints.ok()) return net::SetJsonError(res, endpoints.status());
  json out = json::array();
  auto opt = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
  for (const std::string& ep : *endpoints) {
    for (const ColdStart& c : ctx.fleet.ColdStarts(ep)) {
      out.push_back(json{{"workerId", c.worker_id}, {"cacheHit", c.cache_hit},
                         {"queueMs", c.queue_ms}, {"downloadMs", c.download_ms},
                         {"startMs", c.start_ms}, {"totalMs", c.total_ms},
                         {"parts", json{{"imageMs", opt(c.image_part_ms)},
                                        {"downloadMs", opt(c.download_part_ms)}}}});
    }
  }
  net::SetJson(res, 200, json{{"coldStarts", out}}.dump());
}

}  // namespace

void AddEndpointRoutes(net::Router& keyed, ApiContext& ctx) {
  keyed.Add("GET", "/v1/endpoints", Bind(ctx, ListEndpoints));
  keyed.Add("POST", "/v1/endpoints", Bind(ctx, CreateEndpoint));
  keyed.Add("GET", "/v1/endpoints/{id}", Bind(ctx, ShowEndpoint));
  keyed.Add("PATCH", "/v1/endpoints/{id}", Bind(ctx, UpdateEndpoint));
  keyed.Add("POST", "/v1/endpoints/{id}", Bind(ctx, UpdateEndpoint));
  keyed.Add("DELETE", "/v1/endpoints/{id}", Bind(ctx, DeleteEndpoint));
  keyed.Add("POST", "/v1/models/resolve", Bind(ctx, ResolveModelRoute));
  keyed.Add("GET", "/v1/workers", Bind(ctx, ListWorkers));
  keyed.Add("GET", "/v1/ledger", Bind(ctx, ListLedger));
  keyed.Add("GET", "/v1/coldstarts", Bind(ctx, ListColdStarts));
}

}  // namespace mc::controller
