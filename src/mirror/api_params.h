// Parsing of API query parameters and request bodies (hf-hub-protocol.md §3).
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mc/common/status.h"
#include "mc/net/http_server.h"

namespace mc::mirror {

// "true"/"True"/"1" -> true, "false"/"False"/"0" -> false (requests sends True/False, httpx
// true/false). Absent -> `fallback`. InvalidArgument otherwise.
StatusOr<bool> BoolParam(const net::HttpRequest& request, std::string_view name, bool fallback);

struct TreePage {
  size_t limit = 0;
  std::optional<std::string> after;  // path of the last entry of the previous page
};

// `limit` (1..max_limit, default `default_limit`) and the opaque `cursor`.
StatusOr<TreePage> TreePageParams(const net::HttpRequest& request, size_t default_limit,
                                  size_t max_limit);
std::string EncodeCursor(std::string_view last_path);

// Values of repeated `expand` / `expand[]` parameters (also comma-separated).
std::set<std::string> ExpandParams(const net::HttpRequest& request);

struct PathsInfoRequest {
  std::vector<std::string> paths;  // as sent, not yet validated
  bool expand = false;
};

// JSON {"paths": [...], "expand": true} or form "paths=a&paths=b&expand=true" (chosen by
// Content-Type; without one, a body starting with '{' is JSON). InvalidArgument if malformed.
StatusOr<PathsInfoRequest> ParsePathsInfoBody(const net::HttpRequest& request);

}  // namespace mc::mirror
