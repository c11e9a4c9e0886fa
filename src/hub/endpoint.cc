#include "mc/hub/endpoint.h"

#include <cctype>

#include "mc/common/ids.h"

namespace mc::hub {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool IsIpv6Char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

}  // namespace

// Long: one URL grammar checked from left to right (scheme, userinfo, host or [IPv6], port,
// path), each step with its own error message.
StatusOr<Endpoint> Endpoint::Parse(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError("invalid hub endpoint " + QuoteForMessage(text) + ": " +
                                std::string(why) + " (expected http(s)://host[:port][/path])");
  };
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F || c == '\\') {
      return fail("whitespace, control, non-ASCII or backslash characters are not allowed");
    }
  }
  std::string_view rest = text;
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t sep = rest.find("://");
  if (sep == std::string_view::npos) return fail("missing scheme");
  Endpoint ep;
  ep.scheme_ = Lower(rest.substr(0, sep));
  if (ep.scheme_ != "http" && ep.scheme_ != "https") return fail("scheme must be http or https");
  rest.remove_prefix(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("a query or fragment is not allowed");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) return fail("user info is not allowed");

  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated IPv6 address");
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return fail("junk after IPv6 address");
    if (!after.empty()) port = after.substr(1);
    if (host.size() < 3) return fail("empty IPv6 address");
    for (char c : host.substr(1, host.size() - 2)) {
      if (!IsIpv6Char(c)) return fail("malformed IPv6 address");
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return fail("empty port");
    }
    if (host.empty()) return fail("empty host");
    for (char c : host) {
      if (!IsHostChar(c)) return fail("character not allowed in host");
    }
    if (host.front() == '.' || host.front() == '-' || host.find("..") != std::string_view::npos) {
      return fail("malformed host");
    }
  }
  ep.port_ = ep.scheme_ == "https" ? 443 : 80;
  if (!port.empty() || (!authority.empty() && authority.back() == ':')) {
    if (port.empty() || port.size() > 5) return fail("port must be 1..65535");
    int value = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return fail("port must be 1..65535");
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return fail("port must be 1..65535");
    ep.port_ = value;
  }
  for (size_t start = 1; start < path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg == "." || seg == "..") return fail("'.' and '..' path segments are not allowed");
    if (seg.empty()) return fail("empty path segment");
    start = end + 1;
  }
  ep.host_ = Lower(host);
  ep.path_ = std::string(path);
  ep.url_ = ep.scheme_ + "://" + ep.host_;
  if (!port.empty()) ep.url_ += ":" + std::to_string(ep.port_);
  ep.url_ += ep.path_;
  return ep;
}

}  // namespace mc::hub
