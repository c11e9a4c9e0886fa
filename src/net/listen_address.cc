#include "listen_address.h"

#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include "mc/common/ids.h"

namespace mc::net {
namespace {

Status BadAddress(std::string_view text, std::string_view why) {
  return InvalidArgumentError("listen address " + QuoteForMessage(text) + ": " + std::string(why) +
                              " (expected host:port, [v6]:port or :port)");
}

Status Resolve(ListenAddress& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(out.host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return InvalidArgumentError("cannot resolve listen host " + QuoteForMessage(out.host) + ": " +
                                gai_strerror(rc));
  }
  std::memcpy(&out.addr, result->ai_addr, result->ai_addrlen);
  out.addr_len = result->ai_addrlen;
  out.ipv6 = result->ai_family == AF_INET6;
  freeaddrinfo(result);
  if (out.ipv6) {
    reinterpret_cast<sockaddr_in6*>(&out.addr)->sin6_port = htons(out.port);
  } else {
    reinterpret_cast<sockaddr_in*>(&out.addr)->sin_port = htons(out.port);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return BadAddress(text, "unterminated IPv6 literal or missing port");
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return BadAddress(text, "missing port");
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) return BadAddress(text, "IPv6 needs brackets");
  }
  if (out.host.empty()) out.host = "0.0.0.0";
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return BadAddress(text, "bad port");
  }
  out.port = static_cast<uint16_t>(port);
  MC_RETURN_IF_ERROR(Resolve(out));
  return out;
}

std::string ConnectHost(const ListenAddress& address) {
  if (address.host == "0.0.0.0") return "127.0.0.1";
  if (address.host == "::") return "[::1]";
  if (address.host.find(':') != std::string::npos) return "[" + address.host + "]";
  return address.host;
}

}  // namespace mc::net
