// Parsing of the HTTP Range request header for a file of known size (RFC 9110 §14), restricted to
// what Hub clients send: one range in bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mc::mirror {

enum class RangeOutcome {
  kFull,           // no Range header (or an empty file): 200 with the whole body
  kPartial,        // 206 with `first`..`last`
  kUnsatisfiable,  // 416: the range does not overlap the file (or ends before it starts)
  kMalformed,      // 416: syntax we do not accept (other units, several ranges, bad numbers)
};

struct RangeRequest {
  RangeOutcome outcome = RangeOutcome::kFull;
  uint64_t first = 0;   // inclusive
  uint64_t last = 0;    // inclusive
  std::string message;  // why, for kUnsatisfiable / kMalformed

  uint64_t length() const { return last - first + 1; }
};

// Accepted: "bytes=N-", "bytes=N-M" (M clamped to size-1), "bytes=-N" (last N bytes, N > 0; the
// whole file if N >= size). The unit is case-insensitive; spaces around the spec are ignored.
// Rejected as malformed: other units, several ranges ("0-1,5-6"), "-0", signs, empty or
// overflowing numbers. Unsatisfiable: N >= size, M < N. An empty file ignores the Range header
// (a 200 with no body is the only sensible answer).
RangeRequest ParseRangeHeader(std::optional<std::string_view> header, uint64_t size);

// "bytes 0-0/1234" for a partial response; "bytes */1234" for a 416.
std::string ContentRange(const RangeRequest& range, uint64_t size);

}  // namespace mc::mirror
