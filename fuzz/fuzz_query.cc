// Percent-decoding and query strings. Invariants: encoding then decoding gives the text back;
// a query BuildQueryString made always parses (NUL excepted: decoding refuses it by design).
#include <string>

#include "fuzz_util.h"
#include "mc/net/url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)net::PercentDecode(in, false);
  (void)net::PercentDecode(in, true);
  (void)net::ParseQueryString(in);
  auto [key, value] = SplitAtNul(in);
  const std::string built = net::BuildQueryString({{std::string(key), std::string(value)}});
  StatusOr<net::QueryParams> parsed = net::ParseQueryString(built);
  if (in.find('\0', key.size() + 1) == std::string_view::npos && key.size() < in.size()) {
    MC_FUZZ_CHECK(parsed.ok());
    auto it = parsed->find(std::string(key));
    MC_FUZZ_CHECK(key.empty() || (it != parsed->end() && it->second == value));
  }
  if (in.find('\0') != std::string_view::npos) return 0;
  StatusOr<std::string> round = net::PercentDecode(net::PercentEncode(in));
  MC_FUZZ_CHECK(round.ok() && *round == in);
  StatusOr<std::string> path = net::PercentDecode(net::PercentEncodePath(in));
  MC_FUZZ_CHECK(path.ok() && *path == in);
  return 0;
}
