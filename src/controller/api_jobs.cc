// The Runpod job API under /v2/{endpoint} (runpod-protocol.md §1): run, runsync, status,
// status-sync, stream, cancel, retry, purge-queue, health; and /v1/jobs, an endpoint's newest jobs.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "controller/api_common.h"
#include "controller/webhooks.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/store.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

// The endpoint a /v2 route names: NotFound for an id of the wrong form, an unknown endpoint or
// another tenant's (its jobs are then out of reach too: every job route goes through here).
StatusOr<EndpointRecord> LoadEndpoint(ApiContext& ctx, const net::HttpRequest& req,
                                      const std::string& ep) {
  return VisibleEndpoint(ctx, req, ep);
}

// The endpoint and the job id of a /v2/{ep}/<op>/{job} route, or the error to answer.
StatusOr<std::string> JobOf(ApiContext& ctx, const net::HttpRequest& req,
                            const net::PathParams& params) {
  MC_RETURN_IF_ERROR(LoadEndpoint(ctx, req, params.Get("ep")).status());
  const std::string& job = params.Get("job");
  if (!ValidId(job)) return NoRoute(req);
  return job;
}

// policy.executionTimeout, policy.ttl and policy.lowPriority of a submission.
Status ParsePolicy(const json& pol, SubmitRequest& r) {
  if (!pol.is_object()) return InvalidArgumentError("policy must be an object");
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
  MC_RETURN_IF_ERROR(ms("executionTimeout", kMinExecutionMs, r.execution_timeout_ms));
  MC_RETURN_IF_ERROR(ms("ttl", kMinTtlMs, r.ttl_ms));
  if (pol.contains("lowPriority") && !pol["lowPriority"].is_boolean()) {
    return InvalidArgumentError("policy.lowPriority must be true or false");
  }
  r.low_priority = pol.contains("lowPriority") && pol["lowPriority"].get<bool>();
  return Status::Ok();
}

// A /run or /runsync body: input (required), webhook, policy; other top-level keys pass through
// to the worker.
StatusOr<SubmitRequest> ParseSubmission(const std::string& text, bool sync) {
  MC_ASSIGN_OR_RETURN(json b, ParseObject(text));
  if (!b.contains("input")) {
    return InvalidArgumentError("the body needs an \"input\" (any JSON value)");
  }
  SubmitRequest r;
  r.sync = sync;
  r.input_json = b["input"].dump();
  if (b.contains("webhook")) {
    if (!b["webhook"].is_string()) return InvalidArgumentError("webhook must be a URL");
    r.webhook = b["webhook"].get<std::string>();
    if (!r.webhook.starts_with("http://") && !r.webhook.starts_with("https://")) {
      return InvalidArgumentError("webhook must be an http:// or https:// URL");
    }
  }
  if (b.contains("policy")) MC_RETURN_IF_ERROR(ParsePolicy(b["policy"], r));
  json extra = json::object();
  for (const auto& [k, v] : b.items()) {
    if (k != "input" && k != "webhook" && k != "policy") extra[k] = v;
  }
  r.extra_json = extra.dump();
  return r;
}

void Submit(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
            net::HttpResponse& res, bool sync) {
  auto e = LoadEndpoint(ctx, req, params.Get("ep"));
  if (!e.ok()) return net::SetJsonError(res, e.status());
  auto r = ParseSubmission(req.body, sync);
  if (!r.ok()) return net::SetJsonError(res, r.status());
  if (!r->webhook.empty()) {
    Status target = CheckWebhookTarget(r->webhook, ctx.options.webhook_allow_private,
                                       ctx.options.webhook_allowed_hosts);
    if (!target.ok()) return net::SetJsonError(res, target);
  }
  auto job = ctx.jobs.Submit(*e, *r);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  if (ctx.kick) ctx.kick();
  if (!sync) return net::SetJson(res, 200, json{{"id", job->id}, {"status", job->status}}.dump());
  auto done = ctx.jobs.WaitFinal(e->id, job->id,
                                 WaitMs(req, ctx.options.runsync_wait.count(), 1'000, 300'000));
  if (!done.ok()) return net::SetJsonError(res, done.status());
  if (IsFinal(done->status)) return net::SetJson(res, 200, JobStatusObject(*done).dump());
  net::SetJson(res, 200, json{{"id", done->id}, {"status", done->status}}.dump());
}

void Run(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
         net::HttpResponse& res) {
  Submit(ctx, req, params, res, false);
}

void RunSync(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
             net::HttpResponse& res) {
  Submit(ctx, req, params, res, true);
}

void PurgeQueue(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                net::HttpResponse& res) {
  auto e = LoadEndpoint(ctx, req, params.Get("ep"));
  if (!e.ok()) return net::SetJsonError(res, e.status());
  auto removed = ctx.jobs.Purge(e->id);
  if (!removed.ok()) return net::SetJsonError(res, removed.status());
  net::SetJson(res, 200, json{{"removed", *removed}, {"status", "completed"}}.dump());
}

void Health(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
            net::HttpResponse& res) {
  auto e = LoadEndpoint(ctx, req, params.Get("ep"));
  if (!e.ok()) return net::SetJsonError(res, e.status());
  const std::string& ep = e->id;
  const JobCounts c = ctx.jobs.Counts(ep);
  std::map<std::string, int> phases{{"idle", 0},    {"initializing", 0}, {"ready", 0},
                                    {"running", 0}, {"throttled", 0},    {"unhealthy", 0}};
  for (const WorkerRecord& w : ctx.fleet.Workers(ep)) {
    if (w.phase == "idle" || w.phase == "running" || w.phase == "initializing") ++phases[w.phase];
    if (w.phase == "starting") ++phases["ready"];
  }
  // Also counted in their phase: workers whose last ping said status=unhealthy. Throttled:
  // workers the autoscaler wants but no host can take now.
  phases["unhealthy"] = ctx.fleet.Unhealthy(ep);
  phases["throttled"] = ctx.fleet.Throttled(ep);
  net::SetJson(res, 200,
               json{{"jobs",
                     {{"completed", c.completed},
                      {"failed", c.failed},
                      {"inProgress", c.in_progress},
                      {"inQueue", c.in_queue},
                      {"retried", c.retried}}},
                    {"workers", phases}}
                   .dump());
}

// Answers the job's status object, or its error.
void ReplyStatus(net::HttpResponse& res, const StatusOr<JobRecord>& job) {
  if (!job.ok()) return net::SetJsonError(res, job.status());
  net::SetJson(res, 200, JobStatusObject(*job).dump());
}

// Answers {id, status}, or the error.
void ReplyIdAndStatus(net::HttpResponse& res, const StatusOr<JobRecord>& job) {
  if (!job.ok()) return net::SetJsonError(res, job.status());
  net::SetJson(res, 200, json{{"id", job->id}, {"status", job->status}}.dump());
}

void JobStatus(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
             net::HttpResponse& res) {
  auto job = JobOf(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  ReplyStatus(res, ctx.jobs.Get(params.Get("ep"), *job));
}

void StatusSync(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                net::HttpResponse& res) {
  auto job = JobOf(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  ReplyStatus(res, ctx.jobs.WaitFinal(params.Get("ep"), *job, WaitMs(req, 90'000, 1'000, 90'000)));
}

void Stream(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
            net::HttpResponse& res) {
  auto job = JobOf(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  auto s = ctx.jobs.ConsumeStream(params.Get("ep"), *job);
  if (!s.ok()) return net::SetJsonError(res, s.status());
  json stream = json::array();
  for (const std::string& chunk : s->second) {
    stream.push_back(json{{"output", json::parse(chunk, nullptr, false)}});
  }
  net::SetJson(res, 200, json{{"status", s->first.status}, {"stream", stream}}.dump());
}

void Cancel(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
            net::HttpResponse& res) {
  auto job = JobOf(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  ReplyIdAndStatus(res, ctx.jobs.Cancel(params.Get("ep"), *job));
}

void Retry(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
           net::HttpResponse& res) {
  auto job = JobOf(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  ReplyIdAndStatus(res, ctx.jobs.Retry(params.Get("ep"), *job));
}

// An endpoint's newest jobs (status and times, not their inputs and outputs), newest first.
void RecentJobs(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams&,
                net::HttpResponse& res) {
  const std::string endpoint = req.QueryParam("endpoint").value_or("");
  if (!ValidId(endpoint)) {
    return net::SetJsonError(res, InvalidArgumentError("name the endpoint: /v1/jobs?endpoint=<id>"));
  }
  auto visible = LoadEndpoint(ctx, req, endpoint);
  if (!visible.ok()) return net::SetJsonError(res, visible.status());
  const int limit = std::clamp(std::atoi(req.QueryParam("limit").value_or("20").c_str()), 1, 500);
  json out = json::array();
  for (const JobRecord& j : ctx.jobs.Recent(endpoint, limit)) {
    json o = JobStatusObject(j);
    o.erase("output");
    o["createdAt"] = j.created_ms;
    out.push_back(std::move(o));
  }
  net::SetJson(res, 200, json{{"jobs", out}}.dump());
}

}  // namespace

void AddJobRoutes(net::Router& keyed, ApiContext& ctx) {
  keyed.Add("POST", "/v2/{ep}/run", Bind(ctx, Run), ctx.options.max_run_body_bytes);
  keyed.Add("POST", "/v2/{ep}/runsync", Bind(ctx, RunSync), ctx.options.max_runsync_body_bytes);
  keyed.Add("GET", "/v2/{ep}/status/{job}", Bind(ctx, JobStatus));
  keyed.Add("GET", "/v2/{ep}/status-sync/{job}", Bind(ctx, StatusSync));
  keyed.Add("GET", "/v2/{ep}/stream/{job}", Bind(ctx, Stream));
  keyed.Add("POST", "/v2/{ep}/cancel/{job}", Bind(ctx, Cancel));
  keyed.Add("POST", "/v2/{ep}/retry/{job}", Bind(ctx, Retry));
  keyed.Add("POST", "/v2/{ep}/purge-queue", Bind(ctx, PurgeQueue));
  keyed.Add("GET", "/v2/{ep}/health", Bind(ctx, Health));
  keyed.Add("GET", "/v1/jobs", Bind(ctx, RecentJobs));
}

}  // namespace mc::controller
