// HttpClient: a blocking HTTP client (one libcurl easy handle), used in production and tests:
// the hub client's metadata calls (repo info, tree, HEAD), the agent's controller link, the
// controller's calls to agents and its webhook deliveries, the CLI's calls to a controller. File
// bytes are not fetched through it: the downloader drives its own easy handles, one per worker
// thread (src/downloader/range_fetch.h), for Range requests, stall detection and redirect rules.
//
// HTTP error statuses are results, not errors: Send() returns OK with status 404 etc. It returns
// Unavailable for transport failures (refused, reset, timeout), InvalidArgument for an unusable
// URL or request, and Internal/ResourceExhausted when the body file cannot be written.
//
// The URL is sent as given (no dot-segment normalization), so tests can send hostile paths.
// Header values are never logged (Authorization included).
// Thread-safety: one HttpClient per thread; it reuses its connection between calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "mc/common/status.h"
#include "mc/net/headers.h"

namespace mc::net {

enum class BodySink {
  kMemory,   // response.body holds the body
  kFile,     // written to request.body_file (created or truncated)
  kDiscard,  // only counted in response.body_bytes
};

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;
  HeaderMap headers;
  std::optional<std::string> body;   // sent as is; set Content-Type in headers
  std::optional<std::string> range;  // Range header value, e.g. "bytes=0-99"
  bool follow_redirects = false;
  std::chrono::milliseconds timeout{30'000};
  BodySink sink = BodySink::kMemory;
  std::filesystem::path body_file;  // for BodySink::kFile
  // A reply body (in any sink) larger than this aborts the transfer and Send() returns
  // InvalidArgument naming the cap: a defence against hostile or broken servers. Unset: 64 MiB
  // (kDefaultMaxReplyBytes) for the memory and discard sinks, none for a file (its caller
  // checks the size it expects). Every call that reads another party's reply sets its own.
  std::optional<uint64_t> max_body_bytes;
  // Connect only to public addresses (mc/net/address_policy.h), checked on the address each
  // connection is actually opened to, after DNS (so a name that resolves, or re-resolves, to
  // loopback or a private network is refused too). Send() then returns PermissionDenied.
  bool public_addresses_only = false;
  // HTTPS: the PEM file of the certificate authorities to trust instead of the system's
  // (--ca-file: a private CA for the controller, the agents and their peers). Empty: the system's.
  std::filesystem::path ca_file;
};

inline constexpr uint64_t kDefaultMaxReplyBytes = 64ull << 20;

struct HttpClientResponse {
  int status = 0;
  HeaderMap headers;  // of the final response (after redirects)
  std::string body;   // BodySink::kMemory only
  uint64_t body_bytes = 0;
  std::string effective_url;
};

// curl_global_init, once per process (thread-safe). For code that drives libcurl itself (the
// downloader); HttpClient::Create calls it.
void InitCurlGlobal();

class HttpClient {
 public:
  static std::unique_ptr<HttpClient> Create();
  virtual ~HttpClient() = default;

  virtual StatusOr<HttpClientResponse> Send(const HttpClientRequest& request) = 0;

  // Shorthands with default options.
  StatusOr<HttpClientResponse> Get(const std::string& url, HeaderMap headers = {});
  StatusOr<HttpClientResponse> Head(const std::string& url, HeaderMap headers = {});
  StatusOr<HttpClientResponse> Post(const std::string& url, std::string body,
                                    std::string content_type, HeaderMap headers = {});
};

}  // namespace mc::net
