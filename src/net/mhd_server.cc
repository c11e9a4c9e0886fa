// HttpServer over libmicrohttpd. Request flow per MHD callbacks:
//   OnConnection    opened: track it (its socket, the phase it is in and since when); closed: forget
//   OnUriLog        first line parsed: capture the raw request target, allocate RequestState
//   OnRequest (1st) headers parsed: the HeadHandler (key check, body cap), then oversized
//                   Content-Length -> 413; both answer before a body byte is read
//   OnRequest (n)   body chunks: append up to the request's cap
//   OnRequest (end) JSON depth check, build HttpRequest, run the handler, queue the response
//   OnCompleted     free RequestState; the connection waits for its next request's headers
// A watchdog thread shuts down the socket of a connection whose headers or body are late
// (header_deadline, body_deadline); MHD then sees the peer gone and closes it.
#include <arpa/inet.h>
#include <microhttpd.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "listen_address.h"
#include "mc/common/thread_annotations.h"
#include "mc/net/http_server.h"
#include "mc/net/json_reply.h"

namespace mc::net {
namespace {

struct RequestState {
  std::string raw_uri;
  std::string body;
  bool headers_seen = false;
  bool too_large = false;
  size_t max_body_bytes = 0;
};

// One open connection, for the read deadlines. Guarded by MhdServer::conn_mu_.
struct ConnTrack {
  enum class Phase { kHeaders, kBody, kAnswering } phase = Phase::kHeaders;
  std::chrono::steady_clock::time_point since;
  int fd = -1;
  bool dropped = false;
};

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key, const char* value) {
  static_cast<HeaderMap*>(cls)->Add(key ? key : "", value ? value : "");
  return MHD_YES;
}

std::string RemoteAddress(MHD_Connection* conn) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

bool FirstByteOpensJson(const std::string& body) {
  for (char c : body) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' || c == '[';
  }
  return false;
}

StatusOr<std::string> ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool ContentLengthExceeds(MHD_Connection* conn, size_t limit) {
  const char* value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
  if (value == nullptr) return false;
  char* end = nullptr;
  unsigned long long n = std::strtoull(value, &end, 10);
  return end != value && n > limit;
}

// MHD content reader over a StreamBody (owned by MHD through FreeStream).
ssize_t ReadStream(void* cls, uint64_t pos, char* buf, size_t max) {
  auto* stream = static_cast<StreamBody*>(cls);
  if (pos >= stream->length) return MHD_CONTENT_READER_END_OF_STREAM;
  size_t want = static_cast<size_t>(std::min<uint64_t>(max, stream->length - pos));
  ssize_t n = kAbortBody;
  try {
    n = stream->produce(pos, buf, want);
  } catch (...) {
    n = kAbortBody;  // exceptions must not unwind through microhttpd's C frames
  }
  if (n <= 0 || static_cast<size_t>(n) > want) return MHD_CONTENT_READER_END_WITH_ERROR;
  return n;
}

void FreeStream(void* cls) { delete static_cast<StreamBody*>(cls); }

constexpr size_t kStreamBlockSize = 64 * 1024;

// Turns an HttpResponse into an MHD response; nullptr on allocation failure.
MHD_Response* ToMhdResponse(HttpResponse& response) {
  MHD_Response* r = nullptr;
  if (response.stream && response.stream->length > 0) {
    auto* stream = new StreamBody(std::move(*response.stream));
    r = MHD_create_response_from_callback(stream->length, kStreamBlockSize, &ReadStream, stream,
                                          &FreeStream);
    if (r == nullptr) delete stream;
  } else if (!response.stream && response.file && response.file->length > 0) {
    FileBody& f = *response.file;
    r = MHD_create_response_from_fd_at_offset64(f.length, f.fd.get(), f.offset);
    if (r != nullptr) f.fd.Release();  // MHD closes it when the response is destroyed
  } else {
    static const std::string kEmpty;
    const std::string& body = response.file || response.stream ? kEmpty : response.body;
    r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                        MHD_RESPMEM_MUST_COPY);
  }
  if (r == nullptr) return nullptr;
  for (const auto& [name, value] : response.headers.fields()) {
    if (HeaderNameEquals(name, "Content-Length")) continue;  // MHD computes it
    MHD_add_response_header(r, name.c_str(), value.c_str());
  }
  return r;
}

class MhdServer final : public HttpServer {
 public:
  MhdServer(HttpServerOptions options, ListenAddress address)
      : options_(std::move(options)), address_(std::move(address)) {}
  ~MhdServer() override { Stop(); }

  Status Start() override;
  uint16_t port() const override { return port_; }
  std::string base_url() const override {
    return std::string(tls() ? "https://" : "http://") + ConnectHost(address_) + ":" +
           std::to_string(port_);
  }
  void Stop() override;
  uint64_t deadline_drops() const override { return deadline_drops_.load(); }

 private:
  static void* OnUriLog(void* cls, const char* uri, MHD_Connection* conn);
  static MHD_Result OnRequest(void* cls, MHD_Connection* conn, const char* url, const char* method,
                              const char* version, const char* upload_data,
                              size_t* upload_data_size, void** con_cls);
  static void OnCompleted(void* cls, MHD_Connection* conn, void** con_cls,
                          MHD_RequestTerminationCode code);
  static void OnConnection(void* cls, MHD_Connection* conn, void** socket_context,
                           MHD_ConnectionNotificationCode code);
  static size_t KeepEscaped(void* cls, MHD_Connection* conn, char* s) { return std::strlen(s); }
  static void OnMhdLog(void* cls, const char* fmt, va_list ap);

  MHD_Result Answer(MHD_Connection* conn, const char* method, RequestState& state);
  MHD_Result OnHeaders(MHD_Connection* conn, const char* method, RequestState& state);
  bool tls() const { return !options_.tls_cert_file.empty(); }
  bool deadlines() const {
    return options_.edge.header_deadline.count() > 0 || options_.edge.body_deadline.count() > 0;
  }
  void EnterPhase(MHD_Connection* conn, ConnTrack::Phase phase);
  void Watch();
  HttpResponse RunHandler(const HttpRequest& request);
  MHD_Result Queue(MHD_Connection* conn, HttpResponse& response);
  static void SetPlainError(HttpResponse& response, int code, std::string message);

  HttpServerOptions options_;
  ListenAddress address_;
  MHD_Daemon* daemon_ = nullptr;
  uint16_t port_ = 0;
  std::string tls_cert_, tls_key_;  // PEM text; MHD reads them at start

  Mutex conn_mu_;
  CondVar watch_cv_;
  std::set<ConnTrack*> conns_ MC_GUARDED_BY(conn_mu_);  // open connections (deadlines on)
  bool stopping_ MC_GUARDED_BY(conn_mu_) = false;
  std::thread watchdog_;
  std::atomic<uint64_t> deadline_drops_{0};
};

Status MhdServer::Start() {
  if (daemon_ != nullptr) return FailedPreconditionError(options_.name + ": already started");
  unsigned flags = MHD_USE_ERROR_LOG;
  if (options_.thread_model == ThreadModel::kThreadPerConnection) {
    flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
  } else {
    flags |= MHD_USE_EPOLL_INTERNAL_THREAD;
  }
  if (address_.ipv6) flags |= MHD_USE_IPv6;
  if (tls()) {
    flags |= MHD_USE_TLS;
    MC_ASSIGN_OR_RETURN(tls_cert_, ReadWholeFile(options_.tls_cert_file), options_.name + ": TLS");
    MC_ASSIGN_OR_RETURN(tls_key_, ReadWholeFile(options_.tls_key_file), options_.name + ": TLS");
  }
  // Options that only apply to one thread model go through an option array.
  // So do the TLS and the deadline ones.
  MHD_OptionItem model_options[6];
  size_t n_options = 0;
  if (options_.thread_model == ThreadModel::kThreadPool) {
    model_options[n_options++] = {MHD_OPTION_THREAD_POOL_SIZE,
                                  static_cast<intptr_t>(options_.thread_pool_size), nullptr};
  }
  if (tls()) {
    model_options[n_options++] = {MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert_.data()};
    model_options[n_options++] = {MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key_.data()};
  }
  if (deadlines()) {
    model_options[n_options++] = {MHD_OPTION_NOTIFY_CONNECTION,
                                  reinterpret_cast<intptr_t>(&MhdServer::OnConnection), this};
  }
  model_options[n_options] = {MHD_OPTION_END, 0, nullptr};
  daemon_ = MHD_start_daemon(
      flags, address_.port, nullptr, nullptr, &MhdServer::OnRequest, this, MHD_OPTION_SOCK_ADDR,
      reinterpret_cast<const sockaddr*>(&address_.addr), MHD_OPTION_CONNECTION_LIMIT,
      options_.connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(options_.connection_timeout.count()),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(128 * 1024),
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, options_.edge.per_client_connections,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_ARRAY, model_options,
      MHD_OPTION_URI_LOG_CALLBACK, &MhdServer::OnUriLog, this, MHD_OPTION_NOTIFY_COMPLETED,
      &MhdServer::OnCompleted, this, MHD_OPTION_UNESCAPE_CALLBACK, &MhdServer::KeepEscaped, this,
      MHD_OPTION_EXTERNAL_LOGGER, &MhdServer::OnMhdLog, this, MHD_OPTION_END);
  if (daemon_ == nullptr) {
    return UnavailableError(options_.name + ": cannot listen on " + address_.host + ":" +
                            std::to_string(address_.port) + " (address in use or not local?)");
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  port_ = info != nullptr ? info->port : address_.port;
  if (deadlines()) {
    {
      MutexLock lock(conn_mu_);  // connection threads run already (they take conn_mu_ too)
      stopping_ = false;
    }
    watchdog_ = std::thread([this] { Watch(); });
  }
  spdlog::debug("{}: listening on {}", options_.name, base_url());
  return Status::Ok();
}

void MhdServer::Stop() {
  if (daemon_ == nullptr) return;
  if (watchdog_.joinable()) {
    {
      MutexLock lock(conn_mu_);
      stopping_ = true;
    }
    watch_cv_.NotifyAll();
    watchdog_.join();
  }
  MHD_stop_daemon(daemon_);  // joins the polling thread and every connection thread
  daemon_ = nullptr;
  spdlog::debug("{}: stopped", options_.name);
}

void* MhdServer::OnUriLog(void* cls, const char* uri, MHD_Connection* conn) {
  auto* state = new RequestState();
  state->raw_uri = uri ? uri : "";
  return state;
}

void MhdServer::OnCompleted(void* cls, MHD_Connection* conn, void** con_cls,
                            MHD_RequestTerminationCode code) {
  delete static_cast<RequestState*>(*con_cls);
  *con_cls = nullptr;
  // A kept-alive connection now waits for its next request's headers, under the header deadline.
  static_cast<MhdServer*>(cls)->EnterPhase(conn, ConnTrack::Phase::kHeaders);
}

void MhdServer::OnConnection(void* cls, MHD_Connection* conn, void** socket_context,
                             MHD_ConnectionNotificationCode code) {
  auto* self = static_cast<MhdServer*>(cls);
  MutexLock lock(self->conn_mu_);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    auto* track = new ConnTrack();
    track->since = std::chrono::steady_clock::now();
    const MHD_ConnectionInfo* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    track->fd = info != nullptr ? info->connect_fd : -1;
    self->conns_.insert(track);
    *socket_context = track;
  } else if (*socket_context != nullptr) {
    // Called before MHD closes the socket, so the watchdog never shuts down a reused fd.
    auto* track = static_cast<ConnTrack*>(*socket_context);
    self->conns_.erase(track);
    delete track;
    *socket_context = nullptr;
  }
}

void MhdServer::EnterPhase(MHD_Connection* conn, ConnTrack::Phase phase) {
  if (!deadlines()) return;
  const MHD_ConnectionInfo* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  if (info == nullptr || info->socket_context == nullptr) return;
  MutexLock lock(conn_mu_);
  auto* track = static_cast<ConnTrack*>(info->socket_context);
  track->phase = phase;
  track->since = std::chrono::steady_clock::now();
}

// Shuts down the sockets of connections past their phase's deadline, four times per the shorter
// deadline (at most every second), until Stop().
void MhdServer::Watch() {
  using std::chrono::milliseconds;
  milliseconds shortest{1000};
  for (milliseconds d : {options_.edge.header_deadline, options_.edge.body_deadline}) {
    if (d.count() > 0) shortest = std::min(shortest, d);
  }
  const milliseconds period = std::max(milliseconds(10), shortest / 4);
  MutexLock lock(conn_mu_);
  while (true) {
    const auto wake = std::chrono::steady_clock::now() + period;
    while (!stopping_ && watch_cv_.WaitUntil(conn_mu_, wake)) {
    }
    if (stopping_) return;
    const auto now = std::chrono::steady_clock::now();
    for (ConnTrack* track : conns_) {
      milliseconds limit{0};
      if (track->phase == ConnTrack::Phase::kHeaders) limit = options_.edge.header_deadline;
      if (track->phase == ConnTrack::Phase::kBody) limit = options_.edge.body_deadline;
      if (limit.count() <= 0 || track->dropped || track->fd < 0 || now - track->since < limit) {
        continue;
      }
      track->dropped = true;
      deadline_drops_.fetch_add(1);  // before the peer can see the close (tests read it then)
      ::shutdown(track->fd, SHUT_RDWR);  // MHD's next read sees the end; it closes the connection
    }
  }
}

void MhdServer::OnMhdLog(void* cls, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(buf);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  spdlog::debug("{}: microhttpd: {}", static_cast<MhdServer*>(cls)->options_.name, line);
}

MHD_Result MhdServer::OnRequest(void* cls, MHD_Connection* conn, const char* url,
                                const char* method, const char* version, const char* upload_data,
                                size_t* upload_data_size, void** con_cls) {
  auto* self = static_cast<MhdServer*>(cls);
  auto* state = static_cast<RequestState*>(*con_cls);
  if (state == nullptr) return MHD_NO;  // OnUriLog always runs first; be defensive
  if (!state->headers_seen) {
    state->headers_seen = true;
    return self->OnHeaders(conn, method, *state);
  }
  if (*upload_data_size > 0) {
    if (state->body.size() + *upload_data_size > state->max_body_bytes) {
      state->too_large = true;
    } else if (!state->too_large) {
      state->body.append(upload_data, *upload_data_size);
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  self->EnterPhase(conn, ConnTrack::Phase::kAnswering);
  return self->Answer(conn, method, *state);
}

MHD_Result MhdServer::OnHeaders(MHD_Connection* conn, const char* method, RequestState& state) {
  EnterPhase(conn, ConnTrack::Phase::kBody);
  HeadVerdict verdict;
  verdict.max_body_bytes = options_.max_body_bytes;
  if (options_.on_head) {
    HttpRequest head;
    head.method = method ? method : "";
    head.raw_path = state.raw_uri.substr(0, state.raw_uri.find('?'));
    MHD_get_connection_values(conn, MHD_HEADER_KIND, &CollectHeader, &head.headers);
    head.remote_address = RemoteAddress(conn);
    try {
      options_.on_head(head, verdict);
    } catch (...) {
      verdict.reject.emplace();
      SetPlainError(*verdict.reject, 500, "internal error");
    }
    if (verdict.reject) {
      EnterPhase(conn, ConnTrack::Phase::kAnswering);
      spdlog::debug("{}: {} {} {} -> {} before the body", options_.name, head.remote_address,
                    head.method, head.raw_path, verdict.reject->status);
      return Queue(conn, *verdict.reject);
    }
  }
  state.max_body_bytes = verdict.max_body_bytes;
  if (ContentLengthExceeds(conn, state.max_body_bytes)) {
    state.too_large = true;
    EnterPhase(conn, ConnTrack::Phase::kAnswering);
    HttpResponse response;
    SetPlainError(response, 413,
                  "request body too large (at most " + std::to_string(state.max_body_bytes) +
                      " bytes here)");
    return Queue(conn, response);
  }
  return MHD_YES;
}

MHD_Result MhdServer::Answer(MHD_Connection* conn, const char* method, RequestState& state) {
  HttpResponse response;
  if (state.too_large) {
    SetPlainError(response, 413,
                  "request body too large (at most " + std::to_string(state.max_body_bytes) +
                      " bytes here)");
    return Queue(conn, response);
  }
  if (options_.edge.max_json_depth > 0 && FirstByteOpensJson(state.body) &&
      JsonDeeperThan(state.body, options_.edge.max_json_depth)) {
    SetPlainError(response, 400,
                  "the JSON body nests deeper than " + std::to_string(options_.edge.max_json_depth) +
                      " levels");
    return Queue(conn, response);
  }
  HttpRequest request;
  request.method = method ? method : "";
  size_t q = state.raw_uri.find('?');
  request.raw_path = state.raw_uri.substr(0, q);
  if (q != std::string::npos) request.raw_query = state.raw_uri.substr(q + 1);
  StatusOr<QueryParams> query = ParseQueryString(request.raw_query);
  if (!query.ok()) {
    SetPlainError(response, 400, query.status().message());
  } else {
    request.query = std::move(*query);
    MHD_get_connection_values(conn, MHD_HEADER_KIND, &CollectHeader, &request.headers);
    request.body = std::move(state.body);
    request.remote_address = RemoteAddress(conn);
    response = RunHandler(request);
  }
  spdlog::debug("{}: {} {} {} -> {} ({} bytes)", options_.name, request.remote_address,
                request.method, request.raw_path, response.status, response.BodyLength());
  return Queue(conn, response);
}

HttpResponse MhdServer::RunHandler(const HttpRequest& request) {
  HttpResponse response;
  try {
    options_.handler(request, response);
  } catch (const std::exception& e) {
    // Exceptions must not unwind through microhttpd's C frames.
    spdlog::error("{}: handler threw for {} {}: {}", options_.name, request.method,
                  request.raw_path, e.what());
    response = HttpResponse();
    SetPlainError(response, 500, "internal error");
  } catch (...) {
    spdlog::error("{}: handler threw for {} {}", options_.name, request.method, request.raw_path);
    response = HttpResponse();
    SetPlainError(response, 500, "internal error");
  }
  return response;
}

MHD_Result MhdServer::Queue(MHD_Connection* conn, HttpResponse& response) {
  MHD_Response* r = ToMhdResponse(response);
  if (r == nullptr) return MHD_NO;  // closes the connection
  MHD_Result result = MHD_queue_response(conn, static_cast<unsigned>(response.status), r);
  MHD_destroy_response(r);
  return result;
}

void MhdServer::SetPlainError(HttpResponse& response, int code, std::string message) {
  SetJson(response, code, "{\"error\": " + JsonQuote(message) + "}");
  response.headers.Set("X-Error-Message", std::move(message));
}

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options) {
  if (!options.handler) return InvalidArgumentError(options.name + ": no handler set");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgumentError(options.name +
                                ": TLS needs both a certificate and a key file (--tls-cert and "
                                "--tls-key), or neither");
  }
  if (options.thread_model == ThreadModel::kThreadPool && options.thread_pool_size == 0) {
    return InvalidArgumentError(options.name + ": thread_pool_size must be at least 1");
  }
  MC_ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(options.listen), options.name);
  return std::unique_ptr<HttpServer>(new MhdServer(std::move(options), std::move(address)));
}

}  // namespace mc::net
