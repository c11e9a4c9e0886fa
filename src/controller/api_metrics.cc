// /health (public) and the Prometheus text of /metrics and /v1/metrics (behind the key).
#include <map>
#include <utility>
#include <vector>

#include "controller/api_common.h"
#include "controller/fleet.h"
#include "controller/jobs.h"
#include "controller/store.h"
#include "mc/net/json_reply.h"
#include "mc/net/prometheus.h"

namespace mc::controller {
namespace {

void Health(ApiContext&, const net::HttpRequest&, const net::PathParams&,
            net::HttpResponse& res) {
  net::SetJson(res, 200, R"({"status":"ok"})");
}

// Jobs by status and retried, per endpoint (one walk of each endpoint's jobs for both).
void JobFamilies(ApiContext& ctx, const std::vector<EndpointRecord>& endpoints,
                 net::PrometheusText& out) {
  std::vector<JobCounts> counts;
  for (const EndpointRecord& e : endpoints) counts.push_back(ctx.jobs.Counts(e.id));
  out.Family("modelcache_controller_jobs", "Jobs the controller holds, by status.", "gauge");
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const JobCounts& c = counts[i];
    for (const auto& [status, n] : {std::pair<const char*, uint64_t>{"IN_QUEUE", c.in_queue},
                                    {"IN_PROGRESS", c.in_progress},
                                    {"COMPLETED", c.completed},
                                    {"FAILED", c.failed}}) {
      out.Sample("modelcache_controller_jobs", {{"endpoint", endpoints[i].id}, {"status", status}},
                 n);
    }
  }
  out.Family("modelcache_controller_jobs_retried", "Jobs requeued after their worker was lost.",
             "gauge");
  for (size_t i = 0; i < endpoints.size(); ++i) {
    out.Sample("modelcache_controller_jobs_retried", {{"endpoint", endpoints[i].id}},
               counts[i].retried);
  }
}

// Workers by phase, cold starts (count and seconds, hit and miss) and worker seconds (billed and
// not), per endpoint.
void WorkerFamilies(ApiContext& ctx, const std::vector<EndpointRecord>& endpoints,
                    net::PrometheusText& out) {
  out.Family("modelcache_controller_workers",
             "Workers by phase (initializing = downloading, unbilled).", "gauge");
  std::map<std::pair<std::string, std::string>, int> phases;
  for (const WorkerRecord& w : ctx.fleet.Workers("")) ++phases[{w.endpoint_id, w.phase}];
  for (const auto& [key, n] : phases) {
    out.Sample("modelcache_controller_workers", {{"endpoint", key.first}, {"phase", key.second}},
               n);
  }
  std::map<std::pair<std::string, bool>, std::pair<int64_t, int64_t>> starts;  // count, ms
  for (const EndpointRecord& e : endpoints) {
    for (const ColdStart& c : ctx.fleet.ColdStarts(e.id)) {
      auto& [n, ms] = starts[{e.id, c.cache_hit}];
      ++n;
      ms += c.total_ms;
    }
  }
  out.Family("modelcache_controller_cold_starts_total", "Cold starts, by cache hit or miss.",
             "counter");
  for (const auto& [key, v] : starts) {
    out.Sample("modelcache_controller_cold_starts_total",
               {{"endpoint", key.first}, {"cache", key.second ? "hit" : "miss"}}, v.first);
  }
  out.Family("modelcache_controller_cold_start_seconds_total",
             "Summed cold-start time (queue + download + start), by cache hit or miss.",
             "counter");
  for (const auto& [key, v] : starts) {
    out.Sample("modelcache_controller_cold_start_seconds_total",
               {{"endpoint", key.first}, {"cache", key.second ? "hit" : "miss"}},
               static_cast<double>(v.second) / 1000.0);
  }
  out.Family("modelcache_controller_worker_seconds_total",
             "Worker seconds by billing (downloads are never billed).", "counter");
  std::map<std::pair<std::string, bool>, double> seconds;
  const int64_t now = NowMs(*ctx.options.clock);
  // The store's running totals and the open rows only: never the whole ledger, which grows
  // with every phase of every worker (and loses old rows to retention; the totals keep them).
  auto summary = ctx.store.SummarizeLedger();
  if (summary.ok()) {
    for (const LedgerTotal& t : summary->totals) {
      seconds[{t.endpoint_id, t.billed}] += static_cast<double>(t.closed_ms) / 1000.0;
    }
    for (const LedgerRow& r : summary->open) {
      seconds[{r.endpoint_id, r.billed}] += static_cast<double>(now - r.start_ms) / 1000.0;
    }
  }
  for (const auto& [key, v] : seconds) {
    out.Sample("modelcache_controller_worker_seconds_total",
               {{"endpoint", key.first}, {"billed", key.second ? "true" : "false"}}, v);
  }
}

// Per host: up, GPUs (total, free), disk bytes (capacity, used, reserved).
void HostFamilies(ApiContext& ctx, net::PrometheusText& out) {
  const std::vector<HostView> hosts = ctx.fleet.Hosts();
  out.Family("modelcache_controller_host_up", "1 while the host sends heartbeats, 0 once lost.",
             "gauge");
  for (const HostView& h : hosts) {
    out.Sample("modelcache_controller_host_up", {{"host", h.id}}, h.lost ? 0 : 1);
  }
  out.Family("modelcache_controller_host_gpus", "GPU slots per host, total and free.", "gauge");
  for (const HostView& h : hosts) {
    out.Sample("modelcache_controller_host_gpus", {{"host", h.id}, {"kind", "total"}},
               h.gpus_total);
    out.Sample("modelcache_controller_host_gpus", {{"host", h.id}, {"kind", "free"}}, h.gpus_free);
  }
  out.Family("modelcache_controller_host_disk_bytes",
             "Cache disk per host: capacity, used, reserved.", "gauge");
  for (const HostView& h : hosts) {
    for (const auto& [kind, v] : {std::pair<const char*, uint64_t>{"capacity", h.capacity},
                                  {"used", h.used},
                                  {"reserved", h.reserved}}) {
      out.Sample("modelcache_controller_host_disk_bytes", {{"host", h.id}, {"kind", kind}}, v);
    }
  }
}

// Prometheus text: jobs, workers, cold starts and seconds per endpoint; hosts' GPUs and disks.
void Metrics(ApiContext& ctx, const net::HttpRequest&, const net::PathParams&,
             net::HttpResponse& res) {
  auto endpoints = ctx.store.ListEndpoints();
  if (!endpoints.ok()) return net::SetJsonError(res, endpoints.status());
  net::PrometheusText out;
  JobFamilies(ctx, *endpoints, out);
  WorkerFamilies(ctx, *endpoints, out);
  HostFamilies(ctx, out);
  out.Reply(res);
}

}  // namespace

void AddHealthAndMetricsRoutes(net::Router& public_routes, net::Router& keyed, ApiContext& ctx) {
  public_routes.Add("GET", "/health", Bind(ctx, Health));
  // Fleet-wide counts: the operators'.
  keyed.Add("GET", "/metrics", AdminOnly(ctx, Metrics));
  keyed.Add("GET", "/v1/metrics", AdminOnly(ctx, Metrics));
}

}  // namespace mc::controller
