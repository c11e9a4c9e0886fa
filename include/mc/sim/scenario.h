// The fleet simulator's scenario: hosts, a model catalogue, endpoints, a workload and the policies
// to run, read from one JSON file (docs/simulator.md documents every field). Parsing is strict: an
// unknown field, a negative or malformed size, a watermark out of range, an endpoint naming an
// unknown model, or a model larger than every host's cache is InvalidArgument naming the field
// ("hosts[0].cache_capacity: ..."), and nothing is simulated.
//
// The catalogue and the endpoints may be written out or generated (catalogue.generate,
// endpoints.generate); generation is deterministic for the scenario's seed, and happens in
// LoadScenario, so the Scenario holds explicit lists either way.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/status.h"
#include "mc/scheduler/autoscale.h"
#include "mc/scheduler/eviction.h"
#include "mc/scheduler/placement.h"

namespace mc::sim {

struct HostGroup {
  std::string name;  // hosts are named "<name>-<index>"
  uint32_t count = 1;
  std::string gpu_type = "A100";
  uint32_t gpus = 8;
  uint64_t cache_capacity = 0;  // bytes; or cache_fraction of the catalogue
  double cache_fraction = 0;    // > 0: capacity = fraction × the catalogue's distinct bytes
  double high_watermark = 0.90;
  double low_watermark = 0.80;
  double download_bandwidth = 1.25e9;  // bytes/s from the origin (10 Gbit/s)
  double peer_bandwidth = 2.5e9;       // bytes/s from peers
};

struct Revision {
  std::string id;               // "<model>@<index>"
  std::vector<uint32_t> blobs;  // indices into Catalogue::blob_bytes, distinct
  uint64_t bytes = 0;           // sum of its blobs
};

struct Model {
  std::string id;
  std::vector<uint32_t> revisions;  // indices into Catalogue::revisions
};

struct Catalogue {
  std::vector<uint64_t> blob_bytes;
  std::vector<Revision> revisions;
  std::vector<Model> models;
  uint64_t distinct_bytes = 0;  // every blob once
};

// Execution time of one job, in seconds.
struct Distribution {
  enum Kind { kFixed, kExponential, kLognormal } kind = kFixed;
  double a = 1;  // kFixed: seconds; kExponential: mean; kLognormal: median
  double b = 0;  // kLognormal: p99
};

struct Endpoint {
  std::string id;
  uint32_t revision = 0;  // index into Catalogue::revisions
  std::string gpu_type;   // "" = any
  uint32_t gpus = 1;
  scheduler::AutoscaleConfig scaler;
  Distribution execution;
  double weight = 1;  // share of the generated workload (before the Zipf ranks)
};

struct Burst {
  double start_hour = 0;
  double minutes = 10;
  double factor = 5;  // rate multiplier during the burst
};

// One job of a listed workload: at `seconds` after the start, to endpoint (index), running
// `exec_seconds` (or, when negative, drawn from the endpoint's execution distribution).
struct ListedJob {
  double seconds = 0;
  uint32_t endpoint = 0;
  double exec_seconds = -1;
};

struct Workload {
  enum Kind { kZipf, kAzure, kJobs } kind = kZipf;
  // kZipf: a Poisson stream of jobs_per_second, modulated by the diurnal cycle and the bursts,
  // each job going to endpoint of popularity rank r with probability ∝ 1 / r^exponent.
  double jobs_per_second = 10;
  double zipf_exponent = 0.9;
  double diurnal_amplitude = 0;  // 0..1: rate × (1 + a·cos(2π (h - peak_hour) / 24))
  double diurnal_peak_hour = 14;
  std::vector<Burst> bursts;
  // kAzure: the Azure Functions 2019 trace format; function i (in file order) → endpoint i mod n.
  std::filesystem::path invocations;  // invocations_per_function_md.anon.d01.csv
  std::filesystem::path durations;    // function_durations_percentiles.anon.d01.csv
  double azure_scale = 1;             // multiplies every per-minute count
  // kJobs: an explicit list of submissions, in time order (the validation against a real
  // cluster, src/controller/sim_validation_test.cc, replays the same list).
  std::vector<ListedJob> jobs;
};

struct Prices {
  std::vector<std::pair<std::string, double>> gpu_hour;  // GPU type → $ per GPU-hour
  double origin_per_gb = 0;                              // $ per GB leaving the origin
};

struct Policies {
  scheduler::EvictionPolicy eviction = scheduler::EvictionPolicy::kLru;
  scheduler::PlacementPolicy placement = scheduler::PlacementPolicy::kTimeToReady;
  uint32_t replicas = 0;  // cached replicas prefetched per endpoint before the start
  bool peers = true;      // hosts may fetch from peers
  double gdsf_fixed_cost_bytes = 1e9;  // GDSF's fixed cost of a download (eviction.h)
};

struct Scenario {
  uint64_t seed = 1;
  double duration_seconds = 3600;
  double worker_start_seconds = 5;  // container start to first job-take, after the model is ready
  double origin_bandwidth = 0;      // bytes/s the origin serves in all; 0 = unlimited
  double sample_seconds = 300;      // disk use sampling period
  std::vector<HostGroup> hosts;
  Catalogue catalogue;
  std::vector<Endpoint> endpoints;
  Workload workload;
  Policies policies;
  Prices prices;
};

// Parses and validates a scenario. `base_dir` resolves relative workload file paths.
StatusOr<Scenario> ParseScenario(std::string_view json_text, const std::filesystem::path& base_dir);
StatusOr<Scenario> LoadScenario(const std::filesystem::path& file);

// Applies "path=value" overrides to the JSON text before parsing (the CLI's --set), e.g.
// "policies.eviction=gdsf" or "hosts[0].cache_fraction=0.1"; the value is JSON, or a string.
StatusOr<std::string> ApplyOverrides(std::string_view json_text,
                                     const std::vector<std::string>& overrides);

}  // namespace mc::sim
