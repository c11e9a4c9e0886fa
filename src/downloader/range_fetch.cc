#include "downloader/range_fetch.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <string_view>

#include "downloader/transfer_outcome.h"
#include "mc/hub/hub_client.h"
#include "mc/net/headers.h"
#include "mc/net/http_client.h"

namespace mc::downloader {

namespace {

constexpr int kMaxRedirects = 5;
// libcurl's receive buffer: the engine's piece size (fetch_engine_parts.h, kPieceBytes).
constexpr long kBufferSize = 64 * 1024;
constexpr size_t kMaxErrorBody = 4096;

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "bytes a-b/total" (total may be "*").
struct ContentRange {
  uint64_t first = 0, last = 0;
  std::optional<uint64_t> total;
};
std::optional<ContentRange> ParseContentRange(std::string_view v) {
  v = net::TrimHeaderWhitespace(v);
  if (!v.starts_with("bytes ")) return std::nullopt;
  v.remove_prefix(6);
  size_t dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) {
    return std::nullopt;
  }
  ContentRange r;
  if (!ParseU64(v.substr(0, dash), &r.first) ||
      !ParseU64(v.substr(dash + 1, slash - dash - 1), &r.last) || r.last < r.first) {
    return std::nullopt;
  }
  std::string_view total = v.substr(slash + 1);
  if (total != "*") {
    uint64_t t = 0;
    if (!ParseU64(total, &t)) return std::nullopt;
    r.total = t;
  }
  return r;
}

// "host:port" of a URL, for messages (never the path or query: signed URLs carry secrets).
std::string HostOf(const std::string& url) {
  CURLU* u = curl_url();
  std::string out = "?";
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char* host = nullptr;
    char* port = nullptr;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) out = host;
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) out += std::string(":") + port;
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

// Resolves a Location against the current URL (RFC 3986); only http(s) results.
StatusOr<std::string> ResolveRedirect(const std::string& current, const std::string& location) {
  CURLU* u = curl_url();
  std::string out;
  Status st;
  if (curl_url_set(u, CURLUPART_URL, current.c_str(), 0) != CURLUE_OK ||
      curl_url_set(u, CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    st = InvalidArgumentError("redirect to " + QuoteForMessage(location) + ": not a valid URL");
  } else {
    char* scheme = nullptr;
    char* full = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_URL, &full, 0);
    std::string s = scheme ? scheme : "";
    if (s != "http" && s != "https") {
      st = InvalidArgumentError("redirect to a " + QuoteForMessage(s) +
                                " URL refused: only http(s) is followed");
    } else if (full) {
      out = full;
    }
    curl_free(scheme);
    curl_free(full);
  }
  curl_url_cleanup(u);
  if (!st.ok()) return st;
  return out;
}

}  // namespace

struct RangeFetcher::Handle {
  CURL* curl = nullptr;
};

// One exchange (one hop): libcurl's callbacks and what they found out.
struct RangeFetcher::Transfer {
  const RangeRequest* request = nullptr;
  RangeSink* sink = nullptr;
  CURL* curl = nullptr;
  Clock* clock = nullptr;
  net::HeaderMap headers;
  bool body_started = false;
  bool deliver = false;  // a 2xx answer: body bytes are file bytes
  uint64_t skip = 0;     // leading bytes to drop (a 200 answer to a range request)
  uint64_t pos = 0;      // next blob offset to deliver
  uint64_t delivered = 0;
  uint64_t end = 0;           // one past the last byte to deliver: the request's, or a shorter 206
  bool range_done = false;    // [begin, end) delivered: stop
  bool sink_stopped = false;  // the sink took fewer bytes (split)
  bool sink_failed = false;
  Status rejected;  // the answer broke the protocol
  std::string error_body;
  // Stall detection (OnProgress), on the fetcher's clock.
  Clock::SteadyTime last_byte_at;
  Clock::SteadyTime window_start;
  uint64_t last_received = 0;
  uint64_t window_bytes = 0;
  std::string stalled;  // why OnProgress stopped the transfer, if it did
  std::string range;    // "begin-last", alive while libcurl uses it

  Transfer(const RangeRequest& r, RangeSink& s, CURL* c, Clock& k)
      : request(&r), sink(&s), curl(c), clock(&k), pos(r.begin), end(r.end) {
    last_byte_at = window_start = k.Monotonic();
  }

  // Sets up the easy handle for one GET of the range at request->url with these callbacks.
  void SetUp(char* errbuf) {
    const RangeRequest& r = *request;
    range = std::to_string(r.begin) + "-" + std::to_string(r.end - 1);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!r.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, r.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, kBufferSize);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Transfer::OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, this);
    curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(curl, CURLOPT_USERAGENT, r.user_agent.c_str());
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    net::AddRawHeaderLine(std::string_view(data, size * n), static_cast<Transfer*>(self)->headers);
    return size * n;
  }

  // Decides, at the first body byte, what this answer's body is.
  bool StartBody() {
    body_started = true;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    const RangeRequest& r = *request;
    const std::string what =
        "GET " + QuoteForMessage(r.subject && r.subject->file ? r.subject->file->str() : "") +
        " from " + HostOf(r.url);
    if (status == 206) {
      auto cr = ParseContentRange(headers.Get("Content-Range").value_or(""));
      if (!cr || cr->first != r.begin || (cr->total && *cr->total != r.blob_size)) {
        rejected = InvalidArgumentError(
            what + ": the server answered Content-Range " +
            QuoteForMessage(headers.Get("Content-Range").value_or("(none)")) + " for bytes " +
            std::to_string(r.begin) + "-" + std::to_string(r.end - 1) + " of a " +
            std::to_string(r.blob_size) + "-byte file (the tree listing's size)");
        return false;
      }
      // A swarm member sends what it has written so far: the range ends where its answer does.
      if (r.accept_partial && cr->last + 1 < end) end = cr->last + 1;
      deliver = true;
    } else if (status == 200) {
      uint64_t length = 0;
      auto cl = headers.Get("Content-Length");
      if (cl && ParseU64(*cl, &length) && length != r.blob_size) {
        rejected = InvalidArgumentError(what + ": the server sent " + std::to_string(length) +
                                        " bytes for a " + std::to_string(r.blob_size) +
                                        "-byte file (the tree listing's size)");
        return false;
      }
      deliver = true;
      skip = r.begin;
    }
    return true;
  }

  // Hands body bytes to the sink, up to the end of the range.
  size_t Deliver(const char* data, size_t len) {
    size_t off = 0;
    if (skip > 0) {
      off = static_cast<size_t>(std::min<uint64_t>(skip, len));
      skip -= off;
    }
    while (off < len) {
      if (pos >= end) {
        range_done = true;
        return 0;
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(len - off, end - pos));
      size_t took = sink->Write(pos, data + off, want);
      pos += took;
      delivered += took;
      off += took;
      if (took < want) {
        (sink->error().ok() ? sink_stopped : sink_failed) = true;
        return 0;
      }
    }
    if (pos >= end) range_done = true;
    return len;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    size_t len = size * n;
    if (!t->body_started && !t->StartBody()) return 0;
    if (!t->deliver) {
      if (t->error_body.size() < kMaxErrorBody) {
        t->error_body.append(data, std::min(len, kMaxErrorBody - t->error_body.size()));
      }
      return len;
    }
    return t->Deliver(data, len);
  }

  // Our own stall and minimum-rate check (libcurl's LOW_SPEED averages over several seconds, so
  // a stall after a burst would take that much longer to notice). Called at least once a second.
  static int OnProgress(void* self, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(self);
    if (t->sink->Cancelled()) return 1;
    const auto now = t->clock->Monotonic();
    const uint64_t received = static_cast<uint64_t>(dlnow);
    if (received != t->last_received) {
      t->last_received = received;
      t->last_byte_at = now;
    }
    const auto window = t->request->stall_timeout;
    if (now - t->last_byte_at > window) {
      t->stalled = "stalled: no byte for " + std::to_string(window.count()) + " ms";
      return 1;
    }
    if (now - t->window_start >= window) {
      const double secs = std::chrono::duration<double>(now - t->window_start).count();
      const double rate = static_cast<double>(received - t->window_bytes) / secs;
      if (t->request->min_bytes_per_second > 1 &&
          rate < static_cast<double>(t->request->min_bytes_per_second)) {
        t->stalled = "too slow: " + std::to_string(static_cast<uint64_t>(rate)) + " bytes/s over " +
                     std::to_string(window.count()) + " ms";
        return 1;
      }
      t->window_start = now;
      t->window_bytes = received;
    }
    return 0;
  }
};

RangeFetcher::RangeFetcher(Clock& clock) : clock_(clock), handle_(std::make_unique<Handle>()) {
  net::InitCurlGlobal();
  handle_->curl = curl_easy_init();
}

RangeFetcher::~RangeFetcher() { curl_easy_cleanup(handle_->curl); }

RangeResult RangeFetcher::Fetch(const RangeRequest& request, RangeSink& sink) {
  using Kind = ExchangeVerdict::Kind;
  RangeResult result;
  std::string url = request.url;
  for (int hop = 0;; ++hop) {
    result.effective_url = url;
    ExchangeVerdict verdict = Exchange(request, url, hop, sink, result);
    if (verdict.kind == Kind::kRedirect) {
      StatusOr<std::string> next = ResolveRedirect(url, verdict.location);
      if (next.ok()) {
        url = *next;
        continue;
      }
      verdict.kind = Kind::kFailed;
      verdict.error = next.status();
    }
    switch (verdict.kind) {
      case Kind::kComplete:
        result.outcome = RangeResult::Outcome::kComplete;
        break;
      case Kind::kCancelled:
        result.outcome = RangeResult::Outcome::kCancelled;
        break;
      case Kind::kRetryable:
        result.outcome = RangeResult::Outcome::kRetryable;
        break;
      case Kind::kFailed:
      case Kind::kRedirect:
        result.outcome = RangeResult::Outcome::kFailed;
        break;
      case Kind::kPending:
        result.outcome = RangeResult::Outcome::kPending;
        result.pending_written = verdict.pending_written;
        break;
    }
    result.error = verdict.error;
    result.retry_after = verdict.retry_after;
    return result;
  }
}

ExchangeVerdict RangeFetcher::Exchange(const RangeRequest& request, const std::string& url,
                                       int hop, RangeSink& sink, RangeResult& result) {
  CURL* curl = handle_->curl;
  RangeRequest current = request;
  current.url = url;
  Transfer t(current, sink, curl, clock_);
  char errbuf[CURL_ERROR_SIZE] = {0};
  t.SetUp(errbuf);
  curl_slist* headers = nullptr;
  const bool send_token = request.token != nullptr && !request.token->empty() &&
                          request.token_origin != nullptr &&
                          hub::SameOrigin(url, *request.token_origin);
  std::string auth;
  if (send_token) {
    auth = "Authorization: Bearer " + std::string(request.token->Reveal());
    headers = curl_slist_append(headers, auth.c_str());
  }
  if (request.accept_partial) headers = curl_slist_append(headers, "X-Modelcache-Partial: 1");
  if (request.accept_partial && request.swarm_self != nullptr && !request.swarm_self->empty()) {
    const std::string member = "X-Modelcache-Swarm-Member: " + *request.swarm_self;
    headers = curl_slist_append(headers, member.c_str());
  }
  headers = curl_slist_append(headers, "Accept-Encoding: identity");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  // The header value is wiped from our copy; libcurl's copy went with the slist.
  std::fill(auth.begin(), auth.end(), '\0');
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  result.http_status = static_cast<int>(status);
  result.bytes += t.delivered;

  ExchangeFacts facts;
  facts.host = HostOf(url);
  facts.hop = hop;
  facts.max_redirects = kMaxRedirects;
  if (t.sink_failed) facts.sink_error = sink.error();
  facts.rejected = t.rejected;
  facts.range_done = t.range_done || t.sink_stopped;
  facts.aborted = rc == CURLE_ABORTED_BY_CALLBACK;
  facts.stalled = t.stalled;
  facts.cancelled = sink.Cancelled();
  facts.transport_failed = rc != CURLE_OK;
  facts.transport_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  facts.http_status = result.http_status;
  facts.delivered = t.delivered;
  facts.range_bytes = request.end - request.begin;
  facts.headers = &t.headers;
  facts.subject = request.subject;
  facts.sent_token = send_token;
  facts.accept_partial = request.accept_partial;
  facts.now = clock_.Now();
  return ClassifyExchange(facts);
}

}  // namespace mc::downloader
