// Pull: put one commit of a Hugging Face repo into a hub cache, fast and verified
// (design.md §4 "pull", hf-hub-protocol.md §2-§4, §7). The library behind `modelcache pull` and the
// host agent's ensure.
//
// Flow: resolve the revision to a commit (GET /api/{type}s/{repo}/revision/{rev}) → list the
// commit's files (tree, recursive) → filter with the include/exclude patterns → plan against the
// cache (a blob already present is only linked) → check free space → fetch the missing blobs →
// verify each one (sha256 for LFS files, git-sha1 otherwise) → publish it (atomic rename into
// blobs/) → link its snapshot paths → write the ref last.
//
// Fetching: `connections` worker threads, each with its own HTTP connection (more while that
// pays: FetchTuning). A worker takes the next blob that nobody fetches yet (largest first); when
// none is left it splits the largest range still in flight and fetches its second half with a
// Range request (aria2-style dynamic split, in steps of `cell_size`), so small files go in
// parallel and the last big file is fetched by every connection. A worker asks for its range in
// requests of at most `request_size` bytes, one after another on its connection, and a split
// takes only bytes past the request on the wire: re-splitting never throws away bytes the source
// already sends (origin bytes per pull stay within 1% of the model's). Bytes are received, written and
// hashed in 64 KiB pieces: a piece of 32 KiB or more is written with one pwrite(2) straight from
// libcurl's 64 KiB receive buffer into blobs/<etag>.resume.incomplete, smaller ones are first
// gathered in the worker's 64 KiB buffer. Bytes are hashed in file order: those at the hash
// frontier straight from the piece being written, those that landed ahead of it when the frontier
// reaches them, read back from the page cache 64 KiB at a time (at most one split's distance
// behind, so they are still cached). Memory does not grow with file size or connection speed:
// three 64 KiB buffers per connection (receive, gather, read-back) besides libcurl's handle.
//
// Resume: per blob, a record in `state_dir` (outside the cache) holds how many bytes of each cell
// of the temp file are written; it is updated after every piece written, after the bytes. A pull
// that is killed at any point restarts from there: finished blobs are in the cache, finished and
// partial cells are not fetched again; only the bytes that were still in a worker's gather buffer
// (at most 64 KiB per connection) are. On resume the already-written prefix is hashed from disk
// once. If a resumed blob fails its hash (a power loss can leave a record ahead of its bytes), it
// is fetched again from scratch, once.
//
// Sources: `peers` (our mirror on other hosts) are tried before the upstream for every blob,
// with short connect and stall limits; a peer that lacks the blob (any non-2xx), fails or stalls
// is skipped for that blob. Bytes from a peer are verified like any others; a blob whose bytes came
// partly from a peer and fail their hash is fetched again from the upstream alone. The token is
// never sent to a peer, only to the endpoint's own origin (never across a redirect to another
// origin: libcurl drops the header, and the URL of a split is the redirect target without the
// token).
//
// Retries: a request that fails with a transport error, a timeout, a stall (no byte for
// `stall_timeout`), a 5xx, 408 or 429 is retried from the byte where it stopped, after
// `backoff_base` * 2^attempt with equal jitter (half fixed, half random; capped at `backoff_max`),
// or after the server's Retry-After when it sent one (capped at `max_retry_after`). The attempt
// counter resets whenever bytes arrive. After `max_attempts` failed attempts in a row the blob
// fails with Unavailable naming the file, the URL's host and the last error.
//
// Time and disk are injected: scaling windows, retry and lock waits, stall detection, rates and
// durations are measured on `PullOptions::clock`; the downloader's own file system calls (temp
// file writes, reads and sizing, resume records, the free-space check) go through
// `PullOptions::file_system`. Tests use a FakeClock and a disk that fills up.
//
// Concurrency between processes: a blob is fetched under its lock .locks/<repo>/<etag>.lock (as
// huggingface_hub does); a worker that finds the lock taken fetches other blobs first, then waits
// for it and links the blob the other process published (or fetches it if that process failed).
//
// Errors: NotFound (repo, revision; a file listed by the tree but missing on every source),
// Unauthenticated / PermissionDenied (gated or private without an accepted token), InvalidArgument
// (bad input, or a server answer we refuse: see hub_client.h), ResourceExhausted (not enough free
// space for the plan; disk full), DataLoss (a blob's bytes do not match its hash: the message names
// the file, the expected and the actual hash; the bytes are removed), Unavailable (network or
// server trouble after retries), Cancelled (Cancel()). A failed pull leaves the cache consistent:
// only verified blobs, links to them, and the ref only if every selected file is linked.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/clock.h"
#include "mc/common/file_system.h"
#include "mc/common/ids.h"
#include "mc/common/status.h"
#include "mc/downloader/download_plan.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"

namespace mc::downloader {

// Knobs of the fetch engine. The defaults suit a WAN link; tests shrink the timeouts.
struct FetchTuning {
  // HTTPS: the PEM file of the authorities to trust (peers and the upstream) instead of the
  // system's; empty = the system's.
  std::string ca_file;
  int connections = 8;  // worker threads = concurrent HTTP requests, at the start
  // Connection scaling: while every worker is busy and ranges are left to split, the workers are
  // doubled (as where one connection is slower than several: a CDN's per-connection limit, a long
  // link), up to max_connections, as long as each step raises the bytes received per
  // `scale_window` by at least `scale_gain` over the window before it. The first step that does
  // not pay ends the scaling. max_connections <= connections: no scaling. A gain of -1 makes
  // every step pay (tests that check the engine's windows without depending on throughput).
  int max_connections = 32;
  std::chrono::milliseconds scale_window{500};
  double scale_gain = 0.10;
  uint64_t cell_size = 4ull << 20;        // resume and split granularity
  uint64_t min_split_size = 16ull << 20;  // never split a range with less than 2× this left
  // Each HTTP request asks for at most this many bytes of a range (0: the whole range), and a
  // split only takes bytes past the request on the wire: no byte already sent is thrown away.
  uint64_t request_size = 8ull << 20;
  // Swarm: how long to wait before asking a piece's owner again when it has not written the piece
  // yet (it answers 416 with its progress; no progress for peer_stall_timeout skips it).
  std::chrono::milliseconds swarm_poll{50};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds stall_timeout{30'000};  // no byte for this long → retry
  std::chrono::milliseconds peer_connect_timeout{1'000};
  std::chrono::milliseconds peer_stall_timeout{3'000};
  uint64_t peer_min_bytes_per_second = 1ull << 20;  // slower over peer_stall_timeout → skip peer
  int max_attempts = 6;  // consecutive failed attempts per range before the blob fails
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{10'000};
  std::chrono::milliseconds max_retry_after{120'000};
  std::chrono::milliseconds metadata_timeout{10'000};
};

struct PullOptions {
  std::filesystem::path cache_dir;  // the hub cache (created if missing)
  std::filesystem::path state_dir;  // resume records (created if missing)
  hub::Endpoint endpoint = hub::Endpoint::Parse(hub::kDefaultEndpoint).value();  // upstream
  std::optional<hub::Secret> token;
  RepoId repo = RepoId::Parse("unset/unset").value();   // always set by the caller
  Revision revision = Revision::Parse("main").value();  // branch, tag, refs/pr/N or a sha
  FilePatterns patterns;
  // When not empty, exactly these files are selected (patterns are ignored); a path the commit
  // does not have is NotFound. For a /resolve/ or /blob/ model-ref.
  std::vector<RepoFilePath> files;
  std::vector<std::string> peers;  // hub-compatible base URLs tried before the endpoint
  // Swarm (issue 17): agents fetching the same commit now (base URLs), and this host's own URL as
  // they know it. With swarm_self set, every piece (cell) of every blob has one owner among the
  // members (swarm + self + those that join while it runs, Puller::JoinSwarm): the member with the
  // highest hash of (member URL, blob, piece), so every member that knows the same set computes the
  // same owners, and a member joining takes pieces only from the others' shares. A host fetches its
  // own pieces from the upstream and the others' from their owners, which serve what they have
  // written so far (PullOptions::peers, complete copies, still come first); requests to members
  // carry swarm_self, so the owner learns of the asker. An owner that fails, lacks the blob or
  // stops making progress is skipped for the blob: its pieces go to the next owner by hash (so the
  // survivors still fetch each piece from the upstream once). Every blob is verified as always.
  std::vector<std::string> swarm;
  std::string swarm_self;
  bool dry_run = false;            // plan only: no blob, link or ref is written
  FetchTuning tuning;
  std::string user_agent = "modelcache/0.1";
  // How often a progress event is emitted while bytes move.
  std::chrono::milliseconds progress_interval{250};
  // Time (borrowed; must outlive the Puller): every wait, timeout, rate and duration.
  Clock* clock = &Clock::Real();
  // The downloader's file system calls (borrowed; must outlive the Puller).
  FileSystem* file_system = &FileSystem::Real();
  // Waits between retries (metadata and ranges). Null: wait on `clock`, ended early by Cancel().
  // Tests inject one that records the wait and returns at once.
  std::function<void(std::chrono::milliseconds)> sleep;
  // Called once with the plan, after kPlan and before anything is written (never for a dry run).
  // The agent reserves disk for plan.bytes_to_fetch here (evicting to make room); an error stops
  // the pull and is its result.
  std::function<Status(const DownloadPlan&)> reserve;
};

// What happened, for progress displays and the agent. Emitted from worker threads, one at a time
// (the observer is never called concurrently).
struct PullEvent {
  enum class Kind {
    kPlan,          // plan made: files, bytes_total, bytes_to_fetch set; commit known
    kFileStarted,   // a blob's first byte is requested (path = first path using it)
    kProgress,      // periodic: bytes_done of bytes_to_fetch, rate; per-file in `files`
    kFileVerified,  // a blob matched its hash and is published + linked
    kFileLinked,    // a file whose blob was already present was linked (no download)
    kRetry,         // a request failed and will be retried (message says why, wait says when)
    kDone,          // the pull finished (successfully)
  };
  struct FileProgress {
    std::string path;
    uint64_t done = 0;
    uint64_t size = 0;
  };
  Kind kind = Kind::kProgress;
  std::string path;     // kFileStarted, kFileVerified, kFileLinked, kRetry
  std::string etag;     // kFileStarted, kFileVerified, kFileLinked
  uint64_t size = 0;    // file size (file events)
  std::string source;   // kFileVerified: the source most bytes came from; kRetry: the host
  std::string message;  // kRetry: the error
  std::chrono::milliseconds wait{0};  // kRetry
  // Totals (every event carries the current ones).
  std::string commit;
  int files_total = 0;
  int files_to_fetch = 0;
  int files_done = 0;  // verified + linked so far (of files_total)
  uint64_t bytes_total = 0;
  uint64_t bytes_to_fetch = 0;
  uint64_t bytes_done = 0;  // fetched and written (of bytes_to_fetch; resumed bytes included)
  double rate_bytes_per_second = 0;  // over the last few seconds
  // kProgress: blobs in flight. kPlan: every selected file (done = size when it is already in
  // the cache, else 0).
  std::vector<FileProgress> files;
};

struct PullResult {
  RepoId repo;
  CommitSha commit;
  std::filesystem::path snapshot_dir;
  DownloadPlan plan;
  int files_linked = 0;        // already in the cache (or fetched by another process): linked only
  int files_fetched = 0;       // distinct blobs downloaded by this pull
  uint64_t bytes_fetched = 0;  // bytes received over the network by this pull
  uint64_t bytes_resumed = 0;  // bytes of partial blobs found on disk and not fetched again
  std::map<std::string, uint64_t> bytes_by_source;  // "upstream" or the peer URL → bytes
  int retries = 0;
  int connections = 0;  // the most workers (HTTP connections) at once, after scaling
  double seconds = 0;
};

class FetchEngine;
class PullRun;

// What a pull in flight has of one blob it fetches (served to swarm members).
struct BlobExtent {
  uint64_t size = 0;
  uint64_t available_end = 0;  // bytes [offset, available_end) are written (== offset: none)
  uint64_t written = 0;        // bytes of the blob written so far (its progress)
};

class Puller {
 public:
  explicit Puller(PullOptions options);
  ~Puller();
  Puller(const Puller&) = delete;
  Puller& operator=(const Puller&) = delete;

  // Runs the pull. `observer` may be null. Call once.
  StatusOr<PullResult> Run(const std::function<void(const PullEvent&)>& observer);
  // From any thread (a signal-handling thread): in-flight requests stop within a network buffer
  // or `stall_timeout`, a retry wait ends at once, and Run() returns Cancelled. Partial blobs stay
  // for resume.
  void Cancel();
  // While Run() fetches: what it has of blob `etag` from `offset`; nullopt when it does not fetch
  // that blob (or is not fetching yet). From any thread.
  std::optional<BlobExtent> Extent(const std::string& etag, uint64_t offset);
  // A host fetching the same commit (its base URL) asked this pull's host for a piece: it becomes
  // a swarm member of this pull from now on (PullOptions::swarm). Ignored without swarm_self, for
  // this host itself, an URL that does not parse, or once kMaxSwarmMembers are known. From any
  // thread, before or while Run() fetches.
  void JoinSwarm(const std::string& member_url);
  static constexpr int kMaxSwarmMembers = 64;

 private:
  friend class PullRun;  // the stages of Run (pull.cc)
  PullOptions options_;
  std::atomic<bool> cancelled_{false};
  std::mutex engine_mu_;
  std::condition_variable cancel_cv_;  // with engine_mu_: Cancel() ends a metadata retry wait
  FetchEngine* engine_ = nullptr;      // guarded by engine_mu_; set while Run() fetches
  std::vector<std::string> joined_;    // guarded by engine_mu_: JoinSwarm before the engine runs
};

}  // namespace mc::downloader
