#include "mc/common/constant_time.h"

#include <algorithm>

namespace mc {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer one is read whatever the shorter holds; no early exit.
  const size_t n = std::max(a.size(), b.size());
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace mc
