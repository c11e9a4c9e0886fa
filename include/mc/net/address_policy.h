// Which addresses a server may be made to call on a client's word (a job's webhook URL): not
// this machine, not the private network it sits in. Without this, whoever may submit a job can
// make the controller POST to its loopback services, the cloud metadata address or hosts inside
// the operator's network (server-side request forgery). Pure functions, thread-safe.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace mc::net {

// True for addresses that are not on the public internet: unspecified (0.0.0.0/8, ::),
// loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10),
// link-local (169.254/16, fe80::/10, where cloud metadata lives), multicast and reserved
// (224/3), and IPv4-mapped or NAT64-free forms of any of these (::ffff:a.b.c.d).
bool IsNonPublicAddress(const sockaddr* address);

// The host of an "http://" or "https://" URL, lowercase, without brackets or port; "" if the
// URL has no host.
std::string UrlHost(std::string_view url);

// True if `host` (as UrlHost gives it) names a non-public address without any DNS: an IP
// literal IsNonPublicAddress refuses, or "localhost" and names under ".localhost".
bool HostIsNonPublicLiteral(std::string_view host);

}  // namespace mc::net
