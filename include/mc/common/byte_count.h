// ByteCount: a number of bytes with human parsing and printing.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc {

class ByteCount {
 public:
  constexpr ByteCount() = default;
  constexpr explicit ByteCount(uint64_t bytes) : bytes_(bytes) {}

  // Parses "1234", "500GB", "500 GB", "1.5GiB", "10M", "0". Decimal units (k/K, KB, MB, GB, TB, PB
  // = powers of 1000) and binary units (KiB, MiB, GiB, TiB, PiB = powers of 1024); single letters
  // K/M/G/T/P are decimal, as `df -H` and the Hub print them. Case-insensitive. Rejects negative,
  // empty, overflowing or unknown-unit input with kInvalidArgument.
  static StatusOr<ByteCount> Parse(std::string_view text);

  constexpr uint64_t bytes() const { return bytes_; }

  // "0 B", "999 B", "1.5 KB", "548.1 MB", "2.1 GB" (decimal, like `hf cache scan`).
  std::string ToHuman() const;
  // "1.5 GiB" (binary).
  std::string ToHumanBinary() const;

  constexpr auto operator<=>(const ByteCount&) const = default;

 private:
  uint64_t bytes_ = 0;
};

}  // namespace mc
