// A thin layer over libpq, PostgreSQL's C client, for the controller's PostgreSQL store
// (src/controller/store_postgres.cc) and the test harness (postgres_for_test.h): SQLSTATE codes
// mapped to Status codes, parameters and results in binary (a string is sent and read as bytea,
// so any bytes round-trip: quotes, NULs, non-UTF-8), a connection with a cache of prepared
// statements, transactions, and a reconnect after a lost connection. Internal to src/ (include
// as "postgres/pg_util.h"); nothing here knows a schema. libpq's own header stays in pg_util.cc.
//
// Thread-safety: none. The owner serializes every call on a Connection, e.g. with one mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mc/common/status.h"

// libpq's handles, declared as libpq-fe.h does, so that this header does not include it.
struct pg_conn;
struct pg_result;

namespace mc::postgres {

// Codes by what the caller should do, from the five-character SQLSTATE: a lost connection (08),
// a serialization failure or deadlock (40), a lock or statement timeout (55P03, 57014), a server
// shutting down or starting (57P0x) and too many connections (53300) → Unavailable (retry);
// disk full and out of memory (53) → ResourceExhausted; a unique violation (23505) →
// AlreadyExists; a foreign key violation (23503) → NotFound; corrupt data or index (XX001, XX002)
// and a table or column that is missing (42P01, 42703: the schema was changed behind our back) →
// FailedPrecondition; no privilege, a read-only transaction or a failed login (42501, 25006, 28)
// → PermissionDenied; a missing database (3D000) → NotFound; anything else → Internal.
StatusCode CodeForSqlState(std::string_view sqlstate);

// PostgreSQL's type OIDs (pg_type.dat) of the types the layer sends and reads.
enum class Type : unsigned { kBool = 16, kBytea = 17, kInt8 = 20, kFloat8 = 701 };

// Parameters $1, $2, ... in Add order, all in binary: a string is bytea (its bytes as they are),
// an integer int8, a bool bool, a double float8; nullopt is NULL of the value's type. A string is
// not copied: it must outlive the call the Params are passed to.
class Params {
 public:
  Params& Add(int64_t v);
  Params& Add(int v) { return Add(int64_t{v}); }
  Params& Add(bool v);
  Params& Add(double v);
  Params& Add(std::string_view v);
  Params& Add(const std::string& v) { return Add(std::string_view(v)); }
  Params& Add(const char* v) { return Add(std::string_view(v)); }
  template <typename T>
  Params& Add(const std::optional<T>& v) {
    if (v.has_value()) return Add(*v);
    return AddNull(TypeOf<T>());
  }
  Params& AddNull(Type type);

  size_t size() const { return params_.size(); }
  // For libpq: OIDs, value pointers (null for NULL), lengths and formats (all binary). The
  // pointers are valid while the Params and the strings they refer to are.
  std::vector<unsigned> Types() const;
  std::vector<const char*> Values() const;
  std::vector<int> Lengths() const;

 private:
  struct Param {
    Type type;
    bool null = false;
    const char* data = nullptr;  // a string's bytes, or null when inline_ holds the value
    size_t size = 0;
    char inline_[8] = {};
  };
  template <typename T>
  static constexpr Type TypeOf() {
    if constexpr (std::is_same_v<T, bool>) return Type::kBool;
    if constexpr (std::is_same_v<T, double>) return Type::kFloat8;
    if constexpr (std::is_integral_v<T>) return Type::kInt8;
    return Type::kBytea;
  }
  Params& AddInline(Type type, uint64_t big_endian_bits, size_t size);

  std::vector<Param> params_;
};

// Reads the columns of one result row in order, checking each column's type: a column of another
// type (a schema changed behind our back) reads as empty / 0 and makes status() an error.
class Cols {
 public:
  Cols(const pg_result* result, int row) : result_(result), row_(row) {}
  std::string Bytes();  // bytea
  std::optional<std::string> OptBytes();
  int64_t Int();  // int8
  int IntNarrow() { return static_cast<int>(Int()); }
  std::optional<int64_t> OptInt();
  bool Bool();
  double Double();      // float8
  bool IsNull() const;  // the next column
  // FailedPrecondition naming the first column of an unexpected type; OK otherwise.
  Status status() const;

 private:
  // The next column's bytes if it is of `type` and `size` (0 = any), else nullptr (and the
  // column counted as read).
  const char* Take(Type type, int size, int* length);

  const pg_result* result_;
  int row_;
  int col_ = 0;
  std::string error_;
};

using RowReader = std::function<void(Cols&)>;

class Connection {
 public:
  // Connects with `uri` (a libpq connection URI, "postgresql://..."), libpq's defaults first
  // (connect_timeout 10 s, TCP keepalives after 10 s idle, application name `app`) so that the
  // URI's own parameters win, and `password` last (from a file: never from argv). Then sets up
  // the session: lock_timeout 5 s (a row lock held longer is Unavailable, like SQLite's busy
  // timeout), notices to the debug log. `label` starts every error message ("controller db").
  // PermissionDenied if the server refuses the login (a password missing or wrong), Unavailable
  // if it cannot be reached (the message says why).
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& uri,
                                                    const std::optional<std::string>& password,
                                                    std::string label, const std::string& app);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (prepared once per session, then cached) with `params`, calling `on_row` for each
  // row of the result; returns the rows the statement affected (INSERT/UPDATE/DELETE) or
  // returned. A lost connection is Unavailable; the next call reconnects first.
  StatusOr<int64_t> Run(const std::string& sql, std::string_view op, const Params& params = {},
                        const RowReader& on_row = nullptr);
  // The first column (int8) of the first row; nullopt if there is no row or it is NULL.
  StatusOr<std::optional<int64_t>> QueryInt(const std::string& sql, std::string_view op,
                                            const Params& params = {});
  // Runs `sql` once with the simple protocol, unprepared: scripts of several statements
  // (migrations), SET, BEGIN.
  Status Exec(const std::string& sql, std::string_view op);
  // Runs `body` between BEGIN and COMMIT, or rolls back if it fails (a failed COMMIT too: a
  // serialization failure there is Unavailable, and nothing was written).
  Status InTransaction(const std::function<Status()>& body);

  // "<label> <name>" or "<label> <name>: <op>", where name says which database without any
  // secret: postgresql://USER@HOST:PORT/DBNAME.
  std::string Context(std::string_view op) const;
  const std::string& name() const { return name_; }

 private:
  Connection(pg_conn* conn, std::string label, std::string name);
  Status SetUpSession();
  Status Reconnect();
  Status ReconnectIfLost();
  Status ErrorOf(const pg_result* result, std::string_view op) const;

  pg_conn* conn_;  // owned
  const std::string label_;
  const std::string name_;
  std::map<std::string, std::string> prepared_;  // SQL text → statement name, this session's
  int64_t next_statement_ = 0;
  bool in_transaction_ = false;  // inside InTransaction: never reconnect
};

// The database a libpq URI names, without any secret: "postgresql://USER@HOST:PORT/DBNAME" (parts
// not given are left out). InvalidArgument if libpq cannot parse it (the message leaves the URI
// out: it may hold a password).
StatusOr<std::string> DescribeUri(const std::string& uri);
// True if the URI carries a password (in the user-info part or a password= parameter).
StatusOr<bool> UriHasPassword(const std::string& uri);

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

// "$1, $2, ..., $n".
std::string Placeholders(size_t n, size_t first = 1);

// Insert, or update every column but the key (columns[0]) in place; parameters $1..$N in column
// order. ON CONFLICT DO UPDATE keeps the row (and what references it, and its identity columns).
template <size_t N>
std::string UpsertSql(const char* table, const char* const (&columns)[N]) {
  std::string sql = std::string("INSERT INTO ") + table + " (" + ColumnList(columns) +
                    ") VALUES (" + Placeholders(N) + ") ON CONFLICT (\"" + columns[0] +
                    "\") DO UPDATE SET ";
  for (size_t i = 1; i < N; ++i) {
    if (i > 1) sql += ", ";
    sql += '"' + std::string(columns[i]) + "\" = EXCLUDED.\"" + columns[i] + '"';
  }
  return sql;
}

}  // namespace mc::postgres
