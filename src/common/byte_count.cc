#include "mc/common/byte_count.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "mc/common/ids.h"

namespace mc {
namespace {

std::string ToLower(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool UnitMultiplier(std::string_view unit, long double* mult) {
  const std::string u = ToLower(unit);
  struct Unit {
    const char* name;
    long double mult;
  };
  static const Unit kUnits[] = {
      {"", 1},
      {"b", 1},
      {"k", 1e3L},
      {"kb", 1e3L},
      {"m", 1e6L},
      {"mb", 1e6L},
      {"g", 1e9L},
      {"gb", 1e9L},
      {"t", 1e12L},
      {"tb", 1e12L},
      {"p", 1e15L},
      {"pb", 1e15L},
      {"kib", 1024.0L},
      {"mib", 1048576.0L},
      {"gib", 1073741824.0L},
      {"tib", 1099511627776.0L},
      {"pib", 1125899906842624.0L},
  };
  for (const auto& unit_def : kUnits) {
    if (u == unit_def.name) {
      *mult = unit_def.mult;
      return true;
    }
  }
  return false;
}

std::string Format(uint64_t bytes, double base, const char* const* units) {
  if (bytes < base) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= base && units[i + 1] != nullptr) {
    v /= base;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[i]);
  return buf;
}

}  // namespace

StatusOr<ByteCount> ByteCount::Parse(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError("invalid size " + QuoteForMessage(text) + ": " + std::string(why) +
                                " (examples: 500GB, 1.5GiB, 1048576)");
  };
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  size_t i = 0;
  bool seen_digit = false, seen_dot = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
    if (s[i] == '.') {
      if (seen_dot) return fail("more than one '.'");
      seen_dot = true;
    } else {
      seen_digit = true;
    }
    ++i;
  }
  if (!seen_digit) return fail("expected a non-negative number");
  std::string number(s.substr(0, i));
  std::string_view unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  long double mult = 1;
  if (!UnitMultiplier(unit, &mult)) return fail("unknown unit");
  long double value = std::strtold(number.c_str(), nullptr) * mult;
  if (!std::isfinite(static_cast<double>(value)) || value >= 18446744073709551615.0L) {
    return fail("too large");
  }
  return ByteCount(static_cast<uint64_t>(std::llround(static_cast<double>(value))));
}

std::string ByteCount::ToHuman() const {
  static const char* const kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB", nullptr};
  return Format(bytes_, 1000.0, kUnits);
}

std::string ByteCount::ToHumanBinary() const {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", nullptr};
  return Format(bytes_, 1024.0, kUnits);
}

}  // namespace mc
