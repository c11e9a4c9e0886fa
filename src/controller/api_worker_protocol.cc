// The worker protocol of runpod-python (runpod-protocol.md §2): job-take, job-take-batch,
// job-stop, ping, job-done and job-stream under /v2/{endpoint}/<op>/{worker}. Each worker
// authenticates with its own key (Fleet::Authenticate), never a client key.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/api_common.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "mc/net/json_reply.h"

namespace mc::controller {
namespace {

using json = nlohmann::json;

// The job object a worker receives: id, input and the passed-through top-level keys.
json WorkerJob(const JobRecord& j) {
  json o = json::parse(j.extra_json, nullptr, false);
  if (!o.is_object()) o = json::object();
  o["id"] = j.id;
  o["input"] = json::parse(j.input_json, nullptr, false);
  if (!j.webhook.empty()) o["webhook"] = j.webhook;
  return o;
}

// The worker a route names, checked against its key; NotFound for ids of the wrong form.
StatusOr<WorkerRecord> Worker(ApiContext& ctx, const net::HttpRequest& req,
                              const net::PathParams& params) {
  const std::string& ep = params.Get("ep");
  const std::string& worker = params.Get("worker");
  if (!ValidId(ep) || !ValidId(worker)) return NoRoute(req);
  return ctx.fleet.Authenticate(ep, worker, req.headers.Get("Authorization").value_or(""));
}

// The job id of a job-done or job-stream route, once its worker is authenticated.
StatusOr<std::string> AuthenticatedJobId(ApiContext& ctx, const net::HttpRequest& req,
                                const net::PathParams& params) {
  MC_RETURN_IF_ERROR(Worker(ctx, req, params).status());
  const std::string& job = params.Get("job");
  if (!ValidId(job)) return NoRoute(req);
  return job;
}

void Take(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
          net::HttpResponse& res, bool batch_route) {
  auto w = Worker(ctx, req, params);
  if (!w.ok()) return net::SetJsonError(res, w.status());
  const std::string& ep = params.Get("ep");
  const std::string& worker = params.Get("worker");
  int batch = 1;
  if (batch_route) {
    batch = std::clamp(std::atoi(req.QueryParam("batch_size").value_or("1").c_str()), 1, 64);
  }
  ctx.fleet.OnTake(worker, 0);
  std::vector<JobRecord> taken = ctx.jobs.Take(ep, worker, batch, ctx.options.take_hold,
                                               [&] { return ctx.fleet.AcceptsJobs(worker); });
  ctx.fleet.OnTake(worker, taken.size());
  if (taken.empty()) {
    res.status = 204;
    return;
  }
  if (!batch_route) return net::SetJson(res, 200, WorkerJob(taken.front()).dump());
  json list = json::array();
  for (const JobRecord& j : taken) list.push_back(WorkerJob(j));
  net::SetJson(res, 200, list.dump());
}

void JobTake(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
             net::HttpResponse& res) {
  Take(ctx, req, params, res, false);
}

void JobTakeBatch(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
                  net::HttpResponse& res) {
  Take(ctx, req, params, res, true);
}

void JobStop(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
             net::HttpResponse& res) {
  auto w = Worker(ctx, req, params);
  if (!w.ok()) return net::SetJsonError(res, w.status());
  std::vector<std::string> stops = ctx.jobs.TakeStops(params.Get("worker"), ctx.options.take_hold);
  if (stops.empty()) {
    res.status = 204;
    return;
  }
  net::SetJson(res, 200, json{{"jobsToStop", stops}}.dump());
}

void Ping(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
          net::HttpResponse& res) {
  auto w = Worker(ctx, req, params);
  if (!w.ok()) return net::SetJsonError(res, w.status());
  const std::string& worker = params.Get("worker");
  std::vector<std::string> ids;
  std::stringstream ss(req.QueryParam("job_id").value_or(""));
  std::string id;
  while (std::getline(ss, id, ',')) {
    if (!id.empty()) ids.push_back(id);
  }
  const bool unhealthy = req.QueryParam("status").value_or("") == "unhealthy";
  ctx.fleet.OnPing(worker, unhealthy);
  ctx.jobs.Ping(worker, ids);
  if (unhealthy) {
    spdlog::warn("controller: worker {} reports itself unhealthy (check {})", worker,
                 req.QueryParam("check").value_or("?").substr(0, 64));
  }
  net::SetJson(res, 200, "{}");
}

void JobDone(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
             net::HttpResponse& res) {
  auto job = AuthenticatedJobId(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  const std::string& worker = params.Get("worker");
  bool stop_pod = false;
  Status s = ctx.jobs.Done(params.Get("ep"), worker, *job, req.body, &stop_pod);
  if (!s.ok()) return net::SetJsonError(res, s);
  ctx.fleet.OnJobDone(worker, stop_pod);
  net::SetJson(res, 200, "{}");
}

void JobStream(ApiContext& ctx, const net::HttpRequest& req, const net::PathParams& params,
               net::HttpResponse& res) {
  auto job = AuthenticatedJobId(ctx, req, params);
  if (!job.ok()) return net::SetJsonError(res, job.status());
  Status s = ctx.jobs.Stream(params.Get("ep"), params.Get("worker"), *job, req.body);
  if (!s.ok()) return net::SetJsonError(res, s);
  net::SetJson(res, 200, "{}");
}

}  // namespace

void AddWorkerProtocolRoutes(net::Router& public_routes, ApiContext& ctx) {
  public_routes.Add("GET", "/v2/{ep}/job-take/{worker}", Bind(ctx, JobTake));
  public_routes.Add("GET", "/v2/{ep}/job-take-batch/{worker}", Bind(ctx, JobTakeBatch));
  public_routes.Add("GET", "/v2/{ep}/job-stop/{worker}", Bind(ctx, JobStop));
  public_routes.Add("GET", "/v2/{ep}/ping/{worker}", Bind(ctx, Ping));
  public_routes.Add("POST", "/v2/{ep}/job-done/{worker}/{job}", Bind(ctx, JobDone),
                    ctx.options.max_runsync_body_bytes);
  public_routes.Add("POST", "/v2/{ep}/job-stream/{worker}/{job}", Bind(ctx, JobStream),
                    ctx.options.max_runsync_body_bytes);
}

}  // namespace mc::controller
