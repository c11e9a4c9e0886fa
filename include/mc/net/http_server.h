// HttpServer: a small embedded HTTP/1.1 server, library-neutral interface (the implementation
// uses libmicrohttpd; nothing of it leaks into this header).
//
// One handler answers every request. It gets the request target exactly as sent (the path still
// percent-encoded, so "%2F" stays apart from "/"), decoded query parameters, the headers and the
// whole body (capped by max_body_bytes: larger bodies are answered 413 without calling the
// handler). It fills an HttpResponse whose body is a string, a range of a file (sent with
// sendfile(2), zero copy) or a stream of known length made by a producer callback (for bodies made
// on the fly, and for fault injection in tests: a producer can abort the connection mid-body).
// HEAD requests go to the handler like GET; the server sends the same headers, including the
// Content-Length of the body the handler set, and no body (a producer is never called for HEAD).
//
// Threading: with kThreadPerConnection (default) every connection has its own thread, so handlers
// may block (long-poll). With kThreadPool a fixed set of threads multiplexes connections; handlers
// must then be quick. The handler is called concurrently and must be thread-safe.
// Start()/Stop() are called from one owner thread; Stop() joins every server thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mc/common/status.h"
#include "mc/net/edge_limits.h"
#include "mc/net/headers.h"
#include "mc/net/url.h"

namespace mc::net {

struct HttpRequest {
  std::string method;     // "GET", "HEAD", "POST", ...
  std::string raw_path;   // request target before '?', as sent (percent-encoded)
  std::string raw_query;  // after '?', as sent; empty if none
  QueryParams query;      // raw_query decoded ('+' = space)
  HeaderMap headers;
  std::string body;
  std::string remote_address;  // "127.0.0.1" or "::1"

  // The first value of query parameter `name`, or nullopt.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

// Owns a file descriptor; closes it on destruction. Move-only.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd();
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.Release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Opens `path` read-only (O_CLOEXEC). NotFound / PermissionDenied / Internal from errno.
  static StatusOr<ScopedFd> OpenForRead(const std::filesystem::path& path);

 private:
  int fd_ = -1;
};

// A byte range of an open file, sent as the response body.
struct FileBody {
  ScopedFd fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Writes up to `max` body bytes starting at body offset `offset` into `buf` and returns how many
// (at least 1 while offset < length), or kAbortBody to close the connection at once: the peer then
// sees fewer bytes than Content-Length announced. Called on the connection's thread, once at a
// time per response, with offsets increasing; it may block (the thread-per-connection model is
// assumed then), but must return when the owner of what it waits on shuts down.
using BodyProducer = std::function<ssize_t(uint64_t offset, char* buf, size_t max)>;
inline constexpr ssize_t kAbortBody = -1;

// A body of `length` bytes made by `produce`.
struct StreamBody {
  uint64_t length = 0;
  BodyProducer produce;
};

struct HttpResponse {
  int status = 200;
  HeaderMap headers;
  std::string body;                  // used unless `file` or `stream` is set
  std::optional<FileBody> file;      // takes precedence over `body`
  std::optional<StreamBody> stream;  // takes precedence over `file` and `body`

  // Sets status, Content-Type and a string body.
  void SetText(int code, std::string text, std::string content_type = "text/plain; charset=utf-8");
  // Sets the body to `length` bytes of `fd` starting at `offset`.
  void SetFile(ScopedFd fd, uint64_t offset, uint64_t length);
  // Sets the body to `length` bytes made by `produce` (see BodyProducer); drops any file body.
  void SetStream(uint64_t length, BodyProducer produce);
  // The Content-Length this response will carry.
  uint64_t BodyLength() const {
    return stream ? stream->length : file ? file->length : body.size();
  }
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

// What a HeadHandler decides for one request, before any of its body is read.
struct HeadVerdict {
  // The largest body this request may carry (preset to HttpServerOptions::max_body_bytes); a
  // larger Content-Length, or more bytes than this, gets 413 without calling the handler.
  size_t max_body_bytes = 0;
  // Set: the request is answered with this at once; its body is never read and the connection
  // is closed after the answer (e.g. 401 for a missing key: an unauthenticated client cannot
  // make the server buffer anything).
  std::optional<HttpResponse> reject;
};

// Called once per request as soon as its headers are in: `head` is the request without a body.
// Runs on the connection's thread, concurrently; must be quick and thread-safe.
using HeadHandler = std::function<void(const HttpRequest& head, HeadVerdict& verdict)>;

enum class ThreadModel { kThreadPerConnection, kThreadPool };

struct HttpServerOptions {
  // "host:port", "[v6]:port" or ":port" (all IPv4 interfaces). Port 0 = an ephemeral port.
  std::string listen = "127.0.0.1:0";
  HttpHandler handler;
  ThreadModel thread_model = ThreadModel::kThreadPerConnection;
  unsigned thread_pool_size = 4;                 // kThreadPool only
  unsigned connection_limit = 1024;              // further connections are refused
  std::chrono::seconds connection_timeout{120};  // idle connections are closed after this
  size_t max_body_bytes = 1 << 20;               // larger request bodies get 413
  std::string name = "http";                     // prefix of log lines

  // ---- the edge against hostile clients (docs/security.md) ----
  // Checks each request's head before its body is read (key checks, per-route body caps).
  HeadHandler on_head = nullptr;
  // Per-client connection cap, read deadlines, JSON depth (mc/net/edge_limits.h).
  EdgeLimits edge;

  // HTTPS: both set = TLS (through GnuTLS) with this PEM certificate (chain) and private key;
  // both empty = plain HTTP. One without the other is an InvalidArgument from Create().
  std::filesystem::path tls_cert_file;
  std::filesystem::path tls_key_file;
};

class HttpServer {
 public:
  // Validates the options (listen address syntax, handler set). InvalidArgument otherwise.
  // Does not bind yet.
  static StatusOr<std::unique_ptr<HttpServer>> Create(HttpServerOptions options);
  virtual ~HttpServer() = default;

  // Binds and starts serving. Unavailable if the address cannot be bound (in use),
  // FailedPrecondition if already started.
  virtual Status Start() = 0;
  // The bound port (the ephemeral one for port 0). 0 before Start().
  virtual uint16_t port() const = 0;
  // "http(s)://<host>:<port>"; a wildcard listen host (0.0.0.0, ::) is given as loopback.
  virtual std::string base_url() const = 0;
  // Stops accepting, finishes or closes open connections and joins all server threads.
  // Idempotent; also done by the destructor.
  virtual void Stop() = 0;
  // Connections dropped so far for missing the header or body deadline.
  virtual uint64_t deadline_drops() const = 0;
};

}  // namespace mc::net
