#include "postgres/pg_util.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <bit>
#include <cstring>
#include <utility>

namespace mc::postgres {
namespace {

// Owns a PGresult.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

uint64_t ToBigEndian(uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
  return v;
}

std::string TrimEnd(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// libpq prints NOTICEs (e.g. "relation already exists, skipping") to stderr by default.
void LogNotice(void*, const char* message) { spdlog::debug("postgres: {}", TrimEnd(message)); }

// The options PQconninfoParse found in `uri`, or InvalidArgument (without libpq's message, which
// may quote the URI and so a password).
StatusOr<std::map<std::string, std::string>> ParseUri(const std::string& uri) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &err);
  if (options == nullptr) {
    PQfreemem(err);
    return InvalidArgumentError(
        "not a PostgreSQL connection URI "
        "(postgresql://[USER@]HOST[:PORT]/DBNAME[?PARAM=VALUE&...]; "
        "see libpq's \"Connection URIs\")");
  }
  std::map<std::string, std::string> out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') out[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  return out;
}

std::string Describe(const std::string& user, const std::string& host, const std::string& port,
                     const std::string& db) {
  std::string out = "postgresql://";
  if (!user.empty()) out += user + "@";
  out += host;
  if (!port.empty()) out += ":" + port;
  return out + "/" + db;
}

}  // namespace

StatusCode CodeForSqlState(std::string_view s) {
  if (s.size() != 5) return StatusCode::kInternal;
  const std::string_view cls = s.substr(0, 2);
  if (s == "23505") return StatusCode::kAlreadyExists;
  if (s == "23503") return StatusCode::kNotFound;
  if (s == "53300") return StatusCode::kUnavailable;  // too many connections: others will leave
  if (s == "55P03" || s == "57014" || s == "57P01" || s == "57P02" || s == "57P03") {
    return StatusCode::kUnavailable;  // lock or statement timeout, shutdown, starting up
  }
  if (cls == "08" || cls == "40") return StatusCode::kUnavailable;  // connection; retry txn
  if (cls == "53") return StatusCode::kResourceExhausted;           // disk full, memory
  if (s == "XX001" || s == "XX002" || s == "42P01" || s == "42703") {
    return StatusCode::kFailedPrecondition;
  }
  if (s == "42501" || s == "25006" || cls == "28") return StatusCode::kPermissionDenied;
  if (s == "3D000") return StatusCode::kNotFound;
  if (s == "54000") return StatusCode::kInvalidArgument;  // program limit: e.g. a value > 1 GB
  return StatusCode::kInternal;
}

// ---- Params ----

Params& Params::AddInline(Type type, uint64_t big_endian_bits, size_t size) {
  Param p{.type = type, .size = size};
  std::memcpy(p.inline_, &big_endian_bits, sizeof big_endian_bits);
  if (size == 1) p.inline_[0] = static_cast<char>(big_endian_bits != 0);  // bool: one byte
  params_.push_back(p);
  return *this;
}

Params& Params::Add(int64_t v) {
  return AddInline(Type::kInt8, ToBigEndian(static_cast<uint64_t>(v)), 8);
}
Params& Params::Add(bool v) { return AddInline(Type::kBool, v ? 1 : 0, 1); }
Params& Params::Add(double v) {
  return AddInline(Type::kFloat8, ToBigEndian(std::bit_cast<uint64_t>(v)), 8);
}
Params& Params::Add(std::string_view v) {
  // A null pointer would be SQL NULL: an empty string still needs a (non-null) pointer.
  params_.push_back(
      Param{.type = Type::kBytea, .data = v.data() != nullptr ? v.data() : "", .size = v.size()});
  return *this;
}
Params& Params::AddNull(Type type) {
  params_.push_back(Param{.type = type, .null = true});
  return *this;
}

std::vector<unsigned> Params::Types() const {
  std::vector<unsigned> out;
  for (const Param& p : params_) out.push_back(static_cast<unsigned>(p.type));
  return out;
}
std::vector<const char*> Params::Values() const {
  std::vector<const char*> out;
  for (const Param& p : params_) out.push_back(p.null ? nullptr : p.data ? p.data : p.inline_);
  return out;
}
std::vector<int> Params::Lengths() const {
  std::vector<int> out;
  for (const Param& p : params_) out.push_back(static_cast<int>(p.size));
  return out;
}

std::string Placeholders(size_t n, size_t first) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i > 0 ? ", $" : "$") + std::to_string(first + i);
  return out;
}

// ---- Cols ----

const char* Cols::Take(Type type, int size, int* length) {
  const int col = col_++;
  *length = -1;
  const char* problem = nullptr;
  if (col >= PQnfields(result_)) {
    problem = "is missing";
  } else if (PQftype(result_, col) != static_cast<Oid>(type) || PQfformat(result_, col) != 1) {
    problem = "has an unexpected type";
  } else if (PQgetisnull(result_, row_, col)) {
    return nullptr;
  } else if (size > 0 && PQgetlength(result_, row_, col) != size) {
    problem = "has an unexpected size";
  }
  if (problem != nullptr) {
    if (error_.empty()) error_ = "result column " + std::to_string(col + 1) + " " + problem;
    return nullptr;
  }
  *length = PQgetlength(result_, row_, col);
  return PQgetvalue(result_, row_, col);
}

std::optional<std::string> Cols::OptBytes() {
  int len = 0;
  const char* p = Take(Type::kBytea, 0, &len);
  if (p == nullptr) return std::nullopt;
  return std::string(p, static_cast<size_t>(len));
}

std::string Cols::Bytes() {
  const int col = col_;
  std::optional<std::string> v = OptBytes();
  if (!v && error_.empty()) error_ = "result column " + std::to_string(col + 1) + " is NULL";
  return v.value_or("");
}

std::optional<int64_t> Cols::OptInt() {
  int len = 0;
  const char* p = Take(Type::kInt8, 8, &len);
  if (p == nullptr) return std::nullopt;
  uint64_t bits = 0;
  std::memcpy(&bits, p, 8);
  return static_cast<int64_t>(ToBigEndian(bits));
}

int64_t Cols::Int() {
  const int col = col_;
  std::optional<int64_t> v = OptInt();
  if (!v && error_.empty()) error_ = "result column " + std::to_string(col + 1) + " is NULL";
  return v.value_or(0);
}

bool Cols::Bool() {
  int len = 0;
  const char* p = Take(Type::kBool, 1, &len);
  return p != nullptr && *p != 0;
}

double Cols::Double() {
  int len = 0;
  const char* p = Take(Type::kFloat8, 8, &len);
  if (p == nullptr) return 0;
  uint64_t bits = 0;
  std::memcpy(&bits, p, 8);
  return std::bit_cast<double>(ToBigEndian(bits));
}

bool Cols::IsNull() const {
  return col_ < PQnfields(result_) && PQgetisnull(result_, row_, col_) != 0;
}

Status Cols::status() const {
  if (error_.empty()) return Status::Ok();
  return FailedPreconditionError(error_ + " (the schema was changed by something else)");
}

// ---- Connection ----

StatusOr<std::string> DescribeUri(const std::string& uri) {
  MC_ASSIGN_OR_RETURN(auto o, ParseUri(uri));
  return Describe(o["user"], o.count("host") ? o["host"] : o["hostaddr"], o["port"], o["dbname"]);
}

StatusOr<bool> UriHasPassword(const std::string& uri) {
  MC_ASSIGN_OR_RETURN(auto o, ParseUri(uri));
  return o.count("password") > 0;
}

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& uri,
                                                       const std::optional<std::string>& password,
                                                       std::string label, const std::string& app) {
  MC_ASSIGN_OR_RETURN(std::string described, DescribeUri(uri), label);
  // Later keywords win over earlier ones, the URI's parameters (expanded at "dbname") included.
  std::vector<const char*> keys = {"connect_timeout",           "keepalives_idle",
                                   "keepalives_interval",       "keepalives_count",
                                   "fallback_application_name", "dbname"};
  std::vector<const char*> values = {"10", "10", "5", "3", app.c_str(), uri.c_str()};
  if (password) {
    keys.push_back("password");
    values.push_back(password->c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return ResourceExhaustedError(label + " " + described + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    const bool needs_password = PQconnectionNeedsPassword(conn) != 0;
    const std::string error = TrimEnd(PQerrorMessage(conn));
    std::string msg = label + " " + described + ": connect: " + error;
    PQfinish(conn);
    if (needs_password) {
      return PermissionDeniedError(
          msg + " (put the password in a file and pass it with --db-password-file, or "
                "--from-password-file / --to-password-file for migrate-store; or add a "
                "~/.pgpass or $PGPASSFILE entry)");
    }
    // libpq has no SQLSTATE for a failed login; the server's message says it (in English with
    // lc_messages=C, the default; otherwise this is Unavailable, as for an unreachable server).
    if (error.find("authentication failed") != std::string::npos) {
      return PermissionDeniedError(msg);
    }
    return UnavailableError(msg);
  }
  const char* host = PQhost(conn);
  std::string name = Describe(PQuser(conn), host ? host : "", PQport(conn), PQdb(conn));
  std::unique_ptr<Connection> c(new Connection(conn, std::move(label), std::move(name)));
  MC_RETURN_IF_ERROR(c->SetUpSession());
  return c;
}

Connection::Connection(pg_conn* conn, std::string label, std::string name)
    : conn_(conn), label_(std::move(label)), name_(std::move(name)) {}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::SetUpSession() {
  PQsetNoticeProcessor(conn_, &LogNotice, nullptr);
  return Exec("SET lock_timeout = '5s'", "set up the session");
}

Status Connection::Reconnect() {
  PQreset(conn_);
  prepared_.clear();  // a new session has none of them
  if (PQstatus(conn_) != CONNECTION_OK) {
    return UnavailableError(Context("reconnect: " + TrimEnd(PQerrorMessage(conn_))));
  }
  spdlog::info("{}: reconnected", Context(""));
  return SetUpSession();
}

Status Connection::ErrorOf(const pg_result* result, std::string_view op) const {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // Only the primary message: the detail may quote values (ids, keys) of the row.
  const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string msg = primary ? primary : TrimEnd(PQerrorMessage(conn_));
  StatusCode code = StatusCode::kInternal;
  if (state != nullptr) {
    code = CodeForSqlState(state);
    msg += std::string(" (SQLSTATE ") + state + ")";
  } else if (PQstatus(conn_) == CONNECTION_BAD) {
    code = StatusCode::kUnavailable;  // the server went away: the next call reconnects
  }
  return Status(code, Context(std::string(op) + ": " + msg));
}

Status Connection::ReconnectIfLost() {
  if (PQstatus(conn_) != CONNECTION_BAD) return Status::Ok();
  // Never in the middle of a transaction: what follows would run outside it.
  if (in_transaction_) return UnavailableError(Context("the connection was lost"));
  return Reconnect();
}

StatusOr<int64_t> Connection::Run(const std::string& sql, std::string_view op, const Params& params,
                                  const RowReader& on_row) {
  MC_RETURN_IF_ERROR(ReconnectIfLost());
  const int n = static_cast<int>(params.size());
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string statement = "mc_" + std::to_string(next_statement_++);
    const std::vector<unsigned> types = params.Types();
    Result prepared(PQprepare(conn_, statement.c_str(), sql.c_str(), n, types.data()));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) return ErrorOf(prepared.get(), op);
    it = prepared_.emplace(sql, std::move(statement)).first;
  }
  const std::vector<const char*> values = params.Values();
  const std::vector<int> lengths = params.Lengths();
  const std::vector<int> formats(params.size(), 1);
  Result r(PQexecPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(),
                          formats.data(), /*resultFormat=binary*/ 1));
  const ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return ErrorOf(r.get(), op);
  const int rows = PQntuples(r.get());
  for (int i = 0; on_row && i < rows; ++i) {
    Cols cols(r.get(), i);
    on_row(cols);
    MC_RETURN_IF_ERROR(cols.status(), Context(op));
  }
  if (st == PGRES_TUPLES_OK) return int64_t{rows};
  const char* affected = PQcmdTuples(r.get());
  return affected && *affected ? std::stoll(affected) : int64_t{0};
}

StatusOr<std::optional<int64_t>> Connection::QueryInt(const std::string& sql, std::string_view op,
                                                      const Params& params) {
  std::optional<int64_t> v;
  bool first = true;
  MC_RETURN_IF_ERROR(Run(sql, op, params, [&](Cols& c) {
    if (first) v = c.OptInt();
    first = false;
  }));
  return v;
}

Status Connection::Exec(const std::string& sql, std::string_view op) {
  MC_RETURN_IF_ERROR(ReconnectIfLost());
  Result r(PQexec(conn_, sql.c_str()));
  const ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(r.get(), op);
  return Status::Ok();
}

Status Connection::InTransaction(const std::function<Status()>& body) {
  MC_RETURN_IF_ERROR(Exec("BEGIN", "begin"));
  in_transaction_ = true;
  Status s = body();
  if (s.ok()) {
    Result r(PQexec(conn_, "COMMIT"));
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      s = ErrorOf(r.get(), "commit");
    } else if (std::strcmp(PQcmdStatus(r.get()), "COMMIT") != 0) {
      // COMMIT of a transaction an error aborted answers ROLLBACK: nothing was written.
      s = InternalError(Context("commit: the transaction was rolled back"));
    }
  } else {
    PQclear(PQexec(conn_, "ROLLBACK"));  // a lost connection has rolled back by itself
  }
  in_transaction_ = false;
  return s;
}

std::string Connection::Context(std::string_view op) const {
  std::string out = label_ + " " + name_;
  if (!op.empty()) out += ": " + std::string(op);
  return out;
}

}  // namespace mc::postgres
