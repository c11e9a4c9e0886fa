#include "sim/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace mc::sim {
namespace {

constexpr double kPi = 3.141592653589793;

// Poisson arrivals at jobs_per_second × diurnal(t) × burst(t), by thinning a stream at the
// highest rate; each goes to an endpoint drawn by Zipf rank (weight_i / (i+1)^exponent).
class GeneratedSource : public ArrivalSource {
 public:
  GeneratedSource(const Scenario& sc, Rng& rng) : sc_(sc), w_(sc.workload), rng_(rng) {
    double total = 0;
    for (size_t i = 0; i < sc.endpoints.size(); ++i) {
      total += sc.endpoints[i].weight / std::pow(double(i + 1), w_.zipf_exponent);
      cdf_.push_back(total);
    }
    double burst = 1;
    for (const Burst& b : w_.bursts) burst = std::max(burst, b.factor);
    max_rate_ = w_.jobs_per_second * (1 + w_.diurnal_amplitude) * burst;
    end_s_ = sc.duration_seconds;
  }

  std::optional<Arrival> Next() override {
    if (cdf_.empty() || cdf_.back() <= 0) return std::nullopt;
    while (true) {
      t_ += rng_.Exponential(1 / max_rate_);
      if (t_ >= end_s_) return std::nullopt;
      if (rng_.Uniform() * max_rate_ <= Rate(t_)) break;
    }
    const double u = rng_.Uniform() * cdf_.back();
    const uint32_t e =
        static_cast<uint32_t>(std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
    const uint32_t endpoint = std::min<uint32_t>(e, static_cast<uint32_t>(cdf_.size() - 1));
    return Arrival{static_cast<int64_t>(t_ * 1e6), endpoint,
                   SampleExecution(sc_.endpoints[endpoint].execution, rng_)};
  }

 private:
  double Rate(double t) const {
    const double hour = std::fmod(t / 3600, 24);
    double rate =
        w_.jobs_per_second *
        (1 + w_.diurnal_amplitude * std::cos(2 * kPi * (hour - w_.diurnal_peak_hour) / 24));
    for (const Burst& b : w_.bursts) {
      const double start = b.start_hour * 3600;
      if (t >= start && t < start + b.minutes * 60) rate *= b.factor;
    }
    return rate;
  }

  const Scenario& sc_;
  const Workload& w_;
  Rng& rng_;
  std::vector<double> cdf_;
  double max_rate_ = 1;
  double end_s_ = 0;
  double t_ = 0;
};

std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line);
  std::string cell;
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// One function of the trace: its per-minute counts and (if the durations file has it) its
// duration percentiles 0, 1, 25, 50, 75, 99, 100 in milliseconds.
struct Function {
  std::vector<uint32_t> per_minute;
  std::vector<double> percentiles_ms;
};

// The Azure Functions 2019 trace (invocations_per_function_md.anon.d*.csv: HashOwner, HashApp,
// HashFunction, Trigger, then counts for minutes 1..1440; function_durations_percentiles.anon.d*
// .csv: HashOwner, HashApp, HashFunction, Average, Count, Minimum, Maximum, then
// percentile_Average_{0,1,25,50,75,99,100}). Function i (file order) drives endpoint i mod n. A
// minute's invocations arrive at uniform times within it.
class AzureSource : public ArrivalSource {
 public:
  AzureSource(const Scenario& sc, std::vector<Function> functions, Rng& rng)
      : sc_(sc), functions_(std::move(functions)), rng_(rng) {}

  std::optional<Arrival> Next() override {
    while (pos_ >= minute_.size()) {
      if (!FillMinute()) return std::nullopt;
    }
    return minute_[pos_++];
  }

 private:
  bool FillMinute() {
    minute_.clear();
    pos_ = 0;
    const int64_t start_us = int64_t(minute_index_) * 60'000'000;
    if (start_us >= int64_t(sc_.duration_seconds * 1e6)) return false;
    bool any_left = false;
    for (size_t f = 0; f < functions_.size(); ++f) {
      const Function& fn = functions_[f];
      if (minute_index_ >= fn.per_minute.size()) continue;
      any_left = true;
      const double expected = fn.per_minute[minute_index_] * sc_.workload.azure_scale;
      uint64_t n = static_cast<uint64_t>(expected);
      if (rng_.Uniform() < expected - double(n)) ++n;
      const uint32_t endpoint = static_cast<uint32_t>(f % sc_.endpoints.size());
      for (uint64_t i = 0; i < n; ++i) {
        Arrival a;
        a.time_us = start_us + static_cast<int64_t>(rng_.Uniform() * 60e6);
        a.endpoint = endpoint;
        a.exec_us = fn.percentiles_ms.empty() ? SampleExecution(sc_.endpoints[endpoint].execution, rng_)
                                              : FromPercentiles(fn.percentiles_ms);
        minute_.push_back(a);
      }
    }
    ++minute_index_;
    const int64_t end_us = int64_t(sc_.duration_seconds * 1e6);
    std::erase_if(minute_, [end_us](const Arrival& a) { return a.time_us >= end_us; });
    std::stable_sort(minute_.begin(), minute_.end(),
                     [](const Arrival& a, const Arrival& b) { return a.time_us < b.time_us; });
    return any_left || !minute_.empty();
  }

  // Inverse of the piecewise-linear CDF through the percentiles.
  int64_t FromPercentiles(const std::vector<double>& ms) {
    static constexpr double kAt[] = {0, 0.01, 0.25, 0.50, 0.75, 0.99, 1};
    const double u = rng_.Uniform();
    size_t i = 1;
    while (i < 6 && u > kAt[i]) ++i;
    const double f = (u - kAt[i - 1]) / (kAt[i] - kAt[i - 1]);
    return static_cast<int64_t>((ms[i - 1] + f * (ms[i] - ms[i - 1])) * 1000);
  }

  const Scenario& sc_;
  std::vector<Function> functions_;
  Rng& rng_;
  size_t minute_index_ = 0;
  std::vector<Arrival> minute_;
  size_t pos_ = 0;
};

StatusOr<std::vector<Function>> ReadAzure(const Workload& w) {
  std::ifstream inv(w.invocations);
  if (!inv) return NotFoundError("workload.invocations: cannot read " + w.invocations.string());
  std::string line;
  std::getline(inv, line);
  std::vector<std::string> header = SplitCsv(line);
  if (header.size() < 5 || header[0] != "HashOwner" || header[2] != "HashFunction" ||
      header[3] != "Trigger") {
    return InvalidArgumentError("workload.invocations: " + w.invocations.string() +
                                " does not start with the Azure header HashOwner,HashApp,"
                                "HashFunction,Trigger,1,2,...");
  }
  std::vector<Function> functions;
  std::map<std::string, size_t> index;
  for (size_t n = 2; std::getline(inv, line); ++n) {
    if (line.empty() || line == "\r") continue;
    if (line.back() == '\r') line.pop_back();
    std::vector<std::string> cells = SplitCsv(line);
    if (cells.size() != header.size()) {
      return InvalidArgumentError("workload.invocations: " + w.invocations.string() + " line " +
                                  std::to_string(n) + " has " + std::to_string(cells.size()) +
                                  " cells, the header " + std::to_string(header.size()));
    }
    Function fn;
    for (size_t c = 4; c < cells.size(); ++c) {
      char* end = nullptr;
      const long v = std::strtol(cells[c].c_str(), &end, 10);
      if (cells[c].empty() || *end != '\0' || v < 0) {
        return InvalidArgumentError("workload.invocations: " + w.invocations.string() + " line " +
                                    std::to_string(n) + ": minute " + header[c] +
                                    " is not a count >= 0: '" + cells[c] + "'");
      }
      fn.per_minute.push_back(static_cast<uint32_t>(v));
    }
    index[cells[0] + "," + cells[1] + "," + cells[2]] = functions.size();
    functions.push_back(std::move(fn));
  }
  if (functions.empty()) {
    return InvalidArgumentError("workload.invocations: " + w.invocations.string() + " has no functions");
  }
  if (w.durations.empty()) return functions;
  std::ifstream dur(w.durations);
  if (!dur) return NotFoundError("workload.durations: cannot read " + w.durations.string());
  std::getline(dur, line);
  header = SplitCsv(line);
  if (header.size() != 14 || header[7] != "percentile_Average_0") {
    return InvalidArgumentError("workload.durations: " + w.durations.string() +
                                " does not have the Azure header HashOwner,HashApp,HashFunction,"
                                "Average,Count,Minimum,Maximum,percentile_Average_0,...");
  }
  for (size_t n = 2; std::getline(dur, line); ++n) {
    if (line.empty() || line == "\r") continue;
    if (line.back() == '\r') line.pop_back();
    std::vector<std::string> cells = SplitCsv(line);
    if (cells.size() != 14) {
      return InvalidArgumentError("workload.durations: " + w.durations.string() + " line " +
                                  std::to_string(n) + " has " + std::to_string(cells.size()) +
                                  " cells, not 14");
    }
    auto it = index.find(cells[0] + "," + cells[1] + "," + cells[2]);
    if (it == index.end()) continue;
    std::vector<double> ms;
    for (size_t c = 7; c < 14; ++c) {
      char* end = nullptr;
      const double v = std::strtod(cells[c].c_str(), &end);
      if (cells[c].empty() || *end != '\0' || !(v >= 0)) {
        return InvalidArgumentError("workload.durations: " + w.durations.string() + " line " +
                                    std::to_string(n) + ": " + header[c] +
                                    " is not a duration >= 0: '" + cells[c] + "'");
      }
      ms.push_back(ms.empty() ? v : std::max(v, ms.back()));
    }
    functions[it->second].percentiles_ms = std::move(ms);
  }
  return functions;
}

}  // namespace

int64_t SampleExecution(const Distribution& d, Rng& rng) {
  double seconds = d.a;
  switch (d.kind) {
    case Distribution::kFixed:
      break;
    case Distribution::kExponential:
      seconds = rng.Exponential(d.a);
      break;
    case Distribution::kLognormal: {
      const double sigma = std::log(d.b / d.a) / 2.3263478740408408;  // z of the 99th percentile
      seconds = d.a * std::exp(sigma * rng.Normal());
      break;
    }
  }
  return static_cast<int64_t>(seconds * 1e6);
}

namespace {

// The listed jobs, in order, up to the scenario's end.
class ListSource : public ArrivalSource {
 public:
  ListSource(const Scenario& sc, Rng& rng) : sc_(sc), rng_(rng) {}
  std::optional<Arrival> Next() override {
    if (pos_ >= sc_.workload.jobs.size()) return std::nullopt;
    const ListedJob& j = sc_.workload.jobs[pos_++];
    if (j.seconds >= sc_.duration_seconds) return std::nullopt;
    const int64_t exec = j.exec_seconds >= 0
                             ? static_cast<int64_t>(j.exec_seconds * 1e6)
                             : SampleExecution(sc_.endpoints[j.endpoint].execution, rng_);
    return Arrival{static_cast<int64_t>(j.seconds * 1e6), j.endpoint, exec};
  }

 private:
  const Scenario& sc_;
  Rng& rng_;
  size_t pos_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<ArrivalSource>> MakeArrivalSource(const Scenario& sc, Rng& rng) {
  if (sc.workload.kind == Workload::kJobs) {
    return std::unique_ptr<ArrivalSource>(new ListSource(sc, rng));
  }
  if (sc.workload.kind == Workload::kZipf) {
    return std::unique_ptr<ArrivalSource>(new GeneratedSource(sc, rng));
  }
  MC_ASSIGN_OR_RETURN(std::vector<Function> functions, ReadAzure(sc.workload));
  return std::unique_ptr<ArrivalSource>(new AzureSource(sc, std::move(functions), rng));
}

}  // namespace mc::sim
