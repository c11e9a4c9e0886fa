// The fetch engine's inner types, shared by fetch_engine.cc (workers, scheduling, scaling) and
// fetch_blob.cc (one blob: activation, fetching a range, writing, hashing, publication). Internal.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "downloader/fetch_engine.h"
#include "downloader/range_fetch.h"
#include "downloader/resume_record.h"
#include "mc/cache/blob_hasher.h"
#include "mc/cache/file_lock.h"

namespace mc::downloader {

// The unit of work of the write path: libcurl's receive buffer (range_fetch.cc), the write
// buffer and the hash read-back buffer. Small on purpose: each piece is received, written and
// hashed while it is still in the core's L2 cache. With 1 MiB pieces the kernel's copy into the
// page cache read from memory and cost the pull about a third more CPU (docs/pull.md, "Writes").
constexpr size_t kPieceBytes = 64 << 10;

// Swarm owners by highest hash (rendezvous hashing): FNV-1a of a member's URL (or a blob's etag),
// and the score of a member for one piece of one blob, mixed by SplitMix64's finalizer so that
// neighbouring pieces get unrelated owners.
inline uint64_t SwarmHash(const std::string& text) {
  uint64_t h = 1469598103934665603ull;
  for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}
inline uint64_t SwarmMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline uint64_t SwarmScore(uint64_t member, uint64_t blob, uint64_t piece) {
  return SwarmMix(member ^ SwarmMix(blob + piece));
}

struct FetchEngine::Segment {
  Blob* blob = nullptr;
  uint64_t pos = 0;  // next byte to write; guarded by blob->mu
  // One past the last byte; lowered by splits. Written under blob->mu, read by the sink without.
  std::atomic<uint64_t> end{0};
  // One past the last byte of the request on the wire; guarded by blob->mu. A split never moves
  // `end` below it, so every byte the source was asked for is used.
  uint64_t wire_end = 0;
  size_t source = 0;
  // Swarm: the owner's progress at its last "not yet" and since when it has not changed.
  uint64_t pending_written = UINT64_MAX;
  Clock::SteadyTime pending_since{};
  // Bytes a split may take: those past both the write position and the request on the wire.
  uint64_t Stealable() const {
    const uint64_t from = std::max(pos, wire_end);
    const uint64_t to = end.load();
    return to > from ? to - from : 0;
  }
};

struct FetchEngine::Blob {
  enum class State { kQueued, kActivating, kDeferred, kWaitingLock, kActive, kDone, kFailed };

  Blob(BlobSpec s, FileSystem& f) : spec(std::move(s)), fs(f) {}
  ~Blob() { CloseFd(); }
  void CloseFd() {
    if (fd >= 0) fs.Close(fd);
    fd = -1;
  }

  const BlobSpec spec;
  FileSystem& fs;
  State state = State::kQueued;  // guarded by the engine's mu_

  // Set up by Activate (before the blob is kActive), then guarded by mu.
  std::mutex mu;
  std::optional<cache::FileLock> lock;
  int fd = -1;
  std::optional<ResumeRecord> record;
  std::unique_ptr<cache::BlobHasher> hasher;  // used only by the thread with hashing = true
  uint64_t hash_pos = 0;
  bool hashing = false;
  bool hashed_all = false;
  std::vector<std::shared_ptr<Segment>> segments;
  std::vector<bool> bad_source;
  std::vector<std::string> urls;     // per source; the upstream's may become a redirect target
  std::vector<uint64_t> bytes_from;  // per source
  uint64_t written = 0;
  bool resumed = false;
  bool used_peer = false;
  bool restarted = false;
  bool started_event = false;

  const std::string& name() const { return spec.paths.front().str(); }
};

struct FetchEngine::Worker {
  explicit Worker(Clock& clock) : fetcher(clock) {}
  double Jitter() { return std::uniform_real_distribution<double>(0, 1)(rng); }

  RangeFetcher fetcher;
  std::vector<char> scratch = std::vector<char>(kPieceBytes);  // hash read-back
  std::vector<char> wbuf = std::vector<char>(kPieceBytes);     // Sink's write buffer
  size_t wlen = 0;
  uint64_t woffset = 0;
  std::mt19937_64 rng{std::random_device{}()};  // the retry back-off's jitter
  Blob* finalize = nullptr;  // this worker hashed the last byte of it
};

template <typename Callback, typename... Args>
void FetchEngine::Notify(const Callback& callback, Args&&... args) {
  std::lock_guard<std::mutex> cb(callback_mu_);
  if (callback) callback(std::forward<Args>(args)...);
}

}  // namespace mc::downloader
