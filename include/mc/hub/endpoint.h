// Endpoint: the validated base URL of a Hub (huggingface.co, a mirror, our own `modelcache serve`).
#pragma once

#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc::hub {

inline constexpr std::string_view kDefaultEndpoint = "https://huggingface.co";

class Endpoint {
 public:
  // Accepts http(s)://host[:port][/path]. Trailing '/' characters are removed (as Python's
  // rstrip("/")); scheme and host are lower-cased. Rejects, with kInvalidArgument: other schemes,
  // user info (credentials would end up in logs), an empty or malformed host, a port outside
  // 1..65535, a query or fragment, whitespace, control characters, backslashes and '.'/'..' path
  // segments.
  static StatusOr<Endpoint> Parse(std::string_view text);

  // "https://huggingface.co", "http://127.0.0.1:8080/hub": never ends with '/'.
  const std::string& url() const { return url_; }
  const std::string& scheme() const { return scheme_; }  // "http" or "https"
  const std::string& host() const { return host_; }      // "127.0.0.1", "[::1]"
  int port() const { return port_; }                     // explicit, else 80 / 443
  const std::string& path() const { return path_; }      // "" or "/hub"

  bool operator==(const Endpoint& other) const { return url_ == other.url_; }

 private:
  Endpoint() = default;
  std::string url_, scheme_, host_, path_;
  int port_ = 0;
};

}  // namespace mc::hub
