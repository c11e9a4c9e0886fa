// `modelcache sim SCENARIO` and `modelcache sim compare SCENARIO`: the fleet simulator
// (mc/sim/simulator.h, docs/simulator.md) from the command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "mc/sim/scenario.h"
#include "mc/sim/simulator.h"

namespace mc::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSimHelp =
    "Simulate a GPU fleet running a scenario, with the real placement, eviction and autoscaling\n"
    "code the controller and the agents use, on a simulated clock (millions of jobs per CPU-\n"
    "minute; a day of a 1,000-host fleet, 10M jobs, takes about two CPU-minutes). Deterministic:\n"
    "the same scenario and seed give the same output.\n"
    "\n"
    "The scenario (JSON, docs/simulator.md) names the hosts, the model catalogue, the endpoints,\n"
    "the workload (Zipf/diurnal/bursts, or an Azure Functions 2019 trace) and the policies.\n"
    "\n"
    "Examples:\n"
    "  modelcache sim examples/sim/fleet.json\n"
    "  modelcache sim examples/sim/fleet.json --set policies.eviction=gdsf --out /tmp/run\n"
    "  modelcache sim compare examples/sim/fleet.json --eviction lru,gdsf,s3fifo \\\n"
    "      --cache-fraction 0.1,0.25\n"
    "\n"
    "Prints a summary; with --out DIR also writes result.json, result.csv, disk.csv and\n"
    "disk.svg (cache use over time) there.";

struct SimArgs {
  std::string scenario;
  std::vector<std::string> sets;
  std::string out;
  bool as_json = false;
};

struct CompareArgs {
  std::string scenario;
  std::vector<std::string> sets;
  std::string out;
  std::vector<std::string> eviction, placement;
  std::vector<double> cache_fraction;
  std::vector<uint32_t> replicas;
};

StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return NotFoundError("cannot read scenario " + path +
                         " (give a JSON file; examples/sim/fleet.json is one)");
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Status WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return InternalError("cannot write " + path.string());
  return Status::Ok();
}

StatusOr<sim::Scenario> Prepare(const std::string& file, const std::vector<std::string>& sets) {
  MC_ASSIGN_OR_RETURN(std::string text, ReadText(file));
  MC_ASSIGN_OR_RETURN(text, sim::ApplyOverrides(text, sets));
  return sim::ParseScenario(text, fs::path(file).parent_path());
}

double CpuSeconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string Gb(uint64_t bytes) { return Fixed(double(bytes) / 1e9, 1); }

Status RunSim(const SimArgs& args) {
  MC_ASSIGN_OR_RETURN(sim::Scenario sc, Prepare(args.scenario, args.sets));
  const double cpu0 = CpuSeconds();
  MC_ASSIGN_OR_RETURN(sim::Result r, sim::Simulate(sc));
  const double cpu = CpuSeconds() - cpu0;
  if (!args.out.empty()) {
    std::error_code ec;
    fs::create_directories(args.out, ec);
    if (ec) return InternalError("cannot create --out " + args.out + ": " + ec.message());
    const fs::path dir(args.out);
    MC_RETURN_IF_ERROR(WriteFile(dir / "result.json", sim::ResultJson(sc, r)));
    MC_RETURN_IF_ERROR(WriteFile(dir / "result.csv", sim::ResultCsv(sc, r)));
    MC_RETURN_IF_ERROR(WriteFile(dir / "disk.csv", sim::DiskCsv(r)));
    MC_RETURN_IF_ERROR(WriteFile(dir / "disk.svg", sim::DiskSvg(r)));
  }
  if (args.as_json) {
    std::cout << sim::ResultJson(sc, r);
  } else {
    const double miss = r.cold_starts ? 100.0 * double(r.cold_misses) / double(r.cold_starts) : 0;
    std::cout << "jobs                 " << r.jobs << " (" << r.jobs_done << " done, "
              << r.queued_jobs << " waited for a worker)\n"
              << "cold starts          " << r.cold_starts << ": " << r.cold_hits << " hits, "
              << r.cold_misses << " misses (" << Fixed(miss, 1) << "%, " << r.cold_joins
              << " joined a download)\n"
              << "/run → job-take      p50 " << Fixed(r.run_to_take.p50, 3) << " s, p90 "
              << Fixed(r.run_to_take.p90, 3) << " s, p99 " << Fixed(r.run_to_take.p99, 3)
              << " s (jobs that waited: p50 " << Fixed(r.queued_run_to_take.p50, 1) << " s, p99 "
              << Fixed(r.queued_run_to_take.p99, 1) << " s)\n"
              << "byte hit ratio       " << Fixed(100 * r.byte_hit_ratio, 1) << "%\n"
              << "origin / peer bytes  " << Gb(r.origin_bytes) << " GB / " << Gb(r.peer_bytes)
              << " GB (prefetch " << Gb(r.prefetch_bytes) << " GB)\n"
              << "evictions            " << r.evictions << " (" << Gb(r.evicted_bytes) << " GB)\n"
              << "GPU-hours            billed " << Fixed(r.billed_gpu_seconds / 3600, 1)
              << ", unbilled " << Fixed(r.unbilled_gpu_seconds / 3600, 1) << "\n"
              << "cost                 $" << Fixed(r.cost_total, 2) << " (billed $"
              << Fixed(r.cost_billed, 2) << ", unbilled $" << Fixed(r.cost_unbilled, 2)
              << ", origin $" << Fixed(r.cost_origin, 2) << ")\n"
              << "placement failures   " << r.placement_failures << "\n";
  }
  std::cerr << "simulated " << r.jobs << " jobs (" << r.events << " events) in "
            << Fixed(cpu, 2) << " CPU-s: " << Fixed(cpu > 0 ? double(r.jobs) / cpu * 60 : 0, 0)
            << " jobs per CPU-minute\n";
  return Status::Ok();
}

// Long: the grid's runs and the one table they print read best together: the loop over the
// policy and cache-size cells, then the columns in the order the table shows them.
Status RunCompare(const CompareArgs& args) {
  MC_ASSIGN_OR_RETURN(std::string text, ReadText(args.scenario));
  size_t host_groups = 0;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (j.contains("hosts") && j["hosts"].is_array()) host_groups = j["hosts"].size();
  } catch (const nlohmann::json::parse_error& e) {
    return InvalidArgumentError(args.scenario + " is not valid JSON: " + e.what());
  }
  std::vector<std::string> evictions = args.eviction, placements = args.placement;
  std::vector<double> fractions = args.cache_fraction;
  std::vector<uint32_t> replicas = args.replicas;
  if (evictions.empty()) evictions = {""};
  if (placements.empty()) placements = {""};
  if (fractions.empty()) fractions = {-1};
  if (replicas.empty()) replicas = {UINT32_MAX};

  std::string csv =
      "cache_fraction,eviction,placement,replicas,jobs,cold_starts,cold_misses,miss_share,"
      "byte_hit_ratio,origin_bytes,peer_bytes,run_to_take_p50_s,run_to_take_p99_s,"
      "queued_run_to_take_p99_s,unbilled_gpu_seconds,cost_total\n";
  std::printf("%-6s %-7s %-12s %-4s %9s %7s %7s %6s %8s %10s %9s %8s %8s %10s %10s\n", "cache",
              "evict", "placement", "repl", "jobs", "starts", "misses", "miss%", "bytehit%",
              "origin_GB", "peer_GB", "p50_s", "p99_s", "unbilled_h", "cost_$");
  std::vector<std::pair<std::string, double>> hit_bars, origin_bars, miss_bars;
  for (double fraction : fractions) {
    for (const std::string& eviction : evictions) {
      for (const std::string& placement : placements) {
        for (uint32_t replica : replicas) {
          std::vector<std::string> sets = args.sets;
          if (fraction >= 0) {
            for (size_t g = 0; g < host_groups; ++g) {
              sets.push_back("hosts[" + std::to_string(g) + "].cache_capacity=0");
              sets.push_back("hosts[" + std::to_string(g) + "].cache_fraction=" + Fixed(fraction, 6));
            }
          }
          if (!eviction.empty()) sets.push_back("policies.eviction=" + eviction);
          if (!placement.empty()) sets.push_back("policies.placement=" + placement);
          if (replica != UINT32_MAX) sets.push_back("policies.replicas=" + std::to_string(replica));
          MC_ASSIGN_OR_RETURN(std::string run_text, sim::ApplyOverrides(text, sets));
          MC_ASSIGN_OR_RETURN(sim::Scenario sc,
                              sim::ParseScenario(run_text, fs::path(args.scenario).parent_path()));
          MC_ASSIGN_OR_RETURN(sim::Result r, sim::Simulate(sc));
          const std::string ev(scheduler::EvictionPolicyName(sc.policies.eviction));
          const std::string pl(scheduler::PlacementPolicyName(sc.policies.placement));
          const std::string cache = fraction >= 0 ? Fixed(100 * fraction, 0) + "%" : "-";
          const double miss = r.cold_starts ? double(r.cold_misses) / double(r.cold_starts) : 0;
          std::printf("%-6s %-7s %-12s %-4u %9llu %7llu %7llu %6.1f %8.1f %10s %9s %8.3f %8.3f "
                      "%10.1f %10.2f\n",
                      cache.c_str(), ev.c_str(), pl.c_str(), sc.policies.replicas,
                      (unsigned long long)r.jobs, (unsigned long long)r.cold_starts,
                      (unsigned long long)r.cold_misses, 100 * miss, 100 * r.byte_hit_ratio,
                      Gb(r.origin_bytes).c_str(), Gb(r.peer_bytes).c_str(), r.run_to_take.p50,
                      r.run_to_take.p99, r.unbilled_gpu_seconds / 3600, r.cost_total);
          std::fflush(stdout);
          csv += (fraction >= 0 ? Fixed(fraction, 4) : std::string("")) + "," + ev + "," + pl +
                 "," + std::to_string(sc.policies.replicas) + "," + std::to_string(r.jobs) + "," +
                 std::to_string(r.cold_starts) + "," + std::to_string(r.cold_misses) + "," +
                 Fixed(miss, 6) + "," + Fixed(r.byte_hit_ratio, 6) + "," +
                 std::to_string(r.origin_bytes) + "," + std::to_string(r.peer_bytes) + "," +
                 Fixed(r.run_to_take.p50, 6) + "," + Fixed(r.run_to_take.p99, 6) + "," +
                 Fixed(r.queued_run_to_take.p99, 6) + "," + Fixed(r.unbilled_gpu_seconds, 3) +
                 "," + Fixed(r.cost_total, 4) + "\n";
          const std::string label = cache + " " + ev + " " + pl +
                                    (replica != UINT32_MAX ? " r" + std::to_string(replica) : "");
          hit_bars.emplace_back(label, 100 * r.byte_hit_ratio);
          origin_bars.emplace_back(label, double(r.origin_bytes) / 1e9);
          miss_bars.emplace_back(label, double(r.cold_misses));
        }
      }
    }
  }
  if (!args.out.empty()) {
    std::error_code ec;
    fs::create_directories(args.out, ec);
    if (ec) return InternalError("cannot create --out " + args.out + ": " + ec.message());
    const fs::path dir(args.out);
    MC_RETURN_IF_ERROR(WriteFile(dir / "compare.csv", csv));
    MC_RETURN_IF_ERROR(WriteFile(dir / "byte_hit_ratio.svg",
                                 sim::BarsSvg("Byte hit ratio", "%", hit_bars)));
    MC_RETURN_IF_ERROR(WriteFile(dir / "origin_bytes.svg",
                                 sim::BarsSvg("Bytes from the origin", "GB", origin_bars)));
    MC_RETURN_IF_ERROR(WriteFile(dir / "miss_cold_starts.svg",
                                 sim::BarsSvg("Miss cold starts", "", miss_bars)));
  }
  return Status::Ok();
}

}  // namespace

void AddSimCommand(CLI::App& app, CommandResult& result) {
  auto args = std::make_shared<SimArgs>();
  auto* cmd = app.add_subcommand("sim", "Simulate a fleet on a scenario: cold starts, bytes, cost")
                  ->description(kSimHelp);
  cmd->add_option("scenario", args->scenario, "The scenario JSON file (docs/simulator.md)");
  cmd->add_option("--set", args->sets,
                  "Override a scenario field: PATH=VALUE, e.g. policies.eviction=gdsf or "
                  "hosts[0].cache_fraction=0.1 (repeatable; VALUE is JSON or a word)");
  cmd->add_option("--out", args->out, "Directory for result.json, result.csv, disk.csv, disk.svg");
  cmd->add_flag("--json", args->as_json, "Print the result as JSON instead of the summary");
  cmd->require_subcommand(0, 1);

  auto cargs = std::make_shared<CompareArgs>();
  auto* compare = cmd->add_subcommand(
      "compare",
      "Run a scenario over a grid of policies and cache sizes and print one table (one row per "
      "run; with --out also compare.csv and bar charts as SVG)");
  compare->add_option("scenario", cargs->scenario, "The scenario JSON file")->required();
  compare->add_option("--set", cargs->sets, "Override a scenario field for every run (as in sim)");
  compare->add_option("--eviction", cargs->eviction, "Eviction policies: lru, gdsf, s3fifo")
      ->delimiter(',')
      ->check(CLI::IsMember({"lru", "gdsf", "s3fifo"}));
  compare->add_option("--placement", cargs->placement, "Placement policies: ttr, least-loaded, random")
      ->delimiter(',')
      ->check(CLI::IsMember({"ttr", "least-loaded", "random"}));
  compare->add_option("--cache-fraction", cargs->cache_fraction,
                      "Cache per host as a share of the catalogue, e.g. 0.1,0.25 (replaces the "
                      "hosts' cache_capacity)")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1000.0));
  compare->add_option("--replicas", cargs->replicas, "Cached replicas per endpoint, e.g. 0,1,2")
      ->delimiter(',');
  compare->add_option("--out", cargs->out,
                      "Directory for compare.csv and byte_hit_ratio.svg, origin_bytes.svg, "
                      "miss_cold_starts.svg");
  compare->callback([cargs, &result] { result.status = RunCompare(*cargs); });

  cmd->callback([cmd, compare, args, &result] {
    if (compare->parsed()) return;
    if (args->scenario.empty()) {
      result.status = InvalidArgumentError(
          "give a scenario file: modelcache sim SCENARIO (see modelcache sim --help)");
      return;
    }
    result.status = RunSim(*args);
  });
}

}  // namespace mc::cli
