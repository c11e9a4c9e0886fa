// Percent-encoding (RFC 3986) and query strings (application/x-www-form-urlencoded).
// Pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mc/common/status.h"

namespace mc::net {

using QueryParams = std::multimap<std::string, std::string>;

// Encodes every byte except the RFC 3986 unreserved set [A-Za-z0-9-._~] and the bytes in `safe`
// as %XX (uppercase hex). PercentEncode("refs/pr/1") == "refs%2Fpr%2F1", like Python's
// quote(s, safe="").
std::string PercentEncode(std::string_view text, std::string_view safe = "");
// Encodes a repo file path keeping '/': "onnx/my model+v2.onnx" -> "onnx/my%20model%2Bv2.onnx".
std::string PercentEncodePath(std::string_view path);

// Decodes %XX escapes. With `plus_as_space` (query strings and form bodies) '+' becomes ' '.
// InvalidArgument for a truncated or non-hex escape and for a NUL byte (escaped as %00 or raw):
// decoded text is used in paths and ids, where NUL is never legitimate.
StatusOr<std::string> PercentDecode(std::string_view text, bool plus_as_space = false);

// Parses "a=1&b=x%20y&flag&a=2" into decoded key/value pairs (a key without '=' has value "").
// Empty pieces ("a=1&&b=2") are skipped. InvalidArgument on a bad escape.
StatusOr<QueryParams> ParseQueryString(std::string_view query);

// Builds "k1=v1&k2=v2" with both sides percent-encoded, in the given order.
std::string BuildQueryString(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace mc::net
