#include "mirror/byte_range.h"

#include <charconv>

namespace mc::mirror {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Digits only: no sign, no spaces, no overflow.
std::optional<uint64_t> ParseNumber(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

RangeRequest Reject(RangeOutcome outcome, std::string message) {
  RangeRequest r;
  r.outcome = outcome;
  r.message = std::move(message);
  return r;
}

RangeRequest Partial(uint64_t first, uint64_t last) {
  RangeRequest r;
  r.outcome = RangeOutcome::kPartial;
  r.first = first;
  r.last = last;
  return r;
}

RangeRequest ParseSuffix(std::string_view digits, uint64_t size) {
  std::optional<uint64_t> n = ParseNumber(digits);
  if (!n) return Reject(RangeOutcome::kMalformed, "malformed Range: bad suffix length");
  if (*n == 0) return Reject(RangeOutcome::kMalformed, "malformed Range: suffix length 0");
  uint64_t take = *n < size ? *n : size;
  return Partial(size - take, size - 1);
}

}  // namespace

RangeRequest ParseRangeHeader(std::optional<std::string_view> header, uint64_t size) {
  if (!header || size == 0) return RangeRequest();
  std::string_view h = TrimSpaces(*header);
  if (!StartsWithIgnoreCase(h, "bytes=")) {
    return Reject(RangeOutcome::kMalformed, "malformed Range: only 'bytes=' ranges are supported");
  }
  std::string_view spec = TrimSpaces(h.substr(6));
  if (spec.find(',') != std::string_view::npos) {
    return Reject(RangeOutcome::kMalformed, "malformed Range: multiple ranges are not supported");
  }
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return Reject(RangeOutcome::kMalformed, "malformed Range: expected 'bytes=first-last'");
  }
  if (dash == 0) return ParseSuffix(spec.substr(1), size);
  std::optional<uint64_t> first = ParseNumber(spec.substr(0, dash));
  std::string_view last_text = spec.substr(dash + 1);
  std::optional<uint64_t> last =
      last_text.empty() ? std::optional<uint64_t>(size - 1) : ParseNumber(last_text);
  if (!first || !last) return Reject(RangeOutcome::kMalformed, "malformed Range: bad number");
  if (*last < *first) {
    return Reject(RangeOutcome::kUnsatisfiable, "Range ends before it starts");
  }
  if (*first >= size) {
    return Reject(RangeOutcome::kUnsatisfiable, "Range starts at or after the end of the file");
  }
  return Partial(*first, *last < size ? *last : size - 1);
}

std::string ContentRange(const RangeRequest& range, uint64_t size) {
  if (range.outcome == RangeOutcome::kPartial) {
    return "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
           std::to_string(size);
  }
  return "bytes */" + std::to_string(size);
}

}  // namespace mc::mirror
