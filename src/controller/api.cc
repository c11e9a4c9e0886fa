#include "controller/api.h"

#include "controller/console.h"
#include "controller/hub_access.h"
#include "controller/keys.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "mc/hub/hub_client.h"
#include "mc/hub/model_ref.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

constexpr int64_t kMinExecutionMs = 5'000, kMinTtlMs = 10'000, kMaxPolicyMs = 7LL * 86'400'000;

int64_t NowMs(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}



void SendJson(net::HttpResponse& res, int code, const json& body) {
  res.SetText(code, body.dump(), "application/json");
}

void SendError(net::HttpResponse& res, const Status& s) {
  SendJson(res, ToHttpStatus(s),
           json{{"error", s.message()}, {"code", std::string(StatusCodeName(s.code()))}});
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 120) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Host ids come from agents (--host-id, default the hostname): letters, digits, '.', '-', '_'.
bool ValidHostId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
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

// Milliseconds in a ?wait= parameter, clamped to [lo, hi]; `fallback` when absent.
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

// The job object a worker receives: id, input and the passed-through top-level keys.
json WorkerJob(const JobRecord& j) {
  json o = json::parse(j.extra_json, nullptr, false);
  if (!o.is_object()) o = json::object();
  o["id"] = j.id;
  o["input"] = json::parse(j.input_json, nullptr, false);
  if (!j.webhook.empty()) o["webhook"] = j.webhook;
  return o;
}

json EndpointJson(const EndpointRecord& e) {
  return json{{"id", e.id},
              {"name", e.name},
              {"model", e.model},
              {"repo", e.repo},
              {"revision", e.revision},
              {"commit", e.commit},
              {"hasHfToken", e.hf_token.has_value()},
              {"command", json::parse(e.command_json, nullptr, false)},
              {"env", json::parse(e.env_json, nullptr, false)},
              {"gpuType", e.gpu_type},
              {"gpuCount", e.gpu_count},
              {"workersMin", e.workers_min},
              {"workersMax", e.workers_max},
              {"idleTimeout", e.idle_timeout_s},
              {"scalerType", e.scaler_type},
              {"scalerValue", e.scaler_value},
              {"executionTimeoutMs", e.execution_timeout_ms},
              {"ttlMs", e.ttl_ms},
              {"createdAt", e.created_ms},
              {"updatedAt", e.updated_ms}};
}

json WorkerJson(const WorkerRecord& w) {
  auto opt = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
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
              {"lastPingAt", opt(w.last_ping_ms)}};
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

// Applies the optional fields of a create/update body to `e`. Validation only; no I/O.
Status ApplyEndpointFields(const json& b, EndpointRecord& e) {
  auto str = [&](const char* k, std::string& out) -> Status {
    if (!b.contains(k)) return Status::Ok();
    if (!b[k].is_string()) return InvalidArgumentError(std::string(k) + " must be a string");
    out = b[k].get<std::string>();
    return Status::Ok();
  };
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
    if (!c.is_array() || c.empty() ||
        !std::all_of(c.begin(), c.end(), [](const json& v) { return v.is_string(); })) {
      return InvalidArgumentError("command must be a non-empty list of strings (the worker's argv)");
    }
    e.command_json = c.dump();
  }
  if (b.contains("env")) {
    const json& env = b["env"];
    if (!env.is_object()) return InvalidArgumentError("env must be an object of strings");
    for (const auto& [k, v] : env.items()) {
      if (!v.is_string()) return InvalidArgumentError("env values must be strings");
    }
    e.env_json = env.dump();
  }
  MC_RETURN_IF_ERROR(integer("gpuCount", e.gpu_count, 0, 64));
  MC_RETURN_IF_ERROR(integer("workersMin", e.workers_min, 0, 1000));
  MC_RETURN_IF_ERROR(integer("workersMax", e.workers_max, 0, 1000));
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

constexpr std::initializer_list<const char*> kEndpointFields = {
    "name",       "model",      "hfToken",     "command",     "env",
    "gpuType",    "gpuCount",   "workersMin",  "workersMax",  "idleTimeout",
    "scalerType", "scalerValue", "executionTimeoutMs", "ttlMs"};

}  // namespace

ControllerApi::ControllerApi(const ControllerOptions& options, ControllerStore& store,
                             JobBoard& jobs, Fleet& fleet)
    : options_(options), store_(store), jobs_(jobs), fleet_(fleet) {}

bool ControllerApi::Authorized(const std::string& authorization) {
  std::string key = authorization;
  if (key.starts_with("Bearer ")) key = key.substr(7);
  if (key.empty()) return false;
  const std::string hash = Sha256Hex(key);
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    if (known_keys_.contains(hash)) return true;
  }
  auto found = store_.HasApiKeySha256(hash);
  if (!found.ok() || !*found) return false;
  std::lock_guard<std::mutex> lock(keys_mu_);
  known_keys_.insert(hash);
  return true;
}

StatusOr<std::string> NewApiKey(ControllerStore& store, const std::string& name, int64_t now_ms) {
  if (name.empty() || name.size() > 100) return InvalidArgumentError("a key name is 1-100 characters");
  const std::string key = "mc_" + RandomAlnum(40);
  MC_RETURN_IF_ERROR(store.AddApiKey({"key-" + RandomAlnum(8), name, Sha256Hex(key), now_ms}));
  return key;
}

StatusOr<std::string> ControllerApi::CreateApiKey(const std::string& name) {
  return NewApiKey(store_, name, NowMs(*options_.clock));
}

void ControllerApi::Handle(const net::HttpRequest& req, net::HttpResponse& res) {
  if (ServeConsole(req, res)) return;  // the static web console: public, its data needs a key
  const std::vector<std::string> parts = SplitPath(req.raw_path);
  if (parts.size() == 1 && parts[0] == "health") {
    return SendJson(res, 200, json{{"status", "ok"}});
  }
  if (parts.size() >= 3 && parts[0] == "v2") {
    static const std::set<std::string> kWorkerOps = {"job-take", "job-take-batch", "job-done",
                                                     "job-stream", "job-stop", "ping"};
    if (kWorkerOps.contains(parts[2])) return WorkerApi(req, res, parts);  // the worker's key
  }
  if (!Authorized(req.headers.Get("Authorization").value_or(""))) {
    return SendError(res, UnauthenticatedError("missing or unknown API key (Authorization: Bearer "
                                               "<key>); create one with 'modelcache keys create'"));
  }
  if (parts.size() == 1 && parts[0] == "metrics" && req.method == "GET") return Metrics(res);
  if (!parts.empty() && parts[0] == "v1") return Management(req, res, parts);
  if (parts.size() >= 3 && parts[0] == "v2") return JobApi(req, res, parts);
  SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
}

// ---- /v2: the Runpod job API ----

void ControllerApi::JobApi(const net::HttpRequest& req, net::HttpResponse& res,
                           const std::vector<std::string>& p) {
  const std::string& ep = p[1];
  const std::string& op = p[2];
  if (!ValidId(ep)) return SendError(res, NotFoundError("no endpoint " + ep.substr(0, 80)));
  auto endpoint = store_.GetEndpoint(ep);
  if (!endpoint.ok()) return SendError(res, endpoint.status());
  if (!*endpoint) return SendError(res, NotFoundError("no endpoint " + ep));
  const EndpointRecord& e = **endpoint;
  const std::string& m = req.method;
  const std::string job = p.size() >= 4 ? p[3] : "";
  if ((op == "run" || op == "runsync") && p.size() == 3) {
    if (m != "POST") return SendError(res, InvalidArgumentError("use POST for /" + op));
    return Submit(req, res, e, op == "runsync");
  }
  if (op == "purge-queue" && p.size() == 3) {
    auto removed = jobs_.Purge(ep);
    if (!removed.ok()) return SendError(res, removed.status());
    return SendJson(res, 200, json{{"removed", *removed}, {"status", "completed"}});
  }
  if (op == "health" && p.size() == 3) {
    const JobCounts c = jobs_.Counts(ep);
    std::map<std::string, int> phases{{"idle", 0}, {"initializing", 0}, {"ready", 0},
                                      {"running", 0}, {"throttled", 0}, {"unhealthy", 0}};
    for (const WorkerRecord& w : fleet_.Workers(ep)) {
      if (w.phase == "idle" || w.phase == "running" || w.phase == "initializing") ++phases[w.phase];
      if (w.phase == "starting") ++phases["ready"];
    }
    // Also counted in their phase: workers whose last ping said status=unhealthy. Throttled:
    // workers the autoscaler wants but no host can take now.
    phases["unhealthy"] = fleet_.Unhealthy(ep);
    phases["throttled"] = fleet_.Throttled(ep);
    return SendJson(res, 200,
                    json{{"jobs",
                          {{"completed", c.completed}, {"failed", c.failed},
                           {"inProgress", c.in_progress}, {"inQueue", c.in_queue},
                           {"retried", c.retried}}},
                         {"workers", phases}});
  }
  if (p.size() != 4 || !ValidId(job)) {
    return SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
  }
  if (op == "status") {
    auto j = jobs_.Get(ep, job);
    return j.ok() ? SendJson(res, 200, JobStatusObject(*j)) : SendError(res, j.status());
  }
  if (op == "status-sync") {
    auto j = jobs_.WaitFinal(ep, job, WaitMs(req, 90'000, 1'000, 90'000));
    return j.ok() ? SendJson(res, 200, JobStatusObject(*j)) : SendError(res, j.status());
  }
  if (op == "stream") {
    auto s = jobs_.ConsumeStream(ep, job);
    if (!s.ok()) return SendError(res, s.status());
    json stream = json::array();
    for (const std::string& chunk : s->second) {
      stream.push_back(json{{"output", json::parse(chunk, nullptr, false)}});
    }
    return SendJson(res, 200, json{{"status", s->first.status}, {"stream", stream}});
  }
  if (op == "cancel") {
    auto j = jobs_.Cancel(ep, job);
    return j.ok() ? SendJson(res, 200, json{{"id", j->id}, {"status", j->status}})
                  : SendError(res, j.status());
  }
  if (op == "retry") {
    auto j = jobs_.Retry(ep, job);
    return j.ok() ? SendJson(res, 200, json{{"id", j->id}, {"status", j->status}})
                  : SendError(res, j.status());
  }
  SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
}

void ControllerApi::Submit(const net::HttpRequest& req, net::HttpResponse& res,
                           const EndpointRecord& e, bool sync) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return SendError(res, body.status());
  json& b = *body;
  if (!b.contains("input")) {
    return SendError(res, InvalidArgumentError("the body needs an \"input\" (any JSON value)"));
  }
  SubmitRequest r;
  r.sync = sync;
  r.input_json = b["input"].dump();
  if (b.contains("webhook")) {
    if (!b["webhook"].is_string()) return SendError(res, InvalidArgumentError("webhook must be a URL"));
    r.webhook = b["webhook"].get<std::string>();
    if (!r.webhook.starts_with("http://") && !r.webhook.starts_with("https://")) {
      return SendError(res, InvalidArgumentError("webhook must be an http:// or https:// URL"));
    }
  }
  if (b.contains("policy")) {
    const json& pol = b["policy"];
    if (!pol.is_object()) return SendError(res, InvalidArgumentError("policy must be an object"));
    auto ms = [&](const char* k, int64_t lo, std::optional<int64_t>& out) -> Status {
      if (!pol.contains(k)) return Status::Ok();
      if (!pol[k].is_number_integer() || pol[k].get<int64_t>() < lo ||
          pol[k].get<int64_t>() > kMaxPolicyMs) {
        return InvalidArgumentError(std::string("policy.") + k + " must be milliseconds in [" +
                                    std::to_string(lo) + ", " + std::to_string(kMaxPolicyMs) + "]");
      }
      out = pol[k].get<int64_t>();
      return Status::Ok();
    };
    Status s = ms("executionTimeout", kMinExecutionMs, r.execution_timeout_ms);
    if (s.ok()) s = ms("ttl", kMinTtlMs, r.ttl_ms);
    if (!s.ok()) return SendError(res, s);
    if (pol.contains("lowPriority") && !pol["lowPriority"].is_boolean()) {
      return SendError(res, InvalidArgumentError("policy.lowPriority must be true or false"));
    }
    r.low_priority = pol.contains("lowPriority") && pol["lowPriority"].get<bool>();
  }
  json extra = json::object();
  for (const auto& [k, v] : b.items()) {
    if (k != "input" && k != "webhook" && k != "policy") extra[k] = v;
  }
  r.extra_json = extra.dump();
  auto job = jobs_.Submit(e, r);
  if (!job.ok()) return SendError(res, job.status());
  if (kick_) kick_();
  if (!sync) return SendJson(res, 200, json{{"id", job->id}, {"status", job->status}});
  auto done = jobs_.WaitFinal(e.id, job->id,
                              WaitMs(req, options_.runsync_wait.count(), 1'000, 300'000));
  if (!done.ok()) return SendError(res, done.status());
  if (IsFinal(done->status)) return SendJson(res, 200, JobStatusObject(*done));
  SendJson(res, 200, json{{"id", done->id}, {"status", done->status}});
}

// ---- /v2: the worker protocol ----

void ControllerApi::WorkerApi(const net::HttpRequest& req, net::HttpResponse& res,
                              const std::vector<std::string>& p) {
  const std::string& ep = p[1];
  const std::string& op = p[2];
  if (p.size() < 4 || !ValidId(ep) || !ValidId(p[3])) {
    return SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
  }
  const std::string& worker = p[3];
  auto w = fleet_.Authenticate(ep, worker, req.headers.Get("Authorization").value_or(""));
  if (!w.ok()) return SendError(res, w.status());
  if (op == "job-take" || op == "job-take-batch") {
    int batch = 1;
    if (op == "job-take-batch") {
      batch = std::clamp(std::atoi(req.QueryParam("batch_size").value_or("1").c_str()), 1, 64);
    }
    fleet_.OnTake(worker, 0);
    std::vector<JobRecord> taken = jobs_.Take(ep, worker, batch, options_.take_hold,
                                              [&] { return fleet_.AcceptsJobs(worker); });
    fleet_.OnTake(worker, taken.size());
    if (taken.empty()) {
      res.status = 204;
      return;
    }
    if (op == "job-take") return SendJson(res, 200, WorkerJob(taken.front()));
    json list = json::array();
    for (const JobRecord& j : taken) list.push_back(WorkerJob(j));
    return SendJson(res, 200, list);
  }
  if (op == "job-stop") {
    std::vector<std::string> stops = jobs_.TakeStops(worker, options_.take_hold);
    if (stops.empty()) {
      res.status = 204;
      return;
    }
    return SendJson(res, 200, json{{"jobsToStop", stops}});
  }
  if (op == "ping") {
    std::vector<std::string> ids;
    std::stringstream ss(req.QueryParam("job_id").value_or(""));
    std::string id;
    while (std::getline(ss, id, ',')) {
      if (!id.empty()) ids.push_back(id);
    }
    const bool unhealthy = req.QueryParam("status").value_or("") == "unhealthy";
    fleet_.OnPing(worker, unhealthy);
    jobs_.Ping(worker, ids);
    if (unhealthy) {
      spdlog::warn("controller: worker {} reports itself unhealthy (check {})", worker,
                   req.QueryParam("check").value_or("?").substr(0, 64));
    }
    return SendJson(res, 200, json::object());
  }
  if ((op == "job-done" || op == "job-stream") && p.size() == 5 && ValidId(p[4])) {
    if (req.method != "POST") return SendError(res, InvalidArgumentError("use POST"));
    if (op == "job-stream") {
      Status s = jobs_.Stream(ep, worker, p[4], req.body);
      return s.ok() ? SendJson(res, 200, json::object()) : SendError(res, s);
    }
    bool stop_pod = false;
    Status s = jobs_.Done(ep, worker, p[4], req.body, &stop_pod);
    if (!s.ok()) return SendError(res, s);
    fleet_.OnJobDone(worker, stop_pod);
    return SendJson(res, 200, json::object());
  }
  SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
}

// ---- /v1: management ----

void ControllerApi::Hosts(const net::HttpRequest& req, net::HttpResponse& res,
                          const std::vector<std::string>& p) {
  const std::string& m = req.method;
  if (m == "POST" && ((p.size() == 3 && p[2] == "register") ||
                      (p.size() == 4 && ValidHostId(p[2]) && p[3] == "heartbeat"))) {
    Status s = fleet_.Heartbeat(req.body);
    return s.ok() ? SendJson(res, 200, json::object()) : SendError(res, s);
  }
  if (m == "GET" && p.size() == 2) {
    json out = json::array();
    for (const HostView& h : fleet_.Hosts()) {
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
      out.push_back(json{{"id", h.id}, {"url", h.url}, {"gpuType", h.gpu_type},
                         {"gpus", {{"total", h.gpus_total}, {"free", h.gpus_free}}},
                         {"disk", {{"capacityBytes", h.capacity}, {"usedBytes", h.used},
                                   {"reservedBytes", h.reserved},
                                   {"highWatermarkBytes", h.high_watermark},
                                   {"lowWatermarkBytes", h.low_watermark}}},
                         {"snapshots", snaps}, {"downloads", downloads},
                         {"lastSeen", h.last_seen_ms}, {"lost", h.lost}});
    }
    return SendJson(res, 200, json{{"hosts", out}});
  }
  // Pin, unpin and evict on one host: checked here, then sent to its agent, whose answer is
  // passed on; the host's inventory is fetched again at once so that lists show the change.
  const bool pins = p.size() == 4 && p[3] == "pins" && (m == "POST" || m == "DELETE");
  const bool evict = p.size() == 4 && p[3] == "evict" && m == "POST";
  if ((pins || evict) && ValidHostId(p[2])) {
    auto body = ParseObject(req.body);
    if (!body.ok()) return SendError(res, body.status());
    Status s = CheckFields(*body, {"model", "commit"});
    if (s.ok() && !(body->contains("model") && (*body)["model"].is_string() &&
                    body->contains("commit") && (*body)["commit"].is_string())) {
      s = InvalidArgumentError("the body needs \"model\" and \"commit\" strings");
    }
    if (s.ok()) s = hub::ParseModelRef((*body)["model"].get<std::string>()).status();
    if (s.ok() && !CommitSha::IsValid((*body)["commit"].get<std::string>())) {
      s = InvalidArgumentError("commit must be 40 hex characters");
    }
    if (!s.ok()) return SendError(res, s);
    const json agent_body{{"model", (*body)["model"]}, {"revision", (*body)["commit"]}};
    auto answer = fleet_.AgentRequest(p[2], m, pins ? "/v1/pins" : "/v1/evict", agent_body.dump());
    if (!answer.ok()) return SendError(res, answer.status());
    auto inventory = fleet_.AgentRequest(p[2], "GET", "/v1/inventory", "");
    if (inventory.ok() && inventory->first == 200) {
      Status refreshed = fleet_.Heartbeat(inventory->second);
      if (!refreshed.ok()) spdlog::warn("controller: host {}: {}", p[2], refreshed.ToString());
    }
    spdlog::info("controller: {} {}@{} on host {}: HTTP {}",
                 evict ? "evict" : (m == "POST" ? "pin" : "unpin"),
                 (*body)["model"].get<std::string>(), (*body)["commit"].get<std::string>(), p[2],
                 answer->first);
    return res.SetText(answer->first, answer->second, "application/json");
  }
  SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
}

// Prometheus text: jobs, workers, cold starts and seconds per endpoint; hosts' GPUs and disks.
void ControllerApi::Metrics(net::HttpResponse& res) {
  std::ostringstream out;
  auto family = [&](const char* name, const char* help, const char* type) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  auto label = [](const std::string& v) { return json(v).dump(); };  // quoted and escaped
  auto endpoints = store_.ListEndpoints();
  if (!endpoints.ok()) return SendError(res, endpoints.status());
  std::vector<JobCounts> counts;  // one walk of each endpoint's jobs, for both families
  for (const EndpointRecord& e : *endpoints) counts.push_back(jobs_.Counts(e.id));
  family("modelcache_controller_jobs", "Jobs the controller holds, by status.", "gauge");
  for (size_t i = 0; i < endpoints->size(); ++i) {
    const EndpointRecord& e = (*endpoints)[i];
    const JobCounts& c = counts[i];
    for (const auto& [status, n] : {std::pair<const char*, uint64_t>{"IN_QUEUE", c.in_queue},
                                    {"IN_PROGRESS", c.in_progress},
                                    {"COMPLETED", c.completed},
                                    {"FAILED", c.failed}}) {
      out << "modelcache_controller_jobs{endpoint=" << label(e.id) << ",status=\"" << status
          << "\"} " << n << "\n";
    }
  }
  family("modelcache_controller_jobs_retried", "Jobs requeued after their worker was lost.",
         "gauge");
  for (size_t i = 0; i < endpoints->size(); ++i) {
    out << "modelcache_controller_jobs_retried{endpoint=" << label((*endpoints)[i].id) << "} "
        << counts[i].retried << "\n";
  }
  family("modelcache_controller_workers", "Workers by phase (initializing = downloading, unbilled).",
         "gauge");
  std::map<std::pair<std::string, std::string>, int> phases;
  for (const WorkerRecord& w : fleet_.Workers("")) ++phases[{w.endpoint_id, w.phase}];
  for (const auto& [key, n] : phases) {
    out << "modelcache_controller_workers{endpoint=" << label(key.first)
        << ",phase=" << label(key.second) << "} " << n << "\n";
  }
  family("modelcache_controller_cold_starts_total", "Cold starts, by cache hit or miss.",
         "counter");
  std::map<std::pair<std::string, bool>, std::pair<int64_t, int64_t>> starts;  // count, ms
  for (const EndpointRecord& e : *endpoints) {
    for (const ColdStart& c : fleet_.ColdStarts(e.id)) {
      auto& [n, ms] = starts[{e.id, c.cache_hit}];
      ++n;
      ms += c.total_ms;
    }
  }
  for (const auto& [key, v] : starts) {
    out << "modelcache_controller_cold_starts_total{endpoint=" << label(key.first)
        << ",cache=\"" << (key.second ? "hit" : "miss") << "\"} " << v.first << "\n";
  }
  family("modelcache_controller_cold_start_seconds_total",
         "Summed cold-start time (queue + download + start), by cache hit or miss.", "counter");
  for (const auto& [key, v] : starts) {
    out << "modelcache_controller_cold_start_seconds_total{endpoint=" << label(key.first)
        << ",cache=\"" << (key.second ? "hit" : "miss") << "\"} "
        << static_cast<double>(v.second) / 1000.0 << "\n";
  }
  family("modelcache_controller_worker_seconds_total",
         "Worker seconds by billing (downloads are never billed).", "counter");
  std::map<std::pair<std::string, bool>, double> seconds;
  const int64_t now = NowMs(*options_.clock);
  auto rows = store_.ListLedger("");
  if (rows.ok()) {
    for (const LedgerRow& r : *rows) {
      seconds[{r.endpoint_id, r.billed}] +=
          static_cast<double>(r.end_ms.value_or(now) - r.start_ms) / 1000.0;
    }
  }
  for (const auto& [key, v] : seconds) {
    out << "modelcache_controller_worker_seconds_total{endpoint=" << label(key.first)
        << ",billed=\"" << (key.second ? "true" : "false") << "\"} " << v << "\n";
  }
  const std::vector<HostView> hosts = fleet_.Hosts();
  family("modelcache_controller_host_up", "1 while the host sends heartbeats, 0 once lost.",
         "gauge");
  for (const HostView& h : hosts) {
    out << "modelcache_controller_host_up{host=" << label(h.id) << "} " << (h.lost ? 0 : 1)
        << "\n";
  }
  family("modelcache_controller_host_gpus", "GPU slots per host, total and free.", "gauge");
  for (const HostView& h : hosts) {
    out << "modelcache_controller_host_gpus{host=" << label(h.id) << ",kind=\"total\"} "
        << h.gpus_total << "\n"
        << "modelcache_controller_host_gpus{host=" << label(h.id) << ",kind=\"free\"} "
        << h.gpus_free << "\n";
  }
  family("modelcache_controller_host_disk_bytes", "Cache disk per host: capacity, used, reserved.",
         "gauge");
  for (const HostView& h : hosts) {
    for (const auto& [kind, v] : {std::pair<const char*, uint64_t>{"capacity", h.capacity},
                                  {"used", h.used},
                                  {"reserved", h.reserved}}) {
      out << "modelcache_controller_host_disk_bytes{host=" << label(h.id) << ",kind=\"" << kind
          << "\"} " << v << "\n";
    }
  }
  res.SetText(200, out.str(), "text/plain; version=0.0.4");
}

StatusOr<ControllerApi::ModelFacts> ControllerApi::InspectModel(
    const std::string& model, const std::optional<std::string>& token) {
  MC_ASSIGN_OR_RETURN(hub::ModelRef ref, hub::ParseModelRef(model), "model");
  if (ref.file) return InvalidArgumentError("model names a file; give the repo");
  ModelFacts facts;
  facts.repo = std::string(ref.repo.UrlPrefix()) + ref.repo.id();
  const Revision revision = ref.revision.value_or(Revision::Parse("main").value());
  facts.revision = revision.str();
  MC_ASSIGN_OR_RETURN(auto client, UpstreamClient(options_.upstream, token));
  MC_ASSIGN_OR_RETURN(hub::RepoInfo info, client->GetRepoInfo(ref.repo, revision), "model");
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
  fleet_.NoteModelFiles(facts.repo, facts.commit, std::move(blobs));
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

Status ControllerApi::ResolveModel(EndpointRecord& e) {
  MC_ASSIGN_OR_RETURN(ModelFacts facts, InspectModel(e.model, e.hf_token));
  e.repo = facts.repo;
  e.revision = facts.revision;
  e.commit = facts.commit;
  return Status::Ok();
}

void ControllerApi::CreateEndpoint(const net::HttpRequest& req, net::HttpResponse& res) {
  auto body = ParseObject(req.body);
  if (!body.ok()) return SendError(res, body.status());
  Status s = CheckFields(*body, kEndpointFields);
  EndpointRecord e;
  if (s.ok()) s = ApplyEndpointFields(*body, e);
  if (s.ok() && e.name.empty()) s = InvalidArgumentError("name is required");
  if (s.ok() && e.model.empty()) s = InvalidArgumentError("model is required (a Hugging Face link)");
  if (s.ok() && e.command_json == "[]") {
    s = InvalidArgumentError("command is required: the worker program, e.g. [\"python3\", "
                             "\"examples/runpod_worker.py\"]");
  }
  if (s.ok()) s = ResolveModel(e);
  if (!s.ok()) return SendError(res, s);
  e.id = RandomAlnum(14);
  e.created_ms = e.updated_ms = NowMs(*options_.clock);
  s = store_.PutEndpoint(e);
  if (!s.ok()) return SendError(res, s);
  spdlog::info("controller: endpoint {} ({}) created for {}@{}", e.id, e.name, e.repo, e.commit);
  SendJson(res, 200, EndpointJson(e));
}

void ControllerApi::UpdateEndpoint(const net::HttpRequest& req, net::HttpResponse& res,
                                   const std::string& id) {
  auto existing = store_.GetEndpoint(id);
  if (!existing.ok()) return SendError(res, existing.status());
  if (!*existing) return SendError(res, NotFoundError("no endpoint " + id));
  auto body = ParseObject(req.body);
  if (!body.ok()) return SendError(res, body.status());
  EndpointRecord e = **existing;
  Status s = CheckFields(*body, kEndpointFields);
  if (s.ok()) s = ApplyEndpointFields(*body, e);
  // The model is resolved again (a branch may have moved), with the token as it is now.
  if (s.ok() && (body->contains("model") || body->contains("hfToken"))) s = ResolveModel(e);
  if (!s.ok()) return SendError(res, s);
  e.updated_ms = NowMs(*options_.clock);
  s = store_.PutEndpoint(e);
  if (!s.ok()) return SendError(res, s);
  SendJson(res, 200, EndpointJson(e));
}

void ControllerApi::ShowEndpoint(net::HttpResponse& res, const std::string& id) {
  auto e = store_.GetEndpoint(id);
  if (!e.ok()) return SendError(res, e.status());
  if (!*e) return SendError(res, NotFoundError("no endpoint " + id));
  json out = EndpointJson(**e);
  std::map<std::string, int> phases;
  for (const WorkerRecord& w : fleet_.Workers(id)) ++phases[w.phase];
  out["workers"] = phases;
  const QueueLoad load = jobs_.Load(id);
  out["queue"] = json{{"inQueue", load.in_queue}, {"inProgress", load.in_progress}};
  std::vector<int64_t> hit, miss;
  for (const ColdStart& c : fleet_.ColdStarts(id)) (c.cache_hit ? hit : miss).push_back(c.total_ms);
  out["coldStarts"] = json{{"hit", PercentilesJson(hit)}, {"miss", PercentilesJson(miss)}};
  double billed = 0, unbilled = 0;
  auto rows = store_.ListLedger(id);
  const int64_t now = NowMs(*options_.clock);
  if (rows.ok()) {
    for (const LedgerRow& r : *rows) {
      const double s = static_cast<double>(r.end_ms.value_or(now) - r.start_ms) / 1000.0;
      (r.billed ? billed : unbilled) += s;
    }
  }
  out["seconds"] = json{{"billed", billed}, {"unbilled", unbilled}};
  SendJson(res, 200, out);
}

void ControllerApi::Management(const net::HttpRequest& req, net::HttpResponse& res,
                               const std::vector<std::string>& p) {
  const std::string& m = req.method;
  const std::string what = p.size() >= 2 ? p[1] : "";
  const std::string endpoint_filter = req.QueryParam("endpoint").value_or("");
  if (what == "endpoints" && p.size() == 2) {
    if (m == "POST") return CreateEndpoint(req, res);
    auto list = store_.ListEndpoints();
    if (!list.ok()) return SendError(res, list.status());
    json out = json::array();
    for (const EndpointRecord& e : *list) out.push_back(EndpointJson(e));
    return SendJson(res, 200, json{{"endpoints", out}});
  }
  if (what == "endpoints" && p.size() == 3 && ValidId(p[2])) {
    if (m == "GET") return ShowEndpoint(res, p[2]);
    if (m == "PATCH" || m == "POST") return UpdateEndpoint(req, res, p[2]);
    if (m == "DELETE") {
      auto e = store_.GetEndpoint(p[2]);
      if (!e.ok()) return SendError(res, e.status());
      if (!*e) return SendError(res, NotFoundError("no endpoint " + p[2]));
      fleet_.StopEndpoint(p[2]);
      Status s = store_.DeleteEndpoint(p[2]);
      if (!s.ok()) return SendError(res, s);
      jobs_.ForgetEndpoint(p[2]);
      return SendJson(res, 200, json{{"id", p[2]}, {"deleted", true}});
    }
  }
  if (what == "hosts") return Hosts(req, res, p);
  if (what == "models" && p.size() == 3 && p[2] == "resolve") {
    if (m != "POST") return SendError(res, InvalidArgumentError("use POST for /v1/models/resolve"));
    auto body = ParseObject(req.body);
    if (!body.ok()) return SendError(res, body.status());
    Status s = CheckFields(*body, {"model", "hfToken"});
    EndpointRecord e;  // the same field rules as an endpoint's
    if (s.ok()) s = ApplyEndpointFields(*body, e);
    if (s.ok() && e.model.empty()) s = InvalidArgumentError("model is required (a Hugging Face link)");
    if (!s.ok()) return SendError(res, s);
    auto facts = InspectModel(e.model, e.hf_token);
    if (!facts.ok()) return SendError(res, facts.status());
    return SendJson(res, 200, json{{"model", e.model}, {"repo", facts->repo},
                                   {"revision", facts->revision}, {"commit", facts->commit},
                                   {"files", facts->files}, {"sizeBytes", facts->bytes},
                                   {"gated", facts->gated}, {"private", facts->is_private}});
  }
  if (what == "metrics" && p.size() == 2 && m == "GET") return Metrics(res);
  if (what == "jobs" && p.size() == 2 && m == "GET") {
    // An endpoint's newest jobs (status and times, not their inputs and outputs), newest first.
    if (!ValidId(endpoint_filter)) {
      return SendError(res, InvalidArgumentError("name the endpoint: /v1/jobs?endpoint=<id>"));
    }
    const int limit = std::clamp(std::atoi(req.QueryParam("limit").value_or("20").c_str()), 1, 500);
    json out = json::array();
    for (const JobRecord& j : jobs_.Recent(endpoint_filter, limit)) {
      json o = JobStatusObject(j);
      o.erase("output");
      o["createdAt"] = j.created_ms;
      out.push_back(std::move(o));
    }
    return SendJson(res, 200, json{{"jobs", out}});
  }
  if (what == "workers" && p.size() == 2 && m == "GET") {
    json out = json::array();
    for (const WorkerRecord& w : fleet_.Workers(endpoint_filter)) out.push_back(WorkerJson(w));
    return SendJson(res, 200, json{{"workers", out}});
  }
  if (what == "ledger" && p.size() == 2 && m == "GET") {
    auto rows = store_.ListLedger(endpoint_filter);
    if (!rows.ok()) return SendError(res, rows.status());
    json out = json::array();
    for (const LedgerRow& r : *rows) {
      out.push_back(json{{"workerId", r.worker_id}, {"endpointId", r.endpoint_id},
                         {"phase", r.phase}, {"start", r.start_ms},
                         {"end", r.end_ms ? json(*r.end_ms) : json(nullptr)},
                         {"billed", r.billed}});
    }
    return SendJson(res, 200, json{{"ledger", out}});
  }
  if (what == "coldstarts" && p.size() == 2 && m == "GET") {
    json out = json::array();
    for (const ColdStart& c : fleet_.ColdStarts(endpoint_filter)) {
      out.push_back(json{{"workerId", c.worker_id}, {"cacheHit", c.cache_hit},
                         {"queueMs", c.queue_ms}, {"downloadMs", c.download_ms},
                         {"startMs", c.start_ms}, {"totalMs", c.total_ms}});
    }
    return SendJson(res, 200, json{{"coldStarts", out}});
  }
  if (what == "keys") {
    if (m == "POST" && p.size() == 2) {
      auto body = ParseObject(req.body.empty() ? "{}" : req.body);
      if (!body.ok()) return SendError(res, body.status());
      if (body->contains("name") && !(*body)["name"].is_string()) {
        return SendError(res, InvalidArgumentError("name must be a string"));
      }
      auto key = CreateApiKey(body->contains("name") ? (*body)["name"].get<std::string>()
                                                     : "unnamed");
      if (!key.ok()) return SendError(res, key.status());
      return SendJson(res, 200, json{{"key", *key}});
    }
    if (m == "GET" && p.size() == 2) {
      auto keys = store_.ListApiKeys();
      if (!keys.ok()) return SendError(res, keys.status());
      json out = json::array();
      for (const ApiKeyRecord& k : *keys) {
        out.push_back(json{{"id", k.id}, {"name", k.name}, {"createdAt", k.created_ms}});
      }
      return SendJson(res, 200, json{{"keys", out}});
    }
    if (m == "DELETE" && p.size() == 3) {
      Status s = store_.DeleteApiKey(p[2]);
      if (!s.ok()) return SendError(res, s);
      std::lock_guard<std::mutex> lock(keys_mu_);
      known_keys_.clear();  // forget cached verdicts: the deleted key must stop working now
      return SendJson(res, 200, json{{"id", p[2]}, {"deleted", true}});
    }
  }
  SendError(res, NotFoundError("no route " + req.raw_path.substr(0, 200)));
}

}  // namespace mc::controller
