#include "sqlite/sqlite_util.h"

#include <chrono>
#include <utility>

namespace mc::sqlite {
namespace {

int64_t ToUnixMs(Clock::TimePoint t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::TimePoint FromUnixMs(int64_t ms) {
  return Clock::TimePoint(
      std::chrono::duration_cast<Clock::TimePoint::duration>(std::chrono::milliseconds(ms)));
}

}  // namespace

StatusCode CodeFor(int rc, int sys_errno) {
  switch (rc) {  // extended codes first
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return StatusCode::kAlreadyExists;
    default:
      break;
  }
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

Status Error(sqlite3* db, int rc, std::string_view op) {
  std::string msg(op);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(CodeFor(rc, db != nullptr ? sqlite3_system_errno(db) : 0), std::move(msg));
}

// ---- Statement ----

StatusOr<std::unique_ptr<Statement>> Statement::Prepare(sqlite3* db, const std::string& sql,
                                                        unsigned flags) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.c_str(), -1, flags, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(db, rc, "prepare");
  return std::unique_ptr<Statement>(new Statement(db, stmt));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int64_t v) { return Check(sqlite3_bind_int64(stmt_, next_++, v)); }

Statement& Statement::Bind(double v) { return Check(sqlite3_bind_double(stmt_, next_++, v)); }

Statement& Statement::Bind(std::string_view v) {
  // data() of an empty view may be null, which SQLite would bind as NULL.
  const char* p = v.data() != nullptr ? v.data() : "";
  return Check(sqlite3_bind_text64(stmt_, next_++, p, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

Statement& Statement::Bind(Clock::TimePoint t) { return Bind(ToUnixMs(t)); }

Statement& Statement::BindNull() { return Check(sqlite3_bind_null(stmt_, next_++)); }

StatusOr<bool> Statement::Step(std::string_view op) {
  if (bind_rc_ != SQLITE_OK) return Error(db_, bind_rc_, op);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(db_, rc, op);
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  next_ = 1;
  bind_rc_ = SQLITE_OK;
}

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

double Statement::Real(int col) const { return sqlite3_column_double(stmt_, col); }

std::string Statement::Text(int col) const {
  // column_text before column_bytes: the byte count is of the text form.
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, col));
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::optional<int64_t> Statement::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

std::optional<std::string> Statement::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

Clock::TimePoint Statement::Time(int col) const { return FromUnixMs(Int(col)); }

std::optional<Clock::TimePoint> Statement::OptTime(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Time(col);
}

Statement& Statement::Check(int rc) {
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

// ---- Connection ----

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::filesystem::path& path,
                                                       std::string label, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = Error(db, rc, "open").WithContext(label + " " + path.string());
    sqlite3_close_v2(db);  // a handle is returned even on failure (or null: a no-op)
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Connection>(new Connection(path, std::move(label), db));
}

Connection::Connection(std::filesystem::path path, std::string label, sqlite3* db)
    : path_(std::move(path)), label_(std::move(label)), db_(db) {}

Connection::~Connection() {
  statements_.clear();  // finalized before the connection closes
  sqlite3_close_v2(db_);
}

Status Connection::Run(const std::string& sql, std::string_view op, const Binder& bind,
                       const RowReader& on_row) {
  auto& cached = statements_[sql];
  if (cached == nullptr) {
    StatusOr<std::unique_ptr<Statement>> prepared =
        Statement::Prepare(db_, sql, SQLITE_PREPARE_PERSISTENT);
    if (!prepared.ok()) {
      statements_.erase(sql);
      return prepared.status().WithContext(Context(op));
    }
    cached = std::move(prepared).value();
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

Status Connection::Exec(const std::string& sql, std::string_view op) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return Error(db_, rc, op).WithContext(Context(""));
  return Status::Ok();
}

StatusOr<int64_t> Connection::QueryInt(const std::string& sql, std::string_view op,
                                       const Binder& bind) {
  int64_t value = 0;
  bool first = true;
  MC_RETURN_IF_ERROR(Run(sql, op, bind, [&](const Statement& st) {
    if (first) value = st.Int(0);
    first = false;
  }));
  return value;
}

Status Connection::InTransaction(const std::function<Status()>& body) {
  MC_RETURN_IF_ERROR(Run("BEGIN IMMEDIATE", "begin transaction"));
  Status s = body();
  if (s.ok()) s = Run("COMMIT", "commit");
  if (!s.ok() && !sqlite3_get_autocommit(db_)) Run("ROLLBACK", "rollback").IgnoreError();
  return s;
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

int64_t Connection::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

std::string Connection::Context(std::string_view op) const {
  std::string c = label_ + " " + path_.string();
  if (!op.empty()) c += ": " + std::string(op);
  return c;
}

}  // namespace mc::sqlite
