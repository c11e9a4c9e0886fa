// Helpers of the libFuzzer targets (fuzz/README.md): a failed invariant aborts, which libFuzzer
// reports as a crash with the input that caused it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define MC_FUZZ_CHECK(cond)                                                       \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

// Splits the input at the first NUL into two fields (the second empty if there is none).
inline std::pair<std::string_view, std::string_view> SplitAtNul(std::string_view in) {
  size_t nul = in.find('\0');
  if (nul == in.npos) return {in, {}};
  return {in.substr(0, nul), in.substr(nul + 1)};
}
