// EdgeLimits: what an HTTP server of modelcache (controller, agent, mirror) grants one client
// before trusting it with more: connections, time to send its request, JSON nesting. The
// defaults suit a server reached directly by its clients; docs/security.md says what each stops.
// A plain struct (no dependencies), so that every server's options can carry one.
#pragma once

#include <chrono>

namespace mc::net {

struct EdgeLimits {
  // Open connections from one client address; more are closed at once. 0 = no cap (behind a
  // proxy every client has the proxy's address: raise it there).
  unsigned per_client_connections = 256;
  // The request line and headers must be in within this of the connection opening (or of the
  // previous answer on a kept-alive connection); the body within body_deadline of the headers.
  // A connection that misses either is dropped (slowloris). 0 = no deadline.
  std::chrono::milliseconds header_deadline{30'000};
  std::chrono::milliseconds body_deadline{120'000};
  // A body whose first non-blank byte is '{' or '[' and that nests arrays/objects deeper than
  // this gets 400 without reaching the handler (deep JSON exhausts recursive code). 0 = no check.
  int max_json_depth = 128;
};

}  // namespace mc::net
