// MirrorServer: a Hugging Face hub-compatible HTTP server over one hub cache directory, so that the
// official clients work against it with HF_ENDPOINT=<base_url> (hf-hub-protocol.md §8).
//
// Routes:
//   HEAD/GET [/datasets|/spaces]/{repo}/resolve/{rev}/{path}   file bytes, 200 or 206 (Range)
//   GET /api/{models|datasets|spaces}/{repo}[/revision/{rev}] repo info JSON (id, sha, siblings)
//   GET /api/{type}s/{repo}/tree/{rev}[/{path}]               tree listing, paginated, Link next
//   POST /api/{type}s/{repo}/paths-info/{rev}                 entries for the given paths
// Every answer is computed from the cache on disk at request time, so files imported or downloaded
// while the server runs are visible at once. Errors carry X-Error-Code and X-Error-Message
// (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo, DisabledRepo, BadRequest,
// RangeNotSatisfiable) and a JSON body {"error": "..."}.
//
// Resolve answers 200/206 directly (no redirect) with X-Repo-Commit, a quoted ETag equal to the
// blob name (git sha1, or sha256 for LFS files, which also get X-Linked-Etag / X-Linked-Size),
// Content-Length (also on HEAD), Accept-Ranges: bytes and Content-Range for ranges; never any Xet
// header. File bytes go out with sendfile(2) (pread(2) when faulted or capped).
//
// Access control (optional JSON file):
//   {"repos": {
//      "org/name":       {"gated": "manual", "tokens": ["hf_x", "sha256:<hex sha256 of a token>"]},
//      "datasets/org/d": {"private": true, "tokens": ["..."]},
//      "org/off":        {"disabled": true}}}
// Keys are repo ids, optionally prefixed "models/", "datasets/", "spaces/". Gated repos (gated:
// "auto"/"manual"/true) show metadata (repo info, tree, paths-info) to anyone but answer resolve
// with GatedRepo (401 without a token, 403 with one not listed). Private repos answer every route
// with RepoNotFound (401 without a token, 404 with one not listed). Disabled repos answer 403
// "Access to this resource is disabled.". Unknown fields are errors. Tokens come from
// "Authorization: Bearer <token>", are compared in constant time and never logged.
//
// Fault injection (MirrorOptions::faults) is for tests and benchmarks only; see FaultRule.
//
// Bandwidth cap (MirrorOptions::max_bytes_per_second, for demos, tests and benchmarks: a slow
// upstream to watch downloads against): the file bytes of resolve GETs, 200 and 206 alike, are
// paced by one token bucket shared by all connections, so the cap holds for the server as a whole
// however many parallel or Range requests a client makes (connections get the bytes in the order
// they ask for them, one block at a time). The bucket holds a tenth of a second of bytes and
// starts full: over any interval T at most rate × (T + 0.1 s) bytes go out. Capped answers are
// streamed with pread(2), one block (64 KiB at most) per connection in memory, and wait on a
// condition variable (no busy waiting) that Stop() wakes. Headers, HEAD, API answers and error
// bodies are never capped. Faulted answers are capped too (the fault applies first).
//
// Per-answer cap (MirrorOptions::max_bytes_per_second_per_answer): each resolve GET's file bytes
// are also paced on their own at that rate, like a CDN that limits each connection, or one TCP
// stream over a long link; a client that opens N connections or Range requests gets up to N times
// the rate. Combines with the server cap (both apply). Its waits last at most a tenth of a second
// and are not woken by Stop().
//
// Thread-safety: requests are served concurrently on the server's threads; stats() may be called
// from any thread. Start()/Stop() belong to the owner; Stop() joins every server thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mc/common/status.h"

namespace mc::net {
struct HttpRequest;
struct HttpResponse;
}  // namespace mc::net

namespace mc::mirror {

namespace fault {
// The actions of a FaultRule (at namespace scope so that the variant of them is default
// constructible); use them as FaultRule::DropAfterBytes etc.

// Right headers (Content-Length of the whole answer), then the connection is closed after
// `bytes` body bytes (of the range body for a 206).
struct DropAfterBytes {
  uint64_t bytes = 0;
};
// The whole body, with the byte at file offset `offset` inverted (xor 0xff) if the body covers
// it; a body that does not cover it goes out unchanged (the rule still counts as fired).
struct CorruptByte {
  uint64_t offset = 0;
};
// A Hub-style error answer instead of the file: `code` (503, 429, 500, ... any 4xx/5xx) with
// X-Error-Message, a JSON {"error": ...} body, no X-Error-Code (the Hub sends none for 5xx), and
// Retry-After: <seconds> when set.
struct ErrorStatus {
  int code = 503;
  std::optional<int> retry_after_seconds;
};
// `bytes` body bytes, then nothing for `duration`, then the connection is closed. The wait ends
// early (and the connection is closed) when the server stops, so Stop() never hangs on it.
struct StallAfterBytes {
  uint64_t bytes = 0;
  std::chrono::milliseconds duration{60'000};
};
// Waits `duration` before the first body byte (the headers may wait too), then the whole body.
// Ends early with a closed connection when the server stops.
struct DelayFirstByte {
  std::chrono::milliseconds duration{0};
};
}  // namespace fault

// TESTS AND BENCHMARKS ONLY. A fault the mirror injects into resolve GETs that would otherwise be
// answered 200/206 with file bytes (the first rule that matches and has fires left applies; HEAD,
// API routes and error answers are never faulted). Faulted answers are streamed from the blob with
// pread(2); every other answer keeps the sendfile(2) path (unless the bandwidth is capped).
struct FaultRule {
  using DropAfterBytes = fault::DropAfterBytes;
  using CorruptByte = fault::CorruptByte;
  using ErrorStatus = fault::ErrorStatus;
  using StallAfterBytes = fault::StallAfterBytes;
  using DelayFirstByte = fault::DelayFirstByte;
  using Action =
      std::variant<DropAfterBytes, CorruptByte, ErrorStatus, StallAfterBytes, DelayFirstByte>;

  std::string path_contains;  // substring of the request path as sent (percent-encoded); "" = any
  bool only_ranged = false;   // match only requests with a Range header
  int64_t count = 1;          // fire for the first `count` matching requests; -1 = always
  Action action;
};

struct FaultOptions {
  std::vector<FaultRule> rules;  // in order of precedence
};

struct MirrorOptions {
  std::filesystem::path cache_dir;  // an existing hub cache dir (HF_HUB_CACHE layout)
  std::string listen = "127.0.0.1:0";
  std::optional<std::filesystem::path> access_config;  // JSON file, see the header comment
  // Base of absolute URLs we hand out (tree Link next). Unset: "http://" + the request's Host.
  std::optional<std::string> public_base_url;
  // Entries per tree page when the request gives no `limit` (the Hub uses 1000).
  size_t tree_page_size = 1000;
  size_t max_tree_page_size = 10000;  // cap for `limit`
  FaultOptions faults;                // tests and benchmarks only; empty = no faults
  // Cap on the file bytes of resolve GETs, all connections together (see the header comment);
  // 0 = no cap. Demos, tests and benchmarks.
  uint64_t max_bytes_per_second = 0;
  // Cap on the file bytes of each resolve GET on its own (see the header comment); 0 = no cap.
  // Benchmarks and tests: a link where one connection is slower than several.
  uint64_t max_bytes_per_second_per_answer = 0;
  // HTTPS (PEM certificate chain and key; both or neither). docs/security.md.
  std::filesystem::path tls_cert_file, tls_key_file;
};

enum class RouteKind { kResolve, kRepoInfo, kTree, kPathsInfo, kOther };

// Counters since Start(). bytes_served counts the body bytes handed to the server for GET
// responses (file bytes of resolve GETs, JSON of API answers), not bytes that reached the peer.
struct MirrorStats {
  uint64_t resolve_head = 0;
  uint64_t resolve_get = 0;  // data requests: GETs of resolve routes, ranged or not
  uint64_t repo_info = 0;
  uint64_t tree = 0;
  uint64_t paths_info = 0;
  uint64_t other = 0;  // no route: unknown paths, wrong methods (405), malformed ids (400)
  uint64_t errors = 0;                 // answers with status >= 400
  uint64_t file_bytes_served = 0;      // body bytes of resolve GETs
  std::vector<uint64_t> faults_fired;  // per MirrorOptions::faults rule, in order
};

class MirrorServer {
 public:
  // Opens the cache (it must exist), loads and validates the access config. InvalidArgument for a
  // bad listen address, a malformed access config (the message names the file and the problem) or
  // an invalid fault rule (count < -1, ErrorStatus code outside 400..599, negative durations),
  // NotFound if the cache dir or the config file is missing.
  static StatusOr<std::unique_ptr<MirrorServer>> Create(MirrorOptions options);
  virtual ~MirrorServer() = default;

  // Binds and serves. Unavailable if the address is in use.
  virtual Status Start() = 0;
  virtual uint16_t port() const = 0;
  // "http://127.0.0.1:<port>" (what to put in HF_ENDPOINT on this host).
  virtual std::string base_url() const = 0;
  // Stops serving and joins the server threads. Idempotent.
  virtual void Stop() = 0;
  virtual MirrorStats stats() const = 0;
};

// The request handling of MirrorServer without a server of its own, for daemons that answer the
// mirror routes next to routes of their own on one port (the agent serves its cache to peers this
// way). `options.listen` is ignored; everything else means what it means for MirrorServer.
// Thread-safe.
class MirrorHandler {
 public:
  static StatusOr<std::unique_ptr<MirrorHandler>> Create(MirrorOptions options);
  virtual ~MirrorHandler() = default;
  virtual void Handle(const net::HttpRequest& request, net::HttpResponse& response) = 0;
  virtual MirrorStats stats() const = 0;
  // Wakes bodies that wait (fault stalls and delays, the bandwidth cap; tests and demos only);
  // call before stopping the server that calls Handle().
  virtual void StopFaults() = 0;
};

}  // namespace mc::mirror
