// Parsing and resolving "host:port" listen addresses for HttpServer.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc::net {

struct ListenAddress {
  std::string host;  // as written, without brackets; "0.0.0.0" for ":port"
  uint16_t port = 0;
  sockaddr_storage addr{};  // resolved; port filled in
  socklen_t addr_len = 0;
  bool ipv6 = false;
};

// Parses "host:port", "[v6]:port", ":port" and resolves host (numeric or by name, first
// address). InvalidArgument on bad syntax, an out-of-range port or an unresolvable host.
StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

// The host a local client should use to reach `address`: loopback for wildcard hosts, brackets
// for IPv6 literals.
std::string ConnectHost(const ListenAddress& address);

}  // namespace mc::net
