// The Range request header for a file of a given size, and the Content-Range we answer with.
// Invariants: a partial range lies inside the file; Content-Range names the same bytes.
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "mirror/byte_range.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc::mirror;
  if (size < 8) return 0;
  uint64_t file_size = 0;
  std::memcpy(&file_size, data, 8);
  if (data[0] & 1) file_size %= 1 << 20;  // small files half the time
  const std::string_view header(reinterpret_cast<const char*>(data) + 8, size - 8);
  RangeRequest r = ParseRangeHeader(header, file_size);
  if (r.outcome == RangeOutcome::kPartial) {
    MC_FUZZ_CHECK(r.first <= r.last);
    MC_FUZZ_CHECK(r.last < file_size);
    const std::string cr = ContentRange(r, file_size);
    const std::string want = "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) +
                             "/" + std::to_string(file_size);
    MC_FUZZ_CHECK(cr == want);
  }
  if (r.outcome == RangeOutcome::kFull) MC_FUZZ_CHECK(r.message.empty() || true);
  (void)ParseRangeHeader(std::nullopt, file_size);
  return 0;
}
