// The simulator's random numbers: a small generator and distributions of our own, so that a seed
// gives the same numbers with any standard library (std::*_distribution are not specified
// bit-for-bit, and determinism is a promise of `modelcache sim`).
#pragma once

#include <cmath>
#include <cstdint>

#include "mc/common/xoshiro.h"

namespace mc::sim {

// xoshiro256** seeded through SplitMix64 (mc/common/xoshiro.h), with the distributions the
// simulator draws from.
class Rng : public Xoshiro256 {
 public:
  using Xoshiro256::Xoshiro256;
  // Uniform in (0, 1): never 0, so that log() is safe.
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  double Exponential(double mean) { return -mean * std::log(Uniform()); }
  double Normal() {  // Box-Muller, one of the pair
    return std::sqrt(-2 * std::log(Uniform())) * std::cos(6.283185307179586 * Uniform());
  }
};

}  // namespace mc::sim
