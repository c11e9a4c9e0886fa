// StateDb: the agent's own metadata, in SQLite under the state dir (never inside the hub cache):
// our access times, completed snapshots, pins, downloads in flight and the workers we started.
// Nothing here is needed to read the cache; everything here is rebuilt or reconciled from a scan
// of the cache at start-up, except pins and workers, which only we know.
//
// Open() creates the file and schema (WAL journal, synchronous=NORMAL, busy_timeout 5 s, foreign
// keys on) or upgrades an older schema; a file that is not a database, is corrupt or has a newer
// schema version is moved aside to "<path>.bad-<unix seconds>" with a warning and a fresh one is
// created (fresh() is then true, and the caller rebuilds from a scan; pins are lost then, which
// the warning says). Another process (the `modelcache pin` command) may open the same file at the
// same time; SQLite's locking serializes writers.
//
// Repos are stored as their cache folder name ("models--org--name"), which carries the repo type.
// Times are Unix milliseconds. Secrets are never stored: no tokens, no worker environment.
//
// Errors (messages name the file and the operation): Unavailable when another process held the
// write lock past the busy timeout (retry); ResourceExhausted when the disk is full;
// FailedPrecondition if the file turns out corrupt while open (reopen to recover); NotFound only
// where a method says so. The schema (tables, keys, version) is kMigrations in state_db.cc.
//
// Thread-safety: one connection guarded by a mutex; every method may be called from any thread.
// Each method is one transaction.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::agent {

using TimePoint = Clock::TimePoint;

struct SnapshotRow {
  std::string repo;    // cache folder name, "models--org--name"
  std::string commit;  // 40 hex
  uint64_t size = 0;   // bytes of distinct blobs the snapshot links
  int64_t files = 0;
  TimePoint last_use;  // ours, not atime
  TimePoint created;
};

// A download that finished with every selected file verified and linked. `filter` is the
// canonical text of the selection ("" = all files of the commit; the agent defines the format).
struct CompletionRow {
  std::string repo;
  std::string commit;
  std::string filter;
  TimePoint at;
};

struct PinRow {
  std::string repo;
  std::string commit;
  std::string owner;  // "operator" or "worker:<id>"
  TimePoint created;
};

// A download in flight (removed when it ends, successfully or not). After a crash the rows left
// say what to resume.
struct DownloadRow {
  std::string repo;
  std::string commit;
  std::string revision;   // as asked ("main", a tag or the commit)
  std::string filter;     // as in CompletionRow
  std::string selection;  // JSON the agent needs to restart it (patterns, peers); no secrets
  bool needs_token = false;  // an interrupted download that needs a token waits for the next ensure
  TimePoint started;
};

struct WorkerRow {
  std::string id;
  std::string repo;
  std::string commit;
  std::string gpus;   // "0,1"; "" for none
  std::string state;  // "initializing", "starting", "running", "stopping", "exited", "failed"
  pid_t pid = 0;
  uint64_t start_ticks = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string message;  // why it failed or how it ended; never secrets
  std::string stdout_path;
  std::string stderr_path;
  TimePoint created;
  std::optional<TimePoint> started;  // process exec'd
  std::optional<TimePoint> ended;
  // Since schema version 2 (image workers).
  std::string endpoint;            // the controller's endpoint id, "" if none
  std::string runtime = "process"; // "process", "podman", "docker"
  std::string container;           // the container's name; "" for processes
  std::string image;               // normalized reference; "" for processes
  std::string image_digest;
  std::string extra_models;        // further models pinned: "folder@commit" lines
  std::optional<int64_t> image_ms;     // cold start: created -> image ready (0 on a hit)
  std::optional<int64_t> download_ms;  // cold start: created -> last model ready
};

// An image the agent knows (pulled, or found in the engine's store for a worker).
struct ImageRow {
  std::string reference;  // normalized
  std::string image_id;
  std::string digest;
  uint64_t size = 0;
  bool pulled = false;    // by the agent: only those are garbage-collected
  TimePoint last_use;
};

class StateDb {
 public:
  // Opens or creates `path` (its directory must exist: NotFound otherwise). See the header
  // comment for recovery; a file that is only busy or unreadable is never moved aside.
  static StatusOr<std::unique_ptr<StateDb>> Open(const std::filesystem::path& path);
  ~StateDb();
  StateDb(const StateDb&) = delete;
  StateDb& operator=(const StateDb&) = delete;

  // True if the file was created by this Open() (new, or the old one was unusable).
  bool fresh() const;
  const std::filesystem::path& path() const;

  // ---- snapshots (and their completions) ----
  Status UpsertSnapshot(const SnapshotRow& row);  // insert or replace all fields
  // Deletes the snapshot row and its completions. Pins stay: an operator pin names a model that
  // may come back (it is only evicted by hand, with `modelcache rm`). OK if there is no row.
  Status DeleteSnapshot(const std::string& repo, const std::string& commit);
  // Sets last_use = max(last_use, at). NotFound if the snapshot has no row.
  Status TouchSnapshot(const std::string& repo, const std::string& commit, TimePoint at);
  StatusOr<std::vector<SnapshotRow>> ListSnapshots() const;
  StatusOr<std::optional<SnapshotRow>> GetSnapshot(const std::string& repo,
                                                   const std::string& commit) const;
  // Idempotent (updates `at`). NotFound if the snapshot has no row: a completion belongs to a
  // snapshot row and goes with it, so UpsertSnapshot first.
  Status AddCompletion(const CompletionRow& row);
  StatusOr<std::vector<CompletionRow>> ListCompletions() const;
  // Replaces every snapshot row and drops completions of snapshots that are no longer listed,
  // in one transaction (used by the start-up reconcile with a cache scan).
  Status ReplaceSnapshots(const std::vector<SnapshotRow>& rows);

  // ---- pins ----
  Status AddPin(const PinRow& row);  // idempotent: an existing pin keeps its `created`
  // NotFound if there was no such pin.
  Status RemovePin(const std::string& repo, const std::string& commit, const std::string& owner);
  StatusOr<std::vector<PinRow>> ListPins() const;

  // ---- downloads ----
  Status PutDownload(const DownloadRow& row);  // insert or replace by (repo, commit, filter)
  Status DeleteDownload(const std::string& repo, const std::string& commit,
                        const std::string& filter);  // OK if there is no such row
  StatusOr<std::vector<DownloadRow>> ListDownloads() const;

  // ---- workers ----
  Status PutWorker(const WorkerRow& row);  // insert or replace by id
  StatusOr<std::vector<WorkerRow>> ListWorkers() const;
  StatusOr<std::optional<WorkerRow>> GetWorker(const std::string& id) const;
  // Deletes rows of workers that ended before `before` (history kept for a while); rows with no
  // `ended` are kept.
  Status PruneWorkers(TimePoint before);

  // ---- images ----
  Status PutImage(const ImageRow& row);  // insert or replace by reference
  Status DeleteImage(const std::string& reference);  // OK if there is no such row
  StatusOr<std::vector<ImageRow>> ListImages() const;

 private:
  struct Impl;
  explicit StateDb(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mc::agent
