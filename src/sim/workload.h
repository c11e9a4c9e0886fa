// Job arrival streams for the simulator: the generators (Zipf popularity, diurnal cycle, bursts)
// and the Azure Functions 2019 trace format. A source yields arrivals in time order, lazily, so a
// day of a large fleet never sits in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "mc/common/status.h"
#include "mc/sim/scenario.h"
#include "sim/random.h"

namespace mc::sim {

struct Arrival {
  int64_t time_us = 0;
  uint32_t endpoint = 0;
  int64_t exec_us = 0;
};

class ArrivalSource {
 public:
  virtual ~ArrivalSource() = default;
  // The next arrival at or before end_us, in time order; nullopt when there are no more.
  virtual std::optional<Arrival> Next() = 0;
};

// Samples an execution time in microseconds.
int64_t SampleExecution(const Distribution& d, Rng& rng);

// The scenario's workload as a source. Reading the Azure files happens here (errors name the
// file and line).
StatusOr<std::unique_ptr<ArrivalSource>> MakeArrivalSource(const Scenario& scenario, Rng& rng);

}  // namespace mc::sim
