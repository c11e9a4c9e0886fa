// Parsing of Hub tree pages (hf-hub-protocol.md §3), apart from the HTTP client so that hostile
// input can be tested without a server. Pure functions, thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/status.h"
#include "mc/hub/hub_client.h"
#include "mc/net/headers.h"

namespace mc::hub::internal {

// Accumulates the files of every page of one listing and checks them as a whole.
class TreeCollector {
 public:
  explicit TreeCollector(size_t max_entries = kMaxTreeEntries) : max_entries_(max_entries) {}
  // Parses one page (a JSON array) and appends its "file" entries. InvalidArgument naming the
  // entry for anything unsafe or malformed (see hub_client.h), or when the total exceeds
  // max_entries (directories count too). On error nothing of the page is kept.
  Status AddPage(std::string_view json);
  // Rejects a file that is also the parent directory of another file, then returns the files.
  StatusOr<std::vector<TreeFile>> Finish() &&;

 private:
  std::vector<TreeFile> files_;
  std::set<std::string> paths_;
  size_t entries_ = 0;
  size_t max_entries_;
};

// The URL of the first Link entry with rel="next", or nullopt.
std::optional<std::string> NextLink(const net::HeaderMap& headers);

}  // namespace mc::hub::internal
