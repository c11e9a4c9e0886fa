// Raw HTTP over a socket (mc_test_support), for tests of the edge (docs/security.md): a client that sends exactly
// the bytes it is given, from the source address it is given (127.0.0.2 is another "client" on
// loopback), and that can stop half way (slowloris) or never send the body it announced. Plus the
// process's resident memory, for the tests that bound it. Header-only; test code only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace mc::testing {

// A TCP connection to 127.0.0.1:`port` from `source` ("127.0.0.2": another client address on
// loopback). -1 if it cannot be made.
inline int ConnectFrom(const std::string& source, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends all of `bytes`; false if the peer closed or reset first.
inline bool SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// True if the connection can be read within `wait` (data, end or error).
inline bool Readable(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
}

// True if the peer has closed (or reset) the connection within `wait`; data before the end is
// read and dropped.
inline bool ClosedByPeer(int fd, std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !Readable(fd, left)) return false;
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
}

// Reads one answer (headers, then Content-Length bytes of body, or to the end) within `wait`.
inline std::string ReadAnswer(int fd, std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  std::string got;
  char buf[8192];
  while (true) {
    const size_t end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      const size_t cl = got.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) {
        const size_t length = std::strtoull(got.c_str() + cl + 16, nullptr, 10);
        if (got.size() >= end + 4 + length) return got;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !Readable(fd, left)) return got;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, static_cast<size_t>(n));
  }
}

// The status code of an answer's first line, 0 if there is none.
inline int StatusOf(const std::string& answer) {
  if (!answer.starts_with("HTTP/1.")) return 0;
  return std::atoi(answer.c_str() + 9);
}

// Resident memory of this process: now (VmRSS) or its peak since ResetPeakRss (VmHWM).
inline uint64_t ProcStatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field + ":")) return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
  }
  return 0;
}
inline uint64_t RssBytes() { return ProcStatusKb("VmRSS") * 1024; }
inline uint64_t PeakRssBytes() { return ProcStatusKb("VmHWM") * 1024; }
inline void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace mc::testing
