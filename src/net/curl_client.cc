// HttpClient over the libcurl easy interface.
#include <curl/curl.h>
#include <sys/socket.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "mc/common/ids.h"
#include "mc/net/address_policy.h"
#include "mc/net/http_client.h"

namespace mc::net {

void InitCurlGlobal() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {

// Where the body goes while a transfer runs.
struct Transfer {
  HttpClientResponse* response = nullptr;
  BodySink sink = BodySink::kMemory;
  std::FILE* file = nullptr;
  bool write_failed = false;
  std::optional<uint64_t> max_body_bytes;
  bool too_large = false;
  bool public_only = false;
  bool refused_address = false;
};

// CURLOPT_OPENSOCKETFUNCTION: refuses non-public addresses when asked to.
curl_socket_t OpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  if (t->public_only && IsNonPublicAddress(&address->addr)) {
    t->refused_address = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * nmemb;
  if (t->max_body_bytes && t->response->body_bytes + n > *t->max_body_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  if (t->sink == BodySink::kMemory) {
    t->response->body.append(data, n);
  } else if (t->sink == BodySink::kFile) {
    if (std::fwrite(data, 1, n, t->file) != n) {
      t->write_failed = true;
      return 0;  // aborts the transfer
    }
  }
  t->response->body_bytes += n;
  return n;
}

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  AddRawHeaderLine(std::string_view(data, size * nmemb), t->response->headers);
  return size * nmemb;
}

class CurlClient final : public HttpClient {
 public:
  explicit CurlClient(CURL* curl) : curl_(curl) {}
  ~CurlClient() override { curl_easy_cleanup(curl_); }
  StatusOr<HttpClientResponse> Send(const HttpClientRequest& request) override;

 private:
  curl_slist* SetOptions(const HttpClientRequest& request, Transfer& transfer);
  CURL* curl_;
};

curl_slist* CurlClient::SetOptions(const HttpClientRequest& request, Transfer& transfer) {
  curl_easy_reset(curl_);
  curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl_, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &transfer);
  if (!request.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, request.ca_file.c_str());
  curl_easy_setopt(curl_, CURLOPT_OPENSOCKETFUNCTION, &OpenSocket);
  curl_easy_setopt(curl_, CURLOPT_OPENSOCKETDATA, &transfer);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.body) {
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body->size()));
  }
  curl_slist* list = nullptr;
  for (const auto& [name, value] : request.headers.fields()) {
    list = curl_slist_append(list, (name + ": " + value).c_str());
  }
  if (request.range) list = curl_slist_append(list, ("Range: " + *request.range).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip for small bodies
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
  return list;
}

StatusOr<HttpClientResponse> CurlClient::Send(const HttpClientRequest& request) {
  HttpClientResponse response;
  std::optional<uint64_t> cap = request.max_body_bytes;
  if (!cap && request.sink != BodySink::kFile) cap = kDefaultMaxReplyBytes;
  Transfer transfer{&response, request.sink, nullptr, false, cap, false};
  transfer.public_only = request.public_addresses_only;
  if (request.sink == BodySink::kFile) {
    transfer.file = std::fopen(request.body_file.c_str(), "wb");
    if (transfer.file == nullptr) return ErrnoError(errno, "open " + request.body_file.string());
  }
  curl_slist* headers = SetOptions(request, transfer);
  CURLcode rc = curl_easy_perform(curl_);
  curl_slist_free_all(headers);
  bool close_failed = transfer.file != nullptr && std::fclose(transfer.file) != 0;
  if (transfer.too_large) {
    return InvalidArgumentError(request.method + " " + QuoteForMessage(request.url) +
                                ": the reply body is larger than this call's cap of " +
                                std::to_string(*cap) +
                                " bytes (transfer aborted; a broken or hostile server?)");
  }
  if (transfer.refused_address) {
    return PermissionDeniedError(request.method + " " + QuoteForMessage(request.url) +
                                 ": refused to connect to a loopback, private or link-local "
                                 "address");
  }
  if (transfer.write_failed || close_failed) {
    return ErrnoError(errno, "write " + request.body_file.string());
  }
  if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return InvalidArgumentError(std::string(curl_easy_strerror(rc)) + ": " +
                                QuoteForMessage(request.url));
  }
  if (rc != CURLE_OK) {
    return UnavailableError(request.method + " " + QuoteForMessage(request.url) + ": " +
                            curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  char* effective = nullptr;
  curl_easy_getinfo(curl_, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) response.effective_url = effective;
  spdlog::debug("http client: {} {} -> {} ({} bytes)", request.method, request.url, response.status,
                response.body_bytes);
  return response;
}

}  // namespace

std::unique_ptr<HttpClient> HttpClient::Create() {
  InitCurlGlobal();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) std::abort();  // only fails when out of memory
  return std::make_unique<CurlClient>(curl);
}

StatusOr<HttpClientResponse> HttpClient::Get(const std::string& url, HeaderMap headers) {
  HttpClientRequest request;
  request.url = url;
  request.headers = std::move(headers);
  return Send(request);
}

StatusOr<HttpClientResponse> HttpClient::Head(const std::string& url, HeaderMap headers) {
  HttpClientRequest request;
  request.method = "HEAD";
  request.url = url;
  request.headers = std::move(headers);
  return Send(request);
}

StatusOr<HttpClientResponse> HttpClient::Post(const std::string& url, std::string body,
                                              std::string content_type, HeaderMap headers) {
  HttpClientRequest request;
  request.method = "POST";
  request.url = url;
  request.headers = std::move(headers);
  request.headers.Set("Content-Type", std::move(content_type));
  request.body = std::move(body);
  return Send(request);
}

}  // namespace mc::net
