// The simulator's outputs: JSON, CSV and SVG, written by hand so that every byte is determined by
// the Result (fixed number formats, no locale, no timestamps).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "mc/sim/simulator.h"

namespace mc::sim {
namespace {

std::string Num(double v, int decimals = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::isfinite(v) ? v : 0.0);
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '<') {
      out += "&lt;";
      continue;
    }
    if (c == '&') {
      out += "&amp;";
      continue;
    }
    out += c;
  }
  return out;
}

// The metrics as (name, value) in a fixed order, shared by the JSON and the CSV.
std::vector<std::pair<std::string, std::string>> Metrics(const Result& r) {
  auto u = [](uint64_t v) { return std::to_string(v); };
  const double miss_share = r.cold_starts ? double(r.cold_misses) / double(r.cold_starts) : 0;
  return {
      {"jobs", u(r.jobs)},
      {"jobs_done", u(r.jobs_done)},
      {"queued_jobs", u(r.queued_jobs)},
      {"cold_starts", u(r.cold_starts)},
      {"cold_hits", u(r.cold_hits)},
      {"cold_misses", u(r.cold_misses)},
      {"cold_joins", u(r.cold_joins)},
      {"miss_share", Num(miss_share)},
      {"placement_failures", u(r.placement_failures)},
      {"run_to_take_p50_s", Num(r.run_to_take.p50)},
      {"run_to_take_p90_s", Num(r.run_to_take.p90)},
      {"run_to_take_p99_s", Num(r.run_to_take.p99)},
      {"queued_run_to_take_p50_s", Num(r.queued_run_to_take.p50)},
      {"queued_run_to_take_p90_s", Num(r.queued_run_to_take.p90)},
      {"queued_run_to_take_p99_s", Num(r.queued_run_to_take.p99)},
      {"requested_bytes", u(r.requested_bytes)},
      {"fetched_bytes", u(r.fetched_bytes)},
      {"byte_hit_ratio", Num(r.byte_hit_ratio)},
      {"origin_bytes", u(r.origin_bytes)},
      {"peer_bytes", u(r.peer_bytes)},
      {"prefetch_bytes", u(r.prefetch_bytes)},
      {"evictions", u(r.evictions)},
      {"evicted_bytes", u(r.evicted_bytes)},
      {"billed_gpu_seconds", Num(r.billed_gpu_seconds, 3)},
      {"unbilled_gpu_seconds", Num(r.unbilled_gpu_seconds, 3)},
      {"cost_billed", Num(r.cost_billed, 4)},
      {"cost_unbilled", Num(r.cost_unbilled, 4)},
      {"cost_origin", Num(r.cost_origin, 4)},
      {"cost_total", Num(r.cost_total, 4)},
      {"events", u(r.events)},
  };
}

}  // namespace

std::string ResultJson(const Scenario& sc, const Result& r) {
  std::string out = "{\n  \"scenario\": {\"seed\": " + std::to_string(sc.seed) +
                    ", \"duration_seconds\": " + Num(sc.duration_seconds, 3) +
                    ", \"eviction\": \"" +
                    std::string(scheduler::EvictionPolicyName(sc.policies.eviction)) +
                    "\", \"placement\": \"" +
                    std::string(scheduler::PlacementPolicyName(sc.policies.placement)) +
                    "\", \"replicas\": " + std::to_string(sc.policies.replicas) +
                    ", \"endpoints\": " + std::to_string(sc.endpoints.size()) +
                    ", \"catalogue_bytes\": " + std::to_string(sc.catalogue.distinct_bytes) +
                    "},\n  \"metrics\": {\n";
  const auto metrics = Metrics(r);
  for (size_t i = 0; i < metrics.size(); ++i) {
    out += "    \"" + metrics[i].first + "\": " + metrics[i].second +
           (i + 1 < metrics.size() ? ",\n" : "\n");
  }
  out += "  },\n  \"disk\": [\n";
  for (size_t i = 0; i < r.disk.size(); ++i) {
    const DiskSample& d = r.disk[i];
    out += "    {\"seconds\": " + Num(d.seconds, 3) + ", \"used_bytes\": " +
           std::to_string(d.used_bytes) + ", \"capacity_bytes\": " +
           std::to_string(d.capacity_bytes) + ", \"fullest_host_fraction\": " +
           Num(d.fullest_host_fraction) + ", \"live_workers\": " +
           std::to_string(d.live_workers) + "}" + (i + 1 < r.disk.size() ? ",\n" : "\n");
  }
  out += "  ]\n}\n";
  return out;
}

std::string ResultCsv(const Scenario& sc, const Result& r) {
  std::string header = "eviction,placement,replicas", row;
  row = std::string(scheduler::EvictionPolicyName(sc.policies.eviction)) + "," +
        std::string(scheduler::PlacementPolicyName(sc.policies.placement)) + "," +
        std::to_string(sc.policies.replicas);
  for (const auto& [name, value] : Metrics(r)) {
    header += "," + name;
    row += "," + value;
  }
  return header + "\n" + row + "\n";
}

std::string DiskCsv(const Result& r) {
  std::string out = "seconds,used_bytes,capacity_bytes,used_fraction,fullest_host_fraction,live_workers\n";
  for (const DiskSample& d : r.disk) {
    out += Num(d.seconds, 3) + "," + std::to_string(d.used_bytes) + "," +
           std::to_string(d.capacity_bytes) + "," +
           Num(d.capacity_bytes ? double(d.used_bytes) / double(d.capacity_bytes) : 0) + "," +
           Num(d.fullest_host_fraction) + "," + std::to_string(d.live_workers) + "\n";
  }
  return out;
}

// Disk use over time: the fleet's used fraction and the fullest host's, 0..100%.
std::string DiskSvg(const Result& r) {
  constexpr double W = 640, H = 320, L = 60, R = 20, T = 30, B = 40;
  const double end = r.disk.empty() ? 1 : std::max(1.0, r.disk.back().seconds);
  auto x = [&](double s) { return L + (W - L - R) * s / end; };
  auto y = [&](double f) { return T + (H - T - B) * (1 - std::clamp(f, 0.0, 1.0)); };
  std::string fleet, fullest;
  for (const DiskSample& d : r.disk) {
    const double used = d.capacity_bytes ? double(d.used_bytes) / double(d.capacity_bytes) : 0;
    fleet += Num(x(d.seconds), 1) + "," + Num(y(used), 1) + " ";
    fullest += Num(x(d.seconds), 1) + "," + Num(y(d.fullest_host_fraction), 1) + " ";
  }
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"320\" "
                    "font-family=\"sans-serif\" font-size=\"12\">\n"
                    "<rect width=\"640\" height=\"320\" fill=\"white\"/>\n"
                    "<text x=\"320\" y=\"18\" text-anchor=\"middle\">Cache use over time</text>\n";
  for (int pct = 0; pct <= 100; pct += 25) {
    const double yy = y(pct / 100.0);
    svg += "<line x1=\"" + Num(L, 1) + "\" x2=\"" + Num(W - R, 1) + "\" y1=\"" + Num(yy, 1) +
           "\" y2=\"" + Num(yy, 1) + "\" stroke=\"#ddd\"/>\n<text x=\"" + Num(L - 6, 1) +
           "\" y=\"" + Num(yy + 4, 1) + "\" text-anchor=\"end\">" + std::to_string(pct) +
           "%</text>\n";
  }
  for (int i = 0; i <= 4; ++i) {
    const double s = end * i / 4;
    svg += "<text x=\"" + Num(x(s), 1) + "\" y=\"" + Num(H - B + 16, 1) +
           "\" text-anchor=\"middle\">" + Num(s / 3600, 1) + " h</text>\n";
  }
  svg += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"" + fleet +
         "\"/>\n<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1\" points=\"" +
         fullest + "\"/>\n";
  svg += "<text x=\"" + Num(L + 10, 1) + "\" y=\"" + Num(H - 8, 1) +
         "\" fill=\"#1f77b4\">fleet used / capacity</text>\n<text x=\"" + Num(L + 200, 1) +
         "\" y=\"" + Num(H - 8, 1) + "\" fill=\"#d62728\">fullest host</text>\n</svg>\n";
  return svg;
}

std::string BarsSvg(const std::string& title, const std::string& unit,
                    const std::vector<std::pair<std::string, double>>& bars) {
  constexpr double W = 640, L = 200, R = 80, T = 30, Row = 22;
  const double H = T + Row * double(bars.size()) + 20;
  double max = 0;
  for (const auto& [label, v] : bars) max = std::max(max, v);
  if (max <= 0) max = 1;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"" +
                    Num(H, 0) + "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"640\" "
                    "height=\"" + Num(H, 0) + "\" fill=\"white\"/>\n<text x=\"320\" y=\"18\" "
                    "text-anchor=\"middle\">" + Escape(title) + "</text>\n";
  for (size_t i = 0; i < bars.size(); ++i) {
    const double yy = T + Row * double(i);
    const double w = (W - L - R) * bars[i].second / max;
    svg += "<text x=\"" + Num(L - 6, 1) + "\" y=\"" + Num(yy + 14, 1) + "\" text-anchor=\"end\">" +
           Escape(bars[i].first) + "</text>\n<rect x=\"" + Num(L, 1) + "\" y=\"" + Num(yy + 3, 1) +
           "\" width=\"" + Num(std::max(0.0, w), 1) + "\" height=\"16\" fill=\"#1f77b4\"/>\n" +
           "<text x=\"" + Num(L + w + 4, 1) + "\" y=\"" + Num(yy + 14, 1) + "\">" +
           Num(bars[i].second, 3) + " " + Escape(unit) + "</text>\n";
  }
  return svg + "</svg>\n";
}

}  // namespace mc::sim
