// StateDb over SQLite (through sqlite/sqlite_util.h): one connection with its cache of prepared
// statements, behind a mutex.
// The schema is versioned with PRAGMA user_version; kMigrations[v] takes version v to v + 1.
#include "agent/state_db.h"

#include <errno.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "sqlite/sqlite_util.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using sqlite::Binder;
using sqlite::Connection;
using sqlite::RowReader;
using sqlite::Statement;

constexpr int64_t kSchemaVersion = 2;

constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1. Completions belong to a snapshot row (deleted with it); pins do not.
    R"sql(
CREATE TABLE snapshots (
  repo TEXT NOT NULL, "commit" TEXT NOT NULL, size INTEGER NOT NULL, files INTEGER NOT NULL,
  last_use_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, "commit")) STRICT;
CREATE TABLE completions (
  repo TEXT NOT NULL, "commit" TEXT NOT NULL, "filter" TEXT NOT NULL, at_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, "commit", "filter"),
  FOREIGN KEY (repo, "commit") REFERENCES snapshots (repo, "commit") ON DELETE CASCADE) STRICT;
CREATE TABLE pins (
  repo TEXT NOT NULL, "commit" TEXT NOT NULL, owner TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, "commit", owner)) STRICT;
CREATE TABLE downloads (
  repo TEXT NOT NULL, "commit" TEXT NOT NULL, "filter" TEXT NOT NULL, revision TEXT NOT NULL,
  selection TEXT NOT NULL, needs_token INTEGER NOT NULL CHECK (needs_token IN (0, 1)),
  started_ms INTEGER NOT NULL,
  PRIMARY KEY (repo, "commit", "filter")) STRICT;
CREATE TABLE workers (
  id TEXT NOT NULL PRIMARY KEY, repo TEXT NOT NULL, "commit" TEXT NOT NULL, gpus TEXT NOT NULL,
  state TEXT NOT NULL, pid INTEGER NOT NULL, start_ticks INTEGER NOT NULL, exit_code INTEGER,
  signal INTEGER, message TEXT NOT NULL, stdout_path TEXT NOT NULL, stderr_path TEXT NOT NULL,
  created_ms INTEGER NOT NULL, started_ms INTEGER, ended_ms INTEGER) STRICT;
)sql",
    // 1 -> 2. Image workers (issue 14): runtime, container, image and cold-start times of a
    // worker; the images the agent knows.
    R"sql(
ALTER TABLE workers ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN runtime TEXT NOT NULL DEFAULT 'process';
ALTER TABLE workers ADD COLUMN container TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN image_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN extra_models TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN image_ms INTEGER;
ALTER TABLE workers ADD COLUMN download_ms INTEGER;
CREATE TABLE images (
  reference TEXT NOT NULL PRIMARY KEY, image_id TEXT NOT NULL, digest TEXT NOT NULL,
  size INTEGER NOT NULL, pulled INTEGER NOT NULL CHECK (pulled IN (0, 1)),
  last_use_ms INTEGER NOT NULL) STRICT;
)sql",
};

std::string Key(const std::string& repo, const std::string& commit) { return repo + "@" + commit; }

std::optional<int> OptIntCast(std::optional<int64_t> v) {
  return v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
}

}  // namespace

struct StateDb::Impl {
  explicit Impl(fs::path p) : path(std::move(p)) {}

  // Runs `sql` (cached), binding with `bind` and calling `on_row` for each row. Caller holds mu.
  Status Run(const std::string& sql, std::string_view op, const Binder& bind = nullptr,
             const RowReader& on_row = nullptr) {
    return conn->Run(sql, op, bind, on_row);
  }

  // "state db <path>: <op>" for errors.
  std::string Context(std::string_view op) const { return conn->Context(op); }

  Status Connect();
  Status Migrate();

  const fs::path path;
  bool fresh = false;
  std::mutex mu;                     // guards everything below
  std::unique_ptr<Connection> conn;  // set by a successful Connect()
};

// Opens the connection, checks the file and brings the schema to kSchemaVersion. A
// kFailedPrecondition error means the file is unusable and should be moved aside.
Status StateDb::Impl::Connect() {
  MC_ASSIGN_OR_RETURN(conn, Connection::Open(path, "state db", 5000));
  // The first statement that reads the header fails with SQLITE_NOTADB on a file that is not
  // a database; sqlite::CodeFor maps that to kFailedPrecondition.
  std::string mode;
  MC_RETURN_IF_ERROR(Run("PRAGMA journal_mode=WAL", "set WAL journal", nullptr,
                         [&](const Statement& st) { mode = st.Text(0); }));
  if (mode != "wal") {
    spdlog::warn("state db {}: journal mode is {}, not wal (the file system may not support it)",
                 path.string(), mode);
  }
  std::string check;
  MC_RETURN_IF_ERROR(Run("PRAGMA quick_check", "quick check", nullptr, [&](const Statement& st) {
    if (check.empty()) check = st.Text(0);
  }));
  if (check != "ok") return FailedPreconditionError(Context("quick check: " + check));
  MC_RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", "pragmas"));
  return Migrate();
}

Status StateDb::Impl::Migrate() {
  MC_ASSIGN_OR_RETURN(int64_t version,
                      conn->QueryInt("PRAGMA user_version", "read schema version"));
  if (version == kSchemaVersion) return Status::Ok();
  // Re-read under the write lock: another process may be creating the schema right now.
  return conn->InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(version, conn->QueryInt("PRAGMA user_version", "read schema version"));
    if (version > kSchemaVersion) {
      return FailedPreconditionError(Context("schema version " + std::to_string(version) +
                                             " is newer than this build's " +
                                             std::to_string(kSchemaVersion)));
    }
    if (version == 0) {
      MC_ASSIGN_OR_RETURN(int64_t objects,
                          conn->QueryInt("SELECT count(*) FROM sqlite_schema", "read schema"));
      if (objects > 0) {
        return FailedPreconditionError(Context("tables but no schema version: not a state db"));
      }
      fresh = true;
    }
    for (int64_t v = version; v < kSchemaVersion; ++v) {
      MC_RETURN_IF_ERROR(conn->Exec(kMigrations[v], "migrate schema to " + std::to_string(v + 1)));
    }
    return conn->Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion),
                      "set schema version");
  });
}

namespace {

// Renames `path` and its -wal/-shm to "<path>.bad-<unix seconds>[.<n>]" (-wal/-shm appended, so
// the set can still be opened together). The -wal goes first: a -wal left next to the fresh file
// would be replayed into it. A main file already gone (another process moved it) is fine.
// Returns the new name of the main file.
StatusOr<fs::path> MoveAside(const fs::path& path) {
  std::string base = path.string() + ".bad-" + std::to_string(ToUnixSeconds(Clock::Real().Now()));
  std::string target = base;
  std::error_code ec;
  for (int n = 2; fs::exists(target, ec) || fs::exists(target + "-wal", ec); ++n) {
    target = base + "." + std::to_string(n);
  }
  for (const char* suffix : {"-wal", "-shm", ""}) {
    std::string from = path.string() + suffix;
    if (::rename(from.c_str(), (target + suffix).c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "move aside " + from);
    }
  }
  return fs::path(target);
}

}  // namespace

StatusOr<std::unique_ptr<StateDb>> StateDb::Open(const fs::path& path) {
  // No lock: nothing else can see `impl` yet.
  auto impl = std::make_unique<Impl>(path);
  Status s = impl->Connect();
  if (s.code() == StatusCode::kFailedPrecondition) {
    impl->conn.reset();  // closed before its files are renamed
    MC_ASSIGN_OR_RETURN(fs::path aside, MoveAside(path));
    spdlog::warn(
        "{}; moved it to {} and created a fresh one: pins and worker history are lost "
        "(snapshots are rebuilt from the cache)",
        s.message(), aside.string());
    impl = std::make_unique<Impl>(path);
    s = impl->Connect();
    impl->fresh = true;
  }
  if (!s.ok()) return s;
  return std::unique_ptr<StateDb>(new StateDb(std::move(impl)));
}

StateDb::StateDb(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateDb::~StateDb() = default;

bool StateDb::fresh() const { return impl_->fresh; }
const fs::path& StateDb::path() const { return impl_->path; }

// ---- snapshots ----

namespace {
constexpr const char* kUpsertSnapshot = R"sql(
INSERT INTO snapshots (repo, "commit", size, files, last_use_ms, created_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (repo, "commit") DO UPDATE SET size = excluded.size, files = excluded.files,
  last_use_ms = excluded.last_use_ms, created_ms = excluded.created_ms)sql";

// An upsert, not INSERT OR REPLACE: a replace deletes the row first, which would cascade to
// the snapshot's completions.
void BindSnapshot(Statement& st, const SnapshotRow& row) {
  st.Bind(row.repo).Bind(row.commit).Bind(static_cast<int64_t>(row.size)).Bind(row.files);
  st.Bind(row.last_use).Bind(row.created);
}
}  // namespace

Status StateDb::UpsertSnapshot(const SnapshotRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(kUpsertSnapshot, "upsert snapshot " + Key(row.repo, row.commit),
                    [&](Statement& st) { BindSnapshot(st, row); });
}

Status StateDb::DeleteSnapshot(const std::string& repo, const std::string& commit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // Completions go with it through ON DELETE CASCADE, in the same statement.
  return impl_->Run(R"sql(DELETE FROM snapshots WHERE repo = ?1 AND "commit" = ?2)sql",
                    "delete snapshot " + Key(repo, commit),
                    [&](Statement& st) { st.Bind(repo).Bind(commit); });
}

Status StateDb::TouchSnapshot(const std::string& repo, const std::string& commit, TimePoint at) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  MC_RETURN_IF_ERROR(impl_->Run(
      R"sql(UPDATE snapshots SET last_use_ms = max(last_use_ms, ?3)
            WHERE repo = ?1 AND "commit" = ?2)sql",
      "touch snapshot " + Key(repo, commit),
      [&](Statement& st) { st.Bind(repo).Bind(commit).Bind(at); }));
  if (impl_->conn->Changes() == 0) {
    return NotFoundError(impl_->Context("touch snapshot " + Key(repo, commit) + ": no such row"));
  }
  return Status::Ok();
}

namespace {
constexpr const char* kSelectSnapshots =
    R"sql(SELECT repo, "commit", size, files, last_use_ms, created_ms FROM snapshots)sql";

SnapshotRow ReadSnapshot(const Statement& st) {
  return SnapshotRow{.repo = st.Text(0),
                     .commit = st.Text(1),
                     .size = static_cast<uint64_t>(st.Int(2)),
                     .files = st.Int(3),
                     .last_use = st.Time(4),
                     .created = st.Time(5)};
}
}  // namespace

StatusOr<std::vector<SnapshotRow>> StateDb::ListSnapshots() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<SnapshotRow> rows;
  MC_RETURN_IF_ERROR(impl_->Run(std::string(kSelectSnapshots) + R"sql( ORDER BY repo, "commit")sql",
                                "list snapshots", nullptr,
                                [&](const Statement& st) { rows.push_back(ReadSnapshot(st)); }));
  return rows;
}

StatusOr<std::optional<SnapshotRow>> StateDb::GetSnapshot(const std::string& repo,
                                                          const std::string& commit) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::optional<SnapshotRow> row;
  MC_RETURN_IF_ERROR(impl_->Run(
      std::string(kSelectSnapshots) + R"sql( WHERE repo = ?1 AND "commit" = ?2)sql",
      "get snapshot " + Key(repo, commit), [&](Statement& st) { st.Bind(repo).Bind(commit); },
      [&](const Statement& st) { row = ReadSnapshot(st); }));
  return row;
}

Status StateDb::AddCompletion(const CompletionRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::string op = "add completion " + Key(row.repo, row.commit);
  // Inserts nothing when the snapshot has no row (changes() == 0) instead of failing on the
  // foreign key, so that case becomes a plain NotFound.
  MC_RETURN_IF_ERROR(impl_->Run(
      R"sql(INSERT INTO completions (repo, "commit", "filter", at_ms)
            SELECT ?1, ?2, ?3, ?4 WHERE EXISTS
              (SELECT 1 FROM snapshots WHERE repo = ?1 AND "commit" = ?2)
            ON CONFLICT (repo, "commit", "filter") DO UPDATE SET at_ms = excluded.at_ms)sql",
      op,
      [&](Statement& st) { st.Bind(row.repo).Bind(row.commit).Bind(row.filter).Bind(row.at); }));
  if (impl_->conn->Changes() == 0) {
    return NotFoundError(impl_->Context(op + ": the snapshot has no row"));
  }
  return Status::Ok();
}

StatusOr<std::vector<CompletionRow>> StateDb::ListCompletions() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<CompletionRow> rows;
  MC_RETURN_IF_ERROR(impl_->Run(
      R"sql(SELECT repo, "commit", "filter", at_ms FROM completions
            ORDER BY repo, "commit", "filter")sql",
      "list completions", nullptr, [&](const Statement& st) {
        rows.push_back(
            {.repo = st.Text(0), .commit = st.Text(1), .filter = st.Text(2), .at = st.Time(3)});
      }));
  return rows;
}

Status StateDb::ReplaceSnapshots(const std::vector<SnapshotRow>& rows) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& impl = *impl_;
  return impl.conn->InTransaction([&]() -> Status {
    std::set<std::pair<std::string, std::string>> keep;
    for (const SnapshotRow& row : rows) {
      keep.emplace(row.repo, row.commit);
      MC_RETURN_IF_ERROR(impl.Run(kUpsertSnapshot,
                                  "replace snapshots: upsert " + Key(row.repo, row.commit),
                                  [&](Statement& st) { BindSnapshot(st, row); }));
    }
    std::vector<std::pair<std::string, std::string>> stale;
    MC_RETURN_IF_ERROR(impl.Run(R"sql(SELECT repo, "commit" FROM snapshots)sql",
                                "replace snapshots: list", nullptr, [&](const Statement& st) {
                                  auto key = std::make_pair(st.Text(0), st.Text(1));
                                  if (!keep.count(key)) stale.push_back(std::move(key));
                                }));
    for (const auto& [repo, commit] : stale) {
      MC_RETURN_IF_ERROR(
          impl.Run(R"sql(DELETE FROM snapshots WHERE repo = ?1 AND "commit" = ?2)sql",
                   "replace snapshots: delete " + Key(repo, commit),
                   [&](Statement& st) { st.Bind(repo).Bind(commit); }));
    }
    return Status::Ok();
  });
}

// ---- pins ----

Status StateDb::AddPin(const PinRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(
      R"sql(INSERT INTO pins (repo, "commit", owner, created_ms) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT DO NOTHING)sql",
      "add pin " + Key(row.repo, row.commit),
      [&](Statement& st) { st.Bind(row.repo).Bind(row.commit).Bind(row.owner).Bind(row.created); });
}

Status StateDb::RemovePin(const std::string& repo, const std::string& commit,
                          const std::string& owner) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::string op = "remove pin " + Key(repo, commit) + " (" + owner + ")";
  MC_RETURN_IF_ERROR(
      impl_->Run(R"sql(DELETE FROM pins WHERE repo = ?1 AND "commit" = ?2 AND owner = ?3)sql", op,
                 [&](Statement& st) { st.Bind(repo).Bind(commit).Bind(owner); }));
  if (impl_->conn->Changes() == 0) return NotFoundError(impl_->Context(op + ": no such pin"));
  return Status::Ok();
}

StatusOr<std::vector<PinRow>> StateDb::ListPins() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<PinRow> rows;
  MC_RETURN_IF_ERROR(impl_->Run(
      R"sql(SELECT repo, "commit", owner, created_ms FROM pins ORDER BY repo, "commit", owner)sql",
      "list pins", nullptr, [&](const Statement& st) {
        rows.push_back(
            {.repo = st.Text(0), .commit = st.Text(1), .owner = st.Text(2), .created = st.Time(3)});
      }));
  return rows;
}

// ---- downloads ----

Status StateDb::PutDownload(const DownloadRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(
      R"sql(INSERT OR REPLACE INTO downloads
              (repo, "commit", "filter", revision, selection, needs_token, started_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7))sql",
      "put download " + Key(row.repo, row.commit), [&](Statement& st) {
        st.Bind(row.repo).Bind(row.commit).Bind(row.filter).Bind(row.revision).Bind(row.selection);
        st.Bind(int64_t{row.needs_token ? 1 : 0}).Bind(row.started);
      });
}

Status StateDb::DeleteDownload(const std::string& repo, const std::string& commit,
                               const std::string& filter) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(
      R"sql(DELETE FROM downloads WHERE repo = ?1 AND "commit" = ?2 AND "filter" = ?3)sql",
      "delete download " + Key(repo, commit),
      [&](Statement& st) { st.Bind(repo).Bind(commit).Bind(filter); });
}

StatusOr<std::vector<DownloadRow>> StateDb::ListDownloads() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<DownloadRow> rows;
  MC_RETURN_IF_ERROR(impl_->Run(
      R"sql(SELECT repo, "commit", "filter", revision, selection, needs_token, started_ms
            FROM downloads ORDER BY repo, "commit", "filter")sql",
      "list downloads", nullptr, [&](const Statement& st) {
        rows.push_back({.repo = st.Text(0),
                        .commit = st.Text(1),
                        .revision = st.Text(3),
                        .filter = st.Text(2),
                        .selection = st.Text(4),
                        .needs_token = st.Int(5) != 0,
                        .started = st.Time(6)});
      }));
  return rows;
}

// ---- workers ----

namespace {
constexpr const char* kSelectWorkers = R"sql(
SELECT id, repo, "commit", gpus, state, pid, start_ticks, exit_code, signal, message,
       stdout_path, stderr_path, created_ms, started_ms, ended_ms, endpoint, runtime, container,
       image, image_digest, extra_models, image_ms, download_ms FROM workers)sql";

WorkerRow ReadWorker(const Statement& st) {
  return WorkerRow{.id = st.Text(0),
                   .repo = st.Text(1),
                   .commit = st.Text(2),
                   .gpus = st.Text(3),
                   .state = st.Text(4),
                   .pid = static_cast<pid_t>(st.Int(5)),
                   .start_ticks = static_cast<uint64_t>(st.Int(6)),
                   .exit_code = OptIntCast(st.OptInt(7)),
                   .signal = OptIntCast(st.OptInt(8)),
                   .message = st.Text(9),
                   .stdout_path = st.Text(10),
                   .stderr_path = st.Text(11),
                   .created = st.Time(12),
                   .started = st.OptTime(13),
                   .ended = st.OptTime(14),
                   .endpoint = st.Text(15),
                   .runtime = st.Text(16),
                   .container = st.Text(17),
                   .image = st.Text(18),
                   .image_digest = st.Text(19),
                   .extra_models = st.Text(20),
                   .image_ms = st.OptInt(21),
                   .download_ms = st.OptInt(22)};
}
}  // namespace

Status StateDb::PutWorker(const WorkerRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(
      R"sql(INSERT OR REPLACE INTO workers
              (id, repo, "commit", gpus, state, pid, start_ticks, exit_code, signal, message,
               stdout_path, stderr_path, created_ms, started_ms, ended_ms, endpoint, runtime,
               container, image, image_digest, extra_models, image_ms, download_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                    ?18, ?19, ?20, ?21, ?22, ?23))sql",
      "put worker " + row.id, [&](Statement& st) {
        st.Bind(row.id).Bind(row.repo).Bind(row.commit).Bind(row.gpus).Bind(row.state);
        st.Bind(int64_t{row.pid}).Bind(static_cast<int64_t>(row.start_ticks));
        st.Bind(row.exit_code).Bind(row.signal).Bind(row.message);
        st.Bind(row.stdout_path).Bind(row.stderr_path);
        st.Bind(row.created).Bind(row.started).Bind(row.ended);
        st.Bind(row.endpoint).Bind(row.runtime).Bind(row.container).Bind(row.image);
        st.Bind(row.image_digest).Bind(row.extra_models).Bind(row.image_ms).Bind(row.download_ms);
      });
}

StatusOr<std::vector<WorkerRow>> StateDb::ListWorkers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<WorkerRow> rows;
  MC_RETURN_IF_ERROR(impl_->Run(std::string(kSelectWorkers) + " ORDER BY created_ms, id",
                                "list workers", nullptr,
                                [&](const Statement& st) { rows.push_back(ReadWorker(st)); }));
  return rows;
}

StatusOr<std::optional<WorkerRow>> StateDb::GetWorker(const std::string& id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::optional<WorkerRow> row;
  MC_RETURN_IF_ERROR(impl_->Run(
      std::string(kSelectWorkers) + " WHERE id = ?1", "get worker " + id,
      [&](Statement& st) { st.Bind(id); }, [&](const Statement& st) { row = ReadWorker(st); }));
  return row;
}

Status StateDb::PruneWorkers(TimePoint before) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run("DELETE FROM workers WHERE ended_ms IS NOT NULL AND ended_ms < ?1",
                    "prune workers", [&](Statement& st) { st.Bind(before); });
}

// ---- images ----

Status StateDb::PutImage(const ImageRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(
      R"sql(INSERT OR REPLACE INTO images (reference, image_id, digest, size, pulled, last_use_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql",
      "put image " + row.reference, [&](Statement& st) {
        st.Bind(row.reference).Bind(row.image_id).Bind(row.digest);
        st.Bind(static_cast<int64_t>(row.size)).Bind(int64_t{row.pulled ? 1 : 0}).Bind(row.last_use);
      });
}

Status StateDb::DeleteImage(const std::string& reference) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run("DELETE FROM images WHERE reference = ?1", "delete image " + reference,
                    [&](Statement& st) { st.Bind(reference); });
}

StatusOr<std::vector<ImageRow>> StateDb::ListImages() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ImageRow> rows;
  MC_RETURN_IF_ERROR(impl_->Run(
      "SELECT reference, image_id, digest, size, pulled, last_use_ms FROM images ORDER BY "
      "reference",
      "list images", nullptr, [&](const Statement& st) {
        rows.push_back(ImageRow{.reference = st.Text(0),
                                .image_id = st.Text(1),
                                .digest = st.Text(2),
                                .size = static_cast<uint64_t>(st.Int(3)),
                                .pulled = st.Int(4) != 0,
                                .last_use = st.Time(5)});
      }));
  return rows;
}

}  // namespace mc::agent
