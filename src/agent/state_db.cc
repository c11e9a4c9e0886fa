// StateDb over the raw SQLite C API: one connection, a mutex, a cache of prepared statements.
// The schema is versioned with PRAGMA user_version; kMigrations[v] takes version v to v + 1.
#include "agent/state_db.h"

#include <errno.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSchemaVersion = 1;

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
};

int64_t ToUnixMs(TimePoint t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint FromUnixMs(int64_t ms) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms)));
}

// Codes by what the caller should do. Open() relies on kFailedPrecondition meaning "this file is
// unusable" (corrupt, not a database), so nothing else maps to it.
StatusCode CodeFor(int rc, int sys_errno) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return StatusCode::kFailedPrecondition;
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return StatusCode::kPermissionDenied;
    case SQLITE_TOOBIG:
      return StatusCode::kInvalidArgument;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return sys_errno != 0 ? ErrnoError(sys_errno, "").code() : StatusCode::kInternal;
    default:
      return StatusCode::kInternal;
  }
}

Status SqliteError(sqlite3* db, int rc, std::string_view op) {
  std::string msg(op);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(CodeFor(rc, db != nullptr ? sqlite3_system_errno(db) : 0), std::move(msg));
}

// One prepared statement: parameters are bound in call order (?1, ?2, ...); a bind error is
// reported by the next Step(). Reset() makes it ready for the next use.
class Statement {
 public:
  static StatusOr<std::unique_ptr<Statement>> Prepare(sqlite3* db, const std::string& sql,
                                                      unsigned flags = 0) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db, sql.c_str(), -1, flags, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db, rc, "prepare");
    return std::unique_ptr<Statement>(new Statement(db, stmt));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int64_t v) { return Check(sqlite3_bind_int64(stmt_, next_++, v)); }
  Statement& Bind(std::string_view v) {
    // data() of an empty view may be null, which SQLite would bind as NULL.
    const char* p = v.data() != nullptr ? v.data() : "";
    return Check(sqlite3_bind_text64(stmt_, next_++, p, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& Bind(const char* v) { return Bind(std::string_view(v)); }
  Statement& Bind(TimePoint t) { return Bind(ToUnixMs(t)); }
  template <typename T>
  Statement& Bind(const std::optional<T>& v) {
    if (v.has_value()) return Bind(*v);
    return Check(sqlite3_bind_null(stmt_, next_++));
  }

  // True with a row to read, false when done.
  StatusOr<bool> Step(std::string_view op) {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, op);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, op);
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    next_ = 1;
    bind_rc_ = SQLITE_OK;
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::optional<int64_t> OptInt(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return Int(col);
  }
  TimePoint Time(int col) const { return FromUnixMs(Int(col)); }
  std::optional<TimePoint> OptTime(int col) const {
    std::optional<int64_t> ms = OptInt(col);
    return ms ? std::optional<TimePoint>(FromUnixMs(*ms)) : std::nullopt;
  }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, col));
  }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement& Check(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_ = 1;
  int bind_rc_ = SQLITE_OK;
};

using Binder = std::function<void(Statement&)>;
using RowReader = std::function<void(const Statement&)>;

std::string Key(const std::string& repo, const std::string& commit) { return repo + "@" + commit; }

std::optional<int> OptIntCast(std::optional<int64_t> v) {
  return v ? std::optional<int>(static_cast<int>(*v)) : std::nullopt;
}

}  // namespace

struct StateDb::Impl {
  explicit Impl(fs::path p) : path(std::move(p)) {}
  ~Impl() { Close(); }

  void Close() {
    statements.clear();  // finalized before the connection closes
    if (db != nullptr) sqlite3_close_v2(db);
    db = nullptr;
  }

  // Runs `sql` (cached), binding with `bind` and calling `on_row` for each row. Caller holds mu.
  Status Run(const std::string& sql, std::string_view op, const Binder& bind = nullptr,
             const RowReader& on_row = nullptr) {
    auto& cached = statements[sql];
    if (cached == nullptr) {
      MC_ASSIGN_OR_RETURN(cached, Statement::Prepare(db, sql, SQLITE_PREPARE_PERSISTENT),
                          Context(op));
    }
    Statement& st = *cached;
    struct ResetOnExit {
      Statement& st;
      ~ResetOnExit() { st.Reset(); }
    } reset{st};
    if (bind) bind(st);
    while (true) {
      MC_ASSIGN_OR_RETURN(bool row, st.Step(op), Context(""));
      if (!row) return Status::Ok();
      if (on_row) on_row(st);
    }
  }

  // Runs `sql` once, uncached (set-up statements, scripts of several statements).
  Status ExecScript(const char* sql, std::string_view op) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqliteError(db, rc, op).WithContext(Context(""));
    return Status::Ok();
  }

  StatusOr<int64_t> QueryInt(const std::string& sql, std::string_view op) {
    int64_t value = 0;
    MC_RETURN_IF_ERROR(Run(sql, op, nullptr, [&](const Statement& st) { value = st.Int(0); }));
    return value;
  }

  // Runs `body` inside BEGIN IMMEDIATE (the write lock up front, so the busy timeout applies
  // instead of a failed lock upgrade) and commits, or rolls back if it fails.
  Status InTransaction(const std::function<Status()>& body) {
    MC_RETURN_IF_ERROR(Run("BEGIN IMMEDIATE", "begin transaction"));
    Status s = body();
    if (s.ok()) s = Run("COMMIT", "commit");
    if (!s.ok() && !sqlite3_get_autocommit(db)) Run("ROLLBACK", "rollback").IgnoreError();
    return s;
  }

  // "state db <path>: <op>" for errors.
  std::string Context(std::string_view op) const {
    std::string c = "state db " + path.string();
    if (!op.empty()) c += ": " + std::string(op);
    return c;
  }

  Status Connect();
  Status Migrate();

  const fs::path path;
  bool fresh = false;
  std::mutex mu;                                                 // guards everything below
  sqlite3* db = nullptr;                                         // owned
  std::map<std::string, std::unique_ptr<Statement>> statements;  // by SQL text
};

// Opens the connection, checks the file and brings the schema to kSchemaVersion. A
// kFailedPrecondition error means the file is unusable and should be moved aside.
Status StateDb::Impl::Connect() {
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteError(db, rc, "open").WithContext(Context(""));
    Close();
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  // The first statement that reads the header fails with SQLITE_NOTADB on a file that is not
  // a database; CodeFor maps that to kFailedPrecondition.
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
  MC_RETURN_IF_ERROR(ExecScript("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", "pragmas"));
  return Migrate();
}

Status StateDb::Impl::Migrate() {
  MC_ASSIGN_OR_RETURN(int64_t version, QueryInt("PRAGMA user_version", "read schema version"));
  if (version == kSchemaVersion) return Status::Ok();
  // Re-read under the write lock: another process may be creating the schema right now.
  return InTransaction([&]() -> Status {
    MC_ASSIGN_OR_RETURN(version, QueryInt("PRAGMA user_version", "read schema version"));
    if (version > kSchemaVersion) {
      return FailedPreconditionError(Context("schema version " + std::to_string(version) +
                                             " is newer than this build's " +
                                             std::to_string(kSchemaVersion)));
    }
    if (version == 0) {
      MC_ASSIGN_OR_RETURN(int64_t objects,
                          QueryInt("SELECT count(*) FROM sqlite_schema", "read schema"));
      if (objects > 0) {
        return FailedPreconditionError(Context("tables but no schema version: not a state db"));
      }
      fresh = true;
    }
    for (int64_t v = version; v < kSchemaVersion; ++v) {
      MC_RETURN_IF_ERROR(ExecScript(kMigrations[v], "migrate schema to " + std::to_string(v + 1)));
    }
    return ExecScript(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str(),
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
    impl->Close();
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
  if (sqlite3_changes(impl_->db) == 0) {
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
  if (sqlite3_changes(impl_->db) == 0) {
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
  return impl.InTransaction([&]() -> Status {
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
  if (sqlite3_changes(impl_->db) == 0) return NotFoundError(impl_->Context(op + ": no such pin"));
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
       stdout_path, stderr_path, created_ms, started_ms, ended_ms FROM workers)sql";

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
                   .ended = st.OptTime(14)};
}
}  // namespace

Status StateDb::PutWorker(const WorkerRow& row) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Run(
      R"sql(INSERT OR REPLACE INTO workers
              (id, repo, "commit", gpus, state, pid, start_ticks, exit_code, signal, message,
               stdout_path, stderr_path, created_ms, started_ms, ended_ms)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15))sql",
      "put worker " + row.id, [&](Statement& st) {
        st.Bind(row.id).Bind(row.repo).Bind(row.commit).Bind(row.gpus).Bind(row.state);
        st.Bind(int64_t{row.pid}).Bind(static_cast<int64_t>(row.start_ticks));
        st.Bind(row.exit_code).Bind(row.signal).Bind(row.message);
        st.Bind(row.stdout_path).Bind(row.stderr_path);
        st.Bind(row.created).Bind(row.started).Bind(row.ended);
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

}  // namespace mc::agent
