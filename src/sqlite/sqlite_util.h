// A thin layer over the raw SQLite C API, shared by the agent's state db (src/agent/state_db.cc)
// and the controller's store (src/controller/store_sqlite.cc): SQLite result codes mapped to
// Status codes, a prepared statement with positional binding, a connection with a cache of
// prepared statements and an IMMEDIATE transaction helper, and builders of SELECT / upsert
// statements from a table's column list. Internal to src/ (include as "sqlite/sqlite_util.h");
// nothing here knows a schema.
//
// Thread-safety: none. The owner serializes every call on a Connection (and its Statements),
// e.g. with one mutex.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::sqlite {

// Codes by what the caller should do: busy/locked → Unavailable (retry), full → ResourceExhausted,
// corrupt / not a database → FailedPrecondition (the file is unusable: the agent moves such a file
// aside, the controller refuses to start; nothing else maps to it),
// a UNIQUE or PRIMARY KEY violation → AlreadyExists, read-only → PermissionDenied, I/O errors by
// their errno, the rest → Internal.
StatusCode CodeFor(int rc, int sys_errno);

// "<op>: <sqlite message>" with the code from CodeFor. `db` may be null.
Status Error(sqlite3* db, int rc, std::string_view op);

// One prepared statement: parameters are bound in call order (?1, ?2, ...); a bind error is
// reported by the next Step(). Reset() makes it ready for the next use. Text is bound and read
// with explicit lengths, so any bytes (quotes, NULs, invalid UTF-8) round-trip as data.
class Statement {
 public:
  static StatusOr<std::unique_ptr<Statement>> Prepare(sqlite3* db, const std::string& sql,
                                                      unsigned flags = 0);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // One overload per C++ type we store, so that int, bool and double never convert ambiguously.
  Statement& Bind(int64_t v);
  Statement& Bind(int v) { return Bind(int64_t{v}); }
  Statement& Bind(bool v) { return Bind(int64_t{v ? 1 : 0}); }
  Statement& Bind(double v);
  Statement& Bind(std::string_view v);
  Statement& Bind(const std::string& v) { return Bind(std::string_view(v)); }
  Statement& Bind(const char* v) { return Bind(std::string_view(v)); }
  Statement& Bind(Clock::TimePoint t);  // as Unix milliseconds (rounded down)
  template <typename T>
  Statement& Bind(const std::optional<T>& v) {  // nullopt ↔ NULL
    if (v.has_value()) return Bind(*v);
    return BindNull();
  }
  Statement& BindNull();

  // True with a row to read, false when done.
  StatusOr<bool> Step(std::string_view op);
  void Reset();

  int64_t Int(int col) const;
  int IntNarrow(int col) const { return static_cast<int>(Int(col)); }
  bool Bool(int col) const { return Int(col) != 0; }
  double Real(int col) const;
  std::string Text(int col) const;
  bool IsNull(int col) const;
  std::optional<int64_t> OptInt(int col) const;
  std::optional<std::string> OptText(int col) const;
  Clock::TimePoint Time(int col) const;  // from Unix milliseconds
  std::optional<Clock::TimePoint> OptTime(int col) const;

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement& Check(int rc);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_ = 1;
  int bind_rc_ = SQLITE_OK;
};

// ---- SQL built from one column list per table ----

// "\"a\", \"b\"" (every name quoted: some, like "commit", are keywords).
template <size_t N>
std::string ColumnList(const char* const (&columns)[N]) {
  std::string out;
  for (size_t i = 0; i < N; ++i) {
    if (i > 0) out += ", ";
    out += '"' + std::string(columns[i]) + '"';
  }
  return out;
}

// "SELECT <columns> FROM <table>".
template <size_t N>
std::string SelectSql(const char* table, const char* const (&columns)[N]) {
  return "SELECT " + ColumnList(columns) + " FROM " + table;
}

// Insert, or update every column but the key (columns[0]) in place; parameters ?1..?N in column
// order. An upsert rather than INSERT OR REPLACE: a replace deletes the row first, which would
// cascade to rows that reference it.
template <size_t N>
std::string UpsertSql(const char* table, const char* const (&columns)[N]) {
  std::string sql = std::string("INSERT INTO ") + table + " (" + ColumnList(columns) + ") VALUES (";
  for (size_t i = 0; i < N; ++i) sql += (i > 0 ? ", ?" : "?") + std::to_string(i + 1);
  sql += ") ON CONFLICT (\"" + std::string(columns[0]) + "\") DO UPDATE SET ";
  for (size_t i = 1; i < N; ++i) {
    if (i > 1) sql += ", ";
    sql += '"' + std::string(columns[i]) + "\" = excluded.\"" + columns[i] + '"';
  }
  return sql;
}

// Reads the columns of the current row in order, so a reader lists fields in column order
// without numbering them.
class Cols {
 public:
  explicit Cols(const Statement& st) : st_(st) {}
  std::string Text() { return st_.Text(i_++); }
  std::optional<std::string> OptText() { return st_.OptText(i_++); }
  int64_t Int() { return st_.Int(i_++); }
  int IntNarrow() { return st_.IntNarrow(i_++); }
  bool Bool() { return st_.Bool(i_++); }
  double Real() { return st_.Real(i_++); }
  std::optional<int64_t> OptInt() { return st_.OptInt(i_++); }

 private:
  const Statement& st_;
  int i_ = 0;
};

using Binder = std::function<void(Statement&)>;
using RowReader = std::function<void(const Statement&)>;

// One connection and its prepared statements (cached by SQL text). Errors carry
// "<label> <path>: <op>" so that every message names the file.
class Connection {
 public:
  // Opens or creates `path` read-write with extended result codes and the given busy timeout.
  // Reads nothing yet: a file that is not a database fails at the first statement.
  static StatusOr<std::unique_ptr<Connection>> Open(const std::filesystem::path& path,
                                                    std::string label, int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (prepared once, then cached), binding with `bind` and calling `on_row` per row.
  Status Run(const std::string& sql, std::string_view op, const Binder& bind = nullptr,
             const RowReader& on_row = nullptr);
  // Runs `sql` once, uncached (set-up statements, scripts of several statements).
  Status Exec(const std::string& sql, std::string_view op);
  // The first column of the first row (0 if there is none).
  StatusOr<int64_t> QueryInt(const std::string& sql, std::string_view op,
                             const Binder& bind = nullptr);
  // Runs `body` inside BEGIN IMMEDIATE (the write lock up front, so the busy timeout applies
  // instead of a failed lock upgrade) and commits, or rolls back if it fails.
  Status InTransaction(const std::function<Status()>& body);

  // Rows changed by the last INSERT/UPDATE/DELETE, and the rowid of the last INSERT.
  int64_t Changes() const;
  int64_t LastInsertRowid() const;

  // "<label> <path>" or "<label> <path>: <op>", for error messages.
  std::string Context(std::string_view op) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  Connection(std::filesystem::path path, std::string label, sqlite3* db);

  const std::filesystem::path path_;
  const std::string label_;
  sqlite3* db_;                                                   // owned
  std::map<std::string, std::unique_ptr<Statement>> statements_;  // by SQL text
};

}  // namespace mc::sqlite
